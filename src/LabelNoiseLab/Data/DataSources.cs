using LabelNoiseLab.Tensors;

namespace LabelNoiseLab.Data;

/// <summary>
/// Which data to load and how to prepare it. An option the data layer cannot use is an
/// <see cref="ArgumentException"/> whose <see cref="ArgumentException.ParamName"/> names the
/// property, <c>DataOptions.Subset</c>; the layer that filled the options maps that back to its
/// own names (config keys, command-line flags).
/// </summary>
public sealed record DataOptions
{
    /// <summary>fashion-mnist, mnist, cifar10, csv, gaussian-mixture or linear-teacher.</summary>
    public string Name { get; init; } = "fashion-mnist";

    /// <summary>The <c>--data-dir</c> value, if any (see <see cref="DataLocator"/>).</summary>
    public string? DataDir { get; init; }

    /// <summary>csv and npy: the training file.</summary>
    public string? CsvPath { get; init; }

    /// <summary>csv and npy: an optional test file; without it a seeded <see cref="TestFraction"/> of the file is held out.</summary>
    public string? CsvTestPath { get; init; }

    /// <summary>Real noisy labels for the training set as loaded (one per sample, before any subset): they become the given labels, the originals stay as the truth.</summary>
    public string? NoisyLabelsPath { get; init; }

    /// <summary>A label_issues.csv whose flagged indices are dropped from the training set (after the noise, before the validation split).</summary>
    public string? ExcludePath { get; init; }

    /// <summary>A label_issues.csv whose flagged samples get their suggested label.</summary>
    public string? RelabelPath { get; init; }

    /// <summary>Cross-validation folds (stratified by given label) for <see cref="Fold"/>.</summary>
    public int FoldCount { get; init; } = 5;

    /// <summary>1..<see cref="FoldCount"/>: train without that fold and return it as <see cref="PreparedData.HeldOut"/>; 0 = off.</summary>
    public int Fold { get; init; }

    /// <summary>csv: how the file is read (label column, header, delimiter, classes).</summary>
    public CsvOptions Csv { get; init; } = new();

    /// <summary>csv without a test file: fraction held out as the test set.</summary>
    public double TestFraction { get; init; } = 0.2;

    /// <summary>Synthetic sets: training and test sample counts.</summary>
    public int Samples { get; init; } = 1000;

    /// <summary>Synthetic sets: test samples; default 1000.</summary>
    public int TestSamples { get; init; } = 1000;

    /// <summary>gaussian-mixture: classes, dimension and the norm of each class mean.</summary>
    public int Classes { get; init; } = 10;

    /// <summary>gaussian-mixture: feature dimension; default 20.</summary>
    public int Dimension { get; init; } = 20;

    /// <summary>gaussian-mixture: the norm of each class mean (larger separates the classes more); default 3.</summary>
    public double Separation { get; init; } = 3.0;

    /// <summary>linear-teacher: nonzeros of θ* (0 = dense) and the standard deviation of the target noise.</summary>
    public int Sparsity { get; init; }

    /// <summary>linear-teacher: standard deviation of the noise added to the targets; default 0.</summary>
    public double TargetNoise { get; init; }

    /// <summary>Seed for synthetic data, subsets and splits (each from its own purpose generator).</summary>
    public long Seed { get; init; }

    /// <summary>Keep a seeded, stratified subset of this many training samples (null: all).</summary>
    public int? Subset { get; init; }

    /// <summary>Keep a seeded, stratified subset of this many test samples (null: all).</summary>
    public int? TestSubset { get; init; }

    /// <summary>Fraction of the (noisy) training set held out for validation; 0 for none.</summary>
    public double ValidationFraction { get; init; }

    /// <summary>Feature standardisation, computed on the training split; default none.</summary>
    public NormalizationMode Normalization { get; init; } = NormalizationMode.None;
}

/// <summary>A training set and a test set as loaded, before any preparation.</summary>
public sealed record DataSplits(Dataset Train, Dataset Test);

/// <summary>
/// Label noise injected once into the training set during <see cref="DataSources.Prepare"/>:
/// after the subsets, before the validation split. The data layer only fixes where in the
/// pipeline that happens; the noise models live one layer up, and their options implement this
/// (the data layer does not depend on them).
/// </summary>
public interface ILabelNoise
{
    /// <summary>Rewrites the given labels of <paramref name="train"/> in place (true labels stay) and says what it did.</summary>
    ILabelNoiseReport Inject(Dataset train);

    /// <summary>Whether <see cref="Inject"/> may change labels (then the untouched labels are a known truth).</summary>
    bool ChangesLabels => true;
}

/// <summary>What an <see cref="ILabelNoise"/> did to the training set, for summary.json.</summary>
public interface ILabelNoiseReport
{
    /// <summary>A JSON-friendly shape (strings, numbers, lists, dictionaries).</summary>
    Dictionary<string, object> ToDictionary();
}

/// <summary>
/// Ready-to-train data: noise already injected into <see cref="Train"/> (and, since the split
/// happens after the noise, into <see cref="Validation"/>), features normalised with statistics
/// of <see cref="Train"/>. The test set is always clean. <see cref="Noise"/> is the report of the
/// injection (the noise layer's report for the built-in noise models).
/// </summary>
public sealed record PreparedData(Dataset Train, Dataset? Validation, Dataset Test, ILabelNoiseReport Noise, Normalization Normalization)
{
    /// <summary>With <see cref="DataOptions.Fold"/>: the held-out fold (normalised like the rest), in training-set order; else null.</summary>
    public Dataset? HeldOut { get; init; }

    /// <summary>With <see cref="DataOptions.Fold"/>: the held-out samples' positions in the training set before the fold split (the index of label_issues.csv).</summary>
    public int[]? HeldOutIndices { get; init; }
}

/// <summary>The single entry point the trainer calls to get its data.</summary>
public static class DataSources
{
    /// <summary>The data set names <see cref="DataOptions.Name"/> accepts.</summary>
    public static IReadOnlyList<string> Names { get; } =
        ["fashion-mnist", "mnist", "cifar10", "csv", "npy", "gaussian-mixture", "linear-teacher"];

    internal static IReadOnlyList<string> IdxFiles { get; } =
        ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"];

    /// <summary>Loads (or generates) the training and test sets, unmodified.</summary>
    public static DataSplits Load(DataOptions options, Func<string, string?>? environment = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        string name = options.Name.Trim().ToLowerInvariant();
        switch (name)
        {
            case "fashion-mnist" or "mnist":
            {
                string dir = DataLocator.Locate(name, IdxFiles, options.DataDir, environment);
                string F(string f) => DataLocator.FindFile(dir, f)!;
                // The two splits are independent files: read them on two threads.
                var test = Task.Run(() => IdxLoader.Load(F(IdxFiles[2]), F(IdxFiles[3]), name + "/test"));
                var train = IdxLoader.Load(F(IdxFiles[0]), F(IdxFiles[1]), name + "/train");
                var testSet = Await(test);
                if (!train.SampleShape.AsSpan().SequenceEqual(testSet.SampleShape))
                    throw new DataException(F(IdxFiles[2]),
                        $"holds images of {Shape(testSet)}; expected {Shape(train)} like the training images {F(IdxFiles[0])}");
                return new DataSplits(train, testSet);
            }
            case "cifar10" or "cifar-10":
            {
                var files = CifarLoader.TrainFiles.Append(CifarLoader.TestFile).ToList();
                string dir = DataLocator.Locate("cifar10", files, options.DataDir, environment);
                var train = CifarLoader.Load(CifarLoader.TrainFiles.Select(f => Path.Combine(dir, f)).ToList(), "cifar10/train");
                var test = CifarLoader.Load([Path.Combine(dir, CifarLoader.TestFile)], "cifar10/test");
                return new DataSplits(train, test);
            }
            case "csv":
                return LoadCsv(options);
            case "npy":
                return LoadNpy(options);
            case "gaussian-mixture":
            {
                var rng = Rng.ForPurpose(options.Seed, "data");
                var means = Synthetic.MixtureMeans(options.Classes, options.Dimension, options.Separation, rng);
                var train = Synthetic.GaussianMixture(means, options.Classes, options.Dimension, options.Samples, rng, "gaussian-mixture/train");
                var test = Synthetic.GaussianMixture(means, options.Classes, options.Dimension, options.TestSamples, rng, "gaussian-mixture/test");
                return new DataSplits(train, test);
            }
            case "linear-teacher":
            {
                var rng = Rng.ForPurpose(options.Seed, "data");
                var theta = Synthetic.Teacher(options.Dimension, options.Sparsity, rng);
                var train = Synthetic.LinearTeacher(theta, options.Samples, options.TargetNoise, rng, "linear-teacher/train");
                var test = Synthetic.LinearTeacher(theta, options.TestSamples, options.TargetNoise, rng, "linear-teacher/test");
                return new DataSplits(train, test);
            }
            default:
                throw new ArgumentException($"unknown data set '{options.Name}'; expected one of {string.Join(", ", Names)}", Option(nameof(DataOptions.Name)));
        }
    }

    /// <summary>
    /// Load, then: optional subsets (seeded, stratified) → label noise on the training set (once,
    /// by <paramref name="noise"/>, from its own generator) → optional train/validation split (so
    /// validation is noisy too) → normalisation fitted on the final training split and applied to all.
    /// </summary>
    public static PreparedData Prepare(DataOptions options, ILabelNoise noise, Func<string, string?>? environment = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(noise);
        if (!(options.ValidationFraction >= 0 && options.ValidationFraction < 1))
            throw new ArgumentOutOfRangeException(Option(nameof(DataOptions.ValidationFraction)),
                $"validation fraction {options.ValidationFraction}; expected a value in [0, 1)");
        var (train, test) = Load(options, environment);
        if (options.NoisyLabelsPath is not null)
            ApplyNoisyLabels(train, options.NoisyLabelsPath);
        if (options.Subset is int n)
            train = Splits.Subset(train, n, Rng.ForPurpose(options.Seed, "subset"), Option(nameof(DataOptions.Subset)));
        if (options.TestSubset is int m)
            test = Splits.Subset(test, m, Rng.ForPurpose(options.Seed, "test-subset"), Option(nameof(DataOptions.TestSubset)));

        var report = noise.Inject(train);
        if (noise.ChangesLabels)
            train.TruthKnown = true;

        if (options.RelabelPath is not null)
        {
            foreach (var (i, suggested) in LabelIssuesFile.Read(options.RelabelPath, train.Count, train.NumClasses, needSuggested: true))
                train.Labels[i] = suggested;
            train.UpdateNoiseMask();
        }
        if (options.ExcludePath is not null)
        {
            var drop = LabelIssuesFile.Read(options.ExcludePath, train.Count, train.NumClasses, needSuggested: false).Select(p => p.Index).ToHashSet();
            var keep = Enumerable.Range(0, train.Count).Where(i => !drop.Contains(i)).ToArray();
            if (keep.Length == 0)
                throw new DataException(options.ExcludePath, $"excludes all {train.Count} training samples");
            train = train.Select(keep, train.Name);
        }

        Dataset? heldOut = null;
        int[]? heldOutIndices = null;
        if (options.Fold != 0)
        {
            if (options.Fold < 1 || options.Fold > options.FoldCount)
                throw new ArgumentOutOfRangeException(Option(nameof(DataOptions.Fold)), $"fold {options.Fold}; expected 1..{options.FoldCount} (or 0: off)");
            var folds = Splits.StratifiedFolds(train, options.FoldCount, Rng.ForPurpose(options.Seed, "folds"), Option(nameof(DataOptions.FoldCount)));
            heldOutIndices = Enumerable.Range(0, train.Count).Where(i => folds[i] == options.Fold - 1).ToArray();
            var rest = Enumerable.Range(0, train.Count).Where(i => folds[i] != options.Fold - 1).ToArray();
            heldOut = train.Select(heldOutIndices, train.Name + "/held-out");
            train = train.Select(rest, train.Name);
        }

        Dataset? validation = null;
        if (options.ValidationFraction > 0)
            (train, validation) = Splits.TrainValidation(train, options.ValidationFraction, Rng.ForPurpose(options.Seed, "split"),
                paramName: Option(nameof(DataOptions.ValidationFraction)));

        var norm = Normalization.Fit(train, options.Normalization);
        norm.Apply(train);
        if (validation is not null)
            norm.Apply(validation);
        norm.Apply(test);
        if (heldOut is not null)
            norm.Apply(heldOut);
        return new PreparedData(train, validation, test, report, norm) { HeldOut = heldOut, HeldOutIndices = heldOutIndices };
    }

    private static DataSplits LoadCsv(DataOptions options)
    {
        if (string.IsNullOrWhiteSpace(options.CsvPath))
            throw new ArgumentException("the csv data set needs a file path", Option(nameof(DataOptions.CsvPath)));
        var trainTable = CsvLoader.Parse(options.CsvPath, options.Csv);
        if (options.CsvTestPath is null)
            return HoldOutTest(options, "csv", "rows", () => CsvLoader.ToDataset(trainTable, "csv", trainTable.MaxLabel + 1));
        var testTable = CsvLoader.Parse(options.CsvTestPath, options.Csv);
        if (testTable.FeatureCount != trainTable.FeatureCount)
            throw new DataException(options.CsvTestPath,
                $"has {testTable.FeatureCount} feature columns; expected {trainTable.FeatureCount} like {Path.GetFileName(options.CsvPath)}");
        int k = Math.Max(trainTable.MaxLabel, testTable.MaxLabel) + 1;
        return new DataSplits(CsvLoader.ToDataset(trainTable, "csv/train", k), CsvLoader.ToDataset(testTable, "csv/test", k));
    }

    private static DataSplits LoadNpy(DataOptions options)
    {
        if (string.IsNullOrWhiteSpace(options.CsvPath))
            throw new ArgumentException("the npy data set needs a file path (.npz, or .npy with labels.npy beside it)", Option(nameof(DataOptions.CsvPath)));
        var trainArrays = NpyLoader.ReadArrays(options.CsvPath);
        if (options.CsvTestPath is null)
        {
            var split = HoldOutTest(options, "npy", "samples", () => ToDataset(trainArrays, "npy", trainArrays.MaxLabel + 1));
            return split with { Test = CleanCopy(split.Test) };
        }
        var testArrays = NpyLoader.ReadArrays(options.CsvTestPath);
        if (!testArrays.SampleShape.AsSpan().SequenceEqual(trainArrays.SampleShape))
            throw new DataException(options.CsvTestPath,
                $"has samples of shape [{string.Join(", ", testArrays.SampleShape)}]; expected [{string.Join(", ", trainArrays.SampleShape)}] like {Path.GetFileName(options.CsvPath)}");
        int k = Math.Max(trainArrays.MaxLabel, testArrays.MaxLabel) + 1;
        return new DataSplits(ToDataset(trainArrays, "npy/train", k), CleanCopy(ToDataset(testArrays, "npy/test", k)));
    }

    /// <summary>
    /// A file's data set without a test file: <c>test_fraction</c> of its <paramref name="unit"/>
    /// (rows, samples) held out by the seed as <paramref name="format"/>/test, the rest <paramref name="format"/>/train.
    /// </summary>
    private static DataSplits HoldOutTest(DataOptions options, string format, string unit, Func<Dataset> load)
    {
        if (!(options.TestFraction > 0 && options.TestFraction < 1))
            throw new ArgumentOutOfRangeException(Option(nameof(DataOptions.TestFraction)),
                $"test fraction {options.TestFraction}; expected a value in (0, 1)");
        var all = load();
        int testCount = (int)Math.Round(all.Count * options.TestFraction);
        if (testCount == 0 || testCount == all.Count)
            throw new DataException(options.CsvPath!,
                $"{all.Count} {unit} are too few to hold out a test fraction of {options.TestFraction} (give a test file or more {unit})");
        var (train, test) = Splits.TrainValidation(all, options.TestFraction, Rng.ForPurpose(options.Seed, "test-split"),
            $"{format}/train", $"{format}/test", Option(nameof(DataOptions.TestFraction)));
        return new DataSplits(train, test);
    }

    /// <summary>A data set of npy arrays: given labels, and the true labels when the file has them (then <see cref="Dataset.TruthKnown"/>).</summary>
    private static Dataset ToDataset(NpyLoader.Arrays a, string name, int classes)
    {
        var d = new Dataset(name, a.Features, a.SampleShape, a.Labels, classes);
        if (a.TrueLabels is not null)
        {
            a.TrueLabels.CopyTo(d.TrueLabels, 0);
            d.UpdateNoiseMask();
            d.TruthKnown = true;
        }
        return d;
    }

    /// <summary>The test set is scored against its true labels: with a true-label array those become its labels.</summary>
    private static Dataset CleanCopy(Dataset test)
    {
        if (!test.TruthKnown)
            return test;
        test.TrueLabels.CopyTo(test.Labels, 0);
        test.UpdateNoiseMask();
        return test;
    }

    /// <summary>data.noisy_labels: the file's labels become the given labels; the loaded ones stay as the truth.</summary>
    private static void ApplyNoisyLabels(Dataset train, string path)
    {
        var labels = NpyLoader.ReadLabelFile(path);
        if (labels.Length != train.Count)
            throw new DataException(path, $"holds {labels.Length} labels; the training set ({train.Name}) has {train.Count} samples");
        for (int i = 0; i < labels.Length; i++)
        {
            if (labels[i] >= train.NumClasses)
                throw new DataException(path, $"label {i} is {labels[i]}; the data set has {train.NumClasses} classes (0..{train.NumClasses - 1})");
        }
        labels.CopyTo(train.Labels, 0);
        train.UpdateNoiseMask();
        train.TruthKnown = true;
    }

    /// <summary>Rows × columns of an IDX set's images.</summary>
    private static string Shape(Dataset d) => $"{d.SampleShape[^2]}×{d.SampleShape[^1]}";

    /// <summary>The <see cref="ArgumentException.ParamName"/> of a bad option: <c>DataOptions.Subset</c>.</summary>
    private static string Option(string property) => nameof(DataOptions) + "." + property;

    private static Dataset Await(Task<Dataset> task)
    {
        try
        {
            return task.GetAwaiter().GetResult();
        }
        catch (AggregateException e) when (e.InnerException is not null)
        {
            throw e.InnerException;
        }
    }
}

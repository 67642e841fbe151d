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

    /// <summary>csv: the training file.</summary>
    public string? CsvPath { get; init; }

    /// <summary>csv: an optional test file; without it a seeded <see cref="TestFraction"/> of the file is held out.</summary>
    public string? CsvTestPath { get; init; }

    public CsvOptions Csv { get; init; } = new();

    /// <summary>csv without a test file: fraction held out as the test set.</summary>
    public double TestFraction { get; init; } = 0.2;

    /// <summary>Synthetic sets: training and test sample counts.</summary>
    public int Samples { get; init; } = 1000;

    public int TestSamples { get; init; } = 1000;

    /// <summary>gaussian-mixture: classes, dimension and the norm of each class mean.</summary>
    public int Classes { get; init; } = 10;

    public int Dimension { get; init; } = 20;

    public double Separation { get; init; } = 3.0;

    /// <summary>linear-teacher: nonzeros of θ* (0 = dense) and the standard deviation of the target noise.</summary>
    public int Sparsity { get; init; }

    public double TargetNoise { get; init; }

    /// <summary>Seed for synthetic data, subsets and splits (each from its own purpose generator).</summary>
    public long Seed { get; init; }

    /// <summary>Keep a seeded, stratified subset of this many training samples (null: all).</summary>
    public int? Subset { get; init; }

    /// <summary>Keep a seeded, stratified subset of this many test samples (null: all).</summary>
    public int? TestSubset { get; init; }

    /// <summary>Fraction of the (noisy) training set held out for validation; 0 for none.</summary>
    public double ValidationFraction { get; init; }

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
public sealed record PreparedData(Dataset Train, Dataset? Validation, Dataset Test, ILabelNoiseReport Noise, Normalization Normalization);

/// <summary>The single entry point the trainer calls to get its data.</summary>
public static class DataSources
{
    public static IReadOnlyList<string> Names { get; } =
        ["fashion-mnist", "mnist", "cifar10", "csv", "gaussian-mixture", "linear-teacher"];

    public static IReadOnlyList<string> IdxFiles { get; } =
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
        if (options.Subset is int n)
            train = Splits.Subset(train, n, Rng.ForPurpose(options.Seed, "subset"), Option(nameof(DataOptions.Subset)));
        if (options.TestSubset is int m)
            test = Splits.Subset(test, m, Rng.ForPurpose(options.Seed, "test-subset"), Option(nameof(DataOptions.TestSubset)));

        var report = noise.Inject(train);

        Dataset? validation = null;
        if (options.ValidationFraction > 0)
            (train, validation) = Splits.TrainValidation(train, options.ValidationFraction, Rng.ForPurpose(options.Seed, "split"),
                paramName: Option(nameof(DataOptions.ValidationFraction)));

        var norm = Normalization.Fit(train, options.Normalization);
        norm.Apply(train);
        if (validation is not null)
            norm.Apply(validation);
        norm.Apply(test);
        return new PreparedData(train, validation, test, report, norm);
    }

    private static DataSplits LoadCsv(DataOptions options)
    {
        if (string.IsNullOrWhiteSpace(options.CsvPath))
            throw new ArgumentException("the csv data set needs a file path", Option(nameof(DataOptions.CsvPath)));
        var trainTable = CsvLoader.Parse(options.CsvPath, options.Csv);
        if (options.CsvTestPath is null)
        {
            if (!(options.TestFraction > 0 && options.TestFraction < 1))
                throw new ArgumentOutOfRangeException(Option(nameof(DataOptions.TestFraction)),
                    $"test fraction {options.TestFraction}; expected a value in (0, 1)");
            var all = CsvLoader.ToDataset(trainTable, "csv", trainTable.MaxLabel + 1);
            int testCount = (int)Math.Round(all.Count * options.TestFraction);
            if (testCount == 0 || testCount == all.Count)
                throw new DataException(options.CsvPath,
                    $"{all.Count} rows are too few to hold out a test fraction of {options.TestFraction} (give a test file or more rows)");
            var (train, test) = Splits.TrainValidation(all, options.TestFraction, Rng.ForPurpose(options.Seed, "test-split"),
                "csv/train", "csv/test", Option(nameof(DataOptions.TestFraction)));
            return new DataSplits(train, test);
        }
        var testTable = CsvLoader.Parse(options.CsvTestPath, options.Csv);
        if (testTable.FeatureCount != trainTable.FeatureCount)
            throw new DataException(options.CsvTestPath,
                $"has {testTable.FeatureCount} feature columns; expected {trainTable.FeatureCount} like {Path.GetFileName(options.CsvPath)}");
        int k = Math.Max(trainTable.MaxLabel, testTable.MaxLabel) + 1;
        return new DataSplits(CsvLoader.ToDataset(trainTable, "csv/train", k), CsvLoader.ToDataset(testTable, "csv/test", k));
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

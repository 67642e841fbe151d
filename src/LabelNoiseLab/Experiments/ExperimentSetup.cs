using System.Globalization;
using LabelNoiseLab.Data;
using LabelNoiseLab.Nn;
using LabelNoiseLab.Noise;
using LabelNoiseLab.Optim;
using LabelNoiseLab.Tensors;

namespace LabelNoiseLab.Experiments;

/// <summary>
/// Turns a validated <see cref="ExperimentConfig"/> into the objects a run needs: data options,
/// noise options, the prepared data, the model, the optimizer and the schedule. Each purpose gets
/// its own generator (initialisation, shuffling, dropout), all derived from <c>seed</c>; noise has
/// its own seed. The layers below name their options in their own words; this is where an option
/// they reject becomes a <see cref="ConfigException"/> naming the key that set it.
/// </summary>
public static class ExperimentSetup
{
    /// <summary>
    /// The config key behind each option that <see cref="DataOptions(ExperimentConfig, string?)"/> and
    /// <see cref="NoiseOptions(ExperimentConfig)"/> fill and the data and noise layers name (as
    /// <see cref="ArgumentException.ParamName"/> <c>DataOptions.Subset</c>, ...) when they reject it.
    /// </summary>
    internal static IReadOnlyDictionary<string, string> KeyOfOption { get; } = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        [nameof(Data.DataOptions) + "." + nameof(Data.DataOptions.Name)] = "data.name",
        [nameof(Data.DataOptions) + "." + nameof(Data.DataOptions.CsvPath)] = "data.path",
        [nameof(Data.DataOptions) + "." + nameof(Data.DataOptions.Subset)] = "data.subset",
        [nameof(Data.DataOptions) + "." + nameof(Data.DataOptions.CsvTestPath)] = "data.test_path",
        [nameof(Data.DataOptions) + "." + nameof(Data.DataOptions.TestFraction)] = "data.test_fraction",
        [nameof(Data.DataOptions) + "." + nameof(Data.DataOptions.FoldCount)] = "audit.folds",
        [nameof(Data.DataOptions) + "." + nameof(Data.DataOptions.Fold)] = "audit.fold",
        [nameof(Data.DataOptions) + "." + nameof(Data.DataOptions.ValidationFraction)] = "data.val_fraction",
        [nameof(Noise.NoiseOptions) + "." + nameof(Noise.NoiseOptions.Kind)] = "noise.kind",
        [nameof(Noise.NoiseOptions) + "." + nameof(Noise.NoiseOptions.Rate)] = "noise.rate",
        [nameof(Noise.NoiseOptions) + "." + nameof(Noise.NoiseOptions.ClassMap)] = "noise.map",
        [nameof(Noise.NoiseOptions) + "." + nameof(Noise.NoiseOptions.T)] = "noise.T",
    };

    /// <summary>
    /// The run's data (<see cref="DataSources.Prepare"/>): loaded, subset, noise injected once,
    /// split, normalised. An option the data or noise layer rejects for this data set (a subset
    /// larger than the set, a class map naming a class the set lacks, noise on a regression set)
    /// is a <see cref="ConfigException"/> naming its key (<see cref="KeyOfOption"/>).
    /// </summary>
    public static PreparedData PrepareData(ExperimentConfig c, string? dataDir)
    {
        ArgumentNullException.ThrowIfNull(c);
        try
        {
            return DataSources.Prepare(DataOptions(c, dataDir), NoiseOptions(c));
        }
        catch (ArgumentException e) when (e.ParamName is not null && KeyOfOption.ContainsKey(e.ParamName))
        {
            throw AsConfigError(e);
        }
    }

    /// <summary>
    /// The <see cref="ConfigException"/> for an option error of a lower layer: the key from
    /// <see cref="KeyOfOption"/>, the problem in the layer's words (one line, without .NET's
    /// "(Parameter '...')" suffix).
    /// </summary>
    internal static ConfigException AsConfigError(ArgumentException e)
    {
        ArgumentNullException.ThrowIfNull(e);
        string key = e.ParamName is not null && KeyOfOption.TryGetValue(e.ParamName, out var k)
            ? k
            : throw new ArgumentException($"no config key fills option '{e.ParamName}'", nameof(e), e);
        string problem = e.Message.Replace($" (Parameter '{e.ParamName}')", "", StringComparison.Ordinal);
        int newline = problem.IndexOf('\n', StringComparison.Ordinal);
        return new ConfigException(key, (newline < 0 ? problem : problem[..newline]).TrimEnd());
    }

    /// <summary>
    /// The data layer's options of a config (the <c>data.*</c> and <c>audit.*</c> keys, <c>seed</c>);
    /// relative <c>data.path</c>, <c>data.test_path</c> and <c>data.noisy_labels</c> are resolved against <paramref name="dataDir"/>.
    /// </summary>
    public static DataOptions DataOptions(ExperimentConfig c, string? dataDir) => new()
    {
        Name = c.DataName,
        DataDir = dataDir,
        CsvPath = c.DataPath.Length == 0 ? null : ResolvePath(c.DataPath, dataDir),
        CsvTestPath = c.DataTestPath.Length == 0 ? null : ResolvePath(c.DataTestPath, dataDir),
        TestFraction = c.DataTestFraction,
        NoisyLabelsPath = c.DataNoisyLabels.Length == 0 ? null : ResolvePath(c.DataNoisyLabels, dataDir),
        ExcludePath = c.DataExclude.Length == 0 ? null : c.DataExclude,
        RelabelPath = c.DataRelabel.Length == 0 ? null : c.DataRelabel,
        FoldCount = c.AuditFolds,
        Fold = c.AuditFold,
        Csv = new CsvOptions { LabelColumn = c.DataCsvLabelColumn },
        Seed = c.Seed,
        Subset = c.DataSubset > 0 ? c.DataSubset : null,
        Samples = c.DataSamples,
        TestSamples = c.DataTestSamples,
        Classes = c.DataClasses,
        Dimension = c.DataDimension,
        Separation = c.DataSeparation,
        Sparsity = c.DataSparsity,
        TargetNoise = c.DataTargetNoise,
        ValidationFraction = c.DataValFraction,
        Normalization = c.DataNormalize == "standardize" ? NormalizationMode.PerFeature : NormalizationMode.None,
    };

    /// <summary>The noise layer's options of a config (the <c>noise.*</c> keys).</summary>
    public static NoiseOptions NoiseOptions(ExperimentConfig c) => new()
    {
        Kind = Noise.NoiseOptions.ParseKind(c.NoiseKind),
        Rate = c.NoiseRate,
        Seed = c.NoiseSeed,
        IncludeTrue = c.NoiseIncludeTrue,
        ClassMap = c.NoiseMap.Count == 0 ? null : string.Join(",", c.NoiseMap.Select(p => string.Create(CultureInfo.InvariantCulture, $"{p.Key}:{p.Value}"))),
        T = c.NoiseTransition.Count == 0 ? null : c.NoiseTransition.Select(r => r.ToArray()).ToArray(),
    };

    /// <summary>The model for a data set's sample shape and class count, initialised.</summary>
    public static Model CreateModel(ExperimentConfig c, Dataset train)
    {
        int outputs = train.NumClasses > 0 ? train.NumClasses : train.TargetLength;
        var activation = Activation.Parse(c.ModelActivation);
        Model model = c.ModelKind switch
        {
            "mlp" => new Mlp(train.FeatureLength, c.ModelHidden, outputs, activation, (float)c.ModelDropout,
                c.ModelDropout > 0 ? Rng.ForPurpose(c.Seed, "dropout") : null),
            "two_layer_linear" => c.ModelHidden.Count == 1
                ? new TwoLayerLinear(train.FeatureLength, c.ModelHidden[0], outputs)
                : throw new ConfigException("model.hidden", $"two_layer_linear needs exactly one width (m), got {c.ModelHidden.Count}"),
            "small_cnn" => train.SampleShape is [int channels, int h, int w] && h == w && h % 4 == 0
                ? new SmallCnn(channels, h, outputs, activation: activation)
                : throw new ConfigException("model.kind", $"small_cnn needs square images with a side divisible by 4, data has samples of shape [{string.Join(", ", train.SampleShape)}]"),
            "resnet" => new ResNet(ImageChannels(c, train), train.SampleShape[1], outputs, c.ModelDepth,
                c.ModelWidth > 0 ? c.ModelWidth : 1.0, Norm(c)),
            "cnn9" => new Cnn9(ImageChannels(c, train, minSide: 28), train.SampleShape[1], outputs, Rng.ForPurpose(c.Seed, "dropout"),
                c.ModelWidth > 0 ? c.ModelWidth : 0.25, Norm(c)),
            "vit" => CreateVit(c, train, outputs),
            _ => throw new ConfigException("model.kind", $"unknown model '{c.ModelKind}'"),
        };
        if (c.ModelNorm != "batch" && c.ModelKind is not ("resnet" or "cnn9"))
            throw new ConfigException("model.norm", $"applies to model.kind resnet and cnn9 only, not {c.ModelKind}");
        if (c.ModelKind != "vit")
        {
            var d = ExperimentConfig.Default;
            string vitOnly = $"applies to model.kind vit only, not {c.ModelKind}";
            if (c.ModelPatch != d.ModelPatch)
                throw new ConfigException("model.patch", vitOnly);
            if (c.ModelDim != d.ModelDim)
                throw new ConfigException("model.dim", vitOnly);
            if (c.ModelVitDepth != d.ModelVitDepth)
                throw new ConfigException("model.vit_depth", vitOnly);
            if (c.ModelHeads != d.ModelHeads)
                throw new ConfigException("model.heads", vitOnly);
            if (c.ModelMlpRatio != d.ModelMlpRatio)
                throw new ConfigException("model.mlp_ratio", vitOnly);
            if (c.ModelPool != d.ModelPool)
                throw new ConfigException("model.pool", vitOnly);
        }
        var init = c.ModelInit == "ntk" ? InitKind.Ntk : InitKind.Default;
        Init.Apply(model, init, Rng.ForPurpose(c.Seed, "init"), (float)c.ModelInitScale);
        return model;
    }

    private static VisionTransformer CreateVit(ExperimentConfig c, Dataset train, int outputs)
    {
        int channels = ImageChannels(c, train), side = train.SampleShape[1];
        if (side % c.ModelPatch != 0)
            throw new ConfigException("model.patch", $"{c.ModelPatch} does not divide the image side {side} (for {side}×{side}: {string.Join(", ", Enumerable.Range(1, side).Where(p => side % p == 0 && p > 1 && p < side))})");
        if (c.ModelDim % c.ModelHeads != 0)
            throw new ConfigException("model.heads", $"{c.ModelHeads} heads do not divide model.dim {c.ModelDim}");
        if (Math.Round(c.ModelDim * c.ModelMlpRatio, MidpointRounding.AwayFromZero) < 1)
            throw new ConfigException("model.mlp_ratio", $"{c.ModelMlpRatio} × model.dim {c.ModelDim} leaves no hidden unit");
        return new VisionTransformer(channels, side, outputs, c.ModelPatch, c.ModelDim, c.ModelVitDepth, c.ModelHeads, c.ModelMlpRatio,
            classToken: c.ModelPool == "cls");
    }

    private static NormKind Norm(ExperimentConfig c) => c.ModelNorm == "group" ? NormKind.Group : NormKind.Batch;

    /// <summary>The channel count of square image samples [C, H, H] (side at least <paramref name="minSide"/>), else the config error.</summary>
    private static int ImageChannels(ExperimentConfig c, Dataset train, int minSide = 1) =>
        train.SampleShape is [int channels, int h, int w] && h == w && h >= minSide
            ? channels
            : throw new ConfigException("model.kind", $"{c.ModelKind} needs square images{(minSide > 1 ? $" of side {minSide} or more" : "")} (mnist, fashion-mnist, cifar10), data has samples of shape [{string.Join(", ", train.SampleShape)}]");

    /// <summary>
    /// The optimizer of <c>optim.kind</c> (SGD, or Adam; AdamW is Adam with decoupled weight decay) over
    /// <paramref name="parameters"/>, with the <c>optim.*</c> settings.
    /// </summary>
    public static Optimizer CreateOptimizer(ExperimentConfig c, IEnumerable<Tensor> parameters) => c.OptimKind switch
    {
        "sgd" => new Sgd(parameters, (float)c.OptimLr, (float)c.OptimMomentum, c.OptimNesterov, (float)c.OptimWeightDecay),
        "adam" or "adamw" => new Adam(parameters, (float)c.OptimLr, (float)c.OptimBetas[0], (float)c.OptimBetas[1],
            (float)c.OptimEps, (float)c.OptimWeightDecay, decoupled: c.OptimKind == "adamw"),
        _ => throw new ConfigException("optim.kind", $"unknown optimizer '{c.OptimKind}'"),
    };

    /// <summary>
    /// The learning-rate schedule of <c>schedule.kind</c>; <paramref name="stepsPerEpoch"/> converts the
    /// epoch-based settings (step size, cosine length over <c>epochs</c>) to optimizer steps.
    /// </summary>
    public static LrSchedule CreateSchedule(ExperimentConfig c, int stepsPerEpoch) => c.ScheduleKind switch
    {
        "constant" => new LrSchedule.Constant(),
        "step" => new LrSchedule.Step((long)c.ScheduleStepSize * stepsPerEpoch, (float)c.ScheduleGamma),
        "cosine" => new LrSchedule.Cosine((long)c.Epochs * stepsPerEpoch, c.ScheduleWarmup),
        "inverse_sqrt" => new LrSchedule.InverseSqrt(c.ScheduleWarmup),
        _ => throw new ConfigException("schedule.kind", $"unknown schedule '{c.ScheduleKind}'"),
    };

    private static string ResolvePath(string path, string? dataDir) =>
        Path.IsPathRooted(path) || dataDir is null ? path : Path.Combine(dataDir, path);
}

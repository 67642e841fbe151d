using System.Text;

namespace LabelNoiseLab.Experiments;

/// <summary>
/// The resolved configuration of one experiment: flat, typed, every key with a default
/// (nanoGPT style). Keys, types, defaults and checks live in one table, <see cref="ConfigKeys"/>.
/// Build one with <see cref="Load"/> / <see cref="Parse"/> (YAML, then <c>--set</c> overrides,
/// then validation) or with <c>ExperimentConfig.Default with { ... }</c> followed by <see cref="Validate"/>.
/// </summary>
public sealed record ExperimentConfig
{
    private ExperimentConfig()
    {
    }

    /// <summary>Every key at its default.</summary>
    public static ExperimentConfig Default { get; } = ConfigKeys.All.Aggregate(new ExperimentConfig(), (c, k) => k.ApplyDefault(c));

    public string Name { get; init; } = "";
    public int Seed { get; init; }
    public int Epochs { get; init; }
    public int BatchSize { get; init; }
    public int EvalEverySteps { get; init; }
    public int CheckpointEvery { get; init; }
    public int CheckpointEverySteps { get; init; }
    public int Threads { get; init; }

    public string DataName { get; init; } = "";
    public string DataPath { get; init; } = "";
    public int DataSubset { get; init; }
    public int DataSamples { get; init; }
    public int DataTestSamples { get; init; }
    public int DataClasses { get; init; }
    public int DataDimension { get; init; }
    public double DataSeparation { get; init; }
    public int DataSparsity { get; init; }
    public double DataTargetNoise { get; init; }
    public double DataValFraction { get; init; }
    public string DataNormalize { get; init; } = "";
    public string DataCsvLabelColumn { get; init; } = "";
    public string DataAugment { get; init; } = "";
    public string DataTestPath { get; init; } = "";
    public double DataTestFraction { get; init; }
    public string DataNoisyLabels { get; init; } = "";
    public string DataExclude { get; init; } = "";
    public string DataRelabel { get; init; } = "";
    public int AuditFolds { get; init; }
    public int AuditFold { get; init; }
    public string AuditFilter { get; init; } = "";
    public string AuditRank { get; init; } = "";
    public int DataAugmentPadding { get; init; }

    public string NoiseKind { get; init; } = "";
    public double NoiseRate { get; init; }
    public int NoiseSeed { get; init; }
    public bool NoiseIncludeTrue { get; init; }
    /// <summary>Asymmetric noise: (true class, given class) pairs sorted by true class.</summary>
    public IReadOnlyList<KeyValuePair<int, int>> NoiseMap { get; init; } = [];
    /// <summary>Transition noise: row-stochastic matrix T[true][given]; empty when not set.</summary>
    public IReadOnlyList<IReadOnlyList<double>> NoiseTransition { get; init; } = [];

    public string ModelKind { get; init; } = "";
    public IReadOnlyList<int> ModelHidden { get; init; } = [];
    public string ModelActivation { get; init; } = "";
    public string ModelInit { get; init; } = "";
    public double ModelInitScale { get; init; }
    public double ModelDropout { get; init; }
    public int ModelDepth { get; init; }
    public double ModelWidth { get; init; }
    public string ModelNorm { get; init; } = "";
    public int ModelPatch { get; init; }
    public int ModelDim { get; init; }
    public int ModelVitDepth { get; init; }
    public int ModelHeads { get; init; }
    public double ModelMlpRatio { get; init; }
    public string ModelPool { get; init; } = "";

    public string LossKind { get; init; } = "";

    public string OptimKind { get; init; } = "";
    public double OptimLr { get; init; }
    public double OptimMomentum { get; init; }
    public bool OptimNesterov { get; init; }
    public double OptimWeightDecay { get; init; }
    public IReadOnlyList<double> OptimBetas { get; init; } = [];
    public double OptimEps { get; init; }

    public string ScheduleKind { get; init; } = "";
    public int ScheduleStepSize { get; init; }
    public double ScheduleGamma { get; init; }
    public int ScheduleWarmup { get; init; }

    public int EarlyStopPatience { get; init; }

    public int EvalTrainSamples { get; init; }

    public string LabelNoiseKind { get; init; } = "";
    public double LabelNoiseP { get; init; }
    public double LabelNoiseSigma { get; init; }
    public string LabelNoiseDistribution { get; init; } = "";
    public string LabelNoiseSchedule { get; init; } = "";
    public int LabelNoisePeriod { get; init; }
    public int LabelNoiseOffAfter { get; init; }

    public double SamRho { get; init; }
    public bool SamAdaptive { get; init; }
    public double SamEta { get; init; }

    public bool ProbeNeuronNorms { get; init; }
    public int ProbeSpectralEvery { get; init; }
    // Robust training (issue 7): robust losses, loss correction, gradient pruning, selection, detection.
    public string RobustLoss { get; init; } = "";
    public double RobustGceQ { get; init; }
    public double RobustSceAlpha { get; init; }
    public double RobustSceBeta { get; init; }
    public double RobustNceAlpha { get; init; }
    public double RobustRceBeta { get; init; }
    public double RobustSmoothing { get; init; }
    public double RobustBootstrapBeta { get; init; }
    public IReadOnlyList<IReadOnlyList<double>> RobustTransition { get; init; } = [];
    public int RobustEstimateAfter { get; init; }
    public double RobustAnchorPercentile { get; init; }
    public string PruneKind { get; init; } = "";
    public string PruneStat { get; init; } = "";
    public double PruneAlpha { get; init; }
    public double PruneBeta { get; init; }
    public string PerSampleMode { get; init; } = "";
    public string PerSampleConv { get; init; } = "";
    public string SelectKind { get; init; } = "";
    public double SelectForgetRate { get; init; }
    public int SelectForgetEpochs { get; init; }
    public bool DetectionEnabled { get; init; }
    public int DetectionSuspects { get; init; }
    public bool DetectionLedger { get; init; }
    public int ProbeActivationsEvery { get; init; }
    public int ProbeSetSize { get; init; }
    public IReadOnlyList<int> ProbeLayers { get; init; } = [];
    public bool ProbePhases { get; init; }
    public int ProbePhaseSmooth { get; init; }
    public double ProbePhaseRise { get; init; }
    public double ProbePhaseFall { get; init; }
    public bool ProbeLearningEvents { get; init; }
    public int ProbeTopK { get; init; }
    public double ProbeMassiveAbs { get; init; }
    public double ProbeMassiveRatio { get; init; }
    public string ProbeAblate { get; init; } = "";
    public int ProbeAblateUnits { get; init; }
    public int ProbeAblateTestSamples { get; init; }
    public string EvalSchedule { get; init; } = "";
    public double EarlyStopNoisyFitFactor { get; init; }
    public bool ProbeLinearized { get; init; }
    public int ProbeKernelSetSize { get; init; }
    public double ProbeLazyThreshold { get; init; }
    public int ProbeHessianEvery { get; init; }
    public int ProbeHessianTopK { get; init; }
    public int ProbeHessianVectors { get; init; }
    public int ProbeHessianLanczosSteps { get; init; }
    public int ProbeHessianSamples { get; init; }
    public bool EarlyStopSaveBest { get; init; }

    /// <summary>
    /// Reads a YAML config file, applies <c>--set key=value</c> overrides, validates.
    /// Throws <see cref="InputException"/> for a missing or malformed file and
    /// <see cref="ConfigException"/> for an unknown key or a bad value.
    /// </summary>
    public static ExperimentConfig Load(string path, IEnumerable<string>? overrides = null)
    {
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new InputException($"{path}: config file not found");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new InputException($"{path}: cannot read config file ({e.Message})");
        }
        return Parse(text, path, overrides);
    }

    /// <summary>As <see cref="Load"/>, from YAML text; <paramref name="source"/> names it in errors.</summary>
    public static ExperimentConfig Parse(string yaml, string source = "<yaml>", IEnumerable<string>? overrides = null)
    {
        var config = Default;
        foreach (var (key, value) in ConfigYaml.ReadFlat(yaml, source))
            config = Apply(config, key, value);
        if (overrides is not null)
            config = config.WithOverrides(overrides);
        config.Validate();
        return config;
    }

    /// <summary>Applies <c>key=value</c> strings (the <c>--set</c> syntax); does not validate cross-key rules.</summary>
    public ExperimentConfig WithOverrides(IEnumerable<string> overrides)
    {
        var config = this;
        foreach (var assignment in overrides)
        {
            int eq = assignment.IndexOf('=', StringComparison.Ordinal);
            if (eq <= 0)
                throw new InputException($"--set '{assignment}': expected key=value");
            string key = assignment[..eq].Trim();
            config = Apply(config, key, ConfigValue.OfScalar(assignment[(eq + 1)..].Trim(), "--set"));
        }
        return config;
    }

    /// <summary>Checks every key's range and the rules that tie keys together; throws <see cref="ConfigException"/>.</summary>
    public void Validate()
    {
        foreach (var key in ConfigKeys.All)
            key.Validate(this);
        if (NoiseKind == "transition" && NoiseTransition.Count == 0)
            throw new ConfigException("noise.T", "noise.kind=transition needs a matrix like \"0.6,0.4;0.4,0.6\"");
        if (DataName == "csv" && DataPath.Length == 0)
            throw new ConfigException("data.path", "data.name=csv needs the CSV file");
        if (DataName == "npy" && DataPath.Length == 0)
            throw new ConfigException("data.path", "data.name=npy needs an .npz file (x, y, optional y_true) or an .npy of features with labels.npy beside it");
        if (DataTestPath.Length > 0 && DataName is not ("csv" or "npy"))
            throw new ConfigException("data.test_path", $"applies to data.name csv and npy only, not {DataName}");
        if (DataNoisyLabels.Length > 0 && NoiseKind != "none")
            throw new ConfigException("data.noisy_labels", $"replaces the labels with real noisy ones; it cannot be combined with noise.kind={NoiseKind} (set noise.kind: none)");
        if (AuditFold > AuditFolds)
            throw new ConfigException("audit.fold", $"{AuditFold} but audit.folds is {AuditFolds}; expected 0..{AuditFolds}");
        if (LabelNoiseKind == "regression" && LossKind != "mse")
            throw new ConfigException("label_noise.kind", "regression label noise needs loss.kind=mse");
    }

    /// <summary>The fully resolved config as YAML, every key, grouped by section in table order.</summary>
    public string ToYaml()
    {
        var sb = new StringBuilder();
        string? section = null;
        // Keys of one section together (in table order of first appearance): a section written
        // twice would be a duplicate YAML key.
        static string? SectionOf(ConfigKey k) => k.Name.Contains('.', StringComparison.Ordinal) ? k.Name[..k.Name.IndexOf('.', StringComparison.Ordinal)] : null;
        var order = ConfigKeys.All.Select(SectionOf).Distinct().ToList();
        foreach (var key in ConfigKeys.All.OrderBy(k => order.IndexOf(SectionOf(k))))
        {
            int dot = key.Name.IndexOf('.', StringComparison.Ordinal);
            string? keySection = dot < 0 ? null : key.Name[..dot];
            if (keySection != section && keySection is not null)
                sb.Append(keySection).Append(":\n");
            section = keySection;
            string leaf = dot < 0 ? key.Name : "  " + key.Name[(dot + 1)..];
            sb.Append(leaf).Append(": ").Append(key.FormatYaml(this)).Append('\n');
        }
        return sb.ToString();
    }

    /// <summary>Value of a key by its dotted name (for reports and sweeps).</summary>
    public object? Get(string key) =>
        (ConfigKeys.Find(key) ?? throw new ConfigException(key, UnknownProblem(key))).GetBoxed(this);

    public bool Equals(ExperimentConfig? other) =>
        other is not null && ConfigKeys.All.All(k => k.ValueEquals(this, other));

    public override int GetHashCode() =>
        ConfigKeys.All.Aggregate(17, (h, k) => unchecked(h * 31 + k.ValueHash(this)));

    public override string ToString() => ToYaml();

    private static ExperimentConfig Apply(ExperimentConfig config, string key, ConfigValue value)
    {
        var descriptor = ConfigKeys.Find(key) ?? throw new ConfigException(key, UnknownProblem(key) + $" ({value.Source})");
        return descriptor.Apply(config, value);
    }

    private static string UnknownProblem(string key)
    {
        string? near = ConfigKeys.Suggest(key);
        return near is null ? "unknown key" : $"unknown key (did you mean '{near}'?)";
    }
}

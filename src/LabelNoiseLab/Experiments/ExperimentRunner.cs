using LabelNoiseLab.Data;
using LabelNoiseLab.Losses;
using LabelNoiseLab.Nn;
using LabelNoiseLab.Noise;
using LabelNoiseLab.Optim;
using LabelNoiseLab.Probes;
using LabelNoiseLab.Robust;
using LabelNoiseLab.RunFiles;
using LabelNoiseLab.Tensors;
using LabelNoiseLab.Training;

namespace LabelNoiseLab.Experiments;

/// <summary>
/// The seam between the CLI (or any host) and training. The host loads and validates the
/// config, creates the run directory (status <c>running</c>, <c>config.yaml</c> written) and calls
/// <see cref="Run"/>. Once the data and model are built, the runner calls
/// <see cref="RunDirectory.Publish"/> (a run replacing an older one takes its place only then). The runner writes metrics, summary and checkpoints through
/// <see cref="RunDirectory"/> and reports how the run ended; the host then writes the final
/// status (<see cref="RunDirectory.MarkComplete"/> etc.), so the runner never marks the run itself.
/// Bad input found while running (a missing data file) is thrown as <see cref="InputException"/>;
/// the host marks the run failed and reports it.
/// </summary>
public interface IExperimentRunner
{
    /// <summary>
    /// Trains one run of <paramref name="config"/> into <paramref name="directory"/> and reports how
    /// it ended (the host records the status); bad input is thrown as <see cref="InputException"/>
    /// or <see cref="ConfigException"/>.
    /// </summary>
    RunResult Run(ExperimentConfig config, RunDirectory directory, RunContext context);
}

/// <summary>
/// The one place that turns a config into a training run: data (noise injected once), model,
/// optimizer, schedule, and the components, each from its own keys; combinations that make no
/// sense are refused here with one line naming both keys. Then the <see cref="Trainer"/> runs it.
/// Adding a probe = one new callback class plus one line in <see cref="Probes"/>.
/// </summary>
public sealed class ExperimentRunner : IExperimentRunner
{
    /// <summary>The probes: each looks at the config and the built run and returns its callback, or null when off.</summary>
    internal static IReadOnlyList<Func<ExperimentConfig, Built, ITrainingCallback?>> Probes { get; } =
    [
        (c, _) => c.ProbeNeuronNorms ? new NeuronNormHook() : null,
        (c, _) => c.ProbeSpectralEvery > 0 ? new SpectralTrainerHook(c.ProbeSpectralEvery, c.Seed) : null,
        (c, b) => c.ProbeActivationsEvery > 0 ? ActivationProbeFor(c, b) : null,
        (c, _) => c.ProbePhases ? new PhaseDetectionHook(c.ProbePhaseRise, c.ProbePhaseFall, c.ProbePhaseSmooth) : null,
        (c, b) => c.ProbeLearningEvents ? LearningEventsFor(c, b) : null,
        (c, b) => c.ProbeLinearized ? LinearisedTwinFor(c, b) : null,
        (c, b) => c.ProbeHessianEvery > 0 ? HessianProbeFor(c, b) : null,
    ];

    /// <summary>What the probes' factories may look at.</summary>
    internal sealed record Built(PreparedData Data, Model Model);

    /// <inheritdoc/>
    public RunResult Run(ExperimentConfig config, RunDirectory directory, RunContext context)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(directory);
        ArgumentNullException.ThrowIfNull(context);
        var setup = Build(config, context.DataDir);
        directory.Publish(); // data and model are ready: a run replacing an older one (--overwrite) takes its place now
        return new Trainer().Run(setup, directory, context);
    }

    /// <summary>Builds everything a run of <paramref name="config"/> trains with (loads the data).</summary>
    public static TrainingSetup Build(ExperimentConfig config, string? dataDir)
    {
        ArgumentNullException.ThrowIfNull(config);
        var c = config;
        if (c.EarlyStopPatience > 0 && c.DataValFraction == 0)
            throw new ConfigException("early_stop.patience", "needs a validation split (data.val_fraction > 0)");
        if (c.EarlyStopSaveBest && c.DataValFraction == 0)
            throw new ConfigException("early_stop.save_best", "needs a validation split (data.val_fraction > 0)");
        if (c.Threads > 0)
            Blas.Threads = c.Threads; // before the data is prepared: normalisation and synthetic sets use BLAS too

        // Data: loaded, subset, noise injected once from its own seed, split, normalised.
        var data = ExperimentSetup.PrepareData(c, dataDir);
        var train = data.Train;
        if (train.Count < c.BatchSize)
            throw new ConfigException("batch_size", $"{c.BatchSize} is larger than the training set ({train.Count} samples)");
        var augment = AugmentationFor(c, train);
        bool regression = train.NumClasses == 0;
        if (regression && c.LossKind != "mse")
            throw new ConfigException("loss.kind", $"data set {c.DataName} is a regression set; use mse");

        var model = ExperimentSetup.CreateModel(c, train);
        var optimizer = ExperimentSetup.CreateOptimizer(c, model.Parameters());
        var batchesPerEpoch = (train.Count + c.BatchSize - 1) / c.BatchSize;
        var built = new Built(data, model);

        // Probes first (their metrics columns come first), then the step components that also report.
        var callbacks = new List<ITrainingCallback>();
        foreach (var probe in Probes)
        {
            if (probe(c, built) is { } callback)
                callbacks.Add(callback);
        }
        var targets = new List<ITargetStep>();
        if (augment is not null)
            targets.Add(augment); // first: the features are final before any other component looks at the batch
        if (c.LabelNoiseKind != "none")
        {
            var step = LabelNoiseFor(c, train);
            targets.Add(step);
            callbacks.Add(step);
        }
        var (loss, weightings, gradientWeighting) = RobustFor(c, built, optimizer, callbacks);
        var sam = c.SamRho > 0 ? new SharpnessAware(new Sam(optimizer, (float)c.SamRho, c.SamAdaptive, (float)c.SamEta)) : null;
        return new TrainingSetup
        {
            Options = Options(c),
            Data = data,
            Model = model,
            Optimizer = optimizer,
            Schedule = ExperimentSetup.CreateSchedule(c, batchesPerEpoch),
            Targets = targets,
            Loss = loss,
            Weightings = weightings,
            GradientWeighting = gradientWeighting,
            Sam = sam,
            Callbacks = callbacks,
        };
    }

    /// <summary>The trainer's settings of a config.</summary>
    public static TrainingOptions Options(ExperimentConfig c)
    {
        ArgumentNullException.ThrowIfNull(c);
        return new TrainingOptions
        {
            Name = c.Name,
            Epochs = c.Epochs,
            BatchSize = c.BatchSize,
            LearningRate = (float)c.OptimLr,
            EvalEverySteps = c.EvalEverySteps,
            CheckpointEvery = c.CheckpointEvery,
            CheckpointEverySteps = c.CheckpointEverySteps,
            EarlyStopPatience = c.EarlyStopPatience,
            Threads = c.Threads,
            Seed = c.Seed,
            EvalTrainSamples = c.EvalTrainSamples,
            LossKind = c.LossKind == "mse" ? LossKind.Mse : LossKind.CrossEntropy,
            LogSpacedEvaluation = c.EvalSchedule == "log",
            NoisyFitFactor = c.EarlyStopNoisyFitFactor,
            SaveBestValCheckpoint = c.EarlyStopSaveBest,
            Fingerprint = c.ToYaml(),
            CheckpointMetadata = new Dictionary<string, string> { ["model.kind"] = c.ModelKind },
        };
    }

    /// <summary>The batch augmentation of a config (null when data.augment is none); images only.</summary>
    private static Augmentation? AugmentationFor(ExperimentConfig c, Dataset train)
    {
        if (c.DataAugment == "none")
            return null;
        if (c.DataAugmentPadding < 0)
            throw new ConfigException("data.augment_padding", $"expected a padding ≥ 0, got {c.DataAugmentPadding}");
        if (train.SampleShape is not [_, _, _])
            throw new ConfigException("data.augment", $"{c.DataAugment} needs an image data set (mnist, fashion-mnist, cifar10); {c.DataName} has flat samples of shape [{string.Join(", ", train.SampleShape)}]");
        return new Augmentation(c.DataAugment == "crop_flip" ? AugmentKind.CropFlip : AugmentKind.Crop, train.SampleShape, c.DataAugmentPadding, c.Seed);
    }

    private static LabelNoiseStep LabelNoiseFor(ExperimentConfig c, Dataset train)
    {
        bool regression = train.NumClasses == 0;
        bool classification = c.LabelNoiseKind == "classification";
        if (classification && regression)
            throw new ConfigException("label_noise.kind", $"classification label noise on a regression data set ({c.DataName}); use regression");
        if (!classification && !regression)
            throw new ConfigException("label_noise.kind", $"regression label noise on a classification data set ({c.DataName}); use classification");
        if (!(c.LabelNoiseP is >= 0 and <= 1))
            throw new ConfigException("label_noise.p", $"expected a probability in [0, 1], got {c.LabelNoiseP}");
        if (!(c.LabelNoiseSigma >= 0) || double.IsInfinity(c.LabelNoiseSigma))
            throw new ConfigException("label_noise.sigma", $"expected a finite value ≥ 0, got {c.LabelNoiseSigma}");
        var schedule = c.LabelNoiseSchedule switch
        {
            "periodic" when c.LabelNoisePeriod <= 0 => throw new ConfigException("label_noise.period", $"expected a positive number of steps, got {c.LabelNoisePeriod}"),
            "periodic" => StepNoiseSchedule.Periodic(c.LabelNoisePeriod),
            "until" when c.LabelNoiseOffAfter < 0 => throw new ConfigException("label_noise.off_after", $"expected a step ≥ 0, got {c.LabelNoiseOffAfter}"),
            "until" => StepNoiseSchedule.Until(c.LabelNoiseOffAfter),
            _ => StepNoiseSchedule.Constant,
        };
        var options = new LabelNoiseSgdOptions(
            classification ? LabelNoiseSgdKind.Classification : LabelNoiseSgdKind.Regression,
            c.LabelNoiseP, c.LabelNoiseSigma,
            c.LabelNoiseDistribution == "gaussian" ? StepNoiseDistribution.Gaussian : StepNoiseDistribution.PlusMinus,
            schedule, c.Seed);
        return new LabelNoiseStep(options, train, c.BatchSize);
    }

    /// <summary>The robust loss, selection and per-sample weighting of a config (all null/empty when none is on), and the robust report.</summary>
    private static (ILossStep? Loss, List<ISampleWeighting> Weightings, IGradientWeighting? Gradient) RobustFor(
        ExperimentConfig c, Built built, Optimizer optimizer, List<ITrainingCallback> callbacks)
    {
        var weightings = new List<ISampleWeighting>();
        bool on = c.RobustLoss != "ce" || c.PruneKind != "none" || c.SelectKind != "none" || c.DetectionEnabled || c.DetectionSuspects > 0;
        if (!on)
            return (null, weightings, null);
        string key = c.PruneKind != "none" ? "prune.kind" : c.SelectKind != "none" ? "select.kind" : c.RobustLoss != "ce" ? "robust.loss" : "detection.enabled";
        var (train, model) = (built.Data.Train, built.Model);
        // The combination with regression label noise first: its message names both keys (a
        // regression run would otherwise be refused for its data set, naming only one).
        if (c.LabelNoiseKind == "regression")
            throw new ConfigException(key, "cannot be combined with label_noise.kind=regression (robust training is for class labels)");
        if (train.NumClasses == 0)
            throw new ConfigException(key, "robust training needs a classification data set");
        if (c.LossKind != "cross_entropy")
            throw new ConfigException("loss.kind", $"{key} replaces the loss with a robust one; keep loss.kind=cross_entropy");

        var spec = CreateSpec(c, train.NumClasses, out bool estimateT);
        var estimate = estimateT ? new TransitionEstimate(c.RobustLoss == "backward", c.RobustEstimateAfter, c.RobustAnchorPercentile) : null;
        var loss = new RobustLoss(spec, estimate, train, model);
        callbacks.Add(loss);
        var forget = new ForgetSchedule(c.SelectForgetRate, c.SelectForgetEpochs);
        if (c.SelectKind == "small_loss")
            weightings.Add(new SmallLossSelection(forget, loss, c.BatchSize));
        else if (c.SelectKind == "co_teaching")
        {
            var peer = ExperimentSetup.CreateModel(c, train);
            Init.Apply(peer, c.ModelInit == "ntk" ? InitKind.Ntk : InitKind.Default, Rng.ForPurpose(c.Seed, "init-co-teaching-peer"), (float)c.ModelInitScale);
            weightings.Add(new CoTeaching(forget, loss, peer, ExperimentSetup.CreateOptimizer(c, peer.Parameters()), optimizer, c.BatchSize));
        }
        PerSampleWeighting? perSample = null;
        // Under BatchNorm detection goes on without the gradient-norm score; pruning needs it.
        bool batchNorm = model.NamedModules().Any(m => m.Module is BatchNorm);
        if (c.PruneKind != "none" || (c.DetectionEnabled || c.DetectionSuspects > 0) && !batchNorm)
        {
            if (batchNorm)
                throw new ConfigException("prune.kind", "needs per-sample gradients, which are undefined under BatchNorm in training (it mixes the samples of a batch); set model.norm: group (GroupNorm keeps samples apart)");
            var gradients = new PerSampleGradients(model, c.PerSampleConv switch
            {
                "gram" => ConvNormMethod.Gram,
                "materialise" => ConvNormMethod.Materialise,
                _ => ConvNormMethod.Auto,
            });
            var rule = c.PruneKind == "none" ? null
                : new GradientPruning(c.PruneStat == "median_iqr" ? PruneStatistic.MedianIqr : PruneStatistic.MeanStd,
                    c.PruneKind == "soft" ? PruneWeighting.Soft : PruneWeighting.Truncate, (float)c.PruneAlpha, (float)c.PruneBeta);
            perSample = new PerSampleWeighting(gradients, rule, c.PerSampleMode == "naive", c.BatchSize);
            loss.PerSample = gradients;
        }
        callbacks.Add(new RobustReport(new RobustSettings(c.RobustLoss, c.PruneKind, c.SelectKind, c.PerSampleMode, c.DetectionEnabled, c.DetectionSuspects, c.DetectionLedger),
            train, loss, perSample is not null, batchNorm ? "per-sample gradients are undefined under BatchNorm in training mode (it mixes the samples of a batch); model.norm: group has them" : null));
        return (loss, weightings, perSample);
    }

    /// <summary>The loss spec of a config; T validated (size; invertible for backward correction).</summary>
    internal static RobustLossSpec CreateSpec(ExperimentConfig c, int classes, out bool estimateT)
    {
        ArgumentNullException.ThrowIfNull(c);
        estimateT = false;
        float[]? matrix = null;
        if (c.RobustLoss is "forward" or "backward")
        {
            if (c.RobustTransition.Count == 0)
                estimateT = true;
            else
            {
                if (c.RobustTransition.Count != classes)
                    throw new ConfigException("robust.T", $"must be {classes}×{classes} for this data set, got {c.RobustTransition.Count} rows");
                matrix = c.RobustTransition.SelectMany(r => r.Select(v => (float)v)).ToArray();
                if (c.RobustLoss == "backward")
                    matrix = TransitionMatrix.Inverse(matrix, classes) ?? throw new ConfigException("robust.T", "is singular; backward correction needs an invertible T");
            }
        }
        var kind = c.RobustLoss switch
        {
            "gce" => RobustLossKind.Gce,
            "sce" => RobustLossKind.Sce,
            "mae" => RobustLossKind.Mae,
            "nce_rce" => RobustLossKind.NceRce,
            "label_smoothing" => RobustLossKind.LabelSmoothing,
            "bootstrap_soft" => RobustLossKind.BootstrapSoft,
            "bootstrap_hard" => RobustLossKind.BootstrapHard,
            "forward" => estimateT ? RobustLossKind.CrossEntropy : RobustLossKind.ForwardCorrection,
            "backward" => estimateT ? RobustLossKind.CrossEntropy : RobustLossKind.BackwardCorrection,
            _ => RobustLossKind.CrossEntropy,
        };
        var (alpha, beta) = kind switch
        {
            RobustLossKind.NceRce => (c.RobustNceAlpha, c.RobustRceBeta),
            RobustLossKind.Sce => (c.RobustSceAlpha, c.RobustSceBeta),
            _ => (1.0, c.RobustBootstrapBeta),
        };
        return new RobustLossSpec(kind, (float)c.RobustGceQ, (float)alpha, (float)beta, (float)c.RobustSmoothing, matrix);
    }

    private static LearningEvents LearningEventsFor(ExperimentConfig c, Built b) => b.Data.Train.NumClasses == 0
        ? throw new ConfigException("probe.learning_events", $"learning events need a classification data set; {c.DataName} is a regression set")
        : new LearningEvents();

    private static LinearisedTwin LinearisedTwinFor(ExperimentConfig c, Built b)
    {
        if (b.Model is not Mlp)
            throw new ConfigException("probe.linearized", $"the linearised twin is for MLPs; model.kind={c.ModelKind} is not one (use model.kind=mlp)");
        if (TangentNet.Unsupported(b.Model) is { } why)
            throw new ConfigException("probe.linearized", $"cannot linearise this MLP: {why} (model.dropout must be 0)");
        if (c.SamRho > 0)
            throw new ConfigException("probe.linearized", "cannot be combined with sam.rho > 0 (the twin takes the optimizer's plain steps)");
        if (c.RobustLoss != "ce" || c.PruneKind != "none" || c.SelectKind != "none")
            throw new ConfigException("probe.linearized", "cannot be combined with robust.loss, prune.kind or select.kind (the twin trains on the plain loss)");
        if (c.ProbeKernelSetSize > b.Data.Train.Count)
            throw new ConfigException("probe.kernel_set_size", $"{c.ProbeKernelSetSize} is larger than the training set ({b.Data.Train.Count} samples)");
        if (!(c.ProbeLazyThreshold > 0))
            throw new ConfigException("probe.lazy_threshold", $"expected a positive kernel distance, got {c.ProbeLazyThreshold}");
        return new LinearisedTwin(new LinearisedTwinOptions(c.ProbeKernelSetSize, c.ProbeLazyThreshold, c.Seed, c.LossKind == "mse" ? LossKind.Mse : LossKind.CrossEntropy),
            parameters => ExperimentSetup.CreateOptimizer(c, parameters));
    }

    private static HessianSpectrumProbe HessianProbeFor(ExperimentConfig c, Built b)
    {
        if (TangentNet.Unsupported(b.Model) is { } why)
            throw new ConfigException("probe.hessian_every", $"exact Hessian-vector products cover model.kind mlp, two_layer_linear and small_cnn (without dropout); model.kind={c.ModelKind}: {why}");
        if (c.ProbeHessianTopK > c.ProbeHessianLanczosSteps)
            throw new ConfigException("probe.hessian_top_k", $"{c.ProbeHessianTopK} is more than probe.hessian_lanczos_steps ({c.ProbeHessianLanczosSteps}) Lanczos steps give");
        return new HessianSpectrumProbe(new HessianSpectrumOptions(c.ProbeHessianEvery, c.ProbeHessianTopK, c.ProbeHessianVectors, c.ProbeHessianLanczosSteps,
            c.ProbeHessianSamples, c.Seed, c.LossKind == "mse" ? LossKind.Mse : LossKind.CrossEntropy));
    }

    private static ActivationProbe ActivationProbeFor(ExperimentConfig c, Built b)
    {
        var train = b.Data.Train;
        if (train.NumClasses == 0)
            throw new ConfigException("probe.activations_every", $"the activation probe needs a classification data set; {c.DataName} is a regression set");
        if (c.ProbeSetSize > train.Count)
            throw new ConfigException("probe.set_size", $"{c.ProbeSetSize} is larger than the training set ({train.Count} samples)");
        int layers = b.Model.NamedModules().Count(m => m.Module is Activation);
        if (layers == 0)
            throw new ConfigException("probe.activations_every", $"model.kind={c.ModelKind} has no hidden activation layers to probe");
        foreach (int l in c.ProbeLayers)
        {
            if (l >= layers)
                throw new ConfigException("probe.layers", $"layer {l} does not exist; the model has {layers} hidden activation layers (0..{layers - 1})");
        }
        if (c.ProbeAblate != "none")
        {
            // Every probed layer must have the units to ablate: their widths from one forward of one sample.
            var widths = Activations(b.Model, train);
            foreach (int l in c.ProbeLayers.Count == 0 ? Enumerable.Range(0, layers) : c.ProbeLayers)
            {
                if (c.ProbeAblateUnits > widths[l])
                    throw new ConfigException("probe.ablate_units", $"{c.ProbeAblateUnits} units to ablate, but hidden activation layer {l} has {widths[l]}");
            }
        }
        return new ActivationProbe(new ActivationProbeOptions(c.ProbeActivationsEvery, c.ProbeSetSize, c.ProbeLayers, c.Seed, c.Epochs)
        {
            TopK = c.ProbeTopK,
            MassiveAbs = c.ProbeMassiveAbs,
            MassiveRatio = c.ProbeMassiveRatio,
            Ablate = c.ProbeAblate,
            AblateUnits = c.ProbeAblateUnits,
            AblateTestSamples = c.ProbeAblateTestSamples,
        });
    }

    /// <summary>Units per sample of each hidden activation module (one evaluation-mode forward of one training sample).</summary>
    private static int[] Activations(Model model, Dataset train)
    {
        var modules = model.NamedModules().Where(m => m.Module is Activation).Select(m => m.Module).ToArray();
        var widths = new int[modules.Length];
        var hooks = new ForwardHook[modules.Length];
        for (int i = 0; i < modules.Length; i++)
        {
            int slot = i;
            hooks[i] = (_, _, output) => widths[slot] = output.Length / output.Shape[0];
            modules[i].AddForwardHook(hooks[i]);
        }
        bool training = model.Training;
        model.SetTraining(false);
        try
        {
            var x = new Tensor(1, train.FeatureLength);
            train.Sample(0).CopyTo(x.Span);
            model.Forward(new Autograd.Tape(recording: false), x);
        }
        finally
        {
            for (int i = 0; i < modules.Length; i++)
                modules[i].RemoveForwardHook(hooks[i]);
            model.SetTraining(training);
        }
        return widths;
    }
}

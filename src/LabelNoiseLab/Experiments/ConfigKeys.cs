using System.Globalization;
using static LabelNoiseLab.Experiments.ConfigTypes;

namespace LabelNoiseLab.Experiments;

/// <summary>
/// The single table of config keys. To add a key: add a property to <see cref="ExperimentConfig"/>
/// and one line here (name, type, default, getter, setter, check, description). Loading,
/// <c>--set</c>, validation, <see cref="ExperimentConfig.ToYaml"/> and equality all follow the table;
/// a test checks that every property has exactly one line.
/// </summary>
public static class ConfigKeys
{
    /// <summary>Every key, in table order (the order of <see cref="ExperimentConfig.ToYaml"/> within a section).</summary>
    public static IReadOnlyList<ConfigKey> All { get; } =
    [
        Key("name", Text, "run", c => c.Name, (c, v) => c with { Name = v }, SafeName, "run name; the default run directory is runs/<name>-<timestamp>"),
        Key("seed", Int, 0, c => c.Seed, (c, v) => c with { Seed = v }, null, "seed of the initialisation and shuffling generators"),
        Key("epochs", Int, 20, c => c.Epochs, (c, v) => c with { Epochs = v }, AtLeast(1), "passes over the training set"),
        Key("batch_size", Int, 128, c => c.BatchSize, (c, v) => c with { BatchSize = v }, AtLeast(1), "mini-batch size"),
        Key("eval_every_steps", Int, 0, c => c.EvalEverySteps, (c, v) => c with { EvalEverySteps = v }, AtLeast(0), "evaluate every N steps as well as after each epoch; 0 = per epoch only"),
        Key("checkpoint_every", Int, 0, c => c.CheckpointEvery, (c, v) => c with { CheckpointEvery = v }, AtLeast(0), "checkpoint every N epochs; 0 = only the final one"),
        Key("checkpoint_every_steps", Int, 0, c => c.CheckpointEverySteps, (c, v) => c with { CheckpointEverySteps = v }, AtLeast(0), "also checkpoint every N steps, inside epochs too (resume continues from that step); 0 = off"),
        Key("threads", Int, 0, c => c.Threads, (c, v) => c with { Threads = v }, AtLeast(0), "worker threads; 0 = all cores"),

        Key("data.name", Choice("fashion-mnist", "mnist", "cifar10", "csv", "npy", "gaussian-mixture", "linear-teacher"), "fashion-mnist", c => c.DataName, (c, v) => c with { DataName = v }, null, "data set"),
        Key("data.path", Text, "", c => c.DataPath, (c, v) => c with { DataPath = v }, null, "file for data.name=csv or npy (.npz, or .npy with labels.npy beside it; relative to --data-dir if not absolute); unused otherwise"),
        Key("data.test_path", Text, "", c => c.DataTestPath, (c, v) => c with { DataTestPath = v }, null, "csv, npy: the test file (same format as data.path); empty = hold out data.test_fraction of data.path"),
        Key("data.test_fraction", Number, 0.2, c => c.DataTestFraction, (c, v) => c with { DataTestFraction = v }, Range(0, 1), "csv, npy without data.test_path: seeded fraction of data.path held out as the test set"),
        Key("data.noisy_labels", Text, "", c => c.DataNoisyLabels, (c, v) => c with { DataNoisyLabels = v }, null, "real noisy labels (one integer per line, or .npy) for the training set as loaded: they become the given labels, the loaded labels stay as the truth; empty = off"),
        Key("data.exclude", Text, "", c => c.DataExclude, (c, v) => c with { DataExclude = v }, null, "a label_issues.csv: drop its flagged indices from the training set (after the noise, before the validation split); empty = off"),
        Key("data.relabel", Text, "", c => c.DataRelabel, (c, v) => c with { DataRelabel = v }, null, "a label_issues.csv: give its flagged samples their suggested_label; empty = off"),
        Key("data.subset", Int, 0, c => c.DataSubset, (c, v) => c with { DataSubset = v }, AtLeast(0), "train on a seeded, class-stratified subset of N training samples (drawn before the label noise, class balance kept); 0 = all"),
        Key("data.samples", Int, 1000, c => c.DataSamples, (c, v) => c with { DataSamples = v }, AtLeast(1), "synthetic sets: training samples generated"),
        Key("data.test_samples", Int, 1000, c => c.DataTestSamples, (c, v) => c with { DataTestSamples = v }, AtLeast(1), "synthetic sets: test samples generated"),
        Key("data.classes", Int, 10, c => c.DataClasses, (c, v) => c with { DataClasses = v }, AtLeast(2), "gaussian-mixture: number of classes"),
        Key("data.dimension", Int, 20, c => c.DataDimension, (c, v) => c with { DataDimension = v }, AtLeast(1), "synthetic sets: feature dimension"),
        Key("data.separation", Number, 3.0, c => c.DataSeparation, (c, v) => c with { DataSeparation = v }, AtLeast(0.0), "gaussian-mixture: norm of each class mean (unit noise)"),
        Key("data.sparsity", Int, 0, c => c.DataSparsity, (c, v) => c with { DataSparsity = v }, AtLeast(0), "linear-teacher: nonzeros of the teacher θ* (0 = dense)"),
        Key("data.target_noise", Number, 0.0, c => c.DataTargetNoise, (c, v) => c with { DataTargetNoise = v }, AtLeast(0.0), "linear-teacher: standard deviation of the target noise"),
        Key("data.val_fraction", Number, 0.0, c => c.DataValFraction, (c, v) => c with { DataValFraction = v }, Range(0, 1, upperOpen: true), "fraction of the training set held out for validation"),
        Key("data.normalize", Choice("none", "standardize"), "none", c => c.DataNormalize, (c, v) => c with { DataNormalize = v }, null, "feature normalisation (statistics from the training split)"),
        Key("data.csv_label_column", Text, "label", c => c.DataCsvLabelColumn, (c, v) => c with { DataCsvLabelColumn = v }, null, "label column of a CSV file (header name)"),
        Key("data.augment", Choice("none", "crop", "crop_flip"), "none", c => c.DataAugment, (c, v) => c with { DataAugment = v }, null, "image sets: augment each training batch (never evaluation or test data) with random crops of the zero-padded images (crop), and horizontal flips with probability 0.5 (crop_flip); its own generator from seed"),
        Key("data.augment_padding", Int, 4, c => c.DataAugmentPadding, (c, v) => c with { DataAugmentPadding = v }, AtLeast(0), "data.augment: zero padding on each side before the random H×W crop"),

        Key("audit.folds", Int, 5, c => c.AuditFolds, (c, v) => c with { AuditFolds = v }, AtLeast(2), "lnlab audit: cross-validation folds, stratified by given label"),
        Key("audit.fold", Int, 0, c => c.AuditFold, (c, v) => c with { AuditFold = v }, AtLeast(0), "train without fold i (1..audit.folds) of the training set, which lnlab audit predicts out of sample; 0 = off"),
        Key("audit.filter", Choice("prune_by_noise_rate", "prune_by_class", "both", "off_diagonal"), "prune_by_noise_rate", c => c.AuditFilter, (c, v) => c with { AuditFilter = v }, null, "lnlab audit: confident learning's rule for the flagged set (Northcutt et al. 2021)"),
        Key("audit.rank", Choice("self_confidence", "normalized_margin", "entropy"), "self_confidence", c => c.AuditRank, (c, v) => c with { AuditRank = v }, null, "lnlab audit: the score of label_issues.csv (high = more likely wrong)"),

        Key("noise.kind", Choice("none", "symmetric", "pairflip", "asymmetric", "instance", "transition"), "none", c => c.NoiseKind, (c, v) => c with { NoiseKind = v }, null, "label noise model"),
        Key("noise.rate", Number, 0.0, c => c.NoiseRate, (c, v) => c with { NoiseRate = v }, Range(0, 1), "fraction of labels corrupted"),
        Key("noise.seed", Int, 0, c => c.NoiseSeed, (c, v) => c with { NoiseSeed = v }, null, "seed of the noise generator (separate from seed)"),
        Key("noise.include_true", Bool, false, c => c.NoiseIncludeTrue, (c, v) => c with { NoiseIncludeTrue = v }, null, "symmetric noise may draw the true class as the new label"),
        Key("noise.map", ClassMap, [], c => c.NoiseMap, (c, v) => c with { NoiseMap = v }, null, "asymmetric noise: true class -> given class, e.g. \"0:6,6:0\"; empty = the data set's built-in map"),
        Key("noise.T", Matrix, [], c => c.NoiseTransition, (c, v) => c with { NoiseTransition = v }, StochasticRows, "transition noise: row-stochastic matrix, rows by ';', entries by ','"),

        Key("model.kind", Choice("mlp", "two_layer_linear", "small_cnn", "resnet", "cnn9", "vit"), "mlp", c => c.ModelKind, (c, v) => c with { ModelKind = v }, null, "model (resnet: CIFAR ResNet of He et al.; cnn9: the Co-teaching 9-layer CNN; vit: a small Vision Transformer; all three need image data)"),
        Key("model.hidden", IntList, [512, 512], c => c.ModelHidden, (c, v) => c with { ModelHidden = v }, PositiveWidths, "hidden widths"),
        Key("model.activation", Choice("relu", "gelu", "tanh", "erf", "identity"), "relu", c => c.ModelActivation, (c, v) => c with { ModelActivation = v }, null, "activation"),
        Key("model.init", Choice("default", "ntk"), "default", c => c.ModelInit, (c, v) => c with { ModelInit = v }, null, "initialisation scheme"),
        Key("model.init_scale", Number, 1.0, c => c.ModelInitScale, (c, v) => c with { ModelInitScale = v }, Positive, "multiplier on the initial weights"),
        Key("model.dropout", Number, 0.0, c => c.ModelDropout, (c, v) => c with { ModelDropout = v }, Range(0, 1, upperOpen: true), "dropout probability"),
        Key("model.depth", Int, 20, c => c.ModelDepth, (c, v) => c with { ModelDepth = v }, v => v >= 8 && (v - 2) % 6 == 0 ? null : "must be 6n + 2 with n ≥ 1 (8, 14, 20, 32, 44, 56, ...)", "resnet: depth 6n + 2"),
        Key("model.width", Number, 0.0, c => c.ModelWidth, (c, v) => c with { ModelWidth = v }, AtLeast(0.0), "resnet, cnn9: channel multiplier (resnet 16/32/64 × width, cnn9 128/256/512 × width); 0 = the kind's default (resnet 1, cnn9 0.25)"),
        Key("model.norm", Choice("batch", "group"), "batch", c => c.ModelNorm, (c, v) => c with { ModelNorm = v }, null, "resnet, cnn9: normalisation after each convolution (batch: BatchNorm2d; group: GroupNorm, per sample)"),
        Key("model.patch", Int, 7, c => c.ModelPatch, (c, v) => c with { ModelPatch = v }, AtLeast(1), "vit: patch side p (must divide the image side; 7 or 4 for 28×28)"),
        Key("model.dim", Int, 64, c => c.ModelDim, (c, v) => c with { ModelDim = v }, AtLeast(1), "vit: token dimension D"),
        Key("model.vit_depth", Int, 4, c => c.ModelVitDepth, (c, v) => c with { ModelVitDepth = v }, AtLeast(1), "vit: number of transformer blocks"),
        Key("model.heads", Int, 4, c => c.ModelHeads, (c, v) => c with { ModelHeads = v }, AtLeast(1), "vit: attention heads (must divide model.dim)"),
        Key("model.mlp_ratio", Number, 4.0, c => c.ModelMlpRatio, (c, v) => c with { ModelMlpRatio = v }, Positive, "vit: MLP hidden width = round(dim × mlp_ratio)"),
        Key("model.pool", Choice("cls", "mean"), "cls", c => c.ModelPool, (c, v) => c with { ModelPool = v }, null, "vit: cls (a class token, pooled) or mean (no class token, mean over the patch tokens)"),

        Key("loss.kind", Choice("cross_entropy", "mse"), "cross_entropy", c => c.LossKind, (c, v) => c with { LossKind = v }, null, "training loss"),

        Key("optim.kind", Choice("sgd", "adam", "adamw"), "sgd", c => c.OptimKind, (c, v) => c with { OptimKind = v }, null, "optimizer"),
        Key("optim.lr", Number, 0.01, c => c.OptimLr, (c, v) => c with { OptimLr = v }, Positive, "learning rate"),
        Key("optim.momentum", Number, 0.0, c => c.OptimMomentum, (c, v) => c with { OptimMomentum = v }, Range(0, 1, upperOpen: true), "SGD momentum"),
        Key("optim.nesterov", Bool, false, c => c.OptimNesterov, (c, v) => c with { OptimNesterov = v }, null, "Nesterov momentum (SGD)"),
        Key("optim.weight_decay", Number, 0.0, c => c.OptimWeightDecay, (c, v) => c with { OptimWeightDecay = v }, AtLeast(0.0), "weight decay (L2 for sgd/adam, decoupled for adamw)"),
        Key("optim.betas", NumberList, [0.9, 0.999], c => c.OptimBetas, (c, v) => c with { OptimBetas = v }, Betas, "Adam betas [beta1, beta2]"),
        Key("optim.eps", Number, 1e-8, c => c.OptimEps, (c, v) => c with { OptimEps = v }, Positive, "Adam epsilon"),

        Key("schedule.kind", Choice("constant", "step", "cosine", "inverse_sqrt"), "constant", c => c.ScheduleKind, (c, v) => c with { ScheduleKind = v }, null, "learning-rate schedule"),
        Key("schedule.step_size", Int, 10, c => c.ScheduleStepSize, (c, v) => c with { ScheduleStepSize = v }, AtLeast(1), "step schedule: epochs between decays"),
        Key("schedule.gamma", Number, 0.1, c => c.ScheduleGamma, (c, v) => c with { ScheduleGamma = v }, Positive, "step schedule: decay factor"),
        Key("schedule.warmup", Int, 0, c => c.ScheduleWarmup, (c, v) => c with { ScheduleWarmup = v }, AtLeast(0), "linear warm-up steps"),

        Key("early_stop.patience", Int, 0, c => c.EarlyStopPatience, (c, v) => c with { EarlyStopPatience = v }, AtLeast(0), "stop after N evaluations without a better validation loss; 0 = never"),
        Key("eval.train_samples", Int, 5000, c => c.EvalTrainSamples, (c, v) => c with { EvalTrainSamples = v }, AtLeast(0), "training samples scored at each evaluation (a fixed random subset, same clean/noisy mix); 0 = all"),

        Key("label_noise.kind", Choice("none", "classification", "regression"), "none", c => c.LabelNoiseKind, (c, v) => c with { LabelNoiseKind = v }, null, "label-noise SGD: fresh label noise at every step (classification: redraw labels; regression: add ε to targets)"),
        Key("label_noise.p", Number, 0.5, c => c.LabelNoiseP, (c, v) => c with { LabelNoiseP = v }, Range(0, 1), "classification: probability that a sample's label is redrawn uniformly from all classes at a step"),
        Key("label_noise.sigma", Number, 1.0, c => c.LabelNoiseSigma, (c, v) => c with { LabelNoiseSigma = v }, AtLeast(0.0), "regression: noise level σ"),
        Key("label_noise.distribution", Choice("sign", "gaussian"), "sign", c => c.LabelNoiseDistribution, (c, v) => c with { LabelNoiseDistribution = v }, null, "regression: ε uniform on {-σ, +σ} (sign) or N(0, σ²)"),
        Key("label_noise.schedule", Choice("constant", "periodic", "until"), "constant", c => c.LabelNoiseSchedule, (c, v) => c with { LabelNoiseSchedule = v }, null, "when the noise is on: always; label_noise.period steps on then as many off; until step label_noise.off_after"),
        Key("label_noise.period", Int, 5000, c => c.LabelNoisePeriod, (c, v) => c with { LabelNoisePeriod = v }, AtLeast(1), "periodic schedule: steps on (and off)"),
        Key("label_noise.off_after", Int, 10000, c => c.LabelNoiseOffAfter, (c, v) => c with { LabelNoiseOffAfter = v }, AtLeast(0), "until schedule: first step without noise"),

        Key("sam.rho", Number, 0.0, c => c.SamRho, (c, v) => c with { SamRho = v }, AtLeast(0.0), "sharpness-aware minimisation around optim.kind: perturbation radius ρ; 0 = off"),
        Key("sam.adaptive", Bool, false, c => c.SamAdaptive, (c, v) => c with { SamAdaptive = v }, null, "adaptive SAM (ASAM): perturbation scaled element-wise by |w| + sam.eta"),
        Key("sam.eta", Number, 0.0, c => c.SamEta, (c, v) => c with { SamEta = v }, AtLeast(0.0), "ASAM: η in T = |w| + η"),

        Key("probe.neuron_norms", Bool, false, c => c.ProbeNeuronNorms, (c, v) => c with { ProbeNeuronNorms = v }, null, "metrics columns neuron_norm_mean/std: norms of the rows of the first weight matrix"),
        Key("probe.spectral_every", Int, 0, c => c.ProbeSpectralEvery, (c, v) => c with { ProbeSpectralEvery = v }, AtLeast(0), "spectral probe of the penultimate layer every N epochs (and at init) into spectral_epochs.csv; 0 = off"),
        Key("robust.loss", Choice("ce", "gce", "sce", "mae", "nce_rce", "label_smoothing", "bootstrap_soft", "bootstrap_hard", "forward", "backward"), "ce", c => c.RobustLoss, (c, v) => c with { RobustLoss = v }, null, "robust loss or loss correction (ce = loss.kind unchanged)"),
        Key("robust.gce_q", Number, 0.7, c => c.RobustGceQ, (c, v) => c with { RobustGceQ = v }, v => v > 0 && v <= 1 ? null : "must be in (0, 1]", "GCE exponent q"),
        Key("robust.sce_alpha", Number, 0.1, c => c.RobustSceAlpha, (c, v) => c with { RobustSceAlpha = v }, Positive, "SCE weight of CE"),
        Key("robust.sce_beta", Number, 1.0, c => c.RobustSceBeta, (c, v) => c with { RobustSceBeta = v }, Positive, "SCE weight of RCE"),
        Key("robust.nce_alpha", Number, 1.0, c => c.RobustNceAlpha, (c, v) => c with { RobustNceAlpha = v }, Positive, "NCE+RCE weight of NCE"),
        Key("robust.rce_beta", Number, 1.0, c => c.RobustRceBeta, (c, v) => c with { RobustRceBeta = v }, Positive, "NCE+RCE weight of RCE"),
        Key("robust.smoothing", Number, 0.1, c => c.RobustSmoothing, (c, v) => c with { RobustSmoothing = v }, Range(0, 1, upperOpen: true), "label smoothing epsilon"),
        Key("robust.bootstrap_beta", Number, 0.95, c => c.RobustBootstrapBeta, (c, v) => c with { RobustBootstrapBeta = v }, v => v > 0 && v <= 1 ? null : "must be in (0, 1]", "bootstrapping: weight of the given label (Reed: 0.95 soft, 0.8 hard)"),
        Key("robust.T", Matrix, [], c => c.RobustTransition, (c, v) => c with { RobustTransition = v }, StochasticRows, "loss correction: T[true][given]; empty = estimated from anchor points after robust.estimate_after epochs"),
        Key("robust.estimate_after", Int, 2, c => c.RobustEstimateAfter, (c, v) => c with { RobustEstimateAfter = v }, AtLeast(1), "loss correction with estimated T: epochs of plain CE before T is estimated"),
        Key("robust.anchor_percentile", Number, 97.0, c => c.RobustAnchorPercentile, (c, v) => c with { RobustAnchorPercentile = v }, Range(0, 100), "anchor points: percentile of p(class)"),
        Key("prune.kind", Choice("none", "truncate", "soft"), "none", c => c.PruneKind, (c, v) => c with { PruneKind = v }, null, "per-sample gradient pruning"),
        Key("prune.stat", Choice("mean_std", "median_iqr"), "mean_std", c => c.PruneStat, (c, v) => c with { PruneStat = v }, null, "per-batch centre and spread of the gradient norms"),
        Key("prune.alpha", Number, 2.0, c => c.PruneAlpha, (c, v) => c with { PruneAlpha = v }, Positive, "truncate above mu + alpha sigma"),
        Key("prune.beta", Number, 2.0, c => c.PruneBeta, (c, v) => c with { PruneBeta = v }, Positive, "truncate below mu - beta sigma"),
        Key("per_sample.mode", Choice("fast", "naive"), "fast", c => c.PerSampleMode, (c, v) => c with { PerSampleMode = v }, null, "per-sample gradient norms: in the backward (fast) or one backward per sample (naive reference)"),
        Key("per_sample.conv", Choice("auto", "gram", "materialise"), "auto", c => c.PerSampleConv, (c, v) => c with { PerSampleConv = v }, null, "convolution norms: Gram identity, materialised per sample, or the cheaper"),
        Key("select.kind", Choice("none", "small_loss", "co_teaching"), "none", c => c.SelectKind, (c, v) => c with { SelectKind = v }, null, "sample selection: keep the small-loss fraction of each batch; co_teaching: two networks, each trained on the other's small-loss samples"),
        Key("select.forget_rate", Number, 0.2, c => c.SelectForgetRate, (c, v) => c with { SelectForgetRate = v }, Range(0, 1), "forget rate tau (fraction dropped per batch at full rate)"),
        Key("select.forget_epochs", Int, 10, c => c.SelectForgetEpochs, (c, v) => c with { SelectForgetEpochs = v }, AtLeast(1), "epochs T_k over which the forget rate rises linearly to tau"),
        Key("detection.enabled", Bool, false, c => c.DetectionEnabled, (c, v) => c with { DetectionEnabled = v }, null, "noisy-label detection scores at every evaluation (detection.csv, ledger.parquet)"),
        Key("detection.suspects", Int, 0, c => c.DetectionSuspects, (c, v) => c with { DetectionSuspects = v }, AtLeast(0), "write the N most suspicious training samples to suspects.csv; 0 = none"),
        Key("detection.ledger", Bool, true, c => c.DetectionLedger, (c, v) => c with { DetectionLedger = v }, null, "with detection.enabled: write ledger.parquet (every sample's scores at every evaluation; 48 bytes a row on disk)"),
        Key("probe.activations_every", Int, 0, c => c.ProbeActivationsEvery, (c, v) => c with { ProbeActivationsEvery = v }, AtLeast(0), "activation probe (activations.csv) every N epochs and at the last; 0 = off"),
        Key("probe.set_size", Int, 500, c => c.ProbeSetSize, (c, v) => c with { ProbeSetSize = v }, AtLeast(1), "activation probe: fixed training samples, stratified by given class and clean/noisy"),
        Key("probe.layers", IntList, [], c => c.ProbeLayers, (c, v) => c with { ProbeLayers = v }, NonNegativeIndices, "activation probe: hidden activation layers by index from 0; empty = all"),
        Key("probe.phases", Bool, false, c => c.ProbePhases, (c, v) => c with { ProbePhases = v }, null, "epoch-wise double-descent phase detection on the test loss, into summary.json"),
        Key("probe.phase_smooth", Int, 5, c => c.ProbePhaseSmooth, (c, v) => c with { ProbePhaseSmooth = v }, v => v >= 1 && v % 2 == 1 ? null : "must be an odd number ≥ 1", "phase detection: centred moving-average window (evaluations) applied to the curve first; 1 = none"),
        Key("probe.phase_rise", Number, 0.1, c => c.ProbePhaseRise, (c, v) => c with { ProbePhaseRise = v }, Positive, "phase detection: relative rise of the test loss above its first minimum that counts"),
        Key("probe.phase_fall", Number, 0.1, c => c.ProbePhaseFall, (c, v) => c with { ProbePhaseFall = v }, Range(0, 1, upperOpen: true), "phase detection: relative fall below the following maximum that counts as a second descent"),
        Key("probe.learning_events", Bool, false, c => c.ProbeLearningEvents, (c, v) => c with { ProbeLearningEvents = v }, null, "per-sample learning events from every training step's forward (learning_events.csv): first epoch predicted as the given and as the true label, forgetting events"),
        Key("probe.top_k", Int, 5, c => c.ProbeTopK, (c, v) => c with { ProbeTopK = v }, AtLeast(1), "activation probe: the k largest |activations| per layer, with unit and sample (activations_topk.csv)"),
        Key("probe.massive_abs", Number, 100.0, c => c.ProbeMassiveAbs, (c, v) => c with { ProbeMassiveAbs = v }, Positive, "activation probe: a layer's top activation is massive when |a| exceeds this (Sun et al. 2024: 100) ..."),
        Key("probe.massive_ratio", Number, 1000.0, c => c.ProbeMassiveRatio, (c, v) => c with { ProbeMassiveRatio = v }, Positive, "... and its ratio to the median |activation| exceeds this (Sun et al.: about 1000)"),
        Key("probe.ablate", Choice("none", "zero", "mean"), "none", c => c.ProbeAblate, (c, v) => c with { ProbeAblate = v }, null, "activation probe: at each probe, set each layer's top probe.ablate_units units to zero or their probe-set mean and record the test loss and accuracy (ablation.csv)"),
        Key("probe.ablate_units", Int, 1, c => c.ProbeAblateUnits, (c, v) => c with { ProbeAblateUnits = v }, AtLeast(1), "activation probe: how many top units (by largest |activation| on the probe set) are ablated"),
        Key("probe.ablate_test_samples", Int, 0, c => c.ProbeAblateTestSamples, (c, v) => c with { ProbeAblateTestSamples = v }, AtLeast(0), "activation probe: the ablation is scored on the first N test samples (intact and ablated alike); 0 = all"),
        Key("early_stop.save_best", Bool, false, c => c.EarlyStopSaveBest, (c, v) => c with { EarlyStopSaveBest = v }, null, "write checkpoints/best_val.safetensors at each new lowest validation loss (the early-stopped model; needs data.val_fraction > 0)"),
        Key("eval.schedule", Choice("every", "log"), "every", c => c.EvalSchedule, (c, v) => c with { EvalSchedule = v }, null, "evaluate after every epoch, or at log-spaced epochs (1..10, 12, 15, 20, 25, 30, 40, 50, 60, 80, 100, ...) and the last"),
        Key("early_stop.noisy_fit_factor", Number, 0.0, c => c.EarlyStopNoisyFitFactor, (c, v) => c with { EarlyStopNoisyFitFactor = v }, v => v == 0 || v >= 1 ? null : "must be 0 (off) or at least 1", "stop at epoch ceil(F × E), E = first evaluated epoch with noisy_given_acc ≥ 0.99 (epochs stays the cap); 0 = off"),
        Key("probe.linearized", Bool, false, c => c.ProbeLinearized, (c, v) => c with { ProbeLinearized = v }, null, "MLPs: train the linearised model f(θ₀) + J₀(θ − θ₀) beside the network with the same optimizer and labels; metrics columns lin_train_loss, lin_test_loss, function_gap_train_clean/noisy, function_gap_test, kernel_distance; summary.json linearized.lazy_exit_step"),
        Key("probe.kernel_set_size", Int, 64, c => c.ProbeKernelSetSize, (c, v) => c with { ProbeKernelSetSize = v }, AtLeast(1), "probe.linearized: fixed random training samples the tangent kernel (all outputs) is compared on"),
        Key("probe.lazy_threshold", Number, 0.1, c => c.ProbeLazyThreshold, (c, v) => c with { ProbeLazyThreshold = v }, Positive, "probe.linearized: kernel distance 1 − ⟨K₀, K_t⟩/(‖K₀‖‖K_t‖) above which the run has left the lazy regime (lazy_exit_step)"),
        Key("probe.hessian_every", Int, 0, c => c.ProbeHessianEvery, (c, v) => c with { ProbeHessianEvery = v }, AtLeast(0), "mlp, two_layer_linear and small_cnn: Hessian of the training loss by exact forward-over-reverse products, at initialisation and every N evaluations: top-k eigenvalues (Lanczos) into hessian_eigenvalues.csv, SLQ density into hessian_density.csv; 0 = off"),
        Key("probe.hessian_top_k", Int, 3, c => c.ProbeHessianTopK, (c, v) => c with { ProbeHessianTopK = v }, AtLeast(1), "probe.hessian_every: the largest eigenvalues reported"),
        Key("probe.hessian_vectors", Int, 4, c => c.ProbeHessianVectors, (c, v) => c with { ProbeHessianVectors = v }, AtLeast(1), "probe.hessian_every: Rademacher probe vectors of the stochastic Lanczos quadrature"),
        Key("probe.hessian_lanczos_steps", Int, 30, c => c.ProbeHessianLanczosSteps, (c, v) => c with { ProbeHessianLanczosSteps = v }, AtLeast(2), "probe.hessian_every: Lanczos steps per run (top-k and each SLQ vector)"),
        Key("probe.hessian_samples", Int, 256, c => c.ProbeHessianSamples, (c, v) => c with { ProbeHessianSamples = v }, AtLeast(1), "probe.hessian_every: fixed random training samples (given labels) the loss is taken on; all when larger"),
    ];

    private static readonly Dictionary<string, ConfigKey> ByName = All.ToDictionary(k => k.Name, StringComparer.Ordinal);

    /// <summary>The key with this dotted name (<c>optim.lr</c>), or null when there is none.</summary>
    public static ConfigKey? Find(string name) => ByName.GetValueOrDefault(name);

    /// <summary>The known key nearest to an unknown one, if it is close enough to be a typo.</summary>
    public static string? Suggest(string unknown)
    {
        string last = unknown[(unknown.LastIndexOf('.') + 1)..];
        var sameLeaf = All.FirstOrDefault(k => k.Name.EndsWith("." + last, StringComparison.Ordinal) || k.Name == last);
        if (sameLeaf is not null)
            return sameLeaf.Name;
        var best = All.Select(k => (k.Name, Distance: Levenshtein(k.Name, unknown))).MinBy(p => p.Distance);
        return best.Distance <= Math.Max(2, unknown.Length / 4) ? best.Name : null;
    }

    private static ConfigKey<T> Key<T>(
        string name, ConfigType<T> type, T defaultValue,
        Func<ExperimentConfig, T> get, Func<ExperimentConfig, T, ExperimentConfig> set,
        Func<T, string?>? check, string description) =>
        new(name, type, defaultValue, get, set, check, description);

    private static Func<int, string?> AtLeast(int min) => v => v >= min ? null : $"must be at least {min}";

    private static Func<double, string?> AtLeast(double min) =>
        v => v >= min ? null : $"must be at least {min.ToString(CultureInfo.InvariantCulture)}";

    private static string? Positive(double v) => v > 0 ? null : "must be greater than 0";

    private static Func<double, string?> Range(double lo, double hi, bool upperOpen = false) =>
        v => v >= lo && (upperOpen ? v < hi : v <= hi)
            ? null
            : string.Create(CultureInfo.InvariantCulture, $"must be in [{lo}, {hi}{(upperOpen ? ")" : "]")}");

    private static string? SafeName(string s) =>
        s.Length > 0 && s.All(ch => char.IsAsciiLetterOrDigit(ch) || ch is '-' or '_' or '.') && s[0] != '.'
            ? null
            : "must be a non-empty file-name-safe name (letters, digits, '-', '_', '.')";

    private static string? PositiveWidths(IReadOnlyList<int> widths) =>
        widths.All(w => w > 0) ? null : "must be greater than 0 (every width)";

    private static string? NonNegativeIndices(IReadOnlyList<int> indices) =>
        indices.All(i => i >= 0) ? null : "must be layer indices ≥ 0";

    private static string? Betas(IReadOnlyList<double> b) =>
        b.Count == 2 && b.All(x => x >= 0 && x < 1) ? null : "must be two numbers in [0, 1)";

    private static string? StochasticRows(IReadOnlyList<IReadOnlyList<double>> t)
    {
        if (t.Count == 0)
            return null;
        if (t.Any(r => r.Count != t.Count))
            return $"must be square ({t.Count} rows)";
        if (t.Any(r => r.Any(x => x < 0 || x > 1) || Math.Abs(r.Sum() - 1) > 1e-6))
            return "must have rows of probabilities summing to 1";
        return null;
    }

    private static int Levenshtein(string a, string b)
    {
        var prev = new int[b.Length + 1];
        var cur = new int[b.Length + 1];
        for (int j = 0; j <= b.Length; j++)
            prev[j] = j;
        for (int i = 1; i <= a.Length; i++)
        {
            cur[0] = i;
            for (int j = 1; j <= b.Length; j++)
                cur[j] = Math.Min(Math.Min(cur[j - 1], prev[j]) + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1));
            (prev, cur) = (cur, prev);
        }
        return prev[b.Length];
    }
}

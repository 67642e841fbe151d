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

    /// <summary><c>name</c>: run name; the default run directory is runs/&lt;name&gt;-&lt;timestamp&gt;. Default <c>run</c>.</summary>
    public string Name { get; init; } = "";
    /// <summary><c>seed</c>: seed of the initialisation and shuffling generators. Default <c>0</c>.</summary>
    public int Seed { get; init; }
    /// <summary><c>epochs</c>: passes over the training set. Default <c>20</c>.</summary>
    public int Epochs { get; init; }
    /// <summary><c>batch_size</c>: mini-batch size. Default <c>128</c>.</summary>
    public int BatchSize { get; init; }
    /// <summary><c>eval_every_steps</c>: evaluate every N steps as well as after each epoch; 0 = per epoch only. Default <c>0</c>.</summary>
    public int EvalEverySteps { get; init; }
    /// <summary><c>checkpoint_every</c>: checkpoint every N epochs; 0 = only the final one. Default <c>0</c>.</summary>
    public int CheckpointEvery { get; init; }
    /// <summary><c>checkpoint_every_steps</c>: also checkpoint every N steps, inside epochs too (resume continues from that step); 0 = off. Default <c>0</c>.</summary>
    public int CheckpointEverySteps { get; init; }
    /// <summary><c>threads</c>: worker threads; 0 = all cores. Default <c>0</c>.</summary>
    public int Threads { get; init; }

    /// <summary><c>data.name</c>: data set; one of fashion-mnist, mnist, cifar10, csv, npy, gaussian-mixture, linear-teacher. Default <c>fashion-mnist</c>.</summary>
    public string DataName { get; init; } = "";
    /// <summary><c>data.path</c>: file for data.name=csv or npy (.npz, or .npy with labels.npy beside it; relative to --data-dir if not absolute); unused otherwise. Default empty.</summary>
    public string DataPath { get; init; } = "";
    /// <summary><c>data.subset</c>: train on a seeded, class-stratified subset of N training samples (drawn before the label noise, class balance kept); 0 = all. Default <c>0</c>.</summary>
    public int DataSubset { get; init; }
    /// <summary><c>data.samples</c>: synthetic sets: training samples generated. Default <c>1000</c>.</summary>
    public int DataSamples { get; init; }
    /// <summary><c>data.test_samples</c>: synthetic sets: test samples generated. Default <c>1000</c>.</summary>
    public int DataTestSamples { get; init; }
    /// <summary><c>data.classes</c>: gaussian-mixture: number of classes. Default <c>10</c>.</summary>
    public int DataClasses { get; init; }
    /// <summary><c>data.dimension</c>: synthetic sets: feature dimension. Default <c>20</c>.</summary>
    public int DataDimension { get; init; }
    /// <summary><c>data.separation</c>: gaussian-mixture: norm of each class mean (unit noise). Default <c>3.0</c>.</summary>
    public double DataSeparation { get; init; }
    /// <summary><c>data.sparsity</c>: linear-teacher: nonzeros of the teacher θ* (0 = dense). Default <c>0</c>.</summary>
    public int DataSparsity { get; init; }
    /// <summary><c>data.target_noise</c>: linear-teacher: standard deviation of the target noise. Default <c>0.0</c>.</summary>
    public double DataTargetNoise { get; init; }
    /// <summary><c>data.val_fraction</c>: fraction of the training set held out for validation. Default <c>0.0</c>.</summary>
    public double DataValFraction { get; init; }
    /// <summary><c>data.normalize</c>: feature normalisation (statistics from the training split); one of none, standardize. Default <c>none</c>.</summary>
    public string DataNormalize { get; init; } = "";
    /// <summary><c>data.csv_label_column</c>: label column of a CSV file (header name). Default <c>label</c>.</summary>
    public string DataCsvLabelColumn { get; init; } = "";
    /// <summary><c>data.augment</c>: image sets: augment each training batch (never evaluation or test data) with random crops of the zero-padded images (crop), and horizontal flips with probability 0.5 (crop_flip); its own generator from seed. Default <c>none</c>.</summary>
    public string DataAugment { get; init; } = "";
    /// <summary><c>data.test_path</c>: csv, npy: the test file (same format as data.path); empty = hold out data.test_fraction of data.path. Default empty.</summary>
    public string DataTestPath { get; init; } = "";
    /// <summary><c>data.test_fraction</c>: csv, npy without data.test_path: seeded fraction of data.path held out as the test set. Default <c>0.2</c>.</summary>
    public double DataTestFraction { get; init; }
    /// <summary><c>data.noisy_labels</c>: real noisy labels (one integer per line, or .npy) for the training set as loaded: they become the given labels, the loaded labels stay as the truth; empty = off. Default empty.</summary>
    public string DataNoisyLabels { get; init; } = "";
    /// <summary><c>data.exclude</c>: a label_issues.csv: drop its flagged indices from the training set (after the noise, before the validation split); empty = off. Default empty.</summary>
    public string DataExclude { get; init; } = "";
    /// <summary><c>data.relabel</c>: a label_issues.csv: give its flagged samples their suggested_label; empty = off. Default empty.</summary>
    public string DataRelabel { get; init; } = "";
    /// <summary><c>audit.folds</c>: lnlab audit: cross-validation folds, stratified by given label. Default <c>5</c>.</summary>
    public int AuditFolds { get; init; }
    /// <summary><c>audit.fold</c>: train without fold i (1..audit.folds) of the training set, which lnlab audit predicts out of sample; 0 = off. Default <c>0</c>.</summary>
    public int AuditFold { get; init; }
    /// <summary><c>audit.filter</c>: lnlab audit: confident learning's rule for the flagged set (Northcutt et al. 2021); one of prune_by_noise_rate, prune_by_class, both, off_diagonal. Default <c>prune_by_noise_rate</c>.</summary>
    public string AuditFilter { get; init; } = "";
    /// <summary><c>audit.rank</c>: lnlab audit: the score of label_issues.csv (high = more likely wrong); one of self_confidence, normalized_margin, entropy. Default <c>self_confidence</c>.</summary>
    public string AuditRank { get; init; } = "";
    /// <summary><c>data.augment_padding</c>: data.augment: zero padding on each side before the random H×W crop. Default <c>4</c>.</summary>
    public int DataAugmentPadding { get; init; }

    /// <summary><c>noise.kind</c>: label noise model; one of none, symmetric, pairflip, asymmetric, instance, transition. Default <c>none</c>.</summary>
    public string NoiseKind { get; init; } = "";
    /// <summary><c>noise.rate</c>: fraction of labels corrupted. Default <c>0.0</c>.</summary>
    public double NoiseRate { get; init; }
    /// <summary><c>noise.seed</c>: seed of the noise generator (separate from seed). Default <c>0</c>.</summary>
    public int NoiseSeed { get; init; }
    /// <summary><c>noise.include_true</c>: symmetric noise may draw the true class as the new label. Default <c>false</c>.</summary>
    public bool NoiseIncludeTrue { get; init; }
    /// <summary><c>noise.map</c>: asymmetric noise: (true class, given class) pairs sorted by true class; empty = the data set's built-in map. Default empty.</summary>
    public IReadOnlyList<KeyValuePair<int, int>> NoiseMap { get; init; } = [];
    /// <summary><c>noise.T</c>: transition noise: row-stochastic matrix T[true][given]; empty when not set. Default empty.</summary>
    public IReadOnlyList<IReadOnlyList<double>> NoiseTransition { get; init; } = [];

    /// <summary><c>model.kind</c>: model, one of mlp, two_layer_linear, small_cnn, resnet, cnn9, vit (resnet: CIFAR ResNet of He et al.; cnn9: the Co-teaching 9-layer CNN; vit: a small Vision Transformer; all three need image data). Default <c>mlp</c>.</summary>
    public string ModelKind { get; init; } = "";
    /// <summary><c>model.hidden</c>: hidden widths. Default <c>[512, 512]</c>.</summary>
    public IReadOnlyList<int> ModelHidden { get; init; } = [];
    /// <summary><c>model.activation</c>: activation; one of relu, gelu, tanh, erf, identity. Default <c>relu</c>.</summary>
    public string ModelActivation { get; init; } = "";
    /// <summary><c>model.init</c>: initialisation scheme; one of default, ntk. Default <c>default</c>.</summary>
    public string ModelInit { get; init; } = "";
    /// <summary><c>model.init_scale</c>: multiplier on the initial weights. Default <c>1.0</c>.</summary>
    public double ModelInitScale { get; init; }
    /// <summary><c>model.dropout</c>: dropout probability. Default <c>0.0</c>.</summary>
    public double ModelDropout { get; init; }
    /// <summary><c>model.depth</c>: resnet: depth 6n + 2. Default <c>20</c>.</summary>
    public int ModelDepth { get; init; }
    /// <summary><c>model.width</c>: resnet, cnn9: channel multiplier (resnet 16/32/64 × width, cnn9 128/256/512 × width); 0 = the kind's default (resnet 1, cnn9 0.25). Default <c>0.0</c>.</summary>
    public double ModelWidth { get; init; }
    /// <summary><c>model.norm</c>: resnet, cnn9: normalisation after each convolution (batch: BatchNorm2d; group: GroupNorm, per sample). Default <c>batch</c>.</summary>
    public string ModelNorm { get; init; } = "";
    /// <summary><c>model.patch</c>: vit: patch side p (must divide the image side; 7 or 4 for 28×28). Default <c>7</c>.</summary>
    public int ModelPatch { get; init; }
    /// <summary><c>model.dim</c>: vit: token dimension D. Default <c>64</c>.</summary>
    public int ModelDim { get; init; }
    /// <summary><c>model.vit_depth</c>: vit: number of transformer blocks. Default <c>4</c>.</summary>
    public int ModelVitDepth { get; init; }
    /// <summary><c>model.heads</c>: vit: attention heads (must divide model.dim). Default <c>4</c>.</summary>
    public int ModelHeads { get; init; }
    /// <summary><c>model.mlp_ratio</c>: vit: MLP hidden width = round(dim × mlp_ratio). Default <c>4.0</c>.</summary>
    public double ModelMlpRatio { get; init; }
    /// <summary><c>model.pool</c>: vit: cls (a class token, pooled) or mean (no class token, mean over the patch tokens). Default <c>cls</c>.</summary>
    public string ModelPool { get; init; } = "";

    /// <summary><c>loss.kind</c>: training loss; one of cross_entropy, mse. Default <c>cross_entropy</c>.</summary>
    public string LossKind { get; init; } = "";

    /// <summary><c>optim.kind</c>: optimizer; one of sgd, adam, adamw. Default <c>sgd</c>.</summary>
    public string OptimKind { get; init; } = "";
    /// <summary><c>optim.lr</c>: learning rate. Default <c>0.01</c>.</summary>
    public double OptimLr { get; init; }
    /// <summary><c>optim.momentum</c>: SGD momentum. Default <c>0.0</c>.</summary>
    public double OptimMomentum { get; init; }
    /// <summary><c>optim.nesterov</c>: Nesterov momentum (SGD). Default <c>false</c>.</summary>
    public bool OptimNesterov { get; init; }
    /// <summary><c>optim.weight_decay</c>: weight decay (L2 for sgd/adam, decoupled for adamw). Default <c>0.0</c>.</summary>
    public double OptimWeightDecay { get; init; }
    /// <summary><c>optim.betas</c>: Adam betas [beta1, beta2]. Default <c>[0.9, 0.999]</c>.</summary>
    public IReadOnlyList<double> OptimBetas { get; init; } = [];
    /// <summary><c>optim.eps</c>: Adam epsilon. Default <c>1e-8</c>.</summary>
    public double OptimEps { get; init; }

    /// <summary><c>schedule.kind</c>: learning-rate schedule; one of constant, step, cosine, inverse_sqrt. Default <c>constant</c>.</summary>
    public string ScheduleKind { get; init; } = "";
    /// <summary><c>schedule.step_size</c>: step schedule: epochs between decays. Default <c>10</c>.</summary>
    public int ScheduleStepSize { get; init; }
    /// <summary><c>schedule.gamma</c>: step schedule: decay factor. Default <c>0.1</c>.</summary>
    public double ScheduleGamma { get; init; }
    /// <summary><c>schedule.warmup</c>: linear warm-up steps. Default <c>0</c>.</summary>
    public int ScheduleWarmup { get; init; }

    /// <summary><c>early_stop.patience</c>: stop after N evaluations without a better validation loss; 0 = never. Default <c>0</c>.</summary>
    public int EarlyStopPatience { get; init; }

    /// <summary><c>eval.train_samples</c>: training samples scored at each evaluation (a fixed random subset, same clean/noisy mix); 0 = all. Default <c>5000</c>.</summary>
    public int EvalTrainSamples { get; init; }

    /// <summary><c>label_noise.kind</c>: label-noise SGD: fresh label noise at every step (classification: redraw labels; regression: add ε to targets). Default <c>none</c>.</summary>
    public string LabelNoiseKind { get; init; } = "";
    /// <summary><c>label_noise.p</c>: classification: probability that a sample's label is redrawn uniformly from all classes at a step. Default <c>0.5</c>.</summary>
    public double LabelNoiseP { get; init; }
    /// <summary><c>label_noise.sigma</c>: regression: noise level σ. Default <c>1.0</c>.</summary>
    public double LabelNoiseSigma { get; init; }
    /// <summary><c>label_noise.distribution</c>: regression: ε uniform on {-σ, +σ} (sign) or N(0, σ²); one of sign, gaussian. Default <c>sign</c>.</summary>
    public string LabelNoiseDistribution { get; init; } = "";
    /// <summary><c>label_noise.schedule</c>: when the noise is on: always; label_noise.period steps on then as many off; until step label_noise.off_after. Default <c>constant</c>.</summary>
    public string LabelNoiseSchedule { get; init; } = "";
    /// <summary><c>label_noise.period</c>: periodic schedule: steps on (and off). Default <c>5000</c>.</summary>
    public int LabelNoisePeriod { get; init; }
    /// <summary><c>label_noise.off_after</c>: until schedule: first step without noise. Default <c>10000</c>.</summary>
    public int LabelNoiseOffAfter { get; init; }

    /// <summary><c>sam.rho</c>: sharpness-aware minimisation around optim.kind: perturbation radius ρ; 0 = off. Default <c>0.0</c>.</summary>
    public double SamRho { get; init; }
    /// <summary><c>sam.adaptive</c>: adaptive SAM (ASAM): perturbation scaled element-wise by |w| + sam.eta. Default <c>false</c>.</summary>
    public bool SamAdaptive { get; init; }
    /// <summary><c>sam.eta</c>: ASAM: η in T = |w| + η. Default <c>0.0</c>.</summary>
    public double SamEta { get; init; }

    /// <summary><c>probe.neuron_norms</c>: metrics columns neuron_norm_mean/std: norms of the rows of the first weight matrix. Default <c>false</c>.</summary>
    public bool ProbeNeuronNorms { get; init; }
    /// <summary><c>probe.spectral_every</c>: spectral probe of the penultimate layer every N epochs (and at init) into spectral_epochs.csv; 0 = off. Default <c>0</c>.</summary>
    public int ProbeSpectralEvery { get; init; }
    // Robust training (issue 7): robust losses, loss correction, gradient pruning, selection, detection.
    /// <summary><c>robust.loss</c>: robust loss or loss correction (ce = loss.kind unchanged); one of ce, gce, sce, mae, nce_rce, label_smoothing, bootstrap_soft, bootstrap_hard, forward, backward. Default <c>ce</c>.</summary>
    public string RobustLoss { get; init; } = "";
    /// <summary><c>robust.gce_q</c>: GCE exponent q. Default <c>0.7</c>.</summary>
    public double RobustGceQ { get; init; }
    /// <summary><c>robust.sce_alpha</c>: SCE weight of CE. Default <c>0.1</c>.</summary>
    public double RobustSceAlpha { get; init; }
    /// <summary><c>robust.sce_beta</c>: SCE weight of RCE. Default <c>1.0</c>.</summary>
    public double RobustSceBeta { get; init; }
    /// <summary><c>robust.nce_alpha</c>: NCE+RCE weight of NCE. Default <c>1.0</c>.</summary>
    public double RobustNceAlpha { get; init; }
    /// <summary><c>robust.rce_beta</c>: NCE+RCE weight of RCE. Default <c>1.0</c>.</summary>
    public double RobustRceBeta { get; init; }
    /// <summary><c>robust.smoothing</c>: label smoothing epsilon. Default <c>0.1</c>.</summary>
    public double RobustSmoothing { get; init; }
    /// <summary><c>robust.bootstrap_beta</c>: bootstrapping: weight of the given label (Reed: 0.95 soft, 0.8 hard). Default <c>0.95</c>.</summary>
    public double RobustBootstrapBeta { get; init; }
    /// <summary><c>robust.T</c>: loss correction: T[true][given]; empty = estimated from anchor points after robust.estimate_after epochs. Default empty.</summary>
    public IReadOnlyList<IReadOnlyList<double>> RobustTransition { get; init; } = [];
    /// <summary><c>robust.estimate_after</c>: loss correction with estimated T: epochs of plain CE before T is estimated. Default <c>2</c>.</summary>
    public int RobustEstimateAfter { get; init; }
    /// <summary><c>robust.anchor_percentile</c>: anchor points: percentile of p(class). Default <c>97.0</c>.</summary>
    public double RobustAnchorPercentile { get; init; }
    /// <summary><c>prune.kind</c>: per-sample gradient pruning; one of none, truncate, soft. Default <c>none</c>.</summary>
    public string PruneKind { get; init; } = "";
    /// <summary><c>prune.stat</c>: per-batch centre and spread of the gradient norms; one of mean_std, median_iqr. Default <c>mean_std</c>.</summary>
    public string PruneStat { get; init; } = "";
    /// <summary><c>prune.alpha</c>: truncate above mu + alpha sigma. Default <c>2.0</c>.</summary>
    public double PruneAlpha { get; init; }
    /// <summary><c>prune.beta</c>: truncate below mu - beta sigma. Default <c>2.0</c>.</summary>
    public double PruneBeta { get; init; }
    /// <summary><c>per_sample.mode</c>: per-sample gradient norms: in the backward (fast) or one backward per sample (naive reference). Default <c>fast</c>.</summary>
    public string PerSampleMode { get; init; } = "";
    /// <summary><c>per_sample.conv</c>: convolution norms: Gram identity, materialised per sample, or the cheaper. Default <c>auto</c>.</summary>
    public string PerSampleConv { get; init; } = "";
    /// <summary><c>select.kind</c>: sample selection: keep the small-loss fraction of each batch; co_teaching: two networks, each trained on the other's small-loss samples. Default <c>none</c>.</summary>
    public string SelectKind { get; init; } = "";
    /// <summary><c>select.forget_rate</c>: forget rate tau (fraction dropped per batch at full rate). Default <c>0.2</c>.</summary>
    public double SelectForgetRate { get; init; }
    /// <summary><c>select.forget_epochs</c>: epochs T_k over which the forget rate rises linearly to tau. Default <c>10</c>.</summary>
    public int SelectForgetEpochs { get; init; }
    /// <summary><c>detection.enabled</c>: noisy-label detection scores at every evaluation (detection.csv, ledger.parquet). Default <c>false</c>.</summary>
    public bool DetectionEnabled { get; init; }
    /// <summary><c>detection.suspects</c>: write the N most suspicious training samples to suspects.csv; 0 = none. Default <c>0</c>.</summary>
    public int DetectionSuspects { get; init; }
    /// <summary><c>detection.ledger</c>: with detection.enabled: write ledger.parquet (every sample's scores at every evaluation; 48 bytes a row on disk). Default <c>true</c>.</summary>
    public bool DetectionLedger { get; init; }
    /// <summary><c>probe.activations_every</c>: activation probe (activations.csv) every N epochs and at the last; 0 = off. Default <c>0</c>.</summary>
    public int ProbeActivationsEvery { get; init; }
    /// <summary><c>probe.set_size</c>: activation probe: fixed training samples, stratified by given class and clean/noisy. Default <c>500</c>.</summary>
    public int ProbeSetSize { get; init; }
    /// <summary><c>probe.layers</c>: activation probe: hidden activation layers by index from 0; empty = all. Default empty.</summary>
    public IReadOnlyList<int> ProbeLayers { get; init; } = [];
    /// <summary><c>probe.phases</c>: epoch-wise double-descent phase detection on the test loss, into summary.json. Default <c>false</c>.</summary>
    public bool ProbePhases { get; init; }
    /// <summary><c>probe.phase_smooth</c>: phase detection: centred moving-average window (evaluations) applied to the curve first; 1 = none. Default <c>5</c>.</summary>
    public int ProbePhaseSmooth { get; init; }
    /// <summary><c>probe.phase_rise</c>: phase detection: relative rise of the test loss above its first minimum that counts. Default <c>0.1</c>.</summary>
    public double ProbePhaseRise { get; init; }
    /// <summary><c>probe.phase_fall</c>: phase detection: relative fall below the following maximum that counts as a second descent. Default <c>0.1</c>.</summary>
    public double ProbePhaseFall { get; init; }
    /// <summary><c>probe.learning_events</c>: per-sample learning events from every training step's forward (learning_events.csv): first epoch predicted as the given and as the true label, forgetting events. Default <c>false</c>.</summary>
    public bool ProbeLearningEvents { get; init; }
    /// <summary><c>probe.top_k</c>: activation probe: the k largest |activations| per layer, with unit and sample (activations_topk.csv). Default <c>5</c>.</summary>
    public int ProbeTopK { get; init; }
    /// <summary><c>probe.massive_abs</c>: activation probe: a layer's top activation is massive when |a| exceeds this (Sun et al. 2024: 100) and its ratio to the median |activation| exceeds <c>probe.massive_ratio</c>. Default <c>100.0</c>.</summary>
    public double ProbeMassiveAbs { get; init; }
    /// <summary><c>probe.massive_ratio</c>: activation probe: a top activation is massive when its ratio to the median |activation| exceeds this and |a| exceeds <c>probe.massive_abs</c> (Sun et al.: about 1000). Default <c>1000.0</c>.</summary>
    public double ProbeMassiveRatio { get; init; }
    /// <summary><c>probe.ablate</c>: activation probe: at each probe, set each layer's top probe.ablate_units units to zero or their probe-set mean and record the test loss and accuracy (ablation.csv). Default <c>none</c>.</summary>
    public string ProbeAblate { get; init; } = "";
    /// <summary><c>probe.ablate_units</c>: activation probe: how many top units (by largest |activation| on the probe set) are ablated. Default <c>1</c>.</summary>
    public int ProbeAblateUnits { get; init; }
    /// <summary><c>probe.ablate_test_samples</c>: activation probe: the ablation is scored on the first N test samples (intact and ablated alike); 0 = all. Default <c>0</c>.</summary>
    public int ProbeAblateTestSamples { get; init; }
    /// <summary><c>eval.schedule</c>: evaluate after every epoch, or at log-spaced epochs (1..10, 12, 15, 20, 25, 30, 40, 50, 60, 80, 100, ...) and the last. Default <c>every</c>.</summary>
    public string EvalSchedule { get; init; } = "";
    /// <summary><c>early_stop.noisy_fit_factor</c>: stop at epoch ceil(F × E), E = first evaluated epoch with noisy_given_acc ≥ 0.99 (epochs stays the cap); 0 = off. Default <c>0.0</c>.</summary>
    public double EarlyStopNoisyFitFactor { get; init; }
    /// <summary><c>probe.linearized</c>: MLPs: train the linearised model f(θ₀) + J₀(θ − θ₀) beside the network with the same optimizer and labels; metrics columns lin_train_loss, lin_test_loss, function_gap_train_clean/noisy, function_gap_test, kernel_distance; summary.json linearized.lazy_exit_step. Default <c>false</c>.</summary>
    public bool ProbeLinearized { get; init; }
    /// <summary><c>probe.kernel_set_size</c>: probe.linearized: fixed random training samples the tangent kernel (all outputs) is compared on. Default <c>64</c>.</summary>
    public int ProbeKernelSetSize { get; init; }
    /// <summary><c>probe.lazy_threshold</c>: probe.linearized: kernel distance 1 − ⟨K₀, K_t⟩/(‖K₀‖‖K_t‖) above which the run has left the lazy regime (lazy_exit_step). Default <c>0.1</c>.</summary>
    public double ProbeLazyThreshold { get; init; }
    /// <summary><c>probe.hessian_every</c>: mlp, two_layer_linear and small_cnn: Hessian of the training loss by exact forward-over-reverse products, at initialisation and every N evaluations: top-k eigenvalues (Lanczos) into hessian_eigenvalues.csv, SLQ density into hessian_density.csv; 0 = off. Default <c>0</c>.</summary>
    public int ProbeHessianEvery { get; init; }
    /// <summary><c>probe.hessian_top_k</c>: probe.hessian_every: the largest eigenvalues reported. Default <c>3</c>.</summary>
    public int ProbeHessianTopK { get; init; }
    /// <summary><c>probe.hessian_vectors</c>: probe.hessian_every: Rademacher probe vectors of the stochastic Lanczos quadrature. Default <c>4</c>.</summary>
    public int ProbeHessianVectors { get; init; }
    /// <summary><c>probe.hessian_lanczos_steps</c>: probe.hessian_every: Lanczos steps per run (top-k and each SLQ vector). Default <c>30</c>.</summary>
    public int ProbeHessianLanczosSteps { get; init; }
    /// <summary><c>probe.hessian_samples</c>: probe.hessian_every: fixed random training samples (given labels) the loss is taken on; all when larger. Default <c>256</c>.</summary>
    public int ProbeHessianSamples { get; init; }
    /// <summary><c>early_stop.save_best</c>: write checkpoints/best_val.safetensors at each new lowest validation loss (the early-stopped model; needs data.val_fraction &gt; 0). Default <c>false</c>.</summary>
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

    /// <summary>Value of a key by its dotted name (for reports and sweeps); throws <see cref="ConfigException"/> for an unknown key.</summary>
    public object? Get(string key) =>
        (ConfigKeys.Find(key) ?? throw new ConfigException(key, UnknownProblem(key))).GetBoxed(this);

    /// <summary>Equal when every key of <see cref="ConfigKeys"/> has the same value (lists and matrices element-wise).</summary>
    public bool Equals(ExperimentConfig? other) =>
        other is not null && ConfigKeys.All.All(k => k.ValueEquals(this, other));

    /// <summary>A hash over every key's value, consistent with <see cref="Equals(ExperimentConfig)"/>.</summary>
    public override int GetHashCode() =>
        ConfigKeys.All.Aggregate(17, (h, k) => unchecked(h * 31 + k.ValueHash(this)));

    /// <summary>The config as YAML (<see cref="ToYaml"/>).</summary>
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

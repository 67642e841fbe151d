using System.Diagnostics;
using LabelNoiseLab.Autograd;
using LabelNoiseLab.Data;
using LabelNoiseLab.Optim;
using LabelNoiseLab.Tensors;
using LabelNoiseLab.Training;

namespace LabelNoiseLab.Probes;

/// <summary>Settings of the linearised twin: the kernel probe set's size, the lazy threshold, the seed, the loss.</summary>
public sealed record LinearisedTwinOptions(int KernelSetSize, double LazyThreshold, long Seed, LossKind Loss);

/// <summary>
/// <c>probe.linearized</c>: beside the network f(x; θ) trains its linearisation at initialisation,
/// f_lin(x) = f(x; θ₀) + J(x; θ₀)(θ_lin − θ₀) (the neural-tangent / lazy model), with its own copy
/// of the run's optimizer (same kind, hyper-parameters and learning rate each step) on the same
/// batches and the same labels the network's loss saw (label-noise SGD's redrawn ones included).
/// Each twin step is one exact Jacobian–vector product at θ₀ (forward mode) for f_lin on the batch
/// and one vector–Jacobian product at θ₀ for its gradient J₀ᵀ∂L/∂f_lin (<see cref="TangentNet"/>);
/// no Jacobian is materialised. At each evaluation: the twin's train loss (given labels) and test
/// loss, the function gap ‖f − f_lin‖ (root mean square over samples of the output-vector
/// distance) on the clean and the noisy training samples and on the test set, and the kernel
/// distance 1 − ⟨K₀, K_t⟩/(‖K₀‖‖K_t‖) of the empirical tangent kernel on a fixed random set of
/// training samples. <c>summary.json → linearized</c> gets <c>lazy_exit_step</c>, the first
/// evaluation step whose kernel distance exceeds the threshold (null if none). MLPs only.
/// </summary>
public sealed class LinearisedTwin : ITrainingCallback
{
    private const int Chunk = 256;

    private readonly LinearisedTwinOptions _options;
    private readonly Func<IEnumerable<Tensor>, Optimizer> _createOptimizer;
    private TangentNet _net = null!;
    private Tensor[] _twin = [];
    private Optimizer _optimizer = null!;
    private float[] _theta0 = [], _delta = [], _theta = [], _grad = [];
    private float[] _fLin = [], _gy = [], _chunkX = [], _kernelX = [];
    private double[] _k0 = [];
    private int[] _kernelSet = [];
    private int _k;
    private ComponentState? _pending;
    private readonly Tape _tape = new(recording: false);
    private long? _lazyExit;
    private double _maxDistance;
    private Dictionary<string, double> _last = [];
    private long _twinTicks;
    private long _twinSteps;

    /// <summary>
    /// A twin with these settings; <paramref name="createOptimizer"/> builds its optimizer over the twin's
    /// parameters (same kind and hyper-parameters as the run's). Throws
    /// <see cref="ArgumentOutOfRangeException"/> for an empty kernel set.
    /// </summary>
    public LinearisedTwin(LinearisedTwinOptions options, Func<IEnumerable<Tensor>, Optimizer> createOptimizer)
    {
        _options = options ?? throw new ArgumentNullException(nameof(options));
        _createOptimizer = createOptimizer ?? throw new ArgumentNullException(nameof(createOptimizer));
        if (!(options.LazyThreshold > 0))
            throw new ArgumentOutOfRangeException(nameof(options), options.LazyThreshold, "the lazy threshold must be positive");
        if (options.KernelSetSize < 1)
            throw new ArgumentOutOfRangeException(nameof(options), options.KernelSetSize, "the kernel set needs at least one sample");
    }

    /// <inheritdoc/>
    public string Name => "probe.linearized";

    /// <inheritdoc/>
    public long Acted { get; private set; }

    /// <inheritdoc/>
    public IReadOnlyList<string> MetricsColumns { get; } =
        ["lin_train_loss", "lin_test_loss", "function_gap_train_clean", "function_gap_train_noisy", "function_gap_test", "kernel_distance"];

    /// <summary>The first evaluation step whose kernel distance passed the threshold (null: none yet).</summary>
    public long? LazyExitStep => _lazyExit;

    /// <summary>The twin's parameters θ_lin (model layout).</summary>
    public IReadOnlyList<Tensor> TwinParameters => _twin;

    /// <inheritdoc/>
    public void Attach(TrainingRun run)
    {
        ArgumentNullException.ThrowIfNull(run);
        _net = TangentNet.For(run.Model);
        if (!_net.LinearOnly)
            throw new NotSupportedException("the linearised twin covers MLPs only");
        var train = run.Data.Train;
        if (_options.KernelSetSize > train.Count)
            throw new ArgumentException($"kernel set of {_options.KernelSetSize} samples from {train.Count}", nameof(run));
        int p = _net.Dimension, d = _net.InputLength;
        _k = _net.Outputs;
        _twin = [.. run.Model.Parameters().Select(t => new Tensor(t.Shape.ToArray()) { RequiresGrad = true })];
        _optimizer = _createOptimizer(_twin);
        _theta0 = new float[p];
        _delta = new float[p];
        _theta = new float[p];
        _grad = new float[p];
        int rows = Math.Max(Chunk, run.Batcher.BatchSize);
        _fLin = new float[rows * _k];
        _gy = new float[rows * _k];
        _chunkX = new float[Chunk * d];
        var order = Enumerable.Range(0, train.Count).ToArray();
        Rng.ForPurpose(_options.Seed, "linearized-kernel-set").Shuffle(order);
        _kernelSet = [.. order[.._options.KernelSetSize].Order()];
        _kernelX = new float[_kernelSet.Length * d];
        for (int i = 0; i < _kernelSet.Length; i++)
            train.Sample(_kernelSet[i]).CopyTo(_kernelX.AsSpan(i * d, d));
        if (_pending is { } s)
        {
            s.Array("theta0").CopyTo(_theta0, 0);
            Unflatten(s.Array("theta_lin"), _twin);
            foreach (var (name, buffer) in _optimizer.StateBuffers())
                s.Array("opt." + name).CopyTo(buffer, 0);
            _optimizer.StepCount = s.Long("opt_steps");
            _k0 = System.Runtime.InteropServices.MemoryMarshal.Cast<float, double>(s.Array("k0")).ToArray();
            _pending = null;
        }
    }

    /// <inheritdoc/>
    public void OnStart(TrainingRun run)
    {
        ArgumentNullException.ThrowIfNull(run);
        _net.CopyParameters(_theta0);
        Unflatten(_theta0, _twin);
        _k0 = _net.TangentKernel(_theta0, _kernelX, _kernelSet.Length);
    }

    /// <inheritdoc/>
    public ComponentState SaveState()
    {
        var state = new ComponentState()
            .Set("acted", Acted)
            .Set("lazy_exit", _lazyExit ?? -1)
            .Set("max_distance", _maxDistance)
            .SetJson("last", _last)
            .Set("twin_seconds", Stopwatch.GetElapsedTime(0, _twinTicks).TotalSeconds)
            .Set("twin_steps", _twinSteps)
            .Set("opt_steps", _optimizer.StepCount)
            .SetArray("k0", System.Runtime.InteropServices.MemoryMarshal.Cast<double, float>(_k0).ToArray())
            .SetArray("theta0", (float[])_theta0.Clone())
            .SetArray("theta_lin", Flatten(_twin));
        foreach (var (name, buffer) in _optimizer.StateBuffers())
            state.SetArray("opt." + name, (float[])buffer.Clone());
        return state;
    }

    /// <inheritdoc/>
    public void RestoreState(ComponentState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        Acted = state.Long("acted");
        long exit = state.Long("lazy_exit");
        _lazyExit = exit < 0 ? null : exit;
        _maxDistance = state.Double("max_distance");
        _last = state.Json<Dictionary<string, double>>("last");
        _twinTicks = (long)(state.Double("twin_seconds") * Stopwatch.Frequency);
        _twinSteps = state.Long("twin_steps");
        _pending = state; // applied in Attach, once the buffers exist
    }

    /// <summary>One twin step on the step's batch and labels (after the network's update).</summary>
    public void OnStep(TrainingRun run, StepContext step)
    {
        ArgumentNullException.ThrowIfNull(run);
        ArgumentNullException.ThrowIfNull(step);
        long t0 = Stopwatch.GetTimestamp();
        int n = step.Length;
        Delta();
        _net.Forward(_theta0, _delta, step.Batch.Features, n);
        var fLin = _fLin.AsSpan(0, n * _k);
        System.Numerics.Tensors.TensorPrimitives.Add(_net.Output, _net.OutputTangent, fLin);
        ReadOnlySpan<float> targets = run.Data.Train.NumClasses > 0 ? []
            : step.Targets is { } t ? t.Span : step.Batch.Targets;
        TangentNet.LossGradient(_options.Loss, fLin, [], n, _k, step.Labels, targets, _gy.AsSpan(0, n * _k), []);
        _net.Backward(_theta0, [], _gy.AsSpan(0, n * _k), [], _grad, []);
        int offset = 0;
        foreach (var p in _twin)
        {
            _grad.AsSpan(offset, p.Length).CopyTo(p.EnsureGrad().Span);
            p.GradIsZero = false;
            offset += p.Length;
        }
        _optimizer.LearningRate = run.Optimizer.LearningRate;
        _optimizer.Step();
        _twinTicks += Stopwatch.GetTimestamp() - t0;
        _twinSteps++;
    }

    /// <inheritdoc/>
    public void OnEvaluation(TrainingRun run, int epoch, long step, IDictionary<string, double> extra)
    {
        ArgumentNullException.ThrowIfNull(run);
        ArgumentNullException.ThrowIfNull(extra);
        var train = run.Data.Train;
        var subset = Trainer.EvaluationSubset(train.Count, run.Options.EvalTrainSamples, run.Options.Seed);
        Delta();
        var trainScore = Score(run, train, subset);
        var testScore = Score(run, run.Data.Test, Enumerable.Range(0, run.Data.Test.Count).ToArray());
        _net.CopyParameters(_theta);
        double distance = TangentNet.KernelDistance(_k0, _net.TangentKernel(_theta, _kernelX, _kernelSet.Length));
        if (_lazyExit is null && distance > _options.LazyThreshold)
            _lazyExit = step;
        if (distance > _maxDistance)
            _maxDistance = distance;
        _last = new Dictionary<string, double>
        {
            ["lin_train_loss"] = trainScore.Loss,
            ["lin_test_loss"] = testScore.Loss,
            ["function_gap_train_clean"] = trainScore.GapClean,
            ["function_gap_train_noisy"] = trainScore.GapNoisy,
            ["function_gap_test"] = testScore.GapAll,
            ["kernel_distance"] = distance,
        };
        foreach (var (key, value) in _last)
            extra[key] = value;
        Acted++;
    }

    /// <inheritdoc/>
    public void OnEnd(TrainingRun run, IDictionary<string, object?> summary)
    {
        ArgumentNullException.ThrowIfNull(summary);
        var block = new Dictionary<string, object?>
        {
            ["lazy_exit_step"] = _lazyExit,
            ["lazy_threshold"] = _options.LazyThreshold,
            ["kernel_set_size"] = _kernelSet.Length,
            ["max_kernel_distance"] = _maxDistance,
            ["twin_steps"] = _twinSteps,
            ["twin_step_seconds"] = _twinSteps == 0 ? null : Stopwatch.GetElapsedTime(0, _twinTicks).TotalSeconds / _twinSteps,
        };
        foreach (var (key, value) in _last)
            block["final_" + key] = double.IsFinite(value) ? value : null;
        summary["linearized"] = block;
    }

    private readonly record struct Scores(double Loss, double GapClean, double GapNoisy, double GapAll);

    /// <summary>The twin's loss on given labels and the function gaps over <paramref name="indices"/> of <paramref name="data"/>.</summary>
    private Scores Score(TrainingRun run, Dataset data, int[] indices)
    {
        var model = run.Model;
        int d = data.FeatureLength, k = _k;
        bool regression = data.NumClasses == 0;
        double loss = 0, clean = 0, noisy = 0;
        int nClean = 0, nNoisy = 0;
        bool wasTraining = model.Training;
        model.SetTraining(false);
        var labels = new int[Chunk];
        var targets = regression ? new float[Chunk * data.TargetLength] : [];
        try
        {
            for (int start = 0; start < indices.Length; start += Chunk)
            {
                int len = Math.Min(Chunk, indices.Length - start);
                for (int i = 0; i < len; i++)
                {
                    int s = indices[start + i];
                    data.Sample(s).CopyTo(_chunkX.AsSpan(i * d, d));
                    labels[i] = regression ? 0 : data.Labels[s];
                    if (regression)
                        data.Targets.AsSpan(s * data.TargetLength, data.TargetLength).CopyTo(targets.AsSpan(i * data.TargetLength));
                }
                _tape.Reset();
                var f = model.Forward(_tape, new Tensor(_chunkX[..(len * d)], len, d)).Span;
                _net.Forward(_theta0, _delta, _chunkX, len);
                var fLin = _fLin.AsSpan(0, len * k);
                System.Numerics.Tensors.TensorPrimitives.Add(_net.Output, _net.OutputTangent, fLin);
                loss += len * TangentNet.LossGradient(_options.Loss, fLin, [], len, k, labels, regression ? targets.AsSpan(0, len * k) : [], _gy.AsSpan(0, len * k), []);
                for (int i = 0; i < len; i++)
                {
                    double sq = 0;
                    for (int j = 0; j < k; j++)
                    {
                        double diff = f[i * k + j] - fLin[i * k + j];
                        sq += diff * diff;
                    }
                    if (data.NoiseMask[indices[start + i]])
                        (noisy, nNoisy) = (noisy + sq, nNoisy + 1);
                    else
                        (clean, nClean) = (clean + sq, nClean + 1);
                }
            }
        }
        finally
        {
            model.SetTraining(wasTraining);
        }
        int total = nClean + nNoisy;
        return new Scores(
            total == 0 ? double.NaN : loss / total,
            nClean == 0 ? double.NaN : Math.Sqrt(clean / nClean),
            nNoisy == 0 ? double.NaN : Math.Sqrt(noisy / nNoisy),
            total == 0 ? double.NaN : Math.Sqrt((clean + noisy) / total));
    }

    /// <summary>_delta = θ_lin − θ₀.</summary>
    private void Delta()
    {
        int offset = 0;
        foreach (var p in _twin)
        {
            System.Numerics.Tensors.TensorPrimitives.Subtract(p.Span, _theta0.AsSpan(offset, p.Length), _delta.AsSpan(offset, p.Length));
            offset += p.Length;
        }
    }

    private static float[] Flatten(Tensor[] tensors)
    {
        var flat = new float[tensors.Sum(t => t.Length)];
        int offset = 0;
        foreach (var t in tensors)
        {
            t.Span.CopyTo(flat.AsSpan(offset));
            offset += t.Length;
        }
        return flat;
    }

    private static void Unflatten(ReadOnlySpan<float> flat, Tensor[] tensors)
    {
        int offset = 0;
        foreach (var t in tensors)
        {
            flat.Slice(offset, t.Length).CopyTo(t.Span);
            offset += t.Length;
        }
    }
}

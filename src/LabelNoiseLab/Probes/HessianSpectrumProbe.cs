using System.Diagnostics;
using System.Globalization;
using System.Text;
using LabelNoiseLab.Tensors;
using LabelNoiseLab.Training;

namespace LabelNoiseLab.Probes;

/// <summary>Hessian-probe settings: every N evaluations (and at initialisation), top-k, SLQ vectors and Lanczos steps, the fixed sample count, seed, loss.</summary>
public sealed record HessianSpectrumOptions(int Every, int TopK, int Vectors, int Steps, int Samples, long Seed, LossKind Loss);

/// <summary>
/// <c>probe.hessian_every</c>: the training loss's Hessian on a fixed random set of training samples
/// (<c>probe.hessian_samples</c>, given labels), through exact Hessian–vector products by
/// forward-over-reverse (<see cref="TangentNet"/>, MLP and SmallCnn layers): the top
/// <c>probe.hessian_top_k</c> eigenvalues by Lanczos (<c>probe.hessian_lanczos_steps</c> steps, full
/// reorthogonalisation) into <c>hessian_eigenvalues.csv</c> (<c>step, rank, eigenvalue</c>), and the
/// eigenvalue density by stochastic Lanczos quadrature (<c>probe.hessian_vectors</c> Rademacher
/// vectors of as many steps) into <c>hessian_density.csv</c> (<c>step, vector, node, weight</c>: the
/// density is Σ weight·δ(λ − node) averaged over the vectors). metrics.csv columns
/// <c>hessian_top</c> and <c>hessian_trace</c> (the SLQ trace estimate), empty between measurements.
/// Measured at initialisation and every N-th evaluation; its generators derive from the seed and
/// the step, so a resumed run measures the same.
/// </summary>
public sealed class HessianSpectrumProbe(HessianSpectrumOptions options) : ITrainingCallback
{
    /// <summary>The file of the top eigenvalues (<c>step, rank, eigenvalue</c>) in the run folder.</summary>
    public const string EigenFile = "hessian_eigenvalues.csv";
    /// <summary>The file of the SLQ density (<c>step, vector, node, weight</c>) in the run folder.</summary>
    public const string DensityFile = "hessian_density.csv";

    private readonly HessianSpectrumOptions _options = options ?? throw new ArgumentNullException(nameof(options));
    private TangentNet _net = null!;
    private float[] _x = [], _targets = [], _theta = [], _grad = [], _gy = [], _gyd = [];
    private int[] _labels = [];
    private int _n;
    private StringBuilder _eigen = new("step,rank,eigenvalue\n");
    private StringBuilder _density = new("step,vector,node,weight\n");
    private long _evaluations;
    private double _firstTop = double.NaN, _lastTop = double.NaN, _lastTrace = double.NaN, _seconds;

    /// <inheritdoc/>
    public string Name => "probe.hessian";

    /// <inheritdoc/>
    public long Acted { get; private set; }

    /// <inheritdoc/>
    public IReadOnlyList<string> MetricsColumns { get; } = ["hessian_top", "hessian_trace"];

    /// <inheritdoc/>
    public void Attach(TrainingRun run)
    {
        ArgumentNullException.ThrowIfNull(run);
        _net = TangentNet.For(run.Model);
        var train = run.Data.Train;
        _n = Math.Min(_options.Samples, train.Count);
        var order = Enumerable.Range(0, train.Count).ToArray();
        Rng.ForPurpose(_options.Seed, "hessian-samples").Shuffle(order);
        int[] chosen = [.. order[.._n].Order()];
        int d = train.FeatureLength, k = _net.Outputs;
        _x = new float[_n * d];
        _labels = new int[_n];
        _targets = train.NumClasses == 0 ? new float[_n * k] : [];
        for (int i = 0; i < _n; i++)
        {
            train.Sample(chosen[i]).CopyTo(_x.AsSpan(i * d, d));
            if (train.NumClasses > 0)
                _labels[i] = train.Labels[chosen[i]];
            else
                train.Targets.AsSpan(chosen[i] * k, k).CopyTo(_targets.AsSpan(i * k, k));
        }
        _theta = new float[_net.Dimension];
        _grad = new float[_net.Dimension];
        _gy = new float[_n * k];
        _gyd = new float[_n * k];
    }

    /// <inheritdoc/>
    public void OnStart(TrainingRun run) => Measure(run, 0);

    /// <inheritdoc/>
    public void OnEvaluation(TrainingRun run, int epoch, long step, IDictionary<string, double> extra)
    {
        ArgumentNullException.ThrowIfNull(extra);
        _evaluations++;
        if (_evaluations % _options.Every == 0)
        {
            Measure(run, step);
            extra["hessian_top"] = _lastTop;
            extra["hessian_trace"] = _lastTrace;
        }
    }

    /// <inheritdoc/>
    public void OnEnd(TrainingRun run, IDictionary<string, object?> summary)
    {
        ArgumentNullException.ThrowIfNull(summary);
        summary["hessian"] = new Dictionary<string, object?>
        {
            ["initial_top"] = Finite(_firstTop),
            ["final_top"] = Finite(_lastTop),
            ["final_trace"] = Finite(_lastTrace),
            ["samples"] = _n,
            ["top_k"] = _options.TopK,
            ["vectors"] = _options.Vectors,
            ["lanczos_steps"] = _options.Steps,
            ["products"] = "exact (forward-over-reverse)",
            ["files"] = new[] { EigenFile, DensityFile },
            ["seconds"] = _seconds,
        };

        static double? Finite(double v) => double.IsFinite(v) ? v : null;
    }

    /// <inheritdoc/>
    public ComponentState SaveState() => new ComponentState()
        .Set("acted", Acted)
        .Set("evaluations", _evaluations)
        .Set("eigen", _eigen.ToString())
        .Set("density", _density.ToString())
        .Set("first_top", _firstTop)
        .Set("last_top", _lastTop)
        .Set("last_trace", _lastTrace)
        .Set("seconds", _seconds);

    /// <inheritdoc/>
    public void RestoreState(ComponentState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        Acted = state.Long("acted");
        _evaluations = state.Long("evaluations");
        _eigen = new StringBuilder(state.Text("eigen"));
        _density = new StringBuilder(state.Text("density"));
        _firstTop = state.Double("first_top");
        _lastTop = state.Double("last_top");
        _lastTrace = state.Double("last_trace");
        _seconds = state.Double("seconds");
    }

    /// <summary>Top-k and SLQ density at the model's current weights; appends to both files and writes them.</summary>
    public void Measure(TrainingRun run, long step)
    {
        ArgumentNullException.ThrowIfNull(run);
        long t0 = Stopwatch.GetTimestamp();
        _net.CopyParameters(_theta);
        var top = Lanczos.TopEigenvalues(Product, _net.Dimension, _options.TopK, _options.Steps,
            Rng.ForPurpose(_options.Seed, string.Create(CultureInfo.InvariantCulture, $"hessian-top-{step}")));
        var nodes = Lanczos.Density(Product, _net.Dimension, _options.Vectors, _options.Steps,
            Rng.ForPurpose(_options.Seed, string.Create(CultureInfo.InvariantCulture, $"hessian-slq-{step}")));
        for (int r = 0; r < top.Length; r++)
            _eigen.Append(CultureInfo.InvariantCulture, $"{step},{r + 1},{top[r]:R}\n");
        foreach (var node in nodes)
            _density.Append(CultureInfo.InvariantCulture, $"{step},{node.Vector},{node.Node:R},{node.Weight:R}\n");
        _lastTop = top[0];
        _lastTrace = Lanczos.Trace(nodes, _net.Dimension);
        if (double.IsNaN(_firstTop))
            _firstTop = _lastTop;
        run.Directory.WriteText(EigenFile, _eigen.ToString());
        run.Directory.WriteText(DensityFile, _density.ToString());
        Acted++;
        _seconds += Stopwatch.GetElapsedTime(t0).TotalSeconds;
    }

    private void Product(ReadOnlySpan<float> v, Span<float> hv) =>
        _net.HessianVectorProduct(_theta, v, _x, _n, _options.Loss, _labels, _targets, _grad, hv, _gy, _gyd);
}

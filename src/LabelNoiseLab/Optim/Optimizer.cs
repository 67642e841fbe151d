namespace LabelNoiseLab.Optim;

/// <summary>
/// An optimizer: options, per-parameter state, and a short <see cref="Step"/>. Parameters whose
/// gradient is still lazily zero (nothing flowed into them) get a zero gradient.
/// </summary>
public abstract class Optimizer
{
    /// <summary>Takes the parameters to update (at least one) and the base learning rate; throws an <see cref="ArgumentException"/> for no parameters and an <see cref="ArgumentOutOfRangeException"/> for a rate that is not positive.</summary>
    protected Optimizer(IEnumerable<Tensor> parameters, float lr)
    {
        Parameters = parameters.ToList();
        if (Parameters.Count == 0)
            throw new ArgumentException("optimizer needs at least one parameter");
        if (!(lr > 0))
            throw new ArgumentOutOfRangeException(nameof(lr), lr, "learning rate must be positive");
        LearningRate = lr;
    }

    /// <summary>The tensors this optimizer updates, in the order their state buffers are indexed.</summary>
    public IReadOnlyList<Tensor> Parameters { get; }

    /// <summary>Current learning rate; a schedule sets it before each step.</summary>
    public float LearningRate { get; set; }

    /// <summary>Number of steps taken so far (restored from a checkpoint on resume: Adam's bias correction and SGD's first step read it).</summary>
    public long StepCount { get; protected internal set; }

    /// <summary>Updates every parameter in place from its current gradient and increments <see cref="StepCount"/>.</summary>
    public abstract void Step();

    /// <summary>Resets every gradient lazily (no memory traffic).</summary>
    public void ZeroGrad()
    {
        for (int i = 0; i < Parameters.Count; i++) // indexing: an interface foreach would allocate
            Parameters[i].ZeroGrad();
    }

    /// <summary>Named state buffers (momentum, moments) for checkpoints, keyed by parameter index.</summary>
    public abstract IEnumerable<(string Name, float[] Buffer)> StateBuffers();

    /// <summary>The gradient of <paramref name="p"/>, zeros if nothing flowed into it.</summary>
    protected static ReadOnlySpan<float> GradientOf(Tensor p) => p.GradSpan();
}

using LabelNoiseLab.Optim;

namespace LabelNoiseLab.Training;

/// <summary>
/// SAM (or ASAM) around the run's optimizer as a step component (<c>sam</c>): the trainer runs
/// each step through <see cref="Step"/>, whose closure is the forward/backward of the step; the
/// second pass reuses the first pass's labels and weights. <see cref="Acted"/> counts the steps
/// that took an ascent (a nonzero, finite first gradient).
/// </summary>
public sealed class SharpnessAware(Sam sam) : ITrainingComponent
{
    /// <inheritdoc/>
    public string Name => "sam";

    /// <inheritdoc/>
    public long Acted { get; private set; }

    /// <summary>The SAM (or ASAM) optimizer wrapped around the run's optimizer.</summary>
    public Sam Sam { get; } = sam ?? throw new ArgumentNullException(nameof(sam));

    /// <summary>
    /// One SAM step: <paramref name="closure"/> runs the step's forward and backward and returns the loss;
    /// it is called twice (at the weights and at the ascended weights). Returns the first pass's loss.
    /// </summary>
    public float Step(Func<float> closure)
    {
        float loss = Sam.Step(closure);
        if (Sam.LastGradientNorm > 0 && double.IsFinite(Sam.LastGradientNorm))
            Acted++;
        return loss;
    }

    /// <inheritdoc/>
    public ComponentState SaveState() => new ComponentState().Set("acted", Acted);

    /// <inheritdoc/>
    public void RestoreState(ComponentState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        Acted = state.Long("acted");
    }
}

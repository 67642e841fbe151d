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
    public string Name => "sam";

    public long Acted { get; private set; }

    public Sam Sam { get; } = sam ?? throw new ArgumentNullException(nameof(sam));

    public float Step(Func<float> closure)
    {
        float loss = Sam.Step(closure);
        if (Sam.LastGradientNorm > 0 && double.IsFinite(Sam.LastGradientNorm))
            Acted++;
        return loss;
    }

    public ComponentState SaveState() => new ComponentState().Set("acted", Acted);

    public void RestoreState(ComponentState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        Acted = state.Long("acted");
    }
}

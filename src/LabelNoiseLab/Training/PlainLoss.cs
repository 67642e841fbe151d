using LabelNoiseLab.Autograd;
using LabelNoiseLab.Losses;

namespace LabelNoiseLab.Training;

/// <summary>
/// The default loss: cross-entropy or MSE (one-hot) against the step's labels, or MSE against
/// regression targets (the step's, else the batch's own). Keeps nothing between steps.
/// </summary>
public sealed class PlainLoss(LossKind kind, int targetLength) : ILossStep
{
    private readonly Tensor? _targets = targetLength > 0 ? new Tensor(0, targetLength) : null;

    /// <inheritdoc/>
    public string Name => "loss";

    /// <inheritdoc/>
    public long Acted => 0;

    /// <inheritdoc/>
    public void BeforeStep(StepContext step)
    {
    }

    /// <inheritdoc/>
    public Tensor Loss(Tape tape, Tensor output, StepContext step)
    {
        ArgumentNullException.ThrowIfNull(step);
        if (step.Weighted)
            throw new InvalidOperationException("the plain loss takes no sample weights; weighting components need a weighted loss");
        if (_targets is not null)
        {
            if (step.Targets is not null)
                return MseOp.Forward(tape, output, step.Targets).Mean;
            _targets.Resize([step.Length, targetLength]);
            step.Batch.Targets.CopyTo(_targets.Span);
            return MseOp.Forward(tape, output, _targets).Mean;
        }
        return kind == LossKind.Mse
            ? MseOp.Forward(tape, output, step.Labels).Mean
            : SoftmaxCrossEntropyOp.Forward(tape, output, step.Labels).Mean;
    }

    /// <inheritdoc/>
    public ComponentState SaveState() => ComponentState.Empty;

    /// <inheritdoc/>
    public void RestoreState(ComponentState state)
    {
    }
}

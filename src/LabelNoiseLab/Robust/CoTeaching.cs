using LabelNoiseLab.Autograd;
using LabelNoiseLab.Losses;
using LabelNoiseLab.Nn;
using LabelNoiseLab.Optim;
using LabelNoiseLab.Training;

namespace LabelNoiseLab.Robust;

/// <summary>
/// Co-teaching (Han et al. 2018; <c>select</c>, kind co_teaching): a peer network scores each
/// batch; each network is updated on the small-loss samples of the other. The peer's step
/// happens here (its own tape and optimizer, the run's learning rate); the weights it returns
/// select for the run's model, which is the one evaluated and probed. The peer's parameters,
/// buffers, optimizer buffers and dropout generators are part of the state, so a resumed run goes
/// on with the same peer.
/// <see cref="ITrainingComponent.Acted"/> counts the steps that dropped at least one sample.
/// </summary>
public sealed class CoTeaching : ISampleWeighting
{
    private readonly ForgetSchedule _schedule;
    private readonly RobustLoss _loss;
    private readonly Model _peer;
    private readonly Optimizer _peerOptimizer;
    private readonly Optimizer _mainOptimizer;
    private readonly Tape _tape = new();
    private readonly Tensor _peerWeights = new(0);
    private readonly SmallLossMask _mask;
    private Tensor? _x;

    /// <summary>
    /// Co-teaching with <paramref name="peer"/> (trained by <paramref name="peerOptimizer"/>) beside the
    /// run's model (trained by <paramref name="mainOptimizer"/>): each network keeps the other's small-loss
    /// samples under <paramref name="loss"/>, dropping per <paramref name="schedule"/>; batches of at most
    /// <paramref name="batchSize"/>. Throws <see cref="ArgumentNullException"/> for a null argument.
    /// </summary>
    public CoTeaching(ForgetSchedule schedule, RobustLoss loss, Model peer, Optimizer peerOptimizer, Optimizer mainOptimizer, int batchSize)
    {
        ArgumentNullException.ThrowIfNull(schedule);
        ArgumentNullException.ThrowIfNull(loss);
        ArgumentNullException.ThrowIfNull(peer);
        ArgumentNullException.ThrowIfNull(peerOptimizer);
        ArgumentNullException.ThrowIfNull(mainOptimizer);
        (_schedule, _loss, _peer, _peerOptimizer, _mainOptimizer) = (schedule, loss, peer, peerOptimizer, mainOptimizer);
        _mask = new SmallLossMask(batchSize);
    }

    /// <inheritdoc/>
    public string Name => "select";

    /// <inheritdoc/>
    public long Acted { get; private set; }

    /// <summary>The second network.</summary>
    public Model Peer => _peer;

    /// <inheritdoc/>
    public void Weigh(Tensor output, StepContext step)
    {
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(step);
        var batch = step.Batch;
        int n = step.Length, d = batch.Data.FeatureLength;
        int drop = _schedule.Drop(batch.Epoch, n);
        if (_x is null || _x.Rows != n)
            _x = new Tensor(n, d); // only when the batch size changes
        batch.Features.CopyTo(_x.Span);
        _tape.Reset();
        _peerOptimizer.ZeroGrad();
        var peerOut = _peer.Forward(_tape, _x);
        var labels = step.Labels.AsSpan(0, n);
        // The peer's small-loss samples train the model; the model's train the peer.
        step.Weighted = true;
        if (drop > 0)
        {
            Acted++;
            _mask.Apply(peerOut, labels, _loss.Spec, drop, step.Weights);
            step.WeightScale = SmallLossMask.KeptScale(step.Weights);
        }
        _peerWeights.Resize([n]);
        var pw = _peerWeights.Span;
        pw.Fill(1f);
        if (drop > 0)
        {
            _mask.Apply(output, labels, _loss.Spec, drop, pw);
            System.Numerics.Tensors.TensorPrimitives.Multiply(pw, SmallLossMask.KeptScale(pw), pw);
        }
        var peerLoss = RobustLossOp.Forward(_tape, peerOut, step.Labels, _loss.Spec, _peerWeights).Mean;
        _tape.Backward(peerLoss);
        _peerOptimizer.LearningRate = _mainOptimizer.LearningRate;
        _peerOptimizer.Step();
    }

    /// <inheritdoc/>
    public ComponentState SaveState()
    {
        var state = new ComponentState().Set("acted", Acted).Set("optimizer_steps", _peerOptimizer.StepCount);
        foreach (var (name, p) in _peer.NamedState())
            state.SetArray("peer." + name, p.Span.ToArray());
        foreach (var (name, buffer) in _peerOptimizer.StateBuffers())
            state.SetArray("peer_optimizer." + name, (float[])buffer.Clone());
        var generators = TrainingCheckpoint.DropoutGenerators(_peer);
        for (int i = 0; i < generators.Count; i++)
            state.Set("peer_dropout." + i.ToString(System.Globalization.CultureInfo.InvariantCulture), generators[i].GetState());
        return state;
    }

    /// <inheritdoc/>
    public void RestoreState(ComponentState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        Acted = state.Long("acted");
        _peerOptimizer.StepCount = state.Long("optimizer_steps");
        foreach (var (name, p) in _peer.NamedState())
            Copy(state.Array("peer." + name), p.Span, name);
        foreach (var (name, buffer) in _peerOptimizer.StateBuffers())
            Copy(state.Array("peer_optimizer." + name), buffer, name);
        var generators = TrainingCheckpoint.DropoutGenerators(_peer);
        for (int i = 0; i < generators.Count; i++)
            generators[i].SetState(state.ULongs("peer_dropout." + i.ToString(System.Globalization.CultureInfo.InvariantCulture)));

        static void Copy(float[] from, Span<float> to, string name)
        {
            if (from.Length != to.Length)
                throw new InvalidDataException($"peer tensor '{name}' has {from.Length} values, expected {to.Length}");
            from.CopyTo(to);
        }
    }
}

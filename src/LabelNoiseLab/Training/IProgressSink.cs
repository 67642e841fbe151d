using LabelNoiseLab.RunFiles;

namespace LabelNoiseLab.Training;

/// <summary>
/// Live progress of a run, for a console display. The trainer calls <see cref="OnStep"/> after
/// every optimizer step, so implementations must be cheap there (store the numbers, redraw at
/// most a few times per second, allocate nothing in between). All calls come from one thread.
/// </summary>
public interface IProgressSink
{
    /// <summary>Before the first step.</summary>
    void OnRunStart(int totalEpochs, int stepsPerEpoch);

    /// <summary>After each step; <paramref name="epoch"/> counts from 1, <paramref name="step"/> is the global step, from 1.</summary>
    void OnStep(int epoch, long step, double loss);

    /// <summary>After each evaluation, with the row just written to <c>metrics.csv</c>.</summary>
    void OnEvaluation(MetricsRow row);

    /// <summary>A one-line note (checkpoint written, early stop, divergence).</summary>
    void OnMessage(string message);
}

/// <summary>Discards everything: for tests and library use.</summary>
public sealed class NullProgressSink : IProgressSink
{
    /// <summary>The one instance.</summary>
    public static NullProgressSink Instance { get; } = new();

    /// <inheritdoc/>
    public void OnRunStart(int totalEpochs, int stepsPerEpoch)
    {
    }

    /// <inheritdoc/>
    public void OnStep(int epoch, long step, double loss)
    {
    }

    /// <inheritdoc/>
    public void OnEvaluation(MetricsRow row)
    {
    }

    /// <inheritdoc/>
    public void OnMessage(string message)
    {
    }
}

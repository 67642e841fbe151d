using LabelNoiseLab.Autograd;
using LabelNoiseLab.Data;
using LabelNoiseLab.Losses;
using LabelNoiseLab.Nn;

namespace LabelNoiseLab.Training;

/// <summary>Loss and accuracy sums of one group of samples; empty groups give NaN.</summary>
public struct GroupScore
{
    /// <summary>Sum of the per-sample losses.</summary>
    public double LossSum;
    /// <summary>Samples whose predicted class is the label scored against.</summary>
    public long Correct;
    /// <summary>Samples in the group.</summary>
    public long Count;

    /// <summary>Mean loss; NaN for an empty group.</summary>
    public readonly double Loss => Count == 0 ? double.NaN : LossSum / Count;

    /// <summary>Fraction correct, in [0, 1]; NaN for an empty group.</summary>
    public readonly double Accuracy => Count == 0 ? double.NaN : (double)Correct / Count;

    /// <summary>Adds one sample's loss and whether it was predicted correctly.</summary>
    public void Add(double loss, bool correct)
    {
        LossSum += loss;
        Correct += correct ? 1 : 0;
        Count++;
    }
}

/// <summary>
/// The four-way split of DESIGN.md for one data set: all samples against their given label,
/// clean samples, noisy samples against the given (wrong) label — memorisation — and against
/// their true label — recovery.
/// </summary>
public readonly record struct SplitScores(GroupScore Given, GroupScore Clean, GroupScore NoisyGiven, GroupScore NoisyTrue);

/// <summary>
/// Scores a model on a data set in evaluation mode (no dropout, no tape recording), in chunks
/// copied into reused buffers. The loss is the training loss (cross-entropy or MSE).
/// </summary>
public sealed class Evaluator(Model model, string lossKind, int chunk = 1000)
{
    private readonly Tape _tape = new(recording: false);
    private Tensor? _x;
    private int[] _given = [];
    private int[] _true = [];

    /// <summary>
    /// Scores the samples of <paramref name="data"/> at <paramref name="indices"/> (all samples when empty)
    /// in the four groups.
    /// </summary>
    public SplitScores Score(Dataset data, ReadOnlySpan<int> indices = default)
    {
        int n = indices.IsEmpty ? data.Count : indices.Length;
        int d = data.FeatureLength;
        _x ??= new Tensor(chunk, d);
        if (_given.Length < chunk)
        {
            _given = new int[chunk];
            _true = new int[chunk];
        }
        bool wasTraining = model.Training;
        model.SetTraining(false);
        GroupScore given = default, clean = default, noisyGiven = default, noisyTrue = default;
        try
        {
            for (int start = 0; start < n; start += chunk)
            {
                int len = Math.Min(chunk, n - start);
                _x.Resize([len, d]);
                for (int i = 0; i < len; i++)
                {
                    int s = indices.IsEmpty ? start + i : indices[start + i];
                    data.Sample(s).CopyTo(_x.Span.Slice(i * d, d));
                    _given[i] = data.Labels[s];
                    _true[i] = data.TrueLabels[s];
                }
                _tape.Reset();
                var output = model.Forward(_tape, _x);
                if (data.NumClasses == 0)
                {
                    ScoreRegression(data, indices, start, len, output, ref given);
                    continue;
                }
                var lossGiven = LossPerSample(output, _given);
                var lossTrue = LossPerSample(output, _true);
                int k = output.RowLength;
                for (int i = 0; i < len; i++)
                {
                    int predicted = ArgMax(output.Span.Slice(i * k, k));
                    bool noisy = _given[i] != _true[i];
                    given.Add(lossGiven[i], predicted == _given[i]);
                    if (noisy)
                    {
                        noisyGiven.Add(lossGiven[i], predicted == _given[i]);
                        noisyTrue.Add(lossTrue[i], predicted == _true[i]);
                    }
                    else
                    {
                        clean.Add(lossGiven[i], predicted == _given[i]);
                    }
                }
            }
        }
        finally
        {
            model.SetTraining(wasTraining);
        }
        return new SplitScores(given, clean, noisyGiven, noisyTrue);
    }

    private Tensor LossPerSample(Tensor output, int[] labels) => lossKind == "mse"
        ? MseOp.Forward(_tape, output, labels).PerSample
        : SoftmaxCrossEntropyOp.Forward(_tape, output, labels).PerSample;

    private void ScoreRegression(Dataset data, ReadOnlySpan<int> indices, int start, int len, Tensor output, ref GroupScore given)
    {
        int t = data.TargetLength;
        var targets = _tape.Workspace(len, t);
        for (int i = 0; i < len; i++)
        {
            int s = indices.IsEmpty ? start + i : indices[start + i];
            data.Targets.AsSpan(s * t, t).CopyTo(targets.Span.Slice(i * t, t));
        }
        var loss = MseOp.Forward(_tape, output, targets).PerSample;
        for (int i = 0; i < len; i++)
        {
            given.LossSum += loss[i];
            given.Count++;
        }
    }

    internal static int ArgMax(ReadOnlySpan<float> row)
    {
        int best = 0;
        for (int i = 1; i < row.Length; i++)
            if (row[i] > row[best])
                best = i;
        return best;
    }
}

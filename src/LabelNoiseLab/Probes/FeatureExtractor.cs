using LabelNoiseLab.Autograd;
using LabelNoiseLab.Data;
using LabelNoiseLab.Nn;

namespace LabelNoiseLab.Probes;

/// <summary>
/// A layer's features for every sample of a data set, in evaluation mode (no dropout, nothing
/// recorded): <c>penultimate</c> = <see cref="Model.Features"/> (the head's input), or any named
/// module (<c>layers.1</c>, <c>features.4</c>) through a forward hook.
/// </summary>
public static class FeatureExtractor
{
    /// <summary>The layer name that selects the penultimate features (the head's input).</summary>
    public const string Penultimate = "penultimate";

    /// <summary>The covariance is D×D and its eigen-decomposition O(D³): wider layers are refused.</summary>
    public const int MaxDim = 4096;

    /// <summary><c>penultimate</c> and every named sub-module of the model.</summary>
    public static IReadOnlyList<string> LayerNames(Model model) =>
        [Penultimate, .. model.NamedModules().Select(m => m.Name).Where(n => n.Length > 0)];

    /// <summary>The module named <paramref name="layer"/>; null for <c>penultimate</c>; an <see cref="InputException"/> naming <c>--layer</c> otherwise.</summary>
    public static Module? ResolveLayer(Model model, string layer)
    {
        if (layer == Penultimate)
            return null;
        foreach (var (name, module) in model.NamedModules())
        {
            if (name.Length > 0 && name == layer)
                return module;
        }
        throw new InputException($"--layer '{layer}': no such layer in this model; expected one of {string.Join(", ", LayerNames(model))}");
    }

    /// <summary>
    /// The features of <paramref name="layer"/> (see <see cref="LayerNames"/>) for every sample of
    /// <paramref name="data"/>, computed <paramref name="chunk"/> samples at a time. An unknown layer, or
    /// one wider than <see cref="MaxDim"/>, is an <see cref="InputException"/>.
    /// </summary>
    public static FeatureSet Extract(Model model, Dataset data, string layer, int chunk = 1000)
    {
        var module = ResolveLayer(model, layer);
        float[]? features = null;
        int dim = 0, offset = 0;
        void Capture(Module m, Tensor input, Tensor output) => Store(output);
        if (module is not null)
            module.AddForwardHook(Capture);
        try
        {
            ForEachChunk(model, data, chunk, (tape, x, start, len) =>
            {
                offset = start;
                if (module is null)
                    Store(model.Features(tape, x));
                else
                    model.Forward(tape, x);
            });
        }
        finally
        {
            module?.RemoveForwardHook(Capture);
        }
        return new FeatureSet(features ?? [], data.Count, dim, data.Labels, data.TrueLabels);

        void Store(Tensor output)
        {
            int rows = output.Rows, length = output.RowLength;
            if (features is null)
            {
                if (length > MaxDim)
                    throw new InputException($"--layer '{layer}': {length} features per sample; the spectral probe handles at most {MaxDim}");
                dim = length;
                features = new float[(long)data.Count * dim];
            }
            output.Span.CopyTo(features.AsSpan(offset * dim, rows * dim));
        }
    }

    /// <summary>Runs <paramref name="body"/>(tape, x, start, length) over the data set in chunks, in evaluation mode.</summary>
    internal static void ForEachChunk(Model model, Dataset data, int chunk, Action<Tape, Tensor, int, int> body)
    {
        int d = data.FeatureLength;
        var tape = new Tape(recording: false);
        var x = new Tensor(Math.Min(chunk, Math.Max(data.Count, 1)), d);
        bool wasTraining = model.Training;
        model.SetTraining(false);
        try
        {
            for (int start = 0; start < data.Count; start += chunk)
            {
                int len = Math.Min(chunk, data.Count - start);
                x.Resize([len, d]);
                data.Features.AsSpan(start * d, len * d).CopyTo(x.Span);
                tape.Reset();
                body(tape, x, start, len);
            }
        }
        finally
        {
            model.SetTraining(wasTraining);
        }
    }
}

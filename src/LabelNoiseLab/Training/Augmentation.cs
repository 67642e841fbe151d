using LabelNoiseLab.Tensors;

namespace LabelNoiseLab.Training;

/// <summary>Which augmentation a run's training batches get.</summary>
public enum AugmentKind
{
    /// <summary>Random crops of the zero-padded image.</summary>
    Crop,

    /// <summary>Random crops, then a horizontal flip with probability 0.5.</summary>
    CropFlip,
}

/// <summary>
/// The augmentation kernel, free of any generator: one sample (C×H×W, flattened) replaced in place
/// by the H×W window at (<c>dy</c>, <c>dx</c>) of the image zero-padded by <c>padding</c> on each
/// side, mirrored left–right when <c>flip</c>. Output pixel (y, x) is input pixel
/// (y + dy − padding, x' + dx − padding) with x' = W − 1 − x when flipped (else x), or 0 outside
/// the image. Allocates nothing: the caller lends a scratch span of C×H×W.
/// </summary>
internal static class ImageAugment
{
    public static void CropFlip(Span<float> sample, int channels, int height, int width, int padding, int dy, int dx, bool flip, Span<float> scratch)
    {
        int plane = height * width;
        if (channels < 1 || height < 1 || width < 1 || sample.Length != channels * plane)
            throw new ArgumentException($"sample of {sample.Length} values is not {channels}×{height}×{width}", nameof(sample));
        if (scratch.Length < sample.Length)
            throw new ArgumentException($"scratch of {scratch.Length} values is shorter than the sample ({sample.Length})", nameof(scratch));
        if (padding < 0 || (uint)dy > (uint)(2 * padding) || (uint)dx > (uint)(2 * padding))
            throw new ArgumentOutOfRangeException(nameof(padding), $"offsets ({dy}, {dx}) outside 0..{2 * padding} for padding {padding}");
        var src = scratch[..sample.Length];
        sample.CopyTo(src);
        int oy = dy - padding, ox = dx - padding;
        // Columns x whose source column x + ox lies inside the image: [x0, x1).
        int x0 = Math.Max(0, -ox), x1 = Math.Min(width, width - ox);
        for (int c = 0; c < channels; c++)
        {
            for (int y = 0; y < height; y++)
            {
                var row = sample.Slice(c * plane + y * width, width);
                int sy = y + oy;
                if (sy < 0 || sy >= height || x0 >= x1)
                {
                    row.Clear();
                    continue;
                }
                var from = src.Slice(c * plane + sy * width, width);
                if (!flip)
                {
                    row[..x0].Clear();
                    from.Slice(x0 + ox, x1 - x0).CopyTo(row[x0..x1]);
                    row[x1..].Clear();
                }
                else
                {
                    // Crop column x lands at width − 1 − x.
                    row[(width - x0)..].Clear();
                    row[..(width - x1)].Clear();
                    for (int x = x0; x < x1; x++)
                        row[width - 1 - x] = from[x + ox];
                }
            }
        }
    }
}

/// <summary>
/// Data augmentation of image training batches (<c>augment</c>): each sample of a step's batch
/// gets a random crop of its zero-padded image and, for <see cref="AugmentKind.CropFlip"/>, a
/// horizontal flip with probability 0.5, drawn from its own generator
/// (<c>Rng.ForPurpose(seed, "augment")</c>: per sample, the row offset, the column offset, then
/// the flip). It works in place on the batcher's buffer, which the batcher refills from the data
/// set at every step: the data set itself, evaluation and test data are never touched, and every
/// later component (per-sample gradients, co-teaching, SAM's second pass) sees the augmented
/// batch. A target step, so it runs once per step before the forward. <see cref="ITrainingComponent.Acted"/>
/// counts the steps augmented (every step).
/// </summary>
public sealed class Augmentation : ITargetStep
{
    private readonly AugmentKind _kind;
    private readonly int _channels, _height, _width, _padding;
    private readonly Rng _rng;
    private readonly float[] _scratch;

    /// <summary>
    /// Augments samples of shape <paramref name="sampleShape"/> ([C, H, W]) with crops of the image
    /// zero-padded by <paramref name="padding"/> pixels, drawing from <c>Rng.ForPurpose(seed,
    /// "augment")</c>. Throws <see cref="ArgumentException"/> for a shape that is not C×H×W and
    /// <see cref="ArgumentOutOfRangeException"/> for a negative padding.
    /// </summary>
    public Augmentation(AugmentKind kind, int[] sampleShape, int padding, long seed)
    {
        ArgumentNullException.ThrowIfNull(sampleShape);
        if (sampleShape is not [int channels, int height, int width] || channels < 1 || height < 1 || width < 1)
            throw new ArgumentException($"augmentation needs images (C×H×W samples), got samples of shape [{string.Join(", ", sampleShape)}]", nameof(sampleShape));
        ArgumentOutOfRangeException.ThrowIfNegative(padding);
        (_kind, _channels, _height, _width, _padding) = (kind, channels, height, width, padding);
        _rng = Rng.ForPurpose(seed, "augment");
        _scratch = new float[channels * height * width];
    }

    /// <inheritdoc/>
    public string Name => "augment";

    /// <inheritdoc/>
    public long Acted { get; private set; }

    /// <inheritdoc/>
    public void Apply(StepContext step)
    {
        ArgumentNullException.ThrowIfNull(step);
        int d = _scratch.Length;
        var features = step.Batch.Features;
        int span = 2 * _padding + 1;
        for (int i = 0; i < step.Length; i++)
        {
            int dy = _rng.NextInt(span);
            int dx = _rng.NextInt(span);
            bool flip = _kind == AugmentKind.CropFlip && _rng.NextDouble() < 0.5;
            ImageAugment.CropFlip(features.Slice(i * d, d), _channels, _height, _width, _padding, dy, dx, flip, _scratch);
        }
        Acted++;
    }

    /// <summary>The generator's state and the step count, so a resumed run draws the same crops and flips.</summary>
    public ComponentState SaveState() => new ComponentState().Set("rng", _rng.GetState()).Set("acted", Acted);

    /// <inheritdoc/>
    public void RestoreState(ComponentState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        _rng.SetState(state.ULongs("rng"));
        Acted = state.Long("acted");
    }
}

namespace LabelNoiseLab.Optim;

/// <summary>A learning-rate schedule: the rate for a step, given the base rate.</summary>
public abstract class LrSchedule
{
    /// <summary>The learning rate for optimizer step <paramref name="step"/> (0-based) given the base rate <paramref name="baseLr"/>.</summary>
    public abstract float At(long step, float baseLr);

    /// <summary>lr constant.</summary>
    public sealed class Constant : LrSchedule
    {
        /// <inheritdoc/>
        public override float At(long step, float baseLr) => baseLr;
    }

    /// <summary>lr · γ^⌊step / stepSize⌋ (stepSize in optimizer steps).</summary>
    public sealed class Step(long stepSize, float gamma) : LrSchedule
    {
        /// <inheritdoc/>
        public override float At(long step, float baseLr) =>
            baseLr * MathF.Pow(gamma, step / Math.Max(1, stepSize));
    }

    /// <summary>Half-cosine from lr to 0 over <paramref name="totalSteps"/>, after a linear warm-up.</summary>
    public sealed class Cosine(long totalSteps, long warmup = 0) : LrSchedule
    {
        /// <inheritdoc/>
        public override float At(long step, float baseLr)
        {
            if (step < warmup)
                return baseLr * (step + 1) / warmup;
            double t = Math.Min(1.0, (double)(step - warmup) / Math.Max(1, totalSteps - warmup));
            return (float)(baseLr * 0.5 * (1 + Math.Cos(Math.PI * t)));
        }
    }

    /// <summary>lr · min((step+1)/warmup, √(warmup/(step+1))); with warmup 0, lr/√(step+1).</summary>
    public sealed class InverseSqrt(long warmup = 0) : LrSchedule
    {
        /// <inheritdoc/>
        public override float At(long step, float baseLr)
        {
            double s = step + 1;
            if (warmup <= 0)
                return (float)(baseLr / Math.Sqrt(s));
            return (float)(baseLr * Math.Min(s / warmup, Math.Sqrt(warmup / s)));
        }
    }
}

using LabelNoiseLab.Tensors;

namespace LabelNoiseLab.Data;

/// <summary>Seeded synthetic data sets.</summary>
public static class Synthetic
{
    /// <summary>
    /// Gaussian-mixture classification: class c has mean μ_c = separation · u_c with u_c a
    /// random unit vector (<paramref name="means"/>, drawn once by <see cref="MixtureMeans"/>), and a
    /// sample is μ_c + N(0, I) drawn from <paramref name="rng"/>. Classes are balanced (sample i has
    /// class i mod k) and the samples come in a random order. Train and test sets must share the
    /// means: call <see cref="MixtureMeans"/> once and pass the means to both.
    /// </summary>
    public static Dataset GaussianMixture(float[] means, int classes, int dimension, int n, Rng rng, string name = "gaussian-mixture")
    {
        if (classes < 2)
            throw new ArgumentOutOfRangeException(nameof(classes), $"{classes} classes; expected at least 2");
        if (dimension < 1)
            throw new ArgumentOutOfRangeException(nameof(dimension), $"dimension {dimension}; expected at least 1");
        if (n < 1)
            throw new ArgumentOutOfRangeException(nameof(n), $"{n} samples; expected at least 1");
        if (means.Length != classes * dimension)
            throw new ArgumentException($"means has {means.Length} values, expected {classes}×{dimension}");
        var labels = new int[n];
        for (int i = 0; i < n; i++)
            labels[i] = i % classes;
        rng.Shuffle(labels);
        var x = new float[(long)n * dimension];
        for (int i = 0; i < n; i++)
        {
            var mu = means.AsSpan(labels[i] * dimension, dimension);
            var row = x.AsSpan(i * dimension, dimension);
            for (int j = 0; j < dimension; j++)
                row[j] = mu[j] + (float)rng.NextNormal();
        }
        return new Dataset(name, x, [dimension], labels, classes);
    }

    /// <summary>k class means of norm <paramref name="separation"/> in random directions, k × d.</summary>
    public static float[] MixtureMeans(int classes, int dimension, double separation, Rng rng)
    {
        if (!(separation >= 0) || double.IsInfinity(separation))
            throw new ArgumentOutOfRangeException(nameof(separation), $"separation {separation}; expected a finite value ≥ 0");
        var means = new float[classes * dimension];
        for (int c = 0; c < classes; c++)
        {
            var row = means.AsSpan(c * dimension, dimension);
            double norm2 = 0;
            for (int j = 0; j < dimension; j++)
            {
                double v = rng.NextNormal();
                row[j] = (float)v;
                norm2 += v * v;
            }
            double scale = separation / Math.Sqrt(norm2);
            for (int j = 0; j < dimension; j++)
                row[j] = (float)(row[j] * scale);
        }
        return means;
    }

    /// <summary>
    /// A teacher θ* of unit norm in d dimensions: dense (every coordinate N(0,1) before
    /// normalising) when <paramref name="nonzeros"/> is 0 or ≥ d, otherwise exactly that many
    /// nonzero coordinates at random positions.
    /// </summary>
    public static float[] Teacher(int dimension, int nonzeros, Rng rng)
    {
        if (dimension < 1)
            throw new ArgumentOutOfRangeException(nameof(dimension), $"dimension {dimension}; expected at least 1");
        if (nonzeros < 0)
            throw new ArgumentOutOfRangeException(nameof(nonzeros), $"{nonzeros} nonzeros; expected 0 (dense) or a positive count");
        int s = nonzeros == 0 || nonzeros >= dimension ? dimension : nonzeros;
        var positions = new int[dimension];
        for (int j = 0; j < dimension; j++)
            positions[j] = j;
        if (s < dimension)
            rng.Shuffle(positions);
        var theta = new float[dimension];
        double norm2 = 0;
        for (int t = 0; t < s; t++)
        {
            double v = rng.NextNormal();
            if (v == 0)
                v = 1; // keep exactly s nonzeros
            theta[positions[t]] = (float)v;
            norm2 += v * v;
        }
        float scale = (float)(1 / Math.Sqrt(norm2));
        for (int j = 0; j < dimension; j++)
            theta[j] *= scale;
        return theta;
    }

    /// <summary>
    /// Linear-teacher regression: x ~ N(0, I_d), y = θ*·x + σ ε with ε ~ N(0, 1). The set has
    /// <see cref="Dataset.Targets"/> (n × 1), <see cref="Dataset.TeacherWeights"/> = θ*,
    /// NumClasses 0 and all labels 0.
    /// </summary>
    public static Dataset LinearTeacher(float[] theta, int n, double targetNoise, Rng rng, string name = "linear-teacher")
    {
        if (n < 1)
            throw new ArgumentOutOfRangeException(nameof(n), $"{n} samples; expected at least 1");
        if (!(targetNoise >= 0) || double.IsInfinity(targetNoise))
            throw new ArgumentOutOfRangeException(nameof(targetNoise), $"target noise {targetNoise}; expected a finite value ≥ 0");
        int d = theta.Length;
        var x = new float[(long)n * d];
        var y = new float[n];
        for (int i = 0; i < n; i++)
        {
            var row = x.AsSpan(i * d, d);
            double dot = 0;
            for (int j = 0; j < d; j++)
            {
                float v = (float)rng.NextNormal();
                row[j] = v;
                dot += (double)v * theta[j];
            }
            y[i] = (float)(dot + targetNoise * rng.NextNormal());
        }
        return new Dataset(name, x, [d], new int[n], 0)
        {
            Targets = y,
            TargetLength = 1,
            TeacherWeights = theta,
        };
    }
}

using LabelNoiseLab.Tensors;

namespace LabelNoiseLab.Nn;

/// <summary>How a model's weights start.</summary>
public enum InitKind
{
    /// <summary>PyTorch's default for Linear and Conv2d: weight and bias ~ U(−1/√fan_in, 1/√fan_in).</summary>
    Default,
    /// <summary>NTK / normal: weight ~ N(0, scale²/fan_in), bias = 0.</summary>
    Ntk,
}

/// <summary>Weight initialisation of a model's layers (<see cref="InitKind"/>), and the fills it uses.</summary>
public static class Init
{
    /// <summary>Initialises every Linear and Conv2d of <paramref name="model"/> in parameter order (and a vision transformer's embeddings).</summary>
    public static void Apply(Module model, InitKind kind, Rng rng, float scale = 1f)
    {
        foreach (var (_, module) in model.NamedModules())
        {
            if (module is VisionTransformer vit)
            {
                // timm draws them from a truncated N(0, 0.02²); at 0.02 truncation at ±2 never bites in practice.
                if (vit.ClsToken is not null)
                    Normal(vit.ClsToken.Span, VisionTransformer.EmbeddingStd * scale, rng);
                Normal(vit.PosEmbed.Span, VisionTransformer.EmbeddingStd * scale, rng);
            }
            var (weight, bias, fanIn) = module switch
            {
                Linear l => (l.Weight, l.Bias, l.Inputs),
                Conv2d c => (c.Weight, c.Bias, c.Weight.RowLength),
                _ => (null, null, 0),
            };
            if (weight is null)
                continue;
            if (kind == InitKind.Default)
            {
                float bound = scale / MathF.Sqrt(fanIn);
                Uniform(weight.Span, bound, rng);
                if (bias is not null)
                    Uniform(bias.Span, bound, rng);
            }
            else
            {
                Normal(weight.Span, scale / MathF.Sqrt(fanIn), rng);
                bias?.Span.Clear();
            }
        }
    }

    /// <summary>Fills <paramref name="values"/> with draws from U(−<paramref name="bound"/>, <paramref name="bound"/>).</summary>
    public static void Uniform(Span<float> values, float bound, Rng rng)
    {
        for (int i = 0; i < values.Length; i++)
            values[i] = (2f * rng.NextFloat() - 1f) * bound;
    }

    /// <summary>Fills <paramref name="values"/> with draws from N(0, <paramref name="std"/>²).</summary>
    public static void Normal(Span<float> values, float std, Rng rng)
    {
        for (int i = 0; i < values.Length; i++)
            values[i] = (float)(rng.NextNormal() * std);
    }
}

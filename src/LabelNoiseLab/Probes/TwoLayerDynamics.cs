using System.Globalization;
using System.Text;
using LabelNoiseLab.Nn;

namespace LabelNoiseLab.Probes;

/// <summary>One row of <c>dynamics.csv</c>; NaN is written as an empty cell.</summary>
internal sealed record DynamicsRow
{
    public string Method { get; init; } = "";
    public long Step { get; init; }
    public double TrainLoss { get; init; } = double.NaN;
    public double TestLoss { get; init; } = double.NaN;
    /// <summary>Mean of the neuron norms ‖w_i‖ (rows of W).</summary>
    public double NeuronNormMean { get; init; }
    /// <summary>Standard deviation (population) of the neuron norms.</summary>
    public double NeuronNormStd { get; init; }
    /// <summary>‖a‖₂ of the second layer.</summary>
    public double ANorm { get; init; }
    /// <summary>Mean over neurons of |⟨θ*, w_i⟩| / (‖θ*‖‖w_i‖) (a zero neuron counts 0).</summary>
    public double Alignment { get; init; }
    /// <summary>‖Wᵀa − θ*‖₂.</summary>
    public double ThetaDist { get; init; }
    /// <summary>‖W − W₀‖_F / ‖W₀‖_F: small in the lazy regime.</summary>
    public double WeightChange { get; init; }
    public double HessianTop { get; init; } = double.NaN;
    public double HessianTrace { get; init; } = double.NaN;
}

/// <summary>
/// The dynamics probe for <see cref="TwoLayerLinear"/> (label-noise SGD paper): neuron norms,
/// second-layer norm, alignment of the neurons with the teacher θ*, distance of the effective
/// predictor Wᵀa from θ*, relative weight change from the initial W₀. Sums in double.
/// </summary>
internal static class TwoLayerDynamics
{
    public static readonly string[] Columns =
    [
        "method", "step", "train_loss", "test_loss", "neuron_norm_mean", "neuron_norm_std", "a_norm",
        "alignment", "theta_dist", "weight_change", "hessian_top", "hessian_trace",
    ];

    public static string Header => string.Join(',', Columns);

    /// <summary>The probe needs a TwoLayerLinear; anything else is a config error naming <c>model.kind</c>.</summary>
    public static TwoLayerLinear Require(Module model) =>
        model as TwoLayerLinear ?? throw new ConfigException("model.kind",
            $"the dynamics probe needs two_layer_linear, got {model.GetType().Name}");

    /// <summary>Measures the weight columns of a row (losses and Hessian columns are left to the caller).</summary>
    public static DynamicsRow Measure(TwoLayerLinear model, ReadOnlySpan<float> thetaStar, ReadOnlySpan<float> initialW, string method, long step)
    {
        int d = model.InputDim, m = model.Width;
        if (thetaStar.Length != d)
            throw new ArgumentException($"θ* has {thetaStar.Length} entries, the model has d={d}", nameof(thetaStar));
        if (initialW.Length != d * m)
            throw new ArgumentException($"W₀ has {initialW.Length} entries, W has {d * m}", nameof(initialW));
        var w = model.W.Span;
        var a = model.A.Span[..m];
        double thetaNorm = Math.Sqrt(Dot(thetaStar, thetaStar));
        double sumNorm = 0, sumNorm2 = 0, sumAlign = 0, change2 = 0, init2 = 0;
        var theta = new double[d];
        for (int i = 0; i < m; i++)
        {
            var wi = w.Slice(i * d, d);
            double n2 = Dot(wi, wi);
            double norm = Math.Sqrt(n2);
            sumNorm += norm;
            sumNorm2 += n2;
            if (norm > 0 && thetaNorm > 0)
                sumAlign += Math.Abs(Dot(wi, thetaStar)) / (norm * thetaNorm);
            for (int j = 0; j < d; j++)
            {
                theta[j] += (double)wi[j] * a[i];
                double diff = (double)wi[j] - initialW[i * d + j];
                change2 += diff * diff;
                init2 += (double)initialW[i * d + j] * initialW[i * d + j];
            }
        }
        double dist2 = 0;
        for (int j = 0; j < d; j++)
            dist2 += (theta[j] - thetaStar[j]) * (theta[j] - thetaStar[j]);
        double mean = sumNorm / m;
        return new DynamicsRow
        {
            Method = method,
            Step = step,
            NeuronNormMean = mean,
            NeuronNormStd = Math.Sqrt(Math.Max(0, sumNorm2 / m - mean * mean)),
            ANorm = Math.Sqrt(Dot(a, a)),
            Alignment = sumAlign / m,
            ThetaDist = Math.Sqrt(dist2),
            WeightChange = init2 > 0 ? Math.Sqrt(change2 / init2) : double.NaN,
        };
    }

    /// <summary>Appends one CSV line (no header) for <paramref name="row"/>.</summary>
    public static void AppendCsv(StringBuilder csv, DynamicsRow row)
    {
        csv.Append(row.Method).Append(',').Append(row.Step.ToString(CultureInfo.InvariantCulture));
        foreach (double v in (double[])[row.TrainLoss, row.TestLoss, row.NeuronNormMean, row.NeuronNormStd, row.ANorm,
                     row.Alignment, row.ThetaDist, row.WeightChange, row.HessianTop, row.HessianTrace])
            csv.Append(',').Append(RunFiles.MetricsWriter.Format(v));
        csv.Append('\n');
    }

    private static double Dot(ReadOnlySpan<float> x, ReadOnlySpan<float> y)
    {
        double s = 0;
        for (int i = 0; i < x.Length; i++)
            s += (double)x[i] * y[i];
        return s;
    }
}

namespace LabelNoiseLab.Studies;

/// <summary>
/// The malignant-tail paper's claims against the spectral-tail preset's runs: a convex valley of
/// probe accuracy over d with its best d within a factor 2 of the class count, truncation at least
/// as good as the full model at ≥ 40% noise, truncation against early stopping (reported either
/// way), and wider networks having a larger tail.
/// </summary>
internal static class SpectralTailClaims
{
    private const int Classes = 10;

    public static List<Dictionary<string, object?>> Evaluate(IReadOnlyList<Dictionary<string, object?>> aggregate, IReadOnlyList<Dictionary<string, object?>> widths,
        IReadOnlyList<Dictionary<string, object?>> runs, SpectralTailOptions o, bool quick)
    {
        ArgumentNullException.ThrowIfNull(aggregate);
        ArgumentNullException.ThrowIfNull(widths);
        ArgumentNullException.ThrowIfNull(runs);
        ArgumentNullException.ThrowIfNull(o);
        static double N(object? v) => SpectralTailPreset.Num(v);
        var claims = new List<Dictionary<string, object?>>();
        var grid = runs.Where(r => (string)r["model"]! == "mlp" && (int)r["width"]! == o.Width).ToList();

        // 1. Convex valley: probe accuracy peaks at an interior d (above d = 1 and d = D) within a factor 2 of the classes, at ≥ 40% noise.
        var noisy = grid.Where(r => N(r["noise_rate"]) >= 0.4 - 1e-9 && r["probe_best_d"] is int).ToList();
        var bestD = noisy.Select(r => (double)(int)r["probe_best_d"]!).ToList();
        bool valley = noisy.Count > 0 && noisy.All(r =>
            (int)r["probe_best_d"]! is >= Classes / 2 and <= 2 * Classes
            && N(r["probe_best_test_acc"]) > N(r["probe_test_acc_at_D"]) && N(r["probe_best_test_acc"]) > N(r["probe_test_acc_at_1"]));
        claims.Add(Claims.Claim("convex_valley_best_d_near_classes",
            "Probe accuracy over the number d of top principal components is a convex valley (of error) whose best d is near the number of classes",
            bestD.Count == 0 ? double.NaN : bestD.Average(),
            "in every run at ≥ 40% noise: probe_best_d in [5, 20] and its probe accuracy above both d = 1 and d = D; measured = mean probe_best_d",
            valley, quick, o.Seeds, Std(bestD)));

        // 2. Truncation ≥ the full model at ≥ 40% noise (mean over seeds, every such rate).
        var high = aggregate.Where(a => (string)a["model"]! == "mlp" && (int)a["width"]! == o.Width && N(a["noise_rate"]) >= 0.4 - 1e-9).ToList();
        var worst = high.MinBy(a => N(a["trunc_minus_full_mean"]));
        claims.Add(Claims.Claim("truncation_beats_full_model",
            "Truncating the penultimate features to the top d components (d chosen on noisy validation labels) generalises at least as well as the full converged model at high noise",
            worst is null ? double.NaN : N(worst["trunc_minus_full_mean"]),
            "min over noise rates ≥ 0.4 of mean(trunc − full test accuracy) ≥ 0",
            worst is not null && N(worst["trunc_minus_full_mean"]) >= 0, quick, o.Seeds, worst is null ? null : N(worst["trunc_minus_full_std"])));

        // 3. Truncation against early stopping at the sweep noise (reported either way).
        var atSweep = high.FirstOrDefault(a => Math.Abs(N(a["noise_rate"]) - o.SweepNoise) < 1e-9);
        claims.Add(Claims.Claim("truncation_vs_early_stopping",
            "Truncation of the converged model recovers the generalisation of early stopping (the paper: comparable)",
            atSweep is null ? double.NaN : N(atSweep["trunc_minus_early_stop_mean"]),
            $"mean(trunc − early-stopped test accuracy) at noise {o.SweepNoise} ≥ 0 (a negative value means early stopping was better)",
            atSweep is not null && N(atSweep["trunc_minus_early_stop_mean"]) >= 0, quick, o.Seeds, atSweep is null ? null : N(atSweep["trunc_minus_early_stop_std"])));

        // 4. Wider networks, larger tail: Spearman correlation of width with tail energy at d = classes.
        var pairs = widths.Select(w => ((double)(int)w["width"]!, N(w["tail_energy_at_k"]))).Where(p => double.IsFinite(p.Item2)).ToList();
        double rho = Spearman(pairs);
        claims.Add(Claims.Claim("wider_larger_tail",
            "Wider networks have a larger tail (more feature energy outside the top-d subspace, d = classes)",
            rho, $"Spearman correlation of width with tail energy at d = {Classes}, over the width sweep at noise {o.SweepNoise}, > 0",
            pairs.Count >= 2 && rho > 0, quick));
        return claims;
    }

    private static double? Std(List<double> v) => v.Count < 2 ? null : Math.Sqrt(v.Sum(x => (x - v.Average()) * (x - v.Average())) / (v.Count - 1));

    /// <summary>Spearman's rank correlation (average ranks for ties); NaN below two points.</summary>
    public static double Spearman(IReadOnlyList<(double X, double Y)> pairs)
    {
        ArgumentNullException.ThrowIfNull(pairs);
        if (pairs.Count < 2)
            return double.NaN;
        var rx = Ranks([.. pairs.Select(p => p.X)]);
        var ry = Ranks([.. pairs.Select(p => p.Y)]);
        return Probes.ActivationStats.Pearson(rx, ry);
    }

    private static double[] Ranks(double[] v)
    {
        var order = Enumerable.Range(0, v.Length).OrderBy(i => v[i]).ToArray();
        var ranks = new double[v.Length];
        for (int i = 0; i < order.Length;)
        {
            int j = i;
            while (j + 1 < order.Length && v[order[j + 1]] == v[order[i]])
                j++;
            for (int k = i; k <= j; k++)
                ranks[order[k]] = (i + j) / 2.0 + 1;
            i = j + 1;
        }
        return ranks;
    }
}

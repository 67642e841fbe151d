namespace LabelNoiseLab.Studies;

/// <summary>
/// The double-descent paper's claims (Kubo et al. 2026) against what the preset's runs measured:
/// noisy samples fitted after clean ones, separation growing with depth in the outer layers,
/// re-generalisation after the noisy labels are fitted, a massive activation in a shallow layer
/// tied to the input rather than the output. One seed per run (n_seeds 1).
/// </summary>
internal static class DoubleDescentClaims
{
    public static List<Dictionary<string, object?>> Evaluate(IReadOnlyList<Dictionary<string, object?>> phases,
        IReadOnlyDictionary<string, object?> runs, bool quick)
    {
        ArgumentNullException.ThrowIfNull(phases);
        ArgumentNullException.ThrowIfNull(runs);
        var claims = new List<Dictionary<string, object?>>();

        // 1. Noisy samples are fitted after clean ones: median first-fit epochs from the training passes.
        var gaps = phases.Select(p => N(p["median_first_fit_epoch_noisy"]) - N(p["median_first_fit_epoch_clean"])).Where(double.IsFinite).ToList();
        claims.Add(Claims.Claim("noisy_fitted_after_clean",
            "Noisy samples are learned after clean ones (median first epoch a training step predicts the given label: noisy later than clean, in every run)",
            gaps.Count == 0 ? double.NaN : gaps.Min(), "min over runs of (median first-fit epoch of noisy − of clean samples) > 0",
            gaps.Count > 0 && gaps.All(g => g > 0), quick));

        // 2. Separation grows with depth in the outer layers: the smallest clean/noisy cosine (by given label)
        //    reached during training, outermost hidden layer minus the middle one, in models with ≥ 4 hidden layers.
        var depthGaps = new List<double>();
        foreach (var layers in runs.Values.Select(r => At(r, "layers") as IEnumerable<object?>).Where(l => l is not null))
        {
            var list = layers!.ToList();
            if (list.Count < 4)
                continue;
            double outer = N(At(list[^1], "min_cosine_given")), middle = N(At(list[list.Count / 2], "min_cosine_given"));
            if (double.IsFinite(outer) && double.IsFinite(middle))
                depthGaps.Add(outer - middle);
        }
        claims.Add(Claims.Claim("separation_grows_with_depth",
            "Clean and noisy hidden activations separate more and more in the outer layers (lower clean/noisy cosine of class means deeper)",
            depthGaps.Count == 0 ? double.NaN : depthGaps.Average(), "mean over models with ≥ 4 hidden layers of (min cosine, outermost layer − middle layer) < 0",
            depthGaps.Count > 0 && depthGaps.All(g => g < 0), quick));

        // 3. Re-generalisation after interpolation.
        var regen = phases.Where(p => p["regeneralised"] is true).ToList();
        var descents = phases.Select(p => N(p["second_descent_test_error"])).Where(double.IsFinite).ToList();
        claims.Add(Claims.Claim("regeneralisation_after_interpolation",
            "After the noisy training labels are fitted, the test error falls again (epoch-wise double descent, benign overfitting)",
            descents.Count == 0 ? 0 : descents.Max(),
            "some run's smoothed test error falls by more than probe.phase_fall (relative) below its maximum, its later minimum at or after the noisy-fit epoch; measured = largest second descent of the test error (absolute)",
            regen.Count > 0, quick));

        // 4. A massive activation in a shallow layer (Sun et al.'s rule), tied to the input rather than the output.
        double peakRatio = double.NaN, inputMargin = double.NaN;
        bool massive = false, inputTied = false;
        foreach (var layers in runs.Values.Select(r => At(r, "layers") as IEnumerable<object?>).Where(l => l is not null))
        {
            var list = layers!.ToList();
            foreach (var layer in list.Take(Math.Max(1, list.Count / 2)))
            {
                double ratio = N(At(layer, "peak_max_to_median_ratio"));
                if (double.IsFinite(ratio) && !(ratio <= peakRatio))
                    peakRatio = ratio;
                if (At(layer, "massive_epochs") is int m && m > 0)
                {
                    massive = true;
                    double margin = N(At(layer, "final_max_unit_input_r2")) - Math.Max(N(At(layer, "final_max_unit_eta2_given")), N(At(layer, "final_max_unit_eta2_true")));
                    if (double.IsFinite(margin) && !(margin <= inputMargin))
                        inputMargin = margin;
                    inputTied |= margin > 0;
                }
            }
        }
        claims.Add(Claims.Claim("massive_activation_in_shallow_layer",
            "A single very large activation appears in a shallow layer (larger than probe.massive_abs and probe.massive_ratio × the median, Sun et al. 2024)",
            peakRatio, "some shallow layer (first half of the hidden layers) flagged massive at some evaluation; measured = largest max/median ratio there",
            massive, quick));
        claims.Add(Claims.Claim("massive_activation_tied_to_input",
            "The massive activation follows the input pattern, not the output",
            inputMargin, "in a massive shallow layer: R² of the top unit on the input (norm + 10 PCs) minus max(η² over given, η² over true labels) > 0; NaN when no layer was massive",
            inputTied, quick));
        return claims;
    }

    private static object? At(object? block, string key) =>
        block is IReadOnlyDictionary<string, object?> d && d.TryGetValue(key, out var v) ? v : null;

    private static double N(object? v) => v switch
    {
        double d => d,
        float f => f,
        int i => i,
        long l => l,
        _ => double.NaN,
    };
}

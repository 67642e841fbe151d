using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace LabelNoiseLab.Studies;

/// <summary>One claim as read back from a summary.json (see <see cref="Claims"/>); <see cref="Spread"/> is NaN when none.</summary>
internal sealed record Claim(string Id, string Statement, double Measured, string Expected, bool Pass, int Seeds, double Spread, bool Quick);

/// <summary>
/// A preset's claims in <c>summary.json → claims</c>, a list of <c>{id, statement, measured,
/// expected, pass, n_seeds, spread, quick}</c>: what the paper says (<c>statement</c>), what
/// this run measured (over several seeds the mean, judged on the mean, with the standard
/// deviation as <c>spread</c>; null for one seed), what was expected, and whether it held —
/// written whether it held or not. A <c>--quick</c> run's claims (<c>quick: true</c>) only show
/// that everything runs. <see cref="Read"/> is the one reader (<c>lnlab verify</c>, reports).
/// </summary>
internal static class Claims
{
    public static Dictionary<string, object?> Claim(string id, string statement, double measured, string expected, bool pass,
        bool quick, int seeds = 1, double? spread = null) => new()
    {
        ["id"] = id,
        ["statement"] = statement,
        ["measured"] = measured,
        ["expected"] = expected,
        ["pass"] = pass,
        ["n_seeds"] = seeds,
        ["spread"] = spread,
        ["quick"] = quick,
    };

    /// <summary>Mean and sample standard deviation (n − 1; null for fewer than two values).</summary>
    public static (double Mean, double? Std) MeanStd(IReadOnlyCollection<double> values)
    {
        ArgumentNullException.ThrowIfNull(values);
        if (values.Count == 0)
            return (double.NaN, null);
        double mean = values.Average();
        return (mean, values.Count < 2 ? null : Math.Sqrt(values.Sum(v => (v - mean) * (v - mean)) / (values.Count - 1)));
    }

    /// <summary>
    /// The claims in a summary.json object, checked against the contract; null when it has no
    /// <c>claims</c> key. A malformed claim is a <see cref="DataException"/> naming
    /// <paramref name="path"/>, the claim's index and the field.
    /// </summary>
    public static List<Claim>? Read(JsonObject summary, string path)
    {
        ArgumentNullException.ThrowIfNull(summary);
        if (!summary.TryGetPropertyValue("claims", out var node))
            return null;
        if (node is not JsonArray list)
            throw new DataException(path, "'claims' is not a list; expected a list of {id, statement, measured, expected, pass, n_seeds, spread, quick}");
        var claims = new List<Claim>();
        for (int i = 0; i < list.Count; i++)
        {
            if (list[i] is not JsonObject o)
                throw new DataException(path, $"claims[{i}] is not an object");
            string Text(string key) => o[key] is JsonValue v && v.GetValueKind() == JsonValueKind.String ? v.GetValue<string>()
                : throw new DataException(path, $"claims[{i}].{key}: expected a string");
            bool Flag(string key) => o[key] is JsonValue v && v.GetValueKind() is JsonValueKind.True or JsonValueKind.False ? v.GetValue<bool>()
                : throw new DataException(path, $"claims[{i}].{key}: expected true or false");
            double Number(string key, bool nullable)
            {
                var n = o[key];
                if (n is null && nullable && o.ContainsKey(key))
                    return double.NaN;
                if (n is JsonValue v && v.GetValueKind() == JsonValueKind.Number)
                    return v.GetValue<double>();
                // Non-finite figures are written as strings ("NaN", "Infinity").
                if (n is JsonValue s && s.GetValueKind() == JsonValueKind.String && s.GetValue<string>() is "NaN" or "Infinity" or "-Infinity")
                    return double.Parse(s.GetValue<string>(), CultureInfo.InvariantCulture);
                throw new DataException(path, $"claims[{i}].{key}: expected a number{(nullable ? " or null" : "")}");
            }
            double seeds = Number("n_seeds", false);
            if (seeds < 1 || seeds != Math.Floor(seeds))
                throw new DataException(path, $"claims[{i}].n_seeds: expected a whole number ≥ 1");
            claims.Add(new Claim(Text("id"), Text("statement"), Number("measured", true), Text("expected"), Flag("pass"),
                (int)seeds, Number("spread", true), Flag("quick")));
        }
        return claims;
    }
}

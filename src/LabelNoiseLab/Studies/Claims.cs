namespace LabelNoiseLab.Studies;

/// <summary>
/// A preset's claims in <c>summary.json → claims</c>: what the paper says (<c>statement</c>), what
/// this run measured, what was expected, and whether it held — written whether it held or not.
/// A <c>--quick</c> run's claims (<c>quick: true</c>) only show that everything runs.
/// </summary>
public static class Claims
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
}

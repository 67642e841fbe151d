using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using LabelNoiseLab.Reports;
using LabelNoiseLab.RunFiles;

namespace LabelNoiseLab.Studies;

/// <summary>
/// What <c>lnlab verify</c> found for one preset: its folder, its claims (empty when it wrote none),
/// or the problem that kept it from being read or run (<see cref="Problem"/>, one line naming the
/// folder or preset; <see cref="BadInput"/> when the input was at fault rather than the run).
/// </summary>
internal sealed record PresetClaims(string Preset, string Dir, IReadOnlyList<Claim> Claims, bool WroteClaims, string? Problem = null, bool BadInput = false, double Seconds = double.NaN)
{
    public static PresetClaims Failed(string preset, string dir, string problem, bool badInput = false) => new(preset, dir, [], false, problem, badInput);
}

/// <summary>
/// <c>lnlab verify</c> minus the running: which presets (<see cref="Select"/>), reading a finished
/// preset folder (<see cref="Read"/>), the table, <c>claims.csv</c> and the report page. Every
/// preset's claims come from its <c>summary.json → claims</c> (<see cref="Claims.Read"/>); a
/// preset that wrote none is listed as such.
/// </summary>
internal static class Verify
{
    public const string ClaimsFile = "claims.csv";

    /// <summary>The presets named by <c>--only</c> (all when empty), in <see cref="Presets.All"/> order, and the unknown names.</summary>
    public static (List<string> Known, List<string> Unknown) Select(IReadOnlyList<string> only)
    {
        ArgumentNullException.ThrowIfNull(only);
        var names = only.SelectMany(o => o.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)).ToList();
        if (names.Count == 0)
            return ([.. Presets.Names], []);
        return ([.. Presets.Names.Where(names.Contains)], [.. names.Where(n => !Presets.Names.Contains(n)).Distinct()]);
    }

    /// <summary>
    /// The presets with a folder in <paramref name="from"/>: <c>FROM/&lt;preset&gt;/</c> (what
    /// <c>verify --out</c> writes), or FROM itself when it is one preset's folder (its summary.json
    /// names the preset). Null when there are none.
    /// </summary>
    public static List<(string Preset, string Dir)>? FoldersIn(string from)
    {
        ArgumentNullException.ThrowIfNull(from);
        if (!Directory.Exists(from))
            return null;
        if (RunDirectory.ReadStatus(from) is not null && PresetNamed(from) is { } own)
            return [(own, from)];
        var found = Presets.Names.Where(n => Directory.Exists(Path.Combine(from, n))).Select(n => (n, Path.Combine(from, n))).ToList();
        return found.Count == 0 ? null : found;
    }

    /// <summary>What a finished preset folder's summary.json says of <c>quick</c>; null when it says nothing (or cannot be read).</summary>
    internal static bool? QuickOf(string dir)
    {
        try
        {
            return JsonNode.Parse(File.ReadAllText(Path.Combine(dir, RunDirectory.SummaryFile))) is JsonObject o && o["quick"] is JsonValue v
                && v.TryGetValue(out bool quick) ? quick : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or System.Text.Json.JsonException)
        {
            return null;
        }
    }

    private static string? PresetNamed(string dir)
    {
        try
        {
            return JsonNode.Parse(File.ReadAllText(Path.Combine(dir, RunDirectory.SummaryFile))) is JsonObject o && o["preset"] is JsonValue v
                && v.TryGetValue(out string? name) && Presets.Names.Contains(name) ? name : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or System.Text.Json.JsonException)
        {
            return null;
        }
    }

    /// <summary>
    /// Reads the finished folder of <paramref name="preset"/>. Never throws on a bad folder: a
    /// folder that is not a preset's (no status, no summary.json, another preset's, malformed claims)
    /// is a <see cref="PresetClaims.Problem"/> with <see cref="PresetClaims.BadInput"/>; a run that
    /// did not complete is a problem naming its status.
    /// </summary>
    public static PresetClaims Read(string dir, string preset)
    {
        ArgumentNullException.ThrowIfNull(dir);
        ArgumentNullException.ThrowIfNull(preset);
        try
        {
            if (!Directory.Exists(dir))
                return PresetClaims.Failed(preset, dir, $"{dir}: no such directory; expected the folder of preset {preset}", badInput: true);
            var status = RunDirectory.ReadStatus(dir);
            string summaryPath = Path.Combine(dir, RunDirectory.SummaryFile);
            if (status is null)
                return PresetClaims.Failed(preset, dir, $"{dir}: not a preset's directory (no status file)", badInput: true);
            if (status.Value.Status != RunStatus.Complete)
                return PresetClaims.Failed(preset, dir, $"{dir}: preset {preset} ended {status.Value.Status.ToString().ToLowerInvariant()}{(status.Value.Reason is { } r ? ": " + r : "")}");
            if (!File.Exists(summaryPath))
                return PresetClaims.Failed(preset, dir, $"{summaryPath}: missing; a finished preset's directory has one", badInput: true);
            JsonNode? node;
            try
            {
                node = JsonNode.Parse(File.ReadAllText(summaryPath));
            }
            catch (System.Text.Json.JsonException e)
            {
                throw new DataException(summaryPath, $"not valid JSON ({e.Message})");
            }
            if (node is not JsonObject summary)
                throw new DataException(summaryPath, "not a JSON object");
            if (summary["preset"] is JsonValue p && p.TryGetValue(out string? named) && named != preset)
                return PresetClaims.Failed(preset, dir, $"{dir}: holds preset {named}, not {preset}", badInput: true);
            var claims = Claims.Read(summary, summaryPath);
            return new PresetClaims(preset, dir, claims ?? [], claims is not null);
        }
        catch (InputException e)
        {
            return PresetClaims.Failed(preset, dir, e.Message, badInput: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return PresetClaims.Failed(preset, dir, $"{dir}: cannot be read ({e.Message})", badInput: true);
        }
    }

    /// <summary><c>0.6132</c>, or <c>0.6132 ± 0.0123 (3 seeds)</c> over several seeds.</summary>
    public static string Measured(Claim claim)
    {
        ArgumentNullException.ThrowIfNull(claim);
        string m = claim.Measured.ToString("G4", CultureInfo.InvariantCulture);
        return claim.Seeds > 1 ? m + (double.IsNaN(claim.Spread) ? "" : " ± " + claim.Spread.ToString("G2", CultureInfo.InvariantCulture)) + $" ({claim.Seeds} seeds)" : m;
    }

    /// <summary>The rows of the table: preset, claim, measured, expected, result (PASS, FAIL, or what kept the preset from having claims).</summary>
    public static List<string[]> Rows(IReadOnlyList<PresetClaims> results)
    {
        ArgumentNullException.ThrowIfNull(results);
        var rows = new List<string[]>();
        foreach (var r in results)
        {
            if (r.Problem is not null)
                rows.Add([r.Preset, "(not read: " + r.Problem + ")", "", "", "ERROR"]);
            else if (!r.WroteClaims || r.Claims.Count == 0)
                rows.Add([r.Preset, "(the preset wrote no claims)", "", "", "-"]);
            else
                rows.AddRange(r.Claims.Select(c => new[] { r.Preset, c.Id, Measured(c), c.Expected, c.Pass ? "PASS" : "FAIL" }));
        }
        return rows;
    }

    private static readonly string[] Header = ["preset", "claim", "measured", "expected", "result"];

    /// <summary>The table as aligned plain text.</summary>
    public static string Table(IReadOnlyList<PresetClaims> results)
    {
        var rows = Rows(results);
        var widths = Header.Select((h, i) => Math.Min(i == 1 ? 44 : 40, rows.Select(r => r[i].Length).Append(h.Length).Max())).ToArray();
        var sb = new StringBuilder();
        void Line(string[] cells) => sb.AppendJoin("  ", cells.Select((c, i) => i == cells.Length - 1 ? c : c.PadRight(widths[i]))).Append('\n');
        Line(Header);
        Line([.. widths.Select(w => new string('-', w))]);
        foreach (var r in rows)
            Line(r);
        return sb.ToString();
    }

    /// <summary>
    /// <c>DIR/claims.md</c>: the table as Markdown under a line with the date, the machine and
    /// whether the runs were quick: the README's "Does it reproduce the papers?" section is pasted from it.
    /// </summary>
    public static string WriteMarkdown(string dir, IReadOnlyList<PresetClaims> results, bool quick)
    {
        string header = string.Create(CultureInfo.InvariantCulture,
            $"`lnlab verify{(quick ? " --quick" : "")}`, {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC, {Environment.MachineName} ({Environment.ProcessorCount} cores, {System.Runtime.InteropServices.RuntimeInformation.OSDescription}):\n\n");
        string path = Path.Combine(dir, "claims.md");
        AtomicFile.WriteAllText(path, header + Markdown(results));
        return path;
    }

    /// <summary>The table as Markdown (README).</summary>
    public static string Markdown(IReadOnlyList<PresetClaims> results)
    {
        var sb = new StringBuilder("| preset | claim | measured | expected | result |\n|---|---|---|---|---|\n");
        foreach (var r in Rows(results))
            sb.Append("| ").AppendJoin(" | ", r.Select(c => c.Replace("|", "\\|", StringComparison.Ordinal))).Append(" |\n");
        return sb.ToString();
    }

    /// <summary>
    /// <c>DIR/claims.csv</c>: <c>preset, id, statement, measured, expected, pass</c>, then
    /// <c>n_seeds, spread, quick</c>; one row per claim (presets without claims have none).
    /// </summary>
    public static string WriteCsv(string dir, IReadOnlyList<PresetClaims> results)
    {
        ArgumentNullException.ThrowIfNull(results);
        var sb = new StringBuilder("preset,id,statement,measured,expected,pass,n_seeds,spread,quick\n");
        foreach (var r in results.Where(r => r.Problem is null))
            foreach (var c in r.Claims)
                sb.AppendJoin(',', [Quote(r.Preset), Quote(c.Id), Quote(c.Statement), MetricsWriter.Format(c.Measured), Quote(c.Expected),
                    c.Pass ? "true" : "false", c.Seeds.ToString(CultureInfo.InvariantCulture), MetricsWriter.Format(c.Spread), c.Quick ? "true" : "false"]).Append('\n');
        string path = Path.Combine(dir, ClaimsFile);
        AtomicFile.WriteAllText(path, sb.ToString());
        return path;
    }

    /// <summary>
    /// <c>DIR/report.html</c>: the claims table (statements in full), a chart of passed and failed
    /// claims per preset, and a link to each preset's own report (written here too).
    /// </summary>
    public static string WritePage(string dir, IReadOnlyList<PresetClaims> results, bool quick)
    {
        ArgumentNullException.ThrowIfNull(results);
        var body = new StringBuilder();
        body.Append("<h1>lnlab verify").Append(quick ? " --quick" : "").Append("</h1>\n<p>")
            .Append(WebUtility.HtmlEncode(DateTime.UtcNow.ToString("yyyy-MM-dd HH:mm 'UTC'", CultureInfo.InvariantCulture))).Append(", ")
            .Append(WebUtility.HtmlEncode(Environment.MachineName)).Append(", ").Append(Environment.ProcessorCount.ToString(CultureInfo.InvariantCulture)).Append(" cores.")
            .Append(quick ? " Quick runs only show that every preset runs and writes its claims; they do not reproduce the papers." : "").Append("</p>\n");
        var counts = new JsonArray();
        foreach (var r in results)
        {
            counts.Add(new JsonObject { ["preset"] = r.Preset, ["result"] = "pass", ["claims"] = r.Claims.Count(c => c.Pass) });
            counts.Add(new JsonObject { ["preset"] = r.Preset, ["result"] = "fail", ["claims"] = r.Claims.Count(c => !c.Pass) });
        }
        var chart = new JsonObject
        {
            ["$schema"] = "https://vega.github.io/schema/vega-lite/v5.json",
            ["title"] = "claims per preset",
            ["width"] = 360,
            ["height"] = 160,
            ["data"] = new JsonObject { ["values"] = counts },
            ["mark"] = "bar",
            ["encoding"] = new JsonObject
            {
                ["y"] = new JsonObject { ["field"] = "preset", ["type"] = "nominal" },
                ["x"] = new JsonObject { ["field"] = "claims", ["type"] = "quantitative", ["title"] = "claims" },
                ["color"] = new JsonObject
                {
                    ["field"] = "result", ["type"] = "nominal",
                    ["scale"] = new JsonObject { ["domain"] = new JsonArray("pass", "fail"), ["range"] = new JsonArray("#2a9d4b", "#d1495b") },
                },
            },
        };
        body.Append(HtmlReport.ChartSlot(0));
        body.Append("<table><tr><th>preset</th><th>claim</th><th>statement</th><th>measured</th><th>expected</th><th>result</th></tr>\n");
        foreach (var r in results)
        {
            string link = "<a href=\"" + WebUtility.HtmlEncode(Uri.EscapeDataString(Path.GetFileName(r.Dir.TrimEnd('/'))) + "/" + HtmlReport.FileName) + "\">" + WebUtility.HtmlEncode(r.Preset) + "</a>";
            if (r.Problem is not null || !r.WroteClaims || r.Claims.Count == 0)
            {
                string what = r.Problem is not null ? "not read: " + r.Problem : "the preset wrote no claims";
                body.Append("<tr><td>").Append(r.Problem is null ? link : WebUtility.HtmlEncode(r.Preset)).Append("</td><td colspan=\"5\"><i>").Append(WebUtility.HtmlEncode(what)).Append("</i></td></tr>\n");
                continue;
            }
            foreach (var c in r.Claims)
            {
                body.Append("<tr><td>").Append(link).Append("</td><td>").Append(WebUtility.HtmlEncode(c.Id)).Append("</td><td>").Append(WebUtility.HtmlEncode(c.Statement))
                    .Append("</td><td>").Append(WebUtility.HtmlEncode(Measured(c))).Append("</td><td>").Append(WebUtility.HtmlEncode(c.Expected))
                    .Append("</td><td style=\"color:").Append(c.Pass ? "#2a9d4b\"><b>PASS" : "#d1495b\"><b>FAIL").Append("</b>").Append(c.Quick ? " (quick)" : "").Append("</td></tr>\n");
            }
        }
        body.Append("</table>\n");
        return HtmlReport.WritePage(Path.Combine(dir, HtmlReport.FileName), "lnlab verify", body.ToString(), [chart]);
    }

    private static string Quote(string s) => s.IndexOfAny([',', '"', '\n']) >= 0 ? "\"" + s.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"" : s;
}

using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using LabelNoiseLab.RunFiles;
using LabelNoiseLab.Experiments;

namespace LabelNoiseLab.Reports;

/// <summary>A run folder found under a directory: its path, config and summary.json (null when not written).</summary>
internal sealed record FoundRun(string Path, ExperimentConfig Config, RunStatus Status, JsonObject? Summary);

/// <summary>
/// <c>lnlab summarize DIR</c>: every run folder under DIR, grouped by config with the seed (and
/// name and threads) left out, one row per group in <c>DIR/summary.csv</c>: the config keys that
/// vary between groups, how many runs (and complete ones), then mean and standard deviation
/// (n − 1; empty for one run) over seeds of the final and best figures of summary.json.
/// </summary>
internal static class SweepSummary
{
    public const string FileName = "summary.csv";

    /// <summary>The figures aggregated, as paths into summary.json.</summary>
    public static IReadOnlyList<string> Figures { get; } =
    [
        "final.train_acc", "final.clean_acc", "final.noisy_given_acc", "final.noisy_true_acc", "final.test_loss", "final.test_acc",
        "best_test_acc", "test_acc_at_best_val",
    ];

    private static readonly string[] Ignored = ["seed", "name", "threads"];

    /// <summary>Run folders (a status file and a config.yaml) under <paramref name="root"/>, in path order.</summary>
    public static IReadOnlyList<FoundRun> FindRuns(string root)
    {
        if (!Directory.Exists(root))
            throw new InputException($"{root}: no such directory");
        var runs = new List<FoundRun>();
        foreach (var status in Directory.EnumerateFiles(root, RunDirectory.StatusFile, SearchOption.AllDirectories).Order(StringComparer.Ordinal))
        {
            string dir = Path.GetDirectoryName(status)!;
            string config = Path.Combine(dir, RunDirectory.ConfigFile);
            if (!File.Exists(config))
                continue;
            string summaryPath = Path.Combine(dir, RunDirectory.SummaryFile);
            JsonObject? summary = null;
            if (File.Exists(summaryPath))
            {
                JsonNode? node;
                try
                {
                    node = JsonNode.Parse(File.ReadAllText(summaryPath));
                }
                catch (System.Text.Json.JsonException e)
                {
                    throw new DataException(summaryPath, $"not valid JSON ({e.Message})");
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    throw new DataException(summaryPath, $"cannot be read ({e.Message})");
                }
                summary = node as JsonObject
                    ?? throw new DataException(summaryPath, $"holds JSON {node?.GetValueKind().ToString().ToLowerInvariant() ?? "null"}; expected an object of figures");
            }
            foreach (var figure in Figures)
            {
                if (double.IsNaN(Figure(summary, figure)) && Node(summary, figure) is JsonNode bad
                    && !(bad is JsonValue v && (v.GetValueKind() == System.Text.Json.JsonValueKind.Number
                        || (v.TryGetValue(out string? text) && double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out _)))))
                    throw new DataException(summaryPath, $"'{figure}' is {Shorten(bad.ToJsonString())}; expected a number");
            }
            runs.Add(new FoundRun(dir, ExperimentConfig.Load(config), RunDirectory.ReadStatus(dir)!.Value.Status, summary));
        }
        return runs;
    }

    public static string Write(string root)
    {
        var runs = FindRuns(root);
        if (runs.Count == 0)
            throw new InputException($"{root}: no run directories under it (folders with status and config.yaml)");
        var keys = ConfigKeys.All.Select(k => k.Name).Where(k => !Ignored.Contains(k))
            .Where(k => runs.Select(r => Format(r.Config.Get(k))).Distinct().Count() > 1).ToList();
        var groups = runs.GroupBy(r => string.Join(",", keys.Select(k => k + "=" + Format(r.Config.Get(k))))).ToList();

        var csv = new StringBuilder();
        var header = new List<string> { "point" };
        header.AddRange(keys);
        header.AddRange(["runs", "complete", "seeds"]);
        foreach (var f in Figures)
            header.AddRange([f.Replace('.', '_') + "_mean", f.Replace('.', '_') + "_std"]);
        csv.AppendJoin(',', header).Append('\n');
        foreach (var g in groups)
        {
            var first = g.First();
            var row = new List<string> { Quote(g.Key.Length == 0 ? Path.GetRelativePath(root, first.Path) : g.Key) };
            row.AddRange(keys.Select(k => Quote(Format(first.Config.Get(k)))));
            row.Add(g.Count().ToString(CultureInfo.InvariantCulture));
            row.Add(g.Count(r => r.Status == RunStatus.Complete).ToString(CultureInfo.InvariantCulture));
            row.Add(Quote(string.Join(" ", g.Select(r => r.Config.Seed.ToString(CultureInfo.InvariantCulture)))));
            foreach (var f in Figures)
            {
                var values = g.Where(r => r.Status == RunStatus.Complete).Select(r => Figure(r.Summary, f)).Where(v => !double.IsNaN(v)).ToList();
                double mean = values.Count == 0 ? double.NaN : values.Average();
                double std = values.Count < 2 ? double.NaN : Math.Sqrt(values.Sum(v => (v - mean) * (v - mean)) / (values.Count - 1));
                row.Add(MetricsWriter.Format(mean));
                row.Add(MetricsWriter.Format(std));
            }
            csv.AppendJoin(',', row).Append('\n');
        }
        string path = Path.Combine(root, FileName);
        AtomicFile.WriteAllText(path, csv.ToString());
        return path;
    }

    /// <summary>
    /// summary.csv as lines for a terminal: per point, the runs and the final test accuracy,
    /// memorisation (noisy_given_acc) and recovery (noisy_true_acc) as mean ± std over seeds.
    /// </summary>
    public static string Describe(string csvPath)
    {
        var table = HtmlReport.ReadCsv(csvPath);
        var sb = new StringBuilder();
        foreach (var row in table.Rows)
        {
            sb.Append(Format(row.GetValueOrDefault("point"))).Append(": ").Append(Format(row.GetValueOrDefault("complete"))).Append(" of ")
                .Append(Format(row.GetValueOrDefault("runs"))).Append(" runs complete");
            foreach (var (figure, label) in (ReadOnlySpan<(string, string)>)[("final_test_acc", "test acc"), ("final_noisy_given_acc", "memorisation"), ("final_noisy_true_acc", "recovery")])
            {
                if (row.GetValueOrDefault(figure + "_mean") is not double mean)
                    continue;
                sb.Append(", ").Append(label).Append(' ').Append(mean.ToString("F4", CultureInfo.InvariantCulture));
                if (row.GetValueOrDefault(figure + "_std") is double std)
                    sb.Append(" ± ").Append(std.ToString("F4", CultureInfo.InvariantCulture));
            }
            sb.Append('\n');
        }
        return sb.ToString();
    }

    /// <summary>A number in summary.json by dotted path; NaN when absent, null or not a number.</summary>
    public static double Figure(JsonObject? summary, string path)
    {
        if (Node(summary, path) is not JsonValue v)
            return double.NaN;
        if (v.TryGetValue(out double d))
            return d;
        return v.TryGetValue(out string? s) && double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out d) ? d : double.NaN;
    }

    /// <summary>The node at a dotted path of summary.json; null when absent.</summary>
    private static JsonNode? Node(JsonObject? summary, string path)
    {
        JsonNode? node = summary;
        foreach (var part in path.Split('.'))
            node = node is JsonObject o && o.TryGetPropertyValue(part, out var child) ? child : null;
        return node;
    }

    private static string Shorten(string text) => text.Length <= 60 ? text : text[..57] + "...";

    internal static string Format(object? value) => value switch
    {
        null => "",
        string s => s,
        double d => d.ToString("R", CultureInfo.InvariantCulture),
        System.Collections.IEnumerable e => string.Join(" ", e.Cast<object?>().Select(Format)),
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => value.ToString() ?? "",
    };

    private static string Quote(string s) => s.IndexOfAny([',', '"', '\n']) >= 0 ? "\"" + s.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"" : s;
}

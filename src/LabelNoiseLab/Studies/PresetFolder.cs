using System.Text.Json;
using System.Text.Json.Nodes;
using LabelNoiseLab.RunFiles;
using LabelNoiseLab.Training;

namespace LabelNoiseLab.Studies;

/// <summary>
/// <c>preset.json</c> in a preset's folder, written when the preset starts: which preset, and its
/// request (<c>--quick</c>, <c>--seeds</c>, <c>--set</c>), so that <c>lnlab resume DIR</c> needs
/// nothing but the folder. A folder written by another format of it (or before it existed) is
/// refused with one line.
/// </summary>
internal static class PresetFolder
{
    public const string FileName = "preset.json";

    /// <summary>The version of <c>preset.json</c> this lnlab writes and reads.</summary>
    public const int FormatVersion = 1;

    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true };

    /// <summary>Whether <paramref name="dir"/> holds a <c>preset.json</c>.</summary>
    public static bool IsPresetFolder(string dir) => File.Exists(Path.Combine(dir, FileName));

    /// <summary>
    /// Whether <paramref name="dir"/> looks like a preset's folder written before presets recorded
    /// their request: a run folder with no <c>preset.json</c> whose summary.json or config.yaml names
    /// a preset, or that holds runs of its own.
    /// </summary>
    public static bool LooksLikeOldPresetFolder(string dir)
    {
        if (!Directory.Exists(dir) || IsPresetFolder(dir) || !File.Exists(Path.Combine(dir, RunDirectory.StatusFile)))
            return false;
        string summary = Path.Combine(dir, RunDirectory.SummaryFile);
        if (File.Exists(summary) && File.ReadAllText(summary).Contains("\"preset\":", StringComparison.Ordinal))
            return true;
        string config = Path.Combine(dir, RunDirectory.ConfigFile);
        if (File.Exists(config) && File.ReadLines(config).Any(l => l.StartsWith('#') && l.Contains("preset", StringComparison.Ordinal)))
            return true;
        return Directory.EnumerateDirectories(dir).Any(d => RunDirectory.ReadStatus(d) is not null
            || Directory.Exists(d) && Directory.EnumerateDirectories(d).Any(e => File.Exists(Path.Combine(e, RunDirectory.StatusFile))));
    }

    /// <summary>Writes <c>preset.json</c> for <paramref name="preset"/> run with <paramref name="request"/>.</summary>
    public static void Write(RunDirectory dir, string preset, PresetRequest request)
    {
        ArgumentNullException.ThrowIfNull(dir);
        ArgumentNullException.ThrowIfNull(request);
        var node = new JsonObject
        {
            ["format_version"] = FormatVersion,
            ["preset"] = preset,
            ["quick"] = request.Quick,
            ["seeds"] = request.Seeds,
            ["sets"] = new JsonArray([.. request.Sets.Select(s => (JsonNode?)JsonValue.Create(s))]),
            ["dir"] = dir.Path,
            ["toolkit_version"] = Provenance.ToolkitVersion,
            ["git_commit"] = Provenance.GitCommit,
        };
        dir.WriteText(FileName, node.ToJsonString(Json) + "\n");
    }

    /// <summary>
    /// Reads <c>preset.json</c>: the preset's name, its request, the folder's path as given when it
    /// started, and the git commit it was started from. Anything missing or of another format is a
    /// <see cref="DataException"/> naming the file.
    /// </summary>
    public static (string Preset, PresetRequest Request, string? StartedAs, string? Commit) Read(string dir)
    {
        string path = Path.Combine(dir, FileName);
        JsonObject o;
        try
        {
            o = JsonNode.Parse(File.ReadAllText(path)) as JsonObject ?? throw new DataException(path, "not a JSON object");
        }
        catch (JsonException e)
        {
            throw new DataException(path, $"not valid JSON ({e.Message})");
        }
        int version = o["format_version"] is JsonValue v && v.TryGetValue(out int n) ? n : 0;
        if (version != FormatVersion)
            throw new DataException(path, $"format_version {version}, this lnlab reads {FormatVersion} (written by another version of lnlab); run the preset again with --overwrite");
        try
        {
            string preset = o["preset"]?.GetValue<string>() ?? throw new DataException(path, "has no 'preset'");
            var request = new PresetRequest
            {
                Quick = o["quick"]?.GetValue<bool>() ?? throw new DataException(path, "has no 'quick'"),
                Seeds = o["seeds"]?.GetValue<int>(),
                Sets = o["sets"] is JsonArray sets ? [.. sets.Select(s => s?.GetValue<string>() ?? throw new DataException(path, "a null in 'sets'"))]
                    : throw new DataException(path, "has no 'sets'"),
            };
            return (preset, request, o["dir"]?.GetValue<string>(), o["git_commit"]?.GetValue<string>());
        }
        catch (Exception e) when (e is InvalidOperationException or FormatException)
        {
            throw new DataException(path, $"a value has the wrong type ({e.Message})");
        }
    }

    /// <summary>The runs inside a preset's folder (two levels deep: runs/, audits/, folds/ and per-model folders), counted by status.</summary>
    public static SortedDictionary<RunStatus, int> SubRuns(string dir)
    {
        var counts = new SortedDictionary<RunStatus, int>();
        foreach (var d in Directory.EnumerateDirectories(dir, "*", new EnumerationOptions { RecurseSubdirectories = true, MaxRecursionDepth = 1 }))
        {
            if (Path.GetFileName(d).StartsWith('.') || Path.GetFileName(d) == RunDirectory.CheckpointsFolder || RunDirectory.ReadStatus(d) is not { } s)
                continue;
            counts[s.Status] = counts.GetValueOrDefault(s.Status) + 1;
        }
        return counts;
    }
}

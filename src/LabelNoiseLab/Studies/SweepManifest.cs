using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using LabelNoiseLab.RunFiles;

namespace LabelNoiseLab.Studies;

/// <summary>How one point of a sweep stands, as <c>lnlab sweep status</c> reports it.</summary>
public enum PointState
{
    /// <summary>Not started: the point's folder has no run status yet.</summary>
    Pending,
    /// <summary>Its status says running and its lock's owner is alive (or on another host).</summary>
    Running,
    /// <summary>Ended by a signal, or its process is gone without a final status; running the sweep again resumes it.</summary>
    Interrupted,
    /// <summary>Ended failed; <see cref="PointStatus.Reason"/> says why.</summary>
    Failed,
    /// <summary>Training diverged; <see cref="PointStatus.Reason"/> says where.</summary>
    Diverged,
    /// <summary>Finished; running the sweep again skips it.</summary>
    Complete,
}

/// <summary>One point's state with its reason (a failed or interrupted run's status line; "process gone" for a killed one).</summary>
public sealed record PointStatus(int Index, string RelativeDir, PointState State, string? Reason);

/// <summary>
/// <c>DIR/sweep.json</c>: which sweep file wrote a sweep directory (its path, name, a SHA-256 over
/// every point's folder and resolved config) and its points in order. Written before any point
/// runs; a sweep whose points differ is refused in that directory, so two sweeps never mix their
/// runs. <c>lnlab sweep status DIR</c> reads the points from it.
/// </summary>
public static class SweepManifest
{
    /// <summary>The manifest's file name in the sweep directory.</summary>
    public const string FileName = "sweep.json";

    /// <summary>SHA-256 (hex) over the sweep's name and every point's folder and resolved config, in order.</summary>
    public static string Fingerprint(SweepPlan plan)
    {
        ArgumentNullException.ThrowIfNull(plan);
        var text = new StringBuilder().Append("name\n").Append(plan.Name).Append('\n');
        foreach (var p in plan.Points)
            text.Append("point ").Append(p.Index.ToString(CultureInfo.InvariantCulture)).Append('\n').Append(p.RelativeDir).Append('\n').Append(p.Config.ToYaml()).Append('\n');
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text.ToString())));
    }

    /// <summary>
    /// Makes <paramref name="outDir"/> this sweep's directory: writes <c>sweep.json</c>, or checks
    /// that the one there was written by the same sweep (same points and configs); a directory of
    /// another sweep, or one holding run folders but no <c>sweep.json</c> with configs that
    /// differ, is refused with one line naming it.
    /// </summary>
    public static void Claim(SweepPlan plan, string sweepFile, string outDir)
    {
        ArgumentNullException.ThrowIfNull(plan);
        string fingerprint = Fingerprint(plan);
        string path = Path.Combine(outDir, FileName);
        if (File.Exists(path))
        {
            var old = Read(outDir);
            if (old.Fingerprint != fingerprint)
                throw new InputException($"{outDir}: a sweep directory written by a different sweep file ({old.File}, name '{old.Name}', {old.Points.Count} points; {sweepFile} has {plan.Points.Count} with other configs); use another --out");
            return;
        }
        if (Directory.Exists(outDir))
        {
            // A sweep directory from before sweep.json: its resolved configs must be this sweep's.
            foreach (var p in plan.Points)
            {
                string config = Path.Combine(outDir, "configs", $"p{p.Index:D4}.yaml");
                if (File.Exists(config) && File.ReadAllText(config) != p.Config.ToYaml())
                    throw new InputException($"{outDir}: a sweep directory written by a different sweep file ({config} differs from point {p.Index} of {sweepFile}); use another --out");
            }
        }
        Directory.CreateDirectory(outDir);
        var json = new JsonObject
        {
            ["file"] = Path.GetFullPath(sweepFile),
            ["name"] = plan.Name,
            ["fingerprint"] = fingerprint,
            ["points"] = new JsonArray([.. plan.Points.Select(p => (JsonNode)new JsonObject { ["index"] = p.Index, ["dir"] = p.RelativeDir.Replace('\\', '/') })]),
        };
        AtomicFile.WriteAllText(path, json.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
    }

    /// <summary>What <c>DIR/sweep.json</c> says; a directory without one, or a damaged one, is bad input naming it.</summary>
    public static (string File, string Name, string Fingerprint, IReadOnlyList<string> Points) Read(string outDir)
    {
        string path = Path.Combine(outDir, FileName);
        if (!Directory.Exists(outDir))
            throw new InputException($"{outDir}: no such sweep directory");
        if (!File.Exists(path))
            throw new InputException($"{outDir}: not a sweep directory (no {FileName}; lnlab sweep writes one)");
        try
        {
            var json = JsonNode.Parse(File.ReadAllText(path))?.AsObject() ?? throw new FormatException("not an object");
            var points = json["points"]!.AsArray().Select((p, i) =>
            {
                if ((int)p!["index"]! != i)
                    throw new FormatException($"point {i} has index {p["index"]}");
                string dir = (string)p["dir"]!;
                if (dir.Length == 0 || Path.IsPathRooted(dir) || dir.Split('/').Contains(".."))
                    throw new FormatException($"point {i}: '{dir}' is not a folder inside the sweep directory");
                return dir;
            }).ToList();
            return ((string)json["file"]!, (string)json["name"]!, (string)json["fingerprint"]!, points);
        }
        catch (Exception e) when (e is JsonException or FormatException or InvalidOperationException or NullReferenceException or ArgumentException)
        {
            throw new InputException($"{path}: damaged ({e.Message.ReplaceLineEndings(" ")})");
        }
    }

    /// <summary>
    /// Each point of the sweep in <paramref name="outDir"/>: pending (no run yet), running (its
    /// status says so and its lock's owner is alive, or on another host), interrupted (ended by a
    /// signal, or its process is gone without a final status), failed, diverged or complete.
    /// </summary>
    public static IReadOnlyList<PointStatus> Status(string outDir)
    {
        var me = RunOwner.Current(_ => null);
        return [.. Read(outDir).Points.Select((rel, i) =>
        {
            string dir = Path.Combine(outDir, rel);
            return RunDirectory.ReadStatus(dir) switch
            {
                null => new PointStatus(i, rel, PointState.Pending, null),
                { Status: RunStatus.Complete } => new PointStatus(i, rel, PointState.Complete, null),
                { Status: RunStatus.Failed } s => new PointStatus(i, rel, PointState.Failed, s.Reason),
                { Status: RunStatus.Diverged } s => new PointStatus(i, rel, PointState.Diverged, s.Reason),
                { Status: RunStatus.Interrupted } s => new PointStatus(i, rel, PointState.Interrupted, s.Reason),
                _ => Alive(dir, me)
                    ? new PointStatus(i, rel, PointState.Running, null)
                    : new PointStatus(i, rel, PointState.Interrupted, "its process is gone (killed); the sweep resumes it when run again"),
            };
        })];
    }

    private static bool Alive(string dir, RunOwner me)
    {
        string lockFile = Path.Combine(dir, RunLock.FileName);
        string text;
        try
        {
            text = File.ReadAllText(lockFile);
        }
        catch (IOException)
        {
            return false; // no lock: nobody writes the run
        }
        // A lock naming no owner is being written right now; otherwise alive unless provably gone from this host.
        return RunOwner.Parse(text) is not { } owner || !owner.IsGoneFor(me);
    }

    /// <summary>The status as text: one line per point, then one line of totals.</summary>
    public static string Format(IReadOnlyList<PointStatus> points)
    {
        ArgumentNullException.ThrowIfNull(points);
        var sb = new StringBuilder();
        foreach (var p in points)
            sb.Append(CultureInfo.InvariantCulture, $"p{p.Index:D4}  {Word(p.State),-11}  {p.RelativeDir}{(p.Reason is null ? "" : "  (" + p.Reason + ")")}\n");
        int Count(PointState s) => points.Count(p => p.State == s);
        sb.Append(CultureInfo.InvariantCulture,
            $"{points.Count} points: {Count(PointState.Complete)} complete, {Count(PointState.Running)} running, {Count(PointState.Interrupted)} interrupted, {Count(PointState.Failed)} failed, {Count(PointState.Diverged)} diverged, {Count(PointState.Pending)} pending");
        return sb.ToString();
    }

    /// <summary>The state as <c>lnlab sweep status</c> prints it: its name in lower case.</summary>
    public static string Word(PointState state) => state.ToString().ToLowerInvariant();
}

using System.Diagnostics;
using LabelNoiseLab.RunFiles;
using LabelNoiseLab.Training;
using LabelNoiseLab.Studies;

namespace LabelNoiseLab.Cli;

/// <summary>What `lnlab sweep` was asked to do.</summary>
public sealed record SweepOptions
{
    public required string File { get; init; }
    public int Jobs { get; init; } = 1;
    public string? Shard { get; init; }
    public string? OutDir { get; init; }
    public string? DataDir { get; init; }
}

/// <summary>
/// `lnlab sweep`: expands the sweep file (everything validated first), then runs this shard's
/// unfinished points as child `lnlab train` processes (`lnlab resume` for a point that has a
/// checkpoint), <c>--jobs</c> at a time; each child's output goes to <c>logs/pNNNN.log</c>.
/// </summary>
public sealed class SweepWorker(TextWriter stdout, string runsRoot = "runs")
{
    public int Run(SweepOptions o)
    {
        var plan = Sweep.Load(o.File);
        var shard = Shard.Resolve(o.Shard, Environment.GetEnvironmentVariable);
        if (o.Jobs < 1)
            throw new InputException($"--jobs {o.Jobs}: expected at least 1");
        string outDir = o.OutDir ?? Path.Combine(runsRoot, "sweep-" + plan.Name);
        if (File.Exists(outDir))
            throw new InputException($"{outDir}: exists and is a file, not a sweep directory");
        Directory.CreateDirectory(Path.Combine(outDir, "logs"));
        var results = Sweep.Run(plan, outDir, o.Jobs, shard, (p, config, dir) => RunPoint(p, config, dir, outDir, o.DataDir), stdout.WriteLine);
        int bad = results.Count(r => r.Outcome.StartsWith("failed", StringComparison.Ordinal));
        stdout.WriteLine($"sweep {outDir}: {results.Count} points of this shard, {bad} failed");
        return bad == 0 ? ExitCodes.Complete : ExitCodes.Failed;
    }

    private static string RunPoint(SweepPoint p, string config, string dir, string outDir, string? dataDir)
    {
        bool resume = RunDirectory.ReadStatus(dir) is not null && TrainingCheckpoint.Latest(dir) is not null;
        List<string> args = resume ? ["resume", dir] : ["train", "--config", config, "--out", dir, "--overwrite"];
        if (dataDir is not null)
            args.AddRange(["--data-dir", dataDir]);
        var (host, prefix) = Self();
        var start = new ProcessStartInfo(host) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in prefix.Concat(args))
            start.ArgumentList.Add(a);
        var clock = Stopwatch.StartNew();
        using var process = Process.Start(start) ?? throw new InvalidOperationException("could not start lnlab");
        var err = process.StandardError.ReadToEndAsync();
        string output = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        File.WriteAllText(Path.Combine(outDir, "logs", $"p{p.Index:D4}.log"), output + err.Result);
        string seconds = clock.Elapsed.TotalSeconds.ToString("F1", System.Globalization.CultureInfo.InvariantCulture);
        return process.ExitCode switch
        {
            ExitCodes.Complete => $"complete ({seconds} s)",
            ExitCodes.Diverged => $"diverged ({seconds} s)",
            ExitCodes.Interrupted => $"interrupted ({seconds} s): resume it with lnlab resume",
            _ => $"failed, exit {process.ExitCode}: {LastLine(err.Result)}",
        };
    }

    /// <summary>How to start this lnlab again: `dotnet lnlab.dll` (the CLI assembly, wherever it was loaded from).</summary>
    internal static (string Host, string[] Prefix) Self()
    {
        string dll = typeof(SweepWorker).Assembly.Location;
        string? process = Environment.ProcessPath;
        string host = process is not null && Path.GetFileNameWithoutExtension(process) == "dotnet" ? process : "dotnet";
        return (host, [dll]);
    }

    private static string LastLine(string text) =>
        text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).LastOrDefault() ?? "";
}

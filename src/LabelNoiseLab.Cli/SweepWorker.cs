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

    /// <summary>Write DIR/sweep.sbatch and submit it (unless <see cref="DryRun"/>) instead of running points here.</summary>
    public bool Slurm { get; init; }

    public int? Tasks { get; init; }
    public IReadOnlyList<string> SlurmOptions { get; init; } = [];
    public bool DryRun { get; init; }
}

/// <summary>
/// `lnlab sweep`: expands the sweep file (everything validated first), then runs this shard's
/// unfinished points as child `lnlab train` processes (`lnlab resume` for a point that has a
/// checkpoint), <c>--jobs</c> at a time; each child's output goes to <c>logs/pNNNN.log</c>.
/// When <paramref name="cancellation"/> fires (SIGTERM, SIGINT, SIGHUP) no further point starts,
/// each running worker gets SIGTERM (it checkpoints and ends <c>interrupted</c>) and is waited
/// for, at most <see cref="GracePeriod"/> before it is killed, and the sweep ends with exit 5.
/// The workers carry <see cref="ParentProcess.EnvironmentVariable"/>, so they get SIGTERM from
/// the kernel if the sweep itself is killed.
/// </summary>
public sealed class SweepWorker(TextWriter stdout, string runsRoot = "runs", CancellationToken cancellation = default)
{
    /// <summary>How long a signalled worker may take to checkpoint before it is killed.</summary>
    public static readonly TimeSpan GracePeriod = TimeSpan.FromSeconds(60);

    public int Run(SweepOptions o)
    {
        var plan = Sweep.Load(o.File);
        if (o.Jobs < 1)
            throw new InputException($"--jobs {o.Jobs}: expected at least 1");
        if (!o.Slurm && (o.Tasks is not null || o.SlurmOptions.Count > 0 || o.DryRun))
            throw new InputException("--tasks, --slurm-opt and --dry-run go with --slurm");
        string outDir = o.OutDir ?? Path.Combine(runsRoot, "sweep-" + plan.Name);
        if (File.Exists(outDir))
            throw new InputException($"{outDir}: exists and is a file, not a sweep directory");
        if (o.Slurm)
            return Submit(plan, o, Path.GetFullPath(outDir));
        var shard = Shard.Resolve(o.Shard, Environment.GetEnvironmentVariable);
        SweepManifest.Claim(plan, o.File, outDir);
        Directory.CreateDirectory(Path.Combine(outDir, "logs"));
        var results = Sweep.Run(plan, outDir, o.Jobs, shard, (p, config, dir) => RunPoint(p, config, dir, outDir, o.DataDir), stdout.WriteLine);
        int bad = results.Count(r => r.Outcome.StartsWith("failed", StringComparison.Ordinal));
        if (cancellation.IsCancellationRequested)
        {
            stdout.WriteLine($"sweep {outDir}: interrupted; {bad} failed; run the same command again to go on (interrupted points resume from their checkpoints)");
            return ExitCodes.Interrupted;
        }
        stdout.WriteLine($"sweep {outDir}: {results.Count} points of this shard, {bad} failed");
        return bad == 0 ? ExitCodes.Complete : ExitCodes.Failed;
    }

    /// <summary>
    /// `--slurm`: checks everything (tasks, options, sbatch on PATH, the directory's sweep), claims
    /// the directory, writes DIR/sweep.sbatch and submits it with `sbatch --parsable` unless
    /// `--dry-run`; prints the job id.
    /// </summary>
    private int Submit(SweepPlan plan, SweepOptions o, string outDir)
    {
        if (o.Shard is not null)
            throw new InputException("--shard does not go with --slurm: each array task runs its own shard");
        var (host, prefix) = Self();
        var script = new SlurmScriptOptions
        {
            SweepFile = Path.GetFullPath(o.File),
            OutDir = outDir,
            Tasks = o.Tasks ?? (plan.Points.Count + o.Jobs - 1) / o.Jobs,
            Jobs = o.Jobs,
            Command = [host, .. prefix],
            SlurmOptions = o.SlurmOptions,
            DataDir = o.DataDir is null ? null : Path.GetFullPath(o.DataDir),
        };
        SlurmScript.Check(plan, script);
        string? sbatch = o.DryRun ? null : FindOnPath("sbatch")
            ?? throw new InputException($"sbatch not found on PATH (is this a Slurm login node?); use --dry-run to write {Path.Combine(outDir, SlurmScript.FileName)} without submitting it");
        SweepManifest.Claim(plan, o.File, outDir);
        Directory.CreateDirectory(Path.Combine(outDir, "logs"));
        string file = Path.Combine(outDir, SlurmScript.FileName);
        AtomicFile.WriteAllText(file, SlurmScript.Text(plan, script));
        string what = $"{plan.Points.Count} points in {script.Tasks} array tasks, {o.Jobs} at a time each";
        if (sbatch is null)
        {
            stdout.WriteLine($"wrote {file} ({what}); not submitted (--dry-run): sbatch {file}");
            return ExitCodes.Complete;
        }
        var start = new ProcessStartInfo(sbatch) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add("--parsable");
        start.ArgumentList.Add(file);
        using var process = Process.Start(start) ?? throw new InvalidOperationException("could not start sbatch");
        var err = process.StandardError.ReadToEndAsync();
        string output = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        if (process.ExitCode != 0)
            throw new InputException($"sbatch refused {file} (exit {process.ExitCode}): {LastLine(err.Result)}");
        string jobId = LastLine(output).Split(';')[0];
        stdout.WriteLine($"submitted Slurm job {jobId}: {what}; {file}; progress: lnlab sweep status {outDir}");
        return ExitCodes.Complete;
    }

    private static string? FindOnPath(string name) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Select(d => Path.Combine(d, name))
            .FirstOrDefault(File.Exists);

    private string RunPoint(SweepPoint p, string config, string dir, string outDir, string? dataDir)
    {
        if (cancellation.IsCancellationRequested)
            return "not started (interrupted)";
        bool resume = RunDirectory.ReadStatus(dir) is not null && TrainingCheckpoint.Latest(dir) is not null;
        List<string> args = resume ? ["resume", dir] : ["train", "--config", config, "--out", dir, "--overwrite"];
        if (dataDir is not null)
            args.AddRange(["--data-dir", dataDir]);
        var (host, prefix) = Self();
        var start = new ProcessStartInfo(host) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in prefix.Concat(args))
            start.ArgumentList.Add(a);
        start.Environment[ParentProcess.EnvironmentVariable] = Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture);
        var clock = Stopwatch.StartNew();
        // Started and waited for on this thread, which lives as long as the worker: the kernel's
        // parent-death signal follows the thread that forked it.
        using var process = Process.Start(start) ?? throw new InvalidOperationException("could not start lnlab");
        var err = process.StandardError.ReadToEndAsync();
        var output = process.StandardOutput.ReadToEndAsync();
        Stopwatch? signalled = null;
        using (cancellation.Register(() => ParentProcess.Signal(process.Id, ParentProcess.SIGTERM)))
        {
            while (!process.WaitForExit(200))
            {
                if (cancellation.IsCancellationRequested)
                    signalled ??= Stopwatch.StartNew();
                if (signalled is not null && signalled.Elapsed > GracePeriod)
                    process.Kill(entireProcessTree: true);
            }
        }
        process.WaitForExit();
        File.WriteAllText(Path.Combine(outDir, "logs", $"p{p.Index:D4}.log"), output.Result + err.Result);
        string seconds = clock.Elapsed.TotalSeconds.ToString("F1", System.Globalization.CultureInfo.InvariantCulture);
        return process.ExitCode switch
        {
            ExitCodes.Complete => $"complete ({seconds} s)",
            ExitCodes.Diverged => $"diverged ({seconds} s)",
            ExitCodes.Interrupted => $"interrupted ({seconds} s): the sweep resumes it when run again",
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

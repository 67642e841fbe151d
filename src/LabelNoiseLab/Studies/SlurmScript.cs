using System.Globalization;
using System.Text;

namespace LabelNoiseLab.Studies;

/// <summary>What <c>lnlab sweep FILE --slurm</c> writes into <c>DIR/sweep.sbatch</c>.</summary>
internal sealed record SlurmScriptOptions
{
    /// <summary>The sweep file (absolute path).</summary>
    public required string SweepFile { get; init; }

    /// <summary>The sweep directory (absolute path).</summary>
    public required string OutDir { get; init; }

    /// <summary>Array tasks: each runs every <see cref="Tasks"/>-th point (<c>--shard i/Tasks</c>).</summary>
    public required int Tasks { get; init; }

    /// <summary>Points each task runs at once (<c>lnlab sweep --jobs</c>).</summary>
    public required int Jobs { get; init; }

    /// <summary>How to start the built CLI: the host and its arguments, e.g. <c>/usr/bin/dotnet /opt/lnlab/lnlab.dll</c>.</summary>
    public required IReadOnlyList<string> Command { get; init; }

    /// <summary>Extra <c>#SBATCH</c> options, each one option (<c>--partition=gpu</c>).</summary>
    public IReadOnlyList<string> SlurmOptions { get; init; } = [];

    public string? DataDir { get; init; }

    /// <summary>Seconds before the time limit at which Slurm sends SIGTERM to the batch script (<c>--signal=B:TERM@N</c>).</summary>
    public int SignalSeconds { get; init; } = 120;
}

/// <summary>
/// The batch script of a sweep on Slurm: a job array of <c>Tasks</c> tasks, task k running shard
/// k+1 of the sweep with <c>--jobs</c>; <c>--requeue</c> (a preempted task is started again and
/// the sweep goes on where it stopped); <c>--signal=B:TERM@N</c> with the script forwarding the
/// signal to lnlab and waiting for it (the running points checkpoint and end interrupted); logs
/// appended per task under <c>DIR/logs/</c>. The task runs the built CLI directly.
/// </summary>
internal static class SlurmScript
{
    public const string FileName = "sweep.sbatch";

    /// <summary>Validates the options against the plan; bad input is one line naming the option.</summary>
    public static void Check(SweepPlan plan, SlurmScriptOptions o)
    {
        ArgumentNullException.ThrowIfNull(plan);
        ArgumentNullException.ThrowIfNull(o);
        if (o.Tasks < 1 || o.Tasks > plan.Points.Count)
            throw new InputException($"--tasks {o.Tasks}: expected 1 to {plan.Points.Count} (the sweep has {plan.Points.Count} points; a task runs at least one)");
        if (o.Jobs < 1)
            throw new InputException($"--jobs {o.Jobs}: expected at least 1");
        if (o.OutDir.Any(c => char.IsWhiteSpace(c) || c is '%' or '\'' or '"'))
            throw new InputException($"--out '{o.OutDir}': a sweep directory for Slurm may not contain spaces, quotes or % (its #SBATCH --output line names it)");
        foreach (string opt in o.SlurmOptions)
        {
            if (!opt.StartsWith('-') || opt.Any(char.IsControl) || opt.Trim() != opt || opt.Length < 2)
                throw new InputException($"--slurm-opt '{opt.ReplaceLineEndings(" ")}': expected one sbatch option such as --partition=gpu (no spaces around it, no line breaks)");
            string name = opt.Split('=', ' ')[0];
            if (name is "--array" or "-a" or "--output" or "-o" or "--error" or "-e" or "--signal" or "--cpus-per-task" or "-c" or "--open-mode")
                throw new InputException($"--slurm-opt '{opt}': {name} is set by lnlab sweep --slurm (see DIR/{FileName}); use --tasks or --jobs");
        }
    }

    /// <summary>CPUs each task asks for: its points at once times each point's threads (1 unless the sweep sets threads).</summary>
    public static int CpusPerTask(SweepPlan plan, int jobs)
    {
        ArgumentNullException.ThrowIfNull(plan);
        return jobs * Math.Max(1, plan.Points.Max(p => p.Config.Threads));
    }

    public static string Text(SweepPlan plan, SlurmScriptOptions o)
    {
        Check(plan, o);
        string Inv(int v) => v.ToString(CultureInfo.InvariantCulture);
        var command = o.Command.Select(Quote).Concat(["sweep", Quote(o.SweepFile), "--jobs", Inv(o.Jobs), "--shard", "\"$shard\"", "--out", Quote(o.OutDir)]);
        if (o.DataDir is not null)
            command = command.Concat(["--data-dir", Quote(o.DataDir)]);
        string logs = Path.Combine(o.OutDir, "logs");
        var sb = new StringBuilder();
        sb.Append("#!/bin/bash\n");
        sb.Append(CultureInfo.InvariantCulture, $"#SBATCH --job-name={SafeName(plan.Name)}\n");
        sb.Append(CultureInfo.InvariantCulture, $"#SBATCH --array=0-{o.Tasks - 1}\n");
        sb.Append(CultureInfo.InvariantCulture, $"#SBATCH --cpus-per-task={CpusPerTask(plan, o.Jobs)}\n");
        sb.Append("#SBATCH --requeue\n");
        sb.Append(CultureInfo.InvariantCulture, $"#SBATCH --signal=B:TERM@{o.SignalSeconds}\n");
        sb.Append("#SBATCH --open-mode=append\n");
        sb.Append(CultureInfo.InvariantCulture, $"#SBATCH --output={logs}/slurm-%A_%a.out\n");
        foreach (string opt in o.SlurmOptions)
            sb.Append(CultureInfo.InvariantCulture, $"#SBATCH {opt}\n");
        sb.Append(CultureInfo.InvariantCulture, $$"""
            # Written by `lnlab sweep --slurm`: sweep '{{plan.Name}}' ({{o.SweepFile}}), {{plan.Points.Count}} points
            # in {{o.Tasks}} array tasks, each running its shard {{o.Jobs}} point(s) at a time, into {{o.OutDir}}.
            # The task runs the CLI that was built when this file was written; it never builds.
            # Preemption: Slurm sends SIGTERM (to this script {{o.SignalSeconds}} s before the time limit; to every
            # process of the task on preemption, scancel or requeue). The script forwards it to lnlab and
            # waits: each running point checkpoints at its next step and ends interrupted. A requeued task
            # skips complete points, resumes interrupted ones from their checkpoints and starts the rest.
            # Progress: lnlab sweep status {{Quote(o.OutDir)}}
            set -u
            : "${SLURM_ARRAY_TASK_ID:?submit this file with sbatch (it is a job array)}"
            shard="$((SLURM_ARRAY_TASK_ID + 1))/{{o.Tasks}}"   # array task k runs shard k+1 (sbatch --array=K FILE reruns one)
            echo "lnlab sweep: job ${SLURM_JOB_ID:-?}, array task $SLURM_ARRAY_TASK_ID, shard $shard, restart ${SLURM_RESTART_COUNT:-0}, host $(hostname), $(date -u +%Y-%m-%dT%H:%M:%SZ)"
            {{string.Join(" ", command)}} &
            pid=$!
            trap 'echo "lnlab sweep: SIGTERM, forwarded to lnlab (pid $pid)"; kill -TERM "$pid" 2>/dev/null' TERM
            while :; do
              wait "$pid"; rc=$?
              kill -0 "$pid" 2>/dev/null && continue   # the trap ended the wait, lnlab is still checkpointing
              if [ "$rc" -gt 128 ]; then wait "$pid" 2>/dev/null; r=$?; [ "$r" -ne 127 ] && rc=$r; fi
              break
            done
            echo "lnlab sweep: shard $shard ended with exit $rc, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
            exit "$rc"

            """);
        return sb.ToString();
    }

    /// <summary>A word for the shell: single-quoted, with embedded quotes escaped.</summary>
    public static string Quote(string s)
    {
        ArgumentNullException.ThrowIfNull(s);
        return s.Length > 0 && s.All(c => char.IsAsciiLetterOrDigit(c) || c is '/' or '.' or '_' or '-' or '=' or ',' or ':' or '+')
            ? s : "'" + s.Replace("'", "'\\''", StringComparison.Ordinal) + "'";
    }

    private static string SafeName(string name) =>
        "lnlab-" + new string([.. name.Select(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-' ? c : '_')]);
}

using System.Text;
using LabelNoiseLab.Experiments;
using LabelNoiseLab.RunFiles;
using LabelNoiseLab.Training;

namespace LabelNoiseLab.Studies;

/// <summary>
/// How a run's result becomes its final status: the one status path of every run lnlab starts
/// (a top-level run, a preset, a preset's sub-runs).
/// </summary>
public static class RunOutcome
{
    /// <summary>Writes the final status the runner reported: complete (last of all), diverged, failed or interrupted with its reason.</summary>
    public static void Record(RunDirectory dir, RunResult result)
    {
        ArgumentNullException.ThrowIfNull(dir);
        ArgumentNullException.ThrowIfNull(result);
        switch (result.Status)
        {
            case RunStatus.Complete:
                dir.MarkComplete();
                break;
            case RunStatus.Diverged:
                dir.MarkDiverged(result.Reason ?? "diverged");
                break;
            case RunStatus.Failed:
                dir.MarkFailed(result.Reason ?? "failed");
                break;
            case RunStatus.Interrupted:
                dir.MarkInterrupted(result.Reason ?? "interrupted");
                break;
            default:
                throw new InvalidOperationException($"the runner returned status '{result.Status}'");
        }
    }

    /// <summary>
    /// Marks a run that an exception is leaving as failed, with the exception as its reason (bad
    /// input: the message alone). A run already ended, or a reopened folder nothing was written
    /// to yet, stays as it is.
    /// </summary>
    public static void RecordException(RunDirectory dir, Exception e)
    {
        ArgumentNullException.ThrowIfNull(dir);
        ArgumentNullException.ThrowIfNull(e);
        if (dir.Status == RunStatus.Running && dir.Touched && !dir.Staged)
            dir.MarkFailed(e is InputException ? e.Message : $"{e.GetType().Name}: {e.Message}");
    }
}

/// <summary>
/// One training run inside a preset's folder, ended: its folder and what the runner returned
/// (<see cref="Report"/>: what it measured, for the preset's own figures).
/// </summary>
public sealed record SubRun(RunDirectory Directory, RunResult Result)
{
    /// <summary>How the run ended (complete, diverged, failed or interrupted), as written to its status file.</summary>
    public RunStatus Status => Result.Status;

    /// <summary>What the trainer measured; null when the runner reports nothing (a run cancelled early).</summary>
    public TrainingReport? Report => Result.Report;

    /// <summary>
    /// Creates <paramref name="path"/> (replacing an earlier attempt), writes the config, runs it and
    /// writes its final status on every path: complete (after <paramref name="beforeComplete"/>,
    /// e.g. a probe of the trained model, has run), diverged or failed with the runner's reason;
    /// an exception (the runner's or <paramref name="beforeComplete"/>'s) marks it failed and goes on.
    /// </summary>
    public static SubRun Execute(string path, ExperimentConfig config, IExperimentRunner runner, RunContext context, Action<RunDirectory, RunResult>? beforeComplete = null)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(runner);
        ArgumentNullException.ThrowIfNull(context);
        var dir = RunDirectory.Create(path, config.Name, overwrite: true);
        try
        {
            dir.WriteConfig(config);
            var result = runner.Run(config, dir, context);
            if (result.Status == RunStatus.Complete)
                beforeComplete?.Invoke(dir, result);
            RunOutcome.Record(dir, result);
            return new SubRun(dir, result);
        }
        catch (Exception e)
        {
            RunOutcome.RecordException(dir, e);
            dir.Dispose(); // the lock; a replacement that never got ready is dropped
            throw;
        }
    }
}

/// <summary>
/// A preset's <c>metrics.csv</c> gathered from its sub-runs' rows: the sub-runs' extra columns
/// (the first one's, then any new ones later sub-runs bring, in order), then one trailing column
/// naming the sub-run (<c>model_id</c>, <c>run</c>). A column a sub-run lacks is an empty cell.
/// </summary>
internal sealed class CombinedMetrics(string trailingColumn)
{
    private readonly List<string> _extraColumns = [];
    private readonly List<(MetricsRow Row, string Trailing)> _rows = [];
    private bool _any;

    /// <summary>The whole file: empty before the first <see cref="Add"/>.</summary>
    public string Text
    {
        get
        {
            if (!_any)
                return "";
            var text = new StringBuilder(string.Join(',', [.. MetricsWriter.StandardColumns, .. _extraColumns, trailingColumn])).Append('\n');
            foreach (var (row, trailing) in _rows)
                text.Append(MetricsWriter.FormatLine(row, _extraColumns)).Append(',').Append(trailing).Append('\n');
            return text.ToString();
        }
    }

    /// <summary>Adds <paramref name="rows"/> of a sub-run, each with <paramref name="trailing"/> in the last column.</summary>
    public void Add(SubRun run, IEnumerable<MetricsRow> rows, string trailing)
    {
        ArgumentNullException.ThrowIfNull(run);
        ArgumentNullException.ThrowIfNull(rows);
        _any = true;
        foreach (var column in run.Directory.Metrics?.ExtraColumns ?? [])
        {
            if (!_extraColumns.Contains(column))
                _extraColumns.Add(column);
        }
        foreach (var row in rows)
            _rows.Add((row, trailing));
    }
}

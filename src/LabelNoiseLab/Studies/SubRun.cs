using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
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
    /// True when the run had ended (complete or diverged) in an earlier process and was kept as it
    /// is: <see cref="Report"/> was read back from its metrics.csv and summary.json, and whatever a
    /// probe wrote into its folder is there to be read.
    /// </summary>
    public bool Kept { get; init; }

    /// <summary>The extra columns of the run's metrics.csv (after the standard ones), in order.</summary>
    public IReadOnlyList<string> MetricsColumns { get; init; } = [];

    /// <summary>
    /// Runs <paramref name="config"/> in <paramref name="path"/> and writes its final status on
    /// every path: complete (after <paramref name="beforeComplete"/>, e.g. a probe of the trained
    /// model, has run), diverged, failed or interrupted with the runner's reason; an exception (the
    /// runner's or <paramref name="beforeComplete"/>'s) marks it failed and goes on. What an earlier
    /// process left there decides how (a resumed preset): a run that ended complete or diverged is
    /// kept as it is (<see cref="Kept"/>; nothing is run); a started one goes on from its newest
    /// checkpoint (from the start when it has none); anything else is replaced by a fresh run. A run
    /// left there with another config is an <see cref="InputException"/> naming it.
    /// </summary>
    public static SubRun Execute(string path, ExperimentConfig config, IExperimentRunner runner, RunContext context, Action<RunDirectory, RunResult>? beforeComplete = null)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(runner);
        ArgumentNullException.ThrowIfNull(context);
        string configFile = Path.Combine(path, RunDirectory.ConfigFile);
        string? checkpoint = null;
        var found = RunDirectory.ReadStatus(path);
        bool resume = found is not null && File.Exists(configFile);
        if (resume)
        {
            var existing = ExperimentConfig.Load(configFile);
            if (!existing.Equals(config))
            {
                string keys = string.Join(", ", ConfigKeys.All.Where(k => !k.ValueEquals(existing, config)).Select(k => k.Name));
                throw new InputException($"{path}: was run with another config than its preset asks for now ({keys}); start the preset or audit again with --overwrite");
            }
            var (status, reason) = found!.Value;
            if (status is RunStatus.Complete or RunStatus.Diverged)
                return ReadEnded(path, status, reason);
            checkpoint = TrainingCheckpoint.Latest(path);
            if (checkpoint is not null)
                TrainingCheckpoint.ReadState(checkpoint, config.ToYaml()); // a bad checkpoint fails here, the folder untouched
        }
        var dir = resume ? RunDirectory.Reopen(path) : RunDirectory.Create(path, config.Name, overwrite: true);
        try
        {
            if (resume)
                context.Progress.OnMessage(checkpoint is null ? $"{path}: started earlier without a checkpoint; running it from the start" : $"{path}: resuming from {checkpoint}");
            else
                dir.WriteConfig(config);
            var result = runner.Run(config, dir, context with { ResumeFrom = checkpoint });
            if (result.Status == RunStatus.Complete)
                beforeComplete?.Invoke(dir, result);
            RunOutcome.Record(dir, result);
            return new SubRun(dir, result) { MetricsColumns = dir.Metrics?.ExtraColumns ?? [] };
        }
        catch (Exception e)
        {
            RunOutcome.RecordException(dir, e);
            dir.Dispose(); // the lock; a replacement that never got ready is dropped
            throw;
        }
    }

    // A run an earlier process ended: its report from its files, nothing run or written.
    private static SubRun ReadEnded(string path, RunStatus status, string? reason)
    {
        var (columns, rows) = MetricsWriter.Read(Path.Combine(path, RunDirectory.MetricsFile));
        string summaryPath = Path.Combine(path, RunDirectory.SummaryFile);
        JsonNode? summary;
        try
        {
            summary = JsonNode.Parse(File.ReadAllText(summaryPath));
        }
        catch (JsonException e)
        {
            throw new DataException(summaryPath, $"not valid JSON ({e.Message})");
        }
        if (Plain(summary) is not Dictionary<string, object?> values)
            throw new DataException(summaryPath, "not a JSON object");
        var report = new TrainingReport(rows, values);
        var result = status == RunStatus.Complete ? RunResult.Complete with { Report = report } : new RunResult(status, reason) { Report = report };
        return new SubRun(RunDirectory.OpenEnded(path, status, reason), result) { Kept = true, MetricsColumns = columns };
    }

    /// <summary>
    /// A summary.json value as the trainer held it: objects as dictionaries, arrays as lists, whole
    /// numbers as int (long when larger), other numbers and "NaN"/"Infinity"/"-Infinity" as double.
    /// Written again, each gives the same JSON text.
    /// </summary>
    internal static object? Plain(JsonNode? node) => node switch
    {
        null => null,
        JsonObject o => o.ToDictionary(p => p.Key, p => Plain(p.Value)),
        JsonArray a => a.Select(Plain).ToList(),
        JsonValue v when v.GetValueKind() == JsonValueKind.String => v.GetValue<string>() switch
        {
            "NaN" => double.NaN,
            "Infinity" => double.PositiveInfinity,
            "-Infinity" => double.NegativeInfinity,
            var text => text,
        },
        JsonValue v when v.GetValueKind() is JsonValueKind.True or JsonValueKind.False => v.GetValue<bool>(),
        JsonValue v when v.TryGetValue(out int i) => i,
        JsonValue v when v.TryGetValue(out long l) => l,
        _ => node.GetValue<double>(),
    };
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
        foreach (var column in run.MetricsColumns)
        {
            if (!_extraColumns.Contains(column))
                _extraColumns.Add(column);
        }
        foreach (var row in rows)
            _rows.Add((row, trailing));
    }
}

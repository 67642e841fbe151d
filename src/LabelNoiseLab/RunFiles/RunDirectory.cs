using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;

namespace LabelNoiseLab.RunFiles;

/// <summary>What the <c>status</c> file of a run directory says.</summary>
public enum RunStatus
{
    Running,
    Complete,
    Diverged,
    Failed,

    /// <summary>Stopped by a signal after writing a checkpoint; <c>lnlab resume</c> goes on from it.</summary>
    Interrupted,
}

/// <summary>
/// The folder one run leaves behind (see DESIGN.md): <c>config.yaml</c>, <c>metrics.csv</c>,
/// <c>summary.json</c>, <c>status</c>, <c>checkpoints/</c>, plus whatever probes add. Every file
/// is written atomically. The status starts at <c>running</c> and ends, exactly once, at
/// <c>complete</c>, <c>diverged</c>, <c>failed</c> or <c>interrupted</c>; <see cref="MarkComplete"/> is the last
/// write and needs config, metrics and summary written first.
/// </summary>
public sealed class RunDirectory
{
    public const string StatusFile = "status";
    public const string ConfigFile = "config.yaml";
    public const string MetricsFile = "metrics.csv";
    public const string SummaryFile = "summary.json";
    public const string CheckpointsFolder = "checkpoints";
    public const string CheckpointExtension = ".safetensors";

    private static readonly JsonSerializerOptions JsonOptions = new()
    {
        WriteIndented = true,
        // NaN and infinities (a diverged loss, an empty group) are written as "NaN" / "Infinity".
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    private MetricsWriter? _metrics;
    private bool _statusPending;

    private RunDirectory(string path)
    {
        Path = path;
        CheckpointsPath = System.IO.Path.Combine(path, CheckpointsFolder);
    }

    /// <summary>The run folder (as given or created; not necessarily absolute).</summary>
    public string Path { get; }

    public string CheckpointsPath { get; }

    public RunStatus Status { get; private set; }

    /// <summary>Second line of the status file: why a run diverged or failed.</summary>
    public string? StatusReason { get; private set; }

    /// <summary>The metrics writer, once <see cref="OpenMetrics"/> was called.</summary>
    public MetricsWriter? Metrics => _metrics;

    /// <summary>
    /// Creates (or takes over) the run folder and marks it <c>running</c>. With no
    /// <paramref name="outDir"/> it is <c>runsRoot/&lt;name&gt;-&lt;yyyyMMdd-HHmmss&gt;</c>. An
    /// existing folder is reused only if it is a run folder (has a status file) whose run is not
    /// complete, or with <paramref name="overwrite"/>; its old contents are removed.
    /// </summary>
    public static RunDirectory Create(string? outDir, string name, bool overwrite = false, string runsRoot = "runs", DateTime? now = null)
    {
        string path = outDir ?? DefaultPath(runsRoot, name, now ?? DateTime.Now);
        if (File.Exists(path))
            throw new InputException($"{path}: exists and is a file, not a run directory");
        if (Directory.Exists(path) && Directory.EnumerateFileSystemEntries(path).Any())
        {
            var previous = ReadStatus(path);
            if (previous is null)
                throw new InputException($"{path}: exists, is not empty and is not a run directory (no status file); choose another --out");
            if (previous.Value.Status == RunStatus.Complete && !overwrite)
                throw new InputException($"{path}: holds a complete run; pass --overwrite to replace it or choose another --out");
            foreach (var dir in Directory.EnumerateDirectories(path))
                Directory.Delete(dir, recursive: true);
            foreach (var file in Directory.EnumerateFiles(path))
                File.Delete(file);
        }
        try
        {
            Directory.CreateDirectory(path);
            var run = new RunDirectory(path);
            Directory.CreateDirectory(run.CheckpointsPath);
            run.WriteStatus(RunStatus.Running, null);
            return run;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new InputException($"{path}: cannot create the run directory ({e.Message})");
        }
    }

    /// <summary>
    /// Takes over an existing, not complete run folder to resume it, deleting nothing. The status
    /// file is left as it is until the first write (then it says <c>running</c> again), so a
    /// resume that fails on bad input before writing anything leaves the folder untouched.
    /// </summary>
    public static RunDirectory Reopen(string path)
    {
        if (!Directory.Exists(path))
            throw new InputException($"{path}: no such run directory");
        var previous = ReadStatus(path) ?? throw new InputException($"{path}: not a run directory (no status file)");
        if (previous.Status == RunStatus.Complete)
            throw new InputException($"{path}: the run is already complete; nothing to resume");
        var run = new RunDirectory(path) { _statusPending = true };
        if (File.Exists(run.CheckpointsPath))
            throw new DataException(run.CheckpointsPath, "is a file; a run's checkpoints folder must be a folder");
        Directory.CreateDirectory(run.CheckpointsPath);
        return run;
    }

    /// <summary>Whether anything was written (a reopened folder that is still untouched says false).</summary>
    public bool Touched => !_statusPending;

    /// <summary>Reads a run folder's status file; null when there is none.</summary>
    public static (RunStatus Status, string? Reason)? ReadStatus(string path)
    {
        string file = System.IO.Path.Combine(path, StatusFile);
        if (!File.Exists(file))
            return null;
        var lines = File.ReadAllLines(file);
        if (lines.Length == 0 || !Enum.TryParse<RunStatus>(lines[0].Trim(), ignoreCase: true, out var status)
            || !Enum.IsDefined(status) || lines[0].Trim().Any(char.IsDigit))
            throw new DataException(file, $"unknown run status '{(lines.Length == 0 ? "" : lines[0])}'");
        return (status, lines.Length > 1 && lines[1].Length > 0 ? lines[1] : null);
    }

    /// <summary>Opens <c>metrics.csv</c> (header written at once); extra columns follow the standard ones.</summary>
    /// <param name="resumeCsv">A resumed run: the metrics.csv text stored in its checkpoint, rows kept.</param>
    public MetricsWriter OpenMetrics(IReadOnlyList<string>? extraColumns = null, string? resumeCsv = null)
    {
        EnsureRunning();
        if (_metrics is not null)
            throw new InvalidOperationException("metrics.csv is already open");
        _metrics = new MetricsWriter(FilePath(MetricsFile), extraColumns ?? [], EnsureRunning, resumeCsv);
        return _metrics;
    }

    /// <summary>Writes <c>summary.json</c> (indented) from plain values, lists and nested dictionaries.</summary>
    public void WriteSummary(IReadOnlyDictionary<string, object?> summary) =>
        WriteText(SummaryFile, JsonSerializer.Serialize(summary, JsonOptions) + "\n");

    public void WriteSummary(JsonObject summary) =>
        WriteText(SummaryFile, summary.ToJsonString(JsonOptions) + "\n");

    /// <summary>Writes (atomically) a text file in the run folder, e.g. a probe's <c>spectral.csv</c>.</summary>
    public void WriteText(string fileName, string content)
    {
        EnsureRunning();
        AtomicFile.WriteAllText(FilePath(fileName), content);
    }

    /// <summary>Writes (atomically) any file in the run folder.</summary>
    public void WriteFile(string fileName, Action<Stream> write)
    {
        EnsureRunning();
        AtomicFile.Write(FilePath(fileName), write);
    }

    /// <summary><c>checkpoints/&lt;name&gt;.safetensors</c>, e.g. <c>epoch-0005</c> or <c>final</c>.</summary>
    public string CheckpointPath(string name) =>
        System.IO.Path.Combine(CheckpointsPath, CheckName(name) + CheckpointExtension);

    /// <summary>Saves named tensors (a model's parameters) as <c>checkpoints/&lt;name&gt;.safetensors</c>.</summary>
    public string SaveCheckpoint(string name, IEnumerable<(string Name, Tensor Tensor)> tensors, IDictionary<string, string>? metadata = null)
    {
        EnsureRunning();
        string path = CheckpointPath(name);
        Safetensors.Save(path, tensors, metadata);
        return path;
    }

    /// <summary>The last write of a successful run.</summary>
    public void MarkComplete()
    {
        EnsureRunning();
        foreach (var required in (string[])[ConfigFile, MetricsFile, SummaryFile])
        {
            if (!File.Exists(FilePath(required)))
                throw new InvalidOperationException($"{Path}: cannot mark the run complete before {required} is written");
        }
        WriteStatus(RunStatus.Complete, null);
    }

    /// <summary>Ends the run as diverged, e.g. <c>MarkDiverged("diverged at step 123")</c>; files so far stay.</summary>
    public void MarkDiverged(string reason) => Finish(RunStatus.Diverged, reason);

    /// <summary>Ends the run as failed with a one-line reason.</summary>
    public void MarkFailed(string reason) => Finish(RunStatus.Failed, reason);

    /// <summary>Ends this process's part of the run after a signal (<c>interrupted at step 123</c>); a checkpoint was written to resume from.</summary>
    public void MarkInterrupted(string reason) => Finish(RunStatus.Interrupted, reason);

    public string FilePath(string fileName) => System.IO.Path.Combine(Path, CheckName(fileName));

    private void Finish(RunStatus status, string reason)
    {
        EnsureRunning();
        WriteStatus(status, reason);
    }

    private void WriteStatus(RunStatus status, string? reason)
    {
        string? oneLine = reason?.ReplaceLineEndings(" ").Trim();
        string text = status.ToString().ToLowerInvariant() + "\n" + (string.IsNullOrEmpty(oneLine) ? "" : oneLine + "\n");
        AtomicFile.WriteAllText(FilePath(StatusFile), text);
        Status = status;
        StatusReason = string.IsNullOrEmpty(oneLine) ? null : oneLine;
    }

    private void EnsureRunning()
    {
        if (Status != RunStatus.Running)
            throw new InvalidOperationException($"{Path}: the run is already {Status.ToString().ToLowerInvariant()}; nothing may be written after that");
        if (_statusPending)
        {
            _statusPending = false;
            WriteStatus(RunStatus.Running, null);
        }
    }

    private static string CheckName(string fileName)
    {
        if (fileName.Length == 0 || fileName.IndexOfAny(['/', '\\']) >= 0 || fileName is "." or ".." || fileName.StartsWith(AtomicFile.TempPrefix, StringComparison.Ordinal))
            throw new ArgumentException($"'{fileName}' is not a plain file name", nameof(fileName));
        return fileName;
    }

    private static string DefaultPath(string runsRoot, string name, DateTime now)
    {
        string stem = System.IO.Path.Combine(runsRoot, name + "-" + now.ToString("yyyyMMdd-HHmmss", CultureInfo.InvariantCulture));
        string path = stem;
        for (int i = 2; Directory.Exists(path) || File.Exists(path); i++)
            path = stem + "-" + i.ToString(CultureInfo.InvariantCulture);
        return path;
    }
}

using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;

namespace LabelNoiseLab.RunFiles;

/// <summary>What the <c>status</c> file of a run directory says.</summary>
public enum RunStatus
{
    /// <summary>The run is in progress (or its process died without saying otherwise).</summary>
    Running,
    /// <summary>The run finished and wrote all its files.</summary>
    Complete,
    /// <summary>Training diverged (a non-finite loss); the reason says where.</summary>
    Diverged,
    /// <summary>The run stopped on an error; the reason names it.</summary>
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
public sealed class RunDirectory : IDisposable
{
    /// <summary>Name of the file holding the run's <see cref="RunStatus"/> (and a reason line).</summary>
    public const string StatusFile = "status";
    /// <summary>Name of the resolved configuration the run was started with.</summary>
    public const string ConfigFile = "config.yaml";
    /// <summary>Name of the per-evaluation metrics file (see <see cref="MetricsWriter"/>).</summary>
    public const string MetricsFile = "metrics.csv";
    /// <summary>Name of the end-of-run summary.</summary>
    public const string SummaryFile = "summary.json";
    /// <summary>Name of the folder holding the checkpoints.</summary>
    public const string CheckpointsFolder = "checkpoints";
    /// <summary>File extension of a checkpoint (safetensors format).</summary>
    public const string CheckpointExtension = ".safetensors";

    private static readonly JsonSerializerOptions JsonOptions = new()
    {
        WriteIndented = true,
        // NaN and infinities (a diverged loss, an empty group) are written as "NaN" / "Infinity".
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    private MetricsWriter? _metrics;
    private bool _statusPending;
    private string _root;
    private RunLock? _lock;
    private RunLock? _oldLock;

    private RunDirectory(string path, RunLock? runLock, string? staging = null)
    {
        Path = path;
        _root = staging ?? path;
        _lock = runLock;
    }

    /// <summary>The run folder (as given or created; not necessarily absolute).</summary>
    public string Path { get; }

    /// <summary><c>checkpoints/</c> of the run (while <see cref="Staged"/>, of the folder built beside the old run).</summary>
    public string CheckpointsPath => System.IO.Path.Combine(_root, CheckpointsFolder);

    /// <summary>What the run's <c>status</c> file says now.</summary>
    public RunStatus Status { get; private set; }

    /// <summary>Second line of the status file: why a run diverged or failed.</summary>
    public string? StatusReason { get; private set; }

    /// <summary>The metrics writer, once <see cref="OpenMetrics"/> was called.</summary>
    public MetricsWriter? Metrics => _metrics;

    /// <summary>
    /// True while a run that replaces an older one (<c>--overwrite</c>) is being built in a hidden
    /// folder beside it; <see cref="Publish"/> swaps it into place, <see cref="Dispose"/> before
    /// that throws it away and leaves the old run as it was.
    /// </summary>
    public bool Staged => _oldLock is not null;

    /// <summary>
    /// Creates the run folder, takes its lock (<see cref="RunLock"/>; a live owner: one line,
    /// exit 2) and marks it <c>running</c>. With no <paramref name="outDir"/> it is
    /// <c>runsRoot/&lt;name&gt;-&lt;yyyyMMdd-HHmmss&gt;</c>. An existing run folder (one with a
    /// status file, complete or not) is replaced only with <paramref name="overwrite"/>, and only
    /// once the new run is ready (<see cref="Publish"/>): until then the new run is built in a
    /// hidden sibling folder and the old one stays as it is. A non-empty folder that is not a run
    /// is never touched.
    /// </summary>
    public static RunDirectory Create(string? outDir, string name, bool overwrite = false, string runsRoot = "runs", DateTime? now = null)
    {
        string path = outDir ?? DefaultPath(runsRoot, name, now ?? DateTime.Now);
        if (File.Exists(path))
            throw new InputException($"{path}: exists and is a file, not a run directory");
        if (HasRunFiles(path) && ReadStatus(path) is null)
            throw NotARun(path);
        RunLock runLock;
        try
        {
            Directory.CreateDirectory(path);
            runLock = RunLock.Acquire(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new InputException($"{path}: cannot create the run directory ({e.Message})");
        }
        RunDirectory? run = null;
        try
        {
            if (HasRunFiles(path))
            {
                var previous = ReadStatus(path) ?? throw NotARun(path);
                if (!overwrite)
                    throw new InputException(previous.Status == RunStatus.Complete
                        ? $"{path}: holds a complete run; pass --overwrite to replace it or choose another --out"
                        : $"{path}: holds an unfinished run (status {previous.Status.ToString().ToLowerInvariant()}{(previous.Reason is null ? "" : ": " + previous.Reason)})"
                            + (File.Exists(System.IO.Path.Combine(path, ConfigFile)) ? $"; continue it with: lnlab resume {path}, or" : ";")
                            + " pass --overwrite to replace it");
                string staging = SiblingName(path, "new");
                Directory.CreateDirectory(staging);
                run = new RunDirectory(path, runLock.CopyTo(staging), staging) { _oldLock = runLock };
                Directory.CreateDirectory(run.CheckpointsPath);
                run._statusPending = true; // the status is written when the run is swapped into place
                return run;
            }
            run = new RunDirectory(path, runLock);
            Directory.CreateDirectory(run.CheckpointsPath);
            run.WriteStatus(RunStatus.Running, null);
            return run;
        }
        catch (Exception e)
        {
            if (run is not null)
                run.Dispose();
            runLock.Dispose();
            if (e is IOException or UnauthorizedAccessException)
                throw new InputException($"{path}: cannot create the run directory ({e.Message})");
            throw;
        }
    }

    /// <summary>
    /// Takes over an existing, not complete run folder to resume it, deleting nothing, and takes
    /// its lock. The status file is left as it is until the first write (then it says
    /// <c>running</c> again), so a resume that fails on bad input before writing anything leaves
    /// the folder untouched.
    /// </summary>
    public static RunDirectory Reopen(string path)
    {
        if (!Directory.Exists(path))
            throw new InputException($"{path}: no such run directory");
        if (ReadStatus(path) is null)
            throw new InputException($"{path}: not a run directory (no status file)");
        var runLock = RunLock.Acquire(path);
        try
        {
            var previous = ReadStatus(path) ?? throw new InputException($"{path}: not a run directory (no status file)");
            if (previous.Status == RunStatus.Complete)
                throw new InputException($"{path}: the run is already complete; nothing to resume");
            var run = new RunDirectory(path, runLock) { _statusPending = true };
            if (File.Exists(run.CheckpointsPath))
                throw new DataException(run.CheckpointsPath, "is a file; a run's checkpoints folder must be a folder");
            Directory.CreateDirectory(run.CheckpointsPath);
            return run;
        }
        catch
        {
            runLock.Dispose();
            throw;
        }
    }

    /// <summary>
    /// A run that has ended (<paramref name="status"/>: complete or diverged, as its status file
    /// says), to read only: no lock is taken and nothing may be written (a resumed preset keeps
    /// such a sub-run as it is).
    /// </summary>
    internal static RunDirectory OpenEnded(string path, RunStatus status, string? reason)
    {
        if (status == RunStatus.Running)
            throw new ArgumentException("a running run has not ended", nameof(status));
        return new RunDirectory(path, null) { Status = status, StatusReason = reason };
    }

    /// <summary>
    /// The new run is ready (config valid, data loaded, model built): a run built beside an old
    /// one (<see cref="Staged"/>) replaces it now; otherwise nothing happens. Called by the runner
    /// just before training, and at the latest when the run's final status is written.
    /// </summary>
    public void Publish()
    {
        if (_oldLock is null)
            return;
        string staging = _root;
        if (_statusPending)
        {
            _statusPending = false;
            WriteStatus(RunStatus.Running, null);
        }
        string old = SiblingName(Path, "old");
        Directory.Move(Path, old);
        Directory.Move(staging, Path);
        _root = Path;
        _lock!.MovedTo(Path);
        _oldLock.MovedTo(old);
        _oldLock.Dispose();
        _oldLock = null;
        TryDeleteTree(old);
    }

    /// <summary>
    /// Ends this process's hold on the folder: releases the lock; a run still <see cref="Staged"/>
    /// is thrown away (the old run stays as it was). Writing the final status releases the lock too.
    /// </summary>
    public void Dispose()
    {
        if (_oldLock is not null)
        {
            _lock?.Dispose();
            TryDeleteTree(_root);
            _root = Path;
            _oldLock.Dispose();
            _oldLock = null;
            _lock = null;
            Status = RunStatus.Failed; // nothing may be written any more
            _statusPending = false;
        }
        _lock?.Dispose();
        _lock = null;
    }

    /// <summary>Whether anything was written (a reopened folder that is still untouched says false; so does a staged one).</summary>
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

    /// <summary>Writes <c>summary.json</c> (indented) from a JSON object.</summary>
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
        Publish();
        WriteStatus(RunStatus.Complete, null);
        ReleaseLock();
    }

    /// <summary>Ends the run as diverged, e.g. <c>MarkDiverged("diverged at step 123")</c>; files so far stay.</summary>
    public void MarkDiverged(string reason) => Finish(RunStatus.Diverged, reason);

    /// <summary>Ends the run as failed with a one-line reason.</summary>
    public void MarkFailed(string reason) => Finish(RunStatus.Failed, reason);

    /// <summary>Ends this process's part of the run after a signal (<c>interrupted at step 123</c>); a checkpoint was written to resume from.</summary>
    public void MarkInterrupted(string reason) => Finish(RunStatus.Interrupted, reason);

    /// <summary>
    /// Full path of a file in the run folder; throws <see cref="ArgumentException"/> for a name that is not
    /// a plain file name.
    /// </summary>
    public string FilePath(string fileName) => System.IO.Path.Combine(_root, CheckName(fileName));

    private void Finish(RunStatus status, string reason)
    {
        EnsureRunning();
        Publish();
        WriteStatus(status, reason);
        ReleaseLock();
    }

    private void ReleaseLock()
    {
        _lock?.Dispose();
        _lock = null;
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
        if (_statusPending && !Staged)
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

    // Anything in the folder besides a lock (a folder holding only a stale lock counts as empty).
    private static bool HasRunFiles(string path) =>
        Directory.Exists(path) && Directory.EnumerateFileSystemEntries(path).Any(e => System.IO.Path.GetFileName(e) != RunLock.FileName);

    private static InputException NotARun(string path) =>
        new($"{path}: exists, is not empty and is not a run directory (no status file); choose another --out");

    // A hidden folder beside the run: .NAME.lnlab-new-XXXXXXXX (no status file until it is swapped in).
    private static string SiblingName(string path, string what)
    {
        string full = System.IO.Path.TrimEndingDirectorySeparator(System.IO.Path.GetFullPath(path));
        return System.IO.Path.Combine(System.IO.Path.GetDirectoryName(full)!, $".{System.IO.Path.GetFileName(full)}.lnlab-{what}-{Guid.NewGuid().ToString("N")[..8]}");
    }

    private static void TryDeleteTree(string path)
    {
        try
        {
            if (Directory.Exists(path))
                Directory.Delete(path, recursive: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // a hidden leftover beside the run; it holds no status file, so no tool takes it for a run
        }
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

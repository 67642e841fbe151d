using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace LabelNoiseLab.RunFiles;

/// <summary>
/// Who holds a run directory: host, process id and the process's start time (clock ticks after
/// boot, <c>/proc/PID/stat</c> field 22, with the boot id), and under Slurm the job and array
/// task. Written as JSON into <see cref="RunLock.FileName"/>.
/// </summary>
internal sealed record RunOwner
{
    [JsonPropertyName("host")]
    public required string Host { get; init; }

    [JsonPropertyName("pid")]
    public required int Pid { get; init; }

    /// <summary>Start time of the process in clock ticks after boot (null where /proc is not there).</summary>
    [JsonPropertyName("start_time")]
    public long? StartTime { get; init; }

    [JsonPropertyName("boot_id")]
    public string? BootId { get; init; }

    [JsonPropertyName("slurm_job_id")]
    public string? SlurmJobId { get; init; }

    [JsonPropertyName("slurm_array_job_id")]
    public string? SlurmArrayJobId { get; init; }

    [JsonPropertyName("slurm_array_task_id")]
    public string? SlurmArrayTaskId { get; init; }

    /// <summary>When the lock was taken (UTC, ISO 8601): for people only.</summary>
    [JsonPropertyName("since")]
    public string? Since { get; init; }

    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull };

    /// <summary>This process, with the Slurm variables of <paramref name="env"/> (default: the environment).</summary>
    public static RunOwner Current(Func<string, string?>? env = null)
    {
        env ??= Environment.GetEnvironmentVariable;
        int pid = Environment.ProcessId;
        return new RunOwner
        {
            Host = Environment.MachineName,
            Pid = pid,
            StartTime = ProcessInfo.StartTime(pid),
            BootId = ProcessInfo.BootId(),
            SlurmJobId = Blank(env("SLURM_JOB_ID")),
            SlurmArrayJobId = Blank(env("SLURM_ARRAY_JOB_ID")),
            SlurmArrayTaskId = Blank(env("SLURM_ARRAY_TASK_ID")),
            Since = DateTime.UtcNow.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture),
        };
    }

    public string ToJson() => JsonSerializer.Serialize(this, Json) + "\n";

    /// <summary>The owner a lock file names; null when the text is not one.</summary>
    public static RunOwner? Parse(string text)
    {
        try
        {
            var owner = JsonSerializer.Deserialize<RunOwner>(text, Json);
            return owner is { Host.Length: > 0, Pid: > 0 } ? owner : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    /// <summary>In words, for error messages: <c>host node7, pid 1234, Slurm job 99</c>.</summary>
    public string Describe()
    {
        string text = $"host {Host}, pid {Pid}";
        if (SlurmArrayJobId is not null && SlurmArrayTaskId is not null)
            text += $", Slurm array job {SlurmArrayJobId} task {SlurmArrayTaskId}";
        else if (SlurmJobId is not null)
            text += $", Slurm job {SlurmJobId}";
        return text + (Since is null ? "" : $", since {Since}");
    }

    /// <summary>
    /// Whether a lock held by this owner may be taken over by <paramref name="me"/>: the owner is a
    /// process on this host (same boot) that no longer exists with that start time, or
    /// <paramref name="me"/> is the same Slurm task requeued (same job, or same array job and
    /// index) and the owner is not alive on this host. An owner on another host is assumed alive.
    /// </summary>
    /// <param name="startTimeOf">A live process's start time (null: no such process); default /proc.</param>
    public bool IsGoneFor(RunOwner me, Func<int, long?>? startTimeOf = null)
    {
        ArgumentNullException.ThrowIfNull(me);
        startTimeOf ??= ProcessInfo.StartTime;
        bool sameHost = string.Equals(Host, me.Host, StringComparison.Ordinal);
        bool aliveHere = sameHost && !DeadOnThisHost(me, startTimeOf);
        if (aliveHere)
            return false;
        return sameHost || SameSlurmTask(me);
    }

    private bool DeadOnThisHost(RunOwner me, Func<int, long?> startTimeOf)
    {
        if (BootId is not null && me.BootId is not null && BootId != me.BootId)
            return true; // the machine was restarted since
        long? now = startTimeOf(Pid);
        return now is null || (StartTime is not null && now != StartTime);
    }

    private bool SameSlurmTask(RunOwner me) =>
        SlurmArrayJobId is not null && SlurmArrayTaskId is not null
            ? SlurmArrayJobId == me.SlurmArrayJobId && SlurmArrayTaskId == me.SlurmArrayTaskId
            : SlurmJobId is not null && SlurmJobId == me.SlurmJobId && me.SlurmArrayJobId is null;

    private static string? Blank(string? s) => string.IsNullOrWhiteSpace(s) ? null : s.Trim();
}

/// <summary>Facts about processes of this machine, from /proc (Linux).</summary>
internal static class ProcessInfo
{
    /// <summary>
    /// The process's start time in clock ticks after boot (<c>/proc/PID/stat</c> field 22); null
    /// when there is no such process or it is a zombie. Without /proc: 0 while the process exists.
    /// </summary>
    public static long? StartTime(int pid)
    {
        if (!Directory.Exists("/proc/self"))
            return Exists(pid) ? 0 : null;
        string stat;
        try
        {
            stat = File.ReadAllText($"/proc/{pid.ToString(CultureInfo.InvariantCulture)}/stat");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
        // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so split after the last ')'.
        int close = stat.LastIndexOf(')');
        var fields = stat[(close + 1)..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (fields.Length < 20 || fields[0] is "Z" or "X" or "x")
            return null;
        return long.TryParse(fields[19], NumberStyles.None, CultureInfo.InvariantCulture, out long ticks) ? ticks : null;
    }

    /// <summary>This boot's id (<c>/proc/sys/kernel/random/boot_id</c>); null where there is none.</summary>
    public static string? BootId()
    {
        try
        {
            return File.ReadAllText("/proc/sys/kernel/random/boot_id").Trim();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    private static bool Exists(int pid)
    {
        try
        {
            using var p = System.Diagnostics.Process.GetProcessById(pid);
            return !p.HasExited;
        }
        catch (ArgumentException)
        {
            return false;
        }
        catch (InvalidOperationException)
        {
            return false;
        }
    }
}

/// <summary>
/// The lock of a run directory: the file <see cref="FileName"/> naming its one writer
/// (<see cref="RunOwner"/>). Taken atomically (the content is written to a temporary file that
/// is then linked into place only if no lock exists), taken over when its owner is gone
/// (<see cref="RunOwner.IsGoneFor"/>), and removed when the run ends.
/// </summary>
internal sealed class RunLock : IDisposable
{
    /// <summary>The lock file; a dot file, so tools that list a run's CSVs and reports never see it.</summary>
    public const string FileName = ".lock";

    private readonly string _text;

    private RunLock(string path, string text, RunOwner owner)
    {
        FilePath = path;
        _text = text;
        Owner = owner;
    }

    /// <summary>The lock file (it moves with a run directory built beside the old one).</summary>
    public string FilePath { get; private set; }

    public RunOwner Owner { get; }

    public bool Held { get; private set; } = true;

    /// <summary>
    /// Takes the lock of <paramref name="dir"/> for <paramref name="me"/> (default this process),
    /// or throws <see cref="InputException"/> naming the directory and its live owner.
    /// </summary>
    public static RunLock Acquire(string dir, RunOwner? me = null, Func<int, long?>? startTimeOf = null)
    {
        me ??= RunOwner.Current();
        string path = Path.Combine(dir, FileName);
        string text = me.ToJson();
        for (int attempt = 0; attempt < 500; attempt++)
        {
            if (TryCreate(path, text))
                return new RunLock(path, text, me);
            string? existing = TryRead(path);
            if (existing is null)
                continue; // released in between: try again
            var owner = RunOwner.Parse(existing);
            if (owner is null && IsYoung(path))
            {
                Thread.Sleep(Random.Shared.Next(1, 10)); // being written by its owner right now
                continue;
            }
            if (owner is null)
                throw new InputException($"{dir}: its lock file {FileName} names no owner; if no lnlab process writes to the directory, delete {path}");
            if (!owner.IsGoneFor(me, startTimeOf))
                throw new InputException($"{dir}: in use by another lnlab process ({owner.Describe()}); wait for it to end, or stop it (a stopped run can be resumed)");
            TakeOver(path, existing);
        }
        throw new InputException($"{dir}: could not take its lock {path}: other processes keep taking it");
    }

    /// <summary>Creates a second lock file for the same owner in <paramref name="dir"/> (a run built beside the old one).</summary>
    internal RunLock CopyTo(string dir)
    {
        string path = Path.Combine(dir, FileName);
        if (!TryCreate(path, _text))
            throw new IOException($"{path}: exists already");
        return new RunLock(path, _text, Owner);
    }

    /// <summary>The lock file now lies in <paramref name="dir"/> (its folder was renamed).</summary>
    internal void MovedTo(string dir) => FilePath = Path.Combine(dir, FileName);

    /// <summary>Removes the lock file if it is still this owner's.</summary>
    public void Dispose()
    {
        if (!Held)
            return;
        Held = false;
        if (TryRead(FilePath) == _text)
        {
            try
            {
                File.Delete(FilePath);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // a lock left behind is taken over by the next writer (its owner is gone)
            }
        }
    }

    // A stale lock is removed only by the holder of a second, short-lived lock (LOCK.takeover,
    // created atomically like the lock itself), and only if the lock still holds the stale text:
    // nobody else ever moves or deletes a lock file, so a fresh lock can never be lost. A takeover
    // file whose holder died (older than a few seconds) is cleared.
    private static void TakeOver(string path, string stale)
    {
        string takeover = path + ".takeover";
        if (!TryCreate(takeover, stale))
        {
            try
            {
                if (DateTime.UtcNow - File.GetLastWriteTimeUtc(takeover) > TimeSpan.FromSeconds(10))
                    File.Delete(takeover);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
            }
            Thread.Sleep(Random.Shared.Next(1, 10)); // another process is taking over: look again
            return;
        }
        try
        {
            if (TryRead(path) == stale)
                File.Delete(path);
        }
        finally
        {
            File.Delete(takeover);
        }
    }

    private static bool TryCreate(string path, string text)
    {
        // O_CREAT | O_EXCL: atomic create-new on every local file system (File.Move without
        // overwrite is not: where link(2) is refused it checks and renames). A reader may see the
        // file before its text is complete: Acquire waits for a young, unreadable lock.
        FileStream stream;
        try
        {
            stream = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.Read);
        }
        catch (IOException e) when (e is not (DirectoryNotFoundException or PathTooLongException or DriveNotFoundException))
        {
            return false; // it exists (perhaps deleted again since: the caller looks again)
        }
        using (stream)
        {
            stream.Write(System.Text.Encoding.UTF8.GetBytes(text));
            stream.Flush(flushToDisk: true);
        }
        return true;
    }

    private static bool IsYoung(string path)
    {
        try
        {
            return DateTime.UtcNow - File.GetLastWriteTimeUtc(path) < TimeSpan.FromSeconds(2);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    private static string? TryRead(string path)
    {
        try
        {
            return File.ReadAllText(path);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return null;
        }
    }
}

using System.Diagnostics;
using LabelNoiseLab.RunFiles;

namespace LabelNoiseLab.Tests;

/// <summary>
/// The lock of a run directory (<see cref="RunLock"/>): who holds it, when it may be taken over
/// (its owner gone from this host, or a requeued Slurm task), and that two takers never both win.
/// </summary>
public sealed class RunLockTests : IDisposable
{
    private readonly TempDir _temp = new("lock");

    public void Dispose() => _temp.Dispose();

    private static RunOwner Owner(string host = "node1", int pid = 100, long? start = 5, string? job = null, string? arrayJob = null, string? task = null) =>
        new() { Host = host, Pid = pid, StartTime = start, SlurmJobId = job, SlurmArrayJobId = arrayJob, SlurmArrayTaskId = task };

    [Fact]
    public void The_lock_file_names_host_pid_start_time_and_slurm_ids_and_goes_with_the_run()
    {
        var me = RunOwner.Current(name => name switch { "SLURM_JOB_ID" => "77", "SLURM_ARRAY_JOB_ID" => "70", "SLURM_ARRAY_TASK_ID" => "3", _ => null });
        Assert.Equal(Environment.ProcessId, me.Pid);
        Assert.Equal(Environment.MachineName, me.Host);
        Assert.NotNull(me.StartTime);
        Assert.Equal(ProcessInfo.StartTime(Environment.ProcessId), me.StartTime);
        using (var held = RunLock.Acquire(_temp.Path, me))
        {
            var written = RunOwner.Parse(File.ReadAllText(Path.Combine(_temp.Path, RunLock.FileName)))!;
            Assert.Equal(me, written);
            Assert.Equal(("77", "70", "3"), (written.SlurmJobId, written.SlurmArrayJobId, written.SlurmArrayTaskId));
        }
        Assert.False(File.Exists(Path.Combine(_temp.Path, RunLock.FileName)));
    }

    [Fact]
    public void A_live_owner_keeps_it_and_is_named()
    {
        using var held = RunLock.Acquire(_temp.Path);
        var e = Assert.Throws<InputException>(() => RunLock.Acquire(_temp.Path));
        Assert.Contains(_temp.Path, e.Message, StringComparison.Ordinal);
        Assert.Contains($"host {Environment.MachineName}, pid {Environment.ProcessId}", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_dead_owner_or_a_reused_pid_is_taken_over()
    {
        // a process that has ended: its pid is free (or reused, with another start time)
        using var gone = Process.Start(new ProcessStartInfo("true") { UseShellExecute = false })!;
        gone.WaitForExit();
        var me = RunOwner.Current();
        var dead = Owner(host: me.Host, pid: gone.Id, start: 1) with { BootId = me.BootId };
        Assert.True(dead.IsGoneFor(me));
        var reused = me with { StartTime = me.StartTime + 1 }; // this pid, but not this process
        Assert.True(reused.IsGoneFor(me));
        Assert.False(me.IsGoneFor(me));
        Assert.True((me with { BootId = "another-boot" }).IsGoneFor(me));

        File.WriteAllText(Path.Combine(_temp.Path, RunLock.FileName), dead.ToJson());
        using var taken = RunLock.Acquire(_temp.Path);
        Assert.Equal(Environment.ProcessId, RunOwner.Parse(File.ReadAllText(Path.Combine(_temp.Path, RunLock.FileName)))!.Pid);
        Assert.Single(Directory.GetFiles(_temp.Path)); // the stale lock was not left aside
    }

    [Fact]
    public void Another_host_is_assumed_alive_unless_it_is_this_slurm_task_requeued()
    {
        Func<int, long?> noSuchProcess = _ => null;
        var me = Owner(host: "node2", pid: 200, job: "12", arrayJob: "10", task: "4");
        Assert.False(Owner(host: "node1").IsGoneFor(me, noSuchProcess));
        Assert.True(Owner(host: "node1", job: "12", arrayJob: "10", task: "4").IsGoneFor(me, noSuchProcess));
        Assert.False(Owner(host: "node1", job: "13", arrayJob: "10", task: "5").IsGoneFor(me, noSuchProcess));
        var plain = Owner(host: "node2", pid: 300, job: "42");
        Assert.True(Owner(host: "node1", job: "42").IsGoneFor(plain, noSuchProcess));
        Assert.False(Owner(host: "node1", job: "41").IsGoneFor(plain, noSuchProcess));
        // the same task still alive on this host keeps its lock
        Assert.False(Owner(host: "node2", pid: 7, start: 9, job: "42").IsGoneFor(plain, pid => pid == 7 ? 9 : null));
    }

    [Fact]
    public void Of_many_simultaneous_takers_exactly_one_wins_also_over_a_stale_lock()
    {
        for (int round = 0; round < 20; round++)
        {
            string dir = _temp.Sub("r" + round);
            Directory.CreateDirectory(dir);
            if (round % 2 == 1)
                File.WriteAllText(Path.Combine(dir, RunLock.FileName), Owner(host: Environment.MachineName, pid: 999_999, start: 1).ToJson());
            // eight "processes" on this host, all alive (pids 1..8 with start time 1), one stale owner
            Func<int, long?> alive = pid => pid is >= 1 and <= 8 ? 1 : null;
            int wins = 0, refusals = 0;
            Parallel.For(1, 9, new ParallelOptions { MaxDegreeOfParallelism = 8 }, pid =>
            {
                try
                {
                    RunLock.Acquire(dir, Owner(host: Environment.MachineName, pid: pid, start: 1), alive);
                    Interlocked.Increment(ref wins);
                }
                catch (InputException e) when (e.Message.Contains("in use", StringComparison.Ordinal))
                {
                    Interlocked.Increment(ref refusals);
                }
            });
            Assert.Equal((1, 7), (wins, refusals));
            Assert.Equal([RunLock.FileName], Directory.GetFiles(dir).Select(Path.GetFileName));
        }
    }

    [Fact]
    public void An_unreadable_lock_is_refused_with_its_path()
    {
        File.WriteAllText(Path.Combine(_temp.Path, RunLock.FileName), "");
        var e = Assert.Throws<InputException>(() => RunLock.Acquire(_temp.Path));
        Assert.Contains(Path.Combine(_temp.Path, RunLock.FileName), e.Message, StringComparison.Ordinal);
    }
}

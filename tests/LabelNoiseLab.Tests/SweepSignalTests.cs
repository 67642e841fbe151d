using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using LabelNoiseLab.RunFiles;

namespace LabelNoiseLab.Tests;

/// <summary>
/// `lnlab sweep` and its worker processes: SIGTERM to the sweep is forwarded (the workers
/// checkpoint and end interrupted, the sweep exits 5, a second sweep resumes them), and a
/// SIGKILLed sweep leaves no orphan (the kernel sends its workers SIGTERM).
/// </summary>
public sealed class SweepSignalTests : IDisposable
{
    private readonly TempDir _temp = new("sweepsig");

    private string _dir => _temp.Path;

    public void Dispose() => _temp.Dispose();

    [DllImport("libc", SetLastError = true)]
    private static extern int kill(int pid, int sig);

    private string WriteSweep(int epochs)
    {
        File.WriteAllText(Path.Combine(_dir, "base.yaml"), $"""
            name: sig
            seed: 1
            epochs: {epochs}
            batch_size: 16
            data: {"{"}name: gaussian-mixture, samples: 200, test_samples: 100{"}"}
            noise: {"{"}kind: symmetric, seed: 2{"}"}
            model: {"{"}kind: mlp, hidden: [16]{"}"}
            optim: {"{"}kind: sgd, lr: 0.05{"}"}
            """);
        string sweep = Path.Combine(_dir, "sweep.yaml");
        File.WriteAllText(sweep, """
            name: sig
            base: base.yaml
            grid:
              noise.rate: [0.1, 0.3]
            """);
        return sweep;
    }

    private static readonly string[] Points = ["noise.rate=0.1/seed-1", "noise.rate=0.3/seed-1"];

    // The sweep's workers: processes whose parent is the sweep, with their start times.
    private static List<(int Pid, long Start)> Children(int parent) =>
        [.. Directory.EnumerateDirectories("/proc")
            .Select(Path.GetFileName)
            .Where(n => n!.All(char.IsAsciiDigit))
            .Select(n => int.Parse(n!, CultureInfo.InvariantCulture))
            .Where(pid => ParentOf(pid) == parent)
            .Select(pid => (pid, ProcessInfo.StartTime(pid) ?? -1))
            .Where(c => c.Item2 >= 0)];

    private static int? ParentOf(int pid)
    {
        try
        {
            string stat = File.ReadAllText($"/proc/{pid}/stat");
            return int.Parse(stat[(stat.LastIndexOf(')') + 1)..].Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture);
        }
        catch (IOException)
        {
            return null;
        }
    }

    // Starts the sweep and waits until both workers train (each point has written an evaluation row).
    private (Process Sweep, StringBuilder Output, string Out) StartAndWaitForTraining(string sweepFile)
    {
        string outDir = Path.Combine(_dir, "out");
        var output = new StringBuilder();
        var sweep = TestCli.Start(null, output, "sweep", sweepFile, "--jobs", "2", "--out", outDir);
        var clock = Stopwatch.StartNew();
        while (!Points.All(p => File.Exists(Path.Combine(outDir, p, "metrics.csv")) && File.ReadAllLines(Path.Combine(outDir, p, "metrics.csv")).Length >= 2)
            && !sweep.HasExited && clock.Elapsed.TotalSeconds < 60)
            Thread.Sleep(20);
        Assert.False(sweep.HasExited, "the sweep ended before it could be signalled; make its points longer\n" + output);
        return (sweep, output, outDir);
    }

    private static string Status(string outDir, string point) => File.ReadAllLines(Path.Combine(outDir, point, "status"))[0];

    [Fact]
    public void Sigterm_is_forwarded_workers_end_interrupted_the_sweep_exits_5_and_a_rerun_resumes_them()
    {
        var (sweep, output, outDir) = StartAndWaitForTraining(WriteSweep(epochs: 400));
        using (sweep)
        {
            Assert.Equal(2, Children(sweep.Id).Count);
            Assert.Equal(0, kill(sweep.Id, 15));
            Assert.True(sweep.WaitForExit(60_000), "the sweep did not end after SIGTERM");
            sweep.WaitForExit();
            Assert.True(sweep.ExitCode == 5, output.ToString());
        }
        Assert.Contains("interrupted", output.ToString(), StringComparison.Ordinal);
        foreach (var p in Points)
        {
            Assert.Equal("interrupted", Status(outDir, p));
            Assert.NotEmpty(Directory.GetFiles(Path.Combine(outDir, p, "checkpoints"), "epoch-*.safetensors"));
            Assert.False(File.Exists(Path.Combine(outDir, p, RunLock.FileName)));
        }

        var (code, stdout, stderr) = TestCli.Run(_dir, "sweep", Path.Combine(_dir, "sweep.yaml"), "--jobs", "2", "--out", outDir);
        Assert.True(code == 0, stdout + stderr);
        foreach (var (p, i) in Points.Select((p, i) => (p, i)))
        {
            Assert.Equal("complete", Status(outDir, p));
            Assert.Contains("resuming", File.ReadAllText(Path.Combine(outDir, "logs", $"p{i:D4}.log")), StringComparison.Ordinal);
            Assert.Equal(401, File.ReadAllLines(Path.Combine(outDir, p, "metrics.csv")).Length);
        }

        // a third run skips the complete points
        (code, stdout, _) = TestCli.Run(_dir, "sweep", Path.Combine(_dir, "sweep.yaml"), "--out", outDir);
        Assert.Equal(0, code);
        Assert.Contains("0 to run", stdout, StringComparison.Ordinal);
    }

    [Fact]
    public void A_sigkilled_sweep_leaves_no_orphan_its_workers_end_interrupted()
    {
        var (sweep, output, outDir) = StartAndWaitForTraining(WriteSweep(epochs: 3000));
        List<(int Pid, long Start)> workers;
        using (sweep)
        {
            workers = Children(sweep.Id);
            Assert.Equal(2, workers.Count);
            sweep.Kill(); // SIGKILL: the sweep cannot forward anything
            sweep.WaitForExit();
        }
        var clock = Stopwatch.StartNew();
        while (workers.Any(w => ProcessInfo.StartTime(w.Pid) == w.Start) && clock.Elapsed.TotalSeconds < 30)
            Thread.Sleep(50);
        Assert.True(workers.All(w => ProcessInfo.StartTime(w.Pid) != w.Start), "a worker outlived its SIGKILLed sweep\n" + output);
        foreach (var p in Points)
            Assert.Equal("interrupted", Status(outDir, p));
    }

    [Fact]
    public void A_worker_whose_sweep_is_already_gone_stops_at_once()
    {
        string config = Path.Combine(_dir, "c.yaml");
        WriteSweep(epochs: 3000);
        File.Copy(Path.Combine(_dir, "base.yaml"), config);
        string run = Path.Combine(_dir, "run");
        // LNLAB_PARENT_PID names a process that is not this worker's parent: as if the sweep died before prctl
        using var worker = TestCli.Start(new Dictionary<string, string> { ["LNLAB_PARENT_PID"] = "1" }, null, "train", "-c", config, "--out", run);
        Assert.True(worker.WaitForExit(30_000));
        worker.WaitForExit();
        Assert.Equal(5, worker.ExitCode);
        Assert.Equal("interrupted", File.ReadAllLines(Path.Combine(run, "status"))[0]);
    }
}

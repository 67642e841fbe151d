using System.Diagnostics;
using System.Text;
using LabelNoiseLab.RunFiles;

namespace LabelNoiseLab.Tests;

/// <summary>
/// A run directory has one writer (its <c>.lock</c>), and <c>--overwrite</c> replaces an older run
/// only once the new one is ready: real `lnlab train` processes where two must run at once.
/// </summary>
public sealed class RunOwnerCliTests : IDisposable
{
    private readonly TempDir _temp = new("owner");

    private string _dir => _temp.Path;

    public void Dispose() => _temp.Dispose();

    private static string Config(int epochs) => $"""
        name: owner
        seed: 3
        epochs: {epochs}
        batch_size: 16
        threads: 1
        data: {"{"}name: gaussian-mixture, samples: 300, test_samples: 100{"}"}
        noise: {"{"}kind: symmetric, rate: 0.3, seed: 2{"}"}
        model: {"{"}kind: mlp, hidden: [32]{"}"}
        optim: {"{"}kind: sgd, lr: 0.05{"}"}
        """;

    private string WriteConfig(int epochs)
    {
        string path = Path.Combine(_dir, $"config-{epochs}.yaml");
        File.WriteAllText(path, Config(epochs));
        return path;
    }

    private static string[] Snapshot(string run) =>
        [.. Directory.GetFiles(run, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal).Select(f => Path.GetRelativePath(run, f) + ":" + Convert.ToBase64String(File.ReadAllBytes(f)))];

    [Fact]
    public void A_second_train_onto_the_same_out_exits_2_naming_the_owner_and_the_first_completes_intact()
    {
        string config = WriteConfig(400);
        string reference = Path.Combine(_dir, "reference"), shared = Path.Combine(_dir, "shared");
        Assert.Equal(0, TestCli.Run(_dir, "train", "-c", config, "--out", reference).Code);

        using var first = TestCli.Start("train", "-c", config, "--out", shared);
        var clock = Stopwatch.StartNew();
        while (!File.Exists(Path.Combine(shared, "metrics.csv")) && !first.HasExited && clock.Elapsed.TotalSeconds < 60)
            Thread.Sleep(10);
        Assert.False(first.HasExited, "the first run ended before the second started; make it longer");
        var output = new StringBuilder();
        using (var second = TestCli.Start(null, output, "train", "-c", config, "--out", shared, "--overwrite"))
        {
            Assert.True(second.WaitForExit(60_000));
            second.WaitForExit();
            Assert.Equal(2, second.ExitCode);
        }
        Assert.False(first.HasExited, "the second run must have been refused while the first was running; make the first longer");
        string message = output.ToString();
        Assert.Contains($"lnlab: {shared}: in use by another lnlab process (host {Environment.MachineName}, pid {first.Id}", message, StringComparison.Ordinal);

        Assert.True(first.WaitForExit(60_000));
        first.WaitForExit();
        Assert.Equal(0, first.ExitCode);
        Assert.False(File.Exists(Path.Combine(shared, RunLock.FileName)), "the lock goes when the run ends");
        RunFilesComparison.AssertSameRun(reference, shared);
        Assert.Equal(["reference", "shared"], Directory.GetDirectories(_dir).Select(Path.GetFileName).Order(StringComparer.Ordinal));
    }

    [Fact]
    public void Overwrite_replaces_a_run_only_once_the_new_one_has_its_data()
    {
        string run = Path.Combine(_dir, "run");
        Assert.Equal(0, TestCli.Run(_dir, "train", "-c", WriteConfig(3), "--out", run).Code);
        var before = Snapshot(run);

        var (code, stdout, stderr) = TestCli.Run(_dir, "train", "-c", WriteConfig(2), "--out", run, "--overwrite",
            "--set", "data.name=csv", "--set", "data.path=/nonexistent.csv");
        Assert.Equal(2, code);
        Assert.Contains("/nonexistent.csv", stderr, StringComparison.Ordinal);
        Assert.Contains("left as it was", stdout, StringComparison.Ordinal);
        Assert.Equal(before, Snapshot(run)); // old metrics.csv, summary.json, status: untouched
        Assert.Equal(["config-2.yaml", "config-3.yaml", "run"], Directory.EnumerateFileSystemEntries(_dir).Select(Path.GetFileName).Order(StringComparer.Ordinal));

        Assert.Equal(0, TestCli.Run(_dir, "train", "-c", WriteConfig(2), "--out", run, "--overwrite").Code);
        Assert.Equal(3, File.ReadAllLines(Path.Combine(run, "metrics.csv")).Length); // header + 2 epochs
        Assert.Equal("complete", File.ReadAllLines(Path.Combine(run, "status"))[0]);
        Assert.Equal(["config-2.yaml", "config-3.yaml", "run"], Directory.EnumerateFileSystemEntries(_dir).Select(Path.GetFileName).Order(StringComparer.Ordinal));
    }

    [Fact]
    public void Train_onto_an_interrupted_run_needs_overwrite_and_points_to_resume()
    {
        string run = Path.Combine(_dir, "run");
        Assert.Equal(0, TestCli.Run(_dir, "train", "-c", WriteConfig(2), "--out", run).Code);
        File.WriteAllText(Path.Combine(run, "status"), "interrupted\ninterrupted at step 20\n");
        var before = Snapshot(run);
        var (code, _, stderr) = TestCli.Run(_dir, "train", "-c", WriteConfig(2), "--out", run);
        Assert.Equal(2, code);
        Assert.Contains("interrupted at step 20", stderr, StringComparison.Ordinal);
        Assert.Contains($"lnlab resume {run}", stderr, StringComparison.Ordinal);
        Assert.Contains("--overwrite", stderr, StringComparison.Ordinal);
        Assert.Equal(before, Snapshot(run));
    }

    [Fact]
    public void Resume_takes_over_the_lock_of_a_killed_run()
    {
        string run = Path.Combine(_dir, "run");
        Assert.Equal(0, TestCli.Run(_dir, "train", "-c", WriteConfig(2), "--out", run).Code);
        // as a kill -9 leaves it: status running, the lock of a process that is gone
        using var gone = Process.Start(new ProcessStartInfo("true") { UseShellExecute = false })!;
        gone.WaitForExit();
        var me = RunOwner.Current();
        File.WriteAllText(Path.Combine(run, "status"), "running\n");
        File.WriteAllText(Path.Combine(run, RunLock.FileName), (me with { Pid = gone.Id, StartTime = 1 }).ToJson());
        var (code, stdout, stderr) = TestCli.Run(_dir, "resume", run);
        Assert.True(code == 0, stdout + stderr);
        Assert.False(File.Exists(Path.Combine(run, RunLock.FileName)));

        // a live owner (this process) is not taken over
        File.WriteAllText(Path.Combine(run, "status"), "running\n");
        File.WriteAllText(Path.Combine(run, RunLock.FileName), me.ToJson());
        (code, _, stderr) = TestCli.Run(_dir, "resume", run);
        Assert.Equal(2, code);
        Assert.Contains($"pid {Environment.ProcessId}", stderr, StringComparison.Ordinal);
    }
}

using System.Diagnostics;
using LabelNoiseLab.RunFiles;
using LabelNoiseLab.Training;

namespace LabelNoiseLab.Tests;

/// <summary>
/// Resumable runs: a real `lnlab train` process killed (SIGKILL) mid-run and resumed ends with the
/// metrics and final model of the same run left alone; a kill during a checkpoint write (a torn
/// temporary file) is survived; bad resume input is one line, exit 2, nothing changed.
/// </summary>
public sealed class ResumeTests : IDisposable
{
    private readonly TempDir _temp = new("resume");

    private string _dir => _temp.Path;

    public void Dispose() => _temp.Dispose();

    // Dropout (its own generator), SGD momentum (optimizer buffers), a cosine schedule (the step
    // count), evaluations inside epochs and a validation split: every piece of state matters.
    private const string Config = """
        name: resume
        seed: 3
        epochs: 40
        batch_size: 32
        eval_every_steps: 50
        checkpoint_every: 1
        threads: 1
        data: {name: gaussian-mixture, val_fraction: 0.1}
        noise: {kind: symmetric, rate: 0.3, seed: 5}
        model: {kind: mlp, hidden: [256, 256], dropout: 0.1}
        optim: {kind: sgd, lr: 0.05, momentum: 0.9}
        schedule: {kind: cosine}
        """;

    private string WriteConfig(string yaml, string name = "config.yaml")
    {
        string path = Path.Combine(_dir, name);
        File.WriteAllText(path, yaml);
        return path;
    }

    private (int Code, string Out, string Err) Cli(params string[] args) => TestCli.Run(_dir, args);

    /// <summary>metrics.csv without the wall-clock columns (seconds, eval_seconds), which no two runs share.</summary>
    internal static string[] MetricsWithoutTiming(string runDir)
    {
        var lines = File.ReadAllLines(Path.Combine(runDir, "metrics.csv"));
        var header = lines[0].Split(',');
        var keep = Enumerable.Range(0, header.Length).Where(i => header[i] is not ("seconds" or "eval_seconds")).ToArray();
        return [.. lines.Select(l => string.Join(',', keep.Select(i => l.Split(',')[i])))];
    }

    private static void AssertSameRun(string expected, string actual)
    {
        var a = MetricsWithoutTiming(expected);
        var b = MetricsWithoutTiming(actual);
        Assert.Equal(a.Length, b.Length);
        for (int i = 0; i < a.Length; i++)
            Assert.Equal(a[i], b[i]);
        Assert.Equal(File.ReadAllBytes(Path.Combine(expected, "checkpoints", "final.safetensors")),
            File.ReadAllBytes(Path.Combine(actual, "checkpoints", "final.safetensors")));
        Assert.Equal(RunStatus.Complete, RunDirectory.ReadStatus(actual)!.Value.Status);
    }

    [Fact]
    public void A_train_process_killed_again_and_again_resumes_to_the_uninterrupted_metrics()
    {
        string config = WriteConfig(Config);
        string killed = Path.Combine(_dir, "killed");
        // Kill the train process, then the resume process twice more, each at a random moment
        // after a new checkpoint appeared (sometimes inside the next checkpoint's write).
        int seen = 0;
        for (int round = 0; round < 3; round++)
        {
            string[] args = round == 0 ? ["train", "--config", config, "--out", killed] : ["resume", killed];
            seen = KillAfterNextCheckpoint(args, killed, seen);
            Assert.Equal(RunStatus.Running, RunDirectory.ReadStatus(killed)!.Value.Status);
            Assert.False(File.Exists(Path.Combine(killed, "summary.json")));
        }

        var (code, stdout, stderr) = Cli("resume", killed);
        Assert.True(code == 0, stderr + stdout);
        Assert.Contains("resuming", stdout);

        string whole = Path.Combine(_dir, "whole");
        (code, stdout, stderr) = Cli("train", "--config", config, "--out", whole);
        Assert.True(code == 0, stderr + stdout);
        AssertSameRun(whole, killed);
    }

    /// <summary>Starts `dotnet lnlab.dll ARGS`, waits for a checkpoint newer than epoch <paramref name="seen"/>, SIGKILLs it a random moment later.</summary>
    private static int KillAfterNextCheckpoint(string[] args, string runDir, int seen)
    {
        using var process = TestCli.Start(args);
        var clock = Stopwatch.StartNew();
        string next = Path.Combine(runDir, "checkpoints", $"epoch-{seen + 2:D4}.safetensors");
        while (!File.Exists(next) && !process.HasExited && clock.Elapsed < TimeSpan.FromSeconds(60))
            Thread.Sleep(5);
        Thread.Sleep(Random.Shared.Next(0, 60)); // somewhere in the next epoch or two, maybe inside a write
        Assert.False(process.HasExited, "the run ended before it could be killed");
        process.Kill(entireProcessTree: true); // SIGKILL: no clean-up runs
        process.WaitForExit();
        var latest = TrainingCheckpoint.Latest(runDir)!;
        return int.Parse(Path.GetFileNameWithoutExtension(latest).AsSpan(TrainingCheckpoint.EpochPrefix.Length), System.Globalization.CultureInfo.InvariantCulture);
    }

    [Fact]
    public void A_kill_during_a_checkpoint_write_is_survived()
    {
        string config = WriteConfig(Config.Replace("epochs: 40", "epochs: 6", StringComparison.Ordinal));
        string whole = Path.Combine(_dir, "whole");
        Assert.Equal(0, Cli("train", "--config", config, "--out", whole).Code);

        // The state a SIGKILL while writing epoch 4's checkpoint leaves: epochs 1-3 on disk, a torn
        // temporary file, metrics.csv already holding rows of epoch 4, status still running.
        string torn = Path.Combine(_dir, "torn");
        CopyDirectory(whole, torn);
        string ckpt = Path.Combine(torn, "checkpoints");
        foreach (var name in (string[])["epoch-0004", "epoch-0005", "epoch-0006", "final"])
            File.Delete(Path.Combine(ckpt, name + ".safetensors"));
        var full = File.ReadAllBytes(Path.Combine(whole, "checkpoints", "epoch-0004.safetensors"));
        File.WriteAllBytes(Path.Combine(ckpt, ".tmp-epoch-0004.safetensors-0badf00d"), full[..(full.Length / 2)]);
        File.Delete(Path.Combine(torn, "summary.json"));
        File.WriteAllText(Path.Combine(torn, "status"), "running\n");
        var rows = File.ReadAllLines(Path.Combine(whole, "metrics.csv"));
        File.WriteAllLines(Path.Combine(torn, "metrics.csv"), rows.Where(r => !r.StartsWith("5,", StringComparison.Ordinal) && !r.StartsWith("6,", StringComparison.Ordinal)));

        var (code, stdout, stderr) = Cli("resume", torn);
        Assert.True(code == 0, stderr + stdout);
        Assert.Contains("epoch-0003", stdout);
        AssertSameRun(whole, torn);
    }

    [Fact]
    public void Adam_runs_resume_too()
    {
        string config = WriteConfig(Config.Replace("epochs: 40", "epochs: 5", StringComparison.Ordinal)
            .Replace("{kind: sgd, lr: 0.05, momentum: 0.9}", "{kind: adamw, lr: 0.001, weight_decay: 0.01}", StringComparison.Ordinal));
        string whole = Path.Combine(_dir, "whole");
        Assert.Equal(0, Cli("train", "--config", config, "--out", whole).Code);
        string cut = Path.Combine(_dir, "cut");
        CopyDirectory(whole, cut);
        foreach (var name in (string[])["epoch-0003", "epoch-0004", "epoch-0005", "final"])
            File.Delete(Path.Combine(cut, "checkpoints", name + ".safetensors"));
        File.WriteAllText(Path.Combine(cut, "status"), "failed\ninterrupted at step 100\n");
        var (code, stdout, stderr) = Cli("resume", cut);
        Assert.True(code == 0, stderr + stdout);
        AssertSameRun(whole, cut);
    }

    [Fact]
    public void Bad_resume_input_is_one_line_exit_2_and_changes_nothing()
    {
        string config = WriteConfig(Config.Replace("epochs: 40", "epochs: 3", StringComparison.Ordinal));
        string whole = Path.Combine(_dir, "whole");
        Assert.Equal(0, Cli("train", "--config", config, "--out", whole).Code);

        // Not a run directory; a missing one; a complete run.
        string plain = Directory.CreateDirectory(Path.Combine(_dir, "plain")).FullName;
        foreach (var target in (string[])[plain, Path.Combine(_dir, "missing"), whole])
        {
            var (code, _, err) = Cli("resume", target);
            Assert.Equal(2, code);
            Assert.Single(err.Trim().Split('\n'));
            Assert.Contains(target, err);
        }

        // A truncated newest checkpoint; then one written for another model shape.
        string run = Path.Combine(_dir, "bad");
        CopyDirectory(whole, run);
        File.WriteAllText(Path.Combine(run, "status"), "running\n");
        File.Delete(Path.Combine(run, "checkpoints", "final.safetensors"));
        string newest = Path.Combine(run, "checkpoints", "epoch-0003.safetensors");
        var bytes = File.ReadAllBytes(newest);
        File.WriteAllBytes(newest, bytes[..(bytes.Length - 100)]);
        AssertRefused(run, "epoch-0003.safetensors");

        string other = Path.Combine(_dir, "other");
        string otherConfig = WriteConfig(Config.Replace("epochs: 40", "epochs: 3", StringComparison.Ordinal).Replace("[256, 256]", "[64]", StringComparison.Ordinal), "other.yaml");
        Assert.Equal(0, Cli("train", "--config", otherConfig, "--out", other).Code);
        File.Copy(Path.Combine(other, "checkpoints", "epoch-0003.safetensors"), newest, overwrite: true);
        AssertRefused(run, "epoch-0003.safetensors");
    }

    private void AssertRefused(string run, string expectedInMessage)
    {
        var before = Directory.EnumerateFiles(run, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal)
            .Select(f => (f, File.ReadAllBytes(f))).ToList();
        var (code, _, err) = Cli("resume", run);
        Assert.Equal(2, code);
        Assert.Single(err.Trim().Split('\n'));
        Assert.Contains(expectedInMessage, err);
        var after = Directory.EnumerateFiles(run, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal)
            .Select(f => (f, File.ReadAllBytes(f))).ToList();
        Assert.Equal(before.Select(b => b.f), after.Select(a => a.f));
        for (int i = 0; i < before.Count; i++)
            Assert.True(before[i].Item2.AsSpan().SequenceEqual(after[i].Item2), before[i].f + " changed");
    }

    internal static void CopyDirectory(string from, string to)
    {
        foreach (var dir in Directory.EnumerateDirectories(from, "*", SearchOption.AllDirectories))
            Directory.CreateDirectory(dir.Replace(from, to, StringComparison.Ordinal));
        Directory.CreateDirectory(to);
        foreach (var file in Directory.EnumerateFiles(from, "*", SearchOption.AllDirectories))
            File.Copy(file, file.Replace(from, to, StringComparison.Ordinal));
    }
}

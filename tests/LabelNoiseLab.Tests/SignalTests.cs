using System.Diagnostics;
using System.Runtime.InteropServices;

namespace LabelNoiseLab.Tests;

/// <summary>
/// A real `lnlab train` process sent SIGTERM (a cluster's preemption), SIGINT or SIGHUP writes a
/// checkpoint at the next step boundary, ends with status <c>interrupted</c> and exit code 5, and
/// `lnlab resume` finishes it with the metrics and final weights of an uninterrupted run.
/// </summary>
public sealed class SignalTests : IDisposable
{
    private readonly TempDir _temp = new("signal");

    private string _dir => _temp.Path;

    public void Dispose() => _temp.Dispose();

    // Long enough that the signal lands inside training; mid-epoch checkpoints are off, so an
    // interruption inside an epoch is what writes the step checkpoint.
    private const string Config = """
        name: signal
        seed: 4
        epochs: 400
        batch_size: 16
        threads: 1
        data: {name: gaussian-mixture, samples: 600, test_samples: 200}
        noise: {kind: symmetric, rate: 0.3, seed: 2}
        model: {kind: mlp, hidden: [64], dropout: 0.1}
        optim: {kind: sgd, lr: 0.05, momentum: 0.9}
        label_noise: {kind: classification, p: 0.2}
        probe: {neuron_norms: true}
        """;

    [DllImport("libc", SetLastError = true)]
    private static extern int kill(int pid, int sig);

    [Theory]
    [InlineData(15)] // SIGTERM
    [InlineData(2)]  // SIGINT
    [InlineData(1)]  // SIGHUP
    public void A_signal_checkpoints_marks_interrupted_exits_5_and_resume_matches_the_uninterrupted_run(int signal)
    {
        string config = Path.Combine(_dir, "config.yaml");
        File.WriteAllText(config, Config);
        string full = Path.Combine(_dir, "full"), cut = Path.Combine(_dir, "cut");
        Assert.Equal(0, TestCli.Run(_dir, "train", "-c", config, "--out", full).Code);

        using (var process = TestCli.Start("train", "-c", config, "--out", cut))
        {
            // Wait until training runs (the first evaluation row is written), then signal.
            var clock = Stopwatch.StartNew();
            string metrics = Path.Combine(cut, "metrics.csv");
            while ((!File.Exists(metrics) || File.ReadAllLines(metrics).Length < 3) && clock.Elapsed.TotalSeconds < 60 && !process.HasExited)
                Thread.Sleep(20);
            Assert.False(process.HasExited, "the run ended before it could be signalled; make it longer");
            Assert.Equal(0, kill(process.Id, signal));
            Assert.True(process.WaitForExit(60_000));
            Assert.Equal(5, process.ExitCode);
        }
        var status = File.ReadAllLines(Path.Combine(cut, "status"));
        Assert.Equal("interrupted", status[0]);
        Assert.StartsWith("interrupted at step ", status[1], StringComparison.Ordinal);
        Assert.NotEmpty(Directory.GetFiles(Path.Combine(cut, "checkpoints"), "epoch-*.safetensors"));

        var (code, output, _) = TestCli.Run(_dir, "resume", cut);
        Assert.Equal(0, code);
        Assert.Contains("resuming", output, StringComparison.Ordinal);
        Assert.Equal("complete", File.ReadAllLines(Path.Combine(cut, "status"))[0]);
        Assert.Equal(ResumeTests.MetricsWithoutTiming(full), ResumeTests.MetricsWithoutTiming(cut));
        Assert.Equal(File.ReadAllBytes(Path.Combine(full, "checkpoints", "final.safetensors")),
            File.ReadAllBytes(Path.Combine(cut, "checkpoints", "final.safetensors")));
        static string Norms(string run) => System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(run, "summary.json")))!["neuron_norms"]!.ToJsonString();
        Assert.Equal(Norms(full), Norms(cut));
    }
}

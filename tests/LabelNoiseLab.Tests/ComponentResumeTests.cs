using System.Diagnostics;
using System.Text.Json;
using LabelNoiseLab.RunFiles;
using LabelNoiseLab.Training;

namespace LabelNoiseLab.Tests;

/// <summary>
/// Exact resume by contract with every component and probe on: a real `lnlab train` process
/// killed (SIGKILL) at random moments and resumed writes every file an uninterrupted run writes,
/// byte for byte apart from wall-clock fields (<see cref="RunFilesComparison"/>); also from inside
/// an epoch (a step checkpoint); and the original report of issue 11 (neuron norms after a resume).
/// The uninterrupted runs are processes too, so no other test shares their BLAS settings.
/// </summary>
public sealed class ComponentResumeTests : IDisposable
{
    private readonly TempDir _temp = new("component-resume");

    public void Dispose() => _temp.Dispose();

    private static readonly string[] Probes =
    [
        "--set", "probe.neuron_norms=true", "--set", "probe.spectral_every=1", "--set", "probe.activations_every=1",
        "--set", "probe.set_size=100", "--set", "probe.phases=true", "--set", "probe.learning_events=true", "--set", "probe.ablate=mean", "--set", "probe.ablate_units=2", "--set", "detection.enabled=true", "--set", "detection.suspects=10",
    ];

    // (a) co-teaching + forward correction with T estimated after 2 epochs (from anchor points), dropout in both networks.
    private static readonly string[] CoTeaching =
        ["--set", "select.kind=co_teaching", "--set", "select.forget_epochs=3", "--set", "robust.loss=forward", "--set", "robust.estimate_after=2", "--set", "model.dropout=0.1", .. Probes];

    // (b) label-noise SGD + GCE + gradient pruning + SAM.
    private static readonly string[] LabelNoiseSam =
    [
        "--set", "label_noise.kind=classification", "--set", "label_noise.p=0.3", "--set", "robust.loss=gce",
        "--set", "prune.kind=truncate", "--set", "sam.rho=0.05", .. Probes,
    ];

    private string WriteConfig()
    {
        string path = _temp.Sub("config.yaml");
        File.WriteAllText(path, ComponentCombinationTests.Config);
        return path;
    }

    [Fact]
    public void Co_teaching_with_estimated_forward_correction_killed_twice_resumes_to_every_file_of_the_uninterrupted_run() =>
        KilledTwiceThenResumed([.. CoTeaching, "--set", "epochs=10", "--set", "checkpoint_every=1", "--set", "checkpoint_every_steps=4"]);

    [Fact]
    public void Label_noise_sgd_gce_pruning_sam_killed_twice_resumes_to_every_file_of_the_uninterrupted_run() =>
        KilledTwiceThenResumed([.. LabelNoiseSam, "--set", "epochs=10", "--set", "checkpoint_every=1", "--set", "checkpoint_every_steps=4"]);

    // The first kill comes right after the first checkpoint (epoch 1, before robust.estimate_after's
    // estimate at the start of epoch 3), the second after epoch 5's (after it).
    private void KilledTwiceThenResumed(string[] settings)
    {
        string config = WriteConfig();
        string whole = _temp.Sub("whole"), killed = _temp.Sub("killed");
        var (code, output) = RunToEnd(["train", "-c", config, .. settings, "--out", whole]);
        Assert.True(code == 0, output);

        KillAfter(["train", "-c", config, .. settings, "--out", killed], Path.Combine(killed, "checkpoints", "epoch-0001-step-0000000004.safetensors"));
        KillAfter(["resume", killed], Path.Combine(killed, "checkpoints", "epoch-0005.safetensors"));
        (code, output) = RunToEnd(["resume", killed]);
        Assert.True(code == 0, output);
        Assert.Contains("resuming", output);
        Assert.True(File.Exists(Path.Combine(whole, "ledger.parquet")), "no ledger.parquet to compare");
        RunFilesComparison.AssertSameRun(whole, killed);
    }

    [Fact]
    public void A_run_killed_inside_an_epoch_resumes_from_its_step_checkpoint_to_the_uninterrupted_run()
    {
        // Batches of 8: 36 steps an epoch, a checkpoint every 7 steps and none at epoch ends
        // (36·k is no multiple of 7 for k ≤ 6): whenever it is killed, the newest is a step checkpoint.
        string config = WriteConfig();
        string[] settings = [.. LabelNoiseSam, "--set", "batch_size=8", "--set", "epochs=6", "--set", "checkpoint_every=0", "--set", "checkpoint_every_steps=7"];
        string whole = _temp.Sub("whole"), killed = _temp.Sub("killed");
        var (code, output) = RunToEnd(["train", "-c", config, .. settings, "--out", whole]);
        Assert.True(code == 0, output);

        KillAfter(["train", "-c", config, .. settings, "--out", killed], Path.Combine(killed, "checkpoints", "epoch-0002-step-0000000042.safetensors"));
        string latest = Path.GetFileName(TrainingCheckpoint.Latest(killed)!);
        Assert.Matches(@"^epoch-\d{4}-step-\d{10}\.safetensors$", latest);
        (code, output) = RunToEnd(["resume", killed]);
        Assert.True(code == 0, output);
        Assert.Contains("resuming inside epoch", output);
        Assert.Contains(latest, output);
        RunFilesComparison.AssertSameRun(whole, killed);
    }

    [Fact]
    public void Neuron_norms_after_a_resume_equal_the_uninterrupted_run_issue_11_report()
    {
        // lnlab train -c experiments/synthetic-mixture.yaml --set epochs=4 --set checkpoint_every=1
        //   --set probe.neuron_norms=true --set data.samples=1000, into A and B; B marked failed, its
        // checkpoints after epoch 2 and its summary.json deleted, then `lnlab resume B`.
        string config = Path.Combine(ConfigExperimentFilesTests.RepoRoot(), "experiments", "synthetic-mixture.yaml");
        string[] settings = ["--set", "epochs=4", "--set", "checkpoint_every=1", "--set", "probe.neuron_norms=true", "--set", "data.samples=1000"];
        string a = _temp.Sub("A"), b = _temp.Sub("B");
        foreach (var dir in (string[])[a, b])
        {
            var (trained, trainOutput) = RunToEnd(["train", "-c", config, .. settings, "--out", dir]);
            Assert.True(trained == 0, trainOutput);
        }
        File.WriteAllText(Path.Combine(b, "status"), "failed\n");
        foreach (var name in (string[])["epoch-0003", "epoch-0004", "final"])
            File.Delete(Path.Combine(b, "checkpoints", name + ".safetensors"));
        File.Delete(Path.Combine(b, "summary.json"));

        var (code, output) = RunToEnd(["resume", b]);
        Assert.True(code == 0, output);
        Assert.Contains("epoch-0002", output);
        using var sa = JsonDocument.Parse(File.ReadAllText(Path.Combine(a, "summary.json")));
        using var sb = JsonDocument.Parse(File.ReadAllText(Path.Combine(b, "summary.json")));
        var na = sa.RootElement.GetProperty("neuron_norms");
        var nb = sb.RootElement.GetProperty("neuron_norms");
        foreach (var key in (string[])["initial_mean", "final_ratio", "min_step"])
            Assert.Equal(na.GetProperty(key).GetRawText(), nb.GetProperty(key).GetRawText());
        Assert.Equal(na.GetRawText(), nb.GetRawText());
        RunFilesComparison.AssertSameRun(a, b);
    }

    /// <summary>Runs `dotnet lnlab.dll ARGS` to its end; its exit code and its stdout and stderr together.</summary>
    private static (int Code, string Output) RunToEnd(string[] args)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in (string[])[TestCli.LnlabDll(), .. args])
            start.ArgumentList.Add(arg);
        using var process = Process.Start(start)!;
        var stderr = process.StandardError.ReadToEndAsync();
        string stdout = process.StandardOutput.ReadToEnd();
        Assert.True(process.WaitForExit(TimeSpan.FromMinutes(2)), "lnlab did not finish in 2 minutes");
        return (process.ExitCode, stdout + stderr.Result);
    }

    /// <summary>Starts `dotnet lnlab.dll ARGS`, waits for <paramref name="checkpoint"/>, SIGKILLs it a random moment (0–30 ms) later.</summary>
    private static void KillAfter(string[] args, string checkpoint)
    {
        string runDir = Path.GetDirectoryName(Path.GetDirectoryName(checkpoint)!)!;
        using var process = TestCli.Start(args);
        var clock = Stopwatch.StartNew();
        while (!File.Exists(checkpoint) && !process.HasExited && clock.Elapsed < TimeSpan.FromSeconds(60))
            Thread.Sleep(2);
        Thread.Sleep(Random.Shared.Next(0, 30));
        Assert.False(process.HasExited, "the run ended before it could be killed");
        process.Kill(entireProcessTree: true); // SIGKILL: no clean-up runs
        process.WaitForExit();
        Assert.Equal(RunStatus.Running, RunDirectory.ReadStatus(runDir)!.Value.Status);
        Assert.False(File.Exists(Path.Combine(runDir, "summary.json")));
    }
}

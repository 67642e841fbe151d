using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using LabelNoiseLab.Cli;
using LabelNoiseLab.RunFiles;
using LabelNoiseLab.Studies;
using YamlDotNet.RepresentationModel;

namespace LabelNoiseLab.Tests;

/// <summary>
/// `lnlab sweep FILE --slurm`: the batch script it writes (and that script run by bash as Slurm
/// would, signal forwarding included), submission through a stand-in `sbatch`, `lnlab sweep
/// status`, the bad-input cases, and the Kubernetes example's command line. The real scheduler is
/// tests/cluster/slurm.sh (its own CI stage).
/// </summary>
public sealed class SlurmSweepTests : IDisposable
{
    private readonly TempDir _temp = new("slurm");

    private string _dir => _temp.Path;

    public void Dispose() => _temp.Dispose();

    [DllImport("libc", SetLastError = true)]
    private static extern int kill(int pid, int sig);

    private static readonly string[] Points = ["noise.rate=0.1/seed-1", "noise.rate=0.1/seed-2", "noise.rate=0.3/seed-1", "noise.rate=0.3/seed-2"];

    private string WriteSweep(int epochs = 2, string name = "tiny", string rates = "[0.1, 0.3]")
    {
        File.WriteAllText(Path.Combine(_dir, "base.yaml"), $$"""
            name: tiny
            seed: 1
            epochs: {{epochs}}
            batch_size: 16
            checkpoint_every_steps: 4
            data: {name: gaussian-mixture, samples: 200, test_samples: 100}
            noise: {kind: symmetric, seed: 2}
            model: {kind: mlp, hidden: [16]}
            optim: {kind: sgd, lr: 0.05}
            """);
        string sweep = Path.Combine(_dir, name + ".yaml");
        File.WriteAllText(sweep, $"""
            name: {name}
            base: base.yaml
            grid:
              noise.rate: {rates}
            seeds: [1, 2]
            """);
        return sweep;
    }

    [Fact]
    public void Dry_run_writes_a_job_array_that_runs_the_built_cli_with_requeue_signal_and_per_task_logs()
    {
        string sweep = WriteSweep();
        string outDir = Path.Combine(_dir, "out");
        var (code, stdout, stderr) = TestCli.Run(_dir, "sweep", sweep, "--slurm", "--tasks", "3", "--jobs", "2", "--dry-run",
            "--slurm-opt=--partition=short", "--slurm-opt=--time=00:30:00", "--out", outDir);
        Assert.True(code == 0, stdout + stderr);
        string file = Path.Combine(outDir, SlurmScript.FileName);
        Assert.Contains($"wrote {file}", stdout, StringComparison.Ordinal);
        Assert.Contains("not submitted", stdout, StringComparison.Ordinal);
        string text = File.ReadAllText(file);
        var directives = text.Split('\n').Where(l => l.StartsWith("#SBATCH ", StringComparison.Ordinal)).ToList();
        Assert.Equal(
            ["#SBATCH --job-name=lnlab-tiny", "#SBATCH --array=0-2", "#SBATCH --cpus-per-task=2", "#SBATCH --requeue", "#SBATCH --signal=B:TERM@120",
             "#SBATCH --open-mode=append", $"#SBATCH --output={outDir}/logs/slurm-%A_%a.out", "#SBATCH --partition=short", "#SBATCH --time=00:30:00"],
            directives);
        // Every #SBATCH line comes before the first command (sbatch stops reading them there).
        int firstCommand = text.Split('\n').Select((l, i) => (l, i)).First(x => x.l.Length > 0 && !x.l.StartsWith('#')).i;
        Assert.True(text.Split('\n').Select((l, i) => (l, i)).Where(x => x.l.StartsWith("#SBATCH", StringComparison.Ordinal)).All(x => x.i < firstCommand));
        // It runs the built CLI directly (never ./lnlab, which may build), with this task's shard.
        string dll = typeof(SweepWorker).Assembly.Location;
        string run = text.Split('\n').Single(l => l.Contains(" sweep ", StringComparison.Ordinal) && !l.StartsWith('#') && !l.StartsWith("echo", StringComparison.Ordinal));
        Assert.Contains($"{dll} sweep {sweep} --jobs 2 --shard \"$shard\" --out {outDir} &", run, StringComparison.Ordinal);
        Assert.DoesNotContain("./lnlab", text.Replace("# ", "", StringComparison.Ordinal), StringComparison.Ordinal);
        Assert.DoesNotContain("dotnet build", text, StringComparison.Ordinal);
        Assert.Contains("shard=\"$((SLURM_ARRAY_TASK_ID + 1))/3\"", text, StringComparison.Ordinal);
        Assert.Contains("trap ", text, StringComparison.Ordinal);
        Assert.True(Directory.Exists(Path.Combine(outDir, "logs")));
        Assert.Equal(Points, SweepManifest.Read(outDir).Points);
        // bash accepts it
        var check = Process.Start(new ProcessStartInfo("bash", ["-n", file]) { RedirectStandardError = true })!;
        string err = check.StandardError.ReadToEnd();
        check.WaitForExit();
        Assert.True(check.ExitCode == 0, err);
    }

    [Fact]
    public void Tasks_default_to_points_over_jobs_and_cpus_follow_the_sweeps_threads()
    {
        string sweep = WriteSweep();
        var plan = Sweep.Load(sweep);
        Assert.Equal(2, SlurmScript.CpusPerTask(plan, 2));
        var (code, _, err) = TestCli.Run(_dir, "sweep", sweep, "--slurm", "--jobs", "3", "--dry-run", "--out", Path.Combine(_dir, "a"));
        Assert.True(code == 0, err);
        Assert.Contains("#SBATCH --array=0-1\n", File.ReadAllText(Path.Combine(_dir, "a", SlurmScript.FileName)), StringComparison.Ordinal); // 4 points / 3 jobs → 2 tasks

        File.AppendAllText(sweep, "\nconfig: {threads: 2}\n");
        (code, _, err) = TestCli.Run(_dir, "sweep", sweep, "--slurm", "--jobs", "3", "--dry-run", "--out", Path.Combine(_dir, "b"));
        Assert.True(code == 0, err);
        Assert.Contains("#SBATCH --cpus-per-task=6\n", File.ReadAllText(Path.Combine(_dir, "b", SlurmScript.FileName)), StringComparison.Ordinal);
    }

    [Fact]
    public void Shell_quoting_keeps_odd_paths_one_word()
    {
        Assert.Equal("/a/b.yaml", SlurmScript.Quote("/a/b.yaml"));
        Assert.Equal("'/a b/it'\\''s'", SlurmScript.Quote("/a b/it's"));
        Assert.Equal("''", SlurmScript.Quote(""));
        var echo = Process.Start(new ProcessStartInfo("bash", ["-c", "printf '%s' " + SlurmScript.Quote("/a b/it's $HOME")]) { RedirectStandardOutput = true })!;
        string said = echo.StandardOutput.ReadToEnd();
        echo.WaitForExit();
        Assert.Equal("/a b/it's $HOME", said);
    }

    // The batch script under bash, as slurmd starts it: SLURM_ARRAY_TASK_ID set, its own session and process group (setsid).
    private static Process StartBatch(string file, int task, System.Text.StringBuilder output)
    {
        var start = new ProcessStartInfo("/usr/bin/env") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in (string[])["--default-signal=INT,TERM,HUP", "setsid", "bash", file])
            start.ArgumentList.Add(a);
        start.Environment["SLURM_ARRAY_TASK_ID"] = task.ToString(CultureInfo.InvariantCulture);
        start.Environment["SLURM_JOB_ID"] = "77";
        start.Environment["SLURM_ARRAY_JOB_ID"] = "76";
        start.Environment.Remove("LNLAB_PARENT_PID"); // a task is no sweep worker
        var p = Process.Start(start)!;
        p.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (output) output.AppendLine(e.Data); };
        p.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (output) output.AppendLine(e.Data); };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        return p;
    }

    /// <summary>
    /// SIGTERM to the batch shell alone (a time limit: --signal=B:TERM) or to every process of the
    /// task at once (preemption, scancel, requeue: then lnlab gets the signal twice, from Slurm and
    /// from the script): either way the points checkpoint and end interrupted, and the next start resumes them.
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void The_batch_script_runs_its_shard_forwards_sigterm_to_lnlab_and_a_second_start_resumes(bool wholeGroup)
    {
        string sweep = WriteSweep(epochs: 300);
        string outDir = Path.Combine(_dir, "out");
        var (code, stdout, stderr) = TestCli.Run(_dir, "sweep", sweep, "--slurm", "--tasks", "2", "--jobs", "2", "--dry-run", "--out", outDir);
        Assert.True(code == 0, stdout + stderr);
        string file = Path.Combine(outDir, SlurmScript.FileName);

        // Task 1 (shard 2/2: points 1 and 3); SIGTERM to the batch shell only, as --signal=B:TERM does.
        var output = new System.Text.StringBuilder();
        using (var batch = StartBatch(file, task: 1, output))
        {
            var clock = Stopwatch.StartNew();
            bool Training(string p) => File.Exists(Path.Combine(outDir, p, "metrics.csv")) && File.ReadAllLines(Path.Combine(outDir, p, "metrics.csv")).Length >= 2;
            while (!(Training(Points[1]) && Training(Points[3])) && !batch.HasExited && clock.Elapsed.TotalSeconds < 90)
                Thread.Sleep(20);
            Assert.False(batch.HasExited, "the task ended before it could be signalled\n" + output);
            Assert.Equal(0, kill(wholeGroup ? -batch.Id : batch.Id, 15));
            Assert.True(batch.WaitForExit(90_000), "the batch script did not end after SIGTERM\n" + output);
            batch.WaitForExit();
            Assert.True(batch.ExitCode == ExitCodes.Interrupted, $"exit {batch.ExitCode}\n{output}");
        }
        string said = output.ToString();
        Assert.Contains("shard 2/2", said, StringComparison.Ordinal);
        Assert.Contains("SIGTERM, forwarded to lnlab", said, StringComparison.Ordinal);
        Assert.Contains("ended with exit 5", said, StringComparison.Ordinal);
        var status = SweepManifest.Status(outDir);
        Assert.Equal([PointState.Pending, PointState.Interrupted, PointState.Pending, PointState.Interrupted], status.Select(s => s.State));

        // Started again (a requeue): the interrupted points resume from their checkpoints.
        output.Clear();
        using (var again = StartBatch(file, task: 1, output))
        {
            Assert.True(again.WaitForExit(180_000), "the second start did not finish\n" + output);
            again.WaitForExit();
            Assert.True(again.ExitCode == 0, $"exit {again.ExitCode}\n{output}");
        }
        foreach (int i in (int[])[1, 3])
        {
            Assert.StartsWith("resuming", File.ReadAllText(Path.Combine(outDir, "logs", $"p{i:D4}.log")), StringComparison.Ordinal);
            Assert.Equal(301, File.ReadAllLines(Path.Combine(outDir, Points[i], "metrics.csv")).Length);
        }
        var (_, text, _) = TestCli.Run(_dir, "sweep", "status", outDir);
        Assert.EndsWith("4 points: 2 complete, 0 running, 0 interrupted, 0 failed, 0 diverged, 2 pending", text.TrimEnd(), StringComparison.Ordinal);
    }

    [Fact]
    public void Under_slurm_a_second_sigterm_to_the_sweep_does_not_end_it_before_its_points_checkpoint()
    {
        string sweep = WriteSweep(epochs: 300);
        string outDir = Path.Combine(_dir, "out");
        var output = new System.Text.StringBuilder();
        using var p = TestCli.Start(new Dictionary<string, string> { ["SLURM_JOB_ID"] = "77" }, output, "sweep", sweep, "--jobs", "2", "--shard", "1/2", "--out", outDir);
        var clock = Stopwatch.StartNew();
        bool Training(string point) => File.Exists(Path.Combine(outDir, point, "metrics.csv")) && File.ReadAllLines(Path.Combine(outDir, point, "metrics.csv")).Length >= 2;
        while (!(Training(Points[0]) && Training(Points[2])) && !p.HasExited && clock.Elapsed.TotalSeconds < 90)
            Thread.Sleep(20);
        Assert.False(p.HasExited, "the sweep ended before it could be signalled\n" + output);
        Assert.Equal(0, kill(p.Id, 15)); // Slurm's
        Thread.Sleep(10); // the first is being handled; the workers are writing their checkpoints
        Assert.Equal(0, kill(p.Id, 15)); // the batch script's forward
        Assert.True(p.WaitForExit(90_000), "the sweep did not end after SIGTERM\n" + output);
        p.WaitForExit();
        Assert.True(p.ExitCode == ExitCodes.Interrupted, $"exit {p.ExitCode}\n{output}");
        Assert.Equal([PointState.Interrupted, PointState.Pending, PointState.Interrupted, PointState.Pending], SweepManifest.Status(outDir).Select(s => s.State));
    }

    // A folder for PATH holding dotnet (so `/usr/bin/env dotnet` still works) and, optionally, a stand-in sbatch.
    private string PathWith(string? sbatchScript)
    {
        string bin = Path.Combine(_dir, "bin");
        Directory.CreateDirectory(bin);
        string dotnet = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Select(d => Path.Combine(d, "dotnet")).FirstOrDefault(File.Exists)
            ?? Environment.ProcessPath!;
        File.CreateSymbolicLink(Path.Combine(bin, "dotnet"), dotnet);
        if (sbatchScript is not null)
        {
            string sbatch = Path.Combine(bin, "sbatch");
            File.WriteAllText(sbatch, "#!/bin/sh\n" + sbatchScript);
            if (!OperatingSystem.IsLinux())
                throw new PlatformNotSupportedException("the stand-in sbatch is a shell script");
            File.SetUnixFileMode(sbatch, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
        return bin;
    }

    private static (int Code, string Output) RunProcess(Dictionary<string, string> env, params string[] args)
    {
        var output = new System.Text.StringBuilder();
        using var p = TestCli.Start(env, output, args);
        Assert.True(p.WaitForExit(60_000), "lnlab did not end");
        p.WaitForExit();
        return (p.ExitCode, output.ToString());
    }

    [Fact]
    public void Submits_with_sbatch_and_prints_the_job_id()
    {
        string sweep = WriteSweep();
        string outDir = Path.Combine(_dir, "out");
        string argsFile = Path.Combine(_dir, "sbatch-args");
        string bin = PathWith($"echo \"$@\" > {argsFile}\necho '4242;cluster'\n");
        var (code, output) = RunProcess(new() { ["PATH"] = bin }, "sweep", sweep, "--slurm", "--tasks", "2", "--out", outDir);
        Assert.True(code == 0, output);
        Assert.Contains("submitted Slurm job 4242: 4 points in 2 array tasks", output, StringComparison.Ordinal);
        Assert.Equal($"--parsable {Path.Combine(outDir, SlurmScript.FileName)}", File.ReadAllText(argsFile).Trim());
    }

    [Fact]
    public void Without_sbatch_it_says_so_suggests_dry_run_and_writes_nothing()
    {
        string sweep = WriteSweep();
        string outDir = Path.Combine(_dir, "out");
        var (code, output) = RunProcess(new() { ["PATH"] = PathWith(null) }, "sweep", sweep, "--slurm", "--out", outDir);
        Assert.Equal(ExitCodes.BadInput, code);
        string line = Assert.Single(output.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains("sbatch not found", line, StringComparison.Ordinal);
        Assert.Contains("--dry-run", line, StringComparison.Ordinal);
        Assert.False(Directory.Exists(outDir));
    }

    [Fact]
    public void A_refusing_sbatch_is_one_line_with_its_message()
    {
        string sweep = WriteSweep();
        var (code, output) = RunProcess(new() { ["PATH"] = PathWith("echo 'sbatch: error: invalid partition specified: nope' >&2\nexit 1\n") },
            "sweep", sweep, "--slurm", "--slurm-opt=--partition=nope", "--out", Path.Combine(_dir, "out"));
        Assert.Equal(ExitCodes.BadInput, code);
        Assert.Contains("invalid partition specified: nope", Assert.Single(output.Split('\n', StringSplitOptions.RemoveEmptyEntries)), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("--tasks 0", "--tasks 0: expected 1 to 4")]
    [InlineData("--tasks 5", "--tasks 5: expected 1 to 4")]
    [InlineData("--jobs 0", "--jobs 0: expected at least 1")]
    [InlineData("--slurm-opt=partition=x", "--slurm-opt 'partition=x'")]
    [InlineData("--slurm-opt=--array=0-9", "--array is set by lnlab sweep --slurm")]
    [InlineData("--shard 1/2", "--shard does not go with --slurm")]
    public void Bad_slurm_options_are_one_line_exit_2_and_nothing_is_written(string extra, string message)
    {
        string sweep = WriteSweep();
        string outDir = Path.Combine(_dir, "out");
        var (code, stdout, stderr) = TestCli.Run(_dir, ["sweep", sweep, "--slurm", "--dry-run", "--out", outDir, .. extra.Split(' ')]);
        Assert.Equal(ExitCodes.BadInput, code);
        Assert.Contains(message, Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries)), StringComparison.Ordinal);
        Assert.Equal("", stdout);
        Assert.False(Directory.Exists(outDir));
    }

    [Fact]
    public void Slurm_options_without_slurm_are_refused()
    {
        var (code, _, stderr) = TestCli.Run(_dir, "sweep", WriteSweep(), "--dry-run", "--out", Path.Combine(_dir, "out"));
        Assert.Equal(ExitCodes.BadInput, code);
        Assert.Contains("go with --slurm", stderr, StringComparison.Ordinal);
        Assert.False(Directory.Exists(Path.Combine(_dir, "out")));
    }

    [Fact]
    public void A_directory_of_another_sweep_file_is_refused_naming_it_for_slurm_and_local_runs()
    {
        string first = WriteSweep();
        string outDir = Path.Combine(_dir, "out");
        Assert.Equal(0, TestCli.Run(_dir, "sweep", first, "--slurm", "--dry-run", "--out", outDir).Code);
        string script = File.ReadAllText(Path.Combine(outDir, SlurmScript.FileName));
        string other = WriteSweep(name: "other", rates: "[0.2, 0.4]");
        foreach (string[] mode in (string[][])[["--slurm", "--dry-run"], []])
        {
            var (code, stdout, stderr) = TestCli.Run(_dir, ["sweep", other, "--out", outDir, .. mode]);
            Assert.Equal(ExitCodes.BadInput, code);
            string line = Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
            Assert.Contains($"{outDir}: a sweep directory written by a different sweep file ({first}", line, StringComparison.Ordinal);
            Assert.Equal("", stdout);
        }
        Assert.Equal(script, File.ReadAllText(Path.Combine(outDir, SlurmScript.FileName)));
        Assert.False(Directory.Exists(Path.Combine(outDir, "noise.rate=0.2")));
        // The same sweep again is accepted.
        Assert.Equal(0, TestCli.Run(_dir, "sweep", first, "--slurm", "--dry-run", "--out", outDir).Code);
    }

    [Fact]
    public void Status_reports_every_point_and_a_total_line()
    {
        string outDir = Path.Combine(_dir, "out");
        Assert.Equal(0, TestCli.Run(_dir, "sweep", WriteSweep(name: "six", rates: "[0.1, 0.2, 0.3]"), "--slurm", "--dry-run", "--out", outDir).Code);
        var dirs = SweepManifest.Read(outDir).Points;
        Assert.Equal(6, dirs.Count);
        void Status(int i, string text, RunOwner? owner = null)
        {
            string d = Path.Combine(outDir, dirs[i]);
            Directory.CreateDirectory(d);
            File.WriteAllText(Path.Combine(d, RunDirectory.StatusFile), text);
            if (owner is not null)
                File.WriteAllText(Path.Combine(d, RunLock.FileName), owner.ToJson());
        }
        Status(0, "complete\n");
        Status(1, "failed\nout of memory\n");
        Status(2, "interrupted\nSIGTERM\n");
        Status(3, "running\n", RunOwner.Current()); // this process: alive
        var gone = RunOwner.Current() with { Pid = DeadPid() };
        Status(4, "running\n", gone); // its process is gone: killed
        // point 5: nothing yet
        var (code, stdout, stderr) = TestCli.Run(_dir, "sweep", "status", outDir);
        Assert.True(code == 0, stderr);
        var lines = stdout.TrimEnd().Split('\n');
        Assert.Equal(7, lines.Length);
        Assert.Equal($"p0000  complete     {dirs[0]}", lines[0]);
        Assert.Equal($"p0001  failed       {dirs[1]}  (out of memory)", lines[1]);
        Assert.Equal($"p0002  interrupted  {dirs[2]}  (SIGTERM)", lines[2]);
        Assert.Equal($"p0003  running      {dirs[3]}", lines[3]);
        Assert.StartsWith($"p0004  interrupted  {dirs[4]}  (its process is gone", lines[4], StringComparison.Ordinal);
        Assert.Equal($"p0005  pending      {dirs[5]}", lines[5]);
        Assert.Equal("6 points: 1 complete, 1 running, 2 interrupted, 1 failed, 0 diverged, 1 pending", lines[6]);
    }

    private static int DeadPid()
    {
        using var p = Process.Start(new ProcessStartInfo("true"))!;
        p.WaitForExit();
        return p.Id;
    }

    [Theory]
    [InlineData("nothing-here", "no such sweep directory")]
    [InlineData("plain", "not a sweep directory (no sweep.json")]
    [InlineData("damaged", "sweep.json: damaged")]
    public void Status_of_a_folder_that_is_no_sweep_is_one_line_exit_2(string what, string message)
    {
        string dir = Path.Combine(_dir, what);
        if (what != "nothing-here")
            Directory.CreateDirectory(dir);
        if (what == "damaged")
            File.WriteAllText(Path.Combine(dir, SweepManifest.FileName), "{\"file\": \"x\", \"name\": \"x\", \"fingerprint\": \"0\", \"points\": [{\"index\": 0, \"dir\": \"../../etc\"}]}");
        var (code, stdout, stderr) = TestCli.Run(_dir, "sweep", "status", dir);
        Assert.Equal(ExitCodes.BadInput, code);
        Assert.Contains(message, Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries)), StringComparison.Ordinal);
        Assert.Equal("", stdout);
    }

    private static string RepoFile(string relative) => Path.Combine(ConfigExperimentFilesTests.RepoRoot(), relative);

    [Fact]
    public void The_kubernetes_example_runs_a_command_line_lnlab_accepts_and_shards_by_completion_index()
    {
        string file = RepoFile("examples/kubernetes/sweep-job.yaml");
        var yaml = new YamlStream();
        yaml.Load(new StringReader(File.ReadAllText(file)));
        var job = (YamlMappingNode)yaml.Documents[0].RootNode;
        Assert.Equal("Job", ((YamlScalarNode)job["kind"]).Value);
        var spec = (YamlMappingNode)job["spec"];
        Assert.Equal("Indexed", ((YamlScalarNode)spec["completionMode"]).Value);
        int completions = int.Parse(((YamlScalarNode)spec["completions"]).Value!, CultureInfo.InvariantCulture);
        var container = (YamlMappingNode)((YamlSequenceNode)((YamlMappingNode)((YamlMappingNode)spec["template"])["spec"])["containers"])[0];
        var command = ((YamlSequenceNode)container["command"]).Select(n => ((YamlScalarNode)n).Value!).ToList();
        Assert.Equal("./lnlab", command[0]);
        string[] args = [.. command.Skip(1)];
        Assert.Empty(LnlabCli.ParseErrors(args));
        Assert.Equal("sweep", args[0]);
        Assert.NotEmpty(LnlabCli.ParseErrors(["sweep", args[1], "--no-such-option"])); // the check can fail
        // The sweep file it names exists in the repository and loads.
        Assert.NotEmpty(Sweep.Load(RepoFile(args[1])).Points);
        // LNLAB_SHARDS matches the completions, so every index 0..completions-1 is a shard.
        var env = ((YamlSequenceNode)container["env"]).Cast<YamlMappingNode>()
            .ToDictionary(e => ((YamlScalarNode)e["name"]).Value!, e => ((YamlScalarNode)e["value"]).Value!);
        Assert.Equal(completions.ToString(CultureInfo.InvariantCulture), env["LNLAB_SHARDS"]);
        for (int i = 0; i < completions; i++)
        {
            var vars = new Dictionary<string, string> { ["JOB_COMPLETION_INDEX"] = i.ToString(CultureInfo.InvariantCulture), ["LNLAB_SHARDS"] = env["LNLAB_SHARDS"] };
            Assert.Equal(new Shard(i + 1, completions), Shard.Resolve(null, k => vars.GetValueOrDefault(k)));
        }
        Assert.Contains("examples/kubernetes/sweep-job.yaml", File.ReadAllText(RepoFile("README.md")), StringComparison.Ordinal);
    }
}

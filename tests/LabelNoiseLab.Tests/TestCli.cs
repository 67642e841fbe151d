using System.Diagnostics;
using LabelNoiseLab.Experiments;
using LabelNoiseLab.Cli;

namespace LabelNoiseLab.Tests;

/// <summary>
/// The one way the tests run `lnlab`: in-process through <see cref="LnlabCli.Run"/> (the real trainer unless a test
/// passes its own runner), or as a `dotnet lnlab.dll` process where a test must kill it.
/// </summary>
internal static class TestCli
{
    /// <summary>Runs `lnlab ARGS` in-process with the real trainer; runs without --out go to DIR/runs.</summary>
    public static (int Code, string Out, string Err) Run(string dir, params string[] args) => RunWith(new ExperimentRunner(), dir, args);

    /// <summary>Runs `lnlab ARGS` in-process with <paramref name="runner"/> (null: commands that train fail as without one).</summary>
    public static (int Code, string Out, string Err) RunWith(IExperimentRunner? runner, string dir, params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int code = LnlabCli.Run(args, stdout, stderr, new CliHost(runner, Interactive: false, RunsRoot: Path.Combine(dir, "runs")));
        return (code, stdout.ToString(), stderr.ToString());
    }

    /// <summary>Writes <paramref name="yaml"/> to DIR/config.yaml and trains it; runs without --out go to DIR/runs.</summary>
    public static (int Code, string Out, string Err) Train(string dir, string yaml, params string[] extra)
    {
        string config = Path.Combine(dir, "config.yaml");
        File.WriteAllText(config, yaml);
        return Run(dir, ["train", "--config", config, .. extra]);
    }

    /// <summary>Starts `dotnet lnlab.dll ARGS` as a process, its output read and dropped.</summary>
    public static Process Start(params string[] args) => Start(null, null, args);

    /// <summary>
    /// Starts `dotnet lnlab.dll ARGS` with extra environment variables; its stdout and stderr lines
    /// go to <paramref name="output"/> (when given; lock it to read while the process runs).
    /// </summary>
    public static Process Start(IReadOnlyDictionary<string, string>? env, System.Text.StringBuilder? output, params string[] args)
    {
        // Through `env --default-signal`: a test run started as a background job inherits SIGINT
        // (and perhaps others) ignored, which exec keeps; the signal tests need the defaults back.
        var start = new ProcessStartInfo("/usr/bin/env") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in (string[])["--default-signal=INT,TERM,HUP", "dotnet", LnlabDll(), .. args])
            start.ArgumentList.Add(a);
        foreach (var (key, value) in env ?? new Dictionary<string, string>())
            start.Environment[key] = value;
        var process = Process.Start(start)!;
        void Add(string? line)
        {
            if (output is null || line is null)
                return;
            lock (output)
                output.AppendLine(line);
        }
        process.OutputDataReceived += (_, e) => Add(e.Data);
        process.ErrorDataReceived += (_, e) => Add(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }

    /// <summary>lnlab.dll beside the test assembly (the CLI is a project reference), else the CLI's own build folder.</summary>
    public static string LnlabDll()
    {
        string here = Path.Combine(AppContext.BaseDirectory, "lnlab.dll");
        if (File.Exists(here))
            return here;
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
        {
            foreach (var cfg in (string[])["Release", "Debug"])
            {
                string p = Path.Combine(d.FullName, "src", "LabelNoiseLab.Cli", "bin", cfg, "net10.0", "lnlab.dll");
                if (File.Exists(p))
                    return p;
            }
        }
        throw new FileNotFoundException("lnlab.dll not found beside the tests or under src/LabelNoiseLab.Cli/bin");
    }
}

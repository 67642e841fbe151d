using System.Diagnostics;
using System.Globalization;
using LabelNoiseLab.Reports;

namespace LabelNoiseLab.Bench;

/// <summary>
/// Sweeps and reports: (1) the throughput of `lnlab sweep --jobs 2` against `--jobs 1` on the same
/// single-threaded points (target ≥ 1.8×; needs two idle cores); (2) `lnlab report` on a sweep of
/// 50 runs (target ≤ 5 s, page &lt; 3 MB). Runs the built lnlab (src/LabelNoiseLab.Cli/bin/Release).
/// Options: <c>--points N</c> for (1) (default 8), <c>--epochs N</c> per point (default 20).
/// </summary>
public static class StudyBench
{
    public static int Run(string[] args)
    {
        int points = Option(args, "--points", 8), epochs = Option(args, "--epochs", 20);
        string lnlab = FindLnlab();
        string root = Directory.CreateTempSubdirectory("lnlab-study-bench-").FullName;
        try
        {
            Console.WriteLine($"load before: {File.ReadAllText("/proc/loadavg").Trim()}  cores: {Environment.ProcessorCount}");
            string sweep = Path.Combine(root, "throughput.yaml");
            File.WriteAllText(sweep, Sweep("throughput", epochs, "[256, 256]", points));
            double one = Time(lnlab, sweep, Path.Combine(root, "j1"), 1);
            double two = Time(lnlab, sweep, Path.Combine(root, "j2"), 2);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"sweep of {points} points x {epochs} epochs: --jobs 1 {one:F1} s, --jobs 2 {two:F1} s, throughput ratio {one / two:F2} (target >= 1.8)"));

            string big = Path.Combine(root, "fifty.yaml");
            File.WriteAllText(big, Sweep("fifty", 3, "[32]", 50));
            string fifty = Path.Combine(root, "fifty");
            Time(lnlab, big, fifty, 2);
            var times = new List<double>();
            string page = "";
            for (int i = 0; i < 3; i++)
            {
                var clock = Stopwatch.StartNew();
                page = HtmlReport.Write(fifty);
                times.Add(clock.Elapsed.TotalSeconds);
            }
            times.Sort();
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"report on a 50-run sweep: {times[1]:F2} s (median of 3, in process; target <= 5 s), page {new FileInfo(page).Length / 1e6:F2} MB (target < 3 MB)"));
            Console.WriteLine($"load after: {File.ReadAllText("/proc/loadavg").Trim()}");
            return 0;
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    private static string Sweep(string name, int epochs, string hidden, int points) => $"""
        name: {name}
        config:
          epochs: {epochs}
          batch_size: 32
          data: {"{"}name: gaussian-mixture, val_fraction: 0.1{"}"}
          noise: {"{"}kind: symmetric, rate: 0.3, seed: 5{"}"}
          model: {"{"}kind: mlp, hidden: {hidden}{"}"}
          optim: {"{"}kind: sgd, lr: 0.05, momentum: 0.9{"}"}
        grid:
          optim.lr: [0.05]
        seeds: [{string.Join(", ", Enumerable.Range(0, points))}]
        """;

    private static double Time(string lnlab, string sweep, string outDir, int jobs)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in (string[])[lnlab, "sweep", sweep, "--jobs", jobs.ToString(CultureInfo.InvariantCulture), "--out", outDir])
            start.ArgumentList.Add(a);
        var clock = Stopwatch.StartNew();
        using var p = Process.Start(start)!;
        var err = p.StandardError.ReadToEndAsync();
        string output = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0)
            throw new InvalidOperationException($"lnlab sweep failed ({p.ExitCode}): {output} {err.Result}");
        return clock.Elapsed.TotalSeconds;
    }

    private static string FindLnlab()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
        {
            string p = Path.Combine(d.FullName, "src", "LabelNoiseLab.Cli", "bin", "Release", "net10.0", "lnlab.dll");
            if (File.Exists(p))
                return p;
        }
        throw new FileNotFoundException("build lnlab first: dotnet build -c Release LabelNoiseLab.slnx");
    }

    private static int Option(string[] args, string name, int fallback)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length && int.TryParse(args[i + 1], CultureInfo.InvariantCulture, out int v) && v > 0 ? v : fallback;
    }
}

using System.Diagnostics;
using LabelNoiseLab.Data;

namespace LabelNoiseLab.Bench;

/// <summary>
/// <c>data-load [--data-dir DIR] [--repeat N]</c>: times loading and normalising both splits of
/// Fashion-MNIST from its files (the Debian package's .gz files by default) and prints
/// <c>load_s=</c> (the best of N runs, after one warm-up) plus the first run's time.
/// </summary>
public static class DataBench
{
    public static int Run(string[] args)
    {
        ArgumentNullException.ThrowIfNull(args);
        string? dataDir = null;
        int repeat = 5;
        for (int i = 0; i < args.Length; i++)
        {
            if (args[i] == "--data-dir" && i + 1 < args.Length)
                dataDir = args[++i];
            else if (args[i] == "--repeat" && i + 1 < args.Length)
                repeat = int.Parse(args[++i], System.Globalization.CultureInfo.InvariantCulture);
        }
        var options = new DataOptions { Name = "fashion-mnist", DataDir = dataDir, Normalization = NormalizationMode.PerFeature };
        try
        {
            double first = Once(options, out var splits);
            double best = double.MaxValue;
            for (int r = 0; r < repeat; r++)
                best = Math.Min(best, Once(options, out _));
            Console.WriteLine($"dataset=fashion-mnist train={splits.Train.Count} test={splits.Test.Count} features={splits.Train.FeatureLength}");
            Console.WriteLine($"first_load_s={first:F3}");
            Console.WriteLine($"load_s={best:F3}");
            return 0;
        }
        catch (InputException e)
        {
            Console.Error.WriteLine(e.Message);
            return 2;
        }
    }

    private static double Once(DataOptions options, out DataSplits splits)
    {
        var sw = Stopwatch.StartNew();
        splits = DataSources.Load(options);
        var norm = Normalization.Fit(splits.Train, options.Normalization);
        norm.Apply(splits.Train);
        norm.Apply(splits.Test);
        return sw.Elapsed.TotalSeconds;
    }
}

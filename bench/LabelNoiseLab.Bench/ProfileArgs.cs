using System.Globalization;
using LabelNoiseLab.Tensors;

namespace LabelNoiseLab.Bench;

/// <summary>The profiling benchmarks' arguments: <c>--reps N</c> and <c>--threads T</c> (sets <see cref="Blas.Threads"/>).</summary>
public static class ProfileArgs
{
    /// <summary>The repetitions to take the best of, or null (usage printed) on an unknown argument.</summary>
    public static int? Reps(string[] args, string benchmark, int defaultReps)
    {
        int reps = defaultReps;
        for (int i = 0; i + 1 < args.Length; i += 2)
        {
            int v = int.Parse(args[i + 1], CultureInfo.InvariantCulture);
            switch (args[i])
            {
                case "--reps": reps = v; break;
                case "--threads": Blas.Threads = v; break;
                default:
                    Console.Error.WriteLine($"usage: LabelNoiseLab.Bench {benchmark} [--reps N] [--threads T]");
                    return null;
            }
        }
        return reps;
    }
}

using LabelNoiseLab.Bench;

// Benchmarks: `dotnet run -c Release --project bench/LabelNoiseLab.Bench -- NAME`.
// One case per benchmark; each maps to one plain method.
switch (args.Length > 0 ? args[0] : "")
{
    case "gemm":
        return GemmBench.Run(args[1..]);
    case "online-linear":
        return OnlineLinearBench.Run(args[1..]);
    case "activation-probe":
        return ProbeBench.Run(args[1..]);
    default:
        Console.Error.WriteLine("usage: LabelNoiseLab.Bench <benchmark>   (benchmarks: gemm, online-linear, activation-probe)");
        return 2;
}

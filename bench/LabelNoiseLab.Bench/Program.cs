using LabelNoiseLab.Bench;

// Benchmarks: `dotnet run -c Release --project bench/LabelNoiseLab.Bench -- NAME`.
// One case per benchmark; each maps to one plain method.
switch (args.Length > 0 ? args[0] : "")
{
    case "gemm":
        return GemmBench.Run(args[1..]);
    case "mlp-epoch":
        return MlpEpochBench.Run(args[1..]);
    case "data-load":
        return DataBench.Run(args[1..]);
    case "online-linear":
        return OnlineLinearBench.Run(args[1..]);
    case "activation-probe":
        return ProbeBench.Run(args[1..]);
    case "per-sample-norms":
        return PerSampleNormsBench.Run(args[1..]);
    case "spectral":
        return SpectralBench.Run(args[1..]);
    case "study":
        return StudyBench.Run(args[1..]);
    case "resnet-step":
        return ResNetStepBench.Run(args[1..]);
    case "vit-step":
        return ResNetStepBench.Run(args[1..], vit: true);
    case "smallcnn-epoch":
        return SmallCnnEpochBench.Run(args[1..]);
    case "resnet-profile":
        return ResNetProfileBench.Run(args[1..]);
    case "two-phase-paper":
        return TwoPhasePaperBench.Run(args[1..]);
    case "audit":
        return AuditBench.Run(args[1..]);
    case "vit-profile":
        return VitProfileBench.Run(args[1..]);
    default:
        Console.Error.WriteLine("usage: LabelNoiseLab.Bench <benchmark>   (benchmarks: gemm, mlp-epoch, data-load, online-linear, study, spectral, per-sample-norms, activation-probe, two-phase-paper, resnet-step, resnet-profile, audit, vit-step, smallcnn-epoch, vit-profile)");
        return 2;
}

using System.Reflection;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;
using LabelNoiseLab.Tensors;

namespace LabelNoiseLab.Training;

/// <summary>
/// What produced a run, for summary.json → provenance: the toolkit's version and git commit (read
/// at build time), the .NET runtime, the BLAS backend and its version, the CPU's architecture and
/// the instruction sets the kernels may use, and the thread count. Results are bit-identical only
/// for the same build, backend, thread count and kind of CPU.
/// </summary>
public static class Provenance
{
    /// <summary>The version of run files this toolkit writes (summary.json, checkpoints).</summary>
    public const int FormatVersion = 2;

    /// <summary>The toolkit's version (the assembly's informational version, without the commit).</summary>
    public static string ToolkitVersion { get; } =
        typeof(Provenance).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0] ?? "unknown";

    /// <summary>The git commit the library was built from ("unknown" outside a git checkout).</summary>
    public static string GitCommit { get; } =
        typeof(Provenance).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().FirstOrDefault(a => a.Key == "GitCommit")?.Value is { Length: > 0 } commit
            ? commit : "unknown";

    /// <summary>The x86 instruction sets this process can use (what the managed kernels dispatch on).</summary>
    public static IReadOnlyList<string> InstructionSets()
    {
        var sets = new List<string>();
        if (Sse42.IsSupported)
            sets.Add("sse4.2");
        if (Avx.IsSupported)
            sets.Add("avx");
        if (Avx2.IsSupported)
            sets.Add("avx2");
        if (Fma.IsSupported)
            sets.Add("fma");
        if (Avx512F.IsSupported)
            sets.Add("avx512f");
        if (Avx512BW.IsSupported)
            sets.Add("avx512bw");
        if (System.Runtime.Intrinsics.Arm.AdvSimd.IsSupported)
            sets.Add("neon");
        return sets;
    }

    /// <summary>
    /// The <c>provenance</c> block of summary.json: versions, runtime, BLAS backend, CPU and thread count.
    /// </summary>
    public static Dictionary<string, object?> Describe() => new()
    {
        ["format_version"] = FormatVersion,
        ["toolkit_version"] = ToolkitVersion,
        ["git_commit"] = GitCommit,
        ["dotnet"] = RuntimeInformation.FrameworkDescription,
        ["os"] = RuntimeInformation.OSDescription,
        ["blas_backend"] = Blas.Backend.ToString(),
        ["blas_version"] = Blas.OpenBlas is { } openBlas && Blas.Backend == BlasBackend.OpenBlas ? $"{openBlas.Config} ({openBlas.Corename})" : "managed (this build)",
        ["cpu_architecture"] = RuntimeInformation.ProcessArchitecture.ToString(),
        ["instruction_sets"] = InstructionSets(),
        ["processors"] = Environment.ProcessorCount,
        ["threads"] = Blas.Threads,
    };
}

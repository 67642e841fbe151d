namespace LabelNoiseLab.Tests;

/// <summary>
/// Test classes that change process-wide settings for a while (<c>Blas.Threads</c>, OpenBLAS's
/// thread count; <c>ParallelRange.ThreadsOverride</c>, <c>ParallelRange.MinWork</c>). They run
/// alone, after the parallel tests, so no other test sees a setting change under it (a run
/// compared bit for bit with its resumed twin must not change its GEMM thread count midway).
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ProcessWideSettings
{
    /// <summary>The collection's name, for <c>[Collection(ProcessWideSettings.Name)]</c>.</summary>
    public const string Name = "process-wide settings";
}

using System.Diagnostics;

namespace LabelNoiseLab.Tests;

/// <summary>
/// The programs and data outside .NET that some tests use, and the one way those tests skip when one is
/// missing: <see cref="Assert.Skip"/> with a reason naming the tool and the Debian package that installs it,
/// so a missing tool shows as a skipped test, never as a pass. .ci/run installs all of them and fails on any skip.
/// </summary>
internal static class MachineTools
{
    public const string Python = "/usr/bin/python3";
    public const string Chromium = "/usr/bin/chromium";
    public const string FashionMnistDir = "/usr/share/datasets/fashion-mnist";

    /// <summary>Skip reason where <c>Blas.OpenBlas</c> is null (the test files hold the check itself).</summary>
    public const string NoOpenBlas =
        "OpenBLAS is not installed: no libopenblas.so.0 could be loaded (Debian package libopenblas0-pthread, or LNLAB_OPENBLAS=path of the library)";

    /// <summary>Skip reason where <c>Lapack.OpenBlas</c> is null: no OpenBLAS, or one without ssyevd_/sgesdd_.</summary>
    public const string NoOpenBlasLapack =
        "OpenBLAS with LAPACK (ssyevd_, sgesdd_) is not installed (Debian package libopenblas0-pthread, or LNLAB_OPENBLAS=path of the library)";

    private static readonly Lazy<bool> s_numpy = new(() => File.Exists(Python) && RunPython(["-c", "import numpy"], out _));

    /// <summary>Skips the calling test unless <see cref="Python"/> exists and imports numpy.</summary>
    public static void RequirePythonWithNumpy()
    {
        if (!File.Exists(Python))
            Assert.Skip($"{Python} is not installed (Debian package python3): nothing independent to compare with");
        if (!s_numpy.Value)
            Assert.Skip($"{Python} has no numpy (Debian package python3-numpy): nothing independent to compare with");
    }

    private static readonly Lazy<bool> s_torch = new(() => File.Exists(Python) && RunPython(["-c", "import numpy, torch"], out _));

    /// <summary>Skips the calling test unless <see cref="Python"/> imports numpy and torch.</summary>
    public static void RequirePythonWithTorch()
    {
        RequirePythonWithNumpy();
        if (!s_torch.Value)
            Assert.Skip($"{Python} has no torch (Debian package python3-torch): no PyTorch model to compare with");
    }

    /// <summary>Skips the calling test unless <see cref="Chromium"/> exists; <paramref name="unchecked"/> says what then goes unchecked.</summary>
    public static string RequireChromium(string @unchecked)
    {
        if (!File.Exists(Chromium))
            Assert.Skip($"{Chromium} is not installed (Debian package chromium): {@unchecked}");
        return Chromium;
    }

    /// <summary>
    /// Skips the calling test unless Fashion-MNIST is in <see cref="FashionMnistDir"/>
    /// (or, with <paramref name="orLnlabData"/>, LNLAB_DATA names a data folder).
    /// </summary>
    public static void RequireFashionMnist(bool orLnlabData = false)
    {
        if (orLnlabData && Environment.GetEnvironmentVariable("LNLAB_DATA") is not null)
            return;
        if (!File.Exists(Path.Combine(FashionMnistDir, "train-images-idx3-ubyte.gz")))
            Assert.Skip($"Fashion-MNIST is not installed in {FashionMnistDir} (Debian package dataset-fashion-mnist)");
    }

    /// <summary>Runs <see cref="Python"/> ARGS; <paramref name="output"/> is its standard output, then its standard error.</summary>
    public static bool RunPython(string[] args, out string output)
    {
        var start = new ProcessStartInfo(Python) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args)
            start.ArgumentList.Add(a);
        using var p = Process.Start(start)!;
        var err = p.StandardError.ReadToEndAsync();
        output = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        output += err.Result;
        return p.ExitCode == 0;
    }
}

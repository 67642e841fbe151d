using System.Runtime.InteropServices;

namespace LabelNoiseLab.Cli;

/// <summary>
/// A worker of `lnlab sweep` dies with its parent: the sweep sets <see cref="EnvironmentVariable"/>
/// to its own process id, and the worker asks the kernel (Linux <c>prctl(PR_SET_PDEATHSIG)</c>) to
/// send it SIGTERM when that parent ends, even by SIGKILL; SIGTERM then checkpoints the run and
/// ends it <c>interrupted</c> like any other signal. Also the signals a sweep forwards to its
/// workers (see <see cref="SweepWorker"/>).
/// </summary>
internal static partial class ParentProcess
{
    /// <summary>Set by `lnlab sweep` for its workers: the sweep's process id.</summary>
    public const string EnvironmentVariable = "LNLAB_PARENT_PID";

    public const int SIGKILL = 9;
    public const int SIGTERM = 15;
    private const int PR_SET_PDEATHSIG = 1;

    /// <summary>The sweep's process id when this process is one of its workers, else null.</summary>
    public static int? Expected =>
        int.TryParse(Environment.GetEnvironmentVariable(EnvironmentVariable), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int pid) && pid > 0
            ? pid : null;

    /// <summary>
    /// Under a sweep: arms the parent-death signal and returns whether the parent is still the
    /// sweep (false: it died before the signal was armed, so the caller should stop at once).
    /// Outside a sweep, or not on Linux: true, nothing done.
    /// </summary>
    public static bool Watch()
    {
        if (Expected is not { } parent || !OperatingSystem.IsLinux())
            return true;
        _ = Prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0);
        // The parent may have died between fork and prctl: then we were already adopted by another process.
        return GetParentPid() == parent;
    }

    /// <summary>Sends <paramref name="signal"/> to <paramref name="pid"/>; false when it is gone.</summary>
    public static bool Signal(int pid, int signal) => OperatingSystem.IsLinux() || OperatingSystem.IsMacOS() ? SysKill(pid, signal) == 0 : false;

    [LibraryImport("libc", EntryPoint = "prctl")]
    [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
    private static partial int Prctl(int option, nuint arg2, nuint arg3, nuint arg4, nuint arg5);

    [LibraryImport("libc", EntryPoint = "getppid")]
    [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
    private static partial int GetParentPid();

    [LibraryImport("libc", EntryPoint = "kill")]
    [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
    private static partial int SysKill(int pid, int signal);
}

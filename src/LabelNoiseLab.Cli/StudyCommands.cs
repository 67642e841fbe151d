using System.CommandLine;

namespace LabelNoiseLab.Cli;

/// <summary>
/// The commands that work on run directories after (or around) training: export, sweep,
/// summarize, report. Each maps its parsed options to one plain worker method.
/// </summary>
internal static class StudyCommands
{
    public static void Add(RootCommand root, TextWriter stdout, CliHost host)
    {
        _ = root;
        _ = stdout;
        _ = host;
    }
}

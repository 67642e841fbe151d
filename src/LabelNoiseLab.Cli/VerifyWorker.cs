using System.Diagnostics;
using System.Globalization;
using System.Text;
using LabelNoiseLab.Experiments;
using LabelNoiseLab.RunFiles;
using LabelNoiseLab.Studies;
using Spectre.Console;

namespace LabelNoiseLab.Cli;

/// <summary>Everything `lnlab verify` was asked to do, as plain values.</summary>
public sealed record VerifyOptions
{
    public bool Quick { get; init; }

    /// <summary><c>--only a,b</c> (repeatable); empty = every preset.</summary>
    public IReadOnlyList<string> Only { get; init; } = [];

    /// <summary><c>--from DIR</c>: read finished preset folders instead of running.</summary>
    public string? From { get; init; }

    /// <summary><c>--out DIR</c>: where presets run (DIR/&lt;preset&gt;) and claims.csv and report.html go.</summary>
    public string? OutDir { get; init; }

    public bool Strict { get; init; }

    public string? DataDir { get; init; }
}

/// <summary>
/// `lnlab verify`: runs the presets (or reads their finished folders with <c>--from</c>), prints
/// one table of their claims, writes claims.csv and report.html. A preset that cannot be read or
/// run is one line on stderr naming it, and the others still run and are listed. Exit code: 2 when
/// some input was bad (an unknown --only name, a --from folder that is not a preset's), else 4 when
/// a preset run failed, else 6 with --strict when a claim failed, else 0. A signal (SIGINT, SIGTERM,
/// SIGHUP) reaches the running preset, which ends interrupted as under <c>lnlab run</c>; verify
/// starts no further preset, writes its table and files for what ran, and exits 5. Run again with
/// the same <c>--out</c>, it reads the presets that completed, resumes the interrupted one and
/// runs the rest.
/// </summary>
public sealed class VerifyWorker(TextWriter stdout, TextWriter stderr, CliHost host)
{
    public int Run(VerifyOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var (known, unknown) = Verify.Select(options.Only);
        var results = new List<PresetClaims>();
        foreach (var name in unknown)
            results.Add(PresetClaims.Failed(name, "", $"--only: unknown preset '{name}'; expected one of {string.Join(", ", Presets.Names)}", badInput: true));

        string outDir;
        if (options.From is { } from)
        {
            if (!Directory.Exists(from))
                throw new InputException($"--from {from}: no such directory");
            var folders = Verify.FoldersIn(from)
                ?? throw new InputException($"--from {from}: not a preset's directory, and no preset directories in it (expected {from}/<preset>/ for {string.Join(", ", Presets.Names)})");
            bool single = folders.Count == 1 && folders[0].Dir == from;
            foreach (var name in known)
            {
                var folder = folders.FirstOrDefault(f => f.Preset == name);
                if (folder.Dir is not null)
                    results.Add(Verify.Read(folder.Dir, name));
                else if (options.Only.Count > 0)
                    results.Add(single ? PresetClaims.Failed(name, from, $"--from {from}: holds preset {folders[0].Preset}, not {name}", badInput: true)
                        : Verify.Read(Path.Combine(from, name), name));
            }
            outDir = options.OutDir ?? from;
            Directory.CreateDirectory(outDir);
        }
        else
        {
            outDir = options.OutDir ?? Path.Combine(host.RunsRoot, "verify" + (options.Quick ? "-quick" : "") + "-" + DateTime.Now.ToString("yyyyMMdd-HHmmss", CultureInfo.InvariantCulture));
            Directory.CreateDirectory(outDir);
            stdout.WriteLine($"verify: {known.Count} preset(s){(options.Quick ? " (quick)" : "")} into {outDir}");
            for (int i = 0; i < known.Count; i++)
            {
                if (host.Cancellation.IsCancellationRequested)
                {
                    results.Add(PresetClaims.Failed(known[i], Path.Combine(outDir, known[i]), $"preset {known[i]}: not started (verify was interrupted)"));
                    continue;
                }
                results.Add(RunOne(known[i], Path.Combine(outDir, known[i]), options, $"[{i + 1}/{known.Count}]"));
            }
        }
        results = [.. results.OrderBy(r => Presets.Names.Contains(r.Preset) ? Presets.Names.ToList().IndexOf(r.Preset) : -1)];

        foreach (var r in results.Where(r => r.Problem is not null))
            stderr.WriteLine("lnlab verify: " + r.Problem!.ReplaceLineEndings(" "));
        stdout.Write(Verify.Table(results));
        int claims = results.Sum(r => r.Claims.Count), passed = results.Sum(r => r.Claims.Count(c => c.Pass));
        stdout.WriteLine($"{passed} of {claims} claims held; {results.Count(r => r.Problem is null && r.Claims.Count == 0)} preset(s) wrote no claims; {results.Count(r => r.Problem is not null)} not read or failed"
            + (results.Any(r => r.Claims.Any(c => c.Quick)) ? " (quick runs: they show that everything runs, not that the papers reproduce)" : ""));
        stdout.WriteLine(Verify.WriteCsv(outDir, results));
        stdout.WriteLine(Verify.WriteMarkdown(outDir, results, options.Quick || results.Any(r => r.Claims.Any(c => c.Quick))));
        stdout.WriteLine(Verify.WritePage(outDir, results, options.Quick || results.Any(r => r.Claims.Any(c => c.Quick))));

        if (options.From is null && host.Cancellation.IsCancellationRequested)
        {
            stdout.WriteLine($"verify: interrupted; the presets that finished are in {outDir}");
            return ExitCodes.Interrupted;
        }
        if (results.Any(r => r.BadInput))
            return ExitCodes.BadInput;
        if (results.Any(r => r.Problem is not null))
            return ExitCodes.Failed;
        return options.Strict && results.Any(r => r.Claims.Any(c => !c.Pass)) ? ExitCodes.ClaimsFailed : ExitCodes.Complete;
    }

    /// <summary>
    /// Runs one preset into <paramref name="dir"/> with a progress display, then reads what it
    /// wrote; a failure is a problem naming it. A folder an earlier verify left there is read
    /// when complete and resumed when not (<see cref="PresetWorker.Resume"/>), if it was run with
    /// the same <c>--quick</c>.
    /// </summary>
    private PresetClaims RunOne(string name, string dir, VerifyOptions options, string counter)
    {
        var earlier = RunDirectory.ReadStatus(dir);
        if (earlier is not null)
        {
            bool? quick;
            try
            {
                quick = PresetFolder.IsPresetFolder(dir) ? PresetFolder.Read(dir).Request.Quick : Verify.QuickOf(dir);
            }
            catch (InputException e)
            {
                return PresetClaims.Failed(name, dir, e.Message, badInput: true);
            }
            string? problem = quick is null
                ? (earlier.Value.Status == RunStatus.Complete ? null : $"{dir}: an unfinished preset folder without {PresetFolder.FileName} (written before presets could be resumed); choose another --out")
                : quick != options.Quick ? $"{dir}: holds a {(quick.Value ? "quick" : "full")} run of {name}, verify was asked for a {(options.Quick ? "quick" : "full")} one; choose another --out"
                : null;
            if (problem is not null)
                return PresetClaims.Failed(name, dir, problem, badInput: true);
            if (earlier.Value.Status == RunStatus.Complete)
            {
                stdout.WriteLine($"verify {counter} {name}: complete in {dir}, read (not run again)");
                return Verify.Read(dir, name);
            }
        }
        var clock = Stopwatch.StartNew();
        string? last = null;
        int code;
        string? error = null;
        bool badInput = false;
        void Body(Action<string> log)
        {
            using var lines = new LineWriter(log);
            try
            {
                var worker = new PresetWorker(lines, host.RunsRoot, host.Runner, host.Cancellation);
                code = earlier is not null ? worker.Resume(dir, options.DataDir) : worker.Run(new PresetOptions
                {
                    Preset = name,
                    Quick = options.Quick,
                    OutDir = dir,
                    DataDir = options.DataDir,
                });
            }
            catch (InputException e)
            {
                (error, badInput) = (e.Message, true);
            }
#pragma warning disable CA1031 // one preset's failure is reported as its row; the others still run
            catch (Exception e)
#pragma warning restore CA1031
            {
                error = $"internal error: {e.GetType().Name}: {e.Message}";
            }
        }
        if (host.Interactive)
        {
            var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(stdout) });
            console.Status().Spinner(Spinner.Known.Dots).Start($"{counter} {name}", ctx =>
            {
                using var timer = new Timer(_ => ctx.Status(Markup.Escape($"{counter} {name} {clock.Elapsed:m\\:ss}  {last ?? ""}")), null, 0, 500);
                Body(line => last = line.Length > 100 ? line[..100] : line);
            });
        }
        else
        {
            stdout.WriteLine($"verify {counter} {name}: {(earlier is null ? "running" : "resuming")}");
            Body(line => stdout.WriteLine($"  {name} | {line}"));
        }
        var result = error is not null ? PresetClaims.Failed(name, dir, $"preset {name}: {error}", badInput) : Verify.Read(dir, name);
        result = result with { Seconds = clock.Elapsed.TotalSeconds };
        stdout.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"verify {counter} {name}: {(result.Problem is not null ? "FAILED" : "done")} in {clock.Elapsed.TotalSeconds:F0} s, {result.Claims.Count(c => c.Pass)} of {result.Claims.Count} claims held"));
        return result;
    }

    /// <summary>A writer that hands each complete line to <paramref name="line"/>.</summary>
    private sealed class LineWriter(Action<string> line) : TextWriter
    {
        private readonly StringBuilder _buffer = new();

        public override Encoding Encoding => Encoding.UTF8;

        public override void Write(char value)
        {
            if (value == '\n')
            {
                line(_buffer.ToString().TrimEnd('\r'));
                _buffer.Clear();
            }
            else
            {
                _buffer.Append(value);
            }
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing && _buffer.Length > 0)
            {
                line(_buffer.ToString());
                _buffer.Clear();
            }
            base.Dispose(disposing);
        }
    }
}

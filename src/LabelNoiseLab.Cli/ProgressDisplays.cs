using System.Diagnostics;
using System.Globalization;
using System.Text;
using LabelNoiseLab.RunFiles;
using LabelNoiseLab.Training;
using Spectre.Console;
using Spectre.Console.Rendering;

namespace LabelNoiseLab.Cli;

/// <summary>A progress sink that may need to wrap the run (a live console display does).</summary>
public interface IProgressDisplay : IProgressSink
{
    T Show<T>(Func<T> run);
}

/// <summary>One line per evaluation, for logs and pipes (stdout redirected).</summary>
public sealed class PlainProgressDisplay(TextWriter output) : IProgressDisplay
{
    public T Show<T>(Func<T> run) => run();

    public void OnRunStart(int totalEpochs, int stepsPerEpoch) =>
        output.WriteLine($"training: {totalEpochs} epochs x {stepsPerEpoch} steps");

    public void OnStep(int epoch, long step, double loss)
    {
        // nothing per step: one line per evaluation keeps logs short
    }

    public void OnEvaluation(MetricsRow row) => output.WriteLine(Format(row));

    public void OnMessage(string message) => output.WriteLine(message);

    /// <summary><c>epoch 3 step 1407 lr 0.05 train_loss 0.3100 ... 12.3s</c>; missing (NaN) metrics are left out.</summary>
    public static string Format(MetricsRow row)
    {
        var sb = new StringBuilder();
        sb.Append(CultureInfo.InvariantCulture, $"epoch {row.Epoch} step {row.Step}");
        Add("lr", row.Lr, "G4");
        Add("train_loss", row.TrainLoss, "F4");
        Add("train_acc", row.TrainAcc, "F4");
        Add("clean_acc", row.CleanAcc, "F4");
        Add("noisy_given_acc", row.NoisyGivenAcc, "F4");
        Add("noisy_true_acc", row.NoisyTrueAcc, "F4");
        Add("test_loss", row.TestLoss, "F4");
        Add("test_acc", row.TestAcc, "F4");
        if (row.Extra is not null)
        {
            foreach (var (k, v) in row.Extra)
                Add(k, v, "F4");
        }
        if (!double.IsNaN(row.Seconds))
            sb.Append(' ').Append(row.Seconds.ToString("F1", CultureInfo.InvariantCulture)).Append('s');
        return sb.ToString();

        void Add(string name, double value, string format)
        {
            if (!double.IsNaN(value))
                sb.Append(' ').Append(name).Append(' ').Append(value.ToString(format, CultureInfo.InvariantCulture));
        }
    }
}

/// <summary>
/// A live Spectre.Console display for a terminal: the last evaluations as a table, and a status
/// line (epoch, step, loss, clean/noisy accuracy, ETA) with a bar. OnStep only stores numbers and
/// redraws at most every <see cref="RedrawInterval"/>.
/// </summary>
public sealed class SpectreProgressDisplay(IAnsiConsole console) : IProgressDisplay
{
    public static readonly TimeSpan RedrawInterval = TimeSpan.FromMilliseconds(200);
    private const int RecentRows = 8;
    private const int MessageRows = 3;

    private readonly Stopwatch _clock = new();
    private readonly Queue<MetricsRow> _recent = new();
    private readonly Queue<string> _messages = new();
    private LiveDisplayContext? _live;
    private long _lastDraw = long.MinValue / 2;
    private int _epochs;
    private int _stepsPerEpoch;
    private int _epoch;
    private long _step;
    private double _loss = double.NaN;

    public SpectreProgressDisplay(TextWriter output)
        : this(AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(output) }))
    {
    }

    public T Show<T>(Func<T> run)
    {
        T result = default!;
        _clock.Restart();
        console.Live(Render()).AutoClear(false).Start(ctx =>
        {
            _live = ctx;
            try
            {
                result = run();
            }
            finally
            {
                Redraw();
                _live = null;
            }
        });
        return result;
    }

    public void OnRunStart(int totalEpochs, int stepsPerEpoch)
    {
        _epochs = totalEpochs;
        _stepsPerEpoch = stepsPerEpoch;
        _clock.Restart();
        Redraw();
    }

    public void OnStep(int epoch, long step, double loss)
    {
        _epoch = epoch;
        _step = step;
        _loss = loss;
        if (_clock.ElapsedTicks - _lastDraw >= RedrawInterval.TotalSeconds * Stopwatch.Frequency)
            Redraw();
    }

    public void OnEvaluation(MetricsRow row)
    {
        _recent.Enqueue(row);
        while (_recent.Count > RecentRows)
            _recent.Dequeue();
        Redraw();
    }

    public void OnMessage(string message)
    {
        if (_live is null)
        {
            console.MarkupLine(Markup.Escape(message));
            return;
        }
        _messages.Enqueue(message);
        while (_messages.Count > MessageRows)
            _messages.Dequeue();
        Redraw();
    }

    private void Redraw()
    {
        _lastDraw = _clock.ElapsedTicks;
        if (_live is null)
            return;
        _live.UpdateTarget(Render());
        _live.Refresh();
    }

    private Rows Render()
    {
        var parts = new List<IRenderable>();
        if (_recent.Count > 0)
        {
            var table = new Table().Border(TableBorder.Simple);
            foreach (var h in (string[])["epoch", "step", "train loss", "train acc", "clean acc", "noisy given", "noisy true", "test acc", "time"])
                table.AddColumn(new TableColumn(h).RightAligned());
            foreach (var r in _recent)
            {
                table.AddRow(
                    r.Epoch.ToString(CultureInfo.InvariantCulture), r.Step.ToString(CultureInfo.InvariantCulture),
                    Num(r.TrainLoss), Pct(r.TrainAcc), Pct(r.CleanAcc), Pct(r.NoisyGivenAcc), Pct(r.NoisyTrueAcc), Pct(r.TestAcc),
                    double.IsNaN(r.Seconds) ? "" : Duration(r.Seconds));
            }
            parts.Add(table);
        }
        foreach (var m in _messages)
            parts.Add(new Text(m));
        parts.Add(new Markup(StatusLine()));
        return new Rows(parts);
    }

    private string StatusLine()
    {
        long total = (long)_epochs * _stepsPerEpoch;
        double fraction = total > 0 ? Math.Clamp((double)_step / total, 0, 1) : 0;
        const int width = 30;
        int filled = (int)(fraction * width);
        string bar = $"[green]{new string('━', filled)}[/][grey]{new string('━', width - filled)}[/]";
        string eta = _step > 0 && total > 0
            ? Duration(_clock.Elapsed.TotalSeconds / _step * (total - _step))
            : "?";
        var last = _recent.Count > 0 ? _recent.Last() : null;
        var sb = new StringBuilder();
        sb.Append(CultureInfo.InvariantCulture, $"{bar} {fraction * 100,5:F1}%  epoch {_epoch}/{_epochs}  step {_step}/{total}");
        sb.Append(CultureInfo.InvariantCulture, $"  loss [bold]{Num(_loss)}[/]");
        if (last is not null)
            sb.Append(CultureInfo.InvariantCulture, $"  clean {Pct(last.CleanAcc)}  noisy(given) {Pct(last.NoisyGivenAcc)}  test {Pct(last.TestAcc)}");
        sb.Append("  ETA ").Append(eta);
        return sb.ToString();
    }

    private static string Num(double v) => double.IsNaN(v) ? "-" : v.ToString("F4", CultureInfo.InvariantCulture);

    private static string Pct(double v) => double.IsNaN(v) ? "-" : (v * 100).ToString("F1", CultureInfo.InvariantCulture) + "%";

    private static string Duration(double seconds) =>
        double.IsFinite(seconds) ? TimeSpan.FromSeconds(Math.Round(seconds)).ToString(@"h\:mm\:ss", CultureInfo.InvariantCulture) : "?";
}

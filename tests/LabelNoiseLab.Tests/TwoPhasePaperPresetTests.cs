using System.Text.Json;
using LabelNoiseLab.Cli;
using LabelNoiseLab.RunFiles;
using LabelNoiseLab.Studies;
using LabelNoiseLab.Tensors;

namespace LabelNoiseLab.Tests;

/// <summary>
/// The two-phase-paper preset: its erf network's gradient and tangent kernel, and its linearised
/// twin, against finite differences; the preset end to end on small IDX files; bad settings.
/// </summary>
public sealed class TwoPhasePaperPresetTests : IDisposable
{
    private readonly TempDir _temp = new("two-phase-paper");

    public void Dispose() => _temp.Dispose();

    private static float[] Random(int n, Rng rng) => [.. Enumerable.Range(0, n).Select(_ => (float)rng.NextNormal())];

    /// <summary>0.5·mean((f − y)²) of a model's training output.</summary>
    private static double Loss(FullBatchModel model, float[] t) => TwoPhasePaperPreset.Mse(model.TrainOutput(), t);

    /// <summary>One step of size lr moves every parameter by −lr·gradient: read the gradient back and compare with central differences.</summary>
    private static void CheckGradient(FullBatchModel model, float[] t)
    {
        var before = model.Params.Select(p => (float[])p.Clone()).ToArray();
        const float lr = 1e-3f;
        model.Step(t, lr);
        var grads = model.Params.Select((p, i) => p.Select((v, j) => (before[i][j] - v) / lr).ToArray()).ToArray();
        for (int i = 0; i < before.Length; i++)
            before[i].CopyTo(model.Params[i], 0);
        double worst = 0;
        for (int i = 0; i < model.Params.Length; i++)
        {
            for (int j = 0; j < model.Params[i].Length; j++)
            {
                float keep = model.Params[i][j];
                const float h = 1e-2f;
                model.Params[i][j] = keep + h;
                double up = Loss(model, t);
                model.Params[i][j] = keep - h;
                double down = Loss(model, t);
                model.Params[i][j] = keep;
                double numeric = (up - down) / (2 * h);
                worst = Math.Max(worst, Math.Abs(numeric - grads[i][j]) / Math.Max(1e-3, Math.Abs(numeric) + Math.Abs(grads[i][j])));
            }
        }
        Assert.True(worst < 2e-2, $"relative gradient error {worst}");
    }

    [Fact]
    public void The_erf_network_and_its_linearised_twin_have_exact_gradients()
    {
        var rng = new Rng(5);
        int n = 4, d = 3, m = 5, k = 3;
        var x = Random(n * d, rng);
        var t = TwoPhasePaperPreset.OneHot([0, 2, 1, 2], k);
        var net = ErfNet.Initialise(d, m, k, rng).On(x);
        CheckGradient(net, t);
        var twin = new LinearisedErfNet(net, x, x);
        for (int p = 0; p < twin.Params.Length; p++) // away from Δ = 0, where it equals the network
            for (int j = 0; j < twin.Params[p].Length; j++)
                twin.Params[p][j] = 0.3f * (float)rng.NextNormal();
        CheckGradient(twin, t);
    }

    [Fact]
    public void The_twin_equals_the_network_at_the_start_and_agrees_to_first_order_nearby()
    {
        var rng = new Rng(6);
        int n = 5, d = 4, m = 6, k = 3;
        var x = Random(n * d, rng);
        var net = ErfNet.Initialise(d, m, k, rng).On(x);
        var twin = new LinearisedErfNet(net, x, x);
        Assert.Equal(net.Forward(x), twin.Forward(train: true));
        // A small step Δ: f(θ₀ + Δ) − f_lin = O(‖Δ‖²), so halving Δ quarters the gap.
        var direction = net.Params.Select(p => Random(p.Length, rng)).ToArray();
        double Gap(float eps)
        {
            var moved = ErfNet.Initialise(d, m, k, new Rng(6)); // same shapes; overwritten below
            for (int p = 0; p < net.Params.Length; p++)
            {
                for (int j = 0; j < net.Params[p].Length; j++)
                {
                    moved.Params[p][j] = net.Params[p][j] + eps * direction[p][j];
                    twin.Params[p][j] = eps * direction[p][j];
                }
            }
            return TwoPhasePaperPreset.Rms(moved.Forward(x), twin.Forward(train: true));
        }
        double g1 = Gap(2e-2f), g2 = Gap(1e-2f);
        Assert.InRange(g1 / g2, 3.0, 5.0);
    }

    [Fact]
    public void The_closed_form_tangent_kernel_equals_the_jacobian_product()
    {
        var rng = new Rng(7);
        int n = 3, d = 2, m = 4, k = 2;
        var x = Random(n * d, rng);
        var net = ErfNet.Initialise(d, m, k, rng).On(x);
        var kernel = net.Kernel(x);
        // J by central differences: rows (i·n + a), one column per parameter.
        var columns = new List<double[]>();
        foreach (var p in net.Params)
        {
            for (int j = 0; j < p.Length; j++)
            {
                float keep = p[j];
                const float h = 1e-2f;
                p[j] = keep + h;
                var up = net.Forward(x);
                p[j] = keep - h;
                var down = net.Forward(x);
                p[j] = keep;
                var column = new double[k * n];
                for (int r = 0; r < k * n; r++)
                    column[r] = (up[r] - down[r]) / (2.0 * h); // row a·k + i, the outputs' layout
                columns.Add(column);
            }
        }
        int kn = k * n;
        for (int r = 0; r < kn; r++)
        {
            for (int c = 0; c < kn; c++)
            {
                double expected = columns.Sum(col => col[r] * col[c]);
                Assert.True(Math.Abs(expected - kernel[r * kn + c]) <= 2e-2 * Math.Max(1, Math.Abs(expected)), $"K[{r},{c}] = {kernel[r * kn + c]}, J·Jᵀ = {expected}");
            }
        }
        Assert.Equal(0, TwoPhasePaperPreset.KernelDistance(kernel, kernel), 1e-12);
    }

    [Fact]
    public void The_function_space_twin_takes_the_same_steps_as_the_parameter_space_twin()
    {
        var rng = new Rng(8);
        int n = 6, d = 5, m = 7, k = 3;
        var x = Random(n * d, rng);
        var xTest = Random(4 * d, rng);
        var net = ErfNet.Initialise(d, m, k, rng).On(x);
        var twin = new LinearisedErfNet(net, x, xTest);
        var fast = new FunctionSpaceTwin(net, x, xTest);
        var t = TwoPhasePaperPreset.OneHot([0, 1, 2, 0, 1, 2], k);
        for (int step = 0; step < 40; step++)
        {
            if (step % 2 == 0)
            {
                twin.Step(t, 0.5f);
                fast.Step(t, 0.5f);
            }
            else
            {
                twin.SamStep(t, 0.5f, 0.1f);
                fast.SamStep(t, 0.5f, 0.1f);
            }
        }
        Assert.True(TwoPhasePaperPreset.Rms(twin.Forward(train: true), fast.Forward(train: true)) < 1e-4);
        Assert.True(TwoPhasePaperPreset.Rms(twin.Forward(train: false), fast.Forward(train: false)) < 1e-4);
        Assert.True(TwoPhasePaperPreset.Rms(twin.Forward(train: true), net.Forward(x)) > 1e-2); // it did move
    }

    [Fact]
    public void The_methods_on_threads_of_their_own_give_the_digits_of_one_at_a_time()
    {
        var rng = new Rng(9);
        int n = 16, d = 40, m = 24, k = 4;
        var x = Random(n * d, rng);
        var xTest = Random(n * d, rng);
        int[] y = [.. Enumerable.Range(0, n).Select(i => i % k)];
        var initial = ErfNet.Initialise(d, m, k, rng);
        var o = new TwoPhasePaperOptions { Width = m, Lr = 0.05, Steps = 30, EvalEvery = 10 };
        var sequential = TwoPhasePaperPreset.RunMethods(o, initial, x, y, xTest, y, k, concurrent: false, CancellationToken.None)!;
        var concurrent = TwoPhasePaperPreset.RunMethods(o, initial, x, y, xTest, y, k, concurrent: true, CancellationToken.None)!;
        Assert.Equal(3, concurrent.Length);
        for (int mi = 0; mi < 3; mi++)
        {
            Assert.Equal(4, sequential[mi].Curves.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length); // steps 0, 10, 20, 30
            Assert.Equal(sequential[mi].Curves, concurrent[mi].Curves);
            Assert.Equal(sequential[mi].Result with { Seconds = 0 }, concurrent[mi].Result with { Seconds = 0 });
        }
        Assert.NotEqual(sequential[0].Curves.Split('\n')[3].Split(',')[2], sequential[1].Curves.Split('\n')[3].Split(',')[2]); // gd and label noise differ
    }

    [Fact]
    public void The_preset_runs_on_small_idx_files_and_reports_curves_and_claims()
    {
        using var files = new DataTestFiles();
        const int n = 80;
        var labels = Enumerable.Range(0, n).Select(i => (byte)(i % 10)).ToArray();
        files.Write("train-images-idx3-ubyte.gz", DataTestFiles.IdxImages(DataTestFiles.Pixels(n * 28 * 28, 1), n, 28, 28), gzip: true);
        files.Write("train-labels-idx1-ubyte.gz", DataTestFiles.IdxLabels(labels), gzip: true);
        files.Write("t10k-images-idx3-ubyte.gz", DataTestFiles.IdxImages(DataTestFiles.Pixels(n * 28 * 28, 2), n, 28, 28), gzip: true);
        files.Write("t10k-labels-idx1-ubyte.gz", DataTestFiles.IdxLabels(labels), gzip: true);
        string run = Path.Combine(_temp.Path, "run");
        var (code, output, error) = TestCli.Run(_temp.Path, "run", "two-phase-paper", "--quick", "--out", run, "--data-dir", files.Dir,
            "--set", "two_phase_paper.width=32", "--set", "two_phase_paper.steps=40", "--set", "two_phase_paper.eval_every=20");
        Assert.True(code == 0, output + error);
        Assert.Equal(RunStatus.Complete, RunDirectory.ReadStatus(run)?.Status);
        var curves = File.ReadAllLines(Path.Combine(run, TwoPhasePaperPreset.CurvesFile));
        Assert.Equal(TwoPhasePaperPreset.CurvesHeader, curves[0]);
        Assert.Equal(3 * 3, curves.Length - 1); // steps 0, 20, 40 for each of gd, label_noise, sam
        foreach (var line in curves.Skip(1).Where(l => l.Split(',')[1] == "0"))
            Assert.EndsWith(",0,0,0", line, StringComparison.Ordinal); // twin = network and K = K₀ at step 0
        using var summary = JsonDocument.Parse(File.ReadAllText(Path.Combine(run, "summary.json")));
        var claims = summary.RootElement.GetProperty("claims").EnumerateArray().ToList();
        Assert.Equal(4, claims.Count);
        Assert.All(claims, c =>
        {
            Assert.True(c.GetProperty("quick").GetBoolean());
            Assert.Equal(JsonValueKind.Number, c.GetProperty("measured").ValueKind);
            Assert.True(c.GetProperty("pass").ValueKind is JsonValueKind.True or JsonValueKind.False);
        });
        foreach (var method in (string[])["gd", "label_noise", "sam"])
            Assert.True(summary.RootElement.GetProperty("methods").GetProperty(method).GetProperty("final_test_loss").GetDouble() > 0);
    }

    [Theory]
    [InlineData("two_phase_paper.p=1.5", "two_phase_paper.p")]
    [InlineData("two_phase_paper.steps=0", "two_phase_paper.steps")]
    [InlineData("two_phase_paper.data=csv", "two_phase_paper.data")]
    [InlineData("two_phase_paper.rho=-1", "two_phase_paper.rho")]
    public void Bad_settings_exit_2_naming_the_key_before_any_run_directory(string set, string key)
    {
        string run = Path.Combine(_temp.Path, "bad");
        var (code, _, error) = TestCli.Run(_temp.Path, "run", "two-phase-paper", "--quick", "--out", run, "--set", set);
        Assert.Equal(ExitCodes.BadInput, code);
        Assert.Single(error.Trim().Split('\n'));
        Assert.Contains($"'{key}'", error, StringComparison.Ordinal);
        Assert.False(Directory.Exists(run));
    }
}

// Plug a probe of your own (an ITrainingCallback) and a robust loss of your own (an ILossStep) into
// the trainer, without touching the library. The probe measures memorisation where it happens, in
// the training batches; the loss is the soft bootstrapping loss of Reed et al. (2015).
// Usage: dotnet run -- [training samples, default 20000] [epochs, default 5]
using System.Globalization;
using LabelNoiseLab.Autograd;
using LabelNoiseLab.Data;
using LabelNoiseLab.Losses;
using LabelNoiseLab.Nn;
using LabelNoiseLab.Noise;
using LabelNoiseLab.Optim;
using LabelNoiseLab.RunFiles;
using LabelNoiseLab.Studies;
using LabelNoiseLab.Tensors;
using LabelNoiseLab.Training;

int samples = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 20_000;
int epochs = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 5;

var data = DataSources.Prepare(
    new DataOptions { Name = "fashion-mnist", Subset = samples, Normalization = NormalizationMode.PerFeature, Seed = 0 },
    new NoiseOptions { Kind = NoiseKind.Symmetric, Rate = 0.4, Seed = 1 });
var model = new Mlp(data.Train.FeatureLength, [512, 512], data.Train.NumClasses);
Init.Apply(model, InitKind.Default, Rng.ForPurpose(seed: 0, "init"));

using var dir = RunDirectory.Create(outDir: null, name: "custom-components");
var setup = new TrainingSetup
{
    Options = new TrainingOptions { Name = "custom-components", Epochs = epochs, BatchSize = 128, LearningRate = 0.05f },
    Data = data,
    Model = model,
    Optimizer = new Sgd(model.Parameters(), lr: 0.05f, momentum: 0.9f),
    Schedule = new LrSchedule.Constant(),
    Loss = new SoftBootstrapLoss(beta: 0.8f),   // instead of plain cross-entropy
    Callbacks = [new BatchMemorisationProbe()], // its column lands in metrics.csv, its figures in summary.json
};
var result = new Trainer().Run(setup, dir, new RunContext(DataDir: null, NullProgressSink.Instance));
dir.WriteText(RunDirectory.ConfigFile, "# built in C# by examples/custom-callback-and-loss\n");
RunOutcome.Record(dir, result);

Console.WriteLine("epoch  batch_memorised  noisy_given_acc  test_acc");
foreach (var row in result.Report!.Rows)
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
        $"{row.Epoch,5}  {row.Extra!["batch_memorised"],15:F4}  {row.NoisyGivenAcc,15:F4}  {row.TestAcc,8:F4}"));
Console.WriteLine($"summary.json -> components: {string.Join(", ", ((IDictionary<string, object?>)result.Report.Summary["components"]!).Keys)}");
Console.WriteLine($"{result.Status}: {dir.Path}");

/// <summary>
/// A probe: of the mislabelled samples in the training batches since the last evaluation, the
/// fraction the network predicted as their given (wrong) label just before the step that trained
/// on them. Its state (two counters) is saved with every checkpoint, so a resumed run matches.
/// </summary>
internal sealed class BatchMemorisationProbe : ITrainingCallback
{
    private long _noisy, _memorised;

    public string Name => "probe.batch_memorisation";

    public long Acted { get; private set; }

    public IReadOnlyList<string> MetricsColumns => ["batch_memorised"];

    public void OnOutput(TrainingRun run, StepContext step)
    {
        var logits = step.Output!;
        for (int i = 0; i < step.Length; i++)
        {
            int given = step.Batch.Labels[i];
            if (given == step.Batch.TrueLabels[i])
                continue;
            _noisy++;
            var row = logits.Span.Slice(i * logits.RowLength, logits.RowLength);
            if (System.Numerics.Tensors.TensorPrimitives.IndexOfMax(row) == given)
                _memorised++;
        }
    }

    public void OnEvaluation(TrainingRun run, int epoch, long step, IDictionary<string, double> extra)
    {
        extra["batch_memorised"] = _noisy == 0 ? double.NaN : (double)_memorised / _noisy;
        (_noisy, _memorised) = (0, 0);
        Acted++;
    }

    public ComponentState SaveState() => new ComponentState().Set("noisy", _noisy).Set("memorised", _memorised).Set("acted", Acted);

    public void RestoreState(ComponentState state)
    {
        (_noisy, _memorised, Acted) = (state.Long("noisy"), state.Long("memorised"), state.Long("acted"));
    }
}

/// <summary>
/// Soft bootstrapping (Reed et al., 2015): cross-entropy against β·(given label) + (1 − β)·(the
/// model's own prediction, held constant), so a confident prediction can outvote a wrong label.
/// Built from the library's fused softmax cross-entropy with soft targets; nothing is kept between steps.
/// </summary>
internal sealed class SoftBootstrapLoss(float beta) : ILossStep
{
    public string Name => "loss";

    public long Acted => 0;

    public void BeforeStep(StepContext step)
    {
    }

    public Tensor Loss(Tape tape, Tensor output, StepContext step)
    {
        int rows = output.Rows, classes = output.RowLength;
        var targets = new Tensor(rows, classes);
        for (int i = 0; i < rows; i++)
        {
            var z = output.Span.Slice(i * classes, classes);
            var t = targets.Span.Slice(i * classes, classes);
            System.Numerics.Tensors.TensorPrimitives.SoftMax(z, t);
            System.Numerics.Tensors.TensorPrimitives.Multiply(t, 1f - beta, t);
            t[step.Labels[i]] += beta;
        }
        return SoftmaxCrossEntropyOp.Forward(tape, output, targets, step.Weighted ? step.FinalWeights() : null).Mean;
    }

    public ComponentState SaveState() => ComponentState.Empty;

    public void RestoreState(ComponentState state)
    {
    }
}

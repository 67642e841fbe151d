// Train an MLP on Fashion-MNIST whose training labels are 40% wrong (symmetric noise), through the
// library API, and print what the network does to the clean and to the mislabelled samples.
// Usage: dotnet run -- [training samples, default 20000] [epochs, default 5]
using System.Globalization;
using LabelNoiseLab.Data;
using LabelNoiseLab.Nn;
using LabelNoiseLab.Noise;
using LabelNoiseLab.Optim;
using LabelNoiseLab.RunFiles;
using LabelNoiseLab.Studies;
using LabelNoiseLab.Tensors;
using LabelNoiseLab.Training;

int samples = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 20_000;
int epochs = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 5;

// 1. Data: Fashion-MNIST ($LNLAB_DATA, else /usr/share/datasets: apt-get install dataset-fashion-mnist),
//    a seeded class-stratified subset, then 40% symmetric noise on the training labels (the test set stays clean).
var data = DataSources.Prepare(
    new DataOptions { Name = "fashion-mnist", Subset = samples, Normalization = NormalizationMode.PerFeature, Seed = 0 },
    new NoiseOptions { Kind = NoiseKind.Symmetric, Rate = 0.4, Seed = 1 });
Console.WriteLine($"{data.Train.Count} training samples, {data.Train.NoisyCount} of them with a wrong label");

// 2. Model and optimizer: MLP 784-512-512-10 (ReLU), weights drawn like PyTorch's default
//    (a new model's weights are zero until initialised), SGD with momentum.
var model = new Mlp(data.Train.FeatureLength, [512, 512], data.Train.NumClasses);
Init.Apply(model, InitKind.Default, Rng.ForPurpose(seed: 0, "init"));
var optimizer = new Sgd(model.Parameters(), lr: 0.05f, momentum: 0.9f);

// 3. Train. The trainer writes metrics.csv, summary.json and checkpoints into a run directory
//    (runs/noisy-mlp-<timestamp>) and returns every evaluation row it wrote.
using var dir = RunDirectory.Create(outDir: null, name: "noisy-mlp");
var setup = new TrainingSetup
{
    Options = new TrainingOptions { Name = "noisy-mlp", Epochs = epochs, BatchSize = 128, LearningRate = 0.05f },
    Data = data,
    Model = model,
    Optimizer = optimizer,
    Schedule = new LrSchedule.Constant(),
};
var result = new Trainer().Run(setup, dir, new RunContext(DataDir: null, NullProgressSink.Instance));
dir.WriteText(RunDirectory.ConfigFile, "# built in C# by examples/train-noisy-mlp\n");
RunOutcome.Record(dir, result); // status: complete (or diverged)

// 4. What happened, epoch by epoch: accuracy on the clean training samples, on the noisy ones against
//    their given (wrong) label (memorisation) and against their true label (recovery), and on the test set.
Console.WriteLine("epoch  clean_acc  noisy_given_acc  noisy_true_acc  test_acc");
foreach (var row in result.Report!.Rows)
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
        $"{row.Epoch,5}  {row.CleanAcc,9:F4}  {row.NoisyGivenAcc,15:F4}  {row.NoisyTrueAcc,14:F4}  {row.TestAcc,8:F4}"));
Console.WriteLine($"{result.Status}: {dir.Path}");

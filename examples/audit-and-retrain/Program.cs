// Audit a data set for wrong labels with confident learning (what `lnlab audit` runs: K-fold
// out-of-sample probabilities, then the confident joint), then retrain without the flagged samples
// and compare with training on every (noisy) label.
// Usage: dotnet run -- [training samples, default 10000] [epochs, default 5] [folds, default 5]
using System.Globalization;
using LabelNoiseLab.Experiments;
using LabelNoiseLab.RunFiles;
using LabelNoiseLab.Studies;
using LabelNoiseLab.Training;

string samples = args.Length > 0 ? args[0] : "10000";
string epochs = args.Length > 1 ? args[1] : "5";
string folds = args.Length > 2 ? args[2] : "5";

// 1. One config for everything: Fashion-MNIST with 40% symmetric noise, an MLP, SGD. The same YAML
//    `lnlab train` reads; keys are checked (a wrong key or value is a ConfigException naming it).
var config = ExperimentConfig.Parse($"""
    name: fmnist-audit
    seed: 0
    epochs: {epochs}
    batch_size: 128
    data:
      name: fashion-mnist
      subset: {samples}
      normalize: standardize
    noise:
      kind: symmetric
      rate: 0.4
      seed: 1
    model:
      kind: mlp
      hidden: [512]
    optim:
      kind: sgd
      lr: 0.05
      momentum: 0.9
    audit:
      folds: {folds}
    """);

// 2. The audit: each fold is an ordinary, resumable run under runs/<audit>/folds/; the result is
//    label_issues.csv (one row per training sample: flagged or not, suggested label) and summary.json.
var runner = new ExperimentRunner();
string auditPath = Path.Combine("runs", $"fmnist-audit-{DateTime.Now:yyyyMMdd-HHmmss}");
using (var dir = RunDirectory.Create(auditPath, "fmnist-audit"))
{
    dir.WriteConfig(config);
    var audited = Audit.Run(config, dir, new PresetContext(runner, DataDir: null, Log: Console.WriteLine));
    RunOutcome.Record(dir, audited);
}
string issues = Path.GetFullPath(Path.Combine(auditPath, Audit.IssuesFile));

// 3. Retrain twice, on every given label and without the flagged samples (data.exclude), and compare.
var context = new RunContext(DataDir: null, NullProgressSink.Instance);
var noisy = SubRun.Execute(Path.Combine(auditPath, "retrain-all"), config, runner, context);
var cleaned = SubRun.Execute(Path.Combine(auditPath, "retrain-cleaned"), config.WithOverrides([$"data.exclude={issues}"]), runner, context);
Console.WriteLine("training labels           test_acc  clean_acc  noisy_given_acc (memorised wrong labels left in the set)");
foreach (var (label, run) in new[] { ("all", noisy), ("flagged samples removed", cleaned) })
{
    var final = run.Report!.Final!;
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
        $"{label,-24}  {final.TestAcc,8:F4}  {final.CleanAcc,9:F4}  {final.NoisyGivenAcc,15:F4}"));
}
Console.WriteLine($"{cleaned.Status}: {auditPath}");

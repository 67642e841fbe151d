using System.Diagnostics;
using System.Globalization;
using LabelNoiseLab.Autograd;
using LabelNoiseLab.Data;
using LabelNoiseLab.Losses;
using LabelNoiseLab.Nn;
using LabelNoiseLab.Optim;
using LabelNoiseLab.Tensors;
using LabelNoiseLab.RunFiles;
using LabelNoiseLab.Experiments;

namespace LabelNoiseLab.Training;

/// <summary>
/// The training loop of <c>lnlab train</c>, readable top to bottom: data (noise injected once),
/// model, optimizer; then epochs of minibatch steps, an evaluation after each epoch (and every
/// <c>eval_every_steps</c>) written to metrics.csv, checkpoints, and summary.json. A NaN or
/// infinite loss ends the run as diverged at its step with the metrics so far kept.
/// </summary>
public sealed class Trainer : IExperimentRunner
{
    public static readonly IReadOnlyList<string> ExtraColumns = ["val_loss", "val_acc", "eval_seconds"];

    public RunResult Run(ExperimentConfig config, RunDirectory dir, RunContext context)
    {
        var clock = Stopwatch.StartNew();
        if (config.Threads > 0)
            Blas.Threads = config.Threads;
        if (config.EarlyStopPatience > 0 && config.DataValFraction == 0)
            throw new ConfigException("early_stop.patience", "needs a validation split (data.val_fraction > 0)");

        // Data: loaded, subset, noise injected once from its own seed, split, normalised.
        var data = ExperimentSetup.PrepareData(config, context.DataDir);
        var train = data.Train;
        if (train.Count < config.BatchSize)
            throw new ConfigException("batch_size", $"{config.BatchSize} is larger than the training set ({train.Count} samples)");
        bool regression = train.NumClasses == 0;
        if (regression && config.LossKind != "mse")
            throw new ConfigException("loss.kind", $"data set {config.DataName} is a regression set; use mse");

        // Model, optimizer, schedule, batches.
        var model = ExperimentSetup.CreateModel(config, train);
        var optimizer = ExperimentSetup.CreateOptimizer(config, model.Parameters());
        var sam = config.SamRho > 0 ? new Sam(optimizer, (float)config.SamRho, config.SamAdaptive, (float)config.SamEta) : null;
        var batcher = new Batcher(train, config.BatchSize, Rng.ForPurpose(config.Seed, "shuffle"));
        var schedule = ExperimentSetup.CreateSchedule(config, batcher.BatchesPerEpoch);
        var evaluator = new Evaluator(model, config.LossKind);
        int[] evalSubset = EvaluationSubset(train.Count, config.EvalTrainSamples, config.Seed);
        var progress = context.Progress;
        var run = new TrainingRun(config, dir, data, model, optimizer, batcher, progress);
        var objectives = TrainerHooks.Objectives.Select(f => f(config, run)).OfType<ITrainingObjective>().ToList();
        if (objectives.Count > 1)
            throw new ConfigException("label_noise.kind", "per-step label noise cannot be combined with robust.loss, prune.* or select.* (one training objective per run)");
        var objective = objectives.FirstOrDefault() ?? new PlainObjective(config.LossKind, regression ? train.TargetLength : 0);
        var hooks = TrainerHooks.Factories.Select(f => f(config)).OfType<ITrainerHook>().ToList();
        if (objective is ITrainerHook objectiveHook) // an objective may report too (label noise: realised rates)
            hooks.Add(objectiveHook);
        var dropoutGenerators = TrainingCheckpoint.DropoutGenerators(model);
        var tape = new Tape();
        // The batch tensor is a view of the batcher's own buffer: the batcher's copy is the only one.
        var x = new Tensor(batcher.FeatureBuffer, config.BatchSize, train.FeatureLength);
        var best = new BestTracker();

        long step = 0;
        int epoch = 0, sinceImprovement = 0;
        Func<float> samClosure = SamLossAndGradients; // created once: a step allocates nothing
        bool stoppedEarly = false;
        double trainSeconds = 0, secondsBefore = 0;
        // Resume: model, optimizer, generators and bookkeeping as they were after the checkpoint's epoch.
        var resumed = context.ResumeFrom is null ? null
            : TrainingCheckpoint.Restore(context.ResumeFrom, config, model, optimizer, batcher, dropoutGenerators);
        if (resumed is not null)
        {
            (step, epoch, sinceImprovement, stoppedEarly) = (resumed.Step, resumed.Epoch, resumed.SinceImprovement, resumed.StoppedEarly);
            (trainSeconds, secondsBefore) = (resumed.TrainSeconds, resumed.TotalSeconds);
            progress.OnMessage($"resuming after epoch {epoch} (step {step}) from {context.ResumeFrom}");
        }
        var metrics = dir.OpenMetrics([.. ExtraColumns, .. hooks.SelectMany(h => h.MetricsColumns)], resumed?.MetricsCsv);
        if (resumed is not null)
            best.Restore(resumed.Best, metrics.Rows.Count > 0 ? metrics.Rows[^1] : null);
        foreach (var hook in hooks)
            hook.OnStart(run);
        RestoreStates(resumed, objective, hooks);
        progress.OnRunStart(config.Epochs, batcher.BatchesPerEpoch);

        for (epoch++; epoch <= config.Epochs && !stoppedEarly; epoch++)
        {
            var epochClock = Stopwatch.StartNew();
            batcher.StartEpoch();
            while (batcher.Next())
            {
                if (context.Cancellation.IsCancellationRequested)
                    return RunResult.Failed($"interrupted at step {step}");
                // One step: forward, loss, backward, update.
                x.Resize([batcher.Length, train.FeatureLength]);
                optimizer.LearningRate = schedule.At(step, (float)config.OptimLr);
                float lossValue;
                if (sam is not null)
                {
                    // SAM: the closure runs forward/backward twice on this batch (the objective keeps
                    // the step's noisy labels); a non-finite loss is caught below, after the step.
                    lossValue = sam.Step(samClosure);
                }
                else
                {
                    tape.Reset();
                    optimizer.ZeroGrad();
                    var output = model.Forward(tape, x);
                    var loss = objective.Loss(tape, output, batcher, step);
                    lossValue = loss[0];
                    if (float.IsFinite(lossValue))
                    {
                        tape.Backward(loss);
                        objective.AfterBackward(tape, batcher, step);
                        optimizer.Step();
                    }
                }
                step++;
                if (!float.IsFinite(lossValue))
                {
                    progress.OnMessage($"loss is {lossValue} at step {step}: diverged");
                    var divergedSummary = WriteSummary(run, hooks, best, epoch - 1, step, secondsBefore + clock.Elapsed.TotalSeconds, trainSeconds, divergedAt: step, stoppedEarly: false);
                    return RunResult.Diverged(step) with { Report = new TrainingReport([.. metrics.Rows], divergedSummary) };
                }
                progress.OnStep(epoch, step, lossValue);
                if (config.EvalEverySteps > 0 && step % config.EvalEverySteps == 0 && !batcher.EpochDone)
                    Evaluate(epoch, step, epochClock.Elapsed.TotalSeconds);
            }
            double epochSeconds = epochClock.Elapsed.TotalSeconds;
            trainSeconds += epochSeconds;
            var row = Evaluate(epoch, step, epochSeconds);

            // Early stopping on the validation loss (only when asked; the run then ends complete).
            if (best.Update(row, epoch))
                sinceImprovement = 0;
            else if (config.EarlyStopPatience > 0 && ++sinceImprovement >= config.EarlyStopPatience)
            {
                stoppedEarly = true;
                progress.OnMessage($"early stop after epoch {epoch}: no better validation loss for {sinceImprovement} evaluations");
            }
            if (config.CheckpointEvery > 0 && epoch % config.CheckpointEvery == 0)
            {
                TrainingCheckpoint.Save(dir, $"{TrainingCheckpoint.EpochPrefix}{epoch:D4}", config, model, optimizer, new ResumeState
                {
                    ConfigYaml = config.ToYaml(),
                    Epoch = epoch,
                    Step = step,
                    OptimizerSteps = optimizer.StepCount,
                    Batcher = batcher.GetState(),
                    DropoutGenerators = [.. dropoutGenerators.Select(g => g.GetState())],
                    SinceImprovement = sinceImprovement,
                    StoppedEarly = stoppedEarly,
                    TrainSeconds = trainSeconds,
                    TotalSeconds = secondsBefore + clock.Elapsed.TotalSeconds,
                    Best = best.State,
                    MetricsCsv = metrics.Text,
                    ObjectiveState = (objective as IResumable)?.SaveState(),
                    HookStates = [.. hooks.Select(h => (h as IResumable)?.SaveState())],
                });
            }
        }
        int epochsDone = epoch - 1;
        SaveCheckpoint(dir, "final", model, config, epochsDone, step);
        var summary = WriteSummary(run, hooks, best, epochsDone, step, secondsBefore + clock.Elapsed.TotalSeconds, trainSeconds, divergedAt: null, stoppedEarly);
        return RunResult.Complete with { Report = new TrainingReport([.. metrics.Rows], summary) };

        // Loss and gradients at the current weights on the current batch (Sam zeroes the gradients).
        float SamLossAndGradients()
        {
            tape.Reset();
            var output = model.Forward(tape, x);
            var loss = objective.Loss(tape, output, batcher, step);
            float value = loss[0];
            if (float.IsFinite(value))
            {
                tape.Backward(loss);
                objective.AfterBackward(tape, batcher, step); // per-sample re-weighting applies at both points
            }
            return value;
        }

        MetricsRow Evaluate(int atEpoch, long atStep, double seconds)
        {
            var evalClock = Stopwatch.StartNew();
            var trainScores = evaluator.Score(train, evalSubset);
            var test = evaluator.Score(data.Test).Given;
            var val = data.Validation is null ? default : evaluator.Score(data.Validation).Given;
            var extra = new Dictionary<string, double>
            {
                ["val_loss"] = val.Loss,
                ["val_acc"] = val.Accuracy,
            };
            foreach (var hook in hooks)
                hook.OnEvaluation(run, atEpoch, atStep, extra);
            extra["eval_seconds"] = evalClock.Elapsed.TotalSeconds;
            var row = new MetricsRow
            {
                Epoch = atEpoch,
                Step = atStep,
                Lr = optimizer.LearningRate,
                TrainLoss = trainScores.Given.Loss,
                TrainAcc = trainScores.Given.Accuracy,
                CleanLoss = trainScores.Clean.Loss,
                CleanAcc = trainScores.Clean.Accuracy,
                NoisyGivenLoss = trainScores.NoisyGiven.Loss,
                NoisyGivenAcc = trainScores.NoisyGiven.Accuracy,
                NoisyTrueLoss = trainScores.NoisyTrue.Loss,
                NoisyTrueAcc = trainScores.NoisyTrue.Accuracy,
                TestLoss = test.Loss,
                TestAcc = test.Accuracy,
                Seconds = seconds,
                Extra = extra,
            };
            metrics.Append(row);
            progress.OnEvaluation(row);
            return row;
        }
    }

    /// <summary>The configured loss against the batch's given labels (or regression targets).</summary>
    private sealed class PlainObjective(string lossKind, int targetLength) : ITrainingObjective
    {
        private readonly Tensor? _targets = targetLength > 0 ? new Tensor(0, targetLength) : null;

        public Tensor Loss(Tape tape, Tensor output, Batcher batch, long step)
        {
            if (_targets is not null)
            {
                _targets.Resize([batch.Length, targetLength]);
                batch.Targets.CopyTo(_targets.Span);
                return MseOp.Forward(tape, output, _targets).Mean;
            }
            return lossKind == "mse"
                ? MseOp.Forward(tape, output, batch.LabelBuffer).Mean
                : SoftmaxCrossEntropyOp.Forward(tape, output, batch.LabelBuffer).Mean;
        }
    }

    private static void RestoreStates(ResumeState? resumed, ITrainingObjective objective, List<ITrainerHook> hooks)
    {
        if (resumed is null)
            return;
        if (resumed.ObjectiveState is not null && objective is IResumable o)
            o.RestoreState(resumed.ObjectiveState);
        for (int i = 0; i < hooks.Count && i < resumed.HookStates.Length; i++)
        {
            if (resumed.HookStates[i] is { } state && hooks[i] is IResumable h)
                h.RestoreState(state);
        }
    }

    /// <summary>A fixed random subset of training indices scored at every evaluation (all when 0 or larger).</summary>
    internal static int[] EvaluationSubset(int count, int wanted, long seed)
    {
        var all = Enumerable.Range(0, count).ToArray();
        if (wanted <= 0 || wanted >= count)
            return all;
        Rng.ForPurpose(seed, "eval-subset").Shuffle(all);
        var subset = all[..wanted];
        Array.Sort(subset);
        return subset;
    }

    private static void SaveCheckpoint(RunDirectory dir, string name, Model model, ExperimentConfig config, int epoch, long step) =>
        dir.SaveCheckpoint(name, model.NamedParameters(), new Dictionary<string, string>
        {
            ["model.kind"] = config.ModelKind,
            ["epoch"] = epoch.ToString(CultureInfo.InvariantCulture),
            ["step"] = step.ToString(CultureInfo.InvariantCulture),
        });

    private static Dictionary<string, object?> WriteSummary(TrainingRun run, List<ITrainerHook> hooks, BestTracker best,
        int epochs, long steps, double totalSeconds, double trainSeconds, long? divergedAt, bool stoppedEarly)
    {
        var (config, data, model) = (run.Config, run.Data, run.Model);
        var last = best.Last;
        var summary = new Dictionary<string, object?>
        {
            ["name"] = config.Name,
            ["epochs_completed"] = epochs,
            ["steps"] = steps,
            ["diverged"] = divergedAt is not null,
            ["diverged_at_step"] = divergedAt,
            ["stopped_early"] = stoppedEarly,
            ["final"] = last is null ? null : new Dictionary<string, object?>
            {
                ["epoch"] = last.Epoch,
                ["train_loss"] = last.TrainLoss,
                ["train_acc"] = last.TrainAcc,
                ["clean_acc"] = last.CleanAcc,
                ["noisy_given_acc"] = last.NoisyGivenAcc,
                ["noisy_true_acc"] = last.NoisyTrueAcc,
                ["test_loss"] = last.TestLoss,
                ["test_acc"] = last.TestAcc,
                ["val_loss"] = last.Extra?["val_loss"],
                ["val_acc"] = last.Extra?["val_acc"],
            },
            ["best_test_acc"] = best.BestTestAcc,
            ["best_test_epoch"] = best.BestTestEpoch,
            ["best_val_loss"] = best.BestValLoss,
            ["best_val_epoch"] = best.BestValEpoch,
            ["test_acc_at_best_val"] = best.TestAccAtBestVal,
            ["noise"] = data.Noise.ToDictionary(),
            ["data"] = new Dictionary<string, object?>
            {
                ["train"] = data.Train.Count,
                ["validation"] = data.Validation?.Count ?? 0,
                ["test"] = data.Test.Count,
                ["train_noisy"] = data.Train.NoiseMask.Count(m => m),
                ["validation_noisy"] = data.Validation?.NoiseMask.Count(m => m) ?? 0,
            },
            ["parameters"] = model.ParameterCount(),
            ["blas_backend"] = Blas.Backend.ToString(),
            ["threads"] = Blas.Threads,
            ["seconds_total"] = totalSeconds,
            ["seconds_training"] = trainSeconds,
        };
        foreach (var hook in hooks)
            hook.OnEnd(run, summary);
        run.Directory.WriteSummary(summary);
        return summary;
    }

    /// <summary>Best-epoch bookkeeping: best test accuracy, best (lowest) validation loss, the last row.</summary>
    private sealed class BestTracker
    {
        public MetricsRow? Last { get; private set; }
        public double BestTestAcc { get; private set; } = double.NaN;
        public int? BestTestEpoch { get; private set; }
        public double BestValLoss { get; private set; } = double.NaN;
        public int? BestValEpoch { get; private set; }
        public double TestAccAtBestVal { get; private set; } = double.NaN;

        public BestState State => new(BestTestAcc, BestTestEpoch, BestValLoss, BestValEpoch, TestAccAtBestVal);

        public void Restore(BestState state, MetricsRow? last)
        {
            (BestTestAcc, BestTestEpoch, BestValLoss, BestValEpoch, TestAccAtBestVal) =
                (state.BestTestAcc, state.BestTestEpoch, state.BestValLoss, state.BestValEpoch, state.TestAccAtBestVal);
            Last = last;
        }

        /// <summary>Records an evaluation; true when the validation loss improved (or there is none).</summary>
        public bool Update(MetricsRow row, int epoch)
        {
            Last = row;
            if (!(row.TestAcc <= BestTestAcc))
            {
                BestTestAcc = row.TestAcc;
                BestTestEpoch = epoch;
            }
            double val = row.Extra?["val_loss"] ?? double.NaN;
            if (double.IsNaN(val))
                return true;
            if (double.IsNaN(BestValLoss) || val < BestValLoss)
            {
                BestValLoss = val;
                BestValEpoch = epoch;
                TestAccAtBestVal = row.TestAcc;
                return true;
            }
            return false;
        }
    }
}

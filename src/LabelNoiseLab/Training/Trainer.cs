using System.Diagnostics;
using System.Globalization;
using LabelNoiseLab.Autograd;
using LabelNoiseLab.Data;
using LabelNoiseLab.RunFiles;
using LabelNoiseLab.Tensors;

namespace LabelNoiseLab.Training;

/// <summary>
/// The training loop, readable top to bottom: epochs of minibatch steps, an evaluation after each
/// epoch (and every <c>eval_every_steps</c>) written to metrics.csv, checkpoints, summary.json.
/// A step runs its components in a fixed order: target steps (label-noise SGD) → forward →
/// sample weighting (selection, co-teaching) → gradient weighting (pruning) → loss → backward →
/// update, with SAM wrapping forward-to-backward (its second pass reuses the labels and weights).
/// A NaN or infinite loss ends the run as diverged with the metrics so far kept. A cancellation
/// (a signal) writes a checkpoint at the next step boundary and ends the run as interrupted.
/// </summary>
public sealed class Trainer
{
    /// <summary>The metrics.csv columns the trainer adds after the standard ones.</summary>
    public static readonly IReadOnlyList<string> ExtraColumns = ["val_loss", "val_acc", "eval_seconds"];

    /// <summary>Trains <paramref name="setup"/> into <paramref name="dir"/> (from a checkpoint when <see cref="RunContext.ResumeFrom"/> is set) and returns how it ended with what it measured; the caller writes the final status (e.g. <c>RunOutcome.Record</c>).</summary>
    public RunResult Run(TrainingSetup setup, RunDirectory dir, RunContext context)
    {
        ArgumentNullException.ThrowIfNull(setup);
        ArgumentNullException.ThrowIfNull(dir);
        ArgumentNullException.ThrowIfNull(context);
        var clock = Stopwatch.StartNew();
        var o = setup.Options;
        if (o.Epochs < 1)
            throw new ArgumentOutOfRangeException(nameof(setup), $"TrainingOptions.Epochs is {o.Epochs}; expected at least 1");
        if (o.BatchSize < 1)
            throw new ArgumentOutOfRangeException(nameof(setup), $"TrainingOptions.BatchSize is {o.BatchSize}; expected at least 1");
        if (o.Threads > 0)
            Blas.Threads = o.Threads;
        var (data, model, optimizer) = (setup.Data, setup.Model, setup.Optimizer);
        var train = data.Train;
        if (train.Count < o.BatchSize)
            throw new ArgumentException($"batch size {o.BatchSize} is larger than the training set ({train.Count} samples)", nameof(setup));
        var batcher = new Batcher(train, o.BatchSize, Rng.ForPurpose(o.Seed, "shuffle"));
        var evaluator = new Evaluator(model, o.LossKind == LossKind.Mse ? "mse" : "cross_entropy");
        int[] evalSubset = EvaluationSubset(train.Count, o.EvalTrainSamples, o.Seed);
        var progress = context.Progress;
        var run = new TrainingRun(o, dir, data, model, optimizer, batcher, progress);
        var loss = setup.Loss ?? new PlainLoss(o.LossKind, train.NumClasses == 0 ? train.TargetLength : 0);
        var components = Components(setup, loss);
        // Arrays: a foreach over an interface list would allocate an enumerator every step.
        ITrainingCallback[] callbacks = [.. setup.Callbacks];
        ITargetStep[] targets = [.. setup.Targets];
        ISampleWeighting[] weightings = [.. setup.Weightings];
        var dropoutGenerators = TrainingCheckpoint.DropoutGenerators(model);
        var tape = new Tape();
        // The batch tensor is a view of the batcher's own buffer: the batcher's copy is the only one.
        var x = new Tensor(batcher.FeatureBuffer, o.BatchSize, train.FeatureLength);
        var ctx = new StepContext(batcher);
        var best = new BestTracker();

        long step = 0;
        int epoch = 0, sinceImprovement = 0, noisyFitEpoch = 0, stopAtEpoch = 0;
        bool stoppedEarly = false, inEpoch = false;
        double trainSeconds = 0, secondsBefore = 0, epochSecondsBefore = 0;
        Func<float> samClosure = ForwardBackward; // created once: a step allocates nothing
        // Resume: model, optimizer, generators, components and bookkeeping as they were at the checkpoint's step.
        var resumed = context.ResumeFrom is null ? null
            : TrainingCheckpoint.Restore(context.ResumeFrom, o, model, optimizer, batcher, dropoutGenerators, components);
        if (resumed is not null)
        {
            (step, epoch, sinceImprovement, stoppedEarly, inEpoch) = (resumed.Step, resumed.Epoch, resumed.SinceImprovement, resumed.StoppedEarly, resumed.InEpoch);
            (trainSeconds, secondsBefore, epochSecondsBefore) = (resumed.TrainSeconds, resumed.TotalSeconds, resumed.EpochSeconds);
            progress.OnMessage(inEpoch ? $"resuming inside epoch {epoch} at step {step} from {context.ResumeFrom}"
                : $"resuming after epoch {epoch} (step {step}) from {context.ResumeFrom}");
        }
        var metrics = dir.OpenMetrics([.. ExtraColumns, .. callbacks.SelectMany(h => h.MetricsColumns)], resumed?.MetricsCsv);
        if (resumed is not null)
        {
            best.Restore(resumed.Best, metrics.Rows.Count > 0 ? metrics.Rows[^1] : null);
            // The noisy-fit stop is a function of the epoch-end rows, which the checkpoint kept.
            foreach (var r in metrics.Rows)
            {
                if (r.Step == (long)r.Epoch * batcher.BatchesPerEpoch)
                    NoteNoisyFit(r);
            }
        }
        foreach (var callback in callbacks)
            callback.Attach(run);
        if (resumed is null)
        {
            foreach (var callback in callbacks)
                callback.OnStart(run);
        }
        progress.OnRunStart(o.Epochs, batcher.BatchesPerEpoch);

        try
        {
            if (!inEpoch)
                epoch++;
            for (; epoch <= o.Epochs && !stoppedEarly; epoch++)
            {
                var epochClock = Stopwatch.StartNew();
                if (!inEpoch)
                {
                    batcher.StartEpoch();
                    epochSecondsBefore = 0;
                }
                inEpoch = false;
                while (!batcher.EpochDone)
                {
                    if (context.Cancellation.IsCancellationRequested)
                        return Interrupt(epoch, midEpoch: true, epochSecondsBefore + epochClock.Elapsed.TotalSeconds);
                    batcher.Next();
                    float lossValue = TrainStep();
                    step++;
                    if (!float.IsFinite(lossValue))
                    {
                        progress.OnMessage($"loss is {lossValue} at step {step}: diverged");
                        var divergedSummary = WriteSummary(run, components, callbacks, best, epoch - 1, step, secondsBefore + clock.Elapsed.TotalSeconds, trainSeconds, divergedAt: step, stoppedEarly: false);
                        return RunResult.Diverged(step) with { Report = new TrainingReport([.. metrics.Rows], divergedSummary) };
                    }
                    progress.OnStep(epoch, step, lossValue);
                    if (batcher.EpochDone)
                        break;
                    if (o.EvalEverySteps > 0 && step % o.EvalEverySteps == 0)
                        Evaluate(epoch, step, epochSecondsBefore + epochClock.Elapsed.TotalSeconds);
                    if (o.CheckpointEverySteps > 0 && step % o.CheckpointEverySteps == 0)
                        SaveResumable(epoch, midEpoch: true, epochSecondsBefore + epochClock.Elapsed.TotalSeconds);
                }
                double epochSeconds = epochSecondsBefore + epochClock.Elapsed.TotalSeconds;
                trainSeconds += epochSeconds;
                bool evaluate = !o.LogSpacedEvaluation || EvaluationSchedule.IsLogEpoch(epoch) || epoch == o.Epochs
                    || stopAtEpoch > 0 && epoch >= stopAtEpoch;
                if (evaluate)
                {
                    var row = Evaluate(epoch, step, epochSeconds);
                    NoteNoisyFit(row);

                    // Early stopping on the validation loss (only when asked; the run then ends complete).
                    if (best.Update(row, epoch))
                    {
                        sinceImprovement = 0;
                        if (o.SaveBestValCheckpoint && best.BestValEpoch == epoch)
                            SaveModel(dir, run, "best_val", epoch, step);
                    }
                    else if (o.EarlyStopPatience > 0 && ++sinceImprovement >= o.EarlyStopPatience)
                    {
                        stoppedEarly = true;
                        progress.OnMessage($"early stop after epoch {epoch}: no better validation loss for {sinceImprovement} evaluations");
                    }
                    if (stopAtEpoch > 0 && epoch >= stopAtEpoch && !stoppedEarly)
                    {
                        stoppedEarly = true;
                        progress.OnMessage($"stop after epoch {epoch}: noisy labels fitted at epoch {noisyFitEpoch}, trained {o.NoisyFitFactor.ToString(CultureInfo.InvariantCulture)}× as long");
                    }
                }
                bool byEpoch = o.CheckpointEvery > 0 && epoch % o.CheckpointEvery == 0;
                bool byStep = o.CheckpointEverySteps > 0 && step % o.CheckpointEverySteps == 0;
                bool last = epoch == o.Epochs || stoppedEarly;
                if (byEpoch || byStep || context.Cancellation.IsCancellationRequested && !last)
                    SaveResumable(epoch, midEpoch: false, 0);
                if (context.Cancellation.IsCancellationRequested && !last)
                {
                    progress.OnMessage($"interrupted after epoch {epoch} (step {step}); checkpoint written");
                    return RunResult.Interrupted(step);
                }
            }
        }
        finally
        {
            setup.GradientWeighting?.Detach();
        }
        int epochsDone = Math.Min(epoch - 1, o.Epochs);
        SaveFinal(dir, run, epochsDone, step);
        var summary = WriteSummary(run, components, callbacks, best, epochsDone, step, secondsBefore + clock.Elapsed.TotalSeconds, trainSeconds, divergedAt: null, stoppedEarly,
            noisyFitEpoch);
        return RunResult.Complete with { Report = new TrainingReport([.. metrics.Rows], summary) };

        // The first evaluated epoch-end with the noisy labels fitted fixes the stopping epoch (early_stop.noisy_fit_factor).
        void NoteNoisyFit(MetricsRow r)
        {
            if (o.NoisyFitFactor > 0 && noisyFitEpoch == 0 && r.NoisyGivenAcc >= EvaluationSchedule.NoisyFitAccuracy)
            {
                noisyFitEpoch = r.Epoch;
                stopAtEpoch = (int)Math.Ceiling(o.NoisyFitFactor * r.Epoch - 1e-9);
            }
        }

        // One step: targets, then forward/backward (twice under SAM), then the update.
        float TrainStep()
        {
            x.Resize([batcher.Length, train.FeatureLength]);
            optimizer.LearningRate = setup.Schedule.At(step, o.LearningRate);
            ctx.Begin(step);
            foreach (var target in targets)
                target.Apply(ctx);
            loss.BeforeStep(ctx);
            float value;
            if (setup.Sam is { } sam)
                value = sam.Step(samClosure); // a non-finite loss is caught by the caller, after the step
            else
            {
                optimizer.ZeroGrad();
                value = ForwardBackward();
                if (float.IsFinite(value))
                    optimizer.Step();
            }
            ctx.Loss = value;
            foreach (var callback in callbacks)
                callback.OnStep(run, ctx);
            return value;
        }

        // Loss and gradients at the current weights on the current batch (SAM zeroes the gradients).
        float ForwardBackward()
        {
            tape.Reset();
            var output = model.Forward(tape, x);
            ctx.Output = output;
            bool first = ctx.Pass == 0;
            if (first)
            {
                foreach (var callback in callbacks)
                    callback.OnOutput(run, ctx);
                foreach (var weighting in weightings)
                    weighting.Weigh(output, ctx);
            }
            setup.GradientWeighting?.BeforeLoss(output, ctx);
            var lossTensor = loss.Loss(tape, output, ctx);
            float value = lossTensor[0];
            if (float.IsFinite(value))
            {
                tape.Backward(lossTensor);
                setup.GradientWeighting?.AfterBackward(ctx);
            }
            ctx.Pass++;
            return value;
        }

        RunResult Interrupt(int atEpoch, bool midEpoch, double epochSeconds)
        {
            SaveResumable(atEpoch, midEpoch, epochSeconds);
            progress.OnMessage($"interrupted at step {step}; checkpoint written");
            return RunResult.Interrupted(step);
        }

        void SaveResumable(int atEpoch, bool midEpoch, double epochSeconds)
        {
            string name = midEpoch
                ? string.Create(CultureInfo.InvariantCulture, $"{TrainingCheckpoint.EpochPrefix}{atEpoch:D4}{TrainingCheckpoint.StepInfix}{step:D10}")
                : string.Create(CultureInfo.InvariantCulture, $"{TrainingCheckpoint.EpochPrefix}{atEpoch:D4}");
            TrainingCheckpoint.Save(dir, name, o, model, optimizer, components, new ResumeState
            {
                Fingerprint = o.Fingerprint,
                Epoch = atEpoch,
                InEpoch = midEpoch,
                Step = step,
                OptimizerSteps = optimizer.StepCount,
                Batcher = batcher.GetState(),
                DropoutGenerators = [.. dropoutGenerators.Select(g => g.GetState())],
                SinceImprovement = sinceImprovement,
                StoppedEarly = stoppedEarly,
                TrainSeconds = trainSeconds,
                EpochSeconds = epochSeconds,
                TotalSeconds = secondsBefore + clock.Elapsed.TotalSeconds,
                Best = best.State,
                MetricsCsv = metrics.Text,
            });
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
            foreach (var callback in callbacks)
                callback.OnEvaluation(run, atEpoch, atStep, extra);
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

    /// <summary>Every component of a run, in a fixed order (its checkpoint state and summary entries follow it); names must be unique.</summary>
    private static List<ITrainingComponent> Components(TrainingSetup setup, ILossStep loss)
    {
        var all = new List<ITrainingComponent>();
        all.AddRange(setup.Targets);
        all.Add(loss);
        all.AddRange(setup.Weightings);
        if (setup.GradientWeighting is not null)
            all.Add(setup.GradientWeighting);
        if (setup.Sam is not null)
            all.Add(setup.Sam);
        all.AddRange(setup.Callbacks);
        all = [.. all.Distinct()]; // a component may also be a callback (label noise reports its realised rates)
        var duplicate = all.GroupBy(c => c.Name).FirstOrDefault(g => g.Count() > 1);
        if (duplicate is not null)
            throw new ArgumentException($"two training components are named '{duplicate.Key}'", nameof(setup));
        return all;
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

    private static void SaveFinal(RunDirectory dir, TrainingRun run, int epoch, long step) => SaveModel(dir, run, "final", epoch, step);

    private static void SaveModel(RunDirectory dir, TrainingRun run, string name, int epoch, long step)
    {
        var metadata = new Dictionary<string, string>(run.Options.CheckpointMetadata)
        {
            ["epoch"] = epoch.ToString(CultureInfo.InvariantCulture),
            ["step"] = step.ToString(CultureInfo.InvariantCulture),
        };
        dir.SaveCheckpoint(name, run.Model.NamedState(), metadata);
    }

    private static Dictionary<string, object?> WriteSummary(TrainingRun run, List<ITrainingComponent> components, IReadOnlyList<ITrainingCallback> callbacks,
        BestTracker best, int epochs, long steps, double totalSeconds, double trainSeconds, long? divergedAt, bool stoppedEarly, int noisyFitEpoch = 0)
    {
        var (o, data, model) = (run.Options, run.Data, run.Model);
        var last = best.Last;
        // Filled after the callbacks' OnEnd: a callback that acts at the end (phase detection) counts too.
        var acted = new Dictionary<string, object?>();
        var summary = new Dictionary<string, object?>
        {
            ["name"] = o.Name,
            ["epochs_completed"] = epochs,
            ["steps"] = steps,
            ["diverged"] = divergedAt is not null,
            ["diverged_at_step"] = divergedAt,
            ["stopped_early"] = stoppedEarly,
            ["noisy_fit_factor"] = o.NoisyFitFactor > 0 ? o.NoisyFitFactor : null,
            ["noisy_fit_epoch"] = o.NoisyFitFactor > 0 ? (noisyFitEpoch > 0 ? noisyFitEpoch : null) : null,
            ["evaluation"] = o.LogSpacedEvaluation ? "log" : "every",
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
            ["provenance"] = Provenance.Describe(),
            // Each active component (the plain loss is not one) and how often it acted.
            ["components"] = acted,
        };
        foreach (var callback in callbacks)
            callback.OnEnd(run, summary);
        foreach (var c in components.Where(c => c is not PlainLoss))
            acted[c.Name] = new Dictionary<string, object?> { ["acted"] = c.Acted };
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

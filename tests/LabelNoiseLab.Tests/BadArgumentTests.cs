using LabelNoiseLab.Autograd;
using LabelNoiseLab.Data;
using LabelNoiseLab.Losses;
using LabelNoiseLab.Nn;
using LabelNoiseLab.Noise;
using LabelNoiseLab.Optim;
using LabelNoiseLab.RunFiles;
using LabelNoiseLab.Tensors;
using LabelNoiseLab.Training;

namespace LabelNoiseLab.Tests;

/// <summary>
/// The library's public entry points refuse bad arguments with an <see cref="ArgumentException"/>
/// (or a subtype: <see cref="ShapeException"/>, <see cref="ArgumentNullException"/>,
/// <see cref="ArgumentOutOfRangeException"/>) naming the argument or both shapes, never a silently
/// wrong answer: a representative set over tensors, ops, losses, layers, data, optimizers and the trainer.
/// </summary>
public sealed class BadArgumentTests
{
    [Fact]
    public void A_shape_mismatch_in_an_op_is_an_argument_error_naming_both_shapes()
    {
        var tape = new Tape();
        var add = Assert.Throws<ShapeException>(() => AddOp.Forward(tape, new Tensor(2, 3), new Tensor(3, 2)));
        Assert.IsAssignableFrom<ArgumentException>(add);
        Assert.Contains("[2, 3]", add.Message, StringComparison.Ordinal);
        Assert.Contains("[3, 2]", add.Message, StringComparison.Ordinal);

        var linear = Assert.Throws<ShapeException>(() => LinearOp.Forward(tape, new Tensor(4, 5), new Tensor(3, 6), null));
        Assert.Contains("[4, 5]", linear.Message, StringComparison.Ordinal);
        var matmul = Assert.Throws<ShapeException>(() => MatMulOp.Forward(tape, new Tensor(2, 3), new Tensor(4, 2)));
        Assert.Contains("matmul", matmul.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_loss_with_too_few_labels_or_wrong_targets_is_an_argument_error()
    {
        var tape = new Tape();
        Assert.IsAssignableFrom<ArgumentException>(Record.Exception(() => SoftmaxCrossEntropyOp.Forward(tape, new Tensor(4, 10), new int[2])));
        Assert.IsAssignableFrom<ArgumentException>(Record.Exception(() => SoftmaxCrossEntropyOp.Forward(tape, new Tensor(4, 10), new Tensor(4, 9))));
        Assert.IsAssignableFrom<ArgumentException>(Record.Exception(() => MseOp.Forward(tape, new Tensor(4, 1), new Tensor(3, 1))));
    }

    [Fact]
    public void Null_and_negative_sizes_in_constructors_name_the_argument()
    {
        Assert.IsAssignableFrom<ArgumentException>(Record.Exception(() => new Tensor(2, -1)));
        Assert.Equal("shape", Assert.Throws<ArgumentNullException>(() => new Tensor((int[])null!)).ParamName);
        Assert.Equal("data", Assert.Throws<ArgumentNullException>(() => new Tensor(null!, 2)).ParamName);
        Assert.Throws<ArgumentException>(() => new Tensor(new float[3], 2, 2));
        Assert.Equal("inputs", Assert.Throws<ArgumentOutOfRangeException>(() => new Linear(0, 3)).ParamName);
        Assert.Equal("hidden", Assert.Throws<ArgumentNullException>(() => new Mlp(784, null!, 10)).ParamName);
        var data = Data(100).Train;
        Assert.Equal("batchSize", Assert.Throws<ArgumentOutOfRangeException>(() => new Batcher(data, 0, new Rng(1))).ParamName);
        Assert.Equal("data", Assert.Throws<ArgumentNullException>(() => new Batcher(null!, 8, new Rng(1))).ParamName);
        var model = new Mlp(data.FeatureLength, [4], data.NumClasses);
        Assert.Equal("momentum", Assert.Throws<ArgumentOutOfRangeException>(() => new Sgd(model.Parameters(), 0.1f, momentum: 1.5f)).ParamName);
    }

    [Theory]
    [InlineData(0, 16, "TrainingOptions.Epochs")]
    [InlineData(1, 0, "TrainingOptions.BatchSize")]
    [InlineData(1, 500, "batch size 500")]
    public void The_trainer_refuses_bad_options_before_writing_anything(int epochs, int batchSize, string named)
    {
        using var tmp = new TempDir("bad-trainer");
        var data = Data(200);
        var model = new Mlp(data.Train.FeatureLength, [8], data.Train.NumClasses);
        var setup = new TrainingSetup
        {
            Options = new TrainingOptions { Epochs = epochs, BatchSize = batchSize },
            Data = data,
            Model = model,
            Optimizer = new Sgd(model.Parameters(), 0.1f),
            Schedule = new LrSchedule.Constant(),
        };
        using var dir = RunDirectory.Create(tmp.Sub("run"), "bad");
        var e = Assert.IsAssignableFrom<ArgumentException>(Record.Exception(() => new Trainer().Run(setup, dir, new RunContext(null, NullProgressSink.Instance))));
        Assert.Equal("setup", e.ParamName);
        Assert.Contains(named, e.Message, StringComparison.Ordinal);
        Assert.False(File.Exists(Path.Combine(dir.Path, RunDirectory.MetricsFile)));
        Assert.Equal("setup", Assert.Throws<ArgumentNullException>(() => new Trainer().Run(null!, dir, new RunContext(null, NullProgressSink.Instance))).ParamName);
    }

    private static PreparedData Data(int samples) => DataSources.Prepare(
        new DataOptions { Name = "gaussian-mixture", Samples = samples, TestSamples = 50, Classes = 3, Dimension = 5, Seed = 3 },
        new NoiseOptions());
}

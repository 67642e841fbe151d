using System.Text.Json;
using LabelNoiseLab.Data;
using LabelNoiseLab.Experiments;
using LabelNoiseLab.RunFiles;
using LabelNoiseLab.Tensors;
using LabelNoiseLab.Training;

namespace LabelNoiseLab.Tests;

/// <summary>
/// Batch augmentation (<c>data.augment</c>): the crop/flip kernel against a naive padded-copy
/// reference; the component's draws deterministic by seed; the data sets (training, test) never
/// changed by a run; a run resumed from a step checkpoint inside an epoch equals the uninterrupted
/// one file for file; summary.json counts the steps augmented; bad input is one line, exit 2.
/// </summary>
public sealed class AugmentationTests : IDisposable
{
    private readonly DataTestFiles _data = new();
    private readonly TempDir _temp = new("augment");

    public AugmentationTests()
    {
        Write("train", 48, 1);
        Write("t10k", 16, 2);

        void Write(string prefix, int n, int seed)
        {
            var labels = Enumerable.Range(0, n).Select(i => (byte)(i % 10)).ToArray();
            _data.Write(prefix + "-images-idx3-ubyte", DataTestFiles.IdxImages(DataTestFiles.Pixels(n * 28 * 28, seed), n, 28, 28));
            _data.Write(prefix + "-labels-idx1-ubyte", DataTestFiles.IdxLabels(labels));
        }
    }

    public void Dispose()
    {
        _data.Dispose();
        _temp.Dispose();
    }

    // The padded image written out in full, the window copied, then mirrored: no index shortcuts.
    private static float[] Naive(float[] sample, int channels, int h, int w, int padding, int dy, int dx, bool flip)
    {
        int ph = h + 2 * padding, pw = w + 2 * padding;
        var padded = new float[channels * ph * pw];
        for (int c = 0; c < channels; c++)
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++)
                    padded[(c * ph + y + padding) * pw + x + padding] = sample[(c * h + y) * w + x];
        var crop = new float[channels * h * w];
        for (int c = 0; c < channels; c++)
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++)
                    crop[(c * h + y) * w + x] = padded[(c * ph + y + dy) * pw + x + dx];
        if (!flip)
            return crop;
        var mirrored = new float[crop.Length];
        for (int c = 0; c < channels; c++)
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++)
                    mirrored[(c * h + y) * w + x] = crop[(c * h + y) * w + (w - 1 - x)];
        return mirrored;
    }

    [Theory]
    [InlineData(1, 4, 4, 0)]
    [InlineData(1, 5, 7, 1)]
    [InlineData(3, 6, 4, 2)]
    [InlineData(2, 3, 5, 4)] // padding beyond the image: some windows are all zeros
    [InlineData(1, 28, 28, 4)]
    public void The_kernel_equals_a_naive_padded_crop_and_mirror(int channels, int h, int w, int padding)
    {
        var rng = new Rng(7);
        var sample = new float[channels * h * w];
        for (int i = 0; i < sample.Length; i++)
            sample[i] = 1 + rng.NextFloat(); // never 0: a misplaced zero shows
        var scratch = new float[sample.Length + 3];
        var offsets = Enumerable.Range(0, 2 * padding + 1).ToArray();
        if (h * w > 100)
            offsets = [0, 1, padding, 2 * padding]; // the corners and the identity crop
        foreach (int dy in offsets)
        {
            foreach (int dx in offsets)
            {
                foreach (bool flip in (bool[])[false, true])
                {
                    var actual = (float[])sample.Clone();
                    ImageAugment.CropFlip(actual, channels, h, w, padding, dy, dx, flip, scratch);
                    Assert.Equal(Naive(sample, channels, h, w, padding, dy, dx, flip), actual);
                }
            }
        }
        // The centre window without a flip is the image itself.
        var centre = (float[])sample.Clone();
        ImageAugment.CropFlip(centre, channels, h, w, padding, padding, padding, false, scratch);
        Assert.Equal(sample, centre);
    }

    [Fact]
    public void The_kernel_allocates_nothing()
    {
        var sample = new float[3 * 8 * 8];
        var scratch = new float[sample.Length];
        ImageAugment.CropFlip(sample, 3, 8, 8, 2, 1, 3, true, scratch);
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 100; i++)
            ImageAugment.CropFlip(sample, 3, 8, 8, 2, i % 5, (i * 3) % 5, i % 2 == 0, scratch);
        Assert.Equal(before, GC.GetAllocatedBytesForCurrentThread());
    }

    private static Dataset Images(int n)
    {
        var rng = new Rng(3);
        var features = new float[n * 2 * 6 * 6];
        for (int i = 0; i < features.Length; i++)
            features[i] = 1 + rng.NextFloat();
        return new Dataset("images", features, [2, 6, 6], [.. Enumerable.Range(0, n).Select(i => i % 3)], 3);
    }

    // Two steps of batches of 8 augmented by a component with this seed; the batch features of each step.
    private static List<float[]> Augmented(Dataset data, AugmentKind kind, long seed)
    {
        var batcher = new Batcher(data, 8, new Rng(1));
        var step = new StepContext(batcher);
        var augment = new Augmentation(kind, data.SampleShape, 2, seed);
        var batches = new List<float[]>();
        batcher.StartEpoch();
        while (batcher.Next())
        {
            augment.Apply(step);
            batches.Add(batcher.Features.ToArray());
        }
        Assert.Equal(batches.Count, augment.Acted);
        return batches;
    }

    [Theory]
    [InlineData(AugmentKind.Crop)]
    [InlineData(AugmentKind.CropFlip)]
    public void The_same_seed_augments_alike_a_different_seed_differently_and_the_data_set_is_untouched(AugmentKind kind)
    {
        var data = Images(16);
        var original = (float[])data.Features.Clone();
        var a = Augmented(data, kind, 5);
        var b = Augmented(data, kind, 5);
        var c = Augmented(data, kind, 6);
        Assert.Equal(2, a.Count);
        Assert.Equal(a, b);
        Assert.NotEqual(a, c);
        Assert.Equal(original, data.Features);
        // Something was changed: the batches are not the plain rows of the data set.
        var plain = new Batcher(data, 8, new Rng(1));
        plain.StartEpoch();
        plain.Next();
        Assert.NotEqual(plain.Features.ToArray(), a[0]);
    }

    [Fact]
    public void The_generator_state_resumes_the_same_draws()
    {
        var data = Images(16);
        var batcher = new Batcher(data, 8, new Rng(1));
        var step = new StepContext(batcher);
        var first = new Augmentation(AugmentKind.CropFlip, data.SampleShape, 3, 9);
        batcher.StartEpoch();
        batcher.Next();
        first.Apply(step);
        var saved = first.SaveState();
        batcher.Next();
        first.Apply(step);
        var expected = batcher.Features.ToArray();

        var second = new Augmentation(AugmentKind.CropFlip, data.SampleShape, 3, 1234);
        second.RestoreState(saved);
        Assert.Equal(1, second.Acted);
        var again = new Batcher(data, 8, new Rng(1));
        again.StartEpoch();
        again.Next();
        again.Next();
        second.Apply(new StepContext(again));
        Assert.Equal(expected, again.Features.ToArray());
        Assert.Equal(2, second.Acted);
    }

    private static string Config(string augment, int epochs = 3, string extra = "") => $$"""
        name: augment
        seed: 4
        epochs: {{epochs}}
        batch_size: 16
        threads: 1
        data: {name: mnist, augment: {{augment}}, augment_padding: 3}
        noise: {kind: symmetric, rate: 0.2, seed: 1}
        model: {kind: small_cnn}
        optim: {kind: sgd, lr: 0.05, momentum: 0.9}
        {{extra}}
        """;

    private (int Code, string Out, string Err) Train(string yaml, string outDir) =>
        TestCli.Train(_temp.Path, yaml, "--out", outDir, "--data-dir", _data.Dir);

    [Fact]
    public void A_run_never_changes_its_training_or_test_data()
    {
        var config = ExperimentConfig.Default with
        {
            Name = "augment", Seed = 4, Epochs = 1, BatchSize = 16, Threads = 1, DataName = "mnist", DataAugment = "crop_flip",
            DataAugmentPadding = 4, ModelKind = "small_cnn", DataValFraction = 0.25,
        };
        var setup = ExperimentRunner.Build(config, _data.Dir);
        var data = setup.Data;
        var (train, test, validation) = ((float[])data.Train.Features.Clone(), (float[])data.Test.Features.Clone(), (float[])data.Validation!.Features.Clone());
        var dir = RunDirectory.Create(_temp.Sub("in-process"), "augment");
        dir.Publish();
        var result = new Trainer().Run(setup, dir, new RunContext(_data.Dir, NullProgressSink.Instance));
        Assert.Equal(RunStatus.Complete, result.Status);
        Assert.Equal(train, data.Train.Features);
        Assert.Equal(test, data.Test.Features);
        Assert.Equal(validation, data.Validation.Features);
        Assert.Equal(3L, setup.Targets.OfType<Augmentation>().Single().Acted); // 36 training samples in batches of 16, 16 and 4
    }

    [Fact]
    public void A_run_resumed_inside_an_epoch_equals_the_uninterrupted_one_and_counts_its_steps()
    {
        // 48 samples in batches of 16: 3 steps an epoch, 9 in all; step checkpoints at 4 and 8 (inside epochs 2 and 3).
        // SAM too: its second pass must see the step's augmented batch, in both runs alike.
        string yaml = Config("crop_flip", extra: "checkpoint_every_steps: 4\nsam: {rho: 0.05}");
        string whole = _temp.Sub("whole");
        var (code, stdout, stderr) = Train(yaml, whole);
        Assert.True(code == 0, stderr + stdout);
        using (var summary = JsonDocument.Parse(File.ReadAllText(Path.Combine(whole, "summary.json"))))
        {
            Assert.Equal(9, summary.RootElement.GetProperty("steps").GetInt64());
            Assert.Equal(9, summary.RootElement.GetProperty("components").GetProperty("augment").GetProperty("acted").GetInt64());
        }

        string cut = _temp.Sub("cut");
        CopyDirectory(whole, cut);
        File.Delete(Path.Combine(cut, "checkpoints", "epoch-0003-step-0000000008.safetensors"));
        File.Delete(Path.Combine(cut, "checkpoints", "final.safetensors"));
        File.Delete(Path.Combine(cut, "summary.json"));
        File.WriteAllText(Path.Combine(cut, "status"), "failed\ninterrupted at step 5\n");
        Assert.Equal("epoch-0002-step-0000000004.safetensors", Path.GetFileName(TrainingCheckpoint.Latest(cut)));
        (code, stdout, stderr) = TestCli.Run(_temp.Path, "resume", cut, "--data-dir", _data.Dir);
        Assert.True(code == 0, stderr + stdout);
        Assert.Contains("resuming inside epoch", stdout + stderr);
        RunFilesComparison.AssertSameRun(whole, cut);

        // Without augmentation the same run trains to other weights: the augmentation acted.
        string plain = _temp.Sub("plain");
        (code, stdout, stderr) = Train(Config("none", extra: "checkpoint_every_steps: 4\nsam: {rho: 0.05}"), plain);
        Assert.True(code == 0, stderr + stdout);
        Assert.False(File.ReadAllBytes(Path.Combine(whole, "checkpoints", "final.safetensors")).AsSpan()
            .SequenceEqual(File.ReadAllBytes(Path.Combine(plain, "checkpoints", "final.safetensors"))));
        using var plainSummary = JsonDocument.Parse(File.ReadAllText(Path.Combine(plain, "summary.json")));
        Assert.False(plainSummary.RootElement.GetProperty("components").TryGetProperty("augment", out _));
    }

    [Theory]
    [InlineData("data: {name: gaussian-mixture, augment: crop}", "model: {kind: mlp}", "data.augment")]
    [InlineData("data: {name: linear-teacher, augment: crop_flip}", "model: {kind: mlp}", "data.augment")]
    [InlineData("data: {name: mnist, augment: crop, augment_padding: -1}", "model: {kind: small_cnn}", "data.augment_padding")]
    public void Bad_augmentation_input_is_one_line_naming_the_key_exit_2(string data, string model, string key)
    {
        string yaml = $"""
            name: bad
            epochs: 1
            batch_size: 16
            {data}
            {model}
            loss: {(data.Contains("linear-teacher", StringComparison.Ordinal) ? "{kind: mse}" : "{kind: cross_entropy}")}
            """;
        var (code, stdout, stderr) = Train(yaml, _temp.Sub("bad"));
        Assert.True(code == 2, $"exit {code}: {stderr}{stdout}");
        var lines = stderr.TrimEnd().Split('\n');
        Assert.Single(lines);
        Assert.Contains(key, lines[0]);
    }

    private static void CopyDirectory(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (var file in Directory.GetFiles(from))
            File.Copy(file, Path.Combine(to, Path.GetFileName(file)));
        foreach (var dir in Directory.GetDirectories(from))
            CopyDirectory(dir, Path.Combine(to, Path.GetFileName(dir)));
    }
}

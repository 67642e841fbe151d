using LabelNoiseLab.Data;
using LabelNoiseLab.Noise;
using LabelNoiseLab.Tensors;

namespace LabelNoiseLab.Tests;

public class DataPreparationTests
{
    /// <summary>n samples of one feature whose value is the sample's index; labels i mod k.</summary>
    private static Dataset Indexed(int n, int k = 4, int d = 1)
    {
        var x = new float[n * d];
        for (int i = 0; i < n; i++)
        {
            for (int j = 0; j < d; j++)
                x[i * d + j] = i;
        }
        return new Dataset("idx", x, [d], Enumerable.Range(0, n).Select(i => i % k).ToArray(), k);
    }

    [Fact]
    public void Split_is_seeded_disjoint_and_complete()
    {
        var d = Indexed(101);
        var (tr, va) = Splits.TrainValidation(d, 0.25, new Rng(3));
        var (tr2, va2) = Splits.TrainValidation(d, 0.25, new Rng(3));
        var (_, va3) = Splits.TrainValidation(d, 0.25, new Rng(4));
        Assert.Equal(25, va.Count);
        Assert.Equal(76, tr.Count);
        Assert.Equal(va.Features, va2.Features);
        Assert.Equal(tr.Features, tr2.Features);
        Assert.NotEqual(va.Features, va3.Features);
        Assert.Empty(tr.Features.Intersect(va.Features));
        Assert.Equal(Enumerable.Range(0, 101).Select(i => (float)i), tr.Features.Concat(va.Features).Order());
        // labels travel with their samples
        for (int i = 0; i < va.Count; i++)
            Assert.Equal((int)va.Features[i] % 4, va.TrueLabels[i]);
    }

    [Fact]
    public void Split_keeps_noisy_labels_in_validation()
    {
        var d = Indexed(1000, k: 5);
        LabelNoise.Inject(d, new NoiseOptions { Kind = NoiseKind.Symmetric, Rate = 0.4, Seed = 1 });
        var (tr, va) = Splits.TrainValidation(d, 0.3, new Rng(9));
        Assert.Equal(d.NoisyCount, tr.NoisyCount + va.NoisyCount);
        Assert.True(va.NoisyCount > 0);
        for (int i = 0; i < va.Count; i++)
        {
            int orig = (int)va.Features[i];
            Assert.Equal(d.Labels[orig], va.Labels[i]);
            Assert.Equal(va.Labels[i] != va.TrueLabels[i], va.NoiseMask[i]);
        }
    }

    [Fact]
    public void Subset_is_seeded_stratified_and_distinct()
    {
        var labels = Enumerable.Range(0, 1000).Select(i => i < 600 ? 0 : i < 900 ? 1 : 2).ToArray();
        var d = new Dataset("s", Enumerable.Range(0, 1000).Select(i => (float)i).ToArray(), [1], labels, 3);
        var a = Splits.Subset(d, 100, new Rng(1));
        var b = Splits.Subset(d, 100, new Rng(1));
        var c = Splits.Subset(d, 100, new Rng(2));
        Assert.Equal(100, a.Count);
        Assert.Equal(a.Features, b.Features);
        Assert.NotEqual(a.Features, c.Features);
        Assert.Equal(100, a.Features.Distinct().Count());
        Assert.Equal(60, a.TrueLabels.Count(y => y == 0));
        Assert.Equal(30, a.TrueLabels.Count(y => y == 1));
        Assert.Equal(10, a.TrueLabels.Count(y => y == 2));
        Assert.Equal("size", Assert.Throws<ArgumentOutOfRangeException>(() => Splits.Subset(d, 1001, new Rng(1))).ParamName);
    }

    [Fact]
    public void Normalisation_uses_train_statistics_for_every_split()
    {
        var rng = new Rng(5);
        var train = new Dataset("a", Enumerable.Range(0, 300).Select(_ => (float)(3 + 2 * rng.NextNormal())).ToArray(), [3], new int[100], 2);
        var test = new Dataset("b", [1f, 2f, 3f], [3], [0], 2);
        var raw = (float[])train.Features.Clone();
        var norm = Normalization.Fit(train, NormalizationMode.PerFeature);
        norm.Apply(train);
        norm.Apply(test);
        for (int j = 0; j < 3; j++)
        {
            var col = Enumerable.Range(0, 100).Select(i => (double)train.Features[i * 3 + j]).ToArray();
            Assert.Equal(0, col.Average(), 4);
            Assert.Equal(1, Math.Sqrt(col.Select(v => v * v).Average()), 3);
            var rawCol = Enumerable.Range(0, 100).Select(i => (double)raw[i * 3 + j]).ToArray();
            double m = rawCol.Average();
            double s = Math.Sqrt(rawCol.Select(v => (v - m) * (v - m)).Average());
            Assert.Equal((j + 1 - m) / s, test.Features[j], 3);
        }

        var g = new Dataset("g", [0f, 2f, 4f, 6f], [2], [0, 1], 2);
        Normalization.Fit(g, NormalizationMode.Global).Apply(g);
        Assert.Equal(new[] { -1.3416f, -0.4472f, 0.4472f, 1.3416f }, g.Features.Select(v => MathF.Round(v, 4)));
    }

    [Fact]
    public void Per_channel_normalisation_standardises_each_channel()
    {
        // 2 samples of shape [2, 1, 2]: channel 0 holds 0..3, channel 1 holds 10, 10, 20, 20
        var d = new Dataset("c", [0f, 1f, 10f, 10f, 2f, 3f, 20f, 20f], [2, 1, 2], [0, 1], 2);
        var n = Normalization.Fit(d, NormalizationMode.PerChannel);
        Assert.Equal([1.5f, 15f], n.Mean);
        Assert.Equal(5f, n.Std[1], 5);
        n.Apply(d);
        Assert.Equal(-1f, d.Features[2], 5);
        Assert.Equal(1f, d.Features[6], 5);
    }

    [Fact]
    public void Batcher_visits_every_sample_once_per_epoch_with_a_short_last_batch()
    {
        var d = Indexed(103, d: 3);
        var b = new Batcher(d, 10, new Rng(7));
        Assert.Equal(11, b.BatchesPerEpoch);
        int[]? previousOrder = null;
        for (int epoch = 0; epoch < 3; epoch++)
        {
            b.StartEpoch();
            var seen = new List<int>();
            var lengths = new List<int>();
            while (b.Next())
            {
                lengths.Add(b.Length);
                for (int r = 0; r < b.Length; r++)
                {
                    int i = b.Indices[r];
                    seen.Add(i);
                    Assert.Equal(d.Sample(i).ToArray(), b.Features.Slice(r * 3, 3).ToArray());
                    Assert.Equal(d.Labels[i], b.Labels[r]);
                    Assert.Equal(d.TrueLabels[i], b.TrueLabels[r]);
                }
            }
            Assert.Equal(Enumerable.Repeat(10, 10).Append(3), lengths);
            Assert.Equal(Enumerable.Range(0, 103), seen.Order());
            Assert.NotEqual(previousOrder, seen.ToArray());
            previousOrder = [.. seen];
        }
        Assert.Equal(3, b.Epoch);
    }

    [Fact]
    public void Batcher_drop_last_and_no_shuffle()
    {
        var d = Indexed(25);
        var b = new Batcher(d, 10, new Rng(1), shuffle: false, dropLast: true);
        b.StartEpoch();
        var idx = new List<int>();
        while (b.Next())
            idx.AddRange(b.Indices.ToArray());
        Assert.Equal(Enumerable.Range(0, 20), idx);
        Assert.Equal(2, b.BatchesPerEpoch);
    }

    [Fact]
    public void Batcher_does_not_allocate_per_batch()
    {
        var d = Indexed(1000, d: 50);
        var b = new Batcher(d, 64, new Rng(2));
        b.StartEpoch();
        while (b.Next())
        {
        }
        b.StartEpoch();
        long before = GC.GetAllocatedBytesForCurrentThread();
        int batches = 0;
        float sink = 0;
        while (b.Next())
        {
            batches++;
            sink += b.Features[0] + b.Labels[0] + b.Indices[0];
        }
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal(16, batches);
        Assert.True(sink > -1);
        Assert.Equal(0, allocated);
    }

    [Fact]
    public void Batcher_state_resumes_mid_epoch_identically()
    {
        var d = Indexed(57);
        var a = new Batcher(d, 8, new Rng(11));
        a.StartEpoch();
        while (a.Next())
        {
        }
        a.StartEpoch();
        a.Next();
        a.Next();
        var state = a.GetState();
        var b = new Batcher(d, 8, new Rng(999));
        b.SetState(state);
        for (int epoch = 0; epoch < 2; epoch++)
        {
            while (a.Next())
            {
                Assert.True(b.Next());
                Assert.Equal(a.Indices.ToArray(), b.Indices.ToArray());
            }
            Assert.False(b.Next());
            a.StartEpoch();
            b.StartEpoch();
        }
        Assert.Equal(a.GetRngState(), b.GetRngState());
    }

    [Fact]
    public void Batcher_carries_regression_targets()
    {
        var theta = Synthetic.Teacher(4, 0, new Rng(1));
        var d = Synthetic.LinearTeacher(theta, 30, 0, new Rng(2));
        var b = new Batcher(d, 7, new Rng(3));
        b.StartEpoch();
        b.Next();
        for (int r = 0; r < b.Length; r++)
            Assert.Equal(d.Targets![b.Indices[r]], b.Targets[r]);
    }

    [Fact]
    public void Gaussian_mixture_is_seeded_balanced_and_separable()
    {
        var o = new DataOptions { Name = "gaussian-mixture", Classes = 3, Dimension = 5, Separation = 8, Samples = 300, TestSamples = 60, Seed = 1 };
        var a = DataSources.Load(o);
        var b = DataSources.Load(o);
        var c = DataSources.Load(o with { Seed = 2 });
        Assert.Equal(a.Train.Features, b.Train.Features);
        Assert.NotEqual(a.Train.Features, c.Train.Features);
        Assert.All(Enumerable.Range(0, 3), k => Assert.Equal(100, a.Train.Labels.Count(y => y == k)));
        Assert.Equal(60, a.Test.Count);
        // with means 8 apart from the origin, the class means estimated on train classify test well
        var means = new double[3, 5];
        for (int i = 0; i < 300; i++)
        {
            for (int j = 0; j < 5; j++)
                means[a.Train.Labels[i], j] += a.Train.Features[i * 5 + j] / 100.0;
        }
        int correct = 0;
        for (int i = 0; i < 60; i++)
        {
            var x = a.Test.Sample(i).ToArray();
            int best = Enumerable.Range(0, 3).MinBy(k => Enumerable.Range(0, 5).Sum(j => Math.Pow(x[j] - means[k, j], 2)));
            correct += best == a.Test.Labels[i] ? 1 : 0;
        }
        Assert.True(correct >= 57, $"{correct}/60");
    }

    [Fact]
    public void Linear_teacher_has_sparse_unit_teacher_and_consistent_targets()
    {
        var o = new DataOptions { Name = "linear-teacher", Dimension = 50, Sparsity = 5, Samples = 200, TestSamples = 20, TargetNoise = 0, Seed = 3 };
        var s = DataSources.Load(o);
        var theta = s.Train.TeacherWeights!;
        Assert.Same(theta, s.Test.TeacherWeights);
        Assert.Equal(5, theta.Count(v => v != 0));
        Assert.Equal(1, Math.Sqrt(theta.Sum(v => (double)v * v)), 5);
        Assert.Equal(0, s.Train.NumClasses);
        for (int i = 0; i < 200; i++)
        {
            double y = 0;
            for (int j = 0; j < 50; j++)
                y += s.Train.Features[i * 50 + j] * theta[j];
            Assert.Equal(y, s.Train.Targets![i], 4);
        }
        var noisy = DataSources.Load(o with { TargetNoise = 0.5, Sparsity = 0 });
        Assert.Equal(50, noisy.Train.TeacherWeights!.Count(v => v != 0));
    }

    [Fact]
    public void Prepare_injects_noise_before_the_split_and_normalises_on_train()
    {
        var o = new DataOptions
        {
            Name = "gaussian-mixture", Classes = 4, Dimension = 6, Samples = 2000, TestSamples = 200, Seed = 5,
            Subset = 1000, ValidationFraction = 0.2, Normalization = NormalizationMode.PerFeature,
        };
        var p = DataSources.Prepare(o, new NoiseOptions { Kind = NoiseKind.Symmetric, Rate = 0.3, Seed = 6 });
        Assert.Equal(800, p.Train.Count);
        Assert.Equal(200, p.Validation!.Count);
        Assert.Equal(Assert.IsType<NoiseReport>(p.Noise).NoisyCount, p.Train.NoisyCount + p.Validation.NoisyCount);
        Assert.True(p.Validation.NoisyCount > 20);
        Assert.Equal(0, p.Test.NoisyCount);
        for (int j = 0; j < 6; j++)
            Assert.Equal(0, Enumerable.Range(0, 800).Average(i => p.Train.Features[i * 6 + j]), 4);
        Assert.Equal(NormalizationMode.PerFeature, p.Normalization.Mode);
    }

    [Fact]
    public void Prepare_handles_a_regression_set()
    {
        var o = new DataOptions { Name = "linear-teacher", Dimension = 5, Samples = 100, TestSamples = 10, ValidationFraction = 0.1, Normalization = NormalizationMode.Global, Seed = 2 };
        var p = DataSources.Prepare(o, new NoiseOptions());
        Assert.Equal(90, p.Train.Count);
        Assert.Equal(10, p.Validation!.Count);
        Assert.Equal(90, p.Train.Targets!.Length);
        Assert.Equal(0, Assert.IsType<NoiseReport>(p.Noise).RealisedRate);
        var raw = DataSources.Load(o);
        // targets travel with their samples through the split
        var y = raw.Train.Targets!;
        Assert.All(p.Validation.Targets!, t => Assert.Contains(t, y));
    }
}

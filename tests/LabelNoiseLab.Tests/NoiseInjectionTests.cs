using LabelNoiseLab.Data;
using LabelNoiseLab.Noise;
using LabelNoiseLab.Tensors;

namespace LabelNoiseLab.Tests;

public class NoiseInjectionTests
{
    private const int N = 20000;
    private const int K = 10;

    /// <summary>A Gaussian mixture with balanced classes: features for the instance-dependent scorer.</summary>
    private static Dataset Mixture(int n = N, int k = K, int d = 8, long seed = 1)
    {
        var rng = new Rng((ulong)seed);
        var means = Synthetic.MixtureMeans(k, d, 2.0, rng);
        return Synthetic.GaussianMixture(means, k, d, n, rng, "mix");
    }

    /// <summary>|realised − p| within 4.5 binomial standard deviations.</summary>
    private static void AssertRate(double p, double realised, int n, string what)
    {
        double tol = 4.5 * Math.Sqrt(Math.Max(p * (1 - p), 1e-12) / n);
        Assert.True(Math.Abs(realised - p) <= tol, $"{what}: realised {realised:F5}, expected {p:F5} ± {tol:F5}");
    }

    public static TheoryData<NoiseKind, double> Kinds => new()
    {
        { NoiseKind.Symmetric, 0.3 },
        { NoiseKind.Symmetric, 0.8 },
        { NoiseKind.PairFlip, 0.2 },
        { NoiseKind.Asymmetric, 0.4 },
        { NoiseKind.Instance, 0.3 },
        { NoiseKind.Instance, 0.9 },
        { NoiseKind.Transition, 0 },
    };

    private static NoiseOptions Options(NoiseKind kind, double rate, long seed) => new()
    {
        Kind = kind,
        Rate = rate,
        Seed = seed,
        ClassMap = kind == NoiseKind.Asymmetric ? "mnist" : null,
        T = kind == NoiseKind.Transition ? RandomStochastic(K, 7) : null,
    };

    private static double[][] RandomStochastic(int k, int seed)
    {
        var rng = new Rng((ulong)seed);
        var t = new double[k][];
        for (int i = 0; i < k; i++)
        {
            t[i] = new double[k];
            for (int j = 0; j < k; j++)
                t[i][j] = j == i ? 3 : rng.NextDouble() < 0.5 ? 0 : rng.NextDouble();
            double s = t[i].Sum();
            for (int j = 0; j < k; j++)
                t[i][j] /= s;
        }
        return t;
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public void Realises_its_rate_and_keeps_true_labels(NoiseKind kind, double rate)
    {
        var d = Mixture();
        var trueBefore = (int[])d.TrueLabels.Clone();
        var report = LabelNoise.Inject(d, Options(kind, rate, 42));
        Assert.Equal(trueBefore, d.TrueLabels);
        for (int i = 0; i < d.Count; i++)
            Assert.Equal(d.Labels[i] != d.TrueLabels[i], d.NoiseMask[i]);
        double realised = d.NoisyCount / (double)d.Count;
        Assert.Equal(realised, report.RealisedRate);
        if (kind is NoiseKind.Symmetric or NoiseKind.PairFlip or NoiseKind.Instance)
            Assert.Equal(rate, report.ExpectedRate, 6);
        AssertRate(report.ExpectedRate, realised, d.Count, kind.ToString());
        Assert.True(report.ExpectedRate > 0.05);
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public void Same_seed_same_labels_other_seed_other_labels(NoiseKind kind, double rate)
    {
        var a = Mixture(5000);
        var b = Mixture(5000);
        var c = Mixture(5000);
        LabelNoise.Inject(a, Options(kind, rate, 1));
        LabelNoise.Inject(b, Options(kind, rate, 1));
        LabelNoise.Inject(c, Options(kind, rate, 2));
        Assert.Equal(a.Labels, b.Labels);
        Assert.NotEqual(a.Labels, c.Labels);
        // injecting again starts from the true labels: nothing compounds
        LabelNoise.Inject(a, Options(kind, rate, 1));
        Assert.Equal(b.Labels, a.Labels);
    }

    [Fact]
    public void Symmetric_spreads_uniformly_over_the_other_classes()
    {
        var d = Mixture(50000);
        var r = LabelNoise.Inject(d, new NoiseOptions { Kind = NoiseKind.Symmetric, Rate = 0.45, Seed = 3 });
        for (int i = 0; i < K; i++)
        {
            int n = r.ClassCounts[i];
            Assert.Equal(5000, n);
            AssertRate(0.55, r.RealisedTransition[i][i], n, $"T[{i}][{i}]");
            for (int j = 0; j < K; j++)
            {
                if (j != i)
                    AssertRate(0.45 / (K - 1), r.RealisedTransition[i][j], n, $"T[{i}][{j}]");
            }
        }
    }

    [Fact]
    public void Symmetric_include_true_counts_a_redraw_of_the_true_class_as_clean()
    {
        var d = Mixture();
        var r = LabelNoise.Inject(d, new NoiseOptions { Kind = NoiseKind.Symmetric, Rate = 0.5, IncludeTrue = true, Seed = 4 });
        Assert.Equal(0.5 * (K - 1) / K, r.ExpectedRate, 10);
        AssertRate(0.45, r.RealisedRate, d.Count, "include_true");
        Assert.Equal(true, r.Settings["include_true"]);
    }

    [Fact]
    public void Pairflip_moves_to_the_next_class_only()
    {
        var d = Mixture();
        LabelNoise.Inject(d, new NoiseOptions { Kind = NoiseKind.PairFlip, Rate = 0.35, Seed = 5 });
        for (int i = 0; i < d.Count; i++)
        {
            if (d.NoiseMask[i])
                Assert.Equal((d.TrueLabels[i] + 1) % K, d.Labels[i]);
        }
    }

    [Theory]
    [InlineData("mnist")]
    [InlineData("fashion-mnist")]
    [InlineData("cifar10")]
    [InlineData("1:2, 2->1, 9:0")]
    public void Asymmetric_flips_mapped_classes_at_the_rate_and_leaves_others_clean(string map)
    {
        var d = Mixture();
        var r = LabelNoise.Inject(d, new NoiseOptions { Kind = NoiseKind.Asymmetric, Rate = 0.4, ClassMap = map, Seed = 6 });
        var m = ClassMaps.Resolve(map, K);
        for (int c = 0; c < K; c++)
        {
            if (m.ContainsKey(c))
                AssertRate(0.4, r.PerClassRate[c], r.ClassCounts[c], $"class {c}");
            else
                Assert.Equal(0, r.PerClassRate[c]);
        }
        for (int i = 0; i < d.Count; i++)
        {
            if (d.NoiseMask[i])
                Assert.Equal(m[d.TrueLabels[i]], d.Labels[i]);
        }
    }

    [Fact]
    public void Builtin_maps_are_the_documented_ones()
    {
        Assert.Equal(new Dictionary<int, int> { [2] = 7, [3] = 8, [5] = 6, [6] = 5, [7] = 1 }, ClassMaps.Mnist);
        Assert.Equal(new Dictionary<int, int> { [0] = 6, [6] = 0, [2] = 4, [4] = 2, [5] = 7, [7] = 5 }, ClassMaps.FashionMnist);
    }

    [Fact]
    public void Asymmetric_picks_the_map_from_the_data_set_name_or_asks_for_one()
    {
        var d = new Dataset("fashion-mnist/train", new float[4], [1], [0, 6, 2, 1], 10);
        var r = LabelNoise.Inject(d, new NoiseOptions { Kind = NoiseKind.Asymmetric, Rate = 1, Seed = 1 });
        Assert.Equal([6, 0, 4, 1], d.Labels);
        Assert.Equal(0.75, r.RealisedRate);
        var e = Assert.Throws<ArgumentException>(() =>
            LabelNoise.Inject(Mixture(100), new NoiseOptions { Kind = NoiseKind.Asymmetric, Rate = 0.2 }));
        Assert.Equal("NoiseOptions.ClassMap", e.ParamName);
        e = Assert.Throws<ArgumentException>(() =>
            LabelNoise.Inject(Mixture(100), new NoiseOptions { Kind = NoiseKind.Asymmetric, Rate = 0.2, ClassMap = "3:12" }));
        Assert.Equal("NoiseOptions.ClassMap", e.ParamName);
    }

    [Fact]
    public void Transition_realises_its_matrix()
    {
        var d = Mixture(50000);
        var t = RandomStochastic(K, 11);
        var r = LabelNoise.Inject(d, new NoiseOptions { Kind = NoiseKind.Transition, T = t, Seed = 8 });
        for (int i = 0; i < K; i++)
        {
            for (int j = 0; j < K; j++)
            {
                if (t[i][j] == 0)
                    Assert.Equal(0, r.RealisedTransition[i][j]);
                else
                    AssertRate(t[i][j], r.RealisedTransition[i][j], r.ClassCounts[i], $"T[{i}][{j}]");
            }
        }
        double expected = Enumerable.Range(0, K).Sum(i => r.ClassCounts[i] * (1 - t[i][i])) / d.Count;
        Assert.Equal(expected, r.ExpectedRate, 10);
    }

    [Fact]
    public void Transition_matrix_is_validated()
    {
        var d = Mixture(100);
        var bad = RandomStochastic(K, 1);
        bad[3][0] += 0.01;
        var e = Assert.Throws<ArgumentException>(() => LabelNoise.Inject(d, new NoiseOptions { Kind = NoiseKind.Transition, T = bad }));
        Assert.Equal("NoiseOptions.T", e.ParamName);
        Assert.Contains("row 3", e.Message);
        var negative = Enumerable.Range(0, K).Select(i => Enumerable.Range(0, K).Select(j => i == j ? 1.0 : 0.0).ToArray()).ToArray();
        negative[2][2] = 1.1;
        negative[2][3] = -0.1; // the row still sums to 1
        e = Assert.Throws<ArgumentException>(() => LabelNoise.Inject(d, new NoiseOptions { Kind = NoiseKind.Transition, T = negative }));
        Assert.Equal("NoiseOptions.T", e.ParamName);
        e = Assert.Throws<ArgumentException>(() => LabelNoise.Inject(d, new NoiseOptions { Kind = NoiseKind.Transition, T = [[1.0]] }));
        Assert.Equal("NoiseOptions.T", e.ParamName);
    }

    [Theory]
    [InlineData(-0.1)]
    [InlineData(1.5)]
    [InlineData(double.NaN)]
    public void Rate_outside_unit_interval_is_an_argument_error(double rate)
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() =>
            LabelNoise.Inject(Mixture(50), new NoiseOptions { Kind = NoiseKind.Symmetric, Rate = rate }));
        Assert.Equal("NoiseOptions.Rate", e.ParamName);
    }

    [Fact]
    public void Instance_noise_flips_hard_samples_more_often()
    {
        // Samples with a higher flip probability (harder under the random scorer) must flip more
        // often; flipped labels go to the scorer's most-likely wrong class, so within a class they
        // concentrate on few classes instead of spreading uniformly.
        var d = Mixture();
        var r = LabelNoise.Inject(d, new NoiseOptions { Kind = NoiseKind.Instance, Rate = 0.3, Seed = 12 });
        double maxShare = 0;
        for (int i = 0; i < K; i++)
        {
            var offDiag = r.RealisedTransition[i].Where((_, j) => j != i).ToArray();
            maxShare = Math.Max(maxShare, offDiag.Max() / offDiag.Sum());
        }
        Assert.True(maxShare > 0.3, $"largest share of one wrong class {maxShare:F3}; uniform would be {1.0 / (K - 1):F3}");

        var rates = LabelNoise.InstanceRates(Mixture(), 0.3, Rng.ForPurpose(12, "noise"), out var wrongBest);
        Assert.Equal(0.3, rates.Average(), 9);
        var byRate = Enumerable.Range(0, d.Count).OrderBy(i => rates[i]).ToArray();
        var easy = byRate[..(d.Count / 2)];
        var hard = byRate[(d.Count / 2)..];
        double easyRate = easy.Average(i => rates[i]);
        double hardRate = hard.Average(i => rates[i]);
        Assert.True(hardRate > 1.5 * easyRate, $"flip probabilities barely vary: {easyRate:F3} vs {hardRate:F3}");
        AssertRate(easyRate, easy.Average(i => d.NoiseMask[i] ? 1.0 : 0.0), easy.Length, "easy half");
        AssertRate(hardRate, hard.Average(i => d.NoiseMask[i] ? 1.0 : 0.0), hard.Length, "hard half");
        for (int i = 0; i < d.Count; i++)
        {
            if (d.NoiseMask[i])
                Assert.Equal(wrongBest[i], d.Labels[i]);
        }

        var random = Mixture();
        var rr = LabelNoise.Inject(random, new NoiseOptions { Kind = NoiseKind.Instance, Rate = 0.3, Seed = 12, InstanceTarget = InstanceTarget.RandomOther });
        AssertRate(0.3, rr.RealisedRate, random.Count, "instance/random");
        // same seed, same scorer, same flip decisions: only the targets differ
        Assert.Equal(d.NoiseMask, random.NoiseMask);
    }

    [Fact]
    public void Rate_scale_meets_the_mean_even_when_clipping()
    {
        var rng = new Rng(3);
        var dif = Enumerable.Range(0, 1000).Select(_ => Math.Pow(rng.NextDouble(), 4) + 1e-3).ToArray();
        foreach (double rate in new[] { 0.0, 0.1, 0.5, 0.9, 1.0 })
        {
            double s = LabelNoise.RateScale(dif, rate);
            Assert.Equal(rate, dif.Average(v => Math.Min(1, s * v)), 9);
        }
    }

    [Fact]
    public void Noise_on_a_regression_set_is_an_argument_error()
    {
        var d = Synthetic.LinearTeacher(Synthetic.Teacher(3, 0, new Rng(1)), 10, 0, new Rng(2));
        var e = Assert.Throws<ArgumentException>(() => LabelNoise.Inject(d, new NoiseOptions { Kind = NoiseKind.Symmetric, Rate = 0.1 }));
        Assert.Equal("NoiseOptions.Kind", e.ParamName);
        var none = LabelNoise.Inject(d, new NoiseOptions());
        Assert.Equal(0, none.RealisedRate);
    }

    [Fact]
    public void Report_has_a_json_friendly_shape()
    {
        var d = Mixture(1000, k: 3);
        var r = LabelNoise.Inject(d, new NoiseOptions { Kind = NoiseKind.PairFlip, Rate = 0.2, Seed = 1 });
        var dict = r.ToDictionary();
        Assert.Equal("pairflip", dict["kind"]);
        Assert.Equal(0.2, dict["requested_rate"]);
        Assert.Equal(r.RealisedRate, dict["realised_rate"]);
        var t = Assert.IsType<List<List<double>>>(dict["realised_transition"]);
        Assert.Equal(3, t.Count);
        Assert.All(t, row => Assert.Equal(1, row.Sum(), 10));
        var json = System.Text.Json.JsonSerializer.Serialize(dict);
        Assert.Contains("\"per_class_rate\"", json);
    }

    [Theory]
    [InlineData("symmetric", NoiseKind.Symmetric)]
    [InlineData("PairFlip", NoiseKind.PairFlip)]
    [InlineData("instance", NoiseKind.Instance)]
    public void Kind_names_parse(string name, NoiseKind kind)
    {
        Assert.Equal(kind, NoiseOptions.ParseKind(name));
        Assert.Equal("name", Assert.Throws<ArgumentException>(() => NoiseOptions.ParseKind("bogus")).ParamName);
    }
}

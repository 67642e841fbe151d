using LabelNoiseLab.Nn;
using LabelNoiseLab.Probes;
using LabelNoiseLab.Tensors;

namespace LabelNoiseLab.Tests;

/// <summary>The spectral probe's pieces: ranks, basis against the SVD, projection, truncation, and a planted malignant tail.</summary>
public sealed class SpectralProbeTests
{
    private static float[] Gaussian(Rng rng, int n, int d, Func<int, float>? std = null)
    {
        var x = new float[n * d];
        for (int i = 0; i < n; i++)
            for (int j = 0; j < d; j++)
                x[i * d + j] = (float)rng.NextNormal() * (std?.Invoke(j) ?? 1f);
        return x;
    }

    [Theory]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(32)]
    public void Effective_rank_of_the_identity_is_D_and_of_a_rank_one_matrix_is_1(int dim)
    {
        var identity = new float[dim * dim];
        for (int i = 0; i < dim; i++)
            identity[i * dim + i] = 1f;
        var s = new float[dim];
        Lapack.Svd(identity, dim, dim, s, new float[dim * dim], new float[dim * dim]);
        var sigma = s.Select(v => (double)v).ToArray();
        Assert.Equal(dim, SpectralBasis.EffectiveRankOf(sigma), 1e-4);
        Assert.Equal(dim, SpectralBasis.StableRankOf(sigma), 1e-4);

        var rng = Rng.ForPurpose(dim, "rank-one");
        var u = Gaussian(rng, dim, 1);
        var v = Gaussian(rng, dim, 1);
        var outer = new float[dim * dim];
        for (int i = 0; i < dim; i++)
            for (int j = 0; j < dim; j++)
                outer[i * dim + j] = u[i] * v[j];
        Lapack.Svd(outer, dim, dim, s, new float[dim * dim], new float[dim * dim]);
        sigma = s.Select(x => (double)x).ToArray();
        Assert.Equal(1, SpectralBasis.EffectiveRankOf(sigma), 1e-3);
        Assert.Equal(1, SpectralBasis.StableRankOf(sigma), 1e-3);
        Assert.Equal(0, SpectralBasis.EffectiveRankOf(new double[dim]));
    }

    [Fact]
    public void The_covariance_eigenbasis_matches_the_svd_of_the_centred_features()
    {
        const int n = 300, dim = 12;
        var rng = Rng.ForPurpose(1, "eig-vs-svd");
        var x = Gaussian(rng, n, dim, j => 3f / (j + 1)); // distinct variances: the subspaces are well defined
        for (int i = 0; i < n; i++)
            x[i * dim + 2] += 5f; // a non-zero mean to remove
        var basis = SpectralBasis.Fit(x, n, dim);

        var centred = (float[])x.Clone();
        for (int i = 0; i < n; i++)
            for (int j = 0; j < dim; j++)
                centred[i * dim + j] -= basis.Mean[j];
        var s = new float[dim];
        var vt = new float[dim * dim];
        Lapack.Svd(centred, n, dim, s, new float[n * dim], vt);
        for (int j = 0; j < dim; j++)
            Assert.Equal(s[j], basis.SingularValues[j], s[0] * 1e-4);
        // Same top-d projector V_d V_dᵀ (signs of single vectors are arbitrary).
        foreach (int d in new[] { 1, 3, 7 })
        {
            for (int a = 0; a < dim; a++)
                for (int b = 0; b < dim; b++)
                {
                    double fromEig = 0, fromSvd = 0;
                    for (int j = 0; j < d; j++)
                    {
                        fromEig += (double)basis.Vectors[a * dim + j] * basis.Vectors[b * dim + j];
                        fromSvd += (double)vt[j * dim + a] * vt[j * dim + b];
                    }
                    Assert.Equal(fromSvd, fromEig, 1e-3);
                }
        }
        double total = s.Sum(v => (double)v);
        Assert.Equal(SpectralBasis.EffectiveRankOf(s.Select(v => (double)v).ToArray()), basis.EffectiveRank, 1e-3);
        Assert.True(total > 0);
    }

    [Fact]
    public void Projection_is_idempotent_and_the_full_projection_is_the_identity()
    {
        const int n = 200, dim = 10;
        var rng = Rng.ForPurpose(2, "projection");
        var x = Gaussian(rng, n, dim, j => 1f + j);
        var basis = SpectralBasis.Fit(x, n, dim);
        var y = Gaussian(rng, 50, dim);
        foreach (int d in new[] { 0, 1, 4, dim })
        {
            var once = (float[])y.Clone();
            basis.ProjectInPlace(once, 50, d);
            var twice = (float[])once.Clone();
            basis.ProjectInPlace(twice, 50, d);
            for (int i = 0; i < once.Length; i++)
                Assert.Equal(once[i], twice[i], 1e-4);
            if (d == dim)
                for (int i = 0; i < y.Length; i++)
                    Assert.Equal(y[i], once[i], 1e-4);
            if (d == 0)
                for (int i = 0; i < y.Length; i++)
                    Assert.Equal(basis.Mean[i % dim], once[i], 1e-6);
        }
    }

    /// <summary>
    /// Planted malignant tail: K = 4 classes whose means (a regular simplex) span k = 3
    /// directions; isotropic small noise in the other D − k; noisy training samples carry their
    /// wrong label in the tail (a push along a tail direction u_given), and a "memorising" head
    /// reads those directions. Unseen samples (validation, test) have no such push.
    /// </summary>
    private static (FeatureSet Train, FeatureSet Val, FeatureSet Test, float[] W) PlantedTail(int dim = 24)
    {
        const int classes = 4, k = 3;
        float[][] means = [[2, 2, 2], [2, -2, -2], [-2, 2, -2], [-2, -2, 2]];
        var rng = Rng.ForPurpose(3, "planted-tail");
        FeatureSet Make(int n, bool noisyLabels, bool memorised)
        {
            var x = Gaussian(rng, n, dim, j => j < k ? 1f : 0.3f);
            var labels = new int[n];
            var trueLabels = new int[n];
            for (int i = 0; i < n; i++)
            {
                int c = i % classes;
                trueLabels[i] = c;
                labels[i] = noisyLabels && rng.NextDouble() < 0.4 ? (c + 1 + rng.NextInt(classes - 1)) % classes : c;
                for (int j = 0; j < k; j++)
                    x[i * dim + j] += means[c][j];
                if (memorised && labels[i] != c)
                    x[i * dim + k + labels[i]] += 2f;
            }
            return new FeatureSet(x, n, dim, labels, trueLabels);
        }
        var w = new float[classes * dim];
        for (int c = 0; c < classes; c++)
        {
            for (int j = 0; j < k; j++)
                w[c * dim + j] = means[c][j];
            w[c * dim + k + c] = 20f; // the memorising part of the head
        }
        return (Make(2000, true, true), Make(1000, true, false), Make(2000, false, false), w);
    }

    [Fact]
    public void On_a_planted_tail_truncation_and_the_probe_choose_the_signal_dimension()
    {
        var (train, val, test, w) = PlantedTail();
        var options = new SpectralOptions { Grid = Enumerable.Range(1, train.Dim).ToList() };
        var result = SpectralProbe.Analyze(train, test, 4, new HeadTruncation(val, test, w, null, 4), options);

        Assert.Equal(3, result.BestDByVal);
        Assert.Equal(3, result.ProbeBestD);
        // The valley is real, not a tie: both ends are clearly worse than d = k.
        var atK = result.RowAt(3)!;
        Assert.True(atK.TruncTestAcc > result.FullTestAcc + 0.05, $"trunc {atK.TruncTestAcc} vs full {result.FullTestAcc}");
        Assert.True(atK.TruncTestAcc > result.RowAt(1)!.TruncTestAcc + 0.1);
        Assert.True(atK.ProbeTestAcc > result.RowAt(train.Dim)!.ProbeTestAcc + 0.01, $"probe at k {atK.ProbeTestAcc}, at D {result.RowAt(train.Dim)!.ProbeTestAcc}");
        // The memorised wrong labels live in the tail: noisy samples keep more energy outside the top-k.
        Assert.True(atK.NoisyTailEnergy > atK.CleanTailEnergy + 0.1, $"noisy {atK.NoisyTailEnergy}, clean {atK.CleanTailEnergy}");
        Assert.Equal(0, result.RowAt(train.Dim)!.CleanTailEnergy, 1e-9);
        for (int i = 1; i < result.Rows.Count; i++)
            Assert.True(result.Rows[i].CleanTailEnergy <= result.Rows[i - 1].CleanTailEnergy + 1e-12);
    }

    [Fact]
    public void Head_truncation_equals_the_head_applied_to_projected_features()
    {
        var (train, val, test, w) = PlantedTail(dim: 9);
        var basis = SpectralBasis.Fit(train.X, train.Count, train.Dim);
        var grid = new[] { 1, 2, 3, 5, 9 };
        var bias = new float[] { 0.5f, -0.25f, 0f, 1f };
        var scores = new HeadTruncation(val, test, w, bias, 4).Score(basis, grid);
        for (int g = 0; g < grid.Length; g++)
        {
            var projected = (float[])test.X.Clone();
            basis.ProjectInPlace(projected, test.Count, grid[g]);
            int correct = 0;
            for (int i = 0; i < test.Count; i++)
            {
                var logits = new float[4];
                for (int c = 0; c < 4; c++)
                {
                    double z = bias[c];
                    for (int j = 0; j < 9; j++)
                        z += (double)w[c * 9 + j] * projected[i * 9 + j];
                    logits[c] = (float)z;
                }
                correct += Array.IndexOf(logits, logits.Max()) == test.TrueLabels[i] ? 1 : 0;
            }
            Assert.Equal((double)correct / test.Count, scores.TestAcc[g], 2.0 / test.Count);
        }
    }

    [Fact]
    public void Forward_hook_truncation_at_a_named_layer_agrees_with_head_truncation()
    {
        var model = new Mlp(6, [16, 16], 3);
        Init.Apply(model, InitKind.Default, Rng.ForPurpose(4, "init"));
        var rng = Rng.ForPurpose(4, "data");
        Data.Dataset Set(int n, string name)
        {
            var labels = Enumerable.Range(0, n).Select(i => i % 3).ToArray();
            return new Data.Dataset(name, Gaussian(rng, n, 6), [6], labels, 3);
        }
        var train = Set(300, "train");
        var test = Set(200, "test");
        // layers.3 is the ReLU after the second Linear: the penultimate features.
        var penultimate = FeatureExtractor.Extract(model, train, FeatureExtractor.Penultimate);
        var named = FeatureExtractor.Extract(model, train, "layers.3");
        Assert.Equal(penultimate.X, named.X);

        var basis = SpectralBasis.Fit(penultimate.X, train.Count, 16);
        var grid = new[] { 1, 2, 4, 8, 16 };
        var viaHead = new HeadTruncation(null, FeatureExtractor.Extract(model, test, FeatureExtractor.Penultimate), model.Head).Score(basis, grid);
        var viaHook = new ForwardTruncation(model, FeatureExtractor.ResolveLayer(model, "layers.3")!, null, test).Score(basis, grid);
        for (int g = 0; g < grid.Length; g++)
            Assert.Equal(viaHead.TestAcc[g], viaHook.TestAcc[g], 2.0 / test.Count);
        Assert.Equal(viaHead.FullTestAcc, viaHook.FullTestAcc, 1e-12);
    }

    [Fact]
    public void Bad_grids_and_layers_are_input_errors_naming_the_option()
    {
        var e = Assert.Throws<InputException>(() => SpectralProbe.CheckGrid([1, 600], 512, "layer 'penultimate'"));
        Assert.Contains("--d-grid", e.Message);
        Assert.Contains("512", e.Message);
        Assert.Throws<InputException>(() => SpectralProbe.CheckGrid([0], 5, "x"));
        var model = new Mlp(6, [8], 3);
        var layer = Assert.Throws<InputException>(() => FeatureExtractor.ResolveLayer(model, "layers.9"));
        Assert.Contains("--layer 'layers.9'", layer.Message);
        Assert.Equal([1, 2, 3, 5, 8, 10, 15], SpectralProbe.CheckGrid([15, 1, 2, 3, 5, 8, 10, 5], 16, "x"));
        var grid = SpectralProbe.DefaultGrid(512, 10);
        Assert.Equal(1, grid[0]);
        Assert.Equal(512, grid[^1]);
        Assert.All(Enumerable.Range(5, 11), d => Assert.Contains(d, grid));
    }
}

using LabelNoiseLab.Autograd;
using LabelNoiseLab.Tensors;

namespace LabelNoiseLab.Tests;

/// <summary>
/// <see cref="ParallelRange"/> and the kernels it spreads over threads: every item runs once,
/// and each kernel's parallel path (forced on small inputs, three threads) gives the same bits
/// as its serial path, which the other kernel tests check against the naive loops. One class,
/// so the global switches are never flipped by two tests at once.
/// </summary>
[Collection(ProcessWideSettings.Name)]
public class ParallelKernelTests
{
    /// <summary>Runs <paramref name="action"/> once serially and once through the parallel path.</summary>
    private static (T Serial, T Parallel) Both<T>(Func<T> action)
    {
        long minWork = ParallelRange.MinWork;
        int threads = ParallelRange.ThreadsOverride;
        try
        {
            ParallelRange.MinWork = long.MaxValue;
            var serial = action();
            ParallelRange.MinWork = 1;
            ParallelRange.ThreadsOverride = 3;
            return (serial, action());
        }
        finally
        {
            ParallelRange.MinWork = minWork;
            ParallelRange.ThreadsOverride = threads;
        }
    }

    private struct CountBody(int[] hits) : IRangeBody
    {
        public readonly void Run(int start, int end)
        {
            for (int i = start; i < end; i++)
                Interlocked.Increment(ref hits[i]);
        }
    }

    private struct NestedBody(int[] hits) : IRangeBody
    {
        public readonly void Run(int start, int end)
        {
            for (int i = start; i < end; i++)
            {
                var inner = new CountBody(hits);
                ParallelRange.For(1, 1L << 40, ref inner); // nested: runs inline, on this thread
            }
        }
    }

    private struct ThrowingBody : IRangeBody
    {
        public readonly void Run(int start, int end)
        {
            if (start <= 5 && 5 < end)
                throw new InvalidOperationException("item 5");
        }
    }

    [Fact]
    public void Every_item_runs_exactly_once_at_every_count()
    {
        Both(() =>
        {
            for (int count = 1; count <= 200; count++)
            for (int rep = 0; rep < 3; rep++)
            {
                var hits = new int[count];
                var body = new CountBody(hits);
                ParallelRange.For(count, count, ref body);
                Assert.All(hits, h => Assert.Equal(1, h));
            }
            var nestedHits = new int[50];
            var nested = new NestedBody(nestedHits);
            ParallelRange.For(50, 50, ref nested);
            Assert.Equal(50, nestedHits[0]); // item 0 of the inner loop, once per outer item
            return 0;
        });
    }

    [Fact]
    public void A_failing_block_is_rethrown_and_the_next_loop_still_runs()
    {
        Both(() =>
        {
            var thrower = new ThrowingBody();
            var e = Assert.ThrowsAny<Exception>(() => ParallelRange.For(100, 100, ref thrower));
            Assert.Contains("item 5", e.ToString());
            var hits = new int[100];
            var body = new CountBody(hits);
            ParallelRange.For(100, 100, ref body);
            Assert.All(hits, h => Assert.Equal(1, h));
            return 0;
        });
    }

    [Theory]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(33)]
    [InlineData(1000)]
    [InlineData(4099)]
    public void Element_wise_kernels_give_the_serial_bits(int n)
    {
        var rng = new Rng((ulong)n);
        float[] R() => Enumerable.Range(0, n).Select(_ => (float)rng.NextNormal()).ToArray();
        var (a, b, d0) = (R(), R(), R());
        float[] Run(Action<float[]> kernel)
        {
            var d = (float[])d0.Clone();
            kernel(d);
            return d;
        }
        foreach (var kernel in new Action<float[]>[]
        {
            d => Kernels.Relu(a, d),
            d => Kernels.ReluBackward(a, b, d, false),
            d => Kernels.ReluBackward(a, b, d, true),
            d => Kernels.Add(a, b, d),
            d => Kernels.Add(d, b, d),
            d => Kernels.Copy(a, d),
            d => Kernels.LeakyRelu(a, 0.01f, d),
            d => Kernels.LeakyReluBackward(a, b, 0.3f, d, false),
            d => Kernels.LeakyReluBackward(a, b, 0.3f, d, true),
        })
        {
            var (serial, parallel) = Both(() => Run(kernel));
            Assert.Equal(serial, parallel);
        }
        // And against the definitions (the serial vectorised loops' tails included).
        var leaky = Run(d => Kernels.LeakyRelu(a, 0.01f, d));
        var leakyBack = Run(d => Kernels.LeakyReluBackward(a, b, 0.3f, d, true));
        for (int i = 0; i < n; i++)
        {
            Assert.Equal(a[i] > 0 ? a[i] : 0.01f * a[i], leaky[i]);
            Assert.Equal(d0[i] + (a[i] > 0 ? b[i] : 0.3f * b[i]), leakyBack[i]);
        }
    }

    [Theory]
    [MemberData(nameof(ConvKernelTests.Geometries), MemberType = typeof(ConvKernelTests))]
    public void Im2col_and_col2im_give_the_serial_bits(int h, int w, int k, int s, int p)
    {
        var rng = new Rng((ulong)(h * 1000 + w * 100 + k * 10 + s + p));
        var x = GradCheck.Random(rng, [3, 4, h, w]);
        var g = Conv2dOp.Geometry.Of(x, new Tensor(2, 4, k, k), s, p);
        int size = g.Patch * g.N * g.OutPlane;
        var (colSerial, colParallel) = Both(() =>
        {
            var col = Enumerable.Repeat(float.NaN, size).ToArray();
            Conv2dOp.Im2Col(x.Span, col, g);
            return col;
        });
        Assert.Equal(colSerial, colParallel);
        var dcol = GradCheck.Random(rng, [size]);
        var dx0 = GradCheck.Random(rng, [x.Length]).Span.ToArray();
        foreach (bool overwrite in new[] { false, true })
        {
            var (dxSerial, dxParallel) = Both(() =>
            {
                var dx = overwrite ? Enumerable.Repeat(float.NaN, dx0.Length).ToArray() : (float[])dx0.Clone();
                Conv2dOp.Col2ImAdd(dcol.Span, dx, g, overwrite);
                return dx;
            });
            Assert.Equal(dxSerial, dxParallel);
            var reference = overwrite ? new float[dx0.Length] : (float[])dx0.Clone();
            Conv2dOp.Col2ImAddReference(dcol.Span, reference, g);
            Assert.Equal(reference, dxParallel);
        }
    }

    /// <summary>Conv (bias) → BatchNorm (train or eval) → ReLU or LeakyReLU → max-pool, plus a residual add: output and every gradient.</summary>
    [Theory]
    [InlineData(true, false)]
    [InlineData(false, false)]
    [InlineData(true, true)]
    public void A_conv_block_forward_and_backward_give_the_serial_bits(bool training, bool leaky)
    {
        var rng = new Rng(training ? 3u : 4u);
        var x = GradCheck.Random(rng, [5, 3, 8, 8]);
        var weight = GradCheck.Random(rng, [6, 3, 3, 3]);
        var bias = GradCheck.Random(rng, [6]);
        var gamma = GradCheck.Random(rng, [6]);
        var beta = GradCheck.Random(rng, [6]);
        var skip = GradCheck.Random(rng, [5, 6, 8, 8]);
        var runningMean = GradCheck.Random(rng, [6]).Span.ToArray();
        var runningVar = GradCheck.Random(rng, [6]).Span.ToArray().Select(v => 0.5f + v * v).ToArray();
        Tensor[] inputs = [x, weight, bias, gamma, beta, skip];
        var (serial, parallel) = Both(() =>
        {
            foreach (var t in inputs)
            {
                t.RequiresGrad = true;
                t.GradIsZero = true;
            }
            var tape = new Tape { ConvChunkFloats = 300 }; // several chunks
            var mean = new float[6];
            var variance = new float[6];
            var h = Conv2dOp.Forward(tape, x, weight, bias, 1, 1);
            h = training
                ? BatchNormOp.Forward(tape, h, gamma, beta, 1e-5f, mean, variance)
                : BatchNormOp.Forward(tape, h, gamma, beta, 1e-5f, default, default, runningMean, runningVar);
            h = AddOp.Forward(tape, h, skip);
            h = leaky ? new LeakyReluOp(0.1f).Forward(tape, h) : ReluOp.Instance.Forward(tape, h);
            var y = MaxPool2dOp.Forward(tape, h, 2, 2);
            var loss = SumOp.Forward(tape, MulOp.Forward(tape, y, y));
            tape.Backward(loss);
            var all = new List<float[]> { y.Span.ToArray(), mean, variance };
            all.AddRange(inputs.Select(t => t.Grad!.Span.ToArray()));
            return all;
        });
        Assert.Equal(serial.Count, parallel.Count);
        for (int i = 0; i < serial.Count; i++)
            Assert.Equal(serial[i], parallel[i]);
    }

    [Fact]
    public void The_conv_block_passes_its_gradient_check_on_the_parallel_path()
    {
        var rng = new Rng(12);
        var x = GradCheck.Random(rng, [4, 2, 6, 6]);
        var weight = GradCheck.Random(rng, [3, 2, 3, 3]);
        var gamma = GradCheck.Random(rng, [3]);
        var beta = GradCheck.Random(rng, [3]);
        var (_, (error, skipped)) = Both(() => GradCheck.CheckSkippingKinks(t =>
        {
            var h = Conv2dOp.Forward(t, x, weight, null, 1, 1);
            h = BatchNormOp.Forward(t, h, gamma, beta, 1e-5f, new float[3], new float[3]);
            h = new LeakyReluOp(0.2f).Forward(t, h);
            return MaxPool2dOp.Forward(t, h, 2, 2);
        }, [x, weight, gamma, beta]));
        Assert.True(skipped < 0.2, $"{skipped:P0} of the elements sit at a kink");
        Assert.True(error < 1e-2, $"relative error {error}");
    }

    [Theory]
    [InlineData(2)]
    [InlineData(4)]
    public void GroupNorm_forward_and_backward_give_the_serial_bits_and_pass_the_gradient_check(int groups)
    {
        var rng = new Rng((ulong)groups);
        var x = GradCheck.Random(rng, [5, 8, 4, 3]);
        var gamma = GradCheck.Random(rng, [8]);
        var beta = GradCheck.Random(rng, [8]);
        Tensor[] inputs = [x, gamma, beta];
        var (serial, parallel) = Both(() =>
        {
            foreach (var t in inputs)
            {
                t.RequiresGrad = true;
                t.GradIsZero = true;
            }
            var tape = new Tape();
            var y = GroupNormOp.Forward(tape, x, gamma, beta, groups, 1e-5f);
            tape.Backward(SumOp.Forward(tape, MulOp.Forward(tape, y, y)));
            return new[] { y.Span.ToArray() }.Concat(inputs.Select(t => t.Grad!.Span.ToArray())).ToList();
        });
        for (int i = 0; i < serial.Count; i++)
            Assert.Equal(serial[i], parallel[i]);
        var (_, error) = Both(() => GradCheck.MaxRelativeError(t => GroupNormOp.Forward(t, x, gamma, beta, groups, 1e-5f), inputs));
        Assert.True(error < 1e-2, $"relative error {error}");
    }
}

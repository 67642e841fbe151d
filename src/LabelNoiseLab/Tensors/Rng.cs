namespace LabelNoiseLab.Tensors;

/// <summary>
/// Seeded pseudo-random generator (xoshiro256**, seeded through SplitMix64). Its whole state is
/// four ulongs plus a cached normal, exposed through <see cref="GetState"/>/<see cref="SetState"/>
/// so that a run can be checkpointed and resumed bit-identically. Each purpose (noise
/// injection, initialisation, shuffling, per-step label noise, dropout) owns its own instance.
/// </summary>
public sealed class Rng
{
    private ulong _s0, _s1, _s2, _s3;
    private bool _hasSpareNormal;
    private double _spareNormal;

    /// <summary>A generator whose state is expanded from <paramref name="seed"/> with SplitMix64; equal seeds give equal streams.</summary>
    public Rng(ulong seed)
    {
        ulong x = seed;
        _s0 = SplitMix(ref x);
        _s1 = SplitMix(ref x);
        _s2 = SplitMix(ref x);
        _s3 = SplitMix(ref x);
    }

    /// <summary>A generator for one purpose derived from a run's seed and a purpose name.</summary>
    public static Rng ForPurpose(long seed, string purpose)
    {
        ulong h = 14695981039346656037UL; // FNV-1a over the purpose name
        foreach (char c in purpose)
            h = (h ^ c) * 1099511628211UL;
        return new Rng(unchecked((ulong)seed * 0x9E3779B97F4A7C15UL ^ h));
    }

    /// <summary>The next 64 uniformly random bits (xoshiro256**).</summary>
    public ulong NextUInt64()
    {
        ulong result = RotateLeft(_s1 * 5, 7) * 9;
        ulong t = _s1 << 17;
        _s2 ^= _s0;
        _s3 ^= _s1;
        _s1 ^= _s2;
        _s0 ^= _s3;
        _s2 ^= t;
        _s3 = RotateLeft(_s3, 45);
        return result;
    }

    /// <summary>Uniform in [0, 1) with 53 random bits.</summary>
    public double NextDouble() => (NextUInt64() >> 11) * (1.0 / (1UL << 53));

    /// <summary>Uniform in [0, 1) with 24 random bits.</summary>
    public float NextFloat() => (NextUInt64() >> 40) * (1.0f / (1 << 24));

    /// <summary>Uniform integer in [0, n), unbiased (Lemire's method).</summary>
    public int NextInt(int n)
    {
        if (n <= 0)
            throw new ArgumentOutOfRangeException(nameof(n), n, "must be positive");
        ulong range = (ulong)n;
        UInt128 m = (UInt128)NextUInt64() * range;
        ulong low = (ulong)m;
        if (low < range)
        {
            ulong threshold = (0UL - range) % range;
            while (low < threshold)
            {
                m = (UInt128)NextUInt64() * range;
                low = (ulong)m;
            }
        }
        return (int)(m >> 64);
    }

    /// <summary>Standard normal (Marsaglia polar method; the spare value is part of the state).</summary>
    public double NextNormal()
    {
        if (_hasSpareNormal)
        {
            _hasSpareNormal = false;
            return _spareNormal;
        }
        double u, v, s;
        do
        {
            u = 2 * NextDouble() - 1;
            v = 2 * NextDouble() - 1;
            s = u * u + v * v;
        } while (s >= 1 || s == 0);
        double f = Math.Sqrt(-2 * Math.Log(s) / s);
        _spareNormal = v * f;
        _hasSpareNormal = true;
        return u * f;
    }

    /// <summary>Fisher–Yates shuffle in place.</summary>
    public void Shuffle(Span<int> items)
    {
        for (int i = items.Length - 1; i > 0; i--)
        {
            int j = NextInt(i + 1);
            (items[i], items[j]) = (items[j], items[i]);
        }
    }

    /// <summary>The full state: s0..s3, the spare-normal flag and the spare normal's bits.</summary>
    public ulong[] GetState() =>
        [_s0, _s1, _s2, _s3, _hasSpareNormal ? 1UL : 0UL, (ulong)BitConverter.DoubleToInt64Bits(_spareNormal)];

    /// <summary>Restores a state saved by <see cref="GetState"/>; throws an <see cref="ArgumentException"/> unless it has 6 words.</summary>
    public void SetState(ReadOnlySpan<ulong> state)
    {
        if (state.Length != 6)
            throw new ArgumentException($"generator state needs 6 words, got {state.Length}");
        (_s0, _s1, _s2, _s3) = (state[0], state[1], state[2], state[3]);
        _hasSpareNormal = state[4] != 0;
        _spareNormal = BitConverter.Int64BitsToDouble((long)state[5]);
    }

    private static ulong SplitMix(ref ulong x)
    {
        ulong z = x += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    private static ulong RotateLeft(ulong x, int k) => (x << k) | (x >> (64 - k));
}

using System.Buffers.Binary;
using System.IO.Compression;

namespace LabelNoiseLab.Data;

/// <summary>
/// Says what is wrong with a gzip file that <see cref="GZipStream"/> rejected or cut short.
/// GZipStream reports every damage as "unsupported compression method" and returns a stream cut
/// inside its data or trailer as if it had ended; this walks the members itself (RFC 1952) and
/// names the first problem: an unsupported method, a corrupt header, corrupt deflate data, a
/// truncated stream, a CRC or length mismatch. Only used on the error path: it reads the whole file.
/// </summary>
internal static class GzipCheck
{
    /// <summary>Whether the file's last four bytes (a single member's ISIZE) equal <paramref name="decompressed"/> modulo 2^32.</summary>
    public static bool TrailerLengthMatches(FileStream file, long decompressed)
    {
        if (file.Length < 18)
            return false;
        long position = file.Position;
        Span<byte> isize = stackalloc byte[4];
        file.Position = file.Length - 4;
        file.ReadExactly(isize);
        file.Position = position;
        return BinaryPrimitives.ReadUInt32LittleEndian(isize) == (uint)decompressed;
    }

    /// <summary>What is wrong with the gzip file at <paramref name="path"/>; null when its members decompress and check out.</summary>
    public static string? Diagnose(string path)
    {
        byte[] data;
        try
        {
            if (new FileInfo(path).Length > Array.MaxLength)
                return null;
            data = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
        int pos = 0;
        for (int member = 0; ; member++)
        {
            if (member > 0 && (data.Length - pos < 2 || data[pos] != 0x1f || data[pos + 1] != 0x8b))
                return null; // like GZipStream, bytes after the last member are ignored
            var (start, headerProblem) = Header(data, pos);
            if (headerProblem is not null)
                return headerProblem;
            var (end, length, crc, problem) = Inflate(data, start);
            if (problem is not null)
                return problem;
            if (data.Length - end < 8)
                return $"truncated gzip stream (incomplete trailer after {length} decompressed bytes)";
            uint wantCrc = BinaryPrimitives.ReadUInt32LittleEndian(data.AsSpan(end));
            uint wantSize = BinaryPrimitives.ReadUInt32LittleEndian(data.AsSpan(end + 4));
            if (wantCrc != crc)
                return $"gzip CRC mismatch (trailer says 0x{wantCrc:X8}, the data gives 0x{crc:X8}): corrupt data";
            if (wantSize != (uint)length)
                return $"gzip length mismatch (trailer says {wantSize} bytes, the data gives {length})";
            pos = end + 8;
        }
    }

    /// <summary>Where a member's compressed data starts, or what is wrong with its header.</summary>
    private static (int Start, string? Problem) Header(byte[] data, int pos)
    {
        const string Truncated = "truncated gzip stream (incomplete header)";
        if (data.Length - pos < 10)
            return (0, Truncated);
        byte method = data[pos + 2], flags = data[pos + 3];
        if (method != 8)
            return (0, $"unsupported gzip compression method {method} (expected 8, deflate)");
        if ((flags & 0xE0) != 0)
            return (0, $"corrupt gzip header (reserved flag bits set: 0x{flags:X2})");
        int p = pos + 10;
        if ((flags & 4) != 0)
        {
            if (data.Length - p < 2)
                return (0, Truncated);
            p += 2 + BinaryPrimitives.ReadUInt16LittleEndian(data.AsSpan(p));
        }
        foreach (int flag in (int[])[8, 16])
        {
            if ((flags & flag) == 0 || p > data.Length)
                continue;
            int zero = Array.IndexOf(data, (byte)0, p);
            if (zero < 0)
                return (0, Truncated);
            p = zero + 1;
        }
        if ((flags & 2) != 0)
        {
            if (data.Length - p < 2)
                return (0, Truncated);
            uint want = BinaryPrimitives.ReadUInt16LittleEndian(data.AsSpan(p));
            if (want != (Crc32.Compute(data.AsSpan(pos, p - pos)) & 0xFFFF))
                return (0, "gzip header CRC mismatch (corrupt header)");
            p += 2;
        }
        return p > data.Length ? (0, Truncated) : (p, null);
    }

    /// <summary>
    /// Inflates the raw deflate data at <paramref name="start"/>: where it ends, its length and
    /// CRC-32, or what is wrong. A first pass finds the piece of input the end lies in; a second
    /// feeds that piece one byte at a time, so the inflater stops exactly at the end.
    /// </summary>
    private static (int End, long Length, uint Crc, string? Problem) Inflate(byte[] data, int start)
    {
        var first = new Feed(data, start, slowFrom: int.MaxValue);
        long length = 0;
        uint crc = 0;
        var buffer = new byte[1 << 16];
        try
        {
            using var inflater = new DeflateStream(first, CompressionMode.Decompress, leaveOpen: true);
            int n;
            while ((n = inflater.Read(buffer)) > 0)
            {
                crc = Crc32.Append(crc, buffer.AsSpan(0, n));
                length += n;
            }
        }
        catch (InvalidDataException)
        {
            return (0, length, crc, $"corrupt gzip data (invalid deflate data after {length} decompressed bytes)");
        }
        if (first.SawEnd)
            return (0, length, crc, $"truncated gzip stream (the file ends inside the compressed data, after {length} decompressed bytes)");

        var second = new Feed(data, start, slowFrom: first.LastReadStart);
        using (var inflater = new DeflateStream(second, CompressionMode.Decompress, leaveOpen: true))
        {
            while (inflater.Read(buffer) > 0)
            {
            }
        }
        return (second.At, length, crc, null);
    }

    /// <summary>Hands out <see cref="_data"/> from a start: in large pieces, then one byte a time from <c>slowFrom</c> on.</summary>
    private sealed class Feed(byte[] data, int start, int slowFrom) : Stream
    {
        private readonly byte[] _data = data;

        public int At { get; private set; } = start;

        public int LastReadStart { get; private set; } = start;

        public bool SawEnd { get; private set; }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            if (At >= _data.Length)
            {
                SawEnd = true;
                return 0;
            }
            int n = At >= slowFrom ? 1 : Math.Min(Math.Min(buffer.Length, _data.Length - At), slowFrom - At);
            _data.AsSpan(At, n).CopyTo(buffer);
            LastReadStart = At;
            At += n;
            return n;
        }

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => At; set => throw new NotSupportedException(); }

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}

/// <summary>CRC-32 (IEEE 802.3, as gzip uses it).</summary>
internal static class Crc32
{
    private static readonly uint[] Table = Build();

    public static uint Compute(ReadOnlySpan<byte> bytes) => Append(0, bytes);

    public static uint Append(uint crc, ReadOnlySpan<byte> bytes)
    {
        uint c = ~crc;
        foreach (byte b in bytes)
            c = Table[(c ^ b) & 0xFF] ^ (c >> 8);
        return ~c;
    }

    private static uint[] Build()
    {
        var table = new uint[256];
        for (uint n = 0; n < 256; n++)
        {
            uint c = n;
            for (int k = 0; k < 8; k++)
                c = (c & 1) != 0 ? 0xEDB88320 ^ (c >> 1) : c >> 1;
            table[n] = c;
        }
        return table;
    }
}

using System.Buffers.Binary;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;

namespace LabelNoiseLab.RunFiles;

/// <summary>
/// NumPy's <c>.npy</c> format, version 1.0: the magic <c>\x93NUMPY</c>, bytes 1 and 0, a
/// little-endian uint16 header length, an ASCII dict literal
/// <c>{'descr': '&lt;f4', 'fortran_order': False, 'shape': (n, d), }</c> padded with spaces and a
/// newline so the data starts at a multiple of 64, then the values in C order, little-endian.
/// Files are written atomically.
/// </summary>
public static class Npy
{
    private static readonly byte[] Magic = [0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', 1, 0];

    /// <summary>
    /// Writes float32 values (<c>&lt;f4</c>) with the given shape (C order); throws
    /// <see cref="ArgumentException"/> when the shape does not match the number of values.
    /// </summary>
    public static void Write(string path, ReadOnlySpan<float> values, params int[] shape) =>
        Write(path, "<f4", shape, MemoryMarshal.AsBytes(values).ToArray(), sizeof(float));

    /// <summary>Writes int32 values (<c>&lt;i4</c>) with the given shape (C order).</summary>
    public static void Write(string path, ReadOnlySpan<int> values, params int[] shape) =>
        Write(path, "<i4", shape, MemoryMarshal.AsBytes(values).ToArray(), sizeof(int));

    /// <summary>Writes booleans (<c>|b1</c>, one byte each) with the given shape (C order).</summary>
    public static void Write(string path, ReadOnlySpan<bool> values, params int[] shape)
    {
        var bytes = new byte[values.Length];
        for (int i = 0; i < values.Length; i++)
            bytes[i] = values[i] ? (byte)1 : (byte)0;
        Write(path, "|b1", shape, bytes, 1);
    }

    /// <summary>The header dict of a file: descr, fortran_order and shape, as written by <see cref="Write(string, ReadOnlySpan{float}, int[])"/>.</summary>
    public static string Header(string descr, IReadOnlyList<int> shape)
    {
        string dims = shape.Count == 1 ? shape[0].ToString(CultureInfo.InvariantCulture) + ","
            : string.Join(", ", shape.Select(d => d.ToString(CultureInfo.InvariantCulture)));
        string dict = $"{{'descr': '{descr}', 'fortran_order': False, 'shape': ({dims}), }}";
        int total = Magic.Length + 2 + dict.Length + 1;
        int padded = (total + 63) / 64 * 64;
        return dict + new string(' ', padded - total) + "\n";
    }

    private static void Write(string path, string descr, int[] shape, byte[] data, int itemSize)
    {
        long count = shape.Aggregate(1L, (n, d) => n * d);
        if (count * itemSize != data.Length)
            throw new ArgumentException($"shape [{string.Join(", ", shape)}] does not match {data.Length / itemSize} values", nameof(shape));
        if (!BitConverter.IsLittleEndian && itemSize > 1)
            throw new PlatformNotSupportedException("npy export writes little-endian data from a little-endian machine only");
        byte[] header = Encoding.ASCII.GetBytes(Header(descr, shape));
        AtomicFile.Write(path, s =>
        {
            s.Write(Magic);
            Span<byte> len = stackalloc byte[2];
            BinaryPrimitives.WriteUInt16LittleEndian(len, (ushort)header.Length);
            s.Write(len);
            s.Write(header);
            s.Write(data);
        });
    }
}

using System.Buffers.Binary;
using System.IO.Compression;

namespace LabelNoiseLab.Tests;

/// <summary>A temporary folder (a <see cref="TempDir"/>) the tests write small data files into; deleted on dispose.</summary>
internal sealed class DataTestFiles : IDisposable
{
    private readonly TempDir _temp = new("data");

    public string Dir => _temp.Path;

    public string PathOf(string name) => _temp.Sub(name);

    public string Write(string name, byte[] bytes, bool gzip = false)
    {
        var path = PathOf(name);
        if (gzip)
        {
            using var fs = File.Create(path);
            using var gz = new GZipStream(fs, CompressionLevel.Fastest);
            gz.Write(bytes);
        }
        else
        {
            File.WriteAllBytes(path, bytes);
        }
        return path;
    }

    public string WriteText(string name, string text)
    {
        var path = PathOf(name);
        File.WriteAllText(path, text);
        return path;
    }

    public static byte[] IdxImages(byte[] pixels, int count, int rows, int cols, int magic = 0x803)
    {
        var b = new byte[16 + pixels.Length];
        BinaryPrimitives.WriteInt32BigEndian(b, magic);
        BinaryPrimitives.WriteInt32BigEndian(b.AsSpan(4), count);
        BinaryPrimitives.WriteInt32BigEndian(b.AsSpan(8), rows);
        BinaryPrimitives.WriteInt32BigEndian(b.AsSpan(12), cols);
        pixels.CopyTo(b, 16);
        return b;
    }

    public static byte[] IdxLabels(byte[] labels, int? count = null, int magic = 0x801)
    {
        var b = new byte[8 + labels.Length];
        BinaryPrimitives.WriteInt32BigEndian(b, magic);
        BinaryPrimitives.WriteInt32BigEndian(b.AsSpan(4), count ?? labels.Length);
        labels.CopyTo(b, 8);
        return b;
    }

    public static byte[] Pixels(int n, int seed)
    {
        var p = new byte[n];
        new Random(seed).NextBytes(p);
        return p;
    }

    public void Dispose() => _temp.Dispose();
}

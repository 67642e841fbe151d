using System.IO.Compression;

namespace LabelNoiseLab.Data;

/// <summary>Opening data files with errors that name the file and what was expected.</summary>
internal static class DataFiles
{
    /// <summary>Opens a file for reading; a missing or unreadable file is a <see cref="DataException"/>.</summary>
    public static FileStream OpenRead(string path, string expected)
    {
        if (!File.Exists(path))
            throw new DataException(path, $"file not found (expected {expected})");
        try
        {
            return new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1 << 16);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new DataException(path, $"cannot be read ({e.Message}); expected {expected}");
        }
    }

    /// <summary>
    /// Opens a file that may be gzip-compressed: detected by the gzip magic bytes 1f 8b, whatever
    /// the file's name says.
    /// </summary>
    public static Stream OpenMaybeGzip(string path, string expected)
    {
        var fs = OpenRead(path, expected);
        try
        {
            Span<byte> head = stackalloc byte[2];
            int got = fs.ReadAtLeast(head, 2, throwOnEndOfStream: false);
            fs.Position = 0;
            if (got == 2 && head[0] == 0x1f && head[1] == 0x8b)
                return new GZipStream(fs, CompressionMode.Decompress, leaveOpen: false);
            return fs;
        }
        catch
        {
            fs.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Reads until <paramref name="buffer"/> is full or the stream ends; returns how many bytes
    /// were read. A corrupt gzip stream becomes a <see cref="DataException"/>.
    /// </summary>
    public static int ReadFully(Stream s, Span<byte> buffer, string path)
    {
        try
        {
            return s.ReadAtLeast(buffer, buffer.Length, throwOnEndOfStream: false);
        }
        catch (InvalidDataException e)
        {
            throw new DataException(path, $"corrupt gzip data ({e.Message})");
        }
    }
}

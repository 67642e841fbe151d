using System.IO.Compression;
using System.Runtime.InteropServices;

namespace LabelNoiseLab.Data;

/// <summary>An opened data file: what to read from (the decompressed stream for gzip), the file itself, and whether it is gzip.</summary>
internal sealed class DataStream(Stream stream, FileStream file, bool gzip, string path) : IDisposable
{
    public Stream Stream { get; } = stream;

    public FileStream File { get; } = file;

    public bool Gzip { get; } = gzip;

    public string Path { get; } = path;

    public void Dispose()
    {
        Stream.Dispose();
        File.Dispose();
    }
}

/// <summary>Consumes consecutive pieces of a payload: <paramref name="offset"/> is the position of the first byte.</summary>
internal delegate void PayloadConsumer(long offset, ReadOnlySpan<byte> bytes);

/// <summary>Opening data files with errors that name the file and what was expected.</summary>
internal static partial class DataFiles
{
    /// <summary>
    /// Opens a file for reading; a missing or unreadable file, or one that is not a regular file
    /// (a FIFO, a device, a socket: never opened, a FIFO would block), is a <see cref="DataException"/>.
    /// </summary>
    public static FileStream OpenRead(string path, string expected)
    {
        if (Directory.Exists(path))
            throw new DataException(path, $"is a directory; expected {expected}");
        if (!File.Exists(path))
            throw new DataException(path, $"file not found (expected {expected})");
        if (NonRegularKind(path) is { } kind)
            throw new DataException(path, $"is not a regular file ({kind}); expected {expected}");
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
    public static DataStream OpenMaybeGzip(string path, string expected)
    {
        var fs = OpenRead(path, expected);
        try
        {
            Span<byte> head = stackalloc byte[2];
            int got = fs.ReadAtLeast(head, 2, throwOnEndOfStream: false);
            fs.Position = 0;
            if (got == 2 && head[0] == 0x1f && head[1] == 0x8b)
                return new DataStream(new GZipStream(fs, CompressionMode.Decompress, leaveOpen: true), fs, gzip: true, path);
            return new DataStream(fs, fs, gzip: false, path);
        }
        catch
        {
            fs.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Reads until <paramref name="buffer"/> is full or the stream ends; returns how many bytes
    /// were read. A corrupt gzip stream becomes a <see cref="DataException"/> saying what is wrong.
    /// </summary>
    public static int ReadFully(Stream s, Span<byte> buffer, string path)
    {
        try
        {
            return s.ReadAtLeast(buffer, buffer.Length, throwOnEndOfStream: false);
        }
        catch (InvalidDataException)
        {
            throw new DataException(path, GzipCheck.Diagnose(path) ?? "corrupt gzip data");
        }
    }

    /// <summary>
    /// Reads the <paramref name="expected"/> bytes that follow a header, checked against what the
    /// file really holds before <paramref name="ready"/> is called (where the caller allocates for
    /// them): a raw file by its size, a gzip file by decompressing into pieces that grow with the
    /// data actually there, never more than <paramref name="expected"/> bytes. Then hands the bytes
    /// to <paramref name="consume"/> in order. <paramref name="headerBytes"/>: how many bytes the header took. Too few bytes: <paramref name="truncated"/>(found);
    /// more: <paramref name="longer"/>; a gzip stream that is itself damaged: what is wrong with it.
    /// </summary>
    public static void ReadPayload(DataStream d, int headerBytes, long expected, Func<long, string> truncated, string longer, Action ready, PayloadConsumer consume)
    {
        const int Piece = 1 << 20;
        if (!d.Gzip)
        {
            long found = d.File.Length - d.File.Position;
            if (found < expected)
                throw new DataException(d.Path, truncated(found));
            if (found > expected)
                throw new DataException(d.Path, longer);
            ready();
            var chunk = new byte[(int)Math.Min(Piece, Math.Max(expected, 1))];
            for (long done = 0; done < expected;)
            {
                int want = (int)Math.Min(chunk.Length, expected - done);
                int n = ReadFully(d.Stream, chunk.AsSpan(0, want), d.Path);
                if (n < want)
                    throw new DataException(d.Path, truncated(done + n));
                consume(done, chunk.AsSpan(0, n));
                done += n;
            }
            return;
        }

        var pieces = new List<byte[]>();
        long have = 0;
        while (have < expected)
        {
            var piece = new byte[(int)Math.Min(Piece, expected - have)];
            int n = ReadFully(d.Stream, piece, d.Path);
            have += n;
            if (n < piece.Length)
                throw new DataException(d.Path, GzipCheck.Diagnose(d.Path) ?? truncated(have));
            pieces.Add(piece);
        }
        Span<byte> one = stackalloc byte[1];
        if (ReadFully(d.Stream, one, d.Path) != 0)
            throw new DataException(d.Path, longer);
        // GZipStream accepts a stream cut inside its trailer (the CRC then goes unchecked): the
        // trailer's length field must match what was decompressed, else the stream is examined.
        if (!GzipCheck.TrailerLengthMatches(d.File, headerBytes + have)
            && GzipCheck.Diagnose(d.Path) is { } problem)
            throw new DataException(d.Path, problem);
        ready();
        long offset = 0;
        foreach (var piece in pieces)
        {
            consume(offset, piece);
            offset += piece.Length;
        }
    }

    /// <summary>
    /// Null for a regular file, else what it is ("a FIFO", "a character device", ...). Read with
    /// stat(2) through the .NET runtime's own native library, without opening the file.
    /// </summary>
    internal static string? NonRegularKind(string path)
    {
        if (OperatingSystem.IsWindows())
            return (File.GetAttributes(path) & FileAttributes.Device) != 0 ? "a device" : null;
        int mode;
        try
        {
            mode = StatMode(path);
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return null;
        }
        if (mode < 0)
            return null;
        return (mode & 0xF000) switch
        {
            0x8000 => null,
            0x1000 => "a FIFO",
            0x2000 => "a character device",
            0x6000 => "a block device",
            0xC000 => "a socket",
            0x4000 => "a directory",
            _ => "not a regular file",
        };
    }

    /// <summary>st_mode of <paramref name="path"/> (symbolic links followed); -1 if stat fails.</summary>
    private static unsafe int StatMode(string path)
    {
        // SystemNative_Stat fills .NET's own FileStatus: int32 Flags, then int32 Mode, then more
        // fields; the buffer is generously larger than the structure.
        byte* status = stackalloc byte[512];
        return SystemNativeStat(path, status) == 0 ? *(int*)(status + 4) : -1;
    }

    [LibraryImport("libSystem.Native", EntryPoint = "SystemNative_Stat", StringMarshalling = StringMarshalling.Utf8)]
    [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
    private static unsafe partial int SystemNativeStat(string path, byte* status);
}

using System.Text;

namespace LabelNoiseLab.RunFiles;

/// <summary>
/// Writes a file so that readers see either the old or the new content, never a part: the data
/// goes to a temporary file in the same directory (same file system), is flushed to disk, and
/// is moved over the target.
/// </summary>
internal static class AtomicFile
{
    /// <summary>Prefix of the temporary files; a crash can leave one behind, nothing else.</summary>
    public const string TempPrefix = ".tmp-";

    public static void Write(string path, Action<Stream> write)
    {
        string full = Path.GetFullPath(path);
        string dir = Path.GetDirectoryName(full)!;
        string temp = Path.Combine(dir, TempPrefix + Path.GetFileName(full) + "-" + Guid.NewGuid().ToString("N")[..8]);
        try
        {
            using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16))
            {
                write(stream);
                stream.Flush(flushToDisk: true);
            }
            File.Move(temp, full, overwrite: true);
        }
        catch
        {
            TryDelete(temp);
            throw;
        }
    }

    public static void WriteAllText(string path, string text) =>
        Write(path, s =>
        {
            var bytes = new UTF8Encoding(encoderShouldEmitUTF8Identifier: false).GetBytes(text);
            s.Write(bytes);
        });

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (IOException)
        {
            // best effort: the original error matters more than a leftover temp file
        }
        catch (UnauthorizedAccessException)
        {
            // as above
        }
    }
}

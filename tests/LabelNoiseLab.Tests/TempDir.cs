namespace LabelNoiseLab.Tests;

/// <summary>
/// A fresh folder under the system's temporary folder (lnlab-NAME-XXXX) for one test; deleted with
/// everything in it on dispose. The one temporary-folder helper of the tests.
/// </summary>
internal sealed class TempDir : IDisposable
{
    public TempDir(string name = "test") => Path = Directory.CreateTempSubdirectory("lnlab-" + name + "-").FullName;

    public string Path { get; }

    /// <summary>PATH/<paramref name="name"/> (not created).</summary>
    public string Sub(string name) => System.IO.Path.Combine(Path, name);

    public override string ToString() => Path;

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
            // a process the test started may still hold a file a moment; a leftover temp folder is harmless
        }
    }
}

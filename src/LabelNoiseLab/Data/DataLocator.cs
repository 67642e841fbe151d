namespace LabelNoiseLab.Data;

/// <summary>
/// Finds the directory that holds a data set's files. Places, in order:
/// <list type="number">
/// <item><c>--data-dir</c> (passed in), then its sub-folder named like the data set. When given,
/// it is the only place looked at: a mistyped directory is an error, never a silent fall-back to
/// another copy.</item>
/// <item>otherwise <c>$LNLAB_DATA</c> and its sub-folder named like the data set;</item>
/// <item>then the Debian package folder <c>/usr/share/datasets/&lt;name&gt;</c>
/// (<c>dataset-fashion-mnist</c> installs <c>/usr/share/datasets/fashion-mnist</c>).</item>
/// </list>
/// A file may be stored raw or gzip-compressed (<c>name</c> or <c>name.gz</c>).
/// </summary>
public static class DataLocator
{
    /// <summary>The environment variable naming a data folder (second place looked at).</summary>
    public const string EnvironmentVariable = "LNLAB_DATA";

    /// <summary>Where Debian's data set packages install (last place looked at).</summary>
    public const string DebianRoot = "/usr/share/datasets";

    /// <summary>Extra sub-folder names a data set's files are commonly unpacked into.</summary>
    private static readonly Dictionary<string, string[]> Aliases = new(StringComparer.Ordinal)
    {
        ["cifar10"] = ["cifar-10-batches-bin", "cifar-10"],
        ["fashion-mnist"] = ["fashion_mnist", "FashionMNIST"],
        ["mnist"] = ["MNIST"],
    };

    /// <summary>The directories looked at, in order.</summary>
    public static IReadOnlyList<string> Candidates(string name, string? dataDir, Func<string, string?>? environment = null)
    {
        environment ??= Environment.GetEnvironmentVariable;
        var list = new List<string>();
        void AddWithSubfolders(string root)
        {
            list.Add(root);
            list.Add(Path.Combine(root, name));
            if (Aliases.TryGetValue(name, out var more))
            {
                foreach (var a in more)
                    list.Add(Path.Combine(root, a));
            }
        }
        if (!string.IsNullOrWhiteSpace(dataDir))
        {
            AddWithSubfolders(dataDir);
            return list;
        }
        var env = environment(EnvironmentVariable);
        if (!string.IsNullOrWhiteSpace(env))
            AddWithSubfolders(env);
        list.Add(Path.Combine(DebianRoot, name));
        return list;
    }

    /// <summary>
    /// The first candidate directory holding every one of <paramref name="files"/> (raw or .gz);
    /// a <see cref="DataException"/> listing the places tried when none does.
    /// </summary>
    public static string Locate(string name, IReadOnlyList<string> files, string? dataDir, Func<string, string?>? environment = null)
    {
        var tried = new List<string>();
        foreach (var dir in Candidates(name, dataDir, environment))
        {
            if (!Directory.Exists(dir))
            {
                tried.Add($"{dir} (no such directory)");
                continue;
            }
            var missing = files.Where(f => FindFile(dir, f) is null).ToList();
            if (missing.Count == 0)
                return dir;
            tried.Add($"{dir} (lacks {string.Join(", ", missing)})");
        }
        string how = string.IsNullOrWhiteSpace(dataDir)
            ? $"pass --data-dir or set ${EnvironmentVariable}"
            : "check --data-dir";
        throw new DataException(files[0],
            $"{name} data not found; expected {string.Join(", ", files)} (each raw or .gz) in one folder; looked in: {string.Join("; ", tried)}; {how}");
    }

    /// <summary>The path of <paramref name="file"/> or <paramref name="file"/>.gz in <paramref name="dir"/>, raw preferred; null if neither exists.</summary>
    public static string? FindFile(string dir, string file)
    {
        var raw = Path.Combine(dir, file);
        if (File.Exists(raw))
            return raw;
        var gz = raw + ".gz";
        return File.Exists(gz) ? gz : null;
    }
}

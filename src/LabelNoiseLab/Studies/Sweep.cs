using System.Globalization;
using System.Text;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;
using LabelNoiseLab.RunFiles;
using LabelNoiseLab.Experiments;

namespace LabelNoiseLab.Studies;

/// <summary>One point of a sweep: a grid combination and a seed, its config and its run folder (relative to the sweep's folder).</summary>
public sealed record SweepPoint(int Index, string Group, int Seed, string RelativeDir, ExperimentConfig Config);

/// <summary>A sweep file expanded: every point, validated, in a fixed order (grid combinations in file order, then seeds).</summary>
public sealed record SweepPlan(string Name, IReadOnlyList<SweepPoint> Points);

/// <summary>Which share of a sweep's points this process runs: every n-th point, starting at point i−1 (1-based i).</summary>
public readonly record struct Shard(int Index, int Count)
{
    /// <summary>The whole sweep: shard 1 of 1.</summary>
    public static Shard All => new(1, 1);

    /// <summary>Whether this shard runs point <paramref name="p"/> (points are dealt round-robin by index).</summary>
    public bool Takes(SweepPoint p) => p.Index % Count == Index - 1;

    /// <summary>
    /// <c>--shard i/n</c> if given; else Slurm's <c>SLURM_ARRAY_TASK_ID</c> (minus
    /// <c>SLURM_ARRAY_TASK_MIN</c>) of <c>SLURM_ARRAY_TASK_COUNT</c>; else Kubernetes'
    /// <c>JOB_COMPLETION_INDEX</c> of <c>LNLAB_SHARDS</c> (the Job's completions); else all points.
    /// </summary>
    public static Shard Resolve(string? option, Func<string, string?> env)
    {
        if (option is not null)
        {
            var parts = option.Split('/');
            if (parts.Length != 2 || !int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out int i)
                || !int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out int n) || n < 1 || i < 1 || i > n)
                throw new InputException($"--shard '{option}': expected i/n with 1 ≤ i ≤ n");
            return new Shard(i, n);
        }
        if (env("SLURM_ARRAY_TASK_ID") is { } id)
        {
            int n = EnvInt(env, "SLURM_ARRAY_TASK_COUNT") ?? throw new InputException("SLURM_ARRAY_TASK_ID is set but SLURM_ARRAY_TASK_COUNT is not");
            int i = ParseEnv("SLURM_ARRAY_TASK_ID", id) - (EnvInt(env, "SLURM_ARRAY_TASK_MIN") ?? 0) + 1;
            return Check(i, n, "SLURM_ARRAY_TASK_ID");
        }
        if (env("JOB_COMPLETION_INDEX") is { } index)
        {
            int n = EnvInt(env, "LNLAB_SHARDS") ?? throw new InputException("JOB_COMPLETION_INDEX is set but LNLAB_SHARDS (the Job's completions) is not");
            return Check(ParseEnv("JOB_COMPLETION_INDEX", index) + 1, n, "JOB_COMPLETION_INDEX");
        }
        return All;
    }

    private static Shard Check(int i, int n, string source) =>
        n >= 1 && i >= 1 && i <= n ? new Shard(i, n) : throw new InputException($"{source}: shard {i} of {n} is outside 1..{n}");

    private static int? EnvInt(Func<string, string?> env, string name) => env(name) is { } v ? ParseEnv(name, v) : null;

    private static int ParseEnv(string name, string value) =>
        int.TryParse(value, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out int v) ? v : throw new InputException($"{name}='{value}': expected an integer");
}

/// <summary>
/// A sweep file (YAML): <c>base</c> (a config file, relative to the sweep file; optional),
/// <c>config</c> (overrides of the base, nested or dotted keys), <c>grid</c> (config key → list of
/// values; the points are every combination) and <c>seeds</c> (list; default the config's seed).
/// Every point's config is built and validated before anything runs; each point is a run
/// folder <c>&lt;key=value,...&gt;/seed-&lt;s&gt;</c>. Points run single-threaded
/// (<c>threads: 1</c>) unless the sweep sets <c>threads</c>.
/// </summary>
public static class Sweep
{
    private static readonly string[] TopKeys = ["name", "base", "config", "grid", "seeds"];

    /// <summary>Reads and expands a sweep file, building and validating every point's config; a missing or malformed file is an <see cref="InputException"/>, a bad key or value a <see cref="ConfigException"/>.</summary>
    public static SweepPlan Load(string path)
    {
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new InputException($"{path}: cannot read the sweep file ({e.Message})");
        }
        var root = ParseRoot(text, path);
        foreach (var (k, _) in root.Children)
        {
            string key = ((YamlScalarNode)k).Value ?? "";
            if (!TopKeys.Contains(key))
                throw new InputException($"{path}: unknown sweep key '{key}'; expected {string.Join(", ", TopKeys)} (config keys go under config: or grid:)");
        }

        var config = ExperimentConfig.Default;
        if (Scalar(root, "base") is { } basePath)
            config = ExperimentConfig.Load(Path.IsPathRooted(basePath) ? basePath : Path.Combine(Path.GetDirectoryName(Path.GetFullPath(path))!, basePath));
        var overrides = new List<string>();
        if (Child(root, "config") is { } configNode)
        {
            if (configNode is not YamlMappingNode)
                throw new InputException($"{path}: config: must be a mapping of config keys");
            foreach (var (key, value) in ConfigYaml.ReadFlat(Serialize(configNode), path + " config"))
                overrides.Add(key + "=" + (value.Scalar ?? string.Join(",", value.Items ?? [])));
        }
        config = config.WithOverrides(overrides);

        var grid = new List<(string Key, List<string> Values)>();
        if (Child(root, "grid") is not YamlMappingNode gridNode || gridNode.Children.Count == 0)
            throw new InputException($"{path}: grid: is missing or empty; give at least one config key with a list of values");
        FlattenGrid(gridNode, "", grid, path);
        foreach (var (key, values) in grid)
        {
            if (key == "seed")
                throw new ConfigException("seed", $"list seeds under seeds:, not grid: ({path})");
            if (values.Count == 0)
                throw new ConfigException(key, $"the grid gives no values ({path}); the sweep would be empty");
        }

        var seeds = new List<int>();
        if (Child(root, "seeds") is { } seedNode)
        {
            if (seedNode is not YamlSequenceNode seq || seq.Children.Count == 0)
                throw new InputException($"{path}: seeds: must be a non-empty list of integers");
            foreach (var s in seq.Children)
                seeds.Add(s is YamlScalarNode { Value: { } v } && int.TryParse(v, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out int seed)
                    ? seed : throw new InputException($"{path}: line {s.Start.Line}: seeds must be integers"));
        }
        else
        {
            seeds.Add(config.Seed);
        }
        bool threadsGiven = overrides.Any(o => o.StartsWith("threads=", StringComparison.Ordinal)) || grid.Any(g => g.Key == "threads");

        var points = new List<SweepPoint>();
        foreach (var combination in Combinations(grid))
        {
            string group = string.Join(",", combination.Select(c => c.Key + "=" + c.Value));
            foreach (int seed in seeds)
            {
                var sets = combination.Select(c => c.Key + "=" + c.Value).Append("seed=" + seed.ToString(CultureInfo.InvariantCulture));
                if (!threadsGiven)
                    sets = sets.Append("threads=1");
                var pointConfig = config.WithOverrides(sets);
                pointConfig.Validate();
                string dir = Path.Combine(SafeDirName(group), "seed-" + seed.ToString(CultureInfo.InvariantCulture));
                points.Add(new SweepPoint(points.Count, group, seed, dir, pointConfig));
            }
        }
        string name = Scalar(root, "name") ?? Path.GetFileNameWithoutExtension(path);
        return new SweepPlan(name, points);
    }

    private static IEnumerable<List<(string Key, string Value)>> Combinations(List<(string Key, List<string> Values)> grid)
    {
        IEnumerable<List<(string, string)>> result = [[]];
        foreach (var (key, values) in grid)
            result = result.SelectMany(prefix => values.Select(v => new List<(string, string)>(prefix) { (key, v) })).ToList();
        return result;
    }

    private static void FlattenGrid(YamlMappingNode map, string prefix, List<(string, List<string>)> grid, string path)
    {
        foreach (var (k, v) in map.Children)
        {
            string key = prefix + (((YamlScalarNode)k).Value ?? "");
            switch (v)
            {
                case YamlMappingNode child:
                    FlattenGrid(child, key + ".", grid, path);
                    break;
                case YamlSequenceNode seq:
                    grid.Add((key, seq.Children.Select(item => item switch
                    {
                        YamlScalarNode s => s.Value ?? "",
                        YamlSequenceNode inner => string.Join(",", inner.Children.Select(i => (i as YamlScalarNode)?.Value ?? "")),
                        _ => throw new ConfigException(key, $"grid values must be plain values or lists ({path} line {item.Start.Line})"),
                    }).ToList()));
                    break;
                default:
                    throw new ConfigException(key, $"grid: expects a list of values ({path} line {v.Start.Line})");
            }
        }
    }

    private static YamlMappingNode ParseRoot(string text, string path)
    {
        var stream = new YamlStream();
        try
        {
            stream.Load(new StringReader(text));
        }
        catch (Exception e) when (e is YamlException or InvalidOperationException)
        {
            throw new InputException($"{path}: malformed YAML ({e.Message.ReplaceLineEndings(" ")})");
        }
        if (stream.Documents.Count != 1 || stream.Documents[0].RootNode is not YamlMappingNode root)
            throw new InputException($"{path}: expected one YAML mapping with grid:, seeds:, base:, config:");
        foreach (var (k, _) in root.Children)
        {
            if (k is not YamlScalarNode)
                throw new InputException($"{path}: line {k.Start.Line}: expected a plain key");
        }
        return root;
    }

    private static YamlNode? Child(YamlMappingNode map, string key) =>
        map.Children.TryGetValue(new YamlScalarNode(key), out var node) ? node : null;

    private static string? Scalar(YamlMappingNode map, string key) => (Child(map, key) as YamlScalarNode)?.Value;

    private static string Serialize(YamlNode node)
    {
        var writer = new StringWriter();
        new YamlStream(new YamlDocument(node)).Save(writer, assignAnchors: false);
        return writer.ToString();
    }

    /// <summary>A grid combination as a folder name: characters other than letters, digits and <c>._=,-</c> become <c>_</c>.</summary>
    internal static string SafeDirName(string group)
    {
        var sb = new StringBuilder(group.Length);
        foreach (char c in group)
            sb.Append(char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '=' or ',' or '-' ? c : '_');
        return sb.Length == 0 ? "point" : sb.ToString();
    }

    /// <summary>
    /// Runs this shard's points that are not complete yet, <paramref name="jobs"/> at a time, each
    /// through <paramref name="runPoint"/> (the CLI starts an <c>lnlab</c> process), and returns
    /// how each ended. Each point's resolved config is written to <c>configs/pNNNN.yaml</c> first.
    /// </summary>
    public static IReadOnlyList<(SweepPoint Point, string Outcome)> Run(SweepPlan plan, string outDir, int jobs, Shard shard,
        Func<SweepPoint, string, string, string> runPoint, Action<string> log)
    {
        if (jobs < 1)
            throw new InputException($"--jobs {jobs}: expected at least 1");
        Directory.CreateDirectory(Path.Combine(outDir, "configs"));
        var mine = plan.Points.Where(shard.Takes).ToList();
        var todo = new List<SweepPoint>();
        var results = new List<(SweepPoint, string)>();
        foreach (var p in mine)
        {
            string dir = Path.Combine(outDir, p.RelativeDir);
            if (RunDirectory.ReadStatus(dir) is { Status: RunStatus.Complete })
                results.Add((p, "skipped (complete)"));
            else
                todo.Add(p);
        }
        log($"sweep {plan.Name}: {plan.Points.Count} points, shard {shard.Index}/{shard.Count} has {mine.Count}, {todo.Count} to run, {jobs} at a time");
        int done = 0;
        var gate = new object();
        Parallel.ForEach(todo, new ParallelOptions { MaxDegreeOfParallelism = jobs }, p =>
        {
            string config = Path.Combine(outDir, "configs", $"p{p.Index:D4}.yaml");
            AtomicFile.WriteAllText(config, p.Config.ToYaml());
            string outcome = runPoint(p, config, Path.Combine(outDir, p.RelativeDir));
            lock (gate)
            {
                results.Add((p, outcome));
                log($"[{++done}/{todo.Count}] {p.RelativeDir}: {outcome}");
            }
        });
        return [.. results.OrderBy(r => r.Item1.Index)];
    }
}

using System.Runtime.InteropServices;
using System.Text.Json.Nodes;
using LabelNoiseLab.RunFiles;

namespace LabelNoiseLab.Tests;

/// <summary>
/// Compares two run directories file by file, byte for byte apart from the wall-clock fields no
/// two runs share: metrics.csv columns <c>seconds</c> and <c>eval_seconds</c>, every summary.json
/// key with "seconds" in its name (seconds_total, seconds_training, activations.seconds, ...),
/// and in checkpoints the resume state's *Seconds fields, its copy of metrics.csv and any
/// component value named *seconds*. Checkpoint tensors (model, optimizer, component arrays) are
/// compared bit for bit; <c>.tmp-</c> files a kill left behind are ignored.
/// </summary>
internal static class RunFilesComparison
{
    /// <summary>metrics.csv text without the columns seconds and eval_seconds.</summary>
    public static string MetricsWithoutTiming(string csv) => CsvWithout(csv, c => c is "seconds" or "eval_seconds");

    /// <summary>A CSV text without the columns whose header <paramref name="drop"/> names.</summary>
    public static string CsvWithout(string csv, Func<string, bool> drop)
    {
        ArgumentNullException.ThrowIfNull(csv);
        var lines = csv.Split('\n');
        var header = lines[0].Split(',');
        var keep = Enumerable.Range(0, header.Length).Where(i => !drop(header[i])).ToArray();
        return string.Join('\n', lines.Select(l => l.Length == 0 ? l : string.Join(',', keep.Select(i => l.Split(',')[i]))));
    }

    /// <summary>A JSON text with every object key containing "seconds" (any case) removed, at any depth.</summary>
    public static string JsonWithoutTiming(string json)
    {
        var node = JsonNode.Parse(json);
        Strip(node);
        return node?.ToJsonString() ?? "null";
    }

    private static void Strip(JsonNode? node)
    {
        switch (node)
        {
            case JsonObject o:
                foreach (var key in o.Select(p => p.Key).Where(k => k.Contains("seconds", StringComparison.OrdinalIgnoreCase)).ToList())
                    o.Remove(key);
                foreach (var p in o)
                    Strip(p.Value);
                break;
            case JsonArray a:
                foreach (var item in a)
                    Strip(item);
                break;
        }
    }

    /// <summary>A file's content as compared: normalised text for metrics.csv and summary.json, else the bytes as they are.</summary>
    public static string Normalised(string path)
    {
        string name = Path.GetFileName(path);
        if (name == "metrics.csv")
            return MetricsWithoutTiming(File.ReadAllText(path));
        if (name == "summary.json")
            return JsonWithoutTiming(File.ReadAllText(path));
        return Convert.ToBase64String(File.ReadAllBytes(path));
    }

    /// <summary>The checkpoint's resume state (lnlab.resume) without its timing, and the rest of its metadata (the checksum covers the timing: left out).</summary>
    public static string CheckpointMetadata(SafetensorsFile file)
    {
        var parts = new List<string>();
        foreach (var (key, value) in file.Metadata.OrderBy(p => p.Key, StringComparer.Ordinal))
        {
            if (key == "lnlab.checksum")
                continue;
            if (key != "lnlab.resume")
            {
                parts.Add($"{key}={value}");
                continue;
            }
            var state = JsonNode.Parse(value)!.AsObject();
            state["MetricsCsv"] = MetricsWithoutTiming(state["MetricsCsv"]!.GetValue<string>());
            Strip(state);
            parts.Add($"{key}={state.ToJsonString()}");
        }
        return string.Join('\n', parts);
    }

    public static void AssertSameCheckpoint(string expected, string actual)
    {
        var a = Safetensors.Load(expected);
        var b = Safetensors.Load(actual);
        Assert.Equal(CheckpointMetadata(a), CheckpointMetadata(b));
        Assert.Equal(a.Tensors.Keys.Order(StringComparer.Ordinal), b.Tensors.Keys.Order(StringComparer.Ordinal));
        foreach (var (name, tensor) in a.Tensors)
        {
            var other = b.Tensors[name];
            Assert.Equal(tensor.Shape.ToArray(), other.Shape.ToArray());
            Assert.True(MemoryMarshal.AsBytes(tensor.Span).SequenceEqual(MemoryMarshal.AsBytes(other.Span)),
                $"{Path.GetFileName(actual)}: tensor {name} differs");
        }
    }

    /// <summary>
    /// Every file of <paramref name="expected"/> is in <paramref name="actual"/> and the same (see the
    /// class); the same files, checkpoints included; final.safetensors byte for byte.
    /// </summary>
    public static void AssertSameRun(string expected, string actual)
    {
        static List<string> Files(string dir) => [.. Directory.EnumerateFiles(dir, "*", SearchOption.AllDirectories)
            .Select(f => Path.GetRelativePath(dir, f))
            .Where(f => !Path.GetFileName(f).StartsWith(".tmp-", StringComparison.Ordinal))
            .Order(StringComparer.Ordinal)];
        var files = Files(expected);
        Assert.Equal(files, Files(actual));
        foreach (var file in files)
        {
            string a = Path.Combine(expected, file), b = Path.Combine(actual, file);
            if (file.EndsWith(".safetensors", StringComparison.Ordinal))
            {
                if (Path.GetFileName(file) == "final.safetensors")
                    Assert.True(File.ReadAllBytes(a).AsSpan().SequenceEqual(File.ReadAllBytes(b)), "final.safetensors differs");
                else
                    AssertSameCheckpoint(a, b);
                continue;
            }
            string x = Normalised(a), y = Normalised(b);
            if (x != y)
                Assert.Fail($"{file} differs:\n--- uninterrupted\n{Excerpt(x, y)}\n--- resumed\n{Excerpt(y, x)}");
        }
    }

    // The text from a little before the first difference (readable in a failure message).
    private static string Excerpt(string s, string other)
    {
        int i = 0;
        while (i < s.Length && i < other.Length && s[i] == other[i])
            i++;
        int from = Math.Max(0, i - 200);
        return s.Substring(from, Math.Min(400, s.Length - from));
    }
}

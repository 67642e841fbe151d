using System.Text.Json.Nodes;
using LabelNoiseLab.RunFiles;
using LabelNoiseLab.Training;

namespace LabelNoiseLab.Tests;

/// <summary>
/// Checkpoints prove themselves: a checksum over every tensor and the metadata, the resume
/// state's epoch, step and batcher position cross-checked against the run, the embedded metrics
/// parsed before anything is written. A damaged checkpoint is one line naming it, exit 2, and
/// the run directory is left byte for byte as it was.
/// </summary>
public sealed class CheckpointIntegrityTests : IDisposable
{
    private readonly TempDir _temp = new("integrity");

    private string _dir => _temp.Path;

    public void Dispose() => _temp.Dispose();

    private const string Config = """
        name: integrity
        seed: 2
        epochs: 4
        batch_size: 32
        checkpoint_every: 1
        threads: 1
        data: {name: gaussian-mixture, samples: 320, test_samples: 100}
        noise: {kind: symmetric, rate: 0.3, seed: 1}
        model: {kind: mlp, hidden: [32]}
        optim: {kind: sgd, lr: 0.05, momentum: 0.9}
        probe: {neuron_norms: true}
        """;

    /// <summary>A complete run marked failed (so it may be resumed); returns its folder.</summary>
    private string ResumableRun()
    {
        string run = Path.Combine(_dir, "run");
        var (code, output, error) = TestCli.Train(_dir, Config, "--out", run);
        Assert.True(code == 0, output + error);
        File.WriteAllText(Path.Combine(run, "status"), "failed\nkilled\n");
        return run;
    }

    private static string Newest(string run) => TrainingCheckpoint.Latest(run)!;

    private static Dictionary<string, byte[]> Snapshot(string run) =>
        Directory.EnumerateFileSystemEntries(run, "*", SearchOption.AllDirectories)
            .Where(File.Exists)
            .ToDictionary(f => Path.GetRelativePath(run, f), File.ReadAllBytes);

    /// <summary>`lnlab resume` fails with exit 2 and one line containing every <paramref name="expected"/>; nothing in the folder changes.</summary>
    private void AssertRefused(string run, params string[] expected)
    {
        var before = Snapshot(run);
        var (code, _, error) = TestCli.Run(_dir, "resume", run);
        Assert.Equal(2, code);
        var lines = error.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Single(lines);
        foreach (var word in expected)
            Assert.Contains(word, lines[0], StringComparison.Ordinal);
        var after = Snapshot(run);
        Assert.Equal(before.Keys.Order(StringComparer.Ordinal), after.Keys.Order(StringComparer.Ordinal));
        foreach (var (file, bytes) in before)
            Assert.True(bytes.AsSpan().SequenceEqual(after[file]), $"{file} changed");
    }

    /// <summary>Rewrites a checkpoint with <paramref name="edit"/> applied to its resume state, checksum recomputed (a deliberate, consistent edit).</summary>
    private static void EditState(string checkpoint, Action<JsonObject> edit)
    {
        var file = Safetensors.Load(checkpoint);
        var metadata = file.Metadata.ToDictionary();
        var state = JsonNode.Parse(metadata[TrainingCheckpoint.ResumeKey])!.AsObject();
        edit(state);
        metadata[TrainingCheckpoint.ResumeKey] = state.ToJsonString();
        var tensors = file.Tensors.Select(t => (t.Key, t.Value)).ToList();
        metadata[TrainingCheckpoint.ChecksumKey] = TrainingCheckpoint.Checksum(tensors, metadata);
        Safetensors.Save(checkpoint, tensors, metadata);
    }

    [Fact]
    public void A_bit_flipped_in_the_weights_is_a_checksum_mismatch_naming_the_checkpoint()
    {
        string run = ResumableRun();
        string checkpoint = Newest(run);
        var bytes = File.ReadAllBytes(checkpoint);
        bytes[^5] ^= 0x10; // inside the last tensor's data
        File.WriteAllBytes(checkpoint, bytes);
        AssertRefused(run, Path.GetFileName(checkpoint), "checksum mismatch");
    }

    [Fact]
    public void NaN_bytes_in_the_weights_are_refused_not_resumed_to_divergence()
    {
        string run = ResumableRun();
        string checkpoint = Newest(run);
        var bytes = File.ReadAllBytes(checkpoint);
        BitConverter.GetBytes(float.NaN).CopyTo(bytes, bytes.Length - 4);
        File.WriteAllBytes(checkpoint, bytes);
        AssertRefused(run, Path.GetFileName(checkpoint), "checksum mismatch");
    }

    [Fact]
    public void An_edited_epoch_without_a_new_checksum_is_refused()
    {
        string run = ResumableRun();
        string checkpoint = Newest(run);
        var file = Safetensors.Load(checkpoint);
        var metadata = file.Metadata.ToDictionary();
        metadata[TrainingCheckpoint.ResumeKey] = metadata[TrainingCheckpoint.ResumeKey].Replace("\"Epoch\":4", "\"Epoch\":99", StringComparison.Ordinal);
        Safetensors.Save(checkpoint, file.Tensors.Select(t => (t.Key, t.Value)), metadata);
        AssertRefused(run, Path.GetFileName(checkpoint), "checksum mismatch");
    }

    [Theory]
    [InlineData(99, "beyond the run's 4 epochs")]
    [InlineData(3, "the batcher is in epoch 4")]
    public void An_epoch_that_does_not_fit_the_run_is_refused_even_with_a_matching_checksum(int epoch, string problem)
    {
        string run = ResumableRun();
        string checkpoint = Newest(run);
        EditState(checkpoint, s => s["Epoch"] = epoch);
        // The plain metadata keys must agree too: rewrite them alongside.
        var file = Safetensors.Load(checkpoint);
        var metadata = file.Metadata.ToDictionary();
        metadata["epoch"] = epoch.ToString(System.Globalization.CultureInfo.InvariantCulture);
        var tensors = file.Tensors.Select(t => (t.Key, t.Value)).ToList();
        metadata[TrainingCheckpoint.ChecksumKey] = TrainingCheckpoint.Checksum(tensors, metadata);
        Safetensors.Save(checkpoint, tensors, metadata);
        AssertRefused(run, Path.GetFileName(checkpoint), problem);
    }

    [Fact]
    public void A_step_that_does_not_match_the_position_is_refused()
    {
        string run = ResumableRun();
        string checkpoint = Newest(run);
        EditState(checkpoint, s => s["Step"] = s["Step"]!.GetValue<long>() - 1);
        AssertRefused(run, Path.GetFileName(checkpoint), "disagree");
    }

    [Fact]
    public void A_corrupt_number_in_the_embedded_metrics_names_the_checkpoint_not_metrics_csv()
    {
        string run = ResumableRun();
        string checkpoint = Newest(run);
        EditState(checkpoint, s =>
        {
            var lines = s["MetricsCsv"]!.GetValue<string>().Split('\n');
            var cells = lines[2].Split(',');
            cells[4] = "0.5x";
            lines[2] = string.Join(',', cells);
            s["MetricsCsv"] = string.Join('\n', lines);
        });
        AssertRefused(run, Path.GetFileName(checkpoint), "metrics rows it holds are damaged", "not a number");
    }

    [Fact]
    public void An_older_format_is_refused_with_its_version()
    {
        string run = ResumableRun();
        string checkpoint = Newest(run);
        EditState(checkpoint, s => s["Version"] = 1);
        AssertRefused(run, Path.GetFileName(checkpoint), "version 1, expected 2");
    }

    [Fact]
    public void A_checkpoint_that_is_a_folder_or_a_checkpoints_folder_that_is_a_file_is_bad_input()
    {
        string run = ResumableRun();
        Directory.CreateDirectory(Path.Combine(run, "checkpoints", "epoch-0005.safetensors"));
        AssertRefused(run, "epoch-0005.safetensors", "is a directory");

        string other = Path.Combine(_dir, "other");
        Directory.CreateDirectory(other);
        File.WriteAllText(Path.Combine(other, "status"), "failed\n");
        File.WriteAllText(Path.Combine(other, "config.yaml"), File.ReadAllText(Path.Combine(run, "config.yaml")));
        File.WriteAllText(Path.Combine(other, "checkpoints"), "not a folder");
        AssertRefused(other, "checkpoints", "is a file");
    }

    [Fact]
    public void Every_run_records_its_provenance()
    {
        string run = ResumableRun();
        var provenance = JsonNode.Parse(File.ReadAllText(Path.Combine(run, "summary.json")))!["provenance"]!.AsObject();
        foreach (var key in (string[])["format_version", "toolkit_version", "git_commit", "dotnet", "blas_backend", "blas_version", "cpu_architecture", "instruction_sets", "threads"])
            Assert.True(provenance.ContainsKey(key), key);
        Assert.Equal(2, provenance["format_version"]!.GetValue<int>());
        Assert.Equal(1, provenance["threads"]!.GetValue<int>());
    }
}

/// <summary>
/// Seeded mutations of a checkpoint (bit flips, truncations, inserted and deleted bytes): every
/// resume ends with exit 0 (the change was harmless) or 2 with one line, never 1, and on exit 2
/// the run directory is unchanged.
/// </summary>
public sealed class CheckpointFuzzTests : IDisposable
{
    private readonly TempDir _temp = new("checkpoint-fuzz");

    public void Dispose() => _temp.Dispose();

    private const string Config = """
        name: fuzz
        seed: 3
        epochs: 2
        batch_size: 32
        checkpoint_every: 1
        threads: 1
        data: {name: gaussian-mixture, samples: 200, test_samples: 50, dimension: 8}
        model: {kind: mlp, hidden: [8]}
        optim: {kind: sgd, lr: 0.05, momentum: 0.9}
        """;

    [Fact]
    public void Mutated_checkpoints_resume_exactly_or_are_refused_in_one_line_leaving_the_folder_unchanged()
    {
        string dir = _temp.Path, run = Path.Combine(dir, "run");
        Assert.Equal(0, TestCli.Train(dir, Config, "--out", run).Code);
        File.Delete(Path.Combine(run, "checkpoints", "epoch-0002.safetensors"));
        string checkpoint = Path.Combine(run, "checkpoints", "epoch-0001.safetensors");
        var original = File.ReadAllBytes(checkpoint);
        var rng = new Random(1234);
        int refused = 0, resumed = 0;
        for (int trial = 0; trial < 120; trial++)
        {
            var bytes = original.ToList();
            switch (trial % 4)
            {
                case 0: // one to four bit flips
                    for (int f = rng.Next(1, 5); f > 0; f--)
                    {
                        int at = rng.Next(bytes.Count);
                        bytes[at] ^= (byte)(1 << rng.Next(8));
                    }
                    break;
                case 1: // truncated
                    bytes = bytes.Take(rng.Next(bytes.Count)).ToList();
                    break;
                case 2: // bytes inserted
                    bytes.InsertRange(rng.Next(bytes.Count), Enumerable.Range(0, rng.Next(1, 9)).Select(_ => (byte)rng.Next(256)));
                    break;
                default: // bytes deleted
                    int from = rng.Next(bytes.Count);
                    bytes.RemoveRange(from, Math.Min(rng.Next(1, 9), bytes.Count - from));
                    break;
            }
            File.WriteAllBytes(checkpoint, [.. bytes]);
            File.WriteAllText(Path.Combine(run, "status"), "failed\nmutated\n");
            var before = Directory.EnumerateFiles(run, "*", SearchOption.AllDirectories).ToDictionary(f => f, File.ReadAllBytes);
            var (code, output, error) = TestCli.Run(dir, "resume", run);
            Assert.True(code is 0 or 2, $"trial {trial}: exit {code}: {error}");
            if (code == 2)
            {
                refused++;
                Assert.Single(error.Split('\n', StringSplitOptions.RemoveEmptyEntries));
                var after = Directory.EnumerateFiles(run, "*", SearchOption.AllDirectories).ToDictionary(f => f, File.ReadAllBytes);
                Assert.Equal(before.Keys.Order(StringComparer.Ordinal), after.Keys.Order(StringComparer.Ordinal));
                Assert.All(before, kv => Assert.True(kv.Value.AsSpan().SequenceEqual(after[kv.Key]), $"trial {trial}: {kv.Key} changed"));
            }
            else
            {
                resumed++;
                Assert.Contains("complete", output, StringComparison.Ordinal);
                File.Delete(Path.Combine(run, "checkpoints", "epoch-0002.safetensors"));
            }
        }
        Assert.True(refused > 100, $"only {refused} of 120 mutations were refused ({resumed} resumed)");
    }
}

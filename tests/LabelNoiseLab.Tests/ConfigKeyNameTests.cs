using System.Text.RegularExpressions;
using LabelNoiseLab.Data;
using LabelNoiseLab.Experiments;
using LabelNoiseLab.Noise;
using LabelNoiseLab.Studies;

namespace LabelNoiseLab.Tests;

/// <summary>
/// Only the config layer names config keys, and every key an error names is real (issue 11): a
/// key of <see cref="ConfigKeys.All"/>, a preset setting (<c>two_phase.*</c>, <c>spectral_tail.*</c>,
/// <c>double_descent.models</c>, the robust preset's <c>preset.*</c>) or a command-line flag.
/// </summary>
public sealed partial class ConfigKeyNameTests : IDisposable
{
    private readonly TempDir _temp = new("keys");

    public void Dispose() => _temp.Dispose();

    /// <summary>Folders of the layers below the config: they throw argument errors in their own words.</summary>
    private static readonly string[] LowerLayers = ["Tensors", "Autograd", "Nn", "Losses", "Optim", "RunFiles", "Data", "Noise"];

    /// <summary>
    /// <c>new ConfigException(EXPR, ...)</c> whose EXPR holds no string literal: the key is computed.
    /// Each is listed with where its key comes from; a new one must be added here after a look.
    /// </summary>
    private static readonly (string File, string Expression, string Why)[] ComputedKeys =
    [
        ("LabelNoiseLab/Experiments/ConfigKey.cs", "Name", "the key's own entry in ConfigKeys.All"),
        ("LabelNoiseLab/Experiments/ExperimentConfig.cs", "key", "an unknown key: names what the user wrote, with a suggestion"),
        ("LabelNoiseLab/Experiments/ConfigYaml.cs", "key", "a key as written in the YAML file (duplicates, bad values)"),
        ("LabelNoiseLab/Experiments/PresetSettings.cs", "key", "a preset --set key as the user wrote it (checked against the preset's table)"),
        ("LabelNoiseLab/Experiments/ExperimentSetup.cs", "key", "ExperimentSetup.KeyOfOption's values (tested below)"),
        ("LabelNoiseLab/Experiments/ExperimentRunner.cs", "key", "the robust feature switched on: prune.kind, select.kind, robust.loss or detection.enabled (a literal choice just above)"),
        ("LabelNoiseLab/Studies/Sweep.cs", "key", "a grid key as written in the sweep file"),
        ("LabelNoiseLab/Studies/TwoPhasePreset.cs", "key", "Positive(\"two_phase.*\", ...): the preset's own table keys"),
        ("LabelNoiseLab/Studies/DoubleDescentPreset.cs", "ModelsKey", "DoubleDescentPreset.ModelsKey"),
        ("LabelNoiseLab/Studies/DoubleDescentPreset.cs", "GridKey", "DoubleDescentPreset.GridKey (double_descent.grid)"),
        ("LabelNoiseLab/Studies/DoubleDescentPreset.cs", "GridSubsetsKey", "DoubleDescentPreset.GridSubsetsKey (double_descent.grid_subsets)"),
    ];

    /// <summary>The robust preset's own --set keys (RobustPreset reads them by prefix; no table to ask).</summary>
    private static readonly string[] RobustPresetKeys = ["preset.methods", "preset.settings"];

    [Fact]
    public void Every_key_a_ConfigException_names_in_the_source_is_real()
    {
        var known = KnownKeys();
        string src = Path.Combine(ConfigExperimentFilesTests.RepoRoot(), "src");
        var problems = new List<string>();
        int literals = 0;
        foreach (var file in Directory.GetFiles(src, "*.cs", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
        {
            string rel = Path.GetRelativePath(src, file).Replace('\\', '/');
            if (rel.Contains("/obj/", StringComparison.Ordinal) || rel.Contains("/bin/", StringComparison.Ordinal))
                continue;
            string text = File.ReadAllText(file);
            foreach (Match m in NewConfigException().Matches(text))
            {
                string expr = FirstArgument(text, m.Index + m.Length);
                // cond ? "a.key" : "b.key": the keys are the branches, not the condition's literals.
                int question = expr.IndexOf(" ? ", StringComparison.Ordinal);
                var keys = StringLiteral().Matches(question < 0 ? expr : expr[question..]).Select(l => l.Groups[1].Value).ToList();
                if (keys.Count == 0)
                {
                    if (!ComputedKeys.Any(c => c.File == rel && c.Expression == expr.Trim()))
                        problems.Add($"{rel}: computed key '{expr.Trim()}' (add it to ComputedKeys with where it comes from)");
                    continue;
                }
                foreach (var key in keys)
                {
                    literals++;
                    if (!IsKnown(key, known))
                        problems.Add($"{rel}: '{key}' is neither a config key, a preset setting nor a CLI flag");
                }
            }
        }
        Assert.True(problems.Count == 0, "\n" + string.Join("\n", problems));
        Assert.True(literals > 20, $"only {literals} literal keys found: is the scan still matching?");
    }

    [Fact]
    public void Computed_key_list_has_no_stale_entries()
    {
        string src = Path.Combine(ConfigExperimentFilesTests.RepoRoot(), "src");
        foreach (var (file, expression, _) in ComputedKeys)
        {
            string text = File.ReadAllText(Path.Combine(src, file));
            bool found = NewConfigException().Matches(text).Any(m => FirstArgument(text, m.Index + m.Length).Trim() == expression);
            Assert.True(found, $"{file} no longer throws ConfigException({expression}, ...): delete it from ComputedKeys");
        }
        foreach (var key in RobustPresetKeys)
            Assert.Contains($"\"{key}=\"", File.ReadAllText(Path.Combine(src, "LabelNoiseLab", "Studies", "RobustPreset.cs")), StringComparison.Ordinal);
    }

    [Fact]
    public void Layers_below_the_config_do_not_name_config_keys()
    {
        string lib = Path.Combine(ConfigExperimentFilesTests.RepoRoot(), "src", "LabelNoiseLab");
        var offenders = LowerLayers
            .SelectMany(l => Directory.GetFiles(Path.Combine(lib, l), "*.cs", SearchOption.AllDirectories))
            .Where(f => File.ReadAllText(f).Contains("ConfigException", StringComparison.Ordinal))
            .Select(f => Path.GetRelativePath(lib, f))
            .ToList();
        Assert.True(offenders.Count == 0, "ConfigException below the config layer: " + string.Join(", ", offenders));
    }

    [Fact]
    public void Every_option_the_config_maps_is_a_real_option_with_a_real_key()
    {
        Assert.NotEmpty(ExperimentSetup.KeyOfOption);
        foreach (var (option, key) in ExperimentSetup.KeyOfOption)
        {
            Assert.NotNull(ConfigKeys.Find(key));
            var parts = option.Split('.');
            var type = parts[0] switch
            {
                nameof(DataOptions) => typeof(DataOptions),
                nameof(NoiseOptions) => typeof(NoiseOptions),
                _ => throw new InvalidOperationException($"{option}: not a DataOptions or NoiseOptions property"),
            };
            Assert.NotNull(type.GetProperty(parts[1]));
        }
    }

    /// <summary>Bad input the config cannot see before the data is loaded: exit 2, one line, the real key.</summary>
    [Theory]
    [InlineData("data: {name: gaussian-mixture, subset: 5000}", "data.subset")]
    [InlineData("data: {name: gaussian-mixture, val_fraction: 0.0001}", "data.val_fraction")]
    [InlineData("data: {name: gaussian-mixture}\nnoise: {kind: asymmetric, rate: 0.2}", "noise.map")]
    [InlineData("data: {name: gaussian-mixture}\nnoise: {kind: asymmetric, rate: 0.2, map: '3:12'}", "noise.map")]
    [InlineData("data: {name: gaussian-mixture}\nnoise: {kind: transition, T: '0.5,0.5;0.5,0.5'}", "noise.T")]
    [InlineData("data: {name: linear-teacher}\nloss: {kind: mse}\nnoise: {kind: symmetric, rate: 0.1}", "noise.kind")]
    [InlineData("data: {name: gaussian-mixture}\nbatch_size: 5000", "batch_size")]
    [InlineData("data: {name: gaussian-mixture}\noptim: {lr: -1}", "optim.lr")]
    [InlineData("data: {name: gaussian-mixture}\nsam: {rho: -0.1}", "sam.rho")]
    [InlineData("data: {name: gaussian-mixture}\nlabel_noise: {kind: classification, p: 2}", "label_noise.p")]
    public void Bad_input_exits_2_with_one_line_naming_the_real_key(string yaml, string key)
    {
        var (code, _, stderr) = TestCli.Train(_temp.Path, "name: bad\nepochs: 1\n" + yaml + "\n", "--out", _temp.Sub("out"));
        Assert.True(code == 2, $"exit {code}: {stderr}");
        var lines = stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Single(lines);
        Assert.StartsWith($"lnlab: config key '{key}': ", lines[0], StringComparison.Ordinal);
        Assert.DoesNotContain("(Parameter", lines[0], StringComparison.Ordinal);
        Assert.NotNull(ConfigKeys.Find(key));
    }

    [Fact]
    public void A_mapped_option_error_keeps_the_layers_words_on_one_line()
    {
        var e = ExperimentSetup.AsConfigError(new ArgumentOutOfRangeException("DataOptions.Subset", "a subset of 5 samples from s; expected 1..4"));
        Assert.Equal("data.subset", e.Key);
        Assert.Equal("config key 'data.subset': a subset of 5 samples from s; expected 1..4", e.Message);
        Assert.Throws<ArgumentException>(() => ExperimentSetup.AsConfigError(new ArgumentException("x", "DataOptions.Separation")));
    }

    private static HashSet<string> KnownKeys()
    {
        var keys = ConfigKeys.All.Select(k => k.Name).ToHashSet(StringComparer.Ordinal);
        foreach (var yaml in (string[])[new TwoPhaseOptions().ToYaml(), new SpectralTailOptions().ToYaml(), new TwoPhasePaperOptions().ToYaml()])
        {
            foreach (var line in yaml.Split('\n', StringSplitOptions.RemoveEmptyEntries).Where(l => !l.StartsWith('#')))
                keys.Add(line[..line.IndexOf(':', StringComparison.Ordinal)]);
        }
        Assert.Contains("two_phase.rho", keys);
        Assert.Contains("spectral_tail.val_fraction", keys);
        keys.Add(DoubleDescentPreset.ModelsKey);
        keys.UnionWith(RobustPresetKeys);
        return keys;
    }

    private static bool IsKnown(string key, HashSet<string> known)
    {
        if (known.Contains(key))
            return true;
        if (!key.StartsWith("--", StringComparison.Ordinal))
            return false;
        // A flag: declared as an option of the CLI.
        string cli = Path.Combine(ConfigExperimentFilesTests.RepoRoot(), "src", "LabelNoiseLab.Cli");
        return Directory.GetFiles(cli, "*.cs").Any(f => Regex.IsMatch(File.ReadAllText(f), @"new Option<[^>]*>\(""" + Regex.Escape(key) + "\""));
    }

    /// <summary>The text of the first argument of a call whose '(' ends just before <paramref name="start"/>.</summary>
    private static string FirstArgument(string text, int start)
    {
        int depth = 0;
        for (int i = start; i < text.Length; i++)
        {
            char c = text[i];
            if (c == '"')
            {
                for (i++; i < text.Length && text[i] != '"'; i++)
                {
                    if (text[i] == '\\')
                        i++;
                }
                continue;
            }
            if (c is '(' or '[' or '{')
                depth++;
            else if (c is ')' or ']' or '}')
            {
                if (depth == 0)
                    return text[start..i];
                depth--;
            }
            else if (c == ',' && depth == 0)
                return text[start..i];
        }
        return text[start..];
    }

    [GeneratedRegex(@"new\s+ConfigException\s*\(")]
    private static partial Regex NewConfigException();

    [GeneratedRegex("\"((?:[^\"\\\\]|\\\\.)*)\"")]
    private static partial Regex StringLiteral();
}

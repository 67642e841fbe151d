using System.Reflection;
using LabelNoiseLab.Experiments;

namespace LabelNoiseLab.Tests;

public class ConfigTests
{
    [Fact]
    public void Defaults_are_valid_and_typed()
    {
        var c = ExperimentConfig.Default;
        c.Validate();
        Assert.Equal(20, c.Epochs);
        Assert.Equal("sgd", c.OptimKind);
        Assert.Equal([512, 512], c.ModelHidden);
        Assert.Equal([0.9, 0.999], c.OptimBetas);
    }

    [Fact]
    public void Nested_and_dotted_yaml_keys_are_both_accepted()
    {
        var nested = ExperimentConfig.Parse("data:\n  name: mnist\n  subset: 100\noptim: {lr: 0.5}\n");
        var dotted = ExperimentConfig.Parse("data.name: mnist\ndata.subset: 100\noptim.lr: 0.5\n");
        Assert.Equal("mnist", nested.DataName);
        Assert.Equal(100, nested.DataSubset);
        Assert.Equal(0.5, nested.OptimLr);
        Assert.Equal(nested, dotted);
        Assert.NotEqual(ExperimentConfig.Default, nested);
    }

    [Fact]
    public void Lists_parse_from_yaml_and_from_set()
    {
        var c = ExperimentConfig.Parse("model:\n  hidden: [64, 32, 16]\n");
        Assert.Equal([64, 32, 16], c.ModelHidden);
        var s = ExperimentConfig.Parse("", overrides: ["model.hidden=128,8"]);
        Assert.Equal([128, 8], s.ModelHidden);
        var b = ExperimentConfig.Parse("", overrides: ["model.hidden=[7]", "optim.betas=0.5,0.75"]);
        Assert.Equal([7], b.ModelHidden);
        Assert.Equal([0.5, 0.75], b.OptimBetas);
        Assert.Empty(ExperimentConfig.Parse("model.hidden: []").ModelHidden);
    }

    [Fact]
    public void Set_overrides_yaml_and_is_typed()
    {
        var c = ExperimentConfig.Parse(
            "epochs: 5\noptim:\n  lr: 0.1\n", "x.yaml",
            ["epochs=7", "optim.nesterov=true", "noise.kind=symmetric", "noise.rate=0.4", "name=abc"]);
        Assert.Equal(7, c.Epochs);
        Assert.Equal(0.1, c.OptimLr);
        Assert.True(c.OptimNesterov);
        Assert.Equal("symmetric", c.NoiseKind);
        Assert.Equal(0.4, c.NoiseRate);
        Assert.Equal("abc", c.Name);
    }

    [Fact]
    public void Noise_map_and_transition_matrix_parse()
    {
        var c = ExperimentConfig.Parse("noise:\n  kind: asymmetric\n  map: 6:0,0:6,2:4\n  T: \"0.6,0.4;0.25,0.75\"\n");
        Assert.Equal([new(0, 6), new(2, 4), new(6, 0)], c.NoiseMap);
        Assert.Equal(2, c.NoiseTransition.Count);
        Assert.Equal([0.25, 0.75], c.NoiseTransition[1]);
    }

    [Theory]
    [InlineData("optim.lrr: 0.1", "optim.lrr", "optim.lr")]
    [InlineData("lr: 0.1", "lr", "optim.lr")]
    [InlineData("data:\n  nmae: mnist", "data.nmae", "data.name")]
    [InlineData("epoch: 3", "epoch", "epochs")]
    public void Unknown_key_names_the_key_and_suggests_the_nearest(string yaml, string key, string suggestion)
    {
        var e = Assert.Throws<ConfigException>(() => ExperimentConfig.Parse(yaml, "f.yaml"));
        Assert.Equal(key, e.Key);
        Assert.StartsWith($"config key '{key}': unknown key", e.Message, StringComparison.Ordinal);
        Assert.Contains($"did you mean '{suggestion}'", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Unknown_key_without_near_match_has_no_suggestion()
    {
        var e = Assert.Throws<ConfigException>(() => ExperimentConfig.Parse("", overrides: ["completely_unrelated_thing=1"]));
        Assert.Equal("completely_unrelated_thing", e.Key);
        Assert.DoesNotContain("did you mean", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("epochs=ten", "epochs", "an integer")]
    [InlineData("optim.lr=fast", "optim.lr", "a number")]
    [InlineData("optim.nesterov=maybe", "optim.nesterov", "true or false")]
    [InlineData("model.hidden=512,x", "model.hidden", "a list of integers")]
    [InlineData("optim.kind=lbfgs", "optim.kind", "one of sgd|adam|adamw")]
    [InlineData("noise.map=0-6", "noise.map", "a class map")]
    [InlineData("epochs=1.5", "epochs", "an integer")]
    [InlineData("optim.lr=nan", "optim.lr", "a number")]
    public void Wrong_type_names_key_and_expected_type(string set, string key, string expected)
    {
        var e = Assert.Throws<ConfigException>(() => ExperimentConfig.Parse("", overrides: [set]));
        Assert.Equal(key, e.Key);
        Assert.Contains("expected " + expected, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Wrong_type_in_yaml_names_file_and_line()
    {
        var e = Assert.Throws<ConfigException>(() => ExperimentConfig.Parse("name: x\nepochs: [1, 2]\n", "cfg.yaml"));
        Assert.Equal("epochs", e.Key);
        Assert.Contains("cfg.yaml line 2", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("noise.rate=1.5", "noise.rate")]
    [InlineData("noise.rate=-0.1", "noise.rate")]
    [InlineData("optim.lr=0", "optim.lr")]
    [InlineData("optim.lr=-1", "optim.lr")]
    [InlineData("epochs=0", "epochs")]
    [InlineData("batch_size=0", "batch_size")]
    [InlineData("model.hidden=512,0", "model.hidden")]
    [InlineData("data.val_fraction=1", "data.val_fraction")]
    [InlineData("data.val_fraction=-0.1", "data.val_fraction")]
    [InlineData("optim.momentum=1", "optim.momentum")]
    [InlineData("model.dropout=1", "model.dropout")]
    [InlineData("optim.betas=0.9", "optim.betas")]
    [InlineData("noise.T=0.5,0.6;0.5,0.4", "noise.T")]
    [InlineData("noise.T=1,0", "noise.T")]
    [InlineData("name=a/b", "name")]
    public void Out_of_range_values_name_the_key(string set, string key)
    {
        var e = Assert.Throws<ConfigException>(() => ExperimentConfig.Parse("", overrides: [set]));
        Assert.Equal(key, e.Key);
        Assert.StartsWith($"config key '{key}': must", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("noise.rate=1")]
    [InlineData("noise.rate=0")]
    [InlineData("optim.momentum=0.99")]
    [InlineData("data.val_fraction=0")]
    public void Boundary_values_inside_the_range_are_accepted(string set) =>
        ExperimentConfig.Parse("", overrides: [set]);

    [Fact]
    public void Cross_key_rules_name_the_missing_key()
    {
        // Asymmetric noise without a map uses the data set's built-in map, so it is valid.
        Assert.Empty(ExperimentConfig.Parse("noise.kind: asymmetric").NoiseMap);
        Assert.Equal("noise.T", Assert.Throws<ConfigException>(() => ExperimentConfig.Parse("noise.kind: transition")).Key);
        Assert.Equal("data.path", Assert.Throws<ConfigException>(() => ExperimentConfig.Parse("data.name: csv")).Key);
    }

    [Fact]
    public void Validate_catches_values_set_in_code()
    {
        var c = ExperimentConfig.Default with { Epochs = 0 };
        Assert.Equal("epochs", Assert.Throws<ConfigException>(c.Validate).Key);
    }

    [Fact]
    public void Same_key_twice_is_an_error()
    {
        var e = Assert.Throws<ConfigException>(() => ExperimentConfig.Parse("data:\n  name: mnist\ndata.name: cifar10\n", "d.yaml"));
        Assert.Equal("data.name", e.Key);
        Assert.Contains("twice", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("name: x\noptim:\n  lr: [0.1\n  momentum: 0.9\n", 3)]
    [InlineData("name: x\noptim:\n  lr: 0.1\n momentum: 0.9\n", 4)]
    [InlineData("name: x\nseed: 1\nepochs: \"3\n", 3)]
    public void Malformed_yaml_names_file_and_line(string yaml, int line)
    {
        var e = Assert.Throws<InputException>(() => ExperimentConfig.Parse(yaml, "bad.yaml"));
        Assert.IsNotType<ConfigException>(e);
        Assert.StartsWith($"bad.yaml: malformed YAML at line {line}: ", e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void Top_level_list_is_rejected()
    {
        var e = Assert.Throws<InputException>(() => ExperimentConfig.Parse("- a\n- b\n", "list.yaml"));
        Assert.Contains("list.yaml", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Missing_file_names_the_file()
    {
        string path = Path.Combine(Path.GetTempPath(), "lnlab-no-such-dir-" + Guid.NewGuid(), "c.yaml");
        var e = Assert.Throws<InputException>(() => ExperimentConfig.Load(path));
        Assert.Contains(path, e.Message, StringComparison.Ordinal);
        Assert.Contains("not found", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ToYaml_round_trips_a_config_with_every_kind_of_value()
    {
        var c = ExperimentConfig.Parse(
            "name: round.trip_1\nseed: -3\nnoise:\n  kind: transition\n  rate: 0.3\n  T: \"0.7,0.3;0.1,0.9\"\n  map: \"1:7,3:5\"\n  include_true: true\n" +
            "model:\n  hidden: [3, 1000]\n  activation: gelu\noptim:\n  kind: adamw\n  lr: 0.000123456789\n  eps: 1e-12\n  betas: [0.85, 0.9999]\n" +
            "data:\n  name: csv\n  path: \"/tmp/it's a b:c.csv\"\n  val_fraction: 0.1\n",
            "t.yaml");
        string yaml = c.ToYaml();
        var back = ExperimentConfig.Parse(yaml, "roundtrip.yaml");
        Assert.Equal(c, back);
        Assert.Equal(c.GetHashCode(), back.GetHashCode());
        Assert.Equal(yaml, back.ToYaml());
        Assert.Equal(ExperimentConfig.Default, ExperimentConfig.Parse(ExperimentConfig.Default.ToYaml()));
    }

    [Fact]
    public void ToYaml_writes_every_key()
    {
        string yaml = ExperimentConfig.Default.ToYaml();
        foreach (var key in ConfigKeys.All)
        {
            string leaf = key.Name[(key.Name.LastIndexOf('.') + 1)..];
            Assert.Contains(leaf + ": ", yaml, StringComparison.Ordinal);
        }
        Assert.Contains("eps: 1.0E-08", yaml, StringComparison.Ordinal);
    }

    [Fact]
    public void Every_property_has_exactly_one_key_in_the_table()
    {
        // Change one property at a time (by reflection): exactly one key must see the change,
        // and resetting that key to its default must restore the default config. A property
        // with no key, two keys reading one property, or a setter writing the wrong property fails.
        var props = typeof(ExperimentConfig).GetProperties(BindingFlags.Public | BindingFlags.Instance)
            .Where(p => p.CanWrite).ToList();
        Assert.Equal(props.Count, ConfigKeys.All.Count);
        Assert.Equal(ConfigKeys.All.Count, ConfigKeys.All.Select(k => k.Name).Distinct().Count());
        var defaults = ExperimentConfig.Default;
        foreach (var prop in props)
        {
            var changed = ExperimentConfig.Default with { };
            object sentinel = prop.PropertyType switch
            {
                var t when t == typeof(int) => 12345,
                var t when t == typeof(double) => 0.123,
                var t when t == typeof(bool) => !(bool)prop.GetValue(defaults)!,
                var t when t == typeof(string) => "zz",
                var t when t == typeof(IReadOnlyList<int>) => new List<int> { 9 },
                var t when t == typeof(IReadOnlyList<double>) => new List<double> { 0.5 },
                var t when t == typeof(IReadOnlyList<KeyValuePair<int, int>>) => new List<KeyValuePair<int, int>> { new(1, 2) },
                var t when t == typeof(IReadOnlyList<IReadOnlyList<double>>) => new List<IReadOnlyList<double>> { new List<double> { 1 } },
                var t => throw new InvalidOperationException($"no sentinel for {t}"),
            };
            prop.SetValue(changed, sentinel);
            var seeing = ConfigKeys.All.Where(k => !k.ValueEquals(defaults, changed)).ToList();
            Assert.True(seeing.Count == 1, $"{prop.Name}: {seeing.Count} keys see it change");
            Assert.Equal(defaults, seeing[0].ApplyDefault(changed));
        }
    }

    [Fact]
    public void Get_by_name_reads_the_typed_value()
    {
        var c = ExperimentConfig.Parse("", overrides: ["optim.lr=0.25"]);
        Assert.Equal(0.25, c.Get("optim.lr"));
        Assert.Throws<ConfigException>(() => c.Get("optim.nope"));
    }

    [Fact]
    public void Set_without_equals_is_input_error()
    {
        var e = Assert.Throws<InputException>(() => ExperimentConfig.Parse("", overrides: ["epochs"]));
        Assert.Contains("key=value", e.Message, StringComparison.Ordinal);
    }
}

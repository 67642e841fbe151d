using System.Globalization;

namespace LabelNoiseLab.Experiments;

/// <summary>
/// A raw config value before it is typed: one scalar (from YAML or <c>--set key=value</c>) or a
/// YAML sequence of scalars. <see cref="Source"/> says where it came from, for error messages.
/// </summary>
internal sealed class ConfigValue
{
    private ConfigValue(string? scalar, IReadOnlyList<string>? items, string source)
    {
        Scalar = scalar;
        Items = items;
        Source = source;
    }

    public string? Scalar { get; }

    public IReadOnlyList<string>? Items { get; }

    /// <summary><c>file.yaml line 12</c> or <c>--set</c>.</summary>
    public string Source { get; }

    public static ConfigValue OfScalar(string scalar, string source) => new(scalar, null, source);

    public static ConfigValue OfList(IReadOnlyList<string> items, string source) => new(null, items, source);

    public override string ToString() => Scalar ?? "[" + string.Join(", ", Items!) + "]";
}

/// <summary>
/// One entry of the config key table (<see cref="ConfigKeys"/>): name, type, default, validator,
/// and a getter/setter into <see cref="ExperimentConfig"/>. Everything the loader, the validator,
/// <see cref="ExperimentConfig.ToYaml"/> and equality do goes through this table.
/// </summary>
public abstract class ConfigKey(string name, string description)
{
    /// <summary>Dotted name as written in YAML and <c>--set</c>: <c>optim.lr</c>.</summary>
    public string Name { get; } = name;

    /// <summary>What the key means and its special values (<c>0 = off</c>), one line.</summary>
    public string Description { get; } = description;

    /// <summary>What the key expects, in words: "an integer", "one of sgd|adam|adamw".</summary>
    public abstract string TypeName { get; }

    /// <summary>The key's value in <paramref name="config"/>, boxed (a string, int, double, bool or list).</summary>
    public abstract object? GetBoxed(ExperimentConfig config);

    /// <summary>The default value written as YAML.</summary>
    public abstract string DefaultYaml { get; }

    internal abstract ExperimentConfig Apply(ExperimentConfig config, ConfigValue value);

    internal abstract ExperimentConfig ApplyDefault(ExperimentConfig config);

    /// <summary>Throws <see cref="ConfigException"/> if the value is out of range.</summary>
    internal abstract void Validate(ExperimentConfig config);

    internal abstract string FormatYaml(ExperimentConfig config);

    internal abstract bool ValueEquals(ExperimentConfig a, ExperimentConfig b);

    internal abstract int ValueHash(ExperimentConfig config);
}

/// <summary>A typed key; see <see cref="ConfigKeys"/> for the table.</summary>
internal sealed class ConfigKey<T>(
    string name,
    ConfigType<T> type,
    T defaultValue,
    Func<ExperimentConfig, T> get,
    Func<ExperimentConfig, T, ExperimentConfig> set,
    Func<T, string?>? check,
    string description) : ConfigKey(name, description)
{
    public ConfigType<T> Type { get; } = type;

    public T Default { get; } = defaultValue;

    public override string TypeName => Type.Name;

    public override string DefaultYaml => Type.Format(Default);

    public T Get(ExperimentConfig config) => get(config);

    public override object? GetBoxed(ExperimentConfig config) => get(config);

    internal override ExperimentConfig Apply(ExperimentConfig config, ConfigValue value)
    {
        string? problem = null;
        T parsed;
        try
        {
            parsed = Type.Parse(value);
        }
        catch (FormatException e)
        {
            parsed = default!;
            problem = e.Message;
        }
        catch (OverflowException)
        {
            parsed = default!;
            problem = "out of range";
        }
        if (problem is not null)
            throw new ConfigException(Name, $"expected {Type.Name}, got '{value}' ({(problem.Length > 0 ? problem + "; " : "")}{value.Source})");
        string? rangeProblem = check?.Invoke(parsed);
        if (rangeProblem is not null)
            throw new ConfigException(Name, $"{rangeProblem}, got {Type.Format(parsed)} ({value.Source})");
        return set(config, parsed);
    }

    internal override ExperimentConfig ApplyDefault(ExperimentConfig config) => set(config, Default);

    internal override void Validate(ExperimentConfig config)
    {
        var value = get(config);
        if (value is null)
            throw new ConfigException(Name, $"expected {Type.Name}, got nothing");
        string? problem = check?.Invoke(value);
        if (problem is not null)
            throw new ConfigException(Name, $"{problem}, got {Type.Format(value)}");
    }

    internal override string FormatYaml(ExperimentConfig config) => Type.Format(get(config));

    internal override bool ValueEquals(ExperimentConfig a, ExperimentConfig b) => Type.Equal(get(a), get(b));

    internal override int ValueHash(ExperimentConfig config) => Type.Hash(get(config));
}

/// <summary>
/// How a config value is parsed from a <see cref="ConfigValue"/>, written back as YAML and compared.
/// <see cref="Parse"/> throws <see cref="FormatException"/> with a short reason.
/// </summary>
internal sealed class ConfigType<T>(
    string name,
    Func<ConfigValue, T> parse,
    Func<T, string> format,
    Func<T, T, bool>? equal = null,
    Func<T, int>? hash = null)
{
    public string Name { get; } = name;

    public T Parse(ConfigValue value) => parse(value);

    public string Format(T value) => format(value);

    public bool Equal(T a, T b) => equal is null ? EqualityComparer<T>.Default.Equals(a, b) : equal(a, b);

    public int Hash(T value) => hash is null ? (value is null ? 0 : EqualityComparer<T>.Default.GetHashCode(value)) : hash(value);
}

/// <summary>The value types config keys use.</summary>
internal static class ConfigTypes
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    public static readonly ConfigType<string> Text = new("a string", v => Scalar(v), QuoteYaml);

    public static readonly ConfigType<int> Int = new("an integer", v => ParseInt(Scalar(v)), i => i.ToString(Inv));

    public static readonly ConfigType<double> Number = new("a number", v => ParseDouble(Scalar(v)), FormatDouble);

    public static readonly ConfigType<bool> Bool = new("true or false", v => ParseBool(Scalar(v)), b => b ? "true" : "false");

    public static readonly ConfigType<IReadOnlyList<int>> IntList = new(
        "a list of integers",
        v => [.. ListItems(v).Select(ParseInt)],
        l => "[" + string.Join(", ", l.Select(i => i.ToString(Inv))) + "]",
        (a, b) => a.SequenceEqual(b),
        l => l.Aggregate(17, (h, x) => h * 31 + x));

    public static readonly ConfigType<IReadOnlyList<double>> NumberList = new(
        "a list of numbers",
        v => [.. ListItems(v).Select(ParseDouble)],
        l => "[" + string.Join(", ", l.Select(FormatDouble)) + "]",
        (a, b) => a.SequenceEqual(b),
        l => l.Aggregate(17, (h, x) => h * 31 + x.GetHashCode()));

    /// <summary>Class map <c>"0:6,6:0"</c>: given label for each listed true class, sorted by class.</summary>
    public static readonly ConfigType<IReadOnlyList<KeyValuePair<int, int>>> ClassMap = new(
        "a class map like \"0:6,6:0\"",
        v => ParseClassMap(Scalar(v)),
        m => QuoteYaml(string.Join(",", m.Select(p => $"{p.Key.ToString(Inv)}:{p.Value.ToString(Inv)}"))),
        (a, b) => a.SequenceEqual(b),
        m => m.Aggregate(17, (h, p) => h * 31 + p.Key * 7 + p.Value));

    /// <summary>Matrix <c>"0.6,0.4;0.4,0.6"</c> (rows by ';', entries by ','), or a YAML list of row strings.</summary>
    public static readonly ConfigType<IReadOnlyList<IReadOnlyList<double>>> Matrix = new(
        "a matrix like \"0.6,0.4;0.4,0.6\"",
        ParseMatrix,
        m => QuoteYaml(string.Join(";", m.Select(r => string.Join(",", r.Select(FormatDouble))))),
        (a, b) => a.Count == b.Count && a.Zip(b).All(p => p.First.SequenceEqual(p.Second)),
        m => m.Aggregate(17, (h, r) => h * 31 + r.Count));

    public static ConfigType<string> Choice(params string[] allowed) => new(
        "one of " + string.Join("|", allowed),
        v =>
        {
            string s = Scalar(v);
            return allowed.Contains(s, StringComparer.Ordinal) ? s : throw new FormatException("");
        },
        s => s);

    public static string FormatDouble(double d)
    {
        if (double.IsNaN(d))
            return ".nan";
        if (double.IsInfinity(d))
            return d > 0 ? ".inf" : "-.inf";
        string s = d.ToString("R", Inv);
        // "1E-08" is a string to YAML 1.1 readers (PyYAML); "1.0E-08" is a float to all of them.
        int e = s.IndexOf('E', StringComparison.Ordinal);
        if (e >= 0 && !s.Contains('.', StringComparison.Ordinal))
            s = s[..e] + ".0" + s[e..];
        return s;
    }

    private static string Scalar(ConfigValue v) =>
        v.Scalar ?? throw new FormatException("a list where a single value belongs");

    private static IEnumerable<string> ListItems(ConfigValue v)
    {
        if (v.Items is not null)
            return v.Items;
        string s = v.Scalar!.Trim();
        if (s.StartsWith('[') && s.EndsWith(']'))
            s = s[1..^1];
        return s.Trim().Length == 0 ? [] : s.Split(',');
    }

    // An empty FormatException message means "the value shown is simply not of this type".
    private static int ParseInt(string s) =>
        int.TryParse(s.Trim(), NumberStyles.AllowLeadingSign, Inv, out int i) ? i
        : long.TryParse(s.Trim(), NumberStyles.AllowLeadingSign, Inv, out _) ? throw new OverflowException()
        : throw new FormatException("");

    private static double ParseDouble(string s)
    {
        if (!double.TryParse(s.Trim(), NumberStyles.Float, Inv, out double d))
            throw new FormatException("");
        return double.IsFinite(d) ? d : throw new FormatException("not finite");
    }

    private static bool ParseBool(string s) => s.Trim() switch
    {
        "true" or "True" or "TRUE" => true,
        "false" or "False" or "FALSE" => false,
        _ => throw new FormatException(""),
    };

    private static List<KeyValuePair<int, int>> ParseClassMap(string s)
    {
        var map = new SortedDictionary<int, int>();
        foreach (var part in s.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var ends = part.Split(':');
            if (ends.Length != 2)
                throw new FormatException($"'{part}' is not from:to");
            int from = ParseInt(ends[0]), to = ParseInt(ends[1]);
            if (from < 0 || to < 0)
                throw new FormatException("negative class");
            if (!map.TryAdd(from, to))
                throw new FormatException($"class {from} mapped twice");
        }
        return [.. map];
    }

    private static List<IReadOnlyList<double>> ParseMatrix(ConfigValue v)
    {
        IEnumerable<string> rows = v.Items ?? v.Scalar!.Split(';');
        var result = new List<IReadOnlyList<double>>();
        foreach (var row in rows)
        {
            if (row.Trim().Length == 0)
                continue;
            result.Add([.. row.Split(',').Select(ParseDouble)]);
        }
        return result;
    }

    private static string QuoteYaml(string s) => "'" + s.Replace("'", "''", StringComparison.Ordinal) + "'";
}

namespace LabelNoiseLab.Experiments;

/// <summary>
/// The <c>--set key=value</c> handling shared by presets whose settings are a record with a
/// table of (key, getter, setter): one place parses the assignment and turns a bad key or value
/// into a <see cref="ConfigException"/> naming the key.
/// </summary>
internal static class PresetSettings
{
    /// <summary>
    /// Applies one <c>key=value</c> assignment through the setter of its table entry; a malformed
    /// assignment is an <see cref="InputException"/>, an unknown key or bad value a <see cref="ConfigException"/>.
    /// </summary>
    public static T Apply<T>(T settings, string assignment, string preset,
        IReadOnlyList<(string Key, Func<T, string> Get, Func<T, string, T> Set)> table)
    {
        int eq = assignment.IndexOf('=', StringComparison.Ordinal);
        if (eq <= 0)
            throw new InputException($"--set '{assignment}': expected key=value");
        string key = assignment[..eq].Trim(), value = assignment[(eq + 1)..].Trim();
        foreach (var (k, _, set) in table)
        {
            if (k != key)
                continue;
            try
            {
                return set(settings, value);
            }
            catch (Exception e) when (e is FormatException or OverflowException)
            {
                throw new ConfigException(key, $"'{value}' is not a valid value");
            }
        }
        throw new ConfigException(key, $"unknown key for the {preset} preset; known: " + string.Join(", ", table.Select(t => t.Key)));
    }

    /// <summary>The settings as YAML, one <c>key: value</c> line per table entry, after the comment <paramref name="title"/>.</summary>
    public static string ToYaml<T>(T settings, string title, IReadOnlyList<(string Key, Func<T, string> Get, Func<T, string, T> Set)> table)
    {
        ArgumentNullException.ThrowIfNull(table);
        var sb = new System.Text.StringBuilder("# ").Append(title).Append(", fully resolved\n");
        foreach (var (k, get, _) in table)
            sb.Append(k).Append(": ").Append(get(settings)).Append('\n');
        return sb.ToString();
    }
}

/// <summary>The value formats of the preset settings tables (<c>using static</c>): F formats, I/L/D parse.</summary>
internal static class PresetValues
{
    public static string F(double v) => ConfigTypes.FormatDouble(v);
    public static string F(long v) => v.ToString(System.Globalization.CultureInfo.InvariantCulture);
    public static int I(string s) => int.Parse(s, System.Globalization.NumberStyles.AllowLeadingSign, System.Globalization.CultureInfo.InvariantCulture);
    public static long L(string s) => long.Parse(s, System.Globalization.NumberStyles.AllowLeadingSign, System.Globalization.CultureInfo.InvariantCulture);
    public static double D(string s) => double.Parse(s, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture);
}

namespace LabelNoiseLab.Experiments;

/// <summary>
/// The <c>--set key=value</c> handling shared by presets whose settings are a record with a
/// table of (key, getter, setter): one place parses the assignment and turns a bad key or value
/// into a <see cref="ConfigException"/> naming the key.
/// </summary>
public static class PresetSettings
{
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
}

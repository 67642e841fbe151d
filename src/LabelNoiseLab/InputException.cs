namespace LabelNoiseLab;

/// <summary>
/// Bad input from the user: a missing or corrupt file, an invalid or unknown config key.
/// The CLI prints <see cref="Exception.Message"/> as one line and exits with code 2.
/// The message always names the file or key and says what was expected. It is one line of
/// printable text: control characters (from a file's content or name) are escaped as <c>\uXXXX</c>.
/// </summary>
public class InputException(string message) : Exception(Printable(message))
{
    /// <summary><paramref name="text"/> with control characters and line or paragraph separators written as <c>\uXXXX</c>.</summary>
    public static string Printable(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (!text.Any(NeedsEscape))
            return text;
        var sb = new System.Text.StringBuilder(text.Length + 16);
        foreach (char c in text)
        {
            if (NeedsEscape(c))
                sb.Append("\\u").Append(((int)c).ToString("X4", System.Globalization.CultureInfo.InvariantCulture));
            else
                sb.Append(c);
        }
        return sb.ToString();
    }

    private static bool NeedsEscape(char c) => char.IsControl(c) || c is '\u2028' or '\u2029';
}

/// <summary>A data file that is missing, corrupt, truncated or inconsistent.</summary>
public sealed class DataException(string file, string problem)
    : InputException($"{file}: {problem}")
{
    /// <summary>The data file that is wrong, as given (path or name).</summary>
    public string File { get; } = file;
}

/// <summary>An invalid, out-of-range or unknown configuration key.</summary>
public sealed class ConfigException(string key, string problem)
    : InputException($"config key '{key}': {problem}")
{
    /// <summary>The configuration key that is wrong, e.g. <c>training.lr</c>.</summary>
    public string Key { get; } = key;
}

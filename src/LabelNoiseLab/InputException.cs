namespace LabelNoiseLab;

/// <summary>
/// Bad input from the user: a missing or corrupt file, an invalid or unknown config key.
/// The CLI prints <see cref="Exception.Message"/> as one line and exits with code 2.
/// The message always names the file or key and says what was expected.
/// </summary>
public class InputException(string message) : Exception(message);

/// <summary>A data file that is missing, corrupt, truncated or inconsistent.</summary>
public sealed class DataException(string file, string problem)
    : InputException($"{file}: {problem}")
{
    public string File { get; } = file;
}

/// <summary>An invalid, out-of-range or unknown configuration key.</summary>
public sealed class ConfigException(string key, string problem)
    : InputException($"config key '{key}': {problem}")
{
    public string Key { get; } = key;
}

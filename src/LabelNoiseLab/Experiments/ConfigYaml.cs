using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace LabelNoiseLab.Experiments;

/// <summary>
/// Reads a YAML config into flat dotted keys: <c>data: {name: mnist}</c> and <c>data.name: mnist</c>
/// both give <c>data.name</c>. Sequences of scalars are list values; nothing else is typed here.
/// </summary>
internal static class ConfigYaml
{
    public static List<(string Key, ConfigValue Value)> ReadFlat(string yaml, string source)
    {
        var stream = new YamlStream();
        var parser = new Parser(new StringReader(yaml));
        try
        {
            stream.Load(parser);
        }
        catch (YamlException e)
        {
            throw new InputException($"{source}: malformed YAML at line {e.Start.Line}: {FirstLine(e.Message)}");
        }
        catch (InvalidOperationException)
        {
            // YamlDotNet's scanner throws this (without a position) on some unterminated flow
            // collections; the last event it parsed is the nearest position we have.
            long line = parser.Current?.Start.Line ?? 1;
            throw new InputException($"{source}: malformed YAML at line {line}: unterminated or invalid structure");
        }
        var result = new List<(string, ConfigValue)>();
        if (stream.Documents.Count == 0)
            return result;
        if (stream.Documents.Count > 1)
            throw new InputException($"{source}: expected one YAML document, found {stream.Documents.Count}");
        var root = stream.Documents[0].RootNode;
        if (root is YamlScalarNode { Value: null or "" or "~" or "null" })
            return result;
        if (root is not YamlMappingNode map)
            throw new InputException($"{source}: line {root.Start.Line}: expected a mapping of config keys");
        var seen = new Dictionary<string, long>(StringComparer.Ordinal);
        Flatten(map, "", source, result, seen);
        return result;
    }

    private static void Flatten(
        YamlMappingNode map, string prefix, string source,
        List<(string, ConfigValue)> result, Dictionary<string, long> seen)
    {
        foreach (var (keyNode, valueNode) in map.Children)
        {
            if (keyNode is not YamlScalarNode { Value: { Length: > 0 } keyText })
                throw new InputException($"{source}: line {keyNode.Start.Line}: expected a plain key");
            string key = prefix + keyText;
            string where = $"{source} line {valueNode.Start.Line}";
            switch (valueNode)
            {
                case YamlMappingNode child:
                    Flatten(child, key + ".", source, result, seen);
                    break;
                case YamlSequenceNode seq:
                    var items = new List<string>();
                    foreach (var item in seq.Children)
                    {
                        if (item is not YamlScalarNode scalarItem)
                            throw new ConfigException(key, $"expected a list of plain values ({source} line {item.Start.Line})");
                        items.Add(scalarItem.Value ?? "");
                    }
                    Add(key, ConfigValue.OfList(items, where), keyNode.Start.Line);
                    break;
                case YamlScalarNode scalar:
                    string value = scalar.Value ?? "";
                    if (scalar.Style == ScalarStyle.Plain && value is "~" or "null")
                        value = "";
                    Add(key, ConfigValue.OfScalar(value, where), keyNode.Start.Line);
                    break;
                default:
                    throw new ConfigException(key, $"unsupported YAML value ({where})");
            }
        }

        void Add(string key, ConfigValue value, long line)
        {
            if (seen.TryGetValue(key, out long first))
                throw new ConfigException(key, $"given twice ({source} lines {first} and {line})");
            seen[key] = line;
            result.Add((key, value));
        }
    }

    private static string FirstLine(string message)
    {
        int nl = message.IndexOfAny(['\r', '\n']);
        return nl < 0 ? message : message[..nl];
    }
}

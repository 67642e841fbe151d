using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace LabelNoiseLab.RunFiles;

/// <summary>
/// The safetensors format (https://github.com/huggingface/safetensors), float32 only:
/// 8-byte little-endian header length N, N bytes of UTF-8 JSON
/// <c>{"name": {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]}, ..., "__metadata__": {...}}</c>
/// padded with spaces to a multiple of 8, then the tensors' little-endian bytes, contiguous, in
/// header order; offsets are relative to the start of the data section.
/// </summary>
public static class Safetensors
{
    /// <summary>The header key of the string metadata (the safetensors convention).</summary>
    public const string MetadataKey = "__metadata__";

    /// <summary>Refuse headers larger than this (the reference implementation uses 100 MB).</summary>
    private const long MaxHeaderBytes = 100_000_000;

    /// <summary>Writes the tensors (atomically) in the given order.</summary>
    public static void Save(
        string path,
        IEnumerable<(string Name, Tensor Tensor)> tensors,
        IDictionary<string, string>? metadata = null)
    {
        var list = tensors.ToList();
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (name, _) in list)
        {
            if (name.Length == 0 || name == MetadataKey)
                throw new ArgumentException($"invalid tensor name '{name}'", nameof(tensors));
            if (!names.Add(name))
                throw new ArgumentException($"tensor name '{name}' appears twice", nameof(tensors));
        }

        byte[] header = BuildHeader(list, metadata);
        AtomicFile.Write(path, stream =>
        {
            Span<byte> lengthBytes = stackalloc byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(lengthBytes, (ulong)header.Length);
            stream.Write(lengthBytes);
            stream.Write(header);
            foreach (var (_, tensor) in list)
                WriteFloats(stream, tensor.Span);
        });
    }

    /// <summary>Reads every tensor (named, in file order) and the metadata; <see cref="DataException"/> on any inconsistency.</summary>
    public static SafetensorsFile Load(string path)
    {
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new DataException(path, "file not found");
        }
        return Parse(bytes, path);
    }

    /// <summary>
    /// Copies the file's tensors into existing tensors (a model's parameters). A name missing from
    /// the file or a shape mismatch is a <see cref="DataException"/>; so is a tensor in the file that
    /// nobody asked for, unless <paramref name="strict"/> is false.
    /// </summary>
    public static IReadOnlyDictionary<string, string> LoadInto(
        string path, IEnumerable<(string Name, Tensor Tensor)> parameters, bool strict = true)
    {
        var file = Load(path);
        var wanted = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (name, target) in parameters)
        {
            wanted.Add(name);
            if (!file.Tensors.TryGetValue(name, out var source))
                throw new DataException(path, $"no tensor '{name}' in the file (it holds {Describe(file.Tensors.Keys)})");
            if (!source.SameShape(target))
                throw new DataException(path, $"tensor '{name}' has shape {source.ShapeString} in the file, expected {target.ShapeString}");
            source.Span.CopyTo(target.Span);
        }
        if (strict)
        {
            var extra = file.Tensors.Keys.Where(n => !wanted.Contains(n)).ToList();
            if (extra.Count > 0)
                throw new DataException(path, $"unexpected tensor(s) {Describe(extra)} in the file");
        }
        return file.Metadata;
    }

    internal static SafetensorsFile Parse(byte[] bytes, string path)
    {
        if (bytes.Length < 8)
            throw new DataException(path, $"truncated: {bytes.Length} bytes, a safetensors file starts with an 8-byte header length");
        ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        if (headerLength > (ulong)(bytes.Length - 8))
            throw new DataException(path, $"header length {headerLength} is beyond the file size ({bytes.Length} bytes)");
        if (headerLength > MaxHeaderBytes)
            throw new DataException(path, $"header length {headerLength} exceeds {MaxHeaderBytes} bytes");
        int dataStart = 8 + (int)headerLength;
        long dataLength = bytes.Length - dataStart;

        var entries = new List<(string Name, int[] Shape, long Begin, long End)>();
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        var names = new HashSet<string>(StringComparer.Ordinal);
        bool sawMetadata = false;
        try
        {
            using var doc = JsonDocument.Parse(bytes.AsMemory(8, (int)headerLength));
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw new DataException(path, "header is not a JSON object");
            foreach (var prop in doc.RootElement.EnumerateObject())
            {
                if (prop.Name == MetadataKey)
                {
                    if (prop.Value.ValueKind != JsonValueKind.Object)
                        throw new DataException(path, "__metadata__ is not an object");
                    if (sawMetadata)
                        throw new DataException(path, "__metadata__ appears twice");
                    sawMetadata = true;
                    foreach (var m in prop.Value.EnumerateObject())
                    {
                        if (metadata.ContainsKey(m.Name))
                            throw new DataException(path, $"__metadata__ key '{m.Name}' appears twice");
                        metadata[m.Name] = m.Value.ValueKind == JsonValueKind.String
                            ? m.Value.GetString()!
                            : throw new DataException(path, $"__metadata__ value '{m.Name}' is not a string");
                    }
                    continue;
                }
                if (!names.Add(prop.Name))
                    throw new DataException(path, $"tensor '{prop.Name}' appears twice in the header");
                entries.Add(ReadEntry(prop, path));
            }
        }
        catch (JsonException e)
        {
            throw new DataException(path, $"header is not valid JSON ({e.Message})");
        }
        catch (InvalidOperationException e)
        {
            throw new DataException(path, $"header has an unexpected JSON layout ({e.Message})");
        }

        foreach (var (name, shape, begin, end) in entries)
        {
            long elements = shape.Aggregate(1L, (n, d) => n * d);
            if (begin < 0 || end < begin || end > dataLength)
                throw new DataException(path, $"tensor '{name}': data_offsets [{begin}, {end}] outside the data section of {dataLength} bytes");
            if (end - begin != elements * sizeof(float))
                throw new DataException(path, $"tensor '{name}': data_offsets [{begin}, {end}] hold {end - begin} bytes, shape [{string.Join(", ", shape)}] needs {elements * sizeof(float)}");
        }
        // The buffers must tile the data section exactly: no gaps, no overlaps, nothing left over.
        long covered = 0;
        foreach (var (name, _, begin, end) in entries.OrderBy(e => e.Begin).ThenBy(e => e.End))
        {
            if (begin != covered)
                throw new DataException(path, $"tensor '{name}': data_offsets start at {begin}, expected {covered} (gap or overlap)");
            covered = end;
        }
        if (covered != dataLength)
            throw new DataException(path, $"data section has {dataLength} bytes, the header accounts for {covered}");

        var tensors = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var (name, shape, begin, end) in entries)
        {
            var tensor = new Tensor(shape) { Name = name };
            ReadFloats(bytes.AsSpan(dataStart + (int)begin, (int)(end - begin)), tensor.Span);
            tensors.Add(name, tensor);
        }
        return new SafetensorsFile(tensors, metadata);
    }

    private static (string, int[], long, long) ReadEntry(JsonProperty prop, string path)
    {
        string name = prop.Name;
        var v = prop.Value;
        if (v.ValueKind != JsonValueKind.Object)
            throw new DataException(path, $"tensor '{name}': header entry is not an object");
        if (!v.TryGetProperty("dtype", out var dtype) || dtype.ValueKind != JsonValueKind.String)
            throw new DataException(path, $"tensor '{name}': no dtype");
        if (dtype.GetString() != "F32")
            throw new DataException(path, $"tensor '{name}': unsupported dtype '{dtype.GetString()}' (only F32)");
        if (!v.TryGetProperty("shape", out var shapeEl) || shapeEl.ValueKind != JsonValueKind.Array)
            throw new DataException(path, $"tensor '{name}': no shape");
        var shape = new int[shapeEl.GetArrayLength()];
        int i = 0;
        foreach (var d in shapeEl.EnumerateArray())
        {
            if (d.ValueKind != JsonValueKind.Number || !d.TryGetInt32(out shape[i]) || shape[i] < 0)
                throw new DataException(path, $"tensor '{name}': bad shape {shapeEl.GetRawText()}");
            i++;
        }
        if (shape.Aggregate(1L, (n, d) => n * d) > int.MaxValue)
            throw new DataException(path, $"tensor '{name}': shape {shapeEl.GetRawText()} is too large");
        if (!v.TryGetProperty("data_offsets", out var off) || off.ValueKind != JsonValueKind.Array || off.GetArrayLength() != 2
            || !off[0].TryGetInt64(out long begin) || !off[1].TryGetInt64(out long end))
            throw new DataException(path, $"tensor '{name}': data_offsets must be [begin, end]");
        return (name, shape, begin, end);
    }

    private static byte[] BuildHeader(List<(string Name, Tensor Tensor)> list, IDictionary<string, string>? metadata)
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            json.WriteStartObject();
            long offset = 0;
            foreach (var (name, tensor) in list)
            {
                json.WriteStartObject(name);
                json.WriteString("dtype", "F32");
                json.WriteStartArray("shape");
                foreach (int d in tensor.Shape)
                    json.WriteNumberValue(d);
                json.WriteEndArray();
                long end = offset + (long)tensor.Length * sizeof(float);
                json.WriteStartArray("data_offsets");
                json.WriteNumberValue(offset);
                json.WriteNumberValue(end);
                json.WriteEndArray();
                json.WriteEndObject();
                offset = end;
            }
            if (metadata is { Count: > 0 })
            {
                json.WriteStartObject(MetadataKey);
                foreach (var (k, v) in metadata)
                    json.WriteString(k, v);
                json.WriteEndObject();
            }
            json.WriteEndObject();
        }
        int padded = (int)((buffer.Length + 7) / 8 * 8);
        var header = new byte[padded];
        buffer.ToArray().CopyTo(header, 0);
        header.AsSpan((int)buffer.Length).Fill((byte)' ');
        return header;
    }

    private static void WriteFloats(Stream stream, ReadOnlySpan<float> values)
    {
        if (BitConverter.IsLittleEndian)
        {
            stream.Write(MemoryMarshal.AsBytes(values));
            return;
        }
        Span<byte> four = stackalloc byte[4];
        foreach (float f in values)
        {
            BinaryPrimitives.WriteSingleLittleEndian(four, f);
            stream.Write(four);
        }
    }

    private static void ReadFloats(ReadOnlySpan<byte> bytes, Span<float> values)
    {
        if (BitConverter.IsLittleEndian)
        {
            MemoryMarshal.Cast<byte, float>(bytes).CopyTo(values);
            return;
        }
        for (int i = 0; i < values.Length; i++)
            values[i] = BinaryPrimitives.ReadSingleLittleEndian(bytes[(4 * i)..]);
    }

    private static string Describe(IEnumerable<string> names)
    {
        var list = names.Take(8).Select(n => "'" + n + "'").ToList();
        return list.Count == 0 ? "no tensors" : string.Join(", ", list) + (names.Count() > 8 ? ", ..." : "");
    }
}

/// <summary>A loaded safetensors file: tensors by name (in file order) and the string metadata.</summary>
public sealed class SafetensorsFile(IReadOnlyDictionary<string, Tensor> tensors, IReadOnlyDictionary<string, string> metadata)
{
    /// <summary>The tensors by name, in file order.</summary>
    public IReadOnlyDictionary<string, Tensor> Tensors { get; } = tensors;

    /// <summary>The string metadata (empty when the file has none).</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; } = metadata;
}

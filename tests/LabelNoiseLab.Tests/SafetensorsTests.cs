using System.Buffers.Binary;
using System.Text;
using LabelNoiseLab.RunFiles;

namespace LabelNoiseLab.Tests;

public sealed class SafetensorsTests : IDisposable
{
    private readonly TempDir _temp = new("st");

    private string _dir => _temp.Path;

    public void Dispose() => _temp.Dispose();

    private string PathOf(string name) => _temp.Sub(name);

    private static Tensor Filled(int[] shape, int seed)
    {
        var t = new Tensor(shape);
        var r = new Random(seed);
        for (int i = 0; i < t.Length; i++)
            t[i] = (float)(r.NextDouble() * 2 - 1);
        return t;
    }

    [Fact]
    public void Round_trip_is_bit_exact_including_nan_payloads_and_negative_zero()
    {
        var a = Filled([3, 5], 1);
        a[0] = -0.0f;
        a[1] = BitConverter.Int32BitsToSingle(0x7fc12345); // quiet NaN with a payload
        a[2] = BitConverter.Int32BitsToSingle(unchecked((int)0xff800001)); // signalling-pattern NaN, sign bit set
        a[3] = float.PositiveInfinity;
        a[4] = float.Epsilon;
        var b = Filled([7], 2);
        var scalar = new Tensor(Array.Empty<int>()) { [0] = 42.5f };
        var empty = new Tensor(0, 4);
        string path = PathOf("rt.safetensors");
        Safetensors.Save(path, [("layers.0.weight", a), ("bias", b), ("scalar", scalar), ("empty", empty)],
            new Dictionary<string, string> { ["format"] = "pt", ["note"] = "ünïcode \"quoted\"" });

        var file = Safetensors.Load(path);
        Assert.Equal(["layers.0.weight", "bias", "scalar", "empty"], file.Tensors.Keys);
        foreach (var (name, original) in new[] { ("layers.0.weight", a), ("bias", b), ("scalar", scalar), ("empty", empty) })
        {
            var loaded = file.Tensors[name];
            Assert.Equal(original.ShapeString, loaded.ShapeString);
            Assert.Equal(name, loaded.Name);
            for (int i = 0; i < original.Length; i++)
                Assert.Equal(BitConverter.SingleToInt32Bits(original[i]), BitConverter.SingleToInt32Bits(loaded[i]));
        }
        Assert.Equal("pt", file.Metadata["format"]);
        Assert.Equal("ünïcode \"quoted\"", file.Metadata["note"]);
        Assert.Empty(Directory.GetFiles(_dir, AtomicFile.TempPrefix + "*"));
    }

    [Fact]
    public void Header_layout_is_exact_on_a_tiny_example()
    {
        var t = new Tensor(new float[] { 1f, -2f }, 2);
        string path = PathOf("tiny.safetensors");
        Safetensors.Save(path, [("w", t)]);
        byte[] bytes = File.ReadAllBytes(path);

        const string json = "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
        int padded = (json.Length + 7) / 8 * 8; // 56 → 56
        Assert.Equal((ulong)padded, BinaryPrimitives.ReadUInt64LittleEndian(bytes));
        Assert.Equal(0, padded % 8);
        string header = Encoding.UTF8.GetString(bytes, 8, padded);
        Assert.Equal(json.PadRight(padded, ' '), header);
        Assert.Equal(8 + padded + 8, bytes.Length);
        Assert.Equal(new byte[] { 0x00, 0x00, 0x80, 0x3f }, bytes[(8 + padded)..(8 + padded + 4)]); // 1.0f LE
        Assert.Equal(new byte[] { 0x00, 0x00, 0x00, 0xc0 }, bytes[(8 + padded + 4)..]); // -2.0f LE
    }

    [Fact]
    public void Header_is_padded_with_spaces_when_json_is_not_a_multiple_of_8()
    {
        string path = PathOf("pad.safetensors");
        Safetensors.Save(path, [("ab", new Tensor(1))]);
        byte[] bytes = File.ReadAllBytes(path);
        const string json = "{\"ab\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}";
        ulong n = BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        Assert.Equal(0UL, n % 8);
        Assert.True(n > (ulong)json.Length, "this example needs padding");
        Assert.Equal(json.PadRight((int)n, ' '), Encoding.UTF8.GetString(bytes, 8, (int)n));
    }

    [Fact]
    public void Metadata_goes_in_the_header_under_its_key()
    {
        string path = PathOf("meta.safetensors");
        Safetensors.Save(path, [("x", new Tensor(1))], new Dictionary<string, string> { ["epoch"] = "3" });
        byte[] bytes = File.ReadAllBytes(path);
        int n = (int)BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        Assert.EndsWith(",\"__metadata__\":{\"epoch\":\"3\"}}", Encoding.UTF8.GetString(bytes, 8, n).TrimEnd(), StringComparison.Ordinal);
    }

    // --- corruption -------------------------------------------------------------------

    private byte[] ValidFile()
    {
        string path = PathOf("valid.safetensors");
        Safetensors.Save(path, [("a", Filled([2, 3], 3)), ("b", Filled([4], 4))]);
        return File.ReadAllBytes(path);
    }

    private string WriteRaw(byte[] bytes)
    {
        string path = PathOf("corrupt-" + Guid.NewGuid().ToString("N")[..6] + ".safetensors");
        File.WriteAllBytes(path, bytes);
        return path;
    }

    private static byte[] WithHeader(string json, int dataBytes)
    {
        var header = Encoding.UTF8.GetBytes(json);
        var bytes = new byte[8 + header.Length + dataBytes];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)header.Length);
        header.CopyTo(bytes, 8);
        return bytes;
    }

    private void AssertCorrupt(byte[] bytes, string expectedFragment)
    {
        string path = WriteRaw(bytes);
        var e = Assert.Throws<DataException>(() => Safetensors.Load(path));
        Assert.Equal(path, e.File);
        Assert.StartsWith(path + ": ", e.Message, StringComparison.Ordinal);
        Assert.Contains(expectedFragment, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Shorter_than_the_length_prefix_is_truncated() => AssertCorrupt([1, 2, 3], "truncated");

    [Fact]
    public void Truncated_data_is_rejected()
    {
        var bytes = ValidFile();
        AssertCorrupt(bytes[..^4], "outside the data section");
    }

    [Fact]
    public void Truncated_header_is_rejected()
    {
        var bytes = ValidFile();
        AssertCorrupt(bytes[..20], "beyond the file size");
    }

    [Fact]
    public void Header_length_beyond_file_is_rejected()
    {
        var bytes = ValidFile();
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, ulong.MaxValue);
        AssertCorrupt(bytes, "beyond the file size");
    }

    [Fact]
    public void Bad_json_is_rejected()
    {
        var bytes = ValidFile();
        bytes[8] = (byte)'[';
        bytes[9] = (byte)'x';
        AssertCorrupt(bytes, "not valid JSON");
    }

    [Fact]
    public void Json_that_is_not_an_object_is_rejected() =>
        AssertCorrupt(WithHeader("[1, 2]  ", 0), "not a JSON object");

    [Fact]
    public void Unsupported_dtype_is_rejected() =>
        AssertCorrupt(WithHeader("{\"a\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[0,4]}}", 4), "unsupported dtype 'F16'");

    [Fact]
    public void Offsets_inconsistent_with_shape_are_rejected() =>
        AssertCorrupt(WithHeader("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8), "shape [3] needs 12");

    [Fact]
    public void Offsets_out_of_range_are_rejected() =>
        AssertCorrupt(WithHeader("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 8), "outside the data section");

    [Fact]
    public void Reversed_offsets_are_rejected() =>
        AssertCorrupt(WithHeader("{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,0]}}", 8), "outside the data section");

    [Fact]
    public void Overlapping_tensors_are_rejected() =>
        AssertCorrupt(WithHeader(
            "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8),
            "gap or overlap");

    [Fact]
    public void Trailing_bytes_are_rejected() =>
        AssertCorrupt(WithHeader("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 8), "accounts for 4");

    [Fact]
    public void Missing_fields_are_rejected()
    {
        AssertCorrupt(WithHeader("{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4), "no shape");
        AssertCorrupt(WithHeader("{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4), "data_offsets must be");
        AssertCorrupt(WithHeader("{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4), "no dtype");
        AssertCorrupt(WithHeader("{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4), "bad shape");
    }

    [Fact]
    public void Missing_file_is_a_data_exception()
    {
        string path = PathOf("nope.safetensors");
        Assert.Equal(path, Assert.Throws<DataException>(() => Safetensors.Load(path)).File);
    }

    // --- LoadInto ----------------------------------------------------------------------

    [Fact]
    public void LoadInto_copies_into_existing_tensors()
    {
        var w = Filled([2, 3], 5);
        var b = Filled([3], 6);
        string path = PathOf("model.safetensors");
        Safetensors.Save(path, [("w", w), ("b", b)], new Dictionary<string, string> { ["epoch"] = "7" });
        var w2 = new Tensor(2, 3);
        var b2 = new Tensor(3);
        var meta = Safetensors.LoadInto(path, [("w", w2), ("b", b2)]);
        Assert.Equal(w.ToArray(), w2.ToArray());
        Assert.Equal(b.ToArray(), b2.ToArray());
        Assert.Equal("7", meta["epoch"]);
    }

    [Fact]
    public void LoadInto_names_a_missing_tensor()
    {
        string path = PathOf("m.safetensors");
        Safetensors.Save(path, [("w", new Tensor(2))]);
        var e = Assert.Throws<DataException>(() => Safetensors.LoadInto(path, [("w", new Tensor(2)), ("bias", new Tensor(2))]));
        Assert.Contains("no tensor 'bias'", e.Message, StringComparison.Ordinal);
        Assert.Contains(path, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void LoadInto_names_both_shapes_on_mismatch()
    {
        string path = PathOf("m.safetensors");
        Safetensors.Save(path, [("w", new Tensor(3, 4))]);
        var target = new Tensor(4, 3);
        var e = Assert.Throws<DataException>(() => Safetensors.LoadInto(path, [("w", target)]));
        Assert.Contains("[3, 4]", e.Message, StringComparison.Ordinal);
        Assert.Contains("[4, 3]", e.Message, StringComparison.Ordinal);
        Assert.All(target.ToArray(), x => Assert.Equal(0f, x));
    }

    [Fact]
    public void LoadInto_strict_rejects_unexpected_tensors()
    {
        string path = PathOf("m.safetensors");
        Safetensors.Save(path, [("w", new Tensor(2)), ("extra", new Tensor(1))]);
        var e = Assert.Throws<DataException>(() => Safetensors.LoadInto(path, [("w", new Tensor(2))]));
        Assert.Contains("'extra'", e.Message, StringComparison.Ordinal);
        Safetensors.LoadInto(path, [("w", new Tensor(2))], strict: false);
    }

    [Fact]
    public void Save_rejects_duplicate_names() =>
        Assert.Throws<ArgumentException>(() => Safetensors.Save(PathOf("d.safetensors"), [("w", new Tensor(1)), ("w", new Tensor(1))]));

    // --- independent reader -----------------------------------------------------------

    [Fact]
    public void Python_numpy_reads_the_file_the_same()
    {
        MachineTools.RequirePythonWithNumpy();

        var a = Filled([3, 4], 11);
        a[5] = -0.0f;
        var b = Filled([5], 12);
        string path = PathOf("py.safetensors");
        Safetensors.Save(path, [("a", a), ("b", b)], new Dictionary<string, string> { ["k"] = "v" });
        const string script = """
            import json, struct, sys, numpy as np
            raw = open(sys.argv[1], 'rb').read()
            (n,) = struct.unpack('<Q', raw[:8])
            assert n % 8 == 0
            header = json.loads(raw[8:8 + n])
            data = raw[8 + n:]
            for name in ('a', 'b'):
                e = header[name]
                assert e['dtype'] == 'F32'
                begin, end = e['data_offsets']
                x = np.frombuffer(data[begin:end], dtype='<f4').reshape(e['shape'])
                print(name, list(x.shape), ' '.join(str(int(v)) for v in x.view('<u4').ravel()))
            print('meta', header['__metadata__']['k'])
            """;
        Assert.True(MachineTools.RunPython(["-c", script, path], out string output), output);
        string Expect(string name, Tensor t) =>
            $"{name} [{string.Join(", ", t.Shape.ToArray())}] " +
            string.Join(' ', t.ToArray().Select(f => ((uint)BitConverter.SingleToInt32Bits(f)).ToString(System.Globalization.CultureInfo.InvariantCulture)));
        Assert.Equal([Expect("a", a), Expect("b", b), "meta v"], output.TrimEnd().Split('\n'));
    }
}

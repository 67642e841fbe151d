using System.Globalization;

namespace LabelNoiseLab.Noise;

/// <summary>
/// Class maps for asymmetric noise. The built-in maps follow the common benchmark practice
/// (Patrini et al. 2017 for MNIST and CIFAR-10):
/// <list type="bullet">
/// <item>mnist: 2→7, 3→8, 5↔6, 7→1.</item>
/// <item>fashion-mnist (classes 0 T-shirt/top, 1 Trouser, 2 Pullover, 3 Dress, 4 Coat, 5 Sandal,
/// 6 Shirt, 7 Sneaker, 8 Bag, 9 Ankle boot): the visually confused pairs T-shirt↔Shirt (0↔6),
/// Pullover↔Coat (2↔4), Sandal↔Sneaker (5↔7). Trouser, Dress, Bag and Ankle boot stay clean.</item>
/// <item>cifar10: truck→automobile (9→1), bird→airplane (2→0), deer→horse (4→7), cat↔dog (3↔5).</item>
/// </list>
/// </summary>
public static class ClassMaps
{
    /// <summary>MNIST's map (true class → given class): 2→7, 3→8, 5↔6, 7→1.</summary>
    public static IReadOnlyDictionary<int, int> Mnist { get; } =
        new Dictionary<int, int> { [2] = 7, [3] = 8, [5] = 6, [6] = 5, [7] = 1 };

    /// <summary>Fashion-MNIST's map: T-shirt↔Shirt (0↔6), Pullover↔Coat (2↔4), Sandal↔Sneaker (5↔7).</summary>
    public static IReadOnlyDictionary<int, int> FashionMnist { get; } =
        new Dictionary<int, int> { [0] = 6, [6] = 0, [2] = 4, [4] = 2, [5] = 7, [7] = 5 };

    /// <summary>CIFAR-10's map: truck→automobile, bird→airplane, deer→horse, cat↔dog.</summary>
    public static IReadOnlyDictionary<int, int> Cifar10 { get; } =
        new Dictionary<int, int> { [9] = 1, [2] = 0, [4] = 7, [3] = 5, [5] = 3 };

    /// <summary>
    /// A built-in map by name, or a user map "a:b, c:d"; every class must be in 0..k-1. A bad map
    /// is an <see cref="ArgumentException"/> for <paramref name="paramName"/> (by default
    /// <c>spec</c>; callers pass the option the map came from).
    /// </summary>
    public static IReadOnlyDictionary<int, int> Resolve(string spec, int numClasses, string paramName = "spec")
    {
        ArgumentNullException.ThrowIfNull(spec);
        IReadOnlyDictionary<int, int> map = spec.Trim().ToLowerInvariant() switch
        {
            "mnist" => Mnist,
            "fashion-mnist" or "fashion_mnist" or "fashionmnist" => FashionMnist,
            "cifar10" or "cifar-10" => Cifar10,
            _ => ParseUserMap(spec, paramName),
        };
        foreach (var (from, to) in map)
        {
            if (from < 0 || from >= numClasses || to < 0 || to >= numClasses)
                throw new ArgumentException($"class map pair {from}:{to} names a class outside 0..{numClasses - 1}", paramName);
        }
        return map;
    }

    private static Dictionary<int, int> ParseUserMap(string spec, string paramName)
    {
        var map = new Dictionary<int, int>();
        foreach (var part in spec.Split([',', ';'], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var ends = part.Replace("->", ":", StringComparison.Ordinal).Split(':', StringSplitOptions.TrimEntries);
            if (ends.Length != 2
                || !int.TryParse(ends[0], NumberStyles.Integer, CultureInfo.InvariantCulture, out int from)
                || !int.TryParse(ends[1], NumberStyles.Integer, CultureInfo.InvariantCulture, out int to))
                throw new ArgumentException(
                    $"class map '{spec}': '{part}' is not a pair; expected mnist, fashion-mnist, cifar10 or pairs like \"2:7, 3->8\"", paramName);
            if (from == to)
                throw new ArgumentException($"class map '{spec}': '{part}' maps a class to itself", paramName);
            if (!map.TryAdd(from, to))
                throw new ArgumentException($"class map '{spec}': class {from} is mapped twice", paramName);
        }
        if (map.Count == 0)
            throw new ArgumentException($"class map '{spec}' holds no pairs", paramName);
        return map;
    }
}

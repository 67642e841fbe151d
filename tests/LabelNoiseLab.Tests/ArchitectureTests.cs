using System.Text;
using Mono.Cecil;
using Mono.Cecil.Cil;

namespace LabelNoiseLab.Tests;

/// <summary>
/// The library's layers depend one way only (issue 11). Reads the built LabelNoiseLab.dll with
/// Mono.Cecil and collects, for every type, the namespaces of every type it references: base
/// type, interfaces, attributes, generic arguments and constraints, fields, properties, events,
/// method signatures, local variables and every IL operand (type, method and field references
/// with their declaring types, signatures and generic arguments). A nested or compiler-generated
/// type (lambdas, iterators, async state machines) counts for its outermost type's namespace.
/// </summary>
public class ArchitectureTests
{
    /// <summary>
    /// Layers from the bottom up; a namespace may depend on its own layer and the ones below.
    /// The root namespace <c>LabelNoiseLab</c> (InputException, DataException, ConfigException)
    /// is below everything and shared by all. Robust and Probes are siblings: neither may use the other.
    /// </summary>
    private static readonly string[][] Layers =
    [
        ["LabelNoiseLab"],
        ["LabelNoiseLab.Tensors", "LabelNoiseLab.Autograd", "LabelNoiseLab.Nn", "LabelNoiseLab.Losses", "LabelNoiseLab.Optim"],
        ["LabelNoiseLab.RunFiles"],
        ["LabelNoiseLab.Data"],
        ["LabelNoiseLab.Noise"],
        ["LabelNoiseLab.Training"],
        ["LabelNoiseLab.Robust", "LabelNoiseLab.Probes"],
        ["LabelNoiseLab.Experiments"],
        ["LabelNoiseLab.Reports"],
        ["LabelNoiseLab.Studies"],
    ];

    /// <summary>
    /// Namespaces that share a layer but may not depend on each other (everything else in one
    /// layer may: the engine namespaces are one layer).
    /// </summary>
    private static readonly string[][] Siblings = [["LabelNoiseLab.Robust", "LabelNoiseLab.Probes"]];

    /// <summary>
    /// Edges that go the wrong way today and are tolerated until their fix lands. The list may
    /// only shrink: the test also fails when a listed edge no longer occurs (then delete its line).
    /// </summary>
    private static readonly (string From, string To, string Why)[] Tolerated =
    [
    ];

    [Fact]
    public void Layers_depend_one_way_only()
    {
        var edges = NamespaceEdges();
        var unmapped = edges.Keys.SelectMany(e => new[] { e.From, e.To }).Where(n => LayerOf(n) < 0).Distinct().Order().ToList();
        Assert.True(unmapped.Count == 0,
            "namespaces with no layer (add them to ArchitectureTests.Layers): " + string.Join(", ", unmapped));

        var violations = edges.Where(e => IsViolation(e.Key.From, e.Key.To)).OrderBy(e => e.Key.From).ThenBy(e => e.Key.To).ToList();
        var tolerated = Tolerated.Select(t => (t.From, t.To)).ToHashSet();
        var report = new StringBuilder();
        foreach (var (edge, examples) in violations.Where(v => !tolerated.Contains(v.Key)))
        {
            report.Append("layer violation: ").Append(edge.From).Append(" -> ").Append(edge.To).Append('\n');
            foreach (var example in examples.Order(StringComparer.Ordinal).Take(8))
                report.Append("    ").Append(example).Append('\n');
            if (examples.Count > 8)
                report.Append("    ... and ").Append(examples.Count - 8).Append(" more\n");
        }
        foreach (var (from, to, _) in Tolerated.Where(t => !violations.Any(v => v.Key == (t.From, t.To))))
            report.Append("tolerated edge no longer occurs (delete it from ArchitectureTests.Tolerated): ")
                .Append(from).Append(" -> ").Append(to).Append('\n');
        Assert.True(report.Length == 0, "\n" + report);
    }

    /// <summary>
    /// The source says the same as the IL: no `using LabelNoiseLab.X;` (used or not) and no
    /// `LabelNoiseLab.X.` qualified name in a file of a lower layer. An unused directive leaves no
    /// trace in the IL, but a reader takes it for a dependency.
    /// </summary>
    [Fact]
    public void Using_directives_point_one_way_too()
    {
        string src = Path.Combine(ConfigExperimentFilesTests.RepoRoot(), "src", "LabelNoiseLab");
        var problems = new List<string>();
        foreach (var file in Directory.GetFiles(src, "*.cs", SearchOption.AllDirectories).Where(f => !f.Contains("/obj/", StringComparison.Ordinal)))
        {
            string text = File.ReadAllText(file);
            var ns = System.Text.RegularExpressions.Regex.Match(text, @"^namespace (LabelNoiseLab(\.\w+)*);", System.Text.RegularExpressions.RegexOptions.Multiline);
            if (!ns.Success)
                continue;
            foreach (System.Text.RegularExpressions.Match m in System.Text.RegularExpressions.Regex.Matches(text, @"\bLabelNoiseLab\.(\w+)"))
            {
                string target = "LabelNoiseLab." + m.Groups[1].Value;
                if (LayerOf(target) >= 0 && IsViolation(ns.Groups[1].Value, target))
                    problems.Add($"{Path.GetRelativePath(src, file)}: {ns.Groups[1].Value} names {target}");
            }
        }
        Assert.True(problems.Count == 0, "\n" + string.Join("\n", problems.Distinct()));
    }

    [Fact]
    public void The_layer_table_covers_every_namespace_of_the_library()
    {
        using var module = ModuleDefinition.ReadModule(typeof(InputException).Assembly.Location);
        var namespaces = module.Types.Select(t => t.Namespace).Where(n => n.StartsWith("LabelNoiseLab", StringComparison.Ordinal)).Distinct();
        Assert.All(namespaces, n => Assert.True(LayerOf(n) >= 0, $"{n} has no layer"));
        Assert.All(Layers.SelectMany(l => l), n => Assert.Contains(n, module.Types.Select(t => t.Namespace)));
    }

    private static int LayerOf(string ns)
    {
        for (int i = Layers.Length - 1; i >= 0; i--)
        {
            if (Layers[i].Any(l => ns == l || (l != "LabelNoiseLab" && ns.StartsWith(l + ".", StringComparison.Ordinal))))
                return i;
        }
        return -1;
    }

    private static bool IsViolation(string from, string to)
    {
        int a = LayerOf(from), b = LayerOf(to);
        if (b > a)
            return true;
        return a == b && Siblings.Any(s => s.Contains(Top(from)) && s.Contains(Top(to)) && Top(from) != Top(to));
    }

    /// <summary>The layer-table namespace a namespace belongs to (LabelNoiseLab.Nn.X → LabelNoiseLab.Nn).</summary>
    private static string Top(string ns) => Layers.SelectMany(l => l).Where(l => ns == l || ns.StartsWith(l + ".", StringComparison.Ordinal)).MaxBy(l => l.Length) ?? ns;

    /// <summary>(from namespace, to namespace) → examples "FromType → ToType", for every library namespace pair.</summary>
    private static Dictionary<(string From, string To), HashSet<string>> NamespaceEdges()
    {
        using var module = ModuleDefinition.ReadModule(typeof(InputException).Assembly.Location);
        var edges = new Dictionary<(string, string), HashSet<string>>();
        foreach (var type in module.Types)
        {
            string from = type.Namespace;
            if (!from.StartsWith("LabelNoiseLab", StringComparison.Ordinal))
                continue; // <Module>, <PrivateImplementationDetails>, embedded attributes
            var refs = new HashSet<TypeReference>(TypeReferenceComparer.Instance);
            foreach (var t in SelfAndNested(type))
                Collect(t, refs);
            foreach (var r in refs)
            {
                string to = OutermostNamespace(r);
                if (to == from || !to.StartsWith("LabelNoiseLab", StringComparison.Ordinal))
                    continue;
                if (!edges.TryGetValue((from, to), out var examples))
                    edges[(from, to)] = examples = [];
                examples.Add($"{type.FullName} → {Outermost(r).FullName}");
            }
        }
        return edges;
    }

    private static IEnumerable<TypeDefinition> SelfAndNested(TypeDefinition type) =>
        type.NestedTypes.SelectMany(SelfAndNested).Prepend(type);

    private static TypeReference Outermost(TypeReference t)
    {
        while (t.DeclaringType is not null)
            t = t.DeclaringType;
        return t;
    }

    private static string OutermostNamespace(TypeReference t) => Outermost(t).Namespace;

    private static void Collect(TypeDefinition type, HashSet<TypeReference> refs)
    {
        Add(type.BaseType, refs);
        foreach (var i in type.Interfaces)
        {
            Add(i.InterfaceType, refs);
            Attributes(i.CustomAttributes, refs);
        }
        Attributes(type.CustomAttributes, refs);
        GenericParameters(type.GenericParameters, refs);
        foreach (var f in type.Fields)
        {
            Add(f.FieldType, refs);
            Attributes(f.CustomAttributes, refs);
        }
        foreach (var p in type.Properties)
        {
            Add(p.PropertyType, refs);
            Attributes(p.CustomAttributes, refs);
            foreach (var parameter in p.Parameters)
                Add(parameter.ParameterType, refs);
        }
        foreach (var e in type.Events)
        {
            Add(e.EventType, refs);
            Attributes(e.CustomAttributes, refs);
        }
        foreach (var m in type.Methods)
            Collect(m, refs);
    }

    private static void Collect(MethodDefinition method, HashSet<TypeReference> refs)
    {
        Add(method.ReturnType, refs);
        Attributes(method.CustomAttributes, refs);
        Attributes(method.MethodReturnType.CustomAttributes, refs);
        GenericParameters(method.GenericParameters, refs);
        foreach (var p in method.Parameters)
        {
            Add(p.ParameterType, refs);
            Attributes(p.CustomAttributes, refs);
        }
        foreach (var o in method.Overrides)
            AddMember(o, refs);
        if (!method.HasBody)
            return;
        foreach (var v in method.Body.Variables)
            Add(v.VariableType, refs);
        foreach (var h in method.Body.ExceptionHandlers)
            Add(h.CatchType, refs);
        foreach (var instruction in method.Body.Instructions)
        {
            switch (instruction.Operand)
            {
                case TypeReference t:
                    Add(t, refs);
                    break;
                case MemberReference m:
                    AddMember(m, refs);
                    break;
                case CallSite site:
                    Add(site.ReturnType, refs);
                    foreach (var p in site.Parameters)
                        Add(p.ParameterType, refs);
                    break;
            }
        }
    }

    private static void AddMember(MemberReference member, HashSet<TypeReference> refs)
    {
        Add(member.DeclaringType, refs);
        switch (member)
        {
            case MethodReference m:
                Add(m.ReturnType, refs);
                foreach (var p in m.Parameters)
                    Add(p.ParameterType, refs);
                if (m is GenericInstanceMethod g)
                {
                    foreach (var a in g.GenericArguments)
                        Add(a, refs);
                }
                break;
            case FieldReference f:
                Add(f.FieldType, refs);
                break;
        }
    }

    private static void Attributes(IEnumerable<CustomAttribute> attributes, HashSet<TypeReference> refs)
    {
        foreach (var a in attributes)
        {
            Add(a.AttributeType, refs);
            foreach (var arg in a.ConstructorArguments.Concat(a.Fields.Select(f => f.Argument)).Concat(a.Properties.Select(p => p.Argument)))
            {
                Add(arg.Type, refs);
                if (arg.Value is TypeReference typeArgument) // typeof(...) in an attribute
                    Add(typeArgument, refs);
            }
        }
    }

    private static void GenericParameters(IEnumerable<GenericParameter> parameters, HashSet<TypeReference> refs)
    {
        foreach (var g in parameters)
        {
            foreach (var c in g.Constraints)
                Add(c.ConstraintType, refs);
            Attributes(g.CustomAttributes, refs);
        }
    }

    /// <summary>Adds a type and everything it is built from: element types, generic arguments, modifiers.</summary>
    private static void Add(TypeReference? type, HashSet<TypeReference> refs)
    {
        switch (type)
        {
            case null or GenericParameter:
                return;
            case GenericInstanceType g:
                Add(g.ElementType, refs);
                foreach (var a in g.GenericArguments)
                    Add(a, refs);
                return;
            case IModifierType m: // modreq/modopt: both the modifier and the modified type
                Add(m.ModifierType, refs);
                Add(((TypeSpecification)type).ElementType, refs);
                return;
            case FunctionPointerType f:
                Add(f.ReturnType, refs);
                foreach (var p in f.Parameters)
                    Add(p.ParameterType, refs);
                return;
            case TypeSpecification s: // arrays, by-refs, pointers, pinned
                Add(s.ElementType, refs);
                return;
            default:
                if (refs.Add(type) && type.DeclaringType is not null)
                    Add(type.DeclaringType, refs);
                return;
        }
    }

    private sealed class TypeReferenceComparer : IEqualityComparer<TypeReference>
    {
        public static readonly TypeReferenceComparer Instance = new();

        public bool Equals(TypeReference? x, TypeReference? y) => x?.FullName == y?.FullName && x?.Scope?.Name == y?.Scope?.Name;

        public int GetHashCode(TypeReference obj) => obj.FullName.GetHashCode(StringComparison.Ordinal);
    }
}

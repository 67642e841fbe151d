using System.Reflection;
using System.Text;

namespace LabelNoiseLab.Tests;

/// <summary>
/// Pins the library's public surface: every exported type and its public and protected members,
/// one sorted line each, against the checked-in <c>PublicApi.txt</c>. A change to the API changes
/// that file in the same commit: <c>LNLAB_UPDATE_PUBLIC_API=1 dotnet test tests/LabelNoiseLab.Tests
/// --filter FullyQualifiedName~PublicApiTests</c> rewrites it (then review the diff).
/// </summary>
public sealed class PublicApiTests
{
    public const string UpdateVariable = "LNLAB_UPDATE_PUBLIC_API";

    private static string ApiFile => Path.Combine(ConfigExperimentFilesTests.RepoRoot(), "tests", "LabelNoiseLab.Tests", "PublicApi.txt");

    [Fact]
    public void The_public_surface_is_the_checked_in_list()
    {
        string actual = Surface(typeof(LabelNoiseLab.Tensors.Tensor).Assembly);
        if (Environment.GetEnvironmentVariable(UpdateVariable) == "1")
            File.WriteAllText(ApiFile, actual);
        string expected = File.Exists(ApiFile) ? File.ReadAllText(ApiFile).ReplaceLineEndings("\n") : "";
        var added = Lines(actual).Except(Lines(expected)).ToList();
        var removed = Lines(expected).Except(Lines(actual)).ToList();
        Assert.True(added.Count == 0 && removed.Count == 0,
            $"the public API differs from tests/LabelNoiseLab.Tests/PublicApi.txt ({added.Count} added, {removed.Count} removed); " +
            $"if intended, rerun with {UpdateVariable}=1 and commit the file.\n" +
            string.Join("\n", added.Take(40).Select(l => "+ " + l).Concat(removed.Take(40).Select(l => "- " + l))));
    }

    [Fact]
    public void The_surface_lists_members_and_leaves_out_internals()
    {
        var lines = Lines(Surface(typeof(LabelNoiseLab.Tensors.Tensor).Assembly));
        Assert.Contains("class LabelNoiseLab.Training.Trainer", lines);
        Assert.Contains("LabelNoiseLab.Training.Trainer: method Run(LabelNoiseLab.Training.TrainingSetup, LabelNoiseLab.RunFiles.RunDirectory, LabelNoiseLab.Training.RunContext) : LabelNoiseLab.Training.RunResult", lines);
        Assert.Contains("interface LabelNoiseLab.Training.ITrainingCallback : LabelNoiseLab.Training.ITrainingComponent", lines);
        Assert.DoesNotContain(lines, l => l.Contains("get_", StringComparison.Ordinal) || l.Contains("<>", StringComparison.Ordinal));
        Assert.Equal(lines.OrderBy(l => l, StringComparer.Ordinal), lines);
    }

    /// <summary>The sorted surface of <paramref name="assembly"/>, one line per type and member.</summary>
    public static string Surface(Assembly assembly)
    {
        var lines = new List<string>();
        foreach (var type in assembly.GetExportedTypes())
        {
            string name = Name(type);
            lines.Add(TypeLine(type));
            const BindingFlags Flags = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly;
            foreach (var member in type.GetMembers(Flags))
            {
                string? line = MemberLine(member, type);
                if (line is not null)
                    lines.Add(name + ": " + line);
            }
        }
        lines.Sort(StringComparer.Ordinal);
        var text = new StringBuilder();
        foreach (string line in lines.Distinct())
            text.Append(line).Append('\n');
        return text.ToString();
    }

    private static List<string> Lines(string text) => [.. text.Split('\n', StringSplitOptions.RemoveEmptyEntries)];

    private static string TypeLine(Type type)
    {
        string kind = type.IsEnum ? "enum" : type.IsInterface ? "interface" : type.IsValueType ? "struct"
            : typeof(Delegate).IsAssignableFrom(type) ? "delegate" : type.IsAbstract && type.IsSealed ? "static class"
            : type.IsAbstract ? "abstract class" : type.IsSealed ? "sealed class" : "class";
        if (kind == "sealed class" && type.GetMethod("<Clone>$") is not null)
            kind = "sealed record";
        var bases = new List<string>();
        if (type.BaseType is { } b && b != typeof(object) && b != typeof(ValueType) && b != typeof(Enum) && b != typeof(MulticastDelegate))
            bases.Add(Name(b));
        bases.AddRange(type.GetInterfaces()
            .Where(i => i.IsPublic || i.IsNestedPublic)
            .Where(i => type.BaseType is null || !i.IsAssignableFrom(type.BaseType))
            .Select(Name).Order(StringComparer.Ordinal));
        return $"{(kind == "sealed class" ? "class" : kind)} {Name(type)}" + (bases.Count > 0 ? " : " + string.Join(", ", bases) : "");
    }

    private static bool Visible(MethodBase? m) => m is not null && (m.IsPublic || m.IsFamily || m.IsFamilyOrAssembly);

    private static string? MemberLine(MemberInfo member, Type owner)
    {
        switch (member)
        {
            case ConstructorInfo c when Visible(c) && !c.IsStatic:
                return $"ctor({Parameters(c)})";
            case MethodInfo m when Visible(m) && !m.IsSpecialName:
                if (owner.GetMethod("<Clone>$") is not null && m.Name is "<Clone>$" or "PrintMembers" or "Deconstruct" or "Equals" or "GetHashCode" or "ToString")
                    return null; // a record's compiler-made members
                return $"{Modifiers(m)}method {m.Name}{Generic(m)}({Parameters(m)}) : {Name(m.ReturnType)}";
            case PropertyInfo p when Visible(p.GetMethod) || Visible(p.SetMethod):
            {
                var accessor = Visible(p.GetMethod) ? p.GetMethod! : p.SetMethod!;
                if (p.Name == "EqualityContract")
                    return null;
                string access = (Visible(p.GetMethod) ? "get; " : "") + (Visible(p.SetMethod) ? (IsInit(p.SetMethod!) ? "init; " : "set; ") : "");
                string index = p.GetIndexParameters().Length > 0 ? "[" + string.Join(", ", p.GetIndexParameters().Select(x => Name(x.ParameterType))) + "]" : "";
                return $"{Modifiers(accessor)}property {p.Name}{index} : {Name(p.PropertyType)} {{ {access}}}";
            }
            case FieldInfo f when (f.IsPublic || f.IsFamily || f.IsFamilyOrAssembly) && !f.IsSpecialName:
                return owner.IsEnum ? $"value {f.Name}"
                    : $"{(f.IsLiteral ? "const " : f.IsStatic ? "static " : "")}{(f.IsInitOnly ? "readonly " : "")}field {f.Name} : {Name(f.FieldType)}";
            case EventInfo e when Visible(e.AddMethod):
                return $"event {e.Name} : {Name(e.EventHandlerType!)}";
            default:
                return null;
        }
    }

    private static bool IsInit(MethodInfo setter) =>
        setter.ReturnParameter.GetRequiredCustomModifiers().Any(t => t.FullName == "System.Runtime.CompilerServices.IsExternalInit");

    private static string Modifiers(MethodInfo m) =>
        (m.IsFamily || m.IsFamilyOrAssembly ? "protected " : "") + (m.IsStatic ? "static " : m.IsAbstract && !m.DeclaringType!.IsInterface ? "abstract " : m.IsVirtual && !m.IsFinal && !m.DeclaringType!.IsInterface && m.GetBaseDefinition() == m ? "virtual " : m.GetBaseDefinition() != m ? "override " : "");

    private static string Generic(MethodInfo m) => m.IsGenericMethodDefinition ? "<" + string.Join(", ", m.GetGenericArguments().Select(a => a.Name)) + ">" : "";

    private static string Parameters(MethodBase m) => string.Join(", ", m.GetParameters().Select(p =>
        (p.IsOut ? "out " : p.ParameterType.IsByRef ? (p.IsIn ? "in " : "ref ") : "") + Name(p.ParameterType) + (p.HasDefaultValue ? " = " + (p.DefaultValue?.ToString() ?? "null") : "")));

    private static string Name(Type t)
    {
        if (t.IsByRef)
            return Name(t.GetElementType()!);
        if (t.IsArray)
            return Name(t.GetElementType()!) + "[" + new string(',', t.GetArrayRank() - 1) + "]";
        if (t.IsGenericParameter)
            return t.Name;
        if (Nullable.GetUnderlyingType(t) is { } u)
            return Name(u) + "?";
        string name = t.IsNested ? Name(t.DeclaringType!) + "." + t.Name : (t.Namespace is null ? "" : t.Namespace + ".") + t.Name;
        if (!t.IsGenericType)
            return name;
        int tick = name.IndexOf('`', StringComparison.Ordinal);
        if (tick >= 0)
            name = name[..tick];
        return name + "<" + string.Join(", ", t.GetGenericArguments().Select(Name)) + ">";
    }
}

using LabelNoiseLab.Autograd;

namespace LabelNoiseLab.Nn;

/// <summary>Called after a module's forward with its input and output.</summary>
public delegate void ForwardHook(Module module, Tensor input, Tensor output);

/// <summary>Called during backward with the gradient of the loss with respect to a module's output.</summary>
public delegate void BackwardHook(Module module, Tensor outputGradient);

/// <summary>
/// A layer or a model. Parameters and sub-modules are registered by name so that every
/// parameter has a dotted path (<c>layers.0.weight</c>) for checkpoints. Hooks observe
/// activations and output gradients without changing them.
/// </summary>
public abstract class Module
{
    private readonly List<(string Name, Tensor Tensor)> _parameters = [];
    private readonly List<(string Name, Tensor Tensor)> _buffers = [];
    private readonly List<(string Name, Module Module)> _children = [];
    private readonly List<ForwardHook> _forwardHooks = [];
    private readonly List<BackwardHook> _backwardHooks = [];
    private Action<Tensor>? _gradientRelay;

    /// <summary>True in training mode (dropout active, batch statistics), false in evaluation; set with <see cref="SetTraining"/>. Starts true.</summary>
    public bool Training { get; private set; } = true;

    /// <summary>Runs the layer, then its hooks.</summary>
    public Tensor Forward(Tape tape, Tensor x)
    {
        var y = ForwardCore(tape, x);
        foreach (var hook in _forwardHooks)
            hook(this, x, y);
        if (_backwardHooks.Count > 0)
        {
            _gradientRelay ??= g =>
            {
                foreach (var hook in _backwardHooks)
                    hook(this, g);
            };
            GradientHookOp.Attach(tape, y, _gradientRelay);
        }
        return y;
    }

    /// <summary>The layer's own computation on <paramref name="x"/>, recorded on <paramref name="tape"/>; <see cref="Forward"/> calls it and then the hooks.</summary>
    protected abstract Tensor ForwardCore(Tape tape, Tensor x);

    /// <summary>Adds a hook called after every forward of this module with its input and output.</summary>
    public void AddForwardHook(ForwardHook hook) => _forwardHooks.Add(hook);

    /// <summary>Removes a hook added by <see cref="AddForwardHook"/> (nothing if absent).</summary>
    public void RemoveForwardHook(ForwardHook hook) => _forwardHooks.Remove(hook);

    /// <summary>Adds a hook called during backward with the gradient of the loss with respect to this module's output.</summary>
    public void AddBackwardHook(BackwardHook hook) => _backwardHooks.Add(hook);

    /// <summary>Removes a hook added by <see cref="AddBackwardHook"/> (nothing if absent).</summary>
    public void RemoveBackwardHook(BackwardHook hook) => _backwardHooks.Remove(hook);

    /// <summary>Switches this module and every sub-module between training and evaluation (dropout).</summary>
    public void SetTraining(bool training)
    {
        Training = training;
        foreach (var (_, child) in _children)
            child.SetTraining(training);
    }

    /// <summary>Registers <paramref name="tensor"/> as a trained parameter named <paramref name="name"/>: it requires a gradient and is seen by optimizers and checkpoints. Returns it.</summary>
    protected Tensor RegisterParameter(string name, Tensor tensor)
    {
        tensor.RequiresGrad = true;
        tensor.Name = name;
        _parameters.Add((name, tensor));
        return tensor;
    }

    /// <summary>
    /// Registers model state that is not trained (BatchNorm's running statistics): no gradient,
    /// not seen by optimizers, but saved and restored with the parameters (<see cref="NamedState"/>).
    /// </summary>
    protected Tensor RegisterBuffer(string name, Tensor tensor)
    {
        tensor.RequiresGrad = false;
        tensor.Name = name;
        _buffers.Add((name, tensor));
        return tensor;
    }

    /// <summary>Registers <paramref name="module"/> as the child <paramref name="name"/> (its parameters get the prefix <c>name.</c>; training mode propagates to it). Returns it.</summary>
    protected T RegisterModule<T>(string name, T module) where T : Module
    {
        _children.Add((name, module));
        return module;
    }

    /// <summary>Direct sub-modules in registration order.</summary>
    public IReadOnlyList<(string Name, Module Module)> Children => _children;

    /// <summary>Every parameter with its dotted path, in a stable order.</summary>
    public IEnumerable<(string Name, Tensor Tensor)> NamedParameters(string prefix = "")
    {
        foreach (var (name, p) in _parameters)
            yield return (prefix + name, p);
        foreach (var (name, child) in _children)
            foreach (var np in child.NamedParameters(prefix + name + "."))
                yield return np;
    }

    /// <summary>Every buffer with its dotted path (<c>bn1.running_mean</c>), in a stable order.</summary>
    public IEnumerable<(string Name, Tensor Tensor)> NamedBuffers(string prefix = "")
    {
        foreach (var (name, b) in _buffers)
            yield return (prefix + name, b);
        foreach (var (name, child) in _children)
            foreach (var nb in child.NamedBuffers(prefix + name + "."))
                yield return nb;
    }

    /// <summary>
    /// The whole model state, parameters and buffers, in PyTorch's state_dict order (each
    /// module's parameters, its buffers, then its children): what checkpoints save and load.
    /// </summary>
    public IEnumerable<(string Name, Tensor Tensor)> NamedState(string prefix = "")
    {
        foreach (var (name, p) in _parameters)
            yield return (prefix + name, p);
        foreach (var (name, b) in _buffers)
            yield return (prefix + name, b);
        foreach (var (name, child) in _children)
            foreach (var ns in child.NamedState(prefix + name + "."))
                yield return ns;
    }

    /// <summary>Every sub-module (this one first) with its dotted path.</summary>
    public IEnumerable<(string Name, Module Module)> NamedModules(string prefix = "")
    {
        yield return (prefix.TrimEnd('.'), this);
        foreach (var (name, child) in _children)
            foreach (var nm in child.NamedModules(prefix + name + "."))
                yield return nm;
    }

    /// <summary>Every parameter, in the order of <see cref="NamedParameters"/> (what an optimizer takes).</summary>
    public IReadOnlyList<Tensor> Parameters() => NamedParameters().Select(p => p.Tensor).ToList();

    /// <summary>Total number of parameter elements.</summary>
    public long ParameterCount() => NamedParameters().Sum(p => (long)p.Tensor.Length);
}

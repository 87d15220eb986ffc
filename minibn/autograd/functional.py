"""PyTorch's ``torch.autograd.functional``: derivatives of a function of tensors, as functions.

    jacobian(f, x)      J[i..., j...] = d f(x)[i...] / d x[j...]       (one backward per output element)
    hessian(f, x)       H = jacobian of grad f, for a one-element f
    vjp(f, x, v)        v^T J                                           (one backward)
    jvp(f, x, v)        J v, as the vjp of the vjp: d/du (u^T J) v      (two backwards)
    vhp(f, x, v)        v^T H                                           (two backwards)
    hvp(f, x, v)        H v  (= vhp: H is symmetric for a twice-differentiable f)

``inputs`` is a Tensor or a tuple of them, and the results follow PyTorch's
nesting: a tuple over inputs where inputs is a tuple, over outputs where f
returns a tuple. Each input is used as a detached copy that requires grad, except with
``create_graph=True`` an input that requires grad itself, which is kept, so that the result
is differentiable with respect to it (PyTorch's rule). An input the output does not depend on gets zeros,
or an error with ``strict=True``.
"""

from __future__ import annotations

from ..tensor import Tensor, _wrap
from . import grad


def _as_inputs(inputs, create_graph, what="inputs"):
    single = isinstance(inputs, Tensor)
    xs = (inputs,) if single else tuple(inputs)
    for i, x in enumerate(xs):
        if not isinstance(x, Tensor):
            raise TypeError(f"{what}: element {i} is a {type(x).__name__}, not a Tensor")
        if x.dtype.kind not in "fc":
            raise TypeError(f"{what}: element {i} is {x.dtype}; derivatives need floating point tensors")
    # each input on its own: kept (so the result depends on it) when a graph is wanted and it has one
    xs = tuple(x if create_graph and x.requires_grad else x.detach().requires_grad_() for x in xs)
    return xs, single


def _as_outputs(out, op):
    single = isinstance(out, Tensor)
    outs = (out,) if single else tuple(out) if isinstance(out, (tuple, list)) else None
    if outs is None or not all(isinstance(o, Tensor) for o in outs):
        raise TypeError(f"{op}: the function must return a Tensor or a tuple of Tensors, got {type(out).__name__}")
    return outs, single


def _vectors(v, like, op, name="v"):
    if v is None:
        if any(t.numel() != 1 for t in like):
            raise ValueError(f"{op}: {name} can be omitted only when every {'output' if name == 'v' else name} "
                             "has one element")
        return tuple(_wrap(t.xp.ones_like(t._data)) for t in like)
    vs = (v,) if isinstance(v, Tensor) else tuple(v)
    if len(vs) != len(like) or any(tuple(a.shape) != tuple(b.shape) for a, b in zip(vs, like)):
        raise ValueError(f"{op}: {name} has shapes {[tuple(a.shape) for a in vs]}, expected "
                         f"{[tuple(b.shape) for b in like]}")
    return vs


def _grads(outputs, inputs, grad_outputs, create_graph, strict, op):
    """sum_k grad_outputs[k] . d outputs[k] / d inputs, zeros (or an error if ``strict``) where unused."""
    live = [(o, g) for o, g in zip(outputs, grad_outputs) if o.requires_grad]
    if len(live) < len(outputs) and strict:
        raise RuntimeError(f"{op}: an output does not depend on the inputs (strict=True)")
    found = (grad([o for o, _ in live], inputs, [g for _, g in live], retain_graph=True, create_graph=create_graph,
                  allow_unused=True) if live else (None,) * len(inputs))
    out = []
    for i, (g, x) in enumerate(zip(found, inputs)):
        if g is None:
            if strict:
                raise RuntimeError(f"{op}: the output does not depend on input {i} (strict=True)")
            g = _wrap(x.xp.zeros_like(x._data))
        out.append(g)
    return tuple(out)


def _nest(values, single):
    return values[0] if single else tuple(values)


def vjp(func, inputs, v=None, create_graph=False, strict=False):
    """(func(inputs), v^T J): the vector-Jacobian product, one backward pass."""
    xs, single_in = _as_inputs(inputs, create_graph)
    outs, single_out = _as_outputs(func(*xs), "vjp")
    products = _grads(outs, xs, _vectors(v, outs, "vjp"), create_graph, strict, "vjp")
    return _nest([o if create_graph else o.detach() for o in outs], single_out), _nest(products, single_in)


def jvp(func, inputs, v=None, create_graph=False, strict=False):
    """(func(inputs), J v): the Jacobian-vector product, as the derivative of u -> u^T J in u along v."""
    xs, single_in = _as_inputs(inputs, create_graph)
    outs, single_out = _as_outputs(func(*xs), "jvp")
    vs = _vectors(v, xs, "jvp", name="input")
    dummies = tuple(_wrap(o.xp.zeros_like(o._data)).requires_grad_() for o in outs)
    pulled = _grads(outs, xs, dummies, True, strict, "jvp")  # u^T J, linear in u
    products = _grads([p for p in pulled], dummies, vs, create_graph, strict, "jvp")
    return _nest([o if create_graph else o.detach() for o in outs], single_out), _nest(products, single_out)


def jacobian(func, inputs, create_graph=False, strict=False, vectorize=False, strategy="reverse-mode"):
    """d func(inputs) / d inputs, one Tensor of shape output.shape + input.shape per (output, input) pair,
    one backward pass per output element. ``vectorize`` (PyTorch's batching of those passes, which gives
    the same values) is accepted and changes nothing here."""
    if strategy != "reverse-mode":
        raise ValueError(f"jacobian: only strategy='reverse-mode' is available, got {strategy!r}")
    xs, single_in = _as_inputs(inputs, create_graph)
    outs, single_out = _as_outputs(func(*xs), "jacobian")
    from ..ops import stack  # (ops import autograd: a module-level import would be circular)

    table = []
    for o in outs:
        rows = []
        for k in range(o.numel()):
            onehot = o.xp.zeros(o.numel(), dtype=o.dtype)
            onehot[k] = 1
            rows.append(_grads([o], xs, [_wrap(onehot.reshape(o.shape))], create_graph, strict, "jacobian"))
        per_input = []
        for i, x in enumerate(xs):
            column = [r[i] for r in rows]
            block = stack(column).reshape(tuple(o.shape) + tuple(x.shape)) if column else \
                _wrap(x.xp.zeros(tuple(o.shape) + tuple(x.shape), dtype=x.dtype))
            per_input.append(block if create_graph else block.detach())
        table.append(_nest(per_input, single_in))
    return _nest(table, single_out)


def _scalar(func, op):
    def checked(*xs):
        out = func(*xs)
        if not isinstance(out, Tensor) or out.numel() != 1:
            raise RuntimeError(f"{op}: the function must return a Tensor with one element, got "
                               f"{tuple(getattr(out, 'shape', ())) or type(out).__name__}")
        return out
    return checked


def hessian(func, inputs, create_graph=False, strict=False, vectorize=False, outer_jacobian_strategy="reverse-mode"):
    """d^2 func / d inputs^2 of a one-element func: a Tensor of shape input.shape * 2, or a tuple of tuples
    (``h[i][j]`` for inputs i and j)."""
    f = _scalar(func, "hessian")

    def gradient(*xs):
        return _nest(_grads([f(*xs)], xs, [None], True, strict, "hessian"), isinstance(inputs, Tensor))

    return jacobian(gradient, inputs, create_graph=create_graph, strict=strict, strategy=outer_jacobian_strategy)


def vhp(func, inputs, v=None, create_graph=False, strict=False):
    """(func(inputs), v^T H) for a one-element func: two backward passes."""
    xs, single_in = _as_inputs(inputs, create_graph)
    out = _scalar(func, "vhp")(*xs)
    g = _grads([out], xs, [None], True, strict, "vhp")
    products = _grads(g, xs, _vectors(v, xs, "vhp", name="input"), create_graph, strict, "vhp")
    return (out if create_graph else out.detach()), _nest(products, single_in)


def hvp(func, inputs, v=None, create_graph=False, strict=False):
    """(func(inputs), H v) for a one-element func; H is symmetric, so this is v^T H (``vhp``)."""
    return vhp(func, inputs, v, create_graph, strict)

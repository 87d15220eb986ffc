"""Reverse-mode automatic differentiation.

A :class:`Function` is one node of the graph: ``forward`` maps arrays (NumPy
or CuPy) to an array, ``backward`` maps the output's gradient (a Tensor) to the
inputs' gradients (Tensors), written with differentiable minibn ops. Because
backward is itself made of ops, running it with grad mode on records a graph
of the backward pass: that is all ``create_graph=True`` needs for second,
third, ... derivatives.

The graph's vertices are Functions (non-leaf tensors) and leaf tensors. Each
Function keeps ``edges``, one per input: the producing Function, the leaf
tensor itself when it requires grad, or None. Intermediate arrays live only
as long as some Function saved them for backward.
"""

from __future__ import annotations

import os
import traceback

import numpy as np

from .. import devices
from ..grad_mode import (_AnomalyMode, _GradMode, detect_anomaly, enable_grad,  # noqa: F401
                        is_grad_enabled, no_grad, set_grad_enabled)
from ..tensor import Tensor, _wrap
from .trace import Trace, _Tracing, trace  # noqa: F401  (mb.trace)


def _all_finite(array) -> bool:
    if array.dtype.kind not in "fc":
        return True
    return bool(devices.array_module(array).isfinite(array).all())


_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # minibn/


def _creation_site() -> str:
    """The innermost stack frame outside minibn itself: where the user's code made the op."""
    frames = traceback.extract_stack()
    user = [f for f in frames if not os.path.abspath(f.filename).startswith(_PACKAGE_DIR + os.sep)]
    frame = (user or frames)[-1]
    return f'File "{frame.filename}", line {frame.lineno}, in {frame.name}\n    {frame.line}'


class Function:
    """One differentiable op: ``forward`` on arrays, ``backward`` on Tensors.

    Subclasses set what backward needs: ``save_inputs`` keeps the input
    tensors, ``save_output`` the output (without a reference cycle); small
    metadata (shapes, axes) goes in attributes set by ``forward``. Saved
    tensors are released after backward unless ``retain_graph=True``.

    ``backward(grad)`` returns one gradient (or None) per input; it may read
    ``self.needs[i]`` to skip gradients nobody asked for.
    """

    __slots__ = ("edges", "needs", "xp", "_inputs", "_versions", "_out", "_released",
                 "_hooks", "_retain", "_meta", "_site", "__dict__", "__weakref__")

    save_inputs = False
    save_output = False
    is_view = False  # the output aliases the first input's memory
    analytic = True  # complex-analytic, so complex-step differentiation passes through

    def forward(self, *arrays):
        raise NotImplementedError

    def backward(self, grad):
        raise NotImplementedError

    @property
    def name(self) -> str:
        return type(self).__name__

    def __repr__(self):
        return f"<{self.name}Backward>"

    # -- building the graph -------------------------------------------------

    @classmethod
    def apply(cls, *inputs, **attrs) -> Tensor:
        """Run forward on ``inputs`` (Tensors or Python scalars) and record the op."""
        fn = cls.__new__(cls)
        if attrs:
            fn.__dict__ = attrs
        # (plain loops rather than comprehensions here and below: on Python 3.11 each comprehension is a
        # function call, and this is the hottest path in minibn)
        arrays = []
        for t in inputs:
            arrays.append(t._data if isinstance(t, Tensor) else t)
        xp = devices.only_module
        if xp is None:  # several array libraries are loaded: find this op's, and refuse a mix
            xp = devices.common_module(cls.__name__, inputs, arrays)
        fn.xp = xp
        if not cls.analytic:
            _check_real(cls, inputs)
        try:
            out = fn.forward(*arrays)
        except ValueError as exc:
            shapes = ", ".join(str(tuple(getattr(a, "shape", ()))) for a in arrays)
            raise ValueError(f"{cls.__name__}: operands of shapes {shapes}: {exc}") from None
        if isinstance(out, np.generic):
            out = np.asarray(out)  # NumPy reductions and 0-d ufuncs hand back scalars
        elif not cls.is_view and out.ndim > 1 and not out.flags.c_contiguous:
            out = xp.ascontiguousarray(out)  # a new tensor is C-ordered, as PyTorch's reductions, products, cats give
        if _AnomalyMode.enabled:
            fn._site = _creation_site()
            fn._check_forward(arrays, out)
        result = Tensor.__new__(Tensor)  # _wrap, inlined
        result._data = out
        result._grad = result._hooks = result._node = None
        result._requires_grad = False
        result._version = inputs[0]._version if cls.is_view else [0]
        if not _GradMode.enabled:
            return result
        needs = []
        edges = []  # the vertex each input's gradient goes to: its node, or the leaf itself
        for t in inputs:
            need = isinstance(t, Tensor) and t._requires_grad
            needs.append(need)
            edges.append((t._node or t) if need else None)
        if True not in needs:
            return result
        fn.needs = needs
        fn.edges = edges
        fn._released = False
        fn._hooks = fn._retain = None
        fn._meta = (out.shape, out.dtype)
        if cls.save_inputs:
            fn._inputs = inputs
            versions = []
            for t in inputs:
                versions.append(t._version[0] if isinstance(t, Tensor) else None)
            fn._versions = versions
        if cls.save_output:
            fn._out = (out, result._version, result._version[0])
        result._node = fn
        result._requires_grad = True
        return result

    # -- what backward reads -------------------------------------------------

    def _raise_freed(self):
        raise RuntimeError(
            f"{self.name}: trying to backward through the graph a second time: its saved "
            "tensors were freed by the first backward. Pass retain_graph=True to the first "
            "backward() or grad() call if you need to go through the graph again."
        )

    @property
    def inputs(self) -> tuple:
        """The saved input tensors (Python scalars stay as they were)."""
        if self._released:
            self._raise_freed()
        for i, (t, v) in enumerate(zip(self._inputs, self._versions)):
            if v is not None and t._version[0] != v:
                _modified(self, f"input {i}", t, v)
        return self._inputs

    @property
    def output(self) -> Tensor:
        """The saved output, as a tensor whose gradient flows back into this op."""
        if self._released:
            self._raise_freed()
        array, version, v = self._out
        if version[0] != v:
            _modified(self, "output", _wrap(array), v, now=version[0])
        return _wrap(array, node=self, version=version)

    def _check_forward(self, arrays, out):
        if not _all_finite(out) and all(_all_finite(a) for a in arrays if hasattr(a, "dtype")):
            raise RuntimeError(
                f"anomaly: {self.name} produced NaN or inf in forward from finite inputs.\n"
                f"The op was created at:\n{self._site}"
            )


def _check_real(cls, inputs):
    for t in inputs:
        if (isinstance(t, Tensor) and t._data.dtype.kind == "c") or isinstance(t, complex):
            raise TypeError(
                f"{cls.__name__.lower()} is not complex-analytic, so complex-step differentiation "
                "cannot pass through it (got a complex input); use gradcheck(..., "
                "method='richardson') or method='central' for functions with this op"
            )


def _modified(fn, what, tensor, saved_version, now=None):
    now = tensor._version[0] if now is None else now
    raise RuntimeError(
        f"{fn.name}: its {what} (shape {tuple(tensor.shape)}, dtype {tensor.dtype}) was modified "
        f"in place after the op saved it for backward (version {saved_version}, now {now}). "
        "Gradients would be wrong; use an out-of-place op (x = x + y) or clone() before modifying."
    )


# --------------------------------------------------------------------------
# The backward walk


def _dependencies(roots, consumers=None):
    """For each vertex reachable from ``roots``, the number of edges leading into it.

    An iterative traversal, so graphs 100 000 ops deep are fine. With a dict
    for ``consumers`` it also records, for each vertex, the Functions that feed it.
    """
    deps = dict.fromkeys(roots, 0)
    stack = [r for r in deps if not isinstance(r, Tensor)]
    get = deps.get
    while stack:
        v = stack.pop()
        for e in v.edges:
            if e is None:
                continue
            if consumers is not None:
                if e in consumers:
                    consumers[e].append(v)
                else:
                    consumers[e] = [v]
            n = get(e)
            if n is None:
                deps[e] = 1
                if not isinstance(e, Tensor):  # leaves have no edges to follow
                    stack.append(e)
            else:
                deps[e] = n + 1
    return deps


def _leading_to(targets, consumers):
    """The Functions with an edge into a target or into a Function that leads to one."""
    expand = set()
    wanted = set(targets)
    frontier = list(targets)
    while frontier:
        for c in consumers.get(frontier.pop(), ()):
            expand.add(c)
            if c not in wanted:
                wanted.add(c)
                frontier.append(c)
    return expand


def _vertex(t: Tensor):
    return t._node if t._node is not None else t


def run_backward(outputs, grad_outputs, *, inputs=None, retain_graph=False,
                 create_graph=False, allow_unused=False):
    """Backpropagate ``grad_outputs`` from ``outputs``.

    Vertices are processed once all the gradient flowing into them has
    arrived (Kahn's algorithm on the dependency counts). With ``inputs=None``
    gradients accumulate into the ``.grad`` of every leaf that requires grad;
    otherwise the gradients with respect to ``inputs`` are returned, only the
    ops that lead to them run, and no ``.grad`` is touched.
    """
    roots = [_vertex(o) for o in outputs]
    targets = expand = None
    if inputs is None:
        deps = _dependencies(roots)
    else:
        consumers = {}
        deps = _dependencies(roots, consumers)
        targets = {}
        for i, t in enumerate(inputs):
            targets.setdefault(_vertex(t), []).append(i)
        expand = _leading_to(targets, consumers)
    grads = {}
    for r, g in zip(roots, grad_outputs):
        grads[r] = grads[r] + g if r in grads else g
    results = [None] * len(inputs) if inputs is not None else None
    stored = {id(g._data) for g in grad_outputs}  # arrays a leaf's .grad must not share
    ready = [r for r in dict.fromkeys(roots) if deps[r] == 0]

    tracer = _Tracing.enabled
    if tracer is not None:
        tracer._start_pass()
    prev_mode = _GradMode.enabled
    _GradMode.enabled = create_graph
    anomaly = _AnomalyMode.enabled
    _AnomalyMode.enabled = False  # ops inside a backward are checked as part of that backward
    try:
        while ready:
            v = ready.pop()
            g = grads.pop(v, None)
            if isinstance(v, Tensor):  # a leaf
                if g is not None:
                    if v._hooks:
                        g = _run_hooks(v._hooks, g)
                    if tracer is not None:
                        tracer._record(v, g, None, "accumulated into .grad" if targets is None else
                                       "returned by grad()" if v in targets else "not asked for")
                    if targets is None:
                        _accumulate(v, g, create_graph, stored)
                    elif v in targets:
                        for i in targets[v]:
                            results[i] = g
                continue
            in_grads = None
            if g is not None:
                if v._hooks:
                    g = _run_hooks(v._hooks, g)
                if v._retain is not None:
                    _retain(v._retain(), g, create_graph)
                if targets is not None and v in targets:
                    for i in targets[v]:
                        results[i] = g
                if targets is None or v in expand:
                    in_grads = v.backward(g)
                    if in_grads.__class__ is not tuple:
                        in_grads = (in_grads,)
                    if not retain_graph:
                        v._released = True
                        v._inputs = v._out = None
                    if anomaly:
                        _check_backward(v, g, in_grads)
                    if tracer is not None:
                        tracer._record(v, g, in_grads)
            for i, e in enumerate(v.edges):
                if e is None:
                    continue
                if in_grads is not None and in_grads[i] is not None:
                    gi = in_grads[i]
                    shape, dtype = e._meta if isinstance(e, Function) else (e._data.shape, e._data.dtype)
                    if gi._data.shape != shape or gi._data.dtype != dtype:
                        _bad_gradient(v, gi, shape, dtype)
                    grads[e] = grads[e] + gi if e in grads else gi
                n = deps[e] - 1
                deps[e] = n
                if n == 0:
                    ready.append(e)
    finally:
        _GradMode.enabled = prev_mode
        _AnomalyMode.enabled = anomaly

    if inputs is None:
        return None
    for i, (t, g) in enumerate(zip(inputs, results)):
        if g is None and not allow_unused:
            raise RuntimeError(
                f"input {i} (shape {tuple(t.shape)}) was not used to compute the outputs, so "
                "it has no gradient; pass allow_unused=True to get None for it"
            )
    return tuple(results)


def _run_hooks(hooks, g):
    for hook in list((hooks or {}).values()):
        new = hook(g)
        if new is not None:
            if not isinstance(new, Tensor) or new.shape != g.shape:
                raise RuntimeError(
                    f"a gradient hook must return None or a Tensor of shape {tuple(g.shape)}, "
                    f"got {type(new).__name__} {getattr(new, 'shape', '')}"
                )
            g = new
    return g


def _accumulate(leaf, g, create_graph, stored):
    """Add ``g`` to ``leaf.grad``. Without create_graph a ``.grad`` never shares memory with another
    array; with it, ``.grad`` is the gradient tensor itself, part of the graph (and may be shared)."""
    old = leaf._grad  # (set directly: the shapes were checked as the gradient flowed; .grad's setter is for users)
    if old is not None and not create_graph:  # the sum is a fresh array (an array: 0-d sums are NumPy scalars)
        total = old._data + g._data
        leaf._grad = _wrap(np.asarray(total) if isinstance(total, np.generic) else total)
        return
    if not create_graph:
        a = g._data
        if id(a) in stored or a.base is not None:
            a = a.copy()
        stored.add(id(a))
        g = _wrap(a)
    leaf._grad = g if old is None else old + g


def _retain(tensor, g, create_graph):
    """``retain_grad()``: keep a non-leaf's gradient in its ``.grad`` (accumulating, as leaves do)."""
    if tensor is None:  # the tensor itself is gone; nobody can read its .grad
        return
    if not create_graph:
        g = _wrap(g._data.copy())
    tensor._grad = g if tensor._grad is None else tensor._grad + g


def _bad_gradient(fn, g, shape, dtype):
    raise RuntimeError(
        f"internal error: {fn.name}.backward returned a gradient of shape {g.shape} and dtype "
        f"{g.dtype} for an input of shape {shape} and dtype {dtype}"
    )


def _check_backward(fn, g, in_grads):
    if not _all_finite(g._data):
        return
    for i, gi in enumerate(in_grads):
        if gi is not None and not _all_finite(gi._data):
            site = getattr(fn, "_site", None) or "(created outside detect_anomaly)"
            raise RuntimeError(
                f"anomaly: {fn.name}.backward produced NaN or inf in the gradient of input {i} "
                f"from a finite output gradient.\nThe op was created at:\n{site}"
            )


# --------------------------------------------------------------------------
# Public entry points


def _as_tuple(x):
    """One Tensor, or any iterable of them (a list, or a generator such as ``net.parameters()``)."""
    if isinstance(x, Tensor):
        return (x,)
    try:
        return tuple(x)
    except TypeError:
        return (x,)  # not iterable: reported by the caller with its type


def __getattr__(name):
    """``mb.autograd.gradcheck``, ``gradgradcheck`` and ``functional``, where PyTorch users look for them."""
    if name == "functional":
        import importlib

        return importlib.import_module(".functional", __name__)
    if name in ("gradcheck", "gradgradcheck"):
        from .. import gradcheck

        return getattr(gradcheck, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _root_gradients(outputs, grad_outputs):
    grads = []
    for i, (o, g) in enumerate(zip(outputs, grad_outputs)):
        if not isinstance(o, Tensor):
            raise TypeError(f"output {i} is a {type(o).__name__}, not a Tensor")
        if not o._requires_grad:
            raise RuntimeError(
                f"output {i} (shape {tuple(o.shape)}) does not require grad and has no graph: "
                "none of its inputs requires grad, or it was computed under no_grad()"
            )
        if g is None:
            if o._data.size != 1:
                raise RuntimeError(
                    f"grad can be created implicitly only for scalar outputs, but output {i} has "
                    f"shape {tuple(o.shape)}; pass gradient= (backward) or grad_outputs= (grad)"
                )
            g = _wrap(o.xp.ones_like(o._data))
        else:
            if not isinstance(g, Tensor):
                g = _wrap(o.xp.asarray(g, dtype=o.dtype))
            if g.shape != o.shape:
                raise RuntimeError(
                    f"gradient for output {i} has shape {tuple(g.shape)} but the output has "
                    f"shape {tuple(o.shape)}"
                )
            if g.device != o.device:
                raise TypeError(f"gradient for output {i} is on {g.device}, the output on {o.device}")
            if g.dtype != o.dtype:
                g = g.to(o.dtype)
        grads.append(g)
    return grads


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False) -> None:
    """Accumulate d(tensors)/d(leaf) into ``leaf.grad`` for every leaf that requires grad."""
    tensors = _as_tuple(tensors)
    grad_tensors = _as_tuple(grad_tensors) if grad_tensors is not None else (None,) * len(tensors)
    if len(grad_tensors) != len(tensors):
        raise ValueError(f"got {len(grad_tensors)} gradients for {len(tensors)} tensors")
    retain_graph = create_graph if retain_graph is None else retain_graph
    grads = _root_gradients(tensors, grad_tensors)
    run_backward(tensors, grads, retain_graph=retain_graph, create_graph=create_graph)


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False,
         allow_unused=False) -> tuple:
    """Gradients of ``outputs`` with respect to ``inputs``, as a tuple of Tensors.

    Computes sum_k grad_outputs[k] . d outputs[k] / d inputs, i.e. a
    vector-Jacobian product, without touching any ``.grad``. With
    ``create_graph=True`` the result is differentiable again (for
    Hessian-vector products: ``mb.grad(g @ v, w)`` where ``g = mb.grad(loss, w,
    create_graph=True)``).
    """
    outputs = _as_tuple(outputs)
    inputs = _as_tuple(inputs)
    if grad_outputs is None:
        grad_outputs = (None,) * len(outputs)
    grad_outputs = _as_tuple(grad_outputs)
    if len(grad_outputs) != len(outputs):
        raise ValueError(f"got {len(grad_outputs)} grad_outputs for {len(outputs)} outputs")
    for i, t in enumerate(inputs):
        if not isinstance(t, Tensor):
            raise TypeError(f"input {i} is a {type(t).__name__}, not a Tensor")
        if not t._requires_grad:
            raise RuntimeError(f"input {i} (shape {tuple(t.shape)}) does not require grad")
    retain_graph = create_graph if retain_graph is None else retain_graph
    grads = _root_gradients(outputs, grad_outputs)
    return run_backward(outputs, grads, inputs=inputs, retain_graph=retain_graph,
                        create_graph=create_graph, allow_unused=allow_unused)

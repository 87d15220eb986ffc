"""Reverse-mode automatic differentiation.

A :class:`Function` is one node of the graph: ``forward`` maps backend arrays
to a backend array, ``backward`` maps the output's gradient (a Tensor) to the
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

import functools
import traceback

import numpy as np

from . import backend
from .tensor import Tensor, _wrap


class _GradMode:
    enabled = True


class _AnomalyMode:
    enabled = False


def is_grad_enabled() -> bool:
    return _GradMode.enabled


class set_grad_enabled:
    """Context manager and decorator that switches graph recording on or off."""

    def __init__(self, mode: bool):
        self.mode = bool(mode)
        self.prev = _GradMode.enabled
        _GradMode.enabled = self.mode  # also works as a plain call, like torch.set_grad_enabled

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        _GradMode.enabled = self.prev

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            prev = _GradMode.enabled
            _GradMode.enabled = self.mode
            try:
                return fn(*args, **kwargs)
            finally:
                _GradMode.enabled = prev

        return wrapper


class _GradModeContext:
    mode = True

    def __enter__(self):
        self.prev = _GradMode.enabled
        _GradMode.enabled = self.mode
        return self

    def __exit__(self, *exc):
        _GradMode.enabled = self.prev

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with self.__class__():
                return fn(*args, **kwargs)

        return wrapper


class no_grad(_GradModeContext):
    """Run without recording a graph: ``with mb.no_grad(): ...`` or ``@mb.no_grad()``."""

    mode = False


class enable_grad(_GradModeContext):
    """Record a graph again inside a ``no_grad`` block."""

    mode = True


class detect_anomaly:
    """Find the op that first produced NaN or inf, forward or backward.

    Inside the block every op remembers where it was created; an op whose
    inputs are finite but whose output (or, in backward, whose input gradient)
    is not raises a RuntimeError naming the op and that place in your code.
    Slow: use it to hunt a NaN, not to train.
    """

    def __init__(self, check_nan: bool = True):
        self.check_nan = check_nan

    def __enter__(self):
        self.prev = _AnomalyMode.enabled
        _AnomalyMode.enabled = self.check_nan
        return self

    def __exit__(self, *exc):
        _AnomalyMode.enabled = self.prev

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with detect_anomaly(self.check_nan):
                return fn(*args, **kwargs)

        return wrapper


def _all_finite(array) -> bool:
    if array.dtype.kind not in "fc":
        return True
    return bool(backend.array_module(array).isfinite(array).all())


def _creation_site() -> str:
    frames = traceback.extract_stack()[:-3]
    here = __name__.rpartition(".")[0]
    user = [f for f in frames if f"/{here}/" not in f.filename.replace("\\", "/")]
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
            fn.__dict__.update(attrs)
        first = None
        arrays = []
        record = False
        for t in inputs:
            if isinstance(t, Tensor):
                a = t._data
                if first is None:
                    first = t
                elif type(a) is not type(first._data):
                    _device_mismatch(cls, inputs)
                record = record or t._requires_grad
                arrays.append(a)
            else:
                arrays.append(t)
        if not cls.analytic:
            _check_real(cls, inputs)
        fn.xp = backend.array_module(first._data)
        try:
            out = fn.forward(*arrays)
        except ValueError as exc:
            shapes = ", ".join(str(tuple(getattr(a, "shape", ()))) for a in arrays)
            raise ValueError(f"{cls.__name__}: operands of shapes {shapes}: {exc}") from None
        if isinstance(out, np.generic):
            out = np.asarray(out)  # NumPy reductions and 0-d ufuncs hand back scalars
        record = record and _GradMode.enabled
        version = first._version if cls.is_view else None
        if not record:
            if _AnomalyMode.enabled:
                fn._site = _creation_site()
                fn._check_forward(arrays, out)
            return _wrap(out, version=version)
        fn.needs = tuple(isinstance(t, Tensor) and t._requires_grad for t in inputs)
        fn.edges = tuple(
            (t._node if t._node is not None else (t if t._requires_grad else None))
            if isinstance(t, Tensor) else None
            for t in inputs
        )
        fn._released = False
        fn._hooks = fn._retain = None
        fn._meta = (out.shape, out.dtype)
        if cls.save_inputs:
            fn._inputs = inputs
            fn._versions = tuple(t._version[0] if isinstance(t, Tensor) else 0 for t in inputs)
        result = _wrap(out, node=fn, version=version)
        if cls.save_output:
            fn._out = (out, result._version, result._version[0])
        if _AnomalyMode.enabled:
            fn._site = _creation_site()
            fn._check_forward(arrays, out)
        return result

    # -- what backward reads -------------------------------------------------

    def _check_saved(self):
        if self._released:
            raise RuntimeError(
                f"{self.name}: trying to backward through the graph a second time: its saved "
                "tensors were freed by the first backward. Pass retain_graph=True to the first "
                "backward() or grad() call if you need to go through the graph again."
            )

    @property
    def inputs(self) -> tuple:
        """The saved input tensors (Python scalars stay as they were)."""
        self._check_saved()
        for i, (t, v) in enumerate(zip(self._inputs, self._versions)):
            if isinstance(t, Tensor) and t._version[0] != v:
                _modified(self, f"input {i}", t, v)
        return self._inputs

    @property
    def output(self) -> Tensor:
        """The saved output, as a tensor whose gradient flows back into this op."""
        self._check_saved()
        array, version, v = self._out
        if version[0] != v:
            _modified(self, "output", _wrap(array), v, now=version[0])
        return _wrap(array, node=self, version=version)

    def release(self):
        """Drop the saved tensors: backward through this op is no longer possible."""
        self._released = True
        self._inputs = self._out = None

    def _check_forward(self, arrays, out):
        if not _all_finite(out) and all(_all_finite(a) for a in arrays if hasattr(a, "dtype")):
            raise RuntimeError(
                f"anomaly: {self.name} produced NaN or inf in forward from finite inputs.\n"
                f"The op was created at:\n{self._site}"
            )


def _device_mismatch(cls, inputs):
    parts = [
        f"operand {i}: device={t.device}, dtype={t.dtype}, shape={tuple(t.shape)}"
        for i, t in enumerate(inputs) if isinstance(t, Tensor)
    ]
    raise TypeError(
        f"{cls.__name__}: operands are on different devices ({'; '.join(parts)}); "
        "move them with .to(device) first: minibn never copies between devices implicitly"
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


def _toposort(roots):
    """Vertices reachable from ``roots``, each before the vertices it feeds gradient to.

    An iterative depth-first search (so a graph 100 000 ops deep is fine):
    reversed post-order is a topological order of the graph.
    """
    order = []
    stack = [(r, False) for r in roots]
    seen = set()
    while stack:
        v, finished = stack.pop()
        if finished:
            order.append(v)
            continue
        if v in seen:
            continue
        seen.add(v)
        stack.append((v, True))
        if isinstance(v, Function):
            stack.extend((e, False) for e in v.edges if e is not None and e not in seen)
    order.reverse()
    return order


def _vertex(t: Tensor):
    return t._node if t._node is not None else t


def run_backward(outputs, grad_outputs, *, inputs=None, retain_graph=False,
                 create_graph=False, allow_unused=False):
    """Backpropagate ``grad_outputs`` from ``outputs``.

    With ``inputs=None`` gradients accumulate into the ``.grad`` of every leaf
    that requires grad; otherwise the gradients with respect to ``inputs`` are
    returned and no ``.grad`` is touched.
    """
    roots = [_vertex(o) for o in outputs]
    order = _toposort(roots)
    targets = expand = None
    if inputs is not None:
        targets = {}
        for i, t in enumerate(inputs):
            targets.setdefault(_vertex(t), []).append(i)
        wanted = set(targets)  # vertices that are targets or lead to one
        expand = set()  # Functions whose backward leads to a target
        for v in reversed(order):
            if isinstance(v, Function) and any(e in wanted for e in v.edges):
                expand.add(v)
                wanted.add(v)
    grads = {}
    for r, g in zip(roots, grad_outputs):
        grads[r] = grads[r] + g if r in grads else g
    results = [None] * len(inputs) if inputs is not None else None
    stored = {id(g._data) for g in grad_outputs}  # arrays a leaf's .grad must not share

    prev_mode = _GradMode.enabled
    _GradMode.enabled = create_graph
    anomaly = _AnomalyMode.enabled
    _AnomalyMode.enabled = False  # ops inside a backward are checked as part of that backward
    try:
        for v in order:
            g = grads.pop(v, None)
            if isinstance(v, Tensor):  # a leaf
                if g is None:
                    continue
                g = _run_hooks(v._hooks, g)
                if targets is not None:
                    if v in targets:
                        for i in targets[v]:
                            results[i] = g
                else:
                    _accumulate(v, g, create_graph, stored)
                continue
            if g is None:
                continue
            if v._hooks:
                g = _run_hooks(v._hooks, g)
            if v._retain is not None:
                _retain(v._retain(), g, create_graph)
            if targets is not None:
                if v in targets:
                    for i in targets[v]:
                        results[i] = g
                if v not in expand:
                    continue
            in_grads = v.backward(g)
            if not isinstance(in_grads, tuple):
                in_grads = (in_grads,)
            if not retain_graph:
                v.release()
            if anomaly:
                _check_backward(v, g, in_grads)
            for e, gi in zip(v.edges, in_grads):
                if e is None or gi is None:
                    continue
                _check_grad(v, e, gi)
                grads[e] = grads[e] + gi if e in grads else gi
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
    """Add ``g`` to ``leaf.grad``, never letting a ``.grad`` share memory with another array."""
    if not create_graph:
        a = g._data
        if id(a) in stored or a.base is not None:
            a = a.copy()
        stored.add(id(a))
        g = _wrap(a)
    if leaf.grad is None:
        leaf.grad = g
    elif create_graph:
        leaf.grad = leaf.grad + g
    else:
        leaf.grad = _wrap(leaf.grad._data + g._data)


def _retain(tensor, g, create_graph):
    """``retain_grad()``: keep a non-leaf's gradient in its ``.grad`` (accumulating, as leaves do)."""
    if tensor is None:  # the tensor itself is gone; nobody can read its .grad
        return
    if not create_graph:
        g = _wrap(g._data.copy())
    tensor.grad = g if tensor.grad is None else tensor.grad + g


def _check_grad(fn, vertex, g):
    shape, dtype = vertex._meta if isinstance(vertex, Function) else (vertex.shape, vertex.dtype)
    if g._data.shape != shape or g._data.dtype != dtype:
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
    return tuple(x) if isinstance(x, (list, tuple)) else (x,)


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

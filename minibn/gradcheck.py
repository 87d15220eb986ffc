"""Finite-difference checks of minibn's gradients, always in float64.

For a function f and a random upstream gradient u (never all ones: for batch
norm, an all-ones u makes the input gradient vanish identically and hides
any bug), the analytic vector-Jacobian product J^T u from backward is
compared with numerical derivatives of the scalar phi(x) = u . f(x):

* ``method="central"``: (phi(x + h e) - phi(x - h e)) / 2h, error O(h^2);
* ``method="richardson"``: central differences at h, h/2, h/4 combined by
  Richardson extrapolation, error O(h^6), about 1e-13 in practice;
* ``method="complex"``: the complex step Im phi(x + i h e) / h with h = 1e-30,
  exact to rounding (about 1e-16 relative) wherever f is real-analytic. Ops
  that are not (abs, relu, max, comparisons) refuse complex input clearly.

``fast=False`` checks every entry of J^T u (one numerical derivative per
input element); ``fast=True`` checks v . J^T u along one random direction v
per input (one directional derivative: 1, 2 or 6 evaluations for complex step,
central and Richardson differences), for large inputs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import devices
from .autograd import enable_grad, grad as _grad
from .tensor import Tensor, _wrap

DEFAULT_EPS = {"central": 1e-6, "richardson": 1e-3, "complex": 1e-30}
DEFAULT_TOL = {"central": (1e-7, 1e-6), "richardson": (1e-10, 1e-9), "complex": (1e-12, 1e-11)}


class GradcheckError(AssertionError):
    """Raised when an analytic gradient disagrees with its finite-difference estimate."""


@dataclass
class InputReport:
    """How the analytic and numerical gradients of one input compare."""

    index: int
    shape: tuple
    analytic: np.ndarray
    numeric: np.ndarray
    max_abs_error: float
    max_rel_error: float
    worst: tuple
    passed: bool

    def describe(self) -> str:
        a = self.analytic[self.worst] if self.analytic.ndim else self.analytic
        n = self.numeric[self.worst] if self.numeric.ndim else self.numeric
        where = f"element {self.worst}" if self.worst else "the directional derivative"
        return (f"input {self.index} (shape {self.shape}): worst at {where}: analytic {a!r}, "
                f"numeric {n!r}, |difference| {self.max_abs_error:.3e} (relative {self.max_rel_error:.3e})")


def _prepare(inputs):
    """float64 copies of the float inputs (complex stay complex), keeping requires_grad."""
    if isinstance(inputs, Tensor) or not isinstance(inputs, (tuple, list)):
        inputs = (inputs,)
    out = []
    for x in inputs:
        if isinstance(x, Tensor) and x.dtype.kind in "fc":
            dt = devices.complex128 if x.dtype.kind == "c" else devices.float64
            t = _wrap(x.detach()._data.astype(dt))
            t.requires_grad = x.requires_grad
            out.append(t)
        else:
            out.append(x)
    return tuple(out)


def _outputs(result):
    return tuple(result) if isinstance(result, (tuple, list)) else (result,)


def _leaf(array, requires_grad):
    t = _wrap(np.asarray(array))
    t.requires_grad = requires_grad
    return t


def _host(t):
    return t._data if t.device.type == "cpu" else t._data.get()


class _Phi:
    """phi(x) = sum_k u_k . f_k(x) with one input replaced, evaluated in float64 (or complex)."""

    def __init__(self, fn, inputs, upstream):
        self.fn, self.inputs, self.upstream = fn, inputs, upstream

    def __call__(self, index, array):
        args = list(self.inputs)
        if array.dtype.kind == "c":
            # complex step: every float input goes complex, so that no op casts a complex
            # gradient back to a real input (which would drop the imaginary part it carries)
            args = [_leaf(a._data.astype(devices.complex128), a.requires_grad)
                    if isinstance(a, Tensor) and a.dtype.kind == "f" else a for a in args]
        args[index] = _leaf(array, self.inputs[index].requires_grad)
        with enable_grad():  # the function may take gradients itself (gradgradcheck)
            outs = _outputs(self.fn(*args))
        total = 0.0
        for o, u in zip(outs, self.upstream):
            if o is not None:
                total = total + (_host(o) * u).sum()
        return total


def _derivative(phi, index, base, direction, method, h):
    """d/dt phi(base + t direction) at t = 0."""
    if method == "complex":
        return np.imag(phi(index, base + 1j * h * direction)) / h

    def central(step):
        return (phi(index, base + step * direction) - phi(index, base - step * direction)) / (2 * step)

    if method == "central":
        return central(h)
    d1, d2, d3 = central(h), central(h / 2), central(h / 4)
    r1, r2 = (4 * d2 - d1) / 3, (4 * d3 - d2) / 3
    return (16 * r2 - r1) / 15


def numerical_vjp(fn, inputs, grad_outputs, *, method="richardson", eps=None, fast=False,
                  directions=None):
    """Finite-difference estimates of J^T u for each input that requires grad.

    Returns a list (None for inputs that do not require grad) of arrays with
    the input's shape, or with ``fast=True`` the scalars v . J^T u for the
    given ``directions``.
    """
    if method not in DEFAULT_EPS:
        raise ValueError(f"method must be one of {sorted(DEFAULT_EPS)}, got {method!r}")
    inputs = _prepare(inputs)
    upstream = [None if u is None else np.asarray(_host(u) if isinstance(u, Tensor) else u, dtype=np.float64)
                for u in grad_outputs]
    phi = _Phi(fn, inputs, upstream)
    results = []
    for i, x in enumerate(inputs):
        if not (isinstance(x, Tensor) and x.requires_grad):
            results.append(None)
            continue
        base = _host(x)
        if method == "complex" and base.dtype.kind == "c":
            raise ValueError("method='complex' needs real inputs")
        if fast:
            h = eps if eps is not None else DEFAULT_EPS[method]
            results.append(_derivative(phi, i, base, directions[i], method, h))
            continue
        est = np.zeros(base.shape, dtype=np.float64)
        for j in np.ndindex(base.shape):
            unit = np.zeros(base.shape, dtype=np.float64)
            unit[j] = 1.0
            h = eps if eps is not None else DEFAULT_EPS[method]
            if method != "complex":
                h *= max(1.0, abs(base[j]))
            est[j] = _derivative(phi, i, base, unit, method, h)
        results.append(est)
    return results


def _random_like(shape, rng):
    return rng.standard_normal(shape)


def compare_gradients(fn, inputs, grad_outputs=None, *, method="richardson", eps=None, atol=None,
                      rtol=None, fast=False, seed=0) -> list:
    """Analytic J^T u (minibn's backward) against finite differences, input by input.

    ``grad_outputs`` defaults to random normal upstream gradients. Returns an
    :class:`InputReport` per input that requires grad.
    """
    d_atol, d_rtol = DEFAULT_TOL.get(method, (None, None))
    atol = d_atol if atol is None else atol
    rtol = d_rtol if rtol is None else rtol
    rng = np.random.default_rng(seed)
    inputs = _prepare(inputs)
    diff = [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]
    if not diff:
        raise ValueError("gradcheck: no input requires grad, so there is nothing to check")

    with enable_grad():
        outs = _outputs(fn(*inputs))
    if grad_outputs is None:
        grad_outputs = [None if o is None else _random_like(o.shape, rng) for o in outs]
    elif isinstance(grad_outputs, (Tensor, np.ndarray)):
        grad_outputs = [grad_outputs]
    ups = [None if u is None else np.asarray(_host(u) if isinstance(u, Tensor) else u, dtype=np.float64)
           for u in grad_outputs]

    analytic = _analytic(outs, inputs, diff, ups)
    with enable_grad():
        again = _analytic(_outputs(fn(*inputs)), inputs, diff, ups)
    for i, a, b in zip(diff, analytic, again):
        if not np.allclose(a, b, rtol=1e-13, atol=1e-300):
            raise GradcheckError(f"input {i}: backward is not reentrant: two runs gave different gradients")

    directions = None
    if fast:
        directions = {i: _random_like(inputs[i].shape, rng) for i in diff}
    numeric = numerical_vjp(fn, inputs, ups, method=method, eps=eps, fast=fast, directions=directions)

    reports = []
    for k, i in enumerate(diff):
        a = analytic[k]
        n = numeric[i]
        if fast:
            a = np.asarray((a * directions[i]).sum())
            n = np.asarray(n)
        err = np.abs(a - n)
        bad = err - (atol + rtol * np.abs(n))
        worst = np.unravel_index(np.argmax(bad), bad.shape) if bad.ndim else ()
        rel = err / np.maximum(np.abs(n), np.finfo(np.float64).tiny)
        reports.append(InputReport(
            index=i, shape=tuple(inputs[i].shape), analytic=a, numeric=n,
            max_abs_error=float(err.max(initial=0.0)), max_rel_error=float(rel.max(initial=0.0)),
            worst=tuple(int(w) for w in worst), passed=bool((bad <= 0).all()),
        ))
    return reports


def _analytic(outs, inputs, diff, ups):
    pairs = [(o, u) for o, u in zip(outs, ups) if o is not None and o.requires_grad]
    if not pairs:
        return [np.zeros(inputs[i].shape) for i in diff]
    grads = _grad([o for o, _ in pairs], [inputs[i] for i in diff],
                  grad_outputs=[_wrap(o.xp.asarray(u, dtype=o.dtype)) for o, u in pairs],
                  retain_graph=False, allow_unused=True)
    return [np.zeros(inputs[i].shape) if g is None else np.asarray(_host(g), dtype=np.float64)
            for i, g in zip(diff, grads)]


def gradcheck(fn, inputs, grad_outputs=None, *, method="richardson", eps=None, atol=None, rtol=None,
              fast=False, seed=0, raise_exception=True) -> bool:
    """Check ``fn``'s gradients with respect to every input that requires grad.

    ``fn`` takes the inputs (Tensors, or anything else passed through) and
    returns a Tensor or a tuple of Tensors. Tolerances: an entry passes when
    |analytic - numeric| <= atol + rtol |numeric|; defaults depend on
    ``method`` (see ``DEFAULT_TOL``). Raises :class:`GradcheckError` naming
    the input, the worst element and both values, or returns False when
    ``raise_exception=False``.
    """
    reports = compare_gradients(fn, inputs, grad_outputs, method=method, eps=eps, atol=atol,
                                rtol=rtol, fast=fast, seed=seed)
    failed = [r for r in reports if not r.passed]
    if failed and raise_exception:
        raise GradcheckError(f"gradcheck ({method}) failed: " + "; ".join(r.describe() for r in failed))
    return not failed


def vjp_fn(fn, inputs, grad_outputs=None, seed=1):
    """The function (x..., u...) -> J(x)^T u of ``fn``, and the inputs to call it with.

    ``gradcheck(*vjp_fn(f, xs))`` checks second derivatives of f (and
    linearity in u); ``gradgradcheck(*vjp_fn(f, xs))`` checks third derivatives.
    """
    inputs = _prepare(inputs)
    diff = [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]
    with enable_grad():
        outs = _outputs(fn(*inputs))
    rng = np.random.default_rng(seed)
    if grad_outputs is None:
        grad_outputs = [_random_like(o.shape, rng) for o in outs]
    elif isinstance(grad_outputs, (Tensor, np.ndarray)):
        grad_outputs = [grad_outputs]
    us = tuple(_leaf(np.array(_host(u) if isinstance(u, Tensor) else u, dtype=np.float64), True)
               for u in grad_outputs)
    n = len(inputs)

    def vjp(*args):
        xs, ups = args[:n], args[n:]
        with enable_grad():
            outs = _outputs(fn(*xs))
            pairs = [(o, u) for o, u in zip(outs, ups) if o is not None and o.requires_grad]
            return _grad([o for o, _ in pairs], [xs[i] for i in diff], [u for _, u in pairs],
                         create_graph=True, allow_unused=True)

    return vjp, inputs + us


def gradgradcheck(fn, inputs, grad_outputs=None, **kwargs) -> bool:
    """Check second derivatives: gradcheck of (x, u) -> J(x)^T u, built with create_graph=True."""
    return gradcheck(*vjp_fn(fn, inputs, grad_outputs), **kwargs)

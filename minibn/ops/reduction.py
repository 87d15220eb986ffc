"""Reductions: sum, mean, prod, var/std, max/min, argmax/argmin.

Backward broadcasts the upstream gradient back over the reduced axes.
"""

from __future__ import annotations

import math
from collections import namedtuple

from ..autograd import Function, is_grad_enabled
from ..tensor import Tensor, _wrap
from ._util import normalize_axes, reduce_args
from .elementwise import maximum, minimum
from .shape import BroadcastTo, permute, where

MaxResult = namedtuple("MaxResult", ["values", "indices"])


class _Reduction(Function):
    """Shared bookkeeping: ``axes`` reduced, ``keepdim``, and the input shape."""

    def setup(self, x):
        self.in_shape = x.shape
        self.count = 1
        for a in self.axes:
            self.count *= x.shape[a]

    def kept(self, g: Tensor) -> Tensor:
        """``g`` with the reduced axes back as size-1 axes, ready to broadcast against the input."""
        if not self.keepdim and self.axes != tuple(range(len(self.axes))):
            # (reduced leading axes need nothing: broadcasting adds them back)
            g = g.reshape(tuple(1 if i in self.axes else n for i, n in enumerate(self.in_shape)))
        return g

    def spread(self, g: Tensor) -> Tensor:
        """``g`` broadcast back to the input's shape."""
        return BroadcastTo.apply(self.kept(g), shape=self.in_shape)


class Sum(_Reduction):
    """y = sum x over axes;  dx = g broadcast back over the axes."""

    def forward(self, x):
        self.setup(x)
        return x.sum(axis=self.axes, keepdims=self.keepdim)

    def backward(self, g):
        return self.spread(g)


class Mean(_Reduction):
    """y = mean x over axes (n elements);  dx = g / n broadcast back over the axes."""

    def forward(self, x):
        self.setup(x)
        return x.sum(axis=self.axes, keepdims=self.keepdim) / self.count  # as numpy.mean, minus its overhead

    def backward(self, g):
        return self.spread(g / self.count)


class Var(_Reduction):
    """v = sum (x - mean)^2 / (n - c);  dx = g * 2 (x - mean) / (n - c).

    Written without |.|^2 so that it stays complex-analytic.
    """

    save_inputs = True

    def forward(self, x):
        self.setup(x)
        if self.count - self.correction <= 0:
            raise ValueError(
                f"var: {self.count} element(s) per reduction with correction={self.correction} "
                "leaves no degrees of freedom"
            )
        d = x - x.sum(axis=self.axes, keepdims=True) / self.count
        d -= d.sum(axis=self.axes, keepdims=True) / self.count  # the refinement of centered()
        return (d * d).sum(axis=self.axes, keepdims=self.keepdim) / (self.count - self.correction)

    def backward(self, g):
        (x,) = self.inputs
        return self.kept(g * (2 / (self.count - self.correction))) * centered(x, self.axes)


def centered(x: Tensor, axes: tuple) -> Tensor:
    """x - mean(x) over ``axes``, the mean refined once: d = x - m0, then d - mean(d). A constant
    slice comes out exactly 0 (one pass can leave rounding there, which the 1 / std of a gradient
    would blow up; PyTorch's Welford mean gives 0 too). m0 is a constant to autodiff, so the
    derivative is the mean's own."""
    d = x - x.detach().mean(dim=axes, keepdim=True)
    return d - d.mean(dim=axes, keepdim=True)


def reciprocal_or_zero(s: Tensor) -> Tensor:
    """1 / s, and 0 where s = 0, differentiably (the derivative of a norm-like op at 0 is taken as
    0, PyTorch's convention); the masked entries never divide by 0, so every order stays finite."""
    zero = s._data == 0
    if not zero.any():
        return 1 / s
    from .shape import where

    mask = _wrap(zero)
    return where(mask, 0.0, 1 / where(mask, 1.0, s))


class Std(Var):
    """s = sqrt(var);  dx = g (x - mean) / ((n - c) s), and 0 where s = 0 (a constant slice), as in
    PyTorch, rather than the 0 / 0 of differentiating sqrt and var one after the other."""

    save_output = True

    def forward(self, x):
        return super().forward(x) ** 0.5

    def backward(self, g):
        (x,) = self.inputs
        inverse = reciprocal_or_zero(self.output)
        return self.kept(g * inverse / (self.count - self.correction)) * centered(x, self.axes)


class Prod(_Reduction):
    """p = prod x over ``axes``;  dx_i = g prod_{j != i} x_j: g p / x_i when no x is 0, else the
    product of the others taken directly (PyTorch's rule), so that a zero still gets its gradient."""

    save_inputs = True
    save_output = True

    def forward(self, x):
        self.setup(x)
        return x.prod(axis=self.axes, keepdims=self.keepdim)

    def backward(self, g):
        (x,) = self.inputs
        if not (x._data == 0).any():
            return self.kept(g) * self.kept(self.output) / x
        if not is_grad_enabled():
            return self.kept(g) * _wrap(self._others_at_zeros(x._data))
        return self.kept(g) * _product_of_others(x, self.axes)

    def _others_at_zeros(self, x):
        """prod_{j != i} x_j on arrays, O(n): where a slice has no zero, p / x_i; one zero, the product
        of the rest at the zero and 0 elsewhere; two or more, 0 (PyTorch's rule)."""
        xp = self.xp
        zero = x == 0
        count = zero.sum(axis=self.axes, keepdims=True)
        rest = xp.where(zero, 1, x).prod(axis=self.axes, keepdims=True)
        safe = xp.where(zero, 1, x)
        return xp.where(count == 0, rest / safe, xp.where(zero & (count == 1), rest, 0)).astype(x.dtype)


LIMIT = 10 ** 8  # elements the differentiable product of the others may hold


def _product_of_others(x: Tensor, axes: tuple) -> Tensor:
    """prod_{j != i} x_j over ``axes`` for every i, differentiable to any order: each slice (n elements)
    becomes n copies with a 1 on the diagonal, multiplied out (n^2 elements per slice, so it is used
    only when a graph of the backward is built and x has zeros; past LIMIT it refuses)."""
    rest = tuple(a for a in range(x.ndim) if a not in axes)
    order = rest + tuple(axes)
    moved = permute(x, order)
    lead = moved.shape[:len(rest)]
    n = math.prod(x.shape[a] for a in axes)
    if n * n * math.prod(lead) > LIMIT:
        raise ValueError(f"prod: the differentiable backward at exact zeros of slices of {n} elements needs "
                         f"{n * n * math.prod(lead):,} elements; the first derivative alone (create_graph=False) "
                         "needs none of it")
    flat = moved.reshape(lead + (1, n)).expand(*lead, n, n)
    eye = x.xp.eye(n, dtype=bool)
    others = prod(where(_wrap(eye), 1.0, flat), -1)
    back = [0] * x.ndim
    for position, axis in enumerate(order):
        back[axis] = position
    return permute(others.reshape(moved.shape), back)


class Max(_Reduction):
    """max over ``axes``.

    The gradient goes to the maximal entries: split evenly among ties
    (``amax``, and ``max()`` over all elements), or to the first maximal
    index (``max(dim)``, which also returns indices), both as in PyTorch.
    """

    rule = "dx = g at the maximal entries (split among ties; max(dim): the first index)"

    save_inputs = True
    save_output = True
    analytic = False
    largest = True

    def forward(self, x):
        self.setup(x)
        if self.index is not None:  # max(dim): the values at the indices already found
            (axis,) = self.axes
            values = self.xp.take_along_axis(x, self.index, axis)
            return values if self.keepdim else values.squeeze(axis)
        if x.size == 0:
            raise ValueError("max/min of an empty tensor")
        reduce = self.xp.max if self.largest else self.xp.min
        return reduce(x, axis=self.axes, keepdims=self.keepdim)

    def backward(self, g):
        xp = self.xp
        x = self.inputs[0]._data
        if self.index is not None:
            (axis,) = self.axes
            positions = xp.arange(x.shape[axis]).reshape([-1 if a == axis else 1 for a in range(x.ndim)])
            weights = (positions == self.index).astype(g.dtype)  # one-hot at the first extreme index
        else:
            y = self.output._data
            if not self.keepdim:
                y = xp.expand_dims(y, self.axes)
            hits = (x == y).astype(g.dtype)
            weights = hits / hits.sum(axis=self.axes, keepdims=True)
        return self.kept(g) * _wrap(weights)


class Min(Max):
    """min over ``axes`` (the gradient as for max)."""

    largest = False


# -- the functions --------------------------------------------------------------


def _reduce(cls, x, dim, keepdim, axis, keepdims, **attrs):
    if axis is not None or keepdims is not None:
        dim, keepdim = reduce_args(dim, keepdim, axis, keepdims)
    if isinstance(dim, (tuple, list)) and not dim:
        dim = None  # PyTorch: an empty dim reduces over every dimension
    axes = normalize_axes(dim, x._data.ndim, cls.__name__.lower())
    return cls.apply(x, axes=axes, keepdim=keepdim, **attrs)


def sum(x, dim=None, keepdim=False, *, axis=None, keepdims=None):  # noqa: A001
    """Sum over ``dim`` (an int, a tuple, or None for all)."""
    return _reduce(Sum, x, dim, keepdim, axis, keepdims)


def mean(x, dim=None, keepdim=False, *, axis=None, keepdims=None):
    """Mean over ``dim``."""
    if x.dtype.kind not in "fc":
        raise TypeError(f"mean: needs a floating point tensor, got dtype {x.dtype}; use .float() first")
    return _reduce(Mean, x, dim, keepdim, axis, keepdims)


def _variance_args(name, dim, unbiased, keepdim, correction):
    """PyTorch's overloads: var(dim, unbiased, keepdim), var(unbiased), var(dim, correction=c)."""
    if isinstance(dim, bool):  # var(True): the first positional argument is unbiased
        if unbiased is not None:
            raise TypeError(f"{name}: unbiased given twice")
        dim, unbiased = None, dim
    if unbiased is not None and not isinstance(unbiased, bool):
        raise TypeError(f"{name}: unbiased must be a bool, got {unbiased!r} (keepdim is the third argument, as in "
                        "PyTorch: var(dim, unbiased, keepdim))")
    if correction is not None and unbiased is not None:
        raise TypeError(f"{name}: pass correction or unbiased, not both")
    if correction is None:
        correction = 1 if unbiased is None else int(unbiased)
    return dim, bool(keepdim), correction


def var(x, dim=None, unbiased=None, keepdim=False, *, correction=None, axis=None, keepdims=None):
    """Variance over ``dim`` with Bessel's ``correction`` (default 1, PyTorch's unbiased
    estimate), PyTorch's signature: ``var(dim, unbiased, keepdim)`` or ``var(dim, correction=c)``."""
    dim, keepdim, correction = _variance_args("var", dim, unbiased, keepdim, correction)
    if x.dtype.kind not in "fc":
        raise TypeError(f"var: needs a floating point tensor, got dtype {x.dtype}")
    return _reduce(Var, x, dim, keepdim, axis, keepdims, correction=correction)


def std(x, dim=None, unbiased=None, keepdim=False, *, correction=None, axis=None, keepdims=None):
    """Standard deviation: sqrt(var(...)), with var's signature."""
    dim, keepdim, correction = _variance_args("std", dim, unbiased, keepdim, correction)
    if x.dtype.kind not in "fc":
        raise TypeError(f"std: needs a floating point tensor, got dtype {x.dtype}")
    return _reduce(Std, x, dim, keepdim, axis, keepdims, correction=correction)


def prod(x, dim=None, keepdim=False, *, axis=None, keepdims=None):
    """Product over ``dim`` (an int, a tuple, or None for all); the gradient is right at zeros."""
    return _reduce(Prod, x, dim, keepdim, axis, keepdims)


def _extremum(cls, x, dim, keepdim, axis, keepdims):
    dim, keepdim = reduce_args(dim, keepdim, axis, keepdims)
    if dim is None:
        return cls.apply(x, axes=tuple(range(x.ndim)), keepdim=False, index=None)
    name = cls.__name__.lower()
    if not isinstance(dim, int):
        raise TypeError(f"{name}(dim) takes one int dimension; use amax/amin for several")
    if x.ndim == 0:  # PyTorch: a 0-d tensor is one element along dim 0 (or -1)
        normalize_axes(dim, 0, name)
        values, indices = _extremum(cls, x.reshape(1), 0, False, None, None)
        return MaxResult(values.reshape(()), indices.reshape(()))
    axes = normalize_axes(dim, x.ndim, name)
    if x._data.dtype.kind == "c":
        raise TypeError(f"{name}: complex tensors have no order (not complex-analytic)")
    if x.shape[axes[0]] == 0:
        raise ValueError(f"{name}(dim={dim}) of a tensor of shape {tuple(x.shape)}: that dimension is empty")
    index = (argmax if cls.largest else argmin)(x, dim, keepdim=True)  # the first extreme, as PyTorch's
    values = cls.apply(x, axes=axes, keepdim=keepdim, index=index._data)
    return MaxResult(values, index if keepdim else index.squeeze(axes[0]))


def max(x, dim=None, keepdim=False, *, axis=None, keepdims=None):  # noqa: A001
    """The largest value; with ``dim``, a (values, indices) pair as in PyTorch; ``max(a, b)`` of two
    tensors is the elementwise :func:`maximum`."""
    if isinstance(dim, Tensor):
        return _elementwise("max", maximum, x, dim, keepdim, axis, keepdims)
    return _extremum(Max, x, dim, keepdim, axis, keepdims)


def min(x, dim=None, keepdim=False, *, axis=None, keepdims=None):  # noqa: A001
    """The smallest value; with ``dim``, a (values, indices) pair as in PyTorch; ``min(a, b)`` of two
    tensors is the elementwise :func:`minimum`."""
    if isinstance(dim, Tensor):
        return _elementwise("min", minimum, x, dim, keepdim, axis, keepdims)
    return _extremum(Min, x, dim, keepdim, axis, keepdims)


def _elementwise(name, op, x, other, keepdim, axis, keepdims):
    if keepdim or axis is not None or keepdims is not None:
        raise TypeError(f"{name}(input, other): the elementwise form takes no dimension arguments")
    return op(x, other)


def amax(x, dim=None, keepdim=False, *, axis=None, keepdims=None):
    """Largest values over ``dim`` (ties share the gradient evenly)."""
    return _reduce(Max, x, dim, keepdim, axis, keepdims, index=None)


def amin(x, dim=None, keepdim=False, *, axis=None, keepdims=None):
    """Smallest values over ``dim`` (ties share the gradient evenly)."""
    return _reduce(Min, x, dim, keepdim, axis, keepdims, index=None)


def _arg(name, x, dim, keepdim):
    if x._data.dtype.kind == "c":
        raise TypeError(f"{name}: complex tensors have no order (not complex-analytic)")
    xp = x.xp
    if dim is None:
        return _wrap(xp.asarray(getattr(xp, name)(x._data)))
    if x.ndim == 0:
        normalize_axes(dim, 0, name)
        return _wrap(xp.zeros((), dtype=xp.int64))
    (axis,) = normalize_axes(dim, x.ndim, name)
    return _wrap(xp.asarray(getattr(xp, name)(x._data, axis=axis, keepdims=keepdim)))


def argmax(x, dim=None, keepdim=False):
    """Index of the largest value (of the flattened tensor when ``dim`` is None)."""
    return _arg("argmax", x, dim, keepdim)


def argmin(x, dim=None, keepdim=False):
    """Index of the smallest value (of the flattened tensor when ``dim`` is None)."""
    return _arg("argmin", x, dim, keepdim)

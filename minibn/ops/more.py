"""More of PyTorch's tensor ops: flip, cumsum, the 2-norm and p-norms, splitting,
masked_fill, products of vectors and matrices, and the tests (any, all, isnan, isfinite,
allclose), which have no derivative."""

from __future__ import annotations

import math

from ..autograd import Function
from ..tensor import Tensor, _wrap
from ._util import normalize_axes
from .linalg import matmul
from .reduction import reciprocal_or_zero
from .shape import getitem, where


class Flip(Function):
    """The elements in reverse order along ``axes``;  dx = flip(g)."""

    def forward(self, x):
        return self.xp.flip(x, axis=self.axes)

    def backward(self, g):
        return Flip.apply(g, axes=self.axes)


def flip(x, dims):
    """The elements in reverse order along ``dims`` (an int or a sequence)."""
    dims = (dims,) if isinstance(dims, int) else tuple(dims)
    return Flip.apply(x, axes=normalize_axes(dims, x.ndim, "flip"))


class Cumsum(Function):
    """Running sums along ``axis``;  dx = the running sums of g from the end."""

    def forward(self, x):
        return self.xp.cumsum(x, axis=self.axis)

    def backward(self, g):
        return flip(cumsum(flip(g, self.axis), self.axis), self.axis)


def cumsum(x, dim):
    """Running sums along ``dim``: out_i = x_0 + ... + x_i."""
    (axis,) = normalize_axes(dim, x.ndim, "cumsum") if x.ndim else (0,)
    if x.ndim == 0:
        return x.reshape(1).cumsum(0).reshape(())
    return Cumsum.apply(x, axis=axis)


class Norm2(Function):
    """||x||_2 over ``axes``;  dx = g x / ||x||, and 0 where the norm is 0 (as in PyTorch)."""

    save_inputs = True
    save_output = True

    def forward(self, x):
        self.in_shape, xp = x.shape, self.xp
        return xp.sqrt((x * x.conj()).real.sum(axis=self.axes, keepdims=self.keepdim))

    def backward(self, g):
        (x,) = self.inputs
        n = self.output
        if not self.keepdim:
            shape = tuple(1 if i in self.axes else s for i, s in enumerate(self.in_shape))
            g, n = g.reshape(shape), n.reshape(shape)
        return g * reciprocal_or_zero(n) * x


class CountNonzero(Function):
    """The number of non-zeros over ``axes`` (the "0-norm"), in x's dtype: piecewise constant, so
    its gradient is 0 (PyTorch's too: the result stays on the graph)."""

    def forward(self, x):
        self.in_shape = x.shape
        return (x != 0).sum(axis=self.axes, keepdims=self.keepdim).astype(x.dtype)

    def backward(self, g):
        return _wrap(self.xp.zeros(self.in_shape, dtype=g.dtype))


def norm(x, p=2, dim=None, keepdim=False):
    """The p-norm over ``dim`` (all elements by default): (sum |x|^p)^(1/p), max |x| for p = inf,
    the count of non-zeros for p = 0 (no derivative)."""
    if x.dtype.kind not in "fc":
        raise TypeError(f"norm: needs a floating point tensor, got dtype {x.dtype}")
    axes = normalize_axes(dim, x.ndim, "norm") if not (isinstance(dim, (tuple, list)) and not dim) else \
        tuple(range(x.ndim))
    if p == 2:
        return Norm2.apply(x, axes=axes, keepdim=bool(keepdim))
    if p == math.inf:
        return x.abs().amax(axes, keepdim=keepdim)
    if p == -math.inf:
        return x.abs().amin(axes, keepdim=keepdim)
    if p == 0:
        return CountNonzero.apply(x, axes=axes, keepdim=bool(keepdim))
    if not isinstance(p, (int, float)) or p < 1:
        raise ValueError(f"norm: p must be >= 1, 0 or +-inf, got {p!r}")
    return (x.abs() ** p).sum(axes, keepdim=keepdim) ** (1 / p)


def split(x, split_size_or_sections, dim=0):
    """Pieces along ``dim``: of ``split_size`` each (the last smaller), or of the given sizes."""
    (axis,) = normalize_axes(dim, x.ndim, "split")
    n = x.shape[axis]
    if isinstance(split_size_or_sections, int):
        if split_size_or_sections < 1:
            raise ValueError(f"split: split_size must be >= 1, got {split_size_or_sections}")
        sizes = [split_size_or_sections] * (n // split_size_or_sections)
        if n % split_size_or_sections:
            sizes.append(n % split_size_or_sections)
    else:
        sizes = [int(s) for s in split_size_or_sections]
        if sum(sizes) != n or min(sizes, default=0) < 0:
            raise ValueError(f"split: sections {sizes} do not add up to the {n} elements along dim {dim}")
    lead, out, start = (slice(None),) * axis, [], 0
    for size in sizes:
        out.append(getitem(x, lead + (slice(start, start + size),)))
        start += size
    return tuple(out)


def chunk(x, chunks, dim=0):
    """``chunks`` pieces (fewer if the size runs out) of ceil(n / chunks) elements along ``dim``."""
    if chunks < 1:
        raise ValueError(f"chunk: chunks must be >= 1, got {chunks}")
    (axis,) = normalize_axes(dim, x.ndim, "chunk")
    return split(x, max(1, math.ceil(x.shape[axis] / chunks)), dim)


def unbind(x, dim=0):
    """The slices along ``dim``, that dimension removed."""
    (axis,) = normalize_axes(dim, x.ndim, "unbind")
    lead = (slice(None),) * axis
    return tuple(getitem(x, lead + (i,)) for i in range(x.shape[axis]))


def masked_fill(x, mask, value):
    """``value`` where ``mask`` holds, else x (mask broadcasts against x)."""
    if not isinstance(mask, Tensor) or mask.dtype.kind != "b":
        raise TypeError("masked_fill: mask must be a bool Tensor")
    out = where(mask, value, x)
    if out.shape != x.shape:
        raise ValueError(f"masked_fill: mask of shape {tuple(mask.shape)} does not broadcast to {tuple(x.shape)}")
    return out


def _check_dims(op, *pairs):
    for t, nd in pairs:
        if t.ndim != nd:
            raise ValueError(f"{op}: expected a {nd}-D tensor, got shape {tuple(t.shape)}")


def dot(a, b):
    """The inner product of two 1-D tensors, sum_i a_i b_i."""
    _check_dims("dot", (a, 1), (b, 1))
    return matmul(a, b)


def mm(a, b):
    """The product of two 2-D tensors (no broadcasting: use matmul for that)."""
    _check_dims("mm", (a, 2), (b, 2))
    return matmul(a, b)


def bmm(a, b):
    """Matrix products of two batches of matrices, (b, n, m) @ (b, m, p) -> (b, n, p)."""
    _check_dims("bmm", (a, 3), (b, 3))
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"bmm: batch sizes differ: {tuple(a.shape)} and {tuple(b.shape)}")
    return matmul(a, b)


def outer(a, b):
    """The outer product of two 1-D tensors, out_ij = a_i b_j."""
    _check_dims("outer", (a, 1), (b, 1))
    return a.reshape(-1, 1) * b.reshape(1, -1)


def _test(x, fn):
    return _wrap(x.xp.asarray(fn(x.xp, x._data)))  # reductions over everything give NumPy scalars


def isnan(x):
    """Where x is NaN, a bool tensor."""
    return _test(x, lambda xp, a: xp.isnan(a))


def isfinite(x):
    """Where x is neither infinite nor NaN, a bool tensor."""
    return _test(x, lambda xp, a: xp.isfinite(a))


def any(x, dim=None, keepdim=False):  # noqa: A001
    """Whether any element (over ``dim``, or all) is non-zero: a bool tensor."""
    axes = None if dim is None else normalize_axes(dim, x.ndim, "any")
    return _test(x, lambda xp, a: xp.any(a, axis=axes, keepdims=keepdim))


def all(x, dim=None, keepdim=False):  # noqa: A001
    """Whether every element (over ``dim``, or all) is non-zero: a bool tensor."""
    axes = None if dim is None else normalize_axes(dim, x.ndim, "all")
    return _test(x, lambda xp, a: xp.all(a, axis=axes, keepdims=keepdim))


def equal(a, b) -> bool:
    """Whether ``a`` and ``b`` have one shape and equal elements (NaN equals nothing; dtypes may differ)."""
    if not isinstance(a, Tensor) or not isinstance(b, Tensor):
        raise TypeError(f"equal: expects two tensors, got {type(a).__name__} and {type(b).__name__}")
    if a.device != b.device:
        raise RuntimeError(f"equal: tensors on {a.device} and {b.device}")
    return a.shape == b.shape and bool((a._data == b._data).all())


def numel(x) -> int:
    """The number of elements of ``x``."""
    return x.numel()


def allclose(a, b, rtol=1e-05, atol=1e-08, equal_nan=False) -> bool:
    """|a - b| <= atol + rtol |b| everywhere (PyTorch's and NumPy's rule)."""
    return bool(a.xp.allclose(a._data, b._data if isinstance(b, Tensor) else b, rtol=rtol, atol=atol,
                              equal_nan=equal_nan))

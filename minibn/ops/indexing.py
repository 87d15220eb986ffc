"""Indexing along one dimension, PyTorch's names: gather, scatter, scatter_add, index_select.

Each is integer-array indexing in disguise: ``gather(x, d, index)`` reads
x[..., index[i, j, ...], ...] (``index`` in dimension d, the position itself in
the others), so its gradient is the adjoint of that read, an add at the same
positions (:class:`IndexAdd`); ``scatter_add`` is that adjoint applied to
``src``, and its gradient a gather. Indices are checked: a negative or too
large index is an error here, as in PyTorch (NumPy would wrap a negative one).
"""

from __future__ import annotations

import numpy as np

from ..autograd import Function
from ..tensor import Tensor, _wrap
from ._util import normalize_axes
from .shape import GetItem, IndexAdd


def _index_array(index, op, bound, x, what="index"):
    if not isinstance(index, Tensor) or index.dtype.kind not in "iu":
        raise TypeError(f"{op}: {what} must be an integer Tensor (int64), got "
                        f"{getattr(index, 'dtype', type(index).__name__)}")
    if index.device != x.device:
        raise TypeError(f"{op}: {what} is on {index.device}, the input on {x.device}; move it with .to()")
    data = index._data
    if data.size and (int(data.min()) < 0 or int(data.max()) >= bound):
        raise IndexError(f"{op}: {what} holds values from {int(data.min())} to {int(data.max())}, outside "
                         f"[0, {bound}) for that dimension")
    return data


def _positions(op, x, dim, index):
    """(axis, the index tuple reading ``x`` at ``index`` along ``axis``) after PyTorch's checks."""
    if index.ndim != x.ndim:
        raise ValueError(f"{op}: index must have as many dimensions as the input ({x.ndim}), got shape "
                         f"{tuple(index.shape)}")
    (axis,) = normalize_axes(dim, x.ndim, op)  # (0-d inputs were made 1-D by the callers)
    for d, (n, m) in enumerate(zip(index.shape, x.shape)):
        if d != axis and n > m:
            raise ValueError(f"{op}: index of shape {tuple(index.shape)} is larger than the input's "
                             f"{tuple(x.shape)} in dimension {d}")
    data = _index_array(index, op, x.shape[axis], x)
    xp = x.xp
    positions = tuple(data if d == axis else xp.arange(n).reshape([-1 if a == d else 1 for a in range(data.ndim)])
                      for d, n in enumerate(data.shape))
    return axis, positions


def gather(input, dim, index):  # noqa: A002  (PyTorch's argument names)
    """out[i][j][k] = input[index[i][j][k]][j][k] for dim 0 (likewise for the other dims); out has
    ``index``'s shape. Gradient: added back at the positions read (IndexAdd)."""
    if input.ndim == 0:
        return gather(input.reshape(1), dim, index.reshape(1)).reshape(())
    _, positions = _positions("gather", input, dim, index)
    return GetItem.apply(input, index=positions, basic=False)


def _source(op, x, index, src):
    """``src`` cut to ``index``'s shape (a number becomes a constant tensor), checked."""
    if not isinstance(src, Tensor):
        return _wrap(x.xp.full(index.shape, src, dtype=x.dtype))
    if src.dtype != x.dtype:
        raise TypeError(f"{op}: src is {src.dtype} but the input is {x.dtype}")
    if src.ndim != index.ndim or any(n > m for n, m in zip(index.shape, src.shape)):
        raise ValueError(f"{op}: src of shape {tuple(src.shape)} is smaller than index {tuple(index.shape)} (or "
                         "of another rank)")
    if src.shape == index.shape:
        return src
    return src[tuple(slice(0, n) for n in index.shape)]


def scatter_add(input, dim, index, src):  # noqa: A002
    """input with src[i][j][k] added at input[index[i][j][k]][j][k] (dim 0), repeats adding up.
    Gradients: d input = g, d src = gather(g, dim, index)."""
    if input.ndim == 0:
        return scatter_add(input.reshape(1), dim, index.reshape(1), src.reshape(1)).reshape(())
    _, positions = _positions("scatter_add", input, dim, index)
    return input + IndexAdd.apply(_source("scatter_add", input, index, src), index=positions, shape=input.shape,
                                  basic=False)


class Scatter(Function):
    """out = x with src written at ``index`` (at a repeated position one write wins; which is not
    specified, as in PyTorch);  dx = g where nothing was written, d src = g read at the positions."""

    def forward(self, x, src):
        out = x.copy()
        out[self.index] = src
        return out

    def backward(self, g):
        gx = gsrc = None
        if self.needs[0]:
            keep = self.xp.ones(g.shape, dtype=bool)
            keep[self.index] = False
            gx = g * _wrap(keep)
        if self.needs[1]:
            gsrc = GetItem.apply(g, index=self.index, basic=False)
        return gx, gsrc


def scatter(input, dim, index, src=None, *, value=None):  # noqa: A002
    """input with ``src`` (a tensor, or a number ``value``) written at input[index[i][j][k]][j][k]
    (dim 0), out of place: PyTorch's ``scatter`` without ``reduce``."""
    if (src is None) == (value is None):
        raise TypeError("scatter: give src or value (one of them)")
    src = value if src is None else src
    if input.ndim == 0:
        src = src.reshape(1) if isinstance(src, Tensor) else src
        return scatter(input.reshape(1), dim, index.reshape(1), src).reshape(())
    _, positions = _positions("scatter", input, dim, index)
    return Scatter.apply(input, _source("scatter", input, index, src), index=positions)


def index_select(input, dim, index):  # noqa: A002
    """The slices of ``input`` at the 1-D ``index`` along ``dim``, in that order (repeats allowed)."""
    if index.ndim > 1:
        raise ValueError(f"index_select: index must be 0-d or 1-D, got shape {tuple(index.shape)}")
    if input.ndim == 0:
        return index_select(input.reshape(1), dim, index).reshape(())
    (axis,) = normalize_axes(dim, input.ndim, "index_select")
    data = _index_array(index, "index_select", input.shape[axis], input).reshape(-1)
    return GetItem.apply(input, index=(slice(None),) * axis + (data.astype(np.int64, copy=False),), basic=False)

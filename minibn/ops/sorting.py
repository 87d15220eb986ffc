"""Sorting along one dimension: argsort, sort and topk. The values are ``gather(input, dim,
indices)``, so their gradient goes back to the positions they came from."""

from __future__ import annotations

from collections import namedtuple

from ..tensor import Tensor, _wrap
from ._util import normalize_axes
from .indexing import gather

SortResult = namedtuple("SortResult", ["values", "indices"])
TopkResult = namedtuple("TopkResult", ["values", "indices"])


def argsort(input, dim=-1, descending=False, *, stable=False):  # noqa: A002  (PyTorch's argument names)
    """The indices that sort ``input`` along ``dim``. The sort is always stable here (equal values
    keep their order, also when ``descending``); NaN counts as the largest value, as in PyTorch."""
    if not isinstance(input, Tensor):
        raise TypeError(f"argsort: input must be a Tensor, got {type(input).__name__}")
    if input.dtype.kind == "c":
        raise TypeError("argsort: complex tensors have no order")
    if input.ndim == 0:
        normalize_axes(dim, 0, "argsort")
        return _wrap(input.xp.zeros((), dtype="int64"))
    (axis,) = normalize_axes(dim, input.ndim, "argsort")
    xp, data = input.xp, input._data
    if not descending:
        return _wrap(xp.argsort(data, axis=axis, kind="stable").astype("int64", copy=False))
    # ascending on the reversed data, reversed back: descending, ties in their first order
    n = data.shape[axis]
    order = xp.argsort(xp.flip(data, axis), axis=axis, kind="stable")
    return _wrap((n - 1 - xp.flip(order, axis)).astype("int64", copy=False))


def sort(input, dim=-1, descending=False, *, stable=False):  # noqa: A002
    """(values, indices): ``input`` sorted along ``dim`` (stably, see argsort) and where each came from."""
    indices = argsort(input, dim, descending)
    return SortResult(gather(input, dim, indices), indices)


def topk(input, k, dim=-1, largest=True, sorted=True):  # noqa: A002
    """(values, indices) of the ``k`` largest (or smallest) elements along ``dim``, in sorted order
    (also when ``sorted=False``, which leaves the order to the implementation in PyTorch)."""
    axes = normalize_axes(dim, input.ndim, "topk")
    size = input.shape[axes[0]] if input.ndim else 1
    if not isinstance(k, int) or not 0 <= k <= size:
        raise ValueError(f"topk: k must be an int in [0, {size}] (the size of dim {dim}), got {k!r}")
    indices = argsort(input, dim, descending=largest)
    if input.ndim:
        indices = indices[(slice(None),) * axes[0] + (slice(0, k),)]
    return TopkResult(gather(input, dim, indices), indices)

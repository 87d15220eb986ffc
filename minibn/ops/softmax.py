"""The softmax family along one dimension: logsumexp, softmax and log-softmax, each computed after
subtracting the maximum (a constant shift: exact and stable)."""

from __future__ import annotations

import math

from ..autograd import Function
from ..tensor import Tensor
from ._util import normalize_axes
from .reduction import Sum, _reduce
from .shape import where


def logsumexp(x, dim, keepdim=False):
    """log sum exp(x) over ``dim``;  its gradient is softmax(x)."""
    top = x.detach().amax(dim, keepdim=True)
    top = where(top.abs() < math.inf, top, 0.0)  # an infinite maximum: shift by 0, not by inf (inf - inf)
    out = (x - top).exp().sum(dim, keepdim=True).log() + top
    return out if keepdim else _reduce(Sum, out, dim, False, None, None)


class LogSoftmax(Function):
    """y = x - logsumexp(x) along ``dim``;  dx = g - softmax(x) sum(g) = g - exp(y) sum(g)."""

    save_output = True

    def forward(self, x):
        xp = self.xp
        shifted = x - xp.max(x.real, axis=self.dim, keepdims=True)
        shifted -= xp.log(xp.exp(shifted).sum(axis=self.dim, keepdims=True))
        return shifted

    def backward(self, g):
        return g - self.output.exp() * g.sum(self.dim, keepdim=True)


class Softmax(Function):
    """y = exp(x - max) / sum exp(x - max) along ``dim``;  dx = y (g - sum(g y))."""

    save_output = True

    def forward(self, x):
        xp = self.xp
        e = xp.exp(x - xp.max(x.real, axis=self.dim, keepdims=True))
        e /= e.sum(axis=self.dim, keepdims=True)
        return e

    def backward(self, g):
        y = self.output
        return y * (g - (g * y).sum(self.dim, keepdim=True))


def _along(cls, x, dim, op):
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: input must be a Tensor, got {type(x).__name__}")
    if x.ndim == 0:  # PyTorch treats a 0-d tensor as one element along dim 0 (or -1)
        normalize_axes(dim, 0, op)
        return cls.apply(x.reshape(1), dim=0).reshape(())
    (axis,) = normalize_axes(dim, x.ndim, op)
    return cls.apply(x, dim=axis)


def log_softmax(input, dim=-1):  # noqa: A002  (PyTorch's argument name)
    """log softmax(input) along ``dim``: input - logsumexp(input, dim)."""
    return _along(LogSoftmax, input, dim, "log_softmax")


def softmax(input, dim=-1):  # noqa: A002
    """exp(input) / sum exp(input) along ``dim``."""
    return _along(Softmax, input, dim, "softmax")

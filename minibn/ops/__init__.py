"""Differentiable primitive ops: each a Function with forward and backward side by side."""

from .elementwise import (abs, add, clamp, div, eq, exp, ge, gt, le, log, logical_and, logical_not,
                          logical_or, lt, maximum, minimum, mul, ne, neg, pow, relu, sigmoid, sqrt,
                          sub, tanh)
from .elementwise import floor_divide, remainder
from .einsum import einsum
from .indexing import gather, index_select, scatter, scatter_add
from .linalg import matmul
from .more import (all, allclose, equal, numel, any, bmm, chunk, cumsum, dot, flip, isfinite, isnan, masked_fill, mm,
                   norm, outer, split, unbind)
from .sorting import argsort, sort, topk
from .softmax import log_softmax, logsumexp, softmax
from .unary import cos, erf, expm1, log1p, reciprocal, rsqrt, sign, sin, square
from .reduction import amax, amin, argmax, argmin, max, mean, min, prod, std, sum, var
from .shape import Permute  # noqa: F401  (Tensor.T and .mT build it directly)
from .shape import (as_index, broadcast_to, cast, cat, clone, concatenate, expand, flatten, getitem,
                    nonzero, permute, reshape, split_integers, squeeze, stack, sum_to, swapaxes, to_device, transpose,
                    unsqueeze, view, where)

from ..tensor import Tensor

# The operators are the op functions themselves: one Python call less on every arithmetic op.
Tensor.__add__, Tensor.__sub__, Tensor.__mul__ = add, sub, mul
Tensor.__truediv__, Tensor.__pow__, Tensor.__matmul__, Tensor.__neg__ = div, pow, matmul, neg
# A method that forwards to the op of its name shares the op's docstring: help(t.var) is help(mb.var).
for _name, _method in list(vars(Tensor).items()):
    _op = globals().get(_name)
    if callable(_method) and _method.__doc__ is None and callable(_op) and _op.__doc__:
        _method.__doc__ = _op.__doc__
del Tensor, _name, _method, _op

__all__ = [name for name in dir() if not name.startswith("_")]

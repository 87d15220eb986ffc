"""Differentiable primitive ops: each a Function with forward and backward side by side."""

from .elementwise import (abs, add, clamp, div, eq, exp, ge, gt, le, log, logical_and, logical_not,
                          logical_or, lt, maximum, minimum, mul, ne, neg, pow, relu, sigmoid, sqrt,
                          sub, tanh)
from .linalg import matmul
from .reduction import amax, amin, argmax, argmin, max, mean, min, std, sum, var
from .shape import (as_index, broadcast_to, cast, cat, clone, concatenate, expand, flatten, getitem,
                    permute, reshape, squeeze, stack, sum_to, swapaxes, to_device, transpose,
                    unsqueeze, where)

__all__ = [name for name in dir() if not name.startswith("_")]

"""Helpers the op modules share: operand coercion and gradient un-broadcasting."""

from __future__ import annotations

import numbers

import numpy as np

from .. import devices
from ..tensor import Tensor, _wrap


def as_operand(x, op: str):
    """A Tensor, or a plain Python number (a constant that NumPy promotes weakly)."""
    if isinstance(x, Tensor):
        return x
    if isinstance(x, np.generic):
        return x.item()  # NumPy scalars (np.float64 is a float too) promote strongly; Python's do not
    if isinstance(x, (bool, int, float, complex)):
        return x
    if isinstance(x, numbers.Number):
        return complex(x) if isinstance(x, numbers.Complex) and not isinstance(x, numbers.Real) else float(x)
    if isinstance(x, np.ndarray):
        return _wrap(devices.as_array(x))  # (its dtype checked: uint8 widened, float16 refused)
    raise TypeError(f"{op}: unsupported operand of type {type(x).__name__}")


def cast_to(t, dtype):
    """``t`` converted to ``dtype`` (differentiably); bool tensors stay for an integer or bool
    result, which NumPy promotes right (a float result is cast: NumPy would make it float64)."""
    if not isinstance(t, Tensor) or t._data.dtype == dtype or (t._data.dtype.kind == "b" and dtype.kind not in "fc"):
        return t
    from .shape import cast

    return cast(t, dtype)


def coerce(a, b, op: str, floating: bool = False):
    """Bring two operands to PyTorch's common dtype.

    Fast path: two tensors of one dtype, or a floating tensor and a Python
    float or int (NumPy's weak scalar promotion already agrees with PyTorch there).
    ``floating=True`` promotes integer results to the default float (true division).
    """
    if isinstance(a, Tensor) and isinstance(b, Tensor) and a._data.dtype is b._data.dtype and (
            not floating or a._data.dtype.kind in "fc"):
        return a, b
    if (b.__class__ is float or b.__class__ is int) and isinstance(a, Tensor) and a._data.dtype.kind in "fc":
        return a, b  # NumPy keeps a Python number weak, as PyTorch does
    if (a.__class__ is float or a.__class__ is int) and isinstance(b, Tensor) and b._data.dtype.kind in "fc":
        return a, b
    a = as_operand(a, op)
    b = as_operand(b, op)
    ta, tb = isinstance(a, Tensor), isinstance(b, Tensor)
    if ta and tb:
        if a._data.dtype is b._data.dtype and (not floating or a._data.dtype.kind in "fc"):
            return a, b
    elif ta or tb:
        t = a if ta else b
        s = b if ta else a
        if t._data.dtype.kind == "c" or (t._data.dtype.kind == "f" and not isinstance(s, complex)):
            return a, b
    else:
        raise TypeError(f"{op}: at least one operand must be a Tensor")
    dtype = devices.result_type(a, b)
    if floating and dtype.kind not in "fc":
        dtype = devices.get_default_dtype()
    return cast_to(a, dtype), cast_to(b, dtype)


def shape_of(x) -> tuple:
    return getattr(x, "shape", ())


def unbroadcast(g: Tensor, shape: tuple) -> Tensor:
    """Sum ``g`` over the axes along which an operand of ``shape`` was broadcast."""
    if g._data.shape == shape:
        return g
    from .shape import SumTo

    return SumTo.apply(g, shape=shape)


def normalize_axes(dim, ndim: int, op: str) -> tuple:
    """``dim`` (None, an int or a sequence) as a sorted tuple of non-negative axes."""
    if dim is None:
        return tuple(range(ndim))
    if dim.__class__ is int and 0 <= dim < ndim:
        return (dim,)
    dims = (dim,) if isinstance(dim, (int, np.integer)) else tuple(dim)
    out = []
    for d in dims:
        if not -max(ndim, 1) <= d < max(ndim, 1):
            raise IndexError(f"{op}: dimension {d} is out of range for a tensor with {ndim} dimensions")
        out.append(int(d) % max(ndim, 1))
    if len(set(out)) != len(out):
        raise ValueError(f"{op}: repeated dimension in {dim}")
    return tuple(sorted(out)) if ndim else ()


def reduce_args(dim, keepdim, axis, keepdims):
    """Accept PyTorch's ``dim``/``keepdim`` and NumPy's ``axis``/``keepdims`` spellings."""
    if axis is not None:
        if dim is not None:
            raise TypeError("pass dim or axis, not both")
        dim = axis
    if keepdims is not None:
        keepdim = keepdims
    return dim, bool(keepdim)

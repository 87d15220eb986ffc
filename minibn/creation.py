"""Making tensors: from data, filled, ranges, and random (seeded)."""

from __future__ import annotations

import numpy as np

from . import devices, random
from .tensor import Tensor, _wrap


def _finish(array, device, requires_grad) -> Tensor:
    devices.as_dtype(array.dtype)
    array = devices.to_device(array, devices.get_default_device() if device is None else device)
    t = _wrap(array)
    if requires_grad:
        t.requires_grad = True
    return t


def _size(size) -> tuple:
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = size[0]
    try:
        size = tuple(int(s) for s in size)
    except TypeError:
        raise TypeError(f"size must be integers, got {size!r}") from None
    if any(s < 0 for s in size):
        raise ValueError(f"negative dimension in size {size}")
    return size


def _dtype(dtype, default=None):
    if dtype is None:
        return default or devices.get_default_dtype()
    return devices.as_dtype(dtype)


def tensor(data, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A new tensor holding a copy of ``data`` (a number, nested lists, an array or a Tensor).

    The dtype follows the data: an array keeps its own; Python floats give the
    default dtype (float32), Python ints int64, as in PyTorch.
    """
    if isinstance(data, Tensor):
        array = data._data.copy()
    else:
        array = devices.as_array(data, copy=True, dtype=dtype)
    if dtype is not None:
        array = array.astype(devices.as_dtype(dtype), copy=False)
    return _finish(array, device, requires_grad)


def as_tensor(data, dtype=None, device=None) -> Tensor:
    """Like :func:`tensor` but shares memory with ``data`` when it can."""
    if isinstance(data, Tensor) and (dtype is None or data.dtype == dtype) and (device is None or data.device == device):
        return data
    if isinstance(data, np.ndarray) and (dtype is None or data.dtype == dtype) and (
            device == "cpu" or (device is None and devices.get_default_device() == "cpu")):
        return _finish(data, devices.CPU, False)
    return tensor(data, dtype, device)


def from_numpy(array: np.ndarray) -> Tensor:
    """A tensor sharing memory with the NumPy array ``array``."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"from_numpy expects a numpy.ndarray, got {type(array).__name__}")
    return _finish(array, devices.CPU, False)  # on the CPU whatever the default device


def _filled(fill, size, device, requires_grad) -> Tensor:
    """A new tensor ``fill(xp, shape)`` made on ``device`` (default: the default device)."""
    device = devices.Device(device) if device is not None else devices.get_default_device()
    xp = devices.module_for(device)
    with _on(xp, device):
        array = fill(xp, _size(size))
    t = _wrap(array)
    if requires_grad:
        t.requires_grad = True
    return t


class _on:
    """Make new arrays on ``device`` (selects the GPU for CuPy; nothing to do for NumPy)."""

    def __init__(self, xp, device):
        self.ctx = xp.cuda.Device(device.index) if device.type == "cuda" else None

    def __enter__(self):
        if self.ctx is not None:
            self.ctx.__enter__()

    def __exit__(self, *exc):
        if self.ctx is not None:
            self.ctx.__exit__(*exc)


def zeros(*size, dtype=None, device=None, requires_grad=False) -> Tensor:
    """A tensor of ``size`` (ints or one tuple) filled with 0, in the default dtype unless ``dtype``."""
    return _filled(lambda xp, s: xp.zeros(s, dtype=_dtype(dtype)), size, device, requires_grad)


def ones(*size, dtype=None, device=None, requires_grad=False) -> Tensor:
    """A tensor of ``size`` filled with 1."""
    return _filled(lambda xp, s: xp.ones(s, dtype=_dtype(dtype)), size, device, requires_grad)


def empty(*size, dtype=None, device=None, requires_grad=False) -> Tensor:
    """A tensor of ``size`` with unset values (whatever the memory held)."""
    return _filled(lambda xp, s: xp.empty(s, dtype=_dtype(dtype)), size, device, requires_grad)


def full(size, fill_value, dtype=None, device=None, requires_grad=False) -> Tensor:
    """A tensor of ``size`` filled with ``fill_value`` (dtype inferred from it, as in PyTorch)."""
    if dtype is None:
        dtype = devices.result_type(fill_value)
    size = (size,) if isinstance(size, int) else tuple(size)
    return _filled(lambda xp, s: xp.full(s, fill_value, dtype=_dtype(dtype)), size, device,
                   requires_grad)


def eye(n, m=None, dtype=None, device=None, requires_grad=False) -> Tensor:
    """The (n, m) identity matrix (m = n by default)."""
    m = n if m is None else m
    return _filled(lambda xp, s: xp.eye(n, m, dtype=_dtype(dtype)), (), device, requires_grad)


def arange(start, end=None, step=1, dtype=None, device=None, requires_grad=False) -> Tensor:
    """Values from ``start`` to ``end`` (exclusive); int64 if all bounds are ints, else the default dtype."""
    if end is None:
        start, end = 0, start
    if step == 0:
        raise ValueError("arange: step must be nonzero")
    if dtype is None:
        dtype = devices.result_type(start, end, step)
    return _filled(lambda xp, s: xp.arange(start, end, step).astype(_dtype(dtype)), (), device,
                   requires_grad)


def linspace(start, end, steps, dtype=None, device=None, requires_grad=False) -> Tensor:
    """``steps`` evenly spaced values from ``start`` to ``end``, both included."""
    return _filled(lambda xp, s: xp.linspace(start, end, steps).astype(_dtype(dtype)), (),
                   device, requires_grad)


def _like(fn, t, dtype, device, requires_grad, **kw):
    return fn(t.shape, dtype=dtype or t.dtype, device=device or t.device, requires_grad=requires_grad, **kw)


def zeros_like(t, dtype=None, device=None, requires_grad=False):
    """zeros of ``t``'s shape, dtype and device (unless given)."""
    return _like(zeros, t, dtype, device, requires_grad)


def ones_like(t, dtype=None, device=None, requires_grad=False):
    """ones of ``t``'s shape, dtype and device (unless given)."""
    return _like(ones, t, dtype, device, requires_grad)


def empty_like(t, dtype=None, device=None, requires_grad=False):
    """An unset tensor of ``t``'s shape, dtype and device (unless given)."""
    return _like(empty, t, dtype, device, requires_grad)


def full_like(t, fill_value, dtype=None, device=None, requires_grad=False):
    """``fill_value`` in ``t``'s shape, dtype and device (unless given)."""
    return full(t.shape, fill_value, dtype=dtype or t.dtype, device=device or t.device,
                requires_grad=requires_grad)


# -- random ----------------------------------------------------------------------


def _random(draw, size, dtype, device, requires_grad):
    dtype = _dtype(dtype)
    if dtype.kind != "f":
        raise TypeError(f"random floats need a float dtype, got {dtype}")
    array = draw(_size(size), dtype)
    return _finish(array, device, requires_grad)


def randn(*size, generator=None, dtype=None, device=None, requires_grad=False) -> Tensor:
    """Standard normal samples, from ``generator`` (default: the one ``manual_seed`` sets)."""
    rng = random.resolve(generator)
    return _random(lambda s, dt: rng.standard_normal(s, dtype=dt), size, dtype, device, requires_grad)


def rand(*size, generator=None, dtype=None, device=None, requires_grad=False) -> Tensor:
    """Uniform samples on [0, 1)."""
    rng = random.resolve(generator)
    return _random(lambda s, dt: rng.random(s, dtype=dt), size, dtype, device, requires_grad)


def randint(low, high=None, size=(), generator=None, dtype=None, device=None) -> Tensor:
    """Integers uniform on [low, high) (int64 by default)."""
    if high is None:
        low, high = 0, low
    rng = random.resolve(generator)
    array = rng.integers(low, high, size=_size((size,)), dtype=_dtype(dtype, devices.int64))
    return _finish(array, device, False)


def randperm(n, generator=None, dtype=None, device=None) -> Tensor:
    """A random permutation of 0 .. n - 1 (int64 by default)."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"randperm: n must be an integer >= 0, got {n!r}")
    array = random.resolve(generator).permutation(int(n)).astype(_dtype(dtype, devices.int64))
    return _finish(array, device, False)


def randn_like(t, generator=None, dtype=None, device=None, requires_grad=False):
    """Standard normal samples in ``t``'s shape, dtype and device (unless given)."""
    return randn(t.shape, generator=generator, dtype=dtype or t.dtype, device=device or t.device,
                 requires_grad=requires_grad)


def rand_like(t, generator=None, dtype=None, device=None, requires_grad=False):
    """Uniform samples on [0, 1) in ``t``'s shape, dtype and device (unless given)."""
    return rand(t.shape, generator=generator, dtype=dtype or t.dtype, device=device or t.device,
                requires_grad=requires_grad)

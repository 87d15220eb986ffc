"""Array-level kernels for the normalization layers, ReLU and softmax cross-entropy, and the
choice among them.

A layer's forward, and its backward when no graph is being built (plain
``backward()``), run on raw arrays through the functions here. Each has a
NumPy reference (``batchnorm.py``, ``lpnorm.py``, or inline here; written
with array methods so that they also run on CuPy), a fused numba version for
2-D float inputs on the CPU (``numba_cpu.py``; other inputs use the
reference) and, for most, a CuPy version for the GPU (``cupy_gpu.py``; the
others run the reference on CuPy). The fused ones are tested against the
reference.

On CPU the kernel set is numba when numba is importable, else NumPy; set it
with ``mb.set_kernels("numpy" | "numba")`` or the ``MINIBN_KERNELS``
environment variable. Arrays of another backend (CuPy) always use that
backend's kernels.
"""

from __future__ import annotations

import functools
import importlib.util
import os

import numpy as np

from ..backend import array_module
from . import batchnorm as bn_ref
from . import lpnorm as lp_ref

KERNEL_SETS = ("numpy", "numba")
_choice: str | None = None


@functools.cache
def numba_available() -> bool:
    return importlib.util.find_spec("numba") is not None


def set_kernels(name: str) -> None:
    """Choose the CPU kernels: "numpy" (the reference) or "numba" (fused)."""
    global _choice
    if name not in KERNEL_SETS:
        raise ValueError(f"kernel set must be one of {KERNEL_SETS}, got {name!r}")
    if name == "numba" and not numba_available():
        raise RuntimeError("the numba kernels need numba, which is not installed (pip install numba)")
    _choice = name


def get_kernels() -> str:
    """The CPU kernel set in use: ``set_kernels``'s choice, else $MINIBN_KERNELS, else numba if installed."""
    if _choice is not None:
        return _choice
    env = os.environ.get("MINIBN_KERNELS")
    if env:
        if env not in KERNEL_SETS:
            raise ValueError(f"MINIBN_KERNELS must be one of {KERNEL_SETS}, got {env!r}")
        return env
    return "numba" if numba_available() else "numpy"


def _impl(x, name: str, any_shape: bool = False):
    """The implementation of kernel ``name`` for the array ``x`` (None: use the reference)."""
    if isinstance(x, np.ndarray):
        if get_kernels() == "numba" and (x.ndim == 2 or any_shape) and x.dtype.kind == "f":
            from . import numba_cpu

            return getattr(numba_cpu, name)
        return None
    from . import cupy_gpu

    return getattr(cupy_gpu, name, None)  # None: the reference, written with array methods, runs on CuPy


def _xp(x):
    return array_module(x)


def batch_norm_forward(x, gamma, beta, eps, relu=False):
    """Training batch norm, with an optional ReLU epilogue: (y, mean, biased var, invstd)."""
    impl = _impl(x, "batch_norm_forward") or bn_ref.forward_train
    return impl(x, gamma, beta, eps, relu)


def batch_norm_backward(dy, x, mean, invstd, gamma, relu_out=None, input_grad_sum=False):
    """Closed-form batch-norm backward: (dx, dgamma, dbeta, sum of dx over samples or None).

    ``relu_out``: the output y of a ReLU epilogue; dy is first zeroed where y <= 0.
    """
    impl = _impl(x, "batch_norm_backward") or bn_ref.backward
    return impl(dy, x, mean, invstd, gamma, relu_out, input_grad_sum)


def batch_norm_double_backward(u, x, g, mean, invstd, gamma):
    """Derivatives of batch norm's input gradient: (d/dx, d/dg, d/dgamma) for an upstream u."""
    impl = _impl(x, "batch_norm_double_backward")
    if impl:
        return impl(u, x, g, mean, invstd, gamma)
    return bn_ref.double_backward(u, x, g, mean, invstd, gamma)


def affine_forward(x, center, scale, gamma, beta):
    """Normalization by fixed statistics: gamma (x - center) / scale + beta (center may be None)."""
    impl = _impl(x, "affine_forward")
    return impl(x, center, scale, gamma, beta) if impl else bn_ref.affine_forward(x, center, scale, gamma, beta)


def affine_backward(g, x, center, scale, gamma):
    """(dx, dgamma, dbeta) of ``affine_forward``."""
    impl = _impl(x, "affine_backward")
    return impl(g, x, center, scale, gamma) if impl else bn_ref.affine_backward(g, x, center, scale, gamma)


def lp_norm_forward(x, gamma, beta, p, c, eps, centered, mean_shift):
    """Training Lp normalization: (y, mu, s, S)."""
    impl = _impl(x, "lp_norm_forward")
    if impl:
        return impl(x, gamma, beta, p, c, eps, centered, mean_shift)
    return lp_ref.forward_train(_xp(x), x, gamma, beta, p, c, eps, centered, mean_shift)


def lp_norm_backward(g, x, gamma, mu, s, S, p, c, centered, mean_shift):
    """Lp normalization backward: (dx, dgamma, dbeta)."""
    impl = _impl(x, "lp_norm_backward")
    if impl:
        return impl(g, x, gamma, mu, s, S, p, c, centered, mean_shift)
    return lp_ref.backward(_xp(x), g, x, gamma, mu, s, S, p, c, centered, mean_shift)


def relu_forward(x):
    """max(x, 0)."""
    impl = _impl(x, "relu_forward", any_shape=True)
    return impl(x) if impl else _xp(x).maximum(x, 0)


def relu_backward(g, y):
    """g where y > 0, else 0 (y the output of relu; 0 also where g is inf or NaN, as in PyTorch)."""
    impl = _impl(g, "relu_backward", any_shape=True)
    return impl(g, y) if impl else bn_ref.relu_mask(g, y)


def cross_entropy_forward(x, target):
    """Per-sample softmax cross-entropy of logits x (N, C) and class indices: (losses, softmax(x))."""
    impl = _impl(x, "cross_entropy_forward")
    if impl:
        return impl(x, target)
    xp = _xp(x)
    top = xp.max(x.real, axis=1, keepdims=True)
    e = xp.exp(x - top)
    total = e.sum(axis=1, keepdims=True)
    losses = (top + xp.log(total))[:, 0] - x[xp.arange(x.shape[0]), target]
    return losses, e / total

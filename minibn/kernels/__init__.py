"""Array-level kernels for the normalization layers, ReLU and softmax cross-entropy, and the
choice among them.

A layer's forward, and its backward when no graph is being built (plain
``backward()``), run on raw arrays through the functions here. ``DISPATCH``
lists, per operation, its implementations (a :class:`Kernel`): the NumPy
reference (``batchnorm.py``, ``lpnorm.py``, or here; written with array
methods so that they also run on CuPy), the fused numba version for 2-D float
inputs on the CPU (``numba_cpu.py``; other inputs use the reference) and the
CuPy version for the GPU (``cupy_gpu.py``), or, where the table says None, the
reference running on CuPy. ``implementations()`` prints which is which. The
fused ones are tested against the reference.

On CPU the kernel set is numba when numba is importable, else NumPy; set it
with ``mb.set_kernels("numpy" | "numba")`` or the ``MINIBN_KERNELS``
environment variable. Arrays of another backend (CuPy) always use that
backend's kernels.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import os
from typing import Callable

import numpy as np

from ..backend import array_module
from . import batchnorm as bn_ref
from . import lpnorm as lp_ref
from . import numba_cpu  # (numba itself is imported when a kernel first runs)

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


@dataclasses.dataclass(frozen=True)
class Kernel:
    """One array operation's implementations, by kernel set.

    ``reference``: array-method code (the "numpy" set, and CuPy's where ``cupy`` is None);
    ``numba``: the fused serial version for float CPU arrays, 2-D unless ``any_shape``;
    ``cupy``: the name of the ``cupy.fuse`` version in ``cupy_gpu.py``, which is imported only
    when a CuPy array comes (it imports CuPy), or None: the reference runs on CuPy.
    """

    reference: Callable
    numba: Callable | None
    cupy: str | None
    any_shape: bool = False

    def pick(self, x) -> Callable:
        """The implementation for the array ``x`` under the current kernel set."""
        if isinstance(x, np.ndarray):
            if (self.numba is not None and get_kernels() == "numba" and (x.ndim == 2 or self.any_shape)
                    and x.dtype.kind == "f"):
                return self.numba
            return self.reference
        if self.cupy is None:
            return self.reference
        from . import cupy_gpu

        return getattr(cupy_gpu, self.cupy)


def _lp_forward_reference(x, gamma, beta, p, c, eps, centered, mean_shift):
    return lp_ref.forward_train(array_module(x), x, gamma, beta, p, c, eps, centered, mean_shift)


def _lp_backward_reference(g, x, gamma, mu, s, S, p, c, centered, mean_shift):
    return lp_ref.backward(array_module(g), g, x, gamma, mu, s, S, p, c, centered, mean_shift)


def _relu_reference(x):
    return array_module(x).maximum(x, 0)


def _cross_entropy_reference(x, target):
    """Per sample: logsumexp(x_i) - x_i[t_i] (after subtracting the max), and softmax(x)."""
    xp = array_module(x)
    top = xp.max(x.real, axis=1, keepdims=True)
    e = xp.exp(x - top)
    total = e.sum(axis=1, keepdims=True)
    losses = (top + xp.log(total))[:, 0] - x[xp.arange(x.shape[0]), target]
    return losses, e / total


DISPATCH = {
    "batch_norm_forward": Kernel(bn_ref.forward_train, numba_cpu.batch_norm_forward, "batch_norm_forward"),
    "batch_norm_backward": Kernel(bn_ref.backward, numba_cpu.batch_norm_backward, "batch_norm_backward"),
    "batch_norm_double_backward": Kernel(bn_ref.double_backward, numba_cpu.batch_norm_double_backward, None),
    "affine_forward": Kernel(bn_ref.affine_forward, numba_cpu.affine_forward, "affine_forward"),
    "affine_backward": Kernel(bn_ref.affine_backward, numba_cpu.affine_backward, "affine_backward"),
    "lp_norm_forward": Kernel(_lp_forward_reference, numba_cpu.lp_norm_forward, "lp_norm_forward"),
    "lp_norm_backward": Kernel(_lp_backward_reference, numba_cpu.lp_norm_backward, "lp_norm_backward"),
    "relu_forward": Kernel(_relu_reference, numba_cpu.relu_forward, "relu_forward", any_shape=True),
    "relu_backward": Kernel(bn_ref.relu_mask, numba_cpu.relu_backward, "relu_backward", any_shape=True),
    "cross_entropy_forward": Kernel(_cross_entropy_reference, numba_cpu.cross_entropy_forward, None),
}


def implementations() -> dict:
    """{operation: {kernel set: what runs}}: the table above in words."""
    return {op: {"numpy": f"{k.reference.__module__.rsplit('.', 1)[-1]}.{k.reference.__name__}",
                 "numba": f"numba_cpu.{k.numba.__name__}" + ("" if k.any_shape else " (2-D; else the reference)")
                 if k.numba else "the reference",
                 "cupy": f"cupy_gpu.{k.cupy}" if k.cupy else "the reference, on CuPy"}
            for op, k in DISPATCH.items()}


def batch_norm_forward(x, gamma, beta, eps, relu=False):
    """Training batch norm, with an optional ReLU epilogue: (y, mean, biased var, invstd)."""
    return DISPATCH["batch_norm_forward"].pick(x)(x, gamma, beta, eps, relu)


def batch_norm_backward(dy, x, mean, invstd, gamma, relu_out=None, input_grad_sum=False):
    """Closed-form batch-norm backward: (dx, dgamma, dbeta, sum of dx over samples or None).

    ``relu_out``: the output y of a ReLU epilogue; dy is first zeroed where y <= 0.
    """
    return DISPATCH["batch_norm_backward"].pick(x)(dy, x, mean, invstd, gamma, relu_out, input_grad_sum)


def batch_norm_double_backward(u, x, g, mean, invstd, gamma):
    """Derivatives of batch norm's input gradient: (d/dx, d/dg, d/dgamma) for an upstream u."""
    return DISPATCH["batch_norm_double_backward"].pick(x)(u, x, g, mean, invstd, gamma)


def affine_forward(x, center, scale, gamma, beta):
    """Normalization by fixed statistics: gamma (x - center) / scale + beta (center may be None)."""
    return DISPATCH["affine_forward"].pick(x)(x, center, scale, gamma, beta)


def affine_backward(g, x, center, scale, gamma):
    """(dx, dgamma, dbeta) of ``affine_forward``."""
    return DISPATCH["affine_backward"].pick(x)(g, x, center, scale, gamma)


def lp_norm_forward(x, gamma, beta, p, c, eps, centered, mean_shift):
    """Training Lp normalization: (y, mu, s, S)."""
    return DISPATCH["lp_norm_forward"].pick(x)(x, gamma, beta, p, c, eps, centered, mean_shift)


def lp_norm_backward(g, x, gamma, mu, s, S, p, c, centered, mean_shift):
    """Lp normalization backward: (dx, dgamma, dbeta)."""
    return DISPATCH["lp_norm_backward"].pick(x)(g, x, gamma, mu, s, S, p, c, centered, mean_shift)


def relu_forward(x):
    """max(x, 0)."""
    return DISPATCH["relu_forward"].pick(x)(x)


def relu_backward(g, y):
    """g where y > 0, else 0 (y the output of relu; 0 also where g is inf or NaN, as in PyTorch)."""
    return DISPATCH["relu_backward"].pick(g)(g, y)


def cross_entropy_forward(x, target):
    """Per-sample softmax cross-entropy of logits x (N, C) and class indices: (losses, softmax(x))."""
    return DISPATCH["cross_entropy_forward"].pick(x)(x, target)

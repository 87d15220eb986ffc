"""Array-level kernels for the normalization layers, ReLU and softmax cross-entropy, and the
choice among them.

A layer's forward, and its backward when no graph is being built (plain
``backward()``), run on raw arrays through the functions at the end of this
file. Each operation has a package here, ``batchnorm/``, ``lpnorm/``,
``relu/`` and ``cross_entropy/``, whose docstring gives the formulas and whose
files are its implementations, with the formula's names:

    reference.py   array-method code, so that it runs on NumPy and on CuPy;
    numba_cpu.py   fused serial loops for float CPU arrays, compiled on first use;
    cupy_gpu.py    CuPy reductions and ``cupy.fuse`` kernels (CuPy imported on first use).

``DISPATCH`` lists, per operation, which function each kernel set runs (a
:class:`Kernel`); where a set has none, the table says so and the reference
runs instead, which ``implementations()`` spells out. The fused ones are
tested against the reference.

On CPU the kernel set is numba when numba is importable, else NumPy; set it
with ``mb.set_kernels("numpy" | "numba")`` or the ``MINIBN_KERNELS``
environment variable. CuPy arrays always use the CuPy kernels.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import os
from typing import Callable

import numpy as np

from . import batchnorm, cross_entropy, lpnorm, relu

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


def default_kernels() -> str:
    """The CPU kernel set when nothing chooses one: numba if it is installed, else numpy."""
    return "numba" if numba_available() else "numpy"


def get_kernels() -> str:
    """The CPU kernel set in use: ``set_kernels``'s choice, else $MINIBN_KERNELS, else
    :func:`default_kernels`."""
    if _choice is not None:
        return _choice
    env = os.environ.get("MINIBN_KERNELS")
    if env:
        if env not in KERNEL_SETS:
            raise ValueError(f"MINIBN_KERNELS must be one of {KERNEL_SETS}, got {env!r}")
        return env
    return default_kernels()


@dataclasses.dataclass(frozen=True)
class Kernel:
    """One array operation's implementations, by kernel set.

    ``reference``: array-method code (the "numpy" set, and CuPy's where ``cupy`` is None);
    ``numba``: the fused serial version for float CPU arrays, 2-D unless ``any_shape``, or None;
    ``cupy``: the GPU version, or None: the reference runs on CuPy.
    """

    reference: Callable
    numba: Callable | None
    cupy: Callable | None
    any_shape: bool = False

    def pick(self, x) -> Callable:
        """The implementation for the array ``x`` under the current kernel set."""
        if isinstance(x, np.ndarray):
            if (self.numba is not None and get_kernels() == "numba" and (x.ndim == 2 or self.any_shape)
                    and x.dtype.kind == "f"):
                return self.numba
            return self.reference
        return self.cupy or self.reference


DISPATCH = {
    "batch_norm_forward": Kernel(batchnorm.reference.forward, batchnorm.numba_cpu.forward,
                                 batchnorm.cupy_gpu.forward),
    "batch_norm_backward": Kernel(batchnorm.reference.backward, batchnorm.numba_cpu.backward,
                                  batchnorm.cupy_gpu.backward),
    "batch_norm_double_backward": Kernel(batchnorm.reference.double_backward,
                                         batchnorm.numba_cpu.double_backward, None),
    "affine_forward": Kernel(batchnorm.reference.affine_forward, batchnorm.numba_cpu.affine_forward,
                             batchnorm.cupy_gpu.affine_forward),
    "affine_backward": Kernel(batchnorm.reference.affine_backward, batchnorm.numba_cpu.affine_backward,
                              batchnorm.cupy_gpu.affine_backward),
    "lp_norm_forward": Kernel(lpnorm.reference.forward, lpnorm.numba_cpu.forward, lpnorm.cupy_gpu.forward),
    "lp_norm_backward": Kernel(lpnorm.reference.backward, lpnorm.numba_cpu.backward, lpnorm.cupy_gpu.backward),
    "relu_forward": Kernel(relu.reference.forward, relu.numba_cpu.forward, relu.cupy_gpu.forward, any_shape=True),
    "relu_backward": Kernel(relu.reference.backward, relu.numba_cpu.backward, relu.cupy_gpu.backward,
                            any_shape=True),
    "cross_entropy_forward": Kernel(cross_entropy.reference.forward, cross_entropy.numba_cpu.forward, None),
}


def _where(fn: Callable) -> str:
    """``fn`` by its place in this package: "batchnorm.numba_cpu.forward"."""
    return f"{fn.__module__.removeprefix(__name__ + '.')}.{fn.__name__}"


def implementations() -> dict:
    """{operation: {kernel set: what runs}}: the table above in words."""
    return {op: {"numpy": _where(k.reference),
                 "numba": _where(k.numba) + ("" if k.any_shape else " (2-D; else the reference)")
                 if k.numba else "the reference",
                 "cupy": _where(k.cupy) if k.cupy else f"the reference ({_where(k.reference)}), on CuPy"}
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

"""What the numba kernels (``*/numba_cpu.py``) share: compilation on first use, and array preparation.

The kernels are serial on purpose. Measured on the 2-core build machine,
parallel versions (prange over blocks of rows or channels) ran 1.4-16x slower
than the serial ones once OpenBLAS had run a matrix product in the same
process, as it always has inside a training step: its threads spin-wait on
the same cores. That held with OpenBLAS's defaults, with
OPENBLAS_THREAD_TIMEOUT=1, with numba's workqueue layer, and with OpenBLAS
limited by threadpoolctl around the kernels (``python bench/threads.py``).
Serial kernels need no threading layer at all.

Each kernel makes two to four passes over a C-contiguous (N, C) array, where
the NumPy reference makes six to twelve. Compilation happens on a kernel's
first call and is cached on disk (``cache=True``), so ``import minibn`` never
waits for numba (nor imports it).
"""

from __future__ import annotations

import functools

import numpy as np

BLOCK = 32
"""Rows summed in the input's dtype before their sum joins a float64 total (vector arithmetic
without conversions: 2.5x faster in float32, with float64's accuracy across blocks)."""


@functools.cache
def jit(fn):
    """The numba-compiled version of ``fn`` (compiled, or loaded from the disk cache, once)."""
    import numba

    return numba.njit(cache=True, nogil=True)(fn)


def contiguous(a):
    """``a`` in C order with its shape (``np.ascontiguousarray`` makes a 0-d array 1-d)."""
    a = np.asarray(a)
    return a if a.flags.c_contiguous else a.copy(order="C")


def or_fill(v, x, fill: float):
    """A per-channel vector, or (None) ``fill`` in every channel of x, in x's dtype."""
    return np.full(x.shape[1], fill, x.dtype) if v is None else v

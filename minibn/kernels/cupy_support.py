"""What the CuPy kernels (``*/cupy_gpu.py``) share: CuPy imported on first use, and fused kernels.

The kernel modules are imported with the rest of ``minibn.kernels``, also on
machines without CuPy; their functions only ever receive CuPy arrays, so CuPy
is imported the first time one of them runs.
"""

from __future__ import annotations

import functools
import importlib


class _LazyModule:
    """A module imported on first attribute access."""

    def __init__(self, name: str):
        self._name = name

    def __getattr__(self, attr):
        return getattr(importlib.import_module(self._name), attr)


cupy = _LazyModule("cupy")


@functools.cache
def fuse(fn):
    """``cupy.fuse`` of the elementwise function ``fn``: one GPU kernel, built once."""
    return cupy.fuse()(fn)

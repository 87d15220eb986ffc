"""What the CuPy kernels (``*/cupy_gpu.py``) share: CuPy imported on first use, and fused kernels.

The kernel modules are imported with the rest of ``minibn.kernels``, also on
machines without CuPy; their functions only ever receive CuPy arrays, so CuPy
is imported the first time one of them runs.
"""

from __future__ import annotations

import functools
import importlib


class _LazyModule:
    """A module imported on attribute access (looked up in ``sys.modules`` each time, so that the
    tests' CuPy stand-in, installed there, is the one used)."""

    def __init__(self, name: str):
        self._name = name

    def __getattr__(self, attr):
        if attr.startswith("__"):  # introspection (hasattr, doctest, copy) must not import the module
            raise AttributeError(attr)
        return getattr(importlib.import_module(self._name), attr)

    def __repr__(self):
        return f"<module {self._name!r}, imported on first use>"


cupy = _LazyModule("cupy")


@functools.cache
def fuse(fn):
    """``cupy.fuse`` of the elementwise function ``fn``: one GPU kernel, built once (per process: the
    tests clear the cache when they remove their CuPy stand-in)."""
    return cupy.fuse()(fn)

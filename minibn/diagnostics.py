"""``mb.backend_info()``: what minibn runs on, asked of each part (NumPy and its BLAS, the kernels,
CuPy and the GPU). It sits above ``devices`` and ``kernels`` so that neither imports the other's
diagnostics."""

from __future__ import annotations

import platform
import sys

import numpy as np

from . import kernels


def backend_info() -> dict:
    """Versions and devices: NumPy and its BLAS, numba and the CPU kernel set, CuPy and the GPU."""
    from . import __version__

    info = {"minibn": __version__, "python": sys.version.split()[0], "platform": platform.platform(),
            "numpy": np.__version__}
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        info["blas"] = f"{blas.get('name')} {blas.get('version')}"
    except Exception:  # show_config's layout is not a stable API
        info["blas"] = "unknown"
    if kernels.numba_available():
        import numba

        info["numba"] = numba.__version__
    else:
        info["numba"] = "not installed"
    info["cpu kernels"] = kernels.get_kernels()
    try:
        import cupy
    except ImportError:
        info["cupy"] = "not installed (GPUs need the cuda12 or cuda13 extra)"
        return info
    info["cupy"] = cupy.__version__
    try:
        count = cupy.cuda.runtime.getDeviceCount()
        names = [cupy.cuda.runtime.getDeviceProperties(i)["name"] for i in range(count)]
        info["gpu"] = ", ".join(n.decode() if isinstance(n, bytes) else str(n) for n in names) or "none"
    except Exception as exc:  # no driver, no device
        info["gpu"] = f"none usable ({exc})"
    return info

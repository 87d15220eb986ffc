"""ReLU on arrays: y = max(x, 0);  dx = g where y > 0, else 0.

A NaN input stays NaN, and an inf or NaN in g where y <= 0 stays out of dx, as in
PyTorch (``threshold_backward``). Implementations: ``reference.py`` (NumPy or
CuPy), ``numba_cpu.py``, ``cupy_gpu.py``.
"""

from . import cupy_gpu, numba_cpu, reference  # noqa: F401

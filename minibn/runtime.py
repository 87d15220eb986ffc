"""Threads and determinism, in PyTorch's words (``torch.set_num_threads`` and
``torch.use_deterministic_algorithms``).

minibn's own kernels are serial; the threads are those of the BLAS under NumPy's matrix
products, set through threadpoolctl. Its CPU ops are deterministic already (serial kernels,
reductions in a fixed order), so the determinism switch is recorded and answered, and changes
nothing on the CPU.
"""

from __future__ import annotations

_deterministic = {"mode": False, "warn_only": False}
_limits = []  # the threadpoolctl limit in force, kept alive


def set_num_threads(n: int) -> None:
    """Let the BLAS use ``n`` threads for matrix products from now on."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"set_num_threads: expects a positive integer, got {n!r}")
    from threadpoolctl import threadpool_limits

    _limits[:] = [threadpool_limits(limits=n, user_api="blas")]


def get_num_threads() -> int:
    """The threads the BLAS uses for matrix products (1 when no BLAS library is found)."""
    from threadpoolctl import threadpool_info

    counts = [lib["num_threads"] for lib in threadpool_info() if lib.get("user_api") == "blas"]
    return max(counts, default=1)


def use_deterministic_algorithms(mode: bool, *, warn_only: bool = False) -> None:
    """Ask for deterministic algorithms (recorded: every CPU op of minibn already is one)."""
    _deterministic.update(mode=bool(mode), warn_only=bool(warn_only))


def are_deterministic_algorithms_enabled() -> bool:
    """Whether ``use_deterministic_algorithms(True)`` is in force."""
    return _deterministic["mode"]


def is_deterministic_algorithms_warn_only_enabled() -> bool:
    """Whether it was asked with ``warn_only=True``."""
    return _deterministic["warn_only"]

"""PyTorch's ``torch.cuda`` questions: is there a GPU minibn can use (through CuPy), how many."""

from __future__ import annotations

from .devices import synchronize  # noqa: F401  (mb.cuda.synchronize, as torch.cuda.synchronize)


def device_count() -> int:
    """The GPUs CuPy sees: 0 without CuPy, a driver or a device."""
    try:
        import cupy

        return int(cupy.cuda.runtime.getDeviceCount())
    except Exception:  # no CuPy, or CUDA's own errors when no driver or device is present
        return 0


def is_available() -> bool:
    """Whether ``device="cuda"`` can work here (CuPy installed and a GPU visible)."""
    return device_count() > 0


def manual_seed(seed: int) -> None:
    """Accepted and checked, and changes nothing: minibn draws every random number on the host from
    the generator ``mb.manual_seed`` seeds, so a GPU run follows that seed alone."""
    from .random import Generator

    Generator(seed)  # the same check of the seed as mb.manual_seed's


manual_seed_all = manual_seed

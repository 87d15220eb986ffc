"""What every experiment needs around its numbers: an output folder, a progress bar, devices."""

from __future__ import annotations

import datetime
import os
from pathlib import Path

from tqdm.auto import tqdm

from .kernels import KERNEL_SETS, set_kernels

BACKENDS = {"numpy": "cpu", "numba": "cpu", "cupy": "cuda"}


def use_backend(backend: str) -> str:
    """Apply a ``--backend`` choice and return its device: numpy and numba run on the CPU with
    that kernel set, cupy on the GPU."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose one of {sorted(BACKENDS)}")
    if backend in KERNEL_SETS:
        set_kernels(backend)
    return BACKENDS[backend]


def run_dir(out, name: str) -> Path:
    """``out`` if given, else runs/<name>/<timestamp>/ under the current folder; created."""
    if out is None:
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        out = Path("runs") / name / stamp
    out = Path(out)
    os.makedirs(out, exist_ok=True)
    return out


def progress(iterable, quiet: bool = False, **kwargs):
    """A tqdm progress bar (silent with ``quiet``)."""
    return tqdm(iterable, disable=quiet, dynamic_ncols=True, **kwargs)

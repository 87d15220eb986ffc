"""What every experiment needs around its numbers: an output folder, a progress bar, devices."""

from __future__ import annotations

import datetime
import os
from pathlib import Path

from tqdm.auto import tqdm

BACKENDS = {"numpy": "cpu", "cupy": "cuda"}


def device_for(backend: str) -> str:
    """The device a ``--backend`` choice runs on (numpy: cpu, cupy: cuda)."""
    try:
        return BACKENDS[backend]
    except KeyError:
        raise ValueError(f"unknown backend {backend!r}; choose one of {sorted(BACKENDS)}") from None


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

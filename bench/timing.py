"""Interleaved timing: the cases of one comparison run round-robin (A B A B ...), so that the
machine's drift lands on all of them alike; each case reports its median and minimum."""

from __future__ import annotations

import itertools
import os
import statistics
import time

LEAD = 0.05  # seconds of untimed calls before each timed block


def set_threads(n: int) -> None:
    """The same thread count for every library; call before importing NumPy, numba or torch."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        os.environ[var] = str(n)


def interleaved(steps: dict, rounds: int, repeat: int, warmup: int = 3) -> dict:
    """Seconds per call of each function in ``steps``: {name: (median, minimum)}.

    Each timed block starts with untimed calls of the same function, for at least ``LEAD`` seconds
    and a quarter of ``repeat``: thread pools (OpenBLAS's, PyTorch's OpenMP) spin or sleep after
    their work, and a block must measure its library in its steady state, not the hand-over from
    the previous one (a block of 2 numpy calls of 2 ms right after a PyTorch step measured twice
    their time alone on a 2-core machine).
    """
    for step in steps.values():
        for _ in range(warmup):
            step()
    lead = max(1, repeat // 4)
    times = {name: [] for name in steps}
    for _ in range(rounds):
        for name, step in steps.items():
            until = time.perf_counter() + LEAD
            for i in itertools.count():
                if i >= lead and time.perf_counter() >= until:
                    break
                step()
            start = time.perf_counter()
            for _ in range(repeat):
                step()
            times[name].append((time.perf_counter() - start) / repeat)
    return {name: (statistics.median(t), min(t)) for name, t in times.items()}

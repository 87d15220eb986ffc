"""Independent pieces of work in worker processes: a fresh spawned process per worker, with a
fixed number of BLAS threads, so that results do not depend on how many workers ran them. A
spawned process starts with this one's import path, so it finds what this one found."""

from __future__ import annotations

import concurrent.futures
import contextlib
import multiprocessing
import os

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


@contextlib.contextmanager
def worker_environment(threads: int | None = None):
    """While starting worker processes: ``threads`` BLAS threads each (unless the user set the
    variables; None leaves them alone)."""
    changes = {} if threads is None else {k: str(threads) for k in THREAD_VARIABLES if k not in os.environ}
    saved = {k: os.environ.get(k) for k in changes}
    os.environ.update(changes)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def imap_unordered(fn, tasks, workers: int, threads: int = 1):
    """Yield ``(task, fn(task))`` as each finishes, ``workers`` spawned processes at a time, each
    with ``threads`` BLAS threads. ``fn`` must be importable (a module-level function). If a task
    fails, the others still finish and are yielded; then the first failure is raised."""
    tasks = list(tasks)
    if not tasks:
        return
    if multiprocessing.current_process().daemon:
        raise RuntimeError("this code starts worker processes, which a daemonic process cannot have; run it "
                           "outside a daemonic pool (a Dask worker needs distributed.worker.daemon: false)")
    context = multiprocessing.get_context("spawn")
    failed = None
    with worker_environment(threads), concurrent.futures.ProcessPoolExecutor(workers, mp_context=context) as pool:
        futures = {pool.submit(fn, t): t for t in tasks}
        try:
            for future in concurrent.futures.as_completed(futures):
                try:
                    result = future.result()
                except Exception as exc:  # the others' results are kept; the error is raised at the end
                    failed = failed or exc
                    continue
                yield futures[future], result
        finally:
            for future in futures:
                future.cancel()
    if failed is not None:
        raise failed

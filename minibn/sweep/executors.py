"""Where a sweep's points run: fresh local processes, or a Dask cluster (local or remote)."""

from __future__ import annotations

import contextlib
import ctypes
import logging
import multiprocessing
import multiprocessing.connection
import signal
from collections import Counter, deque

from . import failure, read_result, run_point
from ..experiment.parallel import cpu_count, worker_environment


def _environment(workers: int):
    """Each worker gets cores / workers BLAS threads (unless the user set them)."""
    return worker_environment(max(1, cpu_count() // max(1, workers)))


# -- local processes -----------------------------------------------------------------------------


def _die_with_parent() -> None:
    """Linux: this process gets SIGKILL when the sweep dies, so no orphan writes into a point."""
    try:
        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _point_process(spec, values, folder, quick) -> None:
    _die_with_parent()
    run_point(spec, values, folder, quick)


def in_processes(points, spec, quick, done, workers: int, retries: int) -> None:
    """Run each point in a fresh process, ``workers`` at a time. A process that dies without
    writing its result (killed, out of memory) is started again, up to ``retries`` times."""
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    context = multiprocessing.get_context("spawn")
    pending, running, deaths = deque(points), {}, Counter()
    try:
        while pending or running:
            with _environment(workers):
                while pending and len(running) < workers:
                    point = pending.popleft()
                    # not a daemon: an experiment may start worker processes of its own
                    proc = context.Process(target=_point_process, args=(spec, point.values, point.folder, quick),
                                           name=f"minibn-sweep {point.name}")
                    proc.start()
                    running[proc.sentinel] = (proc, point)
            for sentinel in multiprocessing.connection.wait(list(running)):
                proc, point = running.pop(sentinel)
                proc.join()
                result = read_result(point.folder) if proc.exitcode == 0 else None
                if result is None:
                    deaths[point.name] += 1
                    if deaths[point.name] <= retries:
                        pending.append(point)
                        continue
                    result = failure(point.values, f"its process died {deaths[point.name]} times "
                                                   f"(last exit code {proc.exitcode})")
                done(point, result)
    finally:
        for proc, _ in running.values():
            proc.kill()


# -- Dask ------------------------------------------------------------------------------------------


def on_dask(points, spec, quick, done, scheduler=None, local_workers=None, retries: int = 2) -> None:
    """Run the points as tasks on a Dask cluster: an existing one at ``scheduler``, or a
    LocalCluster of ``local_workers`` single-threaded worker processes on the loopback address.
    Dask reruns a task whose worker died on another worker (its point resumes from its
    checkpoint); a point whose workers die more often than the scheduler allows
    (``retries`` for a LocalCluster; an existing cluster's own ``allowed-failures``) is
    recorded as failed. The point folders must be on a file system every worker sees."""
    try:
        from dask import config as dask_config
        from distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise RuntimeError("sweeps on Dask need dask.distributed: pip install -e '.[dask]'") from None
    with contextlib.ExitStack() as stack:
        if scheduler:
            client = stack.enter_context(Client(scheduler))
        else:
            stack.enter_context(_environment(local_workers))
            stack.enter_context(dask_config.set({"distributed.scheduler.allowed-failures": retries,
                                                 "distributed.worker.daemon": False}))  # points may spawn
            cluster = stack.enter_context(LocalCluster(n_workers=local_workers, threads_per_worker=1, processes=True,
                                                       host="127.0.0.1", dashboard_address=None,
                                                       silence_logs=logging.ERROR))
            client = stack.enter_context(Client(cluster))
        futures = {client.submit(run_point, spec, p.values, p.folder, quick, key=f"minibn-point-{p.folder}",
                                 pure=False): p for p in points}
        for future in as_completed(futures):
            point = futures[future]
            try:
                result = future.result()
            except Exception as exc:  # KilledWorker, or a worker that cannot import the experiment
                result = failure(point.values, f"{type(exc).__name__}: {exc}")
            done(point, result)

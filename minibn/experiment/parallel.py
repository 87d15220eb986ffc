"""Where independent tasks run: this process, local worker processes, or a Dask cluster (local or
remote), behind one function, :func:`run`.

A :class:`Task` is a module-level function with its arguments (picklable, so that a spawned
process or a Dask worker can call it). Each finished task's :class:`Outcome` goes to
``done(task, outcome)``, which may return further tasks: a graph whose next steps are known only
when earlier ones finish (a report's entry is decided once its units are in). A task that raises
is an outcome with its error and traceback, never the end of the others; a process or worker
that dies is retried, up to ``retries`` times. Local worker processes are spawned with this one's
import path and run task after task.

Every task computes with one BLAS thread, wherever it runs, so that its numbers do not depend on
where it ran: a long float32 training at a high learning rate amplifies the last bits in which
BLAS results on different thread counts differ. One task is one core: run as many workers as
there are cores.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import traceback
import uuid
from collections import Counter, deque
from dataclasses import dataclass
from typing import Callable

from threadpoolctl import threadpool_limits

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


@dataclass(frozen=True)
class Task:
    key: str          # unique among the tasks of a run: names it in messages and on Dask
    fn: Callable      # importable: a module-level function
    args: tuple = ()


@dataclass(frozen=True)
class Outcome:
    value: object = None
    error: str | None = None  # "TypeName: message" if the task failed
    traceback: str = ""

    @property
    def ok(self) -> bool:
        return self.error is None


def call(fn, args) -> Outcome:
    """``fn(*args)`` with one BLAS thread, as an outcome: its value, or the error it raised with
    its traceback."""
    try:
        with threadpool_limits(1):
            return Outcome(fn(*args))
    except Exception as exc:
        return Outcome(None, f"{type(exc).__name__}: {exc}", traceback.format_exc())


def run(tasks, done, *, workers: int | None = None, dask: int | None = None, scheduler: str | None = None,
        retries: int = 2) -> None:
    """Run ``tasks`` and every task ``done(task, outcome)`` returns: on the Dask cluster at
    ``scheduler``, on a local Dask cluster of ``dask`` workers, in this process one after another
    (``workers=0``), or in ``workers`` local worker processes (default: one per core). The tasks a
    finished task returns go before those not yet started (an entry's last step runs as soon as its
    inputs are in, not after every other entry's jobs), and a task that died goes after them."""
    if scheduler or dask:
        on_dask(tasks, done, scheduler=scheduler, local_workers=dask, retries=retries)
    elif workers == 0:
        in_this_process(tasks, done)
    else:
        in_processes(tasks, done, workers=workers or cpu_count(), retries=retries)


def add_arguments(parser, what: str) -> None:
    """The command-line flags choosing where ``what`` (e.g. "tasks") run: --workers N, --dask
    local:N, --scheduler ADDR; :func:`from_arguments` reads them."""
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--workers", type=int, default=None, metavar="N",
                       help=f"local processes running {what} at once (default: one per core; 0: one after "
                            "another in this process)")
    where.add_argument("--dask", default=None, metavar="local:N", help="a local Dask cluster of N workers")
    where.add_argument("--scheduler", default=None, metavar="tcp://HOST:PORT",
                       help="the scheduler of an existing Dask cluster (the output on a file system its workers share)")


def from_arguments(parser, args) -> dict:
    """{"workers", "dask", "scheduler"} for :func:`run` from :func:`add_arguments`' flags; a bad
    value exits through ``parser.error`` (status 2)."""
    if args.workers is not None and args.workers < 0:
        parser.error(f"--workers: must be 0 or more, got {args.workers}")
    local = None
    if args.dask is not None:
        kind, _, n = args.dask.partition(":")
        if kind != "local" or not n.isdigit() or int(n) < 1:
            parser.error(f"--dask: expected local:N with N >= 1, got {args.dask!r} (for a running cluster use "
                         "--scheduler)")
        local = int(n)
    return {"workers": args.workers, "dask": local, "scheduler": args.scheduler}


# -- this process ----------------------------------------------------------------------------------


def in_this_process(tasks, done) -> None:
    """Each task in turn, here: for debugging, and for tasks too small to be worth a process."""
    pending = deque(tasks)
    while pending:
        task = pending.popleft()
        pending.extendleft(reversed(done(task, call(task.fn, task.args)) or ()))


# -- local processes ---------------------------------------------------------------------------------


def _die_with_parent() -> None:
    """Linux: this process gets SIGKILL when its parent dies, so no orphan writes into a run."""
    try:
        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _worker(connection) -> None:
    """A local worker process: runs the tasks it is sent, one after another, until its pipe closes."""
    _die_with_parent()
    while True:
        try:
            fn, args = connection.recv()
        except (EOFError, OSError):
            return
        outcome = call(fn, args)
        try:
            connection.send(outcome)
        except Exception as exc:  # a value that cannot be pickled
            connection.send(Outcome(None, f"its result could not be sent back ({type(exc).__name__}: {exc})"))


def in_processes(tasks, done, workers: int, retries: int) -> None:
    """Run the tasks in ``workers`` spawned worker processes, each one task at a time and then the
    next (started once, not once per task: a fresh Python, its imports and its compiled kernels
    cost about a second). A worker that dies without sending its outcome (killed, out of memory) is
    replaced, and its task started again, up to ``retries`` times."""
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    context = multiprocessing.get_context("spawn")
    pending, busy, idle, deaths = deque(tasks), {}, [], Counter()

    def start_worker():
        here, there = context.Pipe()
        with worker_environment(1):
            # not a daemon: a task may start worker processes of its own
            proc = context.Process(target=_worker, args=(there,), name="minibn worker")
            proc.start()
        there.close()  # the worker's end: closed here, so a dead worker reads as end of file
        return proc, here

    def give(task):
        proc, connection = idle.pop() if idle else start_worker()
        try:
            connection.send((task.fn, task.args))
        except (BrokenPipeError, ConnectionResetError):  # it died while idle: a fresh one
            connection.close()
            proc.join()
            proc, connection = start_worker()
            connection.send((task.fn, task.args))
        busy[connection] = (proc, task)

    try:
        while pending or busy:
            while pending and len(busy) < workers:
                give(pending.popleft())
            for connection in multiprocessing.connection.wait(list(busy)):
                proc, task = busy.pop(connection)
                try:
                    outcome = connection.recv()
                except (EOFError, OSError):
                    outcome = None
                if outcome is not None:
                    idle.append((proc, connection))
                else:
                    connection.close()
                    proc.join()
                    deaths[task.key] += 1
                    if deaths[task.key] <= retries:
                        pending.append(task)
                        continue
                    outcome = Outcome(None, f"its process died {deaths[task.key]} times (last exit code "
                                            f"{proc.exitcode})")
                pending.extendleft(reversed(done(task, outcome) or ()))
    finally:
        for connection, (proc, _) in busy.items():
            proc.kill()
            connection.close()
        for _, connection in idle:
            connection.close()  # an idle worker ends when its pipe closes
        for proc in [proc for proc, _ in busy.values()] + [proc for proc, _ in idle]:
            proc.join()


# -- Dask ------------------------------------------------------------------------------------------


def on_dask(tasks, done, scheduler=None, local_workers=None, retries: int = 2) -> None:
    """Run the tasks on a Dask cluster: an existing one at ``scheduler``, or a LocalCluster of
    ``local_workers`` single-threaded worker processes on the loopback address. Dask reruns a task
    whose worker died on another worker; a task whose workers die more often than the scheduler
    allows (``retries`` for a LocalCluster; an existing cluster's own ``allowed-failures``) fails
    with KilledWorker. Files the tasks write must be on a file system every worker sees."""
    try:
        from dask import config as dask_config
        from distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise RuntimeError("running on Dask needs dask.distributed: pip install -e '.[dask]'") from None
    with contextlib.ExitStack() as stack:
        if scheduler:
            client = stack.enter_context(Client(scheduler))
        else:
            stack.enter_context(worker_environment(1))
            stack.enter_context(dask_config.set({"distributed.scheduler.allowed-failures": retries,
                                                 "distributed.worker.daemon": False}))  # tasks may spawn
            cluster = stack.enter_context(LocalCluster(n_workers=local_workers, threads_per_worker=1, processes=True,
                                                       host="127.0.0.1", dashboard_address=None,
                                                       silence_logs=logging.ERROR))
            client = stack.enter_context(Client(cluster))
        run_id = uuid.uuid4().hex[:8]  # keys of this run, apart from any other client's on that cluster
        futures = {}

        def submit(task, priority=0):  # Dask runs the ready task of highest priority first
            future = client.submit(call, task.fn, task.args, key=f"minibn-{run_id}-{task.key}", pure=False,
                                   priority=priority)
            futures[future] = task
            return future

        finished = as_completed([submit(t) for t in tasks])
        for future in finished:
            task = futures.pop(future)
            try:
                outcome = future.result()
            except Exception as exc:  # KilledWorker, or a worker that cannot import the task's function
                outcome = Outcome(None, f"{type(exc).__name__}: {exc}")
            for more in done(task, outcome) or ():
                finished.add(submit(more, priority=1))

"""The executors: a graph of tasks (each finished task may start more) in this process, in fresh local
processes and on a local Dask cluster, with failures as outcomes and dead processes retried."""

import os
import signal
from pathlib import Path

import pytest
from threadpoolctl import threadpool_info

from minibn.experiment import parallel

WHERE = {"this process": {"workers": 0}, "processes": {"workers": 2}, "dask": {"dask": 2}}


def square(x):
    return x * x


def fail(message):
    raise ValueError(message)


def die_once(marker):
    if not Path(marker).exists():
        Path(marker).write_text("")
        os.kill(os.getpid(), signal.SIGKILL)
    return os.getpid()


def blas_threads():
    return [pool["num_threads"] for pool in threadpool_info()]


def _graph(where):
    """Two chains of squares, each finished task starting the next, and a task that fails."""
    outcomes = {}

    def done(task, outcome):
        outcomes[task.key] = outcome
        if outcome.ok and outcome.value < 1000:
            return [parallel.Task(f"{task.key}+", square, (outcome.value,))]
        return []

    tasks = [parallel.Task("a", square, (2,)), parallel.Task("b", square, (3,)),
             parallel.Task("bad", fail, ("as asked",))]
    parallel.run(tasks, done, **WHERE[where])
    return outcomes


@pytest.mark.parametrize("where", list(WHERE))
def test_a_graph_runs_every_task_its_finished_tasks_start(where):
    if where == "dask":
        pytest.importorskip("distributed", reason="Dask needs dask.distributed (pip install -e '.[dask]')")
    outcomes = _graph(where)
    assert {k: o.value for k, o in outcomes.items() if o.ok} == {"a": 4, "a+": 16, "a++": 256, "a+++": 65536,
                                                                "b": 9, "b+": 81, "b++": 6561}
    bad = outcomes["bad"]
    assert not bad.ok and bad.error == "ValueError: as asked" and "Traceback" in bad.traceback


@pytest.mark.parametrize("where", ["this process", "processes"])
def test_the_tasks_a_finished_task_starts_go_before_those_not_yet_started(where):
    """One worker: the chain a, a+, a++ runs before b and c (a report's entry finishes before the next
    entry's jobs), its tasks in the order done() returned them."""
    order = []

    def done(task, outcome):
        order.append(task.key)
        more = {"a": ["a+", "a-"], "a+": ["a++"]}.get(task.key, [])
        return [parallel.Task(k, square, (1,)) for k in more]

    tasks = [parallel.Task(k, square, (1,)) for k in "abc"]
    parallel.run(tasks, done, **{**WHERE[where], "workers": min(WHERE[where]["workers"], 1)})
    assert order == ["a", "a+", "a++", "a-", "b", "c"]


def test_a_task_whose_process_dies_runs_again_and_one_that_keeps_dying_fails(tmp_path):
    outcomes = {}

    def done(task, outcome):
        outcomes[task.key] = outcome

    parallel.run([parallel.Task("dies once", die_once, (str(tmp_path / "m"),))], done, workers=1, retries=1)
    assert outcomes["dies once"].ok and outcomes["dies once"].value != os.getpid()
    parallel.run([parallel.Task("dies", die_once, (str(tmp_path / "n"),))], done, workers=1, retries=0)
    assert outcomes["dies"].error == "its process died 1 times (last exit code -9)"


def pid():
    return os.getpid()


def test_local_workers_run_task_after_task_and_one_killed_while_idle_is_replaced():
    outcomes = []

    def done(task, outcome):
        outcomes.append(outcome)
        if len(outcomes) == 3:  # the worker now waits for its next task: kill it there
            os.kill(outcome.value, signal.SIGKILL)
        return [parallel.Task(f"{task.key}+", pid)] if len(outcomes) < 5 else []

    parallel.run([parallel.Task("pid", pid)], done, workers=1, retries=1)
    pids = [o.value for o in outcomes]
    assert all(o.ok for o in outcomes) and os.getpid() not in pids
    assert pids[0] == pids[1] == pids[2] != pids[3] == pids[4]  # one worker, then its replacement


@pytest.mark.parametrize("where", list(WHERE))
def test_every_task_computes_with_one_blas_thread_and_the_caller_keeps_its_own(where):
    if where == "dask":
        pytest.importorskip("distributed", reason="Dask needs dask.distributed (pip install -e '.[dask]')")
    outcomes = []
    before = threadpool_info()
    parallel.run([parallel.Task("threads", blas_threads)], lambda t, o: outcomes.append(o) or [], **WHERE[where])
    assert outcomes[0].value and set(outcomes[0].value) == {1}
    assert threadpool_info() == before

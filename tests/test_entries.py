"""Several runs as one graph of tasks: a grid's jobs and a run's task on the executors, the grid finished
once its jobs are in, an entry run once per seed, and a report killed at any moment that loses only the
tasks in flight."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from minibn import experiment, fileio
from minibn.experiment import checkpoint
from minibn.sweep import entries
from tests import toy_experiment, toy_grid

GRID = experiment.load(toy_grid)
TOY = experiment.load(toy_experiment)
ROOT = Path(__file__).resolve().parents[1]


def _entry(name, exp, folder, seeds=1, **values):
    return entries.Entry(name, exp, exp.config(**values, out=str(folder), quiet=True), seeds)


def _numbers(metrics):
    return {k: v for k, v in metrics.items() if k not in ("files", "figure_errors", "config", "previous")}


@pytest.mark.parametrize("where", [{"workers": 0}, {"workers": 2}])
def test_a_grid_and_a_run_through_the_graph_equal_their_runs_alone(where, tmp_path):
    report = entries.run_entries([_entry("grid", GRID, tmp_path / "r" / "grid", steps=3),
                                  _entry("toy", TOY, tmp_path / "r" / "toy", steps=4)], quiet=True, **where)
    alone = {"grid": GRID.run(GRID.config(steps=3, out=str(tmp_path / "grid"), quiet=True)),
             "toy": TOY.run(TOY.config(steps=4, out=str(tmp_path / "toy"), quiet=True))}
    assert list(report) == ["grid", "toy"]
    for name in report:
        assert _numbers(report[name]) == _numbers(alone[name])
        assert (tmp_path / "r" / name / "metrics.json").is_file()
    saved = checkpoint.load(tmp_path / "r" / "grid" / "checkpoint.ckpt")["record"]["tasks"]
    assert sorted(saved) == ["momentum/seed=0", "momentum/seed=1", "sgd/seed=0", "sgd/seed=1"]


def test_an_entry_run_once_per_seed_decides_each_claim_over_the_seeds(tmp_path):
    folder = tmp_path / "toy"
    entry = _entry("toy", TOY, folder, seeds=3, steps=4, seed=5)
    assert [c.seed for c in entry.runs()] == [5, 6, 7]
    result = entries.run_entries([entry], workers=0, quiet=True)["toy"]
    assert result["seeds"] == [5, 6, 7] and sorted(p.name for p in folder.glob("seed=*")) == ["seed=5", "seed=6",
                                                                                              "seed=7"]
    for seed in (5, 6, 7):
        alone = TOY.run(TOY.config(steps=4, seed=seed, out=str(tmp_path / f"alone{seed}"), quiet=True))
        run = fileio.load_json(folder / f"seed={seed}" / "metrics.json")
        assert run["loss"] == alone["loss"]
        assert result["per_seed"][f"seed={seed}"] == {c["id"]: c["verdict"] for c in alone["claims"]}
    first = fileio.load_json(folder / "seed=5" / "metrics.json")
    assert result["loss"] == first["loss"]  # the first seed's numbers, for its summary and figures
    finals = [fileio.load_json(folder / f"seed={s}" / "metrics.json")["loss"][-1] for s in (5, 6, 7)]
    assert result["document_numbers"] == [{"document": "none", "where": "its table", "quantity": "the final loss",
                                           "theirs": 0.5, "ours": finals, "note": "a made-up number"}]
    for c in result["claims"]:
        verdicts = [result["per_seed"][f"seed={s}"][c["id"]] for s in (5, 6, 7)]
        assert c["evidence"]["verdicts"] == dict(zip(["seed=5", "seed=6", "seed=7"], verdicts))
        assert c["verdict"] == experiment.claims.replicated(verdicts)
        assert "3 seeds (5, 6, 7), one run each" in c["setting"] and "every run" in c["rule"]
    assert sorted(p.name for p in folder.glob("*.png")) == sorted(p.name for p in (folder / "seed=5").glob("*.png"))
    saved = fileio.load_json(folder / "metrics.json")
    fileio.save_json(folder / "metrics.json", {**saved, "claims": []})
    again = entries.rejudge_entry(folder)
    assert [(c["id"], c["verdict"]) for c in again["claims"]] == [(c["id"], c["verdict"]) for c in result["claims"]]
    with pytest.raises(ValueError, match="runs its seeds on its grid"):
        _entry("grid", GRID, tmp_path / "g", seeds=2)
    with pytest.raises(experiment.OutputError, match=r"holds this entry run once per seed \(seed=5, seed=6, "
                                                     r"seed=7\); here it runs once"):
        _entry("toy", TOY, folder, steps=4, seed=5).check()
    with pytest.raises(experiment.OutputError, match=r"holds this entry run once; here it runs once per seed"):
        _entry("toy", TOY, folder / "seed=5", seeds=2, steps=4, seed=5).check()


def test_a_failing_job_fails_its_entry_keeps_the_others_and_the_rerun_computes_only_it(tmp_path):
    trace = tmp_path / "trace"
    trace.mkdir()
    folder = tmp_path / "grid"
    failed = entries.run_entries([_entry("grid", GRID, folder, steps=2, trace=str(trace), fail="sgd/seed=1"),
                                  _entry("toy", TOY, tmp_path / "toy", steps=2)], workers=2, quiet=True)
    assert failed["grid"]["error"] == "grid/sgd/seed=1 failed: RuntimeError: toy_grid: sgd/seed=1 fails as asked"
    assert "Traceback" in failed["grid"]["traceback"] and "claims" in failed["toy"]
    assert sorted(checkpoint.load(folder / "checkpoint.ckpt")["record"]["tasks"]) == [
        "momentum/seed=0", "momentum/seed=1", "sgd/seed=0"]
    before = set(trace.iterdir())
    fixed = entries.run_entries([_entry("grid", GRID, folder, steps=2, trace=str(trace))], workers=2, quiet=True)
    assert [p.name.split("-pid")[0] for p in set(trace.iterdir()) - before] == ["sgd-seed=1"]
    alone = GRID.run(GRID.config(steps=2, out=str(tmp_path / "alone"), quiet=True))
    assert _numbers(fixed["grid"]) == _numbers(alone)


def test_a_report_killed_at_any_moment_loses_only_the_tasks_in_flight(tmp_path):
    out, trace = tmp_path / "report", tmp_path / "trace"
    trace.mkdir()
    script = ("import sys; from experiments import reproduce; "
              f"reproduce.REGISTRY = {{'grid': ('tests.toy_grid', {{'seeds': 3, 'steps': 2, 'sleep': 0.3, "
              f"'trace': {str(trace)!r}}}), 'toy': ('tests.toy_experiment', {{'steps': 6}})}}; "
              "reproduce.main(sys.argv[1:])")
    argv = [sys.executable, "-c", script, "--quick", "--out", str(out), "--workers", "1", "--quiet"]
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    path, deadline, kept = out / "grid" / "checkpoint.ckpt", time.monotonic() + 120, {}
    while len(kept) < 3 and time.monotonic() < deadline:
        try:
            kept = checkpoint.load(path)["record"]["tasks"]
        except checkpoint.CheckpointError:
            time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    kept = checkpoint.load(path)["record"]["tasks"]
    assert 3 <= len(kept) < 6 and not (out / "REPRODUCTION.md").exists()
    computed = {p.name.split("-pid")[0] for p in trace.iterdir()}
    subprocess.run([*argv[:-2], "2", "--quiet"], cwd=ROOT, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    again = [p.name.split("-pid")[0] for p in trace.iterdir()]
    for key in kept:  # a unit in the checkpoint is never computed again
        assert again.count(key.replace("/", "-")) == 1
    assert len(again) - len(computed) <= 6 - len(kept) + 1  # the rest, and at most the one killed in flight
    whole = tmp_path / "whole"  # uninterrupted, in this process: the same numbers
    subprocess.run([*argv[:5], str(whole), "--workers", "0", "--quiet"], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    claims = json.loads((out / "claims.json").read_text())["claims"]
    assert [(c["id"], c["evidence"]) for c in claims] == \
        [(c["id"], c["evidence"]) for c in json.loads((whole / "claims.json").read_text())["claims"]]
    header = (out / "REPRODUCTION.md").read_text().splitlines()[2]
    assert "Continued from their checkpoints (the time is this command's): grid." in header

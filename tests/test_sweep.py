"""Sweeps: grids of runs in local processes and on Dask, resumable, robust to failing and dying points."""

import csv
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from minibn import experiment, sweep
from minibn.sweep.__main__ import main as sweep_main
from tests import toy_experiment as toy

TOY_RUN = experiment.load(toy).run

TOY = "tests.toy_experiment"
ROOT = Path(__file__).resolve().parents[1]


def _table(folder):
    return json.loads((Path(folder) / "results.json").read_text())


def _csv(folder):
    with open(Path(folder) / "results.csv") as f:
        return list(csv.DictReader(f))


# -- the grid ------------------------------------------------------------------------------------


def test_grid_values_are_parsed_with_the_fields_types():
    exp = experiment.load(TOY)
    grid = sweep.parse_assignments(exp, ["lr=0.01,0.1,1", "seed=0,1", "fail-at=none,3"], several=True)
    assert grid == {"lr": [0.01, 0.1, 1.0], "seed": [0, 1], "fail_at": [None, 3]}
    assert sweep.parse_assignments(exp, ["steps=5", "dtype=float64"], several=False) == {"steps": 5,
                                                                                       "dtype": "float64"}
    for bad, match in [("lr", "expected FIELD=VALUE"), ("speed=1", "no config field 'speed'"),
                       ("seed=0,x", "invalid int value 'x'"), ("seed=0,,1", "empty value"),
                       ("seed=1,1", "repeated"), ("out=/tmp", "no config field 'out'")]:
        with pytest.raises(sweep.SweepError, match=match):
            sweep.parse_assignments(exp, [bad], several=True)


def test_points_are_the_product_with_stable_names(tmp_path):
    points = sweep.expand({"lr": [0.1, 1.0], "seed": [0, 1]}, {"steps": 3}, tmp_path)
    assert [p.name for p in points] == ["lr=0.1,seed=0", "lr=0.1,seed=1", "lr=1,seed=0", "lr=1,seed=1"]
    assert points[1].values == {"steps": 3, "lr": 0.1, "seed": 1}
    assert points[0].folder == str(tmp_path / "points" / "lr=0.1,seed=0")
    assert sweep.point_name({"data_dir": "a/b c"}) == "data_dir=a_b_c"


def test_every_point_is_checked_before_any_runs(tmp_path):
    with pytest.raises(sweep.SweepError, match="point lr=nan: --lr: must be a finite number"):
        sweep.plan_sweep(TOY, {"lr": [0.1, float("nan")]}, out=tmp_path / "s")
    with pytest.raises(sweep.SweepError, match="no config field quiet"):
        sweep.plan_sweep(TOY, {"quiet": [True]}, out=tmp_path / "s")
    with pytest.raises(sweep.SweepError, match="both in the grid and --set"):
        sweep.plan_sweep(TOY, {"lr": [0.1]}, {"lr": 0.2}, out=tmp_path / "s")
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize("argv, message", [
    (["nope", "--grid", "seed=0"], "no experiment named 'nope'"),
    ([TOY], "--grid: give at least one"),
    ([TOY, "--grid", "speed=1"], "no config field"),
    ([TOY, "--grid", "seed=0", "--workers", "-1"], "--workers: must be 0 or more"),
    ([TOY, "--grid", "seed=0", "--dask", "remote:2"], "--dask: expected local:N"),
    ([TOY, "--grid", "seed=0", "--dask", "local:2", "--workers", "2"], "not allowed with argument"),
    ([TOY, "--grid", "steps=0,1"], "--steps: must be at least 1"),
])
def test_bad_sweeps_exit_2_before_any_work(argv, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        sweep_main(argv + ["--out", str(tmp_path / "s"), "--quiet"])
    assert exit_.value.code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "s").exists()


# -- local processes -------------------------------------------------------------------------------


def test_a_local_sweep_runs_every_point_and_a_rerun_runs_none(tmp_path, capsys):
    out = tmp_path / "s"
    argv = [TOY, "--grid", "lr=0.05,0.2", "--grid", "seed=0,1", "--set", "steps=4", "--workers", "2",
            "--out", str(out), "--quiet"]
    table = sweep_main(argv)
    assert "4 of 4 points finished (4 run now, 0 done before)" in capsys.readouterr().out
    rows = _csv(out)
    assert [r["point"] for r in rows] == ["lr=0.05,seed=0", "lr=0.05,seed=1", "lr=0.2,seed=0", "lr=0.2,seed=1"]
    assert all(r["status"] == "ok" and r["steps"] == "4" for r in rows)
    for point in table["points"]:
        direct = TOY_RUN(toy.Config(lr=point["lr"], seed=point["seed"], steps=4, quiet=True,
                                    out=str(tmp_path / "direct" / point["point"])))
        assert point["final_loss"] == direct["loss"][-1]  # a sweep point is the run itself
        assert point["claims"] == [{"id": "TOY-1", "verdict": direct["claims"][0]["verdict"]}]
    assert (out / "results.png").read_bytes()[:4] == b"\x89PNG"
    stamps = {p: p.stat().st_mtime_ns for p in out.glob("points/*/point.json")}
    sweep_main(argv)
    assert "(0 run now, 4 done before)" in capsys.readouterr().out
    assert {p: p.stat().st_mtime_ns for p in out.glob("points/*/point.json")} == stamps


def test_a_failing_point_is_recorded_and_the_others_finish(tmp_path):
    table = sweep.run_sweep(TOY, {"fail_at": [None, 2]}, {"steps": 4}, out=tmp_path / "s", workers=2, quiet=True)
    ok, failed = table["points"]
    assert ok["status"] == "ok" and failed["status"] == "failed"
    assert "fails at step 2 as asked" in failed["error"] and "Traceback" in failed["traceback"]
    assert "FAILED fail_at=2" in table["summary"]


def test_a_point_whose_process_dies_is_run_again(tmp_path):
    marker = tmp_path / "killed-once"
    table = sweep.run_sweep(TOY, {"seed": [0, 1]}, {"steps": 6, "checkpoint_every": 2, "fail_at": 4,
                                                  "kill_once": str(marker)},
                            out=tmp_path / "s", workers=2, quiet=True)
    assert marker.exists()  # one point's process was SIGKILLed mid-run
    assert [p["status"] for p in table["points"]] == ["ok", "ok"]
    direct = TOY_RUN(toy.Config(seed=0, steps=6, quiet=True, out=str(tmp_path / "direct")))
    first = json.loads((tmp_path / "s" / "points" / "seed=0" / "metrics.json").read_text())
    assert first["loss"] == direct["loss"]  # resumed from its checkpoint, as if never killed


def test_a_point_that_keeps_dying_is_recorded_as_failed(tmp_path, monkeypatch):
    table = sweep.run_sweep(TOY, {"seed": [0]}, {"steps": 3, "kill_once": str(tmp_path / "m")},
                            out=tmp_path / "s", workers=1, quiet=True, retries=0)
    assert table["points"][0]["status"] == "failed" and "died 1 times" in table["points"][0]["error"]
    again = sweep.run_sweep(TOY, {"seed": [0]}, {"steps": 3, "kill_once": str(tmp_path / "m")},
                            out=tmp_path / "s", workers=1, quiet=True, retries=0)
    assert again["points"][0]["status"] == "ok"  # a failed point is run again by the next sweep


def test_an_interrupted_sweep_reruns_only_what_it_had_not_finished(tmp_path):
    out = tmp_path / "s"
    argv = [sys.executable, "-m", "minibn.sweep", TOY, "--grid", "seed=0,1,2,3", "--set", "steps=4",
            "--set", "sleep=0.15", "--workers", "1", "--out", str(out), "--quiet"]
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while len(list(out.glob("points/*/point.json"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    done = {p.parent.name: p.stat().st_mtime_ns for p in out.glob("points/*/point.json")}
    assert 2 <= len(done) < 4
    table = sweep.run_sweep(TOY, {"seed": [0, 1, 2, 3]}, {"steps": 4, "sleep": 0.15}, out=out, workers=1, quiet=True)
    assert all(p["status"] == "ok" for p in table["points"])
    assert f"({4 - len(done)} run now, {len(done)} done before)" in table["summary"]
    for name, stamp in done.items():
        assert (out / "points" / name / "point.json").stat().st_mtime_ns == stamp


def test_a_folder_holding_another_sweep_is_refused(tmp_path):
    sweep.run_sweep(TOY, {"seed": [0]}, {"steps": 2}, out=tmp_path / "s", workers=1, quiet=True)
    with pytest.raises(sweep.SweepError, match="holds another sweep: its set differ"):
        sweep.plan_sweep(TOY, {"seed": [0]}, {"steps": 3}, out=tmp_path / "s")


def test_the_default_folder_depends_only_on_the_sweep():
    a = sweep.default_folder(TOY, {"seed": [0, 1]}, {"steps": 2}, False)
    assert a == sweep.default_folder(TOY, {"seed": [0, 1]}, {"steps": 2}, False)
    assert a != sweep.default_folder(TOY, {"seed": [0, 1]}, {"steps": 3}, False)
    assert str(a).startswith("runs/sweeps/toy_experiment-")


# -- Dask ---------------------------------------------------------------------------------------------


def test_a_sweep_on_a_local_dask_cluster_survives_a_killed_worker(tmp_path):
    pytest.importorskip("distributed", reason="Dask sweeps need dask.distributed (pip install -e '.[dask]')")
    marker = tmp_path / "killed-once"
    table = sweep.run_sweep(TOY, {"lr": [0.05, 0.2], "seed": [0, 1]},
                            {"steps": 6, "checkpoint_every": 2, "fail_at": 3, "kill_once": str(marker)},
                            out=tmp_path / "s", dask=2, quiet=True)
    assert marker.exists()  # a worker process was SIGKILLed in the middle of a point
    assert [p["status"] for p in table["points"]] == ["ok"] * 4
    for point in table["points"]:
        direct = TOY_RUN(toy.Config(lr=point["lr"], seed=point["seed"], steps=6, quiet=True,
                                    out=str(tmp_path / "direct" / point["point"])))
        assert point["final_loss"] == direct["loss"][-1]
    rerun = sweep.run_sweep(TOY, {"lr": [0.05, 0.2], "seed": [0, 1]},
                            {"steps": 6, "checkpoint_every": 2, "fail_at": 3, "kill_once": str(marker)},
                            out=tmp_path / "s", dask=2, quiet=True)
    assert "(0 run now, 4 done before)" in rerun["summary"]


def test_a_sweep_on_an_existing_dask_cluster(tmp_path):
    distributed = pytest.importorskip("distributed", reason="Dask sweeps need dask.distributed (pip install -e '.[dask]')")
    import logging

    with distributed.LocalCluster(n_workers=2, threads_per_worker=2, processes=True, host="127.0.0.1",
                                  dashboard_address=None, silence_logs=logging.ERROR) as cluster:
        table = sweep_main([TOY, "--grid", "seed=0,1,2", "--set", "steps=3", "--scheduler", cluster.scheduler_address,
                            "--out", str(tmp_path / "s"), "--quiet"])
    assert [p["status"] for p in table["points"]] == ["ok"] * 3
    direct = TOY_RUN(toy.Config(seed=2, steps=3, quiet=True, out=str(tmp_path / "direct")))
    assert table["points"][2]["final_loss"] == direct["loss"][-1]  # two threads per worker: points still one at a time


NOISE_TINY = {"dim": 30, "informative": 6, "sizes": (6,), "seeds": 2, "epochs": 2, "patience": 1,
              "test_per_class": 5, "hidden": 4, "batch_size": 8, "workers": 1}


@pytest.mark.parametrize("where", ["processes", "dask"])
def test_an_experiment_with_worker_processes_of_its_own_runs_in_a_sweep(where, tmp_path):
    if where == "dask":
        pytest.importorskip("distributed", reason="Dask sweeps need dask.distributed (pip install -e '.[dask]')")
    options = {"dask": 1} if where == "dask" else {"workers": 1}
    table = sweep.run_sweep("noise_robustness", {"seed": [0]}, NOISE_TINY, out=tmp_path / "s", quiet=True, **options)
    assert table["points"][0]["status"] == "ok", table["points"][0]["traceback"]

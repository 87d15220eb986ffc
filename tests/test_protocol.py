"""The experiment protocol: what a module provides, the grid the framework runs for it, the metrics
it writes, and ``rejudge``, which decides a saved run's claims again."""

import dataclasses
import json
import os
import subprocess
import sys
import types

import pytest

import minibn as mb
from minibn import experiment, fileio
from minibn.experiment import claims as C
from minibn.experiment import checkpoint, grid, pages
from minibn.experiment.__main__ import main as experiment_main
from tests import toy_experiment as toy
from tests import toy_grid

from .conftest import assert_rejudge_restores_the_claims

GRID = experiment.load(toy_grid)
ENSEMBLE = experiment.load("tests.toy_ensemble")


# -- what a module provides ---------------------------------------------------------------------------


def test_a_module_is_refused_naming_what_it_lacks():
    def module(**attrs):
        m = types.ModuleType("fake_experiment")
        m.__dict__.update(attrs)
        return m

    with pytest.raises(ValueError, match="needs a Config"):
        experiment.load(module(claims=lambda m: []))
    with pytest.raises(ValueError, match="no claims"):
        experiment.load(module(Config=toy.Config, measure=lambda c, r: {}))
    with pytest.raises(ValueError, match=r"needs measure\(cfg, run\), or variants"):
        experiment.load(module(Config=toy.Config, claims=lambda m: []))
    with pytest.raises(ValueError, match="must subclass minibn.experiment.GridConfig"):
        experiment.load(module(Config=toy.Config, claims=lambda m: [], variants=lambda c: ["a"],
                               task=lambda c, v, s: {}))


def test_the_framework_names_the_run_and_fills_in_title_config_seeds_and_notes(tmp_path):
    metrics = GRID.run(GRID.config(out=str(tmp_path / "g"), quiet=True))
    saved = fileio.load_json(tmp_path / "g" / "metrics.json")
    assert list(saved)[:4] == ["experiment", "title", "config", "seeds"]
    assert saved["experiment"] == "tests.toy_grid" and saved["title"] == GRID.title
    assert GRID.title.startswith("A tiny grid experiment for the framework's tests")
    assert saved["seeds"] == [0, 1] and saved["notes"] == ["A toy."]
    assert list(saved)[-3:] == ["notes", "claims", "document_numbers"] and saved["document_numbers"] == []
    assert metrics["files"][-1].endswith("loss.png") and metrics["figure_errors"] == {}


def test_grid_config_declares_seeds_and_workers_once_with_each_experiments_default():
    assert toy_grid.Config().seeds == 2 and toy_grid.Config(seeds=3, seed=5).seed_list() == [5, 6, 7]
    assert experiment.GridConfig().seeds == 3
    fields = [f.name for f in dataclasses.fields(toy_grid.Config)]
    assert fields.count("seeds") == 1 and fields.index("seeds") < fields.index("steps")
    with pytest.raises(experiment.ConfigError, match="--seeds: must be at least 1"):
        toy_grid.Config(seeds=0).check()


def test_measured_numbers_may_not_take_the_frameworks_keys(tmp_path, monkeypatch):
    monkeypatch.setattr(toy, "measure", lambda cfg, run: {"notes": [1]})
    with pytest.raises(ValueError, match=r"framework's keys \['notes'\]"):
        experiment.load(toy).run(toy.Config(out=str(tmp_path / "r"), quiet=True))


# -- the grid ---------------------------------------------------------------------------------------------


def test_every_unit_of_the_grid_in_order_whatever_the_workers(tmp_path):
    one = GRID.run(GRID.config(out=str(tmp_path / "one"), workers=1, quiet=True))
    two = GRID.run(GRID.config(out=str(tmp_path / "two"), workers=2, quiet=True))
    assert list(one["runs"]) == ["sgd", "momentum"] and all(len(rs) == 2 for rs in one["runs"].values())
    assert one["runs"] == two["runs"]
    saved = experiment.checkpoint.load(tmp_path / "one" / "checkpoint.ckpt")
    assert sorted(saved["record"]["tasks"]) == ["momentum/seed=0", "momentum/seed=1", "sgd/seed=0", "sgd/seed=1"]
    for i, seed in enumerate((0, 1)):  # each task drew from the default generator seeded with its seed
        mb.manual_seed(seed)
        assert one["runs"]["sgd"][i]["draw"] == mb.randn(1).item()
        mb.manual_seed(seed)
        assert one["runs"]["sgd"][i] == toy_grid.task(toy_grid.Config(steps=5), "sgd", seed)


def test_a_resumed_grid_computes_only_the_missing_units(tmp_path):
    out = tmp_path / "g"
    whole = GRID.run(GRID.config(out=str(out), quiet=True))
    saved = experiment.checkpoint.load(out / "checkpoint.ckpt")
    kept = saved["record"]["tasks"]["sgd/seed=0"]
    kept["loss"][0] = 123.0  # a marker: a unit still in the checkpoint is not computed again
    del saved["record"]["tasks"]["momentum/seed=1"]
    experiment.checkpoint.save(out / "checkpoint.ckpt", saved)
    (out / "metrics.json").unlink()
    resumed = GRID.run(GRID.config(out=str(out), quiet=True), resume=True)
    assert resumed["runs"]["sgd"][0]["loss"][0] == 123.0
    assert resumed["runs"]["momentum"][1] == whole["runs"]["momentum"][1]


def test_an_ensemble_computes_the_seeds_of_a_variant_in_one_job_to_the_same_numbers(tmp_path):
    cfg = ENSEMBLE.config(out=str(tmp_path / "e"), quiet=True)
    assert [(j["variant"], j["seeds"]) for j in grid.jobs(ENSEMBLE, cfg, {})] == [("sgd", [0, 1]), ("momentum", [0, 1])]
    assert [(j["variant"], j["seeds"]) for j in grid.jobs(GRID, cfg, {"sgd/seed=0": {}})] == [
        ("momentum", [0]), ("sgd", [1]), ("momentum", [1])]
    together = ENSEMBLE.run(cfg)
    alone = GRID.run(GRID.config(out=str(tmp_path / "g"), quiet=True))
    assert together["runs"] == alone["runs"]


def test_a_jobs_checkpoint_is_written_every_so_often_and_refused_by_another_job_or_config(tmp_path):
    cfg = GRID.config(out=str(tmp_path / "g"), quiet=True)
    job = {"module": toy_grid.__name__, "variant": "sgd", "seeds": [0]}
    path = grid.job_path(cfg.out, "sgd", [0])
    path.parent.mkdir(parents=True)
    leftover = path.parent / f"{fileio.TEMP_PREFIX}abc-{path.name}"
    other = path.parent / f"{fileio.TEMP_PREFIX}abc-momentum.seed=0.ckpt"  # another job's write in progress
    leftover.write_bytes(b"half")
    other.write_bytes(b"half")
    saving = grid.JobCheckpoint(cfg, job, every=3600)
    assert not leftover.exists() and other.exists()
    state = saving.state({}, {"loss": []})
    assert not state.resumed
    state.step, state.record = 2, {"loss": [0.5, 0.25]}
    assert not saving.save(state) and not path.exists()  # not an hour yet
    assert saving.save(state, force=True) and path.exists()
    again = grid.JobCheckpoint(cfg, job).state({}, {"loss": []})
    assert again.resumed and again.step == 2 and again.record == {"loss": [0.5, 0.25]}
    with pytest.raises(experiment.ConfigError, match=r"sgd\.seed=0\.ckpt: --steps 7 asked, 5 in the job"):
        grid.JobCheckpoint(dataclasses.replace(cfg, steps=7), job).state({}, {})
    path.rename(grid.job_path(cfg.out, "momentum", [0]))
    with pytest.raises(checkpoint.CheckpointError, match="delete it to compute this job from its start"):
        grid.JobCheckpoint(cfg, {**job, "variant": "momentum"}).state({}, {})


def test_variants_must_be_distinct_strings(monkeypatch, tmp_path):
    monkeypatch.setattr(toy_grid, "variants", lambda cfg: ("a", "a"))
    with pytest.raises(ValueError, match="distinct non-empty strings"):
        GRID.run(GRID.config(out=str(tmp_path / "g"), quiet=True))


# -- claims and rejudge -----------------------------------------------------------------------------------


def test_a_failing_rule_loses_no_numbers_and_rejudge_decides_it_later(tmp_path, monkeypatch):
    out = tmp_path / "r"
    broken = C.Claims()
    broken.rule("TOY-1")(lambda m: 1 / 0)
    monkeypatch.setattr(toy, "claims", broken)
    with pytest.raises(ZeroDivisionError):
        experiment.load(toy).run(toy.Config(out=str(out), steps=3, quiet=True))
    saved = fileio.load_json(out / "metrics.json")
    assert len(saved["loss"]) == 3 and "claims" not in saved  # the numbers were written before the rules ran
    monkeypatch.undo()
    again = experiment.rejudge(out)
    assert [c["id"] for c in again["claims"]] == ["TOY-1"] and again["previous"] == {}


def test_rejudge_restores_deleted_claims_and_leaves_the_checkpoint_alone(tmp_path):
    out = tmp_path / "r"
    experiment.load(toy).run(toy.Config(out=str(out), steps=3, quiet=True))
    quick = assert_rejudge_restores_the_claims(out)  # (the claims only: figures=False)
    assert [f.rsplit("/", 1)[-1] for f in quick["files"]] == ["metrics.json"]
    (out / "loss.png").unlink()
    again = experiment.rejudge(out)
    assert [f.rsplit("/", 1)[-1] for f in again["files"]] == ["metrics.json", "loss.png"] and (out / "loss.png").exists()
    drawn = (out / "loss.png").read_bytes()
    assert experiment_main(["rejudge", str(out), "--no-figures"]) == 0 and (out / "loss.png").read_bytes() == drawn


def test_rejudge_applies_a_changed_rule_and_says_what_changed(tmp_path, monkeypatch, capsys):
    out = tmp_path / "r"
    before = experiment.load(toy).run(toy.Config(out=str(out), steps=3, quiet=True))["claims"][0]["verdict"]
    stricter = C.Claims()
    stricter.rule("TOY-1")(lambda m: C.claim("TOY-1", "none", "-", "training lowers the loss", "toy", {}, "never",
                                             lambda e: C.INCONCLUSIVE, test="none"))
    monkeypatch.setattr(toy, "claims", stricter)
    assert experiment_main(["rejudge", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"INCONCLUSIVE  TOY-1 (was {before}): training lowers the loss" in printed
    assert f"wrote {out / 'metrics.json'}" in printed
    assert fileio.load_json(out / "metrics.json")["claims"][0]["verdict"] == C.INCONCLUSIVE


def test_a_bug_in_a_rule_is_not_taken_for_missing_evidence(tmp_path, monkeypatch):
    buggy = C.Claims()
    buggy.rule("TOY-1")(lambda m: {}["no such key"])
    monkeypatch.setattr(toy, "claims", buggy)
    with pytest.raises(KeyError) as raised:
        experiment.load(toy).run(toy.Config(out=str(tmp_path / "r"), steps=2, quiet=True))
    assert not isinstance(raised.value, C.MissingEvidence)


def test_a_missing_key_is_named_with_its_path(monkeypatch):
    rules = C.Claims()
    rules.rule("X-1")(lambda m: [t["loss"] for t in m["runs"]["a"]])
    with pytest.raises(C.ClaimError, match=r"claim X-1: the metrics lack 'runs/a/1/loss'"):
        rules({"runs": {"a": [{"loss": 1.0}, {"other": 2.0}]}})


def test_rejudge_names_the_claim_and_the_key_a_saved_run_lacks(tmp_path, capsys):
    out = tmp_path / "r"
    experiment.load(toy).run(toy.Config(out=str(out), steps=3, quiet=True))
    metrics = fileio.load_json(out / "metrics.json")
    del metrics["loss"]
    fileio.save_json(out / "metrics.json", metrics)
    with pytest.raises(experiment.RejudgeError, match=r"claim TOY-1: the metrics lack 'loss'"):
        experiment.rejudge(out)
    assert experiment_main(["rejudge", str(out), str(tmp_path / "nothing")]) == 1
    err = capsys.readouterr().err
    assert "claim TOY-1: the metrics lack 'loss'" in err and "nothing/metrics.json does not exist" in err
    assert "loss" not in fileio.load_json(out / "metrics.json")  # a refused rejudge writes nothing


def test_rejudge_finds_the_experiment_by_the_name_metrics_json_gives(tmp_path):
    out = tmp_path / "r"
    experiment.load(toy).run(toy.Config(out=str(out), steps=2, quiet=True))
    metrics = fileio.load_json(out / "metrics.json")
    fileio.save_json(out / "metrics.json", {**metrics, "experiment": "nope"})
    with pytest.raises(experiment.RejudgeError, match="cannot load experiment 'nope'"):
        experiment.rejudge(out)
    assert experiment.rejudge(out, "tests.toy_experiment")["claims"][0]["id"] == "TOY-1"


def test_claims_in_json_are_what_the_run_saw(tmp_path):
    """The rules run on the metrics as JSON gives them back, so a rejudged run sees the same numbers."""
    out = tmp_path / "g"
    metrics = GRID.run(GRID.config(out=str(out), quiet=True))
    assert json.dumps(metrics["claims"]) == json.dumps(fileio.load_json(out / "metrics.json")["claims"])


def test_experiments_load_by_name_from_a_folder_outside_the_checkout(tmp_path):
    """The experiments are installed with minibn: a sweep finds them by name from anywhere."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = tmp_path / "sweep"
    proc = subprocess.run([sys.executable, "-m", "minibn.sweep", "mnist_depth10", "--grid", "seed=0,1", "--set", "steps=3",
                           "--set", "width=8", "--set", "depth=3", "--set", "train_size=300", "--out", str(out),
                           "--quiet"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "2 of 2 points finished" in proc.stdout
    points = json.loads((out / "results.json").read_text())["points"]
    assert [p["status"] for p in points] == ["ok", "ok"]


def test_a_protocol_is_a_preset_over_the_defaults_and_flags_override_it(tmp_path, capsys):
    exp = experiment.load(toy)
    assert exp.preset("default") == {} and exp.preset("quick") == toy.QUICK and exp.preset("author") == toy.AUTHOR
    assert exp.preset("author") is not toy.AUTHOR  # a copy: a caller cannot change the module's
    assert (exp.config(protocol="author").steps, exp.config(protocol="author").width) == (8, 4)
    assert exp.config(protocol="author", width=6).width == 6 and exp.config(quick=True).steps == 6
    assert experiment.load(toy_grid).preset("author") == {}  # no AUTHOR: the defaults
    with pytest.raises(ValueError, match="protocol must be one of quick, default, author"):
        exp.preset("paper")
    metrics = experiment.main(toy, ["--protocol", "author", "--out", str(tmp_path / "a"), "--quiet"])
    assert (metrics["config"]["steps"], metrics["config"]["width"]) == (8, 4)
    with pytest.raises(SystemExit) as exit_:
        experiment.main(toy, ["--quick", "--protocol", "author", "--out", str(tmp_path / "b")])
    assert exit_.value.code == 2 and "--quick: not with --protocol author" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        experiment.main(toy, ["--resume", str(tmp_path / "a"), "--protocol", "author"])
    assert exit_.value.code == 2 and "--protocol: not with --resume" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()
    from minibn.experiment.cli import build_parser
    assert "--protocol author: 8)" in " ".join(build_parser(exp).format_help().split())


def test_a_value_of_several_runs_shows_as_mean_sd_range_and_count():
    assert pages.over_runs([1.0, 2.0, 3.0]) == "2 +- 1 (1 to 3, n = 3)"
    assert pages.over_runs([2.5]) == "2.5" and pages.over_runs(4) == "4"
    assert pages.over_runs([1.0, None]) == "[1, None]"  # not all numbers: written out
    merged = C.numbers_over_runs({"a": [C.number("000", "sec. 1", "x", 1, 2.0)], "b": [C.number("000", "sec. 1", "x", 1, 3.0)]})
    assert merged == [C.number("000", "sec. 1", "x", 1, [2.0, 3.0])]

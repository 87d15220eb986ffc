"""The experiment framework: configs and their command line, the run folder, claims, helpers."""

import dataclasses
import json
import math
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

import minibn as mb
from minibn import experiment
from minibn.experiment import claims as C
from minibn.experiment import rundir
from minibn.experiment.training import Best, batch_indices, divergence, evaluate, lr_below
from tests import toy_experiment as toy

TOY_RUN = experiment.load(toy).run

TOY = experiment.load(toy)


def parse(argv):
    return experiment.parse_args(TOY, argv)


# -- config and command line -------------------------------------------------------------------


def test_every_field_is_a_flag_with_its_default_and_help(capsys):
    with pytest.raises(SystemExit) as exit_:
        parse(["--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    for f in dataclasses.fields(toy.Config):
        assert "--" + f.name.replace("_", "-") in text
    assert "learning rate (default: 0.1)" in text and "--quick: 6" in text
    assert "--resume RUN_DIR" in text


def test_values_are_parsed_by_type(tmp_path):
    cfg, resume = parse(["--lr", "0.5", "--steps", "3", "--fail-at", "none", "--quiet", "--dtype", "float64",
                         "--out", str(tmp_path / "r")])
    assert (cfg.lr, cfg.steps, cfg.fail_at, cfg.quiet, cfg.dtype, resume) == (0.5, 3, None, True, "float64", False)
    assert isinstance(cfg.lr, float) and isinstance(cfg.steps, int)
    cfg, _ = parse(["--fail-at", "4", "--no-quiet", "--out", str(tmp_path / "r")])
    assert cfg.fail_at == 4 and cfg.quiet is False


def test_quick_is_the_preset_and_explicit_flags_win(tmp_path):
    cfg, _ = parse(["--quick", "--out", str(tmp_path / "r")])
    assert cfg.steps == toy.QUICK["steps"]
    cfg, _ = parse(["--quick", "--steps", "9", "--out", str(tmp_path / "r")])
    assert cfg.steps == 9


@pytest.mark.parametrize("argv, named", [
    (["--steps", "0"], "--steps"), (["--steps", "-1"], "--steps"), (["--steps", "2.5"], "--steps"),
    (["--lr", "nan"], "--lr"), (["--lr", "inf"], "--lr"), (["--lr", "0"], "--lr"), (["--lr", "x"], "--lr"),
    (["--seed", "-1"], "--seed"), (["--dtype", "float16"], "--dtype"), (["--backend", "tpu"], "--backend"),
    (["--width", "0"], "--width"), (["--sleep", "-1"], "--sleep"),
])
def test_bad_values_exit_2_naming_the_flag_and_write_nothing(argv, named, tmp_path, capsys):
    out = tmp_path / "run"
    with pytest.raises(SystemExit) as exit_:
        parse(argv + ["--out", str(out)])
    assert exit_.value.code == 2
    assert named in capsys.readouterr().err
    assert not out.exists()


def test_check_refuses_wrong_types_and_choices_in_code():
    with pytest.raises(experiment.ConfigError, match="--lr: must be float"):
        toy.Config(lr="0.1").check()
    with pytest.raises(experiment.ConfigError, match="--steps: must be int"):
        toy.Config(steps=True).check()
    with pytest.raises(experiment.ConfigError, match="--backend: must be one of"):
        toy.Config(backend="tpu").check()
    with pytest.raises(experiment.ConfigError, match="--steps: must be given"):
        toy.Config(steps=None).check()
    assert toy.Config(lr=1).check().lr == 1  # an int is a fine float


def test_run_checks_the_config_before_anything(tmp_path):
    with pytest.raises(experiment.ConfigError, match="--lr"):
        TOY_RUN(toy.Config(lr=math.nan, out=str(tmp_path / "r")))
    assert not (tmp_path / "r").exists()


# -- the run folder ------------------------------------------------------------------------------


def _unwritable(folder):
    """Make ``folder`` unwritable, even for root when chattr works; None if this machine cannot."""
    folder.mkdir()
    if os.geteuid() != 0:
        folder.chmod(0o555)
        return lambda: folder.chmod(0o755)
    if shutil.which("chattr") and subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode == 0:
        return lambda: subprocess.run(["chattr", "-i", str(folder)], check=True)
    return None


def test_an_unwritable_output_folder_is_refused_before_any_work(tmp_path, capsys):
    ro = tmp_path / "ro"
    undo = _unwritable(ro)
    if undo is None:
        pytest.skip("running as root without chattr: no folder here is unwritable")
    try:
        for out in (ro, ro / "new"):
            with pytest.raises(SystemExit) as exit_:
                parse(["--out", str(out)])
            assert exit_.value.code == 2 and "not writable" in capsys.readouterr().err
            with pytest.raises(experiment.OutputError, match="not writable"):
                TOY_RUN(toy.Config(out=str(out), quiet=True))
    finally:
        undo()


def test_an_output_path_that_is_a_file_is_refused(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    for out in (tmp_path / "file", tmp_path / "file" / "run"):
        with pytest.raises(SystemExit):
            parse(["--out", str(out)])
        assert "--out" in capsys.readouterr().err


def test_a_fresh_run_does_not_overwrite_a_finished_one(tmp_path, capsys):
    out = tmp_path / "run"
    TOY_RUN(toy.Config(out=str(out), steps=2, quiet=True))
    before = (out / "metrics.json").read_bytes()
    with pytest.raises(SystemExit):
        parse(["--out", str(out)])
    assert "already holds a run" in capsys.readouterr().err
    with pytest.raises(experiment.OutputError, match="--resume"):
        TOY_RUN(toy.Config(out=str(out), steps=2, quiet=True))
    assert (out / "metrics.json").read_bytes() == before


def test_a_run_failing_before_its_first_result_leaves_no_folder(tmp_path):
    out = tmp_path / "a" / "b" / "run"
    with pytest.raises(RuntimeError, match="fails at step 1"):
        TOY_RUN(toy.Config(out=str(out), fail_at=1, checkpoint_every=5, quiet=True))
    assert not (tmp_path / "a").exists()  # the folders it created, parents included
    existing = tmp_path / "mine"
    existing.mkdir()
    (existing / "notes.txt").write_text("keep")
    with pytest.raises(RuntimeError):
        TOY_RUN(toy.Config(out=str(existing), fail_at=0, quiet=True))
    assert (existing / "notes.txt").read_text() == "keep"  # a folder it did not create stays


def test_a_run_failing_after_a_checkpoint_keeps_it_and_can_resume(tmp_path):
    out = tmp_path / "run"
    with pytest.raises(RuntimeError):
        TOY_RUN(toy.Config(out=str(out), steps=8, fail_at=6, checkpoint_every=5, quiet=True))
    assert (out / rundir.CHECKPOINT).exists() and not (out / "metrics.json").exists()
    resumed = TOY_RUN(toy.Config(out=str(out), steps=8, checkpoint_every=5, quiet=True), resume=True)
    whole = TOY_RUN(toy.Config(out=str(tmp_path / "whole"), steps=8, checkpoint_every=5, quiet=True))
    assert resumed["loss"] == whole["loss"] and resumed["draws"] == whole["draws"]


def test_leftover_temporary_files_are_removed_at_the_start(tmp_path):
    out = tmp_path / "run"
    TOY_RUN(toy.Config(out=str(out), steps=4, quiet=True))
    (out / ".tmp-abc-checkpoint.ckpt").write_bytes(b"half a checkpoint")
    TOY_RUN(toy.Config(out=str(out), steps=6, quiet=True), resume=True)
    assert not list(out.glob(".tmp-*"))


def test_numbers_come_before_figures_and_a_failing_figure_loses_nothing(tmp_path, monkeypatch, capsys):
    def broken(*args, **kwargs):
        raise RuntimeError("no ink")

    monkeypatch.setattr(toy.plotting, "curves", broken)
    metrics = TOY_RUN(toy.Config(out=str(tmp_path / "run"), steps=3, quiet=True))
    assert "no ink" in capsys.readouterr().err
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert saved["loss"] == metrics["loss"] and len(saved["loss"]) == 3
    assert metrics["figure_errors"] == {"loss.png": "RuntimeError: no ink"}
    assert not (tmp_path / "run" / "loss.png").exists()


def test_the_summary_names_every_file_written(tmp_path, capsys):
    out = tmp_path / "run"
    metrics = experiment.main(toy, ["--steps", "3", "--out", str(out), "--quiet"])
    printed = capsys.readouterr().out
    written = sorted(p.name for p in out.iterdir())
    assert written == ["checkpoint.ckpt", "loss.png", "metrics.json"]
    for name in written:
        assert f"wrote {out / name}" in printed
    assert sorted(os.path.basename(p) for p in metrics["files"]) == written
    assert "REPRODUCED  TOY-1" in printed


def test_default_folder_is_timestamped_under_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    metrics = TOY_RUN(toy.Config(steps=2, quiet=True))
    out = metrics["config"]["out"]
    assert out.startswith(os.path.join("runs", "toy_experiment", ""))
    second = rundir.default_path("toy_experiment")
    assert second != out  # a run in the same second gets a suffix


# -- resume on the command line ---------------------------------------------------------------


def test_resume_refuses_conflicting_flags_and_names_them(tmp_path, capsys):
    out = tmp_path / "run"
    experiment.main(toy, ["--steps", "4", "--out", str(out), "--quiet"])
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:
        parse(["--resume", str(out), "--lr", "0.5", "--width", "3"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "--lr 0.5 asked, 0.1 in the run" in err and "--width" in err
    cfg, resume = parse(["--resume", str(out), "--lr", "0.1", "--steps", "9", "--checkpoint-every", "2"])
    assert resume and (cfg.steps, cfg.checkpoint_every, cfg.out) == (9, 2, str(out))
    with pytest.raises(SystemExit):
        parse(["--resume", str(out), "--quick"])
    assert "--quick" in capsys.readouterr().err


def test_resume_refuses_fewer_steps_than_done(tmp_path, capsys):
    out = tmp_path / "run"
    experiment.main(toy, ["--steps", "6", "--out", str(out), "--quiet"])
    with pytest.raises(SystemExit) as exit_:
        parse(["--resume", str(out), "--steps", "3"])
    assert exit_.value.code == 2 and "--steps: 3 is below the 6 steps" in capsys.readouterr().err
    with pytest.raises(experiment.ConfigError, match="below the 6 steps"):
        TOY_RUN(toy.Config(out=str(out), steps=3, quiet=True), resume=True)


def test_resume_of_a_missing_or_damaged_checkpoint_names_the_file(tmp_path, capsys):
    with pytest.raises(SystemExit):
        parse(["--resume", str(tmp_path / "nothing")])
    assert "does not exist" in capsys.readouterr().err
    out = tmp_path / "run"
    experiment.main(toy, ["--steps", "3", "--out", str(out), "--quiet"])
    path = out / rundir.CHECKPOINT
    path.write_bytes(path.read_bytes()[:-10])
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:
        parse(["--resume", str(out)])
    assert exit_.value.code == 2 and f"{path} is truncated" in capsys.readouterr().err


def test_a_two_file_checkpoint_of_an_earlier_version_is_refused(tmp_path, capsys):
    old = tmp_path / "old"
    old.mkdir()
    (old / "checkpoint.json").write_text("{}")
    (old / "checkpoint.npz").write_bytes(b"")
    with pytest.raises(SystemExit):
        parse(["--resume", str(old)])
    assert "two-file checkpoint" in capsys.readouterr().err


def test_the_checkpoint_of_another_experiment_is_refused(tmp_path):
    out = tmp_path / "run"
    TOY_RUN(toy.Config(out=str(out), steps=2, quiet=True))
    state = experiment.checkpoint.load(out / rundir.CHECKPOINT)
    experiment.checkpoint.save(out / rundir.CHECKPOINT, {**state, "experiment": "other"})
    with pytest.raises(experiment.CheckpointError, match="checkpoint of 'other'"):
        TOY_RUN(toy.Config(out=str(out), steps=2, quiet=True), resume=True)


def test_resume_in_code_refuses_a_config_that_differs(tmp_path):
    out = tmp_path / "run"
    TOY_RUN(toy.Config(out=str(out), steps=2, quiet=True))
    with pytest.raises(experiment.ConfigError, match="--lr 0.2 asked, 0.1 in the run"):
        TOY_RUN(toy.Config(out=str(out), steps=4, lr=0.2, quiet=True), resume=True)


# -- experiments by name ------------------------------------------------------------------------


def test_experiments_load_by_name_or_module_path():
    depth = experiment.load("mnist_depth10")
    assert (depth.name, depth.spec, depth.module.__name__) == ("mnist_depth10", "mnist_depth10",
                                                                "experiments.mnist_depth10")
    assert experiment.load(depth.module).spec == "mnist_depth10"  # a registered module keeps its short name
    assert experiment.load("tests.toy_experiment").Config is toy.Config
    assert experiment.load(toy).spec == "tests.toy_experiment"
    assert set(experiment.registered()) == {"mnist_depth10", "ols_bn", "noise_robustness", "normalizations",
                                            "lr_sweep", "landscape", "smoothness", "gradient_scale"}
    with pytest.raises(ValueError, match="no experiment named 'nope'.*mnist_depth10"):
        experiment.load("nope")
    with pytest.raises(ValueError, match="not an experiment"):
        experiment.load("minibn.fileio")


# -- claims ----------------------------------------------------------------------------------


def test_a_claims_verdict_is_what_its_rule_decides_from_the_evidence():
    c = C.claim("X", "000", "sec. 1", "a claim", "a setting", {"gap": 3.0}, "REPRODUCED if gap > 2",
                lambda e: C.REPRODUCED if e["gap"] > 2 else C.NOT_REPRODUCED, test="threshold",
                margin=C.margin(2.0, "points"))
    assert set(c) == set(C.FIELDS) and c["verdict"] == C.REPRODUCED
    assert c["test"] == "threshold" and c["margin"] == {"value": 2.0, "unit": "points"}
    with pytest.raises(ValueError, match="not one of"):
        C.claim("X", "000", "", "", "", {}, "", lambda e: "TRUE", test="t")
    with pytest.raises(ValueError, match="name the procedure"):
        C.claim("X", "000", "", "", "", {}, "", lambda e: C.REPRODUCED, test="")


def test_compare_counts_only_differences_beyond_the_seeds_spread():
    assert C.compare([0.9, 0.91, 0.92], [0.80, 0.82, 0.85]) == 1
    assert C.compare([0.80, 0.82], [0.81, 0.90]) == 0  # overlapping ranges: no difference
    assert C.compare([0.1], [0.2]) == -1
    assert C.compare([math.nan, 0.5], [0.4]) == 1
    assert C.compare([], [1.0]) == 0


def test_spread_and_correlation():
    s = C.spread([1.0, 2.0, 3.0, math.nan])
    assert s == {"mean": 2.0, "std": 1.0, "min": 1.0, "max": 3.0, "n": 3}
    assert C.correlation([1, 2, 3, 4], [2, 4, 6, 8.5]) > 0.99
    assert math.isnan(C.correlation([1, 2], [1, 2]))
    assert math.isnan(C.correlation([1, 1, 1], [1, 2, 3]))


# -- training helpers ---------------------------------------------------------------------------


def test_batch_order_is_a_function_of_seed_and_epoch():
    n, b = 20, 5
    epoch0 = [batch_indices(3, s, n, b) for s in range(4)]
    assert sorted(np.concatenate(epoch0).tolist()) == list(range(n))  # an epoch covers every sample once
    assert all(np.all(np.diff(i) > 0) for i in epoch0)
    again = [batch_indices(3, s, n, b) for s in range(4)]
    assert all(np.array_equal(a, c) for a, c in zip(epoch0, again))
    epoch1 = [batch_indices(3, s, n, b) for s in range(4, 8)]
    assert not all(np.array_equal(a, c) for a, c in zip(epoch0, epoch1))  # reshuffled
    fixed0 = [batch_indices(3, s, n, b, shuffle=False) for s in range(4)]
    fixed1 = [batch_indices(3, s, n, b, shuffle=False) for s in range(4, 8)]
    assert all(np.array_equal(a, c) for a, c in zip(fixed0, fixed1))  # one fixed order
    assert batch_indices(3, 0, n, None) is None and batch_indices(3, 0, n, 20) is None


def test_divergence_reasons():
    assert divergence(1.0, 5.0, 1e4) is None
    assert divergence(math.nan, 5.0, 1e4) == "non-finite loss"
    assert divergence(1.0, math.inf, 1e4) == "non-finite activations"
    assert divergence(1.0, 2e4, 1e4) == "activation RMS 2e+04 > 10000"


def test_best_tracks_the_best_value_and_survives_a_checkpoint():
    best = Best("max")
    assert best.update(0.5, 1) and not best.update(0.4, 2) and not best.update(math.nan, 3)
    assert best.update(0.7, 4) and (best.value, best.at) == (0.7, 4)
    other = Best("min")
    other.load_state_dict(best.state_dict())
    assert (other.mode, other.value, other.at) == ("max", 0.7, 4)
    with pytest.raises(ValueError):
        Best("mean")


def test_evaluate_uses_running_statistics_and_restores_the_mode():
    mb.manual_seed(0)
    net = mb.nn.mlp([4, 8, 3], norm="bn")
    x, y = mb.randn(32, 4), mb.randint(0, 3, (32,))
    net.train()
    acc = evaluate(net, x, y, chunk=7)
    assert net.training
    net.eval()
    with mb.no_grad():
        expected = float((net(x).argmax(1) == y).numpy().mean())
    assert acc == expected
    assert evaluate(net, x, y) == expected and not net.training


def test_the_plateau_protocol_stops_below_the_floor():
    opt = mb.optim.SGD([mb.tensor(np.zeros(1), requires_grad=True)], lr=0.1)
    schedule = mb.optim.ReduceLROnPlateau(opt, mode="max", patience=2)
    epochs = 0
    while not lr_below(opt, 1e-3):
        schedule.step(0.5)  # accuracy never improves after the first epoch
        epochs += 1
    assert epochs == 1 + 3 * 3 and opt.param_groups[0]["lr"] == pytest.approx(1e-4)  # 0.1 -> 1e-2 -> 1e-3 -> 1e-4


@dataclasses.dataclass
class ListConfig(experiment.Config):
    sizes: tuple[int, ...] = experiment.option((100, 200), "sizes", check=experiment.at_least(1))
    rates: tuple[float, ...] | None = experiment.option(None, "rates", check=experiment.positive)


def test_tuple_fields_are_comma_separated_lists_checked_element_by_element():
    from minibn.experiment.config import parse_value

    assert parse_value(ListConfig, "sizes", "5, 10,20") == (5, 10, 20)
    assert parse_value(ListConfig, "rates", "0.1,1e3") == (0.1, 1000.0)
    assert parse_value(ListConfig, "rates", "none") is None
    for text, match in [("5,,6", "empty item"), ("5,x", "invalid int value 'x'")]:
        with pytest.raises(experiment.ConfigError, match=match):
            parse_value(ListConfig, "sizes", text)
    ListConfig(sizes=(3,), rates=(0.5, 2.0)).check()
    for bad, match in [(dict(sizes=(3, 0)), "--sizes: must be at least 1, got 0"),
                       (dict(rates=(0.5, float("nan"))), "--rates: must be a finite number > 0"),
                       (dict(sizes=()), "non-empty tuple"), (dict(sizes=[1, 2]), "non-empty tuple"),
                       (dict(sizes=(1, 2.5)), "must hold int values, got 2.5")]:
        with pytest.raises(experiment.ConfigError, match=match):
            ListConfig(**bad).check()


def test_paired_compare_is_an_exact_sign_test():
    assert C.sign_test(0, 6) == pytest.approx(2 / 64) and C.sign_test(3, 6) == 1.0
    assert C.sign_test(15, 20) == pytest.approx(0.04138946533203125)
    assert C.paired_compare([2] * 6, [1] * 6) == 1  # 6 of 6: p = 0.031
    assert C.paired_compare([2] * 5, [1] * 5) == 0  # 5 of 5: p = 0.0625, not significant
    a, b = [1.0] * 15 + [3.0] * 5, [2.0] * 20
    assert C.paired_compare(a, b) == -1 and C.paired_compare(b, a) == 1
    assert C.paired_compare([1, 2, math.nan], [1, 2, 5]) == 0  # ties and NaN pairs dropped: nothing left
    assert C.paired_compare([math.inf] * 6, [1] * 6) == 1
    with pytest.raises(ValueError, match="pairs"):
        C.paired_compare([1, 2], [1])


def test_paired_t_compare_decides_on_few_seeds_and_not_without_spread():
    assert C.paired_t_compare([0.9, 0.92, 0.91, 0.95, 0.93], [0.8, 0.83, 0.8, 0.86, 0.82]) == 1
    assert C.paired_t_compare([0.8, 0.9, 0.7], [0.85, 0.8, 0.75]) == 0
    assert C.paired_t_compare([1.0, 1.0], [2.0, 2.0]) == 0  # an exact difference, no variation: no test
    assert C.paired_t_compare([1.0, 1.0], [1.0, 1.0]) == 0
    mean, p = C.paired_t_test([1.0], [0.0])  # one pair: nothing to test
    assert mean == 1.0 and math.isnan(p)


def test_resume_accepts_the_run_folder_however_it_is_spelled_and_names_a_bad_saved_config(tmp_path, capsys):
    out = tmp_path / "run"
    experiment.main(toy, ["--steps", "2", "--out", str(out), "--quiet"])
    cfg, _ = parse(["--resume", str(out), "--out", str(tmp_path / "x" / ".." / "run"), "--steps", "3"])
    assert cfg.steps == 3
    with pytest.raises(SystemExit):
        parse(["--resume", str(out), "--out", str(tmp_path / "elsewhere")])
    assert "--out" in capsys.readouterr().err
    path = out / rundir.CHECKPOINT
    state = experiment.checkpoint.load(path)
    experiment.checkpoint.save(path, {**state, "config": {**state["config"], "speed": 3}})
    with pytest.raises(SystemExit) as exit_:
        parse(["--resume", str(out)])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and str(path) in err and "speed" in err


def test_two_runs_started_in_the_same_second_get_their_own_folders(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(rundir, "default_path", lambda name, root="runs": Path(root) / name / "same-second")
    a = TOY_RUN(toy.Config(steps=2, quiet=True))
    b = TOY_RUN(toy.Config(steps=2, quiet=True))
    assert a["config"]["out"] == str(Path("runs/toy_experiment/same-second"))
    assert b["config"]["out"] == str(Path("runs/toy_experiment/same-second-2"))


def test_a_list_field_with_choices_takes_a_comma_separated_list(tmp_path, capsys):
    from experiments import noise_robustness

    exp = experiment.load(noise_robustness)
    cfg, _ = experiment.parse_args(exp, ["--variants", "bn_reg,no_bn", "--out", str(tmp_path / "r")])
    assert cfg.variants == ("bn_reg", "no_bn")
    with pytest.raises(SystemExit):
        experiment.parse_args(exp, ["--variants", "bn_reg,bn", "--out", str(tmp_path / "r")])
    assert "--variants: must be one of bn_reg, bn_without_reg, no_bn; got 'bn'" in capsys.readouterr().err


def test_list_fields_refuse_repeated_values_and_cpu_only_experiments_refuse_cupy():
    with pytest.raises(experiment.ConfigError, match="--sizes: a value is repeated: 3,3"):
        ListConfig(sizes=(3, 3)).check()

    @dataclasses.dataclass
    class CPUConfig(experiment.Config):
        CPU_ONLY = True

    with pytest.raises(experiment.ConfigError, match="--backend: this experiment runs on the CPU"):
        CPUConfig(backend="cupy").check()

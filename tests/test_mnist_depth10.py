"""The main job, end to end through its command line, on a small network."""

import json

import numpy as np
import pytest

import minibn as mb
from experiments import mnist_depth10 as job

SMALL = ["--width", "8", "--depth", "3", "--train-size", "300", "--quiet"]


def test_folded_plain_network_matches_at_step_0_in_float64():
    cfg = job.Config(dtype="float64", width=16, depth=4, train_size=500)
    x, _, _, _ = job.load_data(cfg)
    x = mb.tensor(x)
    nets = job.build_networks(cfg, x)
    a, b = nets["plain"](x).detach().numpy(), nets["bn"](x).detach().numpy()
    assert np.abs(a - b).max() <= 1e-12 * np.abs(b).max()
    assert sum(isinstance(m, mb.nn.BatchNorm1d) for m in nets["bn"]) == 3
    assert not any(isinstance(m, mb.nn.BatchNorm1d) for m in nets["plain"])


def test_the_step_0_fold_check_leaves_the_running_statistics_as_they_were():
    cfg = job.Config(dtype="float64", width=16, depth=4, train_size=500)
    x = mb.tensor(job.load_data(cfg)[0])
    nets = job.build_networks(cfg, x)
    before = {k: v.numpy().copy() for k, v in nets["bn"].state_dict().items()}
    assert job._fold_gap(nets, x) <= 1e-12
    after = nets["bn"].state_dict()
    assert any("running_mean" in k for k in before)
    for k, v in before.items():
        np.testing.assert_array_equal(after[k].numpy(), v, err_msg=k)


def test_end_to_end_run_writes_what_it_should(tmp_path, capsys):
    out = tmp_path / "run"
    metrics = job.main(SMALL + ["--steps", "4", "--out", str(out), "--lr", "0.1"])
    printed = capsys.readouterr().out
    assert "metrics:" in printed and str(out / "metrics.json") in printed
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["config"]["steps"] == 4 and saved["layers"] == [1, 2, 3]
    for name in ("plain", "bn"):
        rec = saved["networks"][name]
        assert rec["diverged_at"] is None  # lr = 0.1 on a small net: both train
        assert len(rec["loss"]) == 4
        assert np.array(rec["activation_norm"]).shape == (4, 3)
        assert np.array(rec["activation_grad_norm"]).shape == (4, 3)
        assert np.array(rec["weight_norm"]).shape == (4, 3)
        assert np.all(np.array(rec["activation_grad_norm"]) > 0)
        assert len(rec["test_accuracy"]) == 4 and 0 <= rec["final_test_accuracy"] <= 1
    assert saved["networks"]["bn"]["loss"][0] == pytest.approx(saved["networks"]["plain"]["loss"][0], rel=1e-5)
    for name in ("activation_norm", "activation_grad_norm", "weight_norm", "loss_accuracy"):
        assert (out / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert metrics["networks"]["bn"]["loss"] == saved["networks"]["bn"]["loss"]


def test_divergence_is_recorded_and_the_other_network_finishes(tmp_path):
    metrics = job.main(SMALL + ["--width", "32", "--depth", "6", "--steps", "6", "--lr", "5",
                                "--out", str(tmp_path / "run")])
    plain, bn = metrics["networks"]["plain"], metrics["networks"]["bn"]
    assert plain["diverged_at"] is not None and plain["diverged_because"]
    assert len(plain["loss"]) == plain["diverged_at"] + 1
    assert bn["diverged_at"] is None and len(bn["loss"]) == 6


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_backends_give_the_same_run(backend, tmp_path):
    args = SMALL + ["--steps", "3", "--dtype", "float64", "--lr", "0.1"]
    ref = job.main(args + ["--backend", "numpy", "--out", str(tmp_path / "ref")])
    other = job.main(args + ["--backend", backend, "--out", str(tmp_path / backend)])
    assert mb.get_kernels() == backend
    for name in ("plain", "bn"):
        np.testing.assert_allclose(other["networks"][name]["loss"], ref["networks"][name]["loss"], rtol=1e-12)


def test_same_seed_same_numbers_and_minibatches(tmp_path):
    args = SMALL + ["--steps", "3", "--batch-size", "64", "--eval-every", "2"]
    a = job.main(args + ["--out", str(tmp_path / "a")])
    b = job.main(args + ["--out", str(tmp_path / "b")])
    for name in ("plain", "bn"):
        assert a["networks"][name]["loss"] == b["networks"][name]["loss"]
        assert a["networks"][name]["activation_norm"] == b["networks"][name]["activation_norm"]
    c = job.main(args + ["--out", str(tmp_path / "c"), "--seed", "1"])
    assert c["networks"]["bn"]["loss"] != a["networks"]["bn"]["loss"]
    assert [s for s, _ in a["networks"]["bn"]["test_accuracy"]] == [0, 2]


def test_resume_continues_exactly(tmp_path):
    whole = job.main(SMALL + ["--steps", "4", "--lr", "0.1", "--out", str(tmp_path / "whole")])
    job.main(SMALL + ["--steps", "2", "--lr", "0.1", "--out", str(tmp_path / "part")])
    resumed = job.main(["--resume", str(tmp_path / "part"), "--steps", "4", "--quiet"])
    for name in ("plain", "bn"):
        assert resumed["networks"][name]["loss"] == whole["networks"][name]["loss"]
        assert resumed["networks"][name]["weight_norm"] == whole["networks"][name]["weight_norm"]


def test_bad_flags_are_refused(capsys):
    with pytest.raises(SystemExit):
        job.main(["--batch-size", "1"])
    assert "at least 2" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        job.main(["--backend", "tpu"])

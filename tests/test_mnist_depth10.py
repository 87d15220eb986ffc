"""The main job, end to end through its command line, on a small network; its claims' rules."""

import json
import math

import numpy as np
import pytest

import minibn as mb
import minibn.functional as F
from minibn import experiment
from experiments import mnist_depth10 as job
from minibn.experiment import claims as C

from .conftest import assert_refused_before_any_work, assert_rejudge_restores_the_claims, assert_rules_decide

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


def test_with_the_normalization_after_the_relu_the_folded_network_matches_and_y_is_what_the_next_layer_sees():
    cfg = job.Config(dtype="float64", width=16, depth=4, train_size=500, norm_after_activation=True)
    x, _, _, _ = job.load_data(cfg)
    x = mb.tensor(x)
    nets = job.build_networks(cfg, x)
    assert [type(m).__name__ for m in nets["bn"]][:4] == ["Linear", "ReLU", "BatchNorm1d", "Linear"]
    a, b = nets["plain"](x).detach().numpy(), nets["bn"](x).detach().numpy()
    assert np.abs(a - b).max() <= 1e-12 * np.abs(b).max()
    outputs = job.LayerRecord(nets["bn"], x[:64]).outputs
    assert len(outputs) == 4  # three hidden layers and the logits
    y = outputs[0].detach().numpy()  # batch-normalized (gamma 1, beta 0): zero mean, unit variance per unit
    np.testing.assert_allclose(y.mean(0), 0, atol=1e-12)
    np.testing.assert_allclose(y.var(0), 1, rtol=1e-3)


def test_the_step_0_fold_check_leaves_the_running_statistics_as_they_were():
    cfg = job.Config(dtype="float64", width=16, depth=4, train_size=500)
    x = mb.tensor(job.load_data(cfg)[0])
    nets = job.build_networks(cfg, x)
    before = {k: v.numpy().copy() for k, v in nets["bn"].state_dict().items()}
    assert job.fold_gap(nets, x) <= 1e-12
    after = nets["bn"].state_dict()
    assert any("running_mean" in k for k in before)
    for k, v in before.items():
        np.testing.assert_array_equal(after[k].numpy(), v, err_msg=k)


def test_end_to_end_run_writes_what_it_should(tmp_path, capsys):
    out = tmp_path / "run"
    metrics = experiment.main(job, SMALL + ["--steps", "4", "--out", str(out), "--lr", "0.1"])
    assert_rejudge_restores_the_claims(out)
    printed = capsys.readouterr().out
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
    assert np.array(saved["networks"]["bn"]["affine_norm"]).shape == (4, 2)
    assert saved["networks"]["bn"]["loss"][0] == pytest.approx(saved["networks"]["plain"]["loss"][0], rel=1e-5)
    files = ["checkpoint.ckpt", "metrics.json", "activation_norm.png", "activation_grad_norm.png",
             "weight_norm.png", "loss_accuracy.png"]
    assert [p.split("/")[-1] for p in metrics["files"]] == files
    for name in files:
        assert f"wrote {out / name}" in printed
        if name.endswith(".png"):
            assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert metrics["networks"]["bn"]["loss"] == saved["networks"]["bn"]["loss"]
    ids = [c["id"] for c in saved["claims"]]
    assert ids == ["D10-LR1", "D10-W-Y", "D10-W-DY", "D10-Y-W", "D10-DEPTH", "D10-BN-Y", "D10-BN-DY", "D10-BN-AFFINE"]
    for c in saved["claims"]:
        assert set(c) == set(C.FIELDS) and c["verdict"] in C.VERDICTS and c["rule"] and c["seed"] == "000"
        assert f"{c['verdict']:>14}  {c['id']}" in printed
    lr1 = saved["claims"][0]
    assert lr1["verdict"] == C.INCONCLUSIVE and lr1["evidence"]["lr"] == 0.1  # the claim is about lr = 1


def test_the_loss_panel_is_log_scaled(monkeypatch, tmp_path):
    seen = {}
    real = job.plotting.save_figure

    def keep(fig, path):
        seen[path.name] = [ax.get_yscale() for ax in fig.axes]
        real(fig, path)

    monkeypatch.setattr(job.plotting, "save_figure", keep)
    experiment.main(job, SMALL + ["--steps", "2", "--out", str(tmp_path / "run")])
    assert seen["loss_accuracy.png"] == ["log", "linear"]


def test_divergence_is_recorded_and_the_other_network_finishes(tmp_path):
    metrics = experiment.main(job, SMALL + ["--width", "32", "--depth", "6", "--steps", "6", "--lr", "5",
                                "--out", str(tmp_path / "run")])
    plain, bn = metrics["networks"]["plain"], metrics["networks"]["bn"]
    assert plain["diverged_at"] is not None and plain["diverged_because"]
    assert len(plain["loss"]) == plain["diverged_at"] + 1
    assert bn["diverged_at"] is None and len(bn["loss"]) == 6


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_backends_give_the_same_run(backend, tmp_path):
    args = SMALL + ["--steps", "3", "--dtype", "float64", "--lr", "0.1"]
    ref = experiment.main(job, args + ["--backend", "numpy", "--out", str(tmp_path / "ref")])
    other = experiment.main(job, args + ["--backend", backend, "--out", str(tmp_path / backend)])
    assert mb.get_kernels() == backend
    for name in ("plain", "bn"):
        np.testing.assert_allclose(other["networks"][name]["loss"], ref["networks"][name]["loss"], rtol=1e-12)


def test_same_seed_same_numbers_and_minibatches(tmp_path):
    args = SMALL + ["--steps", "3", "--batch-size", "64", "--eval-every", "2"]
    a = experiment.main(job, args + ["--out", str(tmp_path / "a")])
    b = experiment.main(job, args + ["--out", str(tmp_path / "b")])
    for name in ("plain", "bn"):
        assert a["networks"][name]["loss"] == b["networks"][name]["loss"]
        assert a["networks"][name]["activation_norm"] == b["networks"][name]["activation_norm"]
    c = experiment.main(job, args + ["--out", str(tmp_path / "c"), "--seed", "1"])
    assert c["networks"]["bn"]["loss"] != a["networks"]["bn"]["loss"]
    assert [s for s, _ in a["networks"]["bn"]["test_accuracy"]] == [0, 2]


def _numbers(metrics):
    return {k: v for k, v in metrics.items() if k not in ("seconds", "config", "files", "figure_errors")}


def test_resume_continues_exactly(tmp_path):
    whole = experiment.main(job, SMALL + ["--steps", "4", "--lr", "0.1", "--out", str(tmp_path / "whole")])
    experiment.main(job, SMALL + ["--steps", "2", "--lr", "0.1", "--out", str(tmp_path / "part")])
    resumed = experiment.main(job, ["--resume", str(tmp_path / "part"), "--steps", "4", "--quiet"])
    assert _numbers(resumed) == _numbers(whole)
    saved = json.loads((tmp_path / "part" / "metrics.json").read_text())
    assert saved["config"]["steps"] == 4


@pytest.mark.parametrize("argv, named", [
    (["--steps", "0"], "--steps"), (["--steps", "-1"], "--steps"), (["--lr", "nan"], "--lr"),
    (["--lr", "-1"], "--lr"), (["--train-size", "1"], "--train-size"), (["--train-size", "70000"], "--train-size"),
    (["--batch-size", "1"], "--batch-size"), (["--batch-size", "301"], "--batch-size"),
    (["--depth", "1"], "--depth"), (["--eval-every", "0"], "--eval-every"),
    (["--checkpoint-every", "0"], "--checkpoint-every"), (["--diverge-rms", "inf"], "--diverge-rms"),
    (["--backend", "tpu"], "--backend"), (["--norm", "l4"], "--norm"), (["--uncentered"], "--uncentered"),
    (["--fold-on", "test"], "--fold-on"), (["--norm", "none", "--norm-after-activation"], "--norm-after-activation"),
])
def test_bad_flags_exit_2_naming_the_flag_and_leave_no_folder(argv, named, tmp_path, capsys):
    assert_refused_before_any_work(lambda argv: experiment.main(job, argv), SMALL + argv, named, tmp_path / "run", capsys)


def test_fold_on_first_batch_folds_on_that_batch(tmp_path):
    metrics = experiment.main(job, SMALL + ["--steps", "1", "--batch-size", "32", "--fold-on", "first-batch", "--dtype", "float64",
                                "--out", str(tmp_path / "run")])
    assert metrics["config"]["fold_on"] == "first-batch"
    assert metrics["fold_relative_gap_at_step_0"] <= 1e-12  # exact on the batch it was folded on
    assert metrics["fold_relative_gap_on_train_at_step_0"] > 1e-3  # not on the rest of the training set
    # on the first batch, the two networks start from the same loss
    assert metrics["networks"]["plain"]["loss"][0] == pytest.approx(metrics["networks"]["bn"]["loss"][0], rel=1e-12)


def test_no_shuffle_keeps_one_batch_order_and_says_so(tmp_path, capsys):
    metrics = experiment.main(job, SMALL + ["--steps", "2", "--batch-size", "100", "--no-shuffle", "--out", str(tmp_path / "run")])
    assert metrics["config"]["shuffle"] is False
    assert all("in one fixed order" in c["setting"] for c in metrics["claims"])
    assert "note: The seed's text trains with batch gradient descent" in capsys.readouterr().out
    assert any("unbiased batch variance" in n for n in metrics["notes"])


@pytest.mark.parametrize("norm, uncentered, name", [("l1", False, "l1"), ("linf", False, "linf"),
                                                     ("l3", True, "l3-uncentered")])
def test_other_normalizations_take_batch_norms_place(norm, uncentered, name, tmp_path):
    argv = SMALL + ["--steps", "2", "--norm", norm, "--dtype", "float64", "--out", str(tmp_path / "run")]
    metrics = experiment.main(job, argv + (["--uncentered"] if uncentered else []))
    assert list(metrics["networks"]) == ["plain", name]
    assert metrics["fold_relative_gap_at_step_0"] <= 1e-10
    ids = [c["id"] for c in metrics["claims"]]
    assert ids[0] == f"D10-NORM-{name.upper()}" and metrics["claims"][0]["section"] == "sec. 4"
    assert f"D10-{name.upper()}-Y" in ids


def test_norm_none_trains_the_plain_network_alone(tmp_path):
    metrics = experiment.main(job, SMALL + ["--steps", "2", "--norm", "none", "--out", str(tmp_path / "run")])
    assert list(metrics["networks"]) == ["plain"] and metrics["fold_relative_gap_at_step_0"] is None
    assert [c["id"] for c in metrics["claims"]] == ["D10-W-Y", "D10-W-DY", "D10-Y-W", "D10-DEPTH"]


# -- the claims' rules, on records made to test them --------------------------------------------------


RULES = {
    "D10-LR1": (job.decide_lr_one, [
        (C.REPRODUCED, {"lr": 1.0, "plain_diverged_at": 2, "normalized_diverged_at": None}),
        (C.NOT_REPRODUCED, {"lr": 1.0, "plain_diverged_at": None, "normalized_diverged_at": None}),
        (C.NOT_REPRODUCED, {"lr": 1.0, "plain_diverged_at": 2, "normalized_diverged_at": 5}),
        (C.INCONCLUSIVE, {"lr": 0.5, "plain_diverged_at": 2, "normalized_diverged_at": None})]),
    "D10-NORM-": (job.decide_lr_one, [
        (C.REPRODUCED, {"lr": 1.0, "plain_diverged_at": 1, "normalized_diverged_at": None}),
        (C.NOT_REPRODUCED, {"lr": 1.0, "plain_diverged_at": 1, "normalized_diverged_at": 1})]),
    **{cid: (job.decide_rises, [(C.REPRODUCED, {"rises_with_factor": [True, True]}),
                                (C.PARTLY, {"rises_with_factor": [True, False]}),
                                (C.NOT_REPRODUCED, {"rises_with_factor": [False, False]}),
                                (C.INCONCLUSIVE, {"rises_with_factor": []})])
       for cid in ("D10-W-Y", "D10-W-DY", "D10-Y-W")},
    "D10-DEPTH": (job.decide_depth, [
        (C.REPRODUCED, {"plain_diverged_at": 2, "growth_per_layer": 3.0, "r_squared": 0.98}),
        (C.PARTLY, {"plain_diverged_at": 2, "growth_per_layer": 3.0, "r_squared": 0.5}),
        (C.NOT_REPRODUCED, {"plain_diverged_at": 2, "growth_per_layer": 0.8, "r_squared": 0.9}),
        (C.INCONCLUSIVE, {"plain_diverged_at": None, "growth_per_layer": 3.0, "r_squared": 0.98}),
        (C.INCONCLUSIVE, {"plain_diverged_at": 2, "growth_per_layer": None, "r_squared": None})]),
    **{cid: (job.decide_invariant, [
        (C.REPRODUCED, {"largest_factor": 4.0, "largest_pre_activation_growth": 4.0, "largest_deviation": 1e-5}),
        (C.PARTLY, {"largest_factor": 4.0, "largest_pre_activation_growth": 4.0, "largest_deviation": 0.05}),
        (C.NOT_REPRODUCED, {"largest_factor": 4.0, "largest_pre_activation_growth": 4.0, "largest_deviation": 3.0}),
        (C.NOT_REPRODUCED, {"largest_factor": 4.0, "largest_pre_activation_growth": 4.0, "largest_deviation": math.inf}),
        (C.INCONCLUSIVE, {"largest_factor": 4.0, "largest_pre_activation_growth": 1.2, "largest_deviation": 1e-5})])
       for cid in ("D10-BN-Y", "D10-BN-DY")},
    "D10-BN-AFFINE": (job.decide_affine, [(C.REPRODUCED, {"max_growth_of_gamma_beta": 1.1}),
                                          (C.PARTLY, {"max_growth_of_gamma_beta": 5.0}),
                                          (C.NOT_REPRODUCED, {"max_growth_of_gamma_beta": 50.0}),
                                          (C.INCONCLUSIVE, {"max_growth_of_gamma_beta": None})]),
}


def test_every_rule_gives_each_of_its_verdicts_and_decides_a_real_run(tmp_path):
    metrics = experiment.main(job, SMALL + ["--steps", "3", "--out", str(tmp_path / "run")])
    assert_rules_decide(RULES, metrics["claims"])
    assert {c["id"] for c in metrics["claims"]} == {k for k in RULES if not k.endswith("-")}


def test_the_interventions_scale_what_they_say_and_leave_the_network_as_it_was(tmp_path):
    cfg = job.Config(dtype="float64", width=8, depth=4, train_size=300)
    x, y, _, _ = job.load_data(cfg)
    x, y = mb.tensor(x), mb.tensor(y)
    nets = job.build_networks(cfg, x)
    before = {n: {k: v.numpy().copy() for k, v in net.state_dict().items()} for n, net in nets.items()}
    got = {n: job.intervene(cfg, net, x, y) for n, net in nets.items()}
    for n, net in nets.items():  # weights, running statistics and fusion as they were
        assert net.fuse and all(np.array_equal(v.numpy(), before[n][k]) for k, v in net.state_dict().items())
    bn, plain = got["bn"], got["plain"]
    assert list(bn["weights"]) == ["0.5", "1.0", "2.0", "4.0"]
    z = np.asarray(bn["weights"]["2.0"]["pre_activation_norm"]) / np.asarray(bn["weights"]["1.0"]["pre_activation_norm"])
    assert z[0] == pytest.approx(2.0, rel=1e-12)  # the first hidden linear output scales exactly, the others
    np.testing.assert_allclose(z[1:-1], 2.0, rtol=1e-4)  # nearly (their inputs are normalized, up to eps)
    np.testing.assert_allclose(bn["weights"]["4.0"]["activation_norm"], bn["weights"]["1.0"]["activation_norm"],
                               rtol=1e-3)  # the normalization undoes it (up to eps)
    assert plain["weights"]["4.0"]["activation_norm"][-2] > 10 * plain["weights"]["1.0"]["activation_norm"][-2]
    assert plain["input"]["2.0"]["activation_norm"][0] > plain["input"]["1.0"]["activation_norm"][0]


def test_the_diverging_step_keeps_its_gradients_while_its_loss_is_finite(tmp_path):
    metrics = experiment.main(job, SMALL + ["--width", "32", "--depth", "6", "--steps", "6", "--lr", "5",
                                            "--out", str(tmp_path / "run")])
    plain = metrics["networks"]["plain"]
    assert plain["diverged_at"] is not None and math.isfinite(plain["loss"][plain["diverged_at"]])
    assert all(math.isfinite(g) for g in plain["activation_grad_norm"][plain["diverged_at"]])


def test_the_final_probes_are_their_definitions(rng):
    """The top eigenvalue of the dense Hessian, the root mean square distance of disjoint mini-batch gradients
    from the full one, and the training accuracy."""
    cfg = job.Config(dtype="float64", width=3, depth=3, train_size=40, batch_size=8, noise_batches=9,
                     probe_images=12, final_probes=True)
    net = mb.nn.mlp([5, 3, 3, 4], norm="bn", dtype="float64", generator=mb.Generator(0))
    x, y = mb.tensor(rng.standard_normal((40, 5))), mb.tensor(rng.integers(0, 4, 40))
    state = {k: v.clone() for k, v in net.state_dict().items()}
    out = job.final_probes(cfg, net, x, y)
    assert all(np.array_equal(v.numpy(), state[k].numpy()) for k, v in net.state_dict().items())  # put back
    params = list(net.parameters())
    dense = mb.hessian.dense_hessian(lambda: F.cross_entropy(net(x[:12]), y[:12]), params)
    assert out["top_eigenvalue"] == pytest.approx(np.linalg.eigvalsh(dense).max(), rel=1e-6)

    def grad(idx):
        return np.concatenate([g.numpy().ravel() for g in mb.grad(F.cross_entropy(net(x[idx]), y[idx]), params)])
    order = np.random.default_rng([cfg.seed, 11]).permutation(40)
    full = grad(np.arange(40))
    noise = np.sqrt(np.mean([np.sum((grad(np.sort(order[i * 8:(i + 1) * 8])) - full) ** 2) for i in range(5)]))
    assert out["noise_batches"] == 5 and out["gradient_noise"] == pytest.approx(noise, rel=1e-12)  # 40 images: 5 batches
    assert out["gradient_norm"] == pytest.approx(np.linalg.norm(full), rel=1e-12)
    assert out["train_accuracy"] == job.evaluate(net, x, y)

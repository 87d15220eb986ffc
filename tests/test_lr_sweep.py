"""Seed 003 (Bjorck et al.): the probes measure what they say, part 1 trains as the depth-10 runs, the rules decide."""

import json
import math

import numpy as np
import pytest

import minibn as mb
import minibn.functional as F
from experiments import lr_sweep as job
from minibn import experiment
from minibn.experiment import checkpoint
from minibn.experiment import claims as C

from .conftest import assert_refused_before_any_work, assert_rejudge_restores_the_claims, assert_rules_decide

TINY = ["--lrs", "0.0001,0.5", "--seeds", "2", "--steps", "4", "--batch-size", "32", "--width", "8", "--depth", "3",
        "--probe-depths", "4", "--train-size", "200", "--hessian-images", "100", "--probe-steps", "2", "--alphas", "0.001,0.1,10",
        "--inits", "kaiming_normal,pytorch", "--workers", "2", "--quiet"]


def _config(**kw):
    return job.Config(dtype="float64", width=6, train_size=200, batch_size=32, **kw)


def test_one_step_losses_are_loss_ratios_along_the_trajectory(rng):
    cfg = _config(probe_steps=3, alphas=(1e-3, 1e-1, 10.0), probe_lr=0.05)
    x, y = mb.tensor(rng.standard_normal((200, 784))), mb.tensor(rng.integers(0, 10, 200))
    net = job.build(cfg, "bn", 4, seed=1)
    reference = job.build(cfg, "bn", 4, seed=1)
    buffers = [b.numpy().copy() for b in net.buffers()]
    probes = job.one_step_losses(cfg, net, x, y, seed=1)
    params = list(reference.parameters())
    for step, p in enumerate(probes):
        idx = job.batch_indices(1, step, 200, 32, shuffle=True)
        loss = F.cross_entropy(reference(x[idx]), y[idx])
        gs = mb.grad(loss, params)
        assert p["loss"] == pytest.approx(loss.item(), rel=1e-12)
        theta = [q.detach().numpy().copy() for q in params]
        for alpha, ratio in zip(cfg.alphas, p["relative_loss"]):
            for q, t, g in zip(params, theta, gs):
                q._data[...] = t - alpha * g.numpy()
            with mb.no_grad():
                after = F.cross_entropy(reference(x[idx]), y[idx]).item()
            assert ratio == pytest.approx(after / loss.item(), rel=1e-10)
        for q, t, g in zip(params, theta, gs):
            q._data[...] = t - cfg.probe_lr * g.numpy()
    for a, b in zip(buffers, net.buffers()):  # the probes leave the running statistics alone
        np.testing.assert_array_equal(a, b.numpy())


def test_threshold_is_the_smallest_diverging_step():
    alphas = (1e-3, 1e-2, 1e-1, 1.0)
    assert job.threshold([0.5, 0.9, 1.5, 0.8], alphas, 1.0) == 1e-1
    assert job.threshold([0.5, 0.9, 0.99, 0.8], alphas, 1.0) is None
    assert job.threshold([0.5, math.inf, 0.2, 0.1], alphas, 1.0) == 1e-2
    assert job.threshold([math.nan, 0.1, 0.1, 0.1], alphas, 1.0) == 1e-3  # a NaN loss diverged


def test_final_layer_gradient_cosines_match_per_sample_gradients(rng):
    cfg = _config()
    net = job.build(cfg, "plain", 3, seed=2)
    x, y = mb.tensor(rng.standard_normal((9, 784))), mb.tensor(rng.integers(0, 10, 9))
    g = job.final_layer_gradients(net, x, y)
    last = list(net.parameters())[-2]  # the final layer's weights
    per_sample = np.stack([mb.grad(F.cross_entropy(net(x[i:i + 1]), y[i:i + 1]), [last])[0].numpy().ravel()
                           for i in range(9)])
    unit = per_sample / np.linalg.norm(per_sample, axis=1, keepdims=True)
    cos = unit @ unit.T
    assert g["mean_pairwise_cosine"] == pytest.approx((cos.sum() - np.trace(cos)) / 72, rel=1e-10)
    assert g["coherence"] == pytest.approx(np.linalg.norm(per_sample.sum(0)) / np.linalg.norm(per_sample, axis=1).sum(),
                                           rel=1e-10)
    predicted = net(x).detach().numpy().argmax(1)
    assert g["accuracy"] == np.mean(predicted == y.numpy())
    assert g["same_prediction"] == np.bincount(predicted).max() / 9


def test_the_update_probe_restores_the_parameters(rng):
    cfg = _config(big_step=3.0)
    net = job.build(cfg, "plain", 4, seed=0)
    x, y = mb.tensor(rng.standard_normal((32, 784))), mb.tensor(rng.integers(0, 10, 32))
    before = [p.detach().numpy().copy() for p in net.parameters()]
    u = job.along_update(cfg, net, x, y)
    for a, p in zip(before, net.parameters()):
        np.testing.assert_array_equal(a, p.detach().numpy())
    assert u["fractions"] == [0.0, 0.25, 0.5, 0.75, 1.0] and len(u["rms"]) == 5 and len(u["rms"][0]) == 3
    assert u["loss"][0] == pytest.approx(F.cross_entropy(net(x), y).item(), rel=1e-12)


def test_a_tiny_run_end_to_end_and_its_resume(tmp_path):
    out = tmp_path / "run"
    metrics = experiment.main(job, TINY + ["--out", str(out)])
    assert_rejudge_restores_the_claims(out)
    saved = json.loads((out / "metrics.json").read_text())
    acc = saved["part1"]["accuracy"]
    assert set(acc) == {"bn", "plain", "plain_folded"}
    assert all(set(t) == {repr(1e-4), repr(0.5)} and all(len(v) == 2 for v in t.values()) for t in acc.values())
    assert set(saved["probes"]) == {f"{k}/depth=4/init={i}" for k in ("bn", "plain") for i in ("kaiming_normal", "pytorch")}
    ids = [c["id"] for c in saved["claims"]]
    assert ids == ["LR-SMALL-SIMILAR", "LR-LARGE-BN", "LR-IS-THE-BENEFIT", "LR-FLAT", "LR-NOISE-GENERALIZES", "ONE-STEP-D4", "ACT-ORDERS-D4",
                   "ACT-CAUSE-D4", "ACT-HEATMAP-D4", "GRAD-ALIGN-D4", "GRAD-SAME-WRONG-D4", "INIT-D4"]
    assert all(c["verdict"] in C.VERDICTS for c in saved["claims"])
    assert all("ResNet" in c["setting"] for c in saved["claims"])  # every claim says what was rerun instead
    for name in ("accuracy_vs_lr", "relative_loss_depth4", "activations_depth4", "channel_heatmaps_depth4",
                 "gradient_heatmap_depth4"):
        assert (out / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
    assert_rules_decide(RULES, saved["claims"])
    resumed = experiment.main(job, ["--resume", str(out), "--quiet"])  # every job is done: nothing trains again
    assert resumed["part1"] == metrics["part1"] and resumed["claims"] == metrics["claims"]


def test_the_step_budget_scales_with_one_over_the_learning_rate_up_to_its_cap():
    assert [job.steps_at(lr, 1000, 20_000) for lr in (1e-4, 1e-3, 1e-2, 0.05, 0.1, 1.0, 10.0)] == \
        [20_000, 20_000, 10_000, 2000, 1000, 1000, 1000]
    assert job.steps_at(1e-4, 1000, None) == 1000


def test_each_learning_rate_trains_its_step_budget(tmp_path):
    out = tmp_path / "run"
    metrics = experiment.main(job, TINY + ["--steps-cap", "9", "--out", str(out)])
    tasks = checkpoint.load(out / "checkpoint.ckpt")["record"]["tasks"]
    for lr, steps in ((1e-4, 9), (0.5, 4)):
        for norm in ("bn", "none"):
            runs = [tasks[f"lr={lr!r}/{norm}/seed={s}"]["networks"] for s in (0, 1)]
            assert {r["steps"] for run in runs for r in run.values() if r["diverged_at"] is None} == {steps}
    assert all(len(v) == 2 for t in metrics["part1"]["accuracy"].values() for v in t.values())
    assert "4 steps (x 0.1 / lr below lr 0.1, at most 9)" in metrics["claims"][0]["setting"]


def test_part_one_side_by_side_equals_the_depth10_runs_alone(tmp_path):
    """The seeds of a learning rate as one nn.Ensemble against the depth-10 experiment's runs, seed by seed,
    float64: the same steps of divergence (the folded plain network at step 2, the He-initialized one at
    steps 4 and 3), the same final accuracies and probes, to rounding."""
    cfg = job.Config(lrs=(1.0,), seeds=2, seed=1, steps=8, batch_size=32, width=16, depth=10, train_size=300,
                     hessian_images=100, dtype="float64", quiet=True)
    depth10 = experiment.load("mnist_depth10")
    diverged = {}
    for norm in ("bn", "none"):
        together = job.accuracy_members(cfg, 1.0, norm, [1, 2])
        for seed, run in zip([1, 2], together):
            point = job.point_config(cfg, 1.0, norm, seed)
            point.out = str(tmp_path / f"{norm}-{seed}")
            alone = depth10.run(point)["networks"]
            assert set(run["networks"]) == set(alone)
            for name, rec in run["networks"].items():
                a = alone[name]
                diverged[norm, seed, name] = rec["diverged_at"]
                assert (rec["diverged_at"], rec["diverged_because"]) == (a["diverged_at"], a["diverged_because"])
                assert rec["final_test_accuracy"] == a["final_test_accuracy"]
                if rec["final_probes"] is not None:
                    assert rec["final_probes"] == pytest.approx(a["final_probes"], rel=1e-9)
    assert diverged == {("bn", 1, "plain"): 2, ("bn", 1, "bn"): None, ("bn", 2, "plain"): 2, ("bn", 2, "bn"): None,
                        ("none", 1, "plain"): 4, ("none", 2, "plain"): 3}


def test_part_one_removes_every_hook_it_measures_with(monkeypatch):
    """Each step reads the activations through forward hooks and removes them: a hook left behind runs
    at every later step, so that time and memory grow with the steps."""
    nets, step = [], job._ensemble_step
    monkeypatch.setattr(job, "_ensemble_step", lambda c, s, net, *a: step(c, s, nets.append(net) or net, *a))
    cfg = job.Config(lrs=(0.1,), seeds=2, steps=3, batch_size=32, width=16, depth=4, train_size=300,
                     hessian_images=100, quiet=True)
    job.accuracy_members(cfg, 0.1, "bn", [0, 1])
    assert len(nets) == 6 and all(not m._forward_hooks for net in nets for m in net.modules())


def _part1(bn, plain, folded=None, chance=0.1135):
    lrs = sorted(bn)
    return {"config": {"lrs": lrs, "probe_depths": [], "train_size": 10000, "width": 100, "seeds": 3, "seed": 0,
                       "depth": 10, "batch_size": 128, "steps": 600},
            "part1": {"chance": chance, "accuracy": {"bn": {repr(k): v for k, v in bn.items()},
                                                     "plain": {repr(k): v for k, v in plain.items()},
                                                     "plain_folded": {repr(k): v for k, v in (folded or plain).items()}},
                      "final_probes": {name: {repr(k): [{"top_eigenvalue": 1 / k, "gradient_noise": 1.0, "train_accuracy": a,
                                                         "test_accuracy": a} for a in v] for k, v in table.items()}
                                       for name, table in (("bn", bn), ("plain", plain))}}}


ACCURACY = {"LR-SMALL-SIMILAR", "LR-LARGE-BN", "LR-IS-THE-BENEFIT"}


def test_learning_rate_rules_on_synthetic_runs():
    verdicts = lambda m: {c["id"]: c["verdict"] for c in job.claims(m) if c["id"] in ACCURACY}  # noqa: E731
    paper_like = verdicts(_part1({1e-4: [0.900, 0.910, 0.905], 0.1: [0.960, 0.970, 0.965], 1.0: [0.980, 0.985, 0.982]},
                                 {1e-4: [0.905, 0.902, 0.908], 0.1: [0.965, 0.961, 0.966], 1.0: [0.11, 0.11, 0.11]}))
    assert paper_like == {"LR-SMALL-SIMILAR": C.REPRODUCED, "LR-LARGE-BN": C.PARTLY, "LR-IS-THE-BENEFIT": C.REPRODUCED}
    untrained = verdicts(_part1({1e-4: [0.12, 0.13, 0.125], 1.0: [0.90, 0.91, 0.92]},
                                {1e-4: [0.11, 0.12, 0.115], 1.0: [0.11, 0.12, 0.10]}))
    assert untrained["LR-SMALL-SIMILAR"] == C.INCONCLUSIVE and untrained["LR-LARGE-BN"] == C.REPRODUCED
    better = verdicts(_part1({1e-4: [0.950, 0.952, 0.949], 0.1: [0.970, 0.972, 0.969], 1.0: [0.980, 0.982, 0.979]},
                             {1e-4: [0.800, 0.810, 0.805], 0.1: [0.900, 0.905, 0.902], 1.0: [0.11, 0.11, 0.11]}))
    assert better["LR-SMALL-SIMILAR"] == C.NOT_REPRODUCED  # 15 points apart at the smallest lr
    assert better["LR-IS-THE-BENEFIT"] == C.PARTLY  # BN already better at the plain network's best lr
    same_best = verdicts(_part1({1e-4: [0.9, 0.91, 0.9], 0.1: [0.97, 0.96, 0.97]},
                                {1e-4: [0.9, 0.9, 0.91], 0.1: [0.96, 0.97, 0.965]}))
    assert same_best["LR-IS-THE-BENEFIT"] == C.NOT_REPRODUCED  # the same best lr


def _tost(equivalent, ci):
    return {"equivalent": equivalent, "ci": list(ci)}


def _flat(r, p, below=True, lrs=(0.01, 0.1, 1.0)):
    return {"lrs": list(lrs), "log_eigenvalue_vs_log_lr": {"r": r, "p": p}, "bn_at_its_largest_lr_below_every_plain": below}


def _noise(r1, p1, r2, p2, runs=6):
    return {"bn_runs": runs, "step_noise_vs_log_lr": {"r": r1, "p_holm": p1}, "gap_vs_log_step_noise": {"r": r2, "p_holm": p2}}


RULES = {
    "LR-FLAT": (job.decide_flat, [
        (C.REPRODUCED, _flat(-0.9, 0.01)), (C.PARTLY, _flat(-0.9, 0.01, below=False)), (C.NOT_REPRODUCED, _flat(0.9, 0.01)),
        (C.INCONCLUSIVE, _flat(-0.3, 0.4)), (C.INCONCLUSIVE, _flat(-0.9, 0.01, lrs=(0.1,)))]),
    "LR-NOISE-GENERALIZES": (job.decide_noise, [
        (C.REPRODUCED, _noise(0.9, 0.01, -0.8, 0.02)), (C.PARTLY, _noise(0.9, 0.01, -0.2, 0.5)),
        (C.NOT_REPRODUCED, _noise(0.9, 0.01, 0.8, 0.02)), (C.INCONCLUSIVE, _noise(0.3, 0.3, -0.2, 0.5)),
        (C.INCONCLUSIVE, _noise(0.9, 0.01, -0.8, 0.02, runs=3))]),
    "LR-SMALL-SIMILAR": (job.decide_small_lr, [
        (C.REPRODUCED, {"lr": 1e-4, "unfinished": [], "seeds": 3, "equivalence": _tost(True, (-0.01, 0.01))}),
        (C.NOT_REPRODUCED, {"lr": 1e-4, "unfinished": [], "seeds": 3, "equivalence": _tost(False, (0.05, 0.08))}),
        (C.INCONCLUSIVE, {"lr": 1e-4, "unfinished": [], "seeds": 3, "equivalence": _tost(False, (-0.01, 0.05))}),
        (C.INCONCLUSIVE, {"lr": 1e-4, "unfinished": ["bn"], "seeds": 3, "equivalence": _tost(True, (0, 0))})]),
    "LR-LARGE-BN": (job.decide_large_lr, [
        (C.REPRODUCED, {"large_lrs": [0.1, 1.0], "bn_better_at": [0.1, 1.0], "bn_worse_at": []}),
        (C.PARTLY, {"large_lrs": [0.1, 1.0], "bn_better_at": [1.0], "bn_worse_at": []}),
        (C.NOT_REPRODUCED, {"large_lrs": [0.1, 1.0], "bn_better_at": [1.0], "bn_worse_at": [0.1]}),
        (C.INCONCLUSIVE, {"large_lrs": [0.1, 1.0], "bn_better_at": [], "bn_worse_at": []}),
        (C.INCONCLUSIVE, {"large_lrs": [], "bn_better_at": [], "bn_worse_at": []})]),
    "LR-IS-THE-BENEFIT": (job.decide_benefit, [
        (C.REPRODUCED, {"best_lr": {"bn": 1.0, "plain": 0.1}, "bn_best_above_plain_best": {"p": 0.01, "mean_difference": 0.02},
                        "equal_at_plain_best_lr": {"equivalent": True}}),
        (C.PARTLY, {"best_lr": {"bn": 1.0, "plain": 0.1}, "bn_best_above_plain_best": {"p": 0.3, "mean_difference": 0.01},
                    "equal_at_plain_best_lr": {"equivalent": True}}),
        (C.NOT_REPRODUCED, {"best_lr": {"bn": 0.1, "plain": 0.1}, "bn_best_above_plain_best": {"p": 0.01,
                            "mean_difference": 0.02}, "equal_at_plain_best_lr": {"equivalent": True}})]),
    "ONE-STEP-": (job.decide_one_step, [
        (C.REPRODUCED, {"plain_median_threshold": 0.01, "bn_median_threshold": 10.0}),
        (C.PARTLY, {"plain_median_threshold": 1.0, "bn_median_threshold": 10.0}),
        (C.NOT_REPRODUCED, {"plain_median_threshold": 1.0, "bn_median_threshold": 1.0})]),
    "ACT-ORDERS-": (job.decide_orders, [(C.REPRODUCED, {"min_ratio": 500.0}), (C.PARTLY, {"min_ratio": 20.0}),
                                        (C.NOT_REPRODUCED, {"min_ratio": 2.0}), (C.INCONCLUSIVE, {"min_ratio": None})]),
    "ACT-CAUSE-": (job.decide_cause, [
        (C.REPRODUCED, {"per_seed": [{"diverged": True, "top_growth": 100.0, "bottom_growth": 2.0,
                                      "loss_top_correlation": 0.99}]}),
        (C.PARTLY, {"per_seed": [{"diverged": True, "top_growth": 100.0, "bottom_growth": 2.0,
                                  "loss_top_correlation": 0.5}]}),
        (C.NOT_REPRODUCED, {"per_seed": [{"diverged": True, "top_growth": 2.0, "bottom_growth": 2.0,
                                          "loss_top_correlation": 0.99}]}),
        (C.INCONCLUSIVE, {"per_seed": [{"diverged": False, "top_growth": 100.0, "bottom_growth": 2.0,
                                        "loss_top_correlation": 0.99}]})]),
    "ACT-HEATMAP-": (job.decide_heatmap, [
        (C.REPRODUCED, {"plain": {"fit": [{"growth_per_layer": 1.5, "r_squared": 0.95}]}, "bn": {"max_over_min_std": 1.1}}),
        (C.PARTLY, {"plain": {"fit": [{"growth_per_layer": 0.8, "r_squared": 0.95}]}, "bn": {"max_over_min_std": 1.1}}),
        (C.NOT_REPRODUCED, {"plain": {"fit": [{"growth_per_layer": 0.8, "r_squared": 0.9}]}, "bn": {"max_over_min_std": 5}})]),
    "GRAD-ALIGN-": (job.decide_alignment, [
        (C.REPRODUCED, {"clearly_apart": 1, "plain_mean_pairwise_cosine": [0.6, 0.7]}),
        (C.PARTLY, {"clearly_apart": 1, "plain_mean_pairwise_cosine": [0.1, 0.2]}),
        (C.NOT_REPRODUCED, {"clearly_apart": 0, "plain_mean_pairwise_cosine": [0.6, 0.7]})]),
    "GRAD-SAME-WRONG-": (job.decide_same_wrong, [
        (C.REPRODUCED, {"same_prediction": {"plain": [0.9, 0.6]}, "accuracy": {"plain": [0.1, 0.12]}, "plain_above_bn": 1}),
        (C.PARTLY, {"same_prediction": {"plain": [0.9, 0.6]}, "accuracy": {"plain": [0.1, 0.12]}, "plain_above_bn": 0}),
        (C.NOT_REPRODUCED, {"same_prediction": {"plain": [0.9, 0.3]}, "accuracy": {"plain": [0.1, 0.1]},
                            "plain_above_bn": 1}),
        (C.NOT_REPRODUCED, {"same_prediction": {"plain": [0.9, 0.9]}, "accuracy": {"plain": [0.1, 0.6]},
                            "plain_above_bn": 1})]),
    "INIT-": (job.decide_init, [
        (C.REPRODUCED, {"plain": {"threshold_max_over_min": 100.0, "cosine_range": 0.0},
                        "bn": {"threshold_max_over_min": 1.0, "cosine_range": 0.0}}),
        (C.PARTLY, {"plain": {"threshold_max_over_min": 100.0, "cosine_range": 0.0},
                    "bn": {"threshold_max_over_min": 100.0, "cosine_range": 0.0}}),
        (C.NOT_REPRODUCED, {"plain": {"threshold_max_over_min": 1.0, "cosine_range": 0.1},
                            "bn": {"threshold_max_over_min": 1.0, "cosine_range": 0.0}})]),
}


@pytest.mark.parametrize("argv, named", [(["--lrs", "0"], "--lrs"), (["--alphas", "1,0.1"], "--alphas"),
                                         (["--inits", "orthogonal"], "--inits"), (["--seeds", "0"], "--seeds"),
                                         (["--batch-size", "300", "--train-size", "200"], "--batch-size"),
                                         (["--probe-depths", "1"], "--probe-depths"),
                                         (["--steps", "100", "--steps-cap", "50"], "--steps-cap")])
def test_bad_flags_are_refused_before_any_work(tmp_path, capsys, argv, named):
    assert_refused_before_any_work(lambda argv: experiment.main(job, argv), argv + ["--quiet"], named, tmp_path / "never", capsys)


def test_the_final_point_rules_on_synthetic_sweeps():
    """Eigenvalues falling as 1/lr and a gap falling with the step's noise reproduce both claims; eigenvalues
    rising with the lr contradict the first."""
    lrs = (1e-3, 1e-2, 1e-1, 1.0)
    def probes(eigen, gap):
        return {repr(lr): [{"top_eigenvalue": eigen(lr) * (1 + 0.01 * s), "gradient_noise": 1.0 + 0.1 * s,
                            "train_accuracy": 0.95 + gap(lr) + 0.001 * s, "test_accuracy": 0.95} for s in range(3)]
                for lr in lrs}
    table = {"bn": probes(lambda lr: 1 / lr, lambda lr: 0.01 / lr ** 0.2), "plain": probes(lambda lr: 1e4, lambda lr: 0)}
    found = {c["id"]: c["verdict"] for c in job._final_point_claims(table, "synthetic")}
    assert found == {"LR-FLAT": C.REPRODUCED, "LR-NOISE-GENERALIZES": C.REPRODUCED}
    table["bn"] = probes(lambda lr: lr, lambda lr: 0.01 * lr)
    found = {c["id"]: c["verdict"] for c in job._final_point_claims(table, "synthetic")}
    assert found == {"LR-FLAT": C.NOT_REPRODUCED, "LR-NOISE-GENERALIZES": C.NOT_REPRODUCED}

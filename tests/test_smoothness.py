"""minibn.smoothness (Santurkar et al.'s probes and ICS) and experiments/smoothness.py."""

import dataclasses
import json

import numpy as np
import pytest

import minibn as mb
from experiments import smoothness as job
from minibn import experiment, nn, smoothness
from minibn.experiment import checkpoint
from minibn.experiment import claims as C
from .conftest import assert_rejudge_restores_the_claims, assert_rules_decide


TINY = ["--seeds", "2", "--width", "8", "--hidden-layers", "2", "--epochs", "1", "--train-size", "300",
        "--batch-size", "50", "--probe-every", "2", "--dln-depth", "4", "--dln-width", "6", "--dln-samples", "200",
        "--dln-epochs", "2", "--dln-late-step", "4", "--lp-norms", "l2", "--workers", "2", "--quiet"]


def test_probes_of_a_quadratic_are_its_closed_forms(rng):
    B = rng.standard_normal((4, 4))
    A, b = B @ B.T + np.eye(4), rng.standard_normal(4)
    theta = mb.tensor(rng.standard_normal(4), requires_grad=True)
    loss = lambda: 0.5 * (theta * (mb.tensor(A) @ theta)).sum() + (mb.tensor(b) * theta).sum()  # noqa: E731
    t0 = theta.detach().numpy().copy()
    etas = [0.01, 0.05, 0.1]
    p = smoothness.gradient_probes(loss, [theta], etas)
    g = A @ t0 + b
    f = lambda t: 0.5 * t @ A @ t + b @ t  # noqa: E731
    np.testing.assert_allclose(p["losses"], [f(t0 - e * g) for e in etas], rtol=1e-12)
    np.testing.assert_allclose(p["gradient_changes"], [e * np.linalg.norm(A @ g) for e in etas], rtol=1e-10)
    assert p["effective_beta"] == pytest.approx(np.linalg.norm(A @ g) / np.linalg.norm(g), rel=1e-10)
    assert p["curvature"] == pytest.approx(g @ A @ g / (g @ g), rel=1e-12)
    assert p["loss_variation"] == [min(p["losses"]), max(p["losses"])]
    np.testing.assert_array_equal(theta.detach().numpy(), t0)  # put back
    with pytest.raises(ValueError, match="positive step sizes"):
        smoothness.gradient_probes(loss, [theta], [0.1, -1])


def test_internal_covariate_shift_is_the_gradient_change_from_the_earlier_blocks_step(rng):
    net = nn.mlp([3, 4, 4, 2], dtype="float64", generator=mb.Generator(1))
    x, y = mb.tensor(rng.standard_normal((6, 3))), mb.tensor(rng.integers(0, 2, 6))
    loss = lambda: mb.functional.cross_entropy(net(x), y)  # noqa: E731
    blocks = job.blocks_of(net)
    flat = [p for _, b in blocks for p in b]
    after = [p._data + 0.1 * rng.standard_normal(p.shape) for p in flat]
    before = [p._data.copy() for p in flat]
    out = smoothness.internal_covariate_shift(loss, [b for _, b in blocks], [m.weight for m, _ in blocks], after)
    for i, (m, _) in enumerate(blocks):
        (g,) = mb.grad(loss(), [m.weight])
        earlier = [p for _, b in blocks[:i] for p in b]
        for p in earlier:
            p._data[...] = after[[id(q) for q in flat].index(id(p))]
        (g2,) = mb.grad(loss(), [m.weight])
        for p, v in zip(flat, before):
            p._data[...] = v
        g, g2 = g.numpy().ravel(), g2.numpy().ravel()
        assert out[i][0] == pytest.approx(np.linalg.norm(g - g2), rel=1e-12, abs=1e-15)
        assert out[i][1] == pytest.approx(g @ g2 / np.linalg.norm(g) / np.linalg.norm(g2), rel=1e-12)
    assert out[0] == (0.0, pytest.approx(1.0))  # nothing before the first block
    for p, v in zip(flat, before):
        np.testing.assert_array_equal(p._data, v)


@pytest.mark.parametrize("network", ["noisy_bn", "bn", "dln_bn"])
def test_probing_does_not_change_the_training(network):
    cfg = job.Config(**dict(job.QUICK, train_size=400, epochs=1, dln_samples=300), quiet=True)
    probed = job.task(dataclasses.replace(cfg, probe_every=1), network, 3)
    plain = job.task(dataclasses.replace(cfg, probe_every=10 ** 6), network, 3)
    assert probed["train_loss"] == plain["train_loss"] and probed["final"] == plain["final"]
    assert len(probed["probes"]) == len(probed["train_loss"]) and len(plain["probes"]) == 2  # first and last step


def test_the_training_curve_is_the_accuracy_on_the_epochs_batches():
    """With a learning rate too small to move the network, an epoch's training accuracy (its batches, which
    cover the training set) is the initial network's accuracy on the whole set."""
    cfg = job.Config(**dict(job.QUICK, train_size=400, batch_size=50, epochs=2, lr=1e-12), quiet=True)
    run = job.task(cfg, "plain", 3)
    assert run["train_curve"] == [run["final"]["train"]] * 2
    assert "train_curve" not in job.task(dataclasses.replace(cfg, dln_epochs=1), "dln_plain", 3)  # a regression


def test_the_distribution_distance_of_known_distributions():
    q = np.sort(np.random.default_rng(0).standard_normal(len(job.DISTRIBUTION)))
    assert job.wasserstein_central(q, q + 0.3) == pytest.approx(0.9 * 0.3)  # a shift c moves the 90 % by c
    assert job.wasserstein_central(q, q) == 0 and job.wasserstein_central(q, 2 * q) == job.wasserstein_central(2 * q, q)
    levels = np.asarray(job.DISTRIBUTION) / 100  # N(0, 1) against N(0, 4): the integral of |Q(u)| over the 90 %
    from scipy import integrate, stats
    normal = stats.norm.ppf(levels)
    exact = integrate.quad(lambda u: abs(stats.norm.ppf(u)), 0.05, 0.95)[0]
    assert job.wasserstein_central(normal, 2 * normal) == pytest.approx(exact, rel=0.01)
    inputs = [{"step": t, "layer0": {"distribution": (q + 0.5 * t).tolist(), "std": 2.0},
               "layer1": {"distribution": (q - t).tolist(), "std": 1.0}} for t in range(4)]
    assert job.distribution_shift(inputs) == pytest.approx((0.9 * 0.5 / 2 + 0.9 * 1 / 1) / 2)  # in its own units


def test_eq1_is_an_identity_with_1_over_m(rng):
    """||dL/dx_j||^2 = (gamma_j / sigma_j)^2 (||g_j||^2 - <1, g_j>^2 / m - <g_j, yhat_j>^2 / m) for a batch norm
    with input x and a random upstream gradient g = dL/d(output); exact without eps (with it, the last term
    carries a factor 2 - var / (var + eps))."""
    bn = nn.BatchNorm1d(4, eps=0.0, dtype="float64")
    bn.weight._data[...] = rng.uniform(0.5, 2, 4)
    x = mb.tensor(rng.standard_normal((7, 4)) * 3 + 1, requires_grad=True)
    g = rng.standard_normal((7, 4))
    (dx,) = mb.grad((bn(x) * mb.tensor(g)).sum(), [x])
    t = job.eq1_terms(x.detach().numpy(), g, bn.eps)
    gamma = bn.weight.detach().numpy()
    np.testing.assert_allclose((dx.numpy() ** 2).sum(0),
                               (gamma / t["sigma"]) ** 2 * (t["norm"] - t["ones"] - t["projection"]), rtol=1e-10)


def _metrics(values):
    summary = {n: {k: list(v[n]) for k, v in values.items()} for n in ("plain", "bn", "noisy_bn")}
    return {"config": job.Config().to_dict(), "seeds": list(range(len(values["ics_cos"]["bn"]))), "summary": summary,
            "runs": {}}


def test_the_rules_decide_from_the_measures():
    three = lambda *v: {"plain": v[0], "bn": v[1], "noisy_bn": v[2]}  # noqa: E731
    values = {"loss_variation": three([1, 2, 1.5], [0.1, 0.2, 0.1], [0.1, 0.2, 0.1]),
              "gradient_predictiveness": three([1, 2, 1.5], [3, 4, 5], [3, 4, 5]),
              "effective_beta": three([1, 0.5, 2], [0.8, 1.9, 1.1], [1, 1, 1]),
              "curvature": three([1, 2, 3], [0.1, 0.25, 0.28], [1, 1, 1]),
              "ics_cos": three([0.5, 0.6, 0.55], [0.9, 0.95, 0.92], [0.9, 0.9, 0.9]),
              "ics_l2": three([1, 1, 1], [1, 1, 1], [1, 1, 1]),
              "input_shift": three([1, 1, 1], [0.01, 0.02, 0.015], [0.3, 0.25, 0.35]),
              "final_train": three([0.9, 0.9, 0.9], [0.95, 0.96, 0.95], [0.945, 0.958, 0.949]),
              "mean_train_accuracy": three([0.8, 0.82, 0.81], [0.9, 0.91, 0.9], [0.89, 0.9, 0.905]),
              "distribution_shift": three([1, 1.2, 0.9], [0.9, 1.1, 0.85], [2, 2, 2])}
    verdicts = {c["id"]: c["verdict"] for c in job.claims(_metrics(values))}
    assert verdicts == {"SMOOTH-LOSS-VARIATION": C.REPRODUCED, "SMOOTH-GRADIENT-PREDICTIVENESS": C.NOT_REPRODUCED,
                        "SMOOTH-EFFECTIVE-BETA": C.INCONCLUSIVE, "SMOOTH-CURVATURE": C.REPRODUCED,
                        "ICS-NOT-REDUCED": C.NOT_REPRODUCED, "NOISY-BN-TRAINS": C.REPRODUCED,
                        "NOISY-BN-IMPROVES": C.REPRODUCED, "ICS-DISTRIBUTIONS-SIMILAR": C.REPRODUCED}
    values["final_train"]["noisy_bn"] = [0.8, 0.85, 0.81]
    values["ics_cos"]["bn"] = [0.5, 0.61, 0.56]
    verdicts = {c["id"]: c["verdict"] for c in job.claims(_metrics(values))}
    assert verdicts["NOISY-BN-TRAINS"] == C.NOT_REPRODUCED and verdicts["ICS-NOT-REDUCED"] == C.REPRODUCED


def _noisy(noninferior, inferior, shift="smaller with bn", seeds=3):
    return {"seeds": seeds, "nearly_as_well": {"noninferior": noninferior, "inferior": inferior}, "shift_result": shift}


def _ics(p, mean, noninferior, seeds=3):
    return {"seeds": seeds, "p_difference": p, "mean_cos_bn_minus_plain": mean,
            "not_higher_by_the_margin": {"noninferior": noninferior}}


SMALLER = [(C.REPRODUCED, {"seeds": 5, "result": "smaller with bn", "equivalence": {"equivalent": False}}),
           (C.NOT_REPRODUCED, {"seeds": 5, "result": "larger with bn", "equivalence": {"equivalent": False}}),
           (C.NOT_REPRODUCED, {"seeds": 5, "result": "no significant difference", "equivalence": {"equivalent": True}}),
           (C.INCONCLUSIVE, {"seeds": 5, "result": "no significant difference", "equivalence": {"equivalent": False}})]
def _gain(lower, upper, n=3):
    return {"gain_noisy_minus_plain": {"lower_bound": lower, "upper_bound": upper, "n": n}}


def _shift(equivalent, result="no significant difference", seeds=3):
    return {"difference": {"seeds": seeds, "result": result}, "equivalence": {"equivalent": equivalent}}


def _lp(smoother, rougher=(), on=("effective_beta",), comparisons=2, seeds=3):
    return {"seeds": seeds, "bn_smoother_on": list(on), "smoother": list(smoother), "rougher": list(rougher),
            "comparisons": comparisons}


def _late(*results, seeds=3):
    verdict = [dict(r, seeds=seeds) for r in results]
    return dict(zip(("loss_variation", "gradient_predictiveness"), verdict))


SAME = {"result": "no significant difference", "equivalence": {"equivalent": True}}
WORSE = {"result": "larger with dln_bn", "equivalence": {"equivalent": False}}
BETTER = {"result": "smaller with dln_bn", "equivalence": {"equivalent": False}}
UNSHOWN = {"result": "no significant difference", "equivalence": {"equivalent": False}}
RULES = {
    "SMOOTH-": (C.decide_smaller, SMALLER), "DLN-": (C.decide_smaller, SMALLER),
    "ICS-NOT-REDUCED": (job.decide_ics, [(C.REPRODUCED, _ics(0.4, 0.01, True)), (C.NOT_REPRODUCED, _ics(0.01, 0.1, False)),
                                         (C.INCONCLUSIVE, _ics(0.4, 0.04, False)), (C.INCONCLUSIVE, _ics(0.01, 0.1, True, 1))]),
    "NOISY-BN-TRAINS": (job.decide_noisy, [
        (C.REPRODUCED, _noisy(True, False)), (C.PARTLY, _noisy(True, False, "no significant difference")),
        (C.NOT_REPRODUCED, _noisy(False, True)), (C.INCONCLUSIVE, _noisy(False, False)),
        (C.INCONCLUSIVE, _noisy(True, False, seeds=1))]),
    "NOISY-BN-IMPROVES": (job.decide_improves, [
        (C.REPRODUCED, _gain(0.02, 0.05)), (C.PARTLY, _gain(0.004, 0.02)), (C.NOT_REPRODUCED, _gain(-0.01, 0.008)),
        (C.INCONCLUSIVE, _gain(-0.01, 0.03)), (C.INCONCLUSIVE, _gain(float("nan"), float("nan"), 1))]),
    "ICS-DISTRIBUTIONS-SIMILAR": (job.decide_distributions, [
        (C.REPRODUCED, _shift(True)), (C.NOT_REPRODUCED, _shift(False, "smaller with bn")),
        (C.INCONCLUSIVE, _shift(False)), (C.INCONCLUSIVE, _shift(True, seeds=1))]),
    "LP-SMOOTHING": (job.decide_lp_smoothing, [
        (C.REPRODUCED, _lp(["l1/effective_beta", "l2/effective_beta"])), (C.PARTLY, _lp(["l1/effective_beta"])),
        (C.NOT_REPRODUCED, _lp([])), (C.NOT_REPRODUCED, _lp(["l1/effective_beta"], ["l2/effective_beta"])),
        (C.INCONCLUSIVE, _lp([], on=())), (C.INCONCLUSIVE, _lp(["l1/effective_beta"], seeds=1))]),
    "SIGMA-LARGE": (job.decide_sigma, [(C.REPRODUCED, {"below_1_at_end": 1.0}), (C.PARTLY, {"below_1_at_end": 0.5}),
                                       (C.NOT_REPRODUCED, {"below_1_at_end": 0.0})]),
    "TERMS-SIGNIFICANT": (job.decide_terms, [
        (C.REPRODUCED, {"ones_significant_at_end": 1.0, "projection_significant_at_end": 1.0}),
        (C.PARTLY, {"ones_significant_at_end": 0.0, "projection_significant_at_end": 0.5}),
        (C.NOT_REPRODUCED, {"ones_significant_at_end": 0.0, "projection_significant_at_end": 0.0})]),
    "DLN-LATE": (job.decide_dln_late, [
        (C.REPRODUCED, _late(SAME, WORSE)), (C.PARTLY, _late(SAME, UNSHOWN)), (C.NOT_REPRODUCED, _late(SAME, BETTER)),
        (C.INCONCLUSIVE, _late(UNSHOWN, UNSHOWN)), (C.INCONCLUSIVE, _late(SAME, SAME, seeds=1)),
        (C.INCONCLUSIVE, {"late_from_step": 2000, "last_probe_step": 300})]),
}


def test_a_tiny_run_end_to_end_and_its_resume(tmp_path):
    out = tmp_path / "run"
    metrics = experiment.main(job, TINY + ["--out", str(out)])
    assert_rejudge_restores_the_claims(out)
    assert_rules_decide(RULES, metrics["claims"])
    saved = json.loads((out / "metrics.json").read_text())
    assert set(saved["runs"]) == set(job.MLP_NETWORKS + ("l2",) + job.DLN_NETWORKS)
    first = saved["runs"]["bn"][0]
    assert [p["step"] for p in first["probes"]] == [0, 2, 4, 5]  # every 2 steps and the last (6 steps)
    assert len(first["ics"][0]["l2"]) == 3 and first["ics"][0]["cos"][0] == pytest.approx(1.0)
    assert set(first["layer_inputs"][0]) == {"step", "layer0", "layer1"}
    assert {c["id"] for c in saved["claims"]} >= {"SMOOTH-EFFECTIVE-BETA", "DLN-EFFECTIVE-BETA", "ICS-NOT-REDUCED",
                                                   "NOISY-BN-TRAINS"}
    assert all(c["verdict"] in C.VERDICTS for c in saved["claims"])
    for name in ("probes", "ics", "noisy_bn", "dln_probes", "lp_probes"):
        assert (out / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
    state = checkpoint.load(out / "checkpoint.ckpt")
    del state["record"]["tasks"]["noisy_bn/seed=1"]
    checkpoint.save(out / "checkpoint.ckpt", state)
    resumed = experiment.main(job, ["--resume", str(out), "--workers", "1", "--quiet"])
    assert resumed["summary"] == metrics["summary"]

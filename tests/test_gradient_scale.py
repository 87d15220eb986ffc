"""experiments/gradient_scale.py: the first layer's gradient at initialization against depth, and gamma learned
or frozen."""

import json

import numpy as np
import pytest

import minibn as mb
import minibn.functional as F
from experiments import gradient_scale as job
from minibn import experiment, nn
from minibn.experiment import checkpoint
from minibn.experiment import claims as C
from .conftest import assert_refused_before_any_work, assert_rejudge_restores_the_claims, assert_rules_decide

TINY = ["--seeds", "2", "--width", "8", "--train-size", "300", "--batch-size", "32", "--depths", "2,4,6",
        "--gamma-depth", "4", "--steps", "6", "--record-every", "2", "--weight-lrs", "0.1,1", "--weight-lr-depth", "3",
        "--weight-lr-steps", "5", "--workers", "2", "--quiet"]


def _config(**kw):
    return job.Config(**{**job.QUICK, "dtype": "float64", "quiet": True, **kw})


def test_the_first_layers_gradient_is_the_chain_rule_by_hand(rng):
    """A plain network 784 -> 8 -> 10: dL/dW_1 = ((softmax(z) - onehot(y)) / n W_2 * relu'(a)) ^T x."""
    cfg = _config(width=8)
    net = job.build(cfg, "plain", 2, seed=1)
    x, y = rng.standard_normal((5, 784)), rng.integers(0, 10, 5)
    w1, w2 = (m.weight.detach().numpy() for m in net if isinstance(m, nn.Linear))
    a = x @ w1.T
    z = np.maximum(a, 0) @ w2.T
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    delta = ((p - np.eye(10)[y]) / 5 @ w2) * (a > 0)
    assert job.initial_gradient(net, mb.tensor(x), mb.tensor(y)) == pytest.approx(np.linalg.norm(delta.T @ x), rel=1e-12)


def test_the_three_networks_have_depth_linear_layers_and_the_skips_add():
    cfg = _config(width=8)
    for arch in job.ARCHITECTURES:
        net = job.build(cfg, arch, 5, seed=0)
        assert sum(isinstance(m, nn.Linear) for m in net.modules()) == 5
        assert sum(isinstance(m, nn.BatchNorm1d) for m in net.modules()) == (0 if arch == "plain" else 4)
    residual = next(m for m in job.build(cfg, "bn_residual", 3, seed=0) if isinstance(m, job.Residual))
    h = mb.tensor(np.random.default_rng(0).standard_normal((6, 8)))
    np.testing.assert_allclose(residual(h).detach().numpy(), (h + residual.body(h)).detach().numpy(), rtol=0, atol=0)


def test_the_slope_of_a_geometric_growth_is_its_factor():
    table = {"2": [2.0 * 1.5 ** 2, 3.0], "5": [2.0 * 1.5 ** 5, 3.0], "9": [2.0 * 1.5 ** 9, 3.0]}
    assert job.slopes(table) == [pytest.approx(np.log10(1.5)), pytest.approx(0, abs=1e-12)]


def test_a_frozen_gamma_stays_and_a_learned_one_moves():
    cfg = _config(width=8, gamma_depth=4, steps=5, record_every=2, train_size=300, batch_size=32)
    x, y = job.load_data(cfg)
    frozen, learned = (job.train(cfg, 0.3, mode, x, y, seed=2)["record"] for mode in (False, True))
    assert [r[0] for r in frozen] == [0, 2, 4]  # every 2 steps and the last
    assert all(r[3] == pytest.approx(0.3, abs=1e-15) for r in frozen)
    assert learned[-1][3] != pytest.approx(0.3, abs=1e-9)
    assert frozen[0][:3] == learned[0][:3]  # the same start


def test_the_scale_invariant_weights_are_those_feeding_a_batch_norm_and_the_loss_ignores_their_scale(rng):
    """BN(c W h) = BN(W h) for c > 0, row by row (exactly with eps = 0): the loss is the same and its gradient
    is divided by c."""
    cfg = _config(width=8)
    net = job.build(cfg, "bn", 4, seed=3)
    for m in net:
        if isinstance(m, nn.BatchNorm1d):
            m.eps = 0.0
    invariant = job.scale_invariant(net)
    linears = [m for m in net if isinstance(m, nn.Linear)]
    assert [id(w) for w in invariant] == [id(m.weight) for m in linears[:-1]]
    x, y = mb.tensor(rng.standard_normal((16, 784))), mb.tensor(rng.integers(0, 10, 16))
    w = invariant[1]
    loss, (g,) = float(F.cross_entropy(net(x), y).item()), mb.grad(
        F.cross_entropy(net(x), y), [w])
    c = rng.uniform(0.5, 4.0, (w.shape[0], 1))
    w._data[...] = w.detach().numpy() * c
    scaled = F.cross_entropy(net(x), y)
    (g_scaled,) = mb.grad(scaled, [w])
    assert float(scaled.item()) == pytest.approx(loss, rel=1e-12)
    np.testing.assert_allclose(g_scaled.numpy() * c, g.numpy(), rtol=1e-9, atol=1e-12)


def test_the_weights_learning_rate_is_theirs_alone():
    """lr_W = lr is plain SGD on every parameter; another lr_W changes the hidden weights' step and nothing
    else at the first step (the same start and batch)."""
    cfg = _config(width=8, weight_lr_depth=3, weight_lr_steps=4, record_every=1, train_size=300, batch_size=32)
    x, y = job.load_data(cfg)
    same = job.train_weight_lr(cfg, cfg.lr, x, y, seed=4)["record"]
    net = job.build(cfg, "bn", 3, seed=4)
    opt = mb.optim.SGD(net.parameters(), lr=cfg.lr)
    for step, row in enumerate(same):
        idx = job.batch_indices(4, step, len(x), cfg.batch_size)
        opt.zero_grad()
        loss = F.cross_entropy(net(x[idx]), y[idx])
        loss.backward()
        assert row[1] == pytest.approx(float(loss.item()), rel=1e-12)
        opt.step()
    faster = job.train_weight_lr(cfg, 10 * cfg.lr, x, y, seed=4)["record"]
    assert faster[0] == same[0] and faster[1][1] != pytest.approx(same[1][1], rel=1e-6)
    assert faster[-1][2] > same[-1][2]  # ||w||^2 grows by lr_W^2 ||grad||^2 a step: faster with the larger lr_W


def test_the_mean_loss_is_the_area_under_the_curve_per_record():
    assert job.mean_loss([[0, 2.0, 1.0], [5, 1.0, 1.0], [10, 0.5, 1.0]]) == pytest.approx(3.5 / 3)


def _arora(tests, seeds=3, reference=0.1):
    return {"seeds": seeds, "reference_lr_w": reference,
            "against_reference": {lr: {"equivalent": eq, "ci": ci} for lr, (eq, ci) in tests.items()}}


def _explodes(p, slope, ratios, seeds=3):
    return {"seeds": seeds, "p": p, "slope_bn_minus_plain": slope, "bn_over_plain_at_deepest": ratios}


def _alleviates(p, slope, ratios, explodes=True, seeds=3):
    return {"seeds": seeds, "p": p, "slope_residual_minus_bn": slope, "bn_over_residual_at_deepest": ratios,
            "bn_explodes": explodes}


def _gamma(result, equivalent=False, vanishing=True, seeds=3):
    return {"vanishing_at_start": vanishing, "frozen_vs_learned": {"seeds": seeds, "result": result,
                                                                   "equivalence": {"equivalent": equivalent}}}


RULES = {
    "INIT-BN-EXPLODES": (job.decide_explodes, [
        (C.REPRODUCED, _explodes(0.001, 0.05, [20, 30])), (C.PARTLY, _explodes(0.001, 0.05, [5, 30])),
        (C.NOT_REPRODUCED, _explodes(0.5, 0.001, [1.1, 1.5])), (C.INCONCLUSIVE, _explodes(0.5, 0.01, [3, 30])),
        (C.INCONCLUSIVE, _explodes(0.001, 0.05, [20, 30], seeds=1))]),
    "SKIP-ALLEVIATES": (job.decide_alleviates, [
        (C.REPRODUCED, _alleviates(0.001, -0.05, [20, 30])), (C.PARTLY, _alleviates(0.001, -0.05, [5, 30])),
        (C.NOT_REPRODUCED, _alleviates(0.001, 0.05, [2, 3])), (C.NOT_REPRODUCED, _alleviates(0.5, -0.01, [0.9, 1])),
        (C.INCONCLUSIVE, _alleviates(0.5, -0.01, [2, 3])), (C.INCONCLUSIVE, _alleviates(0.001, -0.05, [20, 30], False))]),
    "GAMMA-RESCUES": (job.decide_gamma, [
        (C.REPRODUCED, _gamma("smaller with frozen")), (C.PARTLY, _gamma("smaller with frozen", vanishing=False)),
        (C.NOT_REPRODUCED, _gamma("larger with frozen")), (C.NOT_REPRODUCED, _gamma("no significant difference", True)),
        (C.INCONCLUSIVE, _gamma("no significant difference")), (C.INCONCLUSIVE, _gamma("smaller with frozen", seeds=1))]),
    "ARORA-LR-UNAFFECTED": (job.decide_arora, [
        (C.REPRODUCED, _arora({"0.01": (True, [0.9, 1.1]), "1": (True, [0.85, 1.0])})),
        (C.PARTLY, _arora({"0.01": (False, [1.5, 2.0]), "1": (True, [0.85, 1.0])})),
        (C.NOT_REPRODUCED, _arora({"0.01": (False, [1.5, 2.0]), "1": (False, [0.7, 1.0])})),
        (C.NOT_REPRODUCED, _arora({"0.2": (True, [0.9, 1.1]), "0.01": (False, [1.5, 2.0])})),
        (C.INCONCLUSIVE, _arora({"0.01": (False, [0.7, 1.5]), "1": (False, [0.7, 1.0])})),
        (C.INCONCLUSIVE, _arora({"0.01": (True, [0.9, 1.1])}, seeds=1))]),
}


def test_a_tiny_run_end_to_end_and_its_resume(tmp_path):
    out = tmp_path / "run"
    metrics = experiment.main(job, TINY + ["--out", str(out)])
    assert_rejudge_restores_the_claims(out)
    saved = json.loads((out / "metrics.json").read_text())
    assert set(saved["initial_gradient"]) == set(job.ARCHITECTURES)
    assert all(list(t) == ["2", "4", "6"] and all(len(v) == 2 for v in t.values())
               for t in saved["initial_gradient"].values())
    assert set(saved["training"]) == {"gamma=1/learned", "gamma=1/frozen", "gamma=0.1/learned", "gamma=0.1/frozen"}
    assert set(saved["weight_lr_training"]) == {"0.1", "1"}
    assert all(len(r) == 3 and [row[0] for row in r] == [0, 2, 4] for rs in saved["weight_lr_training"].values()
               for r in rs)
    assert [c["id"] for c in saved["claims"]] == ["INIT-BN-EXPLODES", "SKIP-ALLEVIATES", "GAMMA-RESCUES",
                                                  "ARORA-LR-UNAFFECTED"]
    assert_rules_decide(RULES, saved["claims"])
    for name in ("initial_gradient", "gamma_training", "weight_lr_training"):
        assert (out / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
    state = checkpoint.load(out / "checkpoint.ckpt")
    del state["record"]["tasks"]["gamma=0.1/frozen/seed=1"]
    checkpoint.save(out / "checkpoint.ckpt", state)
    resumed = experiment.main(job, ["--resume", str(out), "--workers", "1", "--quiet"])
    assert resumed["training"] == metrics["training"] and resumed["initial_gradient"] == metrics["initial_gradient"]
    assert resumed["weight_lr_training"] == metrics["weight_lr_training"]


@pytest.mark.parametrize("argv, named", [(["--depths", "1"], "--depths"), (["--gammas", "0"], "--gammas"),
                                         (["--batch-size", "300", "--train-size", "200"], "--batch-size"),
                                         (["--steps", "1"], "--steps"), (["--weight-lrs", "0.5,1"], "--weight-lrs"),
                                         (["--weight-lrs", "0.1"], "--weight-lrs")])
def test_bad_flags_are_refused_before_any_work(tmp_path, capsys, argv, named):
    assert_refused_before_any_work(lambda argv: experiment.main(job, argv), argv + ["--quiet"], named,
                                   tmp_path / "never", capsys)

"""Seed 001 sec. 3: the landscape experiment's networks, measures, rules, and a tiny run with its resume."""

import json

import numpy as np
import pytest

import minibn as mb
from minibn import experiment
from experiments import landscape as job
from minibn.experiment import checkpoint
from minibn.experiment import claims as C

from .conftest import assert_refused_before_any_work, assert_rejudge_restores_the_claims, assert_rules_decide

TINY = ["--seeds", "2", "--width", "8", "--hidden-layers", "2", "--epochs", "1", "--train-size", "400",
        "--batch-size", "50", "--grid", "5", "--line-points", "5", "--surface-samples", "200", "--workers", "2",
        "--quiet"]


def test_both_networks_of_a_seed_start_from_the_same_linear_weights():
    cfg = job.Config()
    plain, bn = (job.build_network(cfg, n, seed=2) for n in job.NETWORKS)
    linears = [[m.weight.detach().numpy() for m in net if isinstance(m, mb.nn.Linear)] for net in (plain, bn)]
    assert [w.shape for w in linears[0]] == [(100, 784), (100, 100), (100, 100), (10, 100)]
    for a, b in zip(*linears):
        np.testing.assert_array_equal(a, b)
    assert sum(isinstance(m, mb.nn.BatchNorm1d) for m in bn) == 3 and not any(
        isinstance(m, mb.nn.BatchNorm1d) for m in plain)


def test_the_measures_of_a_known_quadratic_surface():
    axis = np.linspace(-1, 1, 21)
    a, b = np.meshgrid(axis, axis)
    loss = 2 * a ** 2 + 0.5 * b ** 2 + 0.3 * a * b + 1  # Hessian [[4, 0.3], [0.3, 1]]
    m = job.measures(loss, axis)
    assert m["variance"] == pytest.approx(loss.var()) and m["range"] == pytest.approx(loss.max() - 1)
    assert m["centre_loss"] == pytest.approx(1.0)
    corners = [np.hypot(4 * x + 0.3 * y, y + 0.3 * x) for x in (-1, 1) for y in (-1, 1)]
    assert m["lipschitz"] == pytest.approx(max(corners), rel=1e-10)
    assert m["beta"] == pytest.approx(max(abs(np.linalg.eigvalsh([[4, 0.3], [0.3, 1]]))), rel=1e-10)


def _metrics(bn, plain, seeds=None):
    names = ("variance", "lipschitz", "beta")
    return {"config": job.Config().to_dict(), "seeds": list(range(seeds or len(bn))),
            "measures": {"bn": {k: list(bn) for k in names}, "plain": {k: list(plain) for k in names}}}


@pytest.mark.parametrize("bn, plain, verdict", [
    ([0.1, 0.2, 0.15], [1.0, 1.5, 2.0], C.REPRODUCED),        # smaller in every seed, clearly
    ([2.0, 3.0, 2.5], [1.0, 1.5, 1.2], C.NOT_REPRODUCED),     # larger
    ([1.0, 1.01, 0.99, 1.02, 1.0], [1.01, 1.0, 1.0, 1.01, 0.99], C.NOT_REPRODUCED),  # the same, within a factor 1.25
    ([1.0, 0.5, 2.0], [0.8, 1.9, 1.1], C.INCONCLUSIVE),       # inside the seeds' spread: neither shown
    ([0.1], [1.0], C.INCONCLUSIVE),                           # one seed
])
def test_the_rules_decide_from_the_measures(bn, plain, verdict):
    claims = job.claims(_metrics(bn, plain))
    assert [c["id"] for c in claims] == ["LAND-VARIANCE", "LAND-LIPSCHITZ", "LAND-BETA"]
    assert {c["verdict"] for c in claims} == {verdict}
    assert all("MNIST" in c["setting"] and "CIFAR-10" in c["setting"] for c in claims)


def test_a_tiny_run_end_to_end_and_its_resume(tmp_path):
    out = tmp_path / "run"
    metrics = experiment.main(job, TINY + ["--out", str(out)])
    assert_rejudge_restores_the_claims(out)
    assert_rules_decide(RULES, metrics["claims"])
    saved = json.loads((out / "metrics.json").read_text())
    for network in job.NETWORKS:
        assert len(saved["surfaces"][network]) == 2
        surface = saved["surfaces"][network][0]
        assert np.asarray(surface["loss"]).shape == (5, 5) and surface["mode"] == "eval" and surface["samples"] == 200
        assert len(saved["curves"][network][0]["interpolation"]["loss"]) == 5
        assert all(v > 0 for v in saved["measures"][network]["variance"])
    assert [c["verdict"] in C.VERDICTS for c in saved["claims"]] == [True] * 3
    for name in ("surface_contour", "surface_contour_log", "surface_3d_log", "curves", "measures"):
        assert (out / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
    state = checkpoint.load(out / "checkpoint.ckpt")
    del state["record"]["tasks"]["bn/seed=1"]
    checkpoint.save(out / "checkpoint.ckpt", state)
    resumed = experiment.main(job, ["--resume", str(out), "--workers", "1", "--quiet"])
    assert resumed["measures"] == metrics["measures"] and resumed["surfaces"] == metrics["surfaces"]


def test_bad_flags_are_refused_before_any_work(tmp_path, capsys):
    assert_refused_before_any_work(lambda argv: experiment.main(job, argv), ["--surface-samples", "20000", "--quiet"], "--surface-samples",
                                   tmp_path / "x", capsys)


RULES = {cid: (C.decide_smaller, [
    (C.REPRODUCED, {"seeds": 5, "result": "smaller with bn", "equivalence": {"equivalent": False}}),
    (C.NOT_REPRODUCED, {"seeds": 5, "result": "larger with bn", "equivalence": {"equivalent": False}}),
    (C.NOT_REPRODUCED, {"seeds": 5, "result": "no significant difference", "equivalence": {"equivalent": True}}),
    (C.INCONCLUSIVE, {"seeds": 5, "result": "no significant difference", "equivalence": {"equivalent": False}}),
    (C.INCONCLUSIVE, {"seeds": 1, "result": "smaller with bn", "equivalence": {"equivalent": False}})])
    for cid in job.SURFACE_MEASURES}


def test_every_rule_gives_each_of_its_verdicts():
    assert_rules_decide(RULES, job.claims(_metrics([0.1, 0.2, 0.15], [1.0, 1.5, 2.0])))

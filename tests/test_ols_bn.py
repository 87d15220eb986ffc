"""Seed 000 sec. 2: OLS with GD and BN-GD; autograd against the closed forms, the measurements, the rules."""

import json

import numpy as np
import pytest

from experiments import ols_bn as job
from minibn import experiment
from minibn.experiment import claims as C

from .conftest import assert_refused_before_any_work, assert_rejudge_restores_the_claims, assert_rules_decide

SMALL = ["--dims", "2,3", "--kappas", "10,100", "--problems", "3", "--max-iter", "3000", "--scan-lr-w", "0.01,1",
         "--scan-lr-a", "0.5,1.1", "--scan-problems", "2", "--scan-max-iter", "400", "--stability-iters", "300", "--quiet"]


@pytest.fixture
def problems():
    return job.Problems.make(seed=3, d=3, kappas=(10.0, 1000.0), count=4, dtype=np.float64)


def test_problems_share_their_directions_across_kappas(problems):
    a, b = problems.rows(10.0), problems.rows(1000.0)
    np.testing.assert_array_equal(problems.u[a], problems.u[b])
    np.testing.assert_array_equal(problems.w0[a], problems.w0[b])
    np.testing.assert_allclose(np.linalg.norm(problems.u, axis=1), 1)
    np.testing.assert_array_equal(problems.h[b[0]], [1.0, 500.5, 1000.0])


def test_gd_steps_from_autograd_are_the_authors_update(problems, rng):
    p, lr = problems, 0.0017
    w = rng.standard_normal(p.u.shape)
    (g,) = job.gradients(job.gd_loss, w, p.h, p.u, wrt=(0,))
    np.testing.assert_allclose(w - lr * g, w + lr * (p.h * p.u - p.h * w), rtol=1e-14)
    (g2,) = job.gradients(lambda w, h, u: job.gd_loss(w, h, u, half=False), w, p.h, p.u, wrt=(0,))
    np.testing.assert_allclose(g2, 2 * g, rtol=1e-14)


@pytest.mark.parametrize("update", ["sequential", "simultaneous"])
def test_bn_gd_steps_from_autograd_are_the_closed_forms(problems, rng, update):
    p, lr_w, lr_a = problems, 0.3, 0.7
    a = 0.5 + rng.random(len(p.u))
    w = rng.standard_normal(p.u.shape)
    _, _, path = job.run_bn(p, lr_w, lr_a, a0=1.0, update=update, tol=0.0, max_iter=1, keep=range(len(p.u)))
    a, w = path[0][:, 0], path[0][:, 1:]  # the start: (a0, w0)
    wHw, wHu = (p.h * w * w).sum(1), (p.h * w * p.u).sum(1)
    a_new = a + lr_a * (wHu / np.sqrt(wHw) - a)
    a_used = a_new if update == "sequential" else a
    w_new = w + lr_w * (a_used / np.sqrt(wHw))[:, None] * (p.h * p.u - (wHu / wHw)[:, None] * p.h * w)
    np.testing.assert_allclose(path[1][:, 0], a_new, rtol=1e-13)
    np.testing.assert_allclose(path[1][:, 1:], w_new, rtol=1e-13)


def test_runs_stop_at_the_tolerance_and_record_when(problems):
    at, history, _ = job.run_gd(problems, 2 / (problems.kappa + 1), tol=1e-3, max_iter=10_000)
    assert np.all(at > 0)
    for j in range(len(at)):
        assert history[at[j], j] < 1e-3 <= history[at[j] - 1, j]


def test_the_pseudo_condition_number_of_h_star(problems):
    for d in (2, 4):
        p = job.Problems.make(0, d, (10.0, 1000.0), 3, np.float64)
        values = [job.pseudo_condition(p.h[i], p.u[i]) for i in range(len(p.u))]
        if d == 2:
            assert values == pytest.approx([1.0] * len(values))  # H* has rank 1 in the plane
        else:
            assert min(values) > 1
    h, u = problems.h[0], problems.u[0]
    g = np.diag(h) @ u
    hstar = np.diag(h) - np.outer(g, g) / (u @ (h * u))
    np.testing.assert_allclose(hstar @ u, 0, atol=1e-13)  # u spans the null space
    eig = np.sort(np.linalg.eigvalsh(hstar))[1:]
    assert job.pseudo_condition(h, u) == pytest.approx(eig[-1] / eig[0], rel=1e-12)


def test_the_bisected_largest_stable_step(problems):
    half = job.largest_stable_step(problems, iters=1000, half=True)
    written = job.largest_stable_step(problems, iters=1000, half=False)
    np.testing.assert_allclose(half * problems.kappa, 2, rtol=5e-3)
    np.testing.assert_allclose(written * problems.kappa, 1, rtol=5e-3)


def test_tail_rate_reads_a_geometric_decay():
    history = np.array([[0.9 ** k, 0.5 ** k] for k in range(40)])
    rates = job.tail_rate(history, np.array([-1, 20]))
    np.testing.assert_allclose(rates, [0.9, 0.5], rtol=1e-12)


def test_a_small_run_end_to_end(tmp_path):
    metrics = experiment.main(job, SMALL + ["--out", str(tmp_path / "run")])
    assert_rejudge_restores_the_claims(tmp_path / "run")
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert list(saved["cases"]) == ["d=2,kappa=10", "d=2,kappa=100", "d=3,kappa=10", "d=3,kappa=100"]
    case = saved["cases"]["d=2,kappa=10"]
    assert len(case["gd_iterations"]) == 3 and case["gd"]["converged"] == 3
    assert [c["id"] for c in saved["claims"]] == ["OLS-D2-KAPPA", "OLS-D2-KAPPA-BEST", "OLS-D3", "OLS-HSTAR",
                                                   "OLS-MAXSTEP", "OLS-CAI"]
    assert all(c["verdict"] in C.VERDICTS for c in saved["claims"])
    assert saved["claims"][4]["verdict"] in (C.PARTLY, C.REPRODUCED)  # the 1/2 loss has 2/lambda_max
    assert any("1 / lambda_max(H) for E[(y - x^T w)^2]" in n for n in saved["notes"])
    with np.load(tmp_path / "run" / "trajectories.npz") as arrays:
        residual = arrays["d=2,kappa=10/bn_residual"]
        assert residual[-1] < 1e-3 <= residual[-2]
    for name in ("residual", "effective_lr", "iterations", "lr_scan", "asymptotic_rate", "trajectories_d2",
                 "trajectories_d3"):
        assert (tmp_path / "run" / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
    assert not metrics["figure_errors"]


@pytest.mark.parametrize("argv, named", [(["--dims", "1"], "--dims"), (["--kappas", "0.5"], "--kappas"),
                                         (["--scan-problems", "30"], "--scan-problems"), (["--lr-w", "0"], "--lr-w"),
                                         (["--update", "jacobi"], "--update"), (["--scan-lr-a", "1,,2"], "--scan-lr-a")])
def test_bad_flags(argv, named, tmp_path, capsys):
    assert_refused_before_any_work(lambda argv: experiment.main(job, argv), argv, named, tmp_path / "run", capsys)


def _tost(equivalent, ci):
    return {"equivalent": equivalent, "ci": list(ci)}


def _kappa(bn_ratio, bn_ci, equivalent, gd_ratio=100.0, **extra):
    return {"d2_run": True, "bn": {"median_ratio": bn_ratio, "equivalence": _tost(equivalent, bn_ci)},
            "gd": {"median_ratio": gd_ratio}, **extra}


RULES = {
    "OLS-D2-KAPPA": (job.decide_d2_kappa, [
        (C.REPRODUCED, _kappa(1.1, (0.9, 1.3), True, a_contraction_iterations=687.0,
                              bn_median_iterations=[100.0, 110.0])),
        (C.INCONCLUSIVE, _kappa(1.0, (0.95, 1.05), True, a_contraction_iterations=687.0,
                                bn_median_iterations=[700.0, 710.0])),  # a's own contraction sets the count
        (C.NOT_REPRODUCED, _kappa(40.0, (20.0, 60.0), False, gd_ratio=100.0, a_contraction_iterations=687.0,
                                  bn_median_iterations=[10.0, 400.0])),
        (C.INCONCLUSIVE, {"d2_run": False})]),
    "OLS-D2-KAPPA-BEST": (job.decide_d2_kappa, [
        (C.REPRODUCED, _kappa(1.2, (1.0, 1.4), True)),
        (C.PARTLY, _kappa(5.0, (3.0, 7.0), False, gd_ratio=100.0)),   # affected, but far less than GD
        (C.NOT_REPRODUCED, _kappa(40.0, (20.0, 60.0), False, gd_ratio=100.0)),
        (C.INCONCLUSIVE, _kappa(1.8, (0.9, 3.5), False))]),          # neither shown
    "OLS-D3": (job.decide_d3, [
        (C.REPRODUCED, {"small_kappa_gd_vs_bn": -1, "large_kappa_gd_vs_bn": 1}),
        (C.PARTLY, {"small_kappa_gd_vs_bn": -1, "large_kappa_gd_vs_bn": 0}),
        (C.NOT_REPRODUCED, {"small_kappa_gd_vs_bn": 1, "large_kappa_gd_vs_bn": 1}),
        (C.NOT_REPRODUCED, {"small_kappa_gd_vs_bn": 0, "large_kappa_gd_vs_bn": 0}),
        (C.INCONCLUSIVE, {"kappas": [10.0, 10.0]})]),
    "OLS-HSTAR": (job.decide_hstar, [
        (C.REPRODUCED, {"d2_pseudo_condition_max": 1.0, "d3": {"author": {"problems": 40, "partial_on_kappa": {
            "r": 0.6, "p": 0.001}}, "lr_a_1": {"problems": 40, "partial_on_kappa": {"r": 0.7, "p": 0.001}}}}),
        (C.PARTLY, {"d2_pseudo_condition_max": 1.0, "d3": {"author": {"problems": 40, "partial_on_kappa": {
            "r": 0.1, "p": 0.5}}, "lr_a_1": {"problems": 40, "partial_on_kappa": {"r": 0.7, "p": 0.001}}}}),
        (C.NOT_REPRODUCED, {"d2_pseudo_condition_max": 3.0, "d3": {"author": {"problems": 40, "partial_on_kappa": {
            "r": 0.6, "p": 0.001}}, "lr_a_1": {"problems": 40, "partial_on_kappa": {"r": 0.7, "p": 0.001}}}}),
        (C.INCONCLUSIVE, {"d2_pseudo_condition_max": None, "d3": {}})]),
    "OLS-MAXSTEP": (job.decide_max_step, [
        (C.REPRODUCED, {"worst_gap_written_loss_vs_2_over_lambda_max": 0.001, "worst_gap_half_loss_vs_2_over_lambda_max": 0.5}),
        (C.PARTLY, {"worst_gap_written_loss_vs_2_over_lambda_max": 0.5, "worst_gap_half_loss_vs_2_over_lambda_max": 0.001}),
        (C.NOT_REPRODUCED, {"worst_gap_written_loss_vs_2_over_lambda_max": 0.5, "worst_gap_half_loss_vs_2_over_lambda_max": 0.4})]),
    "OLS-CAI": (job.decide_cai, [
        (C.REPRODUCED, {"runs_with_lr_a_up_to_1": 10, "not_converging": 0, "still_converging_at_cap": 0}),
        (C.PARTLY, {"runs_with_lr_a_up_to_1": 10, "not_converging": 0, "still_converging_at_cap": 3}),
        (C.NOT_REPRODUCED, {"runs_with_lr_a_up_to_1": 10, "not_converging": 1, "still_converging_at_cap": 0}),
        (C.INCONCLUSIVE, {"runs_with_lr_a_up_to_1": 0, "not_converging": 0, "still_converging_at_cap": 0})]),
}


def test_every_rule_gives_each_of_its_verdicts_and_decides_a_real_run(tmp_path):
    metrics = experiment.main(job, SMALL + ["--out", str(tmp_path / "run")])
    assert_rules_decide(RULES, metrics["claims"])
    assert [c["id"] for c in metrics["claims"]] == list(RULES)


def test_hstar_is_decided_with_kappa_held_fixed():
    """Two kappa groups, each with no relation between H*'s condition number and the slowness, but
    one group higher in both: pooled they correlate, within the groups they do not."""
    rng = np.random.default_rng(0)
    cases = {}
    for kappa, shift in ((10.0, 0.0), (1000.0, 3.0)):
        k = np.exp(shift + rng.standard_normal(20))
        rate = np.exp(-1 / np.exp(shift + rng.standard_normal(20)))
        cases[f"d=3,kappa={kappa:g}"] = {"d": 3, "kappa": kappa, "pseudo_condition": k.tolist(),
                                         "bn_tail_rate": rate.tolist(), "bn_lr_a_1_tail_rate": rate.tolist()}
    cases["d=2,kappa=10"] = {"d": 2, "kappa": 10.0, "pseudo_condition": [1.0]}
    claim = job.pseudo_condition_number({"config": job.Config().to_dict(), "cases": cases})
    author = claim["evidence"]["d3"]["author"]
    assert author["pooled_correlation"] > 0.6 and abs(author["partial_on_kappa"]["r"]) < 0.35
    assert claim["verdict"] == C.NOT_REPRODUCED

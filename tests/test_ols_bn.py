"""Seed 000 sec. 2: OLS with GD and BN-GD; autograd against the closed forms, the measurements, the rules."""

import json

import numpy as np
import pytest

from experiments import ols_bn as job
from minibn import experiment
from minibn.experiment import claims as C

from .conftest import assert_refused_before_any_work, assert_rejudge_restores_the_claims

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


def _metrics(cases):
    cfg = job.Config().to_dict()
    base = {"gd_iterations": [10], "bn_iterations": [10], "pseudo_condition": [1.0], "bn_tail_rate": [0.9],
            "bn_lr_a_1_tail_rate": [0.9]}
    full = {}
    for key, c in cases.items():
        d, kappa = key
        c = {**base, **c, "d": d, "kappa": kappa}
        c["gd"], c["bn"] = job._stats(c["gd_iterations"]), job._stats(c["bn_iterations"])
        full[f"d={d},kappa={kappa:g}"] = c
    return {"config": {**cfg, "kappas": (10.0, 1000.0)}, "cases": full, "scan": {},
            "stable_step": {"x": {"worst_relative_gap_half_vs_2_over_lambda": 0.001,
                                  "worst_relative_gap_written_vs_2_over_lambda": 0.5,
                                  "worst_relative_gap_written_vs_1_over_lambda": 0.001}}}


def test_the_rules_decide_from_the_iterations():
    six = lambda *v: list(v) * (6 // len(v))  # noqa: E731
    m = _metrics({(2, 10.0): dict(gd_iterations=six(30, 35), bn_iterations=six(700, 720)),
                  (2, 1000.0): dict(gd_iterations=six(3000, 3400), bn_iterations=six(710, 760)),
                  (3, 10.0): dict(gd_iterations=six(30, 35), bn_iterations=six(700, 800)),
                  (3, 1000.0): dict(gd_iterations=six(3000, 3400), bn_iterations=six(1500, 2900))})
    got = {c["id"]: c["verdict"] for c in job.claims(m)}
    assert got["OLS-D2-KAPPA"] == C.REPRODUCED and got["OLS-D3"] == C.REPRODUCED
    assert got["OLS-D2-KAPPA-BEST"] == C.INCONCLUSIVE  # no scan, no best learning rates
    assert got["OLS-MAXSTEP"] == C.PARTLY and got["OLS-CAI"] == C.INCONCLUSIVE
    m["cases"]["d=3,kappa=1000"]["bn_iterations"] = [2900, 3600] * 3  # faster on half the problems only
    m["cases"]["d=2,kappa=1000"]["bn"] = job._stats([5000])
    got = {c["id"]: c["verdict"] for c in job.claims(m)}
    assert got["OLS-D3"] == C.PARTLY and got["OLS-D2-KAPPA"] == C.PARTLY  # 7x: far below GD's 100x, above 2x
    m["cases"]["d=3,kappa=1000"]["bn_iterations"] = [-1] * 6  # never converged: slower than GD everywhere
    assert {c["id"]: c["verdict"] for c in job.claims(m)}["OLS-D3"] == C.PARTLY

"""Seed 000 sec. 4: the author's normalization, networks, batch order, spectra and the rules."""

import json

import numpy as np
import pytest
from scipy.sparse.linalg import LinearOperator, eigsh

import minibn as mb
import minibn.functional as F
from experiments import normalizations as job
from minibn import experiment, hessian
from minibn.experiment import checkpoint, grid
from minibn.experiment import claims as C

from .conftest import assert_refused_before_any_work, assert_rejudge_restores_the_claims, assert_rules_decide

TINY = ["--variants", "l3,l3-uncentered,none", "--seeds", "2", "--epochs", "2", "--train-size", "300",
        "--batch-size", "50", "--hessian-every", "4", "--hessian-images", "200", "--hessian-k", "2",
        "--hessian-tol", "1e-2", "--distance-every", "2", "--distance-from", "0,2", "--patience", "1",
        "--workers", "2", "--quiet"]


def _authors_layer(x, p, centered, eps=1e-5):
    """The author's training-mode normalization (Other_normalizations.py), in NumPy."""
    u = np.abs(x - x.mean(0)) if centered else np.abs(x)
    norm = (np.sum(u ** p, axis=0) / x.shape[0] + eps) ** (1 / p)
    return (x - x.mean(0)) / norm, norm


@pytest.mark.parametrize("variant", ["l1", "l1-uncentered", "l2", "l2-uncentered", "l3", "l3-uncentered"])
def test_the_normalization_is_the_authors(variant, rng):
    net = job.build_network(job.Config(dtype="float64"), variant, seed=0)
    layer = next(m for m in net if isinstance(m, mb.nn.LpNorm1d))
    assert layer.weight is None and layer.bias is None  # no gamma/beta
    np.testing.assert_array_equal(layer.running_scale.numpy(), 0)  # the author's start
    x = rng.standard_normal((9, 100)) * 2 + 0.5
    expected, norm = _authors_layer(x, job.P[variant.split("-")[0]], not variant.endswith("uncentered"))
    np.testing.assert_allclose(layer(mb.tensor(x)).detach().numpy(), expected, rtol=1e-12)
    np.testing.assert_allclose(layer.running_scale.numpy(), 0.1 * norm, rtol=1e-12)
    np.testing.assert_allclose(layer.running_mean.numpy(), 0.1 * x.mean(0), rtol=1e-12)
    layer.eval()
    z = rng.standard_normal((3, 100))
    np.testing.assert_allclose(layer(mb.tensor(z)).detach().numpy(),
                               (z - layer.running_mean.numpy()) / layer.running_scale.numpy(), rtol=1e-12)


def test_every_variant_of_a_seed_starts_from_the_same_linear_weights():
    cfg = job.Config()
    nets = {v: job.build_network(cfg, v, seed=3) for v in job.VARIANTS}
    linears = {v: [m.weight.detach().numpy() for m in net if isinstance(m, mb.nn.Linear)] for v, net in nets.items()}
    for v in job.VARIANTS:
        assert len(linears[v]) == 3
        for a, b in zip(linears["none"], linears[v]):
            np.testing.assert_array_equal(a, b)
    assert [m.weight.shape for m in nets["l2"] if isinstance(m, mb.nn.Linear)] == [(100, 784), (100, 100), (10, 100)]
    assert sum(isinstance(m, mb.nn.LpNorm1d) for m in nets["linf"]) == 2  # none after the last layer
    assert sum(isinstance(m, mb.nn.BatchNorm1d) for m in nets["bn"]) == 2
    other = job.build_network(cfg, "none", seed=4)
    assert not np.array_equal(next(iter(other.parameters())).detach().numpy(), linears["none"][0])


def test_batches_cover_the_data_with_a_short_last_one_in_one_fixed_order():
    cfg = job.Config(batch_size=64)
    epochs = [job.epoch_batches(cfg, 1, e, 1000) for e in range(3)]
    assert [len(b) for b in epochs[0]] == [64] * 15 + [40]
    assert sorted(np.concatenate(epochs[0]).tolist()) == list(range(1000))
    assert all(np.array_equal(a, b) for e in epochs[1:] for a, b in zip(epochs[0], e))
    shuffled = [job.epoch_batches(job.Config(shuffle=True), 1, e, 1000) for e in range(2)]
    assert not np.array_equal(shuffled[0][0], shuffled[1][0])


@pytest.mark.parametrize("which", ["LM", "LA"])
def test_the_spectrum_is_of_the_training_mode_loss_and_leaves_running_statistics_alone(which, rng):
    cfg = job.Config(dtype="float64", hessian_k=3, hessian_tol=1e-6, hessian_which=which)
    net = job.build_network(cfg, "l3", seed=0)
    x = mb.tensor(rng.standard_normal((60, 784)))
    y = mb.tensor(rng.integers(0, 10, 60))
    before = [b.numpy().copy() for b in net.buffers()]
    s, vectors = job.spectrum(cfg, net, x, y, seed=0)
    for a, b in zip(before, net.buffers()):
        np.testing.assert_array_equal(a, b.numpy())
    op = hessian.HessianOperator(lambda: F.cross_entropy(net(x), y), list(net.parameters()))
    found = eigsh(LinearOperator((op.n, op.n), matvec=op.matvec, dtype=np.float64), k=3, which=which, tol=1e-10,
                  return_eigenvectors=False)  # ARPACK, as the author's pytorch-hessian-eigenthings
    expected = sorted(found, key=abs if which == "LM" else float, reverse=True)
    np.testing.assert_allclose(s["eigenvalues"], expected, rtol=1e-5)
    assert s["converged"] and s["hvps"] > 3 and s["method"] == "lanczos" and vectors.shape[1] == 3
    warm, _ = job.spectrum(cfg, net, x, y, seed=1, start=vectors)  # from its own eigenvectors: few products
    np.testing.assert_allclose(warm["eigenvalues"], expected, rtol=1e-5)
    assert warm["method"] == "davidson" and warm["hvps"] < s["hvps"]


def _close(a, b, path=""):
    """a and b equal to rounding, key by key (numbers to 1e-9 relative)."""
    if isinstance(a, dict):
        assert set(a) == set(b), path
        for k in a:
            _close(a[k], b[k], f"{path}/{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            _close(x, y, f"{path}[{i}]")
    elif isinstance(a, float):
        assert a == pytest.approx(b, rel=1e-9, abs=1e-12), path
    else:
        assert a == b, path


@pytest.mark.parametrize("variant", ["bn", "l3-uncentered"])
def test_the_seeds_side_by_side_train_as_each_alone(variant):
    """One nn.Ensemble of three seeds against train() seed by seed, float64, through the lr
    schedule (patience 1: the lr drops whenever the accuracy does not rise) and a member that stops
    at the lr floor before the others: every record equal to rounding (spectra: their seconds aside)."""
    cfg = job.Config(variants=(variant,), seeds=3, epochs=8, lr=3.0, train_size=300, batch_size=50, hessian_every=4,
                     hessian_images=200, hessian_k=2, hessian_tol=1e-6, distance_every=2, distance_from=(0, 2),
                     patience=1, lr_floor=0.06, hessian_seeds=2, dtype="float64", quiet=True)
    together = job.ensemble(cfg, variant, [0, 1, 2])
    for seed, record in zip([0, 1, 2], together):
        alone = job.train(cfg, variant, seed, with_hessian=seed < 2)
        for spectra in (alone["hessian"], record["hessian"]):
            for h in spectra:
                h.pop("seconds")
        _close(record, alone, f"seed {seed}")
    early = [r for r in together if r["stopped_by"] == "lr floor" and r["epochs"] < max(t["epochs"] for t in together)]
    assert early, [(r["epochs"], r["stopped_by"]) for r in together]  # a member stopped while the others went on


class _Killed(Exception):
    pass


def test_a_job_killed_mid_training_continues_from_its_checkpoint_to_the_same_records(tmp_path, monkeypatch):
    """The grid's job for one variant (three seeds side by side, one stopping early at the lr floor),
    killed after its third epoch, run again: it trains only the epochs left, and every record is the
    uninterrupted job's, exactly; the job's file goes once its result is in the run's checkpoint."""
    cfg = job.Config(variants=("bn",), seeds=3, epochs=8, lr=3.0, train_size=300, batch_size=50, hessian_every=4,
                     hessian_images=200, hessian_k=2, hessian_tol=1e-6, distance_every=2, distance_from=(0, 2),
                     patience=1, lr_floor=0.06, hessian_seeds=2, dtype="float64", quiet=True,
                     out=str(tmp_path / "run"))
    work = {"module": job.__name__, "config": cfg.to_dict(), "variant": "bn", "seeds": [0, 1, 2]}
    monkeypatch.setattr(grid, "SAVE_EVERY", 0.0)
    evaluated = []
    evaluate = job.evaluate
    monkeypatch.setattr(job, "evaluate", lambda *a: evaluated.append(1) or evaluate(*a))
    whole = grid.work(work)
    epochs = len(evaluated)
    grid.job_path(cfg.out, "bn", [0, 1, 2]).unlink()

    save = grid.JobCheckpoint.save

    def killed_after_three_epochs(self, state, force=False):
        save(self, state, force)
        if state.step == 3:
            raise _Killed

    monkeypatch.setattr(grid.JobCheckpoint, "save", killed_after_three_epochs)
    with pytest.raises(_Killed):
        grid.work(work)
    monkeypatch.setattr(grid.JobCheckpoint, "save", save)
    evaluated.clear()
    again = grid.work(work)
    assert len(evaluated) == epochs - 3 * 3  # the three members' first three epochs were not trained again
    assert [r["stopped_by"] for r in whole.values()].count("lr floor") >= 1
    assert list(again) == list(whole)
    assert _without_timing({"bn": list(again.values())}) == _without_timing({"bn": list(whole.values())})
    path = grid.job_path(cfg.out, "bn", [0, 1, 2])
    assert path.exists()
    grid.Units(experiment.load(job), cfg, resume=False).add(again)
    assert not path.exists()


def test_a_tiny_run_end_to_end_and_its_resume(tmp_path):
    out = tmp_path / "run"
    metrics = experiment.main(job, TINY + ["--out", str(out)])
    assert_rejudge_restores_the_claims(out)
    assert_rules_decide(RULES, metrics["claims"])
    saved = json.loads((out / "metrics.json").read_text())
    assert set(saved["best_val_accuracy"]) == {"l3", "l3-uncentered", "none"}
    for v, ts in saved["trainings"].items():
        assert [t["seed"] for t in ts] == [0, 1]
        assert [len(t["hessian"]) for t in ts] == [4, 1]  # along training on the first seed, at the end on each
        first = ts[0]
        assert first["steps"] == 2 * 6  # 300 images in batches of 50, two epochs
        assert [h["step"] for h in first["hessian"]] == [0, 4, 8, 12]  # every 4 steps and at the end
        assert [h["method"] for h in first["hessian"]] == ["lanczos", "davidson", "davidson", "davidson"]
        assert [h["method"] for h in ts[1]["hessian"]] == ["lanczos"]  # at the end only: cold
        assert all(len(h["eigenvalues"]) == 2 and abs(h["eigenvalues"][0]) >= abs(h["eigenvalues"][1])
                   for h in first["hessian"])  # largest in magnitude first
        assert set(first["distance"]) == {"0", "4"}  # snapshots 0 and 2 of every 2 steps
        assert [s for s, _ in first["distance"]["0"]] == [0, 2, 4, 6, 8, 10, 12]
        assert first["distance"]["0"][0][1] == 0 and first["distance_from_init"] > 0
    assert [c["id"] for c in saved["claims"]] == ["NORM-ACC-L3", "NORM-ACC-L3-UNCENTERED", "NORM-NOT-SIGNIFICANT",
                                                  "NORM-COMPARABLE", "NORM-INDICATORS"]
    assert all(c["verdict"] in C.VERDICTS for c in saved["claims"])
    for name in ("distance_moved", "eigenvalues", "comparison"):
        assert (out / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
    # a run killed after some trainings resumes with the rest, to the same numbers
    state = checkpoint.load(out / "checkpoint.ckpt")
    del state["record"]["tasks"]["l3/seed=0"]
    checkpoint.save(out / "checkpoint.ckpt", state)
    resumed = experiment.main(job, ["--resume", str(out), "--workers", "1", "--quiet"])
    assert _without_timing(resumed["trainings"]) == _without_timing(metrics["trainings"])


def _without_timing(trainings):
    return {v: [{**t, "hessian": [{k: x for k, x in h.items() if k != "seconds"} for h in t["hessian"]]} for t in ts]
            for v, ts in trainings.items()}


def _metrics(table, stopped="lr floor", spectra=None, distance=None):
    """Metrics of a run with ``table`` {variant: best val accuracy per seed}; ``spectra`` and ``distance``
    {variant: a value per seed} (default: alike)."""
    seeds = len(next(iter(table.values())))
    wobble = {v: [1 + 0.02 * i + 0.01 * j * (-1) ** i for i in range(seeds)] for j, v in enumerate(table)}  # alike, not equal
    spectra = spectra or {v: [1.0 * w for w in wobble[v]] for v in table}
    distance = distance or {v: [5.0 * w for w in wobble[v]] for v in table}
    summary = {v: {"best_val_accuracy": C.spread(a), "stopped_by": [stopped] * len(a), "final_top_eigenvalue": spectra[v],
                   "final_weight_norms": [1.0], "distance_from_init": C.spread(distance[v])} for v, a in table.items()}
    trainings = {v: [{"distance_from_init": d, "best_val_accuracy": a, "hessian": [{"eigenvalues": [e]}]}
                     for d, a, e in zip(distance[v], table[v], spectra[v])] for v in table}
    return {"config": job.Config().to_dict(), "summary": summary, "best_val_accuracy": table,
            "trainings": trainings, "seeds": list(range(seeds))}


def _pair(equivalent, ci=(0.9, 1.1), p_holm=0.5):
    return {"equivalence": {"equivalent": equivalent, "ci": list(ci)}, "p_holm": p_holm}


def _comparable(eigen, distance, seeds=3):
    return {"seeds": seeds, "margin_factor": 1.5, "top_eigenvalue": {"pairs": {"a / b": eigen}},
            "distance_from_init": {"pairs": {"a / b": distance}}}


def _indicators(p_eigen, r_eigen, p_distance, r_distance, points=9):
    return {"points": points, "pooled": {"top_eigenvalue": {"p_holm": p_eigen, "r": r_eigen},
                                         "distance_from_init": {"p_holm": p_distance, "r": r_distance}}}


RULES = {
    "NORM-ACC-": (job.decide_accuracy, [
        (C.REPRODUCED, {"author_percent": 96.3, "prediction_interval_95_percent": [95.9, 96.6], "seeds": 3,
                        "cut_by_epochs": False}),
        (C.NOT_REPRODUCED, {"author_percent": 96.9, "prediction_interval_95_percent": [95.9, 96.6], "seeds": 3,
                            "cut_by_epochs": False}),
        (C.INCONCLUSIVE, {"author_percent": 96.9, "prediction_interval_95_percent": [95.9, 96.6], "seeds": 3,
                          "cut_by_epochs": True}),  # short of the author's, but stopped early
        (C.INCONCLUSIVE, {"author_percent": 96.3, "prediction_interval_95_percent": [float("nan")] * 2, "seeds": 1,
                          "cut_by_epochs": False})]),
    "NORM-NOT-SIGNIFICANT": (job.decide_not_significant, [
        (C.REPRODUCED, {"seeds": 3, "pairs": {"a - b": {"equivalence": {"equivalent": True}, "p_holm": 0.01}}}),
        (C.NOT_REPRODUCED, {"seeds": 3, "pairs": {"a - b": {"equivalence": {"equivalent": False}, "p_holm": 0.01}}}),
        (C.INCONCLUSIVE, {"seeds": 3, "pairs": {"a - b": {"equivalence": {"equivalent": False}, "p_holm": 0.4}}}),
        (C.INCONCLUSIVE, {"seeds": 1, "pairs": {}})]),
    "NORM-COMPARABLE": (job.decide_comparable, [
        (C.REPRODUCED, _comparable({"equivalent": True, "ci": [0.9, 1.1]}, {"equivalent": True, "ci": [0.9, 1.1]})),
        (C.PARTLY, _comparable({"equivalent": True, "ci": [0.9, 1.1]}, {"equivalent": False, "ci": [0.5, 2.0]})),
        (C.NOT_REPRODUCED, _comparable({"equivalent": False, "ci": [3.0, 5.0]}, {"equivalent": True, "ci": [0.9, 1.1]})),
        (C.INCONCLUSIVE, _comparable({"equivalent": False, "ci": [0.5, 2.0]}, {"equivalent": False, "ci": [0.5, 2.0]})),
        (C.INCONCLUSIVE, _comparable({"equivalent": True, "ci": [0.9, 1.1]}, {"equivalent": True, "ci": [0.9, 1.1]},
                                     seeds=1))]),
    "NORM-INDICATORS": (job.decide_indicators, [
        (C.REPRODUCED, _indicators(0.01, -0.8, 0.02, -0.6)), (C.PARTLY, _indicators(0.01, -0.8, 0.5, 0.2)),
        (C.NOT_REPRODUCED, _indicators(0.01, -0.8, 0.01, 0.7)), (C.INCONCLUSIVE, _indicators(0.3, -0.3, 0.5, 0.1)),
        (C.INCONCLUSIVE, _indicators(0.01, -0.99, 0.01, -0.99, points=3))]),
}


def test_the_indicators_rule_finds_a_planted_relation():
    """Best accuracy falling with the log eigenvalue and the log distance across variants: both indicators."""
    table = {"l1": [0.95, 0.951, 0.949], "l2": [0.96, 0.961, 0.962], "l3": [0.97, 0.969, 0.971]}
    spectra = {v: [10 ** (100 * (1 - a)) for a in acc] for v, acc in table.items()}
    distance = {v: [10 ** (50 * (1 - a)) * (1 + 0.01 * i) for i, a in enumerate(acc)] for v, acc in table.items()}
    found = {c["id"]: c for c in job.claims(_metrics(table, spectra=spectra, distance=distance))}["NORM-INDICATORS"]
    assert found["verdict"] == C.REPRODUCED and found["evidence"]["pooled"]["top_eigenvalue"]["r"] == pytest.approx(-1)
    flipped = {v: [1 / s for s in vs] for v, vs in spectra.items()}  # larger eigenvalues with better accuracy
    assert {c["id"]: c for c in job.claims(_metrics(table, spectra=flipped, distance=distance))}[
        "NORM-INDICATORS"]["verdict"] == C.NOT_REPRODUCED


def test_the_rules_on_synthetic_runs():
    by_id = lambda m: {c["id"]: c for c in job.claims(m)}  # noqa: E731
    near = by_id(_metrics({"l2": [0.9630, 0.9640, 0.9645]}))["NORM-ACC-L2"]  # mean 96.38
    assert near["verdict"] == C.REPRODUCED and near["test"].startswith("95 % prediction interval")
    assert by_id(_metrics({"l2": [0.940, 0.941, 0.942]}))["NORM-ACC-L2"]["verdict"] == C.NOT_REPRODUCED
    assert by_id(_metrics({"l2": [0.940, 0.941, 0.942]}, stopped="epochs"))["NORM-ACC-L2"]["verdict"] == C.INCONCLUSIVE
    same = by_id(_metrics({"l2": [0.9600, 0.9620, 0.9580], "l3": [0.9601, 0.9622, 0.9583]}))
    assert same["NORM-NOT-SIGNIFICANT"]["verdict"] == C.REPRODUCED and same["NORM-COMPARABLE"]["verdict"] == C.REPRODUCED
    assert same["NORM-NOT-SIGNIFICANT"]["margin"] == {"value": 0.5, "unit": "best validation accuracy points"}
    apart = by_id(_metrics({"l2": [0.960, 0.962, 0.958, 0.961], "l3": [0.950, 0.951, 0.949, 0.950]},
                           spectra={"l2": [5.0, 5.2, 4.9, 5.1], "l3": [50.0, 51.0, 49.0, 50.5]}))
    assert apart["NORM-NOT-SIGNIFICANT"]["verdict"] == C.NOT_REPRODUCED  # a point apart, on every seed
    assert apart["NORM-COMPARABLE"]["verdict"] == C.NOT_REPRODUCED  # 10x apart
    few = by_id(_metrics({"l2": [0.960, 0.950], "l3": [0.955, 0.962]}))
    assert few["NORM-NOT-SIGNIFICANT"]["verdict"] == C.INCONCLUSIVE  # two seeds: neither shown


@pytest.mark.parametrize("argv, named", [(["--variants", "l4"], "--variants"), (["--seeds", "0"], "--seeds"),
                                         (["--hessian-seeds", "4"], "--hessian-seeds"),
                                         (["--hessian-images", "20000"], "--hessian-images"),
                                         (["--train-size", "129", "--batch-size", "64"], "--batch-size"),
                                         (["--variants", "l2,l2"], "--variants"), (["--lr", "0"], "--lr")])
def test_bad_flags_are_refused_before_any_work(tmp_path, capsys, argv, named):
    assert_refused_before_any_work(lambda argv: experiment.main(job, argv), argv + ["--quiet"], named, tmp_path / "never", capsys)

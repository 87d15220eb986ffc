"""Seed 003 (Bjorck et al.): the probes measure what they say, the sweep feeds part 1, the rules decide."""

import json
import math

import numpy as np
import pytest

import minibn as mb
from minibn import experiment
import minibn.functional as F
from experiments import lr_sweep as job
from minibn.experiment import claims as C

from .conftest import assert_refused_before_any_work, assert_rejudge_restores_the_claims

TINY = ["--lrs", "0.0001,0.5", "--seeds", "2", "--steps", "4", "--batch-size", "32", "--width", "8", "--depth", "3",
        "--probe-depths", "4", "--train-size", "200", "--probe-steps", "2", "--alphas", "0.001,0.1,10",
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
    sweep = json.loads((out / job.SWEEP_FOLDER / "results.json").read_text())
    assert len(sweep["points"]) == 2 * 2 * 2 and {p["norm"] for p in sweep["points"]} == {"bn", "none"}
    assert set(saved["probes"]) == {f"{k}/depth=4/init={i}" for k in ("bn", "plain") for i in ("kaiming_normal", "pytorch")}
    ids = [c["id"] for c in saved["claims"]]
    assert ids == ["LR-SMALL-SIMILAR", "LR-LARGE-BN", "LR-IS-THE-BENEFIT", "ONE-STEP-D4", "ACT-ORDERS-D4",
                   "ACT-CAUSE-D4", "ACT-HEATMAP-D4", "GRAD-ALIGN-D4", "INIT-D4"]
    assert all(c["verdict"] in C.VERDICTS for c in saved["claims"])
    assert all("ResNet" in c["setting"] for c in saved["claims"])  # every claim says what was rerun instead
    for name in ("accuracy_vs_lr", "relative_loss_depth4", "activations_depth4", "channel_heatmaps_depth4",
                 "gradient_heatmap_depth4"):
        assert (out / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
    resumed = experiment.main(job, ["--resume", str(out), "--quiet"])  # the sweep's points are all done: only the probes
    assert resumed["part1"] == metrics["part1"] and resumed["claims"] == metrics["claims"]


def _part1(bn, plain, folded=None, chance=0.1135):
    lrs = sorted(bn)
    return {"config": {"lrs": lrs, "probe_depths": [], "train_size": 10000, "width": 100, "seeds": 2, "seed": 0,
                       "depth": 10, "batch_size": 128, "steps": 600},
            "part1": {"chance": chance, "accuracy": {"bn": {repr(k): v for k, v in bn.items()},
                                                     "plain": {repr(k): v for k, v in plain.items()},
                                                     "plain_folded": {repr(k): v for k, v in (folded or plain).items()}}}}


def test_learning_rate_rules():
    verdicts = lambda m: {c["id"]: c["verdict"] for c in job.claims(m)}  # noqa: E731
    paper_like = verdicts(_part1({1e-4: [0.90, 0.91], 0.1: [0.96, 0.97], 1.0: [0.98, 0.985]},
                                 {1e-4: [0.905, 0.9], 0.1: [0.965, 0.96], 1.0: [0.11, 0.11]}))
    assert paper_like == {"LR-SMALL-SIMILAR": C.REPRODUCED, "LR-LARGE-BN": C.PARTLY,
                          "LR-IS-THE-BENEFIT": C.REPRODUCED}
    untrained = verdicts(_part1({1e-4: [0.12, 0.13], 1.0: [0.9, 0.9]}, {1e-4: [0.11, 0.12], 1.0: [0.11, 0.11]}))
    assert untrained["LR-SMALL-SIMILAR"] == C.INCONCLUSIVE and untrained["LR-LARGE-BN"] == C.REPRODUCED
    half_trained = verdicts(_part1({1e-4: [0.80, 0.81], 0.1: [0.96, 0.96]}, {1e-4: [0.94, 0.94], 0.1: [0.95, 0.95]}))
    assert half_trained["LR-SMALL-SIMILAR"] == C.INCONCLUSIVE  # BN is 15 points below its best: unfinished
    better_everywhere = verdicts(_part1({1e-4: [0.95, 0.95], 0.1: [0.97, 0.97], 1.0: [0.98, 0.98]},
                                        {1e-4: [0.80, 0.81], 0.1: [0.90, 0.90], 1.0: [0.11, 0.11]}))
    assert better_everywhere["LR-SMALL-SIMILAR"] == C.NOT_REPRODUCED
    assert better_everywhere["LR-IS-THE-BENEFIT"] == C.PARTLY  # BN already clearly better at plain's best lr
    same_best = verdicts(_part1({1e-4: [0.9, 0.9], 0.1: [0.97, 0.97]}, {1e-4: [0.9, 0.9], 0.1: [0.96, 0.97]}))
    assert same_best["LR-IS-THE-BENEFIT"] == C.NOT_REPRODUCED


@pytest.mark.parametrize("argv, named", [(["--lrs", "0"], "--lrs"), (["--alphas", "1,0.1"], "--alphas"),
                                         (["--dask", "2", "--scheduler", "tcp://h:1"], "--dask"),
                                         (["--inits", "orthogonal"], "--inits"), (["--seeds", "0"], "--seeds"),
                                         (["--batch-size", "300", "--train-size", "200"], "--batch-size"),
                                         (["--probe-depths", "1"], "--probe-depths")])
def test_bad_flags_are_refused_before_any_work(tmp_path, capsys, argv, named):
    assert_refused_before_any_work(lambda argv: experiment.main(job, argv), argv + ["--quiet"], named, tmp_path / "never", capsys)

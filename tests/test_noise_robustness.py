"""Seed 000 sec. 5: noise features; the author's batch norm, data, batch order and protocol; the rules."""

import json

import numpy as np
import pytest

import minibn as mb
from minibn import experiment
from experiments import noise_robustness as job
from minibn.experiment import checkpoint
from minibn.experiment import claims as C
from minibn.gradcheck import gradcheck

from .conftest import assert_refused_before_any_work, assert_rejudge_restores_the_claims, assert_rules_decide

TINY = ["--dim", "40", "--informative", "8", "--sizes", "6,12", "--seeds", "2", "--epochs", "4", "--patience", "2",
        "--test-per-class", "10", "--hidden", "6", "--batch-size", "8", "--workers", "2", "--quiet"]


def test_the_authors_batch_norm_normalizes_with_the_unbiased_variance(rng):
    bn = job.AuthorBatchNorm1d(5, dtype=mb.float64)
    bn.weight._data[...] = rng.standard_normal(5)
    bn.bias._data[...] = rng.standard_normal(5)
    gamma, beta = bn.weight.detach().numpy(), bn.bias.detach().numpy()
    x = rng.standard_normal((7, 5)) * 3 + 1
    y = bn(mb.tensor(x)).detach().numpy()
    ref = gamma * (x - x.mean(0)) / np.sqrt(x.var(0, ddof=1) + bn.eps) + beta
    np.testing.assert_allclose(y, ref, rtol=1e-13)
    np.testing.assert_allclose(bn.running_mean.numpy(), 0.1 * x.mean(0), rtol=1e-13)  # from 0, as the author's
    np.testing.assert_allclose(bn.running_var.numpy(), 0.1 * x.var(0, ddof=1), rtol=1e-13)
    bn.eval()
    z = rng.standard_normal((3, 5))
    np.testing.assert_allclose(bn(mb.tensor(z)).detach().numpy(), gamma * (z - bn.running_mean.numpy())
                               / np.sqrt(bn.running_var.numpy() + bn.eps) + beta, rtol=1e-13)


def test_the_authors_batch_norm_has_the_gradients_of_its_formula(rng):
    bn = job.AuthorBatchNorm1d(4, dtype=mb.float64, track_running_stats=False)
    bn.weight._data[...] = rng.standard_normal(4)
    bn.bias._data[...] = rng.standard_normal(4)
    x = mb.tensor(rng.standard_normal((6, 4)), requires_grad=True)
    assert gradcheck(lambda t: bn(t), [x])
    w, b = bn.weight, bn.bias
    direct = w * (x - x.mean(0)) / (x.var(0, correction=1) + bn.eps).sqrt() + b
    g = mb.tensor(rng.standard_normal((6, 4)))
    for a, c in zip(mb.grad((direct * g).sum(), [x, w, b]), mb.grad((bn(x) * g).sum(), [x, w, b])):
        np.testing.assert_allclose(c.numpy(), a.numpy(), rtol=1e-12)


def test_the_data_are_nested_across_sizes_and_share_the_test_set():
    cfg = job.Config(dim=30, informative=6, classes=3, sizes=(4, 9), test_per_class=5)
    x4, y4, t4, ty4 = job.make_data(cfg, seed=2, n=4)
    x9, y9, t9, _ = job.make_data(cfg, seed=2, n=9)
    assert x4.shape == (12, 30) and x9.shape == (27, 30) and x4.dtype == np.float32
    assert y4.tolist() == [0] * 4 + [1] * 4 + [2] * 4 and ty4.tolist() == [0] * 5 + [1] * 5 + [2] * 5
    for k in range(3):
        np.testing.assert_array_equal(x4[4 * k:4 * k + 4], x9[9 * k:9 * k + 4])
    np.testing.assert_array_equal(t4, t9)
    other, _, _, _ = job.make_data(cfg, seed=3, n=4)
    assert not np.array_equal(other, x4)
    alone, _, _, _ = job.make_data(job.Config(dim=30, informative=6, classes=3, sizes=(4,), test_per_class=5), 2, 4)
    np.testing.assert_array_equal(alone, x4)  # whatever other sizes the run has


def test_informative_coordinates_sit_around_unit_class_means():
    cfg = job.Config(dim=50, informative=10, classes=2, sizes=(4000,), test_per_class=1)
    x, y, _, _ = job.make_data(cfg, seed=0, n=4000)
    for k in range(2):
        part = x[y == k]
        assert np.linalg.norm(part[:, :10].mean(0)) == pytest.approx(1, abs=0.02)
        assert part[:, :10].var(0).mean() == pytest.approx(0.02, rel=0.05)
        assert part[:, 10:].var(0).mean() == pytest.approx(1, rel=0.05)  # noise features
        assert np.abs(part[:, 10:].mean(0)).max() < 0.1


def test_batch_orders_by_variant():
    fixed = [job.epoch_order("bn_without_reg", 1, 50, e) for e in range(3)]
    assert all(np.array_equal(fixed[0], f) for f in fixed)
    shuffled = [job.epoch_order("bn_reg", 1, 50, e) for e in range(3)]
    assert not np.array_equal(shuffled[0], shuffled[1])
    assert all(np.array_equal(a, job.epoch_order("no_bn", 1, 50, e)) for e, a in enumerate(shuffled))
    assert sorted(shuffled[2]) == list(range(50))


def test_every_variant_of_a_seed_starts_from_the_same_weights():
    cfg = job.Config(dim=20, hidden=6, classes=3)
    nets = {v: job.build_network(cfg, v, seed=4, n=10) for v in job.VARIANTS}
    first = {v: [m for m in net if isinstance(m, mb.nn.Linear)] for v, net in nets.items()}
    for v in job.VARIANTS:
        for a, b in zip(first["no_bn"], first[v]):
            np.testing.assert_array_equal(a.weight.detach().numpy(), b.weight.detach().numpy())
    assert any(isinstance(m, job.AuthorBatchNorm1d) for m in nets["bn_reg"])
    assert not any(isinstance(m, mb.nn.BatchNorm1d) for m in nets["no_bn"])


def _authors_stop(accuracies, patience=20, lr=0.1, floor=1e-3):
    """The author's loop: the epoch it stops at and the learning rates it used."""
    best, past, lrs = 0.0, 0, []
    for epoch, acc in enumerate(accuracies):
        lrs.append(lr)
        if acc > best:
            best, past = acc, 0
        else:
            past += 1
        if past == patience:
            lr *= 0.1
            if lr < floor:
                return epoch, lrs
            past = 0
    return len(accuracies) - 1, lrs


def test_the_plateau_protocol_is_the_authors(rng):
    for _ in range(20):
        accuracies = np.round(np.minimum(1, np.cumsum(rng.random(200) * 0.01) + rng.random(200) * 0.05), 2)
        stop, lrs = _authors_stop(accuracies)
        opt = mb.optim.SGD([mb.tensor(np.zeros(1), requires_grad=True)], lr=0.1)
        schedule = mb.optim.ReduceLROnPlateau(opt, mode="max", patience=19, threshold=0.0)
        for epoch, acc in enumerate(accuracies):
            assert opt.param_groups[0]["lr"] == pytest.approx(lrs[epoch])
            schedule.step(acc)
            if job.lr_below(opt, 1e-3):
                break
        assert epoch == stop


def test_a_tiny_run_end_to_end_and_its_resume(tmp_path):
    out = tmp_path / "run"
    metrics = experiment.main(job, TINY + ["--out", str(out)])
    assert_rejudge_restores_the_claims(out)
    saved = json.loads((out / "metrics.json").read_text())
    assert set(saved["best_val_accuracy"]) == set(job.VARIANTS)
    assert all(len(saved["best_val_accuracy"][v][n]) == 2 for v in job.VARIANTS for n in ("6", "12"))
    assert all(1 <= e <= 4 for v in job.VARIANTS for n in ("6", "12") for e in saved["epochs"][v][n])
    assert [c["id"] for c in saved["claims"]] == ["NOISE-BN-NOREG", "NOISE-BN-REG"]
    assert_rules_decide(RULES, saved["claims"])
    assert all(c["verdict"] in C.VERDICTS for c in saved["claims"])
    for name in ("best_val_accuracy", "validation_curves"):
        assert (out / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
    # a run killed after some sizes resumes with the rest, to the same numbers
    state = checkpoint.load(out / "checkpoint.ckpt")
    assert sorted(state["record"]["tasks"]) == [f"n={n}/seed={s}" for n in (12, 6) for s in (0, 1)]
    for seed in (0, 1):  # a size is one task: all its seeds at once
        del state["record"]["tasks"][f"n=12/seed={seed}"]
    checkpoint.save(out / "checkpoint.ckpt", state)
    resumed = experiment.main(job, ["--resume", str(out), "--workers", "1", "--quiet"])
    assert resumed["best_val_accuracy"] == metrics["best_val_accuracy"]
    assert resumed["epochs"] == metrics["epochs"]


@pytest.mark.parametrize("argv, named", [(["--sizes", "1"], "--sizes"), (["--variants", "bn"], "--variants"),
                                         (["--variants", "bn_reg,bn_reg"], "--variants"),
                                         (["--informative", "2000"], "--informative"), (["--seeds", "0"], "--seeds"),
                                         (["--activation", "tanh"], "--activation"), (["--lr", "-0.1"], "--lr")])
def test_bad_flags(argv, named, tmp_path, capsys):
    assert_refused_before_any_work(lambda argv: experiment.main(job, argv), argv, named, tmp_path / "run", capsys)


def _table(bn, none, sizes=("100", "300", "500", "1000")):
    return {"config": {**job.Config(sizes=tuple(map(int, sizes))).to_dict(), "seeds": len(bn[0])},
            "seeds": list(range(len(bn[0]))),
            "best_val_accuracy": {"bn_without_reg": dict(zip(sizes, bn)), "bn_reg": dict(zip(sizes, bn)),
                                  "no_bn": dict(zip(sizes, none))}}


def _less_data(**changes):
    e = {"seeds": 5, "compared_at": [300, 500], "near_chance_at": [], "better_at": [300, 500], "worse_at": []}
    return {**e, **changes}


RULES = {cid: (job.decide_less_data, [
    (C.REPRODUCED, _less_data()),
    (C.PARTLY, _less_data(better_at=[300])),
    (C.NOT_REPRODUCED, _less_data(better_at=[300], worse_at=[500])),
    (C.INCONCLUSIVE, _less_data(better_at=[])),
    (C.INCONCLUSIVE, _less_data(compared_at=[], better_at=[])),      # no size of the document's range run
    (C.INCONCLUSIVE, _less_data(near_chance_at=[300])),             # both at chance: nothing learned
    (C.INCONCLUSIVE, _less_data(seeds=1))]) for cid in ("NOISE-BN-NOREG", "NOISE-BN-REG")}


def test_less_data_is_where_the_authors_figure_has_bn_ahead():
    assert job.LESS_DATA == (300, 400, 500, 600, 700, 800)


def test_the_rule_compares_at_the_documents_sizes_with_holms_adjustment():
    better = [0.50, 0.52, 0.51, 0.53, 0.50]
    worse = [0.45, 0.46, 0.47, 0.46, 0.44]
    same = [0.5, 0.6, 0.55, 0.52, 0.58]
    got = {c["id"]: c for c in job.claims(_table([same, better, better, same], [same, worse, worse, same]))}
    e = got["NOISE-BN-NOREG"]["evidence"]
    assert got["NOISE-BN-NOREG"]["verdict"] == C.REPRODUCED and e["compared_at"] == [300, 500]
    assert e["per_size"]["300"]["p_holm"] == pytest.approx(min(1.0, 2 * min(e["per_size"][n]["p"] for n in ("300", "500"))))
    got = job.claims(_table([same, better, same, same], [same, worse, same, same]))
    assert got[0]["verdict"] == C.PARTLY
    got = job.claims(_table([same, worse, better, same], [same, better, worse, same]))
    assert got[0]["verdict"] == C.NOT_REPRODUCED
    assert job.claims(_table([[0.3]] * 4, [[0.2]] * 4))[0]["verdict"] == C.INCONCLUSIVE  # one seed
    outside = job.claims(_table([better] * 4, [worse] * 4, sizes=("10", "50", "100", "200")))
    assert outside[0]["verdict"] == C.INCONCLUSIVE and outside[0]["evidence"]["compared_at"] == []
    chance = [0.21, 0.22, 0.20, 0.21, 0.22]
    near = job.claims(_table([same, chance, better, same], [same, [0.2] * 5, worse, same]))
    assert near[0]["verdict"] == C.INCONCLUSIVE and near[0]["evidence"]["near_chance_at"] == [300]


MEMBERS = [("bn_reg", 0), ("bn_without_reg", 1), ("bn_reg", 1)]


def test_the_ensemble_computes_what_each_network_computes_alone(rng):
    cfg = job.Config(dim=12, hidden=5, classes=3, dtype="float64", activation="relu")
    nets = [job.build_network(cfg, v, s, 7) for v, s in MEMBERS]
    ens = mb.nn.Ensemble([job.build_network(cfg, v, s, 7) for v, s in MEMBERS])
    x = rng.standard_normal((3, 9, 12))
    y = rng.integers(0, 3, (3, 9))
    lr = np.array([0.1, 0.05, 0.0])
    logits = ens(mb.tensor(x))
    ens.zero_grad()
    job.weighted_loss(logits, mb.tensor(y), lr).backward()
    mb.optim.SGD(ens.parameters(), lr=1.0).step()
    for j, net in enumerate(nets):
        opt = mb.optim.SGD(net.parameters(), lr=lr[j])
        opt.zero_grad()
        alone = net(mb.tensor(x[j]))
        np.testing.assert_allclose(logits.detach().numpy()[j], alone.detach().numpy(), rtol=1e-12)
        mb.functional.cross_entropy(alone, mb.tensor(y[j])).backward()
        opt.step()
        member = ens.member(j)
        assert isinstance(member[1], job.AuthorBatchNorm1d)  # the author's batch norm, side by side
        for (name, a), (_, b) in zip(net.state_dict().items(), member.state_dict().items()):
            np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-12, atol=1e-15, err_msg=name)
    assert np.array_equal(ens.member(2)[0].weight.detach().numpy(), nets[2][0].weight.detach().numpy())  # lr 0: frozen


def test_training_as_an_ensemble_equals_training_each_network_alone():
    cfg = job.Config(dim=20, informative=5, sizes=(8,), seeds=2, epochs=6, patience=2, test_per_class=10,
                     hidden=6, batch_size=8, dtype="float64", backend="numpy")
    together = job.ensemble(cfg, "n=8", [0, 1])
    for v in job.VARIANTS:
        for s in (0, 1):
            alone = job.train(cfg, v, 8, s)
            got = together[s][v]
            assert got["curve"] == pytest.approx(alone["curve"], abs=1e-12), (v, s)
            assert (got["epochs"], got["best_val_accuracy"]) == (alone["epochs"], alone["best_val_accuracy"])

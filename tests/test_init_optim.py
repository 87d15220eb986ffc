"""Initializers (distribution, seeding) and optimizers (rules, checkpointing, bad input)."""

import math

import numpy as np
import pytest

import minibn as mb
import minibn.functional as F
from minibn import init, nn, optim


def test_kaiming_and_xavier_have_the_stated_spread():
    w = mb.empty(400, 300, dtype=mb.float64)
    init.kaiming_normal_(w, generator=mb.Generator(0))
    assert abs(w.numpy().std() - math.sqrt(2 / 300)) < 0.01 * math.sqrt(2 / 300) * 3
    init.kaiming_normal_(w, mode="fan_out", nonlinearity="relu", generator=mb.Generator(0))
    assert abs(w.numpy().std() - math.sqrt(2 / 400)) < 0.03 * math.sqrt(2 / 400)
    init.kaiming_uniform_(w, a=math.sqrt(5), generator=mb.Generator(0))
    assert np.abs(w.numpy()).max() <= 1 / math.sqrt(300) and np.abs(w.numpy()).max() > 0.99 / math.sqrt(300)
    init.xavier_uniform_(w, generator=mb.Generator(0))
    bound = math.sqrt(6 / 700)
    assert np.abs(w.numpy()).max() <= bound and abs(w.numpy().std() - bound / math.sqrt(3)) < 0.01 * bound
    init.xavier_normal_(w, gain=2.0, generator=mb.Generator(0))
    assert abs(w.numpy().std() - 2 * math.sqrt(2 / 700)) < 0.03 * 2 * math.sqrt(2 / 700)


def test_initializers_are_seeded_and_leave_the_graph_alone():
    a = nn.Linear(5, 4, generator=mb.Generator(7))
    b = nn.Linear(5, 4, generator=mb.Generator(7))
    np.testing.assert_array_equal(a.weight.detach().numpy(), b.weight.detach().numpy())
    np.testing.assert_array_equal(a.bias.detach().numpy(), b.bias.detach().numpy())
    assert a.weight.is_leaf and a.weight.requires_grad
    assert init.zeros_(mb.ones(3)).tolist() == [0, 0, 0] and init.ones_(mb.zeros(2)).tolist() == [1, 1]
    assert init.calculate_gain("tanh") == 5 / 3
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        init.kaiming_normal_(mb.zeros(3))


def _train(net, opt, data, steps):
    x, y = data
    for _ in range(steps):
        opt.zero_grad()
        F.cross_entropy(net(x), y).backward()
        opt.step()


@pytest.mark.parametrize("make", [lambda p: optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True),
                                  lambda p: optim.Adam(p, lr=0.01, weight_decay=0.1)], ids=["SGD", "Adam"])
def test_optimizer_checkpoint_resumes_exactly(make, tmp_path, rng):
    data = (mb.tensor(rng.standard_normal((12, 4))), mb.tensor(rng.integers(0, 3, 12)))
    net = nn.mlp([4, 6, 3], dtype=mb.float64, generator=mb.Generator(0))
    opt = make(net.parameters())
    _train(net, opt, data, 3)
    net.save(tmp_path / "net.npz")
    state = opt.state_dict()
    _train(net, opt, data, 3)

    resumed = nn.mlp([4, 6, 3], dtype=mb.float64, generator=mb.Generator(99)).load(tmp_path / "net.npz")
    opt2 = make(resumed.parameters())
    opt2.load_state_dict(state)
    _train(resumed, opt2, data, 3)
    for a, b in zip(net.parameters(), resumed.parameters()):
        np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())


def test_sgd_step_is_the_stated_rule():
    w = mb.tensor([1.0, -2.0], dtype=mb.float64, requires_grad=True)
    opt = optim.SGD([w], lr=0.5, momentum=0.9, weight_decay=0.1)
    for expected in ([1 - 0.5 * (1 + 0.1), -2 - 0.5 * (1 - 0.2)],):
        w.grad = mb.ones(2, dtype=mb.float64)
        opt.step()
        np.testing.assert_allclose(w.detach().numpy(), expected, rtol=1e-15)
    buf = opt.state[id(w)]["momentum_buffer"].copy()
    before = w.detach().numpy().copy()
    w.grad = mb.ones(2, dtype=mb.float64)
    opt.step()
    g = 1 + 0.1 * before
    np.testing.assert_allclose(w.detach().numpy(), before - 0.5 * (0.9 * buf + g), rtol=1e-15)


def test_optimizer_bad_input():
    w = mb.zeros(2, requires_grad=True)
    with pytest.raises(ValueError, match="Nesterov momentum needs momentum > 0"):
        optim.SGD([w], lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.SGD([], lr=0.1)
    with pytest.raises(TypeError, match="leaf Tensors"):
        optim.Adam([w * 2])
    with pytest.raises(ValueError, match="betas must be"):
        optim.Adam([w], betas=(0.9, 1.0))


def test_parameter_groups_keep_their_own_learning_rate():
    a, b = mb.zeros(1, requires_grad=True), mb.zeros(1, requires_grad=True)
    opt = optim.SGD([{"params": [a]}, {"params": [b], "lr": 1.0}], lr=0.1)
    a.grad, b.grad = mb.ones(1), mb.ones(1)
    opt.step()
    assert a.item() == pytest.approx(-0.1) and b.item() == pytest.approx(-1.0)


PLATEAU_SETTINGS = [dict(), dict(mode="max", patience=2, factor=0.5), dict(patience=0, cooldown=2, min_lr=0.02),
                    dict(threshold=0.1, threshold_mode="abs", patience=1)]


def _metrics(rng):
    return list(np.round(rng.standard_normal(40).cumsum() * 0.1 + 1, 3)) + [1.0] * 15


@pytest.mark.parametrize("settings", PLATEAU_SETTINGS)
def test_reduce_lr_on_plateau_follows_pytorch(settings, rng):
    torch = pytest.importorskip("torch", reason="PyTorch is not installed (pip install torch==2.13.0)")
    p = mb.tensor(np.zeros(2), requires_grad=True)
    q = torch.zeros(2, requires_grad=True)
    ours = optim.ReduceLROnPlateau(optim.SGD([p], lr=1.0), **settings)
    theirs = torch.optim.lr_scheduler.ReduceLROnPlateau(torch.optim.SGD([q], lr=1.0), **settings)
    lrs = []
    for value in _metrics(rng):
        ours.step(value)
        theirs.step(value)
        lrs.append(ours.get_last_lr()[0])
        assert lrs[-1] == theirs.get_last_lr()[0]
        assert ours.num_bad_epochs == theirs.num_bad_epochs and ours.best == theirs.best
    assert len(set(lrs)) > 1  # the schedule did reduce the learning rate


def test_reduce_lr_on_plateau_resumes_from_its_state(rng):
    values = _metrics(rng)

    def schedule():
        return optim.ReduceLROnPlateau(optim.SGD([mb.tensor(np.zeros(1), requires_grad=True)], lr=1.0),
                                       patience=1, cooldown=1)

    whole = schedule()
    for v in values:
        whole.step(v)
    first = schedule()
    for v in values[:20]:
        first.step(v)
    second = schedule()
    second.load_state_dict(first.state_dict())
    second.optimizer.load_state_dict(first.optimizer.state_dict())
    for v in values[20:]:
        second.step(v)
    assert second.get_last_lr() == whole.get_last_lr() and second.state_dict() == whole.state_dict()


def test_reduce_lr_on_plateau_bad_input():
    opt = optim.SGD([mb.tensor(np.zeros(1), requires_grad=True)], lr=1.0)
    for kwargs, match in [(dict(factor=1.0), "factor"), (dict(mode="mean"), "mode"),
                          (dict(threshold_mode="x"), "threshold_mode"), (dict(min_lr=[0, 0]), "min_lr")]:
        with pytest.raises(ValueError, match=match):
            optim.ReduceLROnPlateau(opt, **kwargs)
    with pytest.raises(TypeError):
        optim.ReduceLROnPlateau(object())

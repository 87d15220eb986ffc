"""nn.Ensemble: K networks trained as one equal the K trained one by one, step by step, in float64."""

import numpy as np
import pytest

import minibn as mb
import minibn.functional as F
from minibn import nn

SIZES = [20, 8, 8, 4]


def _nets(k=3, **options):
    return [nn.mlp(SIZES, dtype="float64", generator=mb.Generator(seed), **options) for seed in range(k)]


def _batches(rng, k, steps, n=16):
    """Each member's own batch at each step."""
    return [(rng.standard_normal((k, n, SIZES[0])), rng.integers(0, SIZES[-1], (k, n))) for _ in range(steps)]


@pytest.mark.parametrize("options, optimizer", [
    ({"norm": "bn"}, lambda ps: mb.optim.SGD(ps, lr=0.1, momentum=0.9, weight_decay=1e-3)),
    ({"norm": "bn", "norm_after_activation": True}, lambda ps: mb.optim.Adam(ps, lr=1e-2)),
    ({"norm": "lp", "norm_kwargs": {"p": 3}}, lambda ps: mb.optim.SGD(ps, lr=0.05)),
    ({"norm": None, "activation": "tanh"}, lambda ps: mb.optim.Adam(ps, lr=1e-2, weight_decay=1e-2)),
])
def test_training_the_ensemble_is_training_each_member_alone(options, optimizer, rng):
    k, steps = 3, 6
    alone, together = _nets(k, **options), nn.Ensemble(_nets(k, **options))
    opts = [optimizer(net.parameters()) for net in alone]
    opt = optimizer(together.parameters())
    for x, y in _batches(rng, k, steps):
        losses = []
        for j, (net, o) in enumerate(zip(alone, opts)):
            o.zero_grad()
            loss = F.cross_entropy(net(mb.tensor(x[j])), mb.tensor(y[j]))
            loss.backward()
            o.step()
            losses.append(float(loss.item()))
        opt.zero_grad()
        total = nn.ensemble_loss(together(mb.tensor(x)), mb.tensor(y))
        total.backward()
        opt.step()
        assert float(total.item()) == pytest.approx(sum(losses), rel=1e-12)
    for j, net in enumerate(alone):
        member = together.member(j)
        for (name, a), (_, b) in zip(net.state_dict().items(), member.state_dict().items()):
            np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-10, atol=1e-12, err_msg=f"member {j} {name}")
    together.eval()
    x = rng.standard_normal((k, 5, SIZES[0]))
    out = together(mb.tensor(x)).detach().numpy()
    for j, net in enumerate(alone):
        net.eval()
        np.testing.assert_allclose(out[j], net(mb.tensor(x[j])).detach().numpy(), rtol=1e-10, atol=1e-12)


def test_a_member_is_a_network_of_its_own():
    nets = _nets(2, norm="bn")
    together = nn.Ensemble(nets)
    member = together.member(1)
    member[0].weight._data[...] = 0  # a copy: the ensemble keeps its parameters
    np.testing.assert_array_equal(together.layers[0].weight.detach().numpy()[1], nets[1][0].weight.detach().numpy())
    with pytest.raises(IndexError, match="no member 2"):
        together.member(2)


def test_what_cannot_be_stacked_is_refused_naming_it():
    with pytest.raises(ValueError, match="network 1 is not built like network 0"):
        nn.Ensemble([nn.mlp([4, 3, 2], dtype="float64"), nn.mlp([4, 5, 2], dtype="float64")])
    with pytest.raises(ValueError, match="noisy BatchNorm1d"):
        nn.Ensemble([nn.mlp([4, 3, 2], norm="bn", norm_kwargs={"noise": True}) for _ in range(2)])
    with pytest.raises(ValueError, match=r"cannot stack layer 1 \(Dropout\)"):
        nn.Ensemble([nn.Sequential(nn.Linear(4, 3), nn.Dropout(0.5), nn.Linear(3, 2)) for _ in range(2)])
    with pytest.raises(TypeError, match="non-empty list of Sequential"):
        nn.Ensemble([])
    together = nn.Ensemble(_nets(2))
    with pytest.raises(ValueError, match=r"expected input of shape \(2, N, features\)"):
        together(mb.tensor(np.ones((3, 4, SIZES[0]))))
    with pytest.raises(ValueError, match="the same K and N"):
        nn.ensemble_loss(mb.tensor(np.ones((2, 4, 3))), mb.tensor(np.zeros((2, 5), dtype=np.int64)))

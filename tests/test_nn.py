"""Modules: registration, modes, state, saving, the MLP builder, folding BN, and bad input."""

import math

import numpy as np
import pytest

import minibn as mb
import minibn.functional as F
from minibn import nn
from minibn.gradcheck import gradcheck, gradgradcheck


def _bn_net(norm="bn", after=False, **norm_kwargs):
    net = nn.mlp([6, 5, 4, 3], norm=norm, norm_kwargs=norm_kwargs or None, dtype=mb.float64,
                 generator=mb.Generator(1), norm_after_activation=after)
    with mb.no_grad():  # non-trivial affine parameters, so that folding has something to fold
        for m in net:
            if isinstance(m, (nn.BatchNorm1d, nn.LpNorm1d)):
                m.weight.copy_(mb.tensor(np.linspace(0.5, 1.5, m.num_features)))
                m.bias.copy_(mb.tensor(np.linspace(-0.3, 0.3, m.num_features)))
    return net


def test_registration_and_traversal():
    net = _bn_net()
    names = [n for n, _ in net.named_parameters()]
    assert names == ["0.weight", "0.bias", "1.weight", "1.bias", "3.weight", "3.bias", "4.weight", "4.bias",
                     "6.weight", "6.bias"]
    assert [n for n, _ in net.named_buffers()] == [
        "1.running_mean", "1.running_var", "1.num_batches_tracked",
        "4.running_mean", "4.running_var", "4.num_batches_tracked"]
    assert len(list(net.children())) == 7 and len(list(net.modules())) == 8
    assert all(p.requires_grad and p.is_leaf for p in net.parameters())
    assert net.num_parameters() == 6 * 5 + 5 + 2 * 5 + 5 * 4 + 4 + 2 * 4 + 4 * 3 + 3
    assert isinstance(net[0], nn.Linear) and len(net) == 7 and len(net[:2]) == 2


def test_train_eval_and_zero_grad(rng):
    net = _bn_net()
    assert all(m.training for m in net.modules())
    net.eval()
    assert not any(m.training for m in net.modules())
    net.train()
    F.cross_entropy(net(mb.tensor(rng.standard_normal((8, 6)))), mb.tensor([0, 1, 2, 0, 1, 2, 0, 1])).backward()
    assert all(p.grad is not None for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())


def test_repr_reads_like_pytorch():
    text = repr(_bn_net())
    assert text.startswith("Sequential(\n  (0): Linear(in_features=6, out_features=5, bias=True)\n"
                           "  (1): BatchNorm1d(5, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)\n"
                           "  (2): ReLU()\n")
    assert "Parameter containing" in repr(nn.Linear(2, 2).weight)


def test_state_dict_save_and_load_round_trip(tmp_path, rng):
    net = _bn_net()
    net(mb.tensor(rng.standard_normal((8, 6))))  # move the running statistics
    path = tmp_path / "net.npz"
    net.save(path)
    assert path.exists() and not list(tmp_path.glob(".tmp-*"))
    other = _bn_net()
    other.load(path)
    for (k, a), (k2, b) in zip(net.state_dict().items(), other.state_dict().items()):
        assert k == k2
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_load_state_dict_errors():
    net = _bn_net()
    state = net.state_dict()
    bad = dict(state)
    bad["0.weight"] = np.zeros((4, 6))
    with pytest.raises(RuntimeError, match=r"size mismatch for 0.weight: copying a param with shape \(4, 6\) from "
                                           r"checkpoint, the shape in current model is \(5, 6\)"):
        net.load_state_dict(bad)
    missing = {k: v for k, v in state.items() if k != "6.bias"}
    with pytest.raises(RuntimeError, match=r'Missing key\(s\) in state_dict: "6.bias"'):
        net.load_state_dict(missing)
    extra = {**state, "head.weight": np.zeros(2)}
    with pytest.raises(RuntimeError, match=r'Unexpected key\(s\) in state_dict: "head.weight"'):
        net.load_state_dict(extra)
    keys = net.load_state_dict({**missing, "head.weight": np.zeros(2)}, strict=False)
    assert keys.missing_keys == ["6.bias"] and keys.unexpected_keys == ["head.weight"]
    assert net.load_state_dict(state) == ([], [])


def test_to_changes_dtype_in_place_and_keeps_counters():
    net = _bn_net()
    weight = net[0].weight
    net.to(mb.float32)
    assert net[0].weight is weight and weight.dtype == mb.float32
    assert net[1].num_batches_tracked.dtype == mb.int64
    assert net(mb.randn(4, 6)).dtype == mb.float32


def test_mlp_builder_options():
    net = nn.mlp([4, 3, 2], norm="lp", norm_kwargs={"p": 3, "centered": False}, activation="tanh",
                 init="kaiming_normal", zero_bias=True)
    assert isinstance(net[1], nn.LpNorm1d) and net[1].p == 3 and not net[1].centered
    assert isinstance(net[2], nn.Tanh) and len(net) == 4
    assert not net[0].bias.detach().numpy().any()
    assert isinstance(nn.mlp([4, 3, 2], norm="bn", norm_kwargs={"noise": True})[1].noise, nn.BatchNormNoise)
    with pytest.raises(ValueError, match="norm must be None or one of"):
        nn.mlp([4, 2], norm="layer")
    with pytest.raises(ValueError, match="activation must be one of"):
        nn.mlp([4, 2], activation="gelu")


def test_module_bad_input(rng):
    bn = nn.BatchNorm1d(3)
    with pytest.raises(ValueError, match=r"BatchNorm1d\(3\): expected input of shape \(N, 3\) or \(N, 3, L\), got \(4, 5\)"):
        bn(mb.ones(4, 5))
    with pytest.raises(ValueError, match="more than 1 value per channel when training"):
        bn(mb.ones(1, 3))
    lin = nn.Linear(4, 2)
    with pytest.raises(ValueError, match="input has 3 features"):
        lin(mb.ones(2, 3))
    bn.eval()
    bn.running_var.fill_(float("nan"))
    with pytest.raises(ValueError, match="running_var holds NaN or inf"):
        bn(mb.ones(2, 3))


@pytest.mark.parametrize("noise", [False, True])
def test_batchnorm1d_module_derivatives(noise, rng):
    bn = nn.BatchNorm1d(3, dtype=mb.float64, noise=nn.BatchNormNoise(seed=3) if noise else None)
    x = mb.tensor(rng.standard_normal((5, 3)), requires_grad=True)

    def f(t):
        bn.noise_generator = mb.Generator(3) if noise else None  # the same noise at every evaluation
        return bn(t)

    assert gradcheck(f, [x], method="richardson")  # the module's real parameters rule out complex step
    assert gradgradcheck(f, [x], method="richardson")


@pytest.mark.parametrize("p", [1, 2, math.inf])
def test_lpnorm1d_module_in_train_and_eval(p, rng):
    layer = nn.LpNorm1d(3, p=p, hoffer=True, dtype=mb.float64)
    x = mb.tensor(rng.standard_normal((6, 3)), requires_grad=True)
    assert gradcheck(layer, [x], method="richardson")
    layer.eval()
    assert gradgradcheck(layer, [x], method="richardson")
    assert layer.running_scale.numpy().min() > 0


def test_noise_is_only_added_in_training(rng):
    bn = nn.BatchNorm1d(3, noise=True, dtype=mb.float64)
    plain = nn.BatchNorm1d(3, dtype=mb.float64)
    x = mb.tensor(rng.standard_normal((5, 3)))
    assert not np.allclose(bn(x).detach().numpy(), plain(x).detach().numpy())
    bn.eval(), plain.eval()
    np.testing.assert_allclose(bn(x).detach().numpy(), plain(x).detach().numpy())


# -- folding batch norm into the plain network -------------------------------------------


@pytest.mark.parametrize("norm,kwargs", [("bn", {}), ("lp", {"p": 3}), ("lp", {"p": math.inf, "hoffer": True}),
                                         ("lp", {"p": 1, "centered": False, "mean_shift": False})])
def test_fold_batchnorm_equals_the_network_on_its_batch_only(norm, kwargs, rng):
    net = _bn_net(norm, **kwargs)
    x = mb.tensor(rng.standard_normal((10, 6)))
    plain = nn.fold_batchnorm(net, x)
    assert not any(isinstance(m, (nn.BatchNorm1d, nn.LpNorm1d)) for m in plain)
    assert len(plain) == 5
    expected = net(x).detach().numpy()
    got = plain(x).detach().numpy()
    assert np.abs(got - expected).max() <= 1e-12 * np.abs(expected).max()
    other = mb.tensor(rng.standard_normal((10, 6)))
    assert np.abs(plain(other).detach().numpy() - net(other).detach().numpy()).max() > 1e-3


@pytest.mark.parametrize("norm,kwargs", [("bn", {}), ("lp", {"p": 2})])
def test_a_normalization_after_the_activation_folds_into_the_next_linear_layer(norm, kwargs, rng):
    """W' (a h + c) + b' = (W' diag(a)) h + (b' + W' c), with a h + c the normalization on the batch."""
    net = _bn_net(norm, after=True, **kwargs)
    assert [type(m).__name__ for m in net] == ["Linear", "ReLU", type(net[2]).__name__, "Linear", "ReLU",
                                               type(net[2]).__name__, "Linear"]
    x = mb.tensor(rng.standard_normal((10, 6)))
    plain = nn.fold_batchnorm(net, x)
    assert [type(m).__name__ for m in plain] == ["Linear", "ReLU", "Linear", "ReLU", "Linear"]
    expected = net(x).detach().numpy()
    assert np.abs(plain(x).detach().numpy() - expected).max() <= 1e-12 * np.abs(expected).max()
    other = mb.tensor(rng.standard_normal((10, 6)))
    assert np.abs(plain(other).detach().numpy() - net(other).detach().numpy()).max() > 1e-3
    if norm == "bn":
        h = np.maximum(x.numpy() @ net[0].weight.detach().numpy().T + net[0].bias.detach().numpy(), 0)
        a = net[2].weight.detach().numpy() / np.sqrt(h.var(0) + 1e-5)
        c = net[2].bias.detach().numpy() - a * h.mean(0)
        w, b = net[3].weight.detach().numpy(), net[3].bias.detach().numpy()
        np.testing.assert_allclose(plain[2].weight.detach().numpy(), w * a[None, :], rtol=1e-13)
        np.testing.assert_allclose(plain[2].bias.detach().numpy(), b + w @ c, rtol=1e-12, atol=1e-14)
        np.testing.assert_array_equal(plain[0].weight.detach().numpy(), net[0].weight.detach().numpy())


def test_fold_batchnorm_formula(rng):
    """W_eq = (gamma/sigma) W and b_eq = (gamma/sigma)(b - mu) + beta, seed 000 sec. 3."""
    net = _bn_net()
    x = mb.tensor(rng.standard_normal((10, 6)))
    plain = nn.fold_batchnorm(net, x)
    h = x.numpy() @ net[0].weight.detach().numpy().T + net[0].bias.detach().numpy()
    mu, sigma = h.mean(0), np.sqrt(h.var(0) + 1e-5)
    gamma, beta = net[1].weight.detach().numpy(), net[1].bias.detach().numpy()
    np.testing.assert_allclose(plain[0].weight.detach().numpy(),
                               (gamma / sigma)[:, None] * net[0].weight.detach().numpy(), rtol=1e-13)
    np.testing.assert_allclose(plain[0].bias.detach().numpy(),
                               gamma / sigma * (net[0].bias.detach().numpy() - mu) + beta, rtol=1e-12)


def test_fold_batchnorm_leaves_the_model_alone(rng):
    net = _bn_net()
    before = {k: v.numpy().copy() for k, v in net.state_dict().items()}
    nn.fold_batchnorm(net, mb.tensor(rng.standard_normal((10, 6))))
    for k, v in net.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), before[k])


def test_fold_batchnorm_refuses_what_it_cannot_fold():
    with pytest.raises(ValueError, match=r"layer 0 \(BatchNorm1d\) has no Linear layer before it"):
        nn.fold_batchnorm(nn.Sequential(nn.BatchNorm1d(3), nn.Linear(3, 2)), mb.randn(4, 3))
    with pytest.raises(ValueError, match=r"layer 2 \(BatchNorm1d\) follows an activation and no Linear layer"):
        nn.fold_batchnorm(nn.Sequential(nn.Linear(3, 3), nn.ReLU(), nn.BatchNorm1d(3)), mb.randn(4, 3))
    with pytest.raises(ValueError, match="noise is not an affine map"):
        nn.fold_batchnorm(nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3, noise=True)), mb.randn(4, 3))

    class Square(nn.Module):
        def forward(self, x):
            return x * x

    with pytest.raises(ValueError, match=r"cannot fold layer 1 \(Square\)"):
        nn.fold_batchnorm(nn.Sequential(nn.Linear(3, 3), Square()), mb.randn(4, 3))

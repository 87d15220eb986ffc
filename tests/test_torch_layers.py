"""Layers, losses and optimizers against PyTorch in float64 (relative error <= 1e-10)."""

import numpy as np
import pytest

import minibn as mb
import minibn.functional as F

from .conftest import requires_torch, torch

pytestmark = requires_torch
RTOL = 1e-10


def assert_close(a, b):
    a = a.detach().numpy() if hasattr(a, "detach") else np.asarray(a)
    b = b.detach().numpy() if hasattr(b, "detach") else np.asarray(b)
    assert a.shape == b.shape
    scale = max(np.abs(b).max(initial=0.0), 1e-300)
    err = np.abs(a - b).max(initial=0.0) / scale
    assert err <= RTOL, f"relative error {err:.2e}"


def _pair(array):
    return mb.tensor(array, requires_grad=True), torch.tensor(array, requires_grad=True)


def _first_and_second(m_out, m_in, t_out, t_in, rng):
    u = rng.standard_normal(tuple(m_out.shape))
    m_g = mb.grad(m_out, m_in, mb.tensor(u), create_graph=True)
    t_g = torch.autograd.grad(t_out, t_in, torch.tensor(u), create_graph=True)
    for a, b in zip(m_g, t_g):
        assert_close(a, b)
    vs = [rng.standard_normal(tuple(x.shape)) for x in m_in]
    m_h = mb.grad(sum((g * mb.tensor(v)).sum() for g, v in zip(m_g, vs)), m_in, allow_unused=True)
    t_h = torch.autograd.grad(sum((g * torch.tensor(v)).sum() for g, v in zip(t_g, vs)), t_in,
                              allow_unused=True)
    for a, b, x in zip(m_h, t_h, m_in):
        if b is None:
            assert a is None or not a.numpy().any()
        else:
            assert_close(np.zeros(x.shape) if a is None else a, b)


@pytest.mark.parametrize("momentum", [0.1, None])
def test_batchnorm1d_module_over_training_steps_and_eval(momentum, rng):
    m_bn = mb.nn.BatchNorm1d(4, momentum=momentum, dtype=mb.float64)
    t_bn = torch.nn.BatchNorm1d(4, momentum=momentum, dtype=torch.float64)
    with torch.no_grad():
        t_bn.weight.copy_(torch.tensor(1 + 0.2 * rng.standard_normal(4)))
        t_bn.bias.copy_(torch.tensor(0.2 * rng.standard_normal(4)))
    m_bn.load_state_dict({k: v.detach().numpy() for k, v in t_bn.state_dict().items()})
    for step in range(4):
        a = rng.standard_normal((10, 4)) * (step + 1) + step
        (mx, tx) = _pair(a)
        m_out, t_out = m_bn(mx), t_bn(tx)
        assert_close(m_out, t_out)
        u = rng.standard_normal((10, 4))
        m_out.backward(mb.tensor(u))
        t_out.backward(torch.tensor(u))
        for m, t in ((mx, tx), (m_bn.weight, t_bn.weight), (m_bn.bias, t_bn.bias)):
            assert_close(m.grad, t.grad)
        m_bn.zero_grad()
        t_bn.zero_grad()
        assert_close(m_bn.running_mean, t_bn.running_mean)
        assert_close(m_bn.running_var, t_bn.running_var)
        assert m_bn.num_batches_tracked.item() == t_bn.num_batches_tracked.item()
    m_bn.eval()
    t_bn.eval()
    a = rng.standard_normal((3, 4))
    assert_close(m_bn(mb.tensor(a)), t_bn(torch.tensor(a)))


def test_torch_batch_norm_third_derivative_is_wrong_and_minibn_right(rng):
    """PyTorch saves mean and 1/sigma as constants for double backward: its third derivative
    of batch norm disagrees with minibn's, and finite differences side with minibn."""
    from minibn.gradcheck import gradgradcheck, vjp_fn

    a, u, v, w = (rng.standard_normal((6, 3)) for _ in range(4))

    def third(lib, bn, x):
        tensor = mb.tensor if lib is mb else torch.tensor
        grad = mb.grad if lib is mb else torch.autograd.grad
        (g,) = grad(((bn(x) * tensor(u)).sum(),), (x,), create_graph=True)
        (h,) = grad(((g * tensor(v)).sum(),), (x,), create_graph=True)
        (t,) = grad(((h * tensor(w)).sum(),), (x,))
        return h.detach().numpy(), t.detach().numpy()

    mh, mt = third(mb, lambda x: F.batch_norm(x, None, None, training=True), mb.tensor(a, requires_grad=True))
    th, tt = third(torch, lambda x: torch.nn.functional.batch_norm(x, None, None, training=True),
                   torch.tensor(a, requires_grad=True))
    assert_close(mh, th)  # second order agrees
    assert np.abs(mt - tt).max() > 1e-2 * np.abs(mt).max()  # third order does not
    x = mb.tensor(a, requires_grad=True)
    second, inputs = vjp_fn(lambda t: F.batch_norm(t, None, None, training=True), [x])
    assert gradgradcheck(second, inputs, method="complex")


def test_cross_entropy(rng):
    (mx, tx) = _pair(rng.standard_normal((6, 5)))
    target = rng.integers(0, 5, 6)
    for reduction in ("mean", "sum", "none"):
        m_out = F.cross_entropy(mx, mb.tensor(target), reduction=reduction)
        t_out = torch.nn.functional.cross_entropy(tx, torch.tensor(target), reduction=reduction)
        assert_close(m_out, t_out)
        _first_and_second(m_out, [mx], t_out, [tx], rng)


def _mlp_pair(rng):
    """A 5-7-6-3 tanh MLP in both libraries with the same weights.

    No batch norm here: the bias of a linear layer followed by batch norm has
    an exactly zero gradient, which both libraries compute as rounding noise,
    and Adam divides that noise by its own square root: a comparison of noise.
    """
    m_net = mb.nn.mlp([5, 7, 6, 3], activation="tanh", dtype=mb.float64, generator=mb.Generator(0))
    t_net = torch.nn.Sequential(
        torch.nn.Linear(5, 7), torch.nn.Tanh(), torch.nn.Linear(7, 6), torch.nn.Tanh(), torch.nn.Linear(6, 3),
    ).double()
    t_net.load_state_dict({k: torch.tensor(v.numpy()) for k, v in m_net.state_dict().items()})
    return m_net, t_net


@pytest.mark.parametrize("opt", [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.1, momentum=0.9)),
    ("SGD", dict(lr=0.1, momentum=0.9, dampening=0.3, weight_decay=0.01)),
    ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01)),
    ("Adam", dict(lr=0.01)),
    ("Adam", dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.05)),
], ids=lambda o: f"{o[0]}-{'-'.join(f'{k}={v}' for k, v in o[1].items())}")
def test_optimizers_train_a_small_mlp_like_pytorch(opt, rng):
    name, kwargs = opt
    m_net, t_net = _mlp_pair(rng)
    m_opt = getattr(mb.optim, name)(m_net.parameters(), **kwargs)
    t_opt = getattr(torch.optim, name)(t_net.parameters(), **kwargs)
    x, y = rng.standard_normal((16, 5)), rng.integers(0, 3, 16)
    losses = _train_alongside(m_net, t_net, m_opt, t_opt, x, y, steps=5)
    assert losses[-1] < losses[0]  # the optimizer trains, in both libraries alike (checked inside)


def _train_alongside(m_net, t_net, m_opt, t_opt, x, y, steps, check_grads=None):
    """Cross-entropy steps on (x, y) in both libraries: the losses agree at every step (and the
    gradients, through ``check_grads(m_net, t_net)``), and so does every entry of the state dicts.
    Returns minibn's loss at each step."""
    losses = []
    for _ in range(steps):
        m_opt.zero_grad()
        t_opt.zero_grad()
        m_loss = F.cross_entropy(m_net(mb.tensor(x)), mb.tensor(y))
        t_loss = torch.nn.functional.cross_entropy(t_net(torch.tensor(x)), torch.tensor(y))
        assert_close(m_loss, t_loss)
        losses.append(m_loss.item())
        m_loss.backward()
        t_loss.backward()
        if check_grads is not None:
            check_grads(m_net, t_net)
        m_opt.step()
        t_opt.step()
    t_state = t_net.state_dict()
    for key, value in m_net.state_dict().items():
        assert_close(value, t_state[key])
    return losses


def test_fused_bn_relu_network_trains_like_pytorch(rng):
    """nn.Sequential's fused Linear -> BatchNorm1d -> ReLU against PyTorch's three modules: the loss,
    every gradient except the linear biases before batch norm (exactly 0, so both libraries return
    rounding noise; checked against 0 instead), and the running statistics after SGD steps."""
    m_net = mb.nn.mlp([5, 7, 6, 3], norm="bn", dtype=mb.float64, generator=mb.Generator(0))
    for p in m_net.parameters():
        p._data[:] = rng.standard_normal(p.shape)
    layers = [torch.nn.Linear(5, 7), torch.nn.BatchNorm1d(7), torch.nn.ReLU(),
              torch.nn.Linear(7, 6), torch.nn.BatchNorm1d(6), torch.nn.ReLU(), torch.nn.Linear(6, 3)]
    t_net = torch.nn.Sequential(*layers).double()
    t_net.load_state_dict({k: torch.tensor(v.numpy()) for k, v in m_net.state_dict().items()})
    m_opt, t_opt = mb.optim.SGD(m_net.parameters(), lr=0.1), torch.optim.SGD(t_net.parameters(), lr=0.1)
    x, y = rng.standard_normal((16, 5)) + 1.0, rng.integers(0, 3, 16)

    def check_grads(m_net, t_net):
        for (name, m_p), t_p in zip(m_net.named_parameters(), t_net.parameters()):
            if name in ("0.bias", "3.bias"):
                assert np.abs(m_p.grad.numpy()).max() < 1e-12
            else:
                assert_close(m_p.grad, t_p.grad)

    _train_alongside(m_net, t_net, m_opt, t_opt, x, y, steps=3, check_grads=check_grads)

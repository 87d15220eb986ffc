"""Fusion in Sequential: Linear -> BatchNorm1d -> ReLU as two nodes, with the values and
derivatives of the three-node network."""

import copy

import numpy as np
import pytest

import minibn as mb
import minibn.functional as F
from minibn import kernels, nn
from minibn.gradcheck import gradcheck, gradgradcheck
from minibn.nn.fusion import fused_length


def _network(rng, dtype=mb.float64):
    net = nn.mlp([6, 5, 5, 3], norm="bn", dtype=dtype, generator=mb.Generator(0))
    for m in net:  # nonzero biases and affine parameters, so that every fused term matters
        for p in m.parameters():
            p._data[:] = rng.standard_normal(p.shape)
    return net


def _run(net, x, upstream):
    """Output, parameter gradients and running statistics after one forward and backward."""
    for p in net.parameters():
        p.grad = None
    out = net(x)
    (out * upstream).sum().backward()
    return ([out.detach().numpy()] + [p.grad.numpy() for p in net.parameters()]
            + [b.numpy().copy() for b in net.buffers()])


@pytest.fixture(params=["numpy", "numba"])
def kernel_set(request):
    if request.param == "numba":
        pytest.importorskip("numba", reason="the fused CPU kernels need numba")
    mb.set_kernels(request.param)
    yield request.param
    kernels._choice = None


def test_fused_network_matches_the_unfused_one(kernel_set, rng):
    net = _network(rng)
    twin = copy.deepcopy(net)
    twin.fuse = False
    x = mb.tensor(rng.standard_normal((16, 6)) + 2.0)
    upstream = mb.tensor(rng.standard_normal((16, 3)))
    fused, unfused = _run(net, x, upstream), _run(twin, x, upstream)
    assert len(fused) == len(unfused) == 1 + 10 + 6  # output, 10 parameters, 6 buffers
    for a, b in zip(fused, unfused):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    # the graph really is fused: BatchNormReLU nodes, no Relu node
    out = net(x)
    names, stack = set(), [out.grad_fn]
    while stack:
        node = stack.pop()
        names.add(node.name)
        stack += [e for e in node.edges if e is not None and not isinstance(e, mb.Tensor)]
    assert "BatchNormReLU" in names and "Relu" not in names


def test_fused_network_second_derivatives_match(rng):
    net = _network(rng)
    twin = copy.deepcopy(net)
    twin.fuse = False
    x = mb.tensor(rng.standard_normal((16, 6)))
    y = mb.tensor(rng.integers(0, 3, 16))
    vs = [mb.tensor(rng.standard_normal(p.shape)) for p in net.parameters()]

    def hvp(model):
        params = list(model.parameters())
        gs = mb.grad(F.cross_entropy(model(x), y), params, create_graph=True)
        return [h.numpy() for h in mb.grad(sum((g * v).sum() for g, v in zip(gs, vs)), params)]

    for a, b in zip(hvp(net), hvp(twin)):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("activation", [None, "relu"])
def test_fused_node_derivatives(activation, rng):
    x = mb.tensor(rng.standard_normal((7, 3)), requires_grad=True)
    gamma = mb.tensor(1 + 0.3 * rng.standard_normal(3), requires_grad=True)
    beta = mb.tensor(0.3 * rng.standard_normal(3), requires_grad=True)
    shift = mb.tensor(rng.standard_normal(3), requires_grad=True)
    upstream = mb.tensor(rng.standard_normal((7, 3)))

    def f(x, gamma, beta, shift):
        return F.batch_norm(x, None, None, gamma, beta, training=True, input_bias=shift, activation=activation)

    assert gradcheck(f, [x, gamma, beta, shift], [upstream], method="richardson")
    assert gradgradcheck(f, [x, gamma, beta, shift], [upstream], method="richardson")


def test_input_bias_moves_the_running_mean_only(rng):
    x = mb.tensor(rng.standard_normal((8, 4)))
    shift = mb.tensor(rng.standard_normal(4))
    stats = {}
    for name, inp, bias in (("fused", x, shift), ("added", x + shift, None)):
        rm, rv = mb.zeros(4, dtype=mb.float64), mb.ones(4, dtype=mb.float64)
        y = F.batch_norm(inp, rm, rv, training=True, input_bias=bias, activation="relu")
        stats[name] = (y.numpy(), rm.numpy(), rv.numpy())
        # evaluation mode with the same statistics: input_bias is added before normalizing
        e = F.batch_norm(inp, rm, rv, training=False, input_bias=bias, activation="relu")
        stats[name] += (e.numpy(),)
    for a, b in zip(stats["fused"], stats["added"]):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_which_runs_fuse():
    lin, bn, relu = nn.Linear(4, 4), nn.BatchNorm1d(4), nn.ReLU()
    x2, x3 = mb.zeros(2, 4), mb.zeros(2, 4, 4)
    assert fused_length([lin, bn, relu], 0, x2) == 3
    assert fused_length([lin, bn, nn.Tanh()], 0, x2) == 2
    assert fused_length([bn, relu], 0, x2) == 2
    assert fused_length([lin, relu], 0, x2) == 1
    assert fused_length([lin], 0, x2) == 1
    assert fused_length([lin, bn, relu], 0, x3) == 1  # the bias runs along the last axis, not the channels
    bn.eval()
    assert fused_length([lin, bn, relu], 0, x2) == 1  # running statistics: nothing to gain
    noisy = nn.BatchNorm1d(4, noise=True)
    assert fused_length([lin, noisy, relu], 0, x2) == 1

    class MyBatchNorm(nn.BatchNorm1d):
        pass

    assert fused_length([lin, MyBatchNorm(4), relu], 0, x2) == 1  # a subclass may change forward
    assert fused_length([nn.BatchNorm1d(4), relu], 0, x3) == 2  # (N, C, L): BN and ReLU still fuse


def test_a_replaced_forward_is_run_as_written(rng, monkeypatch):
    """Instrumenting a layer (its forward replaced on the instance or on the class) turns fusion off
    for it, so the instrument sees every call."""
    net = _network(rng)
    x = mb.tensor(rng.standard_normal((4, 6)))
    calls = []
    plain = net(x).detach().numpy()
    relu = net[2]
    relu.forward = lambda t: calls.append("relu") or t.tanh()
    out = net(x).detach().numpy()
    assert calls == ["relu"] and not np.allclose(out, plain)
    del relu.forward
    original = nn.Linear.forward
    monkeypatch.setattr(nn.Linear, "forward", lambda self, t: calls.append("linear") or original(self, t))
    net(x)
    assert calls.count("linear") == 3


def test_stages_report_block_outputs(rng):
    net = _network(rng)
    x = mb.tensor(rng.standard_normal((4, 6)))
    fused = [i for i, _ in net.stages(x)]
    net.fuse = False
    assert fused == [2, 5, 6]
    assert [i for i, _ in net.stages(x)] == list(range(7))


def test_fused_float32_training_matches_unfused(rng):
    """float32 through the fused kernels, against the unfused float64 network."""
    net = _network(rng, mb.float32)
    twin = copy.deepcopy(net).to(mb.float64)
    twin.fuse = False
    x = rng.standard_normal((64, 6))
    upstream = rng.standard_normal((64, 3))
    fused = _run(net, mb.tensor(x.astype(np.float32)), mb.tensor(upstream.astype(np.float32)))
    exact = _run(twin, mb.tensor(x), mb.tensor(upstream))
    for a, b in zip(fused, exact):
        assert np.abs(a - b).max() <= 1e-4 * max(np.abs(b).max(), 1.0)

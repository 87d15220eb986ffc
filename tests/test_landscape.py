"""minibn.landscape: filter normalization, slices of the loss, and their figures."""

import numpy as np
import pytest

import minibn as mb
import minibn.functional as F
from minibn import landscape as L
from minibn import nn


def _net(norm, seed=0):
    net = nn.mlp([6, 5, 4, 3], norm=norm, dtype="float64", generator=mb.Generator(seed))
    if norm:
        with mb.no_grad():
            net(mb.randn(32, 6, dtype=mb.float64, generator=mb.Generator(9)))  # running statistics off their start
    return net


@pytest.fixture
def data(rng):
    return mb.tensor(rng.standard_normal((40, 6))), mb.tensor(rng.integers(0, 3, 40))


def _direct(net, point, x, y, mode="eval", batch_size=None):
    """Loss and accuracy with the parameters set to ``point``, computed plainly."""
    saved, was_training = L.parameters_of(net), net.training
    buffers = [b._data.copy() for b in net.buffers()]
    for p, v in zip(net.parameters(), point):
        p._data[...] = v
    net.train(mode == "train")
    with mb.no_grad():
        batches = [(0, len(x))] if batch_size is None else [(i, min(i + batch_size, len(x)))
                                                            for i in range(0, len(x), batch_size)]
        logits = [net(x[lo:hi]) for lo, hi in batches]
        loss = sum(F.cross_entropy(lg, y[lo:hi], reduction="sum").item() for lg, (lo, hi) in zip(logits, batches))
        correct = sum((lg.argmax(1) == y[lo:hi]).sum().item() for lg, (lo, hi) in zip(logits, batches))
    for p, v in zip(net.parameters(), saved):
        p._data[...] = v
    for b, v in zip(net.buffers(), buffers):
        b._data[...] = v
    net.train(was_training)
    return loss / len(x), correct / len(x)


def test_filter_normalization_gives_each_row_its_weights_norm():
    net = _net("bn")
    d = L.filter_normalized_direction(net, mb.Generator(1))
    for p, di in zip(net.parameters(), d):
        w = p.detach().numpy()
        if w.ndim == 2:
            np.testing.assert_allclose(np.linalg.norm(di, axis=1), np.linalg.norm(w, axis=1), rtol=1e-12)
            assert not np.allclose(di / np.linalg.norm(di, axis=1, keepdims=True), w / np.linalg.norm(w, axis=1,
                                                                                                    keepdims=True))
        else:
            np.testing.assert_array_equal(di, 0)  # biases, gamma, beta: no move by default
    kept = L.filter_normalized_direction(net, mb.Generator(1), ignore_1d=False)
    for p, di in zip(net.parameters(), kept):
        if p.ndim == 1:
            np.testing.assert_array_equal(di, p.detach().numpy())
    again = L.filter_normalized_direction(net, mb.Generator(1))
    for a, b in zip(d, again):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("norm", [None, "bn"])
@pytest.mark.parametrize("mode, batch_size", [("eval", 10_000), ("eval", 7), ("train", 10), ("train", 40)])
def test_surface_points_equal_the_loss_computed_directly(norm, mode, batch_size, data):
    x, y = data
    net = _net(norm)
    d1, d2 = (L.filter_normalized_direction(net, mb.Generator(s), ignore_1d=False) for s in (1, 2))
    theta, buffers = L.parameters_of(net), [b._data.copy() for b in net.buffers()]
    alphas, betas = np.linspace(-1, 1, 5), np.array([-0.5, 0.0, 0.75])
    s = L.surface(net, d1, d2, alphas, betas, x, y, mode=mode, batch_size=batch_size)
    assert net.training  # the mode it was in
    assert s.loss.shape == (3, 5) and s.accuracy.shape == (3, 5)
    for i, b in enumerate(betas):
        for j, a in enumerate(alphas):
            point = [t + a * u + b * v for t, u, v in zip(theta, d1, d2)]
            loss, accuracy = _direct(net, point, x, y, mode, None if mode == "eval" else batch_size)
            np.testing.assert_allclose(s.loss[i, j], loss, rtol=1e-12)
            assert s.accuracy[i, j] == accuracy
    for p, t in zip(net.parameters(), theta):  # the parameters and running statistics are back
        np.testing.assert_array_equal(p.detach().numpy(), t)
    for b, v in zip(net.buffers(), buffers):
        np.testing.assert_array_equal(b.numpy(), v)


def test_a_network_that_is_not_a_sequential_takes_the_general_path(data):
    x, y = data

    class Wrapped(nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = _net(None)

        def forward(self, t):
            return self.inner(t)

    wrapped = Wrapped()
    d = L.filter_normalized_direction(wrapped, mb.Generator(3))
    ours = L.line(wrapped, d, [-0.5, 0.3, 1.0], x, y)
    plain = L.line(wrapped.inner, d, [-0.5, 0.3, 1.0], x, y)
    np.testing.assert_allclose(ours.loss, plain.loss, rtol=1e-12)


def test_interpolation_ends_at_its_two_points(data):
    x, y = data
    net = _net("bn")
    start = L.parameters_of(net)
    end = [t + 0.3 * u for t, u in zip(start, L.random_direction(net, mb.Generator(4)))]
    c = L.interpolation(net, start, end, [0.0, 0.5, 1.0, 1.5], x, y)
    assert c.loss[0] == pytest.approx(_direct(net, start, x, y)[0], rel=1e-12)
    assert c.loss[2] == pytest.approx(_direct(net, end, x, y)[0], rel=1e-12)
    middle = [0.5 * (a + b) for a, b in zip(start, end)]
    assert c.loss[1] == pytest.approx(_direct(net, middle, x, y)[0], rel=1e-12)


def test_bad_arguments_are_refused(data):
    x, y = data
    net = _net(None)
    d = L.random_direction(net)
    with pytest.raises(ValueError, match="mode must be 'eval' or 'train'"):
        L.line(net, d, [0.0], x, y, mode="test")
    with pytest.raises(ValueError, match="one array per parameter: got 2 for 6"):
        L.line(net, d[:2], [0.0], x, y)
    with pytest.raises(ValueError, match=r"direction entry 0 has shape \(6, 5\)"):
        L.line(net, [a.T for a in d], [0.0], x, y)
    with pytest.raises(ValueError, match=r"batch_size must be >= 1 \(>= 2 in train mode\)"):
        L.line(net, d, [0.0], x, y, mode="train", batch_size=1)
    with pytest.raises(ValueError, match="same number"):
        L.line(net, d, [0.0], x, y[:3])


def test_figures_are_written(data, tmp_path):
    x, y = data
    net = _net("bn")
    d1, d2 = (L.filter_normalized_direction(net, mb.Generator(s)) for s in (1, 2))
    s = L.surface(net, d1, d2, np.linspace(-1, 1, 4), np.linspace(-1, 1, 3), x, y)
    curve = L.line(net, d1, np.linspace(-1, 1, 5), x, y)
    L.plot_surfaces({"bn": s, "again": s}, tmp_path / "contour.png", log=True)
    L.plot_surfaces({"bn": s}, tmp_path / "surface.png", kind="3d")
    L.plot_lines({"bn": curve}, tmp_path / "line.png")
    for name in ("contour.png", "surface.png", "line.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="kind must be"):
        L.plot_surfaces({"bn": s}, tmp_path / "x.png", kind="wire")


def test_a_linear_subclass_first_layer_runs_as_written(data):
    x, y = data

    class Doubled(nn.Linear):
        def forward(self, t):
            return super().forward(t) * 2

    net = _net(None)
    odd = nn.Sequential(Doubled(6, 5, dtype="float64", generator=mb.Generator(0)), *list(net)[1:])
    d = L.random_direction(odd, mb.Generator(5))
    c = L.line(odd, d, [0.0, 0.5], x, y)
    assert c.loss[0] == pytest.approx(_direct(odd, L.parameters_of(odd), x, y)[0], rel=1e-12)


def test_a_last_train_mode_batch_of_one_sample_is_refused(data):
    x, y = data
    net = _net("bn")
    with pytest.raises(ValueError, match="last batch of one sample"):
        L.line(net, L.random_direction(net), [0.0], x[:9], y[:9], mode="train", batch_size=4)

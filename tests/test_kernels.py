"""Fused kernels against their NumPy reference; the kernel choice; first-order path vs graph path."""

import math

import numpy as np
import pytest

import minibn as mb
import minibn.functional as F
from minibn import kernels
from minibn.kernels import batchnorm, cross_entropy, lpnorm, relu

pytest.importorskip("numba", reason="the fused CPU kernels need numba")

SHAPES = [(7, 1), (3, 300), (2, 5), (64, 33), (2003, 3)]  # the last: many row blocks, a partial one
BATCHED = [s for s in SHAPES if s[0] >= 2]  # the kernels that need two samples or more
TOL = {np.float64: 1e-12, np.float32: 1e-5}


def assert_matches(got, want, dtype, dx_scale=None, n_scaled=1):
    """Relative to each result's size; for the first ``n_scaled`` results (gradients with respect to
    arrays), at least the size of the terms they are the difference of (a batch of 2 makes the
    projections of batch norm nearly cancel to 0)."""
    for i, (g, w) in enumerate(zip(got, want)):
        assert g.dtype == w.dtype == np.dtype(dtype)
        scale = max(np.abs(w).max(), dx_scale if (i < n_scaled and dx_scale is not None) else 0, 1e-30)
        assert np.abs(g - w).max() <= TOL[dtype] * scale, f"{np.abs(g - w).max() / scale:.2e}"


def _data(rng, shape, dtype):
    x = (rng.standard_normal(shape) * 2 + 0.5).astype(dtype)
    g = rng.standard_normal(shape).astype(dtype)
    gamma = (1 + 0.3 * rng.standard_normal(shape[1])).astype(dtype)
    beta = (0.3 * rng.standard_normal(shape[1])).astype(dtype)
    return x, g, gamma, beta


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("relu", [False, True])
def test_batch_norm_kernels(shape, dtype, affine, relu, rng):
    x, g, gamma, beta = _data(rng, shape, dtype)
    gamma, beta = (gamma, beta) if affine else (None, None)
    ref = batchnorm.reference.forward(x, gamma, beta, 1e-5, relu)
    fused = batchnorm.numba_cpu.forward(x, gamma, beta, 1e-5, relu)
    assert_matches(fused, ref, dtype)
    terms = np.abs(g * ref[3] * (1 if gamma is None else gamma)).max()
    # both backwards mask by the same forward output, as the layer does
    got = batchnorm.numba_cpu.backward(g, x, ref[1], ref[3], gamma, fused[0] if relu else None, True)
    want = batchnorm.reference.backward(g, x, ref[1], ref[3], gamma, fused[0] if relu else None, True)
    assert_matches(got, want, dtype, terms * x.shape[0], n_scaled=4)


@pytest.mark.parametrize("kernel_set", ["numpy", "numba"])
def test_relu_masks_follow_pytorch(kernel_set):
    """The gradient is zeroed where the output is <= 0, even where it is inf or NaN (PyTorch's
    threshold_backward), in the plain ReLU and in batch norm's ReLU epilogue."""
    y = np.array([[0.0, 1.0], [2.0, 0.0], [0.5, 3.0]])
    g = np.array([[np.inf, 1.0], [2.0, np.nan], [3.0, 4.0]])
    mb.set_kernels(kernel_set)
    try:
        np.testing.assert_array_equal(kernels.relu_backward(g, y), [[0, 1], [2, 0], [3, 4]])
        x = np.array([[-1.0, 2.0], [1.0, -2.0], [0.5, 3.0]])
        _, mean, _, invstd = kernels.batch_norm_forward(x, None, None, 1e-5)
        fused = kernels.batch_norm_backward(g, x, mean, invstd, None, y)
        plain = kernels.batch_norm_backward(kernels.relu_backward(g, y), x, mean, invstd, None)
    finally:
        kernels._choice = None
    for a, b in zip(fused[:3], plain[:3]):
        assert np.isfinite(a).all()
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("centered_stats", [True, False])
def test_fixed_statistics_kernels(shape, dtype, centered_stats, rng):
    x, g, gamma, beta = _data(rng, shape, dtype)
    center = x.mean(0) if centered_stats else None
    scale = (x.std(0) + 0.5).astype(dtype)
    assert_matches([batchnorm.numba_cpu.affine_forward(x, center, scale, gamma, beta)],
           [batchnorm.reference.affine_forward(x, center, scale, gamma, beta)], dtype)
    assert_matches(batchnorm.numba_cpu.affine_backward(g, x, center, scale, gamma), batchnorm.reference.affine_backward(g, x, center, scale, gamma),
           dtype)


@pytest.mark.parametrize("shape", BATCHED)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("p", [1, 1.5, 2, 3, math.inf])
@pytest.mark.parametrize("centered,mean_shift", [(True, True), (False, True), (False, False), (True, False)])
def test_lp_norm_kernels(shape, dtype, p, centered, mean_shift, rng):
    x, g, gamma, beta = _data(rng, shape, dtype)
    c = 1.3
    ref = lpnorm.reference.forward(x, gamma, beta, p, c, 1e-5, centered, mean_shift)
    assert_matches(lpnorm.numba_cpu.forward(x, gamma, beta, p, c, 1e-5, centered, mean_shift), ref, dtype)
    mu, s, S = ref[1:]
    assert_matches(lpnorm.numba_cpu.backward(g, x, gamma, mu, s, S, p, c, centered, mean_shift),
           lpnorm.reference.backward(g, x, gamma, mu, s, S, p, c, centered, mean_shift), dtype,
           np.abs(g * gamma / s).max())


def test_lp_kernel_ties_at_infinity():
    x = np.array([[2.0], [-2.0], [0.5], [-0.5]])
    g = np.array([[1.0], [0.3], [-0.2], [0.1]])
    y, mu, s, S = lpnorm.reference.forward(x, None, None, math.inf, 1.0, 0.0, True, True)
    assert_matches(lpnorm.numba_cpu.backward(g, x, None, mu, s, S, math.inf, 1.0, True, True),
           lpnorm.reference.backward(g, x, None, mu, s, S, math.inf, 1.0, True, True), np.float64)


@pytest.mark.parametrize("p", [1, 2, 3, math.inf])
def test_lp_first_order_path_equals_the_graph_path(p, rng):
    x = mb.tensor(rng.standard_normal((6, 3)), requires_grad=True)
    w = mb.tensor(1 + 0.2 * rng.standard_normal(3), requires_grad=True)
    u = mb.tensor(rng.standard_normal((6, 3)))
    fast = mb.grad(F.lp_norm(x, p, weight=w, training=True), [x, w], u)
    graph = mb.grad(F.lp_norm(x, p, weight=w, training=True), [x, w], u, create_graph=True)
    for a, b in zip(fast, graph):
        np.testing.assert_allclose(a.numpy(), b.detach().numpy(), rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("kernel_set", ["numpy", "numba"])
def test_layers_agree_across_kernel_sets(kernel_set, rng):
    x = mb.tensor(rng.standard_normal((8, 4)).astype(np.float32), requires_grad=True)
    u = mb.tensor(rng.standard_normal((8, 4)).astype(np.float32))
    mb.set_kernels("numpy")
    want = [mb.grad(f(x), x, u)[0].numpy() for f in _layers()]
    mb.set_kernels(kernel_set)
    try:
        got = [mb.grad(f(x), x, u)[0].numpy() for f in _layers()]
    finally:
        kernels._choice = None
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def _layers():
    rm, rv = mb.zeros(4), mb.ones(4) * 2
    shift = mb.tensor(np.linspace(-1, 1, 4).astype(np.float32))
    return [lambda t: F.batch_norm(t, None, None, training=True),
            lambda t: F.batch_norm(t, None, None, training=True, input_bias=shift, activation="relu"),
            lambda t: F.batch_norm(t, rm, rv, training=False),
            lambda t: F.lp_norm(t, 3, training=True, centered=False)]


def test_kernel_choice(monkeypatch):
    monkeypatch.setattr(kernels, "_choice", None)
    monkeypatch.setenv("MINIBN_KERNELS", "numpy")
    assert kernels.get_kernels() == "numpy"
    monkeypatch.delenv("MINIBN_KERNELS")
    assert kernels.get_kernels() == "numba"
    mb.set_kernels("numpy")
    assert mb.get_kernels() == "numpy"
    with pytest.raises(ValueError, match="kernel set must be one of"):
        mb.set_kernels("fortran")
    monkeypatch.setenv("MINIBN_KERNELS", "cuda")
    monkeypatch.setattr(kernels, "_choice", None)
    with pytest.raises(ValueError, match="MINIBN_KERNELS must be one of"):
        kernels.get_kernels()


@pytest.mark.parametrize("shape", BATCHED)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("affine", [True, False])
def test_batch_norm_double_backward_kernels(shape, dtype, affine, rng):
    x, g, gamma, _ = _data(rng, shape, dtype)
    gamma = gamma if affine else None
    u = rng.standard_normal(shape).astype(dtype)
    _, mu, _, invstd = batchnorm.reference.forward(x, gamma, None, 1e-5)
    ref = batchnorm.reference.double_backward(u, x, g, mu, invstd, gamma)
    terms = np.abs(u * invstd * (1 if gamma is None else gamma)).max() * max(1, np.abs(g).max())
    assert_matches(batchnorm.numba_cpu.double_backward(u, x, g, mu, invstd, gamma), ref, dtype, terms, n_scaled=3)


@pytest.mark.parametrize("affine", [True, False])
def test_double_backward_kernel_equals_the_graph_path(affine, rng):
    """The array formula against the same derivatives built from differentiable ops."""
    from minibn.functional.batchnorm import BatchNormGrad

    x = mb.tensor(rng.standard_normal((7, 3)), requires_grad=True)
    g = mb.tensor(rng.standard_normal((7, 3)), requires_grad=True)
    gamma = mb.tensor(1 + 0.3 * rng.standard_normal(3), requires_grad=True) if affine else None
    u = mb.tensor(rng.standard_normal((7, 3)))
    _, mu, _, invstd = batchnorm.reference.forward(x.detach().numpy(), None, None, 1e-5)
    inputs = [x, g] + ([gamma] if affine else [])

    def node():
        return BatchNormGrad.apply(x, g, gamma, eps=1e-5, mu=mu, invstd=invstd)

    fast = mb.grad(node(), inputs, u)
    graph = mb.grad(node(), inputs, u, create_graph=True)
    for a, b in zip(fast, graph):
        np.testing.assert_allclose(a.numpy(), b.detach().numpy(), rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("shape", [(7,), (3, 300), (2, 3, 4)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_relu_kernels(shape, dtype, rng):
    x = rng.standard_normal(shape).astype(dtype)
    g = rng.standard_normal(shape).astype(dtype)
    y = relu.numba_cpu.forward(x)
    np.testing.assert_array_equal(y, np.maximum(x, 0))
    np.testing.assert_array_equal(relu.numba_cpu.backward(g, y), g * (y > 0))
    np.testing.assert_array_equal(relu.numba_cpu.forward(x.T), np.maximum(x.T, 0))  # non-contiguous input


@pytest.mark.parametrize("shape", [(1, 1), (7, 10), (3, 300), (64, 2)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_cross_entropy_kernel(shape, dtype, rng):
    x = (rng.standard_normal(shape) * 5).astype(dtype)
    target = rng.integers(0, shape[1], shape[0])
    mb.set_kernels("numpy")
    try:
        want = kernels.cross_entropy_forward(x, target)
    finally:
        kernels._choice = None
    assert_matches(cross_entropy.numba_cpu.forward(x, target), want, dtype)


@pytest.mark.parametrize("kernel_set", ["numpy", "numba"])
def test_relu_passes_nan_through(kernel_set):
    """max(NaN, 0) is NaN in NumPy and PyTorch; every kernel set agrees, the fused epilogue too."""
    x = mb.tensor(np.array([[np.nan, -1.0], [2.0, 0.5]], dtype=np.float32))
    mb.set_kernels(kernel_set)
    try:
        plain = x.relu().numpy()
        fused = F.batch_norm(x, None, None, training=True, activation="relu").numpy()
    finally:
        kernels._choice = None
    assert np.isnan(plain[0, 0]) and plain[0, 1] == 0 and plain[1, 0] == 2
    assert np.isnan(fused[:, 0]).all()  # NaN in a channel's batch makes its statistics NaN


def test_the_dispatch_table_names_every_implementation_and_every_fallback(monkeypatch):
    table = kernels.implementations()
    assert set(table) == set(kernels.DISPATCH)
    for op in kernels.DISPATCH:
        assert callable(getattr(kernels, op)), op  # each operation has its entry point
    assert table["batch_norm_double_backward"]["cupy"] == (  # stated, not silent
        "the reference (batchnorm.reference.double_backward), on CuPy")
    assert table["batch_norm_forward"]["numba"].startswith("batchnorm.numba_cpu.forward")
    for op, kernel in kernels.DISPATCH.items():  # each implementation lives in its operation's package
        package = {kernel.reference.__module__.rsplit(".", 2)[-2]}
        assert {f.__module__.rsplit(".", 2)[-2] for f in (kernel.numba, kernel.cupy) if f} <= package, op
    x = np.ones((4, 3))
    monkeypatch.setattr(kernels, "_choice", "numpy")
    assert kernels.DISPATCH["batch_norm_forward"].pick(x) is batchnorm.reference.forward
    monkeypatch.setattr(kernels, "_choice", "numba")
    assert kernels.DISPATCH["batch_norm_forward"].pick(x) is batchnorm.numba_cpu.forward
    assert kernels.DISPATCH["batch_norm_forward"].pick(np.ones((4, 3, 2))) is batchnorm.reference.forward  # 3-D: reference

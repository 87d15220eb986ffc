"""minibn.hessian: Hessian-vector products, the dense Hessian and the top eigenvalues, in float64,
against numpy.linalg.eigh of the dense Hessian, scipy's ARPACK on the same products, finite
differences of the gradient and PyTorch's autograd.functional.hessian."""

import math

import numpy as np
import pytest

import minibn as mb
import minibn.functional as F
from minibn import hessian, nn

from .conftest import requires_torch, torch
from .test_backends import gpu  # noqa: F401  (the CuPy stand-in fixture)

SIZES = [7, 6, 5, 3]


def _problem(norm, seed=0, batch=24):
    """A small MLP (BN or plain, training mode) and a closure of its cross-entropy on one batch."""
    net = nn.mlp(SIZES, norm=norm, dtype="float64", generator=mb.Generator(seed))
    rng = np.random.default_rng(seed + 100)
    x = mb.tensor(rng.standard_normal((batch, SIZES[0])))
    y = mb.tensor(rng.integers(0, SIZES[-1], batch))
    return net, x, y, (lambda: F.cross_entropy(net(x), y)), list(net.parameters())


def _flat_grad(loss_fn, params, flat, op):
    """The gradient at the parameters set to ``flat`` (restored afterwards)."""
    saved = [p._data.copy() for p in params]
    for p, piece in zip(params, op.split(flat)):
        p._data[...] = piece
    gs = mb.grad(loss_fn(), params, allow_unused=True)
    for p, s in zip(params, saved):
        p._data[...] = s
    return op.flatten([g if g is not None else np.zeros(p.shape) for g, p in zip(gs, params)])


@pytest.mark.parametrize("norm", ["bn", None])
def test_hvp_matches_central_differences_of_the_gradient(norm, rng):
    net, x, y, loss_fn, params = _problem(norm)
    op = hessian.HessianOperator(loss_fn, params)
    theta = op.flatten(params)
    v = rng.standard_normal(op.n)
    h = 1e-5
    fd = (_flat_grad(loss_fn, params, theta + h * v, op) - _flat_grad(loss_fn, params, theta - h * v, op)) / (2 * h)
    hv = op.flatten(hessian.hvp(loss_fn, params, op.split(v)))
    assert np.abs(hv - fd).max() <= 1e-7 * np.abs(fd).max()
    assert np.abs(hv).max() > 0


@pytest.mark.parametrize("norm", ["bn", None])
def test_dense_hessian_is_symmetric_and_matches_products(norm, rng):
    _, _, _, loss_fn, params = _problem(norm)
    H = hessian.dense_hessian(loss_fn, params)
    op = hessian.HessianOperator(loss_fn, params)
    assert H.shape == (op.n, op.n)
    assert np.abs(H - H.T).max() <= 1e-12 * np.abs(H).max()
    v = rng.standard_normal(op.n)
    np.testing.assert_allclose(H @ v, op.matvec(v), rtol=0, atol=1e-12 * np.abs(H).max() * op.n)


@pytest.mark.parametrize("norm, which, method", [
    ("bn", "LA", "lanczos"), ("bn", "LM", "lanczos"), (None, "LA", "lanczos"), (None, "LM", "lanczos"),
    ("bn", "LA", "power"), (None, "LA", "power"), ("bn", "LM", "power")])
def test_top_eigenvalues_equal_eigh_of_the_dense_hessian(norm, which, method):
    _, _, _, loss_fn, params = _problem(norm)
    w = np.linalg.eigvalsh(hessian.dense_hessian(loss_fn, params))
    k = 4
    expected = np.sort(w)[::-1][:k] if which == "LA" else w[np.argsort(-np.abs(w))][:k]
    with np.errstate(all="ignore"):
        s = hessian.top_eigenvalues(loss_fn, params, k=k, which=which, method=method, tol=1e-11, max_iter=20000)
    scale = np.abs(w).max()
    assert s.converged
    np.testing.assert_allclose(s.eigenvalues, expected, rtol=0, atol=1e-8 * scale)
    assert np.all(np.diff(s.eigenvalues if which == "LA" else np.abs(s.eigenvalues)) <= 1e-12 * scale)
    assert s.residuals.max() <= 1e-8 * scale
    np.testing.assert_allclose(s.eigenvectors.T @ s.eigenvectors, np.eye(k), atol=1e-8)
    assert s.hvps > k


def test_top_eigenvalues_agree_with_scipy_eigsh_on_the_same_products():
    sla = pytest.importorskip("scipy.sparse.linalg")
    _, _, _, loss_fn, params = _problem("bn", seed=3, batch=40)
    op = hessian.HessianOperator(loss_fn, params)
    ref = sla.eigsh(sla.LinearOperator((op.n, op.n), matvec=lambda v: op.matvec(np.ravel(v)), dtype=np.float64),
                    k=6, which="LA", tol=1e-13, return_eigenvectors=False)
    s = hessian.top_eigenvalues(op, None, k=6, tol=1e-11)
    np.testing.assert_allclose(s.eigenvalues, np.sort(ref)[::-1], rtol=1e-8)


def test_lanczos_continues_past_an_invariant_subspace():
    """A quadratic with a Hessian of rank 2 (plus exact zeros): the Krylov space from any start
    closes at dimension 3; the top 5 (two positive, then zeros) still come out right."""
    a = mb.tensor(np.array([3.0, -1.0, 0.0, 0.0, 0.0, 0.0]), requires_grad=True)
    D = mb.tensor(np.diag([4.0, 2.0, 0.0, 0.0, 0.0, 0.0]))
    s = hessian.top_eigenvalues(lambda: (a @ (D @ a)) / 2, [a], k=5, tol=1e-12)
    np.testing.assert_allclose(s.eigenvalues, [4, 2, 0, 0, 0], atol=1e-12)
    assert s.converged


def test_power_iteration_by_magnitude_on_a_known_spectrum():
    """Eigenvalues 5, -4, 3, -2, 1, 0.5 (by magnitude): power iteration with deflation finds the
    top 4 by magnitude, signs included, in a rotated basis."""
    rng = np.random.default_rng(7)
    Q, _ = np.linalg.qr(rng.standard_normal((6, 6)))
    A = mb.tensor(Q @ np.diag([5.0, -4.0, 3.0, -2.0, 1.0, 0.5]) @ Q.T)
    a = mb.tensor(rng.standard_normal(6), requires_grad=True)
    s = hessian.top_eigenvalues(lambda: (a @ (A @ a)) / 2, [a], k=4, which="LM", method="power", tol=1e-10)
    np.testing.assert_allclose(s.eigenvalues, [5, -4, 3, -2], atol=1e-9)
    for i, value in enumerate([5, -4, 3, -2]):
        assert abs(abs(s.eigenvectors[:, i] @ Q[:, i]) - 1) < 1e-9


def test_loss_over_several_batches_is_the_mean_hessian():
    _, x, y, _, params = _problem("bn", batch=30)
    net = nn.mlp(SIZES, norm="bn", dtype="float64", generator=mb.Generator(0))
    params = list(net.parameters())
    halves = [(lambda s=s: F.cross_entropy(net(x[s]), y[s])) for s in (slice(0, 15), slice(15, 30))]
    H = hessian.dense_hessian(halves, params)
    H0, H1 = (hessian.dense_hessian(f, params) for f in halves)
    np.testing.assert_allclose(H, (H0 + H1) / 2, atol=1e-13)


def test_bad_arguments_are_refused_with_their_names():
    _, _, _, loss_fn, params = _problem(None)
    with pytest.raises(ValueError, match="k must be"):
        hessian.top_eigenvalues(loss_fn, params, k=0)
    with pytest.raises(ValueError, match="method must be"):
        hessian.top_eigenvalues(loss_fn, params, method="arnoldi")
    with pytest.raises(ValueError, match="which must be"):
        hessian.top_eigenvalues(loss_fn, params, which="SA")
    with pytest.raises(ValueError, match="tol must be"):
        hessian.top_eigenvalues(loss_fn, params, tol=math.nan)
    with pytest.raises(ValueError, match="does not require grad"):
        hessian.hvp(loss_fn, [mb.tensor(np.ones(3))], [np.ones(3)])
    with pytest.raises(ValueError, match="scalar"):
        hessian.hvp(lambda: params[0] * 2, params, [np.ones(p.shape) for p in params])
    with pytest.raises(ValueError, match=r"v\[1\] has shape"):
        hessian.hvp(loss_fn, params, [np.ones(p.shape) for p in params[:1]] + [np.ones(2)] +
                    [np.ones(p.shape) for p in params[2:]])


def test_an_unconverged_solver_warns_and_says_so():
    _, _, _, loss_fn, params = _problem("bn")
    with pytest.warns(hessian.ConvergenceWarning, match="before reaching tol"):
        s = hessian.top_eigenvalues(loss_fn, params, k=3, method="power", tol=1e-14, max_iter=5)
    assert not s.converged


@requires_torch
@pytest.mark.parametrize("norm", ["bn", None])
def test_dense_hessian_equals_pytorch(norm):
    net, x, y, loss_fn, params = _problem(norm)
    H = hessian.dense_hessian(loss_fn, params)
    shapes = [tuple(p.shape) for p in params]
    tx, ty = torch.tensor(x.numpy()), torch.tensor(y.numpy())
    n_linear = len(SIZES) - 1

    def loss(flat):
        pieces, start = [], 0
        for s in shapes:
            size = math.prod(s)
            pieces.append(flat[start:start + size].reshape(s))
            start += size
        h, it = tx, iter(pieces)
        for i in range(n_linear):
            W, b = next(it), next(it)
            h = torch.nn.functional.linear(h, W, b)
            if i < n_linear - 1:
                if norm == "bn":
                    gamma, beta = next(it), next(it)
                    h = torch.nn.functional.batch_norm(h, None, None, gamma, beta, training=True)
                h = torch.relu(h)
        return torch.nn.functional.cross_entropy(h, ty)

    theta = torch.tensor(np.concatenate([p.detach().numpy().ravel() for p in params]))
    expected = torch.autograd.functional.hessian(loss, theta).numpy()
    np.testing.assert_allclose(H, expected, rtol=0, atol=1e-11 * np.abs(expected).max())


def test_spectra_on_the_gpu_equal_those_on_the_cpu(gpu):  # noqa: F811
    """On "cuda" (the CuPy stand-in where no GPU is present) the Krylov vectors live on the device."""
    _, x, y, _, _ = _problem("bn")
    on = {}
    for device in ("cpu", "cuda"):
        net = nn.mlp(SIZES, norm="bn", dtype="float64", generator=mb.Generator(0)).to(device)
        xd, yd = x.to(device), y.to(device)
        on[device] = hessian.top_eigenvalues(lambda: F.cross_entropy(net(xd), yd), list(net.parameters()), k=3,
                                             tol=1e-10)
    np.testing.assert_allclose(on["cuda"].eigenvalues, on["cpu"].eigenvalues, rtol=1e-10)
    assert isinstance(on["cuda"].eigenvectors, np.ndarray)

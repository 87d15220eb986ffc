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


@pytest.mark.parametrize("which", ["LA", "LM"])
def test_lanczos_residuals_are_the_true_ones_at_no_extra_product(which):
    """At a loose tol the Ritz pairs are rough: the residuals Lanczos reports from its kept
    products must still be ||H v - lambda v|| of the returned pairs, and cost no product."""
    _, _, _, loss_fn, params = _problem("bn")
    H = hessian.dense_hessian(loss_fn, params)
    s = hessian.top_eigenvalues(loss_fn, params, k=3, which=which, tol=1e-2)
    true_residuals = np.linalg.norm(H @ s.eigenvectors - s.eigenvectors * s.eigenvalues, axis=0)
    scale = np.abs(np.linalg.eigvalsh(H)).max()
    assert true_residuals.max() > 1e-8 * scale  # rough enough that a wrong formula would show
    np.testing.assert_allclose(s.residuals, true_residuals, rtol=1e-6, atol=1e-12 * scale)
    assert s.hvps == s.iterations


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


@pytest.mark.parametrize("warm", [False, True])
def test_spectra_on_the_gpu_equal_those_on_the_cpu(warm, gpu):  # noqa: F811
    """On "cuda" (the CuPy stand-in where no GPU is present) the Krylov (or Davidson) vectors live on the
    device; a warm start may come as a NumPy array."""
    _, x, y, _, _ = _problem("bn")
    on = {}
    for device in ("cpu", "cuda"):
        net = nn.mlp(SIZES, norm="bn", dtype="float64", generator=mb.Generator(0)).to(device)
        xd, yd = x.to(device), y.to(device)
        loss_fn, params = (lambda: F.cross_entropy(net(xd), yd)), list(net.parameters())
        start = hessian.top_eigenvalues(loss_fn, params, k=3, tol=1e-4).eigenvectors if warm else None
        on[device] = hessian.top_eigenvalues(loss_fn, params, k=3, tol=1e-10, start=start)
    np.testing.assert_allclose(on["cuda"].eigenvalues, on["cpu"].eigenvalues, rtol=1e-10)


# -- warm starts -------------------------------------------------------------------------------------------


def _quadratic(eigenvalues, seed=0, perturbation=0.0):
    """The Hessian operator of a^T A a / 2 with A = Q diag(eigenvalues) Q^T (Q a random orthogonal
    matrix) plus, if asked, a symmetric perturbation of that spectral norm: (op, A, Q)."""
    rng = np.random.default_rng(seed)
    n = len(eigenvalues)
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    A = Q @ np.diag(eigenvalues) @ Q.T
    if perturbation:
        E = rng.standard_normal((n, n))
        E = E + E.T
        A = A + perturbation * E / np.linalg.norm(E, 2)
    A = (A + A.T) / 2
    a = mb.tensor(rng.standard_normal(n), requires_grad=True)
    At = mb.tensor(A)
    return hessian.HessianOperator(lambda: (a @ (At @ a)) / 2, [a]), A, Q


# five wanted (k = 5), a sixth close below them, a bulk of 54 in [-2, 4]
SPECTRUM = np.concatenate([[10.0, 8.0, 7.0, 6.0, 5.0, 4.6], np.linspace(4.0, -2.0, 54)])


def _top(w, k, which):
    return np.sort(w)[::-1][:k] if which == "LA" else w[np.argsort(-np.abs(w), kind="stable")][:k]


@pytest.mark.parametrize("norm, which", [("bn", "LA"), ("bn", "LM"), (None, "LA")])
def test_a_warm_start_after_a_step_equals_the_cold_solver_and_eigh(norm, which):
    """The spectrum at the parameters, then the parameters moved (as by training): the warm start
    from the old eigenvectors finds the new spectrum as the cold solver and eigh do."""
    _, _, _, loss_fn, params = _problem(norm)
    k, tol = 4, 1e-10
    before = hessian.top_eigenvalues(loss_fn, params, k=k, which=which, tol=tol)
    rng = np.random.default_rng(5)
    for p in params:
        p._data += 0.05 * rng.standard_normal(p.shape)
    H = hessian.dense_hessian(loss_fn, params)
    w = np.linalg.eigvalsh(H)
    expected, scale = _top(w, k, which), np.abs(w).max()
    cold = hessian.top_eigenvalues(loss_fn, params, k=k, which=which, tol=tol)
    warm = hessian.top_eigenvalues(loss_fn, params, k=k, which=which, tol=tol, start=before.eigenvectors)
    assert warm.converged and warm.method == "davidson"
    np.testing.assert_allclose(warm.eigenvalues, expected, rtol=0, atol=1e-8 * scale)
    np.testing.assert_allclose(warm.eigenvalues, cold.eigenvalues, rtol=0, atol=1e-8 * scale)
    V = warm.eigenvectors
    true_residuals = np.linalg.norm(H @ V - V * warm.eigenvalues, axis=0)
    np.testing.assert_allclose(warm.residuals, true_residuals, rtol=1e-6, atol=1e-13 * scale)
    assert warm.residuals.max() <= tol * scale
    np.testing.assert_allclose(V.T @ V, np.eye(k), atol=1e-10)


def test_a_start_of_exact_eigenvectors_costs_k_products_and_the_check():
    op, A, Q = _quadratic(SPECTRUM)
    k = 5
    s = hessian.top_eigenvalues(op, None, k=k, tol=1e-10, start=Q[:, :k])
    assert s.converged
    np.testing.assert_allclose(s.eigenvalues, SPECTRUM[:k], rtol=0, atol=1e-12 * SPECTRUM[0])
    assert k < s.hvps <= k + hessian.CHECK_STEPS
    assert s.residuals.max() <= 1e-10 * SPECTRUM[0]


@pytest.mark.parametrize("which", ["LA", "LM"])
def test_a_start_without_the_top_eigenvector_still_finds_it(which, monkeypatch):
    """The start holds eigenvectors 2..k+1, converged at once; the check on the deflated operator
    finds the first. Without the check the solver stops at the wrong spectrum."""
    w = SPECTRUM if which == "LA" else SPECTRUM * np.where(np.arange(len(SPECTRUM)) % 2, -1, 1)
    op, A, Q = _quadratic(w, seed=1)
    k = 5
    order = np.argsort(-(w if which == "LA" else np.abs(w)), kind="stable")
    start = Q[:, order[1:k + 1]]
    s = hessian.top_eigenvalues(op, None, k=k, which=which, tol=1e-10, start=start)
    assert s.converged
    np.testing.assert_allclose(s.eigenvalues, w[order[:k]], rtol=0, atol=1e-9 * SPECTRUM[0])
    monkeypatch.setattr(hessian, "CHECK_STEPS", 0)
    unchecked = hessian.top_eigenvalues(op, None, k=k, which=which, tol=1e-10, start=start)
    np.testing.assert_allclose(unchecked.eigenvalues, w[order[1:k + 1]], rtol=0, atol=1e-9 * SPECTRUM[0])


def test_a_perturbed_matrix_from_the_eigenvectors_before_matches_eigh():
    """H + E (||E|| = 0.01) started from H's eigenvectors: eigh of H + E, tightly; at a loose
    tolerance for fewer products than the cold solver (at a tight one block Davidson needs more)."""
    _, _, Q = _quadratic(SPECTRUM, seed=2)
    op, A, _ = _quadratic(SPECTRUM, seed=2, perturbation=0.01)
    k = 5
    expected = np.sort(np.linalg.eigvalsh(A))[::-1][:k]
    assert np.abs(expected - SPECTRUM[:k]).max() > 1e-3  # the start's values are not the answer
    for tol in (1e-9, 1e-3):
        warm = hessian.top_eigenvalues(op, None, k=k, tol=tol, start=Q[:, :k])
        assert warm.converged
        np.testing.assert_allclose(warm.eigenvalues, expected, rtol=0, atol=tol * SPECTRUM[0])
        V = warm.eigenvectors
        np.testing.assert_allclose(warm.residuals, np.linalg.norm(A @ V - V * warm.eigenvalues, axis=0),
                                   rtol=1e-6, atol=1e-13)
    assert warm.hvps < hessian.top_eigenvalues(op, None, k=k, tol=tol).hvps


def test_a_start_with_fewer_or_dependent_columns_is_completed():
    op, A, Q = _quadratic(SPECTRUM, seed=3)
    k = 5
    for start in (Q[:, :1], np.concatenate([Q[:, :3], Q[:, :3] * 2], axis=1)):
        s = hessian.top_eigenvalues(op, None, k=k, tol=1e-10, start=start)
        assert s.converged
        np.testing.assert_allclose(s.eigenvalues, SPECTRUM[:k], rtol=0, atol=1e-9 * SPECTRUM[0])


def test_a_warm_start_at_its_product_limit_warns_and_says_so():
    op, A, Q = _quadratic(SPECTRUM, seed=4)
    start = np.random.default_rng(0).standard_normal((len(SPECTRUM), 5))
    with pytest.warns(hessian.ConvergenceWarning, match="davidson"):
        s = hessian.top_eigenvalues(op, None, k=5, tol=1e-10, max_iter=8, start=start)
    assert not s.converged
    assert s.hvps <= 8


def test_a_bad_start_is_refused_with_its_name():
    op, A, Q = _quadratic(SPECTRUM)
    n = len(SPECTRUM)
    good = Q[:, :3]
    cases = [(ValueError, r"start must be an \(n, m\) array with n = 60.*\(59, 3\)", good[1:]),
             (ValueError, r"start must be an \(n, m\) array.*\(60,\)", good[:, 0]),
             (ValueError, "start must have 1 to n = 60 columns, got 0", good[:, :0]),
             (TypeError, "start must be a real floating-point array, got dtype int64", np.ones((n, 2), dtype=np.int64)),
             (TypeError, "got dtype complex128", good + 0j),
             (ValueError, "start has entries that are not finite", np.where(good > 0.3, np.nan, good)),
             (ValueError, "start is all zeros", np.zeros((n, 2)))]
    for error, message, start in cases:
        with pytest.raises(error, match=message):
            hessian.top_eigenvalues(op, None, k=3, start=start)
    with pytest.raises(ValueError, match="start is for method='lanczos'.*not method='power'"):
        hessian.top_eigenvalues(op, None, k=3, method="power", start=good)
    assert hessian.top_eigenvalues(op, None, k=3, start=good.astype(np.float32)).converged

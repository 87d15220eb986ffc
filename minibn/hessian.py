"""Hessians of a scalar loss: Hessian-vector products, the dense Hessian, the top eigenvalues.

Everything here is built on one product, H v = d/dtheta (grad L(theta) . v), computed by
double backward: the gradient is taken once with ``create_graph=True`` and each product
is one more backward through that retained graph (``grad(g, params, grad_outputs=v)``),
so a Lanczos run costs one forward, one backward and then one backward of the gradient's
graph per product.

What the Hessian is of: the loss that ``loss_fn()`` computes, as it computes it. A network
in training mode normalizes with the statistics of the batch ``loss_fn`` feeds it, so its
Hessian includes the curvature through those statistics (the seed author's choice: the
whole 10 000-image training set as one batch, in training mode); in eval mode batch norm is
an affine map with the running statistics, a different function with a different Hessian.
``loss_fn`` is called once per operator, not once per product, so a training-mode forward
updates running statistics once. A sequence of closures, one per batch, gives the Hessian of
the average of their losses (each batch's graph is retained).

    op = HessianOperator(lambda: F.cross_entropy(net(x), y), list(net.parameters()))
    spectrum = top_eigenvalues(lambda: F.cross_entropy(net(x), y), list(net.parameters()), k=10)
    spectrum.eigenvalues, spectrum.residuals, spectrum.hvps
    later = top_eigenvalues(..., start=spectrum.eigenvectors)  # warm: a block Davidson from them
"""

from __future__ import annotations

import dataclasses
import math
import warnings

import numpy as np

from .autograd import grad
from .devices import to_host
from .grad_mode import enable_grad
from .tensor import Tensor, _wrap

METHODS = ("lanczos", "power")
WHICH = ("LA", "LM")
DENSE_LIMIT = 20_000  # parameters: the dense Hessian of more would hold over 3 GB of float64


class ConvergenceWarning(RuntimeWarning):
    """An eigensolver stopped at its iteration limit before reaching its tolerance."""


def _check_params(params) -> list:
    params = list(params)
    if not params:
        raise ValueError("hessian: params is empty")
    for i, p in enumerate(params):
        if not isinstance(p, Tensor):
            raise TypeError(f"hessian: params[{i}] is a {type(p).__name__}, not a Tensor")
        if not p.requires_grad:
            raise ValueError(f"hessian: params[{i}] (shape {tuple(p.shape)}) does not require grad")
    first = params[0]
    for i, p in enumerate(params[1:], 1):
        if p.dtype != first.dtype or p.device != first.device:
            raise ValueError(f"hessian: params[{i}] is {p.dtype} on {p.device}, params[0] {first.dtype} on "
                             f"{first.device}; all must share one dtype and device")
    return params


class HessianOperator:
    """The Hessian of ``loss_fn()`` (or of the mean of several closures' losses) with respect to
    ``params``, as a linear operator on flat vectors of length ``n`` (the parameters in order,
    each flattened in C order). ``matvec`` and ``hvp`` count the products in ``hvps``."""

    def __init__(self, loss_fn, params):
        self.params = _check_params(params)
        self.shapes = [tuple(p.shape) for p in self.params]
        self.sizes = [int(np.prod(s, dtype=np.int64)) for s in self.shapes]
        self.n = int(sum(self.sizes))
        self.offsets = np.concatenate([[0], np.cumsum(self.sizes)]).astype(int)
        self.dtype, self.xp = self.params[0].dtype, self.params[0].xp
        closures = list(loss_fn) if isinstance(loss_fn, (list, tuple)) else [loss_fn]
        if not closures or not all(callable(f) for f in closures):
            raise TypeError("hessian: loss_fn must be a callable returning a scalar loss, or a list of them")
        self.hvps = 0
        self._gradients = []
        with enable_grad():
            for f in closures:
                loss = f()
                if not isinstance(loss, Tensor) or loss.numel() != 1:
                    raise ValueError("hessian: loss_fn must return a scalar Tensor, got "
                                     + (f"shape {tuple(loss.shape)}" if isinstance(loss, Tensor)
                                        else type(loss).__name__))
                gs = grad(loss, self.params, create_graph=True, allow_unused=True)
                # a parameter the gradient does not depend on (or only through constants) has zero rows
                self._gradients.append([(i, g) for i, g in enumerate(gs) if g is not None and g.requires_grad])
        self._scale = 1.0 / len(closures)

    def split(self, flat) -> list:
        """A flat vector of length n as arrays shaped like ``params``."""
        return [flat[a:b].reshape(shape) for a, b, shape in zip(self.offsets[:-1], self.offsets[1:], self.shapes)]

    def flatten(self, arrays) -> object:
        """Arrays or Tensors shaped like ``params`` as one flat vector (of ``params``' array module)."""
        arrays = list(arrays)
        if len(arrays) != len(self.params):
            raise ValueError(f"hessian: got {len(arrays)} arrays for {len(self.params)} params")
        parts = []
        for i, (a, shape) in enumerate(zip(arrays, self.shapes)):
            a = a._data if isinstance(a, Tensor) else self.xp.asarray(a)
            if tuple(a.shape) != shape:
                raise ValueError(f"hessian: v[{i}] has shape {tuple(a.shape)}, params[{i}] {shape}")
            parts.append(a.reshape(-1).astype(self.dtype, copy=False))
        return self.xp.concatenate(parts)

    def matvec(self, v):
        """H v for a flat vector v of length n."""
        if v.shape != (self.n,):
            raise ValueError(f"hessian: expected a flat vector of length {self.n}, got shape {tuple(v.shape)}")
        pieces = self.split(self.xp.asarray(v, dtype=self.dtype))
        out = self.xp.zeros(self.n, dtype=self.dtype)
        offsets = self.offsets
        for gradients in self._gradients:
            if not gradients:
                continue
            outputs = [g for _, g in gradients]
            upstream = [_wrap(pieces[i]) for i, _ in gradients]
            hv = grad(outputs, self.params, grad_outputs=upstream, retain_graph=True, allow_unused=True)
            for i, h in enumerate(hv):
                if h is not None:
                    out[offsets[i]:offsets[i + 1]] += h._data.reshape(-1)
        self.hvps += 1
        return out * self._scale if self._scale != 1 else out

    def hvp(self, v) -> list:
        """H v for v shaped like ``params``, as Tensors shaped like ``params``."""
        return [_wrap(a) for a in self.split(self.matvec(self.flatten(v)))]


def hvp(loss_fn, params, v) -> list:
    """The Hessian-vector product H v of the scalar ``loss_fn()`` with respect to ``params``
    along ``v`` (arrays or Tensors shaped like ``params``), as Tensors shaped like ``params``:
    H v = d/dtheta (grad L . v), by double backward. For many products with one loss, build a
    :class:`HessianOperator` once (the gradient's graph is kept between products)."""
    return HessianOperator(loss_fn, params).hvp(v)


def dense_hessian(loss_fn, params) -> np.ndarray:
    """The full (n, n) Hessian of ``loss_fn()`` with respect to ``params`` as a NumPy array, one
    column H e_j per Hessian-vector product (n products): for small networks. Row and column
    order: the parameters in order, each flattened in C order."""
    op = HessianOperator(loss_fn, params)
    if op.n > DENSE_LIMIT:
        raise ValueError(f"dense_hessian: {op.n} parameters would make a {op.n} x {op.n} matrix "
                         f"({op.n * op.n * 8 / 2**30:.1f} GiB in float64); the limit is {DENSE_LIMIT}. "
                         "Use top_eigenvalues or HessianOperator.matvec instead")
    H = np.empty((op.n, op.n), dtype=np.dtype(op.dtype))
    e = op.xp.zeros(op.n, dtype=op.dtype)
    for j in range(op.n):
        e[j] = 1
        H[:, j] = to_host(op.matvec(e))
        e[j] = 0
    return H


@dataclasses.dataclass
class Spectrum:
    """The result of :func:`top_eigenvalues`: eigenvalues in descending order (algebraic for
    ``which="LA"``, of magnitude for ``"LM"``), unit eigenvectors as the columns of an (n, k)
    array (``split`` gives one column shaped like the parameters), the true residual norms
    ||H v - lambda v|| (from the solver's kept products H q, H (Q s) = (H Q) s; power iteration
    measures each with one more product), and the products used (all of them: the start's, the
    check's, the residuals')."""

    eigenvalues: np.ndarray
    eigenvectors: np.ndarray
    residuals: np.ndarray
    hvps: int
    iterations: int
    converged: bool
    method: str
    which: str
    tol: float


def _order(values, which, k) -> np.ndarray:
    key = values if which == "LA" else np.abs(values)
    return np.argsort(-key, kind="stable")[:k]


def top_eigenvalues(loss_fn, params, k: int = 10, which: str = "LA", method: str = "lanczos", tol: float = 1e-6,
                    max_iter: int | None = None, seed: int = 0, start=None) -> Spectrum:
    """The ``k`` largest eigenvalues of the Hessian of ``loss_fn()`` with respect to ``params``
    (``which="LA"``: largest algebraic; ``"LM"``: largest magnitude), in descending order, with
    eigenvectors, residual norms ||H v - lambda v|| and the number of Hessian-vector products.

    ``method="lanczos"``: Lanczos with full reorthogonalization (twice, classical Gram-Schmidt)
    from a random start drawn from ``seed``; a Krylov space that closes early (an exact
    invariant subspace) is continued from a fresh random vector orthogonal to it. It stops when
    the Ritz residual estimates beta_j |s_ji| of the k wanted pairs are all <= ``tol`` times the
    largest |Ritz value|, or after ``max_iter`` products (default min(n, max(20 k, 100))).
    ``method="power"``: power iteration with projection deflation (each eigenvector is found
    orthogonal to those before it), on H + rho I with rho = |lambda_LM| for ``"LA"``; each pair
    stops when its residual is <= ``tol`` |lambda_1|, or after ``max_iter`` products (default
    1000); it separates eigenvalues only as fast as their ratio allows, and by magnitude
    (``"LM"``) not at all when lambda and -lambda are both wanted and nearly equal in size.
    Either way a solver that stops at its limit warns (``ConvergenceWarning``) and returns
    ``converged=False``. Lanczos keeps its Krylov basis and its products: 2 n x (iterations)
    numbers.

    ``start``: an (n, m) array whose columns span a guess of the wanted eigenvectors (say the
    previous spectrum's ``eigenvectors`` along training), for ``method="lanczos"``: then the
    solver is a Davidson method (``method`` in the result reads "davidson"): Rayleigh-Ritz on a
    basis that begins with orth(start) (filled up to k columns with random ones), expanded each
    round by the largest residual among the wanted Ritz pairs not yet converged (the converged ones
    stay: soft locking), restarted from its 2 k best Ritz vectors at max(6 k, k + 30) columns.
    Every basis vector's product is kept, so the true residuals ||H u - theta u|| cost nothing.
    It stops when those of the k wanted pairs are all <= ``tol`` times the largest |Ritz value|
    and a check, ``CHECK_STEPS`` Lanczos steps on (I - UU^T) H (I - UU^T) (U the k Ritz vectors)
    from a random vector, finds no Ritz value beyond the k-th (above it for "LA", larger in
    magnitude for "LM"): an eigenvalue that the start lacks; if it finds one, the check's vectors
    and products join the basis and the solver goes on. ``max_iter`` bounds its products (the
    start's and the checks' included; default max(20 k, 100)); ``iterations`` counts its
    Rayleigh-Ritz rounds. From a start close to the answer it costs about m + CHECK_STEPS
    products; from a poor one, or to a tight ``tol``, it can cost more than Lanczos from scratch.

    The network's mode and data are those of ``loss_fn``: see the module docstring (batch norm
    in training mode uses the statistics of the batch the loss is computed on).
    """
    if method not in METHODS:
        raise ValueError(f"top_eigenvalues: method must be one of {METHODS}, got {method!r}")
    if which not in WHICH:
        raise ValueError(f"top_eigenvalues: which must be one of {WHICH}, got {which!r}")
    if not (isinstance(tol, (int, float)) and math.isfinite(tol) and tol > 0):
        raise ValueError(f"top_eigenvalues: tol must be a finite number > 0, got {tol!r}")
    op = loss_fn if isinstance(loss_fn, HessianOperator) else HessianOperator(loss_fn, params)
    if not (isinstance(k, int) and 1 <= k <= op.n):
        raise ValueError(f"top_eigenvalues: k must be an integer from 1 to the {op.n} parameters, got {k!r}")
    if max_iter is not None and not (isinstance(max_iter, int) and max_iter >= k):
        raise ValueError(f"top_eigenvalues: max_iter must be an integer >= k = {k}, got {max_iter!r}")
    if start is not None:
        if method != "lanczos":
            raise ValueError(f"top_eigenvalues: start is for method='lanczos' (a block Davidson from it), "
                             f"not method={method!r}")
        start = _check_start(op, start)
    rng = np.random.default_rng(seed)
    first = op.hvps
    if start is not None:
        method = "davidson"
        values, vectors, residuals, iterations, converged = _davidson(op, k, which, tol, max_iter, rng, start)
    elif method == "lanczos":
        values, vectors, residuals, iterations, converged = _lanczos(op, k, which, tol, max_iter, rng)
    else:
        values, vectors, iterations, converged = _power(op, k, which, tol, max_iter, rng)
    if not converged:
        warnings.warn(f"top_eigenvalues ({method}) stopped after {iterations} iterations before reaching "
                      f"tol = {tol:g}; see the residuals", ConvergenceWarning, stacklevel=2)
    if method == "power":
        residuals = np.array([float(op.xp.linalg.norm(op.matvec(vectors[:, i]) - values[i] * vectors[:, i]))
                              for i in range(k)])
    return Spectrum(np.asarray(values, dtype=float), to_host(vectors), residuals, op.hvps - first, iterations,
                    bool(converged), method, which, float(tol))


def _check_start(op, start):
    """``start`` as an (n, m) array of the operator's array module and dtype, or a ValueError
    or TypeError that says what is wrong with it."""
    if not hasattr(start, "shape"):
        start = np.asarray(start)
    shape = tuple(start.shape)
    if len(shape) != 2 or shape[0] != op.n:
        raise ValueError(f"top_eigenvalues: start must be an (n, m) array with n = {op.n} (the parameters), "
                         f"got shape {shape}")
    if not 1 <= shape[1] <= op.n:
        raise ValueError(f"top_eigenvalues: start must have 1 to n = {op.n} columns, got {shape[1]}")
    if not np.issubdtype(np.dtype(start.dtype), np.floating):
        raise TypeError(f"top_eigenvalues: start must be a real floating-point array, got dtype {start.dtype}")
    start = op.xp.asarray(start, dtype=op.dtype)
    if not bool(op.xp.isfinite(start).all()):
        raise ValueError("top_eigenvalues: start has entries that are not finite")
    if not bool((start != 0).any()):
        raise ValueError("top_eigenvalues: start is all zeros")
    return start


def _random_unit(op, rng, against=None):
    """A random unit vector (orthogonal to the columns of ``against``), or None if none is left."""
    xp = op.xp
    for _ in range(3):
        v = xp.asarray(rng.standard_normal(op.n), dtype=op.dtype)
        if against is not None and against.shape[1]:
            for _ in range(2):
                v = v - against @ (against.T @ v)
        size = float(xp.linalg.norm(v))
        if size > 1e-8 * math.sqrt(op.n):
            return v / size
    return None


def _lanczos(op, k, which, tol, max_iter, rng):
    """Lanczos as :func:`top_eigenvalues` says: the values, vectors and true residuals of the k
    wanted Ritz pairs (from the kept products H q_j: H (Q s) = (H Q) s), the iterations, and whether
    it converged."""
    xp = op.xp
    m_max = min(op.n, max_iter if max_iter is not None else max(20 * k, 100))
    Q = xp.zeros((op.n, m_max), dtype=op.dtype)
    HQ = xp.zeros((op.n, m_max), dtype=op.dtype)
    alpha, beta = np.zeros(m_max), np.zeros(m_max)
    Q[:, 0] = _random_unit(op, rng)
    m, converged = 0, False
    theta = S = None
    for j in range(m_max):
        w = HQ[:, j] = op.matvec(Q[:, j])
        alpha[j] = float(Q[:, j] @ w)
        basis = Q[:, :j + 1]
        for _ in range(2):
            w = w - basis @ (basis.T @ w)
        beta[j] = float(xp.linalg.norm(w))
        m = j + 1
        if m >= k:
            theta, S = _tridiagonal_eigh(alpha[:m], beta[:m - 1])
            wanted = _order(theta, which, k)
            scale = max(float(np.abs(theta).max()), np.finfo(float).tiny)
            if np.all(beta[j] * np.abs(S[-1, wanted]) <= tol * scale):
                converged = True
                break
        if m == m_max:
            break
        if beta[j] <= 1e-10 * max(abs(alpha[j]), float(np.abs(alpha[:m]).max()), 1e-300):
            nxt = _random_unit(op, rng, basis)  # an invariant subspace: go on in its complement
            if nxt is None:
                converged = m >= k
                break
            beta[j] = 0.0
            Q[:, j + 1] = nxt
        else:
            Q[:, j + 1] = w / beta[j]
    if theta is None or len(theta) != m:
        theta, S = _tridiagonal_eigh(alpha[:m], beta[:m - 1])
    wanted = _order(theta, which, k)
    if len(wanted) < k:
        raise RuntimeError(f"top_eigenvalues: the Krylov space closed at dimension {m} < k = {k}")
    combination = xp.asarray(S[:, wanted], dtype=op.dtype)
    vectors, images = Q[:, :m] @ combination, HQ[:, :m] @ combination
    size = xp.linalg.norm(vectors, axis=0)
    vectors, images = vectors / size, images / size
    residuals = to_host(xp.linalg.norm(images - vectors * xp.asarray(theta[wanted], dtype=op.dtype), axis=0))
    return theta[wanted], vectors, np.asarray(residuals, dtype=float), m, converged


def _tridiagonal_eigh(alpha, beta):
    T = np.diag(alpha) + np.diag(beta, 1) + np.diag(beta, -1)
    return np.linalg.eigh(T)


# The check's length, measured on 15 spectra (top 11 to tol 1e-6) along the training of the
# normalizations MLP (784-100-100-10, 10 000 images; bn, l2 and none at lr 0.1, 0.01 and 0.001): with
# one of the top 10 eigenvectors left out of U and 10 random starts each, a left-out eigenvalue among
# the top 5 was seen within 7 steps in all 750 trials; of all the misses that would move the spectrum
# by more than 1e-2 lambda_1, 8 steps left 2 % unseen, 10 steps 0.9 % (each of them the 6th to 10th,
# next to the bulk), 15 none. 10: a late warm spectrum is k products, then these.
CHECK_STEPS = 10
BASIS_FACTOR = 6  # a warm start's basis is restarted at max(BASIS_FACTOR k, k + 30) vectors...
KEEP_FACTOR = 2  # ... down to its KEEP_FACTOR k best Ritz vectors
EXPAND = 1  # residuals added per round, the largest first: on that MLP fewer products than 2, 3 or all


def _davidson(op, k, which, tol, max_iter, rng, start):
    """Davidson from the block ``start`` (see :func:`top_eigenvalues`): the values, vectors and
    true residuals of the k wanted Ritz pairs, the Rayleigh-Ritz rounds and whether it converged."""
    xp = op.xp
    limit = max_iter if max_iter is not None else max(20 * k, 100)
    cap = min(op.n, max(BASIS_FACTOR * k, k + 30))
    first = op.hvps
    basis = _Basis(op, cap, max(cap, start.shape[1]) + CHECK_STEPS)
    basis.add(start)
    while basis.size < k:
        basis.add(_random_unit(op, rng, basis.V)[:, None])
    iterations, checked, converged = 0, False, False
    while True:
        iterations += 1
        theta, S = basis.ritz()
        wanted = _order(theta, which, k)
        vectors, R, residuals = basis.pairs(theta[wanted], S[:, wanted])
        scale = max(float(np.abs(theta).max()), np.finfo(float).tiny)
        unconverged = np.flatnonzero(residuals > tol * scale)
        used = op.hvps - first
        if not len(unconverged) and (checked or basis.size == op.n):
            converged = True
            break
        if used + (CHECK_STEPS if not len(unconverged) else 1) > limit:
            break
        keep = S[:, _order(theta, which, min(basis.size, KEEP_FACTOR * k))]  # the restart's, if one is due
        if not len(unconverged):
            found, Q, HQ = _deflated_lanczos(op, vectors, theta[wanted[-1]], which, CHECK_STEPS, rng)
            checked = not found
            basis.add(Q, HQ, restart=keep)
            continue
        worst = unconverged[np.argsort(-residuals[unconverged], kind="stable")][:min(EXPAND, limit - used)]
        if not basis.add(R[:, xp.asarray(worst)] / xp.asarray(residuals[worst], dtype=op.dtype), restart=keep):
            break  # the residuals lie in the basis to rounding: no further progress
    return theta[wanted], vectors, residuals, iterations, converged


class _Basis:
    """An orthonormal basis V (n x size) with its images HV = H V, one product per column, and
    the projection G = V^T H V; restarted at ``cap`` columns, with room for ``capacity``."""

    def __init__(self, op, cap, capacity):
        self.op, self.size, self.cap = op, 0, cap
        self._V = op.xp.zeros((op.n, capacity), dtype=op.dtype)
        self._HV = op.xp.zeros((op.n, capacity), dtype=op.dtype)
        self.G = np.zeros((capacity, capacity))

    @property
    def V(self):
        return self._V[:, :self.size]

    def add(self, vectors, images=None, restart=None) -> int:
        """Orthonormalizes the columns of ``vectors`` against the basis and each other and appends
        those that are not (nearly) dependent, with their ``images`` (H vectors) if given (a column's
        image is then updated with it: no product), else a product each. Where they would not fit in
        ``cap`` columns, the basis is first replaced by V ``restart``. Returns the columns kept."""
        if restart is not None and self.size + vectors.shape[1] > self.cap:
            self.restart(restart)
        xp, eps = self.op.xp, float(np.finfo(np.dtype(self.op.dtype)).eps)
        # a known image loses accuracy as 1/(what is left of its column): keep only well-conditioned ones
        floor = math.sqrt(eps) if images is not None else 100 * eps
        kept = 0
        for j in range(vectors.shape[1]):
            v, h = vectors[:, j], (images[:, j] if images is not None else None)
            size0 = float(xp.linalg.norm(v))
            for _ in range(2):
                c = self.V.T @ v
                v = v - self.V @ c
                if h is not None:
                    h = h - self._HV[:, :self.size] @ c
            size = float(xp.linalg.norm(v))
            if size <= floor * size0 or self.size == self._V.shape[1]:
                continue
            v = v / size
            h = self.op.matvec(v) if h is None else h / size
            g = to_host(self.V.T @ h)
            self._V[:, self.size], self._HV[:, self.size] = v, h
            self.G[:self.size, self.size] = self.G[self.size, :self.size] = g
            self.G[self.size, self.size] = float(v @ h)
            self.size += 1
            kept += 1
        return kept

    def ritz(self):
        """The Ritz values (ascending) and the projection's eigenvectors."""
        G = self.G[:self.size, :self.size]
        return np.linalg.eigh((G + G.T) / 2)

    def combine(self, S):
        """V S and its image H V S, from the stored products."""
        S = self.op.xp.asarray(S, dtype=self.op.dtype)
        return self.V @ S, self._HV[:, :self.size] @ S

    def pairs(self, theta, S):
        """The Ritz vectors U = V S of the Ritz values ``theta``, their residuals H U - U diag(theta)
        and the residuals' norms (on the host)."""
        xp = self.op.xp
        U, HU = self.combine(S)
        R = HU - U * xp.asarray(theta, dtype=self.op.dtype)
        return U, R, to_host(xp.linalg.norm(R, axis=0)).astype(float)

    def restart(self, S):
        """Replaces the basis by V S (S with orthonormal columns from ``ritz``), images included."""
        V, HV = self.combine(S)
        m = S.shape[1]
        self._V[:, :m], self._HV[:, :m] = V, HV
        G = np.asarray(S).T @ self.G[:self.size, :self.size] @ np.asarray(S)
        self.size = m
        self.G[:m, :m] = (G + G.T) / 2


def _beyond(values, bound, which) -> bool:
    return bool(np.max(values) > bound) if which == "LA" else bool(np.abs(values).max() > abs(bound))


def _deflated_lanczos(op, U, bound, which, steps, rng):
    """Lanczos with full reorthogonalization on (I - U U^T) H (I - U U^T), from a random vector
    orthogonal to U, for ``steps`` products or until a Ritz value lies beyond ``bound``. Returns
    whether one did, the Lanczos vectors and their products H q."""
    xp = op.xp
    Q = xp.zeros((op.n, steps), dtype=op.dtype)
    HQ = xp.zeros((op.n, steps), dtype=op.dtype)
    alpha, beta = np.zeros(steps), np.zeros(steps)
    q = _random_unit(op, rng, U)
    m = 0
    while q is not None and m < steps:
        Q[:, m] = q
        HQ[:, m] = op.matvec(q)
        w = HQ[:, m] - U @ (U.T @ HQ[:, m])
        alpha[m] = float(q @ w)
        m += 1
        for _ in range(2):
            w = w - U @ (U.T @ w)
            w = w - Q[:, :m] @ (Q[:, :m].T @ w)
        beta[m - 1] = float(xp.linalg.norm(w))
        ritz, _ = _tridiagonal_eigh(alpha[:m], beta[:m - 1])
        if _beyond(ritz, bound, which):
            return True, Q[:, :m], HQ[:, :m]
        if beta[m - 1] <= 1e-10 * max(float(np.abs(alpha[:m]).max()), 1e-300):
            beta[m - 1] = 0.0  # an invariant subspace: go on in its complement
            q = _random_unit(op, rng, xp.concatenate([U, Q[:, :m]], axis=1))
        else:
            q = w / beta[m - 1]
    return False, Q[:, :m], HQ[:, :m]


def _power(op, k, which, tol, max_iter, rng):
    xp = op.xp
    limit = max_iter if max_iter is not None else 1000
    found = xp.zeros((op.n, 0), dtype=op.dtype)
    values, iterations, converged = [], 0, True
    shift, scale = 0.0, None
    if which == "LA":
        top, _, its, ok = _power_one(op, found, 0.0, tol, None, limit, rng)
        iterations += its
        converged &= ok
        shift = abs(top)  # H + |lambda_LM| I is positive semidefinite: its top eigenvalues are H's largest
    for _ in range(k):
        value, v, its, ok = _power_one(op, found, shift, tol, scale, limit, rng)
        iterations += its
        converged &= ok
        scale = scale or max(abs(value), np.finfo(float).tiny)
        values.append(value)
        found = xp.concatenate([found, v[:, None]], axis=1)
    values = np.array(values)
    order = _order(values, which, k)
    return values[order], found[:, order], iterations, converged


def _power_one(op, found, shift, tol, scale, limit, rng):
    """Power iteration on P (H + shift I) P, P the projection orthogonal to ``found``: the
    Rayleigh quotient of H, the unit vector, the products used and whether it converged."""
    xp = op.xp

    def project(v):
        for _ in range(2 if found.shape[1] else 0):
            v = v - found @ (found.T @ v)
        return v

    v = _random_unit(op, rng, found)
    value = 0.0
    for it in range(1, limit + 1):
        hv = op.matvec(v)
        value = float(v @ hv)
        residual = float(xp.linalg.norm(project(hv) - value * v))
        if residual <= tol * (scale or max(abs(value), np.finfo(float).tiny)):
            return value, v, it, True
        w = project(hv + shift * v)
        size = float(xp.linalg.norm(w))
        if size == 0:
            return value, v, it, True
        v = w / size
    return value, v, limit, False


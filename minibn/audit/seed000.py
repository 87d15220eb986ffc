"""Seed 000 (Morwani, "Understanding Batch Normalization"): sec. 1, 2 (OLS) and 3 (higher lr)."""

from __future__ import annotations

import numpy as np

from .. import functional as F
from .core import const as _const, TOL, fmt, formula, gradients, identity_verdict, jacobian, rel, three_way

N_BATCH, N_IN, N_OUT = 6, 4, 3


def _rng(tag: str):
    return np.random.default_rng(sum(map(ord, tag)))



# -- sec. 3.1: the linear layer, samples as columns --------------------------------------------


def _linear_setup(tag="linear", n=N_BATCH):
    rng = _rng(tag)
    W, Y0, B = rng.standard_normal((N_OUT, N_IN)), rng.standard_normal((N_IN, n)), rng.standard_normal((N_OUT, 1))
    R = rng.standard_normal((N_OUT, n))

    def loss(W_, Y0_):  # L = sum R * tanh(W Y0 + B): a generic smooth loss of Y_l
        return ((W_ @ Y0_ + _const(B)).tanh() * _const(R)).sum()

    G = R * (1 - np.tanh(W @ Y0 + B) ** 2)  # dL/dY_l
    return W, Y0, B, R, G, loss


@formula("F000-31-dW", "000", "sec. 3.1", "dL/dW = dL/dY_l . Y_{l-1}^T, for Y_l = W Y_{l-1} + B",
         "Y_{l-1} (in x n) and Y_l (out x n) hold samples as columns, as Y_l = W Y_{l-1} + B implies; "
         "dL/dX has the shape of X")
def _dW():
    W, Y0, B, R, G, loss = _linear_setup()
    auto, numeric = gradients(loss, [W, Y0])
    res, auto_res = three_way({"as written": G @ Y0.T}, auto[0], numeric[0])
    verdict = identity_verdict(res["as written"], None, TOL["complex"])
    return verdict, None, res["as written"], (
        f"closed form vs complex-step {fmt(res['as written'])}, autodiff vs complex-step {fmt(auto_res)} "
        f"(n={N_BATCH}, in={N_IN}, out={N_OUT})")


@formula("F000-31-dY", "000", "sec. 3.1", "dL/dY_{l-1} = dL/dY_l . W",
         "as F000-31-dW: samples as columns. dL/dY_l is out x n and W is out x in, so the product as "
         "written exists only when n = out; the audit uses n = out to evaluate it")
def _dY():
    W, Y0, B, R, G, loss = _linear_setup("dY", n=N_OUT)  # the only batch size at which G W is defined
    auto, numeric = gradients(loss, [W, Y0])
    as_written = rel((G @ W).T, numeric[1]) if (G @ W).shape != Y0.shape else rel(G @ W, numeric[1])
    corrected = rel(W.T @ G, numeric[1])
    rows = rel(G.T @ W, numeric[1].T)  # the rows-as-samples reading, Y_l = Y_{l-1} W^T
    dW_rows = rel(G.T @ Y0.T, numeric[0])  # ... under which F000-31-dW as written would not hold
    verdict = identity_verdict(as_written, corrected, TOL["complex"])
    return verdict, "dL/dY_{l-1} = W^T . dL/dY_l (in x n)", corrected, (
        f"as written (n = out = {N_OUT}) residual {fmt(as_written)}; W^T G {fmt(corrected)}; autodiff vs "
        f"complex-step {fmt(rel(auto[1], numeric[1]))}. Other reading (samples as rows, Y_l = Y_{{l-1}} W^T): "
        f"G W holds ({fmt(rows)}) but then dL/dW = G^T Y_{{l-1}}, and F000-31-dW as written would be off "
        f"by a transpose; no one layout makes both formulas hold as written ({fmt(dW_rows)} for G^T Y0^T "
        "against the columns layout)")


# -- sec. 3.1: batch norm of one neuron --------------------------------------------------------


def _bn_setup(eps=0.0):
    rng = _rng("bn")
    Y0 = rng.standard_normal((N_IN, N_BATCH))
    w, b = rng.standard_normal(N_IN), 0.3
    gamma, beta = 1.7, -0.4
    r = rng.standard_normal(N_BATCH)
    h = w @ Y0 + b
    mu, sigma = h.mean(), np.sqrt(h.var() + eps)
    Z = (h - mu) / sigma
    Yl = gamma * Z + beta
    g = r * (1 - np.tanh(Yl) ** 2)  # dL/dY_l for L = sum r tanh(Y_l)
    return dict(Y0=Y0, w=w, b=b, gamma=gamma, beta=beta, r=r, h=h, mu=mu, sigma=sigma, Z=Z, g=g,
                loss=_bn_loss(b, gamma, beta, r, eps))


def _bn_loss(b, gamma, beta, r, eps):
    """L(w_i, Y_{l-1}) = sum r tanh(BN(w_i^T Y_{l-1} + b)), through minibn's batch-norm layer."""
    def loss(w_, Y0_):
        h_ = (w_.reshape(1, N_IN) @ Y0_).reshape(N_BATCH, 1) + b
        y = F.batch_norm(h_, None, None, training=True, eps=eps) * gamma + beta  # Python-number affine:
        return (y.reshape(N_BATCH).tanh() * _const(r)).sum()  # complex step needs no real tensors here
    return loss


def _projection(Z, one_over_n_on_zz: bool):
    n = len(Z)
    zz = np.outer(Z, Z) / (n if one_over_n_on_zz else 1)
    return np.eye(n) - np.ones((n, n)) / n - zz


@formula("F000-31-BNJ", "000", "sec. 3.1", "dY_l/dZ_l = (1/sigma)(I - (1/n) 1 1^T - Z_l Z_l^T)",
         "one neuron, a batch of n; h = w_i^T Y_{l-1} + b_i, mu and sigma^2 the batch mean and biased "
         "variance of h (eps = 0), Z_l = (h - mu)/sigma, Y_l = gamma Z_l + beta. Since dY_l/dZ_l = gamma I "
         "trivially, the formula is read as the Jacobian of the normalized output with respect to the "
         "pre-normalization activation, dZ_l/dh, the only reading in which the projection appears")
def _bnj():
    s = _bn_setup()
    Z, sigma = s["Z"], s["sigma"]

    def normalize(h):
        return F.batch_norm(h.reshape(N_BATCH, 1), None, None, training=True, eps=0.0).reshape(N_BATCH)

    auto, numeric = jacobian(normalize, s["h"])
    as_written = _projection(Z, False) / sigma
    corrected = _projection(Z, True) / sigma
    res, auto_res = three_way({"as written": as_written, "corrected": corrected}, auto, numeric)
    root_n = np.sqrt(N_BATCH)  # Z' = (h - mu)/sigma' with sigma' = sqrt(n) sigma has dZ'/dh = dZ/dh / sqrt(n)
    norm_reading = rel(_projection(Z / root_n, False) / (sigma * root_n), numeric / root_n)
    verdict = identity_verdict(res["as written"], res["corrected"], TOL["complex"])
    return verdict, "dZ_l/dh = (1/sigma)(I - (1/n) 1 1^T - (1/n) Z_l Z_l^T), and dY_l/dh = gamma times that", \
        res["corrected"], (
            f"as written vs complex-step Jacobian {fmt(res['as written'])}, with 1/n on Z Z^T "
            f"{fmt(res['corrected'])}, autodiff {fmt(auto_res)} (n = {N_BATCH}). Other reading: if sigma "
            f"were the norm of h - mu (not its RMS), so that ||Z|| = 1, the formula as written would hold "
            f"({fmt(norm_reading)} with sigma' = sqrt(n) sigma), but the document defines sigma as the "
            "batch standard deviation")


@formula("F000-31-BNdw", "000", "sec. 3.1",
         "dL/dw_i = (gamma/sigma)(I - (1/n) 1 1^T - Z_l Z_l^T) Y_{l-1}^T dL/dY_l",
         "as F000-31-BNJ; w_i in R^in, Y_{l-1} in R^(in x n), dL/dY_l in R^n. As written the product is "
         "(n x n)(n x in)(n) and is not defined; the audit evaluates the factors in the only order "
         "that type-checks, Y_{l-1} P dL/dY_l, with and without the 1/n")
def _bndw():
    s = _bn_setup()
    auto, numeric = gradients(s["loss"], [s["w"], s["Y0"]])
    k = s["gamma"] / s["sigma"]
    as_written = k * s["Y0"] @ _projection(s["Z"], False) @ s["g"]
    corrected = k * s["Y0"] @ _projection(s["Z"], True) @ s["g"]
    res, auto_res = three_way({"as written": as_written, "corrected": corrected}, auto[0], numeric[0])
    verdict = identity_verdict(res["as written"], res["corrected"], TOL["complex"])
    return verdict, "dL/dw_i = (gamma/sigma) Y_{l-1} (I - (1/n) 1 1^T - (1/n) Z_l Z_l^T) dL/dY_l", \
        res["corrected"], (
            f"reordered, without 1/n: {fmt(res['as written'])}; reordered with 1/n: {fmt(res['corrected'])}; "
            f"autodiff vs complex-step {fmt(auto_res)}. Two corrections: the order of the factors "
            "(Y_{l-1} first) and the 1/n on Z Z^T")


@formula("F000-31-BNdY", "000", "sec. 3.1",
         "dL/dY_{l-1} = (gamma/sigma)(I - (1/n) 1 1^T - Z_l Z_l^T) dL/dY_l w_i^T",
         "as F000-31-BNJ; the right side is an n x in matrix while Y_{l-1} is in x n; the loss depends on "
         "Y_{l-1} through neuron i only, so the formula is compared with the whole gradient")
def _bndy():
    s = _bn_setup()
    auto, numeric = gradients(s["loss"], [s["w"], s["Y0"]])
    k = s["gamma"] / s["sigma"]
    as_written = k * np.outer(_projection(s["Z"], False) @ s["g"], s["w"])
    corrected = k * np.outer(s["w"], _projection(s["Z"], True) @ s["g"])
    transposed_only = as_written.T
    res, auto_res = three_way({"corrected": corrected, "transposed": transposed_only}, auto[1], numeric[1])
    verdict = identity_verdict(rel(as_written, numeric[1]), res["corrected"], TOL["complex"])
    return verdict, ("dL/dY_{l-1} = (gamma/sigma) w_i [(I - (1/n) 1 1^T - (1/n) Z_l Z_l^T) dL/dY_l]^T "
                     "(in x n); with several neurons, the sum of this over i"), res["corrected"], (
        f"as written has shape {as_written.shape}, the gradient {numeric[1].shape}; transposed but "
        f"without 1/n: {fmt(res['transposed'])}; transposed with 1/n: {fmt(res['corrected'])}; autodiff vs "
        f"complex-step {fmt(auto_res)}")


@formula("F000-31-SCALE", "000", "sec. 3.1",
         "sigma in the denominator cancels the effect of w_i: scaling w_i does not grow dL/dY",
         "scale invariance of batch norm: replace w_i (and b_i) by c w_i (c b_i); eps = 0 as the primary "
         "reading. Checked: the output, dL/dY_{l-1} (unchanged) and dL/dw_i (scaled by 1/c)")
def _scale():
    s = _bn_setup()

    def grads(c, eps):
        """Finite-difference gradients at (c w_i, c b_i)."""
        loss = _bn_loss(c * s["b"], s["gamma"], s["beta"], s["r"], eps)
        return gradients(loss, [c * s["w"], s["Y0"]])[1]

    base = grads(1.0, 0.0)
    changes = {c: (rel(grads(c, 0.0)[1], base[1]), rel(c * grads(c, 0.0)[0], base[0])) for c in (10.0, 1e3, -2.0)}
    with_eps = rel(grads(0.01, 1e-3)[1], grads(1.0, 1e-3)[1])
    positive = max(max(changes[10.0]), max(changes[1e3]))
    verdict = "HOLDS" if positive <= TOL["complex"] else "FALSE"
    return verdict, None, positive, (
        f"c = 10 and 1000: dL/dY_{{l-1}} unchanged to {fmt(max(changes[10.0][0], changes[1e3][0]))}, "
        f"c dL/d(c w_i) = dL/dw_i to {fmt(max(changes[10.0][1], changes[1e3][1]))} (exact at eps = 0). c = -2: "
        f"the output flips sign and dL/dY_{{l-1}} changes by {fmt(changes[-2.0][0])}: invariance needs c > 0. "
        f"With eps = 1e-3 and c = 0.01 the cancellation is only approximate: dL/dY_{{l-1}} changes by "
        f"{fmt(with_eps)}")


# -- sec. 3: the equivalent network -----------------------------------------------------------------


@formula("F000-3-EQNET", "000", "sec. 3",
         "w_eq = (gamma/sigma) w, b_eq = (gamma/sigma)(b - mu) + beta give w_eq^T x + b_eq = BN(w^T x + b)",
         "mu and sigma the batch mean and biased standard deviation of w^T x + b (eps = 0) on the batch "
         "at hand; equality on that batch")
def _eqnet():
    rng = _rng("eqnet")
    X, w, b, gamma, beta = rng.standard_normal((50, N_IN)), rng.standard_normal(N_IN), 0.7, 1.3, -0.2
    h = X @ w + b
    mu, sigma = h.mean(), h.std()
    bn = F.batch_norm(_const(h.reshape(-1, 1)), None, None, _const([gamma]), _const([beta]), training=True,
                      eps=0.0).numpy().ravel()
    folded = X @ ((gamma / sigma) * w) + (gamma / sigma) * (b - mu) + beta
    res = rel(folded, bn)
    other = rng.standard_normal((50, N_IN))
    h2 = other @ w + b
    bn2 = gamma * (h2 - h2.mean()) / h2.std() + beta
    off = rel(other @ ((gamma / sigma) * w) + (gamma / sigma) * (b - mu) + beta, bn2)
    return identity_verdict(res, None, TOL["exact"]), None, res, (
        f"batch of 50: folded vs batch norm {fmt(res)}; on another batch (statistics of the first) they "
        f"differ by {fmt(off)}: the equivalence is for the batch the statistics come from")


# -- sec. 2: OLS ------------------------------------------------------------------------------------------


def _ols_population(d=3, kappa=10.0, tag="ols"):
    rng = _rng(tag)
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    H = (q * np.geomspace(1, kappa, d)) @ q.T
    g = rng.standard_normal(d)
    return H, g, rng


def _exact_sample(H, n, rng):
    """n samples whose sample mean is exactly 0 and whose (biased) sample covariance is exactly H."""
    d = len(H)
    x = rng.standard_normal((n, d))
    x -= x.mean(0)
    c = x.T @ x / n
    x = x @ np.linalg.inv(np.linalg.cholesky(c)).T @ np.linalg.cholesky(H).T
    return x


@formula("F000-2-OLSBN", "000", "sec. 2",
         "with E(x) = 0: gamma (x^T w - E(x^T w)) / sqrt(Var(x^T w)) = gamma x^T w / sqrt(w^T H w)",
         "H = E(x x^T); batch norm with the population statistics of x^T w (or a batch whose sample mean "
         "is 0 and whose biased sample covariance is H), eps = 0")
def _olsbn():
    H, _, rng = _ols_population()
    x = _exact_sample(H, 40, rng)
    w, gamma = rng.standard_normal(3), 1.5
    bn = F.batch_norm(_const((x @ w).reshape(-1, 1)), None, None, _const([gamma]), None, training=True,
                      eps=0.0).numpy().ravel()
    formula_value = gamma * (x @ w) / np.sqrt(w @ H @ w)
    res = rel(formula_value, bn)
    y = rng.multivariate_normal(np.zeros(3), H, 40)
    bn_y = gamma * (y @ w - (y @ w).mean()) / (y @ w).std()
    sample_gap = rel(gamma * (y @ w) / np.sqrt(w @ H @ w), bn_y)
    return identity_verdict(res, None, TOL["exact"]), None, res, (
        f"batch with exact zero mean and covariance H: {fmt(res)}; an ordinary Gaussian batch of 40 "
        f"(sample statistics differ from the population's) differs by {fmt(sample_gap)}")


@formula("F000-2-OLSMIN", "000", "sec. 2", "u = H^{-1} g minimizes E[(y - x^T w)^2]",
         "g = E(x y), H = E(x x^T) positive definite; checked on a data set's empirical moments")
def _olsmin():
    rng = _rng("olsmin")
    x = rng.standard_normal((200, 4)) @ rng.standard_normal((4, 4))
    y = x @ rng.standard_normal(4) + 0.3 * rng.standard_normal(200)
    H, g = x.T @ x / 200, x.T @ y / 200
    u = np.linalg.solve(H, g)
    gradient = 2 * (H @ u - g)
    lstsq = np.linalg.lstsq(x, y, rcond=None)[0]
    res = rel(u, lstsq)
    return identity_verdict(res, None, 1e-10), None, res, (
        f"H^-1 g vs the least-squares solution: {fmt(res)}; gradient 2(H u - g) at u: "
        f"{fmt(np.abs(gradient).max())}; Hessian 2H has smallest eigenvalue {fmt(2 * np.linalg.eigvalsh(H).min())} "
        "> 0, so u is the unique minimizer (if H were singular, H^-1 would not exist)")


def _gd_converges(A, b, lr, steps=3000):
    """Gradient descent on f(w) = w^T A w - 2 b^T w + c (Hessian 2A) from w = (1, ..., 1)."""
    w = np.ones(len(b))
    target = np.linalg.solve(A, b)
    for _ in range(steps):
        w = w - lr * 2 * (A @ w - b)
        if not np.isfinite(w).all() or np.abs(w).max() > 1e12:
            return False
    return np.abs(w - target).max() < 1e-6


def _brackets(converges, predicted: float, delta: float = 0.01) -> bool:
    """True if gradient descent converges at (1 - delta) and diverges at (1 + delta) times ``predicted``."""
    return converges(predicted * (1 - delta)) and not converges(predicted * (1 + delta))


def _threshold(converges, lo: float, hi: float, iters: int = 30) -> float:
    """The largest learning rate that still converges, by bisection between lo (converges) and hi."""
    for _ in range(iters):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if converges(mid) else (lo, mid)
    return lo


@formula("F000-2-LR", "000", "sec. 2", "for OLS the maximum GD step size is 2/lambda_max(H)",
         "the objective as the document writes it, E[(y - x^T w)^2] (no factor 1/2), H = E(x x^T); "
         "gradient descent w <- w - eta grad")
def _lr_ols():
    H, g, _ = _ols_population(d=3, kappa=20.0, tag="lr")
    lam = np.linalg.eigvalsh(H).max()
    def converges(lr):
        return _gd_converges(H, g, lr, 4000)

    as_written = 0.0 if _brackets(converges, 2 / lam) else 1.0
    corrected = 0.0 if _brackets(converges, 1 / lam) else 1.0
    verdict = identity_verdict(as_written, corrected, 0.5)
    measured = _threshold(converges, 0.5 / lam, 3.0 / lam) * lam
    return verdict, ("1/lambda_max(H) for E[(y - x^T w)^2] (its Hessian is 2H); 2/lambda_max(H) holds for "
                     "(1/2) E[(y - x^T w)^2]"), abs(measured - 1), (
        f"4000 GD steps, kappa(H) = 20: at 0.99 x 2/lambda_max it {'converges' if converges(1.98 / lam) else 'diverges'}, "
        f"at 1.01 x 1/lambda_max it {'converges' if converges(1.01 / lam) else 'diverges'} and at 0.99 x "
        f"1/lambda_max it {'converges' if converges(0.99 / lam) else 'diverges'}; bisection puts the threshold at "
        f"eta lambda_max = {measured:.4f} (the residual is its distance from 1; 4000 steps blur the edge)")


@formula("F000-1-LR2", "000", "sec. 1", "the maximum allowed learning rate is 2/lambda_max of the Hessian",
         "gradient descent on a loss whose Hessian has largest eigenvalue lambda_max (at the minimum); "
         "tested on a quadratic (Hessian constant) and on f(w) = w^2/2 + w^4/4 (Hessian 1 at the minimum)")
def _lr2():
    rng = _rng("lr2")
    q, _ = np.linalg.qr(rng.standard_normal((4, 4)))
    A = (q * np.array([0.5, 1.0, 2.0, 8.0])) @ q.T
    b = rng.standard_normal(4)
    # f = (1/2) w^T A w - b^T w has Hessian A; GD w <- w - lr (A w - b)
    def quadratic(lr):
        return _gd_converges(A / 2, b / 2, lr, 4000)

    quadratic_ok = _brackets(quadratic, 2 / 8.0)
    measured = _threshold(quadratic, 0.5 / 8, 3.0 / 8) * 8

    def quartic(lr, w0):
        w = w0
        for _ in range(2000):
            w = w - lr * (w + w ** 3)
            if not np.isfinite(w) or abs(w) > 1e6:
                return False
        return abs(w) < 1e-8

    near = quartic(1.9, 0.05)
    far = quartic(1.9, 2.0)
    verdict = "CONDITIONAL" if quadratic_ok and near and not far else "FALSE"
    return verdict, ("exact for quadratic losses; in general 2/lambda_max at a minimum is the threshold of "
                     "local (linear) stability only, and 2/L with L a global bound on the curvature is what "
                     "guarantees descent from anywhere"), abs(measured - 2) / 2, (
        f"quadratic with lambda_max = 8: GD converges at 0.99 x 2/lambda_max and diverges at 1.01 x "
        f"({quadratic_ok}); bisection puts the edge at lr lambda_max = {measured:.4f} (residual: its relative "
        "distance from 2). "
        f"f = w^2/2 + w^4/4, lambda_max at the minimum = 1: lr = 1.9 < 2 converges from w0 = 0.05 ({near}) but "
        f"diverges from w0 = 2 (converges: {far})")


@formula("F000-2-HSTAR", "000", "sec. 2",
         "H* = H - g g^T/(u^T H u) has a pseudo-condition number independent of kappa(H) for d = 2",
         "u = H^{-1} g, g = E(x y); pseudo-condition number = largest / smallest nonzero eigenvalue of H* "
         "(H* u = 0, so H* is singular)")
def _hstar():
    rng = _rng("hstar")
    cond2, cond3 = [], []
    for kappa in (1.0, 10.0, 1e3, 1e6):
        for d, out in ((2, cond2), (3, cond3)):
            q, _ = np.linalg.qr(rng.standard_normal((d, d)))
            H = (q * np.geomspace(1, kappa, d)) @ q.T
            g = rng.standard_normal(d)
            u = np.linalg.solve(H, g)
            Hs = H - np.outer(g, g) / (u @ H @ u)
            eig = np.linalg.eigvalsh(Hs)
            nonzero = eig[np.abs(eig) > 1e-9 * np.abs(eig).max()]
            out.append(nonzero.max() / nonzero.min())
    spread2 = max(abs(c - 1) for c in cond2)
    verdict = "HOLDS" if spread2 < 1e-9 and max(cond3) / min(cond3) > 10 else "FALSE"
    return verdict, None, spread2, (
        "H* u = 0, so for d = 2 H* has rank 1 and a single nonzero eigenvalue: its pseudo-condition number "
        f"is exactly 1 for kappa(H) = 1, 10, 1e3, 1e6 (largest deviation from 1: {fmt(spread2)}). For d = 3 "
        f"it varies with kappa: {', '.join(f'{c:.3g}' for c in cond3)}")


@formula("F000-1-CAI", "000", "sec. 1",
         "with BN reparameterization, gradient descent converges for any lr up to 1 (Cai et al. 2019, OLS)",
         "population OLS with zero-mean x: f(w, gamma) = E[(y - gamma x^T w / sqrt(w^T H w))^2], gradient "
         "descent on w and gamma with one learning rate lr; 'converges' = f reaches its minimum E y^2 - u^T H u "
         "to 1e-8 relative within 20 000 steps")
def _cai():
    H, g, rng = _ols_population(d=4, kappa=100.0, tag="cai")
    u = np.linalg.solve(H, g)
    best = -(u @ H @ u)  # min over w of E y^2 - ... up to the constant E y^2

    def run(lr, lr_gamma=None, steps=20000):
        w, gamma = np.array([1.0, -0.5, 0.3, 0.8]), 0.1
        lr_gamma = lr if lr_gamma is None else lr_gamma
        for _ in range(steps):
            s = np.sqrt(w @ H @ w)
            a = g @ w / s
            grad_gamma = 2 * gamma - 2 * a
            grad_w = -2 * gamma * (g / s - (g @ w) * (H @ w) / s ** 3)
            w, gamma = w - lr * grad_w, gamma - lr_gamma * grad_gamma
            if not np.isfinite(gamma) or not np.isfinite(w).all():
                return False
        value = gamma ** 2 - 2 * gamma * (g @ w) / np.sqrt(w @ H @ w)
        return abs(value - best) < 1e-8 * abs(best)

    with np.errstate(all="ignore"):  # the runs that diverge overflow on the way
        shared = {lr: run(lr) for lr in (0.01, 0.1, 0.5, 0.9, 0.99, 1.0, 1.01, 2.0)}
        w_only = {lr: run(lr, lr_gamma=0.1) for lr in (1.0, 10.0, 100.0, 1000.0)}
    holds_below_1 = all(shared[lr] for lr in (0.01, 0.1, 0.5, 0.9, 0.99))
    verdict = "CONDITIONAL" if holds_below_1 and not shared[1.01] and all(w_only.values()) else "FALSE"
    return verdict, ("for the objective without 1/2: the weights w converge for every learning rate tried "
                     "(scale invariance), the scale gamma only for lr_gamma < 1 (its step is gamma <- gamma - "
                     "2 lr (gamma - gamma*)); 'up to 1' is the gamma condition, with 1 itself excluded"), None, (
        "one shared lr: " + ", ".join(f"{lr}: {'converges' if ok else 'does not'}" for lr, ok in shared.items())
        + "; lr_gamma = 0.1 and lr_w = " + ", ".join(f"{lr}: {'converges' if ok else 'does not'}"
                                                      for lr, ok in w_only.items()))

"""Seed 002 (Deshmukh, a Piazza answer on the gradients of batch norm)."""

from __future__ import annotations

import numpy as np

from .. import functional as F
from .core import const as _const, TOL, hessian, fmt, formula, gradients, identity_verdict, rel, three_way

M = 6
EPS = 1e-3  # the document's formula carries an eps; a visible one keeps it honest


def _rng(tag):
    return np.random.default_rng(sum(map(ord, tag)) + 2)



def _setup():
    rng = _rng("bn")
    z = rng.standard_normal(M) * 1.5 + 0.4
    gamma, beta, r = 1.3, -0.2, rng.standard_normal(M)
    mu, var = z.mean(), z.var()
    zhat = (z - mu) / np.sqrt(var + EPS)
    y = gamma * zhat + beta
    g_y = r * (1 - np.tanh(y) ** 2)

    def loss(z_, gamma_, beta_):
        y_ = F.batch_norm(z_.reshape(M, 1), None, None, gamma_, beta_, training=True, eps=EPS)
        return (y_.reshape(M).tanh() * _const(r)).sum()

    return dict(z=z, gamma=gamma, beta=beta, r=r, mu=mu, var=var, zhat=zhat, g_y=g_y, loss=loss)


def _three(s):
    return gradients(s["loss"], [s["z"], np.array([s["gamma"]]), np.array([s["beta"]])])


SETTING = ("one channel, a batch of m = 6: zhat = (z - mu_B)/sqrt(sigma_B^2 + eps) with the batch mean and "
           "biased variance, y = gamma zhat + beta, g_y = dL/dy for L = sum r tanh(y); eps = 1e-3")


@formula("F002-GGAMMA", "002", "sec. 1", "g_gamma = zhat^T g_y", SETTING)
def _ggamma():
    s = _setup()
    auto, numeric = _three(s)
    res, auto_res = three_way({"zhat^T g_y": np.array([s["zhat"] @ s["g_y"]])}, auto[1], numeric[1])
    return identity_verdict(res["zhat^T g_y"], None, TOL["complex"]), None, res["zhat^T g_y"], (
        f"vs complex-step dL/dgamma: {fmt(res['zhat^T g_y'])}; autodiff {fmt(auto_res)}")


@formula("F002-GBETA", "002", "sec. 1", "g_beta = g_y", SETTING)
def _gbeta():
    s = _setup()
    auto, numeric = _three(s)
    as_written = rel(s["g_y"], numeric[2])  # a vector of m against a scalar: shapes differ
    corrected = rel(np.array([s["g_y"].sum()]), numeric[2])
    return identity_verdict(as_written, corrected, TOL["complex"]), "g_beta = 1^T g_y (the sum over the batch)", \
        corrected, (f"g_y is a vector of {M} per-sample terms and dL/dbeta a scalar, so as written the two "
                    f"cannot even be compared; their sum vs complex step {fmt(corrected)}; autodiff "
                    f"{fmt(rel(auto[2], numeric[2]))}. As written it is right only for a batch of one")


@formula("F002-GZ", "002", "sec. 1", "g_z = gamma / sqrt(sigma_B^2 + eps) (.) g_y",
         SETTING + "; training mode, mu_B and sigma_B the statistics of this batch (functions of z)")
def _gz():
    s = _setup()
    auto, numeric = _three(s)
    scale = s["gamma"] / np.sqrt(s["var"] + EPS)
    g = s["g_y"]
    as_written = scale * g
    corrected = scale * (g - g.mean() - s["zhat"] * (g * s["zhat"]).mean())
    res, auto_res = three_way({"as written": as_written, "corrected": corrected}, auto[0], numeric[0])
    # eval mode: the statistics are constants, and the formula is exact
    rm, rv = _const([s["mu"]]), _const([s["var"]])

    def eval_loss(z_):
        y_ = F.batch_norm(z_.reshape(M, 1), rm, rv, _const([s["gamma"]]), _const([s["beta"]]), training=False,
                          eps=EPS)
        return (y_.reshape(M).tanh() * _const(s["r"])).sum()

    eval_res = rel(as_written, gradients(eval_loss, [s["z"]], method="richardson")[1][0])
    return identity_verdict(res["as written"], res["corrected"], TOL["complex"]), (
        "g_z = (gamma/sqrt(sigma_B^2 + eps)) (g_y - mean(g_y) - zhat mean(g_y zhat)); "
        "the formula as written is the eval-mode gradient, with mu_B and sigma_B held constant"), \
        res["corrected"], (
            f"as written vs complex step: {fmt(res['as written'])} (it drops the paths through mu_B and "
            f"sigma_B); corrected: {fmt(res['corrected'])}; autodiff {fmt(auto_res)}. With the statistics "
            f"held fixed (eval mode, Richardson differences) the formula as written holds: {fmt(eval_res)}")


# -- the optimization argument -----------------------------------------------------------------------


def _smooth_problem():
    """A smooth non-quadratic loss of theta in R^5 with its gradient and Hessian from minibn."""
    rng = _rng("taylor")
    A = rng.standard_normal((8, 5))
    b = rng.standard_normal(8)
    theta = rng.standard_normal(5) * 0.3

    def loss(t):
        return ((_const(A) @ t - _const(b)).tanh() ** 2).sum() + (t * t).sum() * 0.1

    g, H = hessian(loss, theta)
    return loss, theta, g, H


@formula("F002-TAYLOR", "002", "sec. 2",
         "L(theta^(k+1)) = L(theta^(k)) - alpha ||d||^2 + (alpha^2/2) d^T Hess L d, d = -grad L, theta^(k+1) = theta^(k) + alpha d",
         "a smooth, non-quadratic loss of 5 parameters; gradient and Hessian from minibn's double backward; "
         "the gap measured for alpha = 1e-1 ... 1e-3")
def _taylor():
    loss, theta, g, H = _smooth_problem()
    d = -g
    base = loss(_const(theta)).item()
    alphas = np.array([1e-1, 1e-2, 1e-3])
    gaps = np.array([abs(loss(_const(theta + a * d)).item() - (base - a * d @ d + 0.5 * a * a * d @ H @ d))
                     for a in alphas])
    slope = np.polyfit(np.log(alphas), np.log(gaps), 1)[0]
    as_written = gaps[0] / abs(base)
    corrected = abs(slope - 3)
    verdict = identity_verdict(as_written, corrected, 0.05)
    return verdict, "L(theta^(k+1)) = L(theta^(k)) - alpha ||d||^2 + (alpha^2/2) d^T Hess d + O(alpha^3) (exact for a quadratic L)", \
        corrected, (f"the gap is {', '.join(f'{x:.2g}' for x in gaps)} at alpha = 1e-1, 1e-2, 1e-3: it falls "
                    f"as alpha^{slope:.2f}, a third-order remainder the equation omits (the residual is |slope - 3|)")


@formula("F002-DESCENT", "002", "sec. 2",
         "if (alpha^2/2) d^T Hess L d >= alpha ||d||^2 then d is not a descent direction",
         "d = -grad L; a descent direction means grad L^T d < 0")
def _descent():
    _, theta, g, H = _smooth_problem()
    d = -g
    curvature = d @ H @ d / (d @ d)
    alpha = 4 / curvature  # makes (alpha^2/2) d^T H d = 2 alpha ||d||^2 >= alpha ||d||^2
    condition = 0.5 * alpha ** 2 * d @ H @ d >= alpha * d @ d
    directional = g @ d
    rng = _rng("descent")
    violations, tried = 0, 0
    for _ in range(500):  # the corrected claim on quadratics: the condition makes the step not decrease L
        B = rng.standard_normal((4, 4))
        Hq = B @ B.T
        gq = rng.standard_normal(4)
        dq = -gq
        a = rng.uniform(0, 4) / (dq @ Hq @ dq / (dq @ dq))
        if 0.5 * a * a * dq @ Hq @ dq >= a * dq @ dq:
            tried += 1
            change = a * gq @ dq + 0.5 * a * a * dq @ Hq @ dq  # exact for the quadratic
            violations += change < -1e-12 * abs(a * gq @ dq)
    verdict = "FALSE" if condition and directional < 0 else "HOLDS"
    return verdict, ("then the step of size alpha along d does not decrease the second-order model (for a "
                     "quadratic L: L(theta + alpha d) >= L(theta)); d = -grad L is always a descent direction"), None, (
        f"an instance with the condition met (alpha = {alpha:.3g}) has grad L^T d = {directional:.3g} < 0: d is "
        f"a descent direction, only the step is too long. The corrected statement on {tried} random quadratic "
        f"instances meeting the condition: {violations} exceptions")


def _scaled_problem():
    """phi(y) = L((y - mu)/sigma): a fixed recentring and rescaling of a loss L."""
    rng = _rng("scale")
    A = rng.standard_normal((7, 5))
    b = rng.standard_normal(7)
    mu, sigma = rng.standard_normal(5), 2.5

    def L(z):
        return ((_const(A) @ z - _const(b)).tanh() ** 2).sum()

    def phi(y):
        return L((y - _const(mu)) / sigma)

    y = rng.standard_normal(5) * 2
    return L, phi, y, mu, sigma


@formula("F002-SCALE", "002", "sec. 2",
         "BN recenters and scales y to z = (y - mu)/sigma; the loss gradient and Hessian also get scaled by 1/sigma",
         "mu and sigma held fixed (a reparameterization z = (y - mu)/sigma); gradients and Hessians with "
         "respect to y against those with respect to z, by double backward and finite differences")
def _scale():
    L, phi, y, mu, sigma = _scaled_problem()
    z = (y - mu) / sigma
    g_phi, H_phi = hessian(phi, y)
    g_L, H_L = hessian(L, z)
    fd = gradients(phi, [y])[1][0]
    grad_res = rel(g_L / sigma, fd)
    as_written = max(grad_res, rel(H_L / sigma, H_phi))
    corrected = max(grad_res, rel(H_L / sigma ** 2, H_phi))
    return identity_verdict(as_written, corrected, TOL["complex"]), \
        "the gradient is scaled by 1/sigma and the Hessian by 1/sigma^2", corrected, (
            f"gradient / sigma vs complex step: {fmt(grad_res)}; Hessian / sigma vs double backward: "
            f"{fmt(rel(H_L / sigma, H_phi))}; Hessian / sigma^2: {fmt(rel(H_L / sigma ** 2, H_phi))} "
            f"(sigma = {sigma}). With batch statistics (mu, sigma functions of y) neither holds: the projection "
            "of F000-31-BNJ enters")


@formula("F002-SIGMA3", "002", "sec. 2",
         "L(theta^(k+1)) = L(theta^(k)) - (alpha/sigma^2) ||d||^2 + (alpha^2/(2 sigma^3)) d^T Hess L d",
         "the expansion of F002-TAYLOR for the rescaled loss phi(y) = L((y - mu)/sigma) with a gradient step "
         "on y, d = -grad_z L and Hess L in z; a quadratic L, so that the expansion is exact")
def _sigma3():
    rng = _rng("sigma3")
    B = rng.standard_normal((5, 5))
    Hz = B @ B.T
    c = rng.standard_normal(5)
    mu, sigma, alpha = rng.standard_normal(5), 2.5, 0.05

    def phi(y):
        z = (y - _const(mu)) / sigma
        return (z * (_const(Hz) @ z)).sum() * 0.5 + (z * _const(c)).sum()

    y = rng.standard_normal(5)
    g_y = gradients(phi, [y])[1][0]
    z = (y - mu) / sigma
    d = -(Hz @ z + c)  # -grad_z L
    after = phi(_const(y - alpha * g_y)).item()
    before = phi(_const(y)).item()
    written = before - alpha / sigma ** 2 * d @ d + alpha ** 2 / (2 * sigma ** 3) * d @ Hz @ d
    fixed = before - alpha / sigma ** 2 * d @ d + alpha ** 2 / (2 * sigma ** 4) * d @ Hz @ d
    scale = abs(alpha / sigma ** 2 * d @ d)
    as_written, corrected = abs(written - after) / scale, abs(fixed - after) / scale
    return identity_verdict(as_written, corrected, 1e-12), \
        "L(theta^(k+1)) = L(theta^(k)) - (alpha/sigma^2)||d||^2 + (alpha^2/(2 sigma^4)) d^T Hess L d (+ O(alpha^3) in general)", \
        corrected, (f"exact loss after the step vs the expansion (relative to the first-order term): sigma^3 "
                    f"{fmt(as_written)}, sigma^4 {fmt(corrected)}. sigma^3 follows from F002-SCALE's Hessian "
                    "scaling 1/sigma; with the correct 1/sigma^2 the power is 4")


@formula("F002-CLAIM", "002", "sec. 2", "the quadratic term can no longer be greater than the first order term",
         "(alpha^2/(2 sigma^3)) d^T Hess L d <= (alpha/sigma^2) ||d||^2 for every step size alpha, as the text "
         "concludes; also tested with the corrected sigma^4")
def _claim():
    rng = _rng("claim")
    counter, tried = 0, 0
    example = None
    for _ in range(1000):
        B = rng.standard_normal((4, 4))
        H = B @ B.T
        d = rng.standard_normal(4)
        sigma = rng.uniform(0.2, 5)
        alpha = 10 ** rng.uniform(-3, 1)
        tried += 1
        quadratic = alpha ** 2 / (2 * sigma ** 4) * d @ H @ d  # even with the corrected power
        if quadratic > alpha / sigma ** 2 * d @ d:
            counter += 1
            example = example or (alpha, sigma, quadratic / (alpha / sigma ** 2 * d @ d))
    verdict = "FALSE" if counter else "HOLDS"
    return verdict, ("only for alpha < 2 sigma^2 ||d||^2 / (d^T Hess d): the ratio of the two terms is "
                     "(alpha/(2 sigma^2)) d^T Hess d/||d||^2, which grows without bound with alpha"), None, (
        f"{counter} of {tried} random instances (alpha in [1e-3, 10], sigma in [0.2, 5]) have the quadratic "
        f"term larger, with sigma^4 already; e.g. alpha = {example[0]:.3g}, sigma = {example[1]:.3g}: ratio "
        f"{example[2]:.3g}" if example else f"none of {tried} instances")

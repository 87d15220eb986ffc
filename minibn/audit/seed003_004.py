"""Seeds 003 (a summary of Bjorck et al. 2018) and 004 (a report on Santurkar et al. 2018)."""

from __future__ import annotations

import numpy as np

from .core import bound_verdict, formula, slack


def _rng(tag):
    return np.random.default_rng(sum(map(ord, tag)) + 3)


@formula("F003-1", "003", "'Why Large Learning Rates Are Good?', under 'Formula'",
         "(missing: the text reads 'Formula' and then only the legend 'Here grad l(x) means the true gradient, "
         "and grad_SGD(x) means the step size taken by SGD')",
         "the summary announces a formula bounding the error of an SGD step and leaves it out; nothing to "
         "evaluate. The evidence checks the standard fact the sentence around it describes")
def _f003_1():
    rng = _rng("sgd")
    n, d, batch, alpha = 200, 3, 8, 0.5
    per_sample = rng.standard_normal((n, d)) + 1.0
    full = per_sample.mean(0)
    C = np.mean(np.sum((per_sample - full) ** 2, 1))
    draws = rng.integers(0, n, (20000, batch))  # minibatches drawn with replacement
    errors = np.sum((alpha * per_sample[draws].mean(1) - alpha * full) ** 2, 1)
    estimate, stderr = errors.mean(), errors.std() / np.sqrt(len(errors))
    predicted = alpha ** 2 * C / batch
    return "NOT-CHECKABLE", None, None, (
        "the formula itself is absent from the document. The sentence around it says the error of a gradient "
        "step grows with the learning rate; for minibatches drawn with replacement, E||alpha grad_SGD - alpha "
        f"grad l||^2 = alpha^2 C/|B| with C the per-sample gradient variance: Monte Carlo {estimate:.4f} +- "
        f"{stderr:.4f} against {predicted:.4f} (|B| = {batch}, alpha = {alpha})")


@formula("F003-2", "003", "'Divergence of NN Without BN'",
         "(missing: 'Here they define' is followed by no definition)",
         "the summary refers to a defined quantity (a relative loss) without stating it")
def _f003_2():
    return "NOT-CHECKABLE", None, None, "the definition announced by 'Here they define' is not in the document"


@formula("F004-L45", "004", "sec. 1.3, Lemma 4.5 (Figure 4)",
         "||W0 - W*hat||^2 <= ||W0 - W*||^2 - (1/||W*||^2)(||W*||^2 - <W*, W0>)^2 if <W0, W*> > 0",
         "instantiated where the lemma's objects exist: least squares with zero-mean x, the standard optimum "
         "W* = u = H^{-1} g; batch norm of x^T w makes the loss scale-invariant in w, so its optima in w form "
         "the ray {c u, c > 0} (gamma absorbing the scale), and W*hat is the point of that ray closest to W0 "
         "(found by a 1-D search, not by the projection formula). 2000 random W0 with <W0, W*> > 0, and "
         "500 with <W0, W*> <= 0 to see the condition matter")
def _l45():
    rng = _rng("l45")
    d = 4
    B = rng.standard_normal((d, d))
    H = B @ B.T + 0.1 * np.eye(d)
    g = rng.standard_normal(d)
    u = np.linalg.solve(H, g)

    def bn_loss(w):  # E[(y - gamma x^T w / sqrt(w^T H w))^2] minimized over gamma, up to E y^2
        return -(g @ w) ** 2 / (w @ H @ w)

    rays = [bn_loss(c * u) for c in (0.1, 1.0, 7.0)]
    off_ray = bn_loss(u + 0.3 * rng.standard_normal(d))

    def distance_to_ray(W0):
        """min over c >= 0 of ||W0 - c u||^2 for each row of W0, by ternary search on c (convex in c)."""
        lo, hi = np.zeros(len(W0)), np.full(len(W0), 1e3)
        for _ in range(200):
            a, b = lo + (hi - lo) / 3, hi - (hi - lo) / 3
            fa = np.sum((W0 - a[:, None] * u) ** 2, 1)
            fb = np.sum((W0 - b[:, None] * u) ** 2, 1)
            lo, hi = np.where(fa > fb, a, lo), np.where(fa > fb, hi, b)
        c = (lo + hi) / 2
        return np.sum((W0 - c[:, None] * u) ** 2, 1)

    W0 = rng.standard_normal((4000, d)) * rng.uniform(0.1, 10, (4000, 1))
    lhs = distance_to_ray(W0)
    rhs = np.sum((W0 - u) ** 2, 1) - (u @ u - W0 @ u) ** 2 / (u @ u)
    slacks = np.array([slack(a, b) for a, b in zip(lhs, rhs)])
    positive, negative = slacks[W0 @ u > 0], slacks[W0 @ u <= 0]
    verdict, worst, violations = bound_verdict(positive, tol=1e-9)
    _, worst_neg, violations_neg = bound_verdict(negative, tol=1e-9)
    return verdict, None, worst, (
        f"the BN loss is the same at c u for c = 0.1, 1, 7 ({max(rays) - min(rays):.1e} apart) and higher off "
        f"the ray ({off_ray - rays[1]:.3g} above): its optima are the ray. With <W0, W*> > 0: {violations} "
        f"violations in {len(positive)}, worst slack {worst:.2g}: the bound holds with equality (the closest "
        f"point of the ray is the projection). With <W0, W*> <= 0: {violations_neg} of {len(negative)} violate "
        f"it (worst slack {worst_neg:.2g}): the condition is needed")

"""Lp normalization on the CPU: fused serial numba kernels for 2-D float arrays, with the
names of the package docstring."""

from __future__ import annotations

import numpy as np

from ..numba_support import contiguous, jit, or_fill


def _forward(x, gamma, beta, p, p_int, c_const, eps, centered, mean_shift, y, mu, s, S):
    # y = gamma n / s + beta = slope x + offset, n = x - mu (mean_shift) or x, u = x - mu (centered) or x,
    # s = c ((1/m) sum |u|^p + eps)^(1/p) for finite p, c (max |u| + eps) for p = inf (functional/lpnorm.py).
    # p_int = p when p is a whole number (>= 0), else -1: an integer power is a few multiplications,
    # a real one a call to pow
    n, c = x.shape
    acc = np.zeros(c)
    for i in range(n):
        for j in range(c):
            acc[j] += x[i, j]
    for j in range(c):
        mu[j] = acc[j] / n
        acc[j] = 0.0
    for i in range(n):
        for j in range(c):
            u = x[i, j] - mu[j] if centered else x[i, j]
            if p == np.inf:
                acc[j] = max(acc[j], abs(u))
            elif p == 2.0:
                acc[j] += u * u
            elif p == 1.0:
                acc[j] += abs(u)
            elif p_int >= 0:
                acc[j] += abs(u) ** p_int
            else:
                acc[j] += abs(u) ** p
    slope = np.empty(c)
    offset = np.empty(c)
    for j in range(c):
        if p == np.inf:
            S[j] = acc[j] + eps
            s[j] = c_const * S[j]
        else:
            S[j] = acc[j] / n + eps
            s[j] = c_const * S[j] ** (1.0 / p)
        slope[j] = gamma[j] / s[j]
        offset[j] = beta[j] - (mu[j] * slope[j] if mean_shift else 0.0)
    for i in range(n):
        for j in range(c):
            y[i, j] = x[i, j] * slope[j] + offset[j]


def _backward(g, x, gamma, mu, s, S, p, q_int, c_const, centered, mean_shift, dx, dgamma, dbeta):
    # dx = P_n(gamma_over_s g) + P_u(ds_term w) (the package docstring); shift holds the two projections'
    # means. (n here is the number of rows; the numerator n of the formula is v below.)
    n, c = x.shape
    w = np.empty_like(x)  # ds/du = ds_du_scale w: w = sign(u) [|u| = max] (p = inf), |u|^(p-1) sign(u) (finite p)
    ds_du_scale = np.empty(c)
    if p == np.inf:
        top = np.zeros(c)
        for i in range(n):
            for j in range(c):
                top[j] = max(top[j], abs(x[i, j] - mu[j] if centered else x[i, j]))
        ties = np.zeros(c)
        for i in range(n):
            for j in range(c):
                u = x[i, j] - mu[j] if centered else x[i, j]
                hit = abs(u) == top[j]
                ties[j] += hit
                w[i, j] = ((u > 0) * 1.0 - (u < 0) * 1.0) * hit
        for j in range(c):
            ds_du_scale[j] = c_const / ties[j]  # ties share the subgradient
    else:
        # one loop per case, each branch-free inside (the signs of data are unpredictable)
        for i in range(n):
            for j in range(c):
                u = x[i, j] - mu[j] if centered else x[i, j]
                if p == 2.0:
                    w[i, j] = u
                elif p == 1.0:
                    w[i, j] = (u > 0) * 1.0 - (u < 0) * 1.0
                elif q_int >= 0:
                    w[i, j] = abs(u) ** q_int * ((u > 0) * 1.0 - (u < 0) * 1.0)
                else:
                    w[i, j] = abs(u) ** (p - 1) * ((u > 0) * 1.0 - (u < 0) * 1.0)
        for j in range(c):
            ds_du_scale[j] = s[j] / (n * S[j])
    sum_g = np.zeros(c)
    sum_gn = np.zeros(c)
    sum_w = np.zeros(c)
    for i in range(n):
        for j in range(c):
            v = x[i, j] - mu[j] if mean_shift else x[i, j]
            sum_g[j] += g[i, j]
            sum_gn[j] += g[i, j] * v
            sum_w[j] += w[i, j]
    gamma_over_s = np.empty(c)
    ds_term = np.empty(c)
    shift = np.empty(c)
    for j in range(c):
        dbeta[j] = sum_g[j]
        dgamma[j] = sum_gn[j] / s[j]
        gamma_over_s[j] = gamma[j] / s[j]
        ds_term[j] = -gamma[j] * sum_gn[j] / (s[j] * s[j]) * ds_du_scale[j]
        shift[j] = ((gamma_over_s[j] * sum_g[j] / n if mean_shift else 0.0)
                    + (ds_term[j] * sum_w[j] / n if centered else 0.0))
    for i in range(n):
        for j in range(c):
            dx[i, j] = gamma_over_s[j] * g[i, j] + ds_term[j] * w[i, j] - shift[j]


def _whole(p) -> int:
    """p as an int when it is a whole number (and not inf), else -1."""
    return int(p) if p != np.inf and float(p).is_integer() and p >= 0 else -1


def forward(x, gamma, beta, p, c, eps, centered, mean_shift):
    """(y, mu, s, S); y = gamma n / s + beta."""
    x = contiguous(x)
    ch = x.shape[1]
    gamma = or_fill(gamma, x, 1)
    beta = or_fill(beta, x, 0)
    y = np.empty_like(x)
    mu, s, S = (np.empty(ch, x.dtype) for _ in range(3))
    jit(_forward)(x, gamma, beta, float(p), _whole(p), float(c), float(eps), bool(centered),
                      bool(mean_shift), y, mu, s, S)
    return y, mu, s, S


def backward(g, x, gamma, mu, s, S, p, c, centered, mean_shift):
    """(dx, dgamma, dbeta)."""
    g, x = contiguous(g), contiguous(x)
    ch = x.shape[1]
    gamma = or_fill(gamma, x, 1)
    dx = np.empty_like(x)
    dgamma, dbeta = np.empty(ch, x.dtype), np.empty(ch, x.dtype)
    jit(_backward)(g, x, gamma, mu, s, S, float(p), _whole(p - 1), float(c), bool(centered),
                       bool(mean_shift), dx, dgamma, dbeta)
    return dx, dgamma, dbeta

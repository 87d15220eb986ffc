"""Lp normalization on arrays (NumPy or CuPy): the reference kernels, written with array
methods so that they run on either; the formulas of the package docstring, step by step.
"""

from __future__ import annotations

import math

from ...backend import array_module
from ..channels import per_channel, reduce_axes


def _abs_pow(xp, u, p):
    return u * u if p == 2 else xp.abs(u) ** p


def forward(x, gamma, beta, p, c, eps, centered, mean_shift):
    """y = gamma n / s + beta; returns (y, mu, s, S), the statistics of shape (C,)."""
    xp = array_module(x)
    axes = reduce_axes(x.ndim)
    m = x.size // x.shape[1]
    mu = x.sum(axis=axes) / m
    centered_x = x - per_channel(mu, x.ndim)
    u = centered_x if centered else x
    if p == math.inf:
        S = xp.abs(u).max(axis=axes) + eps
        s = c * S
    else:
        S = _abs_pow(xp, u, p).sum(axis=axes) / m + eps
        s = c * S ** (1 / p)
    y = (centered_x if mean_shift else x) / per_channel(s, x.ndim)
    if gamma is not None:
        y *= per_channel(gamma, x.ndim)
    if beta is not None:
        y += per_channel(beta, x.ndim)
    return y, mu, s, S


def backward(g, x, gamma, mu, s, S, p, c, centered, mean_shift):
    """dx = P_n(g'/s) - P_u(A ds/du / s^2), dgamma = sum g n / s, dbeta = sum g (g' = gamma g)."""
    xp = array_module(x)
    axes = reduce_axes(x.ndim)
    nd = x.ndim
    m = x.size // x.shape[1]
    centered_x = x - per_channel(mu, nd)
    u = centered_x if centered else x
    n = centered_x if mean_shift else x
    s_b = per_channel(s, nd)
    dbeta = g.sum(axis=axes)
    dgamma = (g * n).sum(axis=axes) / s
    A = dgamma * s if gamma is None else gamma * dgamma * s  # sum gamma g n
    g_scaled = g if gamma is None else g * per_channel(gamma, nd)
    if p == math.inf:
        size = xp.abs(u)
        hits = (size == per_channel(size.max(axis=axes), nd)).astype(x.dtype)
        ds_du = xp.sign(u) * hits * per_channel(c / hits.sum(axis=axes), nd)  # ties share the subgradient
    elif p == 2:
        ds_du = u * per_channel(s / (m * S), nd)
    else:
        ds_du = xp.abs(u) ** (p - 1) * xp.sign(u) * per_channel(s / (m * S), nd)
    through_n = g_scaled / s_b
    through_s = ds_du * per_channel(-A / (s * s), nd)
    if mean_shift:
        through_n -= through_n.sum(axis=axes, keepdims=True) / m
    if centered:
        through_s -= through_s.sum(axis=axes, keepdims=True) / m
    return through_n + through_s, dgamma, dbeta

"""Lp normalization on arrays (NumPy or CuPy): the reference kernels, written with array
methods so that they run on either; the formulas of the package docstring, step by step.
"""

from __future__ import annotations

import math

from ...devices import array_module
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
    """dx = P_n(gamma_over_s g) + P_u(ds_term w),  dgamma = sum g n / s,  dbeta = sum g."""
    xp = array_module(x)
    axes = reduce_axes(x.ndim)
    nd = x.ndim
    m = x.size // x.shape[1]
    centered_x = x - per_channel(mu, nd)
    u = centered_x if centered else x
    n = centered_x if mean_shift else x
    dbeta = g.sum(axis=axes)
    sum_gn = (g * n).sum(axis=axes)
    dgamma = sum_gn / s
    gamma_over_s = 1 / s if gamma is None else gamma / s
    if p == math.inf:
        size = xp.abs(u)
        hits = (size == per_channel(size.max(axis=axes), nd)).astype(x.dtype)
        w = xp.sign(u) * hits
        ds_du_scale = c / hits.sum(axis=axes)  # ties share the subgradient
    else:
        w = u if p == 2 else xp.abs(u) ** (p - 1) * xp.sign(u)
        ds_du_scale = s / (m * S)
    ds_term = -(sum_gn if gamma is None else gamma * sum_gn) / (s * s) * ds_du_scale
    through_n = g * per_channel(gamma_over_s, nd)
    through_s = w * per_channel(ds_term, nd)
    if mean_shift:
        through_n -= through_n.sum(axis=axes, keepdims=True) / m
    if centered:
        through_s -= through_s.sum(axis=axes, keepdims=True) / m
    return through_n + through_s, dgamma, dbeta

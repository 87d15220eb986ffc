"""Lp normalization on the GPU: CuPy reductions for the per-channel sums, and each elementwise
stage fused into one GPU kernel; the formulas of the package docstring, with its names."""

from __future__ import annotations

import math

from ..channels import per_channel, reduce_axes
from ..batchnorm.cupy_gpu import scale_shift
from ..cupy_support import cupy, fuse


def _signed_power(u, q):
    return cupy.abs(u) ** q * cupy.sign(u)


def _signed_hits(u, top):
    return (cupy.abs(u) == top) * cupy.sign(u)


def _input_gradient(g, w, gamma_over_s, ds_term, shift):
    return gamma_over_s * g + ds_term * w - shift


def forward(x, gamma, beta, p, c, eps, centered, mean_shift):
    """(y, mu, s, S); y = x slope + offset, slope = gamma / s, offset = beta (- mu slope with mean_shift)."""
    axes, nd, m = reduce_axes(x.ndim), x.ndim, x.size // x.shape[1]
    mu = x.sum(axis=axes) / m
    u = x - per_channel(mu, nd) if centered else x
    if p == math.inf:
        S = cupy.abs(u).max(axis=axes) + eps
        s = c * S
    else:
        S = (u * u if p == 2 else cupy.abs(u) ** p).sum(axis=axes) / m + eps
        s = c * S ** (1 / p)
    slope = 1 / s if gamma is None else gamma / s
    offset = cupy.zeros_like(slope) if beta is None else beta.astype(slope.dtype)
    if mean_shift:
        offset = offset - mu * slope
    return scale_shift(x, slope, offset), mu, s, S


def backward(g, x, gamma, mu, s, S, p, c, centered, mean_shift):
    """dx = gamma_over_s g + ds_term w - shift, with ds/du = ds_du_scale w; dgamma, dbeta."""
    axes, nd, m = reduce_axes(x.ndim), x.ndim, x.size // x.shape[1]
    mu_b = per_channel(mu, nd)
    u = x - mu_b if centered else x
    n = x - mu_b if mean_shift else x
    gamma = cupy.ones(x.shape[1], dtype=x.dtype) if gamma is None else gamma
    dbeta = g.sum(axis=axes)
    sum_gn = (g * n).sum(axis=axes)
    dgamma = sum_gn / s
    if p == math.inf:
        w = fuse(_signed_hits)(u, per_channel(cupy.abs(u).max(axis=axes), nd))
        ds_du_scale = c / cupy.abs(w).sum(axis=axes)  # ties share the subgradient
    else:
        w = u if p == 2 else fuse(_signed_power)(u, p - 1)
        ds_du_scale = s / (m * S)
    gamma_over_s = gamma / s
    ds_term = -gamma * sum_gn / (s * s) * ds_du_scale
    shift = cupy.zeros_like(gamma_over_s)
    if mean_shift:
        shift = shift + gamma_over_s * dbeta / m
    if centered:
        shift = shift + ds_term * w.sum(axis=axes) / m
    dx = fuse(_input_gradient)(g, w, per_channel(gamma_over_s, nd), per_channel(ds_term, nd), per_channel(shift, nd))
    return dx, dgamma, dbeta

"""GPU kernels for the normalization layers: CuPy reductions for the per-channel sums, and the
elementwise stages fused with ``cupy.fuse`` into one kernel each (one pass over the data).

Formulas as in the NumPy references (``batchnorm.py``, ``lpnorm.py``), which
these match to rounding (tested through minibn's strict CuPy stand-in on
machines without a GPU, and on a GPU by the tests marked ``gpu``).
"""

from __future__ import annotations

import math

import cupy

from .batchnorm import per_channel, reduce_axes

_fused: dict = {}


def _fuse(fn):
    """``cupy.fuse`` of ``fn``, built once."""
    if fn.__name__ not in _fused:
        _fused[fn.__name__] = cupy.fuse()(fn)
    return _fused[fn.__name__]


def _scale_shift(x, a, b):
    return x * a + b


def _scale_shift_relu(x, a, b):
    return cupy.maximum(x * a + b, 0)


def _bn_dx(dy, x, mean, k, a, b):
    return k * (dy - a - (x - mean) * b)


def _times(g, k):
    return g * k


def _signed_power(u, q):
    return cupy.abs(u) ** q * cupy.sign(u)


def _signed_hits(u, top):
    return (cupy.abs(u) == top) * cupy.sign(u)


def _lp_dx(g, w, coef_n, coef_s, shift):
    return coef_n * g + coef_s * w - shift


def _ones(c, dtype):
    return cupy.ones(c, dtype=dtype)


def batch_norm_forward(x, gamma, beta, eps, relu=False):
    axes, nd, m = reduce_axes(x.ndim), x.ndim, x.size // x.shape[1]
    mean = x.sum(axis=axes) / m
    xc = x - per_channel(mean, nd)
    var = (xc * xc).sum(axis=axes) / m
    invstd = 1 / cupy.sqrt(var + eps)
    scale = invstd if gamma is None else gamma * invstd
    shift = -mean * scale if beta is None else beta - mean * scale
    y = _fuse(_scale_shift_relu if relu else _scale_shift)(x, per_channel(scale, nd), per_channel(shift, nd))
    return y, mean, var, invstd


def batch_norm_backward(dy, x, mean, invstd, gamma, relu_out=None, input_grad_sum=False):
    axes, nd, m = reduce_axes(x.ndim), x.ndim, x.size // x.shape[1]
    if relu_out is not None:
        dy = _relu_grad(dy, relu_out)
    mean_b = per_channel(mean, nd)
    dbeta = dy.sum(axis=axes)
    sum_dy_xc = (dy * (x - mean_b)).sum(axis=axes)
    dgamma = sum_dy_xc * invstd
    k = invstd if gamma is None else gamma * invstd
    dx = _fuse(_bn_dx)(dy, x, mean_b, per_channel(k, nd), per_channel(dbeta / m, nd),
                       per_channel(sum_dy_xc * invstd * invstd / m, nd))
    return dx, dgamma, dbeta, dx.sum(axis=axes) if input_grad_sum else None


def affine_forward(x, center, scale, gamma, beta):
    nd = x.ndim
    a = 1 / scale if gamma is None else gamma / scale
    b = cupy.zeros_like(a) if beta is None else beta.astype(a.dtype)
    if center is not None:
        b = b - center * a
    return _fuse(_scale_shift)(x, per_channel(a, nd), per_channel(b, nd))


def affine_backward(g, x, center, scale, gamma):
    axes, nd = reduce_axes(x.ndim), x.ndim
    xc = x if center is None else x - per_channel(center, nd)
    dgamma = (g * xc).sum(axis=axes) / scale
    dbeta = g.sum(axis=axes)
    dx = _fuse(_times)(g, per_channel(1 / scale if gamma is None else gamma / scale, nd))
    return dx, dgamma, dbeta


def lp_norm_forward(x, gamma, beta, p, c, eps, centered, mean_shift):
    axes, nd, m = reduce_axes(x.ndim), x.ndim, x.size // x.shape[1]
    mu = x.sum(axis=axes) / m
    u = x - per_channel(mu, nd) if centered else x
    if p == math.inf:
        S = cupy.abs(u).max(axis=axes) + eps
        s = c * S
    else:
        S = (u * u if p == 2 else cupy.abs(u) ** p).sum(axis=axes) / m + eps
        s = c * S ** (1 / p)
    a = 1 / s if gamma is None else gamma / s
    b = cupy.zeros_like(a) if beta is None else beta.astype(a.dtype)
    if mean_shift:
        b = b - mu * a
    return _fuse(_scale_shift)(x, per_channel(a, nd), per_channel(b, nd)), mu, s, S


def lp_norm_backward(g, x, gamma, mu, s, S, p, c, centered, mean_shift):
    axes, nd, m = reduce_axes(x.ndim), x.ndim, x.size // x.shape[1]
    mu_b = per_channel(mu, nd)
    u = x - mu_b if centered else x
    n = x - mu_b if mean_shift else x
    gamma = _ones(x.shape[1], x.dtype) if gamma is None else gamma
    dbeta = g.sum(axis=axes)
    sum_gn = (g * n).sum(axis=axes)
    dgamma = sum_gn / s
    if p == math.inf:
        w = _fuse(_signed_hits)(u, per_channel(cupy.abs(u).max(axis=axes), nd))
        k = c / cupy.abs(w).sum(axis=axes)  # ties share the subgradient
    else:
        w = u if p == 2 else _fuse(_signed_power)(u, p - 1)
        k = s / (m * S)
    coef_n = gamma / s
    coef_s = -gamma * sum_gn / (s * s) * k
    shift = cupy.zeros_like(coef_n)
    if mean_shift:
        shift = shift + coef_n * dbeta / m
    if centered:
        shift = shift + coef_s * w.sum(axis=axes) / m
    dx = _fuse(_lp_dx)(g, w, per_channel(coef_n, nd), per_channel(coef_s, nd), per_channel(shift, nd))
    return dx, dgamma, dbeta


def _relu(x):
    return cupy.maximum(x, 0)


def _relu_grad(g, y):
    return cupy.where(y <= 0, 0, g)  # one kernel; an inf or NaN g stays out where y <= 0, as in PyTorch


def relu_forward(x):
    return _fuse(_relu)(x)


def relu_backward(g, y):
    return _relu_grad(g, y)

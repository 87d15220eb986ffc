"""Batch normalization on the CPU: fused serial numba kernels for 2-D float arrays.

The formulas of the package docstring, with its names. Per-channel sums accumulate over
blocks of ``BLOCK`` rows in the input's dtype, the blocks' sums in float64
(``numba_support``); numbers: ``python bench/batchnorm.py``.
"""

from __future__ import annotations

import math

import numpy as np

from ..numba_support import BLOCK, contiguous, jit, or_fill
from ..relu import numba_cpu as relu_kernels


def _forward(x, gamma, beta, eps, relu, y, mean, var, invstd):
    # One pass for both statistics: sums of d = x - x[0] and d^2. Shifting by the first row
    # keeps E[d^2] - E[d]^2 free of the cancellation that E[x^2] - E[x]^2 suffers when the mean
    # is large compared with the spread. Each block of BLOCK rows is summed in x's dtype
    # (vector arithmetic with no conversions, which makes this pass 2.5x faster in float32),
    # the blocks' sums in float64.
    n, c = x.shape
    x0 = x[0].copy()
    s1 = np.zeros(c)
    s2 = np.zeros(c)
    b1 = np.empty(c, x.dtype)
    b2 = np.empty(c, x.dtype)
    for start in range(0, n, BLOCK):
        b1[:] = 0
        b2[:] = 0
        for i in range(start, min(start + BLOCK, n)):
            for j in range(c):
                d = x[i, j] - x0[j]
                b1[j] += d
                b2[j] += d * d
        for j in range(c):
            s1[j] += b1[j]
            s2[j] += b2[j]
    slope = np.empty(c, x.dtype)  # y = x slope + offset, in x's dtype as PyTorch computes it
    offset = np.empty(c, x.dtype)
    for j in range(c):
        mean_d = s1[j] / n
        v = max(s2[j] / n - mean_d * mean_d, 0.0)
        mean[j] = x0[j] + mean_d
        var[j] = v
        inv = 1.0 / math.sqrt(v + eps)
        invstd[j] = inv
        slope[j] = gamma[j] * inv
        offset[j] = beta[j] - (x0[j] + mean_d) * (gamma[j] * inv)
    for i in range(n):  # relu: the activation as an epilogue, max(gamma xhat + beta, 0), NaN staying NaN
        for j in range(c):
            v = x[i, j] * slope[j] + offset[j]
            y[i, j] = (0 if v <= 0 else v) if relu else v


def _backward(dy, x, mean, invstd, gamma, relu_out, dx, dgamma, dbeta, dx_sum):
    # dx = (gamma / sigma) (dy - mean(dy) - xhat mean(dy xhat))   (seed 000 sec. 3.1), xhat = (x - mean) / sigma,
    # computed as gamma_over_sigma (dy - mean_dy - (x - mean) mean_dy_xc_over_var) with
    # mean_dy_xc_over_var = mean(dy (x - mean)) / sigma^2;  dgamma = sum dy xhat;  dbeta = sum dy.
    # With a ReLU epilogue (relu_out has rows: its output), dy is first zeroed where the output
    # is <= 0, by a multiplication: a conditional here compiles to scalar code, which runs 2x
    # slower on data that comes from memory. (inf * 0 is NaN, so the caller redoes the rare
    # case of non-finite sums with an exact mask.) dx_sum receives the sum over samples of dx.
    # Sums run in blocks of rows as in the forward kernel. relu and want_sum are the same for
    # every element: the compiler hoists them, making a loop for each case.
    n, c = x.shape
    relu = relu_out.shape[0] > 0
    sum_dy = np.zeros(c)
    sum_dy_xc = np.zeros(c)
    b1 = np.empty(c, x.dtype)
    b2 = np.empty(c, x.dtype)
    for start in range(0, n, BLOCK):
        b1[:] = 0
        b2[:] = 0
        stop = min(start + BLOCK, n)
        for i in range(start, stop):
            for j in range(c):
                g = dy[i, j] * (relu_out[i, j] > 0) if relu else dy[i, j]
                b1[j] += g
                b2[j] += g * (x[i, j] - mean[j])
        for j in range(c):
            sum_dy[j] += b1[j]
            sum_dy_xc[j] += b2[j]
    gamma_over_sigma = np.empty(c, x.dtype)
    mean_dy = np.empty(c, x.dtype)
    mean_dy_xc_over_var = np.empty(c, x.dtype)
    for j in range(c):
        dbeta[j] = sum_dy[j]
        dgamma[j] = sum_dy_xc[j] * invstd[j]
        gamma_over_sigma[j] = gamma[j] * invstd[j]
        mean_dy[j] = sum_dy[j] / n
        mean_dy_xc_over_var[j] = sum_dy_xc[j] * invstd[j] * invstd[j] / n
    want_sum = dx_sum.shape[0] > 0
    total = np.zeros(c)
    for start in range(0, n, BLOCK):
        b1[:] = 0
        stop = min(start + BLOCK, n)
        for i in range(start, stop):
            for j in range(c):
                g = dy[i, j] * (relu_out[i, j] > 0) if relu else dy[i, j]
                v = gamma_over_sigma[j] * (g - mean_dy[j] - (x[i, j] - mean[j]) * mean_dy_xc_over_var[j])
                dx[i, j] = v
                if want_sum:
                    b1[j] += v
        if want_sum:
            for j in range(c):
                total[j] += b1[j]
    for j in range(dx_sum.shape[0]):
        dx_sum[j] = total[j]


def forward(x, gamma, beta, eps, relu=False):
    """(y, mean, var, invstd); y = gamma xhat + beta, then max(y, 0) with ``relu``."""
    x = contiguous(x)
    c = x.shape[1]
    gamma = or_fill(gamma, x, 1)
    beta = or_fill(beta, x, 0)
    y = np.empty_like(x)
    mean, var, invstd = (np.empty(c, x.dtype) for _ in range(3))
    jit(_forward)(x, gamma, beta, eps, bool(relu), y, mean, var, invstd)
    return y, mean, var, invstd


def backward(dy, x, mean, invstd, gamma, relu_out=None, input_grad_sum=False):
    """(dx, dgamma, dbeta, sum of dx over samples or None), dy first masked by ``relu_out`` > 0."""
    dy, x = contiguous(dy), contiguous(x)
    c = x.shape[1]
    gamma = or_fill(gamma, x, 1)
    relu_out = np.empty((0, c), x.dtype) if relu_out is None else contiguous(relu_out)
    dx = np.empty_like(x)
    dgamma, dbeta = np.empty(c, x.dtype), np.empty(c, x.dtype)
    dx_sum = np.empty(c if input_grad_sum else 0, x.dtype)
    jit(_backward)(dy, x, mean, invstd, gamma, relu_out, dx, dgamma, dbeta, dx_sum)
    if relu_out.shape[0] and not np.isfinite(dbeta).all():
        # an inf or NaN of dy reached the sums, maybe from a unit the ReLU had cut, where the
        # multiplication made it NaN; the exact mask drops those, as PyTorch does
        return backward(relu_kernels.backward(dy, relu_out), x, mean, invstd, gamma, None, input_grad_sum)
    return dx, dgamma, dbeta, dx_sum if input_grad_sum else None


def _double_backward(u, x, g, mean, invstd, gamma, gx, gg, ggamma):
    # The derivatives of dx = (gamma / sigma) r, r = g - mean(g) - xhat mean(g xhat), for an upstream u
    # (functional/batchnorm.py, BatchNormGrad):  d/dg = (gamma / sigma) (u - mean(u) - xhat mean(u xhat)),
    # d/dgamma = sum u r / sigma,
    # d/dx = -(gamma / sigma^2) (xhat mean(u r) + mean(g xhat) u_projected + r mean(u xhat)),
    # u_projected = u - mean(u) - xhat mean(u xhat).
    n, c = x.shape
    sum_g = np.zeros(c)
    sum_gx = np.zeros(c)
    sum_u = np.zeros(c)
    sum_ux = np.zeros(c)
    for i in range(n):
        for j in range(c):
            xhat = (x[i, j] - mean[j]) * invstd[j]
            sum_g[j] += g[i, j]
            sum_gx[j] += g[i, j] * xhat
            sum_u[j] += u[i, j]
            sum_ux[j] += u[i, j] * xhat
    g_mean = sum_g / n
    mean_g_xhat = sum_gx / n
    u_mean = sum_u / n
    mean_u_xhat = sum_ux / n
    sum_ur = np.zeros(c)
    for i in range(n):
        for j in range(c):
            xhat = (x[i, j] - mean[j]) * invstd[j]
            sum_ur[j] += u[i, j] * (g[i, j] - g_mean[j] - xhat * mean_g_xhat[j])
    for j in range(c):
        ggamma[j] = sum_ur[j] * invstd[j]
    for i in range(n):
        for j in range(c):
            xhat = (x[i, j] - mean[j]) * invstd[j]
            r = g[i, j] - g_mean[j] - xhat * mean_g_xhat[j]
            u_projected = u[i, j] - u_mean[j] - xhat * mean_u_xhat[j]
            gamma_over_sigma = gamma[j] * invstd[j]
            gg[i, j] = gamma_over_sigma * u_projected
            gx[i, j] = -gamma_over_sigma * invstd[j] * (xhat * sum_ur[j] / n + mean_g_xhat[j] * u_projected
                                                        + r * mean_u_xhat[j])


def double_backward(u, x, g, mean, invstd, gamma):
    """(d/dx, d/dg, d/dgamma) of the input gradient, for an upstream u."""
    u, x, g = contiguous(u), contiguous(x), contiguous(g)
    c = x.shape[1]
    gamma = or_fill(gamma, x, 1)
    gx, gg = np.empty_like(x), np.empty_like(x)
    ggamma = np.empty(c, x.dtype)
    jit(_double_backward)(u, x, g, mean, invstd, gamma, gx, gg, ggamma)
    return gx, gg, ggamma


# -- normalization by fixed statistics (eval mode) --------------------------------------------


def _affine_forward(x, center, scale, gamma, beta, y):
    # y = gamma (x - center) / scale + beta = slope x + offset per channel.
    n, c = x.shape
    slope = np.empty(c)
    offset = np.empty(c)
    for j in range(c):
        slope[j] = gamma[j] / scale[j]
        offset[j] = beta[j] - center[j] * slope[j]
    for i in range(n):
        for j in range(c):
            y[i, j] = x[i, j] * slope[j] + offset[j]


def _affine_backward(g, x, center, scale, gamma, dx, dgamma, dbeta):
    n, c = x.shape
    sum_g = np.zeros(c)
    sum_g_xc = np.zeros(c)
    for i in range(n):
        for j in range(c):
            sum_g[j] += g[i, j]
            sum_g_xc[j] += g[i, j] * (x[i, j] - center[j])
            dx[i, j] = g[i, j] * (gamma[j] / scale[j])
    for j in range(c):
        dbeta[j] = sum_g[j]
        dgamma[j] = sum_g_xc[j] / scale[j]


def affine_forward(x, center, scale, gamma, beta):
    """y = gamma (x - center) / scale + beta."""
    x = contiguous(x)
    center = or_fill(center, x, 0)
    gamma = or_fill(gamma, x, 1)
    beta = or_fill(beta, x, 0)
    y = np.empty_like(x)
    jit(_affine_forward)(x, center, scale, gamma, beta, y)
    return y


def affine_backward(g, x, center, scale, gamma):
    """(dx, dgamma, dbeta) of ``affine_forward``."""
    g, x = contiguous(g), contiguous(x)
    c = x.shape[1]
    center = or_fill(center, x, 0)
    gamma = or_fill(gamma, x, 1)
    dx = np.empty_like(x)
    dgamma, dbeta = np.empty(c, x.dtype), np.empty(c, x.dtype)
    jit(_affine_backward)(g, x, center, scale, gamma, dx, dgamma, dbeta)
    return dx, dgamma, dbeta

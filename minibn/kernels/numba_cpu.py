"""Fused CPU kernels for the normalization layers, compiled by numba on first use.

Each kernel makes two to four passes over a C-contiguous (N, C) array,
accumulating per-channel sums in float64 (batch norm's: over blocks of rows
summed in the input's dtype), where the NumPy reference makes six to
twelve. They are serial on purpose: measured on the 2-core build machine,
parallel versions (prange over blocks of channels) ran 4-6x slower than these
serial ones once OpenBLAS had run a matrix product in the same process (its
threads spin-wait on the same two cores), with the OpenMP layer, with
OMP_WAIT_POLICY=PASSIVE, and with the workqueue layer alike; inside a
training step that is always the case; ``python bench/threads.py`` measures it again with
OPENBLAS_THREAD_TIMEOUT=1 and with threadpoolctl, where they lose too. Serial kernels need no
threading layer at all. Numbers: ``python bench/batchnorm.py``.

Compilation happens on first call and is cached on disk (``cache=True``),
so ``import minibn`` never waits for numba.
"""

from __future__ import annotations

import math

import numpy as np

_compiled: dict = {}
_BLOCK = 32  # rows summed in the input's dtype before the float64 total


def _contiguous(a):
    """``a`` in C order with its shape (``np.ascontiguousarray`` makes a 0-d array 1-d)."""
    a = np.asarray(a)
    return a if a.flags.c_contiguous else a.copy(order="C")


def _jit(fn):
    """The numba-compiled version of ``fn`` (compiled, or loaded from the disk cache, once)."""
    if fn.__name__ not in _compiled:
        import numba

        _compiled[fn.__name__] = numba.njit(cache=True, nogil=True)(fn)
    return _compiled[fn.__name__]


def _or_fill(v, x, fill: float):
    """A per-channel vector, or (None) ``fill`` in every channel of x, in x's dtype."""
    return np.full(x.shape[1], fill, x.dtype) if v is None else v


# -- batch normalization ---------------------------------------------------------------------


def _bn_forward(x, gamma, beta, eps, relu, y, mean, var, invstd):
    # One pass for both statistics: sums of d = x - x[0] and d^2. Shifting by the first row
    # keeps E[d^2] - E[d]^2 free of the cancellation that E[x^2] - E[x]^2 suffers when the mean
    # is large compared with the spread. Each block of _BLOCK rows is summed in x's dtype
    # (vector arithmetic with no conversions, which makes this pass 2.5x faster in float32),
    # the blocks' sums in float64.
    n, c = x.shape
    x0 = x[0].copy()
    s1 = np.zeros(c)
    s2 = np.zeros(c)
    b1 = np.empty(c, x.dtype)
    b2 = np.empty(c, x.dtype)
    for start in range(0, n, _BLOCK):
        b1[:] = 0
        b2[:] = 0
        for i in range(start, min(start + _BLOCK, n)):
            for j in range(c):
                d = x[i, j] - x0[j]
                b1[j] += d
                b2[j] += d * d
        for j in range(c):
            s1[j] += b1[j]
            s2[j] += b2[j]
    scale = np.empty(c, x.dtype)  # y = x * scale + shift, in x's dtype as PyTorch computes it
    shift = np.empty(c, x.dtype)
    for j in range(c):
        m = s1[j] / n
        v = max(s2[j] / n - m * m, 0.0)
        mean[j] = x0[j] + m
        var[j] = v
        inv = 1.0 / math.sqrt(v + eps)
        invstd[j] = inv
        scale[j] = gamma[j] * inv
        shift[j] = beta[j] - (x0[j] + m) * (gamma[j] * inv)
    for i in range(n):  # relu: the activation as an epilogue, max(gamma xhat + beta, 0), NaN staying NaN
        for j in range(c):
            v = x[i, j] * scale[j] + shift[j]
            y[i, j] = (0 if v <= 0 else v) if relu else v


def _bn_backward(dy, x, mean, invstd, gamma, relu_out, dx, dgamma, dbeta, dx_sum):
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
    for start in range(0, n, _BLOCK):
        b1[:] = 0
        b2[:] = 0
        stop = min(start + _BLOCK, n)
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
    for start in range(0, n, _BLOCK):
        b1[:] = 0
        stop = min(start + _BLOCK, n)
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


def batch_norm_forward(x, gamma, beta, eps, relu=False):
    x = _contiguous(x)
    c = x.shape[1]
    gamma = _or_fill(gamma, x, 1)
    beta = _or_fill(beta, x, 0)
    y = np.empty_like(x)
    mean, var, invstd = (np.empty(c, x.dtype) for _ in range(3))
    _jit(_bn_forward)(x, gamma, beta, eps, bool(relu), y, mean, var, invstd)
    return y, mean, var, invstd


def batch_norm_backward(dy, x, mean, invstd, gamma, relu_out=None, input_grad_sum=False):
    dy, x = _contiguous(dy), _contiguous(x)
    c = x.shape[1]
    gamma = _or_fill(gamma, x, 1)
    relu_out = np.empty((0, c), x.dtype) if relu_out is None else _contiguous(relu_out)
    dx = np.empty_like(x)
    dgamma, dbeta = np.empty(c, x.dtype), np.empty(c, x.dtype)
    dx_sum = np.empty(c if input_grad_sum else 0, x.dtype)
    _jit(_bn_backward)(dy, x, mean, invstd, gamma, relu_out, dx, dgamma, dbeta, dx_sum)
    if relu_out.shape[0] and not np.isfinite(dbeta).all():
        # an inf or NaN of dy reached the sums, maybe from a unit the ReLU had cut, where the
        # multiplication made it NaN; the exact mask drops those, as PyTorch does
        return batch_norm_backward(relu_backward(dy, relu_out), x, mean, invstd, gamma, None, input_grad_sum)
    return dx, dgamma, dbeta, dx_sum if input_grad_sum else None


def _bn_double_backward(u, x, g, mean, invstd, gamma, gx, gg, ggamma):
    # The derivatives of dx = (gamma / sigma) r, r = g - mean(g) - xhat mean(g xhat), for an upstream u
    # (functional/batchnorm.py, BatchNormGrad):  d/dg = (gamma / sigma) (u - mean(u) - xhat mean(u xhat)),
    # d/dgamma = sum u r / sigma,  d/dx = -(gamma / sigma^2) (xhat mean(u r) + mean(g xhat) P u + r mean(u xhat)).
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
    u_xhat = sum_ux / n
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
            u_projected = u[i, j] - u_mean[j] - xhat * u_xhat[j]
            gamma_over_sigma = gamma[j] * invstd[j]
            gg[i, j] = gamma_over_sigma * u_projected
            gx[i, j] = -gamma_over_sigma * invstd[j] * (xhat * sum_ur[j] / n + mean_g_xhat[j] * u_projected
                                                        + r * u_xhat[j])


def batch_norm_double_backward(u, x, g, mean, invstd, gamma):
    u, x, g = _contiguous(u), _contiguous(x), _contiguous(g)
    c = x.shape[1]
    gamma = _or_fill(gamma, x, 1)
    gx, gg = np.empty_like(x), np.empty_like(x)
    ggamma = np.empty(c, x.dtype)
    _jit(_bn_double_backward)(u, x, g, mean, invstd, gamma, gx, gg, ggamma)
    return gx, gg, ggamma


# -- normalization by fixed statistics (eval mode) ----------------------------------------------


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
    x = _contiguous(x)
    center = _or_fill(center, x, 0)
    gamma = _or_fill(gamma, x, 1)
    beta = _or_fill(beta, x, 0)
    y = np.empty_like(x)
    _jit(_affine_forward)(x, center, scale, gamma, beta, y)
    return y


def affine_backward(g, x, center, scale, gamma):
    g, x = _contiguous(g), _contiguous(x)
    c = x.shape[1]
    center = _or_fill(center, x, 0)
    gamma = _or_fill(gamma, x, 1)
    dx = np.empty_like(x)
    dgamma, dbeta = np.empty(c, x.dtype), np.empty(c, x.dtype)
    _jit(_affine_backward)(g, x, center, scale, gamma, dx, dgamma, dbeta)
    return dx, dgamma, dbeta


# -- Lp normalization ---------------------------------------------------------------------------


def _lp_forward(x, gamma, beta, p, p_int, c_const, eps, centered, mean_shift, y, mu, s, S):
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


def _lp_backward(g, x, gamma, mu, s, S, p, q_int, c_const, centered, mean_shift, dx, dgamma, dbeta):
    # dx = P_n(g' / s) - P_u(A ds/du / s^2), g' = gamma g, A = sum g' n, ds/du = ds_du_scale w
    # (functional/lpnorm.py); gamma_over_s and ds_term are the two coefficients, shift the projections' means.
    n, c = x.shape
    w = np.empty_like(x)  # ds/du = k w: w = sign(u) [|u| = max] (p = inf), |u|^(p-1) sign(u) (finite p)
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


def lp_norm_forward(x, gamma, beta, p, c, eps, centered, mean_shift):
    x = _contiguous(x)
    ch = x.shape[1]
    gamma = _or_fill(gamma, x, 1)
    beta = _or_fill(beta, x, 0)
    y = np.empty_like(x)
    mu, s, S = (np.empty(ch, x.dtype) for _ in range(3))
    _jit(_lp_forward)(x, gamma, beta, float(p), _whole(p), float(c), float(eps), bool(centered),
                      bool(mean_shift), y, mu, s, S)
    return y, mu, s, S


def lp_norm_backward(g, x, gamma, mu, s, S, p, c, centered, mean_shift):
    g, x = _contiguous(g), _contiguous(x)
    ch = x.shape[1]
    gamma = _or_fill(gamma, x, 1)
    dx = np.empty_like(x)
    dgamma, dbeta = np.empty(ch, x.dtype), np.empty(ch, x.dtype)
    _jit(_lp_backward)(g, x, gamma, mu, s, S, float(p), _whole(p - 1), float(c), bool(centered),
                       bool(mean_shift), dx, dgamma, dbeta)
    return dx, dgamma, dbeta


# -- relu ---------------------------------------------------------------------------------------------


def _relu_forward(x, y):
    for i in range(x.size):
        y[i] = 0 if x[i] <= 0 else x[i]  # NaN stays NaN, as in NumPy's maximum and PyTorch


def _relu_backward(g, y, dx):
    for i in range(g.size):
        gi = g[i]
        dx[i] = 0 if y[i] <= 0 else gi  # PyTorch's threshold_backward: an inf or NaN g stays out


def relu_forward(x):
    x = _contiguous(x)
    y = np.empty_like(x)
    _jit(_relu_forward)(x.reshape(-1), y.reshape(-1))
    return y


def relu_backward(g, y):
    g, y = _contiguous(g), _contiguous(y)
    dx = np.empty_like(g)
    _jit(_relu_backward)(g.reshape(-1), y.reshape(-1), dx.reshape(-1))
    return dx


# -- softmax cross-entropy ------------------------------------------------------------------------


def _cross_entropy_forward(x, target, losses, probs):
    n, c = x.shape
    for i in range(n):
        top = x[i, 0]
        for j in range(1, c):
            top = max(top, x[i, j])
        total = 0.0
        for j in range(c):
            e = math.exp(x[i, j] - top)
            probs[i, j] = e
            total += e
        for j in range(c):
            probs[i, j] /= total
        losses[i] = top + math.log(total) - x[i, target[i]]


def cross_entropy_forward(x, target):
    x = _contiguous(x)
    losses = np.empty(x.shape[0], x.dtype)
    probs = np.empty_like(x)
    _jit(_cross_entropy_forward)(x, _contiguous(target), losses, probs)
    return losses, probs

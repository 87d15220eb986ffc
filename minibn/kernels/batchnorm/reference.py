"""Batch normalization on arrays (NumPy or CuPy): the reference kernels, written with array
methods so that they run on either; the formulas of the package docstring, step by step.
"""

from __future__ import annotations

from ..channels import per_channel, reduce_axes
from ..relu.reference import backward as relu_backward


def forward(x, gamma, beta, eps: float, relu: bool = False):
    """y = gamma xhat + beta (then max(y, 0) with ``relu``); returns (y, mean, var, invstd), the
    statistics of shape (C,)."""
    axes = reduce_axes(x.ndim)
    m = x.size // x.shape[1]
    mean = x.sum(axis=axes) / m
    y = x - per_channel(mean, x.ndim)
    var = (y * y).sum(axis=axes) / m
    invstd = 1 / (var + eps) ** 0.5
    y *= per_channel(invstd, x.ndim)
    if gamma is not None:
        y *= per_channel(gamma, x.ndim)
    if beta is not None:
        y += per_channel(beta, x.ndim)
    if relu:
        y.clip(0, None, out=y)
    return y, mean, var, invstd


def backward(dy, x, mean, invstd, gamma, relu_out=None, input_grad_sum=False):
    """The closed form (seed 000, sec. 3.1; Ioffe and Szegedy 2015):

        dx     = (gamma invstd) (dy - mean(dy) - xhat mean(dy xhat))
        dgamma = sum dy xhat
        dbeta  = sum dy

    With a ReLU epilogue, ``relu_out`` is its output y, and dy is first zeroed where y <= 0.
    Returns (dx, dgamma, dbeta, sum of dx over samples if ``input_grad_sum`` else None).
    """
    if relu_out is not None:
        dy = relu_backward(dy, relu_out)
    axes = reduce_axes(x.ndim)
    m = x.size // x.shape[1]
    xhat = (x - per_channel(mean, x.ndim)) * per_channel(invstd, x.ndim)
    dbeta = dy.sum(axis=axes)
    dgamma = (dy * xhat).sum(axis=axes)
    gamma_over_sigma = invstd if gamma is None else gamma * invstd
    xhat *= per_channel(dgamma / m, x.ndim)  # xhat mean(dy xhat)
    dx = dy - per_channel(dbeta / m, x.ndim)  # dy - mean_dy
    dx -= xhat
    dx *= per_channel(gamma_over_sigma, x.ndim)
    return dx, dgamma, dbeta, dx.sum(axis=axes) if input_grad_sum else None


def affine_forward(x, center, scale, gamma, beta):
    """Normalization by fixed statistics (eval mode): y = gamma (x - center) / scale + beta."""
    nd = x.ndim
    y = (x if center is None else x - per_channel(center, nd)) / per_channel(scale, nd)
    if gamma is not None:
        y *= per_channel(gamma, nd)
    if beta is not None:
        y += per_channel(beta, nd)
    return y


def affine_backward(g, x, center, scale, gamma):
    """dx = g gamma / scale,  dgamma = sum g (x - center) / scale,  dbeta = sum g."""
    axes, nd = reduce_axes(x.ndim), x.ndim
    xhat = (x if center is None else x - per_channel(center, nd)) / per_channel(scale, nd)
    dgamma = (g * xhat).sum(axis=axes)
    dbeta = g.sum(axis=axes)
    dx = g * per_channel(scale ** -1 if gamma is None else gamma / scale, nd)
    return dx, dgamma, dbeta


def double_backward(u, x, g, mean, invstd, gamma):
    """The derivatives of dx = gamma s r (``backward``) for an upstream u: (d/dx, d/dg, d/dgamma), with
    s = invstd, r = g - mean(g) - xhat a, a = mean(g xhat) (``mean_g_xhat``):

        d/dx     = -gamma s^2 (xhat mean(u r) + a (u - mean(u) - xhat mean(u xhat)) + r mean(u xhat))
        d/dg     = gamma s (u - mean(u) - xhat mean(u xhat))
        d/dgamma = s sum u r
    """
    axes, nd = reduce_axes(x.ndim), x.ndim
    m = x.size // x.shape[1]
    s = per_channel(invstd, nd)
    gamma_over_sigma = s if gamma is None else per_channel(gamma, nd) * s
    xhat = (x - per_channel(mean, nd)) * s
    mean_g_xhat = (g * xhat).sum(axis=axes, keepdims=True) / m
    r = g - g.sum(axis=axes, keepdims=True) / m - xhat * mean_g_xhat
    mean_u_xhat = (u * xhat).sum(axis=axes, keepdims=True) / m
    u_projected = u - u.sum(axis=axes, keepdims=True) / m - xhat * mean_u_xhat
    sum_ur = (u * r).sum(axis=axes)
    gx = -(gamma_over_sigma * s) * (xhat * (per_channel(sum_ur, nd) / m) + mean_g_xhat * u_projected + r * mean_u_xhat)
    return gx, gamma_over_sigma * u_projected, sum_ur * invstd

"""Batch normalization on the GPU: CuPy reductions for the per-channel sums, and the elementwise
stage of each kernel fused into one GPU kernel (one pass over the data); the formulas of the
package docstring, with its names. There is no double-backward kernel: the reference runs on CuPy.
"""

from __future__ import annotations

from ..channels import per_channel, reduce_axes
from ..cupy_support import cupy, fuse
from ..relu import cupy_gpu as relu_kernels


def _scale_shift(x, slope, offset):
    return x * slope + offset


def _scale_shift_relu(x, slope, offset):
    return cupy.maximum(x * slope + offset, 0)


def _input_gradient(dy, x, mean, gamma_over_sigma, mean_dy, mean_dy_xc_over_var):
    return gamma_over_sigma * (dy - mean_dy - (x - mean) * mean_dy_xc_over_var)


def _times(g, slope):
    return g * slope


def scale_shift(x, slope, offset, relu=False):
    """y = x slope + offset per channel (then max(y, 0) with ``relu``), one fused kernel; the Lp
    normalization's forward ends with it too."""
    nd = x.ndim
    return fuse(_scale_shift_relu if relu else _scale_shift)(x, per_channel(slope, nd), per_channel(offset, nd))


def forward(x, gamma, beta, eps, relu=False):
    """(y, mean, var, invstd); y = x slope + offset, slope = gamma invstd, offset = beta - mean slope."""
    axes, nd, m = reduce_axes(x.ndim), x.ndim, x.size // x.shape[1]
    mean = x.sum(axis=axes) / m
    xc = x - per_channel(mean, nd)
    var = (xc * xc).sum(axis=axes) / m
    invstd = 1 / cupy.sqrt(var + eps)
    slope = invstd if gamma is None else gamma * invstd
    offset = -mean * slope if beta is None else beta - mean * slope
    return scale_shift(x, slope, offset, relu), mean, var, invstd


def backward(dy, x, mean, invstd, gamma, relu_out=None, input_grad_sum=False):
    """dx = gamma_over_sigma (dy - mean_dy - (x - mean) mean_dy_xc_over_var), dgamma, dbeta."""
    axes, nd, m = reduce_axes(x.ndim), x.ndim, x.size // x.shape[1]
    if relu_out is not None:
        dy = relu_kernels.backward(dy, relu_out)
    mean_b = per_channel(mean, nd)
    dbeta = dy.sum(axis=axes)
    sum_dy_xc = (dy * (x - mean_b)).sum(axis=axes)
    dgamma = sum_dy_xc * invstd
    gamma_over_sigma = invstd if gamma is None else gamma * invstd
    dx = fuse(_input_gradient)(dy, x, mean_b, per_channel(gamma_over_sigma, nd), per_channel(dbeta / m, nd),
                               per_channel(sum_dy_xc * invstd * invstd / m, nd))
    return dx, dgamma, dbeta, dx.sum(axis=axes) if input_grad_sum else None


def affine_forward(x, center, scale, gamma, beta):
    """y = x slope + offset, slope = gamma / scale, offset = beta - center slope."""
    slope = 1 / scale if gamma is None else gamma / scale
    offset = cupy.zeros_like(slope) if beta is None else beta.astype(slope.dtype)
    if center is not None:
        offset = offset - center * slope
    return scale_shift(x, slope, offset)


def affine_backward(g, x, center, scale, gamma):
    """dx = g gamma / scale,  dgamma = sum g (x - center) / scale,  dbeta = sum g."""
    axes, nd = reduce_axes(x.ndim), x.ndim
    xc = x if center is None else x - per_channel(center, nd)
    dgamma = (g * xc).sum(axis=axes) / scale
    dbeta = g.sum(axis=axes)
    dx = fuse(_times)(g, per_channel(1 / scale if gamma is None else gamma / scale, nd))
    return dx, dgamma, dbeta

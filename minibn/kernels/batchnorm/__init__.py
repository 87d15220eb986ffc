"""Batch normalization on arrays: the kernels behind ``minibn.functional.batch_norm``.

Per channel, over the m values of a batch (channels on axis 1), with mean and
var the biased batch statistics, sigma = sqrt(var + eps), invstd = 1 / sigma
and xhat = (x - mean) / sigma:

    forward          y = gamma xhat + beta = x slope + offset,
                     slope = gamma / sigma, offset = beta - mean slope
                     (then max(y, 0) with a ReLU epilogue)
    backward         dx = gamma_over_sigma (dy - mean_dy - xhat mean(dy xhat))      (seed 000 sec. 3.1)
                        = gamma_over_sigma (dy - mean_dy - (x - mean) mean_dy_xc_over_var),
                     mean_dy_xc_over_var = mean(dy (x - mean)) / sigma^2;
                     dgamma = sum dy xhat,  dbeta = sum dy
    double_backward  the derivatives of dx = gamma_over_sigma r, r = dy - mean_dy - xhat mean(dy xhat),
                     for an upstream u (``functional.batchnorm.BatchNormGrad``)
    affine_*         normalization by fixed statistics (evaluation):
                     y = gamma (x - center) / scale + beta = x slope + offset

Implementations, one file each: ``reference.py`` (NumPy, or CuPy through array
methods), ``numba_cpu.py`` (fused serial loops, 2-D float arrays) and
``cupy_gpu.py`` (CuPy reductions and ``cupy.fuse``; no double backward, so the
reference runs on CuPy for it). ``minibn.kernels.DISPATCH`` chooses among them.
"""

from . import cupy_gpu, numba_cpu, reference  # noqa: F401

"""Lp normalization on arrays: the kernels behind ``minibn.functional.lp_norm`` (formulas and
their derivation in its module docstring).

Per channel, over the m values of a batch: mu the batch mean, u = x - mu
(centered) or x, n = x - mu (mean_shift) or x, S = mean |u|^p + eps
(S = max |u| + eps for p = inf) and s = c S^(1/p) (s = c S for p = inf):

    forward   y = gamma n / s + beta = x slope + offset
    backward  ds/du = ds_du_scale w,  w = |u|^(p-1) sign(u), ds_du_scale = s / (m S)     (p finite)
                                      w = sign(u) [|u| = max], ds_du_scale = c / ties      (p = inf)
              dx = P_n(gamma_over_s dy) + P_u(ds_term w),
              gamma_over_s = gamma / s, ds_term = -gamma sum(dy n) ds_du_scale / s^2,
              P the centering v -> v - mean(v) where n (or u) subtracts the mean;
              dgamma = sum dy n / s,  dbeta = sum dy

Implementations, one file each: ``reference.py`` (NumPy, or CuPy through array
methods), ``numba_cpu.py`` (fused serial loops, 2-D float arrays) and
``cupy_gpu.py`` (CuPy reductions and ``cupy.fuse``).
"""

from . import cupy_gpu, numba_cpu, reference  # noqa: F401

"""Noise injected after batch norm: Santurkar et al. (2018), Algorithm 1."""

from __future__ import annotations

from .. import random
from ..tensor import Tensor, _wrap


def batch_norm_noise(a: Tensor, n_mu=0.5, n_sigma=1.25, r_mu=0.1, r_sigma=0.1, generator=None) -> Tensor:
    """a <- s a + m, a "non-stationary" distribution shift of each unit's activations.

    Per call (one training step) and per unit j: mu_j ~ U(-n_mu, n_mu) and
    sigma_j ~ U(1, n_sigma); per sample i: m_ij ~ U(mu_j - r_mu, mu_j + r_mu)
    and s_ij ~ N(sigma_j, r_sigma). The noise is drawn on the host from
    ``generator`` (default: the one ``mb.manual_seed`` seeds) and is constant
    to autodiff: the gradient flows through a, scaled by s.
    """
    if n_sigma < 1:
        raise ValueError(f"batch_norm_noise: n_sigma must be >= 1 (sigma ~ U(1, n_sigma)), got {n_sigma}")
    if min(n_mu, r_mu, r_sigma) < 0:
        raise ValueError("batch_norm_noise: n_mu, r_mu and r_sigma must be >= 0")
    rng = random.resolve(generator)
    n, units = a.shape[0], a.shape[1]
    mu = rng.uniform(-n_mu, n_mu, units)
    sigma = rng.uniform(1.0, n_sigma, units)
    shift = rng.uniform(mu - r_mu, mu + r_mu, (n, units))
    scale = rng.normal(sigma, r_sigma, (n, units))
    trailing = (1,) * (a.ndim - 2)  # (N, C, L): one draw per sample and unit, shared along L
    xp = a.xp
    scale = _wrap(xp.asarray(scale.reshape((n, units) + trailing), dtype=a.dtype))
    shift = _wrap(xp.asarray(shift.reshape((n, units) + trailing), dtype=a.dtype))
    return a * scale + shift

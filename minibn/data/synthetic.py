"""Seeded synthetic data sets for the experiments of the documents."""

from __future__ import annotations

import numpy as np


def _rng(seed):
    return np.random.default_rng(seed)


def ols(n: int, d: int, kappa: float, seed=None, noise: float = 0.0, dtype=np.float64):
    """Gaussian least-squares data with a chosen condition number (seed 000, sec. 2).

    x ~ N(0, H) with H = Q diag(lambda) Q^T, eigenvalues spaced geometrically
    from 1 to ``kappa`` and Q a random rotation; y = x^T w* + noise, w* ~ N(0, I).
    Returns (x (n, d), y (n,), H, w*).
    """
    if kappa < 1:
        raise ValueError(f"ols: the condition number kappa must be >= 1, got {kappa}")
    rng = _rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    eig = np.geomspace(1.0, kappa, d)
    H = (q * eig) @ q.T
    x = rng.standard_normal((n, d)) * np.sqrt(eig) @ q.T
    w = rng.standard_normal(d)
    y = x @ w + noise * rng.standard_normal(n)
    return x.astype(dtype), y.astype(dtype), H, w


def noisy_features(n_per_class: int, d: int = 1000, d1: int = 100, k: int = 5, seed=None,
                   dtype=np.float32):
    """The noise-robustness data of seed 000, sec. 5: d inputs, of which d1 carry a linearly
    separable signal for k classes and the other d - d1 are Gaussian noise.

    Along a random unit direction v of the first d1 coordinates, class c fills
    the interval [c, c + 0.8) shifted by -(k - 0.2)/2, so that the classes sit
    centred on 0 (a gap of 0.2 between classes, so they are linearly separable); the rest of those d1 coordinates, and all d - d1
    others, are N(0, 1). Returns (x (k n, d), labels (k n,)), shuffled.
    """
    if not 1 <= d1 <= d:
        raise ValueError(f"noisy_features: need 1 <= d1 <= d, got d1={d1}, d={d}")
    rng = _rng(seed)
    n = n_per_class * k
    labels = np.repeat(np.arange(k), n_per_class)
    x = rng.standard_normal((n, d))
    v = rng.standard_normal(d1)
    v /= np.linalg.norm(v)
    signal = x[:, :d1]
    signal -= np.outer(signal @ v, v)  # remove the noise's component along v ...
    t = labels + 0.8 * rng.random(n)
    signal += np.outer(t - (k - 0.2) / 2, v)  # ... and put the class position there instead
    order = rng.permutation(n)
    return x[order].astype(dtype), labels[order]


def deep_linear_regression(n: int, d_in: int, d_out: int, seed=None, noise: float = 0.0, dtype=np.float32):
    """Regression targets of a linear map: x ~ N(0, I), y = x A + noise, A ~ N(0, 1/d_in).

    Returns (x (n, d_in), y (n, d_out), A)."""
    rng = _rng(seed)
    A = rng.standard_normal((d_in, d_out)) / np.sqrt(d_in)
    x = rng.standard_normal((n, d_in))
    y = x @ A + noise * rng.standard_normal((n, d_out))
    return x.astype(dtype), y.astype(dtype), A

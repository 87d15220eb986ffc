"""ReLU, one loop over the flattened array (any shape)."""

from __future__ import annotations

import numpy as np

from ..numba_support import contiguous, jit


def _forward(x, y):
    for i in range(x.size):
        y[i] = 0 if x[i] <= 0 else x[i]  # NaN stays NaN, as in NumPy's maximum and PyTorch


def _backward(g, y, dx):
    for i in range(g.size):
        gi = g[i]  # loaded unconditionally, so that the choice below compiles to a select, not a branch
        dx[i] = 0 if y[i] <= 0 else gi


def forward(x):
    """max(x, 0)."""
    x = contiguous(x)
    y = np.empty_like(x)
    jit(_forward)(x.reshape(-1), y.reshape(-1))
    return y


def backward(g, y):
    """g where y > 0, else 0."""
    g, y = contiguous(g), contiguous(y)
    dx = np.empty_like(g)
    jit(_backward)(g.reshape(-1), y.reshape(-1), dx.reshape(-1))
    return dx

"""Softmax cross-entropy, one row at a time: the max, the exponentials and their sum, the loss."""

from __future__ import annotations

import math

import numpy as np

from ..numba_support import contiguous, jit


def _forward(x, target, losses, probs):
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


def forward(x, target):
    """(losses, softmax(x)) for 2-D float logits."""
    x = contiguous(x)
    losses = np.empty(x.shape[0], x.dtype)
    probs = np.empty_like(x)
    jit(_forward)(x, contiguous(target), losses, probs)
    return losses, probs

"""Dropout (Srivastava et al. 2014), PyTorch's inverted form."""

from __future__ import annotations

import numbers

from .. import random
from ..tensor import Tensor, _wrap


def dropout(input: Tensor, p: float = 0.5, training: bool = True, generator=None) -> Tensor:
    """Zero each element with probability ``p`` and scale the rest by 1 / (1 - p), in training
    (the identity otherwise): y = x m / (1 - p), m ~ Bernoulli(1 - p), drawn on the host from
    ``generator`` (default: the one ``mb.manual_seed`` seeds); dy/dx = m / (1 - p)."""
    if isinstance(p, bool) or not isinstance(p, numbers.Real) or not 0 <= p <= 1:
        raise ValueError(f"dropout: p must be a probability in [0, 1], got {p!r}")
    if not training or p == 0:
        return input
    if p == 1:
        return input * 0
    keep = random.resolve(generator).random(tuple(input.shape)) >= p
    return input * _wrap(input.xp.asarray(keep / (1 - p), dtype=input.dtype))

"""Activations built from primitive ops (their derivatives come from those ops)."""

from __future__ import annotations

from ..ops import where
from ..tensor import Tensor


def leaky_relu(input: Tensor, negative_slope: float = 0.01) -> Tensor:
    """x where x > 0, else negative_slope x (PyTorch's: the slope at 0 is negative_slope)."""
    return where(input > 0, input, input * negative_slope)

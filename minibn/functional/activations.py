"""Activations built from primitive ops (their derivatives come from those ops)."""

from __future__ import annotations

import math

from ..autograd import is_grad_enabled
from ..ops import erf, where
from ..ops import relu as _relu
from ..tensor import Tensor


def relu(input: Tensor, inplace: bool = False) -> Tensor:
    """max(x, 0). With ``inplace``, x itself is overwritten where no graph is being recorded through
    it (grad mode off, or x requires no grad); where one is, the result is computed out of place
    (the same values; x keeps its own)."""
    if inplace and not (input.requires_grad and is_grad_enabled()):
        return input.clamp_(min=0)
    return _relu(input)


def softplus(input: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """(1 / beta) log(1 + exp(beta x)), as relu(bx) + log1p(exp(-|bx|)) so exp never overflows;
    x itself where beta x > threshold (PyTorch's)."""
    bx = input * beta
    smooth = (bx.relu() + (-bx.abs()).exp().log1p()) / beta
    return where(bx > threshold, input, smooth)


def silu(input: Tensor) -> Tensor:
    """x sigmoid(x) (the swish)."""
    return input * input.sigmoid()


def elu(input: Tensor, alpha: float = 1.0) -> Tensor:
    """x where x > 0, else alpha (exp(x) - 1) (exp of min(x, 0): no overflow in the unused branch)."""
    return where(input > 0, input, input.clamp(max=0).expm1() * alpha)


def hardtanh(input: Tensor, min_val: float = -1.0, max_val: float = 1.0) -> Tensor:
    """x clamped to [min_val, max_val]."""
    if min_val > max_val:
        raise ValueError(f"hardtanh: min_val {min_val} exceeds max_val {max_val}")
    return input.clamp(min_val, max_val)


def leaky_relu(input: Tensor, negative_slope: float = 0.01) -> Tensor:
    """x where x > 0, else negative_slope x (PyTorch's: the slope at 0 is negative_slope)."""
    return where(input > 0, input, input * negative_slope)


def gelu(input: Tensor, approximate: str = "none") -> Tensor:
    """x Phi(x) with Phi the standard normal CDF: x (1 + erf(x / sqrt 2)) / 2; with
    ``approximate="tanh"``, x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3))) / 2 (Hendrycks and Gimpel 2016)."""
    if approximate == "none":
        return input * (1 + erf(input * (1 / math.sqrt(2)))) * 0.5
    if approximate == "tanh":
        return input * (1 + ((input + input * input * input * 0.044715) * math.sqrt(2 / math.pi)).tanh()) * 0.5
    raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")

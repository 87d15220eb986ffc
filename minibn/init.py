"""Weight initializers (PyTorch's ``torch.nn.init``, also as ``minibn.nn.init``), drawing from a seeded
generator.

Each fills a tensor in place, outside the graph, and returns it.
"""

from __future__ import annotations

import math
import statistics

import numpy as np

from . import random
from .grad_mode import no_grad
from .tensor import Tensor, _wrap


def calculate_gain(nonlinearity: str, param=None) -> float:
    """The gain that keeps activations' variance through ``nonlinearity`` (PyTorch's table)."""
    if nonlinearity in ("linear", "identity", "sigmoid") or nonlinearity.startswith("conv"):
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else float(param)
        return math.sqrt(2.0 / (1 + slope ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"unsupported nonlinearity {nonlinearity!r}")


def _fans(tensor: Tensor) -> tuple:
    if tensor.ndim < 2:
        raise ValueError(f"fan in and fan out need at least 2 dimensions, got shape {tuple(tensor.shape)}")
    receptive = 1
    for s in tensor.shape[2:]:
        receptive *= s
    return tensor.shape[1] * receptive, tensor.shape[0] * receptive


def uniform_(tensor: Tensor, a: float = 0.0, b: float = 1.0, generator=None) -> Tensor:
    """U(a, b), the draws of ``t.uniform_(a, b)``."""
    with no_grad():
        return tensor.uniform_(a, b, generator=generator)


def normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0, generator=None) -> Tensor:
    """N(mean, std^2), the draws of ``t.normal_(mean, std)``."""
    with no_grad():
        return tensor.normal_(mean, std, generator=generator)


def trunc_normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0, a: float = -2.0, b: float = 2.0,
                  generator=None) -> Tensor:
    """N(mean, std^2) conditioned on [a, b] (the bounds are values, not multiples of std). Drawn by
    rejection where [a, b] holds at least a tenth of the mass, else by the inverse CDF of uniform
    draws between the bounds' probabilities (on the lower tail's side, where they are accurate)."""
    if not a < b:
        raise ValueError(f"trunc_normal_: expects a < b, got a={a}, b={b}")
    rng, n = random.resolve(generator), tensor.numel()
    lo, hi = (a - mean) / std, (b - mean) / std
    flip = lo > 0  # a right tail is drawn as the mirrored left one
    if flip:
        lo, hi = -hi, -lo
    normal = statistics.NormalDist()
    p_lo, p_hi = normal.cdf(lo), normal.cdf(hi)
    if p_hi - p_lo >= 0.1:
        z = rng.standard_normal(n)
        outside = (z < lo) | (z > hi)
        while outside.any():
            z[outside] = rng.standard_normal(int(outside.sum()))
            outside = (z < lo) | (z > hi)
    else:
        tiny = math.ulp(0.0)
        z = np.array([normal.inv_cdf(min(max(p, tiny), 1 - 1e-16)) for p in rng.uniform(p_lo, p_hi, n)])
        z = np.clip(z, lo, hi)
    values = mean + std * (-z if flip else z)
    with no_grad():
        return tensor.copy_(_wrap(values.reshape(tensor.shape).astype(tensor.dtype)).to(tensor.device))


def eye_(tensor: Tensor) -> Tensor:
    """The identity matrix (ones on the diagonal of a 2-D tensor, zeros elsewhere)."""
    if tensor.ndim != 2:
        raise ValueError(f"eye_: only 2-D tensors are supported, got shape {tuple(tensor.shape)}")
    with no_grad():
        return tensor.copy_(_wrap(np.eye(*tensor.shape, dtype=tensor.dtype)).to(tensor.device))


def orthogonal_(tensor: Tensor, gain: float = 1, generator=None) -> Tensor:
    """A (semi-)orthogonal matrix times ``gain`` (Saxe et al. 2013): Q of the QR decomposition of a
    Gaussian matrix, its columns' signs fixed by R's diagonal so that Q is uniformly distributed;
    dimensions after the first are flattened."""
    if tensor.ndim < 2:
        raise ValueError(f"orthogonal_: only tensors with 2 or more dimensions are supported, got {tuple(tensor.shape)}")
    if tensor.numel() == 0:
        return tensor
    rows, cols = tensor.shape[0], tensor.numel() // tensor.shape[0]
    a = random.resolve(generator).normal(0.0, 1.0, (rows, cols))
    q, r = np.linalg.qr(a.T if rows < cols else a)
    q = q * np.sign(np.diag(r))
    q = q.T if rows < cols else q
    with no_grad():
        return tensor.copy_(_wrap((gain * q).reshape(tensor.shape).astype(tensor.dtype)).to(tensor.device))


def constant_(tensor: Tensor, value: float) -> Tensor:
    with no_grad():
        tensor.fill_(value)
    return tensor


def zeros_(tensor: Tensor) -> Tensor:
    return constant_(tensor, 0.0)


def ones_(tensor: Tensor) -> Tensor:
    return constant_(tensor, 1.0)


def _kaiming_std(tensor, a, mode, nonlinearity):
    fan_in, fan_out = _fans(tensor)
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan = fan_in if mode == "fan_in" else fan_out
    return calculate_gain(nonlinearity, a) / math.sqrt(fan)


def kaiming_normal_(tensor: Tensor, a: float = 0, mode: str = "fan_in", nonlinearity: str = "leaky_relu",
                    generator=None) -> Tensor:
    """N(0, std^2) with std = gain / sqrt(fan) (He et al. 2015); with the defaults, gain = sqrt(2)."""
    return normal_(tensor, 0.0, _kaiming_std(tensor, a, mode, nonlinearity), generator)


def kaiming_uniform_(tensor: Tensor, a: float = 0, mode: str = "fan_in", nonlinearity: str = "leaky_relu",
                     generator=None) -> Tensor:
    """U(-bound, bound), bound = sqrt(3) gain / sqrt(fan): with a = sqrt(5), PyTorch's Linear default."""
    bound = math.sqrt(3.0) * _kaiming_std(tensor, a, mode, nonlinearity)
    return uniform_(tensor, -bound, bound, generator)


def xavier_normal_(tensor: Tensor, gain: float = 1.0, generator=None) -> Tensor:
    """N(0, std^2), std = gain sqrt(2 / (fan_in + fan_out)) (Glorot and Bengio 2010)."""
    fan_in, fan_out = _fans(tensor)
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)), generator)


def xavier_uniform_(tensor: Tensor, gain: float = 1.0, generator=None) -> Tensor:
    """U(-a, a), a = gain sqrt(6 / (fan_in + fan_out))."""
    fan_in, fan_out = _fans(tensor)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(tensor, -bound, bound, generator)

"""Input checks shared by the per-channel normalization layers."""

from __future__ import annotations

import math
import numbers

from ..kernels.channels import per_channel as broadcastable, reduce_axes  # noqa: F401  (shared)
from ..tensor import Tensor, _wrap


def check_eps(op: str, eps) -> float:
    """``eps`` as a float: a finite number >= 0 (a NaN or negative eps normalizes to NaN or worse)."""
    if isinstance(eps, bool) or not isinstance(eps, numbers.Real) or not math.isfinite(eps) or eps < 0:
        raise ValueError(f"{op}: eps must be a finite number >= 0, got {eps!r}")
    return float(eps)


def check_input(op: str, x: Tensor, *per_channel, training: bool) -> int:
    """Check ``x`` is (N, C) or (N, C, L), its per-channel tensors have shape (C,), and that a
    training batch has more than one value per channel. Returns m, the values per channel."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: input must be a Tensor, got {type(x).__name__}")
    if x.ndim not in (2, 3):
        raise ValueError(f"{op}: expected input of shape (N, C) or (N, C, L), got {tuple(x.shape)}")
    channels = x.shape[1]
    for name, t in per_channel:
        if t is None:
            continue
        if tuple(t.shape) != (channels,):
            raise ValueError(
                f"{op}: {name} has shape {tuple(t.shape)} but the input has {channels} channels "
                f"(input shape {tuple(x.shape)})"
            )
        if t.dtype != x.dtype:
            raise TypeError(f"{op}: {name} has dtype {t.dtype} but the input has dtype {x.dtype}; "
                            "convert one of them with .to(dtype)")
    m = x.numel() // max(channels, 1)
    if training and m <= 1:
        raise ValueError(
            f"{op}: expected more than 1 value per channel when training, got input of shape "
            f"{tuple(x.shape)}"
        )
    return m


def update_running(running, *batch) -> None:
    """running = (1 - momentum) running + momentum batch, in place, for each buffer of
    ``running = (buffer, ..., momentum)`` and its batch statistic (an array)."""
    *buffers, momentum = running
    for buf, value in zip(buffers, batch, strict=True):
        buf._data *= 1 - momentum
        buf._data += momentum * value.astype(buf.dtype, copy=False)
        buf._version[0] += 1


def wrap_needed(needs, *arrays) -> tuple:
    """A first-order backward's arrays as Tensors, None where the input needs no gradient."""
    return tuple(_wrap(a) if need else None for a, need in zip(arrays, needs))


def running_pair(op: str, mean, scale, scale_name: str, momentum):
    """(mean, scale, momentum) for the running-statistics update, or None if neither is given."""
    if mean is None and scale is None:
        return None
    if mean is None or scale is None:
        raise ValueError(f"{op}: give both running_mean and {scale_name}, or neither")
    return (mean, scale, float(momentum))

"""Input checks shared by the per-channel normalization layers."""

from __future__ import annotations

from ..tensor import Tensor


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


def broadcastable(t: Tensor, ndim: int) -> Tensor:
    """A (C,) tensor reshaped to broadcast along axis 1 of an ndim-dimensional input."""
    return t.reshape((1, t.shape[0]) + (1,) * (ndim - 2))


def reduce_axes(ndim: int) -> tuple:
    return (0,) + tuple(range(2, ndim))

"""The channel layout every per-channel kernel shares: channels on axis 1, statistics over the rest."""

from __future__ import annotations


def reduce_axes(ndim: int) -> tuple:
    """The axes batch statistics are taken over: all but the channel axis 1."""
    return (0,) + tuple(range(2, ndim))


def per_channel(a, ndim: int):
    """A per-channel vector of shape (C,) reshaped to broadcast against an input of ``ndim`` dims."""
    return a.reshape((1, a.shape[0]) + (1,) * (ndim - 2))


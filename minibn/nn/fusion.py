"""Fusion in ``Sequential``: a run Linear -> BatchNorm1d -> ReLU of a network in training mode
runs as two nodes instead of three, with the same values and gradients.

The linear layer computes x W^T only; the batch-norm node adds its bias to the mean it reports
(the normalized output does not depend on it) and returns its gradient, sum over samples of
dz, from the backward kernel's last pass; the ReLU is an epilogue of the normalization kernel,
and its mask is applied inside the backward kernel. On the depth-10 network this saves four
passes over each hidden layer's activations (``python bench/run.py``). Any of the three may be
missing (BatchNorm1d -> ReLU fuses too); only these exact classes fuse, never subclasses, and a
batch norm with noise or using running statistics does not.
"""

from __future__ import annotations

from .layers import BatchNorm1d, Linear, ReLU


def fused_length(layers, i: int, x) -> int:
    """How many of ``layers[i:]`` run as one fused stage on input ``x`` (1: no fusion)."""
    j = i
    if type(layers[j]) is Linear and getattr(x, "ndim", 0) == 2 and j + 1 < len(layers):
        j += 1  # a linear layer's bias lies along the batch-norm channels only for (N, C) inputs
    bn = layers[j]
    if type(bn) is not BatchNorm1d or bn.noise or not bn._use_batch_stats():
        return 1
    if j + 1 < len(layers) and type(layers[j + 1]) is ReLU:
        j += 1
    return j - i + 1


def run_fused(stage, x):
    """Run a stage found by :func:`fused_length`."""
    linear = stage[0] if type(stage[0]) is Linear else None
    bn = stage[1] if linear else stage[0]
    if linear is not None:
        x = linear.forward_without_bias(x)
    activation = "relu" if type(stage[-1]) is ReLU else None
    return bn(x, input_bias=linear.bias if linear else None, activation=activation)

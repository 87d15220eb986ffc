"""Fusion in ``Sequential``: a run Linear -> BatchNorm1d -> ReLU whose batch norm uses batch
statistics (training mode) runs as two nodes instead of three, with the same values (to
rounding) and derivatives.

The linear layer computes x W^T only; the batch-norm node adds its bias to the mean it reports
(the normalized output does not depend on it) and returns its gradient, sum over samples of
dz (0 in exact arithmetic); the ReLU is an epilogue of the normalization kernel, and its mask
is applied inside the backward kernel (numba; the NumPy and CuPy kernels mask in a pass of
their own). On the depth-10 network this saves four passes over
each hidden layer's activations (``python bench/fusion.py``).

What fuses: BatchNorm1d using batch statistics (training mode), without noise, preceded by a
Linear (on (N, C) inputs only, where its bias lies along the channels) and/or followed by a
ReLU. Only these exact classes, with their own ``forward`` (not replaced on the class or the
instance) and no forward hooks, so that a subclass or an instrumented layer runs as written.
"""

from __future__ import annotations

from .layers import BatchNorm1d, Linear, ReLU

_FORWARDS = {cls: cls.forward for cls in (Linear, BatchNorm1d, ReLU)}


def _is(module, cls) -> bool:
    """``module`` is exactly a ``cls`` running ``cls``'s own forward, with no forward hooks (a
    hook must see the layer's own output)."""
    return (type(module) is cls and cls.forward is _FORWARDS[cls] and "forward" not in vars(module)
            and not module.__dict__.get("_forward_hooks"))


def fused_length(layers, i: int, x) -> int:
    """How many of ``layers[i:]`` run as one fused stage on input ``x`` (1: no fusion)."""
    j = i
    if _is(layers[j], Linear) and getattr(x, "ndim", 0) == 2 and j + 1 < len(layers):
        j += 1
    bn = layers[j]
    if not _is(bn, BatchNorm1d) or bn.noise or not bn._use_batch_stats():
        return 1
    if j + 1 < len(layers) and _is(layers[j + 1], ReLU):
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

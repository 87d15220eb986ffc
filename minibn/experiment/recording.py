"""Per-layer recording: the norms of a network's activations, of the loss gradient with respect
to them (through hooks, during backward), and of its weights."""

from __future__ import annotations

import math

import numpy as np

from ..nn import Linear, Sequential


def norm(t) -> float:
    """The Frobenius norm of a tensor's values (inf or NaN for a diverged network: that is the
    result, not an error)."""
    with np.errstate(over="ignore", invalid="ignore"):
        return float(t.xp.linalg.norm(t.detach()._data.ravel()))


class LayerRecord:
    """One forward pass of a Sequential, stage by stage, keeping each hidden layer's output (what
    the next Linear layer receives: after the activation, or after a normalization that follows
    it) and the last module's output (the logits). During the following backward, hooks fill
    :attr:`grad_norms` with ||dL/d output|| per layer (NaN until then)."""

    def __init__(self, net: Sequential, x):
        self.outputs = []
        h, first = x, next((j for j, m in enumerate(net) if isinstance(m, Linear)), len(net))
        for i, h in net.stages(x):  # i: a stage's last module (a fused Linear -> BN -> ReLU ends at its ReLU)
            if i == len(net) - 1 or i >= first and isinstance(net[i + 1], Linear):
                self.outputs.append(h)
        self.logits = h
        self.grad_norms = [math.nan] * len(self.outputs)
        for index, out in enumerate(self.outputs):
            if out.requires_grad:
                out.register_hook(lambda g, index=index: self.grad_norms.__setitem__(index, norm(g)))

    def activation_norms(self) -> list:
        return [norm(h) for h in self.outputs]

    def activation_rms(self, norms=None) -> float:
        """The largest root-mean-square of a layer's outputs (from their ``norms`` if given)."""
        norms = self.activation_norms() if norms is None else norms
        return max(n / math.sqrt(h.numel()) for n, h in zip(norms, self.outputs))


def weight_norms(net) -> list:
    """||W|| of each linear layer, in order."""
    return [norm(m.weight) for m in net.modules() if isinstance(m, Linear)]

"""K networks of one shape trained as one network.

An :class:`Ensemble` stacks the parameters of K Sequentials built alike (Linear layers,
per-channel normalizations, elementwise activations, in any order): its input is (K, N, d),
member k's batch in ``x[k]``; each Linear is one batched matrix product, x[k] W_k^T + b_k,
and each normalization sees the K members' channels side by side, (N, K C), so that every
channel is normalized over its own member's batch with its own gamma, beta and running
statistics. With :func:`ensemble_loss`, the sum of the members' mean losses, the gradient
with respect to member k's parameters is that of member k's own loss, and an optimizer whose
update is elementwise (SGD with momentum, Adam, weight decay) trains each member exactly as
alone, with its own optimizer state: the same numbers up to the rounding of the batched
products. This is the vmap-over-stacked-parameters idea of ``torch.func``, built in.

    ensemble = nn.Ensemble([nn.mlp([784, 100, 10], norm="bn", generator=mb.Generator(s)) for s in seeds])
    opt = mb.optim.SGD(ensemble.parameters(), lr=0.1)
    loss = nn.ensemble_loss(ensemble(x), y)      # x: (K, N, 784), y: (K, N)
    loss.backward(); opt.step()
    ensemble.member(2)                            # network 2 alone, with its trained parameters
"""

from __future__ import annotations

import copy

import numpy as np

from .. import functional as F
from .containers import Sequential
from .layers import GELU, Identity, LeakyReLU, Linear, ReLU, Sigmoid, Tanh, _Normalization
from .module import Module, Parameter

ELEMENTWISE = (ReLU, Tanh, Sigmoid, Identity, LeakyReLU, GELU)


class _StackedLinear(Module):
    """K Linear layers of one shape: weight (K, out, in), bias (K, out); input (K, N, in)."""

    def __init__(self, column: list):
        super().__init__()
        self.weight = Parameter(np.stack([m.weight.detach().numpy() for m in column]))
        has_bias = column[0].bias is not None
        self.bias = Parameter(np.stack([m.bias.detach().numpy() for m in column])) if has_bias else None

    def forward(self, x):
        y = x @ self.weight.transpose(-1, -2)
        return y if self.bias is None else y + self.bias.unsqueeze(1)


class _SideBySide(Module):
    """K normalizations of C channels as one of K C channels: (K, N, C) -> (N, K C) -> back."""

    def __init__(self, column: list):
        super().__init__()
        first = column[0]
        if getattr(first, "noise", None):
            raise ValueError("Ensemble: a noisy BatchNorm1d draws its noise from one generator per network; "
                             "side by side the draws would differ from the networks' own")
        self.channels, self.members = first.num_features, len(column)
        norm = copy.deepcopy(first)
        norm.num_features = self.channels * self.members
        for name in (*first._parameters, *first._buffers):
            if getattr(first, name) is None or name == "num_batches_tracked":
                continue
            joined = np.concatenate([getattr(m, name).detach().numpy() for m in column])
            if name in first._parameters:
                setattr(norm, name, Parameter(joined))
            else:
                getattr(norm, name)._data = joined
        self.norm = norm

    def forward(self, h):
        k, n, c = h.shape
        y = self.norm(h.permute(1, 0, 2).reshape(n, k * c))
        return y.reshape(n, k, c).permute(1, 0, 2)


class Ensemble(Module):
    """K networks built alike (``nets``: Sequentials of the same layers and shapes) as one; see the module."""

    def __init__(self, nets):
        super().__init__()
        nets = list(nets)
        if not nets or not all(isinstance(n, Sequential) for n in nets):
            raise TypeError("Ensemble: expects a non-empty list of Sequential networks")
        shape = _structure(nets[0])
        for i, net in enumerate(nets[1:], 1):
            if _structure(net) != shape:
                raise ValueError(f"Ensemble: network {i} is not built like network 0 ({_structure(net)} against "
                                 f"{shape})")
        layers = []
        for i, first in enumerate(nets[0]):
            column = [net[i] for net in nets]
            if isinstance(first, Linear):
                layers.append(_StackedLinear(column))
            elif isinstance(first, _Normalization):
                layers.append(_SideBySide(column))
            elif type(first) in ELEMENTWISE:
                layers.append(copy.deepcopy(first))
            else:
                raise ValueError(f"Ensemble: cannot stack layer {i} ({type(first).__name__}); it stacks Linear, "
                                 "BatchNorm1d, LpNorm1d and elementwise activations")
        self.size = len(nets)
        self.layers = Sequential(*layers)
        object.__setattr__(self, "_template", copy.deepcopy(nets[0]))  # not a submodule: member()'s shape

    def forward(self, x):
        if x.ndim != 3 or x.shape[0] != self.size:
            raise ValueError(f"Ensemble of {self.size}: expected input of shape ({self.size}, N, features), got "
                             f"{tuple(x.shape)}")
        return self.layers(x)

    def member(self, k: int) -> Sequential:
        """Network ``k`` alone: a new Sequential with its current parameters, running statistics and mode."""
        if not 0 <= k < self.size:
            raise IndexError(f"Ensemble of {self.size}: no member {k}")
        net = copy.deepcopy(self._template).to(next(self.parameters()).device)
        for layer, stacked in zip(net, self.layers):
            if isinstance(stacked, _StackedLinear):
                layer.weight._data[...] = stacked.weight._data[k]
                if stacked.bias is not None:
                    layer.bias._data[...] = stacked.bias._data[k]
            elif isinstance(stacked, _SideBySide):
                part = slice(k * stacked.channels, (k + 1) * stacked.channels)
                for name in (*layer._parameters, *layer._buffers):
                    mine, joined = getattr(layer, name), getattr(stacked.norm, name)
                    if mine is not None:
                        mine._data[...] = joined._data if name == "num_batches_tracked" else joined._data[part]
        net.train(self.training)
        return net


def _structure(net) -> list:
    return [(type(m).__name__, tuple(tuple(p.shape) for p in m.parameters())) for m in net]


def ensemble_loss(outputs, targets, loss=F.cross_entropy):
    """sum_k loss(outputs[k], targets[k]): the members' own losses, added (outputs (K, N, ...), targets (K, N, ...))."""
    if outputs.ndim < 2 or targets.shape[:2] != outputs.shape[:2]:
        raise ValueError(f"ensemble_loss: outputs (K, N, ...) and targets (K, N, ...) of the same K and N, got "
                         f"{tuple(outputs.shape)} and {tuple(targets.shape)}")
    total = loss(outputs[0], targets[0])
    for k in range(1, outputs.shape[0]):
        total = total + loss(outputs[k], targets[k])
    return total


__all__ = ["Ensemble", "ensemble_loss"]

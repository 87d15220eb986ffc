"""Folding normalization layers into the preceding linear layers (seed 000, sec. 3)."""

from __future__ import annotations

from ..grad_mode import no_grad
from .layers import Identity, Linear, ReLU, Sigmoid, Tanh
from .containers import Sequential

_ELEMENTWISE = (ReLU, Tanh, Sigmoid, Identity)


def fold_batchnorm(model: Sequential, x) -> Sequential:
    """The plain network equal to ``model`` on the batch ``x``.

    On a fixed batch a normalization layer is a per-channel affine map
    y = a h + c of its input h (for batch norm a = gamma / sigma and
    c = beta - gamma mu / sigma, with mu and sigma the statistics of h on this
    batch under the layer's own eps). Folded into the linear layer before it:

        W_eq = (gamma / sigma) W,    b_eq = (gamma / sigma)(b - mu) + beta,

    or, where an activation stands between them (the normalization after the
    activation), into the linear layer after it: W' (a h + c) + b' is

        W'_eq = W' diag(a),    b'_eq = b' + W' c.

    ``model`` is a Sequential of Linear layers, normalization layers and
    elementwise activations; a normalization follows a Linear, or an
    activation with a Linear somewhere after it. The batch statistics are
    used whatever the model's train/eval mode. Returns new layers; the model
    is not changed.
    """
    if not isinstance(model, Sequential):
        raise TypeError(f"fold_batchnorm expects a Sequential, got {type(model).__name__}")
    layers = []
    pending = None  # (i, scale, shift) of a normalization after an activation, for the next Linear
    h = x.detach()
    with no_grad():
        for i, layer in enumerate(model):
            if isinstance(layer, Linear):
                folded = Linear(layer.in_features, layer.out_features, bias=True, dtype=layer.weight.dtype,
                                device=layer.weight.device)
                folded.weight._data[...] = layer.weight._data
                folded.bias._data[...] = layer.bias._data if layer.bias is not None else 0
                if pending is not None:
                    _, scale, shift = pending
                    folded.bias._data[...] = (folded.bias.detach() + folded.weight.detach() @ shift)._data
                    folded.weight._data[...] = (folded.weight.detach() * scale.reshape(1, -1))._data
                    pending = None
                layers.append(folded)
            elif hasattr(layer, "batch_affine"):
                if not layers or pending is not None:
                    raise ValueError(f"fold_batchnorm: layer {i} ({type(layer).__name__}) has no Linear layer "
                                     "before it to fold it into")
                if h.ndim != 2:
                    raise ValueError(f"fold_batchnorm: layer {i} sees input of shape {tuple(h.shape)}; only "
                                     "(N, C) batches fold")
                scale, shift = layer.batch_affine(h)
                if isinstance(model[i - 1], Linear):
                    prev = layers[-1]
                    prev.weight._data[...] = (scale.reshape(-1, 1) * prev.weight.detach())._data
                    prev.bias._data[...] = (scale * prev.bias.detach() + shift)._data
                else:
                    pending = (i, scale, shift)
                h = h * scale + shift  # the layer's output, without touching its running statistics
                continue
            elif isinstance(layer, _ELEMENTWISE):
                layers.append(type(layer)())
            else:
                raise ValueError(f"fold_batchnorm: cannot fold layer {i} ({type(layer).__name__}); it handles "
                                 "Linear, BatchNorm1d, LpNorm1d and elementwise activations")
            h = layer(h)
    if pending is not None:
        raise ValueError(f"fold_batchnorm: layer {pending[0]} ({type(model[pending[0]]).__name__}) follows an "
                         "activation and no Linear layer comes after it to fold it into")
    for p in (p for m in layers for p in m.parameters()):
        p.requires_grad = True
    return Sequential(*layers)


__all__ = ["fold_batchnorm"]

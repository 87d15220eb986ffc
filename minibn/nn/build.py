"""Building multilayer perceptrons."""

from __future__ import annotations

from .. import init as initializers
from .layers import BatchNorm1d, Identity, Linear, LpNorm1d, ReLU, Sigmoid, Tanh
from .containers import Sequential

ACTIVATIONS = {"relu": ReLU, "tanh": Tanh, "sigmoid": Sigmoid, "identity": Identity, None: Identity}
NORMS = {"bn": BatchNorm1d, "batchnorm": BatchNorm1d, "lp": LpNorm1d}
INITS = {"pytorch": None, "kaiming_normal": initializers.kaiming_normal_,
         "kaiming_uniform": initializers.kaiming_uniform_, "xavier_normal": initializers.xavier_normal_,
         "xavier_uniform": initializers.xavier_uniform_}


def mlp(sizes, norm=None, norm_kwargs=None, activation="relu", bias=True, init="pytorch",
        zero_bias=False, dtype=None, device=None, generator=None, norm_after_activation=False) -> Sequential:
    """Linear -> [norm] -> activation for each hidden layer, then a final Linear.

    ``sizes`` lists the widths, input first: ``mlp([784, 100, 100, 10], norm="bn")``.
    ``norm`` is None, "bn" (BatchNorm1d) or "lp" (LpNorm1d), with ``norm_kwargs``
    passed to it (e.g. ``{"p": 3, "centered": False}``, or ``{"noise": True}``
    for noisy BN); it follows every hidden linear layer, never the output.
    ``norm_after_activation`` puts it after the activation instead:
    Linear -> activation -> [norm].
    ``init`` is "pytorch" (Linear's default) or one of "kaiming_normal",
    "kaiming_uniform", "xavier_normal", "xavier_uniform" for the weights;
    ``zero_bias`` sets biases to 0.
    """
    sizes = [int(s) for s in sizes]
    if len(sizes) < 2 or min(sizes) < 1:
        raise ValueError(f"mlp: sizes needs at least an input and an output width, all >= 1; got {sizes}")
    if norm not in (None, *NORMS):
        raise ValueError(f"mlp: norm must be None or one of {sorted(NORMS)}, got {norm!r}")
    if activation not in ACTIVATIONS:
        raise ValueError(f"mlp: activation must be one of {[a for a in ACTIVATIONS if a]}, got {activation!r}")
    if init not in INITS:
        raise ValueError(f"mlp: init must be one of {sorted(INITS)}, got {init!r}")
    layers = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        linear = Linear(n_in, n_out, bias=bias, dtype=dtype, device=device, generator=generator)
        if INITS[init] is not None:
            INITS[init](linear.weight, generator=generator)
        if zero_bias and linear.bias is not None:
            initializers.zeros_(linear.bias)
        layers.append(linear)
        if i < len(sizes) - 2:
            hidden = [ACTIVATIONS[activation]()]
            if norm is not None:
                normalization = NORMS[norm](n_out, dtype=dtype, device=device, **(norm_kwargs or {}))
                hidden.insert(len(hidden) if norm_after_activation else 0, normalization)
            layers += hidden
    return Sequential(*layers)



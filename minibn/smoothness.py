"""Smoothness along training, as Santurkar et al. (2018, "How does batch normalization help
optimization?") measure it, and their gradient-based internal covariate shift.

At parameters theta with gradient g = grad L(theta) on one batch, for step sizes eta:

    loss variation           the range (min, max) of L(theta - eta g) over eta          (sec. 3.1)
    gradient predictiveness  the range of ||grad L(theta) - grad L(theta - eta g)|| over eta
    effective beta           max over eta of ||grad L(theta) - grad L(theta - eta g)|| / ||eta g||
    curvature along g        g^T H g / ||g||^2 (one Hessian-vector product)

all on the same batch (a batch-norm network in training mode uses its batch statistics; every
call of ``loss_fn`` also moves its running statistics, so wrap the probes in
``minibn.nn.module.running_stats_kept(net)``, as the experiment does). Internal covariate shift
(their Definition 2.1): for block i, with
G_i = grad_{W_i} L at the step's parameters and G'_i the same gradient after the blocks before
i have taken the step (same batch),

    ICS_i = ||G_i - G'_i||,  and the cosine of G_i and G'_i.

``loss_fn()`` is a closure computing the loss on the batch from the live parameters (the same
value at the same parameters: noise draws, if any, restored on each call); the functions set
parameters in place and restore them before returning.
"""

from __future__ import annotations

import numpy as np

from .autograd import grad
from .devices import to_host
from .hessian import hvp


def _flat(arrays) -> np.ndarray:
    return np.concatenate([to_host(a).astype(float).ravel() for a in arrays])


def _gradient(loss_fn, params):
    return [g._data.copy() for g in grad(loss_fn(), params, allow_unused=False)]


def gradient_probes(loss_fn, params, etas) -> dict:
    """The loss, the change of gradient and the effective beta along -g for each step size in ``etas``
    (see the module docstring); ``params`` are the Tensors moved, their values restored afterwards."""
    etas = np.asarray(etas, dtype=float)
    if etas.ndim != 1 or not len(etas) or np.any(etas <= 0):
        raise ValueError(f"etas must be a non-empty list of positive step sizes, got {etas!r}")
    params = list(params)
    theta = [p._data.copy() for p in params]
    base_loss = float(loss_fn().item())
    g = _gradient(loss_fn, params)
    g_flat = _flat(g)
    g_norm = float(np.linalg.norm(g_flat))
    losses, changes = [], []
    try:
        for eta in etas:
            for p, t, gi in zip(params, theta, g):
                p._data[...] = t - float(eta) * gi
            losses.append(float(loss_fn().item()))
            changes.append(float(np.linalg.norm(_flat(_gradient(loss_fn, params)) - g_flat)))
    finally:
        for p, t in zip(params, theta):
            p._data[...] = t
    hg = hvp(loss_fn, params, g)
    curvature = float(_flat([h._data for h in hg]) @ g_flat) / g_norm ** 2 if g_norm else float("nan")
    changes = np.asarray(changes)
    return {"etas": etas.tolist(), "loss": base_loss, "grad_norm": g_norm, "losses": losses,
            "gradient_changes": changes.tolist(),
            "loss_variation": [float(min(losses)), float(max(losses))],
            "gradient_predictiveness": [float(changes.min()), float(changes.max())],
            "effective_beta": float(np.max(changes / (etas * g_norm))) if g_norm else float("nan"),
            "curvature": curvature}


def internal_covariate_shift(loss_fn, blocks, weights, after) -> list:
    """[(||G_i - G'_i||, cos(G_i, G'_i)) for each block i]: ``blocks`` lists the parameters of each block
    in order (block i holds ``weights[i]``), ``after`` maps each parameter (by position in the flattened
    blocks) to its value after the step. G_i is taken at the parameters as they are; G'_i with the
    blocks before i set to ``after``."""
    flat = [p for block in blocks for p in block]
    if len(after) != len(flat):
        raise ValueError(f"after needs one array per parameter of the blocks: {len(after)} for {len(flat)}")
    before = [p._data.copy() for p in flat]
    position = {id(p): k for k, p in enumerate(flat)}
    weights = list(weights)
    at_step = [_flat([g._data]) for g in grad(loss_fn(), weights)]  # every G_i: one gradient at the step's parameters
    out = []
    try:
        for i, (w, g) in enumerate(zip(weights, at_step)):
            for p, b in zip(flat, before):
                p._data[...] = b
            for block in blocks[:i]:
                for p in block:
                    p._data[...] = after[position[id(p)]]
            g_after = _flat([grad(loss_fn(), [w])[0]._data]) if i else g  # (block 0: no block before it moved)
            denom = float(np.linalg.norm(g) * np.linalg.norm(g_after))
            out.append((float(np.linalg.norm(g - g_after)), float(g @ g_after) / denom if denom else float("nan")))
    finally:
        for p, b in zip(flat, before):
            p._data[...] = b
    return out

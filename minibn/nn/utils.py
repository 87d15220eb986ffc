"""Gradient clipping and flat parameter vectors (PyTorch's ``torch.nn.utils``), applied to ``.grad``
in place, outside the graph."""

from __future__ import annotations

import math

from .. import ops
from ..creation import tensor
from ..grad_mode import no_grad
from ..tensor import Tensor


def _with_grads(parameters) -> list:
    params = [parameters] if isinstance(parameters, Tensor) else list(parameters)
    return [p for p in params if p.grad is not None]


def clip_grad_norm_(parameters, max_norm: float, norm_type: float = 2.0, error_if_nonfinite: bool = False,
                    foreach=None) -> Tensor:
    """Scale the gradients of ``parameters`` by min(1, max_norm / (total + 1e-6)), where total is the
    ``norm_type``-norm of all of them taken as one vector; returns total (the norm before clipping)."""
    grads = [p.grad for p in _with_grads(parameters)]
    norm_type = float(norm_type)
    if not grads:
        return tensor(0.0)
    with no_grad():
        norms = ops.stack([g.detach().abs().max() if norm_type == math.inf else ops.norm(g.detach(), norm_type)
                           for g in grads])
        total = norms.max() if norm_type == math.inf else ops.norm(norms, norm_type)
        if error_if_nonfinite and not bool(total.isfinite()):
            raise RuntimeError(f"clip_grad_norm_: the total norm of order {norm_type} of the gradients is "
                               f"{total.item()}, so they cannot be clipped (error_if_nonfinite=True)")
        scale = (max_norm / (total + 1e-6)).clamp(max=1.0)
        for g in grads:
            g.mul_(scale.to(g.dtype))
    return total


def clip_grad_value_(parameters, clip_value: float, foreach=None) -> None:
    """Clip every gradient element of ``parameters`` to [-clip_value, clip_value]."""
    clip_value = float(clip_value)
    for p in _with_grads(parameters):
        p.grad.clamp_(-clip_value, clip_value)


def parameters_to_vector(parameters) -> Tensor:
    """All of ``parameters`` flattened into one vector (differentiable)."""
    return ops.cat([p.reshape(-1) for p in parameters])


def vector_to_parameters(vec: Tensor, parameters) -> None:
    """Copy consecutive slices of ``vec`` into ``parameters`` (in place, outside the graph)."""
    params = list(parameters)
    needed = sum(p.numel() for p in params)
    if vec.ndim != 1 or vec.numel() != needed:
        raise ValueError(f"vector_to_parameters: expects a vector of {needed} elements, got shape {tuple(vec.shape)}")
    start = 0
    with no_grad():
        for p in params:
            p.copy_(vec[start:start + p.numel()].reshape(p.shape))
            start += p.numel()

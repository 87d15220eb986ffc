"""Softmax, log-softmax and the losses."""

from __future__ import annotations

from .. import kernels
from ..autograd import Function, is_grad_enabled
from ..tensor import Tensor, _wrap

REDUCTIONS = ("mean", "sum", "none")


class LogSoftmax(Function):
    """y = x - logsumexp(x) along ``dim``, computed after subtracting the max (stable);
    backward dx = g - softmax(x) sum(g) = g - exp(y) sum(g)."""

    save_output = True

    def forward(self, x):
        xp = self.xp
        shifted = x - xp.max(x.real, axis=self.dim, keepdims=True)
        shifted -= xp.log(xp.exp(shifted).sum(axis=self.dim, keepdims=True))
        return shifted

    def backward(self, g):
        return g - self.output.exp() * g.sum(self.dim, keepdim=True)


class Softmax(Function):
    """y = exp(x - max) / sum exp(x - max) along ``dim``;  dx = y (g - sum(g y))."""

    save_output = True

    def forward(self, x):
        xp = self.xp
        e = xp.exp(x - xp.max(x.real, axis=self.dim, keepdims=True))
        e /= e.sum(axis=self.dim, keepdims=True)
        return e

    def backward(self, g):
        y = self.output
        return y * (g - (g * y).sum(self.dim, keepdim=True))


class CrossEntropy(Function):
    """Softmax cross-entropy of logits x (N, C) and class indices t, one node:
        loss_i = logsumexp(x_i) - x_i[t_i],   d loss_i / d x_i = softmax(x_i) - onehot(t_i),
    reduced by ``reduction`` ("mean", "sum" or "none"). The backward uses the Softmax op, so it can
    be differentiated again."""

    save_inputs = True

    def forward(self, x):
        losses, self.probs = kernels.cross_entropy_forward(x, self.target)
        if self.reduction == "none":
            return losses
        return losses.sum() / (x.shape[0] if self.reduction == "mean" else 1)

    def backward(self, g):
        (x,) = self.inputs
        n = x.shape[0]
        rows = x.xp.arange(n)
        if not is_grad_enabled():  # first order: from the probabilities forward computed
            grad = self.probs.copy()
            grad[rows, self.target] -= 1
            scale = g._data.reshape(n, 1) if self.reduction == "none" else g._data / (n if self.reduction == "mean" else 1)
            return _wrap(grad * scale)
        onehot = x.xp.zeros(x.shape, dtype=x.dtype)
        onehot[rows, self.target] = 1
        if self.reduction == "none":
            scale = g.reshape(n, 1)
        else:
            scale = g / n if self.reduction == "mean" else g
        return (softmax(x, 1) - _wrap(onehot)) * scale


def _dim(x, dim, op):
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: input must be a Tensor, got {type(x).__name__}")
    if x.ndim == 0:
        raise ValueError(f"{op}: input must have at least one dimension")
    if not -x.ndim <= dim < x.ndim:
        raise IndexError(f"{op}: dim {dim} out of range for input of shape {tuple(x.shape)}")
    return dim % x.ndim


def log_softmax(input, dim=-1):
    """log softmax along ``dim``, stable for large inputs."""
    return LogSoftmax.apply(input, dim=_dim(input, dim, "log_softmax"))


def softmax(input, dim=-1):
    """softmax along ``dim``, stable for large inputs."""
    return Softmax.apply(input, dim=_dim(input, dim, "softmax"))


def _reduce(loss, reduction, op):
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss
    raise ValueError(f"{op}: reduction must be one of {REDUCTIONS}, got {reduction!r}")


def cross_entropy(input, target, reduction="mean"):
    """Softmax cross-entropy of logits ``input`` (N, C) against ``target``.

    ``target`` holds class indices (integers in [0, C), shape (N,)) or class
    probabilities (floats, shape (N, C)). Loss per sample: -log softmax(input)[target].
    """
    if reduction not in REDUCTIONS:
        raise ValueError(f"cross_entropy: reduction must be one of {REDUCTIONS}, got {reduction!r}")
    if not isinstance(input, Tensor) or input.ndim != 2:
        raise ValueError(f"cross_entropy: input must be logits of shape (N, C), got "
                         f"{tuple(getattr(input, 'shape', ())) or type(input).__name__}")
    if not isinstance(target, Tensor):
        raise TypeError(f"cross_entropy: target must be a Tensor, got {type(target).__name__}")
    n, classes = input.shape
    if target.dtype.kind in "fc":
        logp = log_softmax(input, 1)
        if target.shape != input.shape:
            raise ValueError(f"cross_entropy: probability targets must have the input's shape "
                             f"{tuple(input.shape)}, got {tuple(target.shape)}")
        return _reduce(-(logp * target).sum(1), reduction, "cross_entropy")
    if target.dtype.kind not in "iu":
        raise TypeError(f"cross_entropy: class targets must be integers, got dtype {target.dtype}")
    if target.shape != (n,):
        raise ValueError(f"cross_entropy: class targets must have shape ({n},), got {tuple(target.shape)}")
    labels = target._data
    if n and (int(labels.min()) < 0 or int(labels.max()) >= classes):
        raise ValueError(f"cross_entropy: target values must lie in [0, {classes}), got values from "
                         f"{int(labels.min())} to {int(labels.max())}")
    return CrossEntropy.apply(input, target=labels, reduction=reduction)


def mse_loss(input, target, reduction="mean"):
    """Mean squared error: mean((input - target)^2) (or its sum, or per element)."""
    if reduction not in REDUCTIONS:
        raise ValueError(f"mse_loss: reduction must be one of {REDUCTIONS}, got {reduction!r}")
    if tuple(input.shape) != tuple(target.shape):
        raise ValueError(f"mse_loss: input shape {tuple(input.shape)} and target shape "
                         f"{tuple(target.shape)} differ")
    d = input - target
    return _reduce(d * d, reduction, "mse_loss")


__all__ = ["LogSoftmax", "Softmax", "log_softmax", "softmax", "cross_entropy", "mse_loss"]

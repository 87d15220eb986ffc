"""The losses: cross-entropy and mean squared error (softmax itself is in :mod:`minibn.ops.softmax`)."""

from __future__ import annotations

import warnings

from .. import kernels
from ..autograd import Function, is_grad_enabled
from ..ops.softmax import LogSoftmax, Softmax, log_softmax, softmax
from ..tensor import Tensor, _wrap

REDUCTIONS = ("mean", "sum", "none")


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


def _reduce(loss, reduction, op):
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss
    raise ValueError(f"{op}: reduction must be one of {REDUCTIONS}, got {reduction!r}")


def cross_entropy(input, target, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0):
    """Softmax cross-entropy of logits ``input`` (N, C) or (N, C, d1, ...) against ``target``,
    PyTorch's signature and rules.

    ``target`` holds class indices (integers in [0, C) or ``ignore_index``, shape (N, d1, ...)) or
    class probabilities (floats, the input's shape). Per sample, with p = softmax(input) over C:
    loss = -w[t] log p[t] (class ``weight`` w, default 1), mixed with the smoothed loss
    -sum_c w_c log p_c / C as (1 - eps) loss + eps smoothed (``label_smoothing`` eps). "mean"
    divides the sum by the sum of w[t] over the samples not ignored (by N for probabilities).
    The plain case (no weight, nothing ignored, no smoothing) is one node with a closed-form
    backward; the others are built from log_softmax.

    Kernel of the plain case: ``cross_entropy_forward`` (``minibn/kernels/cross_entropy/``).
    """
    if reduction not in REDUCTIONS:
        raise ValueError(f"cross_entropy: reduction must be one of {REDUCTIONS}, got {reduction!r}")
    if not isinstance(input, Tensor) or input.ndim < 2:
        raise ValueError(f"cross_entropy: input must be logits of shape (N, C) or (N, C, d1, ...), got "
                         f"{tuple(getattr(input, 'shape', ())) or type(input).__name__}")
    if not isinstance(target, Tensor):
        raise TypeError(f"cross_entropy: target must be a Tensor, got {type(target).__name__}")
    if not 0 <= label_smoothing <= 1:
        raise ValueError(f"cross_entropy: label_smoothing must be in [0, 1], got {label_smoothing!r}")
    classes = input.shape[1]
    if weight is not None and (not isinstance(weight, Tensor) or tuple(weight.shape) != (classes,)):
        raise ValueError(f"cross_entropy: weight must be a Tensor of shape ({classes},), got "
                         f"{tuple(getattr(weight, 'shape', ())) or type(weight).__name__}")
    if input.ndim > 2:  # (N, C, d1, ...): every position is a sample
        order = (0, *range(2, input.ndim), 1)
        flat = input.permute(*order).reshape(-1, classes)
        probabilities = target.dtype.kind in "fc"
        if probabilities and tuple(target.shape) != tuple(input.shape):
            raise ValueError(f"cross_entropy: probability targets must have the input's shape "
                             f"{tuple(input.shape)}, got {tuple(target.shape)}")
        if not probabilities and tuple(target.shape) != (input.shape[0], *input.shape[2:]):
            raise ValueError(f"cross_entropy: class targets must have shape {(input.shape[0], *input.shape[2:])}, "
                             f"got {tuple(target.shape)}")
        flat_target = target.permute(*order).reshape(-1, classes) if probabilities else target.reshape(-1)
        loss = cross_entropy(flat, flat_target, weight, ignore_index, reduction, label_smoothing)
        return loss.reshape(input.shape[0], *input.shape[2:]) if reduction == "none" else loss
    n = input.shape[0]
    if target.dtype.kind in "fc":
        if target.shape != input.shape:
            raise ValueError(f"cross_entropy: probability targets must have the input's shape "
                             f"{tuple(input.shape)}, got {tuple(target.shape)}")
        t = target * (1 - label_smoothing) + label_smoothing / classes if label_smoothing else target
        if weight is not None:
            t = t * weight
        return _reduce(-(log_softmax(input, 1) * t).sum(1), reduction, "cross_entropy")
    if target.dtype.kind not in "iu":
        raise TypeError(f"cross_entropy: class targets must be integers, got dtype {target.dtype}")
    if target.shape != (n,):
        raise ValueError(f"cross_entropy: class targets must have shape ({n},), got {tuple(target.shape)}")
    labels = target._data
    xp = input.xp
    valid = labels != ignore_index
    if n and valid.any():
        kept = labels[valid]
        if int(kept.min()) < 0 or int(kept.max()) >= classes:
            raise ValueError(f"cross_entropy: target values must lie in [0, {classes}) or be ignore_index "
                             f"({ignore_index}), got values from {int(kept.min())} to {int(kept.max())}")
    if weight is None and label_smoothing == 0 and bool(valid.all()):
        return CrossEntropy.apply(input, target=labels, reduction=reduction)
    onehot = xp.zeros(input.shape, dtype=input.dtype)
    onehot[xp.arange(n), xp.where(valid, labels, 0)] = valid
    onehot = _wrap(onehot)
    class_weight = onehot if weight is None else onehot * weight   # w[t] at t, 0 on ignored rows
    logp = log_softmax(input, 1)
    loss = -(logp * class_weight).sum(1)
    if label_smoothing:
        spread = logp if weight is None else logp * weight
        loss = loss * (1 - label_smoothing) - spread.sum(1) * _wrap(valid.astype(input.dtype)) * (label_smoothing / classes)
    if reduction == "mean":
        return loss.sum() / class_weight.sum()
    return loss.sum() if reduction == "sum" else loss


def mse_loss(input, target, *, reduction="mean"):
    """Mean squared error: mean((input - target)^2) (or its sum, or per element). ``reduction`` is
    keyword-only: PyTorch's third positional argument is the deprecated ``size_average``. Shapes that
    differ broadcast, with PyTorch's warning (it is rarely what was meant)."""
    if reduction not in REDUCTIONS:
        raise ValueError(f"mse_loss: reduction must be one of {REDUCTIONS}, got {reduction!r}")
    if tuple(input.shape) != tuple(target.shape):
        warnings.warn(f"mse_loss: target shape {tuple(target.shape)} differs from input shape "
                      f"{tuple(input.shape)}; they broadcast, which is likely not what you want", UserWarning,
                      stacklevel=2)
    d = input - target
    return _reduce(d * d, reduction, "mse_loss")


__all__ = ["LogSoftmax", "Softmax", "log_softmax", "softmax", "cross_entropy", "mse_loss"]

"""The losses: cross-entropy, negative log-likelihood, binary cross-entropy (on probabilities and on
logits) and mean squared error (softmax itself is in :mod:`minibn.ops.softmax`)."""

from __future__ import annotations

import warnings

import numpy as np

from .. import kernels
from ..autograd import Function, is_grad_enabled
from ..ops.softmax import log_softmax, softmax
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


def _check_classes(op, labels, classes, ignore_index, error):
    """Where the class indices ``labels`` are not ``ignore_index``; any of those outside [0, classes) is
    an ``error``."""
    valid = labels != ignore_index
    if valid.any():
        kept = labels[valid]
        if int(kept.min()) < 0 or int(kept.max()) >= classes:
            raise error(f"{op}: target values must lie in [0, {classes}) or be ignore_index ({ignore_index}), got "
                        f"values from {int(kept.min())} to {int(kept.max())}")
    return valid


def _class_weights(input, labels, valid, weight):
    """w[t] at each sample's class t and 0 elsewhere (0 on the whole row of an ignored sample), of the
    (N, C) input's shape; w is the class ``weight``, default 1."""
    xp = input.xp
    onehot = xp.zeros(input.shape, dtype=input.dtype)
    onehot[xp.arange(input.shape[0]), xp.where(valid, labels, 0)] = valid
    return _wrap(onehot) if weight is None else _wrap(onehot) * weight


def weighted_mean(loss, class_weight):
    """sum(loss) / sum(w[t]); where every sample is ignored (sum(w[t]) = 0), NaN with a zero gradient,
    as PyTorch gives (0 / 0 would send NaN back through the graph)."""
    total = class_weight.sum()
    if not bool(total._data != 0):
        return loss.sum() * 0 + float("nan")
    return loss.sum() / total


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
    valid = _check_classes("cross_entropy", labels, classes, ignore_index, ValueError)
    if weight is None and label_smoothing == 0 and bool(valid.all()):
        return CrossEntropy.apply(input, target=labels, reduction=reduction)
    class_weight = _class_weights(input, labels, valid, weight)
    logp = log_softmax(input, 1)
    loss = -(logp * class_weight).sum(1)
    if label_smoothing:
        spread = logp if weight is None else logp * weight
        loss = loss * (1 - label_smoothing) - spread.sum(1) * _wrap(valid.astype(input.dtype)) * (label_smoothing / classes)
    if reduction == "mean":
        return weighted_mean(loss, class_weight)
    return loss.sum() if reduction == "sum" else loss


def legacy_reduction(op: str, size_average, reduce, reduction: str) -> str:
    """PyTorch's deprecated ``size_average`` and ``reduce`` arguments as a ``reduction``: reduce=False
    is "none", size_average=False "sum" (each with PyTorch's deprecation warning)."""
    if size_average is None and reduce is None:
        return reduction
    warnings.warn(f"{op}: size_average and reduce are deprecated; use reduction='mean', 'sum' or 'none'",
                  DeprecationWarning, stacklevel=3)
    if reduce is not None and not reduce:
        return "none"
    return "sum" if size_average is not None and not size_average else "mean"


def nll_loss(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction="mean"):
    """Negative log-likelihood of log-probabilities ``input`` (N, C) or (N, C, d1, ...) at the class
    indices ``target`` (N, d1, ...): loss = -w[t] input[t] per sample (class ``weight`` w, default 1;
    a target equal to ``ignore_index`` counts 0); "mean" divides the sum by the sum of w[t] over the
    samples not ignored. ``cross_entropy(x, t) == nll_loss(log_softmax(x, 1), t)``."""
    reduction = legacy_reduction("nll_loss", size_average, reduce, reduction)
    if reduction not in REDUCTIONS:
        raise ValueError(f"nll_loss: reduction must be one of {REDUCTIONS}, got {reduction!r}")
    if isinstance(input, Tensor) and input.ndim == 1 and isinstance(target, Tensor) and target.ndim == 0:
        loss = nll_loss(input.unsqueeze(0), target.unsqueeze(0), weight, None, ignore_index, None, reduction)
        return loss[0] if reduction == "none" else loss  # one unbatched sample (C,) and its class
    if not isinstance(input, Tensor) or input.ndim < 2:
        raise ValueError(f"nll_loss: input must be log-probabilities of shape (N, C) or (N, C, d1, ...), got "
                         f"{tuple(getattr(input, 'shape', ())) or type(input).__name__}")
    if not isinstance(target, Tensor) or target.dtype.kind not in "iu":
        raise TypeError(f"nll_loss: target must be a tensor of class indices (integers), got "
                        f"{getattr(target, 'dtype', type(target).__name__)}")
    classes = input.shape[1]
    if tuple(target.shape) != (input.shape[0], *input.shape[2:]):
        raise ValueError(f"nll_loss: target must have shape {(input.shape[0], *input.shape[2:])} for an input of "
                         f"shape {tuple(input.shape)}, got {tuple(target.shape)}")
    if weight is not None and (not isinstance(weight, Tensor) or tuple(weight.shape) != (classes,)):
        raise ValueError(f"nll_loss: weight must be a Tensor of shape ({classes},), got "
                         f"{tuple(getattr(weight, 'shape', ())) or type(weight).__name__}")
    if input.ndim > 2:  # (N, C, d1, ...): every position is a sample
        flat = input.permute(0, *range(2, input.ndim), 1).reshape(-1, classes)
        loss = nll_loss(flat, target.reshape(-1), weight, None, ignore_index, None, reduction)
        return loss.reshape(target.shape) if reduction == "none" else loss
    labels = target._data
    valid = _check_classes("nll_loss", labels, classes, ignore_index, IndexError)
    class_weight = _class_weights(input, labels, valid, weight)
    loss = -(input * class_weight).sum(1)
    if reduction == "mean":
        return weighted_mean(loss, class_weight)
    return loss.sum() if reduction == "sum" else loss


def _binary_checks(op, input, target, weight):
    if not isinstance(input, Tensor) or not isinstance(target, Tensor):
        raise TypeError(f"{op}: input and target must be tensors, got {type(input).__name__} and "
                        f"{type(target).__name__}")
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(f"{op}: target of shape {tuple(target.shape)} differs from the input's "
                         f"{tuple(input.shape)}; give them one shape")
    if weight is not None and not isinstance(weight, Tensor):
        raise TypeError(f"{op}: weight must be a Tensor, got {type(weight).__name__}")


class BinaryCrossEntropy(Function):
    """Per element: loss = -(t max(log x, -100) + (1 - t) max(log(1 - x), -100)), the logs bounded as
    in PyTorch (x = 0 or 1 gives a finite loss);  dx = g (x - t) / max(x (1 - x), 1e-12), PyTorch's
    rule, finite there too. The backward is made of ops, so it differentiates again."""

    save_inputs = True

    def forward(self, x):
        xp, t = self.xp, self.target
        with np.errstate(divide="ignore"):
            return -(t * xp.maximum(xp.log(x), -100) + (1 - t) * xp.maximum(xp.log1p(-x), -100))

    def backward(self, g):
        (x,) = self.inputs
        t = _wrap(self.target)
        return g * (x - t) / (x * (1 - x)).clamp(min=1e-12)


def binary_cross_entropy(input, target, weight=None, size_average=None, reduce=None, reduction="mean"):
    """-w (t log x + (1 - t) log(1 - x)) of probabilities ``input`` x in [0, 1] and targets t of its
    shape (:class:`BinaryCrossEntropy`), times the ``weight`` w, reduced."""
    reduction = legacy_reduction("binary_cross_entropy", size_average, reduce, reduction)
    _binary_checks("binary_cross_entropy", input, target, weight)
    x = input._data
    if x.size and (bool((x < 0).any()) or bool((x > 1).any()) or bool(input.xp.isnan(x).any())):
        raise RuntimeError("binary_cross_entropy: all elements of input should be between 0 and 1 (probabilities; "
                           "for logits use binary_cross_entropy_with_logits)")
    if target.requires_grad and is_grad_enabled():
        raise RuntimeError("binary_cross_entropy: the derivative for 'target' is not implemented (as in PyTorch); "
                           "pass target.detach()")
    loss = BinaryCrossEntropy.apply(input, target=target._data.astype(x.dtype, copy=False))
    return _reduce(loss if weight is None else loss * weight, reduction, "binary_cross_entropy")


def binary_cross_entropy_with_logits(input, target, weight=None, size_average=None, reduce=None, reduction="mean",
                                     pos_weight=None):
    """Binary cross-entropy of logits x: -w (p t log sigmoid(x) + (1 - t) log(1 - sigmoid(x))), with
    the positive class weighted by ``pos_weight`` p (broadcast along the last dimension), computed
    stably as w ((1 - t) x + (1 + (p - 1) t) softplus(-x)); softplus(-x) = logsumexp(0, -x)."""
    reduction = legacy_reduction("binary_cross_entropy_with_logits", size_average, reduce, reduction)
    _binary_checks("binary_cross_entropy_with_logits", input, target, weight)
    from ..ops import logsumexp, stack

    softplus_neg = logsumexp(stack([input.new_zeros(input.shape), -input], -1), -1)
    coefficient = 1 if pos_weight is None else 1 + (pos_weight - 1) * target
    loss = (1 - target) * input + coefficient * softplus_neg
    return _reduce(loss if weight is None else loss * weight, reduction, "binary_cross_entropy_with_logits")


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


__all__ = ["binary_cross_entropy", "binary_cross_entropy_with_logits", "cross_entropy", "log_softmax", "mse_loss",
           "nll_loss", "softmax"]

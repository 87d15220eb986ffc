"""Loss modules: each calls its function of :mod:`minibn.functional` with the settings it was made with.

The class ``weight`` comes first, as in PyTorch (a buffer: saved and moved with the module); the
rest are keyword-only, since PyTorch's next
positional arguments are the deprecated ``size_average`` and ``reduce`` (accepted here by keyword,
mapped to ``reduction`` with PyTorch's deprecation warning).
"""

from __future__ import annotations

from .. import functional as F
from ..functional.losses import legacy_reduction
from .module import Module


class _Loss(Module):
    def __init__(self, *, size_average=None, reduce=None, reduction: str = "mean"):
        super().__init__()
        self.reduction = legacy_reduction(type(self).__name__, size_average, reduce, reduction)
        if self.reduction not in ("mean", "sum", "none"):
            raise ValueError(f"{type(self).__name__}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


class MSELoss(_Loss):
    """``F.mse_loss``: mean((input - target)^2)."""

    def forward(self, input, target):
        return F.mse_loss(input, target, reduction=self.reduction)


class CrossEntropyLoss(_Loss):
    """``F.cross_entropy`` of logits and class indices (or probabilities)."""

    def __init__(self, weight=None, *, size_average=None, ignore_index: int = -100, reduce=None,
                 reduction: str = "mean", label_smoothing: float = 0.0):
        super().__init__(size_average=size_average, reduce=reduce, reduction=reduction)
        self.register_buffer("weight", weight)  # saved and moved with the module, as in PyTorch
        self.ignore_index, self.label_smoothing = int(ignore_index), float(label_smoothing)

    def forward(self, input, target):
        return F.cross_entropy(input, target, self.weight, self.ignore_index, self.reduction, self.label_smoothing)


class NLLLoss(_Loss):
    """``F.nll_loss`` of log-probabilities (a ``LogSoftmax`` output) and class indices."""

    def __init__(self, weight=None, *, size_average=None, ignore_index: int = -100, reduce=None,
                 reduction: str = "mean"):
        super().__init__(size_average=size_average, reduce=reduce, reduction=reduction)
        self.register_buffer("weight", weight)
        self.ignore_index = int(ignore_index)

    def forward(self, input, target):
        return F.nll_loss(input, target, self.weight, ignore_index=self.ignore_index, reduction=self.reduction)


class BCELoss(_Loss):
    """``F.binary_cross_entropy`` of probabilities (a ``Sigmoid`` output) and targets in [0, 1]."""

    def __init__(self, weight=None, *, size_average=None, reduce=None, reduction: str = "mean"):
        super().__init__(size_average=size_average, reduce=reduce, reduction=reduction)
        self.register_buffer("weight", weight)

    def forward(self, input, target):
        return F.binary_cross_entropy(input, target, self.weight, reduction=self.reduction)


class BCEWithLogitsLoss(_Loss):
    """``F.binary_cross_entropy_with_logits``: sigmoid and binary cross-entropy in one stable formula."""

    def __init__(self, weight=None, *, size_average=None, reduce=None, reduction: str = "mean", pos_weight=None):
        super().__init__(size_average=size_average, reduce=reduce, reduction=reduction)
        self.register_buffer("weight", weight)
        self.register_buffer("pos_weight", pos_weight)

    def forward(self, input, target):
        return F.binary_cross_entropy_with_logits(input, target, self.weight, reduction=self.reduction,
                                                  pos_weight=self.pos_weight)

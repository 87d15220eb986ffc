"""Optimizers and learning-rate schedules (PyTorch's ``torch.optim``)."""

from . import lr_scheduler
from .lr_scheduler import LambdaLR, ReduceLROnPlateau
from .optimizer import SGD, Adam, Optimizer

__all__ = ["SGD", "Adam", "LambdaLR", "Optimizer", "ReduceLROnPlateau", "lr_scheduler"]

"""Optimizers and learning-rate schedules (PyTorch's ``torch.optim``)."""

from . import lr_scheduler
from .lr_scheduler import ReduceLROnPlateau
from .optimizer import SGD, Adam, Optimizer

__all__ = ["SGD", "Adam", "Optimizer", "ReduceLROnPlateau", "lr_scheduler"]

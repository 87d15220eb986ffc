"""Modules (PyTorch's ``torch.nn``): layers, containers, the MLP builder and BN folding."""

from .build import mlp
from .fold import fold_batchnorm
from .layers import BatchNorm1d, BatchNormNoise, Identity, Linear, LpNorm1d, ReLU, Sigmoid, Tanh
from .module import Module, Parameter, Sequential

__all__ = ["BatchNorm1d", "BatchNormNoise", "Identity", "Linear", "LpNorm1d", "Module", "Parameter",
           "ReLU", "Sequential", "Sigmoid", "Tanh", "fold_batchnorm", "mlp"]

"""Modules (PyTorch's ``torch.nn``): layers, containers, the MLP builder and BN folding."""

from . import functional
from .build import mlp
from .fold import fold_batchnorm
from .containers import ModuleDict, ModuleList, ParameterList, Sequential
from .layers import (BatchNorm1d, BatchNormNoise, CrossEntropyLoss, Dropout, Flatten, GELU, Identity, LeakyReLU, Linear,
                     LpNorm1d, MSELoss, ReLU, Sigmoid, Tanh)
from .module import Module, Parameter

__all__ = ["BatchNorm1d", "BatchNormNoise", "CrossEntropyLoss", "Dropout", "Flatten", "GELU", "Identity", "LeakyReLU",
           "Linear", "LpNorm1d", "MSELoss", "Module", "ModuleDict", "ModuleList", "Parameter", "ParameterList",
           "ReLU", "Sequential", "Sigmoid", "Tanh", "fold_batchnorm", "mlp"]

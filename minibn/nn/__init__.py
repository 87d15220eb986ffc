"""Modules (PyTorch's ``torch.nn``): layers, containers, the MLP builder and BN folding."""

from .. import init
from . import functional, utils
from .build import mlp
from .fold import fold_batchnorm
from .containers import ModuleDict, ModuleList, ParameterList, Sequential
from .ensemble import Ensemble, ensemble_loss
from .layers import (BatchNorm1d, BatchNormNoise, Dropout, Flatten, GELU, Identity, LeakyReLU, Linear, LogSoftmax, LpNorm1d,
                     ReLU, Sigmoid, Softmax, Tanh)
from .losses import BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, MSELoss, NLLLoss
from .module import Module, Parameter

__all__ = ["BCELoss", "BCEWithLogitsLoss", "BatchNorm1d", "BatchNormNoise", "CrossEntropyLoss", "Dropout", "Ensemble", "Flatten",
           "GELU", "Identity", "LeakyReLU", "Linear", "LogSoftmax", "LpNorm1d", "MSELoss", "Module", "ModuleDict",
           "ModuleList", "NLLLoss", "Parameter", "ParameterList", "ReLU", "Sequential", "Sigmoid", "Softmax", "Tanh",
           "ensemble_loss", "fold_batchnorm", "init", "mlp", "utils"]

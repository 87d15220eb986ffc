"""Layer functions, each one node with a closed-form backward (PyTorch's ``torch.nn.functional``)."""

from ..ops import sigmoid, tanh
from .activations import elu, gelu, hardtanh, leaky_relu, relu, silu, softplus
from .batchnorm import batch_norm
from .dropout import dropout
from .encoding import one_hot
from .linear import linear
from .losses import (binary_cross_entropy, binary_cross_entropy_with_logits, cross_entropy, log_softmax, mse_loss,
                     nll_loss, softmax)
from .lpnorm import hoffer_constant, lp_norm
from .noise import batch_norm_noise

__all__ = ["batch_norm", "batch_norm_noise", "binary_cross_entropy", "binary_cross_entropy_with_logits", "cross_entropy",
           "dropout", "elu", "gelu", "hardtanh", "hoffer_constant", "leaky_relu", "linear", "log_softmax", "lp_norm",
           "mse_loss", "nll_loss", "one_hot", "relu", "sigmoid", "silu", "softmax", "softplus", "tanh"]

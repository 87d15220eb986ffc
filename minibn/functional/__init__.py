"""Layer functions, each one node with a closed-form backward (PyTorch's ``torch.nn.functional``)."""

from ..ops import relu, sigmoid, tanh
from .batchnorm import batch_norm
from .linear import linear
from .losses import cross_entropy, log_softmax, mse_loss, softmax
from .lpnorm import hoffer_constant, lp_norm
from .noise import batch_norm_noise

__all__ = ["batch_norm", "batch_norm_noise", "cross_entropy", "hoffer_constant", "linear",
           "log_softmax", "lp_norm", "mse_loss", "relu", "sigmoid", "softmax", "tanh"]

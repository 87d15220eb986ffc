"""minibn: a small reverse-mode autodiff engine for seeing backprop through batch norm.

    import minibn as mb
    x = mb.randn(3, 4, requires_grad=True)
    loss = (x.tanh() * x).sum()
    loss.backward()            # x.grad now holds d loss / d x
"""

from . import backends, cuda, functional, gradcheck, hessian, init, linalg, nn, ops, optim, utils, viz
from .autograd import (Function, backward, detect_anomaly, enable_grad, grad, is_grad_enabled,
                       no_grad, set_grad_enabled, trace)
from .grad_mode import inference_mode, is_inference_mode_enabled
from .legacy import BoolTensor, DoubleTensor, FloatTensor, IntTensor, LongTensor, Size, is_tensor
from .runtime import (are_deterministic_algorithms_enabled, get_num_threads, is_deterministic_algorithms_warn_only_enabled,
                      set_num_threads, use_deterministic_algorithms)
from .devices import (Device, bool_, get_default_device, set_default_device, complex64, complex128, float32, float64, get_default_dtype,
                      int32, int64, result_type, set_default_dtype, synchronize)
from .creation import (arange, as_tensor, empty, empty_like, eye, from_numpy, full, full_like,
                       linspace, ones, ones_like, rand, rand_like, randint, randn, randn_like, randperm,
                       tensor, zeros, zeros_like)
from .diagnostics import backend_info
from .serialization import load, save
from .ops import (abs, add, amax, amin, argmax, argmin, broadcast_to, cat, clamp, clone,
                  concatenate, div, eq, exp, expand, flatten, ge, gt, le, log, logical_and,
                  logical_not, logical_or, lt, matmul, max, maximum, mean, min, minimum, mul, ne,
                  neg, permute, pow, relu, reshape, sigmoid, sqrt, squeeze, stack, std, sub, sum,
                  sum_to, tanh, transpose, unsqueeze, var, where)
from .ops import cos, erf, expm1, log1p, reciprocal, rsqrt, sign, sin, square
from .ops import (argsort, einsum, gather, index_select, log_softmax, nonzero, prod, scatter, scatter_add, softmax,
                  sort, topk)
from .ops import (all, allclose, equal, numel, any, bmm, chunk, cumsum, dot, flip, isfinite, isnan, logsumexp, masked_fill, mm,
                  norm, outer, split, unbind)
from .kernels import get_kernels, set_kernels
from .random import Generator, default_generator, manual_seed
from .tensor import Tensor

bool = bool_  # noqa: A001  (mb.bool, as torch.bool)
float = float32  # noqa: A001
double = float64
long = int64

__version__ = "0.1.0"


def device(spec="cpu") -> Device:
    """A :class:`Device` from a string: ``mb.device("cuda:0")``."""
    return Device(spec)

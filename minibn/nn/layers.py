"""Layers: Linear, BatchNorm1d, LpNorm1d, the activations and softmax (the losses are in :mod:`.losses`)."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

from .. import creation, functional as F, init, random
from ..functional._channels import check_eps
from ..tensor import Tensor
from .module import Module, Parameter


class Linear(Module):
    """y = x W^T + b with W of shape (out_features, in_features); PyTorch's default initialization
    (Kaiming-uniform weights with a = sqrt(5), biases uniform on +-1/sqrt(in_features))."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, dtype=None, device=None,
                 generator=None):
        super().__init__()
        self.in_features, self.out_features = int(in_features), int(out_features)
        self.weight = Parameter(creation.empty(out_features, in_features, dtype=dtype, device=device))
        self.bias = Parameter(creation.empty(out_features, dtype=dtype, device=device)) if bias else None
        self.reset_parameters(generator)

    def reset_parameters(self, generator=None):
        init.kaiming_uniform_(self.weight, a=math.sqrt(5), generator=generator)
        if self.bias is not None:
            bound = 1 / math.sqrt(self.in_features) if self.in_features else 0.0
            init.uniform_(self.bias, -bound, bound, generator=generator)

    def forward(self, x):
        return F.linear(x, self.weight, self.bias)

    def forward_without_bias(self, x):
        """x W^T: what a following batch norm that takes the bias itself (fusion) needs."""
        return F.linear(x, self.weight)

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


@dataclass(frozen=True)
class BatchNormNoise:
    """Settings of the noise of Santurkar et al., Algorithm 1 (see ``functional.batch_norm_noise``)."""

    n_mu: float = 0.5
    n_sigma: float = 1.25
    r_mu: float = 0.1
    r_sigma: float = 0.1
    seed: int | None = None


class _Normalization(Module):
    """Shared by BatchNorm1d and LpNorm1d: affine parameters, running statistics, input checks."""

    scale_buffer = "running_var"

    def __init__(self, num_features, eps, momentum, affine, track_running_stats, dtype, device):
        super().__init__()
        self.num_features, self.eps, self.momentum = int(num_features), check_eps(type(self).__name__, eps), momentum
        self.affine, self.track_running_stats = bool(affine), bool(track_running_stats)
        if affine:
            self.weight = Parameter(creation.ones(num_features, dtype=dtype, device=device))
            self.bias = Parameter(creation.zeros(num_features, dtype=dtype, device=device))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", creation.zeros(num_features, dtype=dtype, device=device))
            self.register_buffer(self.scale_buffer, creation.ones(num_features, dtype=dtype, device=device))
            self.register_buffer("num_batches_tracked", creation.zeros((), dtype="int64", device=device))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer(self.scale_buffer, None)
            self.register_buffer("num_batches_tracked", None)

    def _check(self, x):
        if not isinstance(x, Tensor):
            raise TypeError(f"{type(self).__name__}: input must be a Tensor, got {type(x).__name__}")
        if x.ndim not in (2, 3) or x.shape[1] != self.num_features:
            raise ValueError(f"{type(self).__name__}({self.num_features}): expected input of shape "
                             f"(N, {self.num_features}) or (N, {self.num_features}, L), got {tuple(x.shape)}")

    def _use_batch_stats(self):
        return self.training or self.running_mean is None

    def _momentum(self):
        """PyTorch's rule: a fixed momentum, or (momentum=None) the cumulative average."""
        if not (self.training and self.track_running_stats):
            return 0.0
        self.num_batches_tracked.add_(1)
        if self.momentum is None:
            return 1.0 / int(self.num_batches_tracked.item())
        return self.momentum

    def _check_running(self):
        scale = getattr(self, self.scale_buffer)
        for name, t in (("running_mean", self.running_mean), (self.scale_buffer, scale)):
            if not bool(t.xp.isfinite(t._data).all()):  # on the array's own device
                raise ValueError(f"{type(self).__name__}: {name} holds NaN or inf; the running statistics "
                                 "are broken (a diverged training run?) and cannot normalize in eval mode")


class BatchNorm1d(_Normalization):
    """Batch normalization of (N, C) or (N, C, L) inputs, PyTorch's defaults and semantics.

    ``noise=True`` (or a :class:`BatchNormNoise`) adds the noise of Santurkar
    et al. after normalization, in training mode only.
    """

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True,
                 noise=None, dtype=None, device=None):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, dtype, device)
        self.noise = BatchNormNoise() if noise is True else (noise or None)
        self.noise_generator = random.Generator(self.noise.seed) if self.noise else None

    def forward(self, x, *, input_bias=None, activation=None):
        """``input_bias`` and ``activation`` fuse a preceding linear layer's bias and a following
        ReLU into this layer's node (see ``functional.batch_norm``); ``nn.Sequential`` uses them."""
        self._check(x)
        if self.noise and self.training and activation is not None:
            raise ValueError("BatchNorm1d with noise adds the noise after normalizing, so in training it "
                             "cannot fuse an activation")
        if self._use_batch_stats():
            momentum = self._momentum()
            y = F.batch_norm(x, self.running_mean if momentum else None,
                             self.running_var if momentum else None, self.weight, self.bias,
                             training=True, momentum=momentum, eps=self.eps, input_bias=input_bias,
                             activation=activation)
        else:
            self._check_running()
            y = F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                             training=False, eps=self.eps, input_bias=input_bias, activation=activation)
        if self.noise and self.training:
            n = self.noise
            y = F.batch_norm_noise(y, n.n_mu, n.n_sigma, n.r_mu, n.r_sigma, generator=self.noise_generator)
        return y

    def batch_affine(self, h):
        """(scale, shift) with scale h + shift equal to this layer's output on the batch h."""
        if self.noise:
            raise ValueError("BatchNorm1d with noise is not an affine map of its input")
        h = h.detach()
        mu = h.mean(0)
        sigma = (h.var(0, correction=0) + self.eps).sqrt()
        gamma = self.weight.detach() if self.affine else 1.0
        beta = self.bias.detach() if self.affine else 0.0
        scale = gamma / sigma
        return scale, beta - scale * mu

    def extra_repr(self):
        noise = f", noise={self.noise}" if self.noise else ""
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"track_running_stats={self.track_running_stats}{noise}")


class LpNorm1d(_Normalization):
    """Lp normalization (see ``functional.lp_norm``): p >= 1 or math.inf, centered or not,
    with or without mean shift, optionally with Hoffer's constants."""

    scale_buffer = "running_scale"

    def __init__(self, num_features, p=2.0, centered=True, mean_shift=True, hoffer=False, eps=1e-5,
                 momentum=0.1, affine=True, track_running_stats=True, dtype=None, device=None):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, dtype, device)
        self.p, self.centered, self.mean_shift, self.hoffer = float(p), bool(centered), bool(mean_shift), bool(hoffer)
        if not self.p >= 1:
            raise ValueError(f"LpNorm1d: p must be >= 1 (or math.inf), got {p}")
        if hoffer:
            F.hoffer_constant(self.p, 2)  # refuses a p without a constant, now rather than at forward

    def forward(self, x):
        self._check(x)
        options = dict(eps=self.eps, centered=self.centered, mean_shift=self.mean_shift, hoffer=self.hoffer)
        if self._use_batch_stats():
            momentum = self._momentum()
            return F.lp_norm(x, self.p, self.running_mean if momentum else None,
                             self.running_scale if momentum else None, self.weight, self.bias,
                             training=True, momentum=momentum, **options)
        self._check_running()
        return F.lp_norm(x, self.p, self.running_mean, self.running_scale, self.weight, self.bias,
                         training=False, **options)

    def batch_affine(self, h):
        """(scale, shift) with scale h + shift equal to this layer's output on the batch h."""
        h = h.detach()
        mu = h.mean(0)
        u = h - mu if self.centered else h
        m = h.shape[0]
        c = F.hoffer_constant(self.p, m) if self.hoffer else 1.0
        if self.p == math.inf:
            s = (u.abs().amax(0) + self.eps) * c
        else:
            s = ((u.abs() ** self.p).mean(0) + self.eps) ** (1 / self.p) * c
        gamma = self.weight.detach() if self.affine else 1.0
        beta = self.bias.detach() if self.affine else 0.0
        scale = gamma / s
        center = mu if self.mean_shift else mu * 0
        return scale, beta - scale * center

    def extra_repr(self):
        return (f"{self.num_features}, p={self.p}, centered={self.centered}, mean_shift={self.mean_shift}, "
                f"hoffer={self.hoffer}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}")


class ReLU(Module):
    """max(x, 0); ``inplace=True`` as ``F.relu(x, inplace=True)`` (out of place where a graph runs through x)."""

    def __init__(self, inplace: bool = False):
        super().__init__()
        self.inplace = bool(inplace)

    def forward(self, x):
        return F.relu(x, inplace=True) if self.inplace else x.relu()

    def extra_repr(self):
        return "inplace=True" if self.inplace else ""


class Softmax(Module):
    """softmax along ``dim``; without one, PyTorch's old implicit choice (0 for 0-, 1- and 3-d inputs,
    else 1), with its warning."""

    function = staticmethod(F.softmax)

    def __init__(self, dim: int | None = None):
        super().__init__()
        self.dim = dim

    def forward(self, x):
        dim = self.dim
        if dim is None:
            dim = 0 if x.ndim in (0, 1, 3) else 1
            warnings.warn(f"{type(self).__name__}: implicit dimension choice is deprecated; give dim= (chose "
                          f"{dim})", UserWarning, stacklevel=2)
        return self.function(x, dim)

    def extra_repr(self):
        return f"dim={self.dim}"


class LogSoftmax(Softmax):
    """log softmax along ``dim`` (the same rule as :class:`Softmax` without one)."""

    function = staticmethod(F.log_softmax)


class Tanh(Module):
    def forward(self, x):
        return x.tanh()


class Sigmoid(Module):
    def forward(self, x):
        return x.sigmoid()


class Identity(Module):
    def forward(self, x):
        return x


class LeakyReLU(Module):
    def __init__(self, negative_slope: float = 0.01):
        super().__init__()
        self.negative_slope = float(negative_slope)

    def forward(self, x):
        return F.leaky_relu(x, self.negative_slope)

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}"


class GELU(Module):
    """``F.gelu``: x Phi(x) (``approximate="tanh"`` for the tanh form)."""

    def __init__(self, approximate: str = "none"):
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def forward(self, x):
        return F.gelu(x, self.approximate)

    def extra_repr(self):
        return f"approximate={self.approximate!r}"


class Dropout(Module):
    """``F.dropout`` with probability ``p`` in training mode; the identity in eval mode."""

    def __init__(self, p: float = 0.5):
        super().__init__()
        F.dropout(creation.zeros(1), p, training=False)  # refuses a p outside [0, 1] now
        self.p = float(p)

    def forward(self, x):
        return F.dropout(x, self.p, self.training)

    def extra_repr(self):
        return f"p={self.p}"


class Flatten(Module):
    """Merge dimensions ``start_dim`` .. ``end_dim`` (PyTorch's defaults: all but the batch)."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x):
        return x.flatten(self.start_dim, self.end_dim)

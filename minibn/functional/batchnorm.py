"""Batch normalization as one node with the closed-form backward."""

from __future__ import annotations

from .. import kernels
from ..autograd import Function, is_grad_enabled
from ..tensor import Tensor, _wrap
from ._channels import broadcastable, check_eps, check_input, reduce_axes, running_pair, update_running, wrap_needed


class BatchNorm(Function):
    """Training-mode batch norm: y = gamma (x - mu) / sigma + beta per channel, with mu and
    sigma^2 the batch mean and biased batch variance (sigma = sqrt(var + eps)).

    Backward, the closed form of seed 000 sec. 3.1 (Ioffe and Szegedy 2015), xhat = (x - mu)/sigma:
        dx     = (gamma / sigma) (dy - mean(dy) - xhat mean(dy xhat))
        dgamma = sum dy xhat
        dbeta  = sum dy

    An optional fourth input is a per-channel shift c added to x before normalizing (the bias
    of a preceding linear layer, fused): y does not depend on it, the running mean does, and
    its gradient is sum dx (0 in exact arithmetic, rounding noise in practice, as for the
    unfused linear layer). :class:`BatchNormReLU` adds max(y, 0) as an epilogue.

    Forward and first-order backward run on arrays (``minibn.kernels``). With
    create_graph=True, dx is one :class:`BatchNormGrad` node, whose own
    backward is the analytic second derivative, and dgamma is built from the
    normalized input as a node of its own, so that every derivative of every
    order sees mu, sigma and xhat as the functions of x they are. Saving mu
    and 1/sigma as constants instead (PyTorch's and Chainer's double
    backward do) drops that dependence, and third derivatives come out wrong.
    """

    save_inputs = True
    relu = False

    def forward(self, x, gamma, beta, shift=None):
        y, mu, var, invstd = kernels.batch_norm_forward(x, gamma, beta, self.eps, self.relu)
        self.mu, self.invstd = mu, invstd  # of x itself: the shift cancels in xhat
        if self.running is not None:  # the running variance takes the unbiased batch variance
            m = x.size // x.shape[1]
            update_running(self.running, mu if shift is None else mu + shift, var * (m / (m - 1)))
            self.running = None  # the graph does not need the buffers
        return y

    def backward(self, g):
        x, gamma = self.inputs[:2]
        needs = self.needs
        shifted = len(needs) > 3
        if not is_grad_enabled():
            gamma_data = gamma._data if isinstance(gamma, Tensor) else None
            relu_out = self.output._data if self.relu else None
            dx, dgamma, dbeta, dshift = kernels.batch_norm_backward(
                g._data, x._data, self.mu, self.invstd, gamma_data, relu_out, shifted and needs[3])
            return wrap_needed(needs, dx, dgamma, dbeta, dshift)
        if self.relu:  # the mask is a constant: relu's second derivative is 0 almost everywhere
            g = g * _wrap(self.output._data > 0)
        axes = reduce_axes(x.ndim)
        dx = dgamma = None
        if needs[0] or (shifted and needs[3]):
            # BatchNormGrad and xhat below see x without the shift, which they do not depend on
            dx = BatchNormGrad.apply(x, g, gamma, eps=self.eps, mu=self.mu, invstd=self.invstd)
        if needs[1]:
            xhat = BatchNorm.apply(x, None, None, eps=self.eps, running=None)
            dgamma = (g * xhat).sum(axes)
        grads = (dx if needs[0] else None, dgamma, g.sum(axes) if needs[2] else None)
        return grads + (dx.sum(axes) if needs[3] else None,) if shifted else grads


class BatchNormReLU(BatchNorm):
    """max(BatchNorm(x), 0) as one node: the ReLU is an epilogue of the normalization kernel
    in forward, and its mask (output > 0) is applied to the incoming gradient inside the
    backward kernel (numba; the NumPy and CuPy kernels mask in a pass of their own), which
    saves two passes over the activations. With create_graph=True the
    mask multiplies the gradient as a constant (the ReLU's second derivative is 0)."""

    rule = ("dr = dy where y > 0;  dx = (gamma / sigma) (dr - mean(dr) - xhat mean(dr xhat));  dgamma = sum dr xhat;  "
            "dbeta = sum dr")
    fuses = "BatchNorm1d -> ReLU"
    save_output = True
    relu = True


class BatchNormGrad(Function):
    """The input gradient of batch norm as one node: dx = gamma s r per channel, with
    s = 1/sigma, r = g - mean(g) - xhat a, a = mean(g xhat) (m values per channel).

    Its backward, for an upstream u (derived by differentiating the closed form):
        d/dg:     gamma s (u - mean(u) - xhat mean(u xhat))    (the same map: it is symmetric in g)
        d/dgamma: sum u s r
        d/dx:     -gamma s^2 (xhat mean(u r) + a (u - mean(u) - xhat mean(u xhat)) + r mean(u xhat))
    On arrays (``kernels.batch_norm_double_backward``) when no graph is being built; otherwise
    written with differentiable ops of x, g and gamma, so that it can be differentiated again.
    """

    save_inputs = True

    def forward(self, x, g, gamma):
        return kernels.batch_norm_backward(g, x, self.mu, self.invstd, gamma)[0]

    def backward(self, u):
        x, g, gamma = self.inputs
        if not is_grad_enabled():
            gx, gg, ggamma = kernels.batch_norm_double_backward(
                u._data, x._data, g._data, self.mu, self.invstd, gamma._data if isinstance(gamma, Tensor) else None)
            return wrap_needed(self.needs, gx, gg, ggamma)
        nd, axes = x.ndim, reduce_axes(x.ndim)
        scale = 1 if gamma is None else broadcastable(gamma, nd)
        mu = x.mean(axes, keepdim=True)
        centered = x - mu
        s = ((centered * centered).mean(axes, keepdim=True) + self.eps).sqrt() ** -1
        xhat = centered * s
        a = (g * xhat).mean(axes, keepdim=True)
        u_xhat = (u * xhat).mean(axes, keepdim=True)
        gx = gg = ggamma = None
        if self.needs[1]:
            gg = BatchNormGrad.apply(x, u, gamma, eps=self.eps, mu=self.mu, invstd=self.invstd)
        if self.needs[0] or self.needs[2]:
            r = g - g.mean(axes, keepdim=True) - xhat * a
        if self.needs[0]:
            u_centered = u - u.mean(axes, keepdim=True) - xhat * u_xhat
            inner = xhat * (u * r).mean(axes, keepdim=True) + a * u_centered + r * u_xhat
            gx = -(scale * s * s) * inner
        if self.needs[2]:
            ggamma = (u * r * s).sum(axes)
        return gx, gg, ggamma


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False,
               momentum=0.1, eps=1e-5, *, input_bias=None, activation=None):
    """Batch normalization over channel axis 1 of an (N, C) or (N, C, L) input, as in PyTorch.

    Training: normalize by the batch mean and biased batch variance; when
    running statistics are given, update them in place with ``momentum``
    (the running variance takes the unbiased batch variance). Evaluation:
    normalize by the running statistics.

    Two fusions, minibn's own (``nn.Sequential`` uses them for Linear ->
    BatchNorm1d -> ReLU): ``input_bias``, a (C,) tensor, normalizes
    ``input + input_bias`` without forming it (a linear layer's bias, so the
    linear layer can skip its bias add); ``activation="relu"`` returns
    ``max(y, 0)`` from the same node.

    Kernels (``minibn/kernels/batchnorm/``: its docstring has these formulas in the names of its
    reference, numba and CuPy files; ``kernels.implementations()`` says which set runs each):
    ``batch_norm_forward`` and ``batch_norm_backward`` in training mode, ``batch_norm_double_backward``
    for the :class:`BatchNormGrad` node, ``affine_forward`` and ``affine_backward`` in evaluation.
    """
    eps = check_eps("batch_norm", eps)
    check_input("batch_norm", input, ("running_mean", running_mean), ("running_var", running_var),
                ("weight", weight), ("bias", bias), ("input_bias", input_bias), training=training)
    if activation not in (None, "relu"):
        raise ValueError(f"batch_norm: activation must be None or 'relu', got {activation!r}")
    if training:
        running = running_pair("batch_norm", running_mean, running_var, "running_var", momentum)
        node = BatchNormReLU if activation == "relu" else BatchNorm
        inputs = (input, weight, bias) if input_bias is None else (input, weight, bias, input_bias)
        return node.apply(*inputs, eps=float(eps), running=running)
    if running_mean is None or running_var is None:
        raise ValueError("batch_norm: evaluation (training=False) needs running_mean and running_var")
    if input_bias is not None:
        input = input + broadcastable(input_bias, input.ndim)
    y = affine_normalize(input, running_mean, (running_var + eps).sqrt(), weight, bias)
    return y.relu() if activation == "relu" else y


class NormalizeFixed(Function):
    """Normalization by fixed per-channel statistics (eval mode):
        y = gamma (x - center) / scale + beta,
        dx = dy gamma / scale,  dgamma = sum dy (x - center) / scale,  dbeta = sum dy."""

    save_inputs = True

    def forward(self, x, gamma, beta):
        return kernels.affine_forward(x, self.center, self.scale, gamma, beta)

    def backward(self, g):
        x, gamma, beta = self.inputs
        if not is_grad_enabled():
            dx, dgamma, dbeta = kernels.affine_backward(g._data, x._data, self.center, self.scale,
                                                        gamma._data if isinstance(gamma, Tensor) else None)
            return wrap_needed(self.needs, dx, dgamma, dbeta)
        nd = x.ndim
        scale = broadcastable(_wrap(self.scale), nd)
        xhat = (x if self.center is None else x - broadcastable(_wrap(self.center), nd)) / scale
        axes = reduce_axes(nd)
        dx = g / scale if gamma is None else g * (broadcastable(gamma, nd) / scale)
        return (dx if self.needs[0] else None, (g * xhat).sum(axes) if self.needs[1] else None,
                g.sum(axes) if self.needs[2] else None)


def affine_normalize(x, center, scale, weight, bias):
    """gamma (x - center) / scale + beta with fixed per-channel center (or None) and scale."""
    return NormalizeFixed.apply(x, weight, bias, center=None if center is None else center.detach()._data.copy(),
                                scale=scale.detach()._data.copy())

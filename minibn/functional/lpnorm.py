"""Lp normalization (seed 000 sec. 4; Hoffer et al. 2018) as one node with an explicit backward.

Per channel, over the m values of a batch:

    y = gamma n / s + beta,     s = c ((1/m) sum |u|^p + eps)^(1/p)    (p >= 1)
                                s = c (max |u| + eps)                   (p = inf)

with u = x - mu (``centered=True``) or u = x (``centered=False``), and the
numerator n = x - mu (``mean_shift=True``, as in the seed author's code even
when s is uncentered) or n = x. c = 1, or Hoffer's constants with
``hoffer=True``: sqrt(pi/2) for p = 1 and 0.5 (1 + sqrt(pi ln 4)) / sqrt(2 ln m)
for p = inf, which make s estimate the standard deviation of Gaussian data.
p = 2, centered, is batch normalization.

Backward, with g' = gamma dy, A = sum g' n, S = (1/m) sum |u|^p + eps, and
P the centering projection v -> v - mean(v) (applied where the numerator or
u subtracts the mean):

    ds/du = s |u|^(p-1) sign(u) / (m S)                      (p finite)
    ds/du = c sign(u) / k on the k entries where |u| is maximal, else 0   (p = inf)
    dx    = P_n(g' / s) - P_u(A ds/du / s^2)
    dgamma = sum dy n / s,   dbeta = sum dy

The kernels (``minibn/kernels/lpnorm/``) write ds/du = ds_du_scale w, with
w = |u|^(p-1) sign(u) and ds_du_scale = s / (m S) (p finite), or
w = sign(u) [|u| maximal] and ds_du_scale = c / k (p = inf); then
dx = P_n(gamma_over_s dy) + P_u(ds_term w), gamma_over_s = gamma / s,
ds_term = -A ds_du_scale / s^2.

At p = inf the gradient of s is a subgradient: ties for the maximum share it
evenly. For p = 1, sign(0) = 0.
"""

from __future__ import annotations

import math

from .. import kernels
from ..autograd import Function, is_grad_enabled
from ..tensor import Tensor, _wrap
from ._channels import broadcastable, check_eps, check_input, reduce_axes, running_pair, update_running, wrap_needed
from .batchnorm import affine_normalize


def hoffer_constant(p: float, m: int) -> float:
    """Hoffer et al.'s scale making the Lp norm of Gaussian data estimate its standard deviation."""
    if p == 1:
        return math.sqrt(math.pi / 2)
    if p == math.inf:
        return 0.5 * (1 + math.sqrt(math.pi * math.log(4))) / math.sqrt(2 * math.log(m))
    if p == 2:
        return 1.0
    raise ValueError(f"Hoffer's constants are defined for p = 1, 2 and inf, not p = {p}")


def _even(p) -> bool:
    return p != math.inf and float(p).is_integer() and int(p) % 2 == 0


def _abs_pow(u, p):
    """|u|^p (as u^p for even p, which keeps it analytic)."""
    return u ** int(p) if _even(p) else u.abs() ** p


def _signed_pow(u: Tensor, q):
    """|u|^q sign(u), the derivative of |u|^(q+1) / (q+1)."""
    if q == 1:
        return u
    if _even(q + 1):
        return u ** int(q)
    return u.abs() ** q * _wrap(u.xp.sign(u._data))


class LpNorm(Function):
    """Training-mode Lp normalization; see the module docstring for forward and backward."""

    rule = "dx = (gamma / s)(dy - mean(dy) - ...): see the module docstring (p-norm scale s)"

    save_inputs = True
    analytic = False

    def forward(self, x, gamma, beta):
        y, mu, s, S = kernels.lp_norm_forward(x, gamma, beta, self.p, self.c, self.eps, self.centered,
                                              self.mean_shift)
        self.mu, self.s, self.S = mu, s, S
        if self.running is not None:
            update_running(self.running, mu, s)
            self.running = None
        return y

    def backward(self, g):
        x, gamma, _ = self.inputs
        p, c, eps = self.p, self.c, self.eps
        if not is_grad_enabled():
            dx, dgamma, dbeta = kernels.lp_norm_backward(
                g._data, x._data, gamma._data if isinstance(gamma, Tensor) else None, self.mu, self.s, self.S,
                p, c, self.centered, self.mean_shift)
            return wrap_needed(self.needs, dx, dgamma, dbeta)
        axes = reduce_axes(x.ndim)
        m = x.numel() // x.shape[1]
        mu = x.mean(axes, keepdim=True)
        u = x - mu if self.centered else x
        n = x - mu if self.mean_shift else x
        if p == math.inf:
            size = u.abs()
            top = size.amax(axes, keepdim=True)
            s = (top + eps) * c
            hits = (size._data == top._data).astype(x.dtype)
            ds_du = _wrap(c * u.xp.sign(u._data) * hits / hits.sum(axis=axes, keepdims=True))
        else:
            S = _abs_pow(u, p).mean(axes, keepdim=True) + eps
            s = S ** (1 / p) * c
            ds_du = s / (S * m) * _signed_pow(u, p - 1)
        g_scaled = g if gamma is None else g * broadcastable(gamma, x.ndim)
        dx = dgamma = dbeta = None
        if self.needs[0]:
            through_n = g_scaled / s
            through_s = -((g_scaled * n).sum(axes, keepdim=True) / (s * s)) * ds_du
            if self.mean_shift:
                through_n = through_n - through_n.mean(axes, keepdim=True)
            if self.centered:
                through_s = through_s - through_s.mean(axes, keepdim=True)
            dx = through_n + through_s
        if self.needs[1]:
            dgamma = (g * n / s).sum(axes)
        if self.needs[2]:
            dbeta = g.sum(axes)
        return dx, dgamma, dbeta


def lp_norm(input, p=2.0, running_mean=None, running_scale=None, weight=None, bias=None,
            training=False, momentum=0.1, eps=1e-5, centered=True, mean_shift=True, hoffer=False):
    """Lp normalization over channel axis 1 of an (N, C) or (N, C, L) input.

    ``p`` is any number >= 1 or ``math.inf``. Training normalizes by the batch
    statistics and, when running statistics are given, updates them in place
    (``running_scale`` tracks s). Evaluation uses the running statistics.

    Kernels (``minibn/kernels/lpnorm/``, the formulas above in its files' names): ``lp_norm_forward``
    and ``lp_norm_backward`` in training, ``affine_forward`` and ``affine_backward``
    (``minibn/kernels/batchnorm/``) in evaluation.
    """
    p = float(p)
    if not p >= 1:
        raise ValueError(f"lp_norm: p must be >= 1 (or math.inf), got {p}")
    eps = check_eps("lp_norm", eps)
    m = check_input("lp_norm", input, ("running_mean", running_mean), ("running_scale", running_scale),
                    ("weight", weight), ("bias", bias), training=training)
    if not training:
        if running_scale is None or (mean_shift and running_mean is None):
            raise ValueError("lp_norm: evaluation (training=False) needs running_mean and running_scale")
        return affine_normalize(input, running_mean if mean_shift else None, running_scale, weight, bias)
    running = running_pair("lp_norm", running_mean, running_scale, "running_scale", momentum)
    c = hoffer_constant(p, m) if hoffer else 1.0
    return LpNorm.apply(input, weight, bias, p=p, c=c, eps=float(eps), centered=bool(centered),
                        mean_shift=bool(mean_shift), running=running)

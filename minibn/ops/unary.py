"""More elementwise math, PyTorch's names: sin, cos, log1p, expm1, erf (each one node, its
derivative beside it), and reciprocal, rsqrt, square, sign built from other ops."""

from __future__ import annotations

import functools
import math

import numpy as np

from ..autograd import Function
from ..tensor import _wrap
from .elementwise import _floating


class Sin(Function):
    """d sin x = cos x dx."""

    save_inputs = True

    def forward(self, x):
        return self.xp.sin(x)

    def backward(self, g):
        return g * cos(self.inputs[0])


class Cos(Function):
    """d cos x = -sin x dx."""

    save_inputs = True

    def forward(self, x):
        return self.xp.cos(x)

    def backward(self, g):
        return -(g * sin(self.inputs[0]))


class Log1p(Function):
    """log(1 + x), exact for small x;  d = dx / (1 + x)."""

    save_inputs = True

    def forward(self, x):
        return self.xp.log1p(x)

    def backward(self, g):
        return g / (self.inputs[0] + 1)


class Expm1(Function):
    """exp(x) - 1, exact for small x;  d = (y + 1) dx."""

    save_output = True

    def forward(self, x):
        return self.xp.expm1(x)

    def backward(self, g):
        return g * (self.output + 1)


class Erf(Function):
    """erf x = (2 / sqrt(pi)) int_0^x exp(-t^2) dt;  d erf x = (2 / sqrt(pi)) exp(-x^2) dx."""

    save_inputs = True
    analytic = False  # real arguments only (NumPy has no complex erf)

    def forward(self, x):
        if self.xp is np:
            return _erf_ufunc()(x)
        from cupyx.scipy import special  # CuPy's own elementwise erf

        return special.erf(x)

    def backward(self, g):
        x = self.inputs[0]
        return g * (-(x * x)).exp() * (2 / math.sqrt(math.pi))


@functools.cache
def _erf_ufunc():
    """math.erf as a NumPy ufunc, compiled by numba on first use (NumPy itself has no erf)."""
    import numba

    return numba.vectorize(["float32(float32)", "float64(float64)"], cache=True)(_scalar_erf)


def _scalar_erf(v):
    return math.erf(v)


def erf(x):
    """The error function (2 / sqrt(pi)) int_0^x exp(-t^2) dt."""
    return Erf.apply(_floating(x))


def sin(x):
    """sin x;  dx = cos x g."""
    return Sin.apply(_floating(x))


def cos(x):
    """cos x;  dx = -sin x g."""
    return Cos.apply(_floating(x))


def log1p(x):
    """log(1 + x), exact for small x;  dx = g / (1 + x)."""
    return Log1p.apply(_floating(x))


def expm1(x):
    """e^x - 1, exact for small x;  dx = e^x g."""
    return Expm1.apply(_floating(x))


def reciprocal(x):
    """1 / x."""
    return 1 / _floating(x)


def rsqrt(x):
    """1 / sqrt(x)."""
    return 1 / _floating(x).sqrt()


def square(x):
    """x * x."""
    return x * x


def sign(x):
    """-1, 0 or 1 by the sign of x, a constant to autodiff (its derivative is 0 almost everywhere)."""
    return _wrap(x.xp.sign(x._data))

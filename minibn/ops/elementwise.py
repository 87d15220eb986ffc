"""Elementwise ops: arithmetic with broadcasting, unary math, comparisons.

Each backward is a product of the upstream gradient with a derivative made
of differentiable ops, then summed over broadcast axes (``unbroadcast``).
"""

from __future__ import annotations

import cmath
import math

from .. import kernels
from ..autograd import Function, is_grad_enabled
from ..tensor import Tensor, _wrap
from ._util import as_operand, coerce, shape_of, unbroadcast
from .shape import where


class Add(Function):
    """y = a + b;  da = g, db = g (each summed over the dimensions it was broadcast along)."""

    def forward(self, a, b):
        self.shapes = (shape_of(a), shape_of(b))
        return a + b

    def backward(self, g):
        sa, sb = self.shapes
        return (unbroadcast(g, sa) if self.needs[0] else None,
                unbroadcast(g, sb) if self.needs[1] else None)


class Sub(Function):
    """y = a - b;  da = g, db = -g (summed over broadcast dimensions)."""

    def forward(self, a, b):
        self.shapes = (shape_of(a), shape_of(b))
        return a - b

    def backward(self, g):
        sa, sb = self.shapes
        return (unbroadcast(g, sa) if self.needs[0] else None,
                -unbroadcast(g, sb) if self.needs[1] else None)


class Mul(Function):
    """y = a b;  da = g b, db = g a (summed over broadcast dimensions)."""

    save_inputs = True

    def forward(self, a, b):
        return a * b

    def backward(self, g):
        a, b = self.inputs
        return (unbroadcast(g * b, shape_of(a)) if self.needs[0] else None,
                unbroadcast(g * a, shape_of(b)) if self.needs[1] else None)


class Div(Function):
    """y = a / b;  da = g / b,  db = -g a / b^2 = -(g / b) y."""

    save_inputs = True
    save_output = True

    def forward(self, a, b):
        return a / b

    def backward(self, g):
        a, b = self.inputs
        ga = g / b
        gb = -(ga * self.output) if self.needs[1] else None
        return (unbroadcast(ga, shape_of(a)) if self.needs[0] else None,
                unbroadcast(gb, shape_of(b)) if self.needs[1] else None)


class Pow(Function):
    """y = a ** b;  da = g b a^(b-1),  db = g y log(a)."""

    save_inputs = True
    save_output = True

    def forward(self, a, b):
        return a ** b

    def backward(self, g):
        a, b = self.inputs
        ga = gb = None
        if self.needs[0]:
            if isinstance(b, Tensor):
                ga = g * b * a ** (b - 1)
            elif b == 0:
                ga = g * 0
            elif b == 1:
                ga = g
            elif b == 2:
                ga = g * (a * 2)
            else:
                ga = g * (a ** (b - 1) * b)
            ga = unbroadcast(ga, shape_of(a))
        if self.needs[1]:
            gb = unbroadcast(g * self.output * _exponent_log(a, b), shape_of(b))
        return ga, gb


class FloorDivide(Function):
    """floor(a / b), PyTorch's ``//``: piecewise constant, so (as in PyTorch) it has no derivative."""

    def forward(self, a, b):
        return self.xp.floor_divide(a, b)

    def backward(self, g):
        raise RuntimeError("floor_divide (//) has no derivative (it is piecewise constant); detach() its "
                           "inputs, or use a differentiable op")


class Remainder(Function):
    """a - b floor(a / b), PyTorch's ``%`` (the sign of b, as Python's);  da = g,  db = -g floor(a / b)."""

    save_inputs = True

    def forward(self, a, b):
        return self.xp.remainder(a, b)

    def backward(self, g):
        a, b = self.inputs
        ga = unbroadcast(g, shape_of(a)) if self.needs[0] else None
        gb = None
        if self.needs[1]:
            quotient = (a._data if isinstance(a, Tensor) else a) / b._data
            gb = unbroadcast(g * _wrap(-b.xp.floor(quotient).astype(b.dtype)), shape_of(b))
        return ga, gb


def floor_divide(a, b):
    return FloorDivide.apply(*coerce(a, b, "floor_divide"))


def remainder(a, b):
    return Remainder.apply(*coerce(a, b, "remainder"))


def _exponent_log(a, b):
    """log a, the factor of d(a^b)/db = a^b log a, except where a = 0 and b >= 0: there a^b log a
    is 0 (or 1) times -inf, and the derivative is 0, as in PyTorch; log(1) = 0 stands in, which
    keeps every higher derivative finite too."""
    if not isinstance(a, Tensor):
        if a == 0:
            return _wrap(b.xp.where(b._data >= 0, 0.0, -math.inf).astype(b.dtype)) if b.dtype.kind != "c" else -math.inf
        return cmath.log(a) if isinstance(a, complex) or a < 0 else math.log(a)
    if a.dtype.kind == "c" or (isinstance(b, Tensor) and b.dtype.kind == "c"):
        return log(a)
    at_zero = (a._data == 0) & ((b._data if isinstance(b, Tensor) else b) >= 0)
    if not at_zero.any():
        return log(a)
    from .shape import where

    return log(where(_wrap(at_zero), 1.0, a))  # of the broadcast shape, as the product it multiplies


class Maximum(Function):
    """Elementwise max; at ties the gradient is split evenly, as in PyTorch."""

    rule = "da = g where a > b (g/2 at ties), db = g where b > a (g/2 at ties)"

    save_inputs = True
    analytic = False
    largest = True

    def forward(self, a, b):
        return self.xp.maximum(a, b) if self.largest else self.xp.minimum(a, b)

    def backward(self, g):
        a, b = self.inputs
        xp = self.xp
        av = a._data if isinstance(a, Tensor) else a
        bv = b._data if isinstance(b, Tensor) else b
        wins = xp.greater(av, bv) if self.largest else xp.less(av, bv)
        share = wins.astype(g.dtype) + 0.5 * xp.equal(av, bv).astype(g.dtype)
        share = _wrap(xp.broadcast_to(share, g.shape))
        return (unbroadcast(g * share, shape_of(a)) if self.needs[0] else None,
                unbroadcast(g * (1 - share), shape_of(b)) if self.needs[1] else None)


class Minimum(Maximum):
    """Elementwise min; at ties the gradient is split evenly, as in PyTorch."""

    rule = "da = g where a < b (g/2 at ties), db = g where b < a (g/2 at ties)"

    largest = False


class Clamp(Function):
    """Clip to [lo, hi]; the gradient passes where lo <= x <= hi (PyTorch's convention)."""

    save_inputs = True
    analytic = False

    def forward(self, x):
        return self.xp.clip(x, self.lo, self.hi)

    def backward(self, g):
        (x,) = self.inputs
        keep = self.xp.ones(x.shape, dtype=bool)
        if self.lo is not None:
            keep &= x._data >= self.lo
        if self.hi is not None:
            keep &= x._data <= self.hi
        return g * _wrap(keep)


class Neg(Function):
    """y = -x;  dx = -g."""

    def forward(self, x):
        return -x

    def backward(self, g):
        return -g


class Exp(Function):
    """y = e^x;  dx = g y."""

    save_output = True

    def forward(self, x):
        return self.xp.exp(x)

    def backward(self, g):
        return g * self.output


class Log(Function):
    """y = log x;  dx = g / x."""

    save_inputs = True

    def forward(self, x):
        return self.xp.log(x)

    def backward(self, g):
        return g / self.inputs[0]


class Sqrt(Function):
    """y = sqrt x;  dx = g / (2 y)."""

    save_output = True

    def forward(self, x):
        return self.xp.sqrt(x)

    def backward(self, g):
        return g / (self.output * 2)


class Abs(Function):
    """y = |x|;  dx = g sign(x) (0 at x = 0)."""

    save_inputs = True
    analytic = False

    def forward(self, x):
        return self.xp.abs(x)

    def backward(self, g):
        return g * _wrap(self.xp.sign(self.inputs[0]._data))


class Tanh(Function):
    """y = tanh x;  dx = g (1 - y^2)."""

    save_output = True

    def forward(self, x):
        return self.xp.tanh(x)

    def backward(self, g):
        y = self.output
        return g * (1 - y * y)


class Sigmoid(Function):
    """sigmoid(x) = 1 / (1 + e^-x), evaluated as e^x / (1 + e^x) for x < 0 so that
    exp never overflows and small outputs keep full relative precision."""

    save_output = True

    def forward(self, x):
        xp = self.xp
        negative = x.real < 0
        e = xp.exp(xp.where(negative, x, -x))
        return xp.where(negative, e, 1) / (1 + e)

    def backward(self, g):
        y = self.output
        return g * (y * (1 - y))


class Relu(Function):
    """max(x, 0); dx = g where x > 0 (the subgradient 0 at 0, as in PyTorch).

    Kernels: ``relu_forward`` and ``relu_backward`` (``minibn/kernels/relu/``).
    """

    save_output = True
    analytic = False

    def forward(self, x):
        return kernels.relu_forward(x)

    def backward(self, g):
        y = self.output
        if not is_grad_enabled():
            return _wrap(kernels.relu_backward(g._data, y._data))
        return g * _wrap(y._data > 0)


# -- the functions --------------------------------------------------------------


def add(a, b):
    """a + b with broadcasting."""
    return Add.apply(*coerce(a, b, "add"))


def sub(a, b):
    """a - b with broadcasting."""
    return Sub.apply(*coerce(a, b, "sub"))


def mul(a, b):
    """a * b with broadcasting."""
    return Mul.apply(*coerce(a, b, "mul"))


def div(a, b):
    """True division a / b; integer operands give the default float dtype, as in PyTorch."""
    return Div.apply(*coerce(a, b, "div", floating=True))


def pow(a, b):  # noqa: A001  (the op's PyTorch name)
    """a ** b, either operand a tensor or a number."""
    return Pow.apply(*coerce(a, b, "pow"))


def maximum(a, b):
    """Elementwise maximum (ties share the gradient evenly)."""
    return Maximum.apply(*coerce(a, b, "maximum"))


def minimum(a, b):
    """Elementwise minimum (ties share the gradient evenly)."""
    return Minimum.apply(*coerce(a, b, "minimum"))


def clamp(x, min=None, max=None):  # noqa: A002
    """Clip x to [min, max]: min(max(x, min), max), either bound None, a number or a tensor (that
    broadcasts). The gradient goes to x where min <= x <= max, else to the bound that was taken (to
    max wherever min > max), as in PyTorch."""
    if min is None and max is None:
        raise ValueError("clamp: at least one of min and max must be given")
    if not isinstance(min, Tensor) and not isinstance(max, Tensor):
        return Clamp.apply(x, lo=min, hi=max)
    out = x if min is None else where(x < min, min, x)
    return out if max is None else where(out > max, max, out)


def neg(x):
    """-x;  dx = -g."""
    return Neg.apply(x)


def exp(x):
    """e^x;  dx = e^x g."""
    return Exp.apply(_floating(x))


def log(x):
    """The natural logarithm;  dx = g / x."""
    return Log.apply(_floating(x))


def sqrt(x):
    """x^(1/2);  dx = g / (2 sqrt x)."""
    return Sqrt.apply(_floating(x))


def abs(x):  # noqa: A001
    """|x|;  dx = sign(x) g (0 at x = 0, as in PyTorch)."""
    return Abs.apply(x)


def tanh(x):
    """tanh x;  dx = (1 - tanh^2 x) g."""
    return Tanh.apply(_floating(x))


def sigmoid(x):
    """1 / (1 + e^-x);  dx = s (1 - s) g."""
    return Sigmoid.apply(_floating(x))


def relu(x):
    """max(x, 0);  dx = g where x > 0, else 0 (also at 0, as in PyTorch)."""
    return Relu.apply(x)


def _floating(x):
    """Integer tensors go to the default float dtype for transcendental functions (PyTorch)."""
    if x._data.dtype.kind in "fc":
        return x
    from ..devices import get_default_dtype
    from .shape import cast

    return cast(x, get_default_dtype())


# -- comparisons and logic: no gradient -----------------------------------------


def _compare(name, a, b, ordered=True):
    try:
        a, b = coerce(a, b, name)
    except TypeError:
        return NotImplemented
    arrays = []
    device = None
    for t in (a, b):
        if isinstance(t, Tensor):
            if ordered and t._data.dtype.kind == "c":
                raise TypeError(f"{name}: complex tensors have no order (not complex-analytic)")
            if device is None:
                device = t.device
            elif t.device != device:
                raise TypeError(f"{name}: operands on {device} and {t.device}")
            arrays.append(t._data)
        else:
            arrays.append(t)
    xp = (a if isinstance(a, Tensor) else b).xp
    try:
        out = getattr(xp, name)(*arrays)
    except ValueError as exc:
        raise ValueError(f"{name}: shapes {shape_of(arrays[0])} and {shape_of(arrays[1])}: {exc}") from None
    return _wrap(xp.asarray(out))


def eq(a, b):
    """a == b elementwise (broadcasting), a bool tensor without gradient."""
    return _compare("equal", a, b, ordered=False)


def ne(a, b):
    """a != b elementwise, a bool tensor."""
    return _compare("not_equal", a, b, ordered=False)


def lt(a, b):
    """a < b elementwise, a bool tensor."""
    return _compare("less", a, b)


def le(a, b):
    """a <= b elementwise, a bool tensor."""
    return _compare("less_equal", a, b)


def gt(a, b):
    """a > b elementwise, a bool tensor."""
    return _compare("greater", a, b)


def ge(a, b):
    """a >= b elementwise, a bool tensor."""
    return _compare("greater_equal", a, b)


def logical_and(a, b):
    """a and b elementwise (non-zero is true), a bool tensor."""
    return _compare("logical_and", a, b, ordered=False)


def logical_or(a, b):
    """a or b elementwise (non-zero is true), a bool tensor."""
    return _compare("logical_or", a, b, ordered=False)


def logical_not(x):
    """not x elementwise (zero is false), a bool tensor."""
    x = as_operand(x, "logical_not")
    return _wrap(x.xp.asarray(x.xp.logical_not(x._data)))  # a 0-d input gives a NumPy scalar

"""PyTorch's older spellings that training scripts still use: ``Size``, the typed tensor classes
(``FloatTensor``, ``LongTensor``, ...) with ``t.type(...)``, and ``is_tensor``.

``FloatTensor([1, 2])`` makes a float32 tensor; ``isinstance(t, FloatTensor)`` asks for the
dtype; ``t.type()`` names the class as PyTorch does (``'torch.FloatTensor'``), so that a
script's string comparisons keep working.
"""

from __future__ import annotations

import math

import numpy as np

from . import devices


class Size(tuple):
    """A tensor's shape: a tuple of ints (``t.shape == (2, 3)`` and ``== Size([2, 3])`` both hold)."""

    def numel(self) -> int:
        """The number of elements of a tensor of this shape."""
        return math.prod(self)

    def __repr__(self):
        return f"minibn.Size({list(self)})"

    def __getitem__(self, index):
        out = tuple.__getitem__(self, index)
        return Size(out) if isinstance(index, slice) else out

    def __add__(self, other):
        return Size(tuple.__add__(self, tuple(other)))

    def __radd__(self, other):
        return Size(tuple(other) + tuple(self))

    def __mul__(self, n):
        return Size(tuple.__mul__(self, n))

    __rmul__ = __mul__


class _TypedTensor(type):
    """The metaclass of the typed tensor classes: calling one makes a tensor of its dtype;
    ``isinstance`` checks the dtype (and the device: CPU, as these are the CPU classes)."""

    def __call__(cls, *args, device=None, requires_grad: bool = False):
        from .tensor import _legacy_array, _wrap

        array = _legacy_array(args, device, cls.dtype)  # (a tensor given keeps its dtype there: not here)
        return _wrap(array if array.dtype == cls.dtype else array.astype(cls.dtype)).requires_grad_(requires_grad)

    def __instancecheck__(cls, obj):
        from .tensor import Tensor

        return isinstance(obj, Tensor) and obj.dtype == cls.dtype and obj.device.type == "cpu"


def _typed(name: str, dtype) -> type:
    return _TypedTensor(name, (), {"dtype": np.dtype(dtype), "__doc__": f"{name}(data or sizes): a {dtype} tensor "
                                   f"(PyTorch's legacy constructor); isinstance(t, {name}) checks the dtype."})


FloatTensor = _typed("FloatTensor", devices.float32)
DoubleTensor = _typed("DoubleTensor", devices.float64)
LongTensor = _typed("LongTensor", devices.int64)
IntTensor = _typed("IntTensor", devices.int32)
BoolTensor = _typed("BoolTensor", devices.bool_)
TYPED = {cls.__name__: cls for cls in (FloatTensor, DoubleTensor, LongTensor, IntTensor, BoolTensor)}


def type_name(dtype) -> str:
    """PyTorch's name of a tensor type, ``'torch.FloatTensor'`` for float32."""
    for name, cls in TYPED.items():
        if cls.dtype == dtype:
            return "torch." + name
    return {np.dtype(devices.complex64): "torch.ComplexFloatTensor",
            np.dtype(devices.complex128): "torch.ComplexDoubleTensor"}[np.dtype(dtype)]


def dtype_of_type(t) -> np.dtype:
    """The dtype ``t.type(t)`` asks for: a typed class, its name ('torch.FloatTensor',
    'minibn.FloatTensor' or 'FloatTensor'), or a dtype."""
    if isinstance(t, _TypedTensor):
        return t.dtype
    if isinstance(t, str) and t.rsplit(".", 1)[-1] in TYPED:
        return TYPED[t.rsplit(".", 1)[-1]].dtype
    return devices.as_dtype(t)


def is_tensor(obj) -> bool:
    """Whether ``obj`` is a minibn Tensor (``torch.is_tensor``)."""
    from .tensor import Tensor

    return isinstance(obj, Tensor)

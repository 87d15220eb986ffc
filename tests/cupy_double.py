"""A strict stand-in for the ``cupy`` module, built on NumPy, used only by the tests.

It behaves like CuPy where CuPy is strict, so that code paths written for
the GPU run in CI on machines without one:

* its ``ndarray`` is a type of its own, living on "device 0";
* ``numpy.asarray(gpu_array)`` and any other implicit conversion to NumPy
  raise TypeError, as CuPy's ``__array__`` does; ``.get()`` and
  ``asnumpy`` are the explicit ways to the host;
* mixing a NumPy array with a device array in an operation raises
  TypeError (CuPy refuses it too); Python and NumPy scalars are fine;
* ``asarray`` (the explicit host-to-device copy), ``get_array_module``, ``lib.stride_tricks``,
  ``cuda.Device``, ``cuda.runtime``, ``fuse``, ``cupyx.scatter_add`` and ``cupyx.scipy.special.erf``
  exist; every other module attribute is NumPy's function applied to the
  underlying arrays, results wrapped back.

``install()`` puts it in ``sys.modules`` as ``cupy`` and ``cupyx``.
"""

from __future__ import annotations

import math
import operator
import sys
import types

import numpy as np

__version__ = "0.0+strict-numpy-double"


class _Device:
    id = 0

    def __repr__(self):
        return "<CUDA Device 0 (strict stand-in)>"


_DEVICE = _Device()


def _unwrap(x):
    """The NumPy value behind ``x``; a NumPy array here is an implicit host-to-device transfer."""
    if isinstance(x, ndarray):
        return x._a
    if isinstance(x, np.ndarray):
        raise TypeError(
            "Unsupported type <class 'numpy.ndarray'>: a NumPy (host) array was mixed with a device "
            "array; copy it explicitly with cupy.asarray"
        )
    if isinstance(x, (list, tuple)):
        return type(x)(_unwrap(v) for v in x)
    if isinstance(x, dict):
        return {k: _unwrap(v) for k, v in x.items()}
    return x


def _wrap(x):
    if isinstance(x, np.ndarray):
        return ndarray(x)
    if isinstance(x, np.generic) and not isinstance(x, (np.str_, np.bytes_)):
        return ndarray(np.asarray(x))  # CuPy reductions give 0-d arrays, not scalars
    if isinstance(x, tuple):
        return tuple(_wrap(v) for v in x)
    if isinstance(x, list):
        return [_wrap(v) for v in x]
    return x


def _call(fn, *args, **kwargs):
    return _wrap(fn(*_unwrap(args), **_unwrap(kwargs)))


class ndarray:
    """A device array: NumPy data behind a type that refuses to be used as a NumPy array."""

    __slots__ = ("_a",)
    __array_ufunc__ = None  # NumPy defers to our operators, which refuse NumPy arrays

    def __init__(self, a):
        if not isinstance(a, np.ndarray):
            raise TypeError("ndarray wraps a numpy.ndarray")
        self._a = a

    def __array__(self, *args, **kwargs):
        raise TypeError(
            "Implicit conversion to a NumPy array is not allowed. Please use `.get()` to construct a "
            "NumPy array explicitly."
        )

    def __array_namespace__(self, api_version=None):
        return sys.modules[__name__]

    def get(self):
        return self._a.copy()

    def __repr__(self):
        return f"array({self._a!r}, device=0)"

    # attributes
    shape = property(lambda self: self._a.shape)
    dtype = property(lambda self: self._a.dtype)
    ndim = property(lambda self: self._a.ndim)
    size = property(lambda self: self._a.size)
    nbytes = property(lambda self: self._a.nbytes)
    itemsize = property(lambda self: self._a.itemsize)
    T = property(lambda self: ndarray(self._a.T))
    real = property(lambda self: _wrap(self._a.real))
    imag = property(lambda self: _wrap(self._a.imag))
    device = property(lambda self: _DEVICE)
    flags = property(lambda self: self._a.flags)

    @property
    def base(self):
        return self if self._a.base is not None else None

    def __len__(self):
        return len(self._a)

    def __iter__(self):
        return (_wrap(v) for v in self._a)

    def __getattr__(self, name):  # methods: sum, reshape, astype, copy, fill, item, tolist, ...
        if name.startswith("__"):  # no __array_interface__ or buffer: NumPy must not see the data
            raise AttributeError(name)
        attr = getattr(self._a, name)
        if callable(attr):
            return lambda *args, **kwargs: _call(attr, *args, **kwargs)
        return _wrap(attr)

    def __getitem__(self, index):
        return _wrap(self._a[_unwrap(index)])

    def __setitem__(self, index, value):
        self._a[_unwrap(index)] = _unwrap(value)

    def __bool__(self):
        return bool(self._a)

    def __float__(self):
        return float(self._a)

    def __int__(self):
        return int(self._a)

    def __index__(self):
        return operator.index(self._a)

    def __complex__(self):
        return complex(self._a)


def _binary(op):
    def forward(self, other):
        return _wrap(op(self._a, _unwrap(other)))

    def reflected(self, other):
        return _wrap(op(_unwrap(other), self._a))

    def inplace(self, other):
        value = op(self._a, _unwrap(other))
        self._a[...] = value
        return self

    return forward, reflected, inplace


for _name in ("add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "matmul", "and", "or", "xor",
              "lshift", "rshift"):
    _op = getattr(operator, _name + "_" if _name in ("and", "or") else _name)
    _f, _r, _i = _binary(_op)
    setattr(ndarray, f"__{_name}__", _f)
    setattr(ndarray, f"__r{_name}__", _r)
    setattr(ndarray, f"__i{_name}__", _i)
for _name in ("lt", "le", "gt", "ge", "eq", "ne"):
    setattr(ndarray, f"__{_name}__", _binary(getattr(operator, _name))[0])
for _name in ("neg", "pos", "abs", "invert"):
    setattr(ndarray, f"__{_name}__", (lambda op: lambda self: _wrap(op(self._a)))(getattr(operator, _name)))
ndarray.__hash__ = None


# -- module functions -------------------------------------------------------------------------


class _Ufunc:
    def __init__(self, ufunc):
        self._u = ufunc

    def __call__(self, *args, **kwargs):
        return _call(self._u, *args, **kwargs)

    def at(self, a, indices, b=None):
        args = (a._a, _unwrap(indices)) + (() if b is None else (_unwrap(b),))
        self._u.at(*args)

    def reduce(self, *args, **kwargs):
        return _call(self._u.reduce, *args, **kwargs)


def asarray(a, dtype=None, order=None):
    """The explicit host-to-device copy (or a no-op for device arrays)."""
    if isinstance(a, ndarray):
        return a if dtype is None or a.dtype == dtype else ndarray(a._a.astype(dtype))
    return ndarray(np.array(a, dtype=dtype, order=order or "K"))


array = asarray


def asnumpy(a):
    return a._a.copy() if isinstance(a, ndarray) else np.asarray(a)


def get_array_module(*args):
    return sys.modules[__name__] if any(isinstance(a, ndarray) for a in args) else np


def fuse(*args, **kwargs):
    """Kernel fusion is a no-op here: the function runs on the stand-in's arrays as written."""
    return lambda fn: fn


class _CudaDevice:
    def __init__(self, device=0):
        if int(device) != 0:
            raise RuntimeError(f"cudaErrorInvalidDevice: device {device} does not exist (1 device)")
        self.id = 0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def synchronize(self):
        """Nothing is queued: the stand-in computes on the host, at once."""


cuda = types.SimpleNamespace(
    Device=_CudaDevice,
    runtime=types.SimpleNamespace(getDeviceCount=lambda: 1,
                                  getDeviceProperties=lambda i: {"name": b"strict CuPy stand-in (NumPy)"}),
)


class _Wrapped(types.ModuleType):
    """A NumPy submodule (linalg, random) whose functions take and give device arrays."""

    def __init__(self, module):
        super().__init__(module.__name__)
        self._m = module

    def __getattr__(self, name):
        attr = getattr(self._m, name)
        return (lambda *a, **k: _call(attr, *a, **k)) if callable(attr) else attr


linalg = _Wrapped(np.linalg)
lib = types.SimpleNamespace(stride_tricks=_Wrapped(np.lib.stride_tricks))


def __getattr__(name):
    attr = getattr(np, name)
    if isinstance(attr, np.ufunc):
        return _Ufunc(attr)
    if isinstance(attr, type) or not callable(attr):
        return attr  # dtypes, constants
    return lambda *args, **kwargs: _call(attr, *args, **kwargs)


def scatter_add(a, slices, value):
    np.add.at(a._a, _unwrap(slices), _unwrap(value))


def _erf(a):
    """cupyx.scipy.special.erf: elementwise on the device array (math.erf here), dtype kept."""
    data = _unwrap(a)
    return ndarray(np.vectorize(math.erf, otypes=[data.dtype])(data))


def install(monkeypatch):
    """Make ``import cupy`` (and ``cupyx``, ``cupyx.scipy.special``) give this stand-in for the rest of a test."""
    module = sys.modules[__name__]
    special = types.SimpleNamespace(erf=_erf)
    scipy = types.SimpleNamespace(special=special)
    monkeypatch.setitem(sys.modules, "cupy", module)
    monkeypatch.setitem(sys.modules, "cupyx", types.SimpleNamespace(scatter_add=scatter_add, scipy=scipy))
    monkeypatch.setitem(sys.modules, "cupyx.scipy", scipy)
    monkeypatch.setitem(sys.modules, "cupyx.scipy.special", special)
    return module

"""Array modules, devices and the dtype policy.

Every op finds the array module (NumPy or CuPy) of its operands here, so a
new array library plugs in by registering its array type, never by editing ops.

Dtype promotion follows PyTorch (``torch.result_type``): operands are sorted
into three tiers, tensors with dimensions > zero-dimensional tensors > Python
scalars, and a lower tier only changes the result when it belongs to a higher
category (bool < integer < floating < complex). So a Python scalar never
upcasts a float32 tensor, and neither does a 0-d float64 tensor.
"""

from __future__ import annotations

import threading

import numpy as np

float32 = np.dtype("float32")
float64 = np.dtype("float64")
complex64 = np.dtype("complex64")
complex128 = np.dtype("complex128")
int32 = np.dtype("int32")
int64 = np.dtype("int64")
bool_ = np.dtype("bool")

SUPPORTED_DTYPES = (float32, float64, complex64, complex128, int32, int64, bool_)
_default_dtype = float32


def get_default_dtype() -> np.dtype:
    """The dtype of tensors made from Python floats (float32, as in PyTorch)."""
    return _default_dtype


def set_default_dtype(dtype) -> None:
    """Set the dtype of tensors made from Python floats: float32 or float64."""
    global _default_dtype
    dtype = as_dtype(dtype)
    if dtype not in (float32, float64):
        raise TypeError(f"default dtype must be float32 or float64, got {dtype}")
    _default_dtype = dtype


def as_dtype(dtype) -> np.dtype:
    """Normalize ``dtype`` (a NumPy dtype, its name or a type) and check it is supported."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"not a dtype: {dtype!r}") from None
    if dt not in SUPPORTED_DTYPES:
        names = ", ".join(d.name for d in SUPPORTED_DTYPES)
        raise TypeError(f"dtype {dt} is not supported; use one of {names}")
    return dt


def _category(dt: np.dtype) -> int:
    return {"b": 0, "i": 1, "u": 1, "f": 2, "c": 3}[dt.kind]


def _complex_of(dt: np.dtype) -> np.dtype:
    return complex64 if dt == float32 else complex128


def _scalar_dtype(value) -> np.dtype:
    """The dtype PyTorch gives a Python scalar operand ("wrapped number")."""
    if isinstance(value, bool):
        return bool_
    if isinstance(value, int):
        return int64
    if isinstance(value, float):
        return _default_dtype
    return _complex_of(_default_dtype)


def promote_types(a: np.dtype, b: np.dtype) -> np.dtype:
    """PyTorch's ``promote_types``: within a category the wider type, across categories the
    higher one (so int64 with float32 is float32, where NumPy would say float64)."""
    if a == b:
        return a
    ca, cb = _category(a), _category(b)
    if ca == cb:
        return np.promote_types(a, b)
    if ca < cb:
        a, b = b, a
    if a.kind == "c" and b.kind == "f":
        return complex128 if a == complex128 or b == float64 else complex64
    return a


def _promote(a, b):
    if a is None:
        return b
    if b is None:
        return a
    return promote_types(a, b)


def _combine(higher, lower):
    """PyTorch's ``combine_categories``: the lower tier wins only a higher category."""
    if higher is None:
        return lower
    if lower is None:
        return higher
    if higher.kind == "c":
        return higher
    if lower.kind == "c":
        return _complex_of(higher) if higher.kind == "f" else lower
    if higher.kind == "f":
        return higher
    if higher.kind == "b" or lower.kind == "f":
        return promote_types(higher, lower)
    return higher


def result_type(*operands) -> np.dtype:
    """PyTorch's result dtype for an op on ``operands`` (tensors or Python scalars)."""
    dims = zeros = scalars = None
    for op in operands:
        dt = getattr(op, "dtype", None)
        if dt is None:
            scalars = _promote(scalars, _scalar_dtype(op))
        elif op.ndim == 0:
            zeros = _promote(zeros, dt)
        else:
            dims = _promote(dims, dt)
    return _combine(dims, _combine(zeros, scalars))


def _is_array(x) -> bool:
    """An array of NumPy or a registered array library (not a NumPy scalar); NumPy < 2 arrays lack __array_namespace__."""
    return isinstance(x, np.ndarray) or (hasattr(x, "__array_namespace__") and not isinstance(x, np.generic))


def as_array(data, copy: bool = False, dtype=None):
    """``data`` as an array of its library, with PyTorch's dtypes for Python numbers.

    Arrays keep their dtype (and stay on their device), but for integers narrower than int64 other than
    int32 (uint8, int16, ...), which become int64 (a copy); nested lists of Python
    floats give the default dtype (float32), ints int64, complex numbers the
    default complex dtype. With ``dtype``, Python numbers are converted to it
    from their exact values (one rounding: 0.1 as float64 is the double nearest
    0.1, not a float32 widened). Unsupported dtypes are an error.
    """
    if _is_array(data):
        array = data.copy() if copy else data
        if array.dtype.kind in "iu" and array.dtype not in SUPPORTED_DTYPES and np.can_cast(array.dtype, int64):
            array = array.astype(int64)  # uint8 images, int16 labels: exactly, in minibn's integer dtype
    elif isinstance(data, np.generic):
        array = np.array(data)
    else:
        array = np.array(data)
        kind = array.dtype.kind
        if dtype is not None and kind in "biufc":
            return array.astype(as_dtype(dtype))
        if kind == "f":
            array = array.astype(_default_dtype)
        elif kind == "c":
            array = array.astype(_complex_of(_default_dtype))
        elif kind in "iu":
            array = array.astype(int64)
        elif kind != "b":
            raise TypeError(f"cannot make a tensor from {type(data).__name__} data (NumPy dtype {array.dtype})")
    as_dtype(array.dtype)
    return array


# --------------------------------------------------------------------------
# Devices and array modules


class Device:
    """A device: ``Device("cpu")``, ``Device("cuda")``, ``Device("cuda:1")``.

    Compares equal to its string form, so ``t.device == "cpu"`` works.
    """

    __slots__ = ("type", "index", "_outer")

    def __init__(self, spec="cpu"):
        if isinstance(spec, Device):
            self.type, self.index = spec.type, spec.index
            return
        if not isinstance(spec, str):
            raise TypeError(f"device must be a string such as 'cpu' or 'cuda:0', got {spec!r}")
        kind, _, index = spec.partition(":")
        if kind not in ("cpu", "cuda") or (index and not index.isdigit()) or (kind == "cpu" and index):
            raise ValueError(f"unknown device {spec!r}; expected 'cpu', 'cuda' or 'cuda:N'")
        self.type = kind
        self.index = int(index) if index else (0 if kind == "cuda" else None)

    def __eq__(self, other):
        if isinstance(other, str):
            try:
                other = Device(other)
            except (TypeError, ValueError):
                return False
        if not isinstance(other, Device):
            return NotImplemented
        return self.type == other.type and self.index == other.index

    def __hash__(self):
        return hash((self.type, self.index))

    def __str__(self):
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __repr__(self):
        return f"device('{self}')"

    def __enter__(self):
        """``with mb.device("cuda"):`` makes this the default device of new tensors inside the block."""
        module_for(self)  # a missing array library fails here, not at the first tensor
        _default.outer.append(_default.device)
        _default.device = self
        return self

    def __exit__(self, *exc):
        _default.device = _default.outer.pop()


CPU = Device("cpu")


class _DefaultDevice(threading.local):
    """The default device, per thread as in PyTorch (cpu in a new thread), and the devices that
    enclosing ``with device(...)`` blocks will restore."""

    def __init__(self):
        self.device, self.outer = CPU, []


_default = _DefaultDevice()


def get_default_device() -> Device:
    """The device new tensors go to when no ``device=`` is given (cpu unless changed), in this thread."""
    return _default.device


def set_default_device(device) -> None:
    """Set the device of new tensors, in this thread: ``mb.set_default_device("cuda")``."""
    device = Device(device)
    module_for(device)
    _default.device = device

# array type -> (array module, function giving the array's Device)
_ARRAY_TYPES: dict = {np.ndarray: (np, lambda a: CPU)}

# While NumPy is the only array library loaded, every op's array module is NumPy and
# no op can mix devices: ops skip the lookup and the check.
only_module = np


def register_array_type(array_type, module, device_of) -> None:
    """Teach minibn an array library: arrays of ``array_type`` use ``module`` and live on ``device_of(a)``."""
    global only_module
    _ARRAY_TYPES[array_type] = (module, device_of)
    only_module = None


def unregister_array_type(array_type) -> None:
    global only_module
    _ARRAY_TYPES.pop(array_type, None)
    if len(_ARRAY_TYPES) == 1:
        only_module = np


def common_module(op: str, inputs, arrays):
    """The array module of an op's operands; a TypeError naming each operand if they differ."""
    kind = None
    for a in arrays:
        if _is_array(a):
            if kind is None:
                kind = a.__class__
            elif a.__class__ is not kind:
                parts = [
                    f"operand {i}: device={device_of(a)}, dtype={a.dtype}, shape={tuple(a.shape)}"
                    for i, a in enumerate(arrays) if _is_array(a)
                ]
                raise TypeError(
                    f"{op}: operands are on different devices ({'; '.join(parts)}); move them with "
                    ".to(device) first: minibn never copies between devices implicitly"
                )
    return _ARRAY_TYPES[kind][0]


def array_module(array):
    """The array module (numpy, cupy, ...) that owns ``array``."""
    try:
        return _ARRAY_TYPES[type(array)][0]
    except KeyError:
        raise TypeError(f"unsupported array type {type(array).__name__}") from None


def device_of(array) -> Device:
    try:
        return _ARRAY_TYPES[type(array)][1](array)
    except KeyError:
        raise TypeError(f"unsupported array type {type(array).__name__}") from None


def module_for(device) -> object:
    """The array module that holds arrays on ``device``."""
    device = Device(device)
    if device.type == "cpu":
        return np
    return _cupy(device)


def _cupy(device: Device):
    try:
        import cupy
    except ImportError:
        raise RuntimeError(
            f"device {device} needs CuPy, which is not installed; install minibn with the "
            "'cuda12' or 'cuda13' extra (pip install 'minibn[cuda12]') to match your CUDA driver"
        ) from None
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # CUDA raises its own error types when no driver is present
        raise RuntimeError(f"device {device}: CuPy is installed but found no usable GPU ({exc})") from None
    if device.index >= count:
        raise RuntimeError(f"device {device} does not exist: {count} GPU(s) visible")
    if cupy.ndarray not in _ARRAY_TYPES:
        register_array_type(cupy.ndarray, cupy, lambda a: Device(f"cuda:{a.device.id}"))
    return cupy


def synchronize(device=None) -> None:
    """Wait until the GPU has finished the work queued on it, as ``torch.cuda.synchronize`` does;
    time GPU code only after it. ``device``: "cuda:N", or None for the default device if it is a
    GPU, else the current GPU once any tensor has been on one. On the CPU every op has finished
    when it returns, so there is nothing to wait for."""
    if device is None:
        if _default.device.type == "cpu":
            for module, _ in list(_ARRAY_TYPES.values())[1:]:  # the GPU array libraries in use, if any
                module.cuda.Device().synchronize()
            return
        device = _default.device
    device = Device(device)
    if device.type == "cpu":
        return
    module_for(device).cuda.Device(device.index).synchronize()


def to_device(array, device):
    """Copy ``array`` to ``device`` (a no-op when it is already there)."""
    device = Device(device)
    if device_of(array) == device:
        return array
    if device.type == "cpu":
        return array.get()  # a CuPy array; every non-CPU array library offers .get()
    xp = module_for(device)
    with xp.cuda.Device(device.index):
        return xp.asarray(array)


def to_host(array) -> np.ndarray:
    """The array as a NumPy array (a copy from the GPU for CuPy arrays; NumPy arrays as they are)."""
    return array.get() if hasattr(array, "get") else np.asarray(array)

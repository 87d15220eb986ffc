"""Tensor: an array (NumPy or CuPy), its gradient, and its place in the graph.

The math lives in :mod:`minibn.ops`; this class gives it PyTorch's spelling
(operators and methods). ``t._node`` is the Function that produced ``t``
(None for a leaf); ``t._version`` is a one-element list shared by tensors that
alias one buffer, bumped by every in-place change so that backward can tell
when a saved value was overwritten.
"""

from __future__ import annotations

import numpy as np

from . import devices, legacy, printing, random


def _wrap(data, node=None, version=None) -> "Tensor":
    """Make a Tensor around an array without checks (the ops' fast path)."""
    t = Tensor.__new__(Tensor)
    t._data = data
    t._node = node
    t._requires_grad = node is not None
    t._grad = None
    t._version = [0] if version is None else version
    t._hooks = None
    return t


def _legacy_array(args: tuple, device, dtype=None):
    """The array of ``Tensor(*args)``: PyTorch's legacy constructor (see :class:`Tensor`), of the
    default dtype, or of ``dtype`` for the typed classes (``LongTensor([2**40 + 1])`` exactly)."""
    dtype = devices.get_default_dtype() if dtype is None else dtype
    if len(args) == 1 and isinstance(args[0], Tensor):
        array = args[0]._data
    elif len(args) == 1 and isinstance(args[0], legacy.Size) or args and all(
            isinstance(a, int) and not isinstance(a, bool) for a in args):
        shape = tuple(args[0]) if isinstance(args[0], legacy.Size) else args
        if min(shape, default=0) < 0:
            raise ValueError(f"Tensor: negative dimension in the shape {shape}")
        array = np.zeros(shape, dtype)
    elif len(args) > 1:
        raise TypeError(f"Tensor: takes one sequence or array, or integer sizes; got {len(args)} arguments of types "
                        f"{', '.join(type(a).__name__ for a in args)}")
    elif not args:
        array = np.zeros(0, dtype)
    elif isinstance(args[0], (bool, int, float, complex, np.generic)):
        raise TypeError(f"Tensor: data must be a sequence (got {type(args[0]).__name__}); use mb.tensor({args[0]!r}) "
                        "for a 0-d tensor")
    else:
        array = devices.as_array(args[0], dtype=None if devices._is_array(args[0]) else dtype)
        if array.dtype != dtype:
            array = array.astype(dtype)
    return array if device is None else devices.to_device(array, devices.Device(device))


class Tensor:
    """An n-dimensional array that records the ops applied to it for autodiff.

    Make one with :func:`minibn.tensor` (or ``zeros``, ``randn``, ...), which keeps the data's
    dtype. The constructor is PyTorch's legacy one, always of the default dtype (float32):
    ``Tensor([1, 2])`` (a copy), ``Tensor(2, 3)`` (zeros of that shape), ``Tensor()`` (empty),
    ``Tensor(array)`` (shares memory when the array has the default dtype), ``Tensor(t)`` (the
    same data as the tensor ``t``).
    """

    __slots__ = ("_data", "_node", "_requires_grad", "_grad", "_version", "_hooks", "__weakref__")
    __array_ufunc__ = None  # NumPy defers to Tensor's operators: np.float64(2) * t is a Tensor
    __array_function__ = None

    def __init__(self, *data, requires_grad: bool = False, device=None):
        self._data = _legacy_array(data, device)
        self._node = None
        self._requires_grad = False
        self._grad = None
        self._version = [0]
        self._hooks = None
        self.requires_grad = requires_grad

    # -- attributes --------------------------------------------------------

    @property
    def grad(self):
        """The gradient accumulated by ``backward()`` (a Tensor of this shape), or None."""
        return self._grad

    @grad.setter
    def grad(self, value):
        if value is not None:
            if not isinstance(value, Tensor):
                raise TypeError(f"grad must be a Tensor or None, got {type(value).__name__}")
            if value.shape != self.shape or value.dtype != self.dtype or value.device != self.device:
                raise ValueError(f"grad of shape {tuple(value.shape)}, {value.dtype} on {value.device} assigned to a "
                                 f"tensor of shape {tuple(self.shape)}, {self.dtype} on {self.device}")
        self._grad = value

    @property
    def shape(self) -> legacy.Size:
        return legacy.Size(self._data.shape)

    @property
    def ndim(self) -> int:
        return self._data.ndim

    @property
    def dtype(self) -> np.dtype:
        return self._data.dtype

    @property
    def device(self) -> devices.Device:
        return devices.device_of(self._data)

    @property
    def xp(self):
        """The array module (numpy or cupy) holding this tensor's data."""
        return devices.array_module(self._data)

    @property
    def requires_grad(self) -> bool:
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, value: bool):
        value = bool(value)
        if self._node is not None:
            if not value:
                raise RuntimeError(
                    "requires_grad can only be switched off on a leaf tensor; use .detach() "
                    "to get a tensor outside the graph"
                )
            return
        if value and self._data.dtype.kind not in "fc":
            raise TypeError(
                f"only floating point (or complex) tensors can require gradients, got dtype {self.dtype}"
            )
        self._requires_grad = value

    def requires_grad_(self, requires_grad: bool = True) -> "Tensor":
        """Set ``requires_grad`` in place (leaf tensors) and return this tensor."""
        self.requires_grad = requires_grad
        return self

    @property
    def is_leaf(self) -> bool:
        return self._node is None

    @property
    def grad_fn(self):
        """The Function that produced this tensor (None for a leaf)."""
        return self._node

    @property
    def data(self) -> "Tensor":
        """This tensor's values outside the graph (shares memory and version counter). Assigning
        ``t.data = other`` makes ``t`` hold ``other``'s array (any shape; same device), as in PyTorch;
        the graph and ``requires_grad`` are kept."""
        return _wrap(self._data, version=self._version)

    @data.setter
    def data(self, value):
        if not isinstance(value, Tensor):
            raise TypeError(f"data must be set to a Tensor, got {type(value).__name__}")
        if value.device != self.device:
            raise TypeError(f"data: a tensor on {value.device} assigned to one on {self.device}; move it with .to()")
        if self._requires_grad and value.dtype.kind not in "fc":
            raise TypeError(f"data: a {value.dtype} array assigned to a tensor that requires grad (needs floating "
                            "point)")
        self._data = value._data
        self._version = value._version

    @property
    def T(self) -> "Tensor":
        """All dimensions reversed (the matrix transpose for 2-D)."""
        if self._data.ndim < 2:
            return self
        return ops.Permute.apply(self, axes=tuple(range(self._data.ndim - 1, -1, -1)))

    @property
    def mT(self) -> "Tensor":
        """The last two dimensions swapped (a batch of matrices transposed)."""
        n = self._data.ndim
        if n < 2:
            raise ValueError(f"mT needs at least 2 dimensions, got shape {tuple(self.shape)}")
        return ops.Permute.apply(self, axes=tuple(range(n - 2)) + (n - 1, n - 2))

    def size(self, dim=None):
        """The shape (a :class:`minibn.Size`), or its length along ``dim``."""
        return self.shape if dim is None else self._data.shape[dim]

    def dim(self) -> int:
        """The number of dimensions."""
        return self.ndim

    def numel(self) -> int:
        """The number of elements."""
        return int(self._data.size)

    def __len__(self):
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    # -- conversions -------------------------------------------------------

    def _check_no_grad(self, what):
        if self._requires_grad:
            raise RuntimeError(
                f"can't call {what} on a tensor that requires grad: use .detach().{what.split('(')[0]}()"
                if what != "__array__" else
                "can't convert a tensor that requires grad to a NumPy array; use t.detach()"
            )

    def numpy(self) -> np.ndarray:
        """The data as a NumPy array (shares memory on CPU)."""
        self._check_no_grad("numpy()")
        if self.device.type != "cpu":
            raise TypeError(f"can't convert a {self.device} tensor to NumPy; use .cpu() or .to('cpu') first")
        return self._data

    def __array__(self, dtype=None, copy=None):
        self._check_no_grad("__array__")
        if self.device.type != "cpu":
            raise TypeError(f"implicit conversion of a {self.device} tensor to NumPy is not allowed; use .cpu()")
        if copy:
            return np.array(self._data, dtype=dtype, copy=True)
        return self._data if dtype is None else self._data.astype(dtype, copy=False)

    def item(self):
        """The value of a one-element tensor as a Python number."""
        if self._data.size != 1:
            raise ValueError(f"item() needs a tensor with one element, got shape {tuple(self.shape)}")
        return self._data.item()

    def tolist(self):
        """The data as nested Python lists (a number for 0-d)."""
        return self._data.tolist()

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def __index__(self):
        if self.dtype.kind not in "iub" or self._data.size != 1:
            raise TypeError("only integer tensors of a single element can be used as an index")
        return int(self._data.item())

    def __bool__(self):
        if self._data.size != 1:
            raise RuntimeError(f"the truth value of a tensor with {self._data.size} elements is ambiguous")
        return bool(self._data.item())

    __hash__ = object.__hash__  # identity, though == is elementwise

    def __iter__(self):
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self.shape[0]))

    def __repr__(self):
        """PyTorch's layout (:mod:`minibn.printing`), whatever NumPy's print options are."""
        arr = self._data if self.device.type == "cpu" else self._data.get()
        suffixes = []
        if self.device.type != "cpu":
            suffixes.append(f"device='{self.device}'")
        if arr.size == 0 and arr.shape != (0,):
            suffixes.append(f"size={tuple(arr.shape)}")
        if arr.dtype != devices.get_default_dtype() and (arr.size == 0 or arr.dtype not in (devices.int64, devices.bool_)):
            suffixes.append(f"dtype={arr.dtype}")  # (an empty tensor shows any dtype but the default, as in PyTorch)
        if self._node is not None:
            suffixes.append(f"grad_fn={self._node!r}")
        elif self._requires_grad:
            suffixes.append("requires_grad=True")
        return printing.with_suffixes("tensor(" + printing.array_str(arr, len("tensor(")), suffixes, len("tensor("))

    # -- dtype and device --------------------------------------------------

    def to(self, *args, dtype=None, device=None, copy: bool = False) -> "Tensor":
        """``t.to(dtype)``, ``t.to(device)``, ``t.to(device, dtype)`` or keywords; differentiable."""
        for a in args:
            if isinstance(a, (str, devices.Device)):
                device = a
            else:
                dtype = a
        out = self
        if dtype is not None:
            out = ops.cast(out, devices.as_dtype(dtype))
        if device is not None:
            out = ops.to_device(out, devices.Device(device))
        if copy and out is self:
            out = ops.clone(self)
        return out

    def cpu(self) -> "Tensor":
        """This tensor on the CPU (itself if it is there); differentiable."""
        return self.to("cpu")

    def cuda(self, index: int = 0) -> "Tensor":
        """This tensor on GPU ``index`` (through CuPy); differentiable."""
        return self.to(f"cuda:{index}")

    def float(self) -> "Tensor":
        """This tensor as float32 (itself if it is); differentiable."""
        return self.to(devices.float32)

    def double(self) -> "Tensor":
        """This tensor as float64; differentiable."""
        return self.to(devices.float64)

    def long(self) -> "Tensor":
        """This tensor as int64 (no gradient flows through an integer tensor)."""
        return self.to(devices.int64)

    def int(self) -> "Tensor":
        """This tensor as int32."""
        return self.to(devices.int32)

    def bool(self) -> "Tensor":
        """This tensor as bool (non-zero is True)."""
        return self.to(devices.bool_)

    def half(self) -> "Tensor":
        """Refused: minibn has no float16."""
        raise TypeError("minibn has no float16 (its dtypes: float32, float64, complex64, complex128, int32, int64, "
                        "bool); use .float()")

    def is_floating_point(self) -> bool:
        """Whether the dtype is a real floating point one (float32 or float64)."""
        return self._data.dtype.kind == "f"

    @property
    def is_cuda(self) -> bool:
        return self.device.type == "cuda"

    def contiguous(self) -> "Tensor":
        """This tensor if its memory is in C order, else a C-ordered copy (differentiable)."""
        return self if self._data.flags.c_contiguous else ops.clone(self)

    def __format__(self, spec: str) -> str:
        """f"{t:.3f}" for a one-element tensor, as for its number; other tensors take no format spec."""
        if not spec:
            return str(self)
        if self._data.size != 1:
            raise TypeError(f"a tensor of shape {tuple(self.shape)} takes no format spec {spec!r}; format t.item() "
                            "for one element, or the array (t.detach().numpy())")
        return format(self.detach().item(), spec)

    def type_as(self, other: "Tensor") -> "Tensor":
        """This tensor in ``other``'s dtype."""
        return self.to(other.dtype)

    def type(self, dtype=None, non_blocking: bool = False):
        """Without an argument, PyTorch's name of this tensor's type (``'torch.FloatTensor'``, on a GPU
        ``'torch.cuda.FloatTensor'``);
        with a typed class (``mb.FloatTensor``), its name or a dtype, this tensor in that dtype."""
        if dtype is None:
            name = legacy.type_name(self.dtype)
            return name.replace("torch.", "torch.cuda.") if self.device.type == "cuda" else name
        return self.to(legacy.dtype_of_type(dtype))

    # -- new tensors like this one: mb.tensor, mb.full, mb.zeros, mb.ones with its dtype and device ----

    def new_tensor(self, data, dtype=None, device=None, requires_grad: bool = False) -> "Tensor":
        """A copy of ``data`` with this tensor's dtype and device (unless ``dtype``/``device`` are given)."""
        return creation.tensor(data, dtype or self.dtype, device or self.device, requires_grad)

    def new_full(self, size, fill_value, *, dtype=None, device=None, requires_grad: bool = False) -> "Tensor":
        """A tensor of shape ``size`` filled with ``fill_value``, of this tensor's dtype and device."""
        return creation.full(size, fill_value, dtype or self.dtype, device or self.device, requires_grad)

    def new_zeros(self, *size, dtype=None, device=None, requires_grad: bool = False) -> "Tensor":
        """Zeros of shape ``size`` (sizes or one tuple), of this tensor's dtype and device."""
        return creation.zeros(*size, dtype=dtype or self.dtype, device=device or self.device, requires_grad=requires_grad)

    def new_ones(self, *size, dtype=None, device=None, requires_grad: bool = False) -> "Tensor":
        """Ones of shape ``size``, of this tensor's dtype and device."""
        return creation.ones(*size, dtype=dtype or self.dtype, device=device or self.device, requires_grad=requires_grad)

    def new_empty(self, *size, dtype=None, device=None, requires_grad: bool = False) -> "Tensor":
        """A tensor of shape ``size`` (zeros here: minibn hands out no uninitialized memory)."""
        return self.new_zeros(*size, dtype=dtype, device=device, requires_grad=requires_grad)

    # -- autograd ------------------------------------------------------------

    def backward(self, gradient=None, retain_graph=None, create_graph: bool = False) -> None:
        """Accumulate d(self)/d(leaf) into ``leaf.grad`` for every leaf that requires grad.

        ``gradient`` is the upstream gradient (required unless ``self`` has one
        element). The graph's saved tensors are freed afterwards unless
        ``retain_graph=True``; ``create_graph=True`` records the backward pass
        so that the gradients can be differentiated again.
        """
        autograd.backward(self, gradient, retain_graph, create_graph)

    def detach(self) -> "Tensor":
        """The same values outside the graph (shares memory, like PyTorch)."""
        return _wrap(self._data, version=self._version)

    def detach_(self) -> "Tensor":
        """Cut this tensor from the graph in place: it becomes a leaf that does not require grad."""
        self._node = None
        self._requires_grad = False
        return self

    def retain_grad(self) -> None:
        """Keep this non-leaf tensor's gradient in ``.grad`` after backward."""
        if not self._requires_grad:
            raise RuntimeError("retain_grad() on a tensor that does not require grad")
        if self._node is not None:
            import weakref

            self._node._retain = weakref.ref(self)

    @property
    def retains_grad(self) -> bool:
        return self._node is not None and self._node._retain is not None and self._node._retain() is self

    def register_hook(self, hook):
        """Call ``hook(grad)`` when this tensor's gradient is computed; a returned tensor replaces it.

        Returns a handle whose ``remove()`` unregisters the hook.
        """
        if not self._requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that does not require grad")
        owner = self._node if self._node is not None else self
        if owner._hooks is None:
            owner._hooks = {}
        return _HookHandle(owner._hooks, hook)

    # -- in-place updates (never recorded in the graph) ------------------------

    def _inplace(self, name, fn, other=None):
        if autograd.is_grad_enabled() and (self._requires_grad or (isinstance(other, Tensor) and other._requires_grad)):
            raise RuntimeError(
                f"{name}: in-place ops are not recorded in the graph, and this one involves a tensor "
                "that requires grad; write it out of place (x = x + y) or run it under mb.no_grad()"
            )
        if isinstance(other, Tensor):
            if other.device != self.device:
                raise TypeError(f"{name}: operand on {other.device}, tensor on {self.device}")
            other = other._data
        fn(self._data, other)
        self._version[0] += 1
        return self

    def add_(self, other, *, alpha=1):
        """self += alpha * other in place (not recorded: refused on tensors that require grad while grad mode is on)."""
        if alpha != 1:
            other = other * alpha
        return self._inplace("add_", lambda a, b: a.__iadd__(b), other)

    def sub_(self, other, *, alpha=1):
        """self -= alpha * other in place."""
        if alpha != 1:
            other = other * alpha
        return self._inplace("sub_", lambda a, b: a.__isub__(b), other)

    def mul_(self, other):
        """self *= other in place."""
        return self._inplace("mul_", lambda a, b: a.__imul__(b), other)

    def div_(self, other):
        """self /= other in place."""
        return self._inplace("div_", lambda a, b: a.__itruediv__(b), other)

    def copy_(self, src):
        """Copy ``src``'s values into this tensor in place (broadcasting src)."""
        return self._inplace("copy_", lambda a, b: a.__setitem__(Ellipsis, b), src)

    def fill_(self, value):
        """Set every element to ``value`` in place."""
        return self._inplace("fill_", lambda a, b: a.fill(b), value)

    def zero_(self):
        """Set every element to 0 in place."""
        return self.fill_(0)

    def clamp_(self, min=None, max=None):
        """Clip every element to [min, max] in place (either bound may be None)."""
        if min is None and max is None:
            raise ValueError("clamp_: give at least one of min and max")
        lo, hi = (bound._data if isinstance(bound, Tensor) else bound for bound in (min, max))
        return self._inplace("clamp_", lambda a, b: a.__setitem__(Ellipsis, self.xp.clip(a, lo, hi)))

    def _draw_(self, name, draw, generator):
        values = draw(random.resolve(generator), self._data.shape).astype(self.dtype, copy=False)
        return self._inplace(name, lambda a, b: a.__setitem__(Ellipsis, b), devices.to_device(values, self.device))

    def normal_(self, mean: float = 0.0, std: float = 1.0, *, generator=None):
        """Fill in place with draws from N(mean, std^2), from ``generator`` (default: the one
        ``mb.manual_seed`` seeds), as ``w.data.normal_(0, 0.01)``."""
        if std < 0:
            raise ValueError(f"normal_: std must be >= 0, got {std}")
        return self._draw_("normal_", lambda rng, shape: rng.normal(mean, std, shape), generator)

    def uniform_(self, a: float = 0.0, b: float = 1.0, *, generator=None):
        """Fill in place with draws from U(a, b), from ``generator`` (default: ``mb.manual_seed``'s)."""
        if a > b:
            raise ValueError(f"uniform_: expects a <= b, got a={a}, b={b}")
        return self._draw_("uniform_", lambda rng, shape: rng.uniform(a, b, shape), generator)

    def __setitem__(self, index, value):
        index = ops.as_index(index, self.xp)
        parts = ops.split_integers(index)  # PyTorch's order: integers first, then the index arrays
        if parts:
            self._inplace("__setitem__", lambda a, b: a[parts[0]].__setitem__(parts[1], b), value)
        else:
            self._inplace("__setitem__", lambda a, b: a.__setitem__(index, b), value)

    # ``x += y`` updates x in place, as PyTorch does; where PyTorch would record that in the graph
    # (grad mode on, and x a graph tensor, or x a plain tensor and y one that requires grad), it
    # computes x + y out of place and rebinds the name: ``total = 0; for ...: total += loss``
    # builds the graph PyTorch builds. A leaf that requires grad stays refused, as in PyTorch.
    def _records(self, other) -> bool:
        if not autograd.is_grad_enabled():
            return False
        return self._node is not None or (not self._requires_grad and isinstance(other, Tensor) and other._requires_grad)

    def _augmented(self, op, other) -> "Tensor":
        """``self op other`` out of place, held to the in-place rules: self's shape and dtype."""
        out = op(self, other)
        if out.shape != self.shape:
            raise RuntimeError(f"output with shape {list(self.shape)} doesn't match the broadcast shape "
                               f"{list(out.shape)}")
        if out.dtype != self.dtype:
            if not np.can_cast(out.dtype, self.dtype, "same_kind"):
                raise RuntimeError(f"result type {out.dtype} can't be cast to the desired output type {self.dtype}")
            out = out.to(self.dtype)
        return out

    def __iadd__(self, other): return self._augmented(ops.add, other) if self._records(other) else self.add_(other)
    def __isub__(self, other): return self._augmented(ops.sub, other) if self._records(other) else self.sub_(other)
    def __imul__(self, other): return self._augmented(ops.mul, other) if self._records(other) else self.mul_(other)
    def __itruediv__(self, other):
        return self._augmented(ops.div, other) if self._records(other) else self.div_(other)

    # -- operators -------------------------------------------------------------

    # (__add__, __sub__, __mul__, __truediv__, __pow__, __matmul__ and __neg__ are the op
    # functions themselves, attached by minibn/ops/__init__.py)
    def __radd__(self, other): return ops.add(other, self)
    def __rsub__(self, other): return ops.sub(other, self)
    def __rmul__(self, other): return ops.mul(other, self)
    def __rtruediv__(self, other): return ops.div(other, self)
    def __rpow__(self, other): return ops.pow(other, self)
    def __rmatmul__(self, other): return ops.matmul(other, self)
    def __floordiv__(self, other): return ops.floor_divide(self, other)
    def __rfloordiv__(self, other): return ops.floor_divide(other, self)
    def __mod__(self, other): return ops.remainder(self, other)
    def __rmod__(self, other): return ops.remainder(other, self)
    def __pos__(self): return self
    def __abs__(self): return ops.abs(self)
    def __getitem__(self, index): return ops.getitem(self, index)

    def __eq__(self, other): return ops.eq(self, other)
    def __ne__(self, other): return ops.ne(self, other)
    def __lt__(self, other): return ops.lt(self, other)
    def __le__(self, other): return ops.le(self, other)
    def __gt__(self, other): return ops.gt(self, other)
    def __ge__(self, other): return ops.ge(self, other)
    def __and__(self, other): return ops.logical_and(self, other)
    def __or__(self, other): return ops.logical_or(self, other)
    def __invert__(self): return ops.logical_not(self)

    # -- methods (PyTorch names) -------------------------------------------------

    def add(self, other): return ops.add(self, other)
    def sub(self, other): return ops.sub(self, other)
    def mul(self, other): return ops.mul(self, other)
    def div(self, other): return ops.div(self, other)
    def pow(self, exponent): return ops.pow(self, exponent)
    def matmul(self, other): return ops.matmul(self, other)
    def neg(self): return ops.neg(self)
    def exp(self): return ops.exp(self)
    def flip(self, dims): return ops.flip(self, dims)
    def cumsum(self, dim): return ops.cumsum(self, dim)
    def logsumexp(self, dim, keepdim=False): return ops.logsumexp(self, dim, keepdim)
    def norm(self, p=2, dim=None, keepdim=False): return ops.norm(self, p, dim, keepdim)
    def split(self, split_size, dim=0): return ops.split(self, split_size, dim)
    def chunk(self, chunks, dim=0): return ops.chunk(self, chunks, dim)
    def unbind(self, dim=0): return ops.unbind(self, dim)
    def masked_fill(self, mask, value): return ops.masked_fill(self, mask, value)
    def dot(self, other): return ops.dot(self, other)
    def mm(self, other): return ops.mm(self, other)
    def bmm(self, other): return ops.bmm(self, other)
    def outer(self, other): return ops.outer(self, other)
    def isnan(self): return ops.isnan(self)
    def isfinite(self): return ops.isfinite(self)
    def any(self, dim=None, keepdim=False): return ops.any(self, dim, keepdim)
    def all(self, dim=None, keepdim=False): return ops.all(self, dim, keepdim)
    def allclose(self, other, rtol=1e-05, atol=1e-08, equal_nan=False): return ops.allclose(self, other, rtol, atol, equal_nan)
    def softmax(self, dim): return ops.softmax(self, dim)
    def log_softmax(self, dim): return ops.log_softmax(self, dim)
    def gather(self, dim, index): return ops.gather(self, dim, index)
    def scatter(self, dim, index, src=None, *, value=None): return ops.scatter(self, dim, index, src, value=value)
    def scatter_add(self, dim, index, src): return ops.scatter_add(self, dim, index, src)
    def index_select(self, dim, index): return ops.index_select(self, dim, index)
    def sort(self, dim=-1, descending=False, *, stable=False): return ops.sort(self, dim, descending, stable=stable)
    def argsort(self, dim=-1, descending=False, *, stable=False): return ops.argsort(self, dim, descending, stable=stable)
    def topk(self, k, dim=-1, largest=True, sorted=True): return ops.topk(self, k, dim, largest, sorted)
    def nonzero(self, *, as_tuple=False): return ops.nonzero(self, as_tuple=as_tuple)
    def prod(self, dim=None, keepdim=False): return ops.prod(self, dim, keepdim)
    def erf(self): return ops.erf(self)
    def sin(self): return ops.sin(self)
    def cos(self): return ops.cos(self)
    def log1p(self): return ops.log1p(self)
    def expm1(self): return ops.expm1(self)
    def reciprocal(self): return ops.reciprocal(self)
    def rsqrt(self): return ops.rsqrt(self)
    def square(self): return ops.square(self)
    def sign(self): return ops.sign(self)
    def log(self): return ops.log(self)
    def sqrt(self): return ops.sqrt(self)
    def abs(self): return ops.abs(self)
    def tanh(self): return ops.tanh(self)
    def sigmoid(self): return ops.sigmoid(self)
    def relu(self): return ops.relu(self)
    def maximum(self, other): return ops.maximum(self, other)
    def minimum(self, other): return ops.minimum(self, other)
    def clamp(self, min=None, max=None): return ops.clamp(self, min, max)
    clip = clamp

    def sum(self, dim=None, keepdim=False, **kw): return ops.sum(self, dim, keepdim, **kw)
    def mean(self, dim=None, keepdim=False, **kw): return ops.mean(self, dim, keepdim, **kw)
    def var(self, dim=None, unbiased=None, keepdim=False, **kw): return ops.var(self, dim, unbiased, keepdim, **kw)
    def std(self, dim=None, unbiased=None, keepdim=False, **kw): return ops.std(self, dim, unbiased, keepdim, **kw)
    def max(self, dim=None, keepdim=False, **kw): return ops.max(self, dim, keepdim, **kw)
    def min(self, dim=None, keepdim=False, **kw): return ops.min(self, dim, keepdim, **kw)
    def amax(self, dim=None, keepdim=False, **kw): return ops.amax(self, dim, keepdim, **kw)
    def amin(self, dim=None, keepdim=False, **kw): return ops.amin(self, dim, keepdim, **kw)
    def argmax(self, dim=None, keepdim=False): return ops.argmax(self, dim, keepdim)
    def argmin(self, dim=None, keepdim=False): return ops.argmin(self, dim, keepdim)

    def reshape(self, *shape): return ops.reshape(self, *shape)
    def reshape_as(self, other):
        """This tensor reshaped to ``other``'s shape."""
        return ops.reshape(self, other.shape)

    def view_as(self, other):
        """This tensor viewed with ``other``'s shape (no copy; see :meth:`view`)."""
        return ops.view(self, other.shape)

    def expand_as(self, other):
        """This tensor broadcast to ``other``'s shape (no copy)."""
        return ops.expand(self, *other.shape)


    def t(self):
        """The transpose of a matrix (a tensor of at most 2 dimensions: 0-d and 1-d ones are returned as they are)."""
        if self._data.ndim > 2:
            raise RuntimeError(f"t() expects a tensor with <= 2 dimensions, but self is {self._data.ndim}D")
        return self.T
    def view(self, *shape): return ops.view(self, *shape)
    def flatten(self, start_dim=0, end_dim=-1): return ops.flatten(self, start_dim, end_dim)
    def transpose(self, dim0, dim1): return ops.swapaxes(self, dim0, dim1)
    def permute(self, *dims): return ops.permute(self, *dims)
    def expand(self, *sizes): return ops.expand(self, *sizes)
    def broadcast_to(self, shape): return ops.broadcast_to(self, shape)
    def sum_to(self, shape): return ops.sum_to(self, shape)
    def unsqueeze(self, dim): return ops.unsqueeze(self, dim)
    def squeeze(self, dim=None): return ops.squeeze(self, dim)
    def clone(self): return ops.clone(self)
    def eq(self, other): return ops.eq(self, other)


class _HookHandle:
    _next_id = 0

    def __init__(self, hooks: dict, hook):
        _HookHandle._next_id += 1
        self.id = _HookHandle._next_id
        self.hooks = hooks
        hooks[self.id] = hook

    def remove(self):
        self.hooks.pop(self.id, None)


from . import autograd, creation, ops  # noqa: E402  (circular: ops and autograd build Tensors)

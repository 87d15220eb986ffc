"""Ops that move values without arithmetic: reshape, permute, broadcast,
indexing, concatenation, where, dtype and device changes.

Their backward ops come in pairs: reshape <-> reshape, broadcast_to <->
sum_to, getitem <-> index_add, so every derivative of every order stays
inside this small set.
"""

from __future__ import annotations

import numpy as np

from .. import devices
from ..autograd import Function
from ..tensor import Tensor, _wrap
from ._util import coerce, normalize_axes, shape_of, unbroadcast


def _shape_arg(shape) -> tuple:
    """Accept ``f(2, 3)`` and ``f((2, 3))``."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = shape[0]
    return tuple(int(s) for s in shape)


class Reshape(Function):
    """y = x with another shape;  dx = g reshaped back."""

    is_view = True

    def forward(self, x):
        self.in_shape = x.shape
        return x.reshape(self.shape)

    def backward(self, g):
        return g.reshape(self.in_shape)


def view_strides(shape: tuple, strides: tuple, new_shape: tuple) -> tuple | None:
    """The strides (in elements) that give ``new_shape`` over the memory of an array of ``shape`` and
    ``strides``, or None when no view can: PyTorch's rule. The old dimensions split into chunks laid
    out contiguously within themselves (stride[i] = stride[i + 1] size[i + 1], size-1 dimensions
    aside); each chunk must be covered by consecutive new dimensions of the same element count."""
    if 0 in shape:
        return tuple(int(np.prod(new_shape[i + 1:], dtype=np.int64)) for i in range(len(new_shape)))
    shape, strides = (shape, strides) if shape else ((1,), (1,))
    new_strides = [0] * len(new_shape)
    d = len(new_shape) - 1
    base, chunk, covered = strides[-1], 1, 1
    for i in range(len(shape) - 1, -1, -1):
        chunk *= shape[i]
        if i == 0 or (shape[i - 1] != 1 and strides[i - 1] != chunk * base):  # the chunk ends at dimension i
            while d >= 0 and (covered < chunk or new_shape[d] == 1):
                new_strides[d] = covered * base
                covered *= new_shape[d]
                d -= 1
            if covered != chunk:
                return None
            if i > 0:
                base, chunk, covered = strides[i - 1], 1, 1
    return tuple(new_strides) if d == -1 else None


class View(Function):
    """y = x's memory read with another shape and the strides :func:`view_strides` gives (no copy);
    dx = g reshaped back."""

    is_view = True

    def forward(self, x):
        self.in_shape = x.shape
        strides = tuple(s * x.itemsize for s in self.strides)
        return devices.array_module(x).lib.stride_tricks.as_strided(x, self.shape, strides)

    def backward(self, g):
        return g.reshape(self.in_shape)


class Permute(Function):
    """y = x with its dimensions reordered;  dx = g with the inverse order."""

    is_view = True

    def forward(self, x):
        return x.transpose(self.axes)

    def backward(self, g):
        inverse = tuple(np.argsort(self.axes))
        return g.permute(inverse)


class BroadcastTo(Function):
    """Read-only broadcast view; backward sums over the broadcast axes."""

    rule = "dx = g summed over the broadcast axes"

    is_view = True

    def forward(self, x):
        self.in_shape = x.shape
        return self.xp.broadcast_to(x, self.shape)

    def backward(self, g):
        return sum_to(g, self.in_shape)


class SumTo(Function):
    """Sum ``x`` down to ``shape``, the shape it was broadcast from."""

    rule = "dx = g broadcast back to the input shape"

    def forward(self, x):
        self.in_shape = x.shape
        lead = x.ndim - len(self.shape)
        axes = tuple(range(lead)) + tuple(
            lead + i for i, n in enumerate(self.shape) if n == 1 and x.shape[lead + i] != 1
        )
        out = x.sum(axis=axes, keepdims=True) if axes else x
        return out.reshape(self.shape)

    def backward(self, g):
        return g.broadcast_to(self.in_shape)


def as_index(index, xp=np):
    """An index for an array of module ``xp``: Tensors and lists become arrays, booleans positions."""
    if not isinstance(index, tuple):
        index = (index,)
    out = []
    for i in index:
        if isinstance(i, Tensor):
            i = i._data
        elif isinstance(i, list):
            i = xp.asarray(i)
        if hasattr(i, "dtype") and getattr(i, "ndim", 0) >= 0 and not isinstance(i, np.generic):
            if i.dtype.kind == "b":
                out.extend(i.nonzero())  # a mask of k dims is k integer index arrays
                continue
            if i.dtype.kind not in "iu":
                raise IndexError(f"tensors used as indices must be integer or bool, got dtype {i.dtype}")
        out.append(i)
    return tuple(out)


def split_integers(index):
    """PyTorch's order for an index that mixes integers with index arrays: the integers select
    first (a view), then the arrays index what is left, so t[0, :, [0, 1]] has shape (3, 2)
    where NumPy, taking the 0 as one more index array, gives (2, 3). Returns (first, second),
    or None when the index has no integer beside its arrays."""
    arrays = [hasattr(i, "dtype") and not isinstance(i, np.generic) for i in index]
    if not any(arrays) or not any(isinstance(i, (int, np.integer)) for i in index):
        return None
    first = tuple(slice(None) if a else i for i, a in zip(index, arrays))
    second = tuple(i if a else Ellipsis if i is Ellipsis else slice(None)
                   for i, a in zip(index, arrays) if a or not isinstance(i, (int, np.integer)))
    return first, second


def _is_basic(index) -> bool:
    return all(i is None or i is Ellipsis or isinstance(i, (int, slice, np.integer)) for i in index)


class GetItem(Function):
    """x[index]; backward scatters the gradient back, adding at repeated indices."""

    rule = "dx = zeros with g added at the index (repeats add up)"

    def forward(self, x):
        self.in_shape = x.shape
        return x[self.index]

    def backward(self, g):
        return IndexAdd.apply(g, index=self.index, shape=self.in_shape, basic=self.basic)


class IndexAdd(Function):
    """zeros(shape) with ``g`` added at ``index``: the adjoint of getitem."""

    def forward(self, g):
        out = self.xp.zeros(self.shape, dtype=g.dtype)
        if self.basic:
            out[self.index] = g
        else:
            self.xp.add.at(out, self.index, g)
        return out

    def backward(self, gg):
        return (_GetItemView if self.basic else GetItem).apply(gg, index=self.index, basic=self.basic)


def getitem(x, index):
    """``x[index]``: basic slicing (a view) and integer-array / boolean indexing (a copy)."""
    index = as_index(index, x.xp)
    basic = _is_basic(index)
    parts = split_integers(index)
    if parts:
        return getitem(getitem(x, parts[0]), parts[1])
    if not basic:
        for i in index:
            if hasattr(i, "dtype") and devices.array_module(i) is not x.xp:
                raise TypeError(f"getitem: index array on another device than the tensor ({x.device})")
    cls = _GetItemView if basic else GetItem
    return cls.apply(x, index=index, basic=basic)


class _GetItemView(GetItem):
    """Basic slicing returns a view that shares the tensor's version counter."""

    is_view = True


class Cat(Function):
    """y = x_1, ..., x_k joined along axis;  dx_i = the slice of g that came from x_i."""

    def forward(self, *xs):
        self.sizes = [x.shape[self.axis] for x in xs]
        return self.xp.concatenate(xs, axis=self.axis)

    def backward(self, g):
        grads, start = [], 0
        lead = (slice(None),) * self.axis
        for need, n in zip(self.needs, self.sizes):
            grads.append(g[lead + (slice(start, start + n),)] if need else None)
            start += n
        return tuple(grads)


def cat(tensors, dim=0):
    """Concatenate along an existing dimension ``dim``."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("cat: expected a non-empty sequence of tensors")
    for i, t in enumerate(tensors):
        if not isinstance(t, Tensor):
            raise TypeError(f"cat: element {i} is a {type(t).__name__}, not a Tensor")
        if t.ndim != tensors[0].ndim:
            raise ValueError(
                f"cat: all tensors need the same number of dimensions; tensor 0 has shape "
                f"{tuple(tensors[0].shape)}, tensor {i} has shape {tuple(t.shape)}"
            )
    dtype = devices.result_type(*tensors)
    from ._util import cast_to

    tensors = [cast_to(t, dtype) for t in tensors]
    (axis,) = normalize_axes(dim, tensors[0].ndim, "cat")
    return Cat.apply(*tensors, axis=axis)


concatenate = cat


def stack(tensors, dim=0):
    """Join tensors of one shape along a new dimension ``dim``."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("stack: expected a non-empty sequence of tensors")
    shape = tensors[0].shape
    for i, t in enumerate(tensors):
        if t.shape != shape:
            raise ValueError(f"stack: tensor 0 has shape {tuple(shape)} but tensor {i} has {tuple(t.shape)}")
    if not -(len(shape) + 1) <= dim <= len(shape):
        raise IndexError(f"stack: dim {dim} is out of range for {len(shape)}-dimensional tensors (from "
                         f"{-(len(shape) + 1)} to {len(shape)})")
    dim = dim + len(shape) + 1 if dim < 0 else dim
    return cat([unsqueeze(t, dim) for t in tensors], dim)


class Where(Function):
    """y = a where cond, else b;  da = g where cond (else 0), db = g where not cond."""

    save_inputs = True

    def forward(self, cond, a, b):
        return self.xp.where(cond, a, b)

    def backward(self, g):
        cond, a, b = self.inputs
        return (None,
                unbroadcast(where(cond, g, 0), shape_of(a)) if self.needs[1] else None,
                unbroadcast(where(cond, 0, g), shape_of(b)) if self.needs[2] else None)


def where(condition, input=None, other=None):  # noqa: A002  (PyTorch's argument names)
    """Elementwise ``input`` where ``condition`` holds, else ``other`` (broadcasting). With the
    condition alone: ``nonzero(condition, as_tuple=True)``, the indices where it holds, one index
    tensor per dimension."""
    if input is None and other is None:
        return nonzero(condition, as_tuple=True)
    if input is None or other is None:
        raise TypeError("where: give both input and other, or neither (where(condition) gives the indices)")
    if not isinstance(condition, Tensor):
        condition = _wrap(devices.as_array(np.asarray(condition)))
    if condition.dtype.kind != "b":
        raise TypeError(f"where: condition must be a bool tensor, got dtype {condition.dtype}")
    a, b = coerce(input, other, "where")
    return Where.apply(condition, a, b)


def nonzero(input, *, as_tuple=False):  # noqa: A002
    """The indices of the non-zero elements: an (n, ndim) int64 tensor, or with ``as_tuple=True``
    one 1-D index tensor per dimension (a 0-d input counts as 1-D there, as in PyTorch)."""
    if not isinstance(input, Tensor):
        raise TypeError(f"nonzero: input must be a Tensor, got {type(input).__name__}")
    data = input._data.reshape(1) if input.ndim == 0 else input._data
    found = input.xp.nonzero(data)
    if as_tuple:
        return tuple(_wrap(i.astype(np.int64)) for i in found)
    if input.ndim == 0:  # one row per hit, no columns
        return _wrap(input.xp.zeros((found[0].size, 0), np.int64))
    return _wrap(input.xp.stack(found, axis=1).astype(np.int64))


class Cast(Function):
    """y = x in another dtype;  dx = g in x's dtype."""

    def forward(self, x):
        self.in_dtype = x.dtype
        return x.astype(self.dtype)

    def backward(self, g):
        return cast(g, self.in_dtype)


def cast(x, dtype):
    dtype = devices.as_dtype(dtype)
    if x.dtype == dtype:
        return x
    if x.dtype.kind == "c" and dtype.kind != "c":
        raise TypeError(f"cast: {x.dtype} -> {dtype} would drop the imaginary part; take .real explicitly")
    if x._requires_grad and dtype.kind not in "fc":
        return _wrap(x._data.astype(dtype))  # an integer copy is outside the graph
    return Cast.apply(x, dtype=dtype)


class Clone(Function):
    """y = a copy of x;  dx = g."""

    def forward(self, x):
        return x.copy()

    def backward(self, g):
        return g


def clone(x):
    """A copy with its own memory; gradients pass straight through."""
    return Clone.apply(x)


class ToDevice(Function):
    """y = x on another device;  dx = g moved back."""

    def forward(self, x):
        self.source = devices.device_of(x)
        return devices.to_device(x, self.device)

    def backward(self, g):
        return to_device(g, self.source)


def to_device(x, device):
    """Copy ``x`` to ``device``, differentiably (gradients come back to x's device)."""
    device = devices.Device(device)
    if x.device == device:
        return x
    return ToDevice.apply(x, device=device)


# -- shape functions ----------------------------------------------------------------


def infer_shape(shape: tuple, numel: int, op: str) -> tuple:
    """``shape`` with its one -1 entry resolved so that it holds ``numel`` elements."""
    if sum(1 for s in shape if s == -1) > 1:
        raise RuntimeError(f"{op}: only one dimension can be inferred (-1), got shape {shape}")
    if any(s < -1 for s in shape):
        raise RuntimeError(f"{op}: invalid shape dimension in {shape}")
    known = int(np.prod([s for s in shape if s != -1], dtype=np.int64))
    if -1 in shape:
        if known == 0 or numel % known:
            raise RuntimeError(f"{op}: shape {shape} is invalid for input of size {numel}")
        return tuple(numel // known if s == -1 else s for s in shape)
    if known != numel:
        raise RuntimeError(f"{op}: shape {shape} is invalid for input of size {numel}")
    return shape


def view(x, *shape):
    """The same memory with another shape (one entry may be -1), without a copy: PyTorch's rule
    (:func:`view_strides`) decides which layouts allow it; others are refused (``reshape`` copies)."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = shape[0]
    shape = infer_shape(tuple(int(s) for s in shape), x._data.size, "view")
    if shape == x._data.shape:
        return Reshape.apply(x, shape=shape)
    itemsize = x._data.itemsize
    strides = view_strides(x._data.shape, tuple(s // itemsize for s in x._data.strides), shape)
    if strides is None:
        raise RuntimeError(f"view: shape {shape} is not compatible with the memory layout of this tensor (shape "
                           f"{tuple(x.shape)}, strides {tuple(s // itemsize for s in x._data.strides)} in elements: "
                           "at least one dimension spans several chunks of memory); use .reshape(...) instead")
    return View.apply(x, shape=shape, strides=strides)


def reshape(x, *shape):
    """View ``x`` with a new shape (one entry may be -1)."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = shape[0]
    shape = tuple(shape)
    if shape == x._data.shape:
        return x
    return Reshape.apply(x, shape=shape)


def flatten(x, start_dim=0, end_dim=-1):
    """Merge dimensions ``start_dim`` .. ``end_dim`` into one."""
    if x.ndim == 0:
        return reshape(x, 1)
    (start,), (end,) = normalize_axes(start_dim, x.ndim, "flatten"), normalize_axes(end_dim, x.ndim, "flatten")
    if start > end:
        raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim} for a tensor with {x.ndim} "
                         "dimensions")
    n = 1
    for s in x.shape[start:end + 1]:
        n *= s
    return reshape(x, x.shape[:start] + (n,) + x.shape[end + 1:])


def permute(x, *dims):
    """Reorder the dimensions: ``permute(x, 1, 0)``."""
    if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
        dims = dims[0]
    ndim = x._data.ndim
    axes = tuple(d + ndim if d < 0 else d for d in dims)
    if sorted(axes) != list(range(ndim)):
        raise ValueError(f"permute: {tuple(dims)} is not a permutation of the {ndim} dimensions of a "
                         f"tensor of shape {tuple(x.shape)}")
    if axes == tuple(range(ndim)):
        return x
    return Permute.apply(x, axes=axes)


def swapaxes(x, dim0, dim1):
    """Swap two dimensions (PyTorch's ``transpose(dim0, dim1)``)."""
    ndim = x._data.ndim
    span = max(ndim, 1)  # a 0-d tensor takes dims 0 and -1, as a scalar does in PyTorch
    if not (-span <= dim0 < span and -span <= dim1 < span):
        raise IndexError(f"transpose: dimensions ({dim0}, {dim1}) out of range for {ndim} dimensions")
    if ndim == 0:
        return x
    axes = list(range(ndim))
    axes[dim0], axes[dim1] = axes[dim1], axes[dim0]
    return permute(x, axes)


transpose = swapaxes


def broadcast_to(x, shape):
    """x expanded to ``shape`` by NumPy's broadcasting rule (a view); the gradient sums back."""
    shape = _shape_arg((shape,))
    if shape == x.shape:
        return x
    try:
        ok = np.broadcast_shapes(x.shape, shape) == shape
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(f"broadcast_to: cannot broadcast shape {tuple(x.shape)} to {shape}")
    return BroadcastTo.apply(x, shape=shape)


def expand(x, *sizes):
    """PyTorch's expand: broadcast to ``sizes``, -1 keeping a dimension's size."""
    sizes = _shape_arg(sizes)
    lead = len(sizes) - x.ndim
    if lead < 0:
        raise ValueError(f"expand: {len(sizes)} sizes for a tensor with {x.ndim} dimensions")
    shape = tuple(x.shape[i - lead] if s == -1 and i >= lead else s for i, s in enumerate(sizes))
    return broadcast_to(x, shape)


def sum_to(x, shape):
    """Sum ``x`` over broadcast axes so that it has ``shape`` (the adjoint of broadcast_to)."""
    shape = _shape_arg((shape,))
    if shape == x.shape:
        return x
    if np.broadcast_shapes(shape, x.shape) != x.shape:
        raise ValueError(f"sum_to: shape {shape} does not broadcast to {tuple(x.shape)}")
    return SumTo.apply(x, shape=shape)


def unsqueeze(x, dim):
    """Insert a dimension of size 1 at ``dim``."""
    dim = dim + x.ndim + 1 if dim < 0 else dim
    if not 0 <= dim <= x.ndim:
        raise IndexError(f"unsqueeze: dimension {dim} out of range for {x.ndim} dimensions")
    return reshape(x, x.shape[:dim] + (1,) + x.shape[dim:])


def squeeze(x, dim=None):
    """Drop dimensions of size 1 (all of them, or those in ``dim``)."""
    if dim is None:
        return reshape(x, tuple(s for s in x.shape if s != 1))
    axes = normalize_axes(dim, x.ndim, "squeeze")
    return reshape(x, tuple(s for i, s in enumerate(x.shape) if not (i in axes and s == 1)))

"""One-hot encoding of class indices (PyTorch's ``F.one_hot``)."""

from __future__ import annotations

from ..tensor import Tensor, _wrap


def one_hot(tensor: Tensor, num_classes: int = -1) -> Tensor:
    """An int64 tensor of shape (*tensor.shape, C), 1 at each index's class and 0 elsewhere; C is
    ``num_classes``, or (-1) one more than the largest index."""
    if not isinstance(tensor, Tensor) or tensor.dtype.kind not in "iu":
        raise TypeError(f"one_hot is only applicable to index tensors (int64), got "
                        f"{getattr(tensor, 'dtype', type(tensor).__name__)}")
    labels, xp = tensor._data, tensor.xp
    if labels.size and int(labels.min()) < 0:
        raise RuntimeError("one_hot: class values must be non-negative")
    if num_classes == -1:
        if not labels.size:
            raise RuntimeError("one_hot: cannot infer the number of classes of an empty tensor; give num_classes")
        num_classes = int(labels.max()) + 1
    elif labels.size and int(labels.max()) >= num_classes:
        raise RuntimeError(f"one_hot: class values must be smaller than num_classes ({num_classes}), got "
                           f"{int(labels.max())}")
    return _wrap((labels[..., None] == xp.arange(num_classes)).astype(xp.int64))

"""Matrix products."""

from __future__ import annotations

from ..autograd import Function
from ..tensor import Tensor
from ._util import coerce, unbroadcast


class MatMul(Function):
    """Y = A @ B (batched, broadcasting);  dA = G @ B^T,  dB = A^T @ G (seed 000, sec. 3.1)."""

    save_inputs = True

    def forward(self, a, b):
        return a @ b

    def backward(self, g):
        a, b = self.inputs
        ga = unbroadcast(g @ b.mT, a.shape) if self.needs[0] else None
        gb = unbroadcast(a.mT @ g, b.shape) if self.needs[1] else None
        return ga, gb


def matmul(a, b):
    """Matrix product with NumPy/PyTorch semantics for 1-D, 2-D and batched operands."""
    a, b = coerce(a, b, "matmul")
    if isinstance(a, Tensor) and isinstance(b, Tensor) and a._data.ndim >= 2 and b._data.ndim >= 2:
        return MatMul.apply(a, b)
    if not hasattr(a, "ndim") or not hasattr(b, "ndim") or a.ndim == 0 or b.ndim == 0:
        raise ValueError("matmul: both operands need at least one dimension (use * for scalars)")
    vec_a, vec_b = a.ndim == 1, b.ndim == 1
    if vec_a:
        a = a.reshape(1, a.shape[0])
    if vec_b:
        b = b.reshape(b.shape[0], 1)
    out = MatMul.apply(a, b)
    if vec_a or vec_b:
        shape = out.shape[:-2] + out.shape[-2:-1] * (not vec_a) + out.shape[-1:] * (not vec_b)
        out = out.reshape(shape)
    return out

"""PyTorch's ``torch.linalg`` for what minibn has: vector norms and matrix products."""

from __future__ import annotations

from .ops import matmul  # noqa: F401  (torch.linalg.matmul)
from .ops import norm as _norm


def vector_norm(x, ord=2, dim=None, keepdim=False, *, dtype=None):  # noqa: A002  (PyTorch's argument name)
    """The ``ord``-norm of ``x`` as a vector over ``dim`` (all elements by default): (sum |x|^ord)^(1/ord),
    max |x| for ord = inf, min |x| for -inf, the count of non-zeros for 0; ``dtype`` converts first."""
    if dtype is not None:
        x = x.to(dtype)
    return _norm(x, ord, dim, keepdim)

"""The fully connected layer as one node."""

from __future__ import annotations

from ..autograd import Function, is_grad_enabled
from ..tensor import Tensor, _wrap


class Linear(Function):
    """y = x W^T + b, W of shape (out, in) as in PyTorch; x may have any leading batch dims.

    Backward (seed 000, sec. 3.1, with samples as rows):
        dX = dY W,   dW = dY^T X,   db = sum over samples of dY.
    """

    save_inputs = True

    def forward(self, x, w, b=None):
        y = x @ w.T
        if b is not None:
            y += b
        return y

    def backward(self, g):
        x, w = self.inputs[:2]
        out_f, in_f = w.shape
        g2, x2 = (g, x) if x.ndim == 2 else (g.reshape(-1, out_f), x.reshape(-1, in_f))
        dx = (g @ w) if self.needs[0] else None
        dw = g2.T @ x2 if self.needs[1] else None
        db = None
        if len(self.needs) > 2 and self.needs[2]:
            if is_grad_enabled():  # building a graph: a sum, whose backward is a free broadcast
                db = g2.sum(0)
            else:  # first order: the sum over samples as a matrix-vector product, ~3x NumPy's reduction
                db = _wrap(g2.xp.ones(g2.shape[0], dtype=g2.dtype)) @ g2
        return dx, dw, db


def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """y = input @ weight.T + bias, one node with the closed-form backward (a 1-D weight, without
    bias, gives one output without its dimension, as in PyTorch)."""
    if not isinstance(input, Tensor) or not isinstance(weight, Tensor):
        raise TypeError("linear: input and weight must be Tensors")
    if weight.ndim == 1:  # PyTorch's one-output form: y = input @ weight + bias, one dimension fewer
        if bias is not None:
            raise ValueError("linear: a 1-D weight takes no bias (as in PyTorch); add it to the output")
        return linear(input, weight.unsqueeze(0)).squeeze(-1)
    if weight.ndim != 2:
        raise ValueError(f"linear: weight must be 2-D (out, in) or 1-D (in,), got shape {tuple(weight.shape)}")
    if input.ndim == 0 or input.shape[-1] != weight.shape[1]:
        raise ValueError(
            f"linear: input has {input.shape[-1] if input.ndim else 0} features (shape "
            f"{tuple(input.shape)}) but weight expects {weight.shape[1]} (weight shape {tuple(weight.shape)})"
        )
    if bias is not None and tuple(bias.shape) != (weight.shape[0],):
        raise ValueError(f"linear: bias has shape {tuple(bias.shape)}, expected ({weight.shape[0]},)")
    if len({t.dtype for t in (input, weight, bias) if t is not None}) > 1:
        raise TypeError(
            "linear: input, weight and bias must share a dtype, got "
            + ", ".join(str(t.dtype) for t in (input, weight, bias) if t is not None)
            + "; convert with .to(dtype)"
        )
    if bias is None:
        return Linear.apply(input, weight)
    return Linear.apply(input, weight, bias)

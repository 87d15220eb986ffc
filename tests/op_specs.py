"""One table of op specs; test_ops.py and test_torch_crosscheck.py generate their checks from it.

Each spec's ``fn(lib, *xs)`` is written once and runs on both minibn and
PyTorch (``lib`` is the module): minibn spells every op as PyTorch does.
``ref`` is an independent NumPy reference for the forward pass. Inputs come
from a named domain kept away from kinks (abs, relu, max), poles and branch
cuts, so that finite differences with steps up to 1e-3 stay on one smooth piece.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import math

import numpy as np


@dataclass
class OpSpec:
    name: str
    fn: callable
    ref: callable
    shapes: tuple
    domains: tuple = ()  # per input; default "real"
    analytic: bool = True  # complex-step applies
    torch: bool = True  # PyTorch has the same spelling
    extra: dict = field(default_factory=dict)

    def inputs(self, rng, dtype=np.float64):
        out = []
        for i, shape in enumerate(self.shapes):
            domain = self.domains[i] if i < len(self.domains) else "real"
            out.append(DOMAINS[domain](rng, shape).astype(dtype))
        return out


def _spread(rng, shape):
    """Distinct values at least 0.25 apart and 0.125 away from 0: no ties, no kinks."""
    n = int(np.prod(shape))
    v = (rng.permutation(n) - n // 2) * 0.25 + 0.125
    return v.reshape(shape)


def _peaked(rng, shape):
    """Spread values with one clear extreme per column (of axis 1: the first row, at the first
    position along any later axes, 4 units out): max |x - mean| has a unique argmax far from a tie,
    so differences of the infinity norm stay on one piece."""
    v = _spread(rng, shape)
    v[(0, slice(None)) + (0,) * (len(shape) - 2)] = np.abs(v).max() + 4.0
    return v


DOMAINS = {
    "peaked": _peaked,
    "real": lambda rng, s: rng.standard_normal(s),
    "positive": lambda rng, s: rng.uniform(0.5, 2.0, s),
    "spread": _spread,
    "unit": lambda rng, s: rng.uniform(-0.9, 0.9, s),
    "probability": lambda rng, s: rng.uniform(0.1, 0.9, s),
}


def _spec(name, fn, ref, *shapes, domains=(), analytic=True, torch=True):
    return OpSpec(name, fn, ref, tuple(shapes), tuple(domains), analytic, torch)


def _scatter_add_ref(x, index, src):
    out = x.copy()
    for (i, j), k in np.ndenumerate(index):
        out[k, j] += src[i, j]
    return out


def _scatter_ref(x, index, src):
    out = x.copy()
    for (i, j), k in np.ndenumerate(index):
        out[i, k] = src[i, j]
    return out


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


SPECS = [
    # -- arithmetic with broadcasting
    _spec("add", lambda lib, a, b: a + b, np.add, (3, 4), (3, 4)),
    _spec("add_bcast_row", lambda lib, a, b: a + b, np.add, (3, 4), (4,)),
    _spec("add_bcast_both", lambda lib, a, b: a + b, np.add, (2, 1, 4), (3, 1)),
    _spec("add_0d", lambda lib, a, b: a + b, np.add, (), (3,)),
    _spec("sub_bcast", lambda lib, a, b: a - b, np.subtract, (3, 1), (1, 4)),
    _spec("mul_bcast", lambda lib, a, b: a * b, np.multiply, (2, 3, 4), (3, 1)),
    _spec("div_bcast", lambda lib, a, b: a / b, np.divide, (3, 4), (4,), domains=("real", "positive")),
    _spec("pow_tensor", lambda lib, a, b: a ** b, np.power, (3, 4), (3, 4), domains=("positive", "unit")),
    _spec("neg", lambda lib, x: -x, np.negative, (3, 4)),
    # -- with Python scalars on either side
    _spec("scalar_add", lambda lib, x: 2.5 + x, lambda x: 2.5 + x, (3, 4)),
    _spec("scalar_rsub", lambda lib, x: 2.5 - x, lambda x: 2.5 - x, (3, 4)),
    _spec("scalar_mul", lambda lib, x: x * 3, lambda x: x * 3, (3, 4)),
    _spec("scalar_rdiv", lambda lib, x: 3.0 / x, lambda x: 3.0 / x, (3, 4), domains=("positive",)),
    _spec("pow_square", lambda lib, x: x ** 2, np.square, (3, 4)),
    _spec("pow_cube", lambda lib, x: x ** 3, lambda x: x ** 3, (3, 4)),
    _spec("pow_half", lambda lib, x: x ** 0.5, np.sqrt, (3, 4), domains=("positive",)),
    _spec("pow_neg", lambda lib, x: x ** -1.5, lambda x: x ** -1.5, (3, 4), domains=("positive",)),
    _spec("rpow", lambda lib, x: 2.0 ** x, lambda x: 2.0 ** x, (3, 4)),
    # -- unary math
    _spec("exp", lambda lib, x: x.exp(), np.exp, (3, 4)),
    _spec("log", lambda lib, x: x.log(), np.log, (3, 4), domains=("positive",)),
    _spec("sqrt", lambda lib, x: x.sqrt(), np.sqrt, (3, 4), domains=("positive",)),
    _spec("tanh", lambda lib, x: x.tanh(), np.tanh, (3, 4)),
    _spec("sigmoid", lambda lib, x: x.sigmoid(), _sigmoid, (3, 4)),
    _spec("sigmoid_wide", lambda lib, x: (x * 8).sigmoid(), lambda x: _sigmoid(8 * x), (3, 4)),
    _spec("flip", lambda lib, x: x.flip([0, 1]) * x, lambda x: np.flip(x, (0, 1)) * x, (3, 4)),
    _spec("cumsum", lambda lib, x: x.cumsum(1) * x, lambda x: np.cumsum(x, 1) * x, (3, 4)),
    _spec("logsumexp", lambda lib, x: lib.logsumexp(x * 3, 1), lambda x: np.log(np.exp(3 * x).sum(1)), (3, 4),
          analytic=False),
    _spec("norm", lambda lib, x: x.norm() * x, lambda x: np.linalg.norm(x) * x, (3, 4), analytic=False),
    _spec("norm_dim", lambda lib, x: x.norm(dim=1, keepdim=True), lambda x: np.linalg.norm(x, axis=1, keepdims=True),
          (3, 4), analytic=False),
    _spec("norm_p3", lambda lib, x: x.norm(p=3, dim=0), lambda x: (np.abs(x) ** 3).sum(0) ** (1 / 3), (3, 4),
          domains=("spread",), analytic=False),
    _spec("split_chunk", lambda lib, x: x.split(2, 1)[1] * x.chunk(2, 1)[0] + x.unbind(1)[3].unsqueeze(1),
          lambda x: x[:, 2:] * x[:, :2] + x[:, 3:4], (3, 4)),
    _spec("masked_fill", lambda lib, x: (x * 2).masked_fill(x.detach() > 0, 0.5) * x,
          lambda x: np.where(x > 0, 0.5, 2 * x) * x, (3, 4), domains=("spread",), analytic=False),
    _spec("dot_outer", lambda lib, x, y: lib.outer(x, y) * lib.dot(x, x), lambda x, y: np.outer(x, y) * (x @ x), (3,),
          (4,)),
    _spec("mm_bmm", lambda lib, a, b: lib.mm(a[0], b[0]) + lib.bmm(a, b)[1], lambda a, b: a[0] @ b[0] + (a @ b)[1],
          (2, 3, 4), (2, 4, 2)),
    _spec("sin", lambda lib, x: x.sin(), np.sin, (3, 4)),
    _spec("cos", lambda lib, x: x.cos(), np.cos, (3, 4)),
    _spec("sin_fn", lambda lib, x: lib.sin(x) * lib.cos(x), lambda x: np.sin(x) * np.cos(x), (5,)),
    _spec("log1p", lambda lib, x: x.log1p(), np.log1p, (3, 4), domains=("positive",)),
    _spec("expm1", lambda lib, x: x.expm1(), np.expm1, (3, 4)),
    _spec("reciprocal", lambda lib, x: x.reciprocal(), lambda x: 1 / x, (3, 4), domains=("positive",)),
    _spec("rsqrt", lambda lib, x: x.rsqrt(), lambda x: 1 / np.sqrt(x), (3, 4), domains=("positive",)),
    _spec("square", lambda lib, x: x.square(), np.square, (3, 4)),
    _spec("softplus", lambda lib, x: lib.nn.functional.softplus(x * 4), lambda x: np.logaddexp(0, 4 * x), (3, 4),
          analytic=False),
    _spec("softplus_beta", lambda lib, x: lib.nn.functional.softplus(x * 4, beta=2.0, threshold=4.0),
          lambda x: np.where(8 * x > 4, 4 * x, np.logaddexp(0, 8 * x) / 2), (3, 4), domains=("spread",),
          analytic=False),
    _spec("silu", lambda lib, x: lib.nn.functional.silu(x), lambda x: x * _sigmoid(x), (3, 4)),
    _spec("elu", lambda lib, x: lib.nn.functional.elu(x, alpha=0.7), lambda x: np.where(x > 0, x, 0.7 * np.expm1(x)),
          (3, 4), domains=("spread",), analytic=False),
    _spec("hardtanh", lambda lib, x: lib.nn.functional.hardtanh(x, -0.6, 0.9), lambda x: np.clip(x, -0.6, 0.9),
          (3, 4), domains=("spread",), analytic=False),
    _spec("leaky_relu", lambda lib, x: lib.nn.functional.leaky_relu(x, 0.2), lambda x: np.where(x > 0, x, 0.2 * x),
          (3, 4), domains=("spread",), analytic=False),
    _spec("abs", lambda lib, x: x.abs(), np.abs, (3, 4), domains=("spread",), analytic=False),
    _spec("relu", lambda lib, x: x.relu(), lambda x: np.maximum(x, 0), (3, 4), domains=("spread",),
          analytic=False),
    _spec("relu_fn", lambda lib, x: lib.relu(x), lambda x: np.maximum(x, 0), (5,), domains=("spread",),
          analytic=False),
    _spec("maximum", lambda lib, a, b: lib.maximum(a, b), np.maximum, (3, 4), (4,),
          domains=("spread", "spread"), analytic=False),
    _spec("minimum", lambda lib, a, b: lib.minimum(a, b), np.minimum, (3, 4), (3, 4),
          domains=("spread", "spread"), analytic=False),
    _spec("clamp", lambda lib, x: x.clamp(-0.6, 0.7), lambda x: np.clip(x, -0.6, 0.7), (3, 4),
          domains=("spread",), analytic=False),
    _spec("max_elementwise", lambda lib, a, b: lib.max(a, b), np.maximum, (3, 4), (3, 4),
          domains=("spread", "spread"), analytic=False),
    _spec("min_elementwise_method", lambda lib, a, b: a.min(b), np.minimum, (3, 4), (4,),
          domains=("spread", "spread"), analytic=False),
    _spec("erf", lambda lib, x: lib.erf(x * 1.5), lambda x: np.vectorize(math.erf)(1.5 * x), (3, 4), analytic=False),
    _spec("gelu", lambda lib, x: lib.nn.functional.gelu(x * 2), lambda x: x * (1 + np.vectorize(math.erf)(np.sqrt(2) * x)),
          (3, 4), analytic=False),
    _spec("gelu_tanh", lambda lib, x: lib.nn.functional.gelu(x, approximate="tanh"),
          lambda x: x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3))) / 2, (3, 4)),
    _spec("clamp_tensor_bounds", lambda lib, x, lo, hi: x.clamp(lo, hi * 0.5 + 1.5),
          lambda x, lo, hi: np.minimum(np.maximum(x, lo), hi * 0.5 + 1.5), (3, 4), (4,), (3, 1),
          domains=("spread", "unit", "unit"), analytic=False),
    # -- indexing along a dimension, sorting
    _spec("gather", lambda lib, x: x.gather(0, lib.tensor([[2, 0, 1, 2], [0, 0, 1, 1]], device=x.device)) * 2,
          lambda x: np.take_along_axis(x, np.array([[2, 0, 1, 2], [0, 0, 1, 1]]), 0) * 2, (3, 4)),
    _spec("gather_dim1", lambda lib, x: lib.gather(x, 1, lib.tensor([[3, 3], [0, 1], [2, 0]], device=x.device)),
          lambda x: np.take_along_axis(x, np.array([[3, 3], [0, 1], [2, 0]]), 1), (3, 4)),
    _spec("scatter_add", lambda lib, x, src: x.scatter_add(0, lib.tensor([[2, 0, 2, 2], [2, 1, 0, 2]], device=x.device), src),
          lambda x, src: _scatter_add_ref(x, np.array([[2, 0, 2, 2], [2, 1, 0, 2]]), src), (3, 4), (2, 4)),
    _spec("scatter", lambda lib, x, src: x.scatter(1, lib.tensor([[1, 3], [0, 2], [2, 1]], device=x.device), src),
          lambda x, src: _scatter_ref(x, np.array([[1, 3], [0, 2], [2, 1]]), src), (3, 4), (3, 2)),
    _spec("index_select", lambda lib, x: x.index_select(1, lib.tensor([3, 0, 3], device=x.device)) * x[:, :3],
          lambda x: x[:, [3, 0, 3]] * x[:, :3], (3, 4)),
    _spec("sort", lambda lib, x: x.sort(1, descending=True).values * x, lambda x: -np.sort(-x, 1) * x, (3, 4),
          domains=("spread",), analytic=False),
    _spec("topk", lambda lib, x: lib.topk(x, 2, 0).values * 3, lambda x: -np.sort(-x, 0)[:2] * 3, (4, 3),
          domains=("spread",), analytic=False),
    _spec("softmax_method", lambda lib, x: x.softmax(1) * x.log_softmax(0),
          lambda x: np.exp(x) / np.exp(x).sum(1, keepdims=True) * (x - np.log(np.exp(x).sum(0, keepdims=True))),
          (3, 4), analytic=False),
    _spec("softmax_0d", lambda lib, x: lib.softmax(x, 0) * x, lambda x: x, (), analytic=False),
    # -- einsum
    _spec("einsum_matmul", lambda lib, a, b: lib.einsum("ij,jk->ik", a, b), np.matmul, (3, 4), (4, 2)),
    _spec("einsum_batched_implicit", lambda lib, a, b: lib.einsum("bij,bjk", a, b),
          lambda a, b: np.einsum("bij,bjk", a, b), (2, 3, 4), (2, 4, 2)),
    _spec("einsum_diagonal", lambda lib, a, b: lib.einsum("ii,ij->j", a, b), lambda a, b: np.einsum("ii,ij->j", a, b),
          (3, 3), (3, 2)),
    _spec("einsum_ellipsis_bcast", lambda lib, a, b: lib.einsum("...i,...i->...", a, b) * lib.einsum("ij->", b),
          lambda a, b: np.einsum("...i,...i->...", a, b) * b.sum(), (2, 1, 3), (4, 3)),
    _spec("vector_norm", lambda lib, x: lib.linalg.vector_norm(x, 3, 1) * lib.linalg.vector_norm(x),
          lambda x: (np.abs(x) ** 3).sum(1) ** (1 / 3) * np.linalg.norm(x), (3, 4), domains=("spread",),
          analytic=False),
    _spec("linear_1d_weight", lambda lib, x, w: lib.nn.functional.linear(x, w), lambda x, w: x @ w, (3, 4), (4,)),
    # -- reductions
    _spec("prod_all", lambda lib, x: x.prod(), np.prod, (2, 3)),
    _spec("prod_dim_keep", lambda lib, x: x.prod(1, keepdim=True) * x, lambda x: x.prod(1, keepdims=True) * x,
          (3, 4)),
    _spec("sum_all", lambda lib, x: x.sum(), np.sum, (3, 4)),
    _spec("sum_dim", lambda lib, x: x.sum(1), lambda x: x.sum(1), (3, 4)),
    _spec("sum_dims_keep", lambda lib, x: x.sum((0, 2), keepdim=True), lambda x: x.sum((0, 2), keepdims=True),
          (2, 3, 4)),
    _spec("mean_all", lambda lib, x: x.mean(), np.mean, (3, 4)),
    _spec("mean_dim", lambda lib, x: x.mean(0), lambda x: x.mean(0), (3, 4)),
    _spec("mean_neg_dim_keep", lambda lib, x: x.mean(-1, keepdim=True), lambda x: x.mean(-1, keepdims=True),
          (2, 3, 4)),
    _spec("var_all", lambda lib, x: x.var(), lambda x: x.var(ddof=1), (3, 4)),
    _spec("var_dim_biased", lambda lib, x: x.var(0, correction=0), lambda x: x.var(0), (5, 3)),
    _spec("var_dim_keep", lambda lib, x: x.var(1, keepdim=True), lambda x: x.var(1, ddof=1, keepdims=True),
          (3, 4)),
    _spec("std_dim", lambda lib, x: x.std(0), lambda x: x.std(0, ddof=1), (5, 3)),
    _spec("max_all", lambda lib, x: x.max(), np.max, (3, 4), domains=("spread",), analytic=False),
    _spec("min_all", lambda lib, x: x.min(), np.min, (3, 4), domains=("spread",), analytic=False),
    _spec("max_dim", lambda lib, x: x.max(1).values, lambda x: x.max(1), (3, 4), domains=("spread",),
          analytic=False),
    _spec("min_dim_keep", lambda lib, x: x.min(0, keepdim=True)[0], lambda x: x.min(0, keepdims=True), (3, 4),
          domains=("spread",), analytic=False),
    _spec("amax_dims", lambda lib, x: x.amax((0, 2)), lambda x: x.max((0, 2)), (2, 3, 4),
          domains=("spread",), analytic=False),
    # -- matrix products
    _spec("matmul_2d", lambda lib, a, b: a @ b, np.matmul, (3, 4), (4, 5)),
    _spec("matmul_vec_vec", lambda lib, a, b: a @ b, np.matmul, (4,), (4,)),
    _spec("matmul_mat_vec", lambda lib, a, b: a @ b, np.matmul, (3, 4), (4,)),
    _spec("matmul_vec_mat", lambda lib, a, b: lib.matmul(a, b), np.matmul, (4,), (4, 2)),
    _spec("matmul_batched", lambda lib, a, b: a @ b, np.matmul, (2, 3, 4), (2, 4, 5)),
    _spec("matmul_bcast_batch", lambda lib, a, b: a @ b, np.matmul, (2, 1, 3, 4), (5, 4, 2)),
    _spec("matmul_batch_vec", lambda lib, a, b: a @ b, np.matmul, (2, 3, 4), (4,)),
    # -- shapes
    _spec("reshape", lambda lib, x: x.reshape(4, 3), lambda x: x.reshape(4, 3), (3, 4)),
    _spec("reshape_infer", lambda lib, x: x.reshape(-1), lambda x: x.reshape(-1), (2, 3, 2)),
    _spec("view", lambda lib, x: x.view(2, 6), lambda x: x.reshape(2, 6), (3, 4)),
    _spec("view_of_a_permuted_layout", lambda lib, x: x.permute(1, 0, 2, 3).view(3, 2, 8),
          lambda x: x.transpose(1, 0, 2, 3).reshape(3, 2, 8), (2, 3, 2, 4)),
    _spec("view_as_expand_as", lambda lib, x, y: x.view_as(y).expand_as(y * 1) * y, lambda x, y: x.reshape(y.shape) * y,
          (6,), (2, 3)),
    _spec("t", lambda lib, x: x.t(), lambda x: x.T, (3, 4)),
    _spec("flatten", lambda lib, x: x.flatten(1), lambda x: x.reshape(2, -1), (2, 3, 2)),
    _spec("T", lambda lib, x: x.T, lambda x: x.T, (3, 4)),
    _spec("transpose", lambda lib, x: x.transpose(0, 2), lambda x: x.swapaxes(0, 2), (2, 3, 4)),
    _spec("permute", lambda lib, x: x.permute(1, 2, 0), lambda x: x.transpose(1, 2, 0), (2, 3, 4)),
    _spec("mT", lambda lib, x: x.mT, lambda x: x.swapaxes(-1, -2), (2, 3, 4)),
    _spec("expand", lambda lib, x: x.expand(2, 3, 4), lambda x: np.broadcast_to(x, (2, 3, 4)), (3, 1)),
    _spec("expand_keep", lambda lib, x: x.expand(-1, 4), lambda x: np.broadcast_to(x, (3, 4)), (3, 1)),
    _spec("broadcast_to", lambda lib, x: lib.broadcast_to(x, (2, 3, 4)), lambda x: np.broadcast_to(x, (2, 3, 4)),
          (4,)),
    _spec("unsqueeze", lambda lib, x: x.unsqueeze(1), lambda x: x[:, None], (3, 4)),
    _spec("squeeze", lambda lib, x: x.squeeze(1), lambda x: x[:, 0], (3, 1, 4)),
    _spec("getitem_basic", lambda lib, x: x[1:, ::2], lambda x: x[1:, ::2], (3, 4)),
    _spec("getitem_int", lambda lib, x: x[1], lambda x: x[1], (3, 4)),
    _spec("getitem_none_ellipsis", lambda lib, x: x[..., None, 1], lambda x: x[..., None, 1], (2, 3, 4)),
    _spec("getitem_repeated", lambda lib, x: x[[0, 2, 0, 0]], lambda x: x[[0, 2, 0, 0]], (3, 4)),
    _spec("getitem_mixed", lambda lib, x: x[[1, 1, 0], 1:], lambda x: x[[1, 1, 0], 1:], (3, 4)),
    _spec("getitem_pairs", lambda lib, x: x[[0, 2, 0], [1, 3, 1]], lambda x: x[[0, 2, 0], [1, 3, 1]], (3, 4)),
    _spec("getitem_mask", lambda lib, x: x[x > 0], lambda x: x[x > 0], (3, 4), domains=("spread",),
          analytic=False),
    _spec("cat", lambda lib, a, b: lib.cat([a, b], 1), lambda a, b: np.concatenate([a, b], 1), (3, 2), (3, 4)),
    _spec("cat_self", lambda lib, a: lib.cat([a, a * 2, a], 0), lambda a: np.concatenate([a, 2 * a, a], 0),
          (2, 3)),
    _spec("stack", lambda lib, a, b: lib.stack([a, b], -1), lambda a, b: np.stack([a, b], -1), (3, 4), (3, 4)),
    _spec("where", lambda lib, a, b: lib.where(a > 0, a, b), lambda a, b: np.where(a > 0, a, b), (3, 4), (4,),
          domains=("spread", "real"), analytic=False),
    _spec("clone", lambda lib, x: x.clone() * x, lambda x: x * x, (3, 4)),
    # -- compositions: gradients meeting at shared inputs, chains through several kinds of op
    _spec("softmax_by_hand", lambda lib, x: (x - x.amax(1, keepdim=True)).exp()
          / (x - x.amax(1, keepdim=True)).exp().sum(1, keepdim=True),
          lambda x: np.exp(x - x.max(1, keepdims=True)) / np.exp(x - x.max(1, keepdims=True)).sum(1, keepdims=True),
          (3, 4), domains=("spread",), analytic=False),
    _spec("batchnorm_by_hand", lambda lib, x: (x - x.mean(0)) / (x.var(0, correction=0) + 1e-5).sqrt(),
          lambda x: (x - x.mean(0)) / np.sqrt(x.var(0) + 1e-5), (6, 3)),
    _spec("mlp_layer", lambda lib, x, w, b: (x @ w.T + b).tanh(),
          lambda x, w, b: np.tanh(x @ w.T + b), (5, 4), (3, 4), (3,)),
]

SPECS_BY_NAME = {s.name: s for s in SPECS}

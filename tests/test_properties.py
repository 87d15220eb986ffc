"""Property tests: random shapes and broadcasting patterns, gradients against finite differences."""

import numpy as np
from hypothesis import given, settings, strategies as st
from hypothesis.extra.numpy import array_shapes, mutually_broadcastable_shapes

import minibn as mb
from minibn.gradcheck import gradcheck

from .conftest import leaf

SETTINGS = settings(max_examples=100, deadline=None)

BINARY = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / (b * b + 1),
    "pow": lambda a, b: (a * a + 1) ** b,
    "where": lambda a, b: mb.where(a.detach() > 0, a * 2, b),
}


def _arrays(seed, *shapes):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s) for s in shapes]


@SETTINGS
@given(shapes=mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=4, max_side=3),
       op=st.sampled_from(sorted(BINARY)), seed=st.integers(0, 2**16))
def test_broadcasting_binary_ops(shapes, op, seed):
    a, b = _arrays(seed, *shapes.input_shapes)
    x, y = leaf(a), leaf(b)
    out = BINARY[op](x, y)
    assert out.shape == shapes.result_shape
    method = "richardson" if op == "where" else "complex"
    assert gradcheck(BINARY[op], [x, y], method=method)


@SETTINGS
@given(shape=array_shapes(min_dims=1, max_dims=4, max_side=4), data=st.data(),
       op=st.sampled_from(["sum", "mean", "var"]), keepdim=st.booleans(), seed=st.integers(0, 2**16))
def test_reductions_over_random_axes(shape, data, op, keepdim, seed):
    ndim = len(shape)
    dims = data.draw(st.lists(st.integers(-ndim, ndim - 1), min_size=1, max_size=ndim,
                              unique_by=lambda d: d % ndim))
    count = int(np.prod([shape[d] for d in dims]))
    if op == "var" and count < 2:
        return
    (a,) = _arrays(seed, shape)
    x = leaf(a)
    out = getattr(x, op)(tuple(dims), keepdim=keepdim)
    expected = {"sum": np.sum, "mean": np.mean, "var": lambda v, **k: np.var(v, ddof=1, **k)}[op](
        a, axis=tuple(d % ndim for d in dims), keepdims=keepdim)
    np.testing.assert_allclose(out.detach().numpy(), expected, rtol=1e-12, atol=1e-12)
    assert gradcheck(lambda t: getattr(t, op)(tuple(dims), keepdim=keepdim), [x], method="complex")


@SETTINGS
@given(n=st.integers(1, 5), idx=st.lists(st.integers(0, 4), min_size=1, max_size=8), seed=st.integers(0, 2**16))
def test_integer_indexing_with_repeats(n, idx, seed):
    idx = [i % n for i in idx]
    (a,) = _arrays(seed, (n, 3))
    x = leaf(a)
    assert gradcheck(lambda t: t[idx] * t[idx], [x], method="complex")
    (g,) = mb.grad(x[idx].sum(), x)
    np.testing.assert_array_equal(g.numpy()[:, 0], np.bincount(idx, minlength=n))


@SETTINGS
@given(shapes=mutually_broadcastable_shapes(num_shapes=2, min_dims=2, max_dims=4, max_side=3,
                                            base_shape=()), k=st.integers(1, 3), seed=st.integers(0, 2**16))
def test_batched_matmul_with_broadcast_batches(shapes, k, seed):
    sa, sb = shapes.input_shapes
    a_shape = sa[:-1] + (k,)
    b_shape = sb[:-2] + (k,) + sb[-1:]
    a, b = _arrays(seed, a_shape, b_shape)
    x, y = leaf(a), leaf(b)
    np.testing.assert_allclose((x @ y).detach().numpy(), a @ b, rtol=1e-12, atol=1e-12)
    assert gradcheck(lambda p, q: p @ q, [x, y], method="complex")

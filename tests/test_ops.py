"""Forward, backward and double backward of every op in the spec table, in float64.

Gradients are compared with finite differences independent of minibn's
backward: complex-step (exact to rounding) where the op is complex-analytic,
Richardson-extrapolated central differences elsewhere. Upstream gradients
are random normal, never all ones.
"""

import numpy as np
import pytest

import minibn as mb
from minibn.gradcheck import compare_gradients, gradcheck, gradgradcheck, vjp_fn

from .conftest import leaf
from .op_specs import SPECS


def _method(spec):
    return "complex" if spec.analytic else "richardson"


def _call(spec, arrays, requires_grad=True):
    xs = [leaf(a, requires_grad) for a in arrays]
    return xs, spec.fn(mb, *xs)


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_forward_matches_numpy(spec, dtype, rng):
    arrays = spec.inputs(rng, dtype)
    _, out = _call(spec, arrays, requires_grad=False)
    expected = spec.ref(*arrays)
    assert out.dtype == np.dtype(dtype), "an op changed the dtype"
    tol = 1e-13 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(out.numpy(), expected, rtol=tol, atol=tol)


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_backward(spec, rng):
    xs = [leaf(a) for a in spec.inputs(rng)]
    assert gradcheck(lambda *t: spec.fn(mb, *t), xs, method=_method(spec))


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_double_backward(spec, rng):
    xs = [leaf(a) for a in spec.inputs(rng)]
    assert gradgradcheck(lambda *t: spec.fn(mb, *t), xs, method=_method(spec))


@pytest.mark.parametrize("spec", [s for s in SPECS if s.analytic], ids=lambda s: s.name)
def test_triple_backward_complex_step(spec, rng):
    xs = [leaf(a) for a in spec.inputs(rng)]
    second, inputs = vjp_fn(lambda *t: spec.fn(mb, *t), xs)
    assert gradgradcheck(second, inputs, method="complex")


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_float32_gradients_stay_float32(spec, rng):
    arrays = spec.inputs(rng, np.float32)
    xs, out = _call(spec, arrays)
    upstream = mb.tensor(rng.standard_normal(out.shape).astype(np.float32))
    out.backward(upstream)
    xs64, out64 = _call(spec, [a.astype(np.float64) for a in arrays])
    out64.backward(upstream.double())
    for x, x64 in zip(xs, xs64):
        assert x.grad.dtype == np.float32
        np.testing.assert_allclose(x.grad.numpy(), x64.grad.numpy(), rtol=2e-4, atol=2e-5)


def test_complex_step_is_exact_where_analytic(rng):
    """The checker itself: complex-step residuals are at rounding level, far below Richardson's."""
    spec = next(s for s in SPECS if s.name == "mlp_layer")
    xs = [leaf(a) for a in spec.inputs(rng)]
    complex_err = max(r.max_abs_error for r in compare_gradients(lambda *t: spec.fn(mb, *t), xs, method="complex"))
    central_err = max(r.max_abs_error for r in compare_gradients(lambda *t: spec.fn(mb, *t), xs, method="central"))
    assert complex_err < 1e-14
    assert complex_err < central_err

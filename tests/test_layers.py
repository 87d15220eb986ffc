"""Every layer of tests/layer_specs.py: forward against its NumPy reference (float64 and float32),
gradients to third order against finite differences (random upstream gradients), the PyTorch
cross-check, each CPU kernel set, and the CuPy stand-in."""

import numpy as np
import pytest

import minibn as mb
from minibn import kernels
from minibn.gradcheck import gradcheck, gradgradcheck, vjp_fn

from .conftest import leaf, requires_torch, torch
from .layer_specs import LAYERS
from .test_backends import assert_devices_agree, gpu  # noqa: F401  (gpu: the stand-in fixture)

IDS = {"ids": lambda s: s.name}


@pytest.fixture(params=["numpy", "numba"])
def kernel_set(request, monkeypatch):
    if request.param == "numba" and not kernels.numba_available():
        pytest.skip("numba is not installed")
    monkeypatch.setattr(kernels, "_choice", request.param)
    return request.param


def _method(spec):
    return "complex" if spec.analytic else "richardson"


@pytest.mark.parametrize("spec", LAYERS, **IDS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_forward_matches_the_reference(spec, dtype, kernel_set, rng):
    arrays = spec.inputs(rng, dtype)
    out = spec.fn(mb, *[mb.tensor(a) for a in arrays])
    assert out.dtype == np.dtype(dtype)
    tol = 1e-12 if dtype == np.float64 else 2e-5
    np.testing.assert_allclose(out.numpy(), spec.ref(*[a.astype(np.float64) for a in arrays]), rtol=tol, atol=tol)


@pytest.mark.parametrize("spec", LAYERS, **IDS)
def test_backward(spec, kernel_set, rng):
    xs = [leaf(a) for a in spec.inputs(rng)]
    assert gradcheck(lambda *t: spec.fn(mb, *t), xs, method=_method(spec))


@pytest.mark.parametrize("spec", LAYERS, **IDS)
def test_double_backward(spec, rng):
    xs = [leaf(a) for a in spec.inputs(rng)]
    assert gradgradcheck(lambda *t: spec.fn(mb, *t), xs, method=_method(spec))


@pytest.mark.parametrize("spec", [s for s in LAYERS if s.analytic], **IDS)
def test_triple_backward_complex_step(spec, rng):
    xs = [leaf(a) for a in spec.inputs(rng)]
    second, inputs = vjp_fn(lambda *t: spec.fn(mb, *t), xs)
    assert gradgradcheck(second, inputs, method="complex")


@requires_torch
@pytest.mark.parametrize("spec", [s for s in LAYERS if s.torch], **IDS)
def test_matches_torch(spec, rng):
    arrays = spec.inputs(rng)
    ours = [mb.tensor(a, requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    a, b = spec.fn(mb, *ours), spec.fn(torch, *theirs)
    np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-12, atol=1e-12)
    g = rng.standard_normal(tuple(b.shape))
    a.backward(mb.tensor(g))
    b.backward(torch.tensor(g))
    for x, y in zip(ours, theirs):
        np.testing.assert_allclose(x.grad.numpy(), y.grad.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("spec", LAYERS, **IDS)
def test_on_the_cupy_path(spec, gpu, rng):  # noqa: F811
    assert_devices_agree(lambda *t: spec.fn(mb, *t), spec.inputs(rng), rng)

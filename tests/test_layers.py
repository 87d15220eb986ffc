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


@pytest.mark.parametrize("spec", LAYERS, **IDS)
def test_triple_backward(spec, rng):
    xs = [leaf(a) for a in spec.inputs(rng)]
    second, inputs = vjp_fn(lambda *t: spec.fn(mb, *t), xs)
    tolerance = {} if spec.analytic else {"atol": 1e-8, "rtol": 1e-7}  # Richardson's third differences
    assert gradgradcheck(second, inputs, method=_method(spec), **tolerance)


@requires_torch
@pytest.mark.parametrize("spec", [s for s in LAYERS if s.torch], **IDS)
def test_matches_torch_to_second_order(spec, rng):
    """Values, first derivatives for a random upstream u, and second derivatives along random v."""
    arrays = spec.inputs(rng)
    ours = [mb.tensor(a, requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    a, b = spec.fn(mb, *ours), spec.fn(torch, *theirs)
    np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-12, atol=1e-12)
    u = rng.standard_normal(tuple(b.shape))
    first = mb.grad(a, ours, mb.tensor(u), create_graph=True)
    first_torch = torch.autograd.grad(b, theirs, torch.tensor(u), create_graph=True)
    vs = [rng.standard_normal(x.shape) for x in arrays]
    second = mb.grad(sum((g * mb.tensor(v)).sum() for g, v in zip(first, vs)), ours, allow_unused=True)
    second_torch = torch.autograd.grad(sum((g * torch.tensor(v)).sum() for g, v in zip(first_torch, vs)), theirs,
                                       allow_unused=True)
    for ours_, theirs_ in ((first, first_torch), (second, second_torch)):
        for x, y, a in zip(ours_, theirs_, arrays):  # None: the input does not reach this order
            want = np.zeros(a.shape) if y is None else y.detach().numpy()
            got = np.zeros(a.shape) if x is None else x.detach().numpy()
            np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12 * max(1.0, np.abs(want).max()))


@pytest.mark.parametrize("spec", LAYERS, **IDS)
def test_on_the_cupy_path(spec, gpu, rng):  # noqa: F811
    assert_devices_agree(lambda *t: spec.fn(mb, *t), spec.inputs(rng), rng)

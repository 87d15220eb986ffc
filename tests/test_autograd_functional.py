"""minibn.autograd.functional against PyTorch's torch.autograd.functional and finite differences."""

import numpy as np
import pytest

import minibn as mb
import minibn.autograd.functional as AF

from .conftest import requires_torch, torch


def _vector_fn(x, w):
    return ((x @ w).tanh() * x.sum()).sum(1)


def _scalar_fn(x, w):
    return ((x @ w).tanh() ** 2).sum() * x.mean()


def _close(ours, theirs) -> int:
    """Compare nested results of minibn and PyTorch; returns the number of tensors compared."""
    if isinstance(theirs, (tuple, list)):
        assert isinstance(ours, tuple) and len(ours) == len(theirs)
        return sum(_close(a, b) for a, b in zip(ours, theirs))
    assert isinstance(ours, mb.Tensor) and ours.shape == tuple(theirs.shape)
    np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol=1e-12, atol=1e-12)
    return 1


@pytest.fixture
def points(rng):
    x, w = rng.standard_normal((3, 4)), rng.standard_normal((4, 2))
    u = rng.standard_normal((3, 4)), rng.standard_normal((4, 2))
    return x, w, u, rng.standard_normal(3)


def _libs(x, w, u, v):
    return ((mb.tensor(x), mb.tensor(w)), tuple(mb.tensor(a) for a in u), mb.tensor(v), AF), \
           ((torch.tensor(x), torch.tensor(w)), tuple(torch.tensor(a) for a in u), torch.tensor(v),
            torch.autograd.functional)


CASES = {
    "jacobian": lambda X, U, v, F: F.jacobian(_vector_fn, X),
    "jacobian_one_input": lambda X, U, v, F: F.jacobian(lambda x: _vector_fn(x, X[1]), X[0]),
    "jacobian_two_outputs": lambda X, U, v, F: F.jacobian(lambda x: (x.exp(), x.sum()), X[0]),
    "jacobian_unused_input": lambda X, U, v, F: F.jacobian(lambda x, w: x.exp(), X),
    "hessian": lambda X, U, v, F: F.hessian(_scalar_fn, X),
    "hessian_one_input": lambda X, U, v, F: F.hessian(lambda x: _scalar_fn(x, X[1]), X[0]),
    "vjp": lambda X, U, v, F: F.vjp(_vector_fn, X, v),
    "jvp": lambda X, U, v, F: F.jvp(_vector_fn, X, U),
    "vhp": lambda X, U, v, F: F.vhp(_scalar_fn, X, U),
    "hvp": lambda X, U, v, F: F.hvp(_scalar_fn, X, U),
    "vjp_default_v": lambda X, U, v, F: F.vjp(_scalar_fn, X),
}


def _count(result) -> int:
    return sum(_count(r) for r in result) if isinstance(result, (tuple, list)) else 1


@requires_torch
@pytest.mark.parametrize("case", sorted(CASES))
def test_matches_torch_autograd_functional(case, points):
    ours, theirs = _libs(*points)
    result = CASES[case](*theirs)
    assert _close(CASES[case](*ours), result) == _count(result) >= 1


def test_jacobian_and_hessian_equal_central_differences(rng):
    x0 = rng.standard_normal(5)
    f = lambda x: (x.sin() * x.sum()).cumsum(0)  # noqa: E731
    jac = AF.jacobian(f, mb.tensor(x0)).numpy()
    h = 1e-6
    numeric = np.stack([(f(mb.tensor(x0 + h * e)).numpy() - f(mb.tensor(x0 - h * e)).numpy()) / (2 * h)
                        for e in np.eye(5)], axis=1)
    np.testing.assert_allclose(jac, numeric, rtol=1e-7, atol=1e-8)
    g = lambda x: (x.sin() * x.sum()).sum()  # noqa: E731
    hess = AF.hessian(g, mb.tensor(x0)).numpy()
    np.testing.assert_allclose(hess, hess.T, rtol=1e-13, atol=1e-14)
    grad = lambda x: AF.vjp(g, mb.tensor(x))[1].numpy()  # noqa: E731
    numeric = np.stack([(grad(x0 + h * e) - grad(x0 - h * e)) / (2 * h) for e in np.eye(5)], axis=1)
    np.testing.assert_allclose(hess, numeric, rtol=1e-6, atol=1e-7)


def test_create_graph_makes_the_result_differentiable_in_the_original_inputs(rng):
    x = mb.tensor(rng.standard_normal(4), requires_grad=True)
    h = AF.hessian(lambda a: (a ** 3).sum(), x, create_graph=True)  # diag(6 a)
    h.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), np.full(4, 6.0))
    out, hv = AF.hvp(lambda a: (a ** 3).sum(), mb.tensor(rng.standard_normal(4)), mb.ones(4, dtype=mb.float64))
    assert not out.requires_grad and not hv.requires_grad


def test_refusals_name_the_problem():
    x = mb.randn(3, dtype=mb.float64)
    with pytest.raises(RuntimeError, match="does not depend on input 1"):
        AF.jacobian(lambda a, b: a.exp(), (x, x), strict=True)
    with pytest.raises(RuntimeError, match="hessian: the function must return a Tensor with one element"):
        AF.hessian(lambda a: a * 2, x)
    with pytest.raises(ValueError, match="v can be omitted only"):
        AF.vjp(lambda a: a * 2, x)
    with pytest.raises(ValueError, match=r"v has shapes \[\(2,\)\], expected \[\(3,\)\]"):
        AF.vjp(lambda a: a * 2, x, mb.ones(2, dtype=mb.float64))
    with pytest.raises(TypeError, match="must return a Tensor or a tuple of Tensors"):
        AF.jacobian(lambda a: 3.0, x)
    with pytest.raises(TypeError, match="int64; derivatives need floating point"):
        AF.jacobian(lambda a: a, mb.tensor([1, 2]))


@pytest.mark.parametrize("name", ["vjp", "jacobian"])
def test_create_graph_keeps_each_input_that_requires_grad_even_beside_one_that_does_not(name):
    x = mb.tensor([1.0, 2.0], dtype=mb.float64, requires_grad=True)
    c = mb.tensor([3.0, -1.0], dtype=mb.float64)  # a constant beside it
    f = lambda a, b: (a * a * b).sum()  # noqa: E731
    if name == "vjp":
        result = AF.vjp(f, (x, c), create_graph=True)[1][0]
    else:
        result = AF.jacobian(f, (x, c), create_graph=True)[0]
    (second,) = mb.grad(result.sum(), [x])
    np.testing.assert_allclose(second.numpy(), [6.0, -2.0])  # d/dx of 2 x c

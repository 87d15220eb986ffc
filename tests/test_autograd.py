"""The backward walk: accumulation, freeing, grad(), higher order, hooks, anomaly and version checks."""

import gc
import weakref

import numpy as np
import pytest

import minibn as mb
from minibn import devices

from .conftest import leaf


def test_chain_of_100000_ops_backpropagates_without_recursion():
    x = mb.tensor([1.0, 2.0], dtype=mb.float64, requires_grad=True)
    y = x
    for _ in range(100_000):
        y = y * 1.00001
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [1.00001 ** 100_000] * 2, rtol=1e-9)
    del y  # tearing down a 100 000-deep graph must not overflow the stack either
    gc.collect()


def test_leaf_gradients_accumulate_across_backward_calls(rng):
    x = leaf(rng.standard_normal(3))
    for _ in range(2):
        (x * x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 4 * x.detach().numpy())


def test_shared_input_gradients_add_up(rng):
    a = rng.standard_normal(4)
    x = leaf(a)
    y = x * x + x.exp() * x
    y.backward(mb.ones(4, dtype=mb.float64))
    np.testing.assert_allclose(x.grad.numpy(), 2 * a + np.exp(a) * (a + 1), rtol=1e-14)


def test_non_scalar_backward_needs_a_gradient():
    x = leaf(np.ones((2, 3)))
    with pytest.raises(RuntimeError, match=r"scalar outputs.*shape \(2, 3\)"):
        (x * 2).backward()


def test_gradient_of_wrong_shape_is_refused():
    x = leaf(np.ones((2, 3)))
    with pytest.raises(RuntimeError, match=r"shape \(3,\) but the output has shape \(2, 3\)"):
        (x * 2).backward(mb.ones(3))


def test_second_backward_through_freed_graph_is_an_error():
    x = leaf(np.ones(3))
    y = (x * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="Mul: trying to backward through the graph a second time"):
        y.backward()


def test_retain_graph_allows_a_second_backward():
    x = leaf(np.arange(3.0))
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), 4 * np.arange(3.0))


def test_saved_arrays_are_released_after_backward():
    x = leaf(np.ones(1000))
    h = x.exp()  # Exp saves its output for backward
    saved = weakref.ref(h._data)
    loss = h.sum()
    del h
    gc.collect()
    assert saved() is not None, "the graph should keep the saved output alive until backward"
    loss.backward()
    gc.collect()
    assert saved() is None, "backward should free what the op saved"


def test_grad_returns_tuple_and_leaves_dot_grad_alone(rng):
    a, b = rng.standard_normal(3), rng.standard_normal(3)
    x, w = leaf(a), leaf(b)
    gx, gw = mb.grad((x * w).sum(), [x, w])
    np.testing.assert_allclose(gx.numpy(), b)
    np.testing.assert_allclose(gw.numpy(), a)
    assert x.grad is None and w.grad is None


def test_grad_with_respect_to_an_intermediate(rng):
    x = leaf(rng.standard_normal(3))
    h = x * 3
    loss = (h * h).sum()
    (gh,) = mb.grad(loss, h)
    np.testing.assert_allclose(gh.numpy(), 2 * h.detach().numpy())


def test_grad_with_grad_outputs_is_a_vector_jacobian_product(rng):
    a, u = rng.standard_normal((2, 3)), rng.standard_normal((2, 3))
    x = leaf(a)
    (g,) = mb.grad(x.exp(), x, grad_outputs=mb.tensor(u))
    np.testing.assert_allclose(g.numpy(), u * np.exp(a))


def test_grad_unused_input():
    x, z = leaf(np.ones(2)), leaf(np.ones(2))
    y = (x * 2).sum()
    with pytest.raises(RuntimeError, match="input 1 .* was not used"):
        mb.grad(y, [x, z], retain_graph=True)
    gx, gz = mb.grad(y, [x, z], allow_unused=True)
    assert gz is None
    np.testing.assert_allclose(gx.numpy(), [2.0, 2.0])


def test_grad_of_input_that_does_not_require_grad_is_an_error():
    x, c = leaf(np.ones(2)), leaf(np.ones(2), requires_grad=False)
    with pytest.raises(RuntimeError, match="input 1 .* does not require grad"):
        mb.grad((x * c).sum(), [x, c])


def test_hessian_vector_product_is_exact(rng):
    """f(x) = x^T A x / 2 + sum x^3 / 3  has  H v = (A + A^T) v / 2 + 2 x * v."""
    n = 6
    A, a, v = rng.standard_normal((n, n)), rng.standard_normal(n), rng.standard_normal(n)
    x = leaf(a)
    f = (x @ (mb.tensor(A) @ x)) / 2 + (x ** 3).sum() / 3
    (g,) = mb.grad(f, x, create_graph=True)
    np.testing.assert_allclose(g.detach().numpy(), (A + A.T) @ a / 2 + a ** 2, rtol=1e-13)
    (hv,) = mb.grad((g * mb.tensor(v)).sum(), x)
    np.testing.assert_allclose(hv.numpy(), (A + A.T) @ v / 2 + 2 * a * v, rtol=1e-13)


def test_third_derivative_of_tanh_is_exact(rng):
    a = rng.uniform(-2, 2, 5)
    x = leaf(a)
    (d1,) = mb.grad(x.tanh().sum(), x, create_graph=True)
    (d2,) = mb.grad(d1.sum(), x, create_graph=True)
    (d3,) = mb.grad(d2.sum(), x)
    t = np.tanh(a)
    np.testing.assert_allclose(d1.detach().numpy(), 1 - t ** 2, rtol=1e-14)
    np.testing.assert_allclose(d2.detach().numpy(), -2 * t * (1 - t ** 2), rtol=1e-13)
    np.testing.assert_allclose(d3.numpy(), -2 * (1 - t ** 2) * (1 - 3 * t ** 2), rtol=1e-12)


def test_backward_create_graph_makes_dot_grad_differentiable(rng):
    x = leaf(rng.standard_normal(3))
    (x ** 3).sum().backward(create_graph=True)
    assert x.grad.requires_grad
    (h,) = mb.grad(x.grad.sum(), x)
    np.testing.assert_allclose(h.numpy(), 6 * x.detach().numpy())


def test_no_grad_context_and_decorator():
    x = leaf(np.ones(2))
    with mb.no_grad():
        assert not (x * 2).requires_grad
        with mb.enable_grad():
            assert (x * 2).requires_grad
    assert (x * 2).requires_grad

    @mb.no_grad()
    def f(t):
        return t * 2

    assert not f(x).requires_grad
    assert mb.is_grad_enabled()
    with mb.set_grad_enabled(False):
        assert not (x * 2).requires_grad
    assert mb.is_grad_enabled()

    @mb.set_grad_enabled(False)
    def g(t):
        return t * 2

    assert mb.is_grad_enabled(), "decorating must not switch the mode outside the function"
    assert not g(x).requires_grad


def test_retain_grad_keeps_and_accumulates_a_non_leaf_gradient():
    x = leaf(np.ones(3))
    h = x * 2
    h.retain_grad()
    other = x * 3
    loss = (h * h).sum() + other.sum()
    loss.backward(retain_graph=True)
    np.testing.assert_allclose(h.grad.numpy(), 4 * np.ones(3))
    assert other.grad is None
    loss.backward()
    np.testing.assert_allclose(h.grad.numpy(), 8 * np.ones(3))


def test_hooks_see_and_can_replace_gradients():
    x = leaf(np.ones(3))
    h = x * 2
    seen = []
    handle = h.register_hook(lambda g: seen.append(g.numpy().copy()))
    h.register_hook(lambda g: g * 10)
    (h * mb.tensor([1.0, 2.0, 3.0], dtype=mb.float64)).sum().backward()
    np.testing.assert_allclose(seen[0], [1.0, 2.0, 3.0])
    np.testing.assert_allclose(x.grad.numpy(), [20.0, 40.0, 60.0])
    handle.remove()
    x.grad = None
    h2 = x * 2
    h2.register_hook(lambda g: g * 0)
    x.register_hook(lambda g: g + 1)  # a leaf hook runs before accumulation
    h2.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [1.0, 1.0, 1.0])
    assert len(seen) == 1


def test_leaf_gradients_never_share_memory():
    x, z = leaf(np.ones(3)), leaf(np.ones(3))
    u = mb.tensor(np.arange(3.0))
    (x + z).backward(u)  # Add hands the same gradient to both inputs
    with mb.no_grad():
        x.grad.mul_(5)
    np.testing.assert_allclose(z.grad.numpy(), np.arange(3.0))
    np.testing.assert_allclose(u.numpy(), np.arange(3.0))


def test_in_place_change_of_a_saved_input_is_caught_at_backward():
    a = mb.tensor([1.0, 2.0])
    w = mb.tensor([3.0, 4.0], requires_grad=True)
    y = (a * w).sum()
    a.add_(1)
    with pytest.raises(RuntimeError, match=r"Mul: its input 0 .* was modified in place .*version 0, now 1"):
        y.backward()


def test_in_place_change_of_a_saved_output_is_caught_at_backward():
    x = leaf(np.ones(2))
    y = x.exp()
    with mb.no_grad():
        y.mul_(2)
    with pytest.raises(RuntimeError, match="Exp: its output .* modified in place"):
        y.sum().backward()


def test_in_place_change_through_a_view_is_caught():
    x = leaf(np.ones(4))
    y = x.exp()
    view = y[1:3]
    loss = y.sum()
    with mb.no_grad():
        view.zero_()
    with pytest.raises(RuntimeError, match="Exp: its output .* modified in place"):
        loss.backward()


def test_in_place_op_on_a_tensor_that_requires_grad_is_refused():
    x = leaf(np.ones(2))
    with pytest.raises(RuntimeError, match=r"add_: in-place ops are not recorded"):
        x.add_(1)
    with pytest.raises(RuntimeError, match=r"__setitem__: in-place"):
        x[0] = 3.0
    with mb.no_grad():
        x.add_(1)  # what an optimizer does
    np.testing.assert_allclose(x.detach().numpy(), [2.0, 2.0])


def test_detect_anomaly_names_the_op_and_place_of_a_forward_nan():
    x = mb.tensor([-1.0, 1.0], requires_grad=True)
    with np.errstate(invalid="ignore"), mb.detect_anomaly():
        with pytest.raises(RuntimeError, match=r"(?s)Log produced NaN or inf in forward.*test_autograd.py"):
            x.log()
    with np.errstate(invalid="ignore"):
        assert np.isnan(x.log().detach().numpy()[0])  # without the block: no check


def test_detect_anomaly_names_the_op_of_a_backward_inf():
    x = mb.tensor([0.0, 1.0], requires_grad=True)
    with np.errstate(divide="ignore"), mb.detect_anomaly():
        y = x.sqrt().sum()
        with pytest.raises(RuntimeError, match=r"(?s)Sqrt.backward produced NaN or inf.*test_autograd.py"):
            y.backward()


def test_complex_input_to_a_non_analytic_op_is_refused():
    z = mb.tensor(np.array([1.0 + 1e-20j]))
    for op in (lambda t: t.relu(), lambda t: t.abs(), lambda t: t.amax(), lambda t: mb.maximum(t, t)):
        with pytest.raises(TypeError, match="not complex-analytic.*complex-step"):
            op(z)
    with pytest.raises(TypeError, match="no order"):
        z > 0


def test_shape_mismatch_names_the_op_and_both_shapes():
    with pytest.raises(ValueError, match=r"Add: operands of shapes \(3,\), \(4,\)"):
        mb.ones(3) + mb.ones(4)
    with pytest.raises(ValueError, match=r"MatMul: operands of shapes \(2, 3\), \(4, 5\)"):
        mb.ones(2, 3) @ mb.ones(4, 5)
    with pytest.raises(ValueError, match=r"Reshape: operands of shapes \(2, 3\): cannot reshape .* into shape \(4, ?2\)"):
        mb.ones(2, 3).reshape(4, 2)


class _OnOtherDevice(np.ndarray):
    """A NumPy array that claims to live on another device, to test the dispatch's guard."""


def test_mixing_devices_in_one_op_is_an_error_naming_each_operand():
    devices.register_array_type(_OnOtherDevice, np, lambda a: devices.Device("cuda:0"))
    try:
        a = mb.ones(2, 3)
        b = mb.Tensor(np.ones((1, 3), dtype=np.float32).view(_OnOtherDevice))
        assert b.device == "cuda:0"
        with pytest.raises(TypeError, match=r"Mul: operands are on different devices \(operand 0: "
                                            r"device=cpu, dtype=float32, shape=\(2, 3\); operand 1: "
                                            r"device=cuda:0, dtype=float32, shape=\(1, 3\)\)"):
            mb.mul(a, b)
    finally:
        devices.unregister_array_type(_OnOtherDevice)


def test_asking_for_cuda_without_cupy_or_gpu_is_a_clear_error():
    try:
        import cupy  # noqa: F401

        pytest.skip("CuPy is installed; the error path for a missing CuPy cannot be exercised")
    except ImportError:
        pass
    with pytest.raises(RuntimeError, match=r"needs CuPy.*'cuda12' or 'cuda13' extra"):
        mb.zeros(2, device="cuda")
    with pytest.raises(RuntimeError, match="needs CuPy"):
        mb.ones(2).to("cuda")


def test_function_subclass_defines_a_new_op():
    class Cube(mb.Function):
        save_inputs = True

        def forward(self, x):
            return x ** 3

        def backward(self, g):
            (x,) = self.inputs
            return g * 3 * x * x

    x = leaf(np.array([1.0, 2.0]))
    (g,) = mb.grad(Cube.apply(x).sum(), x, create_graph=True)
    (h,) = mb.grad(g.sum(), x)
    np.testing.assert_allclose(g.detach().numpy(), [3.0, 12.0])
    np.testing.assert_allclose(h.numpy(), [6.0, 12.0])


def test_a_0d_leafs_accumulated_gradient_is_an_array_that_zero_clears():
    a = mb.tensor(2.0, dtype=mb.float64, requires_grad=True)
    (a * 3).backward()
    (a * a).backward()  # accumulates: 3 + 2a
    assert isinstance(a.grad._data, np.ndarray) and a.grad.item() == 7.0
    a.grad.zero_()  # on a NumPy scalar this silently did nothing, and the next step added to a stale gradient
    (a * 5).backward()
    assert a.grad.item() == 5.0

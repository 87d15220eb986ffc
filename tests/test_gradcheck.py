"""The finite-difference checker catches wrong gradients, and says where."""

import numpy as np
import pytest

import minibn as mb
from minibn.gradcheck import GradcheckError, compare_gradients, gradcheck, gradgradcheck, vjp_fn

from .conftest import leaf


class _BadExp(mb.Function):
    """exp with a wrong backward in one entry."""

    save_output = True

    def forward(self, x):
        return self.xp.exp(x)

    def backward(self, g):
        wrong = np.ones(g.shape)
        wrong.flat[3] = 1.001
        return g * self.output * mb.tensor(wrong)


class _BatchNormMissingTerm(mb.Function):
    """Batch norm (eps = 0) whose backward drops the  - xhat * mean(dy * xhat)  term.

    With an all-ones upstream gradient that term is zero (mean(xhat) = 0), so
    the bug is invisible; any random upstream gradient exposes it.
    """

    save_inputs = True

    def forward(self, x):
        return (x - x.mean(0)) / x.std(0)

    def backward(self, g):
        (x,) = self.inputs
        sigma = x.var(0, correction=0).sqrt()
        return (g - g.mean(0)) / sigma


@pytest.mark.parametrize("method", ["central", "richardson", "complex"])
@pytest.mark.parametrize("fast", [False, True])
def test_a_wrong_gradient_is_caught(method, fast, rng):
    x = leaf(rng.standard_normal((2, 3)))
    assert gradcheck(lambda t: t.exp(), [x], method=method, fast=fast)
    with pytest.raises(GradcheckError, match=r"input 0 \(shape \(2, 3\)\)"):
        gradcheck(lambda t: _BadExp.apply(t), [x], method=method, fast=fast)
    assert gradcheck(lambda t: _BadExp.apply(t), [x], method=method, fast=fast, raise_exception=False) is False


def test_the_failure_names_the_worst_element(rng):
    x = leaf(rng.standard_normal((2, 3)))
    with pytest.raises(GradcheckError, match=r"worst at element \(1, 0\): analytic .* numeric"):
        gradcheck(lambda t: _BadExp.apply(t), [x], method="complex")


def test_all_ones_upstream_gradient_hides_a_batch_norm_bug(rng):
    x = leaf(rng.standard_normal((6, 3)))
    ones = np.ones((6, 3))
    assert gradcheck(lambda t: _BatchNormMissingTerm.apply(t), [x], grad_outputs=ones, method="richardson")
    with pytest.raises(GradcheckError):
        gradcheck(lambda t: _BatchNormMissingTerm.apply(t), [x], method="richardson")


def test_a_wrong_second_derivative_is_caught(rng):
    class SquareWrongSecond(mb.Function):
        """x**2 whose backward is right in value but built from a detached x: d2 becomes 0."""

        save_inputs = True

        def forward(self, x):
            return x * x

        def backward(self, g):
            (x,) = self.inputs
            return g * 2 * x.detach()

    x = leaf(rng.standard_normal(4))
    assert gradcheck(lambda t: SquareWrongSecond.apply(t), [x], method="complex")
    with pytest.raises(GradcheckError):
        gradgradcheck(lambda t: SquareWrongSecond.apply(t), [x], method="complex")
    assert gradgradcheck(lambda t: t * t, [x], method="complex")


def test_third_order_check_through_vjp_fn(rng):
    x = leaf(rng.uniform(0.5, 2, 4))
    second, inputs = vjp_fn(lambda t: (t.log() * t.tanh()).sum(), [x])
    assert len(inputs) == 2  # x and the upstream gradient u
    assert gradgradcheck(second, inputs, method="complex")


def test_residuals_by_method(rng):
    """Complex step reaches rounding level; Richardson beats plain central differences."""
    x = leaf(rng.standard_normal((3, 3)))

    def f(t):
        return (t @ t).tanh().sum(1)

    err = {m: max(r.max_abs_error for r in compare_gradients(f, [x], method=m))
           for m in ("central", "richardson", "complex")}
    assert err["complex"] < 1e-14
    assert err["richardson"] < err["central"]
    assert err["central"] < 1e-7


def test_inputs_are_checked_in_float64(rng):
    x = mb.tensor(rng.standard_normal(3).astype(np.float32), requires_grad=True)
    (report,) = compare_gradients(lambda t: t.exp(), [x], method="complex")
    assert report.analytic.dtype == np.float64 and report.max_abs_error < 1e-14


def test_non_tensor_inputs_pass_through(rng):
    x = leaf(rng.standard_normal((4, 3)))
    idx = [0, 2, 2]
    assert gradcheck(lambda t, i: t[i].exp(), [x, idx], method="complex")


def test_nothing_to_check_is_an_error():
    with pytest.raises(ValueError, match="no input requires grad"):
        gradcheck(lambda t: t * 2, [mb.ones(2)])


def test_unknown_method_is_an_error(rng):
    with pytest.raises(ValueError, match="method must be one of"):
        gradcheck(lambda t: t * 2, [leaf(np.ones(2))], method="forward")


def test_complex_step_through_a_non_analytic_op_says_what_to_do(rng):
    with pytest.raises(TypeError, match="method='richardson'"):
        gradcheck(lambda t: t.relu(), [leaf(np.ones(2))], method="complex")

"""Layer functions beyond their specs (tests/layer_specs.py, which test_layers.py checks to third order):
running statistics, bad input, noise statistics, ties, losses' reductions, and the residual of the checks."""

import math

import numpy as np
import pytest

import minibn as mb
import minibn.functional as F
from minibn.gradcheck import compare_gradients, gradcheck, gradgradcheck

from .conftest import leaf

def _bn_inputs(rng, shape=(6, 3), affine=True):
    x = leaf(rng.standard_normal(shape))
    if not affine:
        return x, None, None
    return x, leaf(1 + 0.3 * rng.standard_normal(shape[1])), leaf(0.3 * rng.standard_normal(shape[1]))


# -- linear ------------------------------------------------------------------------


def test_linear_bad_input():
    with pytest.raises(ValueError, match=r"input has 5 features .* weight expects 4"):
        F.linear(mb.ones(2, 5), mb.ones(3, 4))
    with pytest.raises(TypeError, match="share a dtype"):
        F.linear(mb.ones(2, 4), mb.ones(3, 4, dtype=mb.float64))


# -- batch norm --------------------------------------------------------------------


def test_batch_norm_first_order_kernel_equals_the_differentiable_formula(rng):
    x, w, b = _bn_inputs(rng, (7, 4))
    u = mb.tensor(rng.standard_normal((7, 4)))
    fast = mb.grad(F.batch_norm(x, None, None, w, b, training=True), [x, w, b], u)
    graph = mb.grad(F.batch_norm(x, None, None, w, b, training=True), [x, w, b], u, create_graph=True)
    for a, g in zip(fast, graph):
        np.testing.assert_allclose(a.numpy(), g.detach().numpy(), rtol=1e-13, atol=1e-14)


def test_batch_norm_forward_and_running_statistics(rng):
    a = rng.standard_normal((8, 3)) * 2 + 1
    rm, rv = mb.zeros(3, dtype=mb.float64), mb.ones(3, dtype=mb.float64)
    y = F.batch_norm(mb.tensor(a), rm, rv, training=True, momentum=0.1, eps=1e-5)
    np.testing.assert_allclose(y.numpy(), (a - a.mean(0)) / np.sqrt(a.var(0) + 1e-5), rtol=1e-13)
    np.testing.assert_allclose(rm.numpy(), 0.1 * a.mean(0), rtol=1e-14)
    np.testing.assert_allclose(rv.numpy(), 0.9 + 0.1 * a.var(0, ddof=1), rtol=1e-14)
    z = F.batch_norm(mb.tensor(a), rm, rv, training=False, eps=1e-5)
    np.testing.assert_allclose(z.numpy(), (a - rm.numpy()) / np.sqrt(rv.numpy() + 1e-5), rtol=1e-14)


def test_batch_norm_bad_input():
    with pytest.raises(ValueError, match=r"more than 1 value per channel when training, got input of shape \(1, 3\)"):
        F.batch_norm(mb.ones(1, 3), None, None, training=True)
    with pytest.raises(ValueError, match=r"weight has shape \(4,\) but the input has 3 channels"):
        F.batch_norm(mb.ones(2, 3), None, None, mb.ones(4), training=True)
    with pytest.raises(ValueError, match="needs running_mean and running_var"):
        F.batch_norm(mb.ones(2, 3), None, None)


# -- Lp normalization --------------------------------------------------------------


def test_lp_norm_eval_uses_running_statistics(rng):
    a = rng.standard_normal((6, 3))
    rm, rs = mb.zeros(3, dtype=mb.float64), mb.ones(3, dtype=mb.float64)
    F.lp_norm(mb.tensor(a), 3, rm, rs, training=True, momentum=0.5)
    s = (np.mean(np.abs(a - a.mean(0)) ** 3, 0) + 1e-5) ** (1 / 3)
    np.testing.assert_allclose(rm.numpy(), 0.5 * a.mean(0), rtol=1e-14)
    np.testing.assert_allclose(rs.numpy(), 0.5 + 0.5 * s, rtol=1e-14)
    y = F.lp_norm(mb.tensor(a), 3, rm, rs, training=False)
    np.testing.assert_allclose(y.numpy(), (a - rm.numpy()) / rs.numpy(), rtol=1e-14)


def test_batch_norm_is_the_p2_centered_lp_norm(rng):
    x, w, b = _bn_inputs(rng, (6, 4))
    u = mb.tensor(rng.standard_normal((6, 4)))
    bn = F.batch_norm(x, None, None, w, b, training=True)
    lp = F.lp_norm(x, 2, None, None, w, b, training=True)
    np.testing.assert_allclose(lp.detach().numpy(), bn.detach().numpy(), rtol=1e-13)
    for g_bn, g_lp in zip(mb.grad(bn, [x, w, b], u), mb.grad(lp, [x, w, b], u)):
        np.testing.assert_allclose(g_lp.numpy(), g_bn.numpy(), rtol=1e-12, atol=1e-13)


def test_lp_norm_infinity_ties_share_the_subgradient():
    x = mb.tensor([[2.0], [-2.0], [0.5], [-0.5]], dtype=mb.float64, requires_grad=True)
    y = F.lp_norm(x, math.inf, training=True, eps=0.0)
    (g,) = mb.grad(y, x, mb.tensor([[1.0], [0.0], [0.0], [0.0]], dtype=mb.float64))
    # s = max |x - mu| = 2 at two entries; each gets half of ds/du.  Worked by hand:
    # dx = P(g/s) - P(A ds/du / s^2), A = sum g n = 2, ds/du = (0.5, -0.5, 0, 0).
    n_grad = np.array([1.0, 0, 0, 0]) / 2 - 1 / 8
    s_grad = -(2 / 4) * np.array([0.5, -0.5, 0.0, 0.0])
    np.testing.assert_allclose(g.numpy()[:, 0], n_grad + s_grad, rtol=1e-14)


def test_lp_norm_bad_input():
    with pytest.raises(ValueError, match="p must be >= 1"):
        F.lp_norm(mb.ones(3, 2), 0.5, training=True)
    with pytest.raises(ValueError, match="Hoffer's constants are defined for p = 1, 2 and inf"):
        F.lp_norm(mb.randn(3, 2), 3, training=True, hoffer=True)
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        F.lp_norm(mb.ones(1, 2), 2, training=True)


# -- noise ---------------------------------------------------------------------------


def test_batch_norm_noise_follows_algorithm_1():
    a = mb.zeros(20000, 2, dtype=mb.float64)
    y = F.batch_norm_noise(a + 1, generator=mb.Generator(0)).numpy()
    # with a = 1: y = s + m, per unit: mean sigma_j + mu_j, spread from r_sigma and r_mu
    for j in range(2):
        col = y[:, j]
        assert 0.5 <= col.mean() <= 1.25 + 0.5 + 0.01
        assert abs(col.std() - math.sqrt(0.1 ** 2 + 0.2 ** 2 / 12)) < 0.003
    z = F.batch_norm_noise(a, generator=mb.Generator(0)).numpy()
    width = z.max(0) - z.min(0)  # a = 0 leaves m ~ U(mu_j - r_mu, mu_j + r_mu): width 2 r_mu
    assert np.all((width <= 0.2) & (width > 0.199))
    assert np.all(np.abs(z.mean(0)) <= 0.5 + 0.01)  # mu_j ~ U(-n_mu, n_mu)
    again = F.batch_norm_noise(a, generator=mb.Generator(0)).numpy()
    np.testing.assert_array_equal(z, again)


def test_batch_norm_noise_gradient_is_the_scale(rng):
    x = leaf(rng.standard_normal((4, 3)))
    gen = mb.Generator(5)
    y = F.batch_norm_noise(x, generator=gen)
    (g,) = mb.grad(y.sum(), x)
    s = (y.detach().numpy() - F.batch_norm_noise(mb.zeros(4, 3, dtype=mb.float64), generator=mb.Generator(5)).numpy())
    np.testing.assert_allclose(g.numpy(), s / x.detach().numpy(), rtol=1e-10)


# -- softmax and losses ----------------------------------------------------------------


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_softmax_and_log_softmax(dim, rng):
    x = leaf(rng.standard_normal((4, 5)) * 3)
    a = x.detach().numpy()
    e = np.exp(a - a.max(dim, keepdims=True))
    np.testing.assert_allclose(F.softmax(x, dim).detach().numpy(), e / e.sum(dim, keepdims=True), rtol=1e-14)
    np.testing.assert_allclose(F.log_softmax(x, dim).detach().numpy(), np.log(e / e.sum(dim, keepdims=True)),
                               rtol=1e-13, atol=1e-14)
    for f in (lambda t: F.softmax(t, dim), lambda t: F.log_softmax(t, dim)):
        assert gradcheck(f, [x], method="complex")
        assert gradgradcheck(f, [x], method="complex")


def test_log_softmax_is_stable_for_huge_logits():
    x = mb.tensor([[1000.0, 0.0, -1000.0]], dtype=mb.float64)
    np.testing.assert_allclose(F.log_softmax(x).numpy(), [[0.0, -1000.0, -2000.0]])


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy(reduction, rng):
    x = leaf(rng.standard_normal((5, 4)))
    target = mb.tensor([0, 3, 1, 1, 2])
    a = x.detach().numpy()
    per_sample = -(a[np.arange(5), target.numpy()] - np.log(np.exp(a).sum(1)))
    expected = {"mean": per_sample.mean(), "sum": per_sample.sum(), "none": per_sample}[reduction]
    np.testing.assert_allclose(F.cross_entropy(x, target, reduction=reduction).detach().numpy(), expected, rtol=1e-13)
    assert gradcheck(lambda t: F.cross_entropy(t, target, reduction=reduction), [x], method="complex")
    assert gradgradcheck(lambda t: F.cross_entropy(t, target, reduction=reduction), [x], method="complex")
    probs = mb.tensor(np.eye(4)[target.numpy()])
    np.testing.assert_allclose(F.cross_entropy(x, probs, reduction=reduction).detach().numpy(), expected, rtol=1e-13)


def test_cross_entropy_bad_targets():
    x = mb.zeros(3, 4)
    with pytest.raises(ValueError, match=r"target values must lie in \[0, 4\) or be ignore_index \(-100\), got values from 0 to 4"):
        F.cross_entropy(x, mb.tensor([0, 4, 1]))
    with pytest.raises(ValueError, match=r"target values must lie in \[0, 4\) or be ignore_index \(-100\), got values from -1"):
        F.cross_entropy(x, mb.tensor([0, -1, 1]))
    with pytest.raises(ValueError, match=r"class targets must have shape \(3,\)"):
        F.cross_entropy(x, mb.tensor([0, 1]))
    with pytest.raises(TypeError, match="must be integers"):
        F.cross_entropy(x, mb.tensor([True, False, True]))
    with pytest.raises(ValueError, match="reduction must be one of"):
        F.cross_entropy(x, mb.tensor([0, 1, 2]), reduction="avg")


def test_mse_loss(rng):
    x, t = leaf(rng.standard_normal((3, 2))), mb.tensor(rng.standard_normal((3, 2)))
    np.testing.assert_allclose(F.mse_loss(x, t).detach().numpy(),
                               ((x.detach().numpy() - t.numpy()) ** 2).mean(), rtol=1e-14)
    assert gradcheck(lambda a: F.mse_loss(a, t, reduction="sum"), [x], method="complex")
    with pytest.warns(UserWarning, match="broadcast"):  # PyTorch's rule: broadcast, with a warning
        row = F.mse_loss(x, mb.tensor(np.array([0.5, -1.0])))
    np.testing.assert_allclose(row.detach().numpy(), ((x.detach().numpy() - [0.5, -1.0]) ** 2).mean(), rtol=1e-14)
    with pytest.warns(UserWarning), pytest.raises(ValueError, match="broadcast"):
        F.mse_loss(x, mb.ones(3))


def test_complex_step_residual_of_batch_norm_is_at_rounding_level(rng):
    args = _bn_inputs(rng, (8, 3))
    reports = compare_gradients(lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True), args,
                                method="complex")
    assert max(r.max_abs_error for r in reports) < 1e-14

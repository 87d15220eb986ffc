"""Tensor attributes, conversions, constructors, dtypes and seeding."""

import numpy as np
import pytest

import minibn as mb


def test_dtype_follows_the_data_like_pytorch():
    assert mb.tensor([1.0, 2.0]).dtype == mb.float32
    assert mb.tensor([1, 2]).dtype == mb.int64
    assert mb.tensor([True]).dtype == mb.bool
    assert mb.tensor(np.ones(2)).dtype == mb.float64
    assert mb.tensor(np.ones(2, dtype=np.float32)).dtype == mb.float32
    assert mb.tensor(3.0, dtype=mb.float64).dtype == mb.float64
    mb.set_default_dtype(mb.float64)
    assert mb.tensor([1.0]).dtype == mb.float64
    assert mb.zeros(2).dtype == mb.float64


def test_unsupported_dtype_is_a_clear_error():
    with pytest.raises(TypeError, match="dtype float16 is not supported"):
        mb.tensor(np.zeros(3, dtype=np.float16))
    with pytest.raises(TypeError, match="dtype uint64 is not supported"):
        mb.tensor(np.zeros(3, dtype=np.uint64))
    pixels = mb.tensor(np.array([0, 255], dtype=np.uint8))  # narrower integers widen exactly to int64
    assert pixels.dtype == mb.int64 and pixels.tolist() == [0, 255]
    assert mb.tensor(np.array([-3], dtype=np.int16)).dtype == mb.int64 and mb.tensor(np.int32([1])).dtype == mb.int32
    with pytest.raises(TypeError, match="default dtype must be float32 or float64"):
        mb.set_default_dtype(mb.int64)


def test_python_scalars_never_upcast_float32():
    x = mb.ones(3)
    for y in (x + 1, x * 2.5, 2.5 / x, x ** 2, 1.5 - x, x + np.float64(2.0), x * mb.tensor(2.0, dtype=mb.float64)):
        assert y.dtype == mb.float32


def test_integer_tensors():
    labels = mb.tensor([0, 2, 1])
    assert (labels + 1).dtype == mb.int64
    assert (labels / 2).dtype == mb.float32  # true division, as in PyTorch
    assert (labels * 0.5).dtype == mb.float32
    with pytest.raises(TypeError, match="only floating point"):
        labels.requires_grad = True


def test_attributes_and_conversions():
    x = mb.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    assert x.shape == (2, 2) and x.ndim == 2 and x.numel() == 4 and len(x) == 2
    assert x.device == "cpu" and str(x.device) == "cpu"
    assert x.is_leaf and x.grad is None and x.grad_fn is None
    y = x * 2
    assert not y.is_leaf and y.grad_fn.name == "Mul"
    assert x[1, 0].item() == 3.0
    assert x.tolist() == [[1.0, 2.0], [3.0, 4.0]]
    with pytest.raises(RuntimeError, match=r"requires grad.*detach\(\)"):
        x.numpy()
    with pytest.raises(RuntimeError, match="requires grad"):
        np.asarray(x)
    d = x.detach()
    assert np.asarray(d) is d.numpy()  # shares memory on CPU
    assert np.asarray(d, dtype=np.float64).dtype == np.float64
    with pytest.raises(ValueError, match="one element"):
        x.item()
    assert float(x.sum()) == 10.0


def test_detach_and_data_share_memory_and_version():
    x = mb.tensor([1.0, 2.0], requires_grad=True)
    d = x.detach()
    assert not d.requires_grad
    d[0] = 5.0
    assert x.tolist() == [5.0, 2.0]
    assert x._version[0] == 1


def test_repr():
    assert repr(mb.tensor([1.0, 2.5])) == "tensor([1.0000, 2.5000])"
    assert repr(mb.tensor([1.0, 2.0])) == "tensor([1., 2.])"
    previous = np.get_printoptions()
    try:
        np.set_printoptions(suppress=True, precision=1)  # NumPy's print state does not reach a tensor's repr
        assert repr(mb.tensor(1.13e-05)) == "tensor(1.1300e-05)"
    finally:
        np.set_printoptions(**previous)
    assert repr(mb.tensor([1, 2])) == "tensor([1, 2])"
    assert "dtype=float64, requires_grad=True" in repr(mb.tensor(np.ones(2), requires_grad=True))
    assert "grad_fn=<MulBackward>" in repr(mb.tensor([1.0], requires_grad=True) * 2)


def test_constructors():
    assert mb.zeros(2, 3).tolist() == [[0.0] * 3] * 2
    assert mb.ones((2,)).tolist() == [1.0, 1.0]
    assert mb.full((2,), 7).dtype == mb.int64
    assert mb.full((2,), 7.0).dtype == mb.float32
    assert mb.arange(3).tolist() == [0, 1, 2] and mb.arange(3).dtype == mb.int64
    assert mb.arange(0, 1, 0.5).dtype == mb.float32
    assert mb.eye(2).tolist() == [[1.0, 0.0], [0.0, 1.0]]
    t = mb.ones(2, 3, dtype=mb.float64)
    for like in (mb.zeros_like, mb.ones_like, mb.randn_like, mb.rand_like):
        out = like(t)
        assert out.shape == (2, 3) and out.dtype == mb.float64
    assert mb.full_like(t, 3).tolist() == [[3.0] * 3] * 2
    with pytest.raises(ValueError, match="negative dimension"):
        mb.zeros(-1)
    assert mb.linspace(0, 1, 3).tolist() == [0.0, 0.5, 1.0]
    x = mb.zeros(2, requires_grad=True)
    assert x.requires_grad and x.is_leaf


def test_seeding_is_reproducible():
    mb.manual_seed(7)
    a = mb.randn(3, 4)
    mb.manual_seed(7)
    b = mb.randn(3, 4)
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    g1, g2 = mb.Generator(3), mb.Generator(3)
    np.testing.assert_array_equal(mb.rand(5, generator=g1).numpy(), mb.rand(5, generator=g2).numpy())
    state = g1.get_state()
    first = mb.randn(2, generator=g1).numpy()
    g1.set_state(state)
    np.testing.assert_array_equal(mb.randn(2, generator=g1).numpy(), first)
    assert not np.array_equal(mb.randn(4, generator=mb.Generator(1)).numpy(),
                              mb.randn(4, generator=mb.Generator(2)).numpy())
    r = mb.randint(0, 10, (100,), generator=mb.Generator(0))
    assert r.dtype == mb.int64 and 0 <= r.numpy().min() and r.numpy().max() < 10


def test_random_values_have_the_right_distribution():
    x = mb.randn(100_000, generator=mb.Generator(0), dtype=mb.float64).numpy()
    assert abs(x.mean()) < 0.02 and abs(x.std() - 1) < 0.02
    u = mb.rand(100_000, generator=mb.Generator(0)).numpy()
    assert u.min() >= 0 and u.max() < 1 and abs(u.mean() - 0.5) < 0.01


def test_comparisons_give_bool_tensors_without_gradient():
    x = mb.tensor([1.0, 2.0, 3.0], requires_grad=True)
    m = x > 1.5
    assert m.dtype == mb.bool and not m.requires_grad
    assert m.tolist() == [False, True, True]
    assert (x == 2.0).tolist() == [False, True, False]
    assert ((x > 1.5) & (x < 2.5)).tolist() == [False, True, False]
    assert (~m).tolist() == [True, False, False]
    assert (x == None) is False  # noqa: E711  (falls back to identity, as in PyTorch)


def test_max_with_dim_returns_values_and_indices():
    x = mb.tensor([[1.0, 5.0, 2.0], [7.0, 0.0, 7.0]], requires_grad=True)
    values, indices = x.max(1)
    assert values.tolist() == [5.0, 7.0] and indices.tolist() == [1, 0]
    values.sum().backward()
    assert x.grad.tolist() == [[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]]  # first index at a tie
    x.grad = None
    x.max().backward()
    assert x.grad.tolist() == [[0.0, 0.0, 0.0], [0.5, 0.0, 0.5]]  # ties share evenly
    assert x.argmax().item() == 3 and x.argmin(1).tolist() == [0, 1]


def test_max_and_min_with_dim_keepdim_negative_dim_nan_and_empty_as_pytorch():
    data = np.array([[1.0, 3.0, 3.0], [2.0, np.nan, 0.0], [4.0, -1.0, -1.0]])
    x = mb.tensor(data, requires_grad=True)
    values, indices = x.max(dim=-1, keepdim=True)
    assert values.shape == indices.shape == (3, 1) and indices.reshape(-1).tolist() == [1, 1, 0]
    assert np.isnan(values.detach().numpy()[1, 0])  # NaN is the maximum, at its index, as in PyTorch
    low, where = mb.min(x, 1)
    assert where.tolist() == [0, 1, 1] and low.detach().numpy()[[0, 2]].tolist() == [1.0, -1.0]
    (low * mb.tensor([1.0, 2.0, 3.0], dtype=mb.float64)).sum().backward()
    assert x.grad.tolist() == [[1.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 3.0, 0.0]]
    empty_values, empty_indices = mb.max(mb.zeros(0, 3), 1)  # nothing to reduce: empty results
    assert empty_values.shape == empty_indices.shape == (0,)
    with pytest.raises(ValueError, match=r"max\(dim=0\) of a tensor of shape \(0, 3\): that dimension is empty"):
        mb.max(mb.zeros(0, 3), 0)
    with pytest.raises(TypeError, match="min: complex tensors have no order"):
        mb.min(mb.tensor(np.ones((2, 2), complex)), 0)


def test_maximum_splits_the_gradient_at_ties():
    a = mb.tensor([1.0, 2.0], requires_grad=True)
    b = mb.tensor([1.0, 0.0], requires_grad=True)
    mb.maximum(a, b).sum().backward()
    assert a.grad.tolist() == [0.5, 1.0] and b.grad.tolist() == [0.5, 0.0]


def test_to_casts_differentiably():
    x = mb.tensor([1.0, 2.0], requires_grad=True)
    y = x.to(mb.float64)
    assert y.dtype == mb.float64 and y.requires_grad
    (y * y).sum().backward()
    assert x.grad.dtype == mb.float32 and x.grad.tolist() == [2.0, 4.0]
    assert x.double().dtype == mb.float64 and x.float() is x
    with pytest.raises(TypeError, match="imaginary part"):
        mb.tensor(np.ones(2, dtype=complex)).to(mb.float64)


def test_requires_grad_cannot_be_switched_off_on_a_non_leaf():
    y = mb.ones(2, requires_grad=True) * 2
    with pytest.raises(RuntimeError, match="leaf"):
        y.requires_grad = False


def test_getitem_scatters_repeated_indices():
    x = mb.tensor([1.0, 2.0, 3.0], requires_grad=True)
    x[mb.tensor([0, 0, 2, 0])].sum().backward()
    assert x.grad.tolist() == [3.0, 0.0, 1.0]


def test_setitem_and_fill_under_no_grad_bump_the_version():
    x = mb.zeros(3)
    x[1] = 2.0
    x[mb.tensor([True, False, True])] = 5.0
    assert x.tolist() == [5.0, 2.0, 5.0] and x._version[0] == 2
    x.zero_()
    x += 1
    x *= mb.full((3,), 3.0)
    assert x.tolist() == [3.0, 3.0, 3.0]


def test_device_objects():
    assert mb.device("cuda:1").index == 1 and mb.device("cuda").index == 0
    assert mb.device("cpu") == "cpu" and mb.device("cuda:0") == "cuda"
    with pytest.raises(ValueError, match="unknown device"):
        mb.device("tpu")


def test_logical_not_of_a_0d_tensor_is_a_tensor():
    t = ~mb.tensor(True)
    assert t.shape == () and not bool(t) and t.device == "cpu"

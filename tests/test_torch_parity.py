"""Where minibn gave another answer than PyTorch for the same call: each case as a regression,
checked against PyTorch where it is installed and against the exact value otherwise."""

import numpy as np
import pytest

import minibn as mb

from .conftest import requires_torch, torch
from .test_backends import gpu  # noqa: F401  (the CuPy stand-in fixture)


@pytest.mark.parametrize("kernels", ["numpy", "numba"])
def test_relu_of_a_0d_tensor_keeps_its_shape_and_gradient(kernels):
    mb.kernels.set_kernels(kernels)
    a = mb.tensor(2.0, requires_grad=True)
    y = (a * 3).relu()
    assert y.shape == ()
    y.backward()
    assert a.grad.shape == () and a.grad.item() == 3.0
    b = mb.tensor(-1.0, requires_grad=True)
    b.relu().backward()
    assert b.grad.item() == 0.0


@pytest.mark.parametrize("data", [0.1, [0.1], [[1, 0.1], [0.2, 3]], 1e-310, 2.0 ** 60 + 1.0])
def test_python_floats_are_converted_to_float64_once(data):
    t = mb.tensor(data, dtype=mb.float64)
    np.testing.assert_array_equal(t.numpy(), np.array(data, dtype=np.float64))
    assert t.dtype == np.float64
    assert mb.tensor(data).dtype == np.float32  # the default dtype, as in PyTorch
    np.testing.assert_array_equal(mb.tensor(data, dtype=mb.float32).numpy(), np.array(data, dtype=np.float32))


def test_python_ints_keep_their_value_in_int64_and_float64():
    assert mb.tensor(2 ** 62 + 1, dtype=mb.int64).item() == 2 ** 62 + 1
    assert mb.tensor([2 ** 53 + 1], dtype=mb.float64).numpy()[0] == float(2 ** 53 + 1)


CALLS = [((1, True), {}), ((1, False), {}), ((1, False, True), {}), ((True,), {}), ((False,), {}),
         ((), {"dim": 0, "correction": 0}), ((0,), {"keepdim": True}), ((), {}), (((0, 1), True, True), {}),
         ((), {"dim": 1, "unbiased": False, "keepdim": True})]


@requires_torch
@pytest.mark.parametrize("name", ["var", "std"])
@pytest.mark.parametrize("args, kwargs", CALLS)
def test_var_and_std_take_pytorchs_positional_arguments(name, args, kwargs, rng):
    a = rng.standard_normal((3, 4))
    ours = getattr(mb.tensor(a), name)(*args, **kwargs).numpy()
    theirs = getattr(torch.tensor(a), name)(*args, **kwargs).numpy()
    assert ours.shape == theirs.shape
    np.testing.assert_allclose(ours, theirs, rtol=1e-14)
    function = getattr(mb, name)(mb.tensor(a), *args, **kwargs).numpy()
    np.testing.assert_array_equal(function, ours)


def test_var_refuses_a_keepdim_where_unbiased_goes():
    with pytest.raises(TypeError, match="unbiased must be a bool"):
        mb.tensor(np.ones((2, 2))).var(0, 1)
    with pytest.raises(TypeError, match="not both"):
        mb.tensor(np.ones((2, 2))).var(0, True, correction=0)


INDICES = [(0, slice(None), [0, 1]), (1, slice(None), np.array([True, False, True, True])),
           ([0, 1], slice(None), 0), (0, [0, 2], [1, 3]), (Ellipsis, 0, [1, 2]), (0, Ellipsis, [1, 2]),
           (0, None, slice(None), [0, 1]), (slice(None), 0, slice(1, 3), [4, 0, 1]), ([1, 0], 2),
           (1, [0, 1], slice(None), 3), (np.int64(1), slice(None), [2, 0])]


def _torch_index(index):
    return tuple(torch.tensor(i) if isinstance(i, (list, np.ndarray)) else i for i in index)


@requires_torch
@pytest.mark.parametrize("index", INDICES, ids=[str(i) for i in range(len(INDICES))])
def test_integers_beside_index_arrays_place_dimensions_as_pytorch(index, rng):
    a = rng.standard_normal((2, 3, 4, 5))
    x, t = mb.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    y, r = x[index], t[_torch_index(index)]
    assert y.shape == tuple(r.shape)
    np.testing.assert_array_equal(y.detach().numpy(), r.detach().numpy())
    g = rng.standard_normal(tuple(r.shape))
    (y * mb.tensor(g)).sum().backward()
    (r * torch.tensor(g)).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), t.grad.numpy())
    ours, theirs = mb.tensor(np.zeros_like(a)), torch.zeros(a.shape, dtype=torch.float64)
    ours[index] = mb.tensor(g)
    theirs[_torch_index(index)] = torch.tensor(g)
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


def test_integer_and_array_placement_without_pytorch():
    x = mb.tensor(np.arange(24.0).reshape(2, 3, 4))
    y = x[0, :, [0, 1]]
    assert y.shape == (3, 2)  # the integer selects first; NumPy would give (2, 3)
    np.testing.assert_array_equal(y.numpy(), np.arange(24.0).reshape(2, 3, 4)[0][:, [0, 1]])


@pytest.mark.parametrize("name", ["sum", "mean", "amax", "amin", "var", "std"])
@pytest.mark.parametrize("empty", [(), []])
def test_an_empty_dim_reduces_over_every_dimension(name, empty, rng):
    a = rng.standard_normal((3, 4))
    x = mb.tensor(a)
    np.testing.assert_allclose(getattr(x, name)(dim=empty).numpy(), getattr(x, name)().numpy(), rtol=1e-15)
    assert getattr(x, name)(dim=empty).shape == ()
    assert getattr(x, name)(dim=empty, keepdim=True).shape == (1, 1)
    if torch is not None:
        expected = getattr(torch.tensor(a), name)(dim=empty).numpy()
        np.testing.assert_allclose(getattr(x, name)(dim=empty).numpy(), expected, rtol=1e-14)


def test_std_gradient_of_a_constant_slice_is_zero(rng):
    a = np.array([[1.0, 1.0, 1.0], [0.5, 2.0, -1.0]])
    x = mb.tensor(a, requires_grad=True)
    g = np.array([0.3, -0.7])
    (x.std(1, correction=0) * mb.tensor(g)).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy()[0], 0)  # PyTorch's answer; sqrt'(0) * 0 gave NaN
    row = a[1]
    expected = g[1] * (row - row.mean()) / (3 * row.std())
    np.testing.assert_allclose(x.grad.numpy()[1], expected, rtol=1e-14)
    if torch is not None:
        t = torch.tensor(a, requires_grad=True)
        (t.std(1, correction=0) * torch.tensor(g)).sum().backward()
        np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), rtol=1e-14, atol=0)


def test_std_is_still_differentiable_twice_away_from_zero(rng):
    from minibn.gradcheck import gradgradcheck

    x = mb.tensor(rng.standard_normal((4, 3)), requires_grad=True)
    assert gradgradcheck(lambda t: t.std(0), [x])


@pytest.mark.parametrize("a, b", [(0.0, 2.0), (0.0, 0.0), (0.0, 0.5), (2.0, 3.0)])
def test_the_exponent_gradient_of_a_power_of_zero(a, b):
    base = mb.tensor(np.array([a, 1.5]), requires_grad=True)
    exponent = mb.tensor(np.array([b, 2.0]), requires_grad=True)
    with np.errstate(divide="ignore", invalid="ignore"):  # the base's gradient at 0 is inf or NaN
        (base ** exponent).sum().backward()
    expected = 0.0 if a == 0 else a ** b * np.log(a)  # d(a^b)/db = a^b log a, 0 at a = 0, b >= 0 (PyTorch)
    assert exponent.grad.numpy()[0] == pytest.approx(expected, abs=0, rel=1e-15)
    assert exponent.grad.numpy()[1] == pytest.approx(1.5 ** 2 * np.log(1.5), rel=1e-15)
    scalar_base = mb.tensor(np.array([b]), requires_grad=True)
    (0.0 ** scalar_base).sum().backward()
    assert scalar_base.grad.numpy()[0] == 0.0


def test_the_exponent_gradient_at_a_zero_base_that_broadcasts():
    base = mb.tensor(np.array([0.0]), requires_grad=True)
    exponent = mb.tensor(np.array([2.0, 0.5, 1.0]), requires_grad=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        (base ** exponent).sum().backward()
    assert exponent.grad.numpy().tolist() == [0.0, 0.0, 0.0]


def test_the_mixed_second_derivative_of_a_power_stays_exact_at_b_0_and_1(rng):
    """d2(a^b)/da db = a^(b-1) (1 + b log a): 1/a at b = 0 and 1 + log a at b = 1."""
    for b_value, expected in ((0.0, lambda a: 1 / a), (1.0, lambda a: 1 + np.log(a))):
        a = mb.tensor(np.array([0.7, 2.0]), requires_grad=True)
        b = mb.tensor(np.array([b_value, b_value]), requires_grad=True)
        (ga,) = mb.grad((a ** b).sum(), [a], create_graph=True)
        (gab,) = mb.grad(ga.sum(), [b])
        np.testing.assert_allclose(gab.numpy(), expected(np.array([0.7, 2.0])), rtol=1e-14)


PROMOTIONS = [("exp(int64)", lambda m: m.exp(m.tensor([1, 2]))), ("exp(bool)", lambda m: m.exp(m.tensor([True, False]))),
              ("bool + 2.5", lambda m: m.tensor([True]) + 2.5), ("bool / bool", lambda m: m.tensor([True]) / m.tensor([True])),
              ("int / int", lambda m: m.tensor([1]) / m.tensor([2])), ("bool * 2", lambda m: m.tensor([True]) * 2),
              ("int + bool", lambda m: m.tensor([1]) + m.tensor([True])), ("bool + bool", lambda m: m.tensor([True]) + m.tensor([True])),
              ("sqrt(int)", lambda m: m.sqrt(m.tensor([4]))), ("bool * float64", lambda m: m.tensor([True]) * m.tensor([2.0], dtype=m.float64))]


@pytest.mark.parametrize("name, build", PROMOTIONS, ids=[p[0] for p in PROMOTIONS])
def test_integer_and_bool_promotion_is_pytorchs(name, build):
    expected = {"exp(int64)": "float32", "exp(bool)": "float32", "bool + 2.5": "float32", "bool / bool": "float32",
                "int / int": "float32", "bool * 2": "int64", "int + bool": "int64", "bool + bool": "bool",
                "sqrt(int)": "float32", "bool * float64": "float64"}[name]
    assert str(build(mb).dtype) == expected
    if torch is not None:
        assert str(build(torch).dtype) == f"torch.{expected}"


def _in_thread(fn):
    import threading

    out = {}

    def target():
        try:
            out["value"] = fn()
        except BaseException as exc:  # reported in the main thread
            out["error"] = exc

    t = threading.Thread(target=target)
    t.start()
    t.join(timeout=30)
    if "error" in out:
        raise out["error"]
    return out.get("value")


def test_grad_mode_is_per_thread():
    import threading

    entered, release = threading.Event(), threading.Event()

    def hold_no_grad():
        with mb.no_grad():
            entered.set()
            release.wait(timeout=30)
            return mb.is_grad_enabled()

    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        inside = pool.submit(hold_no_grad)
        assert entered.wait(timeout=30)
        x = mb.tensor(np.ones(2), requires_grad=True)
        assert mb.is_grad_enabled() and (x * 2).requires_grad  # the other thread's no_grad is its own
        release.set()
        assert inside.result() is False
    assert _in_thread(mb.is_grad_enabled) is True  # a new thread starts recording
    with mb.no_grad():
        assert _in_thread(mb.is_grad_enabled) is True
        assert not mb.is_grad_enabled()


def test_overlapping_no_grad_blocks_in_two_threads_leave_recording_on():
    import threading

    a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()

    def first():
        with mb.no_grad():
            a_in.set()
            b_in.wait(timeout=30)
        a_out.set()
        return mb.is_grad_enabled()

    def second():
        a_in.wait(timeout=30)
        with mb.no_grad():
            b_in.set()
            a_out.wait(timeout=30)
        return mb.is_grad_enabled()

    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        results = [pool.submit(first), pool.submit(second)]
        assert [r.result() for r in results] == [True, True]
    assert mb.is_grad_enabled()


def test_anomaly_mode_is_per_thread():
    from minibn.grad_mode import _AnomalyMode

    with mb.autograd.detect_anomaly():
        assert _AnomalyMode.enabled
        assert _in_thread(lambda: _AnomalyMode.enabled) is False
    assert not _AnomalyMode.enabled


def test_the_default_device_is_per_thread(gpu):  # noqa: F811  (the CuPy stand-in)
    def on_gpu():
        mb.set_default_device("cuda")
        return mb.zeros(2).device.type

    assert _in_thread(on_gpu) == "cuda"
    assert str(mb.get_default_device()) == "cpu" and str(mb.zeros(2).device) == "cpu"
    with mb.device("cuda"):
        assert _in_thread(lambda: mb.zeros(1).device.type) == "cpu"
        assert mb.zeros(1).device.type == "cuda"
    assert str(mb.zeros(1).device) == "cpu"


@pytest.mark.parametrize("make", [
    lambda w: mb.optim.SGD([w], lr=float("nan")), lambda w: mb.optim.SGD([w], lr=float("inf")),
    lambda w: mb.optim.Adam([w], lr=float("nan")), lambda w: mb.optim.SGD([w], lr=0.1, momentum=float("nan")),
    lambda w: mb.optim.Adam([w], eps=-1.0)], ids=["sgd-nan", "sgd-inf", "adam-nan", "momentum-nan", "adam-eps"])
def test_optimizers_refuse_non_finite_hyperparameters(make):
    with pytest.raises(ValueError, match="must be a finite number"):
        make(mb.zeros(2, requires_grad=True))


def test_an_optimizer_refuses_a_bare_tensor_and_sgd_has_pytorchs_default_lr():
    w = mb.zeros(3, requires_grad=True)
    with pytest.raises(TypeError, match="iterable of Tensors"):
        mb.optim.SGD(w, lr=0.1)  # list(w) would have optimized its elements, copies that are not w
    assert mb.optim.SGD([w]).param_groups[0]["lr"] == 1e-3
    if torch is not None:
        assert torch.optim.SGD([torch.zeros(1, requires_grad=True)]).defaults["lr"] == 1e-3


def test_a_grad_of_another_shape_dtype_or_type_is_refused():
    w = mb.zeros(2, 3, requires_grad=True)
    for bad, match in ((mb.zeros(3, 2), "shape"), (mb.zeros(2, 3, dtype=mb.float64), "float64"),
                       (np.zeros((2, 3), np.float32), "Tensor or None")):
        with pytest.raises((ValueError, TypeError), match=match):
            w.grad = bad
    w.grad = mb.ones(2, 3)
    assert w.grad.shape == (2, 3)
    w.grad = None
    assert w.grad is None


def test_view_of_a_non_contiguous_tensor_is_refused_and_reshape_copies():
    x = mb.tensor(np.arange(6.0).reshape(2, 3))
    assert x.view(3, 2).shape == (3, 2) and x.view(-1).shape == (6,) and x.view((6,)).shape == (6,)
    with pytest.raises(RuntimeError, match="use .reshape"):
        x.T.view(6)
    np.testing.assert_array_equal(x.T.reshape(6).numpy(), np.arange(6.0).reshape(2, 3).T.ravel())
    if torch is not None:
        with pytest.raises(RuntimeError):
            torch.arange(6.0).reshape(2, 3).T.view(6)


def test_flatten_and_stack_refuse_dimensions_out_of_order_or_range():
    with pytest.raises(ValueError, match="comes after"):
        mb.zeros(2, 3, 4).flatten(2, 1)
    with pytest.raises(IndexError, match="out of range"):
        mb.stack([mb.zeros(2), mb.zeros(2)], dim=-3)
    with pytest.raises(IndexError, match="out of range"):
        mb.stack([mb.zeros(2), mb.zeros(2)], dim=2)
    assert mb.stack([mb.zeros(2), mb.ones(2)], dim=-2).shape == (2, 2)
    assert mb.stack([mb.zeros(2), mb.ones(2)], dim=1).numpy().tolist() == [[0, 1], [0, 1]]


@pytest.mark.parametrize("make", [lambda: mb.nn.BatchNorm1d(3, eps=-1e-5), lambda: mb.nn.LpNorm1d(3, eps=float("nan")),
                                  lambda: mb.functional.lp_norm(mb.randn(4, 3), eps=float("nan"), training=True),
                                  lambda: mb.functional.batch_norm(mb.randn(4, 3), None, None, training=True, eps=-1.0),
                                  lambda: mb.nn.BatchNorm1d(3, eps=float("inf"))])
def test_normalizations_refuse_a_negative_or_non_finite_eps(make):
    with pytest.raises(ValueError, match="eps must be a finite number >= 0"):
        make()


def test_load_state_dict_checks_every_value_before_copying_any():
    net = mb.nn.mlp([3, 4, 2])
    before = {k: v.numpy().copy() for k, v in net.state_dict().items()}
    bad = {k: np.full(v.shape, 7.0) for k, v in net.state_dict().items()}
    bad[list(bad)[-1]] = np.zeros(5)  # the last key is wrong; the first ones used to be copied already
    with pytest.raises(RuntimeError, match="nothing was loaded"):
        net.load_state_dict(bad)
    for k, v in net.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), before[k])


def test_loading_a_file_that_is_not_a_state_dict_names_the_file(tmp_path):
    net = mb.nn.mlp([3, 4, 2])
    net.save(tmp_path / "good.npz")
    data = (tmp_path / "good.npz").read_bytes()
    (tmp_path / "truncated.npz").write_bytes(data[:len(data) // 2])
    (tmp_path / "text.npz").write_bytes(b"not an archive at all " * 4)
    np.save(tmp_path / "one.npy", np.ones(3))
    damaged = bytearray(data)
    damaged[200:260] = bytes(60)
    (tmp_path / "damaged.npz").write_bytes(bytes(damaged))
    for name in ("truncated.npz", "text.npz", "one.npy", "damaged.npz"):
        with pytest.raises(ValueError, match=f"{name} is not a file written by minibn.save"):
            net.load(tmp_path / name)
    with pytest.raises(FileNotFoundError):
        net.load(tmp_path / "missing.npz")
    net.load(tmp_path / "good.npz")


CE_OPTIONS = [{}, {"weight": True}, {"label_smoothing": 0.2}, {"weight": True, "label_smoothing": 0.1},
              {"ignore_index": 3}, {"weight": True, "ignore_index": 3, "label_smoothing": 0.3}]


@requires_torch
@pytest.mark.parametrize("options", CE_OPTIONS, ids=[str(o) for o in CE_OPTIONS])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_options_match_pytorch(options, reduction, rng):
    x, labels, w = rng.standard_normal((6, 4)), np.array([0, 3, 1, 2, 3, 1]), rng.uniform(0.5, 2, 4)

    def kwargs(lib):
        return {k: (lib.tensor(w) if k == "weight" else v) for k, v in options.items()}

    ours_x, theirs_x = mb.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    ours = mb.functional.cross_entropy(ours_x, mb.tensor(labels), reduction=reduction, **kwargs(mb))
    theirs = torch.nn.functional.cross_entropy(theirs_x, torch.tensor(labels), reduction=reduction, **kwargs(torch))
    np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol=1e-13, atol=1e-15)
    g = rng.standard_normal(tuple(theirs.shape))
    (ours * mb.tensor(g)).sum().backward()
    (theirs * torch.tensor(g)).sum().backward()
    np.testing.assert_allclose(ours_x.grad.numpy(), theirs_x.grad.numpy(), rtol=1e-12, atol=1e-15)


@requires_torch
@pytest.mark.parametrize("probabilities", [False, True])
def test_cross_entropy_over_extra_dimensions_and_weighted_probabilities(probabilities, rng):
    x = rng.standard_normal((2, 4, 3))
    if probabilities:
        target = np.abs(rng.standard_normal((2, 4, 3)))
        target /= target.sum(1, keepdims=True)
    else:
        target = rng.integers(0, 4, (2, 3))
    w = rng.uniform(0.5, 2, 4)
    for reduction in ("mean", "none"):
        ours = mb.functional.cross_entropy(mb.tensor(x), mb.tensor(target), weight=mb.tensor(w), reduction=reduction,
                                           label_smoothing=0.1)
        theirs = torch.nn.functional.cross_entropy(torch.tensor(x), torch.tensor(target), weight=torch.tensor(w),
                                                   reduction=reduction, label_smoothing=0.1)
        assert ours.shape == tuple(theirs.shape)
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-13)


def test_cross_entropy_refuses_bad_options():
    x, t = mb.randn(3, 4), mb.tensor([0, 1, 5])
    with pytest.raises(ValueError, match="ignore_index"):
        mb.functional.cross_entropy(x, t)
    assert mb.functional.cross_entropy(x, t, ignore_index=5).shape == ()
    with pytest.raises(ValueError, match="weight must be"):
        mb.functional.cross_entropy(x, mb.tensor([0, 1, 2]), weight=mb.ones(3))
    with pytest.raises(ValueError, match="label_smoothing"):
        mb.functional.cross_entropy(x, mb.tensor([0, 1, 2]), label_smoothing=1.5)


@requires_torch
def test_the_loss_modules_take_pytorchs_arguments(rng):
    x, labels, w = rng.standard_normal((5, 3)), rng.integers(0, 3, 5), rng.uniform(0.5, 2, 3)
    ours = mb.nn.CrossEntropyLoss(mb.tensor(w), ignore_index=1, label_smoothing=0.1)(mb.tensor(x), mb.tensor(labels))
    theirs = torch.nn.CrossEntropyLoss(torch.tensor(w), ignore_index=1, label_smoothing=0.1)(torch.tensor(x),
                                                                                          torch.tensor(labels))
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-13)
    with pytest.raises(TypeError):
        mb.nn.MSELoss("sum")  # PyTorch's first positional argument is the deprecated size_average
    with pytest.raises(TypeError):
        mb.functional.mse_loss(mb.ones(2), mb.zeros(2), "sum")

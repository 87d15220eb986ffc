"""The CuPy path, exercised without a GPU through the strict stand-in in ``cupy_double.py``.

Every op of the spec table and every layer runs on "cuda" (the stand-in) and
on the CPU; values, gradients and second derivatives must agree. The
stand-in refuses implicit host/device conversions, so a planted one fails.
"""

import math

import numpy as np
import pytest

import minibn as mb
import minibn.functional as F
from minibn import devices, experiment, nn
from minibn.kernels import cupy_support

from . import cupy_double
from .layer_specs import LAYERS
from .op_specs import SPECS


@pytest.fixture
def gpu(monkeypatch):
    """The stand-in installed as ``cupy`` for one test, and removed from minibn afterwards."""
    try:
        import cupy  # noqa: F401

        pytest.skip("a real CuPy is installed; these tests are for machines without one")
    except ImportError:
        pass
    module = cupy_double.install(monkeypatch)
    yield module
    devices.unregister_array_type(module.ndarray)
    cupy_support.fuse.cache_clear()  # the stand-in's "fused" functions are the plain ones
    devices.set_default_device(devices.CPU)


def _pair(arrays, requires_grad=True):
    cpu = [mb.tensor(a, requires_grad=requires_grad) for a in arrays]
    gpu = [mb.tensor(a, device="cuda", requires_grad=requires_grad) for a in arrays]
    return cpu, gpu


def _host(t):
    return None if t is None else t.detach().cpu().numpy()


def assert_devices_agree(fn, arrays, rng, rtol=1e-12):
    """fn on CPU and on the stand-in: outputs, gradients and Hessian-vector products agree."""
    cpu, gpu = _pair(arrays)
    out_c, out_g = fn(*cpu), fn(*gpu)
    assert out_g.device == "cuda:0"
    np.testing.assert_allclose(_host(out_g), _host(out_c), rtol=rtol, atol=rtol)
    u = rng.standard_normal(out_c.shape)
    v_arrays = [rng.standard_normal(a.shape) for a in arrays]
    grads = []
    for xs, out in ((cpu, out_c), (gpu, out_g)):
        up = mb.tensor(u, device=out.device)
        gs = mb.grad(out, xs, up, create_graph=True, allow_unused=True)
        vs = [mb.tensor(v, device=out.device) for v in v_arrays]
        dot = sum((g * v).sum() for g, v in zip(gs, vs) if g is not None)
        hv = mb.grad(dot, xs, allow_unused=True) if getattr(dot, "requires_grad", False) else [None] * len(xs)
        grads.append(([_host(g) for g in gs], [_host(h) for h in hv]))
    (g_c, h_c), (g_g, h_g) = grads
    for a, b in zip(g_g + h_g, g_c + h_c):
        if b is None:
            assert a is None or not a.any()
        else:
            np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol)


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_every_op_on_the_cupy_path(spec, gpu, rng):
    assert_devices_agree(lambda *t: spec.fn(mb, *t), spec.inputs(rng), rng)


def test_eval_mode_and_running_statistics_on_the_cupy_path(gpu, rng):
    a = rng.standard_normal((8, 3))
    nets = {}
    for device in ("cpu", "cuda"):
        bn = nn.BatchNorm1d(3, dtype=mb.float64).to(device)
        for _ in range(3):
            bn(mb.tensor(a, device=device))
        bn.eval()
        nets[device] = (bn, _host(bn(mb.tensor(a, device=device))))
    np.testing.assert_allclose(nets["cuda"][1], nets["cpu"][1], rtol=1e-13)
    np.testing.assert_allclose(_host(nets["cuda"][0].running_var), _host(nets["cpu"][0].running_var), rtol=1e-14)


def test_devices_and_transfers(gpu, rng):
    t = mb.zeros(2, 3, device="cuda")
    assert t.device == "cuda" and t.device == "cuda:0" and str(t.device) == "cuda:0"
    back = t.cpu()
    assert back.device == "cpu" and back.tolist() == [[0.0] * 3] * 2
    x = mb.tensor([1.0, 2.0], requires_grad=True)
    y = (x.to("cuda") * 3).sum()
    y.backward()
    assert x.grad.device == "cpu" and x.grad.tolist() == [3.0, 3.0]
    with mb.device("cuda"):
        assert mb.randn(2).device == "cuda:0" and mb.tensor([1.0]).device == "cuda:0"
    assert mb.randn(2).device == "cpu"
    with pytest.raises(RuntimeError, match="cuda:1 does not exist"):
        mb.zeros(1, device="cuda:1")
    assert "cuda:0" in repr(t) and mb.backend_info()["gpu"] == "strict CuPy stand-in (NumPy)"


def test_mixing_devices_names_the_op_and_operands(gpu):
    a, b = mb.ones(2, 3), mb.ones(2, 3, device="cuda")
    with pytest.raises(TypeError, match=r"Add: operands are on different devices \(operand 0: device=cpu, "
                                        r"dtype=float32, shape=\(2, 3\); operand 1: device=cuda:0"):
        a + b
    with pytest.raises(TypeError, match="can't convert a cuda:0 tensor to NumPy"):
        b.numpy()
    with pytest.raises(TypeError, match="implicit conversion of a cuda:0 tensor to NumPy"):
        np.asarray(b)


def test_a_planted_implicit_transfer_is_caught(gpu):
    """Code that slips device arrays into NumPy, or mixes host arrays in, fails on the stand-in."""

    class LeaksToHost(mb.Function):
        def forward(self, x):
            return np.exp(x)  # should be self.xp.exp

    class MixesInHostData(mb.Function):
        def forward(self, x):
            return x + np.ones(x.shape)  # a host array inside a device op

    x = mb.ones(3, device="cuda")
    with pytest.raises(TypeError):
        LeaksToHost.apply(x)
    with pytest.raises(TypeError, match="host"):
        MixesInHostData.apply(x)
    with pytest.raises(TypeError, match="Implicit conversion to a NumPy array is not allowed"):
        np.asarray(x._data)
    assert LeaksToHost.apply(mb.ones(3)).tolist() == pytest.approx([math.e] * 3)  # fine on CPU


def test_modules_move_between_devices_and_save(gpu, tmp_path, rng):
    net = nn.mlp([4, 5, 3], norm="bn", dtype=mb.float64, generator=mb.Generator(0))
    x = rng.standard_normal((6, 4))
    want = _host(net(mb.tensor(x)))
    net.to("cuda")
    assert all(p.device == "cuda:0" for p in net.parameters())
    got = _host(net(mb.tensor(x, device="cuda")))
    np.testing.assert_allclose(got, want, rtol=1e-13)
    net.save(tmp_path / "net.npz")
    other = nn.mlp([4, 5, 3], norm="bn", dtype=mb.float64, generator=mb.Generator(5)).load(tmp_path / "net.npz")
    np.testing.assert_allclose(_host(other(mb.tensor(x))), want, rtol=1e-13)


def test_short_training_run_on_the_cupy_path(gpu, tmp_path):
    from experiments import mnist_depth10 as job

    args = ["--width", "8", "--depth", "3", "--train-size", "200", "--steps", "3", "--lr", "0.1", "--quiet",
            "--dtype", "float64"]
    cpu = experiment.main(job, args + ["--backend", "numpy", "--out", str(tmp_path / "cpu")])
    cuda = experiment.main(job, args + ["--backend", "cupy", "--out", str(tmp_path / "cuda")])
    for name in ("plain", "bn"):
        np.testing.assert_allclose(cuda["networks"][name]["loss"], cpu["networks"][name]["loss"], rtol=1e-12)
        np.testing.assert_allclose(cuda["networks"][name]["activation_grad_norm"],
                                   cpu["networks"][name]["activation_grad_norm"], rtol=1e-12)


def _real_gpu():
    try:
        import cupy

        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False


@pytest.mark.gpu
@pytest.mark.skipif(not _real_gpu(), reason="needs CuPy and a CUDA GPU (pip install 'minibn[cuda12]')")
def test_every_op_and_layer_on_a_real_gpu(rng):
    for spec in SPECS + LAYERS:
        assert_devices_agree(lambda *t: spec.fn(mb, *t), spec.inputs(rng), rng, rtol=1e-11)
    arrays = [rng.standard_normal((64, 16)), 1 + 0.2 * rng.standard_normal(16), 0.2 * rng.standard_normal(16)]
    for p in (1, 2, 3, math.inf):
        assert_devices_agree(lambda x, w, b: F.lp_norm(x, p, None, None, w, b, training=True), arrays, rng, rtol=1e-11)
    assert_devices_agree(lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True), arrays, rng, rtol=1e-11)
    assert_devices_agree(lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True, input_bias=b,
                                                      activation="relu"), arrays, rng, rtol=1e-11)


def test_synchronize(gpu, monkeypatch):
    waited = []
    monkeypatch.setattr(gpu.cuda.Device, "synchronize", lambda self: waited.append(self.id))
    mb.synchronize("cpu")  # nothing queued on the CPU
    mb.synchronize()  # no GPU used yet
    assert waited == []
    mb.synchronize("cuda")
    with mb.device("cuda"):
        mb.synchronize()
    mb.synchronize()  # a GPU has been used: the default device is the CPU, but the GPU is waited for
    assert waited == [0, 0, 0]
    with pytest.raises(RuntimeError, match="does not exist"):
        mb.synchronize("cuda:3")


def test_from_numpy_and_as_tensor_stay_on_the_cpu_when_asked(gpu):
    a = np.arange(3.0)
    mb.set_default_device("cuda")
    assert mb.from_numpy(a).device == "cpu" and mb.from_numpy(a)._data is a
    assert mb.as_tensor(a, device="cpu")._data is a
    assert mb.as_tensor(a).device == "cuda:0"  # no device given: the default device, a copy


def test_an_index_on_another_device_is_refused(gpu):
    x = mb.randn(3, 4, dtype=mb.float64).to("cuda")
    for op in (lambda i: x.gather(0, i), lambda i: x.index_select(0, i.reshape(-1)),
               lambda i: x.scatter_add(0, i, x[:1]), lambda i: x.scatter(0, i, value=1.0)):
        with pytest.raises(TypeError, match="index is on cpu, the input on cuda:0"):
            op(mb.tensor([[0, 1, 2, 0]]))


def test_a_gpu_tensor_names_pytorchs_cuda_type(gpu):
    t = mb.ones(2, device="cuda")
    assert t.type() == "torch.cuda.FloatTensor" and mb.ones(2).type() == "torch.FloatTensor"
    assert not isinstance(t, mb.FloatTensor)  # the typed classes are the CPU ones, as in PyTorch

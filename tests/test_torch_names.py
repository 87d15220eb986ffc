"""Names PyTorch users reach for: where they live, what they do, checked against PyTorch where
it is installed."""

import numpy as np
import pytest

import minibn as mb
from minibn import nn

from .conftest import requires_torch, torch


def test_pytorchs_module_paths():
    import minibn.nn.functional as F

    assert F.relu is mb.functional.relu and F.cross_entropy is mb.functional.cross_entropy
    assert mb.autograd.gradcheck is mb.gradcheck.gradcheck and mb.autograd.grad is mb.grad
    x = mb.randn(3, dtype=mb.float64, requires_grad=True)
    assert mb.autograd.gradcheck(lambda t: t.tanh(), [x])
    with pytest.raises(AttributeError):
        mb.autograd.no_such_thing  # noqa: B018
    import subprocess
    import sys

    fresh = "import minibn as mb; print(mb.autograd.functional.hessian.__name__, mb.linalg.vector_norm.__name__)"
    out = subprocess.run([sys.executable, "-c", fresh], capture_output=True, text=True, timeout=120)
    assert out.stdout.split() == ["hessian", "vector_norm"], out.stderr


def test_grad_takes_a_generator_of_parameters():
    net = nn.mlp([3, 4, 2], dtype="float64")
    x = mb.randn(5, 3, dtype=mb.float64)
    from_generator = mb.grad(net(x).sum(), net.parameters())
    from_list = mb.grad(net(x).sum(), list(net.parameters()))
    assert len(from_generator) == 4
    for a, b in zip(from_generator, from_list):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_containers_register_what_they_hold():
    layers = nn.ModuleList([nn.Linear(3, 3) for _ in range(2)]).append(nn.Linear(3, 1))
    assert len(layers) == 3 and len(list(layers.parameters())) == 6 and isinstance(layers[-1], nn.Linear)
    assert list(layers.state_dict())[:2] == ["0.weight", "0.bias"]
    assert len(layers[:2]) == 2
    blocks = nn.ModuleDict({"enc": nn.Linear(4, 2), "dec": nn.Linear(2, 4)})
    assert list(blocks) == ["enc", "dec"] and "enc" in blocks and len(list(blocks.parameters())) == 4
    del blocks["dec"]
    assert list(blocks.state_dict()) == ["enc.weight", "enc.bias"]
    with pytest.raises(KeyError, match="without '.'"):
        blocks["a.b"] = nn.Linear(1, 1)
    with pytest.raises(TypeError, match="expected a Module"):
        nn.ModuleList([3])
    params = nn.ParameterList([mb.ones(3), nn.Parameter(mb.zeros(2))])
    assert [tuple(p.shape) for p in params.parameters()] == [(3,), (2,)] and all(p.requires_grad for p in params)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.blocks = nn.ModuleList([nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 1)])

        def forward(self, x):
            for b in self.blocks:
                x = b(x)
            return x

    net = Net()
    assert len(list(net.parameters())) == 4 and net(mb.randn(3, 2)).shape == (3, 1)
    net.eval()
    assert not net.blocks[0].training


def test_forward_hooks_see_every_output_even_inside_a_fused_run():
    net = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 2))
    seen = []
    handle = net[1].register_forward_hook(lambda module, inputs, output: seen.append((module, output)))
    x = mb.randn(6, 3)
    y = net(x)
    assert len(seen) == 1 and seen[0][0] is net[1] and seen[0][1].shape == (6, 4)
    np.testing.assert_allclose(seen[0][1].detach().numpy().mean(0), 0, atol=1e-5)  # batch norm's own output
    handle.remove()
    np.testing.assert_allclose(net(x).detach().numpy(), y.detach().numpy(), rtol=1e-6)
    assert len(seen) == 1
    net[3].register_forward_hook(lambda module, inputs, output: output * 0)  # a returned value replaces it
    assert float(net(x).abs().sum().item()) == 0


def test_dropout_keeps_in_expectation_and_is_the_identity_in_eval():
    mb.manual_seed(1)
    x = mb.ones(20000, dtype=mb.float64, requires_grad=True)
    y = mb.functional.dropout(x, 0.25)
    kept = y.detach().numpy() != 0
    assert abs(kept.mean() - 0.75) < 0.02
    np.testing.assert_allclose(y.detach().numpy()[kept], 1 / 0.75)
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), kept / 0.75)  # dy/dx = m / (1 - p)
    layer = nn.Dropout(0.25)
    layer.eval()
    assert layer(x) is x
    assert mb.functional.dropout(x, 1.0).abs().sum().item() == 0
    for p in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match="probability"):
            nn.Dropout(p)


@requires_torch
def test_leaky_relu_flatten_and_the_loss_modules_match_pytorch(rng):
    a = rng.standard_normal((4, 3, 2))
    a[0, 0, 0] = 0.0
    x, t = mb.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    g = rng.standard_normal(a.shape)
    (nn.LeakyReLU(0.2)(x) * mb.tensor(g)).sum().backward()
    (torch.nn.LeakyReLU(0.2)(t) * torch.tensor(g)).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), rtol=1e-15)
    assert nn.Flatten()(x).shape == tuple(torch.nn.Flatten()(t).shape)
    assert nn.Flatten(0, 1)(x).shape == tuple(torch.nn.Flatten(0, 1)(t).shape)
    logits, labels = rng.standard_normal((5, 3)), rng.integers(0, 3, 5)
    for reduction in ("mean", "sum", "none"):
        ours = nn.CrossEntropyLoss(reduction=reduction)(mb.tensor(logits), mb.tensor(labels)).numpy()
        theirs = torch.nn.CrossEntropyLoss(reduction=reduction)(torch.tensor(logits), torch.tensor(labels)).numpy()
        np.testing.assert_allclose(ours, theirs, rtol=1e-14)
        target = rng.standard_normal((5, 3))
        ours = nn.MSELoss(reduction=reduction)(mb.tensor(logits), mb.tensor(target)).numpy()
        theirs = torch.nn.MSELoss(reduction=reduction)(torch.tensor(logits), torch.tensor(target)).numpy()
        np.testing.assert_allclose(ours, theirs, rtol=1e-14)


SCHEDULES = [("StepLR", {"step_size": 3, "gamma": 0.5}), ("MultiStepLR", {"milestones": [2, 5, 6], "gamma": 0.3}),
             ("ExponentialLR", {"gamma": 0.9}), ("CosineAnnealingLR", {"T_max": 7, "eta_min": 0.01})]


def _rates(schedule_cls, optimizer_cls, kwargs, param, epochs=20):
    opt = optimizer_cls([param], lr=0.2)
    schedule = schedule_cls(opt, **kwargs)
    rates = []
    for _ in range(epochs):
        rates.append(schedule.get_last_lr()[0])
        opt.step()
        schedule.step()
    return rates, schedule


@pytest.mark.parametrize("name, kwargs", SCHEDULES, ids=[s[0] for s in SCHEDULES])
def test_schedules_give_pytorchs_rates(name, kwargs):
    ours, schedule = _rates(getattr(mb.optim.lr_scheduler, name), mb.optim.SGD, kwargs, mb.zeros(1, requires_grad=True))
    closed = {"StepLR": lambda e: 0.2 * 0.5 ** (e // 3), "MultiStepLR": lambda e: 0.2 * 0.3 ** sum(m <= e for m in (2, 5, 6)),
              "ExponentialLR": lambda e: 0.2 * 0.9 ** e,
              "CosineAnnealingLR": lambda e: 0.01 + 0.19 * (1 + np.cos(np.pi * e / 7)) / 2}[name]
    np.testing.assert_allclose(ours, [closed(e) for e in range(20)], rtol=1e-14)
    if torch is not None:
        theirs, _ = _rates(getattr(torch.optim.lr_scheduler, name), torch.optim.SGD, kwargs,
                           torch.zeros(1, requires_grad=True))
        np.testing.assert_allclose(ours, theirs, rtol=1e-12)
    # a schedule resumed from its state_dict goes on with the same rates
    opt = mb.optim.SGD([mb.zeros(1, requires_grad=True)], lr=0.2)
    opt.load_state_dict(schedule.optimizer.state_dict())
    resumed = getattr(mb.optim.lr_scheduler, name)(opt, **kwargs)
    resumed.load_state_dict(schedule.state_dict())
    for group in opt.param_groups:
        group["lr"] = schedule.get_last_lr()[0]
    for _ in range(5):
        schedule.step()
        resumed.step()
        assert resumed.get_last_lr() == schedule.get_last_lr()


def test_schedules_refuse_bad_arguments():
    opt = mb.optim.SGD([mb.zeros(1, requires_grad=True)], lr=0.1)
    with pytest.raises(ValueError, match="step_size"):
        mb.optim.lr_scheduler.StepLR(opt, step_size=0)
    with pytest.raises(ValueError, match="milestones must increase"):
        mb.optim.lr_scheduler.MultiStepLR(opt, milestones=[5, 2])
    with pytest.raises(ValueError, match="gamma"):
        mb.optim.lr_scheduler.ExponentialLR(opt, gamma=float("nan"))
    with pytest.raises(TypeError, match="minibn optimizer"):
        mb.optim.lr_scheduler.CosineAnnealingLR("sgd", T_max=3)
    assert mb.optim.ReduceLROnPlateau is mb.optim.lr_scheduler.ReduceLROnPlateau


def test_cuda_questions_answer_without_a_gpu():
    try:
        import cupy  # noqa: F401

        pytest.skip("a real CuPy is installed: the answer depends on the machine")
    except ImportError:
        pass
    assert mb.cuda.is_available() is False and mb.cuda.device_count() == 0


def test_save_and_load_a_state_dict(tmp_path):
    net = nn.mlp([3, 4, 2], norm="bn")
    mb.save(net.state_dict(), tmp_path / "state.npz")
    state = mb.load(tmp_path / "state.npz")
    assert list(state) == list(net.state_dict()) and all(isinstance(t, mb.Tensor) for t in state.values())
    other = nn.mlp([3, 4, 2], norm="bn", generator=mb.Generator(9))
    other.load_state_dict(state)
    for a, b in zip(net.state_dict().values(), other.state_dict().values()):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    with pytest.raises(TypeError, match="cannot store a Sequential itself; save\\(net.state_dict"):
        mb.save(net, tmp_path / "net.npz")
    (tmp_path / "junk.npz").write_bytes(b"junk" * 10)
    with pytest.raises(ValueError, match="junk.npz is not a file written by minibn.save"):
        mb.load(tmp_path / "junk.npz")


def test_randperm_is_a_seeded_permutation():
    p = mb.randperm(10, generator=mb.Generator(3))
    assert p.dtype == np.int64 and sorted(p.numpy().tolist()) == list(range(10))
    np.testing.assert_array_equal(p.numpy(), mb.randperm(10, generator=mb.Generator(3)).numpy())
    assert mb.randperm(0).shape == (0,)
    with pytest.raises(ValueError, match="n must be"):
        mb.randperm(-1)


def test_data_loader_batches_in_order_or_shuffled_and_drops_the_last_if_asked():
    from minibn.utils.data import DataLoader, TensorDataset

    x, y = mb.tensor(np.arange(20.0).reshape(10, 2)), mb.tensor(np.arange(10))
    ds = TensorDataset(x, y)
    assert len(ds) == 10 and [t.numpy().tolist() for t in ds[3]] == [[6.0, 7.0], 3]
    ordered = list(DataLoader(ds, batch_size=4))
    assert [b[1].numpy().tolist() for b in ordered] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert ordered[0][0].shape == (4, 2)
    assert [len(b[1]) for b in DataLoader(ds, batch_size=4, drop_last=True)] == [4, 4]
    assert len(DataLoader(ds, batch_size=4)) == 3 and len(DataLoader(ds, batch_size=4, drop_last=True)) == 2
    loader = DataLoader(ds, batch_size=3, shuffle=True, generator=mb.Generator(5))
    first, second = ([int(v) for b in loader for v in b[1].numpy()] for _ in range(2))
    assert sorted(first) == list(range(10)) and first != second  # a new order every pass
    again = DataLoader(ds, batch_size=3, shuffle=True, generator=mb.Generator(5))
    assert [int(v) for b in again for v in b[1].numpy()] == first
    with pytest.raises(ValueError, match="batch_size"):
        DataLoader(ds, batch_size=0)
    with pytest.raises(ValueError, match="same first dimension"):
        TensorDataset(x, mb.zeros(3))


def test_a_plain_dataset_is_collated_field_by_field():
    from minibn.utils.data import DataLoader, Dataset

    class Squares(Dataset):
        def __len__(self):
            return 5

        def __getitem__(self, i):
            return mb.tensor([float(i), 1.0]), i * i

    batches = list(DataLoader(Squares(), batch_size=2))
    assert [b[0].shape for b in batches] == [(2, 2), (2, 2), (1, 2)]
    assert [b[1].numpy().tolist() for b in batches] == [[0, 1], [4, 9], [16]]


def test_random_split_and_subset():
    from minibn.utils.data import Subset, TensorDataset, random_split

    ds = TensorDataset(mb.tensor(np.arange(11)))
    parts = random_split(ds, [0.5, 0.3, 0.2], generator=mb.Generator(0))
    assert [len(p) for p in parts] == [6, 3, 2]  # floor(5.5, 3.3, 2.2) = 5, 3, 2, remainder to the first
    if torch is not None:
        theirs = torch.utils.data.random_split(range(11), [0.5, 0.3, 0.2])
        assert [len(p) for p in theirs] == [6, 3, 2]
    seen = sorted(int(p[i][0].item()) for p in parts for i in range(len(p)))
    assert seen == list(range(11))
    assert [len(p) for p in random_split(ds, [4, 7])] == [4, 7]
    with pytest.raises(ValueError, match="summing"):
        random_split(ds, [4, 4])
    sub = Subset(ds, [5, 2])
    assert [int(sub[i][0].item()) for i in range(2)] == [5, 2]
    with pytest.raises(IndexError, match="out of range"):
        Subset(ds, [11])


def test_sign_is_a_constant_with_pytorchs_values():
    a = np.array([-2.0, 0.0, 3.0, -0.0])
    x = mb.tensor(a, requires_grad=True)
    s = x.sign()
    assert not s.requires_grad and s.numpy().tolist() == [-1.0, 0.0, 1.0, 0.0]
    assert mb.sign(x).numpy().tolist() == s.numpy().tolist()
    if torch is not None:
        assert torch.tensor(a).sign().tolist() == s.numpy().tolist()
    with pytest.raises(ValueError, match="exceeds max_val"):
        mb.functional.hardtanh(x, 1.0, -1.0)


@requires_torch
def test_floor_division_and_remainder_follow_pytorch(rng):
    for a, b in (([5.5, -3.2, 7.0], [2.0, 1.5, -2.5]), ([5, -3, 7], [2, 2, -3])):
        ours = (mb.tensor(a) // mb.tensor(b), mb.tensor(a) % mb.tensor(b), mb.tensor(a) // 2, mb.tensor(a) % 2.5,
                7 // mb.tensor(b), 7.5 % mb.tensor(b))
        theirs = (torch.tensor(a) // torch.tensor(b), torch.tensor(a) % torch.tensor(b), torch.tensor(a) // 2,
                  torch.tensor(a) % 2.5, 7 // torch.tensor(b), 7.5 % torch.tensor(b))
        for o, t in zip(ours, theirs):
            assert str(o.dtype) == str(t.dtype).removeprefix("torch.")
            np.testing.assert_allclose(o.numpy(), t.numpy(), rtol=1e-6)
    a, b = rng.standard_normal(4) * 3, rng.uniform(0.5, 2, 4)
    x, y = mb.tensor(a, requires_grad=True), mb.tensor(b, requires_grad=True)
    tx, ty = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
    (x % y).sum().backward()
    (tx % ty).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), tx.grad.numpy())
    np.testing.assert_array_equal(y.grad.numpy(), ty.grad.numpy())
    with pytest.raises(RuntimeError, match="no derivative"):
        (x // y).sum().backward()


def test_small_tensor_conveniences():
    t = mb.tensor(np.ones((2, 3)))
    assert t.is_floating_point() and not mb.tensor([1]).is_floating_point() and not t.is_cuda
    assert t.T.contiguous()._data.flags.c_contiguous and t.contiguous() is t
    assert mb.tensor([1.7, -0.2]).int().numpy().tolist() == [1, 0] and mb.tensor([1.5, 0.0]).bool().numpy().tolist() == [True, False]
    with pytest.raises(TypeError, match="no float16"):
        t.half()
    assert f"{mb.tensor(3.14159):.2f}" == "3.14" and f"{mb.tensor([2.5]):.1f}" == "2.5"
    with pytest.raises(TypeError, match="takes no format spec"):
        f"{t:.2f}"
    assert f"{t}" == str(t)


@requires_torch
def test_tests_and_splits_match_pytorch(rng):
    a = rng.standard_normal((3, 4))
    a[0, 1], a[2, 3] = np.nan, np.inf
    x, t = mb.tensor(a), torch.tensor(a)
    for name in ("isnan", "isfinite"):
        np.testing.assert_array_equal(getattr(x, name)().numpy(), getattr(t, name)().numpy())
    m, tm = x > 0, t > 0
    for args in ((), (0,), (1, True)):
        np.testing.assert_array_equal(m.any(*args).numpy(), tm.any(*args).numpy())
        np.testing.assert_array_equal(m.all(*args).numpy(), tm.all(*args).numpy())
    b = rng.standard_normal((3, 4))
    for rtol, atol in ((1e-5, 1e-8), (0.0, 1e-3)):
        c = b + 1e-4
        assert mb.allclose(mb.tensor(b), mb.tensor(c), rtol, atol) == torch.allclose(torch.tensor(b), torch.tensor(c), rtol, atol)
    for pieces, theirs in ((mb.tensor(b).split([1, 3], 1), torch.tensor(b).split([1, 3], 1)),
                           (mb.tensor(b).chunk(3, 1), torch.tensor(b).chunk(3, 1)),
                           (mb.tensor(b).unbind(0), torch.tensor(b).unbind(0))):
        assert [p.shape for p in pieces] == [tuple(q.shape) for q in theirs]
    zero = mb.zeros(3, dtype=mb.float64, requires_grad=True)
    zero.norm().backward()
    assert zero.grad.numpy().tolist() == [0.0, 0.0, 0.0]  # PyTorch's subgradient at 0, not NaN
    with pytest.raises(ValueError, match="do not add up"):
        mb.tensor(b).split([1, 2], 1)
    with pytest.raises(ValueError, match="expected a 2-D"):
        mb.mm(mb.tensor(b), mb.ones(4))


# -- indexing along a dimension, sorting, einsum, prod, erf ---------------------------------------


def _both(rng, f_mb, f_torch, *shapes):
    """Values, first gradients and one Hessian-vector product of f in minibn and PyTorch (float64);
    returns how many arrays were compared: the value, one gradient per input, then the Hessian-vector
    products PyTorch has (so more than the number of inputs whenever every gradient was compared)."""
    xs = [rng.standard_normal(s) for s in shapes]
    xm = [mb.tensor(x, requires_grad=True) for x in xs]
    xt = [torch.tensor(x, requires_grad=True) for x in xs]
    ym, yt = f_mb(*xm), f_torch(*xt)
    np.testing.assert_allclose(ym.detach().numpy(), yt.detach().numpy(), rtol=1e-12, atol=1e-12)
    g = rng.standard_normal(tuple(yt.shape))
    gm = mb.grad(ym, xm, mb.tensor(g), create_graph=True)
    gt = torch.autograd.grad(yt, xt, torch.tensor(g), create_graph=True)
    compared = 1
    for a, b in zip(gm, gt):
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(force=True), rtol=1e-12, atol=1e-12)
        compared += 1
    vs = [rng.standard_normal(s) for s in shapes]
    sm = sum((a * mb.tensor(v)).sum() for a, v in zip(gm, vs))
    st = sum((a * torch.tensor(v)).sum() for a, v in zip(gt, vs))
    if st.requires_grad:  # (where minibn's gradient is a constant, PyTorch's Hessian must be 0)
        ht = torch.autograd.grad(st, xt, allow_unused=True)
        hm = mb.grad(sm, xm, allow_unused=True) if sm.requires_grad else [None] * len(xm)
        for a, b in zip(hm, ht):
            if b is not None:
                np.testing.assert_allclose(0 if a is None else a.numpy(), b.numpy(force=True), rtol=1e-11, atol=1e-11)
                compared += 1
    return compared


@requires_torch
@pytest.mark.parametrize("zeros", [(), ((0, 1),), ((0, 1), (0, 3)), ((1, 1), (2, 0))])
@pytest.mark.parametrize("dim", [None, 1, 0])
def test_prod_gradients_match_pytorch_also_at_zeros(zeros, dim, rng):
    def zeroed(x):
        mask = np.ones(x.shape)
        for z in zeros:
            mask[z] = 0
        return x * (mask if isinstance(x, mb.Tensor) else torch.tensor(mask))

    assert _both(rng, lambda x: zeroed(x).prod(dim) * 1.5 if dim is not None else zeroed(x).prod(),
          lambda x: zeroed(x).prod(dim) * 1.5 if dim is not None else zeroed(x).prod(), (3, 4)) > 1


@requires_torch
@pytest.mark.parametrize("equation, shapes", [
    ("ij,jk->ik", [(3, 4), (4, 2)]), ("bij,bjk", [(2, 3, 4), (2, 4, 2)]), ("ii->i", [(3, 3)]), ("ii", [(3, 3)]),
    ("iij->ji", [(3, 3, 2)]), ("...ij->...ji", [(2, 3, 4)]), ("ij->", [(3, 4)]), ("i,j->ij", [(3,), (4,)]),
    ("ij,ij->i", [(3, 4), (1, 4)]), ("...i,...i->...", [(2, 1, 3), (4, 3)]), ("ijk,jl,kl->il", [(2, 3, 4), (3, 5), (4, 5)]),
    ("ab,cd->", [(2, 3), (4, 5)]), ("ii,ij->j", [(3, 3), (3, 2)]),
])
def test_einsum_matches_pytorch_to_second_order(equation, shapes, rng):
    assert _both(rng, lambda *xs: mb.einsum(equation, *xs), lambda *xs: torch.einsum(equation, *xs), *shapes) > len(shapes)


def test_einsum_refuses_what_does_not_fit():
    with pytest.raises(ValueError, match="subscript 'j' has sizes 4 and 5"):
        mb.einsum("ij,jk->ik", mb.randn(3, 4), mb.randn(5, 5))
    with pytest.raises(ValueError, match="output subscripts 'k'"):
        mb.einsum("ij->k", mb.randn(3, 4))
    with pytest.raises(ValueError, match="do not match operand 0 of shape"):
        mb.einsum("ij", mb.randn(3))
    with pytest.raises(ValueError, match="has 2 operand"):
        mb.einsum("ij,jk", mb.randn(3, 3))


@requires_torch
def test_gather_scatter_and_index_select_match_pytorch(rng):
    rows = mb.tensor([[2, 0, 1, 2], [0, 0, 1, 1]])
    assert _both(rng, lambda x: x.gather(0, rows), lambda x: x.gather(0, torch.tensor(rows.numpy())), (3, 4)) > 1
    assert _both(rng, lambda x, s: x.scatter_add(0, rows, s) ** 2, lambda x, s: x.scatter_add(0, torch.tensor(rows.numpy()), s) ** 2,
          (3, 4), (2, 4)) > 2
    distinct = mb.tensor([[0, 1, 2, 0], [1, 2, 0, 2]])
    assert _both(rng, lambda x, s: x.scatter(0, distinct, s) ** 2, lambda x, s: x.scatter(0, torch.tensor(distinct.numpy()), s) ** 2,
          (3, 4), (2, 4)) > 2
    assert _both(rng, lambda x: mb.scatter(x, 1, distinct[:, :3], value=0.5) * x,
          lambda x: torch.scatter(x, 1, torch.tensor(distinct.numpy()[:, :3]), value=0.5) * x, (2, 4)) > 1
    assert _both(rng, lambda x: x.index_select(1, mb.tensor([3, 0, 3])) ** 2,
          lambda x: x.index_select(1, torch.tensor([3, 0, 3])) ** 2, (3, 4)) > 1


def test_indices_out_of_range_are_refused_not_wrapped():
    x = mb.randn(3, 4)
    with pytest.raises(IndexError, match=r"values from -1 to -1, outside \[0, 3\)"):
        x.gather(0, mb.tensor([[-1]]))  # NumPy would read the last row
    with pytest.raises(IndexError, match=r"outside \[0, 4\)"):
        x.index_select(1, mb.tensor([4]))
    with pytest.raises(ValueError, match="as many dimensions as the input"):
        x.gather(0, mb.tensor([1]))
    with pytest.raises(TypeError, match="integer Tensor"):
        x.gather(0, mb.tensor([[0.0]]))
    with pytest.raises(TypeError, match="src is float64 but the input is float32"):
        x.scatter(0, mb.tensor([[0]]), mb.zeros(1, 1, dtype=mb.float64))
    with pytest.raises(TypeError, match="give src or value"):
        x.scatter(0, mb.tensor([[0]]))


@requires_torch
def test_sort_argsort_and_topk_match_pytorch():
    data = np.array([[3.0, 1, np.nan, 1, 2], [0, 5, 5, -1, 2]])
    for descending in (False, True):
        ours = mb.tensor(data).sort(1, descending)
        theirs = torch.tensor(data).sort(dim=1, descending=descending, stable=True)
        np.testing.assert_array_equal(ours.values.numpy(), theirs.values.numpy())  # NaN largest, ties stable
        np.testing.assert_array_equal(ours.indices.numpy(), theirs.indices.numpy())
        np.testing.assert_array_equal(mb.argsort(mb.tensor(data), 0, descending).numpy(),
                                      torch.argsort(torch.tensor(data), dim=0, descending=descending,
                                                    stable=True).numpy())
    values = np.random.default_rng(1).standard_normal((3, 5))
    for k, dim, largest in [(2, 1, True), (3, 0, False), (0, 1, True), (5, -1, False)]:
        ours, theirs = mb.tensor(values).topk(k, dim, largest), torch.tensor(values).topk(k, dim, largest)
        np.testing.assert_array_equal(ours.values.numpy(), theirs.values.numpy())
        np.testing.assert_array_equal(ours.indices.numpy(), theirs.indices.numpy())
    x = mb.tensor(values, requires_grad=True)
    x.topk(2).values.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy().sum(1), [2, 2, 2])  # one unit per value taken
    with pytest.raises(ValueError, match=r"k must be an int in \[0, 5\]"):
        x.topk(6)
    s = mb.tensor(2.0).sort()
    assert s.values.item() == 2.0 and s.indices.item() == 0 and s.values.shape == ()


@requires_torch
def test_erf_and_gelu_match_pytorch(rng):
    assert _both(rng, lambda x: mb.erf(x * 2), lambda x: torch.erf(x * 2), (3, 4)) > 1
    for approximate in ("none", "tanh"):
        assert _both(rng, lambda x: mb.nn.functional.gelu(x * 2, approximate),
              lambda x: torch.nn.functional.gelu(x * 2, approximate=approximate), (3, 4)) > 1
        np.testing.assert_allclose(nn.GELU(approximate)(mb.tensor([0.5])).numpy(),
                                   torch.nn.GELU(approximate)(torch.tensor([0.5])).numpy(), rtol=1e-6)
    assert mb.erf(mb.tensor([0.5])).dtype == mb.float32 and mb.erf(mb.tensor([1, 2])).dtype == mb.float32
    with pytest.raises(ValueError, match="approximate must be"):
        mb.nn.functional.gelu(mb.randn(2), approximate="fast")


@requires_torch
def test_clamp_with_tensor_bounds_sends_the_gradient_where_pytorch_does():
    for lo_values, hi_values in [([0.0, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0]), ([0.5, 0.0, 2.0, 0.2], [0.1, 1.0, 1.0, 0.2])]:
        x = [-1.0, 0.2, 3.0, 0.2]  # below, inside, above; a tie with both bounds in the last column
        got, want = [], []
        for lib, out in ((mb, got), (torch, want)):
            a, lo, hi = (lib.tensor(v, dtype=lib.float64, requires_grad=True) for v in (x, lo_values, hi_values))
            y = a.clamp(lo, hi)
            y.backward(lib.tensor([1.0, 2.0, 3.0, 4.0], dtype=lib.float64))
            out += [y.detach().numpy(), a.grad.numpy(), lo.grad.numpy(), hi.grad.numpy()]
        for g, w in zip(got, want):
            np.testing.assert_array_equal(g, w)
    np.testing.assert_array_equal(mb.tensor([-2.0, 2.0]).clamp(min=mb.tensor([0.0, 0.0])).numpy(), [0.0, 2.0])


@requires_torch
def test_one_argument_where_and_nonzero_match_pytorch():
    data = np.array([[0.0, 1.5, 0.0], [2.0, 0.0, 3.0]])
    for ours, theirs in zip(mb.where(mb.tensor(data) > 0), torch.where(torch.tensor(data) > 0)):
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    np.testing.assert_array_equal(mb.tensor(data).nonzero().numpy(), torch.tensor(data).nonzero().numpy())
    for value in (2.0, 0.0):
        assert mb.tensor(value).nonzero().shape == tuple(torch.tensor(value).nonzero().shape)
    with pytest.raises(TypeError, match="give both input and other"):
        mb.where(mb.tensor([True]), 1.0)


@requires_torch
def test_zero_dimensional_inputs_behave_as_in_pytorch():
    for lib in (mb, torch):
        x = lib.tensor(3.0, requires_grad=True)
        assert lib.softmax(x, 0).item() == 1.0 and x.log_softmax(-1).item() == 0.0
        values, indices = x.max(0)
        assert values.item() == 3.0 and indices.item() == 0 and x.argmax(0).item() == 0
        assert x.transpose(0, -1).shape == () and x.min(-1)[0].shape == ()
        values.backward()
        assert x.grad.item() == 1.0
        for bad in (lambda: x.max(1), lambda: x.transpose(0, 1), lambda: lib.softmax(x, 1)):
            with pytest.raises(IndexError):
                bad()


def test_assigning_data_swaps_the_array_and_keeps_requires_grad():
    w = mb.randn(3, requires_grad=True)
    w.data = mb.zeros(2, 2)
    assert w.shape == (2, 2) and w.requires_grad and w.is_leaf
    (w * 2).sum().backward()
    np.testing.assert_array_equal(w.grad.numpy(), np.full((2, 2), 2.0))
    with pytest.raises(TypeError, match="data must be set to a Tensor"):
        w.data = np.zeros(2)
    with pytest.raises(TypeError, match="requires grad"):
        w.data = mb.tensor([1, 2])


@requires_torch
def test_linear_with_a_one_dimensional_weight_and_the_vector_norm(rng):
    assert _both(rng, lambda x, w: mb.nn.functional.linear(x, w), lambda x, w: torch.nn.functional.linear(x, w), (3, 4), (4,)) > 2
    with pytest.raises(ValueError, match="a 1-D weight takes no bias"):
        mb.nn.functional.linear(mb.randn(3, 4), mb.randn(4), mb.tensor(0.0))
    for ord_ in (2, 1, 3, np.inf, -np.inf):
        assert _both(rng, lambda x: mb.linalg.vector_norm(x, ord_, 1, keepdim=True) * 1.0,
              lambda x: torch.linalg.vector_norm(x, ord_, 1, keepdim=True) * 1.0, (3, 4)) > 1
    x = mb.tensor([[0.0, 2.0, -1.0], [0.0, 0.0, 5.0]], requires_grad=True)
    count = mb.linalg.vector_norm(x, 0, dim=1)  # the number of non-zeros: on the graph, gradient 0
    np.testing.assert_array_equal(count.detach().numpy(), [2.0, 1.0])
    count.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.zeros((2, 3)))


def test_every_public_function_and_tensor_method_has_a_docstring():
    import inspect

    import minibn.nn.functional as F

    missing = [f"Tensor.{n}" for n, v in vars(mb.Tensor).items() if callable(v) and not n.startswith("_") and not v.__doc__]
    for module in (mb, F, mb.linalg, mb.autograd.functional):
        missing += [f"{module.__name__}.{n}" for n in dir(module) if not n.startswith("_")
                    and inspect.isfunction(getattr(module, n)) and not getattr(module, n).__doc__]
    assert not missing, missing


@requires_torch
def test_logsumexp_with_an_infinite_maximum_matches_pytorch():
    for values in ([np.inf, 1.0], [-np.inf, -np.inf], [-np.inf, 2.0]):
        ours, theirs = mb.tensor(values, requires_grad=True), torch.tensor(values, requires_grad=True)
        with np.errstate(all="ignore"):  # log(0) and inf - inf on the way, as in PyTorch
            a, b = mb.logsumexp(ours, 0), torch.logsumexp(theirs, 0)
            assert a.item() == b.item()
            a.backward()
        b.backward()
        np.testing.assert_array_equal(ours.grad.numpy(), theirs.grad.numpy())  # NaN where PyTorch's is NaN


@requires_torch
def test_einsum_with_empty_dimensions_matches_pytorch():
    assert mb.einsum("ij->i", mb.zeros(0, 3)).shape == (0,)
    out = mb.einsum("ij,jk->ik", mb.zeros(2, 0), mb.zeros(0, 3))
    assert out.shape == tuple(torch.einsum("ij,jk->ik", torch.zeros(2, 0), torch.zeros(0, 3)).shape)
    np.testing.assert_array_equal(out.numpy(), 0)


@requires_torch
@pytest.mark.parametrize("dim", [None, 1, 0])
def test_prods_first_derivative_at_zeros_is_linear_in_memory_and_matches_pytorch(dim, rng):
    x = rng.standard_normal((3, 5))
    x[0, 1] = x[1, 2] = x[1, 4] = 0  # one zero in row 0, two in row 1, none in row 2
    ours, theirs = mb.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    (ours.prod() if dim is None else ours.prod(dim)).sum().backward()
    (theirs.prod() if dim is None else theirs.prod(dim)).sum().backward()
    np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), rtol=1e-13, atol=1e-15)
    big = mb.zeros(100_000, dtype=mb.float64, requires_grad=True)
    big.prod().backward()  # n^2 = 1e10 would not fit: the first derivative takes O(n)
    assert big.grad.shape == (100_000,)
    with pytest.raises(ValueError, match="differentiable backward at exact zeros of slices of 100000 elements"):
        mb.grad(big.prod(), [big], create_graph=True)


def test_typed_tensor_classes_build_their_dtype_exactly():
    assert mb.LongTensor([2 ** 40 + 1]).tolist() == [2 ** 40 + 1]  # not through float32
    assert mb.DoubleTensor([0.1]).tolist() == [0.1] and mb.LongTensor(2, 3).shape == (2, 3)
    assert mb.LongTensor(mb.ones(2)).dtype == mb.int64 and mb.FloatTensor(np.arange(3)).dtype == mb.float32
    assert mb.FloatTensor([1.5], requires_grad=True).requires_grad

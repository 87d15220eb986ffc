"""Idioms of small PyTorch training scripts, each written once as a function of the library and run
twice: on minibn (as ``import minibn as torch`` would give it) and, where PyTorch is installed, on
PyTorch. Both runs must give the same answers (to float32 rounding); the idioms' own asserts hold
on either library."""

import collections
import io
import math
import warnings

import numpy as np
import pytest

import minibn

from .conftest import torch

LIBRARIES = [minibn] + ([torch] if torch is not None else [])
IDIOMS = []


def idiom(fn):
    IDIOMS.append(fn)
    return fn


def plain(value):
    """A value both libraries' results can be compared in: arrays, lists, numbers, strings."""
    if minibn.is_tensor(value) or (torch is not None and isinstance(value, torch.Tensor)):
        return np.asarray(value.detach().cpu().numpy())
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, np.dtype) or (torch is not None and isinstance(value, torch.dtype)):
        return "dtype " + str(value).replace("torch.", "")
    return value


def assert_same(mine, theirs, where="result"):
    if isinstance(mine, dict):
        assert sorted(mine) == sorted(theirs), where
        for k in mine:
            assert_same(mine[k], theirs[k], f"{where}[{k!r}]")
    elif isinstance(mine, list):
        assert len(mine) == len(theirs), where
        for i, (a, b) in enumerate(zip(mine, theirs)):
            assert_same(a, b, f"{where}[{i}]")
    elif isinstance(mine, np.ndarray):
        assert mine.shape == np.shape(theirs) and mine.dtype == np.asarray(theirs).dtype, \
            f"{where}: {mine.shape} {mine.dtype} vs {np.shape(theirs)} {np.asarray(theirs).dtype}"
        np.testing.assert_allclose(mine, theirs, rtol=2e-5, atol=1e-6, err_msg=where)
    elif isinstance(mine, float):
        assert math.isclose(mine, theirs, rel_tol=2e-5, abs_tol=1e-6), f"{where}: {mine} vs {theirs}"
    else:
        assert mine == theirs, f"{where}: {mine!r} vs {theirs!r}"


@pytest.mark.parametrize("run", IDIOMS, ids=lambda f: f.__name__)
def test_the_idiom_runs_on_minibn_as_on_pytorch(run):
    mine = plain(run(minibn))
    if torch is None:
        pytest.skip("PyTorch is not installed: the idiom ran on minibn, with no PyTorch to compare with")
    assert_same(mine, plain(run(torch)))


def _inputs(seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((8, 5)).astype(np.float32), rng.integers(0, 3, 8)


def _linear(torch, n_in, n_out, seed):
    """A Linear layer whose weights come from NumPy, so that both libraries start from the same ones."""
    layer = torch.nn.Linear(n_in, n_out)
    rng = np.random.default_rng(seed)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(rng.uniform(-0.5, 0.5, (n_out, n_in)).astype(np.float32)))
        layer.bias.copy_(torch.tensor(rng.uniform(-0.5, 0.5, n_out).astype(np.float32)))
    return layer


@idiom
def seeds_switches_and_threads(torch):
    torch.manual_seed(3689)
    torch.cuda.manual_seed(3689)
    torch.cuda.manual_seed_all(3689)
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    one = torch.get_num_threads()
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True, warn_only=True)
    flags = [torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()]
    torch.use_deterministic_algorithms(False)
    device = torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
    return [torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark, one, torch.get_num_threads() == threads,
            flags, torch.are_deterministic_algorithms_enabled(), str(device), torch.backends.mps.is_available()]


@idiom
def data_loader_arguments(torch):
    data = torch.utils.data
    x, y = torch.tensor(np.arange(20.0, dtype=np.float32).reshape(10, 2)), torch.tensor(np.arange(10))
    ds = data.TensorDataset(x, y)
    out = {}
    with warnings.catch_warnings():  # PyTorch's, on a machine without an accelerator to pin memory for
        warnings.filterwarnings("ignore", "'pin_memory' argument")
        loader = data.DataLoader(ds, batch_size=4, shuffle=False, num_workers=2, pin_memory=True, drop_last=True,
                                 persistent_workers=False)
        out["workers"] = [[bx, by] for bx, by in loader] + [len(loader)]
    out["collate"] = [b for b in data.DataLoader(ds, batch_size=3, collate_fn=lambda s: torch.stack([v[0] for v in s]).sum(0))]
    out["sampler"] = [by for _, by in data.DataLoader(ds, batch_size=3, sampler=data.SequentialSampler(ds))]
    batches = data.BatchSampler(data.SequentialSampler(range(10)), 4, drop_last=False)
    out["batch_sampler"] = [list(batches), [by for _, by in data.DataLoader(ds, batch_sampler=batches)]]
    shuffled = data.DataLoader(ds, batch_size=3, shuffle=True, generator=torch.Generator().manual_seed(0))
    out["shuffled"] = sorted(int(v) for _, by in shuffled for v in by)
    out["random"] = [len(data.RandomSampler(ds, replacement=True, num_samples=5)), sorted(data.RandomSampler(ds)),
                     sorted(data.SubsetRandomSampler([1, 3, 5])), list(data.WeightedRandomSampler([0.0, 0.0, 1.0], 4))]
    out["one_by_one"] = list(next(iter(data.DataLoader(ds, batch_size=None))))
    out["worker info in the main process"] = data.get_worker_info()
    out["dicts"] = next(iter(data.DataLoader([{"a": 1.0, "b": 2}, {"a": 3.0, "b": 4}], batch_size=2)))
    for bad in (dict(sampler=data.SequentialSampler(ds), shuffle=True), dict(num_workers=-1), dict(prefetch_factor=2),
                dict(persistent_workers=True), dict(batch_sampler=batches, batch_size=3), dict(timeout=-1)):
        with pytest.raises(ValueError):
            data.DataLoader(ds, **bad)
    return out


@idiom
def init_and_in_place_fills(torch):
    nn = torch.nn
    w = torch.empty(30, 20)
    out = {}
    nn.init.xavier_uniform_(w)
    out["xavier_uniform bound"] = bool(w.abs().max() <= math.sqrt(6 / 50))
    nn.init.kaiming_normal_(w, mode="fan_out", nonlinearity="relu")
    out["kaiming std"] = abs(float(w.std()) / math.sqrt(2 / 30) - 1) < 0.15
    nn.init.trunc_normal_(w, std=0.02, a=-0.03, b=0.03)
    out["trunc_normal bounds"] = bool((w.abs() <= 0.03).all())
    with warnings.catch_warnings():  # PyTorch warns that the mean lies far outside [a, b]: that is the case tested
        warnings.simplefilter("ignore", UserWarning)
        tail = nn.init.trunc_normal_(torch.empty(1000), a=7.0, b=8.0)  # (rejection alone would never end here)
    out["trunc_normal far tail"] = [bool((tail >= 7).all() and (tail <= 8).all()), abs(float(tail.mean()) - 7.14) < 0.02]
    out["orthogonal of nothing"] = tuple(nn.init.orthogonal_(torch.empty(0, 3)).shape)
    nn.init.orthogonal_(w, gain=2.0)
    out["orthogonal"] = (w.t() @ w / 4).numpy().round(4)
    out["eye"] = nn.init.eye_(torch.empty(2, 3))
    out["constant"] = [nn.init.constant_(torch.empty(2), 0.5), nn.init.ones_(torch.empty(2)), nn.init.zeros_(torch.empty(2))]
    out["gain"] = nn.init.calculate_gain("relu")
    layer = nn.Linear(20, 30)
    layer.weight.data.normal_(0, 0.01)
    layer.bias.data.zero_()
    out["normal_"] = [abs(float(layer.weight.detach().std()) / 0.01 - 1) < 0.15, layer.bias]
    layer.weight.data.uniform_(-0.1, 0.1)
    out["uniform_"] = bool(layer.weight.abs().max() <= 0.1)
    layer.weight.data.clamp_(-0.05, 0.05).fill_(0.25).clamp_(max=0.2)
    out["clamp_ fill_"] = layer.weight[0, :3]
    return out


@idiom
def legacy_constructors_types_and_sizes(torch):
    x = torch.Tensor([1, 2])
    out = {"Tensor(list)": [x, x.dtype], "Tensor(2, 3)": [tuple(torch.Tensor(2, 3).shape), torch.Tensor(2, 3).dtype],
           "Tensor()": tuple(torch.Tensor().shape),
           "typed": [torch.FloatTensor([1, 2]).dtype, torch.LongTensor([1, 2]), torch.DoubleTensor(2).dtype,
                     torch.tensor(np.arange(3)).type(torch.FloatTensor), torch.tensor([0.5, 1.5]).type(torch.LongTensor),
                     x.type(), x.type("torch.DoubleTensor").dtype, isinstance(x, torch.FloatTensor),
                     isinstance(x.double(), torch.FloatTensor)],
           "is_tensor": [torch.is_tensor(x), torch.is_tensor([1.0]), torch.is_tensor(np.ones(2))]}
    shape = torch.zeros(2, 3).shape
    out["Size"] = [shape == torch.Size([2, 3]), shape == (2, 3), isinstance(shape, torch.Size), shape.numel(),
                   isinstance(shape + (4,), torch.Size), isinstance(shape * 2, torch.Size), list(shape + (4,)),
                   isinstance(torch.zeros(2, 3).size(), tuple), torch.Size([2, 3])[1:] == (3,), list(shape)]
    out["equal numel"] = [torch.equal(x, torch.tensor([1.0, 2.0])), torch.equal(x, torch.tensor([1.0])),
                          torch.equal(torch.tensor([1, 2]), torch.tensor([1.0, 2.0])),
                          torch.equal(torch.tensor([math.nan]), torch.tensor([math.nan])), torch.numel(torch.zeros(3, 4))]
    with pytest.raises(TypeError):
        torch.Tensor(3.5)
    return out


@idiom
def printing_ignores_numpy_print_options(torch):
    previous = np.get_printoptions()
    np.set_printoptions(suppress=True, precision=2, linewidth=30)  # as the seed author's scripts set them
    try:
        values = [np.array(1.13e-05, np.float32), np.array([1.0, 2.5], np.float32), np.array([1.0, 2.0], np.float32),
                  np.array([0.0, math.nan, -1.5], np.float32), np.array([1e9, 1.0], np.float32), np.arange(4),
                  np.array([True, False]), np.zeros((0, 3), np.float32), np.zeros(0, np.int64), np.zeros((0, 2), bool),
                  np.zeros(0, np.float64),
                  np.random.default_rng(0).standard_normal((4, 30)).astype(np.float32),
                  np.random.default_rng(1).standard_normal((2, 3, 700)).astype(np.float32) * 1e-5,
                  np.random.default_rng(2).integers(-9, 9, (3, 3)).astype(np.float64)]
        texts = [repr(torch.tensor(v)).replace("torch.", "") for v in values]
        texts.append(repr(torch.tensor([0.5, 2.0], requires_grad=True)))
        texts.append(str(torch.zeros(2, 3).shape).replace("torch.", "").replace("minibn.", ""))
    finally:
        np.set_printoptions(**previous)
    return texts


@idiom
def decorators_and_inference_mode(torch):
    w = torch.ones(2, requires_grad=True)

    @torch.no_grad
    def bare(x):
        return x * 2

    @torch.no_grad()
    def called(x):
        return x * 2

    @torch.inference_mode()
    def evaluate(x):
        return x * 2, torch.is_inference_mode_enabled()

    @torch.no_grad
    def batches(x):
        received = yield (x * 2).requires_grad  # the mode holds inside the generator, not in its caller
        yield received, torch.is_grad_enabled()

    steps = batches(w)
    generated = [next(steps), torch.is_grad_enabled(), steps.send("sent")]
    out = [generated, bare(w).requires_grad, called(w).requires_grad, evaluate(w)[0].requires_grad, evaluate(w)[1],
           bare.__name__, (w * 2).requires_grad, torch.is_inference_mode_enabled()]
    with torch.inference_mode():
        out.append((w * 2).requires_grad)
        with torch.inference_mode(False):
            out.append(torch.is_inference_mode_enabled())
    with torch.set_grad_enabled(False):
        out.append((w * 2).requires_grad)
    return out


@idiom
def checkpoints_through_file_objects(torch):
    x, y = (torch.tensor(v) for v in _inputs())
    net = torch.nn.Sequential(_linear(torch, 5, 4, 1), torch.nn.ReLU(), _linear(torch, 4, 3, 2))
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)

    def step():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(net(x), y)
        loss.backward()
        opt.step()
        return loss.item()

    losses = [step()]
    buffer = io.BytesIO()
    torch.save({"model": net.state_dict(), "optimizer": opt.state_dict(), "epoch": 1, "note": "after one step",
                "losses": losses, "shape": x.shape}, buffer)
    buffer.seek(0)
    ck = torch.load(buffer, weights_only=True)
    resumed = torch.nn.Sequential(torch.nn.Linear(5, 4), torch.nn.ReLU(), torch.nn.Linear(4, 3))
    resumed.load_state_dict(ck["model"])
    opt2 = torch.optim.SGD(resumed.parameters(), lr=0.1, momentum=0.9)
    opt2.load_state_dict(ck["optimizer"])
    step()
    opt2.zero_grad()
    torch.nn.functional.cross_entropy(resumed(x), y).backward()
    opt2.step()
    import tempfile

    with tempfile.TemporaryFile() as f:
        torch.save(resumed.state_dict(), f)
        f.seek(0)
        back = torch.load(f, map_location="cpu")
    return [ck["epoch"], ck["note"], ck["losses"], ck["shape"] == (8, 5), isinstance(ck["shape"], torch.Size),
            [g["params"] for g in ck["optimizer"]["param_groups"]], list(back), [p for p in net.parameters()],
            [p for p in resumed.parameters()]]


@idiom
def containers_and_state_dict_keys(torch):
    nn = torch.nn
    model = nn.Sequential(collections.OrderedDict([("fc1", nn.Linear(3, 4)), ("act", nn.ReLU(inplace=True)),
                                                   ("fc2", nn.Linear(4, 2))]))
    model.add_module("out", nn.Softmax(dim=1))
    out = [list(model.state_dict()), tuple(model.fc1.weight.shape), len(model), [n for n, _ in model.named_children()],
           repr(model.act), repr(model.out), repr(nn.MSELoss(reduction="sum")),
           [list(loss.state_dict()) for loss in (nn.CrossEntropyLoss(weight=torch.ones(3)), nn.NLLLoss(),
                                                 nn.BCEWithLogitsLoss(pos_weight=torch.ones(2)))]]
    partial = {k: v for k, v in model.state_dict().items() if k != "fc2.bias"}
    partial["head.weight"] = torch.zeros(2)
    keys = model.load_state_dict(partial, strict=False)
    out += [keys.missing_keys, keys.unexpected_keys, list(keys)]
    with pytest.raises(RuntimeError, match="Missing key"):
        model.load_state_dict(partial)
    wrong = dict(model.state_dict(), **{"fc1.bias": torch.zeros(5)})
    with pytest.raises(RuntimeError, match="size mismatch for fc1.bias"):
        model.load_state_dict(wrong)
    return out


@idiom
def gradient_clipping(torch):
    rng = np.random.default_rng(4)
    params = [torch.zeros(3, 4, requires_grad=True), torch.zeros(4, requires_grad=True)]
    for p in params:
        p.grad = torch.tensor(rng.standard_normal(tuple(p.shape)).astype(np.float32))
    total = torch.nn.utils.clip_grad_norm_(params, max_norm=0.5)
    after = [p.grad.clone() for p in params]
    inf_total = torch.nn.utils.clip_grad_norm_(params, 0.1, norm_type=math.inf)
    torch.nn.utils.clip_grad_value_(params, clip_value=0.01)
    vector = torch.nn.utils.parameters_to_vector(params)
    return [total, after, inf_total, [p.grad for p in params], tuple(vector.shape)]


@idiom
def tensor_methods_and_elementwise_max(torch):
    a, b = torch.tensor([[1.0, 5.0], [3.0, -2.0]]), torch.tensor([[3.0, 2.0], [3.0, 0.0]])
    x = torch.tensor(np.arange(6.0, dtype=np.float32))
    out = {"max min": [torch.max(a, b), torch.min(a, b), a.max(b), torch.max(a, 1)[1]],
           "t": [a.t(), x.t(), torch.ones(2, 3).t().shape == (3, 2)],
           "as": [x.view_as(torch.zeros(2, 3)), torch.tensor([1.0, 2.0]).expand_as(torch.zeros(3, 2)),
                  x.reshape_as(torch.zeros(3, 2))],
           "new": [a.new_zeros(2), a.new_ones((1, 2)), a.new_tensor([1, 2]), a.new_full((2,), 7),
                   a.new_zeros(2, dtype=torch.int64), a.new_empty(3).shape == (3,)],
           "one_hot": [torch.nn.functional.one_hot(torch.tensor([0, 2, 1]), num_classes=4),
                       torch.nn.functional.one_hot(torch.tensor([[0], [2]]))]}
    with pytest.raises(RuntimeError):
        torch.ones(2, 2, 2).t()
    y = torch.tensor([-1.0, 2.0])
    torch.nn.functional.relu(y, inplace=True)
    out["relu in place"] = y
    out["clamp_ tensor bounds"] = torch.arange(5.0).clamp_(torch.tensor(2.0), torch.tensor(3.0))
    return out


@idiom
def losses_forward_and_backward(torch):
    rng = np.random.default_rng(5)
    logits = rng.standard_normal((6, 4))
    logits[0] = 0.0  # the stable forms must have the right gradient at exactly 0 too
    labels = np.array([0, 1, 2, 3, 1, 0])
    targets = rng.uniform(0, 1, (6, 4))
    weight, pos_weight = rng.uniform(0.5, 2, 4), rng.uniform(0.5, 3, 4)
    nn, F = torch.nn, torch.nn.functional
    out = {}
    cases = {
        "NLLLoss": lambda x: nn.NLLLoss(weight=torch.tensor(weight), ignore_index=1)(nn.LogSoftmax(dim=1)(x),
                                                                                  torch.tensor(labels)),
        "nll_loss sum": lambda x: F.nll_loss(F.log_softmax(x, 1), torch.tensor(labels), reduction="sum"),
        "nll_loss none": lambda x: F.nll_loss(torch.log(nn.Softmax(dim=1)(x)), torch.tensor(labels), reduction="none"),
        "BCELoss": lambda x: nn.BCELoss(weight=torch.tensor(weight))(torch.sigmoid(x), torch.tensor(targets)),
        "BCE none": lambda x: F.binary_cross_entropy(torch.sigmoid(x), torch.tensor(targets), reduction="none"),
        "BCEWithLogitsLoss": lambda x: nn.BCEWithLogitsLoss(pos_weight=torch.tensor(pos_weight))(x, torch.tensor(targets)),
        "bce_with_logits": lambda x: F.binary_cross_entropy_with_logits(x, torch.tensor(targets),
                                                                        weight=torch.tensor(weight), reduction="sum"),
    }
    upstream = torch.tensor(rng.standard_normal(6))
    for name, loss_of in cases.items():
        x = torch.tensor(logits, requires_grad=True)
        loss = loss_of(x)
        (loss if loss.ndim == 0 else (loss * (upstream if loss.ndim == 1 else upstream[:, None])).sum()).backward()
        out[name] = [loss, x.grad]
    saturated = torch.tensor([[20.0, -20.0]], requires_grad=True)  # sigmoid gives exactly 1 in float32
    nn.BCELoss()(torch.sigmoid(saturated), torch.tensor([[1.0, 0.0]])).backward()
    edges = torch.tensor([0.0, 1.0], requires_grad=True)
    edge_loss = F.binary_cross_entropy(edges, torch.tensor([0.5, 0.5]))
    edge_loss.backward()
    ignored = torch.tensor(logits, requires_grad=True)
    none_kept = F.nll_loss(F.log_softmax(ignored, 1), torch.tensor([-100] * 6))
    none_kept.backward()
    out["edges"] = [saturated.grad, edge_loss, edges.grad, none_kept, ignored.grad,
                    F.nll_loss(torch.tensor(logits[1]), torch.tensor(2))]
    with pytest.raises(RuntimeError, match="between 0 and 1"):
        F.binary_cross_entropy(torch.tensor([1.5]), torch.tensor([1.0]))
    return out


@idiom
def parameter_groups_and_lambda_lr(torch):
    x, y = (torch.tensor(v) for v in _inputs(6))
    base, head = _linear(torch, 5, 4, 7), _linear(torch, 4, 3, 8)
    opt = torch.optim.SGD(base.parameters(), lr=0.1, momentum=0.9)
    opt.add_param_group({"params": head.parameters(), "lr": 0.01})
    with pytest.raises(ValueError):
        opt.add_param_group({"params": [head.weight]})
    scheduler = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda=[lambda e: 0.9 ** e, lambda e: 1 / (e + 1)])
    rates = []
    for _ in range(3):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(head(torch.relu(base(x))), y).backward()
        opt.step()
        scheduler.step()
        rates.append(scheduler.get_last_lr())
    return [rates, [g["momentum"] for g in opt.param_groups], list(base.parameters()), list(head.parameters())]


@idiom
def accumulating_losses_builds_the_graph(torch):
    w = torch.tensor(np.array([0.5, -1.0, 2.0]), requires_grad=True)
    total = 0
    running = 0.0
    for k in range(1, 4):
        loss = (w * k).pow(2).sum()
        total += loss  # rebinding a graph tensor: PyTorch records it, and so does minibn
        running += loss.item()
    total.backward()
    start = torch.zeros(())
    start += (w * w).sum()
    (g,) = torch.autograd.grad(start, w)
    with pytest.raises(RuntimeError):
        w += 1  # an in-place change of a leaf that requires grad stays refused
    x = w * 1
    with pytest.raises(RuntimeError, match="doesn't match the broadcast shape"):
        x += torch.ones(2, 3, dtype=torch.float64)
    kept = w * 1
    kept += torch.ones(3, dtype=torch.float32)  # x's dtype wins, as in place
    with pytest.raises(RuntimeError, match="can't be cast"):
        counts = torch.zeros(3, dtype=torch.int64)
        counts += w
    return [total, running, w.grad, g, kept.dtype]


@idiom
def view_follows_pytorchs_stride_rule(torch):
    rng = np.random.default_rng(7)
    outcomes = []
    for _ in range(300):
        shape = tuple(int(s) for s in rng.choice([1, 2, 3, 4], int(rng.integers(1, 5))))
        t = torch.tensor(rng.standard_normal(shape).astype(np.float32)).permute(*rng.permutation(len(shape)).tolist())
        t = t[tuple(slice(None, None, 2) if rng.random() < 0.2 else slice(None) for _ in shape)]
        n = t.numel()
        sizes = [d for d in range(1, n + 1) if n % d == 0]
        first = int(rng.choice(sizes))
        new = (first, -1) if rng.random() < 0.5 else (n // first, first, 1)
        try:
            outcomes.append(t.view(*new))
        except RuntimeError:
            outcomes.append("refused")
    return outcomes


SIGNATURES = {  # minibn's name -> PyTorch's, whose parameters (names and defaults) minibn must take
    "utils.data.DataLoader": "utils.data.DataLoader", "utils.data.RandomSampler": "utils.data.RandomSampler",
    "utils.data.SubsetRandomSampler": "utils.data.SubsetRandomSampler",
    "utils.data.WeightedRandomSampler": "utils.data.WeightedRandomSampler",
    "utils.data.BatchSampler": "utils.data.BatchSampler", "utils.data.SequentialSampler": "utils.data.SequentialSampler",
    "nn.utils.clip_grad_norm_": "nn.utils.clip_grad_norm_", "nn.utils.clip_grad_value_": "nn.utils.clip_grad_value_",
    "nn.utils.parameters_to_vector": "nn.utils.parameters_to_vector",
    "nn.utils.vector_to_parameters": "nn.utils.vector_to_parameters",
    "nn.functional.nll_loss": "nn.functional.nll_loss",
    "nn.functional.binary_cross_entropy": "nn.functional.binary_cross_entropy",
    "nn.functional.binary_cross_entropy_with_logits": "nn.functional.binary_cross_entropy_with_logits",
    "nn.init.trunc_normal_": "nn.init.trunc_normal_", "nn.init.eye_": "nn.init.eye_",
    "nn.init.orthogonal_": "nn.init.orthogonal_", "nn.init.xavier_uniform_": "nn.init.xavier_uniform_",
    "nn.init.kaiming_normal_": "nn.init.kaiming_normal_", "nn.init.normal_": "nn.init.normal_",
    "optim.lr_scheduler.LambdaLR": "optim.lr_scheduler.LambdaLR",
    "optim.Optimizer.add_param_group": "optim.Optimizer.add_param_group", "load": "load", "save": "save",
    "nn.ReLU": "nn.ReLU", "nn.Softmax": "nn.Softmax", "nn.LogSoftmax": "nn.LogSoftmax", "nn.NLLLoss": "nn.NLLLoss",
    "nn.BCELoss": "nn.BCELoss", "nn.BCEWithLogitsLoss": "nn.BCEWithLogitsLoss",
    "nn.Module.load_state_dict": "nn.Module.load_state_dict", "nn.Module.add_module": "nn.Module.add_module",
    "use_deterministic_algorithms": "use_deterministic_algorithms", "inference_mode": "inference_mode",
}
# (minibn never pickles: save's pickle arguments are accepted, with None for their defaults, and unused)
UNUSED_BY_MINIBN = {"save": {"pickle_module", "pickle_protocol", "_use_new_zipfile_serialization",
                             "_disable_byteorder_record"}}


@pytest.mark.parametrize("name", sorted(SIGNATURES))
def test_the_signature_takes_pytorchs_parameters_and_defaults(name):
    import inspect
    import operator

    if torch is None:
        pytest.skip("PyTorch is not installed: nothing to compare the signature with")
    mine = inspect.signature(operator.attrgetter(name)(minibn)).parameters
    theirs = inspect.signature(operator.attrgetter(SIGNATURES[name])(torch)).parameters
    for param, spec in theirs.items():
        if param in UNUSED_BY_MINIBN.get(name, ()):
            continue
        assert param in mine, f"{name} lacks PyTorch's parameter {param!r}"
        assert repr(mine[param].default) == repr(spec.default), (name, param, mine[param].default, spec.default)

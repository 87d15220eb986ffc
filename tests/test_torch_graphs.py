"""Random op graphs against PyTorch in float64: values, the gradient of every input (with random
upstream weights) and a Hessian-vector product.

Each graph is drawn from a seed: 1-3 inputs of 0 to 4 dimensions (sides 1-3, broadcasting
against each other), then 2-6 ops from OPS, each written once and run on minibn and on PyTorch
through the same method names, so the suite checks the API as well as the numbers. Batch norm's
PyTorch side is written with primitive ops in training mode (its own double backward saves the
statistics as constants); eval mode, boolean masks, losses, sorting and gathering are in OPS
too. Where a std meets a constant slice (a kink: std 0 up to rounding), only the values are
compared: each library's rounding decides whether its derivatives there are 0 or noise. The
default run checks GRAPHS graphs; ``pytest -m slow`` checks SLOW_GRAPHS.
A mismatch fails with the seed and the ops, which rebuild the graph: ``describe(seed)``.
"""

import numpy as np
import pytest

import minibn as mb

from .conftest import requires_torch, torch

GRAPHS = 300
SLOW_GRAPHS = 10_000
RTOL, ATOL = 1e-9, 1e-11

pytestmark = requires_torch


def _dims(rng, ndim):
    """A random non-empty set of dims (as a tuple, sometimes as one int) and keepdim."""
    k = int(rng.integers(1, ndim + 1))
    dims = tuple(int(d) for d in rng.choice(ndim, size=k, replace=False))
    dims = tuple(d - ndim if rng.random() < 0.3 else d for d in dims)
    return (dims[0] if len(dims) == 1 and rng.random() < 0.5 else dims), bool(rng.random() < 0.5)


# Each op: (name, arity, applies(shapes) -> bool, make(rng, shapes) -> fn(lib, F, *xs)).
def _unary(expr):
    return lambda rng, shapes: expr


def _reduction(name):
    def make(rng, shapes):
        ndim = len(shapes[0])
        if ndim == 0 or rng.random() < 0.2:
            return lambda lib, F, x: getattr(x, name)()
        dim, keepdim = _dims(rng, ndim)
        return lambda lib, F, x: getattr(x, name)(dim=dim, keepdim=keepdim)
    return make


def _variance(name):
    def make(rng, shapes):
        shape = shapes[0]
        dims = [d for d in range(len(shape)) if shape[d] > 1]
        if not dims:
            return lambda lib, F, x: getattr(x, name)(correction=0)
        dim = int(rng.choice(dims))
        unbiased, keepdim = bool(rng.random() < 0.5), bool(rng.random() < 0.5)
        return lambda lib, F, x: getattr(x, name)(dim, unbiased, keepdim)  # PyTorch's positional order
    return make


def _transpose(rng, shapes):
    ndim = len(shapes[0])
    a, b = (int(v) for v in rng.integers(0, ndim, size=2))
    return lambda lib, F, x: x.transpose(a, b)


def _permute(rng, shapes):
    order = [int(v) for v in rng.permutation(len(shapes[0]))]
    return lambda lib, F, x: x.permute(*order)


def _reshape(rng, shapes):
    return lambda lib, F, x: x.reshape(-1)


def _unsqueeze(rng, shapes):
    d = int(rng.integers(-len(shapes[0]) - 1, len(shapes[0]) + 1))
    return lambda lib, F, x: x.unsqueeze(d)


def _index(rng, shapes):
    shape = shapes[0]
    index = []
    for side in shape:
        r = rng.random()
        if r < 0.3:
            index.append(int(rng.integers(-side, side)))
        elif r < 0.6:
            index.append(slice(int(rng.integers(0, side)), None))
        elif r < 0.8:
            index.append(("array", [int(v) for v in rng.integers(0, side, size=int(rng.integers(1, 4)))]))
        else:
            index.append(slice(None))
    arrays = [i for i in index if isinstance(i, tuple)]
    if len(arrays) > 1:  # index arrays must broadcast: give them one length
        n = len(arrays[0][1])
        index = [("array", (i[1] * 3)[:n]) if isinstance(i, tuple) else i for i in index]

    def fn(lib, F, x):
        def convert(i):
            if isinstance(i, tuple):
                return lib.tensor(i[1])
            return i
        return x[tuple(convert(i) for i in index)]
    return fn


def _index_apart(rng, shapes):
    """An integer and an index array with a slice between them: NumPy and PyTorch place the
    result's dimensions differently here."""
    shape = shapes[0]
    first, last = int(rng.integers(-shape[0], shape[0])), [int(v) for v in rng.integers(0, shape[2], size=2)]
    index = [first, slice(None), last] if rng.random() < 0.5 else [[int(rng.integers(shape[0]))] * 2, slice(None),
                                                                     int(rng.integers(shape[2]))]

    def fn(lib, F, x):
        return x[tuple(lib.tensor(i) if isinstance(i, list) else i for i in index)]
    return fn


def _batch_norm(rng, shapes):
    eps = 1e-5

    def fn(lib, F, x):
        if lib is mb:
            return F.batch_norm(x, None, None, training=True, eps=eps)
        mean = x.mean(0, keepdim=True)
        return (x - mean) / ((x - mean).pow(2).mean(0, keepdim=True) + eps).sqrt()  # primitive reference
    return fn


def _softmax(name):
    def make(rng, shapes):
        dim = int(rng.integers(-len(shapes[0]), len(shapes[0])))
        return lambda lib, F, x: getattr(F, name)(x, dim=dim)
    return make


def _cross_entropy(rng, shapes):
    n, c = shapes[0]
    labels = [int(v) for v in rng.integers(0, c, size=n)]
    reduction = str(rng.choice(["mean", "sum", "none"]))
    return lambda lib, F, x: F.cross_entropy(x, lib.tensor(labels), reduction=reduction)


def _batch_norm_eval(rng, shapes):
    """Eval mode: fixed running statistics and affine parameters, the same arrays on both sides."""
    c = shapes[0][1]
    mean, var = rng.standard_normal(c), rng.uniform(0.5, 2.0, c)
    weight, bias = rng.standard_normal(c), rng.standard_normal(c)

    def fn(lib, F, x):
        stats = [lib.tensor(a, dtype=lib.float64) for a in (mean, var, weight, bias)]
        return F.batch_norm(x, stats[0], stats[1], stats[2], stats[3], training=False, eps=1e-3)
    return fn


def _mask(rng, shapes):
    """A boolean mask of the input's shape (drawn, not computed: the output's length stays fixed)."""
    mask = rng.random(shapes[0]) < 0.6
    mask.flat[int(rng.integers(mask.size))] = True
    return lambda lib, F, x: x[lib.tensor(mask)]


def _mse_loss(rng, shapes):
    target, reduction = rng.standard_normal(shapes[0]), str(rng.choice(["mean", "sum", "none"]))
    return lambda lib, F, x: F.mse_loss(x, lib.tensor(target), reduction=reduction)


def _along_dim(rng, shapes):
    return int(rng.integers(-len(shapes[0]), len(shapes[0])))


def _prod(rng, shapes):
    if rng.random() < 0.3:
        return lambda lib, F, x: x.prod()
    dim, keepdim = _along_dim(rng, shapes), bool(rng.random() < 0.5)
    return lambda lib, F, x: x.prod(dim, keepdim=keepdim)


def _cumsum(rng, shapes):
    dim = _along_dim(rng, shapes)
    return lambda lib, F, x: x.cumsum(dim)


def _flip(rng, shapes):
    dims = [int(d) for d in rng.choice(len(shapes[0]), size=int(rng.integers(1, len(shapes[0]) + 1)), replace=False)]
    return lambda lib, F, x: x.flip(dims)


def _logsumexp(rng, shapes):
    dim, keepdim = _dims(rng, len(shapes[0]))
    return lambda lib, F, x: lib.logsumexp(x, dim, keepdim=keepdim)


def _gather(rng, shapes):
    shape, dim = shapes[0], _along_dim(rng, shapes)
    index_shape = tuple(int(rng.integers(1, n + 1)) if d != dim % len(shape) else int(rng.integers(1, 4))
                        for d, n in enumerate(shape))
    index = rng.integers(0, shape[dim], size=index_shape)
    return lambda lib, F, x: x.gather(dim, lib.tensor(index))


def _index_select(rng, shapes):
    dim = _along_dim(rng, shapes)
    index = rng.integers(0, shapes[0][dim], size=int(rng.integers(1, 4)))
    return lambda lib, F, x: x.index_select(dim, lib.tensor(index))


def _sort(rng, shapes):
    dim, descending = _along_dim(rng, shapes), bool(rng.random() < 0.5)
    return lambda lib, F, x: x.sort(dim=dim, descending=descending, stable=True).values


def _topk(rng, shapes):
    """topk after a small distinct ramp: relu and clamp make exact ties, whose order PyTorch's topk
    leaves open."""
    dim, largest = _along_dim(rng, shapes), bool(rng.random() < 0.5)
    k = int(rng.integers(1, shapes[0][dim] + 1))
    ramp = rng.permutation(int(np.prod(shapes[0]))).reshape(shapes[0]) * 1e-3
    return lambda lib, F, x: (x + lib.tensor(ramp)).topk(k, dim, largest).values


def _norm(rng, shapes):
    dim, keepdim = _dims(rng, len(shapes[0]))
    return lambda lib, F, x: lib.linalg.vector_norm(x * x + 0.1, 2, dim, keepdim)  # away from the kink at 0


def _binary(expr):
    return lambda rng, shapes: expr


def _broadcast(a, b):
    try:
        np.broadcast_shapes(a, b)
        return True
    except ValueError:
        return False


ANY = lambda shapes: True  # noqa: E731
HAS_DIMS = lambda shapes: len(shapes[0]) > 0  # noqa: E731
OPS = [
    ("tanh", 1, ANY, _unary(lambda lib, F, x: x.tanh())),
    ("sigmoid", 1, ANY, _unary(lambda lib, F, x: x.sigmoid())),
    ("exp", 1, ANY, _unary(lambda lib, F, x: x.tanh().exp())),
    ("relu", 1, ANY, _unary(lambda lib, F, x: x.relu())),
    ("abs", 1, ANY, _unary(lambda lib, F, x: x.abs())),
    ("sqrt", 1, ANY, _unary(lambda lib, F, x: (x * x + 1).sqrt())),
    ("log", 1, ANY, _unary(lambda lib, F, x: (x * x + 0.5).log())),
    ("pow", 1, ANY, _unary(lambda lib, F, x: (x * x + 1) ** 1.5)),
    ("neg-scale", 1, ANY, _unary(lambda lib, F, x: -x * 0.7 + 0.1)),
    ("clamp", 1, ANY, _unary(lambda lib, F, x: x.clamp(-0.5, 0.8))),
    ("sin", 1, ANY, _unary(lambda lib, F, x: x.sin())),
    ("log1p", 1, ANY, _unary(lambda lib, F, x: (x * x).log1p())),
    ("softplus", 1, ANY, _unary(lambda lib, F, x: F.softplus(x, beta=2.0))),
    ("silu", 1, ANY, _unary(lambda lib, F, x: F.silu(x))),
    ("sum", 1, ANY, _reduction("sum")),
    ("mean", 1, ANY, _reduction("mean")),
    ("amax", 1, ANY, _reduction("amax")),
    ("var", 1, HAS_DIMS, _variance("var")),
    ("std", 1, lambda s: len(s[0]) > 0 and max(s[0]) > 1, _variance("std")),
    ("transpose", 1, HAS_DIMS, _transpose),
    ("permute", 1, HAS_DIMS, _permute),
    ("reshape", 1, ANY, _reshape),
    ("unsqueeze", 1, lambda s: len(s[0]) < 4, _unsqueeze),
    ("index", 1, HAS_DIMS, _index),
    ("index_apart", 1, lambda s: len(s[0]) >= 3, _index_apart),
    ("batch_norm", 1, lambda s: len(s[0]) == 2 and s[0][0] > 1, _batch_norm),
    ("softmax", 1, HAS_DIMS, _softmax("softmax")),
    ("log_softmax", 1, HAS_DIMS, _softmax("log_softmax")),
    ("cross_entropy", 1, lambda s: len(s[0]) == 2 and s[0][1] > 1, _cross_entropy),
    ("batch_norm_eval", 1, lambda s: len(s[0]) == 2, _batch_norm_eval),
    ("mask", 1, HAS_DIMS, _mask),
    ("mse_loss", 1, ANY, _mse_loss),
    ("prod", 1, HAS_DIMS, _prod),
    ("cumsum", 1, HAS_DIMS, _cumsum),
    ("flip", 1, HAS_DIMS, _flip),
    ("logsumexp", 1, HAS_DIMS, _logsumexp),
    ("erf", 1, ANY, _unary(lambda lib, F, x: lib.erf(x))),
    ("gelu", 1, ANY, _unary(lambda lib, F, x: F.gelu(x))),
    ("gather", 1, HAS_DIMS, _gather),
    ("index_select", 1, HAS_DIMS, _index_select),
    ("sort", 1, HAS_DIMS, _sort),
    ("topk", 1, HAS_DIMS, _topk),
    ("norm", 1, HAS_DIMS, _norm),
    ("add", 2, lambda s: _broadcast(*s), _binary(lambda lib, F, x, y: x + y)),
    ("sub", 2, lambda s: _broadcast(*s), _binary(lambda lib, F, x, y: x - y)),
    ("mul", 2, lambda s: _broadcast(*s), _binary(lambda lib, F, x, y: x * y)),
    ("div", 2, lambda s: _broadcast(*s), _binary(lambda lib, F, x, y: x / (y * y + 1))),
    # (a threshold off 0: a structural zero such as the mean of a batch norm's output sits at 0 up to
    # rounding, and the two libraries' roundings would pick different branches)
    ("where", 2, lambda s: _broadcast(*s), _binary(lambda lib, F, x, y: lib.where(x > 0.1, x, y * 2))),
    ("clamp_tensor", 2, lambda s: _broadcast(*s) and np.broadcast_shapes(*s) == s[0],
     _binary(lambda lib, F, x, y: x.clamp(min=y - 0.3, max=y + 0.4))),
    ("einsum", 2, lambda s: len(s[0]) >= 1 and len(s[1]) >= 1 and s[0][-1] == s[1][-1] and _broadcast(s[0], s[1]),
     _binary(lambda lib, F, x, y: lib.einsum("...i,...i->...", x, y))),
    ("matmul", 2, lambda s: len(s[0]) >= 1 and len(s[1]) >= 1 and s[0][-1] == s[1][-2 if len(s[1]) > 1 else 0]
     and _broadcast(s[0][:-2], s[1][:-2]), _binary(lambda lib, F, x, y: x @ y)),
]


def _input_shapes(rng):
    base = tuple(int(v) for v in rng.integers(1, 4, size=int(rng.integers(0, 5))))
    shapes = [base]
    for _ in range(int(rng.integers(0, 3))):
        drop = int(rng.integers(0, len(base) + 1))
        shapes.append(tuple(1 if rng.random() < 0.3 else s for s in base[drop:]))
    return shapes


def build(seed):
    """The graph of ``seed``: input arrays, and a list of (name, fn, operand positions)."""
    rng = np.random.default_rng(seed)
    shapes = _input_shapes(rng)
    inputs = [rng.standard_normal(s) for s in shapes]
    values = list(shapes)  # the shape of every value so far (inputs, then each op's output)
    steps = []
    for _ in range(int(rng.integers(2, 7))):
        for _attempt in range(20):
            name, arity, applies, make = OPS[int(rng.integers(len(OPS)))]
            picks = [len(values) - 1] + [int(rng.integers(len(values))) for _ in range(arity - 1)]
            if rng.random() < 0.3:
                picks[0] = int(rng.integers(len(values)))
            operand_shapes = [values[i] for i in picks]
            if applies(operand_shapes):
                break
        else:
            continue
        fn = make(rng, operand_shapes)
        with mb.no_grad():  # the output's shape, from minibn on zeros
            out = fn(mb, mb.functional, *[mb.zeros(*s, dtype=mb.float64) for s in operand_shapes])
        values.append(tuple(out.shape))
        steps.append((name, fn, picks))
    return inputs, steps


def run(lib, F, inputs, steps, seed):
    """Evaluate the graph in ``lib``; returns (scalar loss, the input leaves)."""
    if lib is mb:
        leaves = [mb.tensor(a, dtype=mb.float64, requires_grad=True) for a in inputs]
    else:
        leaves = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in inputs]
    values = list(leaves)
    for _, fn, picks in steps:
        values.append(fn(lib, F, *[values[i] for i in picks]))
    out = values[-1]
    weights = np.random.default_rng([seed, 1]).standard_normal(tuple(out.shape))  # random upstream gradient
    w = mb.tensor(weights) if lib is mb else torch.tensor(weights, dtype=torch.float64)
    return (out * w).sum(), leaves, values[len(leaves):]


def at_a_kink(steps, values) -> bool:
    """Whether a std met a constant slice (std 0 up to rounding): std is not differentiable there,
    and each library's rounding decides between 0 and noise for the derivatives."""
    return any(name == "std" and np.abs(v.detach().numpy()).min(initial=1.0) < 1e-12
               for (name, _, _), v in zip(steps, values))


def describe(seed) -> str:
    inputs, steps = build(seed)
    return (f"seed {seed}: inputs {[a.shape for a in inputs]}, ops "
            + " -> ".join(f"{name}{tuple(picks)}" for name, _, picks in steps))


def check(seed) -> None:
    inputs, steps = build(seed)
    ours, our_leaves, our_values = run(mb, mb.functional, inputs, steps, seed)
    theirs, their_leaves, their_values = run(torch, torch.nn.functional, inputs, steps, seed)

    def close(a, b, what):
        a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
        scale = max(np.abs(b).max(initial=0.0), 1.0)
        if a.shape != b.shape or not np.allclose(a, b, rtol=RTOL, atol=ATOL * scale, equal_nan=True):
            worst = np.nanmax(np.abs(a - b)) if a.shape == b.shape else "shape"
            raise AssertionError(f"{what} differs ({worst}; minibn {a.shape}, PyTorch {b.shape}) for {describe(seed)}")

    close(ours.item(), theirs.item(), "value")
    if at_a_kink(steps, our_values) or at_a_kink(steps, their_values):
        return "kink"
    needed = range(len(inputs))
    our_grads = mb.grad(ours, our_leaves, create_graph=True, allow_unused=True)
    their_grads = torch.autograd.grad(theirs, their_leaves, create_graph=True, allow_unused=True)
    for i in needed:
        a = np.zeros(inputs[i].shape) if our_grads[i] is None else our_grads[i].detach().numpy()
        b = np.zeros(inputs[i].shape) if their_grads[i] is None else their_grads[i].detach().numpy(force=True)
        close(a, b, f"gradient of input {i}")
    vs = [np.random.default_rng([seed, 2, i]).standard_normal(a.shape) for i, a in enumerate(inputs)]
    our_dot = sum(((g * mb.tensor(v)).sum() for g, v in zip(our_grads, vs) if g is not None and g.requires_grad),
                  mb.tensor(0.0, dtype=mb.float64))
    their_dot = sum(((g * torch.tensor(v)).sum() for g, v in zip(their_grads, vs) if g is not None and g.requires_grad),
                    torch.tensor(0.0, dtype=torch.float64))
    if not our_dot.requires_grad and not their_dot.requires_grad:
        return  # a graph linear in its inputs: no second derivative
    our_h = mb.grad(our_dot, our_leaves, allow_unused=True) if our_dot.requires_grad else [None] * len(inputs)
    their_h = (torch.autograd.grad(their_dot, their_leaves, allow_unused=True) if their_dot.requires_grad
               else [None] * len(inputs))
    for i in needed:
        a = np.zeros(inputs[i].shape) if our_h[i] is None else our_h[i].numpy()
        b = np.zeros(inputs[i].shape) if their_h[i] is None else their_h[i].detach().numpy(force=True)
        close(a, b, f"Hessian-vector product for input {i}")


def _check_all(seeds):
    """(graphs checked, graphs at a kink whose values only were compared)."""
    failures, kinks = [], 0
    for seed in seeds:
        try:
            with np.errstate(all="ignore"):
                kinks += check(seed) == "kink"
        except AssertionError as exc:
            failures.append(str(exc))
    assert not failures, f"{len(failures)} of {len(seeds)} graphs differ; first: {failures[0]}"
    return len(seeds), kinks


def test_random_graphs_match_pytorch():
    n, kinks = _check_all(range(GRAPHS))
    assert n == GRAPHS and kinks < GRAPHS // 20


@pytest.mark.slow
def test_many_random_graphs_match_pytorch(capsys):
    n, kinks = _check_all(range(GRAPHS, GRAPHS + SLOW_GRAPHS))
    with capsys.disabled():
        print(f"\n{n} random graphs matched PyTorch (values, gradients, Hessian-vector products; "
              f"{kinks} at a std kink: values only)")
    assert n == SLOW_GRAPHS and kinks < SLOW_GRAPHS // 100


def test_the_graphs_cover_every_op():
    names = {name for seed in range(GRAPHS) for name, _, _ in build(seed)[1]}
    assert names == {op[0] for op in OPS}

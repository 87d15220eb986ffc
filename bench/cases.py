"""The benchmark cases: each builds the same computation in minibn and in PyTorch from the same data.

A case's ``build(lib, dtype, device)`` returns a ``Side``: ``step()`` runs what
is timed, ``result()`` returns the arrays compared before timing (gradients,
usually), as NumPy arrays. ``floor(dtype, device)`` (where a floor applies)
returns the computation that bounds the step from below, in NumPy on "cpu"
and CuPy on "cuda". Devices are "cpu" or "cuda" (minibn on CuPy, PyTorch on
CUDA).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

RNG_SEED = 0


@dataclasses.dataclass
class Side:
    step: callable
    result: callable


@dataclasses.dataclass
class Case:
    name: str
    description: str
    build: callable
    floor: callable = None
    # build(lib, dtype, device) of the unit the case's own cost is counted in (one gradient, for
    # the HVP), timed in the same interleaved rounds so that drift cancels in the quotient
    baseline: callable = None
    target: str = ""
    meets: callable = None  # row (the measured numbers) -> bool
    repeat: int = 1  # calls per timed round
    rounds: int | None = None  # at most this many rounds (for cases of seconds a call)
    warmup: int = 3  # untimed calls of each side first


def _libs(lib):
    if lib == "minibn":
        import minibn as mb

        return mb
    import torch

    return torch


def _tensor(lib, array, requires_grad=False, device="cpu"):
    mod = _libs(lib)
    if lib == "minibn":
        return mod.tensor(array, requires_grad=requires_grad, device=device)
    t = mod.tensor(array, device=device)
    t.requires_grad_(requires_grad)
    return t


def _numpy(t):
    if t is None:
        return None
    return t.detach().cpu().numpy() if hasattr(t, "cpu") else t.numpy()


def _clear(*tensors):
    for t in tensors:
        t.grad = None


def _grad_side(run, tensors):
    """A Side whose step runs forward + backward and whose result is the gradients of ``tensors``."""
    def step():
        run()
        _clear(*tensors)

    def result():
        run()
        out = [_numpy(t.grad) for t in tensors]
        _clear(*tensors)
        return out

    return Side(step, result)


# -- autograd overhead ----------------------------------------------------------------------------


def _overhead(lib, dtype, device="cpu"):
    rng = np.random.default_rng(RNG_SEED)
    x, w, b = (_tensor(lib, rng.standard_normal(s).astype(dtype), True, device) for s in ((4, 4), (4, 4), (4,)))

    def run():
        ((x @ w + b).tanh() * x).sum().backward()

    return _grad_side(run, (x, w, b))


# -- linear -------------------------------------------------------------------------------------------


def _linear(n, n_in, n_out):
    def build(lib, dtype, device="cpu"):
        rng = np.random.default_rng(RNG_SEED)
        x = _tensor(lib, rng.standard_normal((n, n_in)).astype(dtype), True, device)
        w = _tensor(lib, (rng.standard_normal((n_out, n_in)) / math.sqrt(n_in)).astype(dtype), True, device)
        b = _tensor(lib, rng.standard_normal(n_out).astype(dtype), True, device)
        dy = _tensor(lib, rng.standard_normal((n, n_out)).astype(dtype), device=device)
        if lib == "minibn":
            import minibn.functional as F

            linear = F.linear
        else:
            import torch

            linear = torch.nn.functional.linear

        def run():
            linear(x, w, b).backward(dy)

        return _grad_side(run, (x, w, b))

    return build


# -- normalization layers ------------------------------------------------------------------------------


def _batch_norm(n, c):
    def build(lib, dtype, device="cpu"):
        rng = np.random.default_rng(RNG_SEED)
        x = _tensor(lib, rng.standard_normal((n, c)).astype(dtype), True, device)
        dy = _tensor(lib, rng.standard_normal((n, c)).astype(dtype), device=device)
        mod = _libs(lib)
        bn = mod.nn.BatchNorm1d(c, dtype=dtype if lib == "minibn" else getattr(mod, np.dtype(dtype).name),
                                device=device)

        def run():
            bn(x).backward(dy)

        return _grad_side(run, (x, bn.weight, bn.bias))

    return build


def _lp_norm(p, n=10000, c=100, eps=1e-5):
    def build(lib, dtype, device="cpu"):
        rng = np.random.default_rng(RNG_SEED)
        x = _tensor(lib, rng.standard_normal((n, c)).astype(dtype), True, device)
        w = _tensor(lib, (1 + 0.1 * rng.standard_normal(c)).astype(dtype), True, device)
        b = _tensor(lib, (0.1 * rng.standard_normal(c)).astype(dtype), True, device)
        dy = _tensor(lib, rng.standard_normal((n, c)).astype(dtype), device=device)
        if lib == "minibn":
            import minibn.functional as F

            def forward():
                return F.lp_norm(x, p, weight=w, bias=b, training=True, eps=eps)
        else:
            def forward():  # the same formula, written with torch ops
                u = x - x.mean(0, keepdim=True)
                if p == math.inf:
                    s = u.abs().amax(0, keepdim=True) + eps
                else:
                    s = (u.abs().pow(p).mean(0, keepdim=True) + eps).pow(1 / p)
                return u / s * w + b

        def run():
            forward().backward(dy)

        return _grad_side(run, (x, w, b))

    return build


def _cross_entropy(n=10000, classes=10):
    def build(lib, dtype, device="cpu"):
        rng = np.random.default_rng(RNG_SEED)
        logits = _tensor(lib, (3 * rng.standard_normal((n, classes))).astype(dtype), True, device)
        target = _tensor(lib, rng.integers(0, classes, n), device=device)
        if lib == "minibn":
            import minibn.functional as F

            ce = F.cross_entropy
        else:
            import torch

            ce = torch.nn.functional.cross_entropy

        def run():
            ce(logits, target).backward()

        return _grad_side(run, (logits,))

    return build


# -- the main job's network -------------------------------------------------------------------------------

SIZES = [784] + [100] * 9 + [10]


def _data(batch, dtype):
    from minibn.data import load_mnist_subset

    x, y = load_mnist_subset("train", dtype=dtype)
    return x[:batch], y[:batch]


def _networks(lib, dtype, device="cpu"):
    """The depth-10 BN MLP (Kaiming-normal weights, zero biases), the same weights in both libraries.
    minibn's is an ``nn.Sequential``, which fuses its Linear -> BatchNorm1d -> ReLU runs in training."""
    import minibn as mb

    net = mb.nn.mlp(SIZES, norm="bn", init="kaiming_normal", zero_bias=True, dtype=dtype,
                    generator=mb.Generator(RNG_SEED))
    return net.to(device) if lib == "minibn" else _torch_twin(net, SIZES, dtype, device)


def _torch_twin(net, sizes, dtype, device="cpu"):
    """The torch.nn.Sequential of a minibn ``nn.mlp(sizes, norm="bn")``, with its parameters and buffers."""
    import torch

    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(torch.nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers += [torch.nn.BatchNorm1d(b), torch.nn.ReLU()]
    t_net = torch.nn.Sequential(*layers).to(getattr(torch, np.dtype(dtype).name))
    t_net.load_state_dict({k: torch.tensor(v.numpy()) for k, v in net.state_dict().items()})
    return t_net.to(device)


def _sgd_side(lib, loss, params) -> Side:
    """Timed: zero the gradients, ``loss()``, backward, an SGD update at lr 0.01; compared: the loss
    and the gradients."""
    opt = _libs(lib).optim.SGD(params, lr=0.01)

    def step():
        opt.zero_grad()
        loss().backward()
        opt.step()

    def result():
        opt.zero_grad()
        value = loss()
        value.backward()
        out = [np.array(float(value.item()))] + [_numpy(p.grad) for p in params]
        opt.zero_grad()
        return out

    return Side(step, result)


def _train_step(batch, fuse=True):
    """Forward, backward and an SGD update; ``fuse=False`` runs minibn's layers unfused."""
    def build(lib, dtype, device="cpu"):
        loss, params, _ = _loss_and_grad(lib, dtype, batch, device, fuse)
        return _sgd_side(lib, loss, params)

    return build


def _train_step_floor(batch):
    """The 29 matrix products of one step (10 forward, 10 dW, 9 dX; the first layer needs no dX)."""
    def build(dtype, device="cpu"):
        xp = np
        if device != "cpu":
            import cupy as xp
        rng = np.random.default_rng(RNG_SEED)
        acts = [xp.asarray(rng.standard_normal((batch, s)).astype(dtype)) for s in SIZES]
        ws = [xp.asarray(rng.standard_normal((b, a)).astype(dtype)) for a, b in zip(SIZES[:-1], SIZES[1:])]

        def step():
            for i, w in enumerate(ws):
                acts[i] @ w.T  # forward
            for i in reversed(range(len(ws))):
                g = acts[i + 1]
                g.T @ acts[i]  # dW
                if i:
                    g @ ws[i]  # dX

        return step

    return build


def _loss_and_grad(lib, dtype, batch, device="cpu", fuse=True):
    """The network's loss on its data (a function), its parameters, and the library's grad."""
    x_np, y_np = _data(batch, dtype)
    net = _networks(lib, dtype, device)
    if lib == "minibn":
        net.fuse = fuse
    mod = _libs(lib)
    if lib == "minibn":
        import minibn.functional as F

        ce, grad = F.cross_entropy, mod.grad
    else:
        ce, grad = mod.nn.functional.cross_entropy, mod.autograd.grad
    x, y = _tensor(lib, x_np, device=device), _tensor(lib, y_np, device=device)
    return (lambda: ce(net(x), y)), list(net.parameters()), grad


def _hvp(batch):
    def build(lib, dtype, device="cpu"):
        loss, params, grad = _loss_and_grad(lib, dtype, batch, device)
        rng = np.random.default_rng(RNG_SEED + 1)
        vs = [_tensor(lib, rng.standard_normal(tuple(p.shape)).astype(dtype), device=device) for p in params]

        def hvp():
            gs = grad(loss(), params, create_graph=True)
            return grad(sum((g * v).sum() for g, v in zip(gs, vs)), params)

        return Side(hvp, lambda: [_numpy(h) for h in hvp()])

    return build


def _hvp_retained(batch):
    """One more product on a kept gradient graph: what each Lanczos iteration pays."""
    def build(lib, dtype, device="cpu"):
        loss, params, grad = _loss_and_grad(lib, dtype, batch, device)
        rng = np.random.default_rng(RNG_SEED + 1)
        vs = [_tensor(lib, rng.standard_normal(tuple(p.shape)).astype(dtype), device=device) for p in params]
        gs = grad(loss(), params, create_graph=True)

        def hvp():
            return grad(gs, params, grad_outputs=vs, retain_graph=True)

        return Side(hvp, lambda: [_numpy(h) for h in hvp()])

    return build


def _gradient(batch):
    def build(lib, dtype, device="cpu"):
        loss, params, grad = _loss_and_grad(lib, dtype, batch, device)

        def gradient():
            return grad(loss(), params)

        return Side(gradient, lambda: [_numpy(g) for g in gradient()])

    return build


def _torch_lanczos(loss, params, k, tol, seed):
    """The Lanczos of ``minibn.hessian.top_eigenvalues`` (full reorthogonalization, the same start
    vector and stopping rule, true residuals at the end) on PyTorch's Hessian-vector products."""
    import torch

    grads = torch.autograd.grad(loss(), params, create_graph=True)
    sizes = [p.numel() for p in params]
    n = sum(sizes)

    def matvec(v):
        pieces = [piece.view_as(p) for piece, p in zip(torch.split(v, sizes), params)]
        hv = torch.autograd.grad(grads, params, grad_outputs=pieces, retain_graph=True)
        return torch.cat([h.reshape(-1) for h in hv])

    m_max = min(n, max(20 * k, 100))
    first = params[0]
    Q = torch.zeros((n, m_max), dtype=first.dtype, device=first.device)
    q = torch.tensor(np.random.default_rng(seed).standard_normal(n), dtype=first.dtype, device=first.device)
    Q[:, 0] = q / torch.linalg.norm(q)
    alpha, beta = np.zeros(m_max), np.zeros(m_max)
    for j in range(m_max):
        w = matvec(Q[:, j])
        alpha[j] = float(Q[:, j] @ w)
        basis = Q[:, :j + 1]
        for _ in range(2):
            w = w - basis @ (basis.T @ w)
        beta[j] = float(torch.linalg.norm(w))
        m = j + 1
        if m >= k:
            T = np.diag(alpha[:m]) + np.diag(beta[:m - 1], 1) + np.diag(beta[:m - 1], -1)
            theta, S = np.linalg.eigh(T)
            wanted = np.argsort(-theta, kind="stable")[:k]
            if np.all(beta[j] * np.abs(S[-1, wanted]) <= tol * np.abs(theta).max()) or m == m_max:
                break
        Q[:, j + 1] = w / beta[j]
    vectors = Q[:, :m] @ torch.tensor(S[:, wanted], dtype=first.dtype, device=first.device)
    vectors = vectors / torch.linalg.norm(vectors, dim=0)
    residuals = [float(torch.linalg.norm(matvec(vectors[:, i]) - theta[wanted][i] * vectors[:, i]))
                 for i in range(k)]
    return theta[wanted], residuals


def _top_eigenvalues(batch, k=10, tol=1e-2):
    def build(lib, dtype, device="cpu"):
        loss, params, _ = _loss_and_grad(lib, dtype, batch, device)
        if lib == "minibn":
            from minibn import hessian

            def solve():
                return hessian.top_eigenvalues(loss, params, k=k, tol=tol, seed=RNG_SEED).eigenvalues
        else:
            def solve():
                return _torch_lanczos(loss, params, k, tol, RNG_SEED)[0]

        return Side(solve, lambda: [np.asarray(solve())])

    return build


ENSEMBLE_SIZES = [784, 100, 100, 10]  # the normalizations experiment's MLP


def _ensemble_members(k, batch, dtype):
    """k BN MLPs (their own initial weights) and member j's batch: MNIST images j batch ... (j + 1) batch - 1."""
    import minibn as mb

    x, y = _data(k * batch, dtype)
    nets = [mb.nn.mlp(ENSEMBLE_SIZES, norm="bn", dtype=dtype, generator=mb.Generator(RNG_SEED + j)) for j in range(k)]
    return nets, x.reshape(k, batch, -1), y.reshape(k, batch)


def _ensemble_step(k, batch):
    """k MLPs as one nn.Ensemble: forward, backward, SGD. PyTorch: the same batched computation in torch ops
    (baddbmm, one batch_norm over the members' channels side by side)."""
    def build(lib, dtype, device="cpu"):
        import minibn as mb

        nets, x_np, y_np = _ensemble_members(k, batch, dtype)
        if lib == "minibn":
            net = mb.nn.Ensemble(nets).to(device)
            x, y = mb.tensor(x_np, device=device), mb.tensor(y_np, device=device)
            params = list(net.parameters())
            loss = lambda: mb.nn.ensemble_loss(net(x), y)  # noqa: E731
        else:
            import torch

            ensemble = mb.nn.Ensemble(nets)
            stacked = [m for m in ensemble.layers]
            params = [torch.tensor(p.detach().numpy(), device=device, requires_grad=True)
                      for p in ensemble.parameters()]
            buffers = [torch.tensor(m.norm.running_mean.numpy(), device=device) for m in stacked if hasattr(m, "norm")]
            buffers = [(b, torch.ones_like(b)) for b in buffers]
            x, y = torch.tensor(x_np, device=device), torch.tensor(y_np, device=device)

            def loss():
                h, p, b = x, iter(params), iter(buffers)
                for m in stacked:
                    if hasattr(m, "weight"):  # a stacked Linear: weight (k, out, in), bias (k, out)
                        w, bias = next(p), next(p)
                        h = torch.baddbmm(bias.unsqueeze(1), h, w.transpose(1, 2))
                    elif hasattr(m, "norm"):
                        gamma, beta = next(p), next(p)
                        mean, var = next(b)
                        n = h.shape[1]
                        h = torch.nn.functional.batch_norm(h.permute(1, 0, 2).reshape(n, -1), mean, var, gamma, beta,
                                                           training=True)
                        h = h.reshape(n, k, -1).permute(1, 0, 2)
                    else:
                        h = torch.relu(h)
                return sum(torch.nn.functional.cross_entropy(h[j], y[j]) for j in range(k))

        return _sgd_side(lib, loss, params)

    return build


def _ensemble_floor(k, batch):
    """The 8 matrix products of each member's step (3 forward, 3 dW, 2 dX), batched over the k members."""
    def build(dtype, device="cpu"):
        xp = np
        if device != "cpu":
            import cupy as xp
        rng = np.random.default_rng(RNG_SEED)
        acts = [xp.asarray(rng.standard_normal((k, batch, s)).astype(dtype)) for s in ENSEMBLE_SIZES]
        ws = [xp.asarray(rng.standard_normal((k, b, a)).astype(dtype))
              for a, b in zip(ENSEMBLE_SIZES[:-1], ENSEMBLE_SIZES[1:])]

        def step():
            for i, w in enumerate(ws):
                acts[i] @ w.transpose(0, 2, 1)  # forward
            for i in reversed(range(len(ws))):
                g = acts[i + 1]
                g.transpose(0, 2, 1) @ acts[i]  # dW
                if i:
                    g @ ws[i]  # dX

        return step

    return build


def _separate_steps(k, batch):
    """The same k MLPs trained one after another, each its own forward, backward and SGD step."""
    def build(lib, dtype, device="cpu"):
        import minibn as mb

        nets, x_np, y_np = _ensemble_members(k, batch, dtype)
        mod = _libs(lib)
        nets = [net.to(device) if lib == "minibn" else _torch_twin(net, ENSEMBLE_SIZES, dtype, device) for net in nets]
        ce = mb.functional.cross_entropy if lib == "minibn" else mod.nn.functional.cross_entropy
        data = [(mod.tensor(x_np[j], device=device), mod.tensor(y_np[j], device=device)) for j in range(k)]
        opts = [mod.optim.SGD(net.parameters(), lr=0.01) for net in nets]

        def step():
            for net, opt, (x, y) in zip(nets, opts, data):
                opt.zero_grad()
                ce(net(x), y).backward()
                opt.step()

        return Side(step, lambda: [])

    return build


def _normalizations_epoch(variant):
    """One epoch of the normalizations experiment's loop at the author's protocol: its 784-100-100-10 MLP
    (``variant`` "bn": BatchNorm1d after each hidden linear layer; "none": no normalization), SGD lr 0.1 in
    batches of 64 in one fixed order over the 10 000 training images (157 steps, the last of 16 images),
    then the accuracy on the 10 000 test images in eval mode. Compared: the parameters after an epoch."""
    def build(lib, dtype, device="cpu"):
        import minibn as mb
        from minibn.data import load_mnist_subset

        x_np, y_np = load_mnist_subset("train", dtype=dtype)
        xt_np, yt_np = load_mnist_subset("test", dtype=dtype)
        order = np.random.default_rng(RNG_SEED).permutation(len(x_np))
        batches = [np.sort(order[i:i + 64]) for i in range(0, len(x_np), 64)]
        net = mb.nn.mlp(ENSEMBLE_SIZES, norm=None if variant == "none" else "bn", dtype=dtype,
                        generator=mb.Generator(RNG_SEED))
        mod = _libs(lib)
        if lib != "minibn":
            net = _torch_twin(net, ENSEMBLE_SIZES, dtype, device) if variant == "bn" else _torch_plain(net, dtype, device)
        else:
            net = net.to(device)
        ce = mb.functional.cross_entropy if lib == "minibn" else mod.nn.functional.cross_entropy
        x, y = _tensor(lib, x_np, device=device), _tensor(lib, y_np, device=device)
        xt, yt = _tensor(lib, xt_np, device=device), _tensor(lib, yt_np, device=device)
        indices = [_tensor(lib, b, device=device) for b in batches]
        opt = mod.optim.SGD(net.parameters(), lr=0.1)
        no_grad = mb.no_grad if lib == "minibn" else mod.no_grad

        def step():
            net.train()
            for idx in indices:
                opt.zero_grad()
                ce(net(x[idx]), y[idx]).backward()
                opt.step()
            net.eval()
            with no_grad():
                accuracy = float((net(xt).argmax(1) == yt).float().mean().item()) if lib != "minibn" else \
                    float((net(xt).argmax(1) == yt).numpy().mean())
            net.train()
            return accuracy

        def result():
            step()
            return [_numpy(p) for p in net.parameters()]

        return Side(step, result)

    return build


def _torch_plain(net, dtype, device="cpu"):
    """The torch.nn.Sequential of a minibn ``nn.mlp(sizes, norm=None)``, with its parameters."""
    import torch

    layers = []
    for i, (a, b) in enumerate(zip(ENSEMBLE_SIZES[:-1], ENSEMBLE_SIZES[1:])):
        layers += [torch.nn.Linear(a, b)] + ([torch.nn.ReLU()] if i < len(ENSEMBLE_SIZES) - 2 else [])
    t_net = torch.nn.Sequential(*layers).to(getattr(torch, np.dtype(dtype).name))
    t_net.load_state_dict({k: torch.tensor(v.numpy()) for k, v in net.state_dict().items()})
    return t_net.to(device)


def _ratio_at_most(limit):
    return lambda row: row["ratio"] <= limit


def _step_targets(row):
    """<= 0.8x PyTorch, <= 1.15x the GEMM floor, and peak memory no more than PyTorch's (when measured)."""
    memory_ok = row.get("minibn_peak_mb") is None or row["minibn_peak_mb"] <= row["torch_peak_mb"]
    return row["ratio"] <= 0.8 and row["ratio_to_floor"] <= 1.15 and memory_ok


CASES = [
    Case("autograd_overhead_4x4", "((x @ w + b).tanh() * x).sum().backward(), 4x4", _overhead,
         target="<= 1.0x PyTorch", meets=_ratio_at_most(1.0), repeat=200),
    Case("linear_10000x784_to_100", "F.linear forward + backward (x, W, b all need gradients)",
         _linear(10000, 784, 100), repeat=2),
    Case("linear_256x1024_to_1024", "F.linear forward + backward", _linear(256, 1024, 1024), repeat=5),
    Case("batch_norm_10000x100", "BatchNorm1d forward + backward, training mode", _batch_norm(10000, 100),
         target="<= 0.5x PyTorch", meets=_ratio_at_most(0.5), repeat=10),
    Case("batch_norm_256x1024", "BatchNorm1d forward + backward, training mode", _batch_norm(256, 1024),
         target="<= 0.5x PyTorch", meets=_ratio_at_most(0.5), repeat=20),
    *[Case(f"lp_norm_p{'inf' if p == math.inf else p}_10000x100",
           "lp_norm forward + backward (PyTorch: the same formula in torch ops)", _lp_norm(p), repeat=5)
      for p in (1, 2, 3, math.inf)],
    Case("softmax_cross_entropy_10000x10", "cross_entropy forward + backward", _cross_entropy(), repeat=10),
    Case("train_step_full_batch", "depth-10 BN MLP on 10 000 MNIST images: forward, backward, SGD update "
         "(minibn's Sequential runs Linear -> BatchNorm1d -> ReLU fused, as it does by default)",
         _train_step(10000), floor=_train_step_floor(10000),
         target="<= 0.8x PyTorch, <= 1.15x the GEMM floor, peak memory <= PyTorch's", meets=_step_targets),
    Case("train_step_batch_256", "the same step at batch 256", _train_step(256), floor=_train_step_floor(256),
         repeat=5),
    Case("gradient_batch_1024", "one gradient of the network's loss, batch 1024", _gradient(1024), repeat=2),
    Case("hessian_vector_product_batch_1024", "double backward: grad of (grad . v), batch 1024", _hvp(1024),
         baseline=_gradient(1024), target="<= 3x one gradient (minibn's own)",
         meets=lambda row: row["minibn_over_baseline"] <= 3),
    Case("hessian_vector_product_retained_batch_1024", "one more product on a kept graph of the gradient (grad of "
         "grad with grad_outputs=v, retain_graph=True): the cost of each Lanczos iteration", _hvp_retained(1024),
         baseline=_gradient(1024), target="<= 3x one gradient (minibn's own)",
         meets=lambda row: row["minibn_over_baseline"] <= 3, repeat=2),
    Case("ensemble_8_mlps_batch_64", "8 BN MLPs 784-100-100-10 (the normalizations experiment's), batch 64 each, "
         "as one nn.Ensemble: forward, backward, SGD; the baseline: the 8 trained one after another",
         _ensemble_step(8, 64), floor=_ensemble_floor(8, 64), baseline=_separate_steps(8, 64),
         target="<= 0.25x the 8 separate steps (minibn's own)", meets=lambda row: row["minibn_over_baseline"] <= 0.25,
         repeat=2),
    *[Case(f"normalizations_epoch_{variant}", f"one epoch of the normalizations experiment's loop ({variant}): "
           "157 SGD steps of the 784-100-100-10 MLP in batches of 64, then the test accuracy",
           _normalizations_epoch(variant), target="<= 0.8x PyTorch", meets=_ratio_at_most(0.8), rounds=10, warmup=1)
      for variant in ("bn", "none")],
    Case("top_eigenvalues_k10_batch_256", "the 10 largest Hessian eigenvalues by Lanczos (full "
         "reorthogonalization, tol 1e-2, the same start and rule in both), batch 256", _top_eigenvalues(256),
         target="faster than PyTorch", meets=_ratio_at_most(1.0), rounds=5, warmup=1),
]
CASES_BY_NAME = {c.name: c for c in CASES}

"""Why does batch norm allow a high learning rate? (seed 000, sec. 3, Morwani 2020)

A 10-layer ReLU network with batch norm after every hidden linear layer and
the plain network at its equivalent point (BN folded into the weights on the
training set, so both compute the same function at step 0) are trained side
by side with SGD at lr = 1 on 10 000-image MNIST. At every step, per layer:
the norm of the activations, of dL/d(activations), and of the weights.
A network whose loss or activations blow up is recorded as diverged at that
step and stopped; the other one goes on.

    python experiments/mnist_depth10.py [--steps 300] [--batch-size 64] [--out DIR] ...

Writes metrics.json and figures to the output folder (default
runs/mnist_depth10/<timestamp>/) and prints a summary.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

import minibn as mb
import minibn.functional as F
from minibn import fileio, nn, plotting, runs
from minibn.data import load_mnist, load_mnist_subset

NETWORKS = ("plain", "bn")
TITLES = {"plain": "plain network (BN folded in at step 0)", "bn": "BN network"}


@dataclasses.dataclass
class Config:
    backend: str = "numba" if mb.kernels.numba_available() else "numpy"
    dtype: str = "float32"
    seed: int = 0
    lr: float = 1.0
    steps: int = 300
    batch_size: int | None = None  # None: the whole training set (batch gradient descent)
    width: int = 100
    depth: int = 10  # linear layers
    train_size: int = 10_000
    data_dir: str | None = None
    out: str | None = None
    quiet: bool = False
    eval_every: int = 1
    diverge_rms: float = 1e4  # an activation root-mean-square above this counts as diverged
    checkpoint_every: int = 100


# -- data ------------------------------------------------------------------------------


def load_data(cfg: Config):
    """(x_train, y_train, x_test, y_test) as NumPy arrays of the configured dtype."""
    dtype = np.dtype(cfg.dtype)
    if cfg.train_size <= 10_000:
        x, y = load_mnist_subset("train", dtype=dtype)
    else:
        x, y = load_mnist("train", root=cfg.data_dir, dtype=dtype)
        if cfg.train_size > len(x):
            raise ValueError(f"--train-size {cfg.train_size} exceeds the {len(x)} MNIST training images")
    if cfg.train_size < len(x):
        keep = np.sort(np.random.default_rng(cfg.seed).choice(len(x), cfg.train_size, replace=False))
        x, y = x[keep], y[keep]
    xt, yt = load_mnist_subset("test", dtype=dtype)
    return x, y, xt, yt


def batches(cfg: Config, n: int, step: int) -> np.ndarray | None:
    """Indices of the batch at ``step`` (None for the full batch); a fixed function of
    (seed, step), so that both networks, and a resumed run, see the same batches."""
    if cfg.batch_size is None or cfg.batch_size >= n:
        return None
    per_epoch = n // cfg.batch_size
    epoch, k = divmod(step, per_epoch)
    order = np.random.default_rng([cfg.seed, epoch]).permutation(n)
    return np.sort(order[k * cfg.batch_size:(k + 1) * cfg.batch_size])


# -- networks ----------------------------------------------------------------------------


def build_networks(cfg: Config, x_train: mb.Tensor, device: str = "cpu"):
    """The BN network (Kaiming-normal weights, zero biases, gamma = 1, beta = 0) and the plain
    network equal to it on the training set."""
    sizes = [784] + [cfg.width] * (cfg.depth - 1) + [10]
    bn_net = nn.mlp(sizes, norm="bn", init="kaiming_normal", zero_bias=True, dtype=cfg.dtype,
                    device=device, generator=mb.Generator(cfg.seed))
    plain = nn.fold_batchnorm(bn_net, x_train)
    return {"plain": plain, "bn": bn_net}


def _fold_gap(nets: dict, x: mb.Tensor) -> float:
    """max |plain(x) - bn(x)| / max |bn(x)|: how well the folded network matches at step 0. The
    BN network runs in training mode (batch statistics), so its running statistics are put back
    afterwards: training starts from the state it would have had without this check."""
    with mb.no_grad():
        state = {name: t.clone() for name, t in nets["bn"].state_dict().items()}  # state_dict shares memory
        reference = nets["bn"](x)
        gap = (nets["plain"](x) - reference).abs().amax().item() / reference.abs().amax().item()
    nets["bn"].load_state_dict(state)
    return float(gap)


def forward_recorded(net: nn.Sequential, x: mb.Tensor, grad_norms: list):
    """Run ``net`` block by block; return the logits and each block's output (after the
    activation; the logits for the last block). A hook on each output writes
    ||dL/d(output)|| into ``grad_norms`` during backward."""
    outputs = []
    h = x
    for i, h in net.stages(x):  # fused stages end at the ReLU, whose output is recorded
        if isinstance(net[i], nn.ReLU) or i == len(net) - 1:
            index = len(outputs)
            outputs.append(h)
            if h.requires_grad:
                h.register_hook(lambda g, index=index: grad_norms.__setitem__(index, _norm(g)))
    return h, outputs


def _norm(t: mb.Tensor) -> float:
    with np.errstate(over="ignore", invalid="ignore"):  # a diverging network overflows: that is the result
        return float(t.xp.linalg.norm(t.detach()._data.ravel()))


def accuracy(logits: mb.Tensor, labels: mb.Tensor) -> float:
    return float((logits.argmax(1) == labels).cpu().numpy().mean())


@mb.no_grad()
def evaluate(net, x, y, chunk: int = 5000) -> float:
    """Test accuracy in eval mode (batch norm with its running statistics)."""
    net.eval()
    correct = sum(float((net(x[i:i + chunk]).argmax(1) == y[i:i + chunk]).cpu().numpy().sum())
                  for i in range(0, len(x), chunk))
    net.train()
    return correct / len(x)


# -- the run -----------------------------------------------------------------------------


def _empty_record():
    return {"loss": [], "train_accuracy": [], "test_accuracy": [], "activation_norm": [],
            "activation_grad_norm": [], "weight_norm": [], "diverged_at": None, "diverged_because": None}


def _checkpoint(out: Path, cfg: Config, step: int, nets, record):
    """Save both networks (with BN running statistics) and the metrics so far; plain SGD has no state."""
    arrays = {}
    for name in NETWORKS:
        arrays.update({f"{name}/{k}": v.cpu().numpy() for k, v in nets[name].state_dict().items()})
    fileio.save_npz(out / "checkpoint.npz", arrays)
    fileio.save_json(out / "checkpoint.json", {"config": dataclasses.asdict(cfg), "step": step,
                                               "record": record})


def _resume(out: Path, nets):
    with open(out / "checkpoint.json") as f:
        state = json.load(f)
    with np.load(out / "checkpoint.npz") as arrays:
        for name in NETWORKS:
            prefix = f"{name}/"
            nets[name].load_state_dict({k[len(prefix):]: arrays[k] for k in arrays.files if k.startswith(prefix)})
    record = state["record"]
    for rec in record.values():  # JSON stored NaN as null
        rec["loss"] = [math.nan if v is None else v for v in rec["loss"]]
    return state["step"], record


def run(cfg: Config, resume: bool = False) -> dict:
    """Train both networks; write metrics.json and figures to the output folder; return the metrics."""
    out = runs.run_dir(cfg.out, "mnist_depth10")
    cfg.out = str(out)
    device = runs.use_backend(cfg.backend)
    mb.manual_seed(cfg.seed)
    x_np, y_np, xt_np, yt_np = load_data(cfg)
    x, y = mb.tensor(x_np, device=device), mb.tensor(y_np, device=device)
    xt, yt = mb.tensor(xt_np, device=device), mb.tensor(yt_np, device=device)
    nets = build_networks(cfg, x, device)
    fold_gap = _fold_gap(nets, x)
    optimizers = {k: mb.optim.SGD(net.parameters(), lr=cfg.lr) for k, net in nets.items()}
    record = {k: _empty_record() for k in NETWORKS}
    start = 0
    if resume:
        start, record = _resume(out, nets)

    started = time.perf_counter()
    bar = runs.progress(range(start, cfg.steps), cfg.quiet, desc="mnist_depth10", unit="step",
                        initial=start, total=cfg.steps)
    for step in bar:
        idx = batches(cfg, len(x_np), step)
        xb, yb = (x, y) if idx is None else (x[idx], y[idx])
        for name in NETWORKS:
            rec = record[name]
            if rec["diverged_at"] is not None:
                continue
            _train_step(cfg, step, nets[name], optimizers[name], xb, yb, xt, yt, rec)
        bar.set_postfix({k: f"{record[k]['loss'][-1]:.3g}" if record[k]["diverged_at"] is None else "diverged"
                         for k in NETWORKS})
        if cfg.checkpoint_every and (step + 1) % cfg.checkpoint_every == 0 and step + 1 < cfg.steps:
            _checkpoint(out, cfg, step + 1, nets, record)
    _checkpoint(out, cfg, cfg.steps, nets, record)

    for name in NETWORKS:
        rec = record[name]
        if rec["diverged_at"] is not None:
            rec["final_test_accuracy"] = None
        elif rec["test_accuracy"] and rec["test_accuracy"][-1][0] == cfg.steps - 1:
            rec["final_test_accuracy"] = rec["test_accuracy"][-1][1]  # measured after the last step
        else:
            rec["final_test_accuracy"] = evaluate(nets[name], xt, yt)
    metrics = {
        "experiment": "seed 000 sec. 3: BN network vs its equivalent plain network at a high learning rate",
        "config": dataclasses.asdict(cfg),
        "layers": list(range(1, cfg.depth + 1)),
        "fold_relative_gap_at_step_0": fold_gap,
        "seconds": time.perf_counter() - started,
        "networks": record,
    }
    fileio.save_json(out / "metrics.json", metrics)
    figures = write_figures(out, metrics)
    metrics["figures"] = [str(p) for p in figures]
    return metrics


def _train_step(cfg, step, net, opt, xb, yb, xt, yt, rec):
    grad_norms = [math.nan] * cfg.depth
    logits, outputs = forward_recorded(net, xb, grad_norms)
    loss = F.cross_entropy(logits, yb)
    act = [_norm(h) for h in outputs]
    weights = [_norm(m.weight) for m in net if isinstance(m, nn.Linear)]
    loss_value = float(loss.item())
    rms = max(a / math.sqrt(h.numel()) for a, h in zip(act, outputs))
    rec["loss"].append(loss_value)
    rec["activation_norm"].append(act)
    rec["weight_norm"].append(weights)
    rec["train_accuracy"].append(accuracy(logits, yb))
    if not math.isfinite(loss_value) or not math.isfinite(rms) or rms > cfg.diverge_rms:
        rec["diverged_at"] = step
        rec["diverged_because"] = ("non-finite loss" if not math.isfinite(loss_value) else
                                   "non-finite activations" if not math.isfinite(rms) else
                                   f"activation RMS {rms:.3g} > {cfg.diverge_rms:g}")
        rec["activation_grad_norm"].append([math.nan] * cfg.depth)
        return
    opt.zero_grad()
    loss.backward()
    opt.step()
    rec["activation_grad_norm"].append(grad_norms)
    if cfg.eval_every and step % cfg.eval_every == 0:
        rec["test_accuracy"].append([step, evaluate(net, xt, yt)])


def write_figures(out: Path, metrics: dict) -> list:
    nets = metrics["networks"]
    marks = {TITLES[k]: nets[k]["diverged_at"] for k in NETWORKS}
    cfg = metrics["config"]
    setting = (f"depth {cfg['depth']}, width {cfg['width']}, lr {cfg['lr']}, "
               f"batch {cfg['batch_size'] or 'full'}, {cfg['train_size']} MNIST images")
    paths = []
    for key, label in (("activation_norm", "||activations||"), ("activation_grad_norm", "||dL/d activations||"),
                       ("weight_norm", "||W||")):
        path = out / f"{key}.png"
        plotting.layer_panels({TITLES[k]: nets[k][key] for k in NETWORKS}, label, f"{label} per layer ({setting})",
                              path, marks)
        paths.append(path)
    path = out / "loss_accuracy.png"
    plotting.curves({"training loss": {k: nets[k]["loss"] for k in NETWORKS},
                     "test accuracy": {k: nets[k]["test_accuracy"] or [[0, math.nan]] for k in NETWORKS}},
                    f"loss and accuracy ({setting})", path)
    paths.append(path)
    return paths


def summary(metrics: dict) -> str:
    lines = []
    for name in NETWORKS:
        rec = metrics["networks"][name]
        if rec["diverged_at"] is not None:
            lines.append(f"{name:>5}: diverged at step {rec['diverged_at']} ({rec['diverged_because']})")
        else:
            lines.append(f"{name:>5}: trained {len(rec['loss'])} steps, final loss {rec['loss'][-1]:.4f}, "
                         f"test accuracy {rec['final_test_accuracy']:.4f}")
    out = Path(metrics["config"]["out"])
    lines.append(f"plain and BN networks agree at step 0 to {metrics['fold_relative_gap_at_step_0']:.1e} (relative)")
    lines.append(f"metrics: {out / 'metrics.json'}")
    lines.extend(f"figure:  {p}" for p in metrics["figures"])
    return "\n".join(lines)


def parse_args(argv=None):
    defaults = Config()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backend", choices=sorted(runs.BACKENDS), default=defaults.backend)
    p.add_argument("--dtype", choices=["float32", "float64"], default=defaults.dtype)
    p.add_argument("--seed", type=int, default=defaults.seed)
    p.add_argument("--lr", type=float, default=defaults.lr)
    p.add_argument("--steps", type=int, default=None, help=f"training steps (default {defaults.steps})")
    p.add_argument("--batch-size", type=int, default=None,
                   help="default: the whole training set, as in the seed's text; the seed author's code uses 64")
    p.add_argument("--width", type=int, default=defaults.width)
    p.add_argument("--depth", type=int, default=defaults.depth, help="number of linear layers")
    p.add_argument("--train-size", type=int, default=defaults.train_size,
                   help="training images; up to 10 000 come with minibn, more need the MNIST files")
    p.add_argument("--data-dir", default=None, help="folder with the original MNIST files (for --train-size > 10000)")
    p.add_argument("--out", default=None, help="output folder (default runs/mnist_depth10/<timestamp>)")
    p.add_argument("--eval-every", type=int, default=defaults.eval_every, help="steps between test evaluations")
    p.add_argument("--checkpoint-every", type=int, default=defaults.checkpoint_every)
    p.add_argument("--resume", metavar="RUN_DIR", default=None,
                   help="continue the run saved in RUN_DIR (its settings; --steps may extend it)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    args = p.parse_args(argv)
    for flag in ("width", "depth", "train_size", "eval_every"):
        if getattr(args, flag) < (2 if flag == "depth" else 1):
            p.error(f"--{flag.replace('_', '-')} is too small: {getattr(args, flag)}")
    if args.batch_size is not None and args.batch_size < 2:
        p.error("--batch-size must be at least 2 (batch norm needs two samples)")
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.resume:
        with open(Path(args.resume) / "checkpoint.json") as f:
            cfg = Config(**json.load(f)["config"])
        cfg.out, cfg.quiet = args.resume, args.quiet
        if args.steps is not None:
            cfg.steps = args.steps
    else:
        cfg = Config(**{k: v for k, v in vars(args).items() if k in Config.__dataclass_fields__ and v is not None})
    metrics = run(cfg, resume=bool(args.resume))
    print(summary(metrics))
    return metrics


if __name__ == "__main__":
    main()

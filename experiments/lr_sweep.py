"""Learning rates, one-step losses, activations and gradients with and without batch norm (seed 003).

Seed 003 summarizes Bjorck, Gomes, Selman and Weinberger 2018, "Understanding batch
normalization". The paper's claims come from a 110-layer ResNet on CIFAR-10; here they are rerun on ReLU MLPs
on MNIST (784 -> width x (depth - 1) -> 10), which every output says. Five parts:

1. Accuracy against learning rate: the depth-10 experiment's trainings (``mnist_depth10``) at
   each learning rate, the BN network with its equivalent plain network (batch norm folded in
   at step 0) and a plain network with He (Kaiming-normal) initialization, each trained as that
   experiment trains it, the seeds of a learning rate side by side as one ``nn.Ensemble``; at
   each final point, the top Hessian eigenvalue, the gradient noise and the train-test gap.
2. Relative loss after one step: for each of the first --probe-steps updates of SGD at
   --probe-lr, L(theta - alpha g) / L(theta) on that update's batch, for alpha over decades.
3. Activations by depth: per-layer activation RMS at initialization and along one large
   update (fractions 0 ... 100 % of --big-step), and heat maps of each layer's channel means
   and standard deviations.
4. Gradient heat map of the final layer: per sample and output at initialization, with the
   mean pairwise cosine of the per-sample gradients of the final layer's weights.
5. Initialization: parts 2-4's measures for He, Xavier-normal and PyTorch's default
   initialization.

    python experiments/lr_sweep.py [--quick] [--lrs 0.0001,0.01,1] [--seeds 2] [--workers 2] ...

Every (learning rate, network) of part 1 and every (network, depth, init) of parts 2-5 is a job of
the grid, in --workers processes (or the report's executors). Writes metrics.json (with the claims)
and figures.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

import minibn as mb
import minibn.functional as F
from minibn import experiment, nn, plotting
from minibn.data import load_mnist_subset
from minibn.experiment import ConfigError, at_least, at_most, option, positive
from minibn.experiment import claims as C
from minibn.experiment.recording import LayerRecord
from minibn.experiment.training import batch_indices, chance_accuracy, divergence, evaluate, running_stats_kept

from . import mnist_depth10 as depth10

DOCUMENT = "003"
EMBEDDED = 10_000
INITS = ("kaiming_normal", "xavier_normal", "pytorch")
ALPHAS = tuple(10.0 ** e for e in range(-5, 1))
MLP_NOTE = ("The paper's claims come from a 110-layer ResNet on CIFAR-10; this experiment reruns them on ReLU MLPs "
            "on MNIST (fully connected, no residual connections).")
NOTES = (
    MLP_NOTE,
    "Part 1 trains the depth-10 experiment's networks as it trains them (its data, initial weights, fold, batches "
    "and divergence rule; the seeds of a learning rate side by side as one nn.Ensemble, each its own network): its "
    "plain network starts at the BN network's equivalent point (batch norm folded into the weights on the training "
    "set), and --norm none gives a plain network with He (Kaiming-normal) weights and zero biases, the paper's "
    "initialization. The claims about BN against no BN use "
    "the He-initialized plain network; the folded one is in the evidence.",
    "Part 1's final points, for each network that did not diverge: the top Hessian eigenvalue of the training-mode "
    "loss on --hessian-images images (in the raw parameters: for BN's scale-invariant weights it falls as their "
    "norm grows, which a larger lr makes grow), the gradient noise sqrt(mean_B ||g_B - g||^2) of 16 disjoint "
    "batches of --batch-size about the full training set's gradient g, and the train-test accuracy gap; the "
    "summary's 'estimated error' of a step is lr times that noise.",
    "--protocol author (no code of the paper's authors comes with the seeds): 5 seeds, and a step budget that "
    "scales with 1/lr below lr 0.1 (--steps-cap 20000), so that the small learning rates are trained far enough "
    "for the claims about what they reach.",
    "A network whose loss or activations blow up in part 1 is recorded as diverged at that step (the depth-10 "
    "experiment's rule); its accuracy counts as that of a constant guess (the most frequent test class).",
    "Part 2: a step 'diverges' when the loss after it exceeds --divergence-ratio times the loss before (default "
    "2: the summary's 'great relative loss'; at 1, a step that merely makes no progress, a ratio of 1.001 to 1.04, "
    "would count). The probe forwards use the batch's statistics (training mode) and leave the running "
    "statistics alone.",
)


@dataclasses.dataclass
class Config(experiment.GridConfig):
    CPU_ONLY = True  # the grid: a job per (lr, network) of part 1 and per (network, depth, init) of parts 2-5
    lrs: tuple[float, ...] = option((1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0), "learning rates of part 1",
                                    check=positive)
    steps: int = option(1000, "SGD steps of each part-1 training", check=at_least(1))
    steps_cap: int | None = option(None, "part 1's steps scale with 1/lr below lr 0.1: --steps x 0.1 / lr, up to "
                                         "this many (none: --steps at every lr)", check=at_least(1))
    hessian_images: int = option(1000, "training images of each part-1 final point's Hessian", check=at_least(2))
    batch_size: int = option(128, "SGD batch size (parts 1 and 2)", check=at_least(2))
    width: int = option(100, "hidden width", check=at_least(1))
    depth: int = option(10, "linear layers of the part-1 networks", check=at_least(2))
    probe_depths: tuple[int, ...] = option((10, 20), "linear layers of the networks of parts 2-5",
                                           check=at_least(2))
    train_size: int = option(EMBEDDED, "training images (of the 10 000 that come with minibn)",
                             check=(at_least(2), at_most(EMBEDDED)))
    probe_lr: float = option(1e-4, "learning rate of the trajectory whose first updates part 2 probes",
                             check=positive)
    probe_steps: int = option(5, "updates probed in part 2", check=at_least(1))
    alphas: tuple[float, ...] = option(ALPHAS, "step sizes of part 2", check=positive)
    divergence_ratio: float = option(2.0, "a step diverges when the loss after it exceeds this times the loss "
                                          "before", check=positive)
    big_step: float = option(1.0, "the step size of part 3's large update", check=positive)
    inits: tuple[str, ...] = option(INITS, "initializations compared in part 5", choices=INITS)

    def validate(self):
        for name, n in (("batch_size", self.batch_size), ("hessian_images", self.hessian_images)):
            if n > self.train_size:
                raise ConfigError(name, f"{n} exceeds --train-size {self.train_size}")
        if self.steps_cap is not None and self.steps_cap < self.steps:
            raise ConfigError("steps_cap", f"{self.steps_cap} is below --steps {self.steps}")
        if list(self.alphas) != sorted(self.alphas):
            raise ConfigError("alphas", f"must increase, got {','.join(map(str, self.alphas))}")


AUTHOR = {"seeds": 5, "steps_cap": 20_000}  # no code of the paper's authors in the seeds: see NOTES
QUICK = {"lrs": (1e-4, 1e-1, 1.0), "seeds": 2, "steps": 60, "probe_depths": (10,), "probe_steps": 2, "train_size": 2000,
         "inits": ("kaiming_normal", "pytorch")}


# -- data and networks ----------------------------------------------------------------------------------


def load_data(cfg: Config):
    """The training images (part 2's batches and the probes' data), as tensors."""
    x, y = load_mnist_subset("train", dtype=np.dtype(cfg.dtype))
    if cfg.train_size < len(x):
        keep = np.sort(np.random.default_rng(cfg.seed).choice(len(x), cfg.train_size, replace=False))
        x, y = x[keep], y[keep]
    return mb.tensor(x), mb.tensor(y)


def build(cfg: Config, kind: str, depth: int, seed: int, init: str = "kaiming_normal"):
    """A BN ("bn") or plain ("plain") MLP of ``depth`` linear layers, zero biases."""
    sizes = [784] + [cfg.width] * (depth - 1) + [10]
    return nn.mlp(sizes, norm="bn" if kind == "bn" else None, init=init, zero_bias=True, dtype=cfg.dtype,
                  generator=mb.Generator(seed))


@mb.no_grad()
def _loss(net, x, y) -> float:
    with running_stats_kept(net), np.errstate(all="ignore"):
        value = float(F.cross_entropy(net(x), y).item())
    return value if math.isfinite(value) else math.inf


def _shifted(net, params, grads, alpha):
    """Set the parameters to theta - alpha g (theta saved by the caller)."""
    for p, (theta, g) in zip(params, grads):
        p._data[...] = theta - alpha * g


# -- part 2: relative loss after one step -------------------------------------------------------------------


def one_step_losses(cfg: Config, net, x, y, seed: int) -> list:
    """For each of the first ``probe_steps`` updates of SGD at ``probe_lr``: the loss before and
    L(theta - alpha g) / L(theta) for every alpha, on that update's batch."""
    params = list(net.parameters())
    out = []
    for step in range(cfg.probe_steps):
        idx = batch_indices(seed, step, len(x), cfg.batch_size, shuffle=True)
        xb, yb = (x, y) if idx is None else (x[idx], y[idx])
        with running_stats_kept(net):
            loss = F.cross_entropy(net(xb), yb)
            gs = mb.grad(loss, params)
        before = float(loss.item())
        saved = [(p._data.copy(), g._data) for p, g in zip(params, gs)]
        ratios = []
        for alpha in cfg.alphas:
            _shifted(net, params, saved, alpha)
            ratios.append(_loss(net, xb, yb) / before)
        _shifted(net, params, saved, cfg.probe_lr)  # the trajectory's own update
        out.append({"step": step, "loss": before, "relative_loss": ratios})
    return out


def threshold(ratios, alphas, limit) -> float | None:
    """The smallest alpha whose step diverges (relative loss > ``limit``), None if none does."""
    return next((a for a, r in zip(alphas, ratios) if not r <= limit), None)


# -- parts 3 and 4: activations and final-layer gradients -----------------------------------------------------


@mb.no_grad()
def activation_stats(net, x) -> dict:
    """Per hidden layer: the activation RMS, and per channel the mean and standard deviation over
    the batch (after the ReLU); the loss-free forward leaves running statistics alone."""
    with running_stats_kept(net), np.errstate(all="ignore"):
        outputs = LayerRecord(net, x).outputs[:-1]
        arrays = [h.numpy().astype(np.float64) for h in outputs]
    return {"rms": [float(np.sqrt(np.mean(a * a))) for a in arrays],
            "channel_mean": [a.mean(0).tolist() for a in arrays], "channel_std": [a.std(0).tolist() for a in arrays]}


def along_update(cfg: Config, net, x, y) -> dict:
    """Loss and per-layer activation RMS at theta - f alpha g for f = 0, 0.25, ..., 1 (alpha =
    ``big_step``, g the gradient at theta on (x, y)); the parameters are restored."""
    params = list(net.parameters())
    with running_stats_kept(net):
        gs = mb.grad(F.cross_entropy(net(x), y), params)
    saved = [(p._data.copy(), g._data) for p, g in zip(params, gs)]
    fractions = [0.0, 0.25, 0.5, 0.75, 1.0]
    losses, rms = [], []
    for f in fractions:
        _shifted(net, params, saved, f * cfg.big_step)
        losses.append(_loss(net, x, y))
        rms.append(activation_stats(net, x)["rms"])
    _shifted(net, params, saved, 0.0)
    return {"fractions": fractions, "loss": losses, "rms": rms, "step": cfg.big_step}


@mb.no_grad()
def final_layer_gradients(net, x, y) -> dict:
    """Per-sample gradients of the loss with respect to the logits (dL_i/dz_i = softmax(z_i) -
    onehot(y_i)), and the mean pairwise cosine of the per-sample gradients of the final layer's
    weights, delta_i h_i^T: cos_ij = (delta_i . delta_j)(h_i . h_j) / (|delta_i||delta_j||h_i||h_j|)."""
    with running_stats_kept(net), np.errstate(all="ignore"):
        record = LayerRecord(net, x)
        h = record.outputs[-2].numpy().astype(np.float64)
        z = record.logits.numpy().astype(np.float64)
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    delta = p - np.eye(z.shape[1])[y.numpy()]
    with np.errstate(all="ignore"):
        a = delta / np.linalg.norm(delta, axis=1, keepdims=True)
        b = h / np.linalg.norm(h, axis=1, keepdims=True)
        cos = (a @ a.T) * (b @ b.T)
    n = len(cos)
    mean_cos = float((np.nansum(cos) - np.nansum(np.diag(cos))) / (n * (n - 1)))
    coherence = float(np.linalg.norm((delta[:, :, None] * h[:, None, :]).sum(0))
                      / np.linalg.norm(delta, axis=1).dot(np.linalg.norm(h, axis=1)))
    predicted = z.argmax(1)
    return {"mean_pairwise_cosine": mean_cos, "coherence": coherence, "delta": delta[:64].tolist(),
            "h_norm": np.linalg.norm(h, axis=1)[:64].tolist(),
            "same_prediction": float(np.mean(predicted == np.bincount(predicted).argmax())),
            "accuracy": float(np.mean(predicted == y.numpy()))}


def variants(cfg: Config) -> list:
    """Part 1's trainings, "lr=<lr>/<bn|none>" (bn: the BN network and its folded plain twin; none: the
    He-initialized plain network), and the probed networks of parts 2-5, "<bn|plain>/depth=<d>/init=<init>"."""
    return [f"lr={lr!r}/{norm}" for lr in cfg.lrs for norm in ("bn", "none")] + \
        [f"{kind}/depth={depth}/init={init}" for depth in cfg.probe_depths for init in cfg.inits
         for kind in ("bn", "plain")]


def ensemble(cfg: Config, variant: str, seeds: list) -> list:
    """A variant's seeds: part 1's trained side by side (:func:`accuracy_members`), the probes one
    after another (each with minibn's default generator seeded with its seed, as a task of its own)."""
    if variant.startswith("lr="):
        lr, norm = variant.removeprefix("lr=").split("/")
        return accuracy_members(cfg, float(lr), norm, seeds)
    out = []
    for seed in seeds:
        mb.manual_seed(seed)
        out.append(task(cfg, variant, seed))
    return out


def task(cfg: Config, variant: str, seed: int) -> dict:
    """Parts 2-4 for one network (with He initialization also part 3's update and heat-map statistics)."""
    kind, depth, init = variant.split("/")
    depth, init = int(depth.removeprefix("depth=")), init.removeprefix("init=")
    x, y = load_data(cfg)
    net = build(cfg, kind, depth, seed, init)
    idx = batch_indices(seed, 0, len(x), cfg.batch_size, shuffle=True)
    xb, yb = (x, y) if idx is None else (x[idx], y[idx])
    out = {"gradients": final_layer_gradients(net, xb, yb)}
    if init == "kaiming_normal":
        out["activations"] = activation_stats(net, xb)
        out["update"] = along_update(cfg, net, xb, yb)
    out["one_step"] = one_step_losses(cfg, net, x, y, seed)  # moves the network: last
    out["thresholds"] = [threshold(s["relative_loss"], cfg.alphas, cfg.divergence_ratio) for s in out["one_step"]]
    return out


# -- the run --------------------------------------------------------------------------------------------


SCALE_BELOW = 0.1  # --steps-cap: a learning rate below this trains --steps x SCALE_BELOW / lr steps (capped)


def steps_at(lr: float, steps: int, cap: int | None) -> int:
    """Part 1's steps at ``lr``: ``steps``, or with a ``cap``, steps x 0.1 / lr below lr 0.1, at most ``cap``."""
    if cap is None or lr >= SCALE_BELOW:
        return steps
    return min(cap, max(steps, math.ceil(steps * SCALE_BELOW / lr - 1e-9)))


def point_config(cfg: Config, lr: float, norm: str, seed: int):
    """The depth-10 experiment's config of part 1's training at (lr, norm, seed): evaluated and
    probed at its end."""
    steps = steps_at(lr, cfg.steps, cfg.steps_cap)
    return depth10.Config(lr=lr, norm=norm, seed=seed, steps=steps, batch_size=cfg.batch_size, width=cfg.width,
                          depth=cfg.depth, train_size=cfg.train_size, eval_every=steps, checkpoint_every=steps,
                          dtype=cfg.dtype, backend=cfg.backend, final_probes=True, probe_images=cfg.hessian_images,
                          quiet=True)


def accuracy_members(cfg: Config, lr: float, norm: str, seeds: list) -> list:
    """Part 1 at (lr, norm) for ``seeds`` side by side: per seed, each network of the depth-10
    experiment's run (:func:`point_config`) trained as that run trains it (its data, weights, fold and
    batches; SGD at ``lr``; a network whose loss or activations blow up is stopped there), its seeds
    as one ``nn.Ensemble``, then each surviving network's final test accuracy and probes. Returns,
    per seed, {"networks": {name: {"steps", "diverged_at", "diverged_because",
    "final_test_accuracy", "final_probes"}}}: the depth-10 run's numbers, to rounding."""
    configs = [point_config(cfg, lr, norm, seed) for seed in seeds]
    data = [depth10.load_data(c) for c in configs]
    xs, ys = [mb.tensor(d[0]) for d in data], [mb.tensor(d[1]) for d in data]
    xt, yt = mb.tensor(data[0][2]), mb.tensor(data[0][3])
    alone = [depth10.build_networks(c, depth10.fold_data(c, x)) for c, x in zip(configs, xs)]
    names = list(alone[0])
    nets = {name: nn.Ensemble([n[name] for n in alone]) for name in names}
    descent = {name: mb.optim.SGD(net.parameters(), lr=lr) for name, net in nets.items()}
    records = {name: [{"steps": configs[0].steps, "diverged_at": None, "diverged_because": None} for _ in seeds]
               for name in names}
    n = len(data[0][0])
    for step in range(configs[0].steps):
        batches = [batch_indices(c.seed, step, n, c.batch_size, c.shuffle) for c in configs]
        xb = mb.tensor(np.stack([d[0] if i is None else d[0][i] for d, i in zip(data, batches)]))
        yb = mb.tensor(np.stack([d[1] if i is None else d[1][i] for d, i in zip(data, batches)]))
        for name, net in nets.items():
            running = [k for k, r in enumerate(records[name]) if r["diverged_at"] is None]
            if running:
                _ensemble_step(configs[0], step, net, descent[name], xb, yb, running, records[name])
    for name, net in nets.items():
        for k, (c, rec) in enumerate(zip(configs, records[name])):
            rec["final_test_accuracy"] = rec["final_probes"] = None
            if rec["diverged_at"] is None:
                member = net.member(k)
                rec["final_probes"] = depth10.final_probes(c, member, xs[k], ys[k])
                rec["final_test_accuracy"] = evaluate(member, xt, yt)
    return [{"networks": {name: records[name][k] for name in names}} for k in range(len(seeds))]


def _ensemble_step(c, step: int, net, descent, xb, yb, running: list, records: list) -> None:
    """One SGD step of the members ``running`` of ``net``: those whose loss or activations blew up
    (the depth-10 experiment's rule) are recorded as diverged at ``step`` and left out of it."""
    rms = []
    linears = [m for m in net.layers if hasattr(m, "weight") and m.weight.ndim == 3]
    hooks = [m.register_forward_hook(lambda mod, inp, out: rms.append(_member_rms(inp[0])))
             for m in linears[1:]]  # what each Linear but the first (the images) receives
    try:
        with np.errstate(over="ignore", invalid="ignore"):
            logits = net(xb)
    finally:
        for h in hooks:
            h.remove()
    rms.append(_member_rms(logits))
    kept = []
    for k in running:
        loss = F.cross_entropy(logits[k], yb[k])
        reason = divergence(float(loss.item()), max(r[k] for r in rms), c.diverge_rms)
        if reason is None:
            kept.append(loss)
        else:
            records[k]["steps"], records[k]["diverged_at"], records[k]["diverged_because"] = step, step, reason
    if kept:
        descent.zero_grad()
        with np.errstate(over="ignore", invalid="ignore"):  # a diverged member's slice: not its business
            sum(kept[1:], kept[0]).backward()
        descent.step()


def _member_rms(h) -> list:
    """Each member's root-mean-square of an ensemble's (K, N, C) values, as ``LayerRecord`` computes a
    network's (its norm in the values' own dtype: inf or NaN where they blew up)."""
    a = h.detach().numpy()
    with np.errstate(over="ignore", invalid="ignore"):
        return [float(np.linalg.norm(m.ravel())) / math.sqrt(m.size) for m in a]


PROBED = ("top_eigenvalue", "gradient_noise", "train_accuracy")  # the final probes of part 1's trainings


def accuracy_table(cfg: Config, results: dict) -> dict:
    """network -> lr (as text) -> final test accuracy per seed; a diverged network gets the
    accuracy of a constant guess."""
    chance = chance_accuracy(load_mnist_subset("test")[1])
    out = {"bn": {}, "plain_folded": {}, "plain": {}}
    diverged, probes = {k: {} for k in out}, {k: {} for k in out}
    for lr in cfg.lrs:
        for norm, names in (("bn", {"bn": "bn", "plain": "plain_folded"}), ("none", {"plain": "plain"})):
            for run in results[f"lr={lr!r}/{norm}"]:
                for source, name in names.items():
                    rec = run["networks"][source]
                    acc = rec["final_test_accuracy"]
                    out[name].setdefault(repr(float(lr)), []).append(chance if acc is None else acc)
                    diverged[name].setdefault(repr(float(lr)), []).append(rec["diverged_at"])
                    probes[name].setdefault(repr(float(lr)), []).append(None if acc is None else {
                        key: rec["final_probes"][key] for key in PROBED} | {"test_accuracy": acc})
    return {"accuracy": out, "diverged_at": diverged, "chance": chance, "final_probes": probes}


def collect(cfg: Config, results: dict) -> dict:
    """Part 1's table from its trainings, and the probes of parts 2-5 as they are."""
    return {"part1": accuracy_table(cfg, results),
            "probes": {v: rs for v, rs in results.items() if not v.startswith("lr=")}}


def document_numbers(metrics) -> list:
    """The summary's two numbers: the small learning rate (1e-4) at which both networks perform alike,
    and the step size (1e-3) above which the plain network's first updates diverge."""
    cfg, acc = metrics["config"], metrics["part1"]["accuracy"]
    out = []
    small = repr(min(float(k) for k in acc["bn"]))
    if float(small) == 1e-4:
        out.append(C.number(DOCUMENT, "Large Learning Rates Are the Key", "test accuracy at lr = 1e-4, BN minus "
                            "no BN (points)", "similar", [100 * (b - p) for b, p in zip(acc["bn"][small],
                                                                                     acc["plain"][small])],
                            "per seed; the paper: ResNet-110 on CIFAR-10"))
    for depth in cfg["probe_depths"]:
        for kind in ("plain", "bn"):
            runs = metrics["probes"][f"{kind}/depth={depth}/init=kaiming_normal"]
            out.append(C.number(DOCUMENT, "Divergence of NN Without BN", f"depth {depth}, {'no BN' if kind == 'plain' else 'BN'}: "
                                "the smallest step size whose first updates diverge",
                                "above 1e-3" if kind == "plain" else "none",
                                [t for run in runs for t in run["thresholds"]],
                                f"per probed update and seed (None: none of {', '.join(map(str, cfg['alphas']))})"))
    return out


# -- claims -------------------------------------------------------------------------------------------------


def _setting(cfg: dict, part: str, depth=None) -> str:
    base = (f"MLP on MNIST ({cfg['train_size']} images), width {cfg['width']}, ReLU, He init, zero biases, "
            f"{cfg['seeds']} seeds from {cfg['seed']} (the paper: ResNet-110 on CIFAR-10)")
    if part == "1":
        return (f"{base}; depth {cfg['depth']}, SGD batch {cfg['batch_size']}, {_steps(cfg)}, lr "
                f"{','.join(f'{v:g}' for v in cfg['lrs'])}")
    return f"{base}; depth {depth}, batch {cfg['batch_size']}"


def _steps(cfg: dict) -> str:
    """Part 1's step budget in words."""
    if not cfg.get("steps_cap"):
        return f"{cfg['steps']} steps"
    return f"{cfg['steps']} steps (x {SCALE_BELOW:g} / lr below lr {SCALE_BELOW:g}, at most {cfg['steps_cap']})"


def _mean(values):
    return float(np.mean(values)) if len(values) else math.nan


claims = C.Claims()


@claims.rule("LR-SMALL-SIMILAR", "LR-LARGE-BN", "LR-IS-THE-BENEFIT")
def learning_rates(metrics):
    """Part 1: accuracy against the learning rate."""
    return _lr_claims(metrics, metrics["config"])


@claims.rule("LR-FLAT", "LR-NOISE-GENERALIZES")
def final_points(metrics):
    """Part 1's final points: why a large learning rate helps (the summary's two explanations)."""
    return _final_point_claims(metrics["part1"]["final_probes"], _setting(metrics["config"], "1"))


@claims.rule("ONE-STEP-D<depth>", "ACT-ORDERS-D<depth>", "ACT-CAUSE-D<depth>", "ACT-HEATMAP-D<depth>",
             "GRAD-ALIGN-D<depth>", "GRAD-SAME-WRONG-D<depth>", "INIT-D<depth>")
def probed(metrics):
    """Parts 2-5 at each probed depth."""
    return [c for depth in metrics["config"]["probe_depths"] for c in _probe_claims(metrics, metrics["config"], depth)]


SIMILAR = 0.02  # "similar performance": final test accuracies within 2 points


def _lr_claims(metrics, cfg) -> list:
    acc = metrics["part1"]["accuracy"]
    lrs = sorted(float(k) for k in acc["bn"])
    setting = _setting(cfg, "1")
    out = []
    small = repr(min(lrs))
    bn, plain = acc["bn"][small], acc["plain"][small]
    best = {name: max(_mean(v) for v in acc[name].values()) for name in ("bn", "plain")}
    e = {"lr": min(lrs), "bn": bn, "plain": plain, "plain_folded": acc["plain_folded"][small],
         "difference_points": 100 * (_mean(bn) - _mean(plain)), "seeds": len(bn),
         "equivalence": C.equivalence_test(bn, plain, margin=SIMILAR), "best_over_lrs": best,
         "unfinished": [name for name, v in (("bn", bn), ("plain", plain)) if _mean(v) < best[name] - 0.10]}
    out.append(C.claim("LR-SMALL-SIMILAR", DOCUMENT, "Large Learning Rates Are the Key", "with a small learning "
                       "rate (lr = 0.0001) BN and non-BN networks reach similar performance", setting, e,
                       "final test accuracies at the grid's smallest lr, BN against the He-initialized plain network, "
                       f"paired by seed: REPRODUCED if equal within {100 * SIMILAR:g} points (TOST, paired t, alpha "
                       "0.05; 'similar performance', taken as 2 points of test accuracy); NOT-REPRODUCED if the 90 % "
                       "interval of the difference lies outside the margin; INCONCLUSIVE otherwise, if the smallest "
                       "lr is above 1e-4, or if a network there is more than 10 points below its best over the lrs "
                       "(it has not finished training in --steps steps: the claim is about what the networks reach)",
                       decide_small_lr, test="TOST (paired t), margin 2 points",
                       margin=C.margin(100 * SIMILAR, "test accuracy points")))

    large = [repr(v) for v in lrs if v >= 0.1]
    tests = [C.paired_t_test(acc["bn"][k], acc["plain"][k]) for k in large]
    adjusted = C.holm([p for _, p in tests])
    per_lr = {k: {"bn": acc["bn"][k], "plain": acc["plain"][k], "mean_difference": mean, "p": p, "p_holm": q}
              for k, (mean, p), q in zip(large, tests, adjusted)}
    e = {"large_lrs": [float(k) for k in large], "per_lr": per_lr,
         "bn_better_at": [float(k) for k, v in per_lr.items() if v["p_holm"] < 0.05 and v["mean_difference"] > 0],
         "bn_worse_at": [float(k) for k, v in per_lr.items() if v["p_holm"] < 0.05 and v["mean_difference"] < 0]}
    out.append(C.claim("LR-LARGE-BN", DOCUMENT, "Large Learning Rates Are the Key", "networks with BN have a clear "
                       "advantage when the learning rates are large", setting, e,
                       "at every lr >= 0.1 of the grid, BN's final test accuracy against the He-initialized plain "
                       "network's, paired t-tests over the seeds, Holm-adjusted over those lrs, p < 0.05: REPRODUCED "
                       "if BN is better at every such lr; PARTLY if at some and worse at none; NOT-REPRODUCED if worse "
                       "at some; INCONCLUSIVE if no difference is shown or without an lr >= 0.1", decide_large_lr,
                       test="paired t-tests, Holm-adjusted over the lrs"))

    best = {name: max(lrs, key=lambda v: _mean(acc[name][repr(v)])) for name in ("bn", "plain")}
    at_plain_best = repr(best["plain"])
    bn_best, plain_best = acc["bn"][repr(best["bn"])], acc["plain"][at_plain_best]
    e = {"best_lr": best, "bn_best": bn_best, "plain_best": plain_best, "bn_at_plain_best_lr": acc["bn"][at_plain_best],
         "bn_best_above_plain_best": dict(zip(("mean_difference", "p"), C.paired_t_test(bn_best, plain_best))),
         "equal_at_plain_best_lr": C.equivalence_test(acc["bn"][at_plain_best], plain_best, margin=SIMILAR)}
    out.append(C.claim("LR-IS-THE-BENEFIT", DOCUMENT, "Large Learning Rates Are the Key", "enabling high learning "
                       "rates is what makes BN beneficial", setting, e,
                       "each network's best lr of the grid (by mean final test accuracy): REPRODUCED if BN's best lr is "
                       "higher than the plain network's, BN at its best is above the plain network at its best (paired "
                       "t-test, p < 0.05), and at the plain network's best lr the two are equal within "
                       f"{100 * SIMILAR:g} points (TOST, paired t: the benefit comes through the lr alone); PARTLY if "
                       "BN's best lr is higher but one of the other two is not shown; NOT-REPRODUCED if BN's best lr is "
                       "not higher", decide_benefit, test="paired t-test; TOST (paired t), margin 2 points",
                       margin=C.margin(100 * SIMILAR, "test accuracy points")))
    return out


def _runs(table: dict) -> list:
    """(lr, probes) of every run of a network that did not diverge."""
    return [(float(lr), r) for lr, rs in table.items() for r in rs if r is not None]


def _final_point_claims(probes: dict, setting: str) -> list:
    bn, plain = _runs(probes["bn"]), _runs(probes["plain"])
    log_lr = [np.log10(lr) for lr, _ in bn]
    with np.errstate(divide="ignore"):
        log_eig = [np.log10(max(r["top_eigenvalue"], 0)) for _, r in bn]
        log_noise = [np.log10(lr * r["gradient_noise"]) for lr, r in bn]

    def medians(runs):
        by_lr = {}
        for lr, r in runs:
            by_lr.setdefault(lr, []).append(r["top_eigenvalue"])
        return {lr: float(np.median(v)) for lr, v in sorted(by_lr.items())}
    flat = {"bn_runs": len(bn), "lrs": sorted({lr for lr, _ in bn}), "log_eigenvalue_vs_log_lr":
            C.partial_correlation_test(log_lr, log_eig), "bn_median_top_eigenvalue": medians(bn),
            "plain_median_top_eigenvalue": medians(plain)}
    if flat["bn_median_top_eigenvalue"] and flat["plain_median_top_eigenvalue"]:
        largest = max(flat["bn_median_top_eigenvalue"])
        flat["bn_at_its_largest_lr_below_every_plain"] = bool(
            flat["bn_median_top_eigenvalue"][largest] < min(flat["plain_median_top_eigenvalue"].values()))
    gap = [r["train_accuracy"] - r["test_accuracy"] for _, r in bn]
    tests = {"step_noise_vs_log_lr": C.partial_correlation_test(log_lr, log_noise),
             "gap_vs_log_step_noise": C.partial_correlation_test(log_noise, gap)}
    noise = {"bn_runs": len(bn), **{k: {**t, "p_holm": q} for (k, t), q in zip(tests.items(),
                                                                              C.holm([t["p"] for t in tests.values()]))},
             "train_test_gap": gap, "step_noise": [lr * r["gradient_noise"] for lr, r in bn]}
    return [
        C.claim("LR-FLAT", DOCUMENT, "Core idea", "BN allows for larger learning rates, which encourages updates "
                "along flat regions", setting, flat,
                "the top Hessian eigenvalue (raw parameters) of each final point that did not diverge: REPRODUCED if "
                "BN's falls with the lr (Pearson correlation of log10 eigenvalue with log10 lr over the runs "
                "negative, t-test p < 0.05) and its median at BN's largest lr is below the plain (He) network's "
                "median at each lr it trained at (BN's larger lrs reach flatter points than the plain network "
                "does); PARTLY if only the first; NOT-REPRODUCED if the correlation is significantly positive; "
                "INCONCLUSIVE otherwise or with fewer than 2 lrs", decide_flat, test="Pearson correlation t-test"),
        C.claim("LR-NOISE-GENERALIZES", DOCUMENT, "Why Large Learning Rates Are Good?", "higher learning rate -> "
                "larger estimated error (or noise) -> better generalization", setting, noise,
                "BN's final points that did not diverge: the step's error lr sqrt(mean_B ||g_B - g||^2) (mini-batch "
                "gradients about the full-batch one; it rises with the lr unless the noise falls faster than 1/lr) "
                "and the train-test accuracy gap; Pearson correlations, t-tests Holm-adjusted over the two: "
                "REPRODUCED if log10 step error rises with log10 lr and the gap falls with log10 step error; "
                "PARTLY if one is shown and the other is not contrary; NOT-REPRODUCED if either is shown contrary; "
                "INCONCLUSIVE otherwise or with fewer than 4 runs", decide_noise,
                test="Pearson correlation t-tests, Holm-adjusted"),
    ]


def decide_flat(e) -> str:
    if len(e["lrs"]) < 2 or not math.isfinite(e["log_eigenvalue_vs_log_lr"]["p"]):
        return C.INCONCLUSIVE
    t = e["log_eigenvalue_vs_log_lr"]
    if t["p"] < 0.05 and t["r"] > 0:
        return C.NOT_REPRODUCED
    if t["p"] < 0.05:
        return C.REPRODUCED if e.get("bn_at_its_largest_lr_below_every_plain") else C.PARTLY
    return C.INCONCLUSIVE


def decide_noise(e) -> str:
    if e["bn_runs"] < 4:
        return C.INCONCLUSIVE
    rises, falls = e["step_noise_vs_log_lr"], e["gap_vs_log_step_noise"]
    contrary = rises["p_holm"] < 0.05 and rises["r"] < 0 or falls["p_holm"] < 0.05 and falls["r"] > 0
    if contrary:
        return C.NOT_REPRODUCED
    shown = (rises["p_holm"] < 0.05) + (falls["p_holm"] < 0.05)
    return C.REPRODUCED if shown == 2 else C.PARTLY if shown == 1 else C.INCONCLUSIVE


def decide_small_lr(e) -> str:
    if e["lr"] > 1e-4 or e["unfinished"] or e["seeds"] < 2:
        return C.INCONCLUSIVE
    eq = e["equivalence"]
    if eq["equivalent"]:
        return C.REPRODUCED
    if eq["ci"][0] > SIMILAR or eq["ci"][1] < -SIMILAR:
        return C.NOT_REPRODUCED
    return C.INCONCLUSIVE


def decide_large_lr(e) -> str:
    if not e["large_lrs"]:
        return C.INCONCLUSIVE
    if e["bn_worse_at"]:
        return C.NOT_REPRODUCED
    if len(e["bn_better_at"]) == len(e["large_lrs"]):
        return C.REPRODUCED
    return C.PARTLY if e["bn_better_at"] else C.INCONCLUSIVE


def decide_benefit(e) -> str:
    if e["best_lr"]["bn"] <= e["best_lr"]["plain"]:
        return C.NOT_REPRODUCED
    above = e["bn_best_above_plain_best"]["p"] < 0.05 and e["bn_best_above_plain_best"]["mean_difference"] > 0
    return C.REPRODUCED if above and e["equal_at_plain_best_lr"]["equivalent"] else C.PARTLY


def _probe_claims(metrics, cfg, depth) -> list:
    probes, setting, out = metrics["probes"], _setting(cfg, "probe", depth), []
    he = "init=kaiming_normal"
    plain, bn = probes[f"plain/depth={depth}/{he}"], probes[f"bn/depth={depth}/{he}"]
    tag = f"D{depth}"

    def thresholds(runs):
        return [t for run in runs for t in run["thresholds"]]

    big = max(cfg["alphas"]) * 10  # "never diverged within the range"
    p_t = [big if t is None else t for t in thresholds(plain)]
    b_t = [big if t is None else t for t in thresholds(bn)]
    e = {"alphas": cfg["alphas"], "divergence_ratio": cfg["divergence_ratio"],
         "plain_thresholds": thresholds(plain), "bn_thresholds": thresholds(bn),
         "plain_median_threshold": float(np.median(p_t)), "bn_median_threshold": float(np.median(b_t)),
         "relative_loss_plain": [s["relative_loss"] for run in plain for s in run["one_step"]],
         "relative_loss_bn": [s["relative_loss"] for run in bn for s in run["one_step"]]}

    out.append(C.claim(f"ONE-STEP-{tag}", DOCUMENT, "Divergence of NN Without BN", "at the first few updates, the "
                       "network without BN exhibits great relative loss (divergence) when the step size is greater "
                       "than 1e-3; the same does not happen to the network with BN", setting, e,
                       "the smallest alpha of the grid whose step diverges (relative loss > --divergence-ratio), "
                       "median over the probed updates and seeds (never: 10x the largest alpha): REPRODUCED if the "
                       "plain network's is in (1e-3, 1e-2] and BN's at least 10x higher; PARTLY if BN's is higher "
                       "but not so; NOT-REPRODUCED if BN's is not higher", decide_one_step,
                       test="threshold on the median over updates and seeds"))

    upd = [run["update"] for run in plain]
    ratio_end = [u["rms"][-1][-1] / u["rms"][-1][0] for u in upd]
    ratio_start = [u["rms"][0][-1] / u["rms"][0][0] for u in upd]
    e = {"big_step": cfg["big_step"], "top_over_bottom_after_update": ratio_end, "top_over_bottom_at_init": ratio_start,
         "loss_along_update": [u["loss"] for u in upd]}
    with np.errstate(all="ignore"):
        ends = [r for r in ratio_end if math.isfinite(r)]
    e["min_ratio"] = min(ends) if len(ends) == len(ratio_end) else None
    out.append(C.claim(f"ACT-ORDERS-{tag}", DOCUMENT, "Step Size", "activations of upper layers are extremely large, "
                       "several orders of magnitude larger than lower ones", setting, e,
                       "the plain network after one update of --big-step: the last hidden layer's activation RMS "
                       "over the first's, every seed: REPRODUCED if >= 100, PARTLY if >= 10, NOT-REPRODUCED "
                       "otherwise; INCONCLUSIVE if the activations are not finite", decide_orders,
                       test="threshold on every seed"))

    e = {"per_seed": []}
    for u in upd:
        rms = np.asarray(u["rms"], dtype=float)
        with np.errstate(all="ignore"):
            growth = rms[-1] / rms[0]
            e["per_seed"].append({"diverged": bool(not u["loss"][-1] <= cfg["divergence_ratio"] * u["loss"][0]),
                                  "top_growth": float(growth[-1]), "bottom_growth": float(growth[0]),
                                  "loss_top_correlation": C.correlation(np.log(u["loss"]), np.log(rms[:, -1]))})

    out.append(C.claim(f"ACT-CAUSE-{tag}", DOCUMENT, "Step Size", "divergence is caused by exploding activations",
                       setting, e, "along the plain network's update of --big-step (fractions 0 ... 1): "
                       "REPRODUCED if, for every seed, the update diverges, the last hidden layer's RMS grows >= 10x "
                       "and >= 10x more than the first's, and log loss follows log top-layer RMS over the fractions "
                       "(Pearson >= 0.9); PARTLY if the top layer explodes for some seed but not all conditions "
                       "hold; NOT-REPRODUCED if it does not; INCONCLUSIVE if the update does not diverge",
                       decide_cause, test="thresholds and Pearson correlation, every seed"))

    def depth_profile(runs):
        stats = [r["activations"] for r in runs]
        std = np.asarray([[np.mean(layer) for layer in s["channel_std"]] for s in stats])   # seeds x layers
        mean = np.asarray([[np.mean(np.abs(layer)) for layer in s["channel_mean"]] for s in stats])
        layers = np.arange(1, std.shape[1] + 1)
        fit = []
        for row in std:
            with np.errstate(all="ignore"):
                y = np.log(row)
            if not np.all(np.isfinite(y)) or y.std() == 0:
                fit.append({"growth_per_layer": 1.0, "r_squared": 0.0})
                continue
            slope, icept = np.polyfit(layers, y, 1)
            r2 = 1 - float(((y - (slope * layers + icept)) ** 2).sum() / ((y - y.mean()) ** 2).sum())
            fit.append({"growth_per_layer": float(np.exp(slope)), "r_squared": r2})
        return {"mean_channel_std": std.mean(0).tolist(), "mean_abs_channel_mean": mean.mean(0).tolist(),
                "fit": fit, "max_over_min_std": float(np.max(std.max(1) / std.min(1)))}

    e = {"plain": depth_profile(plain), "bn": depth_profile(bn), "at": "initialization"}

    out.append(C.claim(f"ACT-HEATMAP-{tag}", DOCUMENT, "Activation Heat Map", "with BN the activations stay within a "
                       "roughly constant range across layers, while without it the channels' means and standard "
                       "deviations grow exponentially with depth", setting, e,
                       "at initialization, the mean over channels of each hidden layer's channel standard deviation: "
                       "the plain network's grows exponentially if a line fitted to its log against the layer rises "
                       ">= 10 % a layer with R^2 >= 0.8 (every seed), and BN's is roughly constant if max / min over "
                       "layers <= 2: REPRODUCED if both, PARTLY if one, NOT-REPRODUCED if neither", decide_heatmap,
                       test="log-linear fit over the layers (every seed); max / min over the layers"))

    p_cos = [run["gradients"]["mean_pairwise_cosine"] for run in plain]
    b_cos = [run["gradients"]["mean_pairwise_cosine"] for run in bn]
    e = {"plain_mean_pairwise_cosine": p_cos, "bn_mean_pairwise_cosine": b_cos, "clearly_apart": C.compare(p_cos, b_cos),
         "plain_coherence": [run["gradients"]["coherence"] for run in plain],
         "bn_coherence": [run["gradients"]["coherence"] for run in bn],
         "plain_same_prediction": [run["gradients"]["same_prediction"] for run in plain]}
    out.append(C.claim(f"GRAD-ALIGN-{tag}", DOCUMENT, "Gradients With and Without BN", "without BN, the gradient "
                       "updates of the same batch point roughly the same way, adding up to a large update",
                       setting, e, "at initialization, the mean pairwise cosine of the per-sample gradients of the "
                       "final layer's weights over one batch: REPRODUCED if the plain network's is >= 0.5 for every "
                       "seed and clearly above BN's (ranges apart); PARTLY if clearly above but < 0.5; "
                       "NOT-REPRODUCED otherwise", decide_alignment, test="ranges over the seeds apart; threshold"))

    same = {kind: [run["gradients"]["same_prediction"] for run in runs] for kind, runs in (("plain", plain), ("bn", bn))}
    e = {"same_prediction": same, "accuracy": {kind: [run["gradients"]["accuracy"] for run in runs]
                                               for kind, runs in (("plain", plain), ("bn", bn))},
         "plain_above_bn": C.compare(same["plain"], same["bn"])}
    out.append(C.claim(f"GRAD-SAME-WRONG-{tag}", DOCUMENT, "Gradients With and Without BN", "[without BN the aligned "
                       "gradients] result in the same and mostly wrong predictions in the first few steps", setting, e,
                       "at initialization, on the batch of the first update: the share of the batch given the most "
                       "frequent predicted class ('the same') and the accuracy ('mostly wrong'; at initialization any "
                       "network is, so the contrast with BN carries the claim): REPRODUCED if, for every seed, the plain "
                       "network gives one class to >= 50 % of the batch with accuracy <= 50 % and its share is clearly "
                       "above BN's (ranges apart); PARTLY if the plain network's predictions are the same and wrong but "
                       "not apart from BN's; NOT-REPRODUCED otherwise", decide_same_wrong,
                       test="thresholds on every seed; ranges over the seeds apart"))

    inits = cfg["inits"]
    if len(inits) >= 2:
        def summary(kind):
            rows = {}
            for init in inits:
                runs = probes[f"{kind}/depth={depth}/init={init}"]
                first = [big if r["thresholds"][0] is None else r["thresholds"][0] for r in runs]
                rows[init] = {"first_update_threshold": float(np.median(first)),
                              "mean_pairwise_cosine": _mean([r["gradients"]["mean_pairwise_cosine"] for r in runs])}
            values = [v["first_update_threshold"] for v in rows.values()]
            cosines = [v["mean_pairwise_cosine"] for v in rows.values()]
            return {"per_init": rows, "threshold_max_over_min": max(values) / min(values),
                    "cosine_range": max(cosines) - min(cosines)}

        e = {"plain": summary("plain"), "bn": summary("bn")}

        out.append(C.claim(f"INIT-{tag}", DOCUMENT, "Random Initialization", "the exploding gradients of networks "
                           "without BN are caused by the random initialization", setting + "; inits " +
                           ",".join(inits), e, "the plain network's first-update divergence threshold and final-layer "
                           "gradient cosine under each initialization: the initialization decides them if the "
                           "threshold varies >= 10x or the cosine by >= 0.3 across initializations: REPRODUCED if it "
                           "does for the plain network and not for BN (batch norm removes the dependence); PARTLY if "
                           "it does for both; NOT-REPRODUCED if not for the plain network", decide_init,
                           test="thresholds across initializations (medians over the seeds)"))
    return out


def decide_one_step(e) -> str:
    p, b = e["plain_median_threshold"], e["bn_median_threshold"]
    if b <= p:
        return C.NOT_REPRODUCED
    return C.REPRODUCED if 1e-3 < p <= 1e-2 + 1e-12 and b >= 10 * p else C.PARTLY


def decide_orders(e) -> str:
    if e["min_ratio"] is None:
        return C.INCONCLUSIVE
    return C.REPRODUCED if e["min_ratio"] >= 100 else C.PARTLY if e["min_ratio"] >= 10 else C.NOT_REPRODUCED


def decide_cause(e) -> str:
    seeds = e["per_seed"]
    if not all(s["diverged"] for s in seeds):
        return C.INCONCLUSIVE
    explode = [s["top_growth"] >= 10 and s["top_growth"] >= 10 * s["bottom_growth"] for s in seeds]
    follows = [s["loss_top_correlation"] >= 0.9 for s in seeds]
    if all(explode) and all(follows):
        return C.REPRODUCED
    return C.PARTLY if any(explode) else C.NOT_REPRODUCED


def decide_heatmap(e) -> str:
    grows = all(f["growth_per_layer"] >= 1.1 and f["r_squared"] >= 0.8 for f in e["plain"]["fit"])
    flat = e["bn"]["max_over_min_std"] <= 2
    return C.REPRODUCED if grows and flat else C.PARTLY if grows or flat else C.NOT_REPRODUCED


def decide_alignment(e) -> str:
    if e["clearly_apart"] > 0:
        return C.REPRODUCED if min(e["plain_mean_pairwise_cosine"]) >= 0.5 else C.PARTLY
    return C.NOT_REPRODUCED


def decide_same_wrong(e) -> str:
    same = all(v >= 0.5 for v in e["same_prediction"]["plain"]) and all(a <= 0.5 for a in e["accuracy"]["plain"])
    if not same:
        return C.NOT_REPRODUCED
    return C.REPRODUCED if e["plain_above_bn"] > 0 else C.PARTLY


def decide_init(e) -> str:
    def matters(s):
        return s["threshold_max_over_min"] >= 10 or s["cosine_range"] >= 0.3
    if not matters(e["plain"]):
        return C.NOT_REPRODUCED
    return C.PARTLY if matters(e["bn"]) else C.REPRODUCED


# -- figures and summary ------------------------------------------------------------------------------------


def figures(metrics: dict, folder) -> dict:
    out = {"accuracy_vs_lr.png": lambda path: _accuracy_figure(metrics, path)}
    for depth in metrics["config"]["probe_depths"]:
        out[f"relative_loss_depth{depth}.png"] = lambda path, d=depth: _relative_loss_figure(metrics, d, path)
        out[f"activations_depth{depth}.png"] = lambda path, d=depth: _activation_figure(metrics, d, path)
        out[f"channel_heatmaps_depth{depth}.png"] = lambda path, d=depth: _channel_figure(metrics, d, path)
        out[f"gradient_heatmap_depth{depth}.png"] = lambda path, d=depth: _gradient_figure(metrics, d, path)
    return out


def _accuracy_figure(metrics, path):
    plt = plotting.plt
    part = metrics["part1"]
    fig, ax = plt.subplots(figsize=(7, 4.5), layout="constrained")
    labels = {"bn": "BN", "plain": "plain (He init)", "plain_folded": "plain (BN folded in at step 0)"}
    for i, (name, table) in enumerate(part["accuracy"].items()):
        lrs = sorted(float(k) for k in table)
        means = [100 * np.mean(table[repr(v)]) for v in lrs]
        lo = [100 * np.min(table[repr(v)]) for v in lrs]
        hi = [100 * np.max(table[repr(v)]) for v in lrs]
        ax.plot(lrs, means, marker="o", color=f"C{i}", label=labels[name])
        ax.fill_between(lrs, lo, hi, color=f"C{i}", alpha=0.2)
    ax.axhline(100 * part["chance"], color="gray", ls=":", label="constant guess (diverged)")
    cfg = metrics["config"]
    ax.set(xscale="log", xlabel="learning rate", ylabel="final test accuracy (%)",
           title=f"MLP depth {cfg['depth']} on MNIST, SGD {_steps(cfg)}, {len(metrics['seeds'])} seeds (band: range)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    plotting.save_figure(fig, path)


def _relative_loss_figure(metrics, depth, path):
    plt = plotting.plt
    cfg = metrics["config"]
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), layout="constrained", squeeze=False)
    for ax, kind in zip(axes[0], ("plain", "bn")):
        runs = metrics["probes"][f"{kind}/depth={depth}/init=kaiming_normal"]
        values = np.asarray([s["relative_loss"] for s in runs[0]["one_step"]], dtype=float).T  # alphas x updates
        with np.errstate(all="ignore"):
            shown = np.log10(np.clip(values, 1e-3, 1e6))
        im = ax.imshow(shown, aspect="auto", origin="lower", cmap="coolwarm", vmin=-2, vmax=2)
        ax.set_yticks(range(len(cfg["alphas"])), [f"{a:g}" for a in cfg["alphas"]])
        ax.set_xticks(range(values.shape[1]))
        ax.set(xlabel="update", ylabel="step size alpha", title=f"{'BN' if kind == 'bn' else 'plain'} (seed "
               f"{metrics['seeds'][0]})")
        fig.colorbar(im, ax=ax, label="log10 relative loss")
    fig.suptitle(f"L(theta - alpha g) / L(theta) at the first updates, MLP depth {depth} on MNIST")
    plotting.save_figure(fig, path)


def _activation_figure(metrics, depth, path):
    plt = plotting.plt
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), layout="constrained")
    for ax, kind in zip(axes, ("plain", "bn")):
        u = metrics["probes"][f"{kind}/depth={depth}/init=kaiming_normal"][0]["update"]
        rms = np.asarray(u["rms"], dtype=float)
        for f, row in zip(u["fractions"], rms):
            ax.plot(range(1, len(row) + 1), row, marker=".", label=f"{int(100 * f)} % (loss {u['loss'][u['fractions'].index(f)]:.3g})")
        ax.set(yscale="log", xlabel="hidden layer", ylabel="activation RMS",
               title=f"{'BN' if kind == 'bn' else 'plain'}: along one step of {u['step']:g}")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(f"activations by depth, MLP depth {depth} on MNIST (seed {metrics['seeds'][0]})")
    plotting.save_figure(fig, path)


def _channel_figure(metrics, depth, path):
    plt = plotting.plt
    fig, axes = plt.subplots(2, 2, figsize=(11, 6), layout="constrained")
    for col, kind in enumerate(("plain", "bn")):
        a = metrics["probes"][f"{kind}/depth={depth}/init=kaiming_normal"][0]["activations"]
        for row, (key, label) in enumerate((("channel_mean", "mean"), ("channel_std", "std"))):
            values = np.asarray(a[key], dtype=float)
            with np.errstate(all="ignore"):
                im = axes[row, col].imshow(np.log10(np.abs(values) + 1e-12), aspect="auto", cmap="viridis")
            axes[row, col].set(xlabel="channel", ylabel="hidden layer",
                               title=f"{'BN' if kind == 'bn' else 'plain'}: channel {label} at initialization")
            fig.colorbar(im, ax=axes[row, col], label=f"log10 |{label}|")
    plotting.save_figure(fig, path)


def _gradient_figure(metrics, depth, path):
    plt = plotting.plt
    fig, axes = plt.subplots(1, 2, figsize=(10, 5), layout="constrained")
    for ax, kind in zip(axes, ("plain", "bn")):
        g = metrics["probes"][f"{kind}/depth={depth}/init=kaiming_normal"][0]["gradients"]
        values = np.asarray(g["delta"]) * np.asarray(g["h_norm"])[:, None]
        lim = np.nanmax(np.abs(values)) or 1.0
        im = ax.imshow(values, aspect="auto", cmap="viridis", vmin=-lim, vmax=lim)
        ax.set(xlabel="output class", ylabel="sample of the batch",
               title=f"{'BN' if kind == 'bn' else 'plain'}: mean pairwise cosine {g['mean_pairwise_cosine']:.2f}")
        fig.colorbar(im, ax=ax, label="dL_i/dz_ij |h_i| (final layer)")
    fig.suptitle(f"final-layer gradients per sample at initialization, MLP depth {depth} on MNIST")
    plotting.save_figure(fig, path)


def summary(metrics: dict) -> str:
    part = metrics["part1"]["accuracy"]
    lines = ["final test accuracy (%), mean over seeds:",
             f"{'lr':>8} " + " ".join(f"{k:>14}" for k in part)]
    for lr in sorted(part["bn"], key=float):
        lines.append(f"{float(lr):>8g} " + " ".join(f"{100 * np.mean(part[k][lr]):>14.2f}" for k in part))
    return "\n".join(lines)


def headline(metrics: dict) -> dict:
    out = {}
    for name, table in metrics["part1"]["accuracy"].items():
        best = max(table, key=lambda k: np.mean(table[k]))
        out[f"{name}_best_lr"] = float(best)
        out[f"{name}_best_accuracy"] = float(np.mean(table[best]))
    return out


if __name__ == "__main__":
    experiment.main(__name__)

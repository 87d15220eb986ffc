"""Why does batch norm allow a high learning rate? (seed 000, sec. 3 and 3.1, Morwani 2020)

A 10-layer ReLU network with batch norm after every hidden linear layer and the plain
network at its equivalent point (the normalization folded into the weights, so both compute
the same function at step 0) are trained side by side with SGD at lr = 1 on 10 000-image
MNIST. At every step, per layer: the norm of the activations, of dL/d(activations) and of
the weights. A network whose loss or activations blow up is recorded as diverged at that
step and stopped; the other one goes on. ``--norm l1|l2|l3|linf`` (``--uncentered``) puts
another normalization in batch norm's place (seed 000 sec. 4: "every normalization enables
higher lr").

    python experiments/mnist_depth10.py [--quick] [--steps 300] [--batch-size 64] [--norm l1] ...

Writes checkpoint.ckpt, metrics.json (with the claims checked) and figures to the output
folder (default runs/mnist_depth10/<timestamp>/) and prints a summary.
"""

from __future__ import annotations

import dataclasses
import math
import time
import warnings

import numpy as np

import minibn as mb
import minibn.functional as F
from minibn import experiment, hessian, nn, plotting
from minibn.data import load_mnist, load_mnist_subset
from minibn.experiment import ConfigError, at_least, at_most, option, positive
from minibn.experiment import claims as C
from minibn.experiment.recording import LayerRecord, norm, weight_norms
from minibn.experiment.training import (accuracy, batch_indices, chance_accuracy, divergence, evaluate,
                                       running_stats_kept)
from minibn.grad_mode import no_grad

NORMS = {"bn": ("bn", {}), "l1": ("lp", {"p": 1}), "l2": ("lp", {"p": 2}), "l3": ("lp", {"p": 3}),
         "linf": ("lp", {"p": math.inf})}
EMBEDDED = 10_000  # training images that come with minibn
DOCUMENT = "000"


@dataclasses.dataclass
class Config(experiment.Config):
    STEPS = "steps"

    lr: float = option(1.0, "learning rate of plain SGD", check=positive)
    steps: int = option(300, "training steps", check=at_least(1), resumable=True)
    batch_size: int | None = option(None, "samples per step; none: the whole training set, as in the seed's "
                                          "text (the seed author's code uses 64)", check=at_least(2))
    width: int = option(100, "hidden width", check=at_least(1))
    depth: int = option(10, "number of linear layers", check=at_least(2))
    train_size: int = option(EMBEDDED, "training images; up to 10 000 come with minibn, more need the "
                                       "original MNIST files", check=(at_least(2), at_most(60_000)))
    data_dir: str | None = option(None, "folder with the original MNIST files (for --train-size > 10000)",
                                  metavar="DIR")
    norm: str = option("bn", "normalization after each hidden linear layer (none: the plain network alone)",
                       choices=(*NORMS, "none"))
    uncentered: bool = option(False, "Lp norms without centering: the scale is computed from x, not x - mean")
    norm_after_activation: bool = option(False, "the normalization after each ReLU (Linear -> ReLU -> norm) "
                                                "instead of before it")
    shuffle: bool = option(True, "reshuffle the mini-batches every epoch (--no-shuffle: one fixed order, as "
                                 "the seed author's code)")
    fold_on: str = option("train", "data the plain network's equivalent point is computed on: the training "
                                   "set, or the first training batch (as the seed author's code does)",
                          choices=("train", "first-batch"))
    eval_every: int = option(1, "steps between test-set evaluations", check=at_least(1))
    checkpoint_every: int = option(100, "steps between checkpoints", check=at_least(1), resumable=True)
    diverge_rms: float = option(1e4, "an activation root-mean-square above this counts as diverged",
                                check=positive)
    factors: tuple[float, ...] = option((0.5, 1.0, 2.0, 4.0), "the interventions at step 0: the hidden weights, "
                                        "and apart from them the input, times each of these", check=positive)
    final_probes: bool = option(False, "after training, for each network that did not diverge: its top Hessian "
                                       "eigenvalue, its gradient noise and its training accuracy")
    probe_images: int = option(1000, "training images of the final Hessian (--final-probes)", check=at_least(2))
    noise_batches: int = option(16, "mini-batches of the final gradient noise (--final-probes)", check=at_least(2))

    def validate(self):
        if self.batch_size is not None and self.batch_size > self.train_size:
            raise ConfigError("batch_size", f"{self.batch_size} exceeds --train-size {self.train_size}")
        if self.final_probes and self.probe_images > self.train_size:
            raise ConfigError("probe_images", f"{self.probe_images} exceeds --train-size {self.train_size}")
        if self.uncentered and self.norm in ("bn", "none"):
            raise ConfigError("uncentered", f"applies to the Lp norms (l1, l2, l3, linf), not to --norm {self.norm}")
        if self.norm_after_activation and self.norm == "none":
            raise ConfigError("norm_after_activation", "needs a normalization (--norm none has none)")


QUICK = {"steps": 60, "eval_every": 5}

NOTES = (
    "The seed's text trains with batch gradient descent (the default here); the seed author's code "
    "(BN_high_lr.ipynb) uses mini-batches of 64 in one fixed order and folds batch norm into the plain network "
    "on the first batch, for one epoch (tot_epochs = 1: 157 steps of 10 000 images; its step_limit, left at 2, "
    "stops the diverging plain network): --batch-size 64 --no-shuffle --fold-on first-batch --steps 157.",
    "The seed author's code normalizes with the unbiased batch variance (torch.var's default); batch norm here, "
    "as in PyTorch's BatchNorm1d, uses the biased one (sigma^2 = mean((x - mu)^2)) + eps.",
    "The claims 'as W grows, Y grows' and their like are tested by intervention at step 0, on the first batch: the "
    "hidden layers' weights (those a normalization follows) times each of --factors, or the input times them, "
    "everything else as it is; per layer the norms of the linear output Z (pre-activation), of the activation Y "
    "(after the normalization and the ReLU), of dL/dY and of dL/dW. Along training the activations are recorded "
    "after the normalization and the ReLU, which the normalization keeps flat by construction.",
    "With --norm-after-activation each hidden layer is Linear -> ReLU -> norm, Y is the normalization's output "
    "(what the next linear layer receives), and the plain network folds each normalization into the linear layer "
    "after it (W' diag(a), b' + W' c for the normalization's affine map a h + c on the fold data).",
)


def normalized_name(norm: str, uncentered: bool) -> str | None:
    """The name of the normalized network ("bn", "l1", "l3-uncentered", ...), None without one."""
    return None if norm == "none" else norm + ("-uncentered" if uncentered else "")


def title(name: str) -> str:
    if name == "plain":
        return "plain network (normalization folded in at step 0)"
    return {"bn": "BN network"}.get(name, f"{name.replace('-', ' ')} normalized network")


# -- data and networks -----------------------------------------------------------------------


def load_data(cfg: Config):
    """(x_train, y_train, x_test, y_test) as NumPy arrays of the configured dtype."""
    dtype = np.dtype(cfg.dtype)
    if cfg.train_size <= EMBEDDED:
        x, y = load_mnist_subset("train", dtype=dtype)
    else:
        x, y = load_mnist("train", root=cfg.data_dir, dtype=dtype)
    if cfg.train_size < len(x):
        keep = np.sort(np.random.default_rng(cfg.seed).choice(len(x), cfg.train_size, replace=False))
        x, y = x[keep], y[keep]
    xt, yt = load_mnist_subset("test", dtype=dtype)
    return x, y, xt, yt


def fold_data(cfg: Config, x):
    """The batch the plain network's equivalent point is computed on (``--fold-on``)."""
    if cfg.fold_on == "train":
        return x
    idx = batch_indices(cfg.seed, 0, len(x), cfg.batch_size, cfg.shuffle)
    return x if idx is None else x[idx]


def build_networks(cfg: Config, x_fold: mb.Tensor, device: str = "cpu") -> dict:
    """The normalized network (Kaiming-normal weights, zero biases, gamma = 1, beta = 0) and the
    plain network equal to it on ``x_fold``; with ``--norm none``, the plain network alone."""
    sizes = [784] + [cfg.width] * (cfg.depth - 1) + [10]
    build = dict(init="kaiming_normal", zero_bias=True, dtype=cfg.dtype, device=device,
                 generator=mb.Generator(cfg.seed))
    name = normalized_name(cfg.norm, cfg.uncentered)
    if name is None:
        return {"plain": nn.mlp(sizes, norm=None, **build)}
    kind, options = NORMS[cfg.norm]
    if cfg.uncentered:
        options = {**options, "centered": False}
    normalized = nn.mlp(sizes, norm=kind, norm_kwargs=options or None,
                        norm_after_activation=cfg.norm_after_activation, **build)
    return {"plain": nn.fold_batchnorm(normalized, x_fold), name: normalized}


def fold_gap(nets: dict, x: mb.Tensor) -> float | None:
    """max |plain(x) - normalized(x)| / max |normalized(x)|: how well the folded network matches
    at step 0. The normalized network runs in training mode (batch statistics), so its running
    statistics are put back afterwards: training starts from the state it would have had."""
    if len(nets) == 1:
        return None
    normalized = list(nets.values())[1]
    with mb.no_grad():
        state = {name: t.clone() for name, t in normalized.state_dict().items()}  # state_dict shares memory
        reference = normalized(x)
        gap = (nets["plain"](x) - reference).abs().amax().item() / reference.abs().amax().item()
    normalized.load_state_dict(state)
    return float(gap)


@no_grad()
def _scaled(layers, weights, factor) -> None:
    for m, w in zip(layers, weights):
        m.weight._data[...] = factor * w


def intervene(cfg: Config, net, x, y) -> dict:
    """The norms, per layer, of Z (each linear output), Y (each activation, and the logits), dL/dY and
    dL/dW on the batch (x, y) for each factor c of --factors: with the hidden linear layers' weights
    times c ("weights"), and with the input times c ("input"). The network is as it was afterwards:
    weights, running statistics and its fusion."""
    linears = [m for m in net if isinstance(m, nn.Linear)]
    hidden, saved = linears[:-1], [m.weight._data.copy() for m in linears[:-1]]  # on the network's device
    out = {"factors": list(cfg.factors), "weights": {}, "input": {}}
    fuse, net.fuse = net.fuse, False  # each module its own node: the linear outputs show
    try:
        with running_stats_kept(net), np.errstate(over="ignore", invalid="ignore"):
            for kind in ("weights", "input"):
                for c in cfg.factors:
                    if kind == "weights":
                        _scaled(hidden, saved, c)
                    z = []
                    handles = [m.register_forward_hook(lambda mod, inp, o: z.append(norm(o))) for m in linears]
                    try:
                        layers = LayerRecord(net, x * c if kind == "input" else x)
                    finally:
                        for h in handles:
                            h.remove()
                    grads = mb.grad(F.cross_entropy(layers.logits, y), [m.weight for m in linears])
                    out[kind][repr(float(c))] = {"pre_activation_norm": z, "activation_norm": layers.activation_norms(),
                                                 "activation_grad_norm": list(layers.grad_norms),
                                                 "weight_grad_norm": [norm(g) for g in grads]}
                    _scaled(hidden, saved, 1.0)
    finally:
        _scaled(hidden, saved, 1.0)
        net.fuse = fuse
    return out


def _empty_record(normalized: bool) -> dict:
    rec = {"loss": [], "train_accuracy": [], "test_accuracy": [], "activation_norm": [],
           "activation_grad_norm": [], "weight_norm": [], "diverged_at": None, "diverged_because": None}
    if normalized:
        rec["affine_norm"] = []  # ||(gamma, beta)|| per normalization layer
    return rec


# -- the run -----------------------------------------------------------------------------------


def measure(cfg: Config, run) -> dict:
    """Train the networks side by side, a checkpoint every ``checkpoint_every`` steps."""
    x_np, y_np, xt_np, yt_np = load_data(cfg)
    x, y = mb.tensor(x_np, device=run.device), mb.tensor(y_np, device=run.device)
    xt, yt = mb.tensor(xt_np, device=run.device), mb.tensor(yt_np, device=run.device)
    x_fold = fold_data(cfg, x)
    nets = build_networks(cfg, x_fold, run.device)
    optimizers = {name: mb.optim.SGD(net.parameters(), lr=cfg.lr) for name, net in nets.items()}
    record = {"networks": {name: _empty_record(name != "plain") for name in nets}}
    state = run.state({**{f"net/{k}": v for k, v in nets.items()}, **{f"sgd/{k}": v for k, v in optimizers.items()}},
                      record)
    if not state.resumed:
        state.record["fold_relative_gap_at_step_0"] = fold_gap(nets, x_fold)
        state.record["fold_relative_gap_on_train_at_step_0"] = fold_gap(nets, x)
        idx = batch_indices(cfg.seed, 0, len(x_np), cfg.batch_size, cfg.shuffle)
        xb, yb = (x, y) if idx is None else (x[idx], y[idx])
        state.record["interventions"] = {name: intervene(cfg, net, xb, yb) for name, net in nets.items()}
    networks = state.record["networks"]

    started = time.perf_counter()
    for step in run.steps(state, cfg.steps, every=cfg.checkpoint_every):
        idx = batch_indices(cfg.seed, step, len(x_np), cfg.batch_size, cfg.shuffle)
        xb, yb = (x, y) if idx is None else (x[idx], y[idx])
        for name, net in nets.items():
            if networks[name]["diverged_at"] is None:
                train_step(cfg, step, net, optimizers[name], xb, yb, xt, yt, networks[name])
        run.bar.set_postfix({k: f"{v['loss'][-1]:.3g}" if v["diverged_at"] is None else "diverged"
                             for k, v in networks.items()})

    for name, rec in networks.items():
        if cfg.final_probes and rec["diverged_at"] is None:
            rec["final_probes"] = final_probes(cfg, nets[name], x, y)
        if rec["diverged_at"] is not None:
            rec["final_test_accuracy"] = None
        elif rec["test_accuracy"] and rec["test_accuracy"][-1][0] == cfg.steps - 1:
            rec["final_test_accuracy"] = rec["test_accuracy"][-1][1]  # measured after the last step
        else:
            rec["final_test_accuracy"] = evaluate(nets[name], xt, yt)
    return {"layers": list(range(1, cfg.depth + 1)),
            "fold_relative_gap_at_step_0": state.record["fold_relative_gap_at_step_0"],
            "fold_relative_gap_on_train_at_step_0": state.record["fold_relative_gap_on_train_at_step_0"],
            "interventions": state.record["interventions"], "seconds": time.perf_counter() - started,
            "networks": networks}


def final_probes(cfg: Config, net, x, y) -> dict:
    """At the final point, in training mode (running statistics put back): the top eigenvalue of the Hessian
    of the loss on the first --probe-images training images; the gradient noise sqrt(mean_B ||g_B - g||^2)
    over --noise-batches disjoint mini-batches B of --batch-size (as many as the training set holds; g the
    full training set's gradient; 0 for full-batch training); and the training accuracy (eval mode)."""
    params = list(net.parameters())
    with running_stats_kept(net):
        op = hessian.HessianOperator(lambda: F.cross_entropy(net(x[:cfg.probe_images]), y[:cfg.probe_images]), params)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", hessian.ConvergenceWarning)  # recorded as converged = False
            top = hessian.top_eigenvalues(op, None, k=1, tol=1e-3, seed=cfg.seed)

        def gradient(xb, yb):
            return np.concatenate([g.numpy().astype(np.float64).ravel()
                                   for g in mb.grad(F.cross_entropy(net(xb), yb), params)])
        full, noise, count = gradient(x, y), 0.0, 0
        if cfg.batch_size is not None:
            count = min(cfg.noise_batches, len(x) // cfg.batch_size)
            order = np.random.default_rng([cfg.seed, 11]).permutation(len(x))
            batches = [np.sort(order[i * cfg.batch_size:(i + 1) * cfg.batch_size]) for i in range(count)]
            noise = float(np.sqrt(np.mean([np.sum((gradient(x[b], y[b]) - full) ** 2) for b in batches])))
    return {"top_eigenvalue": float(top.eigenvalues[0]), "converged": bool(top.converged),
            "gradient_norm": float(np.linalg.norm(full)), "gradient_noise": noise, "noise_batches": count,
            "train_accuracy": evaluate(net, x, y)}


def train_step(cfg: Config, step: int, net, opt, xb, yb, xt, yt, rec: dict) -> None:
    """One SGD step of ``net`` with its per-layer norms appended to ``rec``; a diverged network
    is recorded as such and not updated (its gradients are, while its loss is finite)."""
    layers = LayerRecord(net, xb)
    loss = F.cross_entropy(layers.logits, yb)
    act = layers.activation_norms()
    loss_value = float(loss.item())
    rec["loss"].append(loss_value)
    rec["activation_norm"].append(act)
    rec["weight_norm"].append(weight_norms(net))
    rec["train_accuracy"].append(accuracy(layers.logits, yb))
    if "affine_norm" in rec:
        rec["affine_norm"].append([math.hypot(norm(m.weight), norm(m.bias)) for m in net
                                   if isinstance(m, (nn.BatchNorm1d, nn.LpNorm1d))])
    reason = divergence(loss_value, layers.activation_rms(act), cfg.diverge_rms)
    if reason is not None and not math.isfinite(loss_value):
        rec["activation_grad_norm"].append([math.nan] * cfg.depth)
    else:
        opt.zero_grad()
        with np.errstate(over="ignore", invalid="ignore"):
            loss.backward()
        rec["activation_grad_norm"].append(layers.grad_norms)
    if reason is not None:
        rec["diverged_at"], rec["diverged_because"] = step, reason
        return
    opt.step()
    if step % cfg.eval_every == 0:
        rec["test_accuracy"].append([step, evaluate(net, xt, yt)])


# the output of the seed author's BN_high_lr.ipynb, for the plain network at lr = 1 after its epoch
AUTHOR_PLAIN = {"train_loss": 524.376, "train_accuracy": 0.001, "validation_accuracy": 0.1028}


def document_numbers(metrics) -> list:
    """Sec. 3: at lr = 1 the BN network does not diverge and the plain one does (the text); in the
    setting of the author's code, his notebook's printed numbers for the plain network."""
    cfg, nets = metrics["config"], metrics["networks"]
    name = _normalized(metrics)
    if name != "bn" or cfg["lr"] != 1 or cfg["norm_after_activation"] or cfg["uncentered"]:
        return []
    plain, bn = nets["plain"], nets["bn"]
    out = [C.number(DOCUMENT, "sec. 3", f"the {title(name)} at lr = 1: the step it diverges at",
                    "does not diverge", bn["diverged_at"], "None: it does not"),
           C.number(DOCUMENT, "sec. 3", "the plain network at lr = 1: the step it diverges at", "diverges",
                    plain["diverged_at"], "None: it does not")]
    if cfg["batch_size"] == 64 and not cfg["shuffle"] and cfg["fold_on"] == "first-batch":
        losses = plain["loss"]
        out += [C.number(DOCUMENT, "BN_high_lr.ipynb, its output", "the plain network at lr = 1: validation accuracy "
                         "after training", AUTHOR_PLAIN["validation_accuracy"],
                         plain["final_test_accuracy"] if plain["diverged_at"] is None
                         else chance_accuracy(load_mnist_subset("test")[1]),
                         "here a diverged network is stopped and counts as a constant guess (the test set's most "
                         "frequent class); the author's ran on to the end of the epoch"),
                C.number(DOCUMENT, "BN_high_lr.ipynb, its output", "the plain network at lr = 1: mean training loss "
                         "over the epoch", AUTHOR_PLAIN["train_loss"],
                         float(np.mean(losses)) if plain["diverged_at"] is None else math.inf,
                         "inf: it diverged (stopped) before the end of the epoch")]
    return out


# -- claims ------------------------------------------------------------------------------------


def _setting(cfg: dict) -> str:
    batch = ("full batch" if cfg["batch_size"] is None else
             f"batch {cfg['batch_size']}{'' if cfg['shuffle'] else ' in one fixed order'}")
    norm = normalized_name(cfg["norm"], cfg["uncentered"]) or "no normalization"
    if cfg.get("norm_after_activation"):
        norm += " after each ReLU (Linear -> ReLU -> norm)"
    return (f"MNIST {cfg['train_size']} training images, {cfg['depth']} linear layers of width {cfg['width']}, "
            f"{norm}, SGD lr {cfg['lr']:g}, {batch}, {cfg['steps']} steps, seed {cfg['seed']}, {cfg['dtype']}, "
            f"plain network folded on {cfg['fold_on']}")


INVARIANT = 0.01  # "does not grow": within 1 % under the intervention (the normalization's eps moves it less)


def _ratios(intervention: dict, kind: str, key: str) -> dict:
    """{factor: [the layer's norm under the intervention / without it]}: ``key`` of ``kind``
    ("weights" or "input") over the factors."""
    base = np.asarray(intervention[kind]["1.0"][key], dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return {c: (np.asarray(v[key], dtype=float) / base).tolist() for c, v in intervention[kind].items()}


def _rises(ratios: dict, layers: slice = slice(None)) -> list:
    """Per layer, whether the ratio rises strictly with the factor (over the factors, in order)."""
    order = sorted(ratios, key=float)
    table = np.asarray([ratios[c] for c in order], dtype=float)[:, layers]
    return [bool(np.all(np.isfinite(col)) and np.all(np.diff(col) > 0)) for col in table.T]


def _gain(intervention: dict) -> dict:
    """{factor: per layer l >= 2, ||dL/dY_{l-1}|| / ||dL/dY_l|| relative to the factor 1}: how much
    more layer l amplifies the gradient on its way down when the hidden weights are scaled."""
    def gains(v):
        g = np.asarray(v["activation_grad_norm"], dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            return g[:-1] / g[1:]
    base = gains(intervention["weights"]["1.0"])
    with np.errstate(divide="ignore", invalid="ignore"):
        return {c: (gains(v) / base).tolist() for c, v in intervention["weights"].items()}


def _trajectory(driver, response) -> dict:
    """Within each layer, the Pearson correlation over the step transitions of the log growths of
    ``driver`` and ``response`` (transitions x layers); None with fewer than 3 transitions."""
    driver, response = np.asarray(driver, dtype=float), np.asarray(response, dtype=float)
    if len(driver) < 3:
        return {"transitions": len(driver), "within_layer_correlation": None}
    return {"transitions": len(driver),
            "within_layer_correlation": [C.correlation(driver[:, l], response[:, l]) for l in range(driver.shape[1])]}


def decide_rises(e) -> str:
    """By intervention: REPRODUCED if the response rises with the factor in every layer, PARTLY in some,
    NOT-REPRODUCED in none; INCONCLUSIVE without the intervention's numbers."""
    rises = e["rises_with_factor"]
    if not rises:
        return C.INCONCLUSIVE
    return C.REPRODUCED if all(rises) else C.PARTLY if any(rises) else C.NOT_REPRODUCED


def decide_invariant(e) -> str:
    """By intervention: the premise first (the linear outputs grow with the weights: the factor of the
    largest intervention at least half reached), then REPRODUCED if the response stays within the
    margin of its value at factor 1 for every factor and layer, PARTLY within 10 %, NOT-REPRODUCED else."""
    if e["largest_pre_activation_growth"] is None or e["largest_pre_activation_growth"] < e["largest_factor"] / 2:
        return C.INCONCLUSIVE
    worst = e["largest_deviation"]
    if worst is None or not np.isfinite(worst):
        return C.NOT_REPRODUCED
    return C.REPRODUCED if worst <= INVARIANT else C.PARTLY if worst <= 0.1 else C.NOT_REPRODUCED


INTERVENTION = ("by intervention at step 0 on the first batch (--factors: {factors}), {what}: REPRODUCED if it rises "
                "strictly with the factor in every layer, PARTLY in some, NOT-REPRODUCED in none (a correlation "
                "along training would mostly be the layer structure: both rise with depth); the within-layer "
                "correlation over the steps is reported beside it")


claims = C.Claims()


def _normalized(metrics) -> str | None:
    """The name of the run's normalized network ("bn", "l1", ...), None with --norm none."""
    return next((k for k in metrics["networks"] if k != "plain"), None)


@claims.rule("D10-LR1", "D10-NORM-<norm>")
def lr_one(metrics):
    """Seed 000 sec. 3 (and sec. 4 for another normalization): no divergence at lr = 1."""
    cfg, nets = metrics["config"], metrics["networks"]
    name = _normalized(metrics)
    if name is None:
        return None
    plain, other = nets["plain"], nets[name]
    evidence = {"lr": cfg["lr"], "normalization": name, "plain_diverged_at": plain["diverged_at"],
                "plain_diverged_because": plain["diverged_because"], "normalized_diverged_at": other["diverged_at"],
                "steps": cfg["steps"], "normalized_final_test_accuracy": other["final_test_accuracy"]}
    rule = (f"at lr = 1: REPRODUCED if the plain network diverges within the run and the {name} network "
            "does not; NOT-REPRODUCED if the normalized network diverges or the plain one does not; "
            "INCONCLUSIVE at another lr")
    if cfg["norm"] == "bn":
        return C.claim("D10-LR1", DOCUMENT, "sec. 3", "lr = 1 has been chosen as BN doesn't diverge at this lr, but "
                       "the neural net without BN (initialized at the equivalent point) diverges", _setting(cfg),
                       evidence, rule, decide_lr_one, test="divergence within the run")
    return C.claim(f"D10-NORM-{name.upper()}", DOCUMENT, "sec. 4", f"every normalization enables higher lr ({name}: "
                   "at lr = 1 it does not diverge where the equivalent plain network does)", _setting(cfg), evidence,
                   rule, decide_lr_one, test="divergence within the run")


def decide_lr_one(e) -> str:
    if e["lr"] != 1:
        return C.INCONCLUSIVE
    if e["normalized_diverged_at"] is not None or e["plain_diverged_at"] is None:
        return C.NOT_REPRODUCED
    return C.REPRODUCED


@claims.rule("D10-W-Y", "D10-W-DY", "D10-Y-W")
def plain_feedback(metrics):
    """Seed 000 sec. 3.1's three reasons for the plain network's explosion, each by intervention."""
    plain, setting = metrics["networks"]["plain"], _setting(metrics["config"])
    factors = ", ".join(f"{c:g}" for c in metrics["config"]["factors"])
    act = np.asarray(plain["activation_norm"], dtype=float)          # (steps, layers)
    weights = np.asarray(plain["weight_norm"], dtype=float)
    grads = np.asarray(plain["activation_grad_norm"], dtype=float)
    finite = [t for t in range(len(grads)) if np.all(np.isfinite(grads[t]))]
    g_last = finite[-1] if finite else 0
    with np.errstate(divide="ignore", invalid="ignore"):
        d_act, d_w = np.diff(np.log(act), axis=0), np.diff(np.log(weights), axis=0)
        d_grad = np.diff(np.log(grads[:g_last + 1]), axis=0)
    below = np.cumsum(d_w, axis=1)                                    # layers 1..l: what Y_l is a product of
    above = np.cumsum(d_w[:, ::-1], axis=1)[:, ::-1] - d_w            # layers l+1..L: what dL/dY_l passes through
    i = metrics["interventions"]["plain"]
    activations = _ratios(i, "weights", "activation_norm")
    gain = _gain(i)
    inputs = _ratios(i, "input", "activation_norm")
    weight_grads = _ratios(i, "input", "weight_grad_norm")
    base = {"plain_diverged_at": plain["diverged_at"], "factors": metrics["config"]["factors"]}
    return [
        C.claim("D10-W-Y", DOCUMENT, "sec. 3.1 (1)", "in the network without BN, as the norm of W grows, the norm of Y "
                "grows (Y_l = W Y_{l-1} + B)", setting,
                {**base, "activation_norm_ratio": activations, "rises_with_factor": _rises(activations),
                 "along_training": _trajectory(below, d_act)},
                INTERVENTION.format(factors=factors, what="the hidden weights times the factor, ||Y_l|| over its value "
                                    "at factor 1") + " (the summed log growth of ||W_1|| ... ||W_l|| against that of "
                "||Y_l||)", decide_rises, test="intervention: the hidden weights scaled"),
        C.claim("D10-W-DY", DOCUMENT, "sec. 3.1 (2)", "in the network without BN, as the norm of W grows, the norm of "
                "dL/dY_{l-1} grows (dL/dY_{l-1} = dL/dY_l W)", setting,
                {**base, "gain_ratio": gain, "rises_with_factor": _rises(gain, slice(0, -1)),
                 "along_training": _trajectory(above[:g_last, :-1], d_grad[:, :-1]), "steps_with_gradients": len(finite)},
                INTERVENTION.format(factors=factors, what="the hidden weights times the factor, the gain of each hidden "
                                    "layer l >= 2 on the gradient's way down, ||dL/dY_{l-1}|| / ||dL/dY_l|| (what W_l "
                                    "multiplies it by), over its value at factor 1") + " (the summed log growth of "
                "||W_{l+1}|| ... ||W_L|| against that of ||dL/dY_l||, up to the last step with finite gradients)",
                decide_rises, test="intervention: the hidden weights scaled"),
        C.claim("D10-Y-W", DOCUMENT, "sec. 3.1 (3)", "in the network without BN, as the norm of Y_{l-1} grows, the norm "
                "of W grows (dL/dW = dL/dY_l Y_{l-1}^T)", setting,
                {**base, "input_activation_ratio": inputs, "weight_grad_ratio": weight_grads,
                 "rises_with_factor": [r for r, y in zip(_rises(weight_grads, slice(1, None)),
                                                         _rises(inputs, slice(0, -1))) if y],
                 "along_training": _trajectory(np.log(act[:-1, :-1]), d_w[:, 1:])},
                INTERVENTION.format(factors=factors, what="the input times the factor (which scales every Y_{l-1}), "
                                    "||dL/dW_l||, the size of W_l's update, over its value at factor 1, in the layers "
                                    "whose input ||Y_{l-1}|| rises with the factor") + " (log ||Y_{l-1}|| at step t "
                "against the growth of ||W_l|| over t -> t+1)", decide_rises, test="intervention: the input scaled"),
    ]


@claims.rule("D10-DEPTH")
def depth(metrics):
    """The explosion is exponential in depth, at the plain network's divergence."""
    plain = metrics["networks"]["plain"]
    act = np.asarray(plain["activation_norm"], dtype=float)
    last = len(act) - 1                                               # the diverged step, or the last one
    layers = np.arange(1, act.shape[1] + 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        y = np.log(act[last])
    e = {"plain_diverged_at": plain["diverged_at"], "step": last, "activation_norm_by_layer": [float(v) for v in act[last]]}
    if np.all(np.isfinite(y)):
        slope, intercept = np.polyfit(layers, y, 1)
        fit = slope * layers + intercept
        r2 = 1 - float(((y - fit) ** 2).sum() / ((y - y.mean()) ** 2).sum()) if y.std() > 0 else 0.0
        e.update(growth_per_layer=float(np.exp(slope)), r_squared=r2)
    else:
        e.update(growth_per_layer=None, r_squared=None)
    return C.claim("D10-DEPTH", DOCUMENT, "sec. 3.1", "weight, gradient and activation explosion feed each other, "
                   "which leads to sudden divergence as depth increases (due to exponential growth with depth)",
                   _setting(metrics["config"]), e,
                   "at the plain network's divergence step, a line fitted to log ||Y_l|| against the layer l: "
                   "REPRODUCED if it rises (growth factor per layer > 1) with R^2 >= 0.9 (geometric growth); "
                   "PARTLY if it rises less regularly; NOT-REPRODUCED if it does not rise; INCONCLUSIVE if the "
                   "plain network did not diverge or its activations are not finite", decide_depth,
                   test="log-linear fit over the layers")


def decide_depth(e) -> str:
    if e["plain_diverged_at"] is None or e["growth_per_layer"] is None:
        return C.INCONCLUSIVE
    if e["growth_per_layer"] > 1 and e["r_squared"] >= 0.9:
        return C.REPRODUCED
    return C.PARTLY if e["growth_per_layer"] > 1 else C.NOT_REPRODUCED


@claims.rule("D10-<norm>-Y", "D10-<norm>-DY", "D10-<norm>-AFFINE")
def normalized_bounded(metrics):
    """Seed 000 sec. 3.1's three reasons why batch norm's activations and gradients stay bounded."""
    name = _normalized(metrics)
    if name is None:
        return None
    cfg, rec = metrics["config"], metrics["networks"][name]
    setting, factors = _setting(cfg), ", ".join(f"{c:g}" for c in cfg["factors"])
    i, plain = metrics["interventions"][name], metrics["interventions"]["plain"]
    hidden = slice(0, cfg["depth"] - 1)  # the layers a normalization follows

    def invariance(key):
        ratios = _ratios(i, "weights", key)
        table = np.asarray(list(ratios.values()), dtype=float)[:, hidden]
        pre = np.asarray(list(_ratios(i, "weights", "pre_activation_norm").values()), dtype=float)[:, hidden]
        with np.errstate(invalid="ignore"):
            return {"ratio": ratios, "largest_deviation": float(np.max(np.abs(table - 1))),
                    "largest_factor": max(cfg["factors"]), "largest_pre_activation_growth": float(np.min(pre.max(0))),
                    "plain_ratio": _ratios(plain, "weights", key)}

    act = np.asarray(rec["activation_norm"], dtype=float)[:, hidden]
    affine = np.asarray(rec["affine_norm"], dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):  # a layer whose ReLUs all died: the ratio is infinite
        along = float(np.max(np.maximum(act / act[0], act[0] / act)))
    e_y = {**invariance("activation_norm"),
           "along_training_max_ratio_to_step_0": along,
           "weight_growth": (np.asarray(rec["weight_norm"][-1]) / np.asarray(rec["weight_norm"][0])).tolist()}
    e_dy = invariance("activation_grad_norm")
    growth = float(np.max(affine / affine[0])) if len(affine) else None
    e_affine = {"max_growth_of_gamma_beta": growth,
                "gamma_beta_norm_first": affine[0].tolist() if len(affine) else None,
                "gamma_beta_norm_last": affine[-1].tolist() if len(affine) else None}
    rule = (f"by intervention at step 0 on the first batch, the hidden weights times each factor of --factors "
            f"({factors}): the premise, that the linear outputs Z_l = W_l Y_(l-1) grow with W (in every normalized "
            "layer by at least half the largest factor), or INCONCLUSIVE; then WHAT in every normalized layer over its "
            f"value at factor 1: REPRODUCED if within {100 * INVARIANT:g} % for every factor (the normalization's eps "
            "moves it less; the plain network's, beside it, grows), PARTLY within 10 %, NOT-REPRODUCED otherwise")
    return [
        C.claim(f"D10-{name.upper()}-Y", DOCUMENT, "sec. 3.1 (BN 1)", "with BN, Y does not grow as W grows, due to "
                "forward normalization", setting, e_y, rule.replace("WHAT", "||Y_l|| (after the normalization and the "
                "ReLU)") + "; the activations' flatness along training is reported beside it", decide_invariant,
                test="intervention: the hidden weights scaled", margin=C.margin(100 * INVARIANT, "% of ||Y_l||")),
        C.claim(f"D10-{name.upper()}-DY", DOCUMENT, "sec. 3.1 (BN 2)", "with BN, dL/dY does not grow as W grows, as "
                "sigma in the denominator approximately cancels the effect of w_i", setting, e_dy,
                rule.replace("WHAT", "||dL/dY_l||"), decide_invariant, test="intervention: the hidden weights scaled",
                margin=C.margin(100 * INVARIANT, "% of ||dL/dY_l||")),
        C.claim(f"D10-{name.upper()}-AFFINE", DOCUMENT, "sec. 3.1 (BN 3)", "with BN, gamma and beta do not blow up as "
                "dL/dY does not blow up", setting, e_affine,
                "the largest ||(gamma_l, beta_l)(t)|| / ||(gamma_l, beta_l)(0)|| over layers and steps: REPRODUCED if "
                "<= 2, PARTLY if <= 10, NOT-REPRODUCED above; INCONCLUSIVE without the record",
                decide_affine, test="threshold over the layers and steps"),
    ]


def decide_affine(e) -> str:
    g = e["max_growth_of_gamma_beta"]
    if g is None:
        return C.INCONCLUSIVE
    if not math.isfinite(g):
        return C.NOT_REPRODUCED
    return C.REPRODUCED if g <= 2 else C.PARTLY if g <= 10 else C.NOT_REPRODUCED


# -- figures and summary -----------------------------------------------------------------------


def figures(metrics: dict, folder) -> dict:
    nets = metrics["networks"]
    marks = {title(k): v["diverged_at"] for k, v in nets.items()}
    cfg = metrics["config"]
    setting = (f"depth {cfg['depth']}, width {cfg['width']}, lr {cfg['lr']}, "
               f"batch {cfg['batch_size'] or 'full'}, {cfg['train_size']} MNIST images")
    out = {}
    for key, label in (("activation_norm", "||activations||"), ("activation_grad_norm", "||dL/d activations||"),
                       ("weight_norm", "||W||")):
        series = {title(k): v[key] for k, v in nets.items()}
        out[f"{key}.png"] = lambda path, series=series, label=label: plotting.layer_panels(
            series, label, f"{label} per layer ({setting})", path, marks)
    panels = {"training loss": {k: v["loss"] for k, v in nets.items()},
              "test accuracy": {k: v["test_accuracy"] or [[0, math.nan]] for k, v in nets.items()}}
    out["loss_accuracy.png"] = lambda path: plotting.curves(panels, f"loss and accuracy ({setting})", path,
                                                            log=("training loss",))
    return out


def summary(metrics: dict) -> str:
    lines = []
    for name, rec in metrics["networks"].items():
        if rec["diverged_at"] is not None:
            lines.append(f"{name:>5}: diverged at step {rec['diverged_at']} ({rec['diverged_because']})")
        else:
            lines.append(f"{name:>5}: trained {len(rec['loss'])} steps, final loss {rec['loss'][-1]:.4f}, "
                         f"test accuracy {rec['final_test_accuracy']:.4f}")
    if metrics["fold_relative_gap_at_step_0"] is not None:
        lines.append(f"plain and normalized networks agree at step 0 to {metrics['fold_relative_gap_at_step_0']:.1e} "
                     f"(relative, on the {metrics['config']['fold_on']} data)")
    return "\n".join(lines)


def headline(metrics: dict) -> dict:
    """The numbers a sweep tabulates."""
    out = {}
    for name, rec in metrics["networks"].items():
        out[f"{name}_diverged_at"] = rec["diverged_at"]
        out[f"{name}_final_loss"] = rec["loss"][-1] if rec["loss"] else None
        out[f"{name}_final_test_accuracy"] = rec["final_test_accuracy"]
        for key, value in rec.get("final_probes", {}).items():
            out[f"{name}_final_{key}"] = value
    return out


if __name__ == "__main__":
    experiment.main(__name__)

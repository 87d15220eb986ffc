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

import numpy as np

import minibn as mb
import minibn.functional as F
from minibn import experiment, nn, plotting
from minibn.data import load_mnist, load_mnist_subset
from minibn.experiment import ConfigError, at_least, at_most, option, positive
from minibn.experiment import claims as C
from minibn.experiment.recording import LayerRecord, norm, weight_norms
from minibn.experiment.training import accuracy, batch_indices, divergence, evaluate

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
    shuffle: bool = option(True, "reshuffle the mini-batches every epoch (--no-shuffle: one fixed order, as "
                                 "the seed author's code)")
    fold_on: str = option("train", "data the plain network's equivalent point is computed on: the training "
                                   "set, or the first training batch (as the seed author's code does)",
                          choices=("train", "first-batch"))
    eval_every: int = option(1, "steps between test-set evaluations", check=at_least(1))
    checkpoint_every: int = option(100, "steps between checkpoints", check=at_least(1), resumable=True)
    diverge_rms: float = option(1e4, "an activation root-mean-square above this counts as diverged",
                                check=positive)

    def validate(self):
        if self.batch_size is not None and self.batch_size > self.train_size:
            raise ConfigError("batch_size", f"{self.batch_size} exceeds --train-size {self.train_size}")
        if self.uncentered and self.norm in ("bn", "none"):
            raise ConfigError("uncentered", f"applies to the Lp norms (l1, l2, l3, linf), not to --norm {self.norm}")


QUICK = {"steps": 60, "eval_every": 5}

NOTES = (
    "The seed's text trains with batch gradient descent (the default here); the seed author's code "
    "(BN_high_lr.ipynb) uses mini-batches of 64 in one fixed order and folds batch norm into the plain network "
    "on the first batch: --batch-size 64 --no-shuffle --fold-on first-batch.",
    "The seed author's code normalizes with the unbiased batch variance (torch.var's default); batch norm here, "
    "as in PyTorch's BatchNorm1d, uses the biased one (sigma^2 = mean((x - mu)^2)) + eps.",
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
    normalized = nn.mlp(sizes, norm=kind, norm_kwargs=options or None, **build)
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
        if rec["diverged_at"] is not None:
            rec["final_test_accuracy"] = None
        elif rec["test_accuracy"] and rec["test_accuracy"][-1][0] == cfg.steps - 1:
            rec["final_test_accuracy"] = rec["test_accuracy"][-1][1]  # measured after the last step
        else:
            rec["final_test_accuracy"] = evaluate(nets[name], xt, yt)
    return {"layers": list(range(1, cfg.depth + 1)),
            "fold_relative_gap_at_step_0": state.record["fold_relative_gap_at_step_0"],
            "fold_relative_gap_on_train_at_step_0": state.record["fold_relative_gap_on_train_at_step_0"],
            "seconds": time.perf_counter() - started, "networks": networks}


def train_step(cfg: Config, step: int, net, opt, xb, yb, xt, yt, rec: dict) -> None:
    """One SGD step of ``net`` with its per-layer norms appended to ``rec``; a diverged network
    is recorded as such and not updated."""
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
    if reason is not None:
        rec["diverged_at"], rec["diverged_because"] = step, reason
        rec["activation_grad_norm"].append([math.nan] * cfg.depth)
        return
    opt.zero_grad()
    loss.backward()
    opt.step()
    rec["activation_grad_norm"].append(layers.grad_norms)
    if step % cfg.eval_every == 0:
        rec["test_accuracy"].append([step, evaluate(net, xt, yt)])


# -- claims ------------------------------------------------------------------------------------


def _setting(cfg: dict) -> str:
    batch = ("full batch" if cfg["batch_size"] is None else
             f"batch {cfg['batch_size']}{'' if cfg['shuffle'] else ' in one fixed order'}")
    norm = normalized_name(cfg["norm"], cfg["uncentered"]) or "no normalization"
    return (f"MNIST {cfg['train_size']} training images, {cfg['depth']} linear layers of width {cfg['width']}, "
            f"{norm}, SGD lr {cfg['lr']:g}, {batch}, {cfg['steps']} steps, seed {cfg['seed']}, {cfg['dtype']}, "
            f"plain network folded on {cfg['fold_on']}")


def _follows(driver, response):
    """Evidence that ``response`` grows with ``driver`` over (step transition, layer) pairs."""
    driver, response = np.asarray(driver, dtype=float), np.asarray(response, dtype=float)
    return {"transitions": len(response), "pairs": int(np.isfinite(driver + response).sum()),
            "correlation": C.correlation(driver, response)}


def _grew(series, t0, t1) -> list:
    """value at step t1 / value at step t0, per layer."""
    a = np.asarray(series, dtype=float)
    return [float(v) for v in a[t1] / a[t0]]


FOLLOW_RULE = ("REPRODUCED if {a} and {b} both grew from step 0 to step {t} in every layer and the step-to-step "
               "growth of {b} follows that of {a} (Pearson correlation of log growths over (step, layer) pairs "
               ">= 0.5); PARTLY if only one of the two holds; NOT-REPRODUCED if neither; INCONCLUSIVE if the "
               "plain network did not diverge (the claim explains a divergence) or fewer than 2 step-to-step "
               "changes were recorded (growing together over steps cannot be seen)")


def _follow_verdict(e):
    if e["plain_diverged_at"] is None or e["transitions"] < 2:
        return C.INCONCLUSIVE
    both = e["all_layers_grew"]
    follows = e["correlation"] >= 0.5 if math.isfinite(e["correlation"]) else False
    return C.REPRODUCED if both and follows else C.PARTLY if both or follows else C.NOT_REPRODUCED


def _bounded_verdict(key):
    def decide(e):
        if e[key] is None or not math.isfinite(e[key]):
            return C.NOT_REPRODUCED if e[key] is not None else C.INCONCLUSIVE
        return C.REPRODUCED if e[key] <= 2 else C.PARTLY if e[key] <= 10 else C.NOT_REPRODUCED
    return decide


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
    evidence = {"lr": cfg["lr"], "plain_diverged_at": plain["diverged_at"],
                "plain_diverged_because": plain["diverged_because"], f"{name}_diverged_at": other["diverged_at"],
                "steps": cfg["steps"], "normalized_final_test_accuracy": other["final_test_accuracy"]}

    def decide(e, name=name):
        if e["lr"] != 1:
            return C.INCONCLUSIVE
        if e[f"{name}_diverged_at"] is not None or e["plain_diverged_at"] is None:
            return C.NOT_REPRODUCED
        return C.REPRODUCED

    rule = (f"at lr = 1: REPRODUCED if the plain network diverges within the run and the {name} network "
            "does not; NOT-REPRODUCED if the normalized network diverges or the plain one does not; "
            "INCONCLUSIVE at another lr")
    if cfg["norm"] == "bn":
        return C.claim("D10-LR1", DOCUMENT, "sec. 3", "lr = 1 has been chosen as BN doesn't diverge at this lr, but "
                       "the neural net without BN (initialized at the equivalent point) diverges", _setting(cfg),
                       evidence, rule, decide)
    return C.claim(f"D10-NORM-{name.upper()}", DOCUMENT, "sec. 4", f"every normalization enables higher lr ({name}: "
                   "at lr = 1 it does not diverge where the equivalent plain network does)", _setting(cfg), evidence,
                   rule, decide)


@claims.rule("D10-W-Y", "D10-W-DY", "D10-Y-W", "D10-DEPTH")
def plain_explosion(metrics):
    with np.errstate(divide="ignore", invalid="ignore"):  # a dead layer's norm is 0, a diverged one's inf
        return _explosion_claims(metrics["networks"]["plain"], _setting(metrics["config"]))


@claims.rule("D10-<norm>-Y", "D10-<norm>-DY", "D10-<norm>-AFFINE")
def normalized_bounded(metrics):
    name = _normalized(metrics)
    if name is None:
        return None
    with np.errstate(divide="ignore", invalid="ignore"):
        return _normalized_claims(metrics["networks"][name], name, _setting(metrics["config"]),
                                  metrics["config"]["depth"])


def _feedback_claim(cid, section, text, names, pairing, growth, driver, response, diverged, to_step, setting):
    """A claim "as A grows, B grows" of the plain network's feedback loop, decided by FOLLOW_RULE."""
    e = {"plain_diverged_at": diverged, "from_step": 0, "to_step": to_step, **growth, **_follows(driver, response)}
    e["all_layers_grew"] = bool(all(np.all(np.asarray(g) > 1) for g in growth.values()))
    rule = FOLLOW_RULE.format(a=names[0], b=names[1], t=names[2]) + "; " + pairing
    return C.claim(cid, DOCUMENT, section, text, setting, e, rule, _follow_verdict)


def _explosion_claims(plain: dict, setting: str) -> list:
    """Seed 000 sec. 3.1's three reasons for the plain network's explosion, and its depth."""
    act = np.asarray(plain["activation_norm"], dtype=float)          # (steps, layers)
    weights = np.asarray(plain["weight_norm"], dtype=float)
    grads = np.asarray(plain["activation_grad_norm"], dtype=float)
    last = len(act) - 1                                               # the diverged step, or the last one
    finite_grads = [t for t in range(len(grads)) if np.all(np.isfinite(grads[t]))]
    g_last = finite_grads[-1] if finite_grads else 0
    diverged = plain["diverged_at"]
    d_act = np.diff(np.log(act), axis=0)                              # (transitions, layers)
    d_w = np.diff(np.log(weights), axis=0)
    d_grad = np.diff(np.log(grads[:g_last + 1]), axis=0)
    below = np.cumsum(d_w, axis=1)                                    # layers 1..l: what Y_l is a product of
    above = np.cumsum(d_w[:, ::-1], axis=1)[:, ::-1] - d_w            # layers l+1..L: what dL/dY_l passes through
    n = g_last + 1
    out = [
        _feedback_claim("D10-W-Y", "sec. 3.1 (1)", "in the network without BN, as the norm of W grows, the norm of Y "
                        "grows (Y_l = W Y_{l-1} + B)", ("||W||", "||Y||", "T (divergence)"),
                        "the growth of ||Y_l|| is paired with the summed log growth of ||W_1|| ... ||W_l||",
                        {"weight_growth": _grew(weights, 0, last), "activation_growth": _grew(act, 0, last)},
                        below, d_act, diverged, last, setting),
        _feedback_claim("D10-W-DY", "sec. 3.1 (2)", "in the network without BN, as the norm of W grows, the norm of "
                        "dL/dY_{l-1} grows (dL/dY_{l-1} = dL/dY_l W)",
                        ("||W||", "||dL/dY||", "T' (the last step with finite gradients)"),
                        "the growth of ||dL/dY_l|| is paired with the summed log growth of ||W_{l+1}|| ... ||W_L||",
                        {"weight_growth": _grew(weights, 0, g_last), "activation_grad_growth": _grew(grads, 0, g_last)},
                        above[:n - 1, :-1], d_grad[:, :-1], diverged, g_last, setting),
        _feedback_claim("D10-Y-W", "sec. 3.1 (3)", "in the network without BN, as the norm of Y_{l-1} grows, the norm "
                        "of W grows (dL/dW = dL/dY_l Y_{l-1}^T)", ("||Y_{l-1}||", "||W_l||", "T (divergence)"),
                        "the growth of ||W_l|| over step t -> t+1 is paired with log ||Y_{l-1}|| at step t (the "
                        "input of the update)",
                        {"weight_growth": _grew(weights, 0, last), "input_growth": _grew(act[:, :-1], 0, last)},
                        np.log(act[:-1, :-1]), d_w[:, 1:], diverged, last, setting),
    ]

    layers = np.arange(1, act.shape[1] + 1)
    y = np.log(act[last])
    e = {"plain_diverged_at": diverged, "step": last, "activation_norm_by_layer": [float(v) for v in act[last]]}
    if np.all(np.isfinite(y)):
        slope, intercept = np.polyfit(layers, y, 1)
        fit = slope * layers + intercept
        r2 = 1 - float(((y - fit) ** 2).sum() / ((y - y.mean()) ** 2).sum()) if y.std() > 0 else 0.0
        e.update(growth_per_layer=float(np.exp(slope)), r_squared=r2)
    else:
        e.update(growth_per_layer=None, r_squared=None)

    def depth_verdict(e):
        if e["plain_diverged_at"] is None:
            return C.INCONCLUSIVE
        if e["growth_per_layer"] is None:
            return C.INCONCLUSIVE
        if e["growth_per_layer"] > 1 and e["r_squared"] >= 0.9:
            return C.REPRODUCED
        return C.PARTLY if e["growth_per_layer"] > 1 else C.NOT_REPRODUCED

    out.append(C.claim("D10-DEPTH", DOCUMENT, "sec. 3.1", "weight, gradient and activation explosion feed each "
                       "other, which leads to sudden divergence as depth increases (due to exponential growth "
                       "with depth)", setting, e,
                       "at the plain network's divergence step, a line fitted to log ||Y_l|| against the layer l: "
                       "REPRODUCED if it rises (growth factor per layer > 1) with R^2 >= 0.9 (geometric growth); "
                       "PARTLY if it rises less regularly; NOT-REPRODUCED if it does not rise; INCONCLUSIVE if the "
                       "plain network did not diverge or its activations are not finite", depth_verdict))
    return out


def _normalized_claims(rec: dict, name: str, setting: str, depth: int) -> list:
    """Seed 000 sec. 3.1's three reasons why batch norm's activations and gradients stay bounded."""
    act = np.asarray(rec["activation_norm"], dtype=float)[:, :depth - 1]  # the layers that are normalized
    grads = np.asarray(rec["activation_grad_norm"], dtype=float)
    grads = grads[np.all(np.isfinite(grads), axis=1)]
    affine = np.asarray(rec["affine_norm"], dtype=float)
    across = float(np.max(act.max(1) / act.min(1)))
    along = float(np.max(np.maximum(act / act[0], act[0] / act)))
    e = {"steps_recorded": len(act), "max_ratio_across_layers": across, "max_ratio_to_step_0": along,
         "weight_growth": _grew(rec["weight_norm"], 0, len(act) - 1), "spread": max(across, along)}
    out = [C.claim(f"D10-{name.upper()}-Y", DOCUMENT, "sec. 3.1 (BN 1)", "with BN, Y does not grow as W grows, due "
                   "to forward normalization (the activation norms stay flat across layers and steps)", setting, e,
                   "over the normalized hidden layers and all recorded steps, the larger of (max/min of ||Y_l|| "
                   "across layers at a step) and (||Y_l(t)|| against ||Y_l(0)||, either way): REPRODUCED if <= 2, "
                   "PARTLY if <= 10, NOT-REPRODUCED above", _bounded_verdict("spread"))]
    growth = float(np.max(grads / grads[0])) if len(grads) else None
    e = {"steps_with_gradients": len(grads), "max_growth_of_dL_dY": growth,
         "weight_growth": _grew(rec["weight_norm"], 0, len(act) - 1)}
    out.append(C.claim(f"D10-{name.upper()}-DY", DOCUMENT, "sec. 3.1 (BN 2)", "with BN, dL/dY does not grow as W "
                       "grows, as sigma in the denominator approximately cancels the effect of w_i", setting, e,
                       "the largest ||dL/dY_l(t)|| / ||dL/dY_l(0)|| over layers and steps: REPRODUCED if <= 2, "
                       "PARTLY if <= 10, NOT-REPRODUCED above; INCONCLUSIVE without gradients",
                       _bounded_verdict("max_growth_of_dL_dY")))
    growth = float(np.max(affine / affine[0])) if len(affine) else None
    e = {"max_growth_of_gamma_beta": growth, "gamma_beta_norm_first": affine[0].tolist() if len(affine) else None,
         "gamma_beta_norm_last": affine[-1].tolist() if len(affine) else None}
    out.append(C.claim(f"D10-{name.upper()}-AFFINE", DOCUMENT, "sec. 3.1 (BN 3)", "with BN, gamma and beta do not "
                       "blow up as dL/dY does not blow up", setting, e,
                       "the largest ||(gamma_l, beta_l)(t)|| / ||(gamma_l, beta_l)(0)|| over layers and steps: "
                       "REPRODUCED if <= 2, PARTLY if <= 10, NOT-REPRODUCED above",
                       _bounded_verdict("max_growth_of_gamma_beta")))
    return out


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
    return out


if __name__ == "__main__":
    experiment.main(__name__)

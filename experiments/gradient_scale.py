"""How batch norm scales gradients: with depth, through gamma, and under the weights' learning rate.

Explosion with depth at initialization, gamma's rescaling, and the learning rate of the
scale-invariant weights (seeds 004, 002 and 000).

Seed 004 cites Yang et al. (2019): "deep networks with multiple BN layers suffer from extensive
gradient explosion", which "can be alleviated through adding skip-connections". Seed 002 says
that batch norm "also rescales the gradient by gamma which helps in case of vanishing gradient".
Seed 000 (sec. 1) cites Arora et al. (2019): "the convergence rate ... is unaffected by the
learning rate used for scale-independent parameters". All three are measured here on ReLU MLPs
on MNIST (the 10 000 training images that come with minibn):

    python experiments/gradient_scale.py [--quick] [--seeds 5] [--depths 2,5,10,20,50] [--gammas 1,0.1]
        [--weight-lrs 0.01,0.1,1,10] ...

1. At initialization, ||dL/dW_1|| (the first linear layer's weight gradient) on one batch,
   against the depth, for the plain network, the BN network and the BN network with skip
   connections (h <- h + ReLU(BN(W h)) after the first hidden layer).
2. A deep BN network trained with SGD from gamma = each of --gammas, with gamma learned or
   frozen: ||dL/dW_1||, the loss and the mean gamma along training.
3. A BN network trained with SGD where the weights that feed a batch norm (scale-invariant: BN(c W h)
   = BN(W h) for c > 0) take the learning rate lr_W of each of --weight-lrs and the other parameters
   (biases, gammas, betas, the output layer) --lr: the loss and the hidden weights' squared row
   norm along training.

Each (variant, seed) runs in a worker process with a checkpoint after it. Writes metrics.json
(with the claims) and figures.
"""

from __future__ import annotations

import dataclasses

import numpy as np

import minibn as mb
import minibn.functional as F
from minibn import experiment, nn, plotting
from minibn.data import load_mnist_subset
from minibn.experiment import ConfigError, at_least, at_most, option, positive
from minibn.experiment import claims as C
from minibn.experiment.training import batch_indices

EMBEDDED = 10_000
ARCHITECTURES = ("plain", "bn", "bn_residual")
EXTENSIVE = 10.0  # "extensive" explosion, and a skip connection's relief of it: a factor 10 at the deepest depth
NOTES = (
    "Yang et al. (2019) study batch norm at initialization by mean-field theory on fully connected networks; "
    "here the first layer's weight gradient is measured on MLPs of width --width, Kaiming-normal weights and zero "
    "biases, in training mode (batch statistics) on the first batch of --batch-size MNIST images, cross-entropy.",
    "The skip connections: Linear -> BN -> ReLU to the width, then blocks h <- h + ReLU(BN(W h)), then the output "
    "Linear; depth counts the linear layers, as for the other two networks.",
    "Part 2 trains a BN MLP of --gamma-depth linear layers with SGD at --lr from every batch norm's gamma set to "
    "each of --gammas (beta 0): 'learned' updates gamma with the other parameters, 'frozen' keeps it; the same "
    "initial weights and batches for all four. Seed 002 gives no setting; the small gamma is the case of "
    "vanishing gradients it speaks of.",
    "Part 3 trains a BN MLP of --weight-lr-depth linear layers for --weight-lr-steps SGD steps: every hidden "
    "Linear's weight (scale-invariant, as it feeds a batch norm) at lr_W = each of --weight-lrs, every other "
    "parameter at --lr; the same initial weights and batches for all. Arora et al. (2019) prove that gradient "
    "descent on such a network approaches a stationary point at a rate whose order does not depend on lr_W "
    "(T^-1/2 in T steps; T^-1/4 for SGD): the squared norm ||w||^2 of a scale-invariant row grows by "
    "lr_W^2 ||grad||^2 per step, so its effective learning rate lr_W / ||w||^2 tunes itself. The theorem bounds "
    "the order; a finite run also compares the constants, so what is tested here is the seed's reading "
    "('unaffected'), by the training loss along the run against lr_W = --lr.",
)


@dataclasses.dataclass
class Config(experiment.GridConfig):
    CPU_ONLY = True
    SEEDS = 5
    width: int = option(100, "hidden width", check=at_least(1))
    batch_size: int = option(128, "batch size", check=at_least(2))
    train_size: int = option(EMBEDDED, "training images (of the 10 000 that come with minibn)",
                             check=(at_least(2), at_most(EMBEDDED)))
    depths: tuple[int, ...] = option((2, 5, 10, 15, 20, 30, 40, 50), "linear layers of part 1's networks",
                                     check=at_least(2))
    gamma_depth: int = option(20, "linear layers of part 2's BN network", check=at_least(2))
    gammas: tuple[float, ...] = option((1.0, 0.1), "part 2's initial gamma of every batch norm", check=positive)
    lr: float = option(0.1, "part 2's SGD learning rate", check=positive)
    steps: int = option(300, "part 2's SGD steps", check=at_least(2))
    record_every: int = option(10, "parts 2 and 3: steps between records (and the last step)", check=at_least(1))
    weight_lrs: tuple[float, ...] = option((0.01, 0.1, 1.0, 10.0), "part 3's learning rates of the scale-invariant "
                                           "weights (--lr among them: the reference)", check=positive)
    weight_lr_depth: int = option(5, "linear layers of part 3's BN network", check=at_least(2))
    weight_lr_steps: int = option(1000, "part 3's SGD steps", check=at_least(2))

    def validate(self):
        if self.batch_size > self.train_size:
            raise ConfigError("batch_size", f"{self.batch_size} exceeds --train-size {self.train_size}")
        if self.lr not in self.weight_lrs or len(set(self.weight_lrs)) < 2:
            raise ConfigError("weight_lrs", f"{','.join(f'{v:g}' for v in self.weight_lrs)} must hold --lr "
                              f"{self.lr:g} (the reference) and at least one other learning rate")


QUICK = {"seeds": 3, "width": 32, "train_size": 2000, "depths": (2, 5, 10, 20), "gamma_depth": 8, "steps": 40,
         "record_every": 5, "weight_lr_depth": 3, "weight_lr_steps": 60}


# -- networks -------------------------------------------------------------------------------------------


class Residual(nn.Module):
    """x + body(x)."""

    def __init__(self, body):
        super().__init__()
        self.body = body

    def forward(self, x):
        return x + self.body(x)


def build(cfg: Config, architecture: str, depth: int, seed: int) -> nn.Sequential:
    """An MLP 784 -> width x (depth - 1) -> 10: plain, with BN after each hidden linear layer, or with BN
    and skip connections around every hidden block after the first."""
    g = mb.Generator(seed)
    options = dict(init="kaiming_normal", zero_bias=True, dtype=cfg.dtype, generator=g)
    if architecture != "bn_residual":
        return nn.mlp([784] + [cfg.width] * (depth - 1) + [10], norm=None if architecture == "plain" else "bn",
                      **options)
    def block(n_in):  # Linear -> BN -> ReLU
        return [nn.mlp([n_in, cfg.width], **options)[0], nn.BatchNorm1d(cfg.width, dtype=cfg.dtype), nn.ReLU()]
    layers = block(784) + [Residual(nn.Sequential(*block(cfg.width))) for _ in range(depth - 2)]
    layers.append(nn.mlp([cfg.width, 10], **options)[0])
    return nn.Sequential(*layers)


def first_linear(net) -> nn.Linear:
    return next(m for m in net.modules() if isinstance(m, nn.Linear))


def load_data(cfg: Config):
    x, y = load_mnist_subset("train", dtype=np.dtype(cfg.dtype))
    return mb.tensor(x[:cfg.train_size]), mb.tensor(y[:cfg.train_size])


# -- the grid -------------------------------------------------------------------------------------------


def variants(cfg: Config) -> list:
    """"init/<architecture>" (part 1), "gamma=<g>/<learned|frozen>" (part 2) and "lr_w=<lr>" (part 3)."""
    return ([f"init/{a}" for a in ARCHITECTURES] + [f"gamma={g:g}/{mode}" for g in cfg.gammas
                                                    for mode in ("learned", "frozen")]
            + [f"lr_w={v:g}" for v in cfg.weight_lrs])


def task(cfg: Config, variant: str, seed: int) -> dict:
    x, y = load_data(cfg)
    idx = batch_indices(seed, 0, len(x), cfg.batch_size)
    if variant.startswith("init/"):
        return {"first_layer_grad_norm": [initial_gradient(build(cfg, variant[5:], d, seed), x[idx], y[idx])
                                          for d in cfg.depths]}
    if variant.startswith("lr_w="):
        return train_weight_lr(cfg, float(variant[5:]), x, y, seed)
    gamma, mode = variant.removeprefix("gamma=").split("/")
    return train(cfg, float(gamma), mode == "learned", x, y, seed)


def initial_gradient(net, x, y) -> float:
    """||dL/dW_1|| on (x, y) in training mode."""
    (g,) = mb.grad(F.cross_entropy(net(x), y), [first_linear(net).weight])
    return float(np.linalg.norm(g.numpy().astype(np.float64)))


def train(cfg: Config, gamma: float, learned: bool, x, y, seed: int) -> dict:
    """SGD on the BN network of ``gamma_depth`` layers from gamma = ``gamma`` (learned or frozen); every
    ``record_every`` steps (and at the last) the step, the loss, ||dL/dW_1|| and the mean gamma."""
    net = build(cfg, "bn", cfg.gamma_depth, seed)
    norms = [m for m in net if isinstance(m, nn.BatchNorm1d)]
    for m in norms:
        m.weight._data[...] = gamma
        m.weight.requires_grad_(learned)
    opt = mb.optim.SGD([p for p in net.parameters() if p.requires_grad], lr=cfg.lr)
    weight, record = first_linear(net).weight, []
    for step, loss in sgd_steps(cfg, net, opt, x, y, seed, cfg.steps):
        if step % cfg.record_every == 0 or step == cfg.steps - 1:
            record.append([step, float(loss.item()), float(np.linalg.norm(weight.grad.numpy().astype(np.float64))),
                           float(np.mean([m.weight.detach().numpy().mean() for m in norms]))])
    return {"record": record}


def sgd_steps(cfg: Config, net, opt, x, y, seed: int, steps: int):
    """Yield (step, loss) after each step's backward, then take the update: cross-entropy on the
    seed's ``--batch-size`` batches of (x, y)."""
    for step in range(steps):
        idx = batch_indices(seed, step, len(x), cfg.batch_size)
        opt.zero_grad()
        loss = F.cross_entropy(net(x[idx]), y[idx])
        loss.backward()
        yield step, loss
        opt.step()


def scale_invariant(net) -> list:
    """The weights of the Linear layers that feed a batch norm: BN(c W h) = BN(W h) for c > 0 (up to
    BN's eps, against the batch variance), so the loss is invariant to each row's scale (a bias before BN
    is cancelled by it: not invariant, zero gradient)."""
    layers = list(net)
    return [m.weight for m, after in zip(layers, layers[1:]) if isinstance(m, nn.Linear)
            and isinstance(after, nn.BatchNorm1d)]


def train_weight_lr(cfg: Config, lr_w: float, x, y, seed: int) -> dict:
    """SGD on the BN network of ``weight_lr_depth`` layers, its scale-invariant weights at ``lr_w`` and the
    rest at ``cfg.lr``; every ``record_every`` steps (and at the last) the step, the loss and the mean
    squared row norm of the scale-invariant weights."""
    net = build(cfg, "bn", cfg.weight_lr_depth, seed)
    invariant = scale_invariant(net)
    chosen = {id(w) for w in invariant}
    opt = mb.optim.SGD([{"params": invariant, "lr": lr_w},
                        {"params": [p for p in net.parameters() if id(p) not in chosen]}], lr=cfg.lr)
    record = []
    for step, loss in sgd_steps(cfg, net, opt, x, y, seed, cfg.weight_lr_steps):
        if step % cfg.record_every == 0 or step == cfg.weight_lr_steps - 1:
            rows = np.concatenate([np.sum(w.detach().numpy().astype(np.float64) ** 2, axis=1) for w in invariant])
            record.append([step, float(loss.item()), float(rows.mean())])
    return {"record": record}


def collect(cfg: Config, results: dict) -> dict:
    """Part 1: architecture -> depth -> ||dL/dW_1|| per seed; parts 2 and 3: condition -> its records per seed."""
    init = {v[5:]: {str(d): [r["first_layer_grad_norm"][i] for r in rs] for i, d in enumerate(cfg.depths)}
            for v, rs in results.items() if v.startswith("init/")}
    gamma = {v: [r["record"] for r in rs] for v, rs in results.items() if v.startswith("gamma=")}
    weight_lr = {v[5:]: [r["record"] for r in rs] for v, rs in results.items() if v.startswith("lr_w=")}
    return {"initial_gradient": init, "training": gamma, "weight_lr_training": weight_lr}


# -- claims ---------------------------------------------------------------------------------------------


def _setting(cfg: dict, part: int) -> str:
    base = (f"ReLU MLPs of width {cfg['width']} on MNIST ({cfg['train_size']} images), Kaiming-normal weights, zero "
            f"biases, batch {cfg['batch_size']}, {cfg['seeds']} seeds from {cfg['seed']}")
    if part == 1:
        return (f"{base}; at initialization, depths {','.join(map(str, cfg['depths']))} (Yang et al.: mean-field "
                "theory of fully connected BN networks)")
    if part == 2:
        return (f"{base}; a BN network of {cfg['gamma_depth']} linear layers, SGD lr {cfg['lr']:g} for "
                f"{cfg['steps']} steps from gamma = {','.join(f'{g:g}' for g in cfg['gammas'])}, learned or frozen")
    return (f"{base}; a BN network of {cfg['weight_lr_depth']} linear layers, {cfg['weight_lr_steps']} SGD steps, "
            f"the hidden weights (scale-invariant) at lr_W = {','.join(f'{v:g}' for v in cfg['weight_lrs'])}, "
            f"the other parameters at lr {cfg['lr']:g}; loss recorded every {cfg['record_every']} steps")


def slopes(table: dict) -> list:
    """Per seed, the growth of log10 ||dL/dW_1|| per added layer (least squares over the depths)."""
    depths = np.array([int(d) for d in table], dtype=float)
    logs = np.log10(np.array(list(table.values()), dtype=float))  # depths x seeds
    return [float(np.polyfit(depths, logs[:, s], 1)[0]) for s in range(logs.shape[1])]


def _deepest_ratio(table_a: dict, table_b: dict) -> list:
    deepest = max(table_a, key=int)
    return [a / b for a, b in zip(table_a[deepest], table_b[deepest])]


claims = C.Claims()


@claims.rule("INIT-BN-EXPLODES", "SKIP-ALLEVIATES")
def explosion(metrics):
    cfg, init = metrics["config"], metrics["initial_gradient"]
    slope = {a: slopes(init[a]) for a in init}
    bn_vs_plain, p = C.paired_t_test(slope["bn"], slope["plain"])
    explodes = {"growth_per_layer": {a: [10 ** s for s in v] for a, v in slope.items()},
                "slope_bn_minus_plain": bn_vs_plain, "p": p, "seeds": len(slope["bn"]),
                "deepest": max(map(int, init["bn"])), "bn_over_plain_at_deepest": _deepest_ratio(init["bn"], init["plain"]),
                "first_layer_grad_norm": init}
    out = [C.claim("INIT-BN-EXPLODES", "004", "sec. 1.4 (Yang et al. 2019)", "deep networks with multiple BN layers "
                   "suffer from extensive gradient explosion [at initialization], highlighting BN as the cause",
                   _setting(cfg, 1), explodes,
                   "per seed, the slope of log10 ||dL/dW_1|| against the depth (least squares over the depths): "
                   "REPRODUCED if BN's is significantly steeper than the plain network's (paired t-test over the "
                   f"seeds, p < 0.05) and BN's gradient at the deepest depth is >= {EXTENSIVE:g}x the plain network's "
                   "on every seed ('extensive'); PARTLY if only steeper; NOT-REPRODUCED if not steeper and BN's "
                   "deepest gradient is below 2x the plain network's on every seed (no explosion); INCONCLUSIVE "
                   "otherwise or with one seed", decide_explodes,
                   test="paired t-test of the slopes; threshold at the deepest depth on every seed")]
    if "bn_residual" in init:
        res_vs_bn, p_res = C.paired_t_test(slope["bn_residual"], slope["bn"])
        e = {"slope_residual_minus_bn": res_vs_bn, "p": p_res, "seeds": len(slope["bn"]),
             "bn_explodes": decide_explodes(explodes) in (C.REPRODUCED, C.PARTLY),
             "bn_over_residual_at_deepest": _deepest_ratio(init["bn"], init["bn_residual"]),
             "growth_per_layer": {a: explodes["growth_per_layer"][a] for a in ("bn", "bn_residual")}}
        out.append(C.claim("SKIP-ALLEVIATES", "004", "sec. 1.4 (Yang et al. 2019)", "[the gradient explosion of BN "
                           "networks] can be alleviated through adding skip-connections", _setting(cfg, 1), e,
                           "per seed, the slope of log10 ||dL/dW_1|| against the depth: REPRODUCED if the BN network "
                           "with skip connections has a significantly shallower one than the BN network (paired t-test, "
                           f"p < 0.05) and a gradient >= {EXTENSIVE:g}x smaller at the deepest depth on every seed; "
                           "PARTLY if only shallower; NOT-REPRODUCED if it is significantly steeper or not below BN's "
                           "at the deepest depth on any seed; INCONCLUSIVE if BN shows no explosion (INIT-BN-EXPLODES "
                           "neither REPRODUCED nor PARTLY: nothing to alleviate), otherwise, or with one seed",
                           decide_alleviates, test="paired t-test of the slopes; threshold at the deepest depth"))
    return out


def decide_explodes(e) -> str:
    if e["seeds"] < 2:
        return C.INCONCLUSIVE
    steeper = e["p"] < 0.05 and e["slope_bn_minus_plain"] > 0
    if steeper:
        return C.REPRODUCED if min(e["bn_over_plain_at_deepest"]) >= EXTENSIVE else C.PARTLY
    return C.NOT_REPRODUCED if max(e["bn_over_plain_at_deepest"]) < 2 else C.INCONCLUSIVE


def decide_alleviates(e) -> str:
    if e["seeds"] < 2 or not e["bn_explodes"]:
        return C.INCONCLUSIVE
    shown = e["p"] < 0.05
    if shown and e["slope_residual_minus_bn"] > 0 or max(e["bn_over_residual_at_deepest"]) <= 1:
        return C.NOT_REPRODUCED
    if shown:
        return C.REPRODUCED if min(e["bn_over_residual_at_deepest"]) >= EXTENSIVE else C.PARTLY
    return C.INCONCLUSIVE


def late_gradient(records: list) -> float:
    """The geometric mean of ||dL/dW_1|| over the second half of a training's records."""
    norms = np.array([r[2] for r in records[len(records) // 2:]], dtype=float)
    return float(10 ** np.mean(np.log10(norms)))


@claims.rule("GAMMA-RESCUES")
def gamma_rescues(metrics):
    cfg, runs = metrics["config"], metrics["training"]
    gammas = sorted(cfg["gammas"])
    if len(gammas) < 2:
        return None
    small, one = f"gamma={gammas[0]:g}", f"gamma={gammas[-1]:g}"
    at_start = [a[0][2] / b[0][2] for a, b in zip(runs[f"{small}/learned"], runs[f"{one}/learned"])]
    late = {mode: [late_gradient(r) for r in runs[f"{small}/{mode}"]] for mode in ("learned", "frozen")}
    e = {"small_gamma": gammas[0], "large_gamma": gammas[-1], "step_0_gradient_ratio_small_over_large": at_start,
         "vanishing_at_start": all(r <= 1 / C.SMALLER_FACTOR for r in at_start),
         "late_gradient": late, "frozen_vs_learned": C.smaller(late["frozen"], late["learned"], ("frozen", "learned")),
         "final_loss": {mode: [r[-1][1] for r in runs[f"{small}/{mode}"]] for mode in ("learned", "frozen")},
         "final_mean_gamma": [r[-1][3] for r in runs[f"{small}/learned"]]}
    return C.claim("GAMMA-RESCUES", "002", "sec. 2", "BN also rescales the gradient by gamma which helps in case of "
                   "vanishing gradient: a method of increasing the gradient magnitude through a learnable parameter",
                   _setting(cfg, 2), e,
                   f"the vanishing case: from gamma = {gammas[0]:g}, ||dL/dW_1|| at step 0 below its value from gamma "
                   f"= {gammas[-1]:g} by a factor >= {C.SMALLER_FACTOR} on every seed; then, from gamma = "
                   f"{gammas[0]:g}, the geometric mean of ||dL/dW_1|| over the second half of training with gamma "
                   "learned against frozen, per seed: REPRODUCED if learning gamma makes it significantly larger "
                   "(paired t-test of log10, p < 0.05) in the vanishing case; PARTLY if larger without the vanishing "
                   f"case at step 0; NOT-REPRODUCED if smaller, or equal within a factor {C.SMALLER_FACTOR} (TOST on "
                   "the logs); INCONCLUSIVE otherwise, with one seed or one gamma", decide_gamma,
                   test=C.SMALLER_TEST, margin=C.margin(C.SMALLER_FACTOR, "factor"))


def decide_gamma(e) -> str:
    verdict = C.decide_smaller(e["frozen_vs_learned"])  # "frozen smaller" is "learned larger"
    if verdict == C.REPRODUCED and not e["vanishing_at_start"]:
        return C.PARTLY
    return verdict


UNAFFECTED = 1.25  # "unaffected": the mean training loss within a factor 1.25 of the reference's
DECADE = 10.0  # PARTLY: unaffected over at least a factor 10 of lr_W away from the reference


def mean_loss(records: list) -> float:
    """The mean training loss over a run's records (evenly spaced): the area under the loss curve per step,
    smaller the faster the loss falls."""
    return float(np.mean([r[1] for r in records]))


@claims.rule("ARORA-LR-UNAFFECTED")
def arora(metrics):
    cfg, runs = metrics["config"], metrics.get("weight_lr_training")
    if not runs:
        return None
    reference = f"{cfg['lr']:g}"
    losses = {lr: [mean_loss(r) for r in rs] for lr, rs in runs.items()}
    pairs = {lr: C.equivalence_test(losses[lr], losses[reference], margin=UNAFFECTED, ratio=True)
             for lr in losses if lr != reference}
    ordered = sorted(losses, key=float)
    e = {"reference_lr_w": float(reference), "mean_loss": losses, "against_reference": pairs,
         "seeds": len(losses[reference]),
         "next_over_previous": {f"{b} / {a}": float(np.exp(np.mean(np.log(losses[b]) - np.log(losses[a]))))
                                for a, b in zip(ordered, ordered[1:])},  # the geometric mean ratio, lr_W to lr_W
         "final_loss": {lr: [r[-1][1] for r in rs] for lr, rs in runs.items()},
         "final_effective_lr": {lr: [float(lr) / r[-1][2] for r in rs] for lr, rs in runs.items()}}
    return C.claim("ARORA-LR-UNAFFECTED", "000", "sec. 1 (Arora et al. 2019)", "the convergence rate [of gradient "
                   "descent on a network with batch norm] is unaffected by the learning rate used for "
                   "scale-independent parameters", _setting(cfg, 3), e,
                   f"per seed, the mean training loss over the run's records (the area under the loss curve) at "
                   f"each lr_W against lr_W = {reference} (the other parameters' lr): REPRODUCED if every lr_W's "
                   f"equals the reference's within a factor {UNAFFECTED:g} (TOST on the logs, paired by seed, alpha "
                   "0.05 each; all must hold, an intersection-union test, so no correction for the several lr_W; a "
                   f"quarter more loss on average is a slower convergence); PARTLY if not all but one at least "
                   f"{DECADE:g}x from the reference does (unaffected over a decade); NOT-REPRODUCED otherwise if "
                   f"some lr_W's ratio has its 90 % interval outside [1/{UNAFFECTED:g}, {UNAFFECTED:g}] (affected, "
                   "shown); INCONCLUSIVE otherwise or with one seed", decide_arora,
                   test="TOST on per-seed log ratios (paired t) for each lr_W, intersection-union",
                   margin=C.margin(UNAFFECTED, "factor in mean training loss"))


def decide_arora(e) -> str:
    if e["seeds"] < 2 or not e["against_reference"]:
        return C.INCONCLUSIVE
    tests = e["against_reference"]
    if all(t["equivalent"] for t in tests.values()):
        return C.REPRODUCED
    ref = e["reference_lr_w"]
    if any(t["equivalent"] and max(float(lr), ref) / min(float(lr), ref) >= DECADE * (1 - 1e-9)
           for lr, t in tests.items()):
        return C.PARTLY
    affected = any(t["ci"][0] > UNAFFECTED or t["ci"][1] < 1 / UNAFFECTED for t in tests.values())
    return C.NOT_REPRODUCED if affected else C.INCONCLUSIVE


# -- figures and summary --------------------------------------------------------------------------------


def figures(metrics: dict, folder) -> dict:
    return {"initial_gradient.png": lambda path: _depth_figure(metrics, path),
            "gamma_training.png": lambda path: _gamma_figure(metrics, path),
            "weight_lr_training.png": lambda path: _weight_lr_figure(metrics, path)}


def _depth_figure(metrics, path):
    plt = plotting.plt
    fig, ax = plt.subplots(figsize=(7, 4.5), layout="constrained")
    for i, (arch, table) in enumerate(metrics["initial_gradient"].items()):
        depths = [int(d) for d in table]
        values = np.array(list(table.values()), dtype=float)
        ax.plot(depths, values, color=f"C{i}", alpha=0.25, lw=0.8)
        ax.plot(depths, 10 ** np.log10(values).mean(1), color=f"C{i}", marker="o", label=arch.replace("_", " + "))
    ax.set(yscale="log", xlabel="depth (linear layers)", ylabel="||dL/dW_1|| at initialization",
           title=f"first layer's gradient at initialization, {len(metrics['seeds'])} seeds (geometric mean)")
    ax.grid(True, alpha=0.3)
    ax.legend()
    plotting.save_figure(fig, path)


def _gamma_figure(metrics, path):
    panels = {"||dL/dW_1||": {}, "training loss": {}, "mean gamma": {}}
    for name, runs in metrics["training"].items():
        records = np.array(runs, dtype=float)  # seeds x records x (step, loss, grad, gamma)
        for column, panel in ((2, "||dL/dW_1||"), (1, "training loss"), (3, "mean gamma")):
            panels[panel][name] = np.column_stack([records[0, :, 0], 10 ** np.log10(records[:, :, column]).mean(0)])
    plotting.curves(panels, f"BN network of {metrics['config']['gamma_depth']} layers, geometric mean over "
                            f"{len(metrics['seeds'])} seeds", path, log=("||dL/dW_1||", "training loss"))


def _weight_lr_figure(metrics, path):
    panels = {"training loss": {}, "hidden weights' mean ||w||^2 per row": {}, "effective lr_W / ||w||^2": {}}
    for lr, runs in metrics.get("weight_lr_training", {}).items():
        records = np.array(runs, dtype=float)  # seeds x records x (step, loss, squared row norm)
        steps, name = records[0, :, 0], f"lr_W = {lr}"
        panels["training loss"][name] = np.column_stack([steps, records[:, :, 1].mean(0)])
        norms = 10 ** np.log10(records[:, :, 2]).mean(0)
        panels["hidden weights' mean ||w||^2 per row"][name] = np.column_stack([steps, norms])
        panels["effective lr_W / ||w||^2"][name] = np.column_stack([steps, float(lr) / norms])
    plotting.curves(panels, f"BN network of {metrics['config']['weight_lr_depth']} layers, the other parameters at "
                            f"lr {metrics['config']['lr']:g}, mean over {len(metrics['seeds'])} seeds", path,
                    log=tuple(panels))


def summary(metrics: dict) -> str:
    lines = ["||dL/dW_1|| at initialization, geometric mean over seeds, by depth:"]
    for arch, table in metrics["initial_gradient"].items():
        lines.append(f"  {arch:<12} " + " ".join(f"{d}: {10 ** np.mean(np.log10(v)):.3g}" for d, v in table.items()))
    lines.append("part 2, over the second half of training (geometric mean over seeds):")
    for name, runs in metrics["training"].items():
        late = 10 ** np.mean(np.log10([late_gradient(r) for r in runs]))
        lines.append(f"  {name:<18} ||dL/dW_1|| {late:.3g}, final loss {np.mean([r[-1][1] for r in runs]):.3f}, "
                     f"mean gamma {np.mean([r[-1][3] for r in runs]):.3f}")
    if metrics.get("weight_lr_training"):
        lines.append("part 3, the hidden weights' lr_W (mean over seeds):")
    for lr, runs in metrics.get("weight_lr_training", {}).items():
        lines.append(f"  lr_W = {lr:<6} mean loss {np.mean([mean_loss(r) for r in runs]):.3f}, final loss "
                     f"{np.mean([r[-1][1] for r in runs]):.3f}, final squared row norm "
                     f"{np.mean([r[-1][2] for r in runs]):.3g}")
    return "\n".join(lines)


def headline(metrics: dict) -> dict:
    return {f"{arch}_depth{d}_grad": float(10 ** np.mean(np.log10(v)))
            for arch, table in metrics["initial_gradient"].items() for d, v in table.items()}


if __name__ == "__main__":
    experiment.main(__name__)

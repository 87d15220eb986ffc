"""Loss landscapes of an MLP with and without batch norm (seed 001 sec. 3, Figure 2).

Seed 001 trains LeNet and VGG-16 on CIFAR-10 (Adam, lr 0.01, batch 128, 20 epochs), draws the
loss around the trained point on a plane of two filter-normalized random directions (Li et al.
2018), on a linear and on a log scale, and reads from the scales that "the variance of loss
landscape with BatchNorm is smaller", that batch norm "flattens the loss landscape and improves
the Lipschitzness" and that it "improves the beta-smoothness". Here the same protocol runs on an
MLP on MNIST (the 10 000 training images that come with minibn), as this project's card says:

    python experiments/landscape.py [--quick] [--seeds 5] [--grid 51] [--width 100] [--hidden-layers 3] [--workers 2]

For each seed, a plain MLP and the same MLP with BatchNorm1d after each hidden linear layer start
from the same weights, train on the same batches, and are then cut through their final point
theta*: the loss on theta* + alpha d1 + beta d2 over a grid on [-1, 1]^2 (the surface), on the
line to theta* from the initial point (interpolation) and along d1. The claims compare
measures of the surface between the two networks over the seeds: its variance, its Lipschitz
constant (the largest gradient norm on the grid) and its beta (the largest curvature on the
grid). Each (network, seed) runs in a worker process, with a checkpoint after each, so
--resume continues a killed run. Writes metrics.json (with the claims) and figures.
"""

from __future__ import annotations

import dataclasses

import numpy as np

import minibn as mb
import minibn.functional as F
from minibn import experiment, landscape, nn, plotting
from minibn.data import load_mnist_subset
from minibn.experiment import ConfigError, at_least, option, positive
from minibn.experiment import claims as C
from minibn.experiment.training import batch_indices, evaluate

DOCUMENT = "001"
NETWORKS = ("plain", "bn")
NOTES = (
    "Seed 001 ran LeNet and VGG-16 on CIFAR-10; this experiment runs an MLP on MNIST (the 10 000 training images "
    "that come with minibn), the project's setting. The training is seed 001's: Adam, lr 0.01, batch 128, 20 "
    "epochs, cross-entropy.",
    "The surfaces follow Li et al. (2018): two Gaussian directions, filter-normalized (each neuron's row of a "
    "weight's direction rescaled to the norm of the weight's row), biases and batch norm's gamma and beta not "
    "moved (their direction is 0), the loss in eval mode (batch norm with its running statistics, as Li et al.'s "
    "code evaluates it), on a grid of [-1, 1]^2. Seed 001 does not say which it used; its text names Li et al.'s "
    "method.",
    "Seed 001 reads the measures from the axes' scales of one figure per network; here they are computed from "
    "the grid: the variance of the loss, the slice's Lipschitz constant (largest |grad L| by central "
    "differences) and its beta (largest |eigenvalue| of the 2 x 2 Hessian by central differences), compared over "
    "seeds. Its remark that batch norm makes the landscape 'more concave' is not tested.",
)


@dataclasses.dataclass
class Config(experiment.GridConfig):
    CPU_ONLY = True
    SEEDS = 5  # each: initial weights, batch order, directions
    width: int = option(100, "hidden width of the MLP", check=at_least(1))
    hidden_layers: int = option(3, "hidden layers (linear layers: one more)", check=at_least(1))
    lr: float = option(0.01, "Adam learning rate (seed 001's)", check=positive)
    batch_size: int = option(128, "training batch size (seed 001's)", check=at_least(2))
    epochs: int = option(20, "training epochs (seed 001's)", check=at_least(1))
    train_size: int = option(10_000, "training images (of the 10 000 that come with minibn)", check=at_least(2))
    grid: int = option(51, "points per side of the surface's grid on [-1, 1] (Li et al.'s 51)", check=at_least(3))
    extent: float = option(1.0, "the grid spans [-extent, extent] in both directions", check=positive)
    line_points: int = option(41, "points of the 1-D curves", check=at_least(3))
    surface_samples: int = option(10_000, "training images the landscape's loss is computed on", check=at_least(1))
    ignore_1d: bool = option(True, "biases and gamma/beta do not move (Li et al.'s default); --no-ignore-1d moves "
                                   "them along themselves")

    def validate(self):
        if self.surface_samples > self.train_size:
            raise ConfigError("surface_samples", f"{self.surface_samples} exceeds --train-size {self.train_size}")
        if self.batch_size > self.train_size:
            raise ConfigError("batch_size", f"{self.batch_size} exceeds --train-size {self.train_size}")


QUICK = {"seeds": 3, "width": 32, "hidden_layers": 2, "epochs": 2, "train_size": 2000, "grid": 9, "line_points": 9,
         "surface_samples": 1000}


# -- one network ----------------------------------------------------------------------------------------


def load_data(cfg: Config):
    x, y = load_mnist_subset("train", dtype=np.dtype(cfg.dtype))
    xt, yt = load_mnist_subset("test", dtype=np.dtype(cfg.dtype))
    return x[:cfg.train_size], y[:cfg.train_size], xt, yt


def build_network(cfg: Config, network: str, seed: int) -> nn.Sequential:
    """The MLP 784 -> hidden... -> 10 with ReLU, BatchNorm1d after each hidden linear layer for "bn";
    both from the same generator, so that their linear layers start equal."""
    return nn.mlp([784] + [cfg.width] * cfg.hidden_layers + [10], norm="bn" if network == "bn" else None, dtype=cfg.dtype,
                  generator=mb.Generator(seed))


def train(cfg: Config, net, x, y, seed: int) -> list:
    """Adam on cross-entropy, the batches of ``batch_indices(seed, ...)``; returns the loss per step."""
    opt = mb.optim.Adam(net.parameters(), lr=cfg.lr)
    steps = cfg.epochs * (len(x) // cfg.batch_size)
    losses = []
    net.train()
    for step in range(steps):
        idx = batch_indices(seed, step, len(x), cfg.batch_size)
        opt.zero_grad()
        loss = F.cross_entropy(net(x[idx]), y[idx])
        loss.backward()
        opt.step()
        losses.append(float(loss.item()))
    return losses


def variants(cfg: Config) -> tuple:
    return NETWORKS


def task(cfg: Config, network: str, seed: int) -> dict:
    """Train one network of one seed, then compute its surface and 1-D curves."""
    x, y, xt, yt = (mb.tensor(a) for a in load_data(cfg))
    net = build_network(cfg, network, seed)
    start = landscape.parameters_of(net)
    losses = train(cfg, net, x, y, seed)
    xs, ys = x[:cfg.surface_samples], y[:cfg.surface_samples]
    d1, d2 = (landscape.filter_normalized_direction(net, mb.Generator(seed * 1000 + k), ignore_1d=cfg.ignore_1d)
              for k in (1, 2))
    axis = np.linspace(-cfg.extent, cfg.extent, cfg.grid)
    surface = landscape.surface(net, d1, d2, axis, axis, xs, ys)
    interpolation = landscape.interpolation(net, start, landscape.parameters_of(net),
                                            np.linspace(-0.5, 1.5, cfg.line_points), xs, ys)
    along = landscape.line(net, d1, np.linspace(-cfg.extent, cfg.extent, cfg.line_points), xs, ys)
    return {"train_loss": losses, "test_accuracy": evaluate(net, xt, yt),
            "surface": surface.to_dict(), "interpolation": interpolation.to_dict(), "along_d1": along.to_dict(),
            "measures": measures(surface.loss, axis)}


def measures(loss: np.ndarray, axis: np.ndarray) -> dict:
    """Numbers read off a surface on the square grid ``axis`` x ``axis``: the variance and range of the
    loss, the largest |grad L| (the slice's Lipschitz constant) and the largest |eigenvalue| of the
    2 x 2 Hessian (the slice's beta), both by central differences (second-order one-sided ones at the
    edges: exact for a quadratic)."""
    loss = np.asarray(loss, dtype=float)
    h = float(axis[1] - axis[0])
    d_beta, d_alpha = np.gradient(loss, h, edge_order=2)
    h_bb, h_ba = np.gradient(d_beta, h, edge_order=2)
    h_ab, h_aa = np.gradient(d_alpha, h, edge_order=2)
    off = (h_ab + h_ba) / 2
    half_trace, root = (h_aa + h_bb) / 2, np.sqrt(((h_aa - h_bb) / 2) ** 2 + off ** 2)
    centre = len(axis) // 2
    return {"variance": float(loss.var()), "range": float(loss.max() - loss.min()),
            "centre_loss": float(loss[centre, centre]),
            "lipschitz": float(np.sqrt(d_alpha ** 2 + d_beta ** 2).max()),
            "beta": float(np.maximum(np.abs(half_trace + root), np.abs(half_trace - root)).max())}


def collect(cfg: Config, results: dict) -> dict:
    """The surfaces' measures, accuracies and curves of every network, one value per seed."""
    return {"measures": {n: {k: [r["measures"][k] for r in rs] for k in rs[0]["measures"]} for n, rs in results.items()},
            "test_accuracy": {n: [r["test_accuracy"] for r in rs] for n, rs in results.items()},
            "final_train_loss": {n: [float(np.mean(r["train_loss"][-20:])) for r in rs] for n, rs in results.items()},
            "surfaces": {n: [r["surface"] for r in rs] for n, rs in results.items()},
            "curves": {n: [{"interpolation": r["interpolation"], "along_d1": r["along_d1"]} for r in rs]
                       for n, rs in results.items()}}


def _landscape(d: dict) -> landscape.Landscape:
    return landscape.Landscape(np.empty((0, 2)), np.asarray(d["loss"]), np.asarray(d["accuracy"]),
                               tuple(np.asarray(a) for a in d["axes"]), d["mode"], d["samples"], d["batch_size"])


# -- claims -----------------------------------------------------------------------------------------------


def _setting(cfg: dict) -> str:
    return (f"MLP 784-{'-'.join([str(cfg['width'])] * cfg['hidden_layers'])}-10 with ReLU, with and without BatchNorm1d after each "
            f"hidden linear layer, on MNIST ({cfg['train_size']} training images; seed 001: LeNet and VGG-16 on "
            f"CIFAR-10), Adam lr {cfg['lr']:g} batch {cfg['batch_size']} for {cfg['epochs']} epochs; loss surface "
            f"at the final point on a {cfg['grid']} x {cfg['grid']} grid of [-{cfg['extent']:g}, {cfg['extent']:g}]^2 "
            f"along two filter-normalized directions, eval mode, {cfg['surface_samples']} training images; "
            f"{cfg['seeds']} seeds from {cfg['seed']}")


claims = C.Claims()
SURFACE_MEASURES = {  # claim id: (measure, the document's words, the measure in the rule's words)
    "LAND-VARIANCE": ("variance", "the variance of the loss landscape with BatchNorm is smaller than that without "
                      "BatchNorm", "variance of the loss over the grid"),
    "LAND-LIPSCHITZ": ("lipschitz", "Batch Normalization flattens the loss landscape and improves the Lipschitzness",
                       "largest gradient norm |grad L| over the grid (central differences), the slice's Lipschitz "
                       "constant"),
    "LAND-BETA": ("beta", "Batch Normalization improves the fluctuation of the loss landscape ... improves the "
                  "beta-smoothness", "largest |eigenvalue| of the slice's 2 x 2 Hessian over the grid (central "
                  "differences), the slice's beta"),
}


@claims.rule(*SURFACE_MEASURES)
def smoother_surface(metrics):
    """Each measure of the loss surface smaller with batch norm (seed 001 reads them off Figure 2)."""
    out = []
    for cid, (measure, text, what) in SURFACE_MEASURES.items():
        bn, plain = metrics["measures"]["bn"][measure], metrics["measures"]["plain"][measure]
        e = {**C.smaller(bn, plain, ("bn", "plain")), "bn_spread": C.spread(bn), "plain_spread": C.spread(plain)}
        out.append(C.claim(cid, DOCUMENT, "sec. 3, Figure 2", text, _setting(metrics["config"]), e,
                           C.smaller_rule(what + " of the loss surface"), C.decide_smaller, test=C.SMALLER_TEST,
                           margin=C.margin(C.SMALLER_FACTOR, "factor (for 'not smaller')")))
    return out


# -- figures and summary ----------------------------------------------------------------------------------


def figures(metrics: dict, folder) -> dict:
    first = {n: _landscape(metrics["surfaces"][n][0]) for n in NETWORKS}
    title = (f"seed {metrics['seeds'][0]}, filter-normalized directions, {metrics['config']['surface_samples']} "
             "training images, eval mode")
    return {"surface_contour.png": lambda p: landscape.plot_surfaces(first, p, title=title),
            "surface_contour_log.png": lambda p: landscape.plot_surfaces(first, p, log=True, title=title),
            "surface_3d_log.png": lambda p: landscape.plot_surfaces(first, p, kind="3d", log=True, title=title),
            "curves.png": lambda p: _curves_figure(metrics, p),
            "measures.png": lambda p: _measures_figure(metrics, p)}


def _curves_figure(metrics, path):
    plt = plotting.plt
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), constrained_layout=True)
    for i, network in enumerate(NETWORKS):
        for j, c in enumerate(metrics["curves"][network]):
            kw = {"color": f"C{i}", "alpha": 1.0 if j == 0 else 0.35, "label": network if j == 0 else None}
            axes[0].plot(c["interpolation"]["axes"][0], c["interpolation"]["loss"], **kw)
            axes[1].plot(c["along_d1"]["axes"][0], c["along_d1"]["loss"], **kw)
    axes[0].set(xlabel="alpha: (1 - alpha) theta_0 + alpha theta*", ylabel="training loss", yscale="log",
                title="from the initial to the final point")
    axes[1].set(xlabel="alpha: theta* + alpha d1", ylabel="training loss", yscale="log",
                title="along a filter-normalized direction")
    for ax in axes:
        ax.grid(True, alpha=0.3)
        ax.legend()
    fig.suptitle(f"every seed ({len(metrics['seeds'])}; the first drawn solid)")
    plotting.save_figure(fig, path)


def _measures_figure(metrics, path):
    plt = plotting.plt
    names = ("variance", "lipschitz", "beta")
    fig, axes = plt.subplots(1, len(names), figsize=(4 * len(names), 3.6), constrained_layout=True)
    for ax, name in zip(axes, names):
        for i, network in enumerate(NETWORKS):
            values = metrics["measures"][network][name]
            ax.scatter(np.full(len(values), i), values, color=f"C{i}")
        ax.set(xticks=range(len(NETWORKS)), xticklabels=NETWORKS, yscale="log", title=name, xlim=(-0.5, 1.5))
        ax.grid(True, alpha=0.3)
    fig.suptitle("measures of the loss surface, one point per seed")
    plotting.save_figure(fig, path)


def summary(metrics: dict) -> str:
    lines = ["loss surface measures, mean (min .. max) over seeds:"]
    for name in ("variance", "range", "lipschitz", "beta", "centre_loss"):
        cells = []
        for network in NETWORKS:
            s = C.spread(metrics["measures"][network][name])
            cells.append(f"{network} {s['mean']:.4g} ({s['min']:.3g} .. {s['max']:.3g})")
        lines.append(f"  {name:<12} " + "   ".join(cells))
    for network in NETWORKS:
        s = C.spread(metrics["test_accuracy"][network])
        lines.append(f"  test accuracy {network}: {100 * s['mean']:.2f}% (+- {100 * s['std']:.2f})")
    return "\n".join(lines)


def headline(metrics: dict) -> dict:
    return {f"{n}_{k}_mean": float(np.mean(v)) for n, m in metrics["measures"].items() for k, v in m.items()}


if __name__ == "__main__":
    experiment.main(__name__)

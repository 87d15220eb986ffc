"""Loss landscapes: the loss and accuracy of a network on slices through its parameter space.

A slice is a set of points theta + sum_k c_k d_k around the parameters theta:

    line(net, d, alphas, x, y)               theta + alpha d               (1-D)
    interpolation(net, start, end, alphas)   start + alpha (end - start)   (1-D, alpha 0 to 1 joins them)
    surface(net, d1, d2, alphas, betas)      theta + alpha d1 + beta d2    (2-D grid)

Directions are lists of arrays in the order of ``net.parameters()``.
Random Gaussian directions are compared at a network's own scale by
filter normalization (Li et al. 2018, "Visualizing the loss landscape of
neural nets", sec. 4): each output neuron's row of a weight's direction is
rescaled to the norm of the same row of the weight,

    d_i <- d_i ||theta_i|| / ||d_i||,

so that a network with scale-invariant layers (batch norm) and one without
are looked at through steps of the same relative size. 1-D parameters
(biases, gamma, beta) get a zero direction, or with ``ignore_1d=False`` the
parameter itself (Li et al.'s two choices).

The loss is evaluated in eval mode by default (batch norm with its running
statistics); ``mode="train"`` uses each batch's statistics over consecutive
batches of ``batch_size`` samples (the running statistics are left as they
were). For a Sequential that starts with a Linear layer, that layer's part
of every point is a combination of three products computed once,
x W^T + alpha x D1^T + beta x D2^T: on MNIST inputs that is most of the work.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from . import functional as F
from .autograd import no_grad
from .nn.layers import Linear
from .nn.containers import Sequential
from .nn.module import Module, running_stats_kept
from .random import resolve
from .tensor import Tensor, _wrap


@dataclasses.dataclass
class Landscape:
    """Loss and accuracy at the points of a slice.

    ``coefficients`` is (points, k): row p holds the c_k of point p; ``loss`` and ``accuracy`` have
    ``shape`` (the grid's, (len(betas), len(alphas)) for a surface; (points,) for a line)."""

    coefficients: np.ndarray
    loss: np.ndarray
    accuracy: np.ndarray
    axes: tuple
    mode: str
    samples: int
    batch_size: int

    def to_dict(self) -> dict:
        return {"axes": [np.asarray(a).tolist() for a in self.axes], "loss": np.asarray(self.loss).tolist(),
                "accuracy": np.asarray(self.accuracy).tolist(), "mode": self.mode, "samples": self.samples,
                "batch_size": self.batch_size}


def parameters_of(module: Module) -> list:
    """Copies of the parameters' arrays, in the order of ``module.parameters()``."""
    return [p._data.copy() for p in module.parameters()]


def random_direction(module: Module, generator=None) -> list:
    """A standard Gaussian array shaped like each parameter, drawn on the host from ``generator``."""
    rng = resolve(generator)
    return [p.xp.asarray(rng.standard_normal(p.shape).astype(p.dtype)) for p in module.parameters()]


def filter_normalized_direction(module: Module, generator=None, ignore_1d: bool = True) -> list:
    """A random Gaussian direction, filter-normalized to ``module``'s parameters (Li et al. 2018):
    row i of a weight's direction gets the norm of the weight's row i; a 1-D parameter's direction
    is 0 (``ignore_1d``) or the parameter itself."""
    return normalize_direction(random_direction(module, generator), module, ignore_1d)


def normalize_direction(direction: list, module: Module, ignore_1d: bool = True) -> list:
    """``direction`` filter-normalized to ``module``'s parameters (see filter_normalized_direction)."""
    params = list(module.parameters())
    _check_direction(direction, params)
    out = []
    for d, p in zip(direction, params):
        w = p._data
        if w.ndim <= 1:
            out.append(p.xp.zeros_like(w) if ignore_1d else w.copy())
            continue
        xp = p.xp
        rows_w = xp.sqrt((w.reshape(w.shape[0], -1) ** 2).sum(axis=1))
        rows_d = xp.sqrt((d.reshape(d.shape[0], -1) ** 2).sum(axis=1))
        scale = rows_w / xp.where(rows_d > 0, rows_d, 1)
        out.append((d.reshape(d.shape[0], -1) * scale[:, None]).reshape(d.shape).astype(w.dtype))
    return out


def _check_direction(direction, params):
    if len(direction) != len(params):
        raise ValueError(f"a direction needs one array per parameter: got {len(direction)} for {len(params)}")
    for i, (d, p) in enumerate(zip(direction, params)):
        if tuple(d.shape) != tuple(p.shape):
            raise ValueError(f"direction entry {i} has shape {tuple(d.shape)}, parameter {i} {tuple(p.shape)}")


def line(module, direction, alphas, x, y, **options) -> Landscape:
    """The loss and accuracy at theta + alpha d for each alpha (theta: the module's parameters)."""
    alphas = np.asarray(alphas, dtype=float)
    return evaluate_at(module, [direction], alphas[:, None], x, y, axes=(alphas,), **options)


def interpolation(module, start, end, alphas, x, y, **options) -> Landscape:
    """The loss and accuracy at start + alpha (end - start), parameter lists ``start`` and ``end``
    (alpha in [0, 1] joins them; outside, the line goes on)."""
    alphas = np.asarray(alphas, dtype=float)
    direction = [e - s for s, e in zip(start, end)]
    return evaluate_at(module, [direction], alphas[:, None], x, y, base=start, axes=(alphas,), **options)


def surface(module, d1, d2, alphas, betas, x, y, **options) -> Landscape:
    """The loss and accuracy on the grid theta + alpha d1 + beta d2; arrays of shape
    (len(betas), len(alphas)) (rows: beta, columns: alpha, as a contour plot reads them)."""
    alphas, betas = np.asarray(alphas, dtype=float), np.asarray(betas, dtype=float)
    grid = np.stack(np.meshgrid(alphas, betas), axis=-1).reshape(-1, 2)
    out = evaluate_at(module, [d1, d2], grid, x, y, axes=(alphas, betas), **options)
    out.loss = out.loss.reshape(len(betas), len(alphas))
    out.accuracy = out.accuracy.reshape(len(betas), len(alphas))
    return out


def evaluate_at(module, directions, coefficients, x, y, *, base=None, mode: str = "eval", batch_size: int = 10_000,
                loss_fn=F.cross_entropy, axes=(), progress=None) -> Landscape:
    """Loss (mean over the samples) and accuracy at base + sum_k coefficients[p, k] directions[k]
    for every row p; ``base`` defaults to the module's parameters, which are restored afterwards.

    ``mode`` "eval" or "train" (batch statistics of consecutive batches of ``batch_size``);
    ``progress`` is called with the number of points done."""
    if mode not in ("eval", "train"):
        raise ValueError(f"mode must be 'eval' or 'train', got {mode!r}")
    if not isinstance(x, Tensor) or not isinstance(y, Tensor) or len(x) != len(y) or len(x) == 0:
        raise ValueError("x and y must be Tensors holding the same number (> 0) of samples")
    if batch_size < 1 or (mode == "train" and batch_size < 2):
        raise ValueError(f"batch_size must be >= 1 (>= 2 in train mode), got {batch_size}")
    if mode == "train" and len(x) % batch_size == 1:
        raise ValueError(f"{len(x)} samples in batches of {batch_size} leave a last batch of one sample, whose batch "
                         "statistics are undefined in train mode; choose another batch_size")
    params = list(module.parameters())
    for d in directions:
        _check_direction(d, params)
    coefficients = np.asarray(coefficients, dtype=float).reshape(-1, len(directions))
    theta = parameters_of(module)
    base = theta if base is None else base
    _check_direction(base, params)
    was_training = module.training
    module.train(mode == "train")
    losses, accuracies = np.empty(len(coefficients)), np.empty(len(coefficients))
    batches = [(start, min(start + batch_size, len(x))) for start in range(0, len(x), batch_size)]
    try:
        with no_grad(), running_stats_kept(module):
            first = _FirstLinear(module, directions, base, x, batches)
            for p, row in enumerate(coefficients):
                c = [float(v) for v in row]  # Python floats: a NumPy float64 would promote float32 arrays
                for param, b, *ds in zip(params, base, *directions):
                    param._data[...] = b + sum(ck * dk for ck, dk in zip(c, ds))
                total_loss = correct = 0.0
                for i, (lo, hi) in enumerate(batches):
                    logits = first.forward(i, c, x[lo:hi])
                    total_loss += float(loss_fn(logits, y[lo:hi], reduction="sum").item())
                    if y.dtype.kind in "iu":
                        correct += float((logits.argmax(1) == y[lo:hi]).sum().item())
                losses[p], accuracies[p] = total_loss / len(x), correct / len(x)
                if progress is not None:
                    progress(p + 1)
    finally:
        for param, t in zip(params, theta):
            param._data[...] = t
        module.train(was_training)
    return Landscape(coefficients, losses, accuracies, tuple(axes), mode, len(x), batch_size)


class _FirstLinear:
    """The first Linear layer of a Sequential evaluated as x W^T + sum_k c_k x D_k^T (+ biases), the
    products computed once per batch; other modules: the whole network at each point."""

    def __init__(self, module, directions, base, x, batches):
        self.module, self.rest, self.parts = module, None, None
        children = list(module) if isinstance(module, Sequential) else []
        if not children or type(children[0]) is not Linear or "forward" in vars(children[0]) \
                or children[0]._forward_hooks:  # exactly a Linear running Linear.forward
            return
        layer = children[0]
        index = {id(p): i for i, p in enumerate(module.parameters())}
        w, b = index[id(layer.weight)], index.get(id(layer.bias)) if layer.bias is not None else None

        def product(arrays, lo, hi):
            out = x[lo:hi]._data @ arrays[w].T
            return out + arrays[b] if b is not None else out

        self.parts = [[product(a, lo, hi) for a in [base, *directions]] for lo, hi in batches]
        self.rest = Sequential(*children[1:])
        self.rest.train(module.training)

    def forward(self, batch: int, coefficients, x_batch):
        if self.parts is None:
            return self.module(x_batch)
        first, *by_direction = self.parts[batch]
        h = first.copy()
        for c, part in zip(coefficients, by_direction):
            h += c * part
        return self.rest(_wrap(h))


# -- figures ----------------------------------------------------------------------------------------


def plot_lines(curves: dict, path, *, xlabel="alpha", title="", log: bool = False, accuracy: dict | None = None):
    """1-D slices: ``curves`` maps a label to a Landscape from line() or interpolation()."""
    from .plotting import plt, save_figure

    panels = 2 if accuracy or any(np.any(c.accuracy) for c in curves.values()) else 1
    fig, axes = plt.subplots(1, panels, figsize=(5.5 * panels, 4), squeeze=False, constrained_layout=True)
    for label, c in curves.items():
        axes[0][0].plot(c.axes[0], c.loss, label=label)
        if panels == 2:
            axes[0][1].plot(c.axes[0], 100 * np.asarray(c.accuracy), label=label)
    axes[0][0].set(xlabel=xlabel, ylabel="loss", title=title, yscale="log" if log else "linear")
    if panels == 2:
        axes[0][1].set(xlabel=xlabel, ylabel="accuracy (%)")
    for ax in axes[0]:
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    save_figure(fig, path)


def plot_surfaces(surfaces: dict, path, *, kind: str = "contour", log: bool = False, levels: int = 30,
                  title: str = ""):
    """2-D slices side by side, one panel per label: contour lines, or ``kind="3d"`` surfaces; ``log``
    plots log10 of the loss (seed 001 does, as the boundary values dwarf the centre)."""
    from .plotting import plt, save_figure

    if kind not in ("contour", "3d"):
        raise ValueError(f"kind must be 'contour' or '3d', got {kind!r}")
    n = len(surfaces)
    fig = plt.figure(figsize=(6.0 * n, 4.6), constrained_layout=True)
    for i, (label, s) in enumerate(surfaces.items()):
        a, b = np.meshgrid(*s.axes)
        z = np.log10(np.maximum(s.loss, 1e-12)) if log else s.loss
        zlabel = "log10 loss" if log else "loss"
        if kind == "contour":
            ax = fig.add_subplot(1, n, i + 1)
            filled = ax.contourf(a, b, z, levels=levels, cmap="viridis")
            ax.contour(a, b, z, levels=levels, colors="k", linewidths=0.3)
            fig.colorbar(filled, ax=ax, label=zlabel)
            ax.plot([0], [0], "r+", ms=10)
            ax.set(xlabel="alpha (d1)", ylabel="beta (d2)", title=label, aspect="equal")
        else:
            ax = fig.add_subplot(1, n, i + 1, projection="3d")
            ax.plot_surface(a, b, z, cmap="viridis", linewidth=0, antialiased=True)
            ax.set(xlabel="alpha", ylabel="beta", zlabel=zlabel, title=label)
    if title:
        fig.suptitle(title)
    save_figure(fig, path)

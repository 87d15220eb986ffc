"""Figure helpers the experiments share (matplotlib, written to PNG without a screen)."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .fileio import write_atomic  # noqa: E402


def save_figure(fig, path) -> None:
    """Write ``fig`` as PNG, atomically, and close it."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)
    write_atomic(path, buffer.getvalue())


def panel_grid(n: int, columns: int = 4, size=(3.6, 2.9)):
    """A figure of ``n`` panels, ``columns`` to a row, each ``size`` inches: (figure, the n axes);
    the grid's unused places are hidden."""
    cols = min(n, columns)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(size[0] * cols, size[1] * rows), squeeze=False, layout="constrained")
    for ax in axes.ravel()[n:]:
        ax.set_visible(False)
    return fig, axes.ravel()[:n]


def layer_panels(series: dict, ylabel: str, title: str, path, marks: dict | None = None) -> None:
    """One panel per network, side by side: a line per layer (step on x, log-scale y).

    ``series`` maps a panel title to an array (steps, layers), NaN where not
    recorded; ``marks`` maps a panel title to a step to mark (divergence).
    """
    fig, axes = plt.subplots(1, len(series), figsize=(5.2 * len(series), 4), sharey=True, squeeze=False)
    for ax, (name, values) in zip(axes[0], series.items()):
        values = np.asarray(values, dtype=float)
        layers = values.shape[1] if values.ndim == 2 else 0
        colors = plt.cm.viridis(np.linspace(0, 0.95, max(layers, 1)))
        for layer in range(layers):
            ax.plot(np.arange(len(values)), values[:, layer], color=colors[layer], lw=1.2, label=f"layer {layer + 1}")
        step = (marks or {}).get(name)
        if step is not None:
            ax.axvline(step, color="crimson", ls="--", lw=1, label=f"diverged (step {step})")
        ax.set_yscale("log")
        ax.set_title(name)
        ax.set_xlabel("step")
        ax.grid(True, which="major", alpha=0.3)
    axes[0][0].set_ylabel(ylabel)
    axes[0][-1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5))
    fig.suptitle(title)
    save_figure(fig, path)


def curves(panels: dict, title: str, path, log=()) -> None:
    """Panels of named curves: ``{"loss": {"plain": ys, "BN": ys}, ...}``, x = index or (x, y) pairs;
    the panels named in ``log`` get a log-scale y axis."""
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 4), squeeze=False)
    for ax, (ylabel, lines) in zip(axes[0], panels.items()):
        for label, ys in lines.items():
            ys = np.asarray(ys, dtype=float)
            if ys.ndim == 2:
                ax.plot(ys[:, 0], ys[:, 1], label=label)
            else:
                ax.plot(np.arange(len(ys)), ys, label=label)
        if ylabel in log:
            ax.set_yscale("log")
        ax.set_xlabel("step")
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    save_figure(fig, path)

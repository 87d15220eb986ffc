"""``python -m minibn.tour``: a short walk through batch norm's forward and backward, with numbers.

A batch of 4 samples and 3 channels goes through batch norm; the tour prints the forward
numbers, the closed-form backward computed by hand next to minibn's gradient, what an
all-ones upstream gradient hides, the same layer folded into a plain affine map, and the
second derivative. Every number is computed as the tour runs, and every sentence that states
a fact about them is a :class:`Statement` whose truth is computed from them (the tests check
that all hold). Figures go to ``--out`` (default ``minibn_tour/``).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import numpy as np

import minibn as mb
import minibn.functional as F
from minibn import nn, viz

EPS = 1e-5


@dataclasses.dataclass
class Statement:
    """A sentence about the tour's numbers and whether they bear it out."""

    text: str
    holds: bool


def _fmt(a) -> str:
    return np.array2string(np.asarray(a, dtype=float), precision=4, suppress_small=False, floatmode="fixed",
                           max_line_width=100)


def run(out="minibn_tour", seed: int = 0, show=print) -> dict:
    """Run the tour, printing through ``show``; returns its numbers, statements and figure paths."""
    rng = np.random.default_rng(seed)
    x0 = rng.standard_normal((4, 3)) * [1.0, 2.0, 0.5] + [0.5, -1.0, 3.0]
    gamma0, beta0 = np.array([1.5, 0.8, 1.2]), np.array([0.1, -0.2, 0.3])
    dy0 = rng.standard_normal((4, 3))
    statements, numbers = [], {}

    def state(text, holds):
        statements.append(Statement(text, bool(holds)))
        show(f"  {'[holds]' if holds else '[FAILS]'} {text}")

    show("1. Forward: y = gamma (x - mu) / sigma + beta per channel, sigma = sqrt(var + eps), eps = 1e-5\n")
    x = mb.tensor(x0, requires_grad=True)
    gamma, beta = mb.tensor(gamma0, requires_grad=True), mb.tensor(beta0, requires_grad=True)
    y = F.batch_norm(x, None, None, gamma, beta, training=True, eps=EPS)
    mu, var = x0.mean(0), x0.var(0)
    sigma = np.sqrt(var + EPS)
    xhat = (x0 - mu) / sigma
    show(f"  x (4 samples x 3 channels) =\n{_fmt(x0)}")
    show(f"  mu = {_fmt(mu)}   var (biased) = {_fmt(var)}   sigma = {_fmt(sigma)}")
    show(f"  xhat = (x - mu) / sigma =\n{_fmt(xhat)}")
    show(f"  y = gamma xhat + beta, gamma = {_fmt(gamma0)}, beta = {_fmt(beta0)} =\n{_fmt(y.detach().numpy())}")
    forward_err = float(np.abs(y.detach().numpy() - (gamma0 * xhat + beta0)).max())
    state(f"minibn's y equals gamma xhat + beta computed by hand (largest difference {forward_err:.1e})",
          forward_err < 1e-12)
    state(f"each channel of xhat has mean 0 (largest |mean| {np.abs(xhat.mean(0)).max():.1e}) and variance "
          f"var / (var + eps) (largest difference {np.abs(xhat.var(0) - var / (var + EPS)).max():.1e})",
          np.abs(xhat.mean(0)).max() < 1e-12 and np.abs(xhat.var(0) - var / (var + EPS)).max() < 1e-12)

    show("\n2. Backward by hand (seed 000 sec. 3.1), for a random upstream gradient dy:\n"
         "     dx = (gamma / sigma) (dy - mean(dy) - xhat mean(dy xhat)),  dgamma = sum dy xhat,  dbeta = sum dy\n")
    y.backward(mb.tensor(dy0))
    by_hand = gamma0 / sigma * (dy0 - dy0.mean(0) - xhat * (dy0 * xhat).mean(0))
    show(f"  dy =\n{_fmt(dy0)}")
    show(f"  dx by hand =\n{_fmt(by_hand)}")
    show(f"  dx from minibn's backward =\n{_fmt(x.grad.numpy())}")
    dx_err = float(np.abs(x.grad.numpy() - by_hand).max())
    dg_err = float(np.abs(gamma.grad.numpy() - (dy0 * xhat).sum(0)).max())
    db_err = float(np.abs(beta.grad.numpy() - dy0.sum(0)).max())
    state(f"the closed form and minibn agree: dx to {dx_err:.1e}, dgamma to {dg_err:.1e}, dbeta to {db_err:.1e}",
          max(dx_err, dg_err, db_err) < 1e-12)
    sums = np.abs(by_hand.sum(0)).max()
    state(f"dx sums to 0 over the batch in every channel (largest |sum| {sums:.1e}): shifting a whole channel "
          "does not change y", sums < 1e-12)
    numbers.update(dx=by_hand, dx_minibn=x.grad.numpy().copy(), dx_error=dx_err)

    show("\n3. What an all-ones upstream gradient hides\n")
    x.grad = None
    y1 = F.batch_norm(x, None, None, gamma, beta, training=True, eps=EPS)
    (dx_ones,) = mb.grad(y1, [x], mb.ones_like(y1))
    show(f"  dy = ones gives dx =\n{_fmt(dx_ones.numpy())}")
    ones_max = float(np.abs(dx_ones.numpy()).max())
    state(f"with dy = 1, dx = 0 (largest |dx| {ones_max:.1e}): mean(dy) = 1 and mean(dy xhat) = mean(xhat) = 0, so "
          "the bracket vanishes; a gradient check with all-ones upstream gradients cannot see an error in dx that "
          "also vanishes for a constant dy (a missing xhat term, for one)", ones_max < 1e-12)
    numbers["dx_ones_max"] = ones_max

    show("\n4. Linear -> BatchNorm1d folded into one plain Linear layer: on a fixed batch batch norm is the\n"
         "   affine map y = (gamma / sigma) h + (beta - gamma mu / sigma) of its input h (nn.fold_batchnorm)\n")
    net = nn.Sequential(nn.Linear(3, 3, dtype="float64", generator=mb.Generator(seed)), nn.BatchNorm1d(3, dtype="float64"))
    folded = nn.fold_batchnorm(net, mb.tensor(x0))
    xa, xb = mb.tensor(x0, requires_grad=True), mb.tensor(x0, requires_grad=True)
    ya, yb = net(xa), folded(xb)
    out_err = float(np.abs(ya.detach().numpy() - yb.detach().numpy()).max())
    ya.backward(mb.tensor(dy0))
    yb.backward(mb.tensor(dy0))
    grad_gap = float(np.abs(xa.grad.numpy() - xb.grad.numpy()).max())
    show(f"  dx through Linear -> BatchNorm1d =\n{_fmt(xa.grad.numpy())}")
    show(f"  dx through the folded Linear =\n{_fmt(xb.grad.numpy())}")
    state(f"the folded network gives the same outputs on this batch (largest difference {out_err:.1e})", out_err < 1e-12)
    state(f"but not the same gradient (largest difference {grad_gap:.3f}): batch norm also differentiates its "
          "statistics mu and sigma, which the folded map holds fixed", grad_gap > 1e-3)
    numbers.update(fold_output_error=out_err, fold_gradient_gap=grad_gap)

    show("\n5. The second derivative: batch norm is not linear in x, so even L = sum(w * y) has a Hessian\n")
    w = mb.tensor(rng.standard_normal((4, 3)))
    v = rng.standard_normal((4, 3))

    def gradient_at(a):
        t = mb.tensor(a, requires_grad=True)
        (g,) = mb.grad((F.batch_norm(t, None, None, gamma.detach(), beta.detach(), training=True, eps=EPS) * w).sum(),
                       [t])
        return g.numpy()

    x2 = mb.tensor(x0, requires_grad=True)
    (g,) = mb.grad((F.batch_norm(x2, None, None, gamma.detach(), beta.detach(), training=True, eps=EPS) * w).sum(),
                   [x2], create_graph=True)
    (hv,) = mb.grad((g * mb.tensor(v)).sum(), [x2])
    h = 1e-5
    numeric = (gradient_at(x0 + h * v) - gradient_at(x0 - h * v)) / (2 * h)
    hv_err = float(np.abs(hv.numpy() - numeric).max() / np.abs(numeric).max())
    show(f"  H v by double backward =\n{_fmt(hv.numpy())}")
    show(f"  H v by central differences of the gradient =\n{_fmt(numeric)}")
    state(f"double backward matches finite differences (relative difference {hv_err:.1e}) and H v is not 0 "
          f"(largest |H v| {np.abs(numeric).max():.3f})", hv_err < 1e-6 and np.abs(numeric).max() > 1e-3)
    numbers["hvp_error"] = hv_err

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    figures = _figures(out, x0, gamma0, beta0, dx_ones.numpy(), numbers)
    show(f"\nFigures: {', '.join(str(p) for p in figures)}")
    holds = all(s.holds for s in statements)
    show(f"\n{sum(s.holds for s in statements)} of {len(statements)} statements hold.")
    return {"numbers": numbers, "statements": statements, "figures": figures, "ok": holds}


def _figures(out, x0, gamma0, beta0, dx_ones, numbers) -> list:
    """The graph of a batch-norm loss (mb.viz.draw), and dx by hand, by minibn and for dy = ones."""
    from .plotting import plt, save_figure

    x, gamma, beta = (mb.tensor(a, requires_grad=True) for a in (x0, gamma0, beta0))
    loss = (F.batch_norm(x, None, None, gamma, beta, training=True, eps=EPS)
            * mb.tensor(np.arange(12.0).reshape(4, 3) / 10)).sum()
    drawing = viz.draw(loss, out / "tour_graph", names={x: "x", gamma: "gamma", beta: "beta"})
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), constrained_layout=True)
    k = np.arange(12)
    axes[0].bar(k - 0.2, numbers["dx"].ravel(), 0.4, label="by hand")
    axes[0].bar(k + 0.2, numbers["dx_minibn"].ravel(), 0.4, label="minibn")
    axes[0].set(title="dx for a random dy: by hand and minibn", xlabel="element of x (row-major)")
    axes[1].bar(k, dx_ones.ravel(), 0.6, color="C3")
    axes[1].set(title=f"dx for dy = ones: all 0 (largest {np.abs(dx_ones).max():.0e})", xlabel="element of x",
                ylim=(-1, 1))
    for ax in axes:
        ax.grid(True, alpha=0.3)
    axes[0].legend()
    save_figure(fig, out / "tour_gradients.png")
    return [*drawing.paths, out / "tour_gradients.png"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m minibn.tour", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="minibn_tour", help="folder for the figures (default: minibn_tour)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the batch and the gradients")
    args = parser.parse_args(argv)
    return 0 if run(args.out, args.seed)["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())

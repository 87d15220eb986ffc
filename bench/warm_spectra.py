"""Spectra along training, cold and warm: what starting each top-k Hessian spectrum from the previous
one's eigenvectors saves, and whether it finds the same eigenvalues.

    python bench/warm_spectra.py [--variant bn] [--tol 1e-2] [--every 100] [--epochs 200] [--json PATH]

Trains the normalizations experiment's network (``--variant``, float32, seed 0) by the author's
protocol (SGD lr 0.1, batch 64 in one fixed order, lr x 0.1 after 20 epochs without a new best
validation accuracy, stop once lr < 1e-3, at most ``--epochs``) and every ``--every`` steps, and
after the last, computes the top-10 spectrum (largest in magnitude, as the experiment) of the
training-mode loss on the 10 000 training images twice on the same operator: cold (Lanczos from a
random vector) and warm (from the previous warm spectrum's eigenvectors, so that errors could
accumulate), both to ``--tol``. Where the two differ by more than tol times the top eigenvalue, a
spectrum to tol 1e-6 (k = 12) says which was right. Prints a table per learning-rate phase:
products (Hessian-vector), seconds, the largest difference and how many times each was wrong.
Run it with one BLAS thread for the experiment's timings (OPENBLAS_NUM_THREADS=1).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import minibn as mb  # noqa: E402
import minibn.functional as F  # noqa: E402
from experiments import normalizations as N  # noqa: E402
from minibn import hessian  # noqa: E402
from minibn.experiment.training import evaluate, lr_below, running_stats_kept  # noqa: E402

K = 10


def solve(op, tol, which, k=K, **kw):
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", hessian.ConvergenceWarning)
        s = hessian.top_eigenvalues(op, None, k=k, which=which, tol=tol, seed=0, **kw)
    return s, time.perf_counter() - started


def snapshot(net, x, y, tol, which, previous):
    """Cold and warm spectra of the training-mode loss at ``net``'s point: a row, and the warm spectrum."""
    net.train()
    with running_stats_kept(net):
        op = hessian.HessianOperator(lambda: F.cross_entropy(net(x), y), list(net.parameters()))
    cold, seconds = solve(op, tol, which)
    row = {"cold": {"eigenvalues": cold.eigenvalues.tolist(), "hvps": cold.hvps, "seconds": seconds}}
    if previous is None:
        return row, cold
    warm, seconds = solve(op, tol, which, start=previous.eigenvectors)
    row["warm"] = {"eigenvalues": warm.eigenvalues.tolist(), "hvps": warm.hvps, "seconds": seconds}
    a, b = cold.eigenvalues, warm.eigenvalues
    row["difference_over_top"] = float(np.max(np.abs(a - b)) / abs(a[0]))
    if row["difference_over_top"] > tol:
        reference, _ = solve(op, 1e-6, which, k=K + 2, max_iter=400)
        r = reference.eigenvalues[:K]
        row["cold_wrong"] = bool(np.max(np.abs(a - r)) / abs(r[0]) > tol)
        row["warm_wrong"] = bool(np.max(np.abs(b - r)) / abs(r[0]) > tol)
    return row, warm


def train(cfg, every, observe, seed=0):
    """The experiment's training of one seed (its ``train``), calling ``observe(step, lr, net)`` before
    the update of every step that is a multiple of ``every`` and after the last."""
    mb.manual_seed(seed)
    x_np, y_np, xt_np, yt_np = N.load_data(cfg)
    x, y, xt, yt = (mb.tensor(a) for a in (x_np, y_np, xt_np, yt_np))
    net = N.build_network(cfg, cfg.variants[0], seed)
    opt = mb.optim.SGD(net.parameters(), lr=cfg.lr)
    schedule = mb.optim.ReduceLROnPlateau(opt, mode="max", factor=0.1, patience=cfg.patience - 1, threshold=0.0)
    step, curve = 0, []
    for epoch in range(cfg.epochs):
        for idx in N.epoch_batches(cfg, seed, epoch, len(x_np)):
            if step % every == 0:
                observe(step, opt.param_groups[0]["lr"], net)
            net.train()
            loss = F.cross_entropy(net(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
        curve.append(evaluate(net, xt, yt))
        schedule.step(curve[-1])
        if not math.isfinite(float(loss.item())) or lr_below(opt, cfg.lr_floor):
            break
    observe(step, opt.param_groups[0]["lr"], net)
    return {"epochs": len(curve), "steps": step, "best_val_accuracy": max(curve)}


def table(rows) -> list:
    """Per learning-rate phase: products and seconds of each, the largest difference, who was wrong."""
    phases = {}
    for r in rows:
        if "warm" in r:
            phases.setdefault(r["lr"], []).append(r)
    lines = ["| lr | spectra | products cold | products warm | warm / cold | seconds cold | seconds warm | "
             "largest difference / top | cold wrong | warm wrong |", "|" + " --- |" * 10]
    for lr, group in [*sorted(phases.items(), reverse=True), ("all", [r for g in phases.values() for r in g])]:
        cold, warm = (sum(r[w]["hvps"] for r in group) for w in ("cold", "warm"))
        seconds = [sum(r[w]["seconds"] for r in group) for w in ("cold", "warm")]
        lines.append(f"| {lr if lr == 'all' else f'{lr:g}'} | {len(group)} | {cold} | {warm} | {warm / cold:.2f} | "
                     f"{seconds[0]:.0f} | {seconds[1]:.0f} | {max(r['difference_over_top'] for r in group):.1e} | "
                     f"{sum(r.get('cold_wrong', False) for r in group)} | {sum(r.get('warm_wrong', False) for r in group)} |")
    return lines


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--variant", default="bn", choices=N.VARIANTS)
    p.add_argument("--tol", type=float, default=1e-2, help="both solvers' tolerance (default: the author's 1e-2)")
    p.add_argument("--which", default="LM", choices=("LM", "LA"))
    p.add_argument("--every", type=int, default=100, help="steps between spectra (the author's 100)")
    p.add_argument("--epochs", type=int, default=200, help="at most this many epochs (the author's 200)")
    p.add_argument("--json", metavar="PATH", help="every spectrum's numbers")
    args = p.parse_args(argv)
    cfg = N.Config(variants=(args.variant,), epochs=args.epochs, seeds=1, seed=0)
    x_np, y_np, _, _ = N.load_data(cfg)
    x, y = mb.tensor(x_np[:cfg.hessian_images]), mb.tensor(y_np[:cfg.hessian_images])
    rows, previous = [], [None]

    def observe(step, lr, net):
        row, previous[0] = snapshot(net, x, y, args.tol, args.which, previous[0])
        rows.append({"step": step, "lr": lr, **row})
        w = row.get("warm")
        print(f"step {step:6d} lr {lr:.0e} cold {row['cold']['hvps']:3d}"
              + (f" warm {w['hvps']:3d} difference {row['difference_over_top']:.1e}" if w else ""), flush=True)

    started = time.perf_counter()
    training = train(cfg, args.every, observe)
    lines = [f"{args.variant}, tol {args.tol:g}, {args.which}, every {args.every} steps: {training}, "
             f"{time.perf_counter() - started:.0f} s", "", *table(rows)]
    print("\n".join(lines))
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "training": training, "spectra": rows}, indent=1))


if __name__ == "__main__":
    main()

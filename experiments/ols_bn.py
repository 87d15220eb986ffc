"""OLS: gradient descent against batch-norm gradient descent (seed 000 sec. 2; Cai, Li and Shen 2019).

Ordinary least squares on population quantities, H = E[x x^T] = diag(linspace(1, kappa, d)),
g = E[x y] = H u with u a random unit vector. Plain gradient descent (GD) works on w; the
batch-norm reparameterization (BN-GD) on a scale a and a direction w, with the effective
weight v = a w / ||w||_H. Both take their gradients from minibn's autograd on the population
loss, for many random problems at once (one batch of problems, each with its own loss).

    python experiments/ols_bn.py [--quick] [--dims 2,3] [--kappas 10,1000] [--problems 20] ...

For every (d, kappa): the residual ||u - v|| along the iterations, the paths of the unit
direction and of the effective weight, the effective learning rate, the pseudo-condition
number of H* = H - g g^T / (u^T H u), the largest stable GD step (bisection), and a scan of
BN-GD's two learning rates; then the claims of seed 000 sec. 2, decided over the problems'
spread. Writes metrics.json, trajectories.npz and figures.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

import minibn as mb
from minibn import experiment, plotting
from minibn.experiment import ConfigError, at_least, option, positive
from minibn.experiment import claims as C

DOCUMENT = "000"
TRAJECTORIES = "trajectories.npz"  # the arrays the figures draw
NOTES = (
    "GD follows the seed author's code (OLS.ipynb): w <- w + lr (H u - H w), gradient descent on "
    "1/2 (w - u)^T H (w - u) = 1/2 E[(y - x^T w)^2] + const, from w0 / ||w0||_H with lr 2 / (kappa + 1). "
    "The largest stable step is 2 / lambda_max(H) for this 1/2 loss and 1 / lambda_max(H) for "
    "E[(y - x^T w)^2] as the seed's text writes the problem.",
    "BN-GD is gradient descent on 1/2 E[(y - a x^T w / ||w||_H)^2]. As in the author's code, a is updated "
    "first and the step of w uses the new a (--update simultaneous takes both from the same point).",
    "Each problem's u and w0 are random unit vectors drawn from (seed, d, problem index): the same directions "
    "for every kappa, so that the kappas are compared on the same problems. The author ran one problem (seed "
    "2179); here every claim about rates is decided over --problems problems.",
)


@dataclasses.dataclass
class Config(experiment.Config):
    CPU_ONLY = True  # its problems are a few numbers each
    dtype: str = option("float64", "floating-point type of the iterates", choices=("float32", "float64"))
    dims: tuple[int, ...] = option((2, 3), "dimensions d", check=at_least(2))
    kappas: tuple[float, ...] = option((10.0, 1000.0), "condition numbers of H = diag(linspace(1, kappa, d))",
                                       check=at_least(1))
    problems: int = option(20, "random problems (u, w0) per (d, kappa)", check=at_least(1))
    lr_w: float = option(0.01, "BN-GD learning rate of w", check=positive)
    lr_a: float = option(0.01, "BN-GD learning rate of a", check=positive)
    a0: float = option(1.0, "BN-GD's initial a", check=positive)
    update: str = option("sequential", "BN-GD: a first, then w with the new a (the author's code), or both "
                                       "from the same point", choices=("sequential", "simultaneous"))
    tol: float = option(1e-3, "a run has converged when ||u - v|| < tol", check=positive)
    max_iter: int = option(50_000, "iteration cap of each run", check=at_least(1))
    scan_lr_w: tuple[float, ...] = option((1e-2, 1e-1, 1.0, 10.0, 100.0, 1e3, 1e4), "BN-GD scan: lr_w values",
                                          check=positive)
    scan_lr_a: tuple[float, ...] = option((0.25, 0.5, 0.9, 1.0, 1.1), "BN-GD scan: lr_a values", check=positive)
    scan_problems: int = option(5, "problems per (d, kappa) in the scan", check=at_least(1))
    scan_max_iter: int = option(20_000, "iteration cap of the scan", check=at_least(2))
    stability_iters: int = option(2000, "bisection of the largest stable GD step: iterations over which the "
                                        "residual must not grow", check=at_least(10))

    def validate(self):
        if self.scan_problems > self.problems:
            raise ConfigError("scan_problems", f"{self.scan_problems} exceeds --problems {self.problems}")


QUICK = {"problems": 6, "max_iter": 20_000, "scan_lr_w": (0.01, 1.0, 100.0), "scan_lr_a": (0.5, 1.0, 1.1),
         "scan_problems": 2, "scan_max_iter": 3000, "stability_iters": 300}


# -- problems and losses ---------------------------------------------------------------------------


@dataclasses.dataclass
class Problems:
    """A batch of OLS problems: rows of h (H's diagonal), u and w0, with their (d, kappa, index)."""
    h: np.ndarray
    u: np.ndarray
    w0: np.ndarray
    cases: list

    @classmethod
    def make(cls, seed: int, d: int, kappas, count: int, dtype, times: int = 1) -> "Problems":
        """``count`` problems for each kappa (each row ``times`` times): u and w0 from (seed, d, index),
        the same for every kappa."""
        rows = []
        for kappa in kappas:
            for i in range(count):
                rng = np.random.default_rng([seed, d, i])
                u, w0 = rng.standard_normal(d), rng.standard_normal(d)
                rows += [(np.linspace(1.0, kappa, d), u / np.linalg.norm(u), w0 / np.linalg.norm(w0),
                          (d, kappa, i))] * times
        h, u, w0 = (np.array([r[k] for r in rows], dtype=dtype) for k in range(3))
        return cls(h, u, w0, [r[3] for r in rows])

    @property
    def kappa(self) -> np.ndarray:
        return np.array([c[1] for c in self.cases])

    def rows(self, kappa) -> np.ndarray:
        return np.flatnonzero(self.kappa == kappa)


def gd_loss(w, h, u, half: bool = True):
    """Population loss of each problem, summed over the batch: E[(y - x^T w)^2] - E[(y - x^T u)^2]
    = (w - u)^T H (w - u), times 1/2 with ``half`` (the author's update)."""
    loss = (h * (w - u) ** 2).sum()
    return 0.5 * loss if half else loss


def bn_loss(a, w, h, u):
    """1/2 E[(y - a x^T w / ||w||_H)^2] with y = x^T u: 1/2 (a^2 - 2 a w^T H u / ||w||_H + u^T H u)."""
    hw = h * w
    norm = (hw * w).sum(1).sqrt()
    return 0.5 * (a * a - 2 * a * (hw * u).sum(1) / norm + (h * u * u).sum(1)).sum()


def _leaf(x):
    return mb.tensor(x, requires_grad=True)


def gradients(loss, *arrays, wrt):
    """d loss / d arrays[i] for i in ``wrt``, by minibn's autograd; the other arrays are constants."""
    tensors = [_leaf(a) if i in wrt else mb.tensor(a) for i, a in enumerate(arrays)]
    return [g.numpy() for g in mb.grad(loss(*tensors), [tensors[i] for i in wrt])]


# -- the two methods ----------------------------------------------------------------------------------


def run_gd(p: Problems, lr, tol, max_iter, half=True, keep=()):
    """GD from w0 / ||w0||_H. Returns (iterations to converge per problem, -1 if never; residual
    history (iterations, problems); the iterates of the problems in ``keep``)."""
    w = p.w0 / np.sqrt((p.h * p.w0 ** 2).sum(1, keepdims=True))
    lr = np.broadcast_to(np.asarray(lr, dtype=w.dtype), (len(w),))[:, None]
    return _iterate(p, tol, max_iter, keep, w, lambda w: w - lr * gradients(
        lambda w, h, u: gd_loss(w, h, u, half), w, p.h, p.u, wrt=(0,))[0], lambda w: w)


def run_bn(p: Problems, lr_w, lr_a, a0, update, tol, max_iter, keep=()):
    """BN-GD on (a, w) from (a0, w0); like :func:`run_gd`, with v = a w / ||w||_H and also the
    effective learning rate lr_w a w^T H u / ||w||_H^3 of the kept problems."""
    n = len(p.w0)
    lr_w = np.broadcast_to(np.asarray(lr_w, dtype=p.w0.dtype), (n,))
    lr_a = np.broadcast_to(np.asarray(lr_a, dtype=p.w0.dtype), (n,))
    state = np.concatenate([np.full((n, 1), a0, dtype=p.w0.dtype), p.w0], axis=1)  # columns: a, w

    def step(s):
        a, w = s[:, 0], s[:, 1:]
        if update == "sequential":
            (ga,) = gradients(bn_loss, a, w, p.h, p.u, wrt=(0,))
            a_new = a - lr_a * ga
            (gw,) = gradients(bn_loss, a_new, w, p.h, p.u, wrt=(1,))
        else:
            ga, gw = gradients(bn_loss, a, w, p.h, p.u, wrt=(0, 1))
            a_new = a - lr_a * ga
        return np.concatenate([a_new[:, None], w - lr_w[:, None] * gw], axis=1)

    def effective(s):
        a, w = s[:, :1], s[:, 1:]
        return a * w / np.sqrt((p.h * w ** 2).sum(1, keepdims=True))

    return _iterate(p, tol, max_iter, keep, state, step, effective)


def _iterate(p, tol, max_iter, keep, state, step, effective):
    """Step every problem until each has converged (||u - v|| < tol) or ``max_iter``."""
    n = len(p.u)
    converged_at = np.full(n, -1)
    history, kept = [], []
    with np.errstate(over="ignore", invalid="ignore"):
        for k in range(max_iter + 1):
            v = effective(state)
            res = np.linalg.norm(p.u - v, axis=1)
            history.append(res)
            if keep:
                kept.append(state[list(keep)].copy())
            newly = (converged_at < 0) & (res < tol)
            converged_at[newly] = k
            if np.all(converged_at >= 0) or k == max_iter or not np.any(np.isfinite(res) & (converged_at < 0)):
                break
            state = step(state)
    return converged_at, np.array(history), np.array(kept)


def tail_rate(history: np.ndarray, converged_at: np.ndarray) -> np.ndarray:
    """Per problem, the asymptotic linear rate: the mean ratio of successive residuals over the last
    30 % of the iterations before convergence (or before the cap)."""
    rates = np.full(history.shape[1], np.nan)
    for j in range(history.shape[1]):
        end = converged_at[j] if converged_at[j] > 0 else history.shape[0] - 1
        span = max(1, int(0.3 * end))
        r0, r1 = history[end - span, j], history[end, j]
        if end > 0 and r0 > 0 and r1 > 0 and np.isfinite(r0 + r1):
            rates[j] = (r1 / r0) ** (1 / span)
    return rates


def pseudo_condition(h: np.ndarray, u: np.ndarray) -> float:
    """The ratio of the largest to the smallest non-zero eigenvalue of H* = H - g g^T / (u^T H u)."""
    H = np.diag(h.astype(np.float64))
    g = H @ u
    eig = np.linalg.eigvalsh(H - np.outer(g, g) / (u @ H @ u))
    nonzero = eig[eig > 1e-10 * eig.max()]
    return float(nonzero.max() / nonzero.min())


def largest_stable_step(p: Problems, iters: int, half: bool, steps: int = 14) -> np.ndarray:
    """Per problem, the largest GD step whose residual has not grown after ``iters`` iterations,
    by geometric bisection on [1e-6, 4] (every step of every problem in one batch)."""
    lo, hi = np.full(len(p.u), 1e-6), np.full(len(p.u), 4.0)
    for _ in range(steps):
        mid = np.sqrt(lo * hi)
        _, history, _ = run_gd(p, mid, tol=0.0, max_iter=iters, half=half)
        stable = np.isfinite(history[-1]) & (history[-1] <= history[0])
        lo, hi = np.where(stable, mid, lo), np.where(stable, hi, mid)
    return lo


# -- the run ---------------------------------------------------------------------------------------------


def _stats(values) -> dict:
    v = np.asarray(values, dtype=float)
    ok = v[v >= 0]
    return {"median": float(np.median(ok)) if len(ok) else None, "min": float(ok.min()) if len(ok) else None,
            "max": float(ok.max()) if len(ok) else None, "converged": int(len(ok)), "of": int(len(v))}


def measure(cfg: Config, run) -> dict:
    """Run every (d, kappa) case, the scan and the bisection; the arrays the figures draw go to
    trajectories.npz."""
    dtype = np.dtype(cfg.dtype)
    cases, scan, stability, arrays = {}, {}, {}, {}
    for d in cfg.dims:  # every kappa's problems of one d in one batch
        p = Problems.make(cfg.seed, d, cfg.kappas, cfg.problems, dtype)
        first = [int(p.rows(k)[0]) for k in cfg.kappas]
        gd_at, gd_hist, gd_path = run_gd(p, 2 / (p.kappa + 1), cfg.tol, cfg.max_iter, keep=first)
        bn_at, bn_hist, bn_path = run_bn(p, cfg.lr_w, cfg.lr_a, cfg.a0, cfg.update, cfg.tol, cfg.max_iter,
                                         keep=first)
        exact_at, exact_hist, _ = run_bn(p, cfg.lr_w, 1.0, cfg.a0, cfg.update, cfg.tol, cfg.max_iter)
        scan.update(lr_scan(cfg, d, dtype))
        stability.update(stable_steps(cfg, p))
        for n, kappa in enumerate(cfg.kappas):
            key, rows, j = f"d={d},kappa={kappa:g}", p.rows(kappa), first[n]
            gd_end, bn_end = _until(gd_at[j], len(gd_hist)), _until(bn_at[j], len(bn_hist))
            arrays.update(_showcase(key, p, j, gd_hist[:gd_end, j], gd_path[:gd_end, n], bn_hist[:bn_end, j],
                                    bn_path[:bn_end, n], cfg.lr_w))
            cases[key] = {
                "d": d, "kappa": kappa, "gd_lr": 2 / (kappa + 1),
                "gd_iterations": gd_at[rows].tolist(), "bn_iterations": bn_at[rows].tolist(),
                "gd": _stats(gd_at[rows]), "bn": _stats(bn_at[rows]),
                "bn_tail_rate": tail_rate(bn_hist[:, rows], bn_at[rows]).tolist(),
                "bn_lr_a_1_iterations": exact_at[rows].tolist(),
                "bn_lr_a_1_tail_rate": tail_rate(exact_hist[:, rows], exact_at[rows]).tolist(),
                "pseudo_condition": [pseudo_condition(p.h[i], p.u[i]) for i in rows],
            }
        best = [scan[f"d={d},kappa={k:g}"]["best"] for k in cfg.kappas]
        if all(best):
            lr_w = np.concatenate([np.full(cfg.problems, b["lr_w"]) for b in best])
            lr_a = np.concatenate([np.full(cfg.problems, b["lr_a"]) for b in best])
            at, _, _ = run_bn(p, lr_w, lr_a, cfg.a0, cfg.update, cfg.tol, cfg.max_iter)
            for kappa, b in zip(cfg.kappas, best):
                rows = p.rows(kappa)
                cases[f"d={d},kappa={kappa:g}"]["bn_best"] = {**b, "iterations": at[rows].tolist(),
                                                              **_stats(at[rows])}
    run.save_arrays(TRAJECTORIES, arrays)
    return {"cases": cases, "scan": scan, "stable_step": stability}


def _until(converged_at: int, length: int) -> int:
    """How much of a history to keep: up to convergence, or all of it if the run never converged."""
    return converged_at + 1 if converged_at >= 0 else length


def _showcase(key, p, j, gd_residual, gd_w, bn_residual, bn_state, lr_w) -> dict:
    """The arrays of one problem's runs (up to its convergence) that the figures draw."""
    a, w = bn_state[:, 0], bn_state[:, 1:]
    wHw, wHu = (p.h[j] * w ** 2).sum(1), (p.h[j] * w * p.u[j]).sum(1)
    return {f"{key}/gd_residual": gd_residual, f"{key}/bn_residual": bn_residual, f"{key}/gd_w": gd_w,
            f"{key}/bn_a": a, f"{key}/bn_w": w, f"{key}/bn_v": a[:, None] * w / np.sqrt(wHw)[:, None],
            f"{key}/u": p.u[j], f"{key}/bn_effective_lr": lr_w * a * wHu / wHw ** 1.5}


def lr_scan(cfg: Config, d: int, dtype) -> dict:
    """BN-GD over the grid lr_w x lr_a for scan_problems problems per kappa, all in one batch. A run
    is "converged" (reached tol), "converging" (its residual still falling at the cap), or not."""
    combos = [(lw, la) for lw in cfg.scan_lr_w for la in cfg.scan_lr_a]
    p = Problems.make(cfg.seed, d, cfg.kappas, cfg.scan_problems, dtype, times=len(combos))
    lr_w = np.tile([c[0] for c in combos], len(p.u) // len(combos))
    lr_a = np.tile([c[1] for c in combos], len(p.u) // len(combos))
    at, hist, _ = run_bn(p, lr_w, lr_a, cfg.a0, cfg.update, cfg.tol, cfg.scan_max_iter)
    falling = np.isfinite(hist[-1]) & (hist[-1] < hist[len(hist) // 2] * (1 - 1e-9))
    out = {}
    for kappa in cfg.kappas:
        grid = []
        for lw, la in combos:
            rows = np.flatnonzero((p.kappa == kappa) & (lr_w == lw) & (lr_a == la))
            status = ["converged" if at[j] >= 0 else "converging" if falling[j] else "not converging" for j in rows]
            grid.append({"lr_w": lw, "lr_a": la, "status": status, "iterations": at[rows].tolist(),
                         "median_iterations": float(np.median(at[rows])) if np.all(at[rows] >= 0) else None})
        done = [g for g in grid if g["median_iterations"] is not None]
        best = min(done, key=lambda g: g["median_iterations"]) if done else None
        out[f"d={d},kappa={kappa:g}"] = {"grid": grid, "best": None if best is None else {
            "lr_w": best["lr_w"], "lr_a": best["lr_a"], "scan_median_iterations": best["median_iterations"]}}
    return out


def stable_steps(cfg: Config, p: Problems) -> dict:
    """The largest stable GD step of every problem, for the 1/2 loss and for the loss as written."""
    half = largest_stable_step(p, cfg.stability_iters, half=True)
    written = largest_stable_step(p, cfg.stability_iters, half=False)
    out = {}
    for kappa in cfg.kappas:
        rows = p.rows(kappa)
        h, w = half[rows] * kappa, written[rows] * kappa  # lambda_max(H) = kappa
        out[f"d={p.cases[0][0]},kappa={kappa:g}"] = {
            "lambda_max": kappa, "bisected_half_loss": half[rows].tolist(), "bisected_written_loss": written[rows].tolist(),
            "worst_relative_gap_half_vs_2_over_lambda": float(np.max(np.abs(h / 2 - 1))),
            "worst_relative_gap_written_vs_1_over_lambda": float(np.max(np.abs(w - 1))),
            "worst_relative_gap_written_vs_2_over_lambda": float(np.max(np.abs(w / 2 - 1)))}
    return out


# -- claims ----------------------------------------------------------------------------------------


def _setting(cfg: dict, extra: str = "") -> str:
    return (f"population OLS, H = diag(linspace(1, kappa, d)), {cfg['problems']} random (u, w0) per (d, kappa), "
            f"GD lr 2/(kappa+1), BN-GD lr_w {cfg['lr_w']:g}, lr_a {cfg['lr_a']:g}, a0 {cfg['a0']:g}, "
            f"{cfg['update']} update, tol {cfg['tol']:g}, cap {cfg['max_iter']}, seed {cfg['seed']}{extra}")


def _case(metrics, d, kappa):
    return metrics["cases"].get(f"d={d},kappa={kappa:g}")


def _iters(values):
    return [v for v in values if v >= 0]


def _finite(values):
    """Iterations to converge, a run that never did as infinitely many."""
    return [v if v >= 0 else math.inf for v in values]


def _faster(a, b) -> str:
    pairs = list(zip(_finite(a), _finite(b)))
    return f"{sum(x < y for x, y in pairs)} of {len(pairs)}"


UNAFFECTED = 2.0  # "almost unaffected": iterations within a factor 2 between the condition numbers
A_PACE = 1.5  # BN-GD's count within 1.5x of a's own contraction count at both kappas: a's rate sets it

claims = C.Claims()


def _kappa_ratio(lo, hi, key) -> dict:
    """Per problem (the same u, w0 at both kappas), iterations at the large kappa over the small one,
    for the problems that converged at both; with the TOST of 'within a factor UNAFFECTED'."""
    a, b = np.asarray(hi[key]["iterations"] if key == "bn_best" else hi[key], dtype=float), \
        np.asarray(lo[key]["iterations"] if key == "bn_best" else lo[key], dtype=float)
    keep = (a >= 0) & (b >= 0)
    return {"problems_converged_at_both": int(keep.sum()), "of": int(len(a)),
            "median_ratio": float(np.median(a[keep] / b[keep])) if keep.any() else None,
            "equivalence": C.equivalence_test(a[keep], b[keep], margin=UNAFFECTED, ratio=True)}


@claims.rule("OLS-D2-KAPPA", "OLS-D2-KAPPA-BEST")
def d2_kappa(metrics):
    """BN-GD's iterations almost the same at both condition numbers in d = 2."""
    cfg = metrics["config"]
    small, large = min(cfg["kappas"]), max(cfg["kappas"])
    lo, hi = _case(metrics, 2, small), _case(metrics, 2, large)
    out = []
    for label, key, text in (("", "bn_iterations", "at the same learning rates as the author"),
                             ("-BEST", "bn_best", "at each method's best learning rate (GD 2/(kappa+1), BN-GD the "
                                                  "scan's fastest)")):
        e = {"kappas": [small, large], "d2_run": bool(lo and hi and small != large)}
        if e["d2_run"] and key in lo and key in hi:
            e.update(bn=_kappa_ratio(lo, hi, key), gd=_kappa_ratio(lo, hi, "gd_iterations"))
            if key == "bn_iterations":  # is it a's own contraction that sets the count at these rates?
                e["a_contraction_iterations"] = math.log(cfg["tol"]) / math.log(1 - cfg["lr_a"]) \
                    if 0 < cfg["lr_a"] < 1 else None
                e["bn_median_iterations"] = [lo["bn"]["median"], hi["bn"]["median"]]
                e["lr_a_1_median_iterations"] = [C.spread(_iters(c["bn_lr_a_1_iterations"]))["mean"] for c in (lo, hi)]
            else:
                e["bn_best_lr"] = {f"{k:g}": (c["bn_best"]["lr_w"], c["bn_best"]["lr_a"]) for k, c in
                                   ((small, lo), (large, hi))}
        out.append(C.claim(f"OLS-D2-KAPPA{label}", DOCUMENT, "sec. 2", "the rate of convergence of BN is almost "
                           f"unaffected by condition number in d = 2 ({text})", _setting(cfg), e,
                           f"per problem (the same u and w0 at both), BN-GD's iterations to converge at kappa = "
                           f"{large:g} over those at kappa = {small:g}, d = 2: REPRODUCED if equal within a factor "
                           f"{UNAFFECTED:g} (TOST on the logs, paired by problem, alpha 0.05; 'almost unaffected', "
                           "against GD's factor of about kappa's ratio); NOT-REPRODUCED if the ratio's 90 % interval "
                           "lies outside [1/2, 2] and BN-GD's median ratio is above a tenth of GD's; PARTLY if outside "
                           "but BN-GD's median ratio is at most a tenth of GD's (far less affected); INCONCLUSIVE "
                           "otherwise, without d = 2 and two kappas, or" + (
                               f" when BN-GD's median count at both kappas is within {A_PACE:g}x of the iterations a's "
                               "own update takes to contract by tol, ln(tol) / ln(1 - lr_a): at these rates the scale "
                               "a converges at (1 - lr_a)^k whatever kappa, a count the same for both by "
                               "construction, and OLS-D2-KAPPA-BEST decides the claim"
                               if not label else ""), decide_d2_kappa,
                           test="TOST on per-problem log ratios (paired t), margin a factor 2",
                           margin=C.margin(UNAFFECTED, "factor in iterations")))
    return out


def decide_d2_kappa(e) -> str:
    if not e["d2_run"] or "bn" not in e or e["bn"]["median_ratio"] is None:
        return C.INCONCLUSIVE
    k_a = e.get("a_contraction_iterations")
    if k_a and all(m is not None and k_a <= m * 1.0001 and m <= A_PACE * k_a for m in e["bn_median_iterations"]):
        return C.INCONCLUSIVE
    bn, gd = e["bn"], e["gd"]
    if bn["equivalence"]["equivalent"]:
        return C.REPRODUCED
    low, high = bn["equivalence"]["ci"]
    if low > UNAFFECTED or high < 1 / UNAFFECTED:
        far_less = gd["median_ratio"] is not None and bn["median_ratio"] <= gd["median_ratio"] / 10
        return C.PARTLY if far_less else C.NOT_REPRODUCED
    return C.INCONCLUSIVE


@claims.rule("OLS-D3")
def higher_dimensions(metrics):
    cfg = metrics["config"]
    small, large = min(cfg["kappas"]), max(cfg["kappas"])
    lo, hi = _case(metrics, 3, small), _case(metrics, 3, large)
    e = {"kappas": [small, large]}
    if lo and hi and small != large:
        e.update({f"kappa {small:g}: GD iterations": C.spread(_iters(lo["gd_iterations"])),
                  f"kappa {small:g}: BN iterations": C.spread(_iters(lo["bn_iterations"])),
                  f"kappa {large:g}: GD iterations": C.spread(_iters(hi["gd_iterations"])),
                  f"kappa {large:g}: BN iterations": C.spread(_iters(hi["bn_iterations"])),
                  f"kappa {small:g}: problems where BN-GD is faster": _faster(lo["bn_iterations"], lo["gd_iterations"]),
                  f"kappa {large:g}: problems where BN-GD is faster": _faster(hi["bn_iterations"], hi["gd_iterations"]),
                  "small_kappa_gd_vs_bn": C.paired_compare(_finite(lo["gd_iterations"]), _finite(lo["bn_iterations"])),
                  "large_kappa_gd_vs_bn": C.paired_compare(_finite(hi["gd_iterations"]), _finite(hi["bn_iterations"]))})
    return C.claim("OLS-D3", DOCUMENT, "sec. 2", "in higher dimensions, for small condition numbers non-BN networks "
                   "converge faster, while for higher condition numbers the convergence rate of BN is slightly better "
                   "than non-BN networks", _setting(cfg, "; d = 3"), e,
                   f"iterations to converge on the same problems, d = 3: REPRODUCED if GD needs fewer than BN-GD at "
                   f"kappa = {small:g} and more at kappa = {large:g}, each on significantly many problems (exact "
                   "two-sided sign test, p < 0.05; a run that did not converge counts as slowest); PARTLY if only one "
                   "holds and the other is not reversed; NOT-REPRODUCED if either is reversed (significantly) or "
                   "neither holds; INCONCLUSIVE without d = 3 and two kappas", decide_d3,
                   test="exact two-sided sign tests over the problems")


def decide_d3(e) -> str:
    if "small_kappa_gd_vs_bn" not in e:
        return C.INCONCLUSIVE
    small, large = e["small_kappa_gd_vs_bn"], e["large_kappa_gd_vs_bn"]
    if small == 1 or large == -1:  # the opposite of the claim, shown
        return C.NOT_REPRODUCED
    first, second = small == -1, large == 1
    return C.REPRODUCED if first and second else C.PARTLY if first or second else C.NOT_REPRODUCED


@claims.rule("OLS-HSTAR")
def pseudo_condition_number(metrics):
    cfg = metrics["config"]
    e = {"d2_pseudo_condition_max": None, "d3": {}}
    two = [c for c in metrics["cases"].values() if c["d"] == 2]
    if two:
        e["d2_pseudo_condition_max"] = max(max(c["pseudo_condition"]) for c in two)
    three = [c for c in metrics["cases"].values() if c["d"] == 3]
    for setting, rate_key in (("author", "bn_tail_rate"), ("lr_a_1", "bn_lr_a_1_tail_rate")):
        ks = np.log([k for c in three for k in c["pseudo_condition"]])
        with np.errstate(divide="ignore", invalid="ignore"):  # iterations per e-fold of the residual
            slowness = np.log(-1 / np.log(np.array([r for c in three for r in c[rate_key]], dtype=float)))
        group = np.array([c["kappa"] for c in three for _ in c["pseudo_condition"]])
        dummies = np.column_stack([group == k for k in sorted(set(group))[1:]]).astype(float) if len(group) else \
            np.zeros((0, 0))
        e["d3"][setting] = {"problems": len(ks), "pooled_correlation": C.correlation(ks, slowness),
                            "within_kappa": {f"{k:g}": C.correlation(ks[group == k], slowness[group == k])
                                             for k in sorted(set(group))},
                            "partial_on_kappa": C.partial_correlation_test(ks, slowness, dummies) if len(ks) else None}
    return C.claim("OLS-HSTAR", DOCUMENT, "sec. 2", "the asymptotic convergence speed with batchnorm depends on the "
                   "pseudo-condition number of H* = H - g g^T/(u^T H u), which is independent of kappa of H for d = 2",
                   _setting(cfg, "; the asymptotic rate is the mean residual ratio over the last 30 % of the "
                                 "iterations"), e,
                   "REPRODUCED if H*'s pseudo-condition number is 1 for every d = 2 problem (independent of kappa) "
                   "and, over the d = 3 problems, BN-GD's asymptotic slowness -1/log(rate) rises with it at the "
                   "author's learning rates with kappa held fixed: the partial correlation of their logs given the "
                   "kappa group positive and significant (t-test, p < 0.05; pooled over both kappas the correlation "
                   "would be kappa's, which moves both); PARTLY if so only with lr_a = 1 (a solved at every step, so "
                   "that a's own rate 1 - lr_a does not set the pace); NOT-REPRODUCED otherwise; INCONCLUSIVE "
                   "without d = 2 and d = 3 problems", decide_hstar,
                   test="partial correlation given the kappa group (t-test)")


def decide_hstar(e) -> str:
    if e["d2_pseudo_condition_max"] is None or not e["d3"] or not e["d3"]["author"]["problems"]:
        return C.INCONCLUSIVE
    flat = e["d2_pseudo_condition_max"] < 1 + 1e-9

    def rises(setting):
        t = e["d3"][setting]["partial_on_kappa"]
        return bool(t and t["r"] > 0 and t["p"] < 0.05)

    if flat and rises("author"):
        return C.REPRODUCED
    return C.PARTLY if flat and rises("lr_a_1") else C.NOT_REPRODUCED


@claims.rule("OLS-MAXSTEP")
def maximum_step(metrics):
    cfg = metrics["config"]
    gaps = metrics["stable_step"].values()
    e = {"worst_gap_half_loss_vs_2_over_lambda_max": max(g["worst_relative_gap_half_vs_2_over_lambda"] for g in gaps),
         "worst_gap_written_loss_vs_2_over_lambda_max": max(g["worst_relative_gap_written_vs_2_over_lambda"]
                                                             for g in gaps),
         "worst_gap_written_loss_vs_1_over_lambda_max": max(g["worst_relative_gap_written_vs_1_over_lambda"]
                                                             for g in gaps)}
    return C.claim("OLS-MAXSTEP", DOCUMENT, "sec. 2", "in case of standard gradient descent the maximum allowed step "
                   "size is 2/lambda_max of H (for min E[(y - x^T w)^2])",
                   _setting(cfg, f"; bisection of the largest step whose residual has not grown after "
                                 f"{cfg['stability_iters']} iterations"), e,
                   "REPRODUCED if the bisected largest stable step of GD on E[(y - x^T w)^2] as written is "
                   "2/lambda_max within 1 % for every problem; PARTLY if only GD on 1/2 E[(y - x^T w)^2] (the "
                   "author's update) has 2/lambda_max, the loss as written having 1/lambda_max; NOT-REPRODUCED "
                   "otherwise", decide_max_step, test="bisection, within 1 % on every problem")


def decide_max_step(e) -> str:
    if e["worst_gap_written_loss_vs_2_over_lambda_max"] <= 0.01:
        return C.REPRODUCED
    return C.PARTLY if e["worst_gap_half_loss_vs_2_over_lambda_max"] <= 0.01 else C.NOT_REPRODUCED


@claims.rule("OLS-CAI")
def cai_lr_up_to_1(metrics):
    cfg = metrics["config"]
    grid = [g for s in metrics["scan"].values() for g in s["grid"]]
    up_to_1 = [g for g in grid if g["lr_a"] <= 1]
    e = {"runs_with_lr_a_up_to_1": sum(len(g["status"]) for g in up_to_1),
         "converged": sum(s == "converged" for g in up_to_1 for s in g["status"]),
         "still_converging_at_cap": sum(s == "converging" for g in up_to_1 for s in g["status"]),
         "not_converging": sum(s == "not converging" for g in up_to_1 for s in g["status"]),
         "lr_w_scanned": sorted({g["lr_w"] for g in grid}), "lr_a_scanned": sorted({g["lr_a"] for g in grid}),
         "above_1": {f"lr_a {g['lr_a']:g}, lr_w {g['lr_w']:g}": g["status"] for g in grid if g["lr_a"] > 1}}
    return C.claim("OLS-CAI", DOCUMENT, "sec. 1", "with BN reparameterization, gradient descent converges for any lr "
                   "up to 1 (Cai et al. 2019, OLS); here: any lr_w and lr_a <= 1, lr_a being the step of the scale a, "
                   "whose update a <- a + lr_a (w^T H u/||w||_H - a) contracts for lr_a < 2",
                   _setting(cfg, f"; scan of {cfg['scan_problems']} problems per (d, kappa), cap "
                                 f"{cfg['scan_max_iter']}"), e,
                   "over the scan with lr_a <= 1: REPRODUCED if every run reached tol; PARTLY if the others were "
                   "still converging at the cap (residual falling); NOT-REPRODUCED if any stopped converging; "
                   "INCONCLUSIVE without such runs", decide_cai, test="every run of the scan")


def decide_cai(e) -> str:
    if not e["runs_with_lr_a_up_to_1"]:
        return C.INCONCLUSIVE
    if e["not_converging"]:
        return C.NOT_REPRODUCED
    return C.REPRODUCED if not e["still_converging_at_cap"] else C.PARTLY


# -- figures and summary --------------------------------------------------------------------------


def figures(metrics: dict, folder) -> dict:
    with np.load(folder / TRAJECTORIES) as saved:
        arrays = dict(saved)
    keys = list(metrics["cases"])
    out = {"residual.png": lambda path: _residuals(keys, arrays, path),
           "effective_lr.png": lambda path: plotting.curves(
               {"effective lr": {k: arrays[f"{k}/bn_effective_lr"] for k in keys}},
               "BN-GD's effective learning rate lr_w a w^T H u / ||w||_H^3 (problem 0)", path, log=("effective lr",)),
           "iterations.png": lambda path: _iterations(metrics, path),
           "lr_scan.png": lambda path: _scan(metrics, path),
           "asymptotic_rate.png": lambda path: _rates(metrics, path)}
    for d in sorted({c["d"] for c in metrics["cases"].values() if c["d"] in (2, 3)}):
        out[f"trajectories_d{d}.png"] = lambda path, d=d: _trajectories(metrics, arrays, d, path)
    return out


def _residuals(keys, arrays, path):
    fig, axes = plotting.panel_grid(len(keys), columns=2, size=(5.2, 3.8))
    for ax, k in zip(axes, keys):
        ax.semilogy(arrays[f"{k}/gd_residual"], label="GD")
        ax.semilogy(arrays[f"{k}/bn_residual"], label="BN-GD")
        ax.set(title=k, xlabel="iteration", ylabel="||u - v||")
        ax.grid(True, alpha=0.3)
        ax.legend()
    fig.suptitle("residual, problem 0 of each case")
    plotting.save_figure(fig, path)


def _iterations(metrics, path):
    plt = plotting.plt
    fig, ax = plt.subplots(figsize=(1.6 * len(metrics["cases"]) + 3, 4))
    for i, (k, c) in enumerate(metrics["cases"].items()):
        for j, (name, color) in enumerate((("gd_iterations", "C0"), ("bn_iterations", "C1"))):
            its = _iters(c[name])
            ax.scatter(np.full(len(its), i + (j - 0.5) * 0.3), its, s=12, color=color, alpha=0.7,
                       label=("GD" if j == 0 else "BN-GD") if i == 0 else None)
    ax.set_xticks(range(len(metrics["cases"])), list(metrics["cases"]), fontsize=8)
    ax.set(yscale="log", ylabel="iterations to ||u - v|| < tol", title="every problem of every case")
    ax.grid(True, alpha=0.3)
    ax.legend()
    plotting.save_figure(fig, path)


def _scan(metrics, path):
    cfg = metrics["config"]
    fig, axes = plotting.panel_grid(len(metrics["scan"]), columns=2, size=(5.2, 3.8))
    lw, la = list(cfg["scan_lr_w"]), list(cfg["scan_lr_a"])
    for ax, (k, s) in zip(axes, metrics["scan"].items()):
        table = np.full((len(lw), len(la)), np.nan)
        for g in s["grid"]:
            if g["median_iterations"] is not None:
                table[lw.index(g["lr_w"]), la.index(g["lr_a"])] = g["median_iterations"]
        image = ax.imshow(np.log10(table), cmap="viridis", aspect="auto")
        for g in s["grid"]:
            i, j = lw.index(g["lr_w"]), la.index(g["lr_a"])
            done = g["median_iterations"] is not None
            label = f"{g['median_iterations']:.0f}" if done else ("slow" if "not converging" not in g["status"] else "no")
            ax.text(j, i, label, ha="center", va="center", fontsize=7, color="w" if done else "k")
        ax.set_xticks(range(len(la)), [f"{v:g}" for v in la])
        ax.set_yticks(range(len(lw)), [f"{v:g}" for v in lw])
        ax.set(title=k, xlabel="lr_a", ylabel="lr_w")
        fig.colorbar(image, ax=ax, label="log10 median iterations")
    fig.suptitle("BN-GD scan (slow: still converging at the cap; no: not converging)")
    plotting.save_figure(fig, path)


def _rates(metrics, path):
    plt = plotting.plt
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), squeeze=False)
    for ax, (key, title) in zip(axes[0], (("bn_tail_rate", "author's lr"), ("bn_lr_a_1_tail_rate", "lr_a = 1"))):
        for k, c in metrics["cases"].items():
            ax.scatter(c["pseudo_condition"], c[key], s=12, label=k)
        ax.set(xscale="log", xlabel="pseudo-condition number of H*", ylabel="asymptotic residual ratio",
               title=f"BN-GD, {title}")
        ax.grid(True, alpha=0.3)
    axes[0][0].legend(fontsize=7)
    plotting.save_figure(fig, path)


def _trajectories(metrics, arrays, d, path):
    plt = plotting.plt
    keys = [k for k, c in metrics["cases"].items() if c["d"] == d]
    fig = plt.figure(figsize=(10, 4.2 * len(keys)))
    for row, k in enumerate(keys):
        u = arrays[f"{k}/u"]
        gd_w = arrays[f"{k}/gd_w"]
        paths = {"unit direction": {"BN-GD": _unit(arrays[f"{k}/bn_w"]), "GD": _unit(gd_w)},
                 "effective weight": {"BN-GD": arrays[f"{k}/bn_v"], "GD": gd_w}}
        for col, (name, lines) in enumerate(paths.items()):
            ax = fig.add_subplot(len(keys), 2, 2 * row + col + 1, **({"projection": "3d"} if d == 3 else {}))
            for label, xs in lines.items():
                line, = ax.plot(*xs.T, label=label)
                ax.plot(*xs[:1].T, marker="o", ms=4, color=line.get_color())  # the start
            ax.scatter(*u, color="crimson", label="u", zorder=3)
            ax.set_title(f"{name}, {k}")
            ax.legend(fontsize=7)
    fig.suptitle(f"paths of problem 0, d = {d}")
    plotting.save_figure(fig, path)


def _unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def summary(metrics: dict) -> str:
    lines = []
    for k, c in metrics["cases"].items():
        lines.append(f"{k}: median iterations GD {c['gd']['median']}, BN-GD {c['bn']['median']} "
                     f"({c['bn']['converged']}/{c['bn']['of']} converged); H* pseudo-condition "
                     f"{np.median(c['pseudo_condition']):.3g} (median)")
    return "\n".join(lines)


def headline(metrics: dict) -> dict:
    return {f"d{c['d']}_kappa{c['kappa']:g}_{m}_median_iterations": c[m]["median"]
            for c in metrics["cases"].values() for m in ("gd", "bn")}


if __name__ == "__main__":
    experiment.main(__name__)

"""Other normalizations and smoothness (seed 000 sec. 4, Morwani 2020).

L1, L2, L3 and L-infinity normalizations, centered or not, against batch norm and no
normalization, by best validation accuracy, distance moved from initialization and the top
Hessian eigenvalues.

The network and protocol of the seed author's Other_normalizations.py: 784 -> 100 -> 100 -> 10
with ReLU, a normalization after each hidden linear layer and none after the last, no
gamma/beta; SGD lr 0.1 in batches of 64 in one fixed order (``--shuffle``: reshuffled every
epoch) on 10 000 MNIST training images, validation on the 10 000 test images, lr x 0.1 after 20
epochs without a new best validation accuracy, stop once lr < 1e-3. Every ``--distance-every``
steps the distance ||theta_t - theta_s|| from earlier reference points s; every
``--hessian-every`` steps the top-k eigenvalues (largest in magnitude, as the author's code) of the
Hessian of the training loss on the first ``--hessian-images`` training images as one batch, the
network in training mode (batch statistics, as the author computed it; the running statistics are
left untouched), by Lanczos, each but the first started from the one before (``--hessian-warm``).

    python experiments/normalizations.py [--quick] [--variants l2,l2-uncentered] [--seeds 3] ...
    python experiments/normalizations.py --epochs 200 --hessian-every 100   # the author's protocol

The seeds of each variant train side by side as one ``nn.Ensemble`` (each with its own batches,
schedule and stop: the numbers of the separate trainings, to rounding) in a worker process; the
run checkpoints after each variant, so --resume continues a killed run. Writes metrics.json
(with the claims) and figures.
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
from minibn.data import load_mnist_subset
from minibn.experiment import ConfigError, at_least, at_most, option, positive
from minibn.experiment import claims as C
from minibn.experiment.training import evaluate, lr_below, running_stats_kept

DOCUMENT = "000"
EMBEDDED = 10_000
P = {"l1": 1.0, "l2": 2.0, "l3": 3.0, "linf": math.inf}
VARIANTS = ("l1", "l1-uncentered", "l2", "l2-uncentered", "l3", "l3-uncentered", "linf", "linf-uncentered",
            "bn", "none")
AUTHOR_ACCURACY = {"l2": 96.37, "l2-uncentered": 96.06, "l3": 96.24, "l3-uncentered": 96.02}  # best val acc (%), one seed
# read off the author's figures (Other_normalizations/mean_shift_p=*/Hess_eigenvals.png and dist_moved.png),
# approximately: the steps to the stopping rule, the top eigenvalue (largest magnitude) at step 0 and at the end,
# and ||theta_end - theta_0||
AUTHOR_FIGURES = {
    "l2": {"steps": 24_800, "eigenvalue_at_step_0": -8.0, "final_top_eigenvalue": 0.95, "distance_from_init": 7.95},
    "l2-uncentered": {"steps": 12_500, "eigenvalue_at_step_0": -8.3, "final_top_eigenvalue": 0.9,
                      "distance_from_init": 7.63},
    "l3": {"steps": 12_200, "eigenvalue_at_step_0": -7.0, "final_top_eigenvalue": 0.9, "distance_from_init": 8.05},
    "l3-uncentered": {"steps": 10_600, "eigenvalue_at_step_0": -7.5, "final_top_eigenvalue": 0.95,
                      "distance_from_init": 7.9},
}
SIZES = (784, 100, 100, 10)
NOTES = (
    "The network and protocol follow the author's Other_normalizations.py: biases in every linear layer, no "
    "gamma/beta, numerator x - mean in every variant ('uncentered' changes only the scale: "
    "((1/m) sum |x|^p + 1e-5)^(1/p) instead of ((1/m) sum |x - mean|^p + 1e-5)^(1/p)), running statistics with "
    "momentum 0.1 starting from 0 (minibn's LpNorm1d starts its running scale at 1 and has gamma/beta by default; "
    "both are set to the author's here), evaluation dividing by the running scale.",
    "L-infinity: the scale is max |u| + 1e-5, the limit p -> inf of the formula. The author's code, evaluated at "
    "p = inf, computes (norm^inf / m + 1e-5)^(1/inf) = 1, i.e. no scaling at all; the author reports no "
    "L-infinity result.",
    "bn is nn.BatchNorm1d with PyTorch's defaults (gamma/beta, biased batch variance, unbiased running variance); "
    "centered l2 is batch norm without gamma/beta.",
    "The author trains up to 200 epochs and computes the spectrum every 100 steps, on one seed (3689); the "
    "default here trains at most --epochs epochs and computes the spectrum every --hessian-every steps on the "
    "first --hessian-seeds seeds, so that all variants fit in minutes (--epochs 200 --hessian-every 100 is the "
    "author's protocol; --protocol author runs it on 5 seeds, every one with its spectra).",
    "The author's Lanczos (pytorch-hessian-eigenthings' lanczos, ARPACK's eigsh with which='LM' and tol 1e-2) "
    "finds the eigenvalues largest in magnitude, and so does --hessian-which LM here (the default; the seed's "
    "text says 'top'): at initialization the largest are negative. Here Lanczos stops when every wanted Ritz "
    "pair's residual is <= --hessian-tol times the largest |eigenvalue| (the author's protocol: 1e-2), and each "
    "eigenvalue's true residual ||H v - lambda v|| is recorded. Each spectrum of a training but its first starts "
    "from the previous one's eigenvectors (--hessian-warm: a Davidson method with a check for eigenvalues the "
    "start lacks, which stops by the same rule). It is here for its accuracy, not its cost: along one whole "
    "training (bn, seed 0, this protocol: bench/warm_spectra.py --variant bn, bench/results/warm_spectra-bn-"
    "20261206.json) it used 1.34 times the Hessian-vector products of Lanczos from a random start at lr 0.1 "
    "and 0.65 times after the first lr drop, 1.06 times in all, and a spectrum to tol 1e-6 found the cold "
    "Lanczos wrong (an eigenvalue off by more than 1e-2 of the top one: one missed) at 25 of its 175 spectra, "
    "24 of them at lr 0.1, and the warm one at none.",
    "The 10 000 training images are minibn's embedded subsample (1 000 per class) of the 60 000; the author drew "
    "10 000 at random. The fixed batch order is a random permutation drawn from the seed.",
    "Hidden weights followed by a normalization are scale-invariant: the loss does not change when W_1 or W_2 is "
    "scaled, while their Hessian blocks scale as 1/||W||^2 and the distance moved grows with ||W||. The "
    "eigenvalues compared are those of the Hessian in the raw parameters, at the end of training, with the "
    "hidden weight norms beside them.",
)


@dataclasses.dataclass
class Config(experiment.GridConfig):
    CPU_ONLY = True  # a seed fixes the initial linear weights and the batch order, the same for every variant
    variants: tuple[str, ...] = option(VARIANTS, "networks to train: an Lp normalization (l1, l2, l3, linf; "
                                                 "-uncentered for the uncentered scale), bn or none", choices=VARIANTS)
    hessian_seeds: int = option(1, "the first this many seeds record the Hessian spectrum along training (every "
                                   "seed records it at the end)", check=at_least(0))
    epochs: int = option(30, "the most epochs of one training (the author: 200)", check=at_least(1))
    lr: float = option(0.1, "SGD learning rate", check=positive)
    batch_size: int = option(64, "SGD batch size (the last batch of an epoch is smaller)", check=at_least(2))
    shuffle: bool = option(False, "reshuffle the batches every epoch (default: one fixed order, as the author)")
    patience: int = option(20, "epochs without a new best validation accuracy before lr x 0.1", check=at_least(1))
    lr_floor: float = option(1e-3, "training stops once lr falls below this", check=positive)
    train_size: int = option(EMBEDDED, "training images (of the 10 000 that come with minibn)",
                             check=(at_least(2), at_most(EMBEDDED)))
    distance_every: int = option(100, "steps between parameter snapshots for the distance moved", check=at_least(1))
    distance_from: tuple[int, ...] = option((0, 10, 20, 40, 60, 80, 100), "reference points of the distance "
                                            "moved, in snapshots (the author's)", check=at_least(0))
    hessian_every: int = option(1000, "steps between Hessian spectra (the author: 100); one more at the end",
                                check=at_least(1))
    hessian_k: int = option(10, "eigenvalues per spectrum", check=at_least(1))
    hessian_tol: float = option(1e-3, "Lanczos tolerance (residual relative to the largest eigenvalue)",
                                check=positive)
    hessian_which: str = option("LM", "the eigenvalues: largest in magnitude (the author's code) or largest "
                                      "algebraic", choices=("LM", "LA"))
    hessian_warm: bool = option(True, "start each spectrum of a training from the previous one's eigenvectors")
    hessian_images: int = option(EMBEDDED, "training images the Hessian's loss is computed on, as one batch",
                                 check=at_least(2))

    def validate(self):
        if self.hessian_seeds > self.seeds:
            raise ConfigError("hessian_seeds", f"{self.hessian_seeds} exceeds --seeds {self.seeds}")
        if self.hessian_images > self.train_size:
            raise ConfigError("hessian_images", f"{self.hessian_images} exceeds --train-size {self.train_size}")
        if self.train_size % self.batch_size == 1 and any(v != "none" for v in self.variants):
            raise ConfigError("batch_size", f"--train-size {self.train_size} leaves a last batch of one image, "
                                            "which a normalization cannot normalize")


AUTHOR = {"epochs": 200, "hessian_every": 100, "hessian_tol": 1e-2, "seeds": 5,  # Other_normalizations.py, NOTES
          "hessian_seeds": 5}
QUICK = {"variants": ("l2", "l2-uncentered", "linf", "none"), "seeds": 2, "epochs": 2, "train_size": 2000,
         "hessian_every": 30, "hessian_images": 1000, "hessian_k": 3, "hessian_tol": 1e-2, "distance_every": 10,
         "distance_from": (0, 1, 3), "patience": 1}


# -- networks and data ---------------------------------------------------------------------------------


def build_network(cfg: Config, variant: str, seed: int):
    """The variant's network; the linear layers' initial weights depend on the seed alone."""
    build = dict(dtype=cfg.dtype, generator=mb.Generator(seed))
    if variant == "none":
        return nn.mlp(SIZES, norm=None, **build)
    if variant == "bn":
        return nn.mlp(SIZES, norm="bn", **build)
    name, _, centering = variant.partition("-")
    net = nn.mlp(SIZES, norm="lp", norm_kwargs={"p": P[name], "centered": not centering, "affine": False}, **build)
    for layer in net:
        if isinstance(layer, nn.LpNorm1d):
            layer.running_scale._data[...] = 0  # the author's running statistics start at 0
    return net


def load_data(cfg: Config):
    x, y = load_mnist_subset("train", dtype=np.dtype(cfg.dtype))
    if cfg.train_size < len(x):
        keep = np.sort(np.random.default_rng([cfg.seed, 1]).choice(len(x), cfg.train_size, replace=False))
        x, y = x[keep], y[keep]
    xt, yt = load_mnist_subset("test", dtype=np.dtype(cfg.dtype))
    return x, y, xt, yt


def epoch_batches(cfg: Config, seed: int, epoch: int, n: int) -> list:
    """The batches of an epoch: a permutation from (seed, epoch), or from (seed, 0) every epoch
    without --shuffle, cut into --batch-size pieces (the last one smaller, as the author's loader)."""
    order = np.random.default_rng([seed, epoch if cfg.shuffle else 0]).permutation(n)
    return [np.sort(order[i:i + cfg.batch_size]) for i in range(0, n, cfg.batch_size)]


def flat_parameters(net) -> np.ndarray:
    return np.concatenate([p.detach().numpy().ravel() for p in net.parameters()]).astype(np.float64)


def spectrum(cfg: Config, net, x, y, seed: int, start=None) -> tuple:
    """The top ``hessian_k`` eigenvalues of the training-mode loss on (x, y), from the eigenvectors
    ``start`` if given, the running statistics restored afterwards (the author's full-batch forward
    does not update them): (its record, its eigenvectors)."""
    started = time.perf_counter()
    with running_stats_kept(net):
        op = hessian.HessianOperator(lambda: F.cross_entropy(net(x), y), list(net.parameters()))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", hessian.ConvergenceWarning)  # recorded as converged = False
        s = hessian.top_eigenvalues(op, None, k=cfg.hessian_k, which=cfg.hessian_which, tol=cfg.hessian_tol,
                                    seed=seed, start=start)
    return ({"eigenvalues": [float(v) for v in s.eigenvalues], "residual_max": float(s.residuals.max()),
             "converged": s.converged, "hvps": s.hvps, "method": s.method,
             "seconds": time.perf_counter() - started}, s.eigenvectors)


class _Spectra:
    """A training's spectra, each but the first started from the one before (``--hessian-warm``)."""

    def __init__(self, cfg: Config, seed: int):
        self.cfg, self.seed, self.records, self.vectors = cfg, seed, [], None

    def take(self, step: int, net, x, y) -> None:
        record, self.vectors = spectrum(self.cfg, net, x, y, self.seed, self.vectors if self.cfg.hessian_warm else None)
        self.records.append({"step": step, **record})


# -- one training ----------------------------------------------------------------------------------------


def train(cfg: Config, variant: str, seed: int, with_hessian: bool) -> dict:
    """One network under the author's protocol, with its distances moved, its Hessian spectrum at
    the end and (``with_hessian``) along training; returns its record (the reference :func:`ensemble`,
    which the grid runs, is tested against)."""
    mb.manual_seed(seed)
    x_np, y_np, xt_np, yt_np = load_data(cfg)
    x, y, xt, yt = (mb.tensor(a) for a in (x_np, y_np, xt_np, yt_np))
    xh, yh = x[:cfg.hessian_images], y[:cfg.hessian_images]
    net = build_network(cfg, variant, seed)
    opt = mb.optim.SGD(net.parameters(), lr=cfg.lr)
    schedule = mb.optim.ReduceLROnPlateau(opt, mode="max", factor=0.1, patience=cfg.patience - 1, threshold=0.0)
    references, distances, spectra = {}, {}, _Spectra(cfg, seed)
    curve, losses, step, stopped = [], [], 0, "epochs"

    def observe(final=False):
        """Before the update of ``step`` (or after the last one, ``final``)."""
        if step % cfg.distance_every == 0 or final:
            theta = flat_parameters(net)
            snapshot = step // cfg.distance_every
            if not final and snapshot in cfg.distance_from:
                references[step] = theta
            for s, ref in references.items():
                distances.setdefault(str(s), []).append([step, float(np.linalg.norm(theta - ref))])
        if (with_hessian and step % cfg.hessian_every == 0) or final:
            spectra.take(step, net, xh, yh)

    for epoch in range(cfg.epochs):
        net.train()
        total = 0.0
        batches = epoch_batches(cfg, seed, epoch, len(x_np))
        for idx in batches:
            observe()
            loss = F.cross_entropy(net(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.item())
            step += 1
        losses.append(total / len(batches))
        curve.append(evaluate(net, xt, yt))
        schedule.step(curve[-1])
        if not math.isfinite(losses[-1]):
            stopped = "diverged"
            break
        if lr_below(opt, cfg.lr_floor):
            stopped = "lr floor"
            break
    observe(final=True)
    best = int(np.argmax(curve))
    return {"variant": variant, "seed": seed, "best_val_accuracy": curve[best], "best_epoch": best + 1,
            "epochs": len(curve), "steps": step, "stopped_by": stopped, "final_lr": opt.param_groups[0]["lr"],
            "val_accuracy": curve, "train_loss": losses, "distance": distances,
            "distance_from_init": distances["0"][-1][1] if "0" in distances else None,
            "hessian": spectra.records,
            "weight_norms": [float(np.linalg.norm(m.weight.detach().numpy())) for m in net
                             if isinstance(m, nn.Linear)]}


class _Member:
    """One seed's bookkeeping in :func:`ensemble`: what :func:`train` keeps in its locals."""

    def __init__(self, cfg: Config, seed: int, with_hessian: bool):
        self.seed, self.with_hessian, self.step, self.stopped = seed, with_hessian, 0, "epochs"
        self.references, self.distances, self.curve, self.losses = {}, {}, [], []
        self.spectra = _Spectra(cfg, seed)
        self.dummy = nn.Parameter(np.zeros(1))  # its optimizer carries the member's lr for the schedule
        self.opt = mb.optim.SGD([self.dummy], lr=cfg.lr)
        self.schedule = mb.optim.ReduceLROnPlateau(self.opt, mode="max", factor=0.1, patience=cfg.patience - 1,
                                                   threshold=0.0)
        self.result = None

    @property
    def lr(self) -> float:
        return self.opt.param_groups[0]["lr"]

    _KEPT = ("step", "stopped", "references", "distances", "curve", "losses", "result")

    def saved(self) -> dict:
        """The bookkeeping as plain data (its optimizer and schedule are checkpointed as objects)."""
        return {**{name: getattr(self, name) for name in self._KEPT},
                "spectra": self.spectra.records, "vectors": self.spectra.vectors}

    def restore(self, saved: dict) -> None:
        for name in self._KEPT:
            setattr(self, name, saved[name])
        self.spectra.records, self.spectra.vectors = saved["spectra"], saved["vectors"]


def ensemble(cfg: Config, variant: str, seeds: list, checkpoint=None) -> list:
    """The seeds of one variant trained side by side as one ``nn.Ensemble``, each with its own batches,
    plateau schedule, stop, distances and spectra: :func:`train`'s record for each seed, to rounding.
    Each update is SGD at every member's own lr (the loss weighted by it, then SGD at lr 1: p <- p -
    grad); a stopped member is frozen (lr 0) and its record was taken when it stopped. With a
    ``checkpoint`` (:class:`minibn.experiment.grid.JobCheckpoint`), the state after each epoch is saved
    there and a job run again continues from it."""
    x_np, y_np, xt_np, yt_np = load_data(cfg)
    xt, yt = mb.tensor(xt_np), mb.tensor(yt_np)
    xh, yh = mb.tensor(x_np[:cfg.hessian_images]), mb.tensor(y_np[:cfg.hessian_images])
    net = nn.Ensemble([build_network(cfg, variant, seed) for seed in seeds])
    members = [_Member(cfg, seed, seed - cfg.seed < cfg.hessian_seeds) for seed in seeds]
    descent = mb.optim.SGD(net.parameters(), lr=1.0)  # the learning rates are in the loss
    first_epoch, state = 0, None
    if checkpoint is not None:
        objects = {"net": net, **{f"lr{k}": m.opt for k, m in enumerate(members)},
                   **{f"schedule{k}": m.schedule for k, m in enumerate(members)}}
        state = checkpoint.state(objects, {"members": [m.saved() for m in members]})
        for m, saved in zip(members, state.record["members"]):
            m.restore(saved)
        first_epoch = state.step  # the epochs done

    def observe(k, final=False):
        m = members[k]
        distance = m.step % cfg.distance_every == 0 or final
        hessian_due = m.with_hessian and m.step % cfg.hessian_every == 0 or final
        if not (distance or hessian_due):
            return
        alone = net.member(k)
        if distance:
            theta = flat_parameters(alone)
            if not final and m.step // cfg.distance_every in cfg.distance_from:
                m.references[m.step] = theta
            for s, ref in m.references.items():
                m.distances.setdefault(str(s), []).append([m.step, float(np.linalg.norm(theta - ref))])
        if hessian_due:
            m.spectra.take(m.step, alone, xh, yh)
        if final:
            best = int(np.argmax(m.curve))
            m.result = {"variant": variant, "seed": m.seed, "best_val_accuracy": m.curve[best], "best_epoch": best + 1,
                        "epochs": len(m.curve), "steps": m.step, "stopped_by": m.stopped, "final_lr": m.lr,
                        "val_accuracy": m.curve, "train_loss": m.losses, "distance": m.distances,
                        "distance_from_init": m.distances["0"][-1][1] if "0" in m.distances else None,
                        "hessian": m.spectra.records,
                        "weight_norms": [float(np.linalg.norm(layer.weight.detach().numpy())) for layer in alone
                                         if isinstance(layer, nn.Linear)]}

    for epoch in range(first_epoch, cfg.epochs):
        running = [k for k, m in enumerate(members) if m.result is None]
        if not running:
            break
        net.train()
        orders = [epoch_batches(cfg, m.seed, epoch, len(x_np)) for m in members]
        totals = np.zeros(len(members))
        for b in range(len(orders[0])):
            for k in running:
                observe(k)
            idx = np.stack([order[b] for order in orders])
            logits = net(mb.tensor(x_np[idx]))
            targets = mb.tensor(y_np[idx])
            losses = {k: F.cross_entropy(logits[k], targets[k]) for k in running}  # a stopped member: no loss
            weighted = losses[running[0]] * members[running[0]].lr
            for k in running[1:]:
                weighted = weighted + losses[k] * members[k].lr
            descent.zero_grad()
            weighted.backward()
            descent.step()
            for k in running:
                totals[k] += float(losses[k].item())
                members[k].step += 1
        for k in running:
            m = members[k]
            m.losses.append(totals[k] / len(orders[0]))
            m.curve.append(evaluate(net.member(k), xt, yt))
            m.schedule.step(m.curve[-1])
            if not math.isfinite(m.losses[-1]):
                m.stopped = "diverged"
            elif lr_below(m.opt, cfg.lr_floor):
                m.stopped = "lr floor"
            else:
                continue
            observe(k, final=True)
        if checkpoint is not None:
            state.step, state.record = epoch + 1, {"members": [m.saved() for m in members]}
            checkpoint.save(state)
    for k, m in enumerate(members):
        if m.result is None:
            observe(k, final=True)
    return [m.result for m in members]


# -- the grid: every variant with every seed ------------------------------------------------------------


def variants(cfg: Config) -> tuple:
    return cfg.variants


def collect(cfg: Config, trainings: dict) -> dict:
    return {"best_val_accuracy": {v: [t["best_val_accuracy"] for t in ts] for v, ts in trainings.items()},
            "summary": summarize(trainings), "author": {"best_val_accuracy_percent": AUTHOR_ACCURACY, "seed": 3689},
            "trainings": trainings}


def summarize(trainings: dict) -> dict:
    """Per variant: best validation accuracy and distance from initialization (mean, std over seeds),
    the final top eigenvalue of every seed, and the first seed's final top eigenvalues and weight norms."""
    out = {}
    for v, ts in trainings.items():
        first = ts[0]
        out[v] = {"best_val_accuracy": C.spread([t["best_val_accuracy"] for t in ts]),
                  "distance_from_init": C.spread([t["distance_from_init"] for t in ts]),
                  "final_top_eigenvalue": [t["hessian"][-1]["eigenvalues"][0] for t in ts],
                  "final_top_eigenvalues": first["hessian"][-1]["eigenvalues"], "spectrum_seed": first["seed"],
                  "final_weight_norms": first["weight_norms"],
                  "epochs": [t["epochs"] for t in ts], "stopped_by": [t["stopped_by"] for t in ts]}
    return out


# -- claims ----------------------------------------------------------------------------------------------


def _setting(cfg: dict) -> str:
    order = "reshuffled every epoch" if cfg["shuffle"] else "in one fixed order"
    return (f"MNIST {cfg['train_size']} training images, 784-100-100-10 ReLU, SGD lr {cfg['lr']:g} batch "
            f"{cfg['batch_size']} {order}, lr x0.1 after {cfg['patience']} epochs without a new best, stop below "
            f"lr {cfg['lr_floor']:g} or at {cfg['epochs']} epochs, {cfg['seeds']} seeds from {cfg['seed']}, "
            f"{cfg['dtype']}; spectra: top {cfg['hessian_k']} ({_WHICH[cfg.get('hessian_which', 'LA')]}) on "
            f"{cfg['hessian_images']} images in training mode, tol {cfg['hessian_tol']:g}")


_WHICH = {"LM": "largest in magnitude", "LA": "largest"}
ACCURACY_RULE = ("the author's best validation accuracy (one run, seed 3689) against the 95 % prediction interval "
                 "of one new run from the seeds' (mean +- t_(0.975, n-1) s sqrt(1 + 1/n)): REPRODUCED if inside; "
                 "NOT-REPRODUCED if outside; INCONCLUSIVE with fewer than 2 seeds, or if the author's is above the "
                 "interval while some training was stopped by the --epochs cap before the author's stopping rule")
SLIGHT = 0.005    # "a slight difference": within 0.5 accuracy points (the author's four spread over 0.35)
COMPARABLE = 1.5  # "comparable" eigenvalues and distances: within a factor 1.5 of each other


def _pairs(variants) -> list:
    return [(a, b) for i, a in enumerate(variants) for b in variants[i + 1:]]


def _outside(ci, margin: float) -> bool:
    """A ratio's confidence interval lies entirely outside [1/margin, margin]."""
    return ci[0] > margin or ci[1] < 1 / margin


claims = C.Claims()


@claims.rule("NORM-ACC-<variant>")
def author_accuracy(metrics):
    """The author's best validation accuracy of each of his variants."""
    cfg, summary, table = metrics["config"], metrics["summary"], metrics["best_val_accuracy"]
    out = []
    for v, author in AUTHOR_ACCURACY.items():
        if v not in table:
            continue
        per_seed = [100 * a for a in table[v]]
        e = {"author_percent": author, "per_seed_percent": per_seed, "mean_percent": float(np.mean(per_seed)),
             "prediction_interval_95_percent": C.prediction_interval(per_seed, 0.95), "seeds": len(per_seed),
             "cut_by_epochs": "epochs" in summary[v]["stopped_by"], "stopped_by": summary[v]["stopped_by"]}
        label = v.replace("-", " ").replace("l", "L", 1) if v.startswith("l") else v
        out.append(C.claim(f"NORM-ACC-{v.upper()}", DOCUMENT, "sec. 4", f"{label} normalization: best val acc "
                           f"{author:.2f}%", _setting(cfg), e, ACCURACY_RULE, decide_accuracy,
                           test="95 % prediction interval for one new run (t, from the seeds)"))
    return out


def decide_accuracy(e) -> str:
    low, high = e["prediction_interval_95_percent"]
    if e["seeds"] < 2 or not math.isfinite(low):
        return C.INCONCLUSIVE
    if low <= e["author_percent"] <= high:
        return C.REPRODUCED
    return C.INCONCLUSIVE if e["author_percent"] > high and e["cut_by_epochs"] else C.NOT_REPRODUCED


@claims.rule("NORM-NOT-SIGNIFICANT")
def accuracy_difference(metrics):
    """The differences between the author's variants' accuracies: slight, and not significant."""
    cfg, table = metrics["config"], metrics["best_val_accuracy"]
    theirs = [v for v in AUTHOR_ACCURACY if v in table]
    if len(theirs) < 2:
        return None
    pairs = _pairs(theirs)
    tests = [C.paired_t_test(table[a], table[b]) for a, b in pairs]
    adjusted = C.holm([p for _, p in tests])
    e = {"variants": theirs, "seeds": len(metrics["seeds"]), "margin_points": 100 * SLIGHT, "pairs": {
        f"{a} - {b}": {"mean_difference_points": 100 * mean, "p": p, "p_holm": q,
                       "equivalence": C.equivalence_test(table[a], table[b], margin=SLIGHT)}
        for (a, b), (mean, p), q in zip(pairs, tests, adjusted)}}
    return C.claim("NORM-NOT-SIGNIFICANT", DOCUMENT, "sec. 4", "although there is a slight difference in the best "
                   "validation accuracy reached, the difference is not significant", _setting(cfg), e,
                   "every pair of the author's variants run, paired by seed (same initial weights and batches): "
                   f"REPRODUCED if every pair is equal within {100 * SLIGHT:g} accuracy points (TOST, paired t, alpha "
                   "0.05, all pairs: an intersection-union test needs no adjustment; the margin: the author calls "
                   "the 0.35 points between his four a slight difference); NOT-REPRODUCED if a pair differs "
                   "significantly (paired t-tests, Holm-adjusted over the pairs, p < 0.05) and is not shown equal "
                   "within the margin; INCONCLUSIVE otherwise (neither shown) or with fewer than 2 seeds",
                   decide_not_significant, test="TOST per pair (paired t); paired t-tests, Holm-adjusted",
                   margin=C.margin(100 * SLIGHT, "best validation accuracy points"))


def decide_not_significant(e) -> str:
    if e["seeds"] < 2:
        return C.INCONCLUSIVE
    pairs = e["pairs"].values()
    if all(p["equivalence"]["equivalent"] for p in pairs):
        return C.REPRODUCED
    if any(p["p_holm"] < 0.05 and not p["equivalence"]["equivalent"] for p in pairs):
        return C.NOT_REPRODUCED
    return C.INCONCLUSIVE


@claims.rule("NORM-COMPARABLE")
def eigenvalues_and_distance(metrics):
    """The final top eigenvalue and the distance from initialization across the author's variants."""
    cfg, summary = metrics["config"], metrics["summary"]
    theirs = [v for v in AUTHOR_ACCURACY if v in summary]
    if len(theirs) < 2:
        return None
    measures = {"top_eigenvalue": {v: summary[v]["final_top_eigenvalue"] for v in theirs},
                "distance_from_init": {v: [t["distance_from_init"] for t in metrics["trainings"][v]] for v in theirs}}
    e = {"variants": theirs, "seeds": len(metrics["seeds"]), "margin_factor": COMPARABLE, **{
        name: {"per_seed": values, "pairs": {f"{a} / {b}": C.equivalence_test(values[a], values[b], margin=COMPARABLE,
                                                                            ratio=True) for a, b in _pairs(theirs)}}
        for name, values in measures.items()},
        "others": {v: {"final_top_eigenvalue": summary[v]["final_top_eigenvalue"],
                       "distance_from_init_mean": summary[v]["distance_from_init"]["mean"]}
                   for v in summary if v not in theirs},
        "final_weight_norms": {v: summary[v]["final_weight_norms"] for v in theirs}}
    return C.claim("NORM-COMPARABLE", DOCUMENT, "sec. 4", "the final eigenvalues and distance from initialization are "
                   "comparable", _setting(cfg), e,
                   "among the author's variants run, at the end of training, per seed: the largest Hessian eigenvalue "
                   "(raw parameters) and the distance ||theta_end - theta_0||; a measure is comparable if every pair "
                   f"of variants is equal within a factor {COMPARABLE} (TOST on the logs, paired by seed, alpha 0.05, "
                   "all pairs; the margin: these measures span orders of magnitude along training and between "
                   "normalizations, and within a factor 1.5 of each other two are of the same size), and "
                   "shown different if a pair's 90 % interval of the ratio lies outside it: REPRODUCED if both "
                   "measures are comparable; PARTLY if one is and the other is not shown different; NOT-REPRODUCED if "
                   "either is shown different; INCONCLUSIVE otherwise or with fewer than 2 seeds",
                   decide_comparable, test="TOST on log ratios per pair (paired t), all pairs",
                   margin=C.margin(COMPARABLE, "factor"))


def decide_comparable(e) -> str:
    if e["seeds"] < 2:
        return C.INCONCLUSIVE
    tests = {name: list(e[name]["pairs"].values()) for name in ("top_eigenvalue", "distance_from_init")}
    comparable = [all(t["equivalent"] for t in ts) for ts in tests.values()]
    different = [any(_outside(t["ci"], e["margin_factor"]) for t in ts) for ts in tests.values()]
    if any(different):
        return C.NOT_REPRODUCED
    if all(comparable):
        return C.REPRODUCED
    return C.PARTLY if any(comparable) else C.INCONCLUSIVE


@claims.rule("NORM-INDICATORS")
def indicators(metrics):
    """Sec. 4's reading of Li et al. (2020): the top eigenvalue and the distance moved predict generalization."""
    points = [(v, t) for v, ts in metrics["trainings"].items() for t in ts if t["hessian"]]
    accuracy = [t["best_val_accuracy"] for _, t in points]
    measures = {"top_eigenvalue": [t["hessian"][-1]["eigenvalues"][0] for _, t in points],
                "distance_from_init": [t["distance_from_init"] for _, t in points]}
    groups = sorted({v for v, _ in points})
    dummies = np.array([[v == g for g in groups[1:]] for v, _ in points], dtype=float).reshape(len(points), -1)
    with np.errstate(divide="ignore", invalid="ignore"):
        logs = {name: np.log10(np.asarray(values, dtype=float)) for name, values in measures.items()}
    pooled = {name: C.partial_correlation_test(x, accuracy) for name, x in logs.items()}
    adjusted = C.holm([t["p"] for t in pooled.values()])
    e = {"points": len(points), "variants": groups,
         "pooled": {name: {**t, "p_holm": q} for (name, t), q in zip(pooled.items(), adjusted)},
         "within_variant": {name: C.partial_correlation_test(x, accuracy, dummies) for name, x in logs.items()}}
    return C.claim("NORM-INDICATORS", DOCUMENT, "sec. 4", "the Hessian eigenvalues at optimization, i.e. the smoothness, "
                   "along with distance from initialisation can be a potential indicator of generalization (Li et al., "
                   "2020)", _setting(metrics["config"]), e,
                   "over every (variant, seed) training with a final spectrum: Pearson's correlation of log10 of the "
                   "final top Hessian eigenvalue, and of log10 ||theta_end - theta_0||, with the best validation "
                   "accuracy (t-tests, Holm-adjusted over the two, p < 0.05; smaller should go with better): "
                   "REPRODUCED if both correlations are significantly negative; PARTLY if one is and the other is not "
                   "significantly positive; NOT-REPRODUCED if either is significantly positive; INCONCLUSIVE otherwise "
                   "(neither shown) or with fewer than 4 points; the correlations within variants (partial, given "
                   "the variant) are reported beside them",
                   decide_indicators, test="Pearson correlation t-tests, Holm-adjusted over the two measures")


def decide_indicators(e) -> str:
    if e["points"] < 4:
        return C.INCONCLUSIVE
    shown = [t["p_holm"] < 0.05 for t in e["pooled"].values()]
    signs = [t["r"] for t in e["pooled"].values()]
    if any(s and r > 0 for s, r in zip(shown, signs)):
        return C.NOT_REPRODUCED
    negative = sum(s and r < 0 for s, r in zip(shown, signs))
    return C.REPRODUCED if negative == 2 else C.PARTLY if negative == 1 else C.INCONCLUSIVE


def document_numbers(metrics) -> list:
    """The author's four variants: the best validation accuracy of the text, and the values of his figures."""
    out = []
    for v, author in AUTHOR_ACCURACY.items():
        runs = metrics["trainings"].get(v)
        if not runs:
            continue
        label = v.replace("-", " ").replace("l", "L", 1)
        figure = AUTHOR_FIGURES[v]
        with_spectra = [t for t in runs if len(t["hessian"]) > 1]
        out += [C.number(DOCUMENT, "sec. 4", f"{label}: best validation accuracy (%)", author,
                         [100 * t["best_val_accuracy"] for t in runs], "the author: one run, seed 3689"),
                C.number(DOCUMENT, "sec. 4, its figure (b)", f"{label}: top Hessian eigenvalue at the end",
                         figure["final_top_eigenvalue"], [t["hessian"][-1]["eigenvalues"][0] for t in runs],
                         "read off the author's figure, approximately"),
                C.number(DOCUMENT, "sec. 4, its figure (a)", f"{label}: distance from initialization at the end",
                         figure["distance_from_init"], [t["distance_from_init"] for t in runs],
                         "read off the author's figure, approximately"),
                C.number(DOCUMENT, "sec. 4, its figures", f"{label}: training steps to the stopping rule",
                         figure["steps"], [t["steps"] for t in runs],
                         "read off the author's figures' step axis, approximately")]
        if with_spectra:
            out.append(C.number(DOCUMENT, "sec. 4, its figure (b)", f"{label}: largest-magnitude Hessian eigenvalue "
                                "at step 0", figure["eigenvalue_at_step_0"],
                                [_largest_magnitude(t["hessian"][0]["eigenvalues"]) for t in with_spectra],
                                "read off the author's figure, approximately"))
    return out


def _largest_magnitude(values) -> float:
    return float(max(values, key=abs))


# -- figures and summary ---------------------------------------------------------------------------------


def _first(trainings):
    return next((t for t in trainings if t["hessian"]), trainings[0])


def figures(metrics: dict, folder) -> dict:
    out = {"distance_moved.png": lambda path: _distance_figure(metrics, path),
           "comparison.png": lambda path: _comparison_figure(metrics, path)}
    if any(t["hessian"] for ts in metrics["trainings"].values() for t in ts):
        out["eigenvalues.png"] = lambda path: _eigenvalue_figure(metrics, path)
    return out


def _distance_figure(metrics, path):
    trainings = metrics["trainings"]
    fig, axes = plotting.panel_grid(len(trainings))
    for ax, (v, ts) in zip(axes, trainings.items()):
        t = _first(ts)
        for ref, points in t["distance"].items():
            pts = np.asarray(points, dtype=float)
            ax.plot(pts[:, 0], pts[:, 1], label=f"from step {ref}")
        ax.set(title=f"{v} (seed {t['seed']})", xlabel="step", ylabel="||theta_t - theta_s||")
        ax.grid(True, alpha=0.3)
    axes[0].legend(fontsize=6)
    fig.suptitle("distance moved from earlier points")
    plotting.save_figure(fig, path)


def _eigenvalue_figure(metrics, path):
    trainings = {v: ts for v, ts in metrics["trainings"].items() if any(t["hessian"] for t in ts)}
    fig, axes = plotting.panel_grid(len(trainings))
    for ax, (v, ts) in zip(axes, trainings.items()):
        t = _first(ts)
        steps = [h["step"] for h in t["hessian"]]
        values = np.asarray([h["eigenvalues"] for h in t["hessian"]])
        for i in range(values.shape[1]):
            ax.plot(steps, values[:, i], marker=".", lw=1, color=plotting.plt.cm.viridis(i / max(1, values.shape[1] - 1)))
        ax.set(title=f"{v} (seed {t['seed']})", xlabel="step", ylabel="eigenvalue")
        ax.grid(True, alpha=0.3)
    fig.suptitle(f"top {metrics['config']['hessian_k']} Hessian eigenvalues of the training loss "
                 f"({metrics['config']['hessian_images']} images, training mode)")
    plotting.save_figure(fig, path)


def _comparison_figure(metrics, path):
    s = metrics["summary"]
    names = list(s)
    x = np.arange(len(names))
    fig, axes = plotting.plt.subplots(1, 3, figsize=(15, 4.2), layout="constrained")
    acc = [100 * s[v]["best_val_accuracy"]["mean"] for v in names]
    err = [100 * s[v]["best_val_accuracy"]["std"] for v in names]
    axes[0].errorbar(x, acc, yerr=err, fmt="o", capsize=3, label=f"mean +- std, {len(metrics['seeds'])} seeds")
    marked = [i for i, v in enumerate(names) if v in AUTHOR_ACCURACY]
    axes[0].plot(marked, [AUTHOR_ACCURACY[names[i]] for i in marked], "r*", ms=10, label="the author (one seed)")
    axes[0].set(ylabel="best validation accuracy (%)", title="accuracy")
    axes[0].legend(fontsize=7)
    for i, v in enumerate(names):
        vals = s[v]["final_top_eigenvalues"]
        if vals:
            axes[1].plot([i] * len(vals), vals, "_", ms=14, color="C0")
    axes[1].set(ylabel="eigenvalue", title="top Hessian eigenvalues at the end", yscale="log")
    axes[2].bar(x, [s[v]["distance_from_init"]["mean"] for v in names],
                yerr=[s[v]["distance_from_init"]["std"] for v in names], capsize=3)
    axes[2].set(ylabel="||theta_end - theta_0||", title="distance from initialization")
    for ax in axes:
        ax.set_xticks(x, names, rotation=45, ha="right", fontsize=8)
        ax.grid(True, alpha=0.3)
    plotting.save_figure(fig, path)


def summary(metrics: dict) -> str:
    """Per variant: accuracy over the seeds, the author's, every seed's final top eigenvalue as median
    [min, max], the distance moved from initialization, and how each seed's training ended."""
    lines = [f"{'variant':>16}  best val acc (%)       author  top eigenvalue, median [min, max]  distance"
             "  epochs   stopped by"]
    for v, s in metrics["summary"].items():
        a = s["best_val_accuracy"]
        tops = s["final_top_eigenvalue"]
        top = f"{np.median(tops):7.3f} [{min(tops):.3f}, {max(tops):.3f}]" if tops else "-"
        author = f"{AUTHOR_ACCURACY[v]:.2f}" if v in AUTHOR_ACCURACY else "-"
        ends = ", ".join(f"{how} {s['stopped_by'].count(how)}" for how in dict.fromkeys(s["stopped_by"]))
        lines.append(f"{v:>16}  {100 * a['mean']:6.2f} +- {100 * a['std']:4.2f} (n={a['n']})  {author:>6}  "
                     f"{top:>33}  {s['distance_from_init']['mean']:8.2f}  {min(s['epochs']):>3}-{max(s['epochs']):<3}  "
                     f"{ends}")
    return "\n".join(lines)


def headline(metrics: dict) -> dict:
    out = {}
    for v, s in metrics["summary"].items():
        out[f"{v}_best_val_accuracy"] = s["best_val_accuracy"]["mean"]
        out[f"{v}_top_eigenvalue"] = s["final_top_eigenvalues"][0] if s["final_top_eigenvalues"] else None
    return out


if __name__ == "__main__":
    experiment.main(__name__)

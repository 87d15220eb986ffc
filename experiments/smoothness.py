"""Smoothness along training, internal covariate shift and noisy batch norm (seeds 001 and 004).

Santurkar et al. (2018), as seeds 001 and 004 report them, argue that batch norm helps because
it makes the loss smoother along the gradient (smaller loss variation, more predictive
gradients, a smaller "effective" beta), not because it reduces internal covariate shift (ICS):
networks with noisy batch norm, whose layer inputs shift at every step, still train well, and
by their gradient-based definition batch norm does not reduce ICS. They measure this on VGG on
CIFAR-10 and on a 25-layer deep linear network (DLN); here it runs on MLPs on MNIST (the 10 000
training images that come with minibn) and on a deep linear network on Gaussian data:

    python experiments/smoothness.py [--quick] [--seeds 5] [--epochs 20] [--probe-every 25] [--workers 2]

For each seed: a plain MLP, the same with BatchNorm1d after each hidden linear layer, and the
same with noisy batch norm (Santurkar et al.'s Algorithm 1) start from the same weights and
train with seed 001's protocol (Adam, lr 0.01, batch 128, 20 epochs); a plain and a BN deep
linear network train the same way on their regression. Every --probe-every steps, on the
step's batch, the probes of ``minibn.smoothness`` (loss variation, gradient predictiveness,
effective beta over step sizes around the learning rate, and g^T H g / ||g||^2), the ICS of
each block, and the distribution of one neuron's layer inputs in two layers are recorded;
probes do not change the training (running statistics and noise draws are put back). Each
(network, seed) runs in a worker process with a checkpoint after it (--resume continues).
Writes metrics.json (with the claims) and figures.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

import minibn as mb
import minibn.functional as F
from minibn import experiment, nn, plotting, smoothness
from minibn.data import load_mnist_subset
from minibn.data.synthetic import deep_linear_regression
from minibn.experiment import ConfigError, at_least, option, positive
from minibn.experiment import claims as C
from minibn.experiment.training import accuracy, batch_indices, evaluate, running_stats_kept

DOCUMENTS = ("001", "004")
MLP_NETWORKS = ("plain", "bn", "noisy_bn")
LP_NORMS = {"l1": 1.0, "l2": 2.0, "linf": math.inf}  # LpNorm1d in batch norm's place: name -> p
DLN_NETWORKS = ("dln_plain", "dln_bn")
QUANTILES = (5, 25, 50, 75, 95)
DISTRIBUTION = tuple(range(5, 100, 5))  # the quantile function a watched neuron's distribution is kept as
NOTES = (
    "Santurkar et al. ran VGG on CIFAR-10 and a 25-layer deep linear network; this experiment runs MLPs on MNIST "
    "(the 10 000 training images that come with minibn) and a deep linear network on Gaussian data. The training "
    "follows seed 001's probe setting: Adam, lr 0.01, batch 128, 20 epochs (the deep linear network: Adam at "
    "--dln-lr).",
    "The probes move along the raw gradient g of the step's batch (not Adam's step), with step sizes --eta-factors "
    "times the learning rate, and evaluate the loss and gradient on the same batch in training mode (batch "
    "statistics); running statistics and noise draws are restored, so probing does not change the training.",
    "ICS follows Santurkar et al.'s Definition 2.1 with the blocks Linear [-> normalization]: G_i = grad of W_i "
    "at the step's parameters, G'_i the same after the blocks before i have taken the step, same batch and same "
    "noise draw.",
    "The deep linear network (our settings; the paper's are not in the seeds): --dln-depth linear layers of "
    "width --dln-width, Xavier-normal weights (so that the plain network's signal neither grows nor vanishes "
    "with depth), input dimension = width, 10 outputs, targets y = x A + 0.1 noise with A ~ N(0, 1/d), "
    "--dln-samples samples, mean squared error; it trains --dln-epochs epochs (the summary speaks of its "
    "smoothness 'after the first few thousand training steps').",
    "The Lp networks (--lp-norms) put LpNorm1d (centered, learned scale and shift) where the BN network has "
    "BatchNorm1d, from the same initial weights: Santurkar et al.'s L_p normalizations, whose scale is the "
    "batch's Lp norm of the centered input instead of its standard deviation.",
    "--norm-after-activation puts each MLP's normalization after its ReLU (Linear -> ReLU -> norm): the watched "
    "neurons are then the normalizations' outputs and, in the plain network, the ReLUs' (the next linear layer's "
    "input in both).",
    "A watched neuron's distribution over the batch is kept at every probe as its quantile function at 5, 10, "
    "..., 95 %; the distance between two of them is the Wasserstein-1 distance of the middle 90 % of the mass.",
)


@dataclasses.dataclass
class Config(experiment.GridConfig):
    CPU_ONLY = True
    SEEDS = 5
    width: int = option(100, "hidden width of the MLPs", check=at_least(1))
    hidden_layers: int = option(3, "hidden layers of the MLPs", check=at_least(2))
    lr: float = option(0.01, "Adam learning rate (seed 001's)", check=positive)
    batch_size: int = option(128, "batch size (seed 001's)", check=at_least(2))
    epochs: int = option(20, "training epochs (seed 001's)", check=at_least(1))
    train_size: int = option(10_000, "MNIST training images (of the 10 000 that come with minibn)", check=at_least(2))
    probe_every: int = option(25, "steps between probes (and at the last step)", check=at_least(1))
    eta_factors: tuple[float, ...] = option((0.25, 0.5, 1.0, 2.0, 4.0), "probe step sizes, times the learning rate",
                                            check=positive)
    dln: bool = option(True, "also train and probe the deep linear networks (--no-dln: MLPs only)")
    dln_depth: int = option(25, "linear layers of the deep linear network (Santurkar et al.: 25)", check=at_least(2))
    dln_width: int = option(20, "width (and input dimension) of the deep linear network", check=at_least(2))
    dln_samples: int = option(2000, "samples of the deep linear network's regression", check=at_least(2))
    dln_lr: float = option(1e-3, "Adam learning rate of the deep linear networks", check=positive)
    dln_epochs: int = option(200, "training epochs of the deep linear networks", check=at_least(1))
    dln_late_step: int = option(2000, "the deep linear networks' late training starts at this step (the "
                                      "summary: 'after the first few thousand training steps')", check=at_least(0))
    norm_after_activation: bool = option(False, "the MLPs' normalizations after each ReLU (Linear -> ReLU -> norm) "
                                                "instead of before it (the deep linear networks have no activation)")
    lp_norms: tuple[str, ...] | None = option(tuple(LP_NORMS), "Lp normalizations probed beside batch norm "
                                              "(none: not run)", choices=tuple(LP_NORMS))

    def validate(self):
        for name, n in (("train_size", self.train_size), ("dln_samples", self.dln_samples)):
            if self.batch_size > n:
                raise ConfigError("batch_size", f"{self.batch_size} exceeds --{name.replace('_', '-')} {n}")


QUICK = {"seeds": 3, "width": 32, "hidden_layers": 2, "epochs": 1, "train_size": 2000, "probe_every": 5,
         "dln_depth": 6, "dln_width": 8, "dln_samples": 512, "dln_epochs": 4, "dln_late_step": 8}


# -- networks and data ------------------------------------------------------------------------------------


def build_network(cfg: Config, network: str, seed: int) -> nn.Sequential:
    """The networks of a seed share their linear layers' initial weights (one generator per seed)."""
    g = mb.Generator(seed)
    if network.startswith("dln"):
        return nn.mlp([cfg.dln_width] * cfg.dln_depth + [10], norm="bn" if network == "dln_bn" else None,
                      activation=None, init="xavier_normal", dtype=cfg.dtype, generator=g)
    norm, norm_kwargs = ("lp", {"p": LP_NORMS[network]}) if network in LP_NORMS else \
        (None if network == "plain" else "bn", {"noise": True} if network == "noisy_bn" else None)
    net = nn.mlp([784] + [cfg.width] * cfg.hidden_layers + [10], norm=norm, norm_kwargs=norm_kwargs,
                 dtype=cfg.dtype, generator=g, norm_after_activation=cfg.norm_after_activation)
    for k, layer in enumerate(m for m in net if isinstance(m, nn.BatchNorm1d) and m.noise):
        layer.noise_generator = mb.Generator(seed * 1000 + k)  # reproducible draws, one stream per layer
    return net


def load_data(cfg: Config, network: str, seed: int):
    """(x, y, x_test, y_test, loss function, classification?) for the network's task."""
    dtype = np.dtype(cfg.dtype)
    if network.startswith("dln"):
        x, y, _ = deep_linear_regression(cfg.dln_samples * 2, cfg.dln_width, 10, seed=[seed, 7], noise=0.1, dtype=dtype)
        n = cfg.dln_samples
        return x[:n], y[:n], x[n:], y[n:], F.mse_loss, False
    x, y = load_mnist_subset("train", dtype=dtype)
    xt, yt = load_mnist_subset("test", dtype=dtype)
    return x[:cfg.train_size], y[:cfg.train_size], xt, yt, F.cross_entropy, True


NORMALIZATIONS = (nn.BatchNorm1d, nn.LpNorm1d)


def blocks_of(net) -> list:
    """[(the Linear, its parameters and those of the normalization after it)] for each linear layer."""
    blocks = []
    for m in net:
        if isinstance(m, nn.Linear):
            blocks.append((m, list(m.parameters())))
        elif isinstance(m, NORMALIZATIONS):
            blocks[-1][1].extend(m.parameters())
    return blocks


def _input_layers(net, after_activation: bool = False) -> list:
    """The watched modules, first and last hidden block: the normalizations, and in a network without one
    the modules in their place (the hidden Linear layers, or the activations where the normalizations
    follow them, ``after_activation``: the module before each Linear but the first)."""
    picks = [m for m in net if isinstance(m, NORMALIZATIONS)]
    if not picks:
        layers = list(net)
        linears = [i for i, m in enumerate(layers) if isinstance(m, nn.Linear)]
        picks = [layers[i] for i in linears[:-1]]
        if after_activation:
            picks = [layers[i - 1] for i in linears[1:]]
    return [picks[0], picks[-1]]


class _NoiseState:
    """The noise generators of a network's noisy batch norms: saved once, put back at will."""

    def __init__(self, net):
        self.generators = [m.noise_generator for m in net if isinstance(m, nn.BatchNorm1d) and m.noise]
        self.states = [g.get_state() for g in self.generators]

    def restore(self):
        for g, s in zip(self.generators, self.states):
            g.set_state(s)


# -- one training with its probes ------------------------------------------------------------------------


def variants(cfg: Config) -> tuple:
    return MLP_NETWORKS + tuple(cfg.lp_norms or ()) + (DLN_NETWORKS if cfg.dln else ())


def task(cfg: Config, network: str, seed: int) -> dict:
    """Train one network of one seed with probes every ``probe_every`` steps."""
    x_np, y_np, xt_np, yt_np, loss_of, classification = load_data(cfg, network, seed)
    x, y, xt, yt = (mb.tensor(a) for a in (x_np, y_np, xt_np, yt_np))
    net = build_network(cfg, network, seed)
    lr = cfg.dln_lr if network.startswith("dln") else cfg.lr
    opt = mb.optim.Adam(net.parameters(), lr=lr)
    params, blocks = list(net.parameters()), blocks_of(net)
    watched = _input_layers(net, cfg.norm_after_activation and not network.startswith("dln"))
    width = cfg.dln_width if network.startswith("dln") else cfg.width
    neuron = int(np.random.default_rng([seed, 5]).integers(width))  # the watched neuron of both layers
    per_epoch = len(x) // cfg.batch_size
    steps = (cfg.dln_epochs if network.startswith("dln") else cfg.epochs) * per_epoch
    etas = [f * lr for f in cfg.eta_factors]
    probes, ics, inputs, losses, test_curve, train_curve, batch_accuracy = [], [], [], [], [], [], []
    terms = {}
    net.train()
    for step in range(steps):
        idx = batch_indices(seed, step, len(x), cfg.batch_size)
        xb, yb = x[idx], y[idx]
        probing = step % cfg.probe_every == 0 or step == steps - 1
        if network == "bn" and step in (0, steps - 1):
            terms["start" if step == 0 else "end"] = gradient_terms(net, xb, yb, loss_of)
        noise = _NoiseState(net)
        if probing:
            def batch_loss():
                noise.restore()
                return loss_of(net(xb), yb)

            with running_stats_kept(net):
                probes.append({"step": step, **smoothness.gradient_probes(batch_loss, params, etas)})
                inputs.append({"step": step, **_layer_inputs(net, watched, neuron, batch_loss)})
            before = [p._data.copy() for p in params]
        noise.restore()
        opt.zero_grad()
        out = net(xb)
        loss = loss_of(out, yb)
        loss.backward()
        opt.step()
        losses.append(float(loss.item()))
        if classification:
            batch_accuracy.append(accuracy(out, yb))
        if probing:
            after_state = _NoiseState(net)
            flat = [p for _, block in blocks for p in block]
            after = [p._data.copy() for p in flat]
            for p, b in zip(params, before):
                p._data[...] = b
            with running_stats_kept(net):
                shift = smoothness.internal_covariate_shift(batch_loss, [b for _, b in blocks],
                                                            [m.weight for m, _ in blocks], after)
            for p, a in zip(flat, after):
                p._data[...] = a
            after_state.restore()
            ics.append({"step": step, "l2": [s[0] for s in shift], "cos": [s[1] for s in shift]})
        if (step + 1) % per_epoch == 0:
            test_curve.append(_test_score(net, xt, yt, loss_of, classification))
            if classification:  # the epoch's training accuracy, on its batches as they were trained on
                train_curve.append(float(np.mean(batch_accuracy[-per_epoch:])))
    final = {"train": _test_score(net, x, y, loss_of, classification), "test": test_curve[-1]}
    out = {"train_loss": losses, "test_curve": test_curve, "final": final,
           "probes": probes, "ics": ics, "layer_inputs": inputs, "neuron": neuron, **({"terms": terms} if terms else {})}
    return {**out, "train_curve": train_curve} if classification else out


def _layer_inputs(net, watched, neuron, batch_loss) -> dict:
    """Quantiles of one neuron's values over the batch, and the layer's mean and std, at the watched modules."""
    seen = {}
    handles = [m.register_forward_hook(lambda mod, inp, out, k=k: seen.__setitem__(k, out.detach().numpy()))
               for k, m in enumerate(watched)]
    try:
        with mb.no_grad():
            batch_loss()
    finally:
        for h in handles:
            h.remove()
    return {f"layer{k}": {"quantiles": np.percentile(seen[k][:, neuron], QUANTILES).tolist(),
                          "mean": float(seen[k][:, neuron].mean()), "std": float(seen[k][:, neuron].std()),
                          "distribution": np.percentile(seen[k][:, neuron], DISTRIBUTION).tolist()}
            for k in seen}


def eq1_terms(inp: np.ndarray, g: np.ndarray, eps: float) -> dict:
    """Per neuron j of a batch-norm layer with input ``inp`` (m x n) and dL/d(output) ``g``: sigma_j =
    sqrt(var_j + eps), ||g_j||^2, <1, g_j>^2 / m and <g_j, yhat_j>^2 / m. Then ||dL/d inp_j||^2 = (gamma_j /
    sigma_j)^2 (||g_j||^2 - <1, g_j>^2 / m - <g_j, yhat_j>^2 / m) (Santurkar et al.'s Theorem 4.1, with
    equality where eps = 0; seed 001 eq. (1) writes 1/sqrt(m) for the last m)."""
    m = len(inp)
    sigma = np.sqrt(inp.var(0) + eps)
    y_hat = (inp - inp.mean(0)) / sigma
    return {"sigma": sigma, "norm": (g * g).sum(0), "ones": g.sum(0) ** 2 / m, "projection": (g * y_hat).sum(0) ** 2 / m}


def gradient_terms(net, x, y, loss_of) -> list:
    """:func:`eq1_terms` in each BatchNorm1d of ``net`` on the batch (x, y), as the medians over each
    layer's neurons of sigma_j, |gamma_j| / sigma_j and the shares of ||g_j||^2 the two inner-product
    terms take."""
    layers = [m for m in net if isinstance(m, nn.BatchNorm1d)]
    seen = {}
    handles = [m.register_forward_hook(lambda mod, inp, out, k=k: seen.__setitem__(k, (inp[0], out)))
               for k, m in enumerate(layers)]
    try:
        with running_stats_kept(net):
            grads = mb.grad(loss_of(net(x), y), [seen[k][1] for k in range(len(layers))])
    finally:
        for h in handles:
            h.remove()
    out = []
    for k, m in enumerate(layers):
        t = eq1_terms(seen[k][0].detach().numpy().astype(np.float64), grads[k].numpy().astype(np.float64), m.eps)
        gamma = np.abs(m.weight.detach().numpy().astype(np.float64))
        with np.errstate(divide="ignore", invalid="ignore"):
            out.append({"sigma": float(np.median(t["sigma"])), "gamma_over_sigma": float(np.median(gamma / t["sigma"])),
                        "ones_share": float(np.nanmedian(t["ones"] / t["norm"])),
                        "projection_share": float(np.nanmedian(t["projection"] / t["norm"]))})
    return out


def _test_score(net, x, y, loss_of, classification) -> float:
    """Accuracy (classification) or mean squared error (regression) in eval mode."""
    if classification:
        return evaluate(net, x, y)
    was = net.training
    net.eval()
    with mb.no_grad():
        out = float(loss_of(net(x), y).item())
    net.train(was)
    return out


def collect(cfg: Config, results: dict) -> dict:
    return {"runs": results, "summary": {n: summarize(rs) for n, rs in results.items()}}


def summarize(runs: list) -> dict:
    """Per seed, the probes' measures averaged over the probe steps, the ICS averaged over steps and
    blocks, the shift of the watched neuron's mean, and the final scores."""
    def per_run(r):
        p = r["probes"]
        return {"loss_variation": float(np.mean([b - a for a, b in (q["loss_variation"] for q in p)])),
                "gradient_predictiveness": float(np.mean([q["gradient_predictiveness"][1] for q in p])),
                "effective_beta": float(np.nanmean([q["effective_beta"] for q in p])),
                "curvature": float(np.nanmean([q["curvature"] for q in p])),
                "ics_l2": float(np.mean([np.mean(s["l2"][1:]) for s in r["ics"]])),
                "ics_cos": float(np.nanmean([np.mean(s["cos"][1:]) for s in r["ics"]])),
                "input_shift": float(np.mean([np.std([i[k]["mean"] for i in r["layer_inputs"]])
                                              for k in r["layer_inputs"][0] if k != "step"])),
                "distribution_shift": distribution_shift(r["layer_inputs"]),
                "mean_train_accuracy": float(np.mean(r["train_curve"])) if r.get("train_curve") else None,
                "final_train": r["final"]["train"], "final_test": r["final"]["test"]}
    rows = [per_run(r) for r in runs]
    return {k: [row[k] for row in rows] for k in rows[0]}


def wasserstein_central(q, r) -> float:
    """The Wasserstein-1 distance of the middle 90 % of two distributions given by their quantile
    functions at :data:`DISTRIBUTION` (5, 10, ..., 95 %): the integral of |Q(u) - R(u)| over u in
    [0.05, 0.95], by the trapezoid rule."""
    gap = np.abs(np.asarray(q, dtype=float) - np.asarray(r, dtype=float))
    return float(np.trapezoid(gap, np.asarray(DISTRIBUTION) / 100))


def distribution_shift(inputs: list) -> float:
    """How far a watched neuron's distribution moves from one probe to the next, in its own units:
    the mean over successive probes and both watched layers of W1(P_t, P_t+1) / ((sd_t + sd_t+1) / 2)
    (:func:`wasserstein_central`); NaN where the neuron is constant."""
    shifts = []
    for k in (k for k in inputs[0] if k != "step"):
        for a, b in zip(inputs, inputs[1:]):
            spread = (a[k]["std"] + b[k]["std"]) / 2
            shifts.append(wasserstein_central(a[k]["distribution"], b[k]["distribution"]) / spread if spread > 0
                          else math.nan)
    return float(np.nanmean(shifts)) if np.any(np.isfinite(shifts)) else math.nan


# -- claims -----------------------------------------------------------------------------------------------


def _setting(cfg: dict, dln: bool = False) -> str:
    if dln:
        net = (f"deep linear networks of {cfg['dln_depth']} linear layers of width {cfg['dln_width']} with and without "
               f"BatchNorm1d, on a Gaussian regression ({cfg['dln_samples']} samples), Adam lr {cfg['dln_lr']:g}")
    else:
        lp = "".join(f", with LpNorm1d p = {LP_NORMS[n]:g}" for n in cfg.get("lp_norms") or ())
        after = " after each ReLU" if cfg.get("norm_after_activation") else ""
        net = (f"MLPs 784-{'-'.join([str(cfg['width'])] * cfg['hidden_layers'])}-10 (ReLU) plain, with BatchNorm1d"
               f"{lp} and with noisy batch norm{after}, on MNIST ({cfg['train_size']} training images), Adam lr {cfg['lr']:g}")
    epochs = cfg.get("dln_epochs", cfg["epochs"]) if dln else cfg["epochs"]
    return (f"{net}, batch {cfg['batch_size']}, {epochs} epochs, probes every {cfg['probe_every']} steps on the "
            f"step's batch, step sizes {','.join(f'{f:g}' for f in cfg['eta_factors'])} x lr; {cfg['seeds']} seeds "
            f"from {cfg['seed']} (Santurkar et al.: VGG on CIFAR-10 and a 25-layer deep linear network)")


MEASURES = {"loss_variation": "width max - min of the loss variation band (max over eta minus min over eta)",
            "gradient_predictiveness": "largest gradient change max_eta ||grad L(theta) - grad L(theta - eta g)||",
            "effective_beta": "effective beta max_eta ||grad L(theta) - grad L(theta - eta g)|| / ||eta g||",
            "curvature": "curvature along the gradient g^T H g / ||g||^2"}
TEXTS = {"loss_variation": ("004", "sec. 1.3, Figure 3", "introducing BN ... leads to a smoother loss function: smaller "
                            "loss variation along the gradient"),
         "gradient_predictiveness": ("004", "sec. 1.3, Figure 3", "BN makes the gradients more reliable (predictive)"),
         "effective_beta": ("001", "sec. 3, Figure 1", "the gradient with BatchNorm is more predictive (smaller "
                            "'effective' beta-smoothness)"),
         "curvature": ("001", "sec. 2.2, eq. (9)-(10)", "BatchNorm reduces the quadratic form of the loss Hessian in "
                       "the gradient direction, improving the effective beta-smoothness")}
ICS_MARGIN = 0.05      # in cos(G, G'): a twentieth of its range from unrelated gradients (0) to no shift (1)
TRAIN_MARGIN = 0.02    # in training accuracy: "nearly as well" is within 2 points
SUBSTANTIAL = 0.01     # in training accuracy: a "substantial improvement" is at least 1 point
SIMILAR_SHIFT = 2.0    # "highly similar" distributional shift: within a factor 2
SHARE = 0.05          # a "significant" term of eq. (1): >= 5 % of ||g||^2 (a gradient unrelated to 1 or yhat: 1/m)
LP_MEASURES = ("loss_variation", "gradient_predictiveness", "effective_beta")  # 004's three smoothness measures

claims = C.Claims()


@claims.rule("SMOOTH-<measure>", "DLN-<measure>")
def smoother(metrics):
    """Each probe's measure smaller with batch norm, on the MLPs and on the deep linear networks."""
    cfg, s, out = metrics["config"], metrics["summary"], []
    for kind, (bn, plain) in (("SMOOTH", ("bn", "plain")), ("DLN", DLN_NETWORKS[::-1])):
        if bn not in s:
            continue
        for measure, (doc, where, text) in TEXTS.items():
            if kind == "DLN" and measure == "curvature":
                continue
            cid = f"{kind}-{measure.upper().replace('_', '-')}"
            claim_text = text if kind == "SMOOTH" else f"(for the deep linear network) {text}"
            out.append(C.claim(cid, doc, where, claim_text, _setting(cfg, kind == "DLN"),
                               C.smaller(s[bn][measure], s[plain][measure], (bn, plain)),
                               C.smaller_rule(MEASURES[measure] + ", averaged over the probe steps,", bn, plain),
                               C.decide_smaller, test=C.SMALLER_TEST,
                               margin=C.margin(C.SMALLER_FACTOR, "factor (for 'not smaller')")))
    return out


@claims.rule("ICS-NOT-REDUCED")
def ics_not_reduced(metrics) -> dict:
    s = metrics["summary"]
    bn, plain = s["bn"]["ics_cos"], s["plain"]["ics_cos"]
    mean, p = C.paired_t_test(bn, plain)
    e = {"cos_bn": bn, "cos_plain": plain, "l2_bn": s["bn"]["ics_l2"], "l2_plain": s["plain"]["ics_l2"],
         "mean_cos_bn_minus_plain": mean, "p_difference": p, "seeds": len(bn),
         "not_higher_by_the_margin": C.noninferiority_test(plain, bn, margin=ICS_MARGIN)}
    if "noisy_bn" in s:
        e["cos_noisy_bn"], e["l2_noisy_bn"] = s["noisy_bn"]["ics_cos"], s["noisy_bn"]["ics_l2"]
    return C.claim("ICS-NOT-REDUCED", "004", "sec. 1.3", "BN does not appear to improve the internal covariate shift "
                   "by the gradient-based definition (it may increase it)", _setting(metrics["config"]), e,
                   "per seed, cos(G_i, G'_i) averaged over the probe steps and the blocks after the first (the first "
                   "has no block before it; 1 means no shift): NOT-REPRODUCED if batch norm's cosine is significantly "
                   "higher (less shift; paired t-test over the seeds, p < 0.05); REPRODUCED if it is shown not higher "
                   f"than the plain network's by {ICS_MARGIN} or more (one-sided paired t-test, alpha 0.05; the "
                   f"margin, {ICS_MARGIN}, is a twentieth of the cosine's range from unrelated gradients, 0, to no "
                   "shift, 1); INCONCLUSIVE otherwise or with one seed; ||G - G'|| is reported beside it",
                   decide_ics, test="paired t-test (difference); one-sided paired t-test (not higher by the margin)",
                   margin=C.margin(ICS_MARGIN, "cos(G, G')"))


def decide_ics(e) -> str:
    if e["seeds"] < 2:
        return C.INCONCLUSIVE
    if e["p_difference"] < 0.05 and e["mean_cos_bn_minus_plain"] > 0:
        return C.NOT_REPRODUCED
    return C.REPRODUCED if e["not_higher_by_the_margin"]["noninferior"] else C.INCONCLUSIVE


@claims.rule("NOISY-BN-TRAINS")
def noisy_bn_trains(metrics) -> dict:
    s = metrics["summary"]
    shift = C.paired_log_ratio(s["bn"]["input_shift"], s["noisy_bn"]["input_shift"], ("bn", "noisy_bn"))
    e = {"final_train_accuracy": {n: s[n]["final_train"] for n in MLP_NETWORKS},
         "nearly_as_well": C.noninferiority_test(s["noisy_bn"]["final_train"], s["bn"]["final_train"],
                                                 margin=TRAIN_MARGIN),
         "input_shift": {n: s[n]["input_shift"] for n in MLP_NETWORKS}, "shift_result": shift["result"],
         "shift_p": shift["p"], "seeds": len(s["bn"]["final_train"])}
    return C.claim("NOISY-BN-TRAINS", "004", "sec. 1.3, Figure 1", "networks with noisy BN train nearly as well as BN "
                   "networks although their layer inputs shift", _setting(metrics["config"]), e,
                   "'nearly as well': noisy BN's final training accuracy (eval mode) shown not below BN's by "
                   f"{100 * TRAIN_MARGIN:g} points or more (one-sided paired t-test over the seeds, alpha 0.05; the "
                   "document's words allow a small loss, taken as 2 points); 'inputs shift': the std over the probe "
                   "steps of a watched neuron's batch mean (first and last hidden layer) significantly larger for "
                   "noisy BN than for BN (paired t-test of log10, p < 0.05). REPRODUCED if both are shown; PARTLY if "
                   "it trains nearly as well but the shift is not shown; NOT-REPRODUCED if it is shown to train worse "
                   "by the margin or more (the upper confidence bound below -2 points); INCONCLUSIVE otherwise or with "
                   "one seed", decide_noisy,
                   test="one-sided paired t-test (non-inferiority, margin 2 points); paired t-test of log10 shifts",
                   margin=C.margin(100 * TRAIN_MARGIN, "training accuracy points"))


def decide_noisy(e) -> str:
    if e["seeds"] < 2:
        return C.INCONCLUSIVE
    trains, worse = e["nearly_as_well"]["noninferior"], e["nearly_as_well"]["inferior"]
    if worse:
        return C.NOT_REPRODUCED
    if not trains:
        return C.INCONCLUSIVE
    return C.REPRODUCED if e["shift_result"].startswith("smaller with bn") else C.PARTLY


@claims.rule("NOISY-BN-IMPROVES")
def noisy_bn_improves(metrics) -> dict:
    s = metrics["summary"]
    noisy, plain = s["noisy_bn"]["mean_train_accuracy"], s["plain"]["mean_train_accuracy"]
    gain = C.noninferiority_test(noisy, plain, margin=SUBSTANTIAL)
    e = {"mean_train_accuracy": {n: s[n]["mean_train_accuracy"] for n in MLP_NETWORKS},
         "gain_noisy_minus_plain": {k: gain[k] for k in ("estimate", "lower_bound", "upper_bound", "level", "n")},
         "final_train_accuracy": {n: s[n]["final_train"] for n in MLP_NETWORKS}}
    return C.claim("NOISY-BN-IMPROVES", "004", "sec. 1.3, Figure 1", "even after introducing substantial covariate "
                   "shift the [noisy] BN model leads to substantial improvements in training accuracy [over the "
                   "standard network]", _setting(metrics["config"]), e,
                   "per seed, the training accuracy averaged over the epochs (each epoch's accuracy on its batches as "
                   "they were trained on, noise included: the training curve of the paper's figure, by its area), "
                   "noisy BN minus the plain network, one-sided 95 % confidence bounds of the paired mean: REPRODUCED "
                   f"if the lower bound is above {100 * SUBSTANTIAL:g} point ('substantial', taken as 1 point of "
                   "training accuracy); PARTLY if above 0 only; NOT-REPRODUCED if the upper bound is below 1 point "
                   "(the gain, if any, shown smaller); INCONCLUSIVE otherwise or with one seed", decide_improves,
                   test="one-sided confidence bounds of the paired mean difference (t), margin 1 point",
                   margin=C.margin(100 * SUBSTANTIAL, "training accuracy points"))


def decide_improves(e) -> str:
    g = e["gain_noisy_minus_plain"]
    if g["n"] < 2 or not math.isfinite(g["lower_bound"]):
        return C.INCONCLUSIVE
    if g["lower_bound"] > SUBSTANTIAL:
        return C.REPRODUCED
    if g["lower_bound"] > 0:
        return C.PARTLY
    return C.NOT_REPRODUCED if g["upper_bound"] < SUBSTANTIAL else C.INCONCLUSIVE


@claims.rule("ICS-DISTRIBUTIONS-SIMILAR")
def distributions_similar(metrics) -> dict:
    s = metrics["summary"]
    bn, plain = s["bn"]["distribution_shift"], s["plain"]["distribution_shift"]
    e = {"relative_shift": {n: s[n]["distribution_shift"] for n in MLP_NETWORKS},
         "difference": C.paired_log_ratio(bn, plain, ("bn", "plain")),
         "equivalence": C.equivalence_test(bn, plain, margin=SIMILAR_SHIFT, ratio=True)}
    return C.claim("ICS-DISTRIBUTIONS-SIMILAR", "004", "sec. 1.3", "the distributions [of activations from two "
                   "layers during training, with and without BN] are highly similar, providing evidence that ICS has "
                   "not been improved", _setting(metrics["config"]), e,
                   "per seed, how far a watched neuron's distribution over the batch (first and last hidden layer, "
                   "after the normalization) moves between successive probes, in its own units: W1(P_t, P_t+1) over "
                   "the mean of their standard deviations, averaged over the probes and both layers; BN against the "
                   f"plain network: REPRODUCED if equal within a factor {SIMILAR_SHIFT:g} (TOST on the logs, alpha "
                   f"0.05; 'highly similar', taken as a factor {SIMILAR_SHIFT:g}); NOT-REPRODUCED if significantly "
                   "different (paired t-test of the logs, p < 0.05) and not equivalent; INCONCLUSIVE otherwise or "
                   "with one seed", decide_distributions, test="TOST on the log ratio; paired t-test of the logs",
                   margin=C.margin(SIMILAR_SHIFT, "factor"))


def decide_distributions(e) -> str:
    if e["difference"]["seeds"] < 2:
        return C.INCONCLUSIVE
    if e["equivalence"]["equivalent"]:
        return C.REPRODUCED
    return C.INCONCLUSIVE if e["difference"]["result"] == "no significant difference" else C.NOT_REPRODUCED


@claims.rule("LP-SMOOTHING")
def lp_smoothing(metrics):
    s = metrics["summary"]
    norms = [n for n in LP_NORMS if n in s]
    if not norms:
        return None

    def tests(name):
        return {m: C.paired_log_ratio(s[name][m], s["plain"][m], (name, "plain")) for m in LP_MEASURES}
    bn = tests("bn")
    smoothed = [m for m, q in zip(LP_MEASURES, C.holm([bn[m]["p"] for m in LP_MEASURES]))
                if q < 0.05 and bn[m]["mean_log10_ratio"] < 0]
    per = {n: tests(n) for n in norms}
    everyone = {"bn": bn, **per}
    pairs = [(n, m) for n in norms for m in smoothed]
    adjusted = C.holm([per[n][m]["p"] for n, m in pairs])
    e = {"bn_smoother_on": smoothed, "seeds": len(s["plain"][LP_MEASURES[0]]),
         "mean_log10_ratio_to_plain": {n: {m: t["mean_log10_ratio"] for m, t in tested.items()}
                                       for n, tested in everyone.items()},
         "p_holm": {f"{n}/{m}": q for (n, m), q in zip(pairs, adjusted)},
         "smoother": [f"{n}/{m}" for (n, m), q in zip(pairs, adjusted) if q < 0.05 and per[n][m]["mean_log10_ratio"] < 0],
         "rougher": [f"{n}/{m}" for (n, m), q in zip(pairs, adjusted) if q < 0.05 and per[n][m]["mean_log10_ratio"] > 0]}
    e["comparisons"] = len(pairs)
    return C.claim("LP-SMOOTHING", "004", "sec. 1.3", "other normalisation protocols [L_p normalizations] produce "
                   "similar smoothing effects", _setting(metrics["config"]), e,
                   "the smoothing effect is batch norm's: the measures of 004's Figure 3 (loss variation, gradient "
                   "predictiveness, effective beta, each averaged over the probe steps) on which BN is significantly "
                   "smaller than the plain network (paired t-tests of log10 over the seeds, Holm-adjusted over the "
                   "three, p < 0.05); then each Lp network against the plain network on those measures, Holm-adjusted "
                   "over all (norm, measure) pairs: REPRODUCED if every Lp network is significantly smaller on every "
                   "one; PARTLY if some are and none is significantly larger; NOT-REPRODUCED if none is, or one is "
                   "larger; INCONCLUSIVE if BN smooths no measure (nothing to be similar to) or with one seed",
                   decide_lp_smoothing, test="paired t-tests of log10, Holm-adjusted")


def decide_lp_smoothing(e) -> str:
    if e["seeds"] < 2 or not e["bn_smoother_on"]:
        return C.INCONCLUSIVE
    if e["rougher"] or not e["smoother"]:
        return C.NOT_REPRODUCED
    return C.REPRODUCED if len(e["smoother"]) == e["comparisons"] else C.PARTLY


@claims.rule("DLN-LATE")
def dln_late(metrics):
    cfg, runs = metrics["config"], metrics["runs"]
    if "dln_bn" not in runs:
        return None
    late = cfg["dln_late_step"]

    def window(network, measure):
        """Per seed, the measure averaged over the probes from ``late`` on (None if there are none)."""
        out = []
        for r in runs[network]:
            values = [_measure(q, measure) for q in r["probes"] if q["step"] >= late]
            out.append(float(np.nanmean(values)) if values else None)
        return out

    e = {"late_from_step": late, "last_probe_step": max(q["step"] for q in runs["dln_bn"][0]["probes"])}
    if e["last_probe_step"] >= late:
        e.update({m: C.smaller(window("dln_bn", m), window("dln_plain", m), DLN_NETWORKS[::-1])
                  for m in ("loss_variation", "gradient_predictiveness")})
    return C.claim("DLN-LATE", "004", "sec. 1.3 (supplementary figures 9 and 12)", "the smoothness metrics for the "
                   "DLN, with and without BN, are similar after the first few thousand training steps; in fact the "
                   "loss variability and gradient predictiveness appear worse in the BN model",
                   _setting(cfg, dln=True) + f"; late: the probes from step {late}", e,
                   f"per seed, the loss variation and the gradient predictiveness averaged over the probes from step "
                   f"--dln-late-step ({late}) on, BN against plain deep linear network: 'similar or worse' on a "
                   f"measure when BN's is equal within a factor {C.SMALLER_FACTOR} (TOST on the logs) or significantly "
                   "larger (paired t-test of the logs, p < 0.05). REPRODUCED if so on both measures; PARTLY if on one "
                   "and BN is not significantly smaller on the other; NOT-REPRODUCED if BN is significantly smaller "
                   "on one; INCONCLUSIVE otherwise, with one seed, or if no probe reaches that step",
                   decide_dln_late, test=C.SMALLER_TEST, margin=C.margin(C.SMALLER_FACTOR, "factor"))


def _measure(probe: dict, measure: str) -> float:
    """One probe's loss variation (the band's width) or gradient predictiveness (its largest change)."""
    low, high = probe[measure]
    return high - low if measure == "loss_variation" else high


def decide_dln_late(e) -> str:
    if "loss_variation" not in e or e["loss_variation"]["seeds"] < 2:
        return C.INCONCLUSIVE
    results = [e[m] for m in ("loss_variation", "gradient_predictiveness")]
    if any(r["result"].startswith("smaller") for r in results):
        return C.NOT_REPRODUCED
    similar = [r["result"].startswith("larger") or r["equivalence"]["equivalent"] for r in results]
    return C.REPRODUCED if all(similar) else C.PARTLY if any(similar) else C.INCONCLUSIVE


@claims.rule("SIGMA-LARGE", "TERMS-SIGNIFICANT")
def eq1_premises(metrics):
    """Seed 001 sec. 2.1's premises of the better Lipschitz constant, measured in the trained BN MLPs."""
    if "bn" not in metrics["runs"]:
        return None
    runs = metrics["runs"]["bn"]
    table = {when: [r["terms"][when] for r in runs] for when in ("start", "end")}  # seeds x layers

    def values(when, key):
        return [[layer[key] for layer in seed] for seed in table[when]]

    def share(when, key, test):
        flat = [v for seed in values(when, key) for v in seed]
        return sum(map(test, flat)) / len(flat)

    setting = _setting(metrics["config"]) + "; the BN MLP's batch-norm layers on the step's batch, at the first " \
                                            "and the last step, medians over each layer's neurons"
    e_sigma = {"gamma_over_sigma": {w: values(w, "gamma_over_sigma") for w in table},
               "sigma": {w: values(w, "sigma") for w in table},
               "below_1_at_end": share("end", "gamma_over_sigma", lambda v: v < 1)}
    e_terms = {**{f"{key}_share": {w: values(w, f"{key}_share") for w in table} for key in ("ones", "projection")},
               **{f"{key}_significant_at_end": share("end", f"{key}_share", lambda v: v >= SHARE)
                  for key in ("ones", "projection")}}
    return [
        C.claim("SIGMA-LARGE", "001", "sec. 2.1", "for the scaling constant gamma/sigma_j, sigma_j tends to be large in "
                "practice [so that batch norm shrinks the gradient]", setting, e_sigma,
                "at the end of training, per seed and batch-norm layer, the median over its neurons of |gamma_j| / "
                "sigma_j (sigma_j the batch's standard deviation of the layer's input): REPRODUCED if below 1 in "
                "every (seed, layer); PARTLY if in some; NOT-REPRODUCED if in none; the values at the first step "
                "are reported beside them", decide_sigma, test="threshold on every seed and layer"),
        C.claim("TERMS-SIGNIFICANT", "001", "sec. 2.1", "<1, grad L>^2 grows quadratically in the dimension of grad L, "
                "and thus it is significant; <grad L, yhat_j>^2 may also be significant", setting, e_terms,
                "at the end of training, per seed and batch-norm layer, the median over its neurons of the share of "
                "||g_j||^2 (g_j = dL/dz_j over the batch) that <1, g_j>^2 / m and <g_j, yhat_j>^2 / m take (the "
                "exact form of eq. (1), with 1/m where the seed writes 1/sqrt(m)): a term is significant where its "
                f"share is >= {100 * SHARE:g} % (a gradient unrelated to 1 or yhat would give 1/m); REPRODUCED if "
                "both are in every (seed, layer); PARTLY if either is in some; NOT-REPRODUCED if neither is in any",
                decide_terms, test="threshold on every seed and layer"),
    ]


def decide_sigma(e) -> str:
    below = e["below_1_at_end"]
    return C.REPRODUCED if below == 1 else C.PARTLY if below > 0 else C.NOT_REPRODUCED


def decide_terms(e) -> str:
    shares = [e["ones_significant_at_end"], e["projection_significant_at_end"]]
    return C.REPRODUCED if min(shares) == 1 else C.PARTLY if max(shares) > 0 else C.NOT_REPRODUCED


# -- figures and summary ----------------------------------------------------------------------------------


def figures(metrics: dict, folder) -> dict:
    out = {"probes.png": lambda p: _probes_figure(metrics, ("plain", "bn"), p),
           "ics.png": lambda p: _ics_figure(metrics, p),
           "noisy_bn.png": lambda p: _noisy_figure(metrics, p)}
    if metrics["config"]["dln"]:
        out["dln_probes.png"] = lambda p: _probes_figure(metrics, DLN_NETWORKS, p)
    lp = tuple(n for n in LP_NORMS if n in metrics["runs"])
    if lp:
        out["lp_probes.png"] = lambda p: _probes_figure(metrics, ("plain", "bn", *lp), p)
    return out


def _probes_figure(metrics, pair, path):
    plt = plotting.plt
    fig, axes = plt.subplots(1, 4, figsize=(18, 3.8), constrained_layout=True)
    for i, network in enumerate(pair):
        run_ = metrics["runs"][network][0]
        steps = [q["step"] for q in run_["probes"]]
        lo, hi = zip(*[q["loss_variation"] for q in run_["probes"]])
        axes[0].fill_between(steps, lo, hi, color=f"C{i}", alpha=0.4, label=network)
        lo, hi = zip(*[q["gradient_predictiveness"] for q in run_["probes"]])
        axes[1].fill_between(steps, lo, hi, color=f"C{i}", alpha=0.4, label=network)
        axes[2].plot(steps, [q["effective_beta"] for q in run_["probes"]], color=f"C{i}", label=network)
        axes[3].plot(steps, [q["curvature"] for q in run_["probes"]], color=f"C{i}", label=network)
    titles = ("loss variation L(theta - eta g) over eta", "gradient predictiveness (range over eta)",
              "effective beta-smoothness", "g^T H g / ||g||^2")
    for ax, title in zip(axes, titles):
        ax.set(xlabel="step", title=title, yscale="log" if title != titles[3] else "symlog")
        ax.grid(True, alpha=0.3)
        ax.legend()
    fig.suptitle(f"probes along training, seed {metrics['seeds'][0]}")
    plotting.save_figure(fig, path)


def _ics_figure(metrics, path):
    plt = plotting.plt
    fig, axes = plt.subplots(1, 2, figsize=(12, 4), constrained_layout=True)
    for i, network in enumerate(MLP_NETWORKS):
        run_ = metrics["runs"][network][0]
        steps = [s["step"] for s in run_["ics"]]
        blocks = len(run_["ics"][0]["l2"])
        for b in range(1, blocks):
            style = {"color": f"C{i}", "alpha": 0.3 + 0.7 * b / blocks, "label": f"{network}, block {b + 1}"}
            axes[0].plot(steps, [s["l2"][b] for s in run_["ics"]], **style)
            axes[1].plot(steps, [s["cos"][b] for s in run_["ics"]], **style)
    axes[0].set(xlabel="step", ylabel="||G - G'||", yscale="log", title="internal covariate shift (l2)")
    axes[1].set(xlabel="step", ylabel="cos(G, G')", title="internal covariate shift (cosine; 1: none)")
    for ax in axes:
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    plotting.save_figure(fig, path)


def _noisy_figure(metrics, path):
    plt = plotting.plt
    fig, axes = plt.subplots(2, 2, figsize=(12, 8), constrained_layout=True)
    for i, network in enumerate(MLP_NETWORKS):
        runs = metrics["runs"][network]
        per_epoch = max(1, len(runs[0]["train_loss"]) // max(1, len(runs[0]["test_curve"])))
        loss = np.mean([np.reshape(r["train_loss"][:per_epoch * len(r["test_curve"])], (-1, per_epoch)).mean(1)
                        for r in runs], axis=0)
        axes[0][0].plot(np.arange(1, len(loss) + 1), loss, color=f"C{i}", label=network)
        axes[0][1].plot(np.arange(1, len(loss) + 1), 100 * np.mean([r["test_curve"] for r in runs], axis=0),
                        color=f"C{i}", label=network)
        for k, ax in enumerate(axes[1] if network != "plain" else ()):  # (the plain network's scale would hide them)
            inputs = runs[0]["layer_inputs"]
            steps = [q["step"] for q in inputs]
            q = np.array([q[f"layer{k}"]["quantiles"] for q in inputs])
            ax.fill_between(steps, q[:, 0], q[:, 4], color=f"C{i}", alpha=0.15)
            ax.fill_between(steps, q[:, 1], q[:, 3], color=f"C{i}", alpha=0.35)
            ax.plot(steps, q[:, 2], color=f"C{i}", label=f"{network} (median, 25-75 %, 5-95 %)")
    axes[0][0].set(xlabel="epoch", ylabel="training loss (mean over the epoch)", yscale="log",
                   title=f"mean over {len(metrics['seeds'])} seeds")
    axes[0][1].set(xlabel="epoch", ylabel="test accuracy (%)")
    for k, ax in enumerate(axes[1]):
        ax.set(xlabel="step", ylabel="layer input of one neuron (after the norm)",
               title=f"{'first' if k == 0 else 'last'} hidden layer, seed {metrics['seeds'][0]}")
    for ax in axes.ravel():
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    plotting.save_figure(fig, path)


def summary(metrics: dict) -> str:
    lines = ["per network, mean over seeds of the per-seed averages over the probe steps:"]
    keys = ("loss_variation", "gradient_predictiveness", "effective_beta", "curvature", "ics_l2", "ics_cos",
            "input_shift", "final_train", "final_test")
    lines.append(f"{'network':<10} " + " ".join(f"{k:>14}" for k in keys))
    for network, s in metrics["summary"].items():
        lines.append(f"{network:<10} " + " ".join(f"{np.mean(s[k]):14.4g}" for k in keys))
    return "\n".join(lines)


def headline(metrics: dict) -> dict:
    return {f"{n}_{k}_mean": float(np.mean(v)) for n, s in metrics["summary"].items() for k, v in s.items()}


if __name__ == "__main__":
    experiment.main(__name__)

"""One table of layer specs; tests/test_layers.py generates every check from it.

A spec's ``fn(lib, *xs)`` runs on minibn and, where ``torch`` is set, on PyTorch (the
same spelling); ``ref`` is an independent NumPy forward. A new normalization is one
entry here: forward against its reference in float64 and float32, backward, double and
triple backward, the PyTorch cross-check, each kernel set (numpy, numba) and the CuPy
stand-in all follow.
"""

from __future__ import annotations

import math

import numpy as np

from .op_specs import OpSpec

EPS = 1e-5
RUNNING_MEAN, RUNNING_VAR = np.array([0.3, -0.2, 0.1]), np.array([1.5, 0.7, 2.0])


def _layout(x):
    """The axes per-channel statistics of an (N, C) or (N, C, L) array run over, and a (C,) vector's shape
    for broadcasting against it."""
    return ((0,), (1, -1)) if x.ndim == 2 else ((0, 2), (1, -1, 1))


def _bn_ref(x, w, b, eps=EPS):
    axes, shape = _layout(x)
    mu, var = x.mean(axes, keepdims=True), x.var(axes, keepdims=True)
    return w.reshape(shape) * (x - mu) / np.sqrt(var + eps) + b.reshape(shape)


def _hoffer(p, m):
    """Hoffer et al.'s constants: sqrt(pi/2) (p = 1), 1 (p = 2), (1 + sqrt(pi ln 4)) / (2 sqrt(2 ln m)) (p = inf)."""
    if p == 1:
        return math.sqrt(math.pi / 2)
    if p == 2:
        return 1.0
    assert p == math.inf, p
    return (1 + math.sqrt(math.pi * math.log(4))) / (2 * math.sqrt(2 * math.log(m)))


def _lp_ref(p, centered=True, mean_shift=True, hoffer=False):
    def ref(x, w=None, b=None):
        axes, shape = _layout(x)
        centered_x = x - x.mean(axes, keepdims=True)
        u = centered_x if centered else x
        if p == math.inf:
            s = np.abs(u).max(axes, keepdims=True) + EPS
        else:
            s = ((np.abs(u) ** p).mean(axes, keepdims=True) + EPS) ** (1 / p)
        if hoffer:
            s = s * _hoffer(p, x.size // x.shape[1])
        y = (centered_x if mean_shift else x) / s
        return y if w is None else w.reshape(shape) * y + b.reshape(shape)
    return ref


NOISE_SEED = 3


def _noisy_bn_ref(x, w, b):
    """batch norm, then Algorithm 1's noise a s + m, drawn in batch_norm_noise's order and with its defaults
    from NumPy's PCG64 generator, which mb.Generator(NOISE_SEED) wraps."""
    n, units = x.shape
    rng = np.random.default_rng(NOISE_SEED)
    mu, sigma = rng.uniform(-0.5, 0.5, units), rng.uniform(1.0, 1.25, units)
    shift = rng.uniform(mu - 0.1, mu + 0.1, (n, units))
    scale = rng.normal(sigma, 0.1, (n, units))
    return _bn_ref(x, w, b) * scale + shift


def _softmax_ce_ref(x, target):
    z = x - x.max(1, keepdims=True)
    return (np.log(np.exp(z).sum(1)) - z[np.arange(len(x)), target]).mean()


TARGET = [0, 2, 1, 1, 0, 2]
CLASS_WEIGHT = [0.5, 2.0, 1.5]
PROBABILITIES = np.random.default_rng(11).uniform(0, 1, (6, 3))
POS_WEIGHT = [3.0, 0.5, 1.0]


def _log_softmax_ref(x, axis=1):
    z = x - x.max(axis, keepdims=True)
    return z - np.log(np.exp(z).sum(axis, keepdims=True))


def _nll_ref(logp, target, weight=None, ignore_index=-100):
    """-w[t] logp[t] summed over the samples kept, over the sum of their w[t]."""
    target = np.asarray(target)
    weight = np.ones(logp.shape[1]) if weight is None else np.asarray(weight)
    kept = target != ignore_index
    rows = np.flatnonzero(kept)
    w = weight[target[kept]]
    return -(w * logp[rows, target[kept]]).sum() / w.sum()


def _softplus(x):
    return np.logaddexp(0, x)


def _layer(name, fn, ref, *shapes, domains=(), analytic=True, torch=True):
    return OpSpec(name, fn, ref, tuple(shapes), tuple(domains), analytic, torch)


def _const(lib, x, a):
    return lib.tensor(np.asarray(a), dtype=x.dtype, device=x.device)


LAYERS = [
    *[_layer(f"batch_norm_train_no_affine_{'x'.join(map(str, shape))}",
             lambda lib, x: lib.nn.functional.batch_norm(x, None, None, training=True),
             lambda x: _bn_ref(x, np.ones(x.shape[1]), np.zeros(x.shape[1])), shape)
      for shape in ((2, 1), (6, 3), (4, 3, 2))],
    _layer("batch_norm_train", lambda lib, x, w, b: lib.nn.functional.batch_norm(x, None, None, w, b, training=True),
           _bn_ref, (6, 3), (3,), (3,), domains=("real", "positive", "real")),
    _layer("batch_norm_train_3d", lambda lib, x, w, b: lib.nn.functional.batch_norm(x, None, None, w, b, training=True),
           _bn_ref, (4, 3, 2), (3,), (3,), domains=("real", "positive", "real")),
    _layer("batch_norm_eval", lambda lib, x, w, b: lib.nn.functional.batch_norm(
        x, _const(lib, x, RUNNING_MEAN), _const(lib, x, RUNNING_VAR), w, b, training=False),
        lambda x, w, b: w * (x - RUNNING_MEAN) / np.sqrt(RUNNING_VAR + EPS) + b, (6, 3), (3,), (3,),
        domains=("real", "positive", "real")),
    _layer("batch_norm_fused_bias_relu", lambda lib, x, w, b, c: lib.nn.functional.batch_norm(
        x, None, None, w, b, training=True, input_bias=c, activation="relu"),
        lambda x, w, b, c: np.maximum(_bn_ref(x + c, w, b), 0), (6, 3), (3,), (3,), (3,),
        domains=("spread", "positive", "unit", "real"), analytic=False, torch=False),
    *[_layer(f"lp_norm_p{p}{'' if centered else '_uncentered'}{'' if mean_shift else '_no_mean_shift'}",
             lambda lib, x, w, b, p=p, centered=centered, mean_shift=mean_shift: lib.nn.functional.lp_norm(
                 x, p, None, None, w, b, training=True, centered=centered, mean_shift=mean_shift),
             _lp_ref(p, centered, mean_shift), (6, 3), (3,), (3,),
             domains=("peaked" if p == math.inf else "spread", "positive", "real"),
             analytic=False, torch=False)
      for p in (1, 1.5, 2, 3, 4, math.inf) for centered in (True, False) for mean_shift in (True, False)],
    *[_layer(f"lp_norm_p{p}_hoffer_3d_no_affine",
             lambda lib, x, p=p: lib.nn.functional.lp_norm(x, p, training=True, hoffer=True),
             _lp_ref(p, hoffer=True), (5, 3, 2), domains=("peaked" if p == math.inf else "spread",),
             analytic=False, torch=False)
      for p in (1, 2, math.inf)],
    *[_layer(f"lp_norm_p{p}_hoffer_3d",
             lambda lib, x, w, b, p=p: lib.nn.functional.lp_norm(x, p, None, None, w, b, training=True, hoffer=True),
             _lp_ref(p, hoffer=True), (5, 3, 2), (3,), (3,),
             domains=("peaked" if p == math.inf else "spread", "positive", "real"), analytic=False, torch=False)
      for p in (1, math.inf)],
    _layer("lp_norm_p2_is_batch_norm", lambda lib, x, w, b: lib.nn.functional.lp_norm(x, 2, None, None, w, b,
                                                                                        training=True),
           _bn_ref, (6, 3), (3,), (3,), domains=("real", "positive", "real"), analytic=False, torch=False),
    _layer("linear", lambda lib, x, w, b: lib.nn.functional.linear(x, w, b), lambda x, w, b: x @ w.T + b,
           (5, 4), (3, 4), (3,)),
    *[_layer(f"linear_no_bias_{len(shape)}d", lambda lib, x, w: lib.nn.functional.linear(x, w),
             lambda x, w: x @ w.T, shape, (3, 4))
      for shape in ((4,), (5, 4), (2, 5, 4))],
    _layer("linear_1d", lambda lib, x, w, b: lib.nn.functional.linear(x, w, b), lambda x, w, b: x @ w.T + b,
           (4,), (3, 4), (3,)),
    _layer("linear_3d", lambda lib, x, w, b: lib.nn.functional.linear(x, w, b), lambda x, w, b: x @ w.T + b,
           (2, 5, 4), (3, 4), (3,)),
    _layer("cross_entropy", lambda lib, x: lib.nn.functional.cross_entropy(x, lib.tensor(TARGET, device=x.device)),
           lambda x: _softmax_ce_ref(x, np.array(TARGET)), (6, 3)),
    _layer("nll_loss", lambda lib, x: lib.nn.functional.nll_loss(lib.nn.functional.log_softmax(x, 1),
                                                                  lib.tensor(TARGET, device=x.device)),
           lambda x: _nll_ref(_log_softmax_ref(x), TARGET), (6, 3)),
    _layer("nll_loss_weight_ignore", lambda lib, x: lib.nn.functional.nll_loss(  # (of x alone it is linear)
        lib.nn.functional.log_softmax(x, 1), lib.tensor(TARGET, device=x.device), weight=_const(lib, x, CLASS_WEIGHT),
        ignore_index=1), lambda x: _nll_ref(_log_softmax_ref(x), TARGET, CLASS_WEIGHT, ignore_index=1), (6, 3)),
    _layer("nll_loss_module_sum_3d", lambda lib, x: lib.nn.NLLLoss(reduction="sum")(
        lib.nn.LogSoftmax(dim=1)(x), lib.tensor(np.array(TARGET).reshape(3, 2), device=x.device)),
        lambda x: -np.take_along_axis(_log_softmax_ref(x), np.array(TARGET).reshape(3, 1, 2), 1).sum(), (3, 3, 2)),
    _layer("softmax_module", lambda lib, x: lib.nn.Softmax(dim=1)(x), lambda x: np.exp(_log_softmax_ref(x)), (6, 3)),
    _layer("binary_cross_entropy", lambda lib, x: lib.nn.functional.binary_cross_entropy(
        x, _const(lib, x, PROBABILITIES)),
        lambda x: -(PROBABILITIES * np.log(x) + (1 - PROBABILITIES) * np.log(1 - x)).mean(), (6, 3),
        domains=("probability",), analytic=False),
    _layer("bce_loss_module_weight", lambda lib, x: lib.nn.BCELoss(weight=_const(lib, x, CLASS_WEIGHT))(
        x, _const(lib, x, PROBABILITIES)),
        lambda x: -(np.array(CLASS_WEIGHT) * (PROBABILITIES * np.log(x) + (1 - PROBABILITIES) * np.log(1 - x))).mean(),
        (6, 3), domains=("probability",), analytic=False),
    _layer("bce_with_logits", lambda lib, x: lib.nn.functional.binary_cross_entropy_with_logits(
        x, _const(lib, x, PROBABILITIES), reduction="sum"),
        lambda x: (PROBABILITIES * _softplus(-x) + (1 - PROBABILITIES) * _softplus(x)).sum(), (6, 3), analytic=False),
    _layer("bce_with_logits_module_pos_weight", lambda lib, x: lib.nn.BCEWithLogitsLoss(
        pos_weight=_const(lib, x, POS_WEIGHT))(x, _const(lib, x, PROBABILITIES)),
        lambda x: (np.array(POS_WEIGHT) * PROBABILITIES * _softplus(-x) + (1 - PROBABILITIES) * _softplus(x)).mean(),
        (6, 3), analytic=False),
    _layer("mse_loss", lambda lib, x, t: lib.nn.functional.mse_loss(x, t), lambda x, t: ((x - t) ** 2).mean(),
           (6, 3), (6, 3)),
    _layer("linear_bn_relu", lambda lib, x, w, b, g: lib.nn.functional.relu(lib.nn.functional.batch_norm(
        lib.nn.functional.linear(x, w, b), None, None, g, None, training=True)),
        lambda x, w, b, g: np.maximum(_bn_ref(x @ w.T + b, g, np.zeros(3)), 0), (6, 4), (3, 4), (3,), (3,),
        domains=("real", "real", "real", "positive"), analytic=False),
    _layer("batch_norm_noise", lambda lib, x, w, b: lib.nn.functional.batch_norm_noise(
        lib.nn.functional.batch_norm(x, None, None, w, b, training=True), generator=lib.Generator(NOISE_SEED)),
        _noisy_bn_ref, (6, 3), (3,), (3,), domains=("real", "positive", "real"), torch=False),
]

LAYERS_BY_NAME = {s.name: s for s in LAYERS}

"""Claims: what a document states, what was run, what was measured, and the verdict a stated
rule gives on those measurements.

A verdict is never written by hand: :func:`claim` takes the evidence and a ``decide``
function, and records what ``decide(evidence)`` returns. An experiment's claims are a
:class:`Claims`, one rule function per claim (or family of claims), each computing its evidence
from the run's metrics alone, so that ``rejudge`` can decide them again from a saved
metrics.json. With several seeds, a difference inside the seeds' spread is not a difference:
:func:`compare` for independent samples (their ranges must not overlap), :func:`paired_compare`
for the same seeds under two conditions (an exact sign test), or :func:`paired_t_compare` (a
paired t-test, for few seeds).
"""

from __future__ import annotations

import math

import numpy as np

REPRODUCED = "REPRODUCED"
NOT_REPRODUCED = "NOT-REPRODUCED"
PARTLY = "PARTLY"
INCONCLUSIVE = "INCONCLUSIVE"
VERDICTS = (REPRODUCED, NOT_REPRODUCED, PARTLY, INCONCLUSIVE)
FIELDS = ("id", "seed", "section", "claim", "setting", "evidence", "verdict", "rule")


def claim(id: str, seed: str, section: str, text: str, setting: str, evidence: dict, rule: str,
          decide) -> dict:
    """A checked claim as a dict of :data:`FIELDS`: ``seed`` names the document (e.g. "000"),
    ``text`` quotes or closely paraphrases it, ``setting`` says what was run, ``evidence`` holds
    the measured numbers, and the verdict is ``decide(evidence)``, one of :data:`VERDICTS`,
    following ``rule`` (the rule in words)."""
    verdict = decide(evidence)
    if verdict not in VERDICTS:
        raise ValueError(f"claim {id}: decide returned {verdict!r}, not one of {VERDICTS}")
    return {"id": id, "seed": seed, "section": section, "claim": text, "setting": setting,
            "evidence": evidence, "verdict": verdict, "rule": rule}


class ClaimError(ValueError):
    """A claim that cannot be decided from the metrics it was given; the message names the claim
    and, for missing evidence, the key."""


class Claims:
    """An experiment's claims, in the order they are declared:

        claims = C.Claims()

        @claims.rule("D10-LR1")
        def lr_one(metrics):            # -> a claim, a list of claims, or None (not applicable)
            ...
            return C.claim("D10-LR1", ...)

    ``claims(metrics)`` decides every one; a rule whose metrics lack a key it reads raises
    :class:`ClaimError` naming the claim and the key (a run saved before the rule asked for it).
    """

    def __init__(self):
        self.rules: list = []  # (ids, function)

    def rule(self, *ids: str):
        """Register the decorated ``function(metrics)`` as the rule of the claims ``ids`` (a family
        written as "NORM-ACC-<variant>")."""
        if not ids:
            raise ValueError("Claims.rule: name the claim ids the rule decides")

        def register(function):
            self.rules.append((ids, function))
            return function
        return register

    def __call__(self, metrics: dict) -> list:
        out = []
        for ids, function in self.rules:
            try:
                made = function(metrics)
            except KeyError as exc:
                raise ClaimError(f"claim {' / '.join(ids)}: the metrics lack {exc.args[0]!r}, which its rule "
                                 "reads (a run saved before the rule asked for it?)") from exc
            out.extend([] if made is None else [made] if isinstance(made, dict) else made)
        return out


def compare(a, b) -> int:
    """+1 if the values ``a`` (one per seed) lie clearly above ``b``, -1 if clearly below, 0 if
    the difference is inside the seeds' spread: the ranges [min, max] of the two must not
    overlap. With one value each, any difference counts. NaN values are ignored."""
    a = np.asarray(a, dtype=float).ravel()
    b = np.asarray(b, dtype=float).ravel()
    a, b = a[~np.isnan(a)], b[~np.isnan(b)]
    if not len(a) or not len(b):
        return 0
    if a.min() > b.max():
        return 1
    if a.max() < b.min():
        return -1
    return 0


def paired_compare(a, b, alpha: float = 0.05) -> int:
    """For paired values (the same seeds or problems under two conditions): +1 if ``a`` exceeds
    ``b`` on significantly many pairs, -1 if it falls below on significantly many, else 0. The
    test is the exact two-sided sign test at level ``alpha``; ties and NaN pairs are dropped."""
    a, b = np.asarray(a, dtype=float).ravel(), np.asarray(b, dtype=float).ravel()
    if a.shape != b.shape:
        raise ValueError(f"paired_compare needs pairs: {a.shape} and {b.shape} values")
    keep = ~(np.isnan(a) | np.isnan(b)) & (a != b)
    above, n = int((a[keep] > b[keep]).sum()), int(keep.sum())
    if n == 0 or sign_test(above, n) >= alpha:
        return 0
    return 1 if above > n - above else -1


def sign_test(k: int, n: int) -> float:
    """Two-sided p-value of k successes in n fair coin flips (the exact sign test)."""
    tail = sum(math.comb(n, i) for i in range(min(k, n - k) + 1)) / 2 ** n
    return min(1.0, 2 * tail)


def paired_t_test(a, b) -> tuple:
    """(mean difference, p): the two-sided paired t-test of a - b over the pairs (NaN pairs
    dropped). With no variation, p is 0 for a non-zero difference and 1 for none."""
    a, b = np.asarray(a, dtype=float).ravel(), np.asarray(b, dtype=float).ravel()
    if a.shape != b.shape:
        raise ValueError(f"paired_t_test needs pairs: {a.shape} and {b.shape} values")
    diff = (a - b)[~(np.isnan(a) | np.isnan(b))]
    n = len(diff)
    if n < 2:
        return (float(diff.mean()) if n else math.nan), 1.0
    mean, sd = float(diff.mean()), float(diff.std(ddof=1))
    if sd == 0:
        return mean, (0.0 if mean != 0 else 1.0)
    t = mean / (sd / math.sqrt(n))
    nu = n - 1
    return mean, _betainc(nu / 2, 0.5, nu / (nu + t * t))


def paired_t_compare(a, b, alpha: float = 0.05) -> int:
    """+1 if ``a`` is above ``b`` on the same seeds by a paired t-test at level ``alpha``, -1 if
    below, 0 if the difference is not significant."""
    mean, p = paired_t_test(a, b)
    return 0 if p >= alpha or not mean else (1 if mean > 0 else -1)


def paired_log_ratio(a, b, names=("a", "b"), alpha: float = 0.05) -> dict:
    """The paired t-test of log10(a) - log10(b) over the same seeds (positive values, e.g. a measure
    of two networks): the mean log ratio, p, and the result in words ("smaller with a", "larger
    with a" or "no significant difference"), with the values under ``names``."""
    log_a = np.log10(np.maximum(np.asarray(a, dtype=float), 1e-300))
    log_b = np.log10(np.maximum(np.asarray(b, dtype=float), 1e-300))
    mean, p = paired_t_test(log_a, log_b)
    words = {1: f"larger with {names[0]}", -1: f"smaller with {names[0]}", 0: "no significant difference"}
    return {names[0]: list(a), names[1]: list(b), "mean_log10_ratio": mean, "p": p, "seeds": len(log_a),
            "result": words[paired_t_compare(log_a, log_b, alpha)]}


def _betainc(a: float, b: float, x: float) -> float:
    """The regularized incomplete beta function I_x(a, b), from its continued fraction (modified
    Lentz), using I_x(a, b) = 1 - I_(1-x)(b, a) where the fraction converges slowly."""
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    if x > (a + 1) / (a + b + 2):
        return 1 - _betainc(b, a, 1 - x)
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)) / a
    tiny = 1e-300
    f, c, d = 1.0, 1.0, 0.0
    for i in range(1000):
        m = i // 2
        if i == 0:
            num = 1.0
        elif i % 2 == 0:
            num = m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m))
        else:
            num = -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))
        d = 1 + num * d
        d = 1 / (d if abs(d) > tiny else tiny)
        c = 1 + num / c
        c = c if abs(c) > tiny else tiny
        f *= c * d
        if abs(1 - c * d) < 1e-15:
            break
    return front * (f - 1)


def spread(values) -> dict:
    """mean, standard deviation (ddof 1), min, max and count of finite values, for evidence."""
    v = np.asarray(values, dtype=float).ravel()
    v = v[np.isfinite(v)]
    if not len(v):
        return {"mean": math.nan, "std": math.nan, "min": math.nan, "max": math.nan, "n": 0}
    return {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if len(v) > 1 else 0.0,
            "min": float(v.min()), "max": float(v.max()), "n": int(len(v))}


def correlation(x, y) -> float:
    """Pearson correlation of finite pairs (NaN with fewer than 3 pairs or no variation)."""
    x, y = np.asarray(x, dtype=float).ravel(), np.asarray(y, dtype=float).ravel()
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    if len(x) < 3 or x.std() == 0 or y.std() == 0:
        return math.nan
    return float(np.corrcoef(x, y)[0, 1])


def count(verdicts) -> dict:
    """How many claims got each verdict."""
    verdicts = list(verdicts)
    return {v: verdicts.count(v) for v in VERDICTS}

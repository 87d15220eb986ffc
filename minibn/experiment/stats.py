"""The statistics the claims' rules decide with, on few seeds: differences, sameness, matching a
reported number, several comparisons at once, and correlations with a confound taken out.

Difference:   :func:`paired_t_test` (the same seeds under two conditions), :func:`sign_test`,
              :func:`paired_compare` (an exact sign test), :func:`compare` (ranges apart).
Sameness:     :func:`equivalence_test`, two one-sided tests (TOST; Schuirmann 1987) against a
              margin the claim states: a failed difference test is not evidence of sameness;
              :func:`noninferiority_test`, the one-sided half ("not worse by the margin or more").
A number:     :func:`prediction_interval`, where one new run falls with a stated probability.
Several:      :func:`holm`, Holm's step-down adjustment of the p-values of one claim's comparisons.
Power:        :func:`minimum_detectable_difference` of the paired t-test at the seeds' count.
Confounds:    :func:`partial_correlation`, the correlation left after the covariates.

The t and noncentral t distributions are scipy's. With no spread at all (every pair differing by
the same amount, which few seeds and quantized measures such as accuracies make likely), a t-test
is undefined: the p-value is NaN, which no rule reads as evidence.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import optimize
from scipy import stats as _scipy


def _values(a) -> np.ndarray:
    return np.asarray(a, dtype=float).ravel()


def _pairs(a, b, name: str) -> np.ndarray:
    """a - b over the pairs where both are finite."""
    a, b = _values(a), _values(b)
    if a.shape != b.shape:
        raise ValueError(f"{name} needs pairs: {a.shape} and {b.shape} values")
    keep = np.isfinite(a) & np.isfinite(b)
    return (a - b)[keep]


def _spread(d: np.ndarray) -> float:
    """The standard deviation (ddof 1) of ``d``, 0 where the values differ by rounding alone (0.9 - 0.8
    and 0.8 - 0.7 are both 0.1, but not in floating point)."""
    if len(d) < 2 or np.ptp(d) <= 1e-9 * np.abs(d).max():
        return 0.0
    return float(d.std(ddof=1))


# -- differences ----------------------------------------------------------------------------------------


def paired_t_test(a, b) -> tuple:
    """(mean difference, p): the two-sided paired t-test of a - b over the pairs (non-finite pairs
    dropped). p is NaN with fewer than 2 pairs or no spread (the test is undefined there)."""
    diff = _pairs(a, b, "paired_t_test")
    n = len(diff)
    mean = float(diff.mean()) if n else math.nan
    sd = _spread(diff)
    if sd == 0:
        return mean, math.nan
    t = mean / (sd / math.sqrt(n))
    return mean, float(2 * _scipy.t.sf(abs(t), n - 1))


def paired_t_compare(a, b, alpha: float = 0.05) -> int:
    """+1 if ``a`` is above ``b`` on the same seeds by a paired t-test at level ``alpha``, -1 if
    below, 0 if the difference is not shown (not significant, or no test possible)."""
    mean, p = paired_t_test(a, b)
    return 0 if not p < alpha or not mean else (1 if mean > 0 else -1)


def paired_log_ratio(a, b, names=("a", "b"), alpha: float = 0.05) -> dict:
    """The paired t-test of log10(a) - log10(b) over the same seeds (positive values, e.g. a measure
    of two networks): the mean log ratio, p, and the result in words ("smaller with a", "larger
    with a" or "no significant difference"), with the values under ``names``. A finite value <= 0
    has no logarithm: the test is then undefined (NaN mean and p, the result says why, and
    ``non_positive`` counts them) rather than run on the other seeds."""
    a_, b_ = _values(a), _values(b)
    non_positive = int(np.sum((np.isfinite(a_) & (a_ <= 0)) | (np.isfinite(b_) & (b_ <= 0))))
    out = {names[0]: list(a), names[1]: list(b), "seeds": len(a_), "non_positive": non_positive}
    if non_positive:
        return {**out, "mean_log10_ratio": math.nan, "p": math.nan,
                "result": f"undefined: {non_positive} pair(s) with a value <= 0 (a ratio needs positive values)"}
    with np.errstate(divide="ignore"):
        log_a, log_b = np.log10(a_), np.log10(b_)
    mean, p = paired_t_test(log_a, log_b)
    words = {1: f"larger with {names[0]}", -1: f"smaller with {names[0]}", 0: "no significant difference"}
    return {**out, "mean_log10_ratio": mean, "p": p, "result": words[paired_t_compare(log_a, log_b, alpha)]}


def sign_test(k: int, n: int) -> float:
    """Two-sided p-value of k successes in n fair coin flips (the exact sign test)."""
    return float(min(1.0, 2 * _scipy.binom.cdf(min(k, n - k), n, 0.5))) if n else 1.0


def paired_compare(a, b, alpha: float = 0.05) -> int:
    """For paired values (the same seeds or problems under two conditions): +1 if ``a`` exceeds
    ``b`` on significantly many pairs, -1 if it falls below on significantly many, else 0. The
    test is the exact two-sided sign test at level ``alpha``; ties and NaN pairs are dropped."""
    a, b = _values(a), _values(b)
    if a.shape != b.shape:
        raise ValueError(f"paired_compare needs pairs: {a.shape} and {b.shape} values")
    keep = ~(np.isnan(a) | np.isnan(b)) & (a != b)
    above, n = int((a[keep] > b[keep]).sum()), int(keep.sum())
    if n == 0 or sign_test(above, n) >= alpha:
        return 0
    return 1 if above > n - above else -1


def compare(a, b) -> int:
    """+1 if the values ``a`` (one per seed) lie clearly above ``b``, -1 if clearly below, 0 if
    the difference is inside the seeds' spread: the ranges [min, max] of the two must not
    overlap. With one value each, any difference counts. NaN values are ignored."""
    a, b = _values(a), _values(b)
    a, b = a[~np.isnan(a)], b[~np.isnan(b)]
    if not len(a) or not len(b):
        return 0
    if a.min() > b.max():
        return 1
    if a.max() < b.min():
        return -1
    return 0


# -- sameness -------------------------------------------------------------------------------------------


def equivalence_test(a, b=None, *, margin: float, paired: bool = True, ratio: bool = False,
                     alpha: float = 0.05) -> dict:
    """Two one-sided tests (TOST) that the difference of ``a`` and ``b`` lies within +-``margin``.

    ``b`` is a sample paired with ``a`` (``paired``: the same seeds under two conditions; else
    independent, Welch's t), a number (``a``'s mean against it), or None (``a`` holds the
    differences). With ``ratio`` the values are positive and compared by their logarithms:
    ``margin`` > 1 is then a factor, equivalence meaning a / b within [1/margin, margin].

    Equivalence is shown (``equivalent``) when both one-sided tests reject at ``alpha``, that is
    when the (1 - 2 alpha) confidence interval of the difference lies inside the margin; ``p`` is
    the larger one-sided p-value. Returns the test's name, the margin, the estimate and that
    interval (as a ratio with ``ratio``), p, the count, and ``equivalent``. Fewer than 2 values,
    or no spread, give p = NaN and equivalence not shown.
    """
    if ratio:
        if not margin > 1:
            raise ValueError(f"equivalence_test: a ratio's margin is a factor > 1, got {margin}")
        transform, bound = (lambda v: np.log(_values(v))), math.log(margin)
    else:
        if not margin > 0:
            raise ValueError(f"equivalence_test: the margin must be > 0, got {margin}")
        transform, bound = _values, float(margin)
    a = transform(a)
    if b is None or np.isscalar(b):
        d = a[np.isfinite(a)] - (0.0 if b is None else float(transform([b])[0]))
        n, estimate = len(d), float(d.mean()) if len(d) else math.nan
        se, df = (_spread(d) / math.sqrt(n), n - 1) if n >= 2 else (math.nan, 0)
        name = "TOST, one-sample t" if b is None else "TOST, one-sample t against a number"
    elif paired:
        d = _pairs(a, transform(b), "equivalence_test")
        n, estimate = len(d), float(d.mean()) if len(d) else math.nan
        se, df = (_spread(d) / math.sqrt(n), n - 1) if n >= 2 else (math.nan, 0)
        name = "TOST, paired t"
    else:
        b = transform(b)
        a, b = a[np.isfinite(a)], b[np.isfinite(b)]
        n = min(len(a), len(b))
        estimate = float(a.mean() - b.mean()) if len(a) and len(b) else math.nan
        se, df = math.nan, 0
        if len(a) >= 2 and len(b) >= 2:
            va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
            se = math.sqrt(va + vb)
            df = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1)) if va + vb > 0 else 0
        name = "TOST, Welch t"
    if not (se > 0 and df > 0):
        p, ci = math.nan, (math.nan, math.nan)
    else:
        p = max(float(_scipy.t.sf((estimate + bound) / se, df)), float(_scipy.t.cdf((estimate - bound) / se, df)))
        half = float(_scipy.t.ppf(1 - alpha, df)) * se
        ci = (estimate - half, estimate + half)
    shown = bool(p < alpha)
    if ratio:
        estimate, ci = math.exp(estimate), tuple(math.exp(c) for c in ci)
    return {"test": name, "margin": margin, "ratio": ratio, "estimate": estimate, "ci": list(ci),
            "level": 1 - 2 * alpha, "p": p, "n": int(n), "equivalent": shown}


def noninferiority_test(a, b, *, margin: float, alpha: float = 0.05) -> dict:
    """The one-sided paired t-test that ``a`` is not below ``b`` by ``margin`` or more (H0: mean(a - b)
    <= -margin), for claims such as "trains nearly as well": shown (``noninferior``) when the
    one-sided (1 - alpha) lower confidence bound of the mean difference is above -margin; the
    contrary is shown (``inferior``) when the one-sided upper bound is below -margin. Returns the
    test's name, the margin, the estimate, both bounds, p and the count; p is NaN (and neither
    shown) with fewer than 2 pairs or no spread."""
    if not margin > 0:
        raise ValueError(f"noninferiority_test: the margin must be > 0, got {margin}")
    d = _pairs(a, b, "noninferiority_test")
    n, estimate = len(d), float(d.mean()) if len(d) else math.nan
    se = _spread(d) / math.sqrt(n) if n >= 2 else math.nan
    if not se > 0:
        p, low, high = math.nan, math.nan, math.nan
    else:
        p = float(_scipy.t.sf((estimate + margin) / se, n - 1))
        half = float(_scipy.t.ppf(1 - alpha, n - 1)) * se
        low, high = estimate - half, estimate + half
    return {"test": "one-sided paired t (non-inferiority)", "margin": margin, "estimate": estimate,
            "lower_bound": low, "upper_bound": high, "level": 1 - alpha, "p": p, "n": int(n),
            "noninferior": bool(p < alpha), "inferior": bool(high < -margin)}


# -- a reported number ----------------------------------------------------------------------------------


def prediction_interval(samples, level: float = 0.95) -> list:
    """[low, high]: where one new draw falls with probability ``level``, from the finite
    ``samples`` (normal, mean and variance unknown): mean +- t_{(1+level)/2, n-1} s sqrt(1 + 1/n).
    NaN bounds with fewer than 2 samples."""
    v = _values(samples)
    v = v[np.isfinite(v)]
    n = len(v)
    if n < 2:
        return [math.nan, math.nan]
    half = float(_scipy.t.ppf((1 + level) / 2, n - 1)) * float(v.std(ddof=1)) * math.sqrt(1 + 1 / n)
    return [float(v.mean()) - half, float(v.mean()) + half]


# -- several comparisons ----------------------------------------------------------------------------------


def holm(pvalues) -> list:
    """Holm's (1979) step-down adjustment: the i-th smallest of m p-values becomes
    max over j <= i of min(1, (m - j + 1) p_(j)); rejecting where the adjusted p < alpha keeps
    the chance of any false rejection among the m at most alpha. NaN p-values (no test) count
    as 1 and stay NaN."""
    p = _values(pvalues)
    filled = np.where(np.isnan(p), 1.0, p)
    order = np.argsort(filled, kind="stable")
    m = len(p)
    adjusted = np.empty(m)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * filled[i]))
        adjusted[i] = running
    return [math.nan if math.isnan(p[i]) else float(adjusted[i]) for i in range(m)]


# -- power --------------------------------------------------------------------------------------------------


def minimum_detectable_difference(n: int, sd: float, alpha: float = 0.05, power: float = 0.8) -> float:
    """The smallest true mean difference that the two-sided paired t-test at level ``alpha`` on
    ``n`` pairs whose differences have standard deviation ``sd`` detects with probability
    ``power`` (from the noncentral t distribution); inf with fewer than 2 pairs."""
    if n < 2 or not math.isfinite(sd):
        return math.inf
    if sd == 0:
        return 0.0
    df, critical = n - 1, float(_scipy.t.ppf(1 - alpha / 2, n - 1))

    def shortfall(effect):  # power at a standardized effect, minus the power wanted
        nc = effect * math.sqrt(n)
        upper, lower = float(_scipy.nct.sf(critical, df, nc)), float(_scipy.nct.cdf(-critical, df, nc))
        return (upper if math.isfinite(upper) else 1.0) + (lower if math.isfinite(lower) else 0.0) - power

    high = 1.0
    while shortfall(high) < 0:
        high *= 2
    return float(optimize.brentq(shortfall, 0.0, high, xtol=1e-12)) * sd


# -- descriptions and correlations --------------------------------------------------------------------------


def spread(values) -> dict:
    """mean, standard deviation (ddof 1), min, max and count of finite values, for evidence."""
    v = _values(values)
    v = v[np.isfinite(v)]
    if not len(v):
        return {"mean": math.nan, "std": math.nan, "min": math.nan, "max": math.nan, "n": 0}
    return {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if len(v) > 1 else 0.0,
            "min": float(v.min()), "max": float(v.max()), "n": int(len(v))}


def correlation(x, y) -> float:
    """Pearson correlation of finite pairs (NaN with fewer than 3 pairs or no variation)."""
    x, y = _values(x), _values(y)
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    if len(x) < 3 or x.std() == 0 or y.std() == 0:
        return math.nan
    return float(np.corrcoef(x, y)[0, 1])


def _covariates(covariates, n: int) -> np.ndarray:
    return np.zeros((n, 0)) if covariates is None else np.asarray(covariates, dtype=float).reshape(n, -1)


def partial_correlation_test(x, y, covariates=None) -> dict:
    """:func:`partial_correlation` r with its two-sided p-value (t = r sqrt(df / (1 - r^2)) on df =
    n - 2 - k degrees of freedom, k covariate columns) and the count; p NaN where r is. Without
    covariates it is Pearson's correlation with its t-test."""
    z = _covariates(covariates, len(_values(x)))
    keep = np.isfinite(_values(x)) & np.isfinite(_values(y)) & np.all(np.isfinite(z), axis=1)
    n, k = int(keep.sum()), z.shape[1]
    r = partial_correlation(x, y, z)
    df = n - 2 - k
    if not math.isfinite(r) or df < 1:
        return {"r": r, "p": math.nan, "n": n}
    if abs(r) >= 1:
        return {"r": r, "p": 0.0, "n": n}
    return {"r": r, "p": float(2 * _scipy.t.sf(abs(r) * math.sqrt(df / (1 - r * r)), df)), "n": n}


def partial_correlation(x, y, covariates=None) -> float:
    """The Pearson correlation of x and y after both are regressed (least squares, with an
    intercept) on ``covariates`` (a (n,) or (n, k) array): what is left of their relation once
    the covariates are held fixed. A group's indicator columns take out the group (confound).
    NaN with too few finite rows."""
    x, y = _values(x), _values(y)
    z = _covariates(covariates, len(x))
    keep = np.isfinite(x) & np.isfinite(y) & np.all(np.isfinite(z), axis=1)
    x, y, z = x[keep], y[keep], z[keep]
    design = np.column_stack([np.ones(len(x)), z])
    if len(x) < design.shape[1] + 2:
        return math.nan
    residual = lambda v: v - design @ np.linalg.lstsq(design, v, rcond=None)[0]  # noqa: E731
    return correlation(residual(x), residual(y))

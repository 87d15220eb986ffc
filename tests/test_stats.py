"""The rules' statistics against scipy's own tests and distributions and against cases computed by hand."""

import math

import numpy as np
import pytest
from scipy import stats

from minibn.experiment import claims as C
from minibn.experiment import stats as S


def test_the_paired_t_test_is_scipys_and_undefined_without_spread(rng):
    a, b = rng.standard_normal(6), rng.standard_normal(6)
    mean, p = S.paired_t_test(a, b)
    assert mean == pytest.approx(np.mean(a - b)) and p == pytest.approx(stats.ttest_rel(a, b).pvalue, rel=1e-12)
    assert math.isnan(S.paired_t_test([0.9, 0.8, 0.7], [0.8, 0.7, 0.6])[1])  # every pair 0.1 apart: no spread
    assert math.isnan(S.paired_t_test([1.0], [0.0])[1])
    assert S.paired_t_compare([0.9, 0.8, 0.7], [0.8, 0.7, 0.6]) == 0  # a NaN p is no evidence


@pytest.mark.parametrize("shift, margin", [(0.0, 0.5), (0.3, 0.5), (0.6, 0.5), (-0.2, 1.0)])
def test_tost_paired_is_the_larger_of_two_one_sided_scipy_tests(rng, shift, margin):
    a = rng.standard_normal(8)
    b = a - shift + 0.2 * rng.standard_normal(8)
    got = S.equivalence_test(a, b, margin=margin)
    d = a - b
    lower = stats.ttest_1samp(d, -margin, alternative="greater").pvalue
    upper = stats.ttest_1samp(d, margin, alternative="less").pvalue
    assert got["p"] == pytest.approx(max(lower, upper), rel=1e-10)
    assert got["test"] == "TOST, paired t" and got["n"] == 8 and got["level"] == pytest.approx(0.9)
    half = stats.t.ppf(0.95, 7) * d.std(ddof=1) / math.sqrt(8)
    assert got["ci"] == pytest.approx([d.mean() - half, d.mean() + half])
    inside = -margin < got["ci"][0] and got["ci"][1] < margin
    assert got["equivalent"] == inside == (got["p"] < 0.05)


def test_tost_by_hand():
    """d = 1, 2, 3 (mean 2, sd 1, se 1/sqrt(3), 2 degrees of freedom), margin 5: the binding test is
    H0: mean >= 5, t = (2 - 5) sqrt(3) = -5.196, p = P(T_2 < -5.196) = 0.01754."""
    got = S.equivalence_test([1.0, 2.0, 3.0], margin=5.0)
    assert got["p"] == pytest.approx(0.5 * (1 - 5.196152422706632 / math.sqrt(2 + 5.196152422706632 ** 2)), rel=1e-9)
    assert got["p"] == pytest.approx(0.01755, abs=5e-6) and got["equivalent"] and got["estimate"] == 2.0
    assert not S.equivalence_test([1.0, 2.0, 3.0], margin=3.0)["equivalent"]


def test_tost_welch_and_against_a_number(rng):
    a, b = rng.normal(0, 1, 7), rng.normal(0.1, 2, 9)
    got = S.equivalence_test(a, b, margin=1.5, paired=False)
    lower = stats.ttest_ind(a + 1.5, b, equal_var=False, alternative="greater").pvalue
    upper = stats.ttest_ind(a - 1.5, b, equal_var=False, alternative="less").pvalue
    assert got["test"] == "TOST, Welch t" and got["p"] == pytest.approx(max(lower, upper), rel=1e-9)
    number = S.equivalence_test(a, 0.2, margin=1.0)
    assert number["p"] == pytest.approx(max(stats.ttest_1samp(a, -0.8, alternative="greater").pvalue,
                                            stats.ttest_1samp(a, 1.2, alternative="less").pvalue), rel=1e-10)


def test_tost_of_a_ratio_works_on_logarithms(rng):
    a = np.exp(rng.normal(0, 0.1, 6))
    b = a * np.exp(rng.normal(0.05, 0.05, 6))
    got = S.equivalence_test(a, b, margin=1.5, ratio=True)
    logs = S.equivalence_test(np.log(a), np.log(b), margin=math.log(1.5))
    assert got["p"] == pytest.approx(logs["p"]) and got["estimate"] == pytest.approx(math.exp(logs["estimate"]))
    assert got["ci"] == pytest.approx([math.exp(c) for c in logs["ci"]]) and got["equivalent"]
    with pytest.raises(ValueError, match="factor > 1"):
        S.equivalence_test(a, b, margin=0.5, ratio=True)


def test_tost_without_spread_or_values_shows_nothing():
    for got in (S.equivalence_test([1.0, 1.0, 1.0], [1.0, 1.0, 1.0], margin=0.5), S.equivalence_test([1.0], margin=1)):
        assert math.isnan(got["p"]) and not got["equivalent"]


def test_holm_by_hand_and_against_bonferroni():
    assert S.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert S.holm([0.5, 0.001]) == pytest.approx([0.5, 0.002])
    assert S.holm([0.2, math.nan, 0.01])[0] == pytest.approx(0.4) and math.isnan(S.holm([0.2, math.nan, 0.01])[1])
    p = np.random.default_rng(3).uniform(0, 0.2, 10)
    assert all(h <= min(1, 10 * q) + 1e-15 for h, q in zip(S.holm(p), p))  # never above Bonferroni


def test_the_prediction_interval_by_its_formula_and_its_coverage():
    lo, hi = S.prediction_interval([1.0, 2.0, 3.0], 0.95)
    half = stats.t.ppf(0.975, 2) * 1.0 * math.sqrt(1 + 1 / 3)
    assert (lo, hi) == pytest.approx((2 - half, 2 + half))
    rng = np.random.default_rng(0)
    draws = rng.standard_normal((40_000, 4))  # 3 seeds and one new run
    covered = [S.prediction_interval(row[:3])[0] <= row[3] <= S.prediction_interval(row[:3])[1] for row in draws[:4000]]
    assert np.mean(covered) == pytest.approx(0.95, abs=0.012)
    assert all(math.isnan(v) for v in S.prediction_interval([1.0]))


def test_the_minimum_detectable_difference_has_the_power_asked():
    delta = S.minimum_detectable_difference(5, 2.0, alpha=0.05, power=0.8)
    critical = stats.t.ppf(0.975, 4)
    nc = delta / 2.0 * math.sqrt(5)
    assert stats.nct.sf(critical, 4, nc) + stats.nct.cdf(-critical, 4, nc) == pytest.approx(0.8, abs=1e-9)
    large = S.minimum_detectable_difference(2000, 1.0)
    assert large == pytest.approx((stats.norm.ppf(0.975) + stats.norm.ppf(0.8)) / math.sqrt(2000), rel=2e-3)
    assert S.minimum_detectable_difference(3, 1.0) > S.minimum_detectable_difference(10, 1.0)
    assert S.minimum_detectable_difference(1, 1.0) == math.inf


def test_the_partial_correlation_takes_a_confound_out():
    rng = np.random.default_rng(1)
    group = np.repeat([0.0, 1.0], 50)
    x = 3 * group + rng.standard_normal(100)      # both driven by the group, unrelated within it
    y = 3 * group + rng.standard_normal(100)
    assert S.correlation(x, y) > 0.6 and abs(S.partial_correlation(x, y, group)) < 0.25
    z = x + 0.1 * rng.standard_normal(100)       # a real relation survives
    assert S.partial_correlation(x, z, group) > 0.95
    assert math.isnan(S.partial_correlation([1.0, 2.0], [2.0, 3.0], [0.0, 1.0]))


def test_the_sign_test_by_hand():
    assert S.sign_test(5, 5) == pytest.approx(2 / 32) and S.sign_test(2, 4) == 1.0
    assert S.paired_compare([2, 3, 4, 5, 6, 7], [1, 2, 3, 4, 5, 6]) == 1  # 6 of 6: p = 1/32


def test_noninferiority_is_scipys_one_sided_test(rng):
    a = rng.normal(0, 1, 6)
    b = a + rng.normal(0.5, 0.3, 6)  # a is below b by about 0.5
    for margin, shown in ((2.0, True), (0.1, False)):
        got = S.noninferiority_test(a, b, margin=margin)
        assert got["p"] == pytest.approx(stats.ttest_1samp(a - b, -margin, alternative="greater").pvalue, rel=1e-10)
        assert got["noninferior"] == shown == (got["lower_bound"] > -margin)
    assert S.noninferiority_test(a, b, margin=0.1)["inferior"] and not S.noninferiority_test(a, b, margin=2)["inferior"]


def test_the_partial_correlation_test_is_the_correlation_test_without_covariates(rng):
    x, y = rng.standard_normal(20), rng.standard_normal(20)
    x2 = x + 0.3 * y
    got = S.partial_correlation_test(x2, y, np.zeros((20, 0)))
    assert got["r"] == pytest.approx(stats.pearsonr(x2, y)[0]) and got["p"] == pytest.approx(stats.pearsonr(x2, y)[1])


def test_a_log_ratio_with_a_value_not_positive_is_undefined_not_clipped():
    """log10(-0.5) does not exist: the test says so instead of running on a clipped 1e-300."""
    a, b = [-0.5, 0.4, 2.4], [13.0, 21.0, 16.0]
    tested = S.paired_log_ratio(a, b, ("bn", "plain"))
    assert tested["non_positive"] == 1 and math.isnan(tested["p"]) and math.isnan(tested["mean_log10_ratio"])
    assert tested["result"].startswith("undefined")
    e = C.smaller(a, b, ("bn", "plain"))
    assert C.decide_smaller(e) == C.INCONCLUSIVE and not e["equivalence"]["equivalent"]
    fine = C.smaller([0.5, 0.4, 0.45], b, ("bn", "plain"))
    assert fine["non_positive"] == 0 and C.decide_smaller(fine) == C.REPRODUCED
    assert fine["mean_log10_ratio"] == pytest.approx(np.mean(np.log10([0.5, 0.4, 0.45]) - np.log10(b)))

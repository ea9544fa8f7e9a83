"""The verdict rule: every branch of every test, exact tests, ratios, Holm, and its calibration."""

import math

import numpy as np
import pytest
from scipy import integrate, stats
from statsmodels.stats.power import TTestPower

from suite.core import verdicts
from suite.core.verdicts import CONTRADICTED, EQUIVALENT, INCONCLUSIVE, SUPPORTED, decide

M = 0.01  # margin: one point of accuracy


@pytest.mark.parametrize("diffs, expected, why", [
    ([0.05, 0.06, 0.04, 0.05], SUPPORTED, "interval above zero and beyond the margin"),
    ([-0.05, -0.06, -0.04, -0.05], CONTRADICTED, "interval below zero"),
    ([0.001, -0.001, 0.0005, -0.0005, 0.0], EQUIVALENT, "interval inside the margin, around zero"),
    ([0.004, 0.005, 0.006, 0.005, 0.0045], EQUIVALENT, "above zero but inside the margin: real, negligible"),
    ([0.03, -0.02, 0.01], INCONCLUSIVE, "interval contains zero and reaches beyond the margin"),
])
def test_superiority_branches(diffs, expected, why):
    decision = decide(diffs, M)
    assert decision.verdict == expected, why
    if expected == EQUIVALENT and min(diffs) > 0:
        assert "different from zero, but by less than the margin" in decision.reason


@pytest.mark.parametrize("diffs, expected", [
    ([-0.002, 0.001, -0.001, 0.0], SUPPORTED),  # not worse by more than the margin
    ([0.05, 0.06, 0.055], SUPPORTED),  # better is not worse at all
    ([-0.05, -0.06, -0.055], CONTRADICTED),  # worse by more than the margin
    ([-0.03, 0.02, -0.01], INCONCLUSIVE),
])
def test_noninferiority_branches(diffs, expected):
    assert decide(diffs, M, test="noninferior").verdict == expected


@pytest.mark.parametrize("diffs, expected", [
    ([0.001, -0.001, 0.0005, -0.0005, 0.0], SUPPORTED),  # about as good: TOST passes
    ([0.05, 0.06, 0.055], CONTRADICTED),  # clearly better by more than the margin
    ([-0.05, -0.06, -0.055], CONTRADICTED),  # clearly worse by more than the margin
    ([0.03, -0.02, 0.01], INCONCLUSIVE),
])
def test_equivalence_branches(diffs, expected):
    assert decide(diffs, M, test="equivalent").verdict == expected


def test_too_few_seeds_and_no_spread_are_inconclusive_with_a_reason():
    assert decide([0.05], M).reason == "fewer than two paired seeds"
    flat = decide([0.02, 0.02, 0.02], M)  # a t-"interval" of zero width would decide anything
    assert flat.verdict == INCONCLUSIVE and "no spread" in flat.reason


def test_an_inconclusive_verdict_says_what_the_seeds_could_detect():
    noisy = decide([0.03, -0.01, 0.02], M)  # effect 0.013, sd 0.02
    assert noisy.verdict == INCONCLUSIVE
    sd = np.std([0.03, -0.01, 0.02], ddof=1)
    assert noisy.mde == pytest.approx(TTestPower().solve_power(nobs=3, alpha=0.05, power=0.8) * sd)
    assert noisy.seeds_needed == math.ceil(TTestPower().solve_power(effect_size=np.mean([0.03, -0.01, 0.02]) / sd,
                                                                      alpha=0.05, power=0.8))
    assert noisy.seeds_needed > 3
    nothing = decide([0.03, -0.03, 0.0], M)  # no effect at all: more seeds would not decide superiority
    assert nothing.verdict == INCONCLUSIVE and nothing.seeds_needed is None


def test_yes_no_outcomes_get_an_exact_sign_test():
    three = decide([1, 1, 1], M, scale="binary")  # 3 of 3 seeds: p = 0.25, cannot decide
    assert three.verdict == INCONCLUSIVE and three.method.startswith("exact sign test")
    assert "smallest p this test can give is 0.25" in three.reason and three.seeds_needed == 6
    six = decide([1, 1, 1, 1, 1, 1], M, scale="binary")
    assert six.verdict == SUPPORTED and six.p_value == pytest.approx(stats.binomtest(6, 6).pvalue)
    assert decide([-1] * 6 + [0, 0], M, scale="binary").verdict == CONTRADICTED  # ties (both or neither) carry no sign


def test_tied_integer_outcomes_get_an_exact_permutation_test():
    tied = decide([2, 2, 2], M, scale="count")  # the t-interval would be [2, 2]: "decided" on no evidence
    assert tied.verdict == INCONCLUSIVE and tied.method == "exact paired permutation test"
    assert decide([2, 1, 3, 2, 1, 2], M, scale="count").verdict == SUPPORTED  # 6 of 6 signs: p = 1/32
    assert decide([2, 1, -3, 2, 1, 2], M, scale="count").verdict == INCONCLUSIVE
    one = decide([0, 0, 1], M, scale="count")  # a single seed that differs (measured: D3 at quick)
    assert one.verdict == INCONCLUSIVE and "p = 1" in one.reason


def test_ratio_claims_use_log_ratios_against_the_stated_ratio():
    # "6x sooner" on epochs (lower is better): worse / better near 8 exceeds 6, near 2 falls short
    fast = verdicts.log_ratio_differences([1, 1, 1, 1], [8, 9, 7, 8], 6, "lower")
    slow = verdicts.log_ratio_differences([4, 4, 4, 4], [8, 9, 7, 8], 6, "lower")
    assert decide(fast, math.log(1.2)).verdict == SUPPORTED
    assert decide(slow, math.log(1.2)).verdict == CONTRADICTED
    assert verdicts.log_ratio_differences([2.0], [1.0], 2, "higher")[0] == pytest.approx(0.0)  # exactly doubles


def test_holm_keeps_only_what_survives_the_adjustment():
    strong = decide([0.05, 0.06, 0.04, 0.05, 0.055], M)
    weak = verdicts.Decision(SUPPORTED, 0.02, (0.001, 0.04), 0.04, 3, "paired t")
    undecided = decide([0.03, -0.01, 0.02], M)
    assert verdicts.holm([strong, weak, undecided]) == [SUPPORTED, INCONCLUSIVE, INCONCLUSIVE]
    assert verdicts.holm([weak]) == [SUPPORTED]


# ---- calibration: the rule against its analytic error rates ----------------------------------
REPS = 400
SD = 1.0
MARGIN = 1.0  # in units of the seed-to-seed standard deviation


def _tost_power(effect: float, n: int) -> float:
    """P(the 90% t-interval lies inside (-margin, margin)) for normal differences: an integral
    over the sample sd (chi-square) of the normal probability of the mean's admissible range."""
    t = stats.t.ppf(0.95, n - 1)

    def given_s(s):
        half = t * s / math.sqrt(n)
        if half >= MARGIN:
            return 0.0
        scale = SD / math.sqrt(n)
        inside = stats.norm.cdf((MARGIN - half - effect) / scale) - stats.norm.cdf((-MARGIN + half - effect) / scale)
        density = stats.chi2.pdf((n - 1) * s ** 2 / SD ** 2, n - 1) * 2 * (n - 1) * s / SD ** 2
        return inside * density

    return integrate.quad(given_s, 0, 10 * SD)[0]


def _power(effect_size: float, n: int) -> float:
    """Two-sided paired t power; statsmodels returns nan where it is within 1e-12 of 1, where the
    one-sided power at alpha / 2 is the same number (the other tail is negligible)."""
    power = TTestPower().power(effect_size=effect_size, nobs=n, alpha=0.05, alternative="two-sided")
    return power if math.isfinite(power) else TTestPower().power(effect_size=effect_size, nobs=n, alpha=0.025,
                                                                  alternative="larger")


def calibration_table(reps: int = REPS, seed: int = 0) -> list[dict]:
    """Monte Carlo rates of the rule beside their analytic values, at 3, 5 and 10 seeds."""
    rng = np.random.default_rng(seed)
    rows = []
    for n in (3, 5, 10):
        for effect, rate_of, analytic in (
                (0.0, (SUPPORTED, CONTRADICTED), 0.05),  # false decisions under no effect (at most alpha)
                (MARGIN / 2, (EQUIVALENT,), _tost_power(MARGIN / 2, n)),  # equivalence found for a negligible effect
                (3 * SD, (SUPPORTED,), _power(3.0, n))):  # power against a large effect
            outcomes = [decide(rng.normal(effect, SD, n), MARGIN, power_notes=False).verdict for _ in range(reps)]
            rate = float(np.mean([o in rate_of for o in outcomes]))
            rows.append({"seeds": n, "true effect": effect, "rate of": "/".join(rate_of), "measured": rate,
                         "analytic": float(analytic)})
    return rows


def test_the_rule_is_calibrated():
    for row in calibration_table():
        se = math.sqrt(max(row["analytic"] * (1 - row["analytic"]), 0.01) / REPS)
        if row["true effect"] == 0.0:  # equivalence takes some of the t-test's rejections: at most alpha
            assert row["measured"] <= row["analytic"] + 4 * se, row
        else:
            assert abs(row["measured"] - row["analytic"]) <= 4 * se + 0.01, row

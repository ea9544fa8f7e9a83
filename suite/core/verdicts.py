"""verdicts: the decision rule that turns paired per-seed differences into one of four words.

Pure statistics (scipy.stats, statsmodels); knows nothing of studies or frames. The input is
one difference per seed, oriented so that > 0 favours the claim, plus the claim's `margin`
(the smallest difference that matters, in the metric's units) and its `test`.

The rule (alpha = 0.05 throughout; `ci` is the 95% t-interval of the mean difference):
- `test: superior` (the default: "A beats B"):
  1. `equivalent` when the two one-sided tests (TOST, statsmodels) put the difference inside
     (-margin, +margin): no difference that matters. This includes an interval above zero but
     inside the margin: a real but negligible difference is reported as `equivalent`, with the
     reason saying that it is different from zero.
  2. else `supported` when the interval lies above zero, `contradicted` when below;
  3. else `inconclusive`.
- `test: noninferior` ("A is not worse than B by more than the margin"): `supported` when the
  interval's lower end lies above -margin, `contradicted` when its upper end lies below
  -margin, else `inconclusive`.
- `test: equivalent` ("A is about as good as B"): `supported` when TOST passes, `contradicted`
  when the interval lies wholly outside (-margin, +margin), else `inconclusive`.
Where the data are not continuous the paired t-interval is replaced by an exact test:
- yes/no outcomes (`scale: binary`, e.g. diverged): an exact binomial (sign) test on the
  discordant seeds (exact McNemar);
- integer outcomes with ties (`scale: count`, e.g. epochs to a target): the exact paired
  permutation test (all sign flips); both decide supported/contradicted only.
A ratio claim (`ratio: r`) is judged on log(better / worse), oriented, against log(r); its
margin is a factor too (1.2 = within 20% of the stated ratio).
Every inconclusive verdict carries the smallest effect its seeds could detect at 80% power
(`mde`) and the seeds the observed effect and spread would need (`seeds_needed`).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
from scipy import stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import TTestPower
from statsmodels.stats.weightstats import DescrStatsW

SUPPORTED, CONTRADICTED, EQUIVALENT, INCONCLUSIVE = "supported", "contradicted", "equivalent", "inconclusive"
VERDICTS = (SUPPORTED, CONTRADICTED, EQUIVALENT, INCONCLUSIVE)
DECIDED = (SUPPORTED, CONTRADICTED, EQUIVALENT)
SCALES = ("continuous", "binary", "count")
ALPHA = 0.05
POWER = 0.8
MAX_SEEDS = 10_000  # "seeds needed" above this is reported as not reachable


@dataclass(frozen=True)
class Decision:
    verdict: str
    effect: float  # mean oriented difference (for a ratio claim: log ratio minus log of the stated ratio)
    ci: tuple[float, float]  # 95% interval of `effect`
    p_value: float  # of the test behind a decided verdict (for Holm); nan when inconclusive
    n: int
    method: str  # "paired t", "TOST", "exact sign test", "exact permutation test"
    reason: str = ""
    mde: float | None = None  # smallest effect detectable at 80% power with these seeds
    seeds_needed: int | None = None  # seeds the observed effect and spread would need


def _t_interval(diffs: np.ndarray, alpha: float = ALPHA) -> tuple[float, float]:
    if len(diffs) < 2:
        return (-math.inf, math.inf)
    if np.ptp(diffs) == 0:  # no spread: the t-interval is a point; no test can use it (exact tests below)
        return (float(diffs[0]), float(diffs[0]))
    low, high = DescrStatsW(diffs).tconfint_mean(alpha)
    return (float(low), float(high))


def _power_notes(diffs: np.ndarray, margin: float, test: str, alpha: float = ALPHA) -> tuple[float | None, int | None]:
    """(mde, seeds_needed) for a paired t-test at `alpha` and 80% power (statsmodels)."""
    n = len(diffs)
    sd = float(np.std(diffs, ddof=1)) if n >= 2 else math.nan
    if n < 2 or not math.isfinite(sd) or sd == 0:
        return None, None
    power = TTestPower()
    effect = abs(float(np.mean(diffs)))
    if test == "superior":
        size = effect / sd  # to tell the observed effect from zero
    else:  # to put the interval inside the margin (one-sided, per TOST half), given the observed effect
        size = (margin - effect) / sd if margin > effect else 0.0
    with warnings.catch_warnings():  # a root finder that cannot converge returns nan: handled below
        warnings.simplefilter("ignore")
        mde = float(power.solve_power(nobs=n, alpha=alpha, power=POWER, alternative="two-sided")) * sd
        if size <= 0:
            return mde, None
        needed = power.solve_power(effect_size=size, alpha=alpha, power=POWER,
                                   alternative="two-sided" if test == "superior" else "larger")
    needed = float(np.atleast_1d(needed)[0])
    return mde, (math.ceil(needed) if math.isfinite(needed) and needed < MAX_SEEDS else None)


def _tost(diffs: np.ndarray, margin: float) -> float:
    """p of the two one-sided tests that the mean lies inside (-margin, +margin); no margin, no test.
    (`decide` calls it only with two or more differences that vary.)"""
    if margin <= 0:
        return math.nan
    return float(DescrStatsW(diffs).ttost_mean(-margin, margin)[0])


def decide(diffs, margin: float, test: str = "superior", scale: str = "continuous", power_notes: bool = True,
           alpha: float = ALPHA) -> Decision:
    """The verdict for paired differences (> 0 favours the claim); see the module docstring.
    `power_notes=False` skips the (slow) power calculation of an inconclusive verdict. `alpha`: the
    level of this test, 0.05 unless a group-sequential look spends less (suite.core.sequential)."""
    diffs = np.asarray([d for d in diffs if d is not None and math.isfinite(d)], dtype=float)
    n = len(diffs)
    effect = float(diffs.mean()) if n else math.nan
    if scale in ("binary", "count"):
        return _exact(diffs, scale, alpha)
    low, high = _t_interval(diffs, alpha)
    if n < 2:
        return Decision(INCONCLUSIVE, effect, (low, high), math.nan, n, "paired t", "fewer than two paired seeds")
    if np.ptp(diffs) == 0:
        return Decision(INCONCLUSIVE, effect, (low, high), math.nan, n, "paired t",
                        f"every seed gave the same difference ({effect:+.4g}), so there is no spread to test: "
                        "either the arms fix this quantity (a fact by construction, which belongs under `facts`) "
                        "or every seed ended in the same state (e.g. a net that predicts one class for every image)")
    p_equivalent = _tost(diffs, margin)
    p_zero = float(DescrStatsW(diffs).ttest_mean(0)[1])

    def notes() -> tuple:  # only an inconclusive verdict carries them
        return _power_notes(diffs, margin, test, alpha) if power_notes else (None, None)

    if test == "superior":
        if p_equivalent < alpha:
            note = "different from zero, but by less than the margin" if low > 0 or high < 0 else ""
            return Decision(EQUIVALENT, effect, (low, high), p_equivalent, n, "TOST", note)
        if low > 0:
            return Decision(SUPPORTED, effect, (low, high), p_zero, n, "paired t")
        if high < 0:
            return Decision(CONTRADICTED, effect, (low, high), p_zero, n, "paired t")
        return Decision(INCONCLUSIVE, effect, (low, high), math.nan, n, "paired t",
                        "the 95% interval contains zero and reaches beyond the margin", *notes())
    if test == "noninferior":
        p_noninferior = float(stats.ttest_1samp(diffs, -margin, alternative="greater").pvalue)
        if low > -margin:
            return Decision(SUPPORTED, effect, (low, high), p_noninferior, n, "paired t (non-inferiority)")
        if high < -margin:
            p_inferior = float(stats.ttest_1samp(diffs, -margin, alternative="less").pvalue)
            return Decision(CONTRADICTED, effect, (low, high), p_inferior, n, "paired t (non-inferiority)")
        return Decision(INCONCLUSIVE, effect, (low, high), math.nan, n, "paired t (non-inferiority)",
                        "the 95% interval reaches below -margin and above it", *notes())
    # test == "equivalent"
    if p_equivalent < alpha:
        return Decision(SUPPORTED, effect, (low, high), p_equivalent, n, "TOST")
    if low > margin or high < -margin:  # the whole interval outside the margin: a difference that matters
        p_outside = float(stats.ttest_1samp(diffs, margin, alternative="greater").pvalue if low > margin
                          else stats.ttest_1samp(diffs, -margin, alternative="less").pvalue)
        return Decision(CONTRADICTED, effect, (low, high), p_outside, n, "paired t (outside the margin)")
    return Decision(INCONCLUSIVE, effect, (low, high), math.nan, n, "TOST",
                    "the 90% interval is not inside the margin", *notes())


def _exact(diffs: np.ndarray, scale: str, alpha: float = ALPHA) -> Decision:
    """Exact tests for yes/no and tied integer outcomes: supported/contradicted or inconclusive."""
    n = len(diffs)
    effect = float(diffs.mean()) if n else math.nan
    if scale == "binary":
        up, down = int((diffs > 0).sum()), int((diffs < 0).sum())
        method = "exact sign test on discordant seeds"
        p = float(stats.binomtest(up, up + down).pvalue) if up + down else 1.0
        smallest = float(stats.binomtest(n, n).pvalue) if n else 1.0  # every seed discordant the same way
    else:
        method = "exact paired permutation test"
        nonzero = diffs[diffs != 0]
        if len(nonzero) < 2:  # one sign (or none) to flip: both orders are equally likely, p = 1
            p = 1.0
        else:
            p = float(stats.permutation_test((nonzero,), lambda x, axis=-1: np.mean(x, axis=axis),
                                             permutation_type="samples", n_resamples=np.inf, vectorized=True).pvalue)
        smallest = 2.0 ** (1 - n) if n else 1.0  # every sign the same: the smallest p n seeds can give
    interval = (float(diffs.min()), float(diffs.max())) if n else (math.nan, math.nan)
    if p < alpha and effect > 0:
        return Decision(SUPPORTED, effect, interval, p, n, method)
    if p < alpha and effect < 0:
        return Decision(CONTRADICTED, effect, interval, p, n, method)
    needed = max(n + 1, exact_seeds_needed(alpha))
    reason = (f"p = {p:.2g}; with {n} seeds the smallest p this test can give is {smallest:.2g}" if smallest >= alpha
              else f"p = {p:.2g}")
    return Decision(INCONCLUSIVE, effect, interval, math.nan, n, method, reason,
                    None, needed if smallest >= alpha else None)


def exact_seeds_needed(alpha: float = ALPHA) -> int:
    """The fewest seeds with which the exact tests can reach p < `alpha` at all: every seed pointing
    the same way gives p = 2^(1 - n) (6 seeds at 0.05)."""
    return math.floor(1 + math.log2(1 / alpha)) + 1


def log_ratio_differences(better, worse, ratio: float, direction: str) -> np.ndarray:
    """Per seed: log(better / worse) oriented by `direction`, minus log(ratio); > 0 means the
    claimed ratio is exceeded. ("6x sooner" on a lower-is-better metric: worse / better vs 6.)"""
    better, worse = np.asarray(better, dtype=float), np.asarray(worse, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_ratio = np.log(better) - np.log(worse)
    sign = 1.0 if direction == "higher" else -1.0
    return sign * log_ratio - math.log(ratio)


def holm(decisions: list[Decision]) -> list[str]:
    """Holm-adjusted verdicts within one study: a decided verdict stays when its test's p,
    adjusted over every claim of the study, is below alpha; otherwise it becomes inconclusive."""
    p_values = [d.p_value if d.verdict in DECIDED and math.isfinite(d.p_value) else 1.0 for d in decisions]
    if not p_values:
        return []
    reject = multipletests(p_values, alpha=ALPHA, method="holm")[0]
    return [d.verdict if d.verdict in DECIDED and keep else INCONCLUSIVE for d, keep in zip(decisions, reject)]

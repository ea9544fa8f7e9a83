"""Seeds where the verdict is undecided: the looks' levels, the rule's error rates with looks, and
a study judged look by look."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.power import TTestPower

from suite.core import sequential
from suite.core.sequential import Look
from suite.core.verdicts import CONTRADICTED, EQUIVALENT, INCONCLUSIVE, SUPPORTED

REPS = 1500
LOOKS = (3, 8, 16)


@pytest.mark.parametrize(("spending", "bounds"), [
    # Lan-DeMets spending at three equally spaced looks, one-sided 0.025 (Jennison & Turnbull, table 7.6)
    ("obrien_fleming", (3.710, 2.511, 1.993)),
    ("pocock", (2.279, 2.295, 2.296)),
])
def test_the_levels_are_the_published_lan_demets_boundaries(spending, bounds):
    looks = sequential.looks_for((5, 10, 15), spending)
    assert [look.seeds for look in looks] == [5, 10, 15]
    assert [stats.norm.isf(look.alpha / 2) for look in looks] == pytest.approx(bounds, abs=2e-3)


def test_one_look_is_the_fixed_design():
    assert sequential.looks_for((3,)) == (Look(1, 3, 0.05),)


def test_exact_tests_start_at_the_first_look_that_can_decide():
    looks = sequential.looks_for(LOOKS)
    assert sequential.first_look("continuous", looks).seeds == 3
    # Pocock's level at 8 seeds is about 0.02: the sign test's smallest p there is 2^-7
    assert sequential.first_look("binary", looks).seeds == 8


def _fixed_power(effect: float, seeds: int, alpha: float = 0.05) -> float:
    return float(TTestPower().power(effect_size=effect, nobs=seeds, alpha=alpha, alternative="two-sided"))


@pytest.mark.parametrize("spending", ["pocock", "obrien_fleming"])
def test_looking_after_each_block_keeps_false_decisions_at_or_below_5_percent(spending):
    looks = sequential.looks_for(LOOKS, spending)
    se = math.sqrt(0.05 * 0.95 / REPS)
    no_effect = sequential.simulate(looks, 0.0, margin=0.2, reps=REPS)
    assert no_effect[SUPPORTED] + no_effect[CONTRADICTED] <= 0.05 + 3 * se, no_effect
    # an equivalence claim whose true difference sits on its margin: calling it equivalent is false
    on_margin = sequential.simulate(looks, 0.5, margin=0.5, test="equivalent", reps=REPS, seed=1)
    assert on_margin[SUPPORTED] <= 0.05 + 3 * se, on_margin
    # the exact sign test on discordant seeds under no effect
    binary = sequential.simulate(looks, 0.0, margin=0.0, scale="binary", reps=REPS, seed=2)
    assert binary[SUPPORTED] + binary[CONTRADICTED] <= 0.05 + 3 * se, binary


def test_the_looks_buy_power_between_the_first_and_the_last_look_for_fewer_seeds():
    looks = sequential.looks_for(LOOKS)
    one_sd = sequential.simulate(looks, 1.0, margin=0.2, reps=REPS, seed=3)
    # against the analytic power of fixed designs: far above 3 seeds', a little below 16 seeds'
    assert one_sd[SUPPORTED] > _fixed_power(1.0, 3) + 0.4
    assert _fixed_power(1.0, 16) - 0.2 < one_sd[SUPPORTED] <= _fixed_power(1.0, 16)
    assert one_sd["mean_seeds"] < 12  # large effects stop early
    assert sequential.simulate(looks, 3.0, margin=0.2, reps=200)["mean_seeds"] < 8  # most stop at 3 or 8


def test_a_claim_stops_at_its_first_decision_and_futility_never_at_the_first_look():
    looks = sequential.looks_for(LOOKS)
    clear = np.r_[np.full(3, 5.0) + [0.1, -0.1, 0.0], np.zeros(13)]
    decision, look, why = sequential.decide_in_looks(clear, looks, margin=0.2)
    assert (decision.verdict, look.seeds, why) == (SUPPORTED, 3, sequential.DECIDED)
    noise = np.random.default_rng(5).normal(0.0, 1.0, 16)
    decision, look, why = sequential.decide_in_looks(noise, looks, margin=0.05)
    assert look.seeds > 3 and why in (sequential.FUTILE, sequential.LAST)
    assert decision.verdict in (INCONCLUSIVE, EQUIVALENT)

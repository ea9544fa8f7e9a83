"""sequential: more seeds only where a verdict is undecided, without inflating false decisions.

A profile may pre-register looks: numbers of judging seeds, e.g. 3, 8 and 16. Every arm runs the
first look's seeds; a claim still undecided there gets the next look's seeds for the arms it
compares, and so on. Looking after every block and stopping at the first decision would decide
falsely more often than 5%; so each look judges at a smaller nominal level, from a Lan-DeMets
alpha-spending function (Pocock-type by default, O'Brien-Fleming-type on request; the boundaries
come from `seqabpy`) over the information fractions seeds / last look's seeds. The same level
serves each of the four outcomes: the intervals at the looks are repeated confidence intervals
(Jennison & Turnbull 2000, ch. 9), and the t-tests use the nominal levels of the normal boundaries
(their section 3.8). `tests/core/test_sequential.py` measures the false-decision rate this gives
on simulated seeds, and `bench/sequential_calibration.py` writes the table `docs/verdicts.md` shows.

A claim stops at the first look that decides it (supported, contradicted or equivalent), at a
later look where the last look, given today's mean and spread, would still be inconclusive
(futility: it decides nothing, so it cannot add false decisions), when no compared arm learned,
or at the last look (or at once where every seed gave the same difference: the arms are one net).
Futility is otherwise never judged at the first look, whose three seeds give too rough a spread:
against an effect of one standard deviation, with looks 3/8/16 under Pocock spending, the power
was 0.69 with futility from the first look, 0.83 from the second and 0.93 without (2,000
simulated claims each); from the second look it saves 7 of 16 seeds where there is no effect.
Claims judged by exact tests (yes/no and count outcomes) skip the looks whose seeds cannot
reach the look's level at all. Pure statistics; imports no Keras.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import io
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from suite.core import analysis, budget, verdicts
from suite.core.budget import NOT_JUDGED
from suite.core.study import Claim

SPENDING = {"pocock": 2, "obrien_fleming": 1}  # seqabpy's `iuse` for each spending function
# why a claim's looks ended
DECIDED, FUTILE, LAST, NO_LEARNING, WAITING = "decided", "futile", "last look", "not judged", "waiting"
# verdicts at half the budget that stop its looks: decided, or no compared arm learned (more seeds
# would not change that, as at B)
HALF_STOPS = (*verdicts.DECIDED, NOT_JUDGED)


@dataclass(frozen=True)
class Look:
    index: int  # 1, 2, ...
    seeds: int  # judging seeds per arm at this look
    alpha: float  # the nominal two-sided level this look judges at


@functools.lru_cache(maxsize=64)
def looks_for(seeds: tuple[int, ...], spending: str = "pocock", alpha: float = verdicts.ALPHA) -> tuple[Look, ...]:
    """The looks at these seed counts with their nominal levels; one look is a fixed design at `alpha`."""
    if len(seeds) == 1:
        return (Look(1, seeds[0], alpha),)
    from seqabpy import gatsby  # only sequential runs need it

    fractions = np.asarray(seeds, dtype=float) / seeds[-1]
    with contextlib.redirect_stdout(io.StringIO()):  # it reports its iterations on stdout
        bounds = gatsby.ldBounds(fractions, iuse=SPENDING[spending], alpha=alpha / 2)  # one side of two
    return tuple(Look(i + 1, int(n), float(2 * a)) for i, (n, a) in enumerate(zip(seeds, bounds["nominal.alpha"])))


def first_look(scale: str, looks: tuple[Look, ...]) -> Look:
    """The first look at which a test on this scale can decide anything: any look for a t-test; for
    an exact test (binary, count), the first whose seeds can give a p below the look's level."""
    if scale == "continuous":
        return looks[0]
    return next((look for look in looks if look.seeds >= verdicts.exact_seeds_needed(look.alpha)), looks[-1])


def futile(claim: Claim, verdict: analysis.Verdict, look: Look, looks: tuple[Look, ...]) -> bool:
    """Whether to stop the claim at `look` for futility (`stops_for_futility`); never for an exact test."""
    if analysis.claim_scale(claim) != "continuous" or len(verdict.pairs) < 2:
        return False
    diffs, margin = analysis.claim_differences(claim, pd.DataFrame(verdict.pairs).set_index("seed"))
    return stops_for_futility(diffs, margin, claim.test, look, looks)


def stops_for_futility(diffs, margin: float, test: str, look: Look, looks: tuple[Look, ...]) -> bool:
    """Futility at `look`: every seed gave the very same difference (two arms that are one net, e.g.
    two dev sets that chose the same rate: more seeds repeat it), or, from the second look on, the
    last look would still leave the claim inconclusive (`projected_undecided`)."""
    diffs = np.asarray(diffs, dtype=float)
    if len(diffs) >= 2 and np.ptp(diffs) == 0:
        return True
    return look is not looks[0] and projected_undecided(diffs, margin, test, looks[-1])


@dataclass(frozen=True)
class Stop:
    """Where a claim's looks ended: at `look`, for `reason`; `next_seeds`: the seeds its arms need
    before the next look can judge (reason WAITING)."""

    look: Look
    reason: str
    next_seeds: int | None = None

    def as_dict(self, looks: tuple[Look, ...]) -> dict:
        return {"look": self.look.index, "looks": [look.seeds for look in looks], "seeds": self.look.seeds,
                "alpha": self.look.alpha, "stop": self.reason, "next_seeds": self.next_seeds,
                "note": self.note(looks)}

    def note(self, looks: tuple[Look, ...]) -> str:
        """What the page says: "look 2 of 3 (8 seeds, level 0.020): futile, ..."."""
        why = {DECIDED: "decided", FUTILE: "stopped: even the last look would likely leave it undecided",
               LAST: "the last look", NO_LEARNING: "stopped: no compared arm learned",
               WAITING: f"waiting for {self.next_seeds} seeds (the run is unfinished)"}[self.reason]
        return f"look {self.look.index} of {len(looks)} ({self.look.seeds} seeds, level {self.look.alpha:.3g}): {why}"


def decided_at_budget(verdict: analysis.Verdict) -> bool:
    """Decided at the profile's budget (a budget check's verdict at B/2 alone does not stop the looks)."""
    word = verdict.budget_check["full"]["verdict"] if verdict.budget_check else verdict.verdict
    return word in verdicts.DECIDED


def judge_in_looks(claims: list[Claim], looks: tuple[Look, ...], judge_at: Callable[[Look], list],
                   complete: Callable[[Claim, int], bool],
                   complete_half: Callable[[Claim, int], bool] | None = None) -> list[analysis.Verdict]:
    """Each claim's verdict at the look where it stops. `judge_at(look)`: every claim's verdict on the
    first `look.seeds` judging seeds at `look.alpha`; `complete(claim, n)`: whether the arms it
    compares have run n judging seeds (`complete_half`: at half the budget). A budget check's
    verdict at B/2 stops on its own (`_half_look`). Holm's adjustment is made over the verdicts as
    they stop."""
    judged = {}  # look index -> {claim id: verdict}
    final, levels = [], []
    for claim in claims:
        start = first_look(analysis.claim_scale(claim), looks)
        verdict, stop, previous = None, Stop(start, WAITING, start.seeds), start
        for look in looks[start.index - 1:]:
            if not complete(claim, look.seeds):  # judged at the last look it has (or, before any, on what there is)
                stop = Stop(previous, WAITING, look.seeds)
                break
            previous = look
            if look.index not in judged:
                judged[look.index] = {v.claim.id: v for v in judge_at(look)}
            verdict = judged[look.index][claim.id]
            if verdict.verdict == NOT_JUDGED:
                stop = Stop(look, NO_LEARNING)
            elif decided_at_budget(verdict):
                stop = Stop(look, DECIDED)
            elif look is looks[-1]:
                stop = Stop(look, LAST)
            elif futile(claim, verdict, look, looks):
                stop = Stop(look, FUTILE)
            else:
                continue
            break
        at = stop.as_dict(looks)
        if verdict is None:  # not even its first look has run: judged on what there is, marked waiting
            verdict = {v.claim.id: v for v in judge_at(start)}[claim.id]
        elif verdict.budget_check and complete_half is not None:
            half_look = _half_look(claim, looks[start.index - 1:stop.look.index], judged, complete_half)
            if half_look is not None:
                verdict = _with_half(verdict, judged[half_look.index][claim.id].budget_check["half"])
                at["half_seeds"] = half_look.seeds
                if half_look is not stop.look:
                    at["note"] += f"; at half the budget, look {half_look.index} ({half_look.seeds} seeds)"
        final.append(dataclasses.replace(verdict, sequential=at))
        levels.append(stop.look.alpha)
    return _with_holm(final, levels)


def _half_look(claim: Claim, looks: tuple[Look, ...], judged: dict, complete_half: Callable[[Claim, int], bool]):
    """The look whose verdict at half the budget the budget check reads: the first of `looks` (those
    up to the look where the verdict at B stopped) that decides it at B/2 or finds no compared arm
    learned there, else the last with its runs at B/2 complete; None where none is. B/2 then needs
    no more seeds than it takes to decide, and never more than B: each budget is a group-sequential
    test of its own, within the design's overall 5%, and stopping one early for a reason outside it
    only lowers its chance of a false decision."""
    found = None
    for look in looks:
        half = judged[look.index][claim.id].budget_check["half"]
        if half is None or not complete_half(claim, look.seeds):
            break
        found = look
        if half["verdict"] in HALF_STOPS:
            break
    return found


def _with_half(verdict: analysis.Verdict, half: dict) -> analysis.Verdict:
    """`verdict` with its budget check read against `half` (the B/2 side at another look)."""
    check = budget.check(verdict.budget_check["full"], half)
    return dataclasses.replace(verdict, verdict=check.outcome, budget_check=check.as_dict())


def _with_holm(final: list[analysis.Verdict], levels: list[float]) -> list[analysis.Verdict]:
    """Holm's adjustment over the verdicts at the profile's budget, each at its look's level; a budget
    check's verdict at B/2 then enters as it does in a fixed design (suite.core.budget.combine)."""
    at_budget = [dataclasses.replace(v, verdict=v.budget_check["full"]["verdict"]) if v.budget_check else v
                 for v in final]
    adjusted = analysis.with_holm(at_budget, levels)
    out = []
    for verdict, holm in zip(final, adjusted):
        word = holm.holm_verdict
        if verdict.budget_check:
            half = verdict.budget_check["half"]
            word = budget.combine(word, half["verdict"] if half else None)[1]
        out.append(dataclasses.replace(verdict, holm_verdict=word))
    return out


def waiting_seeds(verdicts_: list[analysis.Verdict]) -> dict[str, int]:
    """Claim id -> the judging seeds its arms need before its next look (the claims still waiting)."""
    return {v.claim.id: v.sequential["next_seeds"] for v in verdicts_
            if v.sequential and v.sequential["stop"] == WAITING}


def waiting_half_seeds(verdicts_: list[analysis.Verdict]) -> dict[str, int]:
    """Claim id -> the judging seeds its arms need at half the budget before the next look: those of
    a claim still waiting at B whose verdict at B/2 no complete look has stopped (`HALF_STOPS`)."""
    return {v.claim.id: v.sequential["next_seeds"] for v in verdicts_
            if v.sequential and v.sequential["stop"] == WAITING and v.budget_check
            and not (v.sequential.get("half_seeds") and v.budget_check["half"]["verdict"] in HALF_STOPS)}


def projected_undecided(diffs, margin: float, test: str, last: Look) -> bool:
    """Whether `last.seeds` seeds with these differences' mean and spread would still be inconclusive
    (a predicted interval: about even odds of deciding where it just would not be)."""
    diffs = np.asarray(diffs, dtype=float)
    spread = float(np.std(diffs, ddof=1)) if len(diffs) >= 2 else math.nan
    if not math.isfinite(spread) or spread == 0:
        return False
    shape = np.linspace(-1.0, 1.0, last.seeds)
    shape = (shape - shape.mean()) / shape.std(ddof=1)  # mean 0, spread 1
    projected = float(np.mean(diffs)) + spread * shape
    return verdicts.decide(projected, margin, test, power_notes=False, alpha=last.alpha).verdict not in verdicts.DECIDED


def decide_in_looks(diffs, looks: tuple[Look, ...], margin: float, test: str = "superior",
                    scale: str = "continuous") -> tuple[verdicts.Decision, Look, str]:
    """The rule on one claim's differences in seed order (as many as the last look): (its decision,
    the look it stopped at, why). What `judge_in_looks` does with a study's claims; the calibration
    simulates this."""
    diffs = np.asarray(diffs, dtype=float)
    start = first_look(scale, looks)
    for look in looks[start.index - 1:]:
        decision = verdicts.decide(diffs[:look.seeds], margin, test, scale, power_notes=False, alpha=look.alpha)
        if decision.verdict in verdicts.DECIDED:
            return decision, look, DECIDED
        if look is looks[-1]:
            return decision, look, LAST
        if scale == "continuous" and stops_for_futility(diffs[:look.seeds], margin, test, look, looks):
            return decision, look, FUTILE
    raise AssertionError("unreachable: the last look always returns")


def simulate(looks: tuple[Look, ...], effect: float, margin: float, test: str = "superior",
             scale: str = "continuous", reps: int = 2000, seed: int = 0) -> dict:
    """Monte Carlo of the rule on seeds whose differences are normal with spread 1 and mean `effect`
    (binary: +1, -1 or 0 with P(+1) - P(-1) = `effect` among half the seeds discordant): the share of
    each verdict and the mean seeds per arm it used. The calibration test and table read this."""
    rng = np.random.default_rng(seed)
    last = looks[-1].seeds
    counts = dict.fromkeys(verdicts.VERDICTS, 0)
    used = 0
    for _ in range(reps):
        if scale == "binary":
            diffs = rng.choice([1.0, -1.0, 0.0], size=last, p=[0.25 + effect / 2, 0.25 - effect / 2, 0.5])
        else:
            diffs = rng.normal(effect, 1.0, last)
        decision, look, _ = decide_in_looks(diffs, looks, margin, test, scale)
        counts[decision.verdict] += 1
        used += look.seeds
    return {**{word: count / reps for word, count in counts.items()}, "mean_seeds": used / reps}

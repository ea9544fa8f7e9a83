"""analysis: claim verdicts from a study's frames (suite.core.frames).

Imports no Keras. Claims compare the `better` and `worse` arms paired by seed; `suite.core.verdicts` turns
the per-seed differences into one of four words (supported, contradicted, equivalent,
inconclusive), with power notes, a Holm-adjusted verdict per study, and, for per-epoch
metrics, the verdict at every stored epoch (the budget curve).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import pandas as pd

from suite.core import frames, registry, verdicts
from suite.core.budget import BUDGET_DEPENDENT, NOT_JUDGED  # noqa: F401 (re-exported)
from suite.core.frames import best_checkpoint_per_seed, best_per_seed, mean_ci, select_arms
from suite.core.step_curve import steps_to_target
from suite.core.study import PROGRAM_METRICS, Claim, Fact, Study
from suite.core.verdicts import CONTRADICTED, EQUIVALENT, INCONCLUSIVE, SUPPORTED, VERDICTS  # noqa: F401 (re-exported)

# Metrics that are not continuous get exact tests (suite.core.verdicts); techniques declare theirs
# with `registry.add("metric", name, kind, scale=...)`.
METRIC_SCALES = {"diverged": "binary", "epochs_to_target": "count", "steps_to_target": "count"}
# An arm learned nothing when its validation accuracy stays within this of chance (1 / classes), in
# the median of its judging runs: 5 points, as the claims on learning at all read it (I6-he, I6-glorot)
LEARNED_ABOVE_CHANCE = 0.05


@dataclass(frozen=True)
class Verdict:
    claim: Claim
    verdict: str
    effect: float  # mean paired difference, oriented so that > 0 favours the claim
    ci: tuple  # (low, high) of the effect
    n: int  # pairs (seeds) that entered the comparison
    better_mean: float
    worse_mean: float
    reason: str = ""  # why inconclusive, or pairs that were dropped
    pairs: list = field(default_factory=list)  # [{seed, better, worse}]
    method: str = ""  # the test behind the verdict
    p_value: float = math.nan
    mde: float | None = None  # smallest effect these seeds detect at 80% power
    seeds_needed: int | None = None  # seeds the observed effect and spread would need
    holm_verdict: str = ""  # the verdict after Holm's adjustment over the study's claims
    by_epoch: list = field(default_factory=list)  # [{epoch, steps, effect, ci, verdict}]: the budget curve
    curve: str = ""  # the budget curve in words ("holds from step S on", ...)
    budget_check: dict | None = None  # claims about trained nets: the verdicts at B/2 and B (suite.core.budget)
    sequential: dict | None = None  # a profile with looks: the look the claim stopped at, and why (suite.core.sequential)

    @property
    def power_note(self) -> str:
        """Which kind of inconclusive: too few seeds, or no difference larger than the interval allows."""
        if self.verdict != INCONCLUSIVE or self.n < 2:
            return ""
        if self.seeds_needed is not None and self.seeds_needed > self.n:
            return f"too few seeds: about {self.seeds_needed} would decide it"
        if not self.ci[0] < self.ci[1]:
            return ""  # an interval of zero width: the reason says why
        bound = max(abs(self.ci[0]), abs(self.ci[1]))
        return f"no difference larger than {bound:.3g}" if math.isfinite(bound) else ""

    def as_dict(self) -> dict:
        num = json_number
        return {"id": self.claim.id, "text": self.claim.text, "metric": self.claim.metric,
                "epoch": self.claim.epoch, "direction": self.claim.direction, "verdict": self.verdict,
                "effect": num(self.effect), "ci": [num(self.ci[0]), num(self.ci[1])], "n": self.n,
                "better_mean": num(self.better_mean), "worse_mean": num(self.worse_mean), "reason": self.reason,
                "margin": self.claim.margin, "margin_reason": self.claim.margin_reason, "test": self.claim.test,
                "ratio": self.claim.ratio, "needs": self.claim.needs, "gpu_scale": self.claim.gpu_scale,
                "method": self.method, "p_value": num(self.p_value), "mde": num(self.mde),
                "seeds_needed": self.seeds_needed, "power_note": self.power_note, "holm_verdict": self.holm_verdict,
                "by_epoch": self.by_epoch, "curve": self.curve, "budget_check": self.budget_check,
                "sequential": self.sequential}


def epochs_to_target(epochs: pd.DataFrame, target: dict) -> pd.Series:
    """Per trial key: the first epoch at which `target["metric"]` reaches `target["value"]`
    (at or below it for a loss). Never reached: the budget + 1, a censored value that
    understates the true time, so a speed claim judged on it errs towards caution."""
    metric, value = target["metric"], target["value"]
    trained = epochs[epochs["epoch"] >= 1]
    if trained.empty or metric not in trained:
        return pd.Series(dtype=float)
    budget = int(trained["epoch"].max())
    level = pd.to_numeric(trained[metric], errors="coerce")
    reached = trained[level <= value] if metric.endswith("loss") else trained[level >= value]
    first = reached.groupby("key")["epoch"].min()
    return first.reindex(trained["key"].unique()).fillna(budget + 1).astype(float)


def claim_values(claim: Claim, selector: dict | list, trials: pd.DataFrame, epochs: pd.DataFrame) -> pd.Series:
    """Per seed that every matched arm ran: the claim's metric, averaged over those arms.
    A list of selectors: each one's per-seed value, averaged with equal weight, so
    [{a: x, n: small}, {a: none, n: large}] vs [{a: none, n: small}, {a: x, n: large}]
    is half the difference of differences (D1: augmentation matters more with less data)."""
    if isinstance(selector, list):
        parts = pd.concat([claim_values(claim, part, trials, epochs) for part in selector], axis=1, join="inner")
        return parts.mean(axis=1, skipna=False)
    if claim.selection == "per_seed_checkpoint":
        # up to the claim's epoch (a budget curve's point): a checkpoint chosen as if training stopped there
        upto = epochs if claim.epoch is None or epochs.empty else epochs[epochs["epoch"] <= claim.epoch]
        chosen = best_checkpoint_per_seed(trials[select_arms(trials, selector)], upto)
        values = chosen.reindex(columns=["seed", claim.metric])  # the metric at the epoch each dev set chose
    else:
        chosen = (best_per_seed(trials[select_arms(trials, selector)]) if claim.selection == "per_seed"
                  else trials[trials["selected"] & select_arms(trials, selector)])
        values = _metric_values(claim, chosen, epochs)
        if values is None:
            return pd.Series(dtype=float)
    values = values.assign(v=pd.to_numeric(values[claim.metric], errors="coerce"))
    per_seed = values.groupby("seed")["v"].agg(lambda s: s.mean() if s.notna().all() else math.nan)
    # a seed that only some of the arms ran (another claim asked those for more seeds, or a
    # run is unfinished) is not a value: averaging the arms it has would compare other things
    arms_run = chosen.groupby("seed")["arm"].nunique()
    return per_seed[per_seed.index.isin(arms_run[arms_run == chosen["arm"].nunique()].index)]


def _metric_values(claim: Claim, chosen: pd.DataFrame, epochs: pd.DataFrame) -> pd.DataFrame | None:
    """The `chosen` trials' seeds and the claim's metric (a column of that name): a final number,
    the epochs or steps to its target, or the number at its epoch (None: no trial has that epoch)."""
    if claim.metric == "epochs_to_target":
        reached = epochs_to_target(epochs, claim.target).rename("epochs_to_target")
        return chosen[["key", "seed"]].merge(reached, left_on="key", right_index=True, how="left")
    if claim.metric == "steps_to_target":
        curves = chosen["step_curve"] if "step_curve" in chosen else pd.Series(None, index=chosen.index)
        return chosen[["seed"]].assign(steps_to_target=curves.map(lambda c: steps_to_target(c, claim.target)))
    if claim.epoch is None and claim.metric in chosen:
        return chosen[["seed", claim.metric]]
    rows = epochs[epochs["key"].isin(chosen["key"])] if not epochs.empty else epochs
    if rows.empty or claim.metric not in rows:
        return None
    epoch = claim.epoch if claim.epoch is not None else rows.groupby("key")["epoch"].transform("max")
    at = rows[rows["epoch"] == epoch]
    # a trial that stopped (diverged) before the epoch has no value there
    return chosen[["key", "seed"]].merge(at[["key", claim.metric]], on="key", how="left")


def metric_scale(metric: str) -> str:
    """continuous | binary | count: which test a claim on `metric` gets."""
    return registry.metadata("metric", metric).get("scale") or METRIC_SCALES.get(metric, "continuous")


def paired_values(claim: Claim, trials: pd.DataFrame, epochs: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Per seed both sides ran: the `better` and `worse` values; and how many seeds there were
    before dropping those with a failed trial (NaN)."""
    better = claim_values(claim, claim.better, trials, epochs)
    if claim.worse is None:  # a claim against a fixed value (`than`)
        worse = pd.Series(claim.than, index=better.index, dtype=float)
    else:
        worse = claim_values(claim, claim.worse, trials, epochs)
    paired = pd.concat({"better": better, "worse": worse}, axis=1, join="inner")
    return paired.dropna(), len(paired)


def judged_margin(claim: Claim) -> float:
    """The margin in the units the claim's effect is judged in: for a ratio claim (judged on log
    ratios) the log of its factor, else the margin itself."""
    if claim.ratio is not None:
        return math.log(claim.margin) if claim.margin else 0.0
    return claim.margin or 0.0


def claim_differences(claim: Claim, paired: pd.DataFrame) -> tuple[pd.Series, float]:
    """(per-seed differences oriented so that > 0 favours the claim, the margin in their units): a
    ratio claim's are log ratios against the stated ratio, its margin a log factor."""
    if claim.ratio is not None:
        return (verdicts.log_ratio_differences(paired["better"], paired["worse"], claim.ratio, claim.direction),
                judged_margin(claim))
    sign = 1.0 if claim.direction == "higher" else -1.0
    return sign * (paired["better"] - paired["worse"]), judged_margin(claim)


def decide_claim(claim: Claim, paired: pd.DataFrame, power_notes: bool = True,
                 alpha: float = verdicts.ALPHA) -> verdicts.Decision:
    """The claim's verdict from its paired values (suite.core.verdicts has the rule), at level `alpha`."""
    diffs, margin = claim_differences(claim, paired)
    return verdicts.decide(diffs, margin, claim.test, claim_scale(claim), power_notes, alpha)


def claim_scale(claim: Claim) -> str:
    """The scale the claim's differences are tested on: a ratio claim's log ratios are continuous."""
    return "continuous" if claim.ratio is not None else metric_scale(claim.metric)


def compared_trials(claim: Claim, trials: pd.DataFrame) -> pd.DataFrame:
    """The selected trials of the arms `claim` compares (its better side, and its worse side if any)."""
    compared = select_arms(trials, claim.better)
    if claim.worse is not None:
        compared |= select_arms(trials, claim.worse)
    return trials.loc[trials["selected"] & compared]


def sgd_steps_range(claim: Claim, trials: pd.DataFrame) -> list[int] | None:
    """[fewest, most] SGD steps among the judging trials a claim compares: the budget its verdict holds
    for, as the training loop counted it (multi-phase procedures included)."""
    if trials.empty or "sgd_steps" not in trials:
        return None
    steps = pd.to_numeric(compared_trials(claim, trials)["sgd_steps"], errors="coerce").dropna()
    return [int(steps.min()), int(steps.max())] if len(steps) else None


def learning_problems(claim: Claim, trials: pd.DataFrame) -> tuple[list[str], bool]:
    """(what the compared arms' nets failed at, whether every compared arm failed): an arm whose every
    judging run diverged, or whose runs' median validation accuracy stayed within LEARNED_ABOVE_CHANCE
    of chance (1 / the dataset's classes, from the records' provenance). Such an arm is the outcome of
    its technique, so it is said, not hidden; a comparison in which no arm learned compares nothing."""
    if trials.empty or "classes" not in trials:
        return [], False
    problems, failed, arms = [], 0, 0
    for arm, runs in compared_trials(claim, trials).groupby("arm", sort=False):
        arms += 1
        diverged = runs["status"].eq("diverged")
        if diverged.all():
            problems.append(f"{arm} diverged in all {len(runs)} runs (a diverged net is tested as it predicts)")
            failed += 1
            continue
        classes = pd.to_numeric(runs["classes"], errors="coerce").dropna()
        if classes.empty or classes.iloc[0] < 2 or "val_accuracy" not in runs:
            continue  # no class count recorded, or a regression (no classes, no chance accuracy)
        chance = 1.0 / float(classes.iloc[0])
        accuracy = float(pd.to_numeric(runs.loc[~diverged, "val_accuracy"], errors="coerce").median())
        if accuracy < chance + LEARNED_ABOVE_CHANCE:
            problems.append(f"{arm} did not learn (median validation accuracy {accuracy:.3f}, chance {chance:.2f})")
            failed += 1
    return problems, arms > 0 and failed == arms


def timed_beside_others(claim: Claim, trials: pd.DataFrame) -> str:
    """Why a claim on a step time cannot be decided from its records, or "": some were timed
    while other trials ran beside them (stored before timed trials ran alone, 2026-12-06, or by a
    run where no timing claim read them; running the study again times them alone)."""
    if claim.metric not in PROGRAM_METRICS:
        return ""
    rows = compared_trials(claim, trials)
    alone = frames.timed_alone(rows)
    if alone.all():
        return ""
    return (f"{int((~alone).sum())} of {len(rows)} step times were measured while other trials ran beside them "
            "(records stored by a run that did not time them alone): run the study again to time them alone")


def _selector_text(selector: dict | list) -> str:
    parts = selector if isinstance(selector, list) else [selector]
    return " + ".join(", ".join(f"{k}={v}" for k, v in part.items()) for part in parts)


def censored_seeds(claim: Claim, selector: dict | list, trials: pd.DataFrame) -> set:
    """Seeds on which no matched run of `selector` reached the claim's target within its steps."""
    if claim.metric != "steps_to_target" or "step_curve" not in trials:
        return set()
    chosen = trials[trials["selected"] & select_arms(trials, selector)]
    never = chosen["step_curve"].map(lambda c: bool(c) and steps_to_target(c, claim.target) > c["ends"][-1])
    return set(chosen.loc[never, "seed"]) - set(chosen.loc[~never, "seed"])


def drop_uninformative(claim: Claim, paired: pd.DataFrame, trials: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Time to a target with censoring: a seed on which neither side reached the target says nothing
    about which is faster (both counted at the budget, its ratio would read 1), so it is dropped. A
    seed on which one side never reached it keeps that side's steps + one window, a bound below its
    true time: the ratio it gives understates the difference, so the verdict errs towards caution."""
    if claim.metric != "steps_to_target" or claim.worse is None:
        return paired, []
    better, worse = censored_seeds(claim, claim.better, trials), censored_seeds(claim, claim.worse, trials)
    both = sorted(better & worse & set(paired.index))
    notes = []
    if both:
        notes.append(f"{len(both)} of {len(paired)} seeds dropped: neither side reached the target within the budget")
    one = len((better ^ worse) & set(paired.index))
    if one:
        notes.append(f"on {one} seed{'s' if one > 1 else ''} one side never reached the target: counted at its steps + "
                     "one window, which understates the difference")
    return paired.drop(index=both), notes


def judge_claim(claim: Claim, trials: pd.DataFrame, epochs: pd.DataFrame, alpha: float = verdicts.ALPHA) -> Verdict:
    """The claim's verdict at level `alpha` (a group-sequential look's nominal level, or 0.05)."""
    paired, total = paired_values(claim, trials, epochs)
    failed = total - len(paired)  # seeds without a value on one side
    paired, censoring = drop_uninformative(claim, paired, trials)
    decision = decide_claim(claim, paired, alpha=alpha)
    reasons = list(censoring)
    if claim.needs != "initialisation":
        problems, none_learned = learning_problems(claim, trials)
        if none_learned and claim.worse is not None:  # the numbers stay on the page; there is nothing to compare
            decision = dataclasses.replace(decision, verdict=NOT_JUDGED)
            reasons.append("not judged: no compared arm learned")
        reasons += problems
    shared = timed_beside_others(claim, trials)
    if shared:  # a neighbour's threads are in those timings: they cannot decide a timing claim
        decision = dataclasses.replace(decision, verdict=INCONCLUSIVE)
        reasons.append(shared)
    if failed:
        reasons.append(f"{failed} of {total} seeds dropped (a trial diverged, failed or lacks the metric)")
    if decision.reason:
        reasons.append(decision.reason)
    pairs = [{"seed": int(seed), "better": row.better, "worse": row.worse} for seed, row in paired.iterrows()]
    by_epoch = judge_by_epoch(claim, trials, epochs, alpha)
    return Verdict(claim=claim, verdict=decision.verdict, effect=decision.effect, ci=decision.ci, n=decision.n,
                   better_mean=float(paired["better"].mean()) if len(paired) else math.nan,
                   worse_mean=float(paired["worse"].mean()) if len(paired) else math.nan,
                   reason="; ".join(reasons), pairs=pairs, method=decision.method, p_value=decision.p_value,
                   mde=decision.mde, seeds_needed=decision.seeds_needed, by_epoch=by_epoch,
                   curve=curve_in_words(claim, by_epoch))


def steps_per_epoch(trials: pd.DataFrame) -> float | None:
    """SGD steps in one epoch of the selected trials (their median), for budget curves in steps."""
    if "steps_per_epoch" not in trials or trials.empty:
        return None
    steps = pd.to_numeric(trials.loc[trials["selected"], "steps_per_epoch"], errors="coerce").dropna()
    return float(steps.median()) if len(steps) else None


def judge_by_epoch(claim: Claim, trials: pd.DataFrame, epochs: pd.DataFrame,
                   alpha: float = verdicts.ALPHA) -> list[dict]:
    """A claim on a per-epoch metric judged at every stored epoch: the budget curve."""
    if epochs.empty or claim.metric not in epochs or claim.metric == "epochs_to_target":
        return []
    per_step = steps_per_epoch(trials)
    rows = []
    for epoch in sorted(int(e) for e in epochs.loc[epochs[claim.metric].notna(), "epoch"].unique()):
        paired, _ = paired_values(dataclasses.replace(claim, epoch=epoch), trials, epochs)
        if len(paired) == 0:
            continue
        # a curve point keeps its word, not its power notes
        decision = decide_claim(claim, paired, power_notes=False, alpha=alpha)
        rows.append({"epoch": epoch, "steps": None if per_step is None else int(round(epoch * per_step)),
                     "effect": json_number(decision.effect), "ci": [json_number(decision.ci[0]), json_number(decision.ci[1])],
                     "verdict": decision.verdict, "n": decision.n})
    return rows


def json_number(x):
    """JSON-ready: 6 decimals, None for a missing or non-finite number."""
    return None if x is None or not math.isfinite(x) else round(float(x), 6)


def curve_in_words(claim: Claim, rows: list[dict]) -> str:
    """The budget curve in words, framed for what the claim is about: a claim on the net at
    initialisation is judged at step 0 only, and its later points are context, not its verdict."""
    words = describe_curve(rows)
    if words and claim.needs == "initialisation":
        return f"judged at initialisation (step 0); the later points show how the difference develops in training: {words}"
    return words


def describe_curve(rows: list[dict]) -> str:
    """The budget curve in one sentence: where the claim holds, and where the effect changes sign."""
    if len(rows) < 2:
        return ""
    unit = "step" if all(row["steps"] is not None for row in rows) else "epoch"
    at = [row["steps"] if unit == "step" else row["epoch"] for row in rows]
    supported = [row["verdict"] == SUPPORTED for row in rows]
    signs = [0 if row["effect"] is None else (1 if row["effect"] > 0 else -1 if row["effect"] < 0 else 0) for row in rows]
    flips = [i for i in range(1, len(rows)) if signs[i] and signs[i - 1] and signs[i] != signs[i - 1]]
    parts = []
    if all(supported):
        parts.append(f"holds at every {unit} measured (from {unit} {at[0]})")
    elif supported[-1]:
        first = len(supported) - 1
        while first > 0 and supported[first - 1]:
            first -= 1
        parts.append("holds only at the end" if first == len(supported) - 1 else f"holds from {unit} {at[first]} on")
    elif any(supported):
        where = [str(a) for a, s in zip(at, supported) if s]
        if len(where) <= 3:
            parts.append(f"holds at {unit}{'s' if len(where) > 1 else ''} {', '.join(where)} only, not at the end")
        else:
            parts.append(f"holds at {len(where)} of {len(at)} {unit}s measured, not at the end")
    else:
        parts.append(f"does not hold at any {unit} measured")
    if flips:
        parts.append(f"the effect changes sign at {unit} {at[flips[-1]]}")
    return "; ".join(parts)


def judge_claims(study: Study, trials: pd.DataFrame, epochs: pd.DataFrame) -> list[Verdict]:
    """Every claim's verdict, with the Holm-adjusted verdict over the study's claims beside it."""
    return with_holm([judge_claim(claim, trials, epochs) for claim in study.claims])


def with_holm(judged: list[Verdict], levels: list[float] | None = None) -> list[Verdict]:
    """The verdicts with Holm's adjustment over the study's claims. `levels`: the level each claim was
    judged at (a group-sequential look's, suite.core.sequential); its p is scaled by 0.05 / level so
    that a p that decided at its look compares with Holm's thresholds as one that decided at 0.05."""
    levels = levels or [verdicts.ALPHA] * len(judged)
    family = [(v, level) for v, level in zip(judged, levels) if v.verdict != NOT_JUDGED]  # not judged: no test
    decisions = [verdicts.Decision(v.verdict, v.effect, v.ci, min(1.0, v.p_value * verdicts.ALPHA / level), v.n, v.method)
                 for v, level in family]
    adjusted = {v.claim.id: holm for (v, _), holm in zip(family, verdicts.holm(decisions))}
    return [dataclasses.replace(v, holm_verdict=adjusted.get(v.claim.id, NOT_JUDGED)) for v in judged]


def fact_values(fact: Fact, trials: pd.DataFrame, epochs: pd.DataFrame) -> list[dict]:
    """Per arm selector of a fact: the measured mean and 95% interval over seeds (no verdict)."""
    as_claim = Claim(id=fact.id, text=fact.text, metric=fact.metric, better={}, worse=None, epoch=fact.epoch)
    rows = []
    for selector in fact.arms:
        mean, low, high, n = mean_ci(claim_values(as_claim, selector, trials, epochs))
        rows.append({"arms": _selector_text(selector), "mean": json_number(mean), "low": json_number(low),
                     "high": json_number(high), "n": n})
    return rows


def reference_reached(study: Study, trials: pd.DataFrame) -> dict | None:
    """How much of the accuracy the reference arm's net is known to reach this budget reached."""
    reference = study.reference
    if reference is None or trials.empty or reference.metric not in trials:
        return None
    chosen = trials[trials["selected"] & select_arms(trials, reference.arm)]
    mean, low, high, n = mean_ci(chosen[reference.metric])
    return {"arm": _selector_text(reference.arm), "metric": reference.metric, "reached": json_number(mean),
            "low": json_number(low), "high": json_number(high), "n": n, "known": reference.accuracy,
            "source": reference.source, "short_by": json_number(reference.accuracy - mean)}



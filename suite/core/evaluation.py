"""evaluation: a study's records judged once, as the `StudyResult` every consumer reads.

The frames, the tuned values each arm chose, every claim's verdict (with Holm's), the facts and
how far the reference arm got are computed here and nowhere else: the report draws them,
summary.json serialises them, the command line prints them, `--check` compares them, and a
confirmation run takes its tuned values from them. Pure: reads records, writes nothing, imports
no Keras.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import pandas as pd

from suite.core import analysis, budget, frames, sequential
from suite.core.study import Study

# The judging rules' version: bumped where a change would judge the same records otherwise, so that
# a kept report drawn under older rules is drawn again (suite.core.report.summary.records_digest).
# 2: with looks, the budget check's verdict at half the budget stops at the look that decides it
# 3: ... or at the look where no compared arm learned at half the budget
JUDGING_RULES = 3


@dataclass(frozen=True)
class BlockVerdicts:
    """Another block of seeds (or the tuning run of a confirmation) and its verdicts, shown beside."""

    label: str
    verdicts: dict  # claim id -> verdict
    tuning: bool = False  # the tuning run of this block (it chose; it is no replication)


@dataclass(frozen=True)
class RunInfo:
    """Which seeds judge and what to show beside them (suite.core.replication)."""

    label: str = ""  # "seeds 0-2", or "seeds 3-5 (values tuned on seeds 0-2)"
    judge_seeds: tuple | None = None  # a confirmation's fresh seeds; None: every trial judges
    others: tuple = ()  # BlockVerdicts of other stored blocks, and of a confirmation's tuning run
    looks: tuple = ()  # sequential.Look per pre-registered look; () judges every judging seed at once
    judge_first: int = 0  # the first judging seed: a look of n seeds judges seeds judge_first .. + n - 1


@dataclass(frozen=True)
class StudyResult:
    study: Study
    records: list  # every record judged, the budget check's runs at half the epochs included
    trials: pd.DataFrame  # one row per trial at the profile's budget, `selected` marking those with their arm's chosen values
    epochs: pd.DataFrame  # one row per trial and epoch
    layers: pd.DataFrame  # one row per trial, epoch and hidden layer (probes)
    tuning: pd.DataFrame  # per arm and tuned value: validation accuracy, and which was chosen
    verdicts: list  # Verdict per claim, in the study file's order
    facts: list  # [{id, text, metric, why, values}]: measured, never judged
    reference: dict | None  # how much of its known accuracy the reference arm reached
    run: RunInfo = field(default_factory=RunInfo)

    @property
    def chosen(self) -> dict:
        """Arm label -> the tuned values chosen on validation accuracy (`arm_choices`)."""
        return arm_choices(self.study, self.trials, self.tuning)

    @property
    def selected_epochs(self) -> pd.DataFrame:
        """The per-epoch rows of the trials that judge."""
        if self.epochs.empty:
            return self.epochs
        return self.epochs[self.epochs["key"].isin(set(self.trials.loc[self.trials["selected"], "key"]))]

    def verdict_words(self) -> dict:
        """Claim id -> verdict: what other blocks are compared on."""
        return {v.claim.id: v.verdict for v in self.verdicts}


def evaluate(study: Study, records: list[dict], run: RunInfo | None = None) -> StudyResult:
    """Judge `records` once: frames, chosen tuned values, verdicts (claims about trained nets
    checked against their runs at half the budget, suite.core.budget), facts and the reference."""
    run = run or RunInfo()
    full, half = budget.split_records(records)
    trials, epochs, tuning = _frames(study, full, run)
    if not full:
        verdicts = []
    elif run.looks:
        verdicts = _judge_in_looks(study, full, half, run, trials, epochs)
    else:
        verdicts = _check_budget(analysis.judge_claims(study, trials, epochs), full, half, trials,
                                 _half_frames(study, half, run))
    return StudyResult(
        study=study, records=records, trials=trials, epochs=epochs, layers=frames.layers_frame(full, study),
        tuning=tuning, verdicts=verdicts,
        facts=[{"id": f.id, "text": f.text, "metric": f.metric, "why": f.why,
                "values": analysis.fact_values(f, trials, epochs)} for f in study.facts] if full else [],
        reference=analysis.reference_reached(study, trials) if full else None, run=run)


def _frames(study: Study, records: list[dict], run: RunInfo) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(trials with the judging ones `selected`, epochs, the tuning table) of one budget's records."""
    judge_seeds = set(run.judge_seeds) if run.judge_seeds else None
    trials = frames.trials_frame(records, study)
    if not trials.empty:
        trials = frames.mark_selected(trials, study, judge_seeds)
    choosing = trials[~trials["seed"].isin(judge_seeds)] if judge_seeds and not trials.empty else trials
    return trials, frames.epochs_frame(records, study), frames.tuning_table(choosing, study)


def _judge_in_looks(study: Study, full: list[dict], half: list[dict], run: RunInfo, trials: pd.DataFrame,
                    epochs: pd.DataFrame) -> list:
    """Each claim judged look by look on the first judging seeds of each look (suite.core.sequential)."""
    halves = _half_frames(study, half, run)

    def first(frame: pd.DataFrame, seeds: int) -> pd.DataFrame:
        return frame.assign(selected=frame["selected"] & (frame["seed"] < run.judge_first + seeds))

    def judge_at(look: sequential.Look) -> list:
        at = first(trials, look.seeds)
        judged = [analysis.judge_claim(claim, at, epochs, look.alpha) for claim in study.claims]
        at_half = (first(halves[0], look.seeds), halves[1]) if halves else None
        return _check_budget(judged, full, half, at, at_half, look.alpha)

    def has_seeds(claim, frame: pd.DataFrame, seeds: int) -> bool:
        """Whether every arm `claim` compares has run the first `seeds` judging seeds in `frame`."""
        wanted = set(range(run.judge_first, run.judge_first + seeds))
        compared = analysis.compared_trials(claim, frame)
        return not compared.empty and all(wanted <= set(group["seed"]) for _, group in compared.groupby("arm"))

    def complete(claim, seeds: int) -> bool:
        return has_seeds(claim, trials, seeds)

    def complete_half(claim, seeds: int) -> bool:
        return halves is not None and has_seeds(claim, halves[0], seeds)

    return sequential.judge_in_looks(list(study.claims), run.looks, judge_at, complete, complete_half)


def _budget_side(verdict: analysis.Verdict, trials: pd.DataFrame, epochs: int | None) -> dict:
    """One budget's verdict on a claim, as the budget check shows it."""
    return {"verdict": verdict.verdict, "effect": analysis.json_number(verdict.effect),
            "ci": [analysis.json_number(verdict.ci[0]), analysis.json_number(verdict.ci[1])], "n": verdict.n,
            "epochs": epochs, "sgd_steps": analysis.sgd_steps_range(verdict.claim, trials)}


def _epochs(records: list[dict]) -> int | None:
    """The epochs the records trained (the profile's, or half of it for the budget check's runs)."""
    counts = pd.Series([r.get("config", {}).get("epochs") for r in records]).dropna()
    return int(counts.mode().iloc[0]) if len(counts) else None


def _half_frames(study: Study, half: list[dict], run: RunInfo) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    """(trials, epochs) of the budget check's runs at B/2, or None where there are none."""
    if not half:
        return None
    trials, epochs, _ = _frames(study, half, run)
    if run.judge_seeds and not trials.empty:
        # a confirmation trains its runs at B/2 with the values chosen at B (the plan's `chosen`, for every
        # arm: a claim about the selection keeps its grid only at B and is never budget-checked), so
        # those runs judge as they are: choosing again on the tuning seeds' B/2 runs could pick values
        # the confirmation never trained
        trials = trials.assign(selected=trials["seed"].isin(set(run.judge_seeds)))
    return trials, epochs


def _check_budget(verdicts: list, full: list[dict], half: list[dict], trials: pd.DataFrame,
                  halves: tuple | None, alpha: float = analysis.verdicts.ALPHA) -> list:
    """Each claim about trained nets with its budget check; its verdict and Holm's become the check's
    outcome. `halves`: (trials, epochs) at B/2 (`_half_frames`); `alpha`: the level both are judged at."""
    half_trials, half_verdicts = pd.DataFrame(), {}
    if halves is not None:
        half_trials, half_epochs = halves
        half_verdicts = {v.claim.id: analysis.judge_claim(v.claim, half_trials, half_epochs, alpha)
                         for v in verdicts if v.claim.needs == "trained"}
    checked = []
    for verdict in verdicts:
        if verdict.claim.needs != "trained":
            checked.append(verdict)
            continue
        other = half_verdicts.get(verdict.claim.id)
        result = budget.check(_budget_side(verdict, trials, _epochs(full)),
                              _budget_side(other, half_trials, _epochs(half)) if other else None)
        _, holm = budget.combine(verdict.holm_verdict, other.verdict if other else None)
        checked.append(dataclasses.replace(verdict, verdict=result.outcome, holm_verdict=holm,
                                           budget_check=result.as_dict()))
    return checked


def arm_choices(study: Study, trials: pd.DataFrame, tuning: pd.DataFrame) -> dict:
    """Arm label -> the tuned values it chose; with nothing tuned, every arm with none, so that a
    confirmation run plans every arm again as it is."""
    if not study.tuned:
        return {label: {} for label in dict.fromkeys(trials["arm"])} if not trials.empty else {}
    return frames.chosen_values(tuning, study)

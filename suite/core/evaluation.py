"""evaluation: a study's records judged once, as the `StudyResult` every consumer reads.

The frames, the tuned values each arm chose, every claim's verdict (with Holm's), the facts and
how far the reference arm got are computed here and nowhere else: the report draws them,
summary.json serialises them, the command line prints them, `--check` compares them, and a
confirmation run takes its tuned values from them. Pure: reads records, writes nothing, imports
no Keras.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from suite.core import analysis, frames
from suite.core.study import Study


@dataclass(frozen=True)
class BlockVerdicts:
    """Another block of seeds (or the tuning run of a confirmation) and its verdicts, shown beside."""

    label: str
    verdicts: dict  # claim id -> verdict


@dataclass(frozen=True)
class RunInfo:
    """Which seeds judge and what to show beside them (suite.core.replication)."""

    label: str = ""  # "seeds 0-2", or "seeds 3-5 (values tuned on seeds 0-2)"
    judge_seeds: tuple | None = None  # a confirmation's fresh seeds; None: every trial judges
    others: tuple = ()  # BlockVerdicts of other stored blocks, and of a confirmation's tuning run


@dataclass(frozen=True)
class StudyResult:
    study: Study
    records: list
    trials: pd.DataFrame  # one row per trial, `selected` marking those with their arm's chosen values
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
    """Judge `records` once: frames, chosen tuned values, verdicts, facts and the reference."""
    run = run or RunInfo()
    judge_seeds = set(run.judge_seeds) if run.judge_seeds else None
    trials = frames.trials_frame(records, study)
    if not trials.empty:
        trials = frames.mark_selected(trials, study, judge_seeds)
    epochs = frames.epochs_frame(records, study)
    choosing = trials[~trials["seed"].isin(judge_seeds)] if judge_seeds and not trials.empty else trials
    verdicts = analysis.judge_claims(study, trials, epochs) if records else []
    return StudyResult(
        study=study, records=records, trials=trials, epochs=epochs, layers=frames.layers_frame(records, study),
        tuning=frames.tuning_table(choosing, study), verdicts=verdicts,
        facts=[{"id": f.id, "text": f.text, "metric": f.metric, "why": f.why,
                "values": analysis.fact_values(f, trials, epochs)} for f in study.facts] if records else [],
        reference=analysis.reference_reached(study, trials) if records else None, run=run)


def arm_choices(study: Study, trials: pd.DataFrame, tuning: pd.DataFrame) -> dict:
    """Arm label -> the tuned values it chose; with nothing tuned, every arm with none, so that a
    confirmation run plans every arm again as it is."""
    if not study.tuned:
        return {label: {} for label in dict.fromkeys(trials["arm"])} if not trials.empty else {}
    return frames.chosen_values(tuning, study)

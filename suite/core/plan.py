"""plan: expands a study and a profile into frozen `Trial`s (arms x tuning values x seeds).

A trial's key is a hash of its canonical config (sorted JSON): study name and version,
record schema, dataset fingerprint, model and training settings, budget and seed.
Machine paths and the profile's *name* never enter it, so equal work shares one key.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

from suite.core import registry
from suite.core.keys import RECORD_SCHEMA, trial_key
from suite.core.settings import STANDARD_PROCEDURE, evaluation_only_settings
from suite.core.study import Profile, Study, arm_label


@dataclass(frozen=True)
class Trial:
    key: str
    study: str
    arm: dict  # factor -> level
    tuning: dict  # tuned training key -> the value this trial tries
    seed: int
    config: dict  # everything the trial's procedure needs, all plain JSON values
    probes: tuple
    half_budget: bool = False  # a run at half the profile's epochs, for the budget check (suite.core.budget)
    # settings read only at evaluation (settings.evaluation_only_settings) -> this arm's level: they are
    # left out of `config` and the key, so arms that differ only in them share one training run
    evaluated_at: dict = field(default_factory=dict)

    @property
    def arm_label(self) -> str:
        return arm_label(self.arm)

    def view(self, record: dict) -> dict:
        """The stored record of this trial's training run as this trial sees it: its own arm, and the
        validation scores of its level of each setting read at evaluation (the history's validation
        columns are that level's own per epoch, or absent where none were kept); its key marks the
        level, so that the frames hold one row per arm."""
        if not self.evaluated_at:
            return record
        final, history = dict(record.get("final", {})), record.get("history", [])
        for setting, level in self.evaluated_at.items():
            scored = record.get("evaluations", {}).get(setting)
            if scored is not None:
                final.update(scored["levels"].get(level, {}))
            else:  # the run ended before it was scored: no dev score to show
                final = {k: v for k, v in final.items() if k not in VALIDATION_METRICS}
            if scored is None or scored["history"] != level:  # this level's own scores per epoch, where kept
                own = {row["epoch"]: row for row in (scored or {}).get("epochs", {}).get(level, [])}
                history = [{**{k: v for k, v in row.items() if k not in VALIDATION_METRICS},
                            **{k: v for k, v in own.get(row["epoch"], {}).items() if k != "epoch"}} for row in history]
        levels = ",".join(f"{k}={v}" for k, v in sorted(self.evaluated_at.items()))
        return {**record, "key": f"{record['key']}@{levels}", "arm": self.arm, "final": final, "history": history}


VALIDATION_METRICS = ("val_loss", "val_accuracy", "dev_test_gap")  # what a setting read at evaluation changes


def records_for(trials: list[Trial], stored: dict) -> list[dict]:
    """The records of those `trials` that `stored` (key -> record) holds, each as its trial sees it."""
    return [t.view(stored[t.key]) for t in trials if t.key in stored]


def probe_identity(name: str, kind: str = "probe") -> str:
    """A probe (or procedure) as it enters a trial key: its name, and its `version` once it
    measures or trains differently (registered with version=N), so records of an older one are
    never reused as this one's."""
    version = registry.metadata(kind, name).get("version", 1)
    return name if version == 1 else f"{name}@{version}"


def plan_trials(study: Study, profile: Profile, dataset_fingerprint: str, seeds: int | None = None,
                backend: str = "tensorflow", first_seed: int = 0, chosen: dict | None = None,
                arm_seeds: dict | None = None, budget_check: bool = True,
                half_seeds: dict | None = None) -> list[Trial]:
    """Every trial of `study` under `profile`: seeds `first_seed`, `first_seed` + 1, ...;
    `seeds` overrides the profile's count (a claim may raise it for the arms it compares:
    `Study.seeds_for`); `arm_seeds` (arm label -> seeds) plans only those arms, with those seeds (a
    look at more seeds, suite.core.sequential). `chosen` (arm label -> tuned values) plans only those
    values per arm: a confirmation run of the values a tuning run chose (the arms of a claim about
    the selection itself keep every value at the budget: `Study.selects_per_seed`).
    The Keras backend is part of the key: numbers from another backend are other trials.
    A study with claims about trained nets also plans their arms at half the epochs (`half_budget`),
    the same grid and seeds, each with its schedule over its own steps: the budget check (not for
    `budget_check=False`: a tuning block, whose runs only choose values). `half_seeds` (arm label ->
    seeds) plans other seeds at half the epochs, where the budget check's looks stop on their own
    (suite.core.sequential); None: the same as at the budget."""
    args = (dataset_fingerprint, seeds, backend, first_seed, chosen)
    trials = _plan(study, profile, profile.epochs, *args, arm_seeds)
    half = half_epochs(profile.epochs)
    if half is not None and budget_check:  # only the arms of claims about trained nets (Study.checks_budget)
        trials += _plan(study, profile, half, *args, arm_seeds if half_seeds is None else half_seeds,
                        half_budget=True)
    return trials


def half_epochs(epochs: int) -> int | None:
    """The epochs of the budget check's runs: half of `epochs`, rounded up; None where that is no
    shorter (one epoch)."""
    half = math.ceil(epochs / 2)
    return half if half < epochs else None


def _plan(study: Study, profile: Profile, epochs: int, dataset_fingerprint: str, seeds: int | None, backend: str,
          first_seed: int, chosen: dict | None, arm_seeds: dict | None, half_budget: bool = False) -> list[Trial]:
    """The trials at `epochs`; with `half_budget`, only of the arms that claims about trained nets compare."""
    fixed = {key: value for key, value in study.training.items() if not isinstance(value, list)}
    tuned = study.tuned
    budget = {"train_examples": profile.train_examples, "epochs": epochs}
    evaluation_only = evaluation_only_settings()
    trials = []
    for arm in study.list_arms(profile):
        label = arm_label(arm, study.factors)
        if half_budget and not study.checks_budget(arm) or arm_seeds is not None and label not in arm_seeds:
            continue
        grid = [dict(zip(tuned, values)) for values in itertools.product(*tuned.values())]
        # a claim about the selection itself keeps the whole grid on the judging seeds (never budget-checked:
        # the arm's runs at B/2 serve its other claims, with the frozen values)
        if chosen is not None and (half_budget or not study.selects_per_seed(arm)):
            grid = [chosen[label]] if label in chosen else []
        count = arm_seeds[label] if arm_seeds is not None else study.seeds_for(arm, seeds or profile.seeds)
        for tuning in grid:
            for seed in range(first_seed, first_seed + count):
                # an arm may set the training-set size itself (e.g. augmentation at two sizes)
                config = {**study.model, **fixed, **budget, **arm, **tuning, "dataset": study.dataset_for(profile)}
                evaluated_at = {key: config.pop(key) for key in sorted(set(config) & evaluation_only)}
                identity = {
                    "schema": RECORD_SCHEMA, "study": study.name, "study_version": study.version,
                    "data": dataset_fingerprint, "config": config, "seed": seed,
                    "probes": [probe_identity(name) for name in study.probes],
                    "backend": backend,
                }
                procedure = probe_identity(config.get("procedure", STANDARD_PROCEDURE), "procedure")
                if "@" in procedure:  # keys of procedures never revised stay as they were
                    identity["procedure"] = procedure
                if half_budget:  # its own key even where another profile's full budget has these epochs
                    identity["budget"] = "half"
                trials.append(Trial(key=trial_key(identity), study=study.name, arm=arm, tuning=tuning,
                                    seed=seed, config=config, probes=study.probes, half_budget=half_budget,
                                    evaluated_at=evaluated_at))
    return trials

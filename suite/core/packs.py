"""packs: which planned trials train together as the members of one compiled program.

A procedure that has a packed form registers it as kind "pack_trainer" (for `standard`:
suite.techniques.standard.packed), with a `signature(config)` that is equal for trials that
may share a program and None for a trial that must train alone. Packs are formed from the
whole plan, in plan order, at most `pack_size` members each: which trials share a pack
depends on the study, the profile and the seeds, never on which trials are still pending, the
executor or the worker count, so a resumed run trains a pack exactly as the first run did.
"""

from __future__ import annotations

from dataclasses import dataclass

from suite.core import registry
from suite.core.keys import trial_key
from suite.core.plan import Trial
from suite.core.settings import STANDARD_PROCEDURE
from suite.core.study import PROGRAM_METRICS, Study, arm_label, matches

# Measured (bench/packing.py): on 2 cores a member's step costs about the same from 6 members
# on, and more members per pack leave the workers fewer packs to share out.
PACK_SIZE = 9


@dataclass(frozen=True)
class Pack:
    key: str  # a hash of the members' keys
    trials: tuple[Trial, ...]

    @property
    def procedure(self) -> str:
        return self.trials[0].config.get("procedure", STANDARD_PROCEDURE)

    @property
    def size(self) -> int:
        return len(self.trials)


def program_signature(trial: Trial) -> str | None:
    """The signature under which `trial` may share a program, or None (it trains alone)."""
    procedure = trial.config.get("procedure", STANDARD_PROCEDURE)
    if registry.lookup("pack_trainer", procedure) is None:
        return None
    signature = registry.metadata("pack_trainer", procedure)["signature"](trial.config)
    return None if signature is None else f"{procedure}|{signature}|{sorted(trial.probes)}"


def timed_selectors(study: Study, half_budget: bool = False) -> list:
    """The arm selectors of `study`'s claims on a program metric (their trials train alone). At
    half the budget only those of claims about trained nets: the budget check reads runs at B/2
    for those claims alone, so no one reads the step time of the others' runs there."""
    return [selector for claim in study.claims if claim.metric in PROGRAM_METRICS
            and (not half_budget or claim.needs == "trained")
            for selector in (claim.better, claim.worse) if selector is not None]


def is_timed(trial: Trial, study: Study | None, timed_until: dict | None = None) -> bool:
    """Whether a timing claim of `study` reads `trial`'s step time. `timed_until` (arm label ->
    the first seed no timing claim reads), where the looks know it: a timing claim that stopped
    at 3 seeds reads none of the seeds its arms run later for other claims."""
    if study is None or not any(matches(trial.arm, selector) for selector in timed_selectors(study, trial.half_budget)):
        return False
    return timed_until is None or trial.seed < timed_until.get(arm_label(trial.arm, study.factors), 0)


def form_packs(trials: list[Trial], pack_size: int = PACK_SIZE, study: Study | None = None,
               timed_until: dict | None = None) -> list[Trial | Pack]:
    """The units of work for `trials` (a whole plan of `study`): packs of trials with equal
    signatures, then the trials that train alone (those that cannot share a program, and those
    a timing claim of `study` compares). A group that leaves a single trial runs it alone."""
    groups: dict[str, list[Trial]] = {}
    alone: list[Trial] = []
    for trial in trials:
        packable = pack_size > 1 and not is_timed(trial, study, timed_until)
        signature = program_signature(trial) if packable else None
        (alone if signature is None else groups.setdefault(signature, [])).append(trial)
    units: list[Trial | Pack] = []
    for members in groups.values():
        for start in range(0, len(members), pack_size):
            chunk = tuple(members[start:start + pack_size])
            units.append(chunk[0] if len(chunk) == 1 else Pack(trial_key({"pack": [t.key for t in chunk]}), chunk))
    return units + alone


def timed_keys(units: list[Trial | Pack], study: Study, timed_until: dict | None = None) -> frozenset[str]:
    """Keys of the units a timing claim of `study` reads: they must run with nothing beside
    them on the machine, or a neighbour's threads would enter their step time (measured on
    2 cores with 2 workers: trials of one arm timed 1.3-1.5 ms per step or 2.8-3.2 ms,
    depending on what ran beside them)."""
    return frozenset(unit.key for unit in units if isinstance(unit, Trial) and is_timed(unit, study, timed_until))


def trials_of(unit: Trial | Pack) -> tuple[Trial, ...]:
    return unit.trials if isinstance(unit, Pack) else (unit,)

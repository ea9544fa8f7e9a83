"""replication: do a study's verdicts hold on fresh seeds? Seed blocks and confirmation runs.

A run judges its claims on one block of seeds (`--first-seed N`: seeds N, N+1, ...). Every
block run is noted in the store (`blocks.jsonl`), so a report judges each other stored block
of the same profile too, and says how many verdicts decided in both blocks agree.

`--confirm` trains each arm's chosen tuned values again on the next, disjoint block of seeds
and judges the claims on those trials only: the tuning trials choose, fresh trials judge
(DeepOBS reruns the chosen setting on new seeds; choosing and judging on the same seeds
favours arms whose grid points perform alike, the winner's curse). The tuning run's own
verdicts are shown beside the confirmation's.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from suite.core import frames
from suite.core.budget import split_records
from suite.core.evaluation import BlockVerdicts, RunInfo, StudyResult, arm_choices, evaluate
from suite.core.plan import Trial, plan_trials
from suite.core.store import TrialStore
from suite.core.study import Profile, Study
from suite.core.verdicts import DECIDED

BLOCKS_FILE = "blocks.jsonl"  # one run per line; not *.json, which are trial records


@dataclass(frozen=True)
class SeedBlock:
    """Seeds `first`, `first` + 1, ... of one run; `seeds` overrides the profile's count."""

    profile: str
    backend: str
    first: int = 0
    seeds: int | None = None
    confirm: bool = False

    def trials(self, study: Study, profile: Profile, fingerprint: str) -> list[Trial]:
        """The tuning run's trials (every arm x tuned value x seed of the block)."""
        return plan_trials(study, profile, fingerprint, self.seeds, backend=self.backend, first_seed=self.first)

    def confirmation_trials(self, study: Study, profile: Profile, fingerprint: str, chosen: dict) -> list[Trial]:
        """Each arm's `chosen` values on the seeds right after every seed the tuning run used."""
        return plan_trials(study, profile, fingerprint, self.seeds, backend=self.backend,
                           first_seed=self.first + self.span(study, profile), chosen=chosen)

    def span(self, study: Study, profile: Profile) -> int:
        # a claim may give its arms more seeds than the profile: the next block starts after all of them
        return max(study.seeds_for(arm, self.seeds or profile.seeds) for arm in study.list_arms(profile))

    def label(self, study: Study, profile: Profile) -> str:
        """"seeds 0-2", or for a confirmed block "seeds 3-5 (values tuned on seeds 0-2)"."""
        span = self.span(study, profile)
        tuning = f"seeds {self.first}-{self.first + span - 1}"
        if not self.confirm:
            return tuning
        return f"seeds {self.first + span}-{self.first + 2 * span - 1} (values tuned on {tuning})"


def chosen_tuning(study: Study, records: list[dict]) -> dict:
    """Arm label -> the tuned values these records chose, without judging the claims: a
    confirmation needs only the choice (StudyResult.chosen when the claims are judged too)."""
    trials = frames.trials_frame(split_records(records)[0], study)  # the runs at the budget choose
    return arm_choices(study, trials, frames.tuning_table(trials, study))


def judged_verdicts(study: Study, records: list[dict], judge_seeds=None) -> dict:
    """Claim id -> verdict for these records (the claims judged on `judge_seeds` only, if given)."""
    if not records:
        return {}
    judge = tuple(judge_seeds) if judge_seeds else None
    return evaluate(study, records, RunInfo(judge_seeds=judge)).verdict_words()


def run_block(study: Study, profile: Profile, fingerprint: str, block: SeedBlock, train: Callable,
              store: TrialStore, note: bool = True) -> StudyResult:
    """Train (or load) one block of seeds and judge it once. `train(first_seed, chosen)` returns the
    records of the block's trials from `first_seed` (only each arm's `chosen` tuned values, if
    given); `store` holds the other blocks; `note` lists this block among the store's runs (not
    for a report of stored trials). With `block.confirm`, each arm's chosen values
    train again on the next block of seeds, which alone judge; the tuning run's verdicts and every
    other complete block's are carried for the report, beside this run's."""
    records = train(block.first)
    others = []
    judge_seeds = None
    if block.confirm:  # the tuning trials choose, fresh trials judge
        tuning = evaluate(study, records)
        confirming = train(block.first + block.span(study, profile), tuning.chosen)
        tuning_label = dataclasses.replace(block, confirm=False).label(study, profile)
        others.append(BlockVerdicts(f"tuning run, {tuning_label}", tuning.verdict_words()))
        judge_seeds = tuple(sorted({r["seed"] for r in confirming}))
        records = records + confirming
    if note:
        note_block(store.dir, block)
    others += other_blocks(block, study, profile, fingerprint, store.dir, store.load_records().records)
    return evaluate(study, records, RunInfo(label=block.label(study, profile), judge_seeds=judge_seeds,
                                            others=tuple(others)))


def agreement(this: dict, other: dict) -> dict:
    """Of the claims decided in both: how many have the same verdict, and which flip."""
    both = [cid for cid in this if this[cid] in DECIDED and other.get(cid) in DECIDED]
    flips = [cid for cid in both if this[cid] != other[cid]]
    return {"decided_both": len(both), "agree": len(both) - len(flips), "flips": flips}


def block_records(block: SeedBlock, study: Study, profile: Profile, fingerprint: str, stored: dict) -> dict | None:
    """A stored block's records and the seeds that judge it, or None while any of its trials is
    missing (an unfinished block is not compared)."""
    trials = block.trials(study, profile, fingerprint)
    if not all(t.key in stored for t in trials):
        return None
    records = [stored[t.key] for t in trials]
    if not block.confirm:
        return {"records": records, "judge_seeds": None}
    confirming = block.confirmation_trials(study, profile, fingerprint, chosen_tuning(study, records))
    if not all(t.key in stored for t in confirming):
        return None
    return {"records": records + [stored[t.key] for t in confirming],
            "judge_seeds": sorted({t.seed for t in confirming})}


def other_blocks(this: SeedBlock, study: Study, profile: Profile, fingerprint: str, store_dir: str | Path,
                 stored: dict) -> list[BlockVerdicts]:
    """The verdicts of every other complete block of this profile and backend in the store."""
    others = []
    for block in stored_blocks(store_dir, this.profile, this.backend):
        if block == this or (this.confirm and (block.first, block.seeds) == (this.first, this.seeds)):
            continue  # this run, or its own tuning run (shown as such)
        found = block_records(block, study, profile, fingerprint, stored)
        if found is not None:
            others.append(BlockVerdicts(block.label(study, profile),
                                        judged_verdicts(study, found["records"], found["judge_seeds"])))
    return others


# ---- the store's list of runs -----------------------------------------------------------

def note_block(store_dir: str | Path, block: SeedBlock) -> None:
    """Add `block` to the study's list of runs (atomically; a block already listed is kept once)."""
    path = Path(store_dir) / BLOCKS_FILE
    blocks = [b for b in stored_blocks(store_dir) if b != block] + [block]
    tmp = path.with_suffix(".part")
    tmp.write_text("".join(json.dumps(asdict(b), sort_keys=True) + "\n" for b in blocks), encoding="utf-8")
    os.replace(tmp, path)


def stored_blocks(store_dir: str | Path, profile: str | None = None, backend: str | None = None) -> list[SeedBlock]:
    """The blocks run so far (of one profile and backend, if given); an unreadable list is empty."""
    try:
        lines = (Path(store_dir) / BLOCKS_FILE).read_text(encoding="utf-8").splitlines()
        blocks = [SeedBlock(**json.loads(line)) for line in lines if line.strip()]
    except (OSError, ValueError, TypeError):
        return []
    return [b for b in blocks if (profile is None or b.profile == profile) and (backend is None or b.backend == backend)]

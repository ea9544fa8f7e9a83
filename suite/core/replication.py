"""replication: do a study's verdicts hold on fresh seeds? Seed blocks and confirmation runs.

A run judges its claims on one block of seeds (`--first-seed N`: seeds N, N+1, ...). Every
block run is noted in the store (`blocks.jsonl`), so a report judges each other stored block
of the same profile too, and says how many verdicts decided in both blocks agree.

`--confirm` trains each arm's chosen tuned values again on the next, disjoint block of seeds
and judges the claims on those trials only: the tuning trials choose, fresh trials judge
(DeepOBS reruns the chosen setting on new seeds; choosing and judging on the same seeds
favours arms whose grid points perform alike, the winner's curse). The arms of a claim about
the selection itself (D2-dev) run every tuned value on the judging seeds instead. The tuning run's
own verdicts are shown beside the confirmation's.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from suite.core import frames, sequential
from suite.core.budget import split_records
from suite.core.evaluation import BlockVerdicts, RunInfo, StudyResult, arm_choices, evaluate
from suite.core.plan import Trial, plan_trials, records_for
from suite.core.store import TrialStore
from suite.core.study import PROGRAM_METRICS, Claim, Profile, Study, arm_label
from suite.core.verdicts import DECIDED

BLOCKS_FILE = "blocks.jsonl"  # one run per line; not *.json, which are trial records


@dataclass(frozen=True)
class SeedBlock:
    """Seeds `first`, `first` + 1, ... of one run; `seeds` overrides the profile's count. With
    `confirm`, a tuning run (of `tune_seeds` seeds, if given) chooses each arm's values and fresh
    seeds after it judge them; with `looks`, the judging seeds come in looks (suite.core.sequential)."""

    profile: str
    backend: str
    first: int = 0
    seeds: int | None = None
    confirm: bool = False
    tune_seeds: int | None = None
    looks: tuple = ()
    spending: str = "pocock"

    def __post_init__(self):
        object.__setattr__(self, "looks", tuple(self.looks))  # read back from JSON as a list

    def trials(self, study: Study, profile: Profile, fingerprint: str) -> list[Trial]:
        """The tuning run's trials (every arm x tuned value x seed of the block); with `tune_seeds`,
        on that many seeds and without runs at half the budget (they would only choose)."""
        return plan_trials(study, profile, fingerprint, self.seeds, backend=self.backend, first_seed=self.first,
                           arm_seeds=self.tuning_seeds(study, profile), budget_check=self.tune_seeds is None)

    def tuning_seeds(self, study: Study, profile: Profile) -> dict | None:
        """Arm label -> seeds of the tuning run where `tune_seeds` sets them; None: the profile's."""
        if self.tune_seeds is None:
            return None
        return {arm_label(arm, study.factors): study.seeds_for(arm, self.tune_seeds) for arm in study.list_arms(profile)}

    def judge_first(self, study: Study, profile: Profile) -> int:
        """The first judging seed: right after the tuning run's seeds, or the block's first."""
        return self.first + (self.span(study, profile) if self.confirm else 0)

    def confirmation_trials(self, study: Study, profile: Profile, fingerprint: str, chosen: dict | None,
                            arm_seeds: dict | None = None) -> list[Trial]:
        """Each arm's `chosen` values on the judging seeds (`arm_seeds` per arm, if given); every value
        for the arms of a claim about the selection (`Study.selects_per_seed`)."""
        return plan_trials(study, profile, fingerprint, self.seeds, backend=self.backend,
                           first_seed=self.judge_first(study, profile), chosen=chosen, arm_seeds=arm_seeds)

    def first_look_seeds(self, study: Study, profile: Profile) -> dict:
        """Arm label -> the first look's judging seeds, for every arm."""
        return {arm_label(arm, study.factors): self.looks[0] for arm in study.list_arms(profile)}

    def span(self, study: Study, profile: Profile) -> int:
        """Seeds the block's tuning run uses (or, unconfirmed, its only run): a claim may give its arms
        more seeds than the profile, and the seeds after all of them are fresh."""
        count = self.tune_seeds or self.seeds or profile.seeds
        return max(study.seeds_for(arm, count) for arm in study.list_arms(profile))

    def label(self, study: Study, profile: Profile) -> str:
        """"seeds 0-2", or for a confirmed block "seeds 3-5 (values tuned on seeds 0-2)"; with looks,
        the judging seeds up to the last look's, and the looks."""
        first = self.judge_first(study, profile)
        last = first + (self.looks[-1] if self.looks else self.span(study, profile)) - 1
        looks = f", in looks of {'/'.join(map(str, self.looks))} seeds" if self.looks else ""
        if not self.confirm:
            return f"seeds {first}-{last}{looks}"
        tuned = f"seed {self.first}" if first - 1 == self.first else f"seeds {self.first}-{first - 1}"
        return f"seeds {first}-{last}{looks} (values tuned on {tuned})"

    def run_info(self, study: Study, profile: Profile, judging: list[dict], label: str = "",
                 others: tuple = ()) -> RunInfo:
        """How to judge this block's records: which seeds judge, and the looks."""
        judge_seeds = tuple(sorted({r["seed"] for r in judging})) if self.confirm else None
        looks = sequential.looks_for(self.looks, self.spending) if self.looks else ()
        return RunInfo(label=label, judge_seeds=judge_seeds, others=others, looks=looks,
                       judge_first=self.judge_first(study, profile))


def chosen_tuning(study: Study, records: list[dict]) -> dict:
    """Arm label -> the tuned values these records chose, without judging the claims: a
    confirmation needs only the choice (StudyResult.chosen when the claims are judged too)."""
    trials = frames.trials_frame(split_records(records)[0], study)  # the runs at the budget choose
    return arm_choices(study, trials, frames.tuning_table(trials, study))


def judged_verdicts(study: Study, profile: Profile, block: SeedBlock, found: dict) -> dict:
    """Claim id -> verdict of a stored block's records (`block_records`)."""
    if not found["records"]:
        return {}
    run = block.run_info(study, profile, found["judging"])
    return evaluate(study, found["records"], run).verdict_words()


def run_block(study: Study, profile: Profile, fingerprint: str, block: SeedBlock, train: Callable,
              store: TrialStore, note: bool = True) -> StudyResult:
    """Train (or load) one block of seeds and judge it once. `train(first_seed, chosen, arm_seeds,
    budget_check)` returns the records of the block's trials from `first_seed` (only each arm's
    `chosen` tuned values, and only `arm_seeds`' arms with their seeds, if given; keywords:
    `timed_until`, suite.core.packs.is_timed, and `half_seeds`, the arms' seeds at half the
    budget where they differ); `store` holds the
    other blocks; `note` lists this block among the store's runs (not for a report of stored
    trials). With `block.confirm`, each arm's chosen values train again on the seeds after the
    tuning run's, which alone judge; with `block.looks`, the arms of claims still undecided get the
    next look's seeds until every claim stops. The tuning run's verdicts and every other complete
    block's are carried for the report, beside this run's."""
    others, tuning_records, chosen = [], [], None
    if block.confirm:  # the tuning trials choose, fresh trials judge
        tuning_records = train(block.first, None, block.tuning_seeds(study, profile), block.tune_seeds is None)
        tuning = evaluate(study, tuning_records)
        chosen = tuning.chosen
        others.append(BlockVerdicts(f"tuning run, seeds {block.first}-{block.judge_first(study, profile) - 1}",
                                    tuning.verdict_words(), tuning=True))
    first = block.judge_first(study, profile)
    if block.looks:
        judging = _train_in_looks(study, profile, block, train, tuning_records, chosen)
    elif block.confirm:
        judging = train(first, chosen)
    else:  # the same trials choose and judge
        judging = train(first)
    if note:
        note_block(store.dir, block)
    others += other_blocks(block, study, profile, fingerprint, store.dir, store.load_records().records)
    return evaluate(study, tuning_records + judging,
                    block.run_info(study, profile, judging, block.label(study, profile), tuple(others)))


def _train_in_looks(study: Study, profile: Profile, block: SeedBlock, train: Callable, tuning_records: list[dict],
                    chosen: dict | None) -> list[dict]:
    """Every arm runs the first look's seeds; while claims wait for a later look, the arms they
    compare get its seeds, at half the budget too while the budget check's verdict there is
    undecided (an arm's seeds at B/2 follow its claims about trained nets, not its other claims).
    The judging records."""
    first = block.judge_first(study, profile)
    arm_seeds, timed_until = block.first_look_seeds(study, profile), None
    half_seeds = dict(arm_seeds)
    while True:
        judging = train(first, chosen, arm_seeds, timed_until=timed_until, half_seeds=half_seeds)
        result = evaluate(study, tuning_records + judging, block.run_info(study, profile, judging))
        timed_until = _timed_until(study, profile, result.verdicts, first)
        wanted = _with_waiting(study, profile, arm_seeds, sequential.waiting_seeds(result.verdicts))
        wanted_half = _with_waiting(study, profile, half_seeds, sequential.waiting_half_seeds(result.verdicts))
        if (wanted, wanted_half) == (arm_seeds, half_seeds):  # no claim waits for seeds not yet asked for
            return judging  # (or they could not be had)
        arm_seeds, half_seeds = wanted, wanted_half


def _with_waiting(study: Study, profile: Profile, arm_seeds: dict, waiting: dict) -> dict:
    """`arm_seeds` with each waiting claim's arms raised to the seeds it waits for (claim id -> seeds)."""
    wanted = dict(arm_seeds)
    for claim_id, seeds in waiting.items():
        claim = next(c for c in study.claims if c.id == claim_id)
        for label in _compared_labels(study, profile, claim):
            wanted[label] = max(wanted[label], seeds)
    return wanted


def _timed_until(study: Study, profile: Profile, verdicts: list, first: int) -> dict:
    """Arm label -> the first judging seed whose step time no timing claim reads: a timing claim
    that stopped reads the seeds up to its look; one still waiting may read up to the last look's.
    Only those trials need to run with nothing beside them; an arm's later seeds, run for its other
    claims after its timing claims stopped, share the machine."""
    until = {}
    for verdict in verdicts:
        if verdict.claim.metric not in PROGRAM_METRICS or not verdict.sequential:
            continue
        stop = verdict.sequential
        seeds = stop["looks"][-1] if stop["stop"] == sequential.WAITING else stop["seeds"]
        for label in _compared_labels(study, profile, verdict.claim):
            until[label] = max(until.get(label, first), first + seeds)
    return until


def _compared_labels(study: Study, profile: Profile, claim: Claim) -> list[str]:
    """The labels of the arms `claim` compares."""
    return [arm_label(arm, study.factors) for arm in study.list_arms(profile) if claim.compares(arm)]


def agreement(this: dict, other: dict) -> dict:
    """Of the claims decided in both: how many have the same verdict, and which flip."""
    both = [cid for cid in this if this[cid] in DECIDED and other.get(cid) in DECIDED]
    flips = [cid for cid in both if this[cid] != other[cid]]
    return {"decided_both": len(both), "agree": len(both) - len(flips), "flips": flips}


def block_records(block: SeedBlock, study: Study, profile: Profile, fingerprint: str, stored: dict) -> dict | None:
    """A stored block's records (`records`, the judging ones also as `judging`), or None while any
    trial of its tuning run or of its first judging block is missing (an unfinished block is not
    compared). A block with looks brings every later look's trials that are stored."""
    trials = block.trials(study, profile, fingerprint)
    if not all(t.key in stored for t in trials):
        return None
    records = records_for(trials, stored)
    if not block.confirm and not block.looks:
        return {"records": records, "judging": records}
    tuning = records if block.confirm else []
    chosen = chosen_tuning(study, tuning) if block.confirm else None
    first = block.first_look_seeds(study, profile) if block.looks else None
    needed = block.confirmation_trials(study, profile, fingerprint, chosen, first)
    if not all(t.key in stored for t in needed):
        return None
    if block.looks:
        most = {label: block.looks[-1] for label in first}
        needed = block.confirmation_trials(study, profile, fingerprint, chosen, most)
    judging = records_for(needed, stored)
    return {"records": tuning + judging, "judging": judging}


def other_blocks(this: SeedBlock, study: Study, profile: Profile, fingerprint: str, store_dir: str | Path,
                 stored: dict) -> list[BlockVerdicts]:
    """The verdicts of every other complete block of this profile and backend in the store."""
    others = []
    for block in stored_blocks(store_dir, this.profile, this.backend):
        if block == this or (this.confirm and (block.first, block.seeds) == (this.first, this.seeds)):
            continue  # this run, or its own tuning run (shown as such)
        found = block_records(block, study, profile, fingerprint, stored)
        if found is not None:
            others.append(BlockVerdicts(block.label(study, profile), judged_verdicts(study, profile, block, found)))
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

"""summary: what a judged study stores beside its page: summary.json (one per profile too, for
the index's budget columns), the parquet tables, and the digest that says whether they are current.

summary.json serialises a `StudyResult`; nothing here judges anything.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import asdict
from pathlib import Path

import pandas as pd

from suite.core import analysis, frames
from suite.core.evaluation import JUDGING_RULES, RunInfo, StudyResult
from suite.core.replication import agreement
from suite.core.study import Profile, Study
from suite.core.verdicts import ALPHA as CHANCE_ALPHA
from suite.core.verdicts import DECIDED


def records_digest(study: Study, records: list[dict], run: RunInfo | None = None) -> str:
    """Identifies what a report was drawn from: the study file's content, every record, the run's
    seed block with the other blocks' verdicts (`run`), and the judging rules' version."""
    digest = hashlib.sha256(Path(study.path).read_bytes() if study.path else b"")
    digest.update(f"judging rules {JUDGING_RULES}".encode())
    for record in sorted(records, key=lambda r: r["key"]):
        digest.update(json.dumps(record, sort_keys=True, default=str).encode())
    digest.update(json.dumps(asdict(run) if run else {}, sort_keys=True, default=str).encode())
    return digest.hexdigest()[:20]


def load_current_summary(out_dir: str | Path, result: StudyResult, profile: Profile) -> dict | None:
    """The existing summary when it was drawn from exactly these records and blocks, else None."""
    path = Path(out_dir) / result.study.name / "summary.json"
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    fresh = (summary.get("records_digest") == records_digest(result.study, result.records, result.run)
             and summary.get("profile") == profile.name)
    return summary if fresh and (path.parent / "index.html").exists() else None


def stored_wall_seconds(out_dir: str | Path, study: str, profile: Profile) -> float | None:
    """The wall time of the run that trained a stored report's trials (`--report-only` trains nothing,
    so a page drawn again keeps that time), or None where no report of this profile is stored."""
    try:
        summary = json.loads((Path(out_dir) / study / f"summary-{profile.name}.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    seconds = summary.get("wall_seconds")
    return float(seconds) if isinstance(seconds, int | float) else None


def study_summary(result: StudyResult, profile: Profile, run_seconds: float) -> dict:
    """The judged study as plain JSON: budget, trial counts, every claim's verdict, facts, the
    chosen tuned values, the other seed blocks' agreement and the records' provenance."""
    study, run, trials, verdicts = result.study, result.run, result.trials, result.verdicts
    this_run = result.verdict_words()
    return {
        "study": study.name, "title": study.title, "question": study.question, "profile": profile.name,
        "budget": {"train_examples": profile.train_examples, "epochs": profile.epochs,
                   # the seeds that judge (a tuning run's own seeds only choose)
                   **_seed_counts(trials[trials["selected"]] if "selected" in trials else trials),
                   "tune_seeds": profile.tune_seeds, "looks": list(profile.looks)},
        "generated": dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat(),
        "wall_seconds": round(run_seconds, 2),
        "trial_seconds": round(float(trials["wall_seconds"].sum()), 1) if "wall_seconds" in trials else None,
        "trials": frames.status_counts(trials),
        # the budget check's runs at half the epochs (suite.core.budget), beside the profile's
        "trials_at_half_budget": sum(bool(r.get("half_budget")) for r in result.records),
        "chance": {"alpha": CHANCE_ALPHA, "claims": sum(v.verdict != analysis.NOT_JUDGED for v in verdicts),
                   "decided": sum(v.verdict in DECIDED for v in verdicts),
                   "decided_after_holm": sum(v.holm_verdict in DECIDED for v in verdicts)},
        "claims": [{**v.as_dict(), "sgd_steps": analysis.sgd_steps_range(v.claim, trials)} for v in verdicts] + [
            {"id": c.id, "text": c.text, "verdict": "not judged", "reason": c.reason, "effect": None,
             "ci": [None, None], "n": 0} for c in study.not_judged],
        "facts": result.facts,
        "reference": result.reference,
        "tuned": frames.chosen_values(result.tuning, study), "tuned_at_edge": frames.tuned_at_edge(result.tuning, study),
        "seed_block": run.label, "confirmation": bool(run.judge_seeds),
        "replication": [{"label": other.label, "verdicts": other.verdicts, "tuning": other.tuning,
                         **agreement(this_run, other.verdicts)}
                        for other in run.others],
        "provenance": result.records[0].get("provenance", {}) if result.records else {},
        "records_digest": records_digest(study, result.records, run),
    }


def write_study_files(out: Path, summary: dict, result: StudyResult) -> None:
    """summary.json, summary-<profile>.json and the trials/epochs/layers tables."""
    text = json.dumps(summary, indent=2, default=str)
    (out / "summary.json").write_text(text, encoding="utf-8")
    # kept per profile too, so the index can show a claim's verdict at every budget side by side
    (out / f"summary-{summary['profile']}.json").write_text(text, encoding="utf-8")
    result.trials.to_parquet(out / "trials.parquet", index=False)
    for name, table in (("epochs", result.epochs), ("layers", result.layers)):
        if not table.empty:
            table.to_parquet(out / f"{name}.parquet", index=False)


def _seed_counts(trials: pd.DataFrame) -> dict:
    """`seeds`: what most arms ran; `most_seeds`: the largest count (a claim's arms may run more)."""
    per_arm = trials.groupby("arm")["seed"].nunique() if not trials.empty else pd.Series(dtype=int)
    if per_arm.empty:
        return {"seeds": 0, "most_seeds": 0}
    return {"seeds": int(per_arm.mode().min()), "most_seeds": int(per_arm.max())}

"""results_page: `docs/results.md`, the suite's current results, written from the summaries a run stored.

A table of studies (profile, trials, wall time, outcome counts) and, per study, a table of its
claims (outcome, effect, 95% interval, seeds, SGD steps, what budget it needs), headed by the
commit, date and machine of the runs that wrote them. Nothing on the page is typed by hand, so
it cannot go stale without saying when it was made: `python run_all.py --results-page`.
Reads only `<reports>/<study>/summary.json`; imports no Keras.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from pathlib import Path

OUTCOMES = ("supported", "contradicted", "equivalent", "inconclusive", "budget-dependent", "not judged", "not measured")


def outcome(claim: dict) -> str:
    """The claim's verdict; "not measured" for a claim the study file lists as one it cannot
    measure (no metric, no budget), apart from one not judged at this budget."""
    if claim["verdict"] == "not judged" and "needs" not in claim:
        return "not measured"
    return claim["verdict"]


def read_summaries(reports: str | Path) -> list[dict]:
    """Every study's latest summary under `reports`, in study-name order."""
    return [json.loads(path.read_text(encoding="utf-8")) for path in sorted(Path(reports).glob("*/summary.json"))]


def _number(x, digits: int = 3) -> str:
    return "–" if x is None else f"{x:+.{digits}f}"


def _interval(ci) -> str:
    low, high = ci if ci else (None, None)
    return "–" if low is None or high is None else f"[{low:+.3f}, {high:+.3f}]"


def _steps(claim: dict) -> str:
    steps = claim.get("sgd_steps")
    if not steps:
        return "–"
    low, high = steps
    return f"{low:,}" if low == high else f"{low:,}-{high:,}"


def _seeds_of(budget: dict) -> str:
    """How many seeds judged: a fixed count, or looks (the interval of each claim then at its look's level)."""
    tuned = f"; tuned values chosen on {budget['tune_seeds']} seeds of their own" if budget.get("tune_seeds") else ""
    if budget.get("looks"):
        return (f"judging seeds in looks of {'/'.join(map(str, budget['looks']))}, each claim's interval at its "
                f"look's level{tuned}")
    return f"{budget.get('seeds')} seeds{tuned}"


def _seeds(claim: dict) -> str:
    """The seeds that judged the claim; with looks, at which look it stopped, its level and why."""
    looked = claim.get("sequential")
    seeds = claim.get("n") or "–"
    if not looked:
        return f"{seeds}"
    return f"{seeds} (look {looked['look']}/{len(looked['looks'])}, level {looked['alpha']:.3g}, {looked['stop']})"


def _half_budget(claim: dict) -> str:
    """The verdict and effect at half the budget, for a claim about trained nets that was checked."""
    half = (claim.get("budget_check") or {}).get("half")
    if not half:
        return "–"
    stop = claim.get("sequential") or {}
    earlier = stop.get("half_seeds") is not None and stop["half_seeds"] != stop.get("seeds")  # B/2 stopped first
    seeds = f", {stop['half_seeds']} seeds" if earlier else ""
    return f"{half['verdict']} ({_number(half.get('effect'))}{seeds})"


def _seconds(summary: dict) -> str:
    """The study's wall time in the run that wrote its report (trials' own seconds overlap: packed
    members share one pack's time, and workers run side by side)."""
    seconds = summary.get("wall_seconds")
    return "–" if seconds is None else f"{seconds / 60:.1f} min"


def outcome_counts(summary: dict) -> Counter:
    return Counter(outcome(claim) for claim in summary["claims"])


def render_results_page(summaries: list[dict], generated: str | None = None) -> str:
    """The page as markdown (one table of studies, then each study's claims)."""
    generated = generated or dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    commits = sorted({s.get("provenance", {}).get("git_commit", "unknown") for s in summaries})
    machines = sorted({_machine(s.get("provenance", {})) for s in summaries})
    lines = [
        "# Results",
        "",
        "Written by `python run_all.py --results-page` from the summaries under `reports/`; do not edit by",
        "hand. Each study's page (`reports/<study>/index.html`, after a run) has the figures and the reasons.",
        "A claim about trained nets is judged at the budget B and again, on runs of its own, at half of it",
        "(*at B/2*): *budget-dependent* when the two decide differently. *not judged*: no compared arm learned;",
        "*not measured*: the study file says why it cannot measure the claim.",
        "",
        f"- Written: {generated}",
        f"- Commit of the runs: {', '.join(commits) or 'none'}",
        f"- Machine: {'; '.join(machines) or 'none'}",
        "",
        "| study | profile | trials | wall time | " + " | ".join(OUTCOMES) + " |",
        "|---|---|---:|---:|" + "---:|" * len(OUTCOMES),
    ]
    for summary in summaries:
        counts = outcome_counts(summary)
        trials = f"{sum(summary['trials'].values())}"
        if summary.get("trials_at_half_budget"):
            trials += f" + {summary['trials_at_half_budget']} at B/2"
        lines.append(f"| [{summary['study']}](#{summary['study']}) | {summary['profile']} | {trials} | "
                     f"{_seconds(summary)} | " + " | ".join(str(counts.get(o, 0)) for o in OUTCOMES) + " |")
    lines += gpu_scale_section(summaries)
    lines += replication_section(summaries)
    for summary in summaries:
        fresh = fresh_blocks(summary)
        budget = summary.get("budget", {})
        lines += [
            "",
            f"## {summary['study']}",
            "",
            f"{summary['title']}: {summary['question']} Profile `{summary['profile']}`: {budget.get('train_examples')} "
            f"training examples, {budget.get('epochs')} epochs, {_seeds_of(budget)} "
            f"({summary.get('seed_block') or 'seeds from 0'}); trials {_trial_counts(summary['trials'])}.",
            "",
            "| claim | outcome | effect | 95% interval | seeds | SGD steps | at B/2 | needs | metric | fresh seeds |",
            "|---|---|---:|---|---:|---:|---|---|---|---|",
        ]
        for claim in summary["claims"]:
            metric = claim.get("metric") or "–"
            if claim.get("epoch") is not None:
                metric += f" @ epoch {claim['epoch']}"
            lines.append(f"| {claim['id']} | {outcome(claim)} | {_number(claim.get('effect'))} | "
                         f"{_interval(claim.get('ci'))} | {_seeds(claim)} | {_steps(claim)} | "
                         f"{_half_budget(claim)} | {claim.get('needs') or '–'} | {metric} | "
                         f"{_fresh_verdicts(claim['id'], fresh)} |")
    return "\n".join(lines) + "\n"


def gpu_scale_section(summaries: list[dict]) -> list[str]:
    """The claims whose papers' own scale needs a GPU: judged here at Fashion-MNIST scale only."""
    rows = [(summary["study"], claim) for summary in summaries for claim in summary["claims"] if claim.get("gpu_scale")]
    if not rows:
        return []
    lines = ["", "## Claims that need a GPU at their papers' scale", "",
             "Judged here on the scaled nets at Fashion-MNIST scale; the claim as its paper states it stays for the "
             "`full` profile on a GPU.", "", "| paper-scale claim | study | outcome here | why its paper's scale needs a GPU |",
             "|---|---|---|---|"]
    lines += [f"| {claim['id']} | {study} | {outcome(claim)} | {claim['gpu_scale']} |" for study, claim in rows]
    return lines


def fresh_blocks(summary: dict) -> list[dict]:
    """The other seed blocks a study's summary was compared with (its own tuning run is none)."""
    # summaries written before `tuning` was kept name their tuning run in the label
    return [block for block in summary.get("replication", [])
            if not block.get("tuning", block["label"].startswith("tuning run"))]


def _fresh_verdicts(claim_id: str, fresh: list[dict]) -> str:
    """The claim's verdict in the other block; with several, each after its block's label."""
    if len(fresh) == 1:
        return fresh[0]["verdicts"].get(claim_id, "–")
    return "; ".join(f"{block['label']}: {block['verdicts'].get(claim_id, '–')}" for block in fresh) or "–"


def replication_section(summaries: list[dict]) -> list[str]:
    """Each study run again on a fresh block of seeds: how many claims decided in both blocks
    agree, and which flip; nothing where no study was."""
    rows = [(summary, block) for summary in summaries for block in fresh_blocks(summary)]
    if not rows:
        return []
    lines = ["", "## Replication on fresh seeds", "",
             "The same study and profile run again on another block of seeds (`--first-seed`; where the",
             "profile tunes, on that block's own tuning seeds). A claim *decided in both* is supported,",
             "contradicted or equivalent in each block; a *flip* is one decided differently. Each claim's",
             "row below shows its verdict in the other block under *fresh seeds*.", "",
             "| study | this run | fresh block | decided in both | agree | flips |", "|---|---|---|---:|---:|---|"]
    for summary, block in rows:
        lines.append(f"| {summary['study']} | {summary.get('seed_block') or '–'} | {block['label']} | "
                     f"{block['decided_both']} | {block['agree']} | {', '.join(block['flips']) or 'none'} |")
    return lines


def _trial_counts(trials: dict) -> str:
    return ", ".join(f"{count} {status}" for status, count in trials.items()) or "none"


def _machine(provenance: dict) -> str:
    cpu = provenance.get("cpu", "CPU not recorded")
    threads = provenance.get("threads", {}).get("intra_op")
    return f"{provenance.get('device', 'CPU')}: {cpu}" + (f", {threads} thread(s) per trial" if threads else "")


def write_results_page(reports: str | Path, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_results_page(read_summaries(reports)), encoding="utf-8")
    return path

"""The per-claim fidelity table: what each claim's test measures, against which control, at how
many SGD steps (read from the summaries, as the results page reads them), what budget it needs,
and whether the run could judge it.

Reads the study files and the summaries a run wrote (`reports/<study>/summary.json`):

    python bench/fidelity_table.py [--reports reports] [--study init ...] > table.md
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from suite.core import loader  # noqa: E402
from suite.core.plugins import load_plugins  # noqa: E402


def _side(selector) -> str:
    parts = selector if isinstance(selector, list) else [selector]

    def level(value) -> str:
        return " or ".join(map(str, value)) if isinstance(value, list) else str(value)

    return " + ".join(" / ".join(level(v) for v in part.values()) for part in parts)


def sgd_steps(summary_claim: dict) -> str:
    """The SGD steps the compared trials trained, as the training loop counted them (the same
    source as the results page: multi-phase procedures and per-arm budgets included)."""
    steps = summary_claim.get("sgd_steps")
    if not steps:
        return "–"
    return f"{steps[0]:,}" if steps[0] == steps[1] else f"{steps[0]:,}-{steps[1]:,}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reports", default="reports")
    parser.add_argument("--study", action="append", default=[])
    parser.add_argument("--profile", default="quick")
    args = parser.parse_args()
    load_plugins()
    names = args.study or [path.stem for path in loader.list_study_paths()]
    print("| claim | measures | against | needs | SGD steps | verdict at " + args.profile + " |")
    print("|---|---|---|---|---:|---|")
    for name in names:
        study = loader.load_study(loader.find_study_path(name))
        path = Path(args.reports) / name / f"summary-{args.profile}.json"
        verdicts = {c["id"]: c for c in json.loads(path.read_text())["claims"]} if path.exists() else {}
        for claim in study.claims:
            metric = claim.metric + (f" @ epoch {claim.epoch}" if claim.epoch is not None else "")
            if claim.target:
                metric += f" ({claim.target['metric']} {claim.target['value']:g})"
            against = _side(claim.worse) if claim.worse is not None else f"the value {claim.than:g}"
            judged = verdicts.get(claim.id, {}).get("verdict", "not run")
            steps = sgd_steps(verdicts.get(claim.id, {}))
            print(f"| {claim.id} | {_side(claim.better)}: {metric} | {against} | {claim.needs} | {steps} | {judged} |")
        for fact in study.facts:
            print(f"| {fact.id} | {fact.metric} (fact) | – | – | – | fact: shown, not judged |")
        for entry in study.not_judged:
            print(f"| {entry.id} | – | – | – | – | not judged: {entry.reason[:80]}... |")


if __name__ == "__main__":
    main()

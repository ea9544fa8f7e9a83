"""Tune, then judge on fresh seeds, against choosing and judging on the same seeds: trials, wall
time and verdicts of the same studies at the same budget, measured in one run.

For each study (default: init and activation) at one profile's budget (default: quick):
- "same seeds": the profile as it is: every arm trains its whole grid on 3 seeds, and the same
  trials choose each arm's learning rate and judge the claims (the winner's curse);
- "tune, then judge": the profile with `tune_seeds: 2`: the grid on 2 seeds of its own (no runs at
  half the budget), then each arm's chosen value on 3 fresh seeds (with the budget check's runs).
Both run from empty results in fresh processes, one after the other, study by study.

    python bench/tune_then_judge.py [--study init --study activation] [--profile quick]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._timing import machine, run_cli  # noqa: E402
from suite.core.loader import STUDIES_DIR  # noqa: E402
from suite.core.verdicts import DECIDED  # noqa: E402


def studies_with_tuning(scratch: Path, profile: str) -> Path:
    """A copy of the study files whose `profile` tunes on 2 seeds of its own before judging."""
    directory = scratch / "studies"
    shutil.copytree(STUDIES_DIR, directory)
    for path in directory.glob("*.yaml"):
        data = yaml.safe_load(path.read_text())
        if any(isinstance(v, list) for v in data["training"].values()):
            data["profiles"][profile] = {**data["profiles"][profile], "tune_seeds": 2}
            path.write_text(yaml.safe_dump(data, sort_keys=False))
    return directory


def run(study: str, profile: str, directory: Path | None, keep: Path) -> dict:
    extra = ["--studies-dir", str(directory)] if directory else []
    result = run_cli(["--study", study, "--profile", profile, *extra], keep=str(keep))
    summary = json.loads((keep / "reports" / study / "summary.json").read_text())
    return {"seconds": result["seconds"], "trials": sum(summary["trials"].values()),
            "half": summary.get("trials_at_half_budget", 0), "verdicts": result["verdicts"],
            "returncode": result["returncode"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study", action="append", default=[])
    parser.add_argument("--profile", default="quick")
    args = parser.parse_args()
    print(f"machine: {machine()}; profile {args.profile}")
    with tempfile.TemporaryDirectory(prefix="tune-then-judge-") as scratch:
        scratch = Path(scratch)
        tuned_dir = studies_with_tuning(scratch, args.profile)
        print("| study | protocol | trials (+ at B/2) | wall | decided | supported | contradicted | equivalent |")
        print("|---|---|---|---|---|---|---|---|")
        for study in args.study or ["init", "activation"]:
            rows = {}
            for name, directory in (("same seeds", None), ("tune, then judge", tuned_dir)):
                keep = scratch / f"{study}-{name.replace(' ', '_').replace(',', '')}"
                rows[name] = run(study, args.profile, directory, keep)
                r, words = rows[name], list(rows[name]["verdicts"].values())
                print(f"| {study} | {name} | {r['trials']} (+ {r['half']}) | {r['seconds'] / 60:.1f} min | "
                      f"{sum(w in DECIDED for w in words)} of {len(words)} | {words.count('supported')} | "
                      f"{words.count('contradicted')} | {words.count('equivalent')} |", flush=True)
            same, tuned = rows["same seeds"]["verdicts"], rows["tune, then judge"]["verdicts"]
            moved = [f"{claim}: {same[claim]} -> {tuned.get(claim)}" for claim in same if same[claim] != tuned.get(claim)]
            print(f"\n{study}: verdicts that differ ({len(moved)}): " + ("; ".join(moved) or "none") + "\n", flush=True)


if __name__ == "__main__":
    main()

"""A study trained with compiled twins (the default) and with every model compiled afresh
(`SUITE_NO_TWINS=1`), alternated, in one run.

Each repeat runs `python run_all.py --study S --profile P` from empty results both ways (the
order alternates between repeats) and reports wall time, the ratio, the per-trial seconds
summed over the stored records, and whether both ways stored the same numbers: every field of
every record except timing and provenance (suite.core.twins promises them bit for bit).

    python bench/twins.py [--study transfer] [--profile quick] [--repeats 1]

Results are in docs/performance.md (compiled twins).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._timing import machine, run_cli  # noqa: E402

VOLATILE = {"timing", "provenance", "traceback"}  # seconds and machine facts, never numbers of the model


def records(results: Path) -> dict:
    return {path.stem: json.loads(path.read_text()) for path in results.glob("*/*.json")}


def run(study: str, profile: str, twins: bool, scratch: Path) -> dict:
    os.environ.pop("SUITE_NO_TWINS", None)
    if not twins:
        os.environ["SUITE_NO_TWINS"] = "1"
    try:
        result = run_cli(["--study", study, "--profile", profile], results=str(scratch / "results"), keep=str(scratch))
    finally:
        os.environ.pop("SUITE_NO_TWINS", None)
    result["records"] = records(scratch / "results")
    result["trial_seconds"] = sum(r["timing"].get("wall_seconds", 0.0) for r in result["records"].values())
    return result


def same_numbers(a: dict, b: dict) -> tuple[int, int]:
    """(records equal in every field but timing and provenance, records in both)."""
    both = set(a) & set(b)
    equal = sum(all(a[k].get(f) == b[k].get(f) for f in set(a[k]) | set(b[k]) if f not in VOLATILE) for k in both)
    return equal, len(both)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study", default="transfer")
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    seconds: dict[bool, list[float]] = {True: [], False: []}
    trial_seconds: dict[bool, list[float]] = {True: [], False: []}
    lines = [f"Machine: {machine()}; `{args.study}` at `{args.profile}`, default executor, empty results.", "",
             "| repeat | way | wall | trial seconds (sum) | exit | same numbers | same verdicts |",
             "|---:|---|---:|---:|---:|---|---|"]
    with tempfile.TemporaryDirectory(prefix="bench-twins-") as scratch:
        for repeat in range(args.repeats):
            order = (True, False) if repeat % 2 == 0 else (False, True)
            runs = {way: run(args.study, args.profile, way, Path(scratch, f"{repeat}-{way}")) for way in order}
            equal, both = same_numbers(runs[True]["records"], runs[False]["records"])
            same_verdicts = runs[True]["verdicts"] == runs[False]["verdicts"]
            for way in order:
                seconds[way].append(runs[way]["seconds"])
                trial_seconds[way].append(runs[way]["trial_seconds"])
                name = "twins" if way else "SUITE_NO_TWINS=1"
                lines.append(f"| {repeat + 1} | {name} | {runs[way]['seconds']:.0f} s | {runs[way]['trial_seconds']:.0f} s "
                             f"| {runs[way]['returncode']} | {equal} of {both} records | {same_verdicts} |")
                print(lines[-1], flush=True)
    ratio = statistics.median(seconds[False]) / statistics.median(seconds[True])
    trial_ratio = statistics.median(trial_seconds[False]) / statistics.median(trial_seconds[True])
    lines.append(f"\nMedian wall: twins {statistics.median(seconds[True]):.0f} s, afresh "
                 f"{statistics.median(seconds[False]):.0f} s: **{ratio:.2f}x**; summed trial seconds {trial_ratio:.2f}x.")
    print("\n" + "\n".join(lines))


if __name__ == "__main__":
    main()

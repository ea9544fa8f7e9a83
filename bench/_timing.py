"""Shared by the benchmark scripts: run `run_all.py` as a user would and time it; time a call."""

from __future__ import annotations

import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def best_seconds(call, repeats: int) -> float:
    """The shortest of `repeats` timed calls of `call()`, after one untimed call (tracing, warm-up)."""
    call()
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - started)
    return best


def run_cli(args: list[str], results: str | None = None, keep: str | None = None) -> dict:
    """Run `python run_all.py ARGS --quiet` in fresh results/report folders (unless given;
    `keep` names a folder whose results/ and reports/ stay after the run); returns wall
    seconds, exit code, the trial count of the studies' summaries, their verdicts
    ({claim id: verdict}), the stored trial keys and each study's agreement with its other stored
    seed blocks ({study: summary's `replication`})."""
    with tempfile.TemporaryDirectory(prefix="bench-") as scratch:
        scratch = keep or scratch
        results = results or f"{scratch}/results"
        command = [sys.executable, str(ROOT / "run_all.py"), *args, "--quiet",
                   "--results", results, "--out", f"{scratch}/reports"]
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True)
        seconds = time.perf_counter() - started
        trials, verdicts, replication = 0, {}, {}
        studies = {value for flag, value in zip(args, args[1:]) if flag == "--study"}
        for path in Path(scratch, "reports").glob("*/summary.json"):
            if keep and path.parent.name not in studies and "all" not in studies:
                continue  # a kept folder holds earlier studies' reports too
            summary = json.loads(path.read_text())
            trials += sum(summary["trials"].values())
            verdicts.update({f"{summary['study']} {c['id']}": c["verdict"] for c in summary["claims"]})
            replication[summary["study"]] = summary.get("replication", [])  # the other stored seed blocks
        keys = {path.stem for path in Path(results).glob("*/*.json")}
    if done.returncode not in (0, 1):
        sys.stderr.write(done.stderr[-2000:])
    return {"seconds": seconds, "returncode": done.returncode, "trials": trials, "verdicts": verdicts, "keys": keys,
            "replication": replication}


def machine() -> str:
    from suite.core.provenance import cpu_description

    return f"{cpu_description()}, Python {platform.python_version()}"

"""Trials per hour by executor: `inline`, `processes` with 1 and 2 workers, and `ray`
(when installed) on this CPU; with GPUs visible also 1 vs K trials per GPU.

Every variant runs the same study and profile from empty results (default: `init` at
`smoke`, 54 small-MLP trials) as a subprocess, so process start-up and dataset loading
count as a user pays them; repeats alternate the variants and the median is reported.

    python bench/scaling.py [--study init] [--profile smoke] [--repeats 2] [--trials-per-gpu 4]
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._timing import machine, run_cli  # noqa: E402
from suite.core.device import count_gpus  # noqa: E402


def variants(trials_per_gpu: int) -> dict[str, list[str]]:
    found = {"inline": ["--executor", "inline"],
             "processes x1": ["--executor", "processes", "--workers", "1"],
             "processes x2": ["--executor", "processes", "--workers", "2"]}
    if importlib.util.find_spec("ray") is not None:
        found["ray"] = ["--executor", "ray"]
    if count_gpus():
        found["gpu: 1 trial per GPU"] = ["--executor", "processes", "--trials-per-gpu", "1"]
        found[f"gpu: {trials_per_gpu} trials per GPU"] = ["--executor", "processes", "--trials-per-gpu", str(trials_per_gpu)]
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study", default="init")
    parser.add_argument("--profile", default="smoke")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--trials-per-gpu", type=int, default=4)
    args = parser.parse_args()
    runs = variants(args.trials_per_gpu)
    seconds: dict[str, list[float]] = {name: [] for name in runs}
    trials, same = {}, {}
    reference = None
    for _ in range(args.repeats):  # alternated, so drift hits every variant alike
        for name, flags in runs.items():
            run = run_cli(["--study", args.study, "--profile", args.profile, *flags])
            if run["returncode"] != 0:
                print(f"{name}: exit {run['returncode']}; left out", file=sys.stderr)
                continue
            seconds[name].append(run["seconds"])
            trials[name] = run["trials"]
            reference = reference if name != "inline" else run  # every executor must agree with inline
            same[name] = "yes" if (run["keys"], run["verdicts"]) == (reference["keys"], reference["verdicts"]) else "NO"
    print(f"Machine: {machine()}; `--study {args.study} --profile {args.profile}`, median of {args.repeats}\n")
    print("| executor | trials | wall (median) | trials per hour | vs inline | same keys and verdicts as inline |\n"
          "|---|---:|---:|---:|---:|---|")
    base = None
    for name, values in seconds.items():
        if not values:
            continue
        median = statistics.median(values)
        rate = trials[name] / median * 3600
        base = base or rate
        print(f"| {name} | {trials[name]} | {median:.1f} s | {rate:.0f} | {rate / base:.2f}x | {same[name]} |")


if __name__ == "__main__":
    main()

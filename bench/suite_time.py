"""Wall time of every study at a profile (default `quick`) on this machine, and the total.

The goal: the five core studies (init, activation, batchnorm, depth, transfer)
in 10 minutes on 2 cores. Each study runs from empty results, as a first-time user runs
it, with the default executor; a Markdown table goes to stdout (and --markdown FILE).

    python bench/suite_time.py [--profile quick] [--study init --study depth ...] [--keep DIR]

With `--first-seed N` (and `--keep DIR` of an earlier run) each study runs again on a fresh block
of seeds in the same store, its reports under DIR/block-N; the table then says how many of the
claims decided in both blocks agree, and which flip.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._timing import machine, run_cli  # noqa: E402
from suite.core import loader  # noqa: E402

CORE = ("init", "activation", "batchnorm", "depth", "transfer")
CORE_GOAL_SECONDS = 600  # the five core studies at `quick`; other profiles have no such goal


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--study", action="append", default=[], help="only these studies (default: all)")
    parser.add_argument("--markdown", default=None, help="also write the table to this file")
    parser.add_argument("--keep", default=None,
                        help="keep results and reports under this folder (each study still starts empty)")
    parser.add_argument("--first-seed", type=int, default=0,
                        help="replicate: a fresh seed block from N, in --keep's store beside its first run")
    args = parser.parse_args()
    if args.first_seed and not args.keep:
        sys.exit("bench/suite_time.py: --first-seed replicates a kept run: give its folder with --keep")
    names = args.study or [path.stem for path in loader.list_study_paths()]
    start = f"a fresh block from seed {args.first_seed}" if args.first_seed else "empty results"
    lines = [f"Machine: {machine()}; profile `{args.profile}`, default executor, {start}.", "",
             "| study | trials | wall | exit | verdicts |" + (" replication |" if args.first_seed else ""),
             "|---|---:|---:|---:|---|" + ("---|" if args.first_seed else "")]
    total = core = 0.0
    for name in names:
        if args.keep and not args.first_seed and Path(args.keep, "results", name).exists():
            sys.exit(f"bench/suite_time.py: {args.keep}/results/{name} exists; each study must start from empty results")
        flags = ["--study", name, "--profile", args.profile]
        if args.first_seed:  # the store keeps the first block; this block's reports go beside its own
            run = run_cli([*flags, "--first-seed", str(args.first_seed)], results=f"{args.keep}/results",
                          keep=f"{args.keep}/block-{args.first_seed}")
        else:
            run = run_cli(flags, keep=args.keep)
        total += run["seconds"]
        core += run["seconds"] if name in CORE else 0.0
        wall = f"{run['seconds'] / 60:.1f} min ({run['seconds']:.0f} s)"
        verdicts = ", ".join(f"{claim.split(' ', 1)[1]} {verdict}" for claim, verdict in run["verdicts"].items())
        replication = f" {_agreement(run['replication'].get(name, []))} |" if args.first_seed else ""
        lines.append(f"| {name} | {run['trials']} | {wall} | {run['returncode']} | {verdicts} |{replication}")
        print(lines[-1], flush=True)
    lines.append(f"| **all** | | {total / 60:.1f} min | | |")
    if set(CORE) <= set(names):
        verdict = "within" if core <= CORE_GOAL_SECONDS else "over"
        goal = f"{verdict} the {CORE_GOAL_SECONDS // 60}-minute goal" if args.profile == "quick" else args.profile
        lines.append(f"| **five core studies** | | {core / 60:.1f} min ({goal}) | | |")
    text = "\n".join(lines)
    print("\n" + text)
    if args.markdown:
        Path(args.markdown).write_text(text + "\n", encoding="utf-8")


def _agreement(others: list[dict]) -> str:
    """"7 of 8 decided in both agree (flips: A5)" for each other stored block."""
    return "; ".join(f"{o['agree']} of {o['decided_both']} decided in both agree with {o['label']}"
                     + (f" (flips: {', '.join(o['flips'])})" if o["flips"] else "") for o in others) or "no other block"


if __name__ == "__main__":
    main()

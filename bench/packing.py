"""A study trained packed (the default) and with `--no-pack`, alternated, in one run.

Each repeat runs `python run_all.py --study S --profile P` from empty results both ways (the
order alternates between repeats, so load on the machine hits both alike) and reports wall
time, trials per hour, the ratio, whether both ways stored the same trial keys and reached the
same verdicts, and the achieved GFLOP/s of the training arithmetic (`count_training_flops` per
training image: forward, weight gradients, and input gradients of every layer but the first;
summed over the study's trials: validation, probes and start-up excluded from the work,
included in the time) against bench/flops.py's measured float32 matmul peak of the whole
machine (all cores; the workers run one thread each).

    python bench/packing.py [--study init] [--profile quick] [--repeats 2]

Results are in docs/performance.md (packing).
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._timing import machine, run_cli  # noqa: E402
from bench.flops import matmul_peak  # noqa: E402
from suite.core.backend import import_keras  # noqa: E402

keras = import_keras()

from suite.core import loader  # noqa: E402
from suite.core.datasets import load_dataset  # noqa: E402
from suite.core.packs import PACK_SIZE, Pack, form_packs  # noqa: E402
from suite.core.plan import plan_trials  # noqa: E402
from suite.core.plugins import load_plugins  # noqa: E402
from suite.techniques.architectures.cost import count_training_flops  # noqa: E402
from suite.techniques.architectures.families import build_model  # noqa: E402


def training_flops(study_name: str, profile_name: str) -> tuple[float, dict, int]:
    """(training FLOPs of every planned trial, {family: FLOPs}, packs formed)."""
    study = loader.load_study(loader.find_study_path(study_name))
    profile = study.profiles[profile_name]
    data = load_dataset(study.dataset_for(profile))
    trials = plan_trials(study, profile, data.fingerprint)
    per_family: dict[str, float] = {}
    per_image: dict[str, float] = {}
    for trial in trials:
        config = trial.config
        signature = repr(sorted((k, v) for k, v in config.items() if k not in ("learning_rate", "kernel_initializer")))
        if signature not in per_image:
            per_image[signature] = count_training_flops(build_model(config, data.input_shape, data.num_classes))
        work = per_image[signature] * config["train_examples"] * config["epochs"]
        per_family[config.get("family", "?")] = per_family.get(config.get("family", "?"), 0.0) + work
    packs = sum(isinstance(unit, Pack) for unit in form_packs(trials, study=study))
    return sum(per_family.values()), per_family, packs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study", default="init")
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--size", type=int, default=2048, help="matmul size for the peak")
    args = parser.parse_args()
    load_plugins()
    work, per_family, packs = training_flops(args.study, args.profile)
    runs = {"packed": [], "--no-pack": []}
    for repeat in range(args.repeats):
        order = ["packed", "--no-pack"] if repeat % 2 == 0 else ["--no-pack", "packed"]
        for way in order:
            extra = ["--no-pack"] if way == "--no-pack" else []
            runs[way].append(run_cli(["--study", args.study, "--profile", args.profile, *extra]))
            print(f"repeat {repeat + 1}: {way} {runs[way][-1]['seconds']:.1f} s", file=sys.stderr, flush=True)
    peak = matmul_peak(args.size)
    trials = runs["packed"][0]["trials"]
    print(f"Machine: {machine()}; backend {keras.config.backend()}")
    print(f"`{args.study}` at `{args.profile}`: {trials} trials ({packs} packs of at most {PACK_SIZE} when packed), "
          f"{args.repeats} alternated repeats from empty results, default executor")
    print(f"Training arithmetic: {work / 1e12:.2f} TFLOP ("
          + ", ".join(f"{family} {flops / 1e12:.2f}" for family, flops in per_family.items())
          + f"); measured matmul peak ({args.size}x{args.size}, float32) {peak / 1e9:.0f} GFLOP/s\n")
    print("| way | wall s (median; all) | trials per hour | achieved GFLOP/s (share of peak) |")
    print("|---|---:|---:|---:|")
    rate = {}
    for way, results in runs.items():
        median = statistics.median(r["seconds"] for r in results)
        rate[way] = trials / median * 3600
        achieved = work / median
        every = ", ".join(f"{r['seconds']:.0f}" for r in results)
        print(f"| {way} | {median:.0f} ({every}) | {rate[way]:,.0f} | "
              f"{achieved / 1e9:.1f} ({achieved / peak:.1%}) |")
    print(f"\nRatio packed / --no-pack (trials per hour): {rate['packed'] / rate['--no-pack']:.2f}x")
    first, other = runs["packed"][0], runs["--no-pack"][0]
    print(f"Same trial keys both ways: {first['keys'] == other['keys']}")
    differing = {claim: (first["verdicts"][claim], other["verdicts"].get(claim)) for claim in first["verdicts"]
                 if first["verdicts"][claim] != other["verdicts"].get(claim)}
    print(f"Same verdicts both ways: {not differing}" + (f"; differ: {differing}" if differing else ""))


if __name__ == "__main__":
    main()

"""The accuracy a study's reference arm reaches when trained properly: a documented long run.

Trains only the reference arm (the study's `reference.arm`) at a long budget (default: the
study's `full` profile), every tuned value, a few seeds, and prints per tuned value the mean
test accuracy and the final training-loss change over the last fifth of training (so a
reader can see the run converged). The best mean is the `reference.accuracy` a study file
may cite as "a documented long run of the suite itself"; the study page then says how much
of it the quick budget reaches.

    python bench/reference_runs.py --study init --study activation [--seeds 2] [--epochs N]
    python bench/reference_runs.py --study init --arm kernel_initializer=he_normal,activation=relu
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._timing import machine  # noqa: E402
from suite.core import backend, loader  # noqa: E402
from suite.core.plugins import load_plugins  # noqa: E402
from suite.core.study import matches  # noqa: E402


def reference_profile(study, arm: dict, profile_name: str, epochs: int | None):
    """The profile with every arm but `arm` excluded (and `epochs` if given)."""
    profile = study.profiles[profile_name]
    others = [level for level in study.list_arms(profile) if not matches(level, arm)]
    return dataclasses.replace(profile, exclude=tuple(profile.exclude) + tuple(others),
                               epochs=epochs or profile.epochs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study", action="append", required=True)
    parser.add_argument("--profile", default="full", help="the budget to train at (default full)")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=None, help="override the profile's epochs")
    parser.add_argument("--results", default=None, help="trial store (default: a temporary folder)")
    parser.add_argument("--arm", default=None, help="factor=level,... (default: the study's reference arm)")
    args = parser.parse_args()
    backend.import_keras()
    load_plugins()
    from suite.core.datasets import load_dataset
    from suite.core.runner import run_study
    from suite.core.store import TrialStore

    print(f"Machine: {machine()}; profile `{args.profile}`, {args.seeds} seeds, reference arm only.\n")
    print("| study | reference arm | tuned | train examples x epochs | test accuracy (mean of seeds) "
          "| train loss fell over the last fifth | wall |")
    print("|---|---|---|---|---:|---:|---:|")
    with tempfile.TemporaryDirectory(prefix="reference-") as scratch:
        for name in args.study:
            study = loader.load_study(loader.find_study_path(name))
            arm = {key: yaml.safe_load(value) for key, value in (part.split("=", 1) for part in args.arm.split(","))} \
                if args.arm else (
                study.reference.arm if study.reference else None)
            if arm is None:
                print(f"| {name} | (no reference arm declared; pass --arm) | | | | | |")
                continue
            profile = reference_profile(study, arm, args.profile, args.epochs)
            data = load_dataset(study.dataset_for(profile))
            started = time.perf_counter()
            report = run_study(study, profile, data, TrialStore(args.results or scratch, name), seeds=args.seeds,
                               show_progress=False, executor="inline")
            seconds = time.perf_counter() - started
            by_value: dict = {}
            for record in report.records.values():
                losses = [row["train_loss"] for row in record["history"] if row.get("train_loss") is not None]
                window = max(1, round(len(losses) / 5))
                fell = (losses[-1 - window] - losses[-1]) / losses[-1 - window] if len(losses) > window else float("nan")
                by_value.setdefault(str(record["tuning"]), []).append((record["final"].get("test_accuracy"), fell))
            for tuned, values in by_value.items():
                accuracy = statistics.mean(v[0] for v in values if v[0] is not None)
                fell = statistics.mean(v[1] for v in values)
                print(f"| {name} | {loader.arm_label(arm)} | {tuned} | "
                      f"{profile.train_examples} x {profile.epochs} | {accuracy:.4f} | {fell:.1%} | {seconds:.0f} s |")


if __name__ == "__main__":
    main()

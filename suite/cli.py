"""cli: `python run_all.py ...`: parse flags, validate everything, run, report.

Exit status: 0 success, 1 when some trial ended in `error`, 2 on bad input (a study
file, an unknown name, a missing dataset, a locked results directory), 130 on Ctrl-C.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from suite.core import backend, loader, schema
from suite.core.device import PRECISIONS, XLA_CHOICES, DeviceOptions, default_threads_per_trial
from suite.core.plugins import load_plugins

EXIT_OK, EXIT_TRIAL_ERRORS, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="run_all.py", description="Run training-technique studies and judge their claims.")
    parser.add_argument("--list", action="store_true", help="list the studies with their questions and exit")
    parser.add_argument("--study", action="append", default=[], metavar="NAME",
                        help="study to run (repeatable, or 'all'); see --list")
    parser.add_argument("--profile", default="quick",
                        help="budget: smoke, quick (default), standard (judges every claim on a CPU: tunes, then "
                             "judges on fresh seeds, with more seeds where undecided) or full")
    parser.add_argument("--seeds", type=int, default=None, metavar="N",
                        help="override the profile's number of seeds (and judge them at once, without its looks)")
    parser.add_argument("--first-seed", type=int, default=0, metavar="N",
                        help="use seeds N, N+1, ... (default 0): a fresh block of seeds replicates a run; the report "
                             "shows every stored block's verdicts side by side")
    parser.add_argument("--confirm", action="store_true",
                        help="after the run, train each arm's chosen tuned values again on the next block of seeds "
                             "and judge the claims on those trials only (the tuning run's verdicts shown beside)")
    parser.add_argument("--out", default="reports", metavar="DIR", help="where reports go (default: reports/)")
    parser.add_argument("--results", default="results", metavar="DIR", help="the trial store (default: results/)")
    parser.add_argument("--data-dir", default=None, metavar="DIR", help="directory with the dataset files")
    parser.add_argument("--studies-dir", default=str(loader.STUDIES_DIR), metavar="DIR", help=argparse.SUPPRESS)
    parser.add_argument("--force", action="store_true", help="ignore stored trials and run everything again")
    parser.add_argument("--report-only", action="store_true", help="re-render reports from stored trials; train nothing")
    parser.add_argument("--no-pack", action="store_true",
                        help="train every trial alone (default: trials that differ only in seed, learning rate or "
                             "initializer train together as one compiled program; same keys, same numbers)")
    parser.add_argument("--executor", default="auto", choices=["auto", "inline", "processes", "ray"],
                        help="how trials run: inline (this process), processes (--workers of them), ray (Ray tasks), "
                             "auto (default: processes, one per core, on a CPU with several cores)")
    parser.add_argument("--workers", type=int, default=None, metavar="N",
                        help="worker processes, or a local Ray instance's CPUs (default: cores, at most 4)")
    parser.add_argument("--threads-per-trial", type=int, default=None, metavar="N",
                        help="intra- and inter-op threads of every trial, whichever executor runs it, so that the "
                             "numbers do not depend on the executor (default: cores / default workers, "
                             f"{default_threads_per_trial()} here); recorded in each record")
    parser.add_argument("--trials-per-gpu", type=int, default=None, metavar="K",
                        help="processes: K workers per visible GPU, each pinned to it with a K-th of its memory")
    parser.add_argument("--trial-timeout", type=float, default=None, metavar="SECONDS",
                        help="a trial running longer ends as `timeout` (and runs again on the next run)")
    parser.add_argument("--ray-address", default=None, metavar="ADDRESS",
                        help="ray: an existing cluster ('auto' or ray://HOST:10001); default: a local instance")
    parser.add_argument("--ray-cpus-per-trial", type=float, default=None, metavar="N",
                        help="ray: CPUs each task asks for (default: --threads-per-trial)")
    parser.add_argument("--ray-gpus-per-trial", type=float, default=0.0, metavar="F",
                        help="ray: GPUs per trial, fractions allowed (0.25 = four trials per GPU; default 0)")
    parser.add_argument("--precision", choices=PRECISIONS, default="auto",
                        help="auto (default): mixed_bfloat16 on GPUs that support it, else mixed_float16; float32 on CPU")
    parser.add_argument("--xla", choices=XLA_CHOICES, default="auto",
                        help="XLA compilation: auto (default; Keras turns it on with a GPU, off on CPU), on, off")
    parser.add_argument("--backend", choices=["tensorflow", "jax", "torch"], default=None,
                        help="Keras backend (default: $KERAS_BACKEND or tensorflow); part of every trial key")
    parser.add_argument("--check", action="store_true",
                        help="exit 1 when a decided verdict differs from the claim's `expect` for this profile")
    parser.add_argument("--strict", action="store_true", help="with --check, an inconclusive verdict fails too")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--results-page", nargs="?", const="docs/results.md", default=None, metavar="PATH",
                        help="write the results page (default docs/results.md) from the summaries under --out, "
                             "then exit; trains nothing")
    parser.add_argument("--write-schema", action="store_true",
                        help="write the study format's JSON Schema to studies/schema.json and exit")
    return parser


def list_studies(directory: Path) -> None:
    for path in loader.list_study_paths(directory):
        try:
            data = loader.read_yaml(path)
            print(f"{path.stem:16s} {data.get('question', '')}")
        except loader.SpecError as err:
            print(f"{path.stem:16s} (invalid: {err})")


def requested_paths(names: list[str], directory: Path) -> list[Path]:
    if names == ["all"] or "all" in names:
        return loader.list_study_paths(directory)
    return [loader.find_study_path(name, directory) for name in dict.fromkeys(names)]


def load_requested(names: list[str], directory: Path, profile: str) -> list:
    """Validate every requested study before anything runs (SpecError on the first problem)."""
    studies = []
    for path in requested_paths(names, directory):
        study = loader.load_study(path)
        if profile not in study.profiles:
            raise loader.SpecError(study.path, "profiles", f"has no profile {profile!r}; profiles: {', '.join(study.profiles)}")
        studies.append(study)
    return studies


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    directory = Path(args.studies_dir)
    if args.list:
        list_studies(directory)
        return EXIT_OK
    if args.results_page:
        from suite.core.report.results_page import write_results_page

        print(f"wrote {write_results_page(args.out, args.results_page)}")
        return EXIT_OK
    if args.write_schema:
        load_plugins()
        print(f"wrote {schema.write_json_schema()}")
        return EXIT_OK
    if not args.study:
        print("error: name a study with --study NAME (or --study all); --list shows them", file=sys.stderr)
        return EXIT_BAD_INPUT
    for flag in ("seeds", "workers", "threads_per_trial", "trials_per_gpu", "trial_timeout"):
        value = getattr(args, flag)
        if value is not None and value <= 0:
            print(f"error: --{flag.replace('_', '-')} must be positive, got {value}", file=sys.stderr)
            return EXIT_BAD_INPUT
    if args.first_seed < 0:
        print(f"error: --first-seed must be 0 or more, got {args.first_seed}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if (args.ray_cpus_per_trial is not None and args.ray_cpus_per_trial <= 0) or args.ray_gpus_per_trial < 0:
        print("error: --ray-cpus-per-trial must be positive and --ray-gpus-per-trial >= 0", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.backend:
        if "keras" in sys.modules and os.environ.get("KERAS_BACKEND") != args.backend:
            print("error: --backend must be chosen before Keras is imported (run it as a fresh process)", file=sys.stderr)
            return EXIT_BAD_INPUT
        os.environ["KERAS_BACKEND"] = args.backend
    try:  # a grid too large to plan is refused before Keras and the techniques load (seconds)
        for path in requested_paths(args.study, directory):
            loader.check_grid_size(path, args.profile, args.seeds)
    except loader.SpecError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    backend.import_keras()
    load_plugins()  # the techniques register their settings, names and procedures
    try:
        studies = load_requested(args.study, directory, args.profile)
    except loader.SpecError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        return run_studies(studies, args, directory)
    except KeyboardInterrupt:
        print("\ninterrupted: finished trials are stored; run the same command again to resume", file=sys.stderr)
        return EXIT_INTERRUPTED


def run_studies(studies: list, args, directory: Path) -> int:
    # Heavy imports only once the input is known to be good.
    from suite.core import replication, report
    from suite.core.datasets import DataError, load_dataset
    from suite.core.runner import current_backend
    from suite.core.store import StoreLockedError, TrialStore

    errors, mismatches = 0, []
    for study in studies:
        profile = study.profiles[args.profile]
        try:
            data = load_dataset(study.dataset_for(profile), args.data_dir)
        except DataError as err:
            print(f"error: study {study.name}: {err}", file=sys.stderr)
            return EXIT_BAD_INPUT
        store = TrialStore(args.results, study.name)
        started = time.perf_counter()
        block = seed_block(study, profile, args, current_backend())
        try:
            with store.lock():
                result = replication.run_block(study, profile, data.fingerprint, block,
                                               trainer(study, profile, data, store, block, args), store,
                                               note=not args.report_only)
        except StoreLockedError as err:
            print(f"error: {err}", file=sys.stderr)
            return EXIT_BAD_INPUT
        if not result.records:
            print(f"{study.name}: no stored trials for profile {args.profile}; nothing to report", file=sys.stderr)
            continue
        dataset_info = {"name": data.name, "source": data.source, "fingerprint": data.fingerprint,
                        "train": len(data.y_train), "val": len(data.y_val), "test": len(data.y_test)}
        kept = report.load_current_summary(args.out, result, profile) if not args.report_only else None
        if kept is None:  # something changed since the last report (or it was asked for): draw it
            seconds = time.perf_counter() - started
            if args.report_only:  # drawing again trains nothing: the page keeps the wall time of the run that trained
                seconds = report.stored_wall_seconds(args.out, study.name, profile) or seconds
            report.build_study_report(result, profile, args.out, seconds, dataset_info)
        else:
            print(f"{study.name}: nothing new since the last report; it is kept", file=sys.stderr)
        errors += int((result.trials["status"] == "error").sum())
        print_verdicts(result, args.profile, Path(args.out) / study.name / "index.html")
        mismatches += check_expectations(result, args.profile, args.strict)
    known = [(s.stem, loader.read_yaml(s).get("title", s.stem)) for s in loader.list_study_paths(directory)]
    index = report.write_index(args.out, known)
    print(f"overview: {index}")
    if args.check and mismatches:
        print("check failed:\n  " + "\n  ".join(mismatches), file=sys.stderr)
    if errors:
        print(f"{errors} trial(s) ended in error; see the reports' 'Failed and diverged trials'", file=sys.stderr)
    return EXIT_TRIAL_ERRORS if errors or (args.check and mismatches) else EXIT_OK


def seed_block(study, profile, args, backend: str):
    """The run's block of seeds. A profile with `tune_seeds` tunes, then judges on fresh seeds (as
    --confirm does); with `looks`, the judging seeds come in looks. --seeds N judges N seeds at once."""
    from suite.core.replication import SeedBlock

    looks = () if args.seeds else profile.looks
    confirm = args.confirm or profile.tune_seeds is not None or bool(looks) and bool(study.tuned)
    return SeedBlock(profile.name, backend, args.first_seed, args.seeds, confirm,
                     profile.tune_seeds if confirm else None, looks, profile.spending)


def trainer(study, profile, data, store, block, args):
    """`train(first_seed, chosen)` for replication.run_block: run the trials (resuming what is
    stored), or with --report-only load the stored ones."""
    from suite.core.plan import plan_trials, records_for
    from suite.core.runner import run_study

    stored = store.load_records().records if args.report_only else None  # read once: nothing is trained

    def train(first_seed: int, chosen: dict | None = None, arm_seeds: dict | None = None,
              budget_check: bool = True, timed_until: dict | None = None, half_seeds: dict | None = None) -> list[dict]:
        if args.report_only:
            trials = plan_trials(study, profile, data.fingerprint, args.seeds, backend=block.backend,
                                 first_seed=first_seed, chosen=chosen, arm_seeds=arm_seeds, budget_check=budget_check,
                                 half_seeds=half_seeds)
            found = records_for(trials, stored)
            print(f"{study.name}: {len(found)} of {len(trials)} trials stored", file=sys.stderr)
            return found
        ran = run_study(study, profile, data, store, seeds=args.seeds, force=args.force,
                        show_progress=not args.quiet, executor=args.executor, options=executor_options(args),
                        first_seed=first_seed, chosen=chosen, pack=not args.no_pack, arm_seeds=arm_seeds,
                        budget_check=budget_check, timed_until=timed_until, half_seeds=half_seeds)
        print(f"{study.name}: ran {ran.ran} trials, reused {ran.skipped} from {store.dir}", file=sys.stderr)
        return records_for(ran.trials, ran.records)

    return train


def executor_options(args):
    from suite.core.executors import ExecutorOptions

    return ExecutorOptions(workers=args.workers, data_dir=args.data_dir,
                           device=DeviceOptions(precision=args.precision, xla=args.xla,
                                                threads_per_trial=args.threads_per_trial),
                           trials_per_gpu=args.trials_per_gpu, trial_timeout=args.trial_timeout,
                           ray_address=args.ray_address, cpus_per_trial=args.ray_cpus_per_trial,
                           gpus_per_trial=args.ray_gpus_per_trial)


def check_expectations(result, profile: str, strict: bool) -> list[str]:
    """Claims whose verdict at this profile differs from their `expect` (CI guards findings)."""
    verdicts = result.verdict_words()
    problems = []
    for claim in result.study.claims:
        expected, got = claim.expect.get(profile), verdicts.get(claim.id)
        if expected is None or got == expected:
            continue
        if got == "inconclusive" and not strict:
            print(f"note: {result.study.name} {claim.id} expected {expected}, got inconclusive", file=sys.stderr)
            continue
        problems.append(f"{result.study.name} {claim.id}: expected {expected} at {profile}, got {got}")
    return problems


def print_verdicts(result, profile: str, page: Path) -> None:
    from suite.core.frames import status_counts

    def num(x):
        return "    –" if x is None or x != x else f"{x:+.3f}"

    study = result.study
    print(f"\n{study.title} ({study.name}, profile {profile}): "
          + ", ".join(f"{v} {k}" for k, v in status_counts(result.trials).items()))
    for verdict in result.verdicts:
        low, high = verdict.ci
        after = f" (after Holm: {verdict.holm_verdict})" if verdict.holm_verdict not in ("", verdict.verdict) else ""
        why = f" [{verdict.power_note}]" if verdict.power_note else ""
        half = (verdict.budget_check or {}).get("half")
        why += f" [at half the budget: {half['verdict']}]" if half else ""
        why += f" [{verdict.sequential['note']}]" if verdict.sequential else ""
        print(f"  {verdict.claim.id:5s} {verdict.verdict:13s} effect {num(verdict.effect)} "
              f"CI [{num(low)}, {num(high)}] n={verdict.n}{after}{why}  {verdict.claim.text[:70]}")
    for entry in study.not_judged:
        print(f"  {entry.id:5s} {'not judged':13s} effect {num(None)} CI [{num(None)}, {num(None)}] n=0  {entry.text[:70]}")
    for fact in result.facts:
        values = "; ".join(f"{v['arms']}: {num(v['mean']).strip()}" for v in fact["values"])
        print(f"  {fact['id']:5s} {'fact':13s} {values}  {fact['text'][:70]}")
    reference = result.reference
    if reference:
        print(f"  reference: {reference['arm']} reaches {reference['metric']} {num(reference['reached']).strip()} "
              f"of the {reference['known']:.3f} its net is known to reach ({reference['source'][:60]})")
    print(f"report: {page}")

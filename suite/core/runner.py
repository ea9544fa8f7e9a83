"""runner: runs a study's pending trials, shows progress, and stores every outcome.

Finished trials (`ok` or `diverged`) are skipped on a rerun; `error` and `timeout`
trials are tried again, since their cause may be gone; `force` runs everything. One
failing trial never stops the study: an exception becomes an `error` record with its
message. Ctrl-C or a crash loses only the trial in flight, since each record is
written atomically as soon as its trial ends.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import multiprocessing
import os
import sys
import time
import traceback
from dataclasses import dataclass, field

from tqdm import tqdm

from suite.core import executors, registry  # noqa: F401 (executors registers itself)
from suite.core.artifacts import ArtifactStore
from suite.core.datasets import Dataset, seed_sample
from suite.core.device import default_threads_per_trial, device_settings
from suite.core.executors import ExecutorOptions
from suite.core.fit import DIVERGED, ERROR, OK, TrialContext, TrialStopped
from suite.core.packs import PACK_SIZE, Pack, form_packs, is_timed, timed_keys, trials_of
from suite.core.plan import Trial, plan_trials
from suite.core.provenance import collect_provenance
from suite.core.settings import STANDARD_PROCEDURE
from suite.core.store import TrialStore
from suite.core.study import Profile, Study

FINISHED = (OK, DIVERGED)  # statuses a rerun keeps


@dataclass
class RunReport:
    trials: list  # every planned Trial (those sharing a training run share a key: `Trial.view` tells them apart)
    records: dict  # key -> record, for every planned trial that has one
    ran: int = 0
    skipped: int = 0
    unreadable: list = field(default_factory=list)
    seconds: float = 0.0


def build_record(trial: Trial, outcome: dict, provenance: dict) -> dict:
    # the device settings come from the process that trained (a Ray node may differ from this one)
    outcome = dict(outcome)
    provenance = {**provenance, **outcome.pop("device_settings", {})}
    return {
        "key": trial.key, "study": trial.study, "arm": trial.arm, "tuning": trial.tuning,
        "seed": trial.seed, "config": trial.config, "probes": list(trial.probes),
        **({"half_budget": True} if trial.half_budget else {}),
        **outcome, "provenance": provenance,
    }


def run_one(trial: Trial, data: Dataset, artifacts_dir: str | None = None, progress=None,
            time_limit: float | None = None) -> dict:
    """The trial's outcome; an exception becomes status `error` with its message.
    `progress` (anything with `put`) receives (trial key, epoch, epochs) after each epoch;
    past `time_limit` seconds training stops and the trial ends as `timeout`."""
    started = time.perf_counter()
    on_epoch = None if progress is None else (lambda epoch, epochs: progress.put((trial.key, epoch, epochs)))
    settings = {"device_settings": device_settings()}  # before the first model: it sets the dtype policy
    try:
        outcome = run_trial(trial.config, trial.seed, trial.probes, data, artifacts_dir, on_epoch=on_epoch,
                            time_limit=time_limit)
    except TrialStopped as stop:  # a phase of a multi-phase procedure diverged or ran out of time
        outcome = {**executors.failed(stop.status, stop.message), "history": stop.history,
                   "timing": {"wall_seconds": time.perf_counter() - started}}
    except Exception as err:  # noqa: BLE001 - any failure is recorded, the study goes on
        last = traceback.format_exception_only(type(err), err)[-1].strip()
        outcome = {**executors.failed(ERROR, last), "timing": {"wall_seconds": time.perf_counter() - started},
                   "traceback": traceback.format_exc(limit=8)}
    return {**outcome, **settings}


def run_pack(pack: Pack, data: Dataset, artifacts_dir: str | None = None, progress=None,
             time_limit: float | None = None) -> list[dict]:
    """One outcome per member of `pack`, trained together by the procedure's pack trainer; the
    time limit is per trial, so the pack gets `time_limit` x its size. An exception becomes
    status `error` for every member."""
    started = time.perf_counter()
    settings = {"device_settings": device_settings()}
    limit = time_limit * pack.size if time_limit else None
    contexts = [TrialContext(artifacts=ArtifactStore(artifacts_dir or "results/artifacts"), probes=tuple(t.probes),
                             time_limit=limit) for t in pack.trials]
    if progress is not None:
        contexts[0].on_epoch = lambda epoch, epochs: progress.put((pack.key, epoch, epochs))
    try:
        outcomes = registry.get("pack_trainer", pack.procedure)([t.config for t in pack.trials],
                                                                [t.seed for t in pack.trials], data, contexts,
                                                                probes=tuple(pack.trials[0].probes))
    except Exception as err:  # noqa: BLE001 - any failure is recorded, the study goes on
        last = traceback.format_exception_only(type(err), err)[-1].strip()
        failure = {**executors.failed(ERROR, last), "timing": {"wall_seconds": time.perf_counter() - started},
                   "traceback": traceback.format_exc(limit=8)}
        outcomes = [failure] * pack.size
    return [{**outcome, **settings} for outcome in outcomes]


def run_unit(unit: Trial | Pack, data: Dataset, **options):
    """A trial's outcome, or a pack's list of outcomes (what the executors carry back)."""
    return run_pack(unit, data, **options) if isinstance(unit, Pack) else run_one(unit, data, **options)


def run_trial(config: dict, seed: int, probe_names: tuple, data: Dataset, artifacts_dir: str | None = None,
              on_epoch=None, time_limit: float | None = None) -> dict:
    """Train one configuration with its procedure (kind "procedure"; `standard` when the study
    names none); returns {status, message, history, final, layers, timing}.
    The seed draws the training subset and order first (`seed_sample`); then a `data_view`
    (e.g. a shifted test distribution) replaces the splits."""
    context = TrialContext(artifacts=ArtifactStore(artifacts_dir or "results/artifacts"), probes=tuple(probe_names),
                           on_epoch=on_epoch, time_limit=time_limit)
    data = seed_sample(data, seed)
    if "data_view" in config:
        data = registry.get("data_view", config["data_view"])(data, config)
    return registry.get("procedure", config.get("procedure", STANDARD_PROCEDURE))(config, seed, data, context)


def _to_time_again(trial: Trial, record: dict, study: Study, timed_until: dict | None) -> bool:
    """A stored trial whose step time a timing claim now reads, timed while others ran beside it
    (stored by a run where no timing claim read it): it runs again, alone."""
    return is_timed(trial, study, timed_until) and not record.get("timing", {}).get("timed_alone")


def run_study(study: Study, profile: Profile, data: Dataset, store: TrialStore, *,
              seeds: int | None = None, force: bool = False, show_progress: bool = True,
              executor: str = "inline", options: ExecutorOptions | None = None, first_seed: int = 0,
              chosen: dict | None = None, pack: bool = True, arm_seeds: dict | None = None,
              budget_check: bool = True, timed_until: dict | None = None,
              half_seeds: dict | None = None) -> RunReport:
    """Run the pending trials of `plan_trials(...)` (seeds from `first_seed`; only each arm's
    `chosen` tuned values, if given; only `arm_seeds`' arms with their seeds, if given, and at half
    the budget `half_seeds`' where given; no runs at half the budget without `budget_check`;
    `timed_until`: suite.core.packs.is_timed) and store each record as it ends. With `pack`, trials
    that can share a compiled program train as packs (suite.core.packs); a pack with any member
    pending trains whole, and only its pending members' records are written."""
    started = time.perf_counter()
    trials = plan_trials(study, profile, data.fingerprint, seeds, backend=current_backend(), first_seed=first_seed,
                         chosen=chosen, arm_seeds=arm_seeds, budget_check=budget_check, half_seeds=half_seeds)
    trained = list({t.key: t for t in trials}.values())  # arms that differ only at evaluation share a run
    loaded = store.load_records()
    for path, reason in loaded.unreadable:
        print(f"warning: {path}: {reason}; its trial will run again if this study needs it", file=sys.stderr)
    done = {} if force else {t.key: loaded.records[t.key] for t in trained
                             if loaded.records.get(t.key, {}).get("status") in FINISHED
                             and not _to_time_again(t, loaded.records[t.key], study, timed_until)}
    units = [unit for unit in form_packs(trained, PACK_SIZE if pack else 1, study, timed_until)
             if any(t.key not in done for t in trials_of(unit))]
    pending = [t for unit in units for t in trials_of(unit) if t.key not in done]
    report = RunReport(trials=trials, records=dict(done), skipped=len(done), unreadable=loaded.unreadable)
    executor, options = choose_executor(executor, options or ExecutorOptions())
    options = dataclasses.replace(options, exclusive=timed_keys(units, study, timed_until))
    if pending:
        # the class count: chance accuracy is 1 / classes (an arm that did not learn, suite.core.analysis)
        provenance = {**collect_provenance(), "data_source": data.source, "classes": data.num_classes}
        bar = tqdm(total=len(trained), initial=len(done), desc=f"{study.name}/{profile.name}", unit="trial",
                   file=sys.stderr, disable=not show_progress, dynamic_ncols=True, mininterval=0.5)

        labels = {unit.key: _label(unit) for unit in units}

        def on_start(unit: Trial | Pack) -> None:
            bar.set_postfix_str(labels[unit.key], refresh=False)

        def show_epoch(event) -> None:
            key, epoch, epochs = event
            bar.set_postfix_str(f"{labels[key]} epoch {epoch}/{epochs}")

        def on_done(unit: Trial | Pack, outcome) -> None:
            # stored at once: a crash later loses nothing finished. A pack's members come back as a
            # list; a pack whose worker died comes back as one failed outcome for all of them
            members = trials_of(unit)
            outcomes = outcome if isinstance(outcome, list) else [outcome] * len(members)
            for index, (trial, result) in enumerate(zip(members, outcomes)):
                if trial.key in done:  # finished in an earlier run: kept as stored
                    continue
                if isinstance(unit, Pack):  # the record says it was trained packed, and with whom
                    result = {**result, "packed": {"pack": unit.key, "members": unit.size, "member": index}}
                if unit.key in options.exclusive:  # its step time was measured with nothing beside it
                    result = {**result, "timing": {**result.get("timing", {}), "timed_alone": True}}
                report.records[trial.key] = store.save_record(build_record(trial, result, provenance))
                report.ran += 1
                bar.update(1)

        with bar, epoch_channel(executor, show_epoch) as (channel, poll):
            run = functools.partial(run_unit, artifacts_dir=str(store.dir / "artifacts"), progress=channel,
                                    time_limit=options.trial_timeout)
            registry.get("executor", executor)(units, data, run, on_start, on_done, options, poll=poll)
    report.seconds = time.perf_counter() - started
    return report


class _Direct:
    """Epoch events of trials run in this process go straight to the display."""

    def __init__(self, show):
        self.put = show


@contextlib.contextmanager
def epoch_channel(executor: str, show):
    """(channel, poll): where trials put epoch events, and how the main process shows them.
    Worker processes put into a managed queue that `poll` drains between results."""
    if executor == "inline":
        yield _Direct(show), lambda: None
        return
    if executor == "ray":  # tasks on other nodes cannot reach this process's queue: trial-level progress only
        yield None, lambda: None
        return
    # spawned, not forked: forking a process that runs JAX (multithreaded) can deadlock
    with multiprocessing.get_context("spawn").Manager() as manager:
        queue = manager.Queue()

        def poll() -> None:
            while not queue.empty():
                show(queue.get_nowait())

        yield queue, poll


def current_backend() -> str:
    return os.environ.get("KERAS_BACKEND", "tensorflow")


def _tuning_label(trial: Trial) -> str:
    return " ".join(f"{key}={value}" for key, value in trial.tuning.items())


def _label(unit: Trial | Pack) -> str:
    if isinstance(unit, Pack):
        return f"pack of {unit.size}: {unit.trials[0].arm_label} ..."
    return " ".join(filter(None, [unit.arm_label, _tuning_label(unit), f"seed {unit.seed}"]))


def choose_executor(executor: str, options: ExecutorOptions) -> tuple[str, ExecutorOptions]:
    """`auto`: one worker process per core (at most 4), since one small net uses the cores
    badly (measured: 2 workers ran init's trials 1.6x faster than inline on 2 cores), or
    with --trials-per-gpu, the processes executor's GPU slots. The threads per trial are decided
    here, by this machine, once: a Ray node with other cores would otherwise pick its own."""
    workers = options.workers
    if workers is None:
        workers = min(4, os.cpu_count() or 1) if executor != "inline" else 1
    if executor == "auto":
        executor = "processes" if workers > 1 or options.trials_per_gpu else "inline"
    threads = options.device.threads_per_trial or default_threads_per_trial()
    return executor, dataclasses.replace(options, workers=workers,
                                         device=dataclasses.replace(options.device, threads_per_trial=threads))

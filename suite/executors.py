"""executors: how pending trials are run, chosen by name (`--executor`).

An executor takes trials and callbacks; it calls `on_done(trial, outcome)` in the main
process as each trial ends, so the runner stores every record the moment it exists, and
`poll()` now and then, so the terminal can show the epochs of trials still running.
`inline` runs in this process; `processes` runs N worker processes, each with its own
copy of the dataset and one TensorFlow thread pool share.
"""

from __future__ import annotations

import concurrent.futures as futures
import multiprocessing
import os
import threading
import time
from collections.abc import Callable

from suite import backend, registry
from suite.data import Dataset, load_dataset
from suite.plan import Trial
from suite.train import ERROR

OnDone = Callable[[Trial, dict], None]
OnStart = Callable[[Trial], None]


@registry.register("executor", "inline")
def run_inline(trials: list[Trial], data: Dataset, run_one: Callable, on_start: OnStart, on_done: OnDone,
               workers: int = 1, data_dir: str | None = None, poll: Callable = lambda: None) -> None:
    for trial in trials:
        on_start(trial)
        on_done(trial, run_one(trial, data))


# ---- processes -----------------------------------------------------------------------
_WORKER_DATA: Dataset | None = None


def _exit_with_parent(parent: int) -> None:
    """A worker whose runner was killed (SIGKILL leaves no chance to clean up) exits too."""
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(1)


def _init_worker(dataset: str, data_dir: str | None, threads: int) -> None:
    """Runs once in each worker: share the cores, read the dataset once."""
    global _WORKER_DATA
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True).start()
    keras = backend.import_keras()
    if keras.config.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    _WORKER_DATA = load_dataset(dataset, data_dir)


def _run_in_worker(trial: Trial, run_one: Callable) -> dict:
    return run_one(trial, _WORKER_DATA)


@registry.register("executor", "processes")
def run_processes(trials: list[Trial], data: Dataset, run_one: Callable, on_start: OnStart, on_done: OnDone,
                  workers: int = 2, data_dir: str | None = None, poll: Callable = lambda: None) -> None:
    """N spawned workers, one trial each at a time; a worker that dies marks its trial `error`
    and the pool is rebuilt for the rest."""
    threads = max(1, (os.cpu_count() or 1) // workers)
    queue = list(trials)
    while queue:
        context = multiprocessing.get_context("spawn")  # fork is unsafe once TensorFlow has threads
        with futures.ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker,
                                         initargs=(data.name, data_dir, threads)) as pool:
            in_flight: dict = {}
            broken = False
            while (queue or in_flight) and not broken:
                while queue and len(in_flight) < workers:  # only `workers` submitted: we know who runs
                    trial = queue.pop(0)
                    on_start(trial)
                    in_flight[pool.submit(_run_in_worker, trial, run_one)] = trial
                done, _ = futures.wait(in_flight, timeout=0.5, return_when=futures.FIRST_COMPLETED)
                poll()  # show the workers' epoch progress between results
                for future in done:
                    trial = in_flight.pop(future)
                    try:
                        outcome = future.result()
                    except futures.process.BrokenProcessPool:
                        broken = True
                        outcome = {"status": ERROR, "message": "the worker process running this trial died",
                                   "history": [], "final": {}, "layers": [], "timing": {}}
                    on_done(trial, outcome)
            for trial in in_flight.values():  # lost with the pool: all were running
                on_done(trial, {"status": ERROR, "message": "the worker pool died while this trial ran",
                                "history": [], "final": {}, "layers": [], "timing": {}})

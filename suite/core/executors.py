"""executors: how pending trials are run, chosen by name (`--executor`).

An executor takes units of work (trials, or packs of trials that train together: see
suite.core.packs; both have a `key`) and callbacks; it calls `on_done(unit, outcome)` in the
main process as each unit ends (a pack's outcome is a list, one per member), so the runner
stores every record the moment it exists, and `poll()` now and then, so the terminal can show
the epochs of trials still running.
- `inline` runs in this process;
- `processes` runs N spawned worker processes, each with its own copy of the dataset, or,
  with `trials_per_gpu`, K workers per GPU pinned through CUDA_VISIBLE_DEVICES with a memory
  cap each (small models leave most of a GPU idle);
- `ray` runs trials as Ray tasks with per-trial CPU/GPU resources (fractions allowed), on
  a local Ray instance or an existing cluster; the dataset travels through Ray's object store,
  and a task lost with its node runs again on another (bench/ray_cluster.py kills one).
Every executor writes to the same store, so a study can be resumed by any of them, and every
trial runs on the same threads per trial (suite.core.device), so any of them computes the
same numbers.
Units in `ExecutorOptions.exclusive` (trials whose step time a claim judges) run after the
others, one at a time, with nothing of this run beside them.
"""

from __future__ import annotations

import concurrent.futures as futures
import dataclasses
import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from suite.core import registry
from suite.core.datasets import Dataset, load_dataset
from suite.core.device import DeviceOptions, apply_device_options, count_gpus, gpu_memory_mb
from suite.core.fit import ERROR, TIMEOUT
from suite.core.plan import Trial
from suite.core.plugins import load_plugins

OnDone = Callable[[Trial, dict], None]
OnStart = Callable[[Trial], None]
# A trial over --trial-timeout stops itself at its next training step; one hung elsewhere
# (a data pipeline, a deadlock) is killed with its worker this much later.
KILL_GRACE_SECONDS = 30.0


@dataclass(frozen=True)
class ExecutorOptions:
    workers: int | None = None  # None: chosen by the runner (cores, at most 4)
    data_dir: str | None = None
    device: DeviceOptions = field(default_factory=DeviceOptions)
    trials_per_gpu: int | None = None  # processes: K workers per visible GPU
    trial_timeout: float | None = None  # seconds; the trial ends as `timeout`
    ray_address: str | None = None  # ray: an existing cluster ("auto", "ray://host:10001"); None = local
    cpus_per_trial: float | None = None  # ray: CPUs each task asks for; None: device.threads_per_trial
    gpus_per_trial: float = 0.0
    # keys of units that must run with nothing beside them (their step time is judged):
    # they run after the others, one at a time (suite.core.packs.timed_keys)
    exclusive: frozenset = frozenset()


def exclusive_last(units: list, exclusive: frozenset) -> list:
    """`units` with the exclusive ones moved to the end (each keeps its order)."""
    return [u for u in units if u.key not in exclusive] + [u for u in units if u.key in exclusive]


def failed(status: str, message: str) -> dict:
    """The outcome of a trial that produced nothing (its worker died or was killed)."""
    return {"status": status, "message": message, "history": [], "final": {}, "layers": [], "timing": {}}


@registry.register("executor", "inline")
def run_inline(trials: list[Trial], data: Dataset, run_one: Callable, on_start: OnStart, on_done: OnDone,
               options: ExecutorOptions, poll: Callable = lambda: None) -> None:
    apply_device_options(options.device)
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


def _init_worker(dataset: str, data_dir: str | None, device: DeviceOptions, gpu_slots) -> None:
    """Runs once in each worker: take a GPU slot (if any), size the thread pools, read the dataset
    once. The GPU is chosen before the framework first touches one, so the pinning holds."""
    global _WORKER_DATA
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True).start()
    if gpu_slots is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = gpu_slots.get()
    apply_device_options(device)
    load_plugins(sections=False)  # a spawned worker registers the techniques (datasets, procedures) itself
    _WORKER_DATA = load_dataset(dataset, data_dir)


def _run_in_worker(trial: Trial, run_one: Callable) -> dict:
    return run_one(trial, _WORKER_DATA)


def plan_gpu_slots(gpus: int, trials_per_gpu: int, total_mb: int | None) -> tuple[list[str], int | None]:
    """(one CUDA_VISIBLE_DEVICES value per worker, memory cap per worker in MiB): K workers per GPU,
    each capped at a K-th of the GPU's memory less 10% headroom for the CUDA context."""
    slots = [str(gpu) for gpu in range(gpus) for _ in range(trials_per_gpu)]
    cap = int(total_mb * 0.9 / trials_per_gpu) if total_mb else None
    return slots, cap


def _kill_workers(pool: futures.ProcessPoolExecutor) -> None:
    for process in list(getattr(pool, "_processes", {}).values()):  # the pool has no public kill
        process.kill()


@registry.register("executor", "processes")
def run_processes(trials: list[Trial], data: Dataset, run_one: Callable, on_start: OnStart, on_done: OnDone,
                  options: ExecutorOptions, poll: Callable = lambda: None) -> None:
    """Spawned workers, one trial each at a time. A worker that dies marks its trial `error`;
    a trial past its timeout (plus grace) is killed with its worker and marked `timeout`;
    the pool is then rebuilt and the trials that were running beside it run again."""
    device, workers, slots = options.device, options.workers, None
    gpus = count_gpus() if options.trials_per_gpu else 0
    if gpus:
        slots, cap = plan_gpu_slots(gpus, options.trials_per_gpu, gpu_memory_mb())
        workers, device = len(slots), dataclasses.replace(device, memory_limit_mb=cap)
    queue = exclusive_last(trials, options.exclusive)
    context = multiprocessing.get_context("spawn")  # fork is unsafe once TensorFlow has threads
    while queue:
        gpu_slots = None
        if slots:
            gpu_slots = context.Queue()
            for slot in slots:
                gpu_slots.put(slot)
        with futures.ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker,
                                         initargs=(data.name, options.data_dir, device, gpu_slots)) as pool:
            in_flight: dict = {}  # future -> (trial, started)
            broken = killed = None
            while (queue or in_flight) and not broken:
                while queue and len(in_flight) < workers:  # only `workers` submitted: we know who runs
                    running_alone = any(t.key in options.exclusive for t, _ in in_flight.values())
                    if running_alone or (in_flight and queue[0].key in options.exclusive):
                        break  # an exclusive unit runs with nothing beside it
                    trial = queue.pop(0)
                    on_start(trial)
                    in_flight[pool.submit(_run_in_worker, trial, run_one)] = (trial, time.monotonic())
                done, _ = futures.wait(in_flight, timeout=0.5, return_when=futures.FIRST_COMPLETED)
                poll()  # show the workers' epoch progress between results
                for future in done:
                    trial, _ = in_flight.pop(future)
                    try:
                        outcome = future.result()
                    except futures.process.BrokenProcessPool:
                        broken = True
                        if killed and killed != trial.key:  # killed beside the late one (a slow start): run it again
                            queue.insert(0, trial)
                            continue
                        outcome = (failed(TIMEOUT, f"killed after {options.trial_timeout:g} s (--trial-timeout)")
                                   if killed == trial.key else failed(ERROR, "the worker process running this trial died"))
                    on_done(trial, outcome)
                if options.trial_timeout and not broken:
                    # a pack of K trials gets K trials' time
                    late = [t for t, started in in_flight.values()
                            if time.monotonic() - started > options.trial_timeout * getattr(t, "size", 1)
                            + KILL_GRACE_SECONDS]
                    if late:
                        killed = late[0].key
                        _kill_workers(pool)
            for trial, _ in in_flight.values():  # lost with the pool
                if trial.key == killed:
                    on_done(trial, failed(TIMEOUT, f"killed after {options.trial_timeout:g} s (--trial-timeout)"))
                elif killed:  # killed beside the late one through no fault of its own: run it again
                    queue.insert(0, trial)
                else:
                    on_done(trial, failed(ERROR, "the worker pool died while this trial ran"))


# ---- ray -----------------------------------------------------------------------------
def _run_in_ray_task(trial: Trial, data: Dataset, run_one: Callable, device: DeviceOptions) -> dict:
    """Body of one Ray task. A Ray worker process is reused: both calls below configure it once
    and return at once afterwards."""
    import ray

    apply_device_options(device)
    load_plugins(sections=False)
    outcome = run_one(trial, data)
    node = {"ray_node": ray.get_runtime_context().get_node_id()}  # which machine of the cluster trained it

    def tagged(one: dict) -> dict:
        return {**one, "device_settings": {**one.get("device_settings", {}), **node}}

    return [tagged(one) for one in outcome] if isinstance(outcome, list) else tagged(outcome)


@registry.register("executor", "ray")
def run_ray(trials: list[Trial], data: Dataset, run_one: Callable, on_start: OnStart, on_done: OnDone,
            options: ExecutorOptions, poll: Callable = lambda: None) -> None:
    """Trials as Ray tasks. Without `ray_address` a local instance with `workers` CPUs is
    started (and stopped afterwards); with one, the trials go to that cluster."""
    try:
        import ray
    except ImportError as err:
        raise RuntimeError("the ray executor needs Ray: pip install 'ray[default]' (or .[ray])") from err
    started_here = not ray.is_initialized()
    if started_here:
        local = {} if options.ray_address else {"num_cpus": options.workers, "num_gpus": count_gpus()}
        ray.init(address=options.ray_address, include_dashboard=False, log_to_driver=False,
                 configure_logging=False, **local)
    try:
        cpus = options.cpus_per_trial or options.device.threads_per_trial
        # a task whose node or worker process dies runs once more (elsewhere, if its node is gone);
        # an exception inside a trial is its record's `error`, never retried
        task = ray.remote(num_cpus=cpus, num_gpus=options.gpus_per_trial, max_retries=1)(_run_in_ray_task)
        data_ref = ray.put(data)  # once, shared by every task (zero-copy on one machine)
        shared = [t for t in trials if t.key not in options.exclusive]
        # the shared units all at once, then each exclusive one alone (nothing else of this run beside it)
        for batch in [shared] + [[t] for t in trials if t.key in options.exclusive]:
            pending = {}
            for trial in batch:
                on_start(trial)
                pending[task.remote(trial, data_ref, run_one, options.device)] = trial
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1, timeout=0.5)
                poll()
                for ref in done:
                    trial = pending.pop(ref)
                    try:
                        outcome = ray.get(ref)
                    except ray.exceptions.RayError as err:  # the task's worker died, or Ray lost it
                        outcome = failed(ERROR, f"ray: {type(err).__name__}: {str(err).splitlines()[0][:300]}")
                    on_done(trial, outcome)
    finally:
        if started_here:
            ray.shutdown()

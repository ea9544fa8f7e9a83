"""device: how one process uses its cores and accelerator, decided once per process and recorded.

Threads: every trial runs on the same number of intra- and inter-op threads, whichever
executor runs it (`threads_per_trial`), because float32 kernels split their sums by thread:
on an AVX2-only CPU one trial gave other numbers on 1 and on 2 threads, so the worker count
changed the records. The default is the cores each of the default executor's workers gets.

On a GPU: memory growth (or a memory cap when several trials share one GPU), mixed
precision (bfloat16 where the GPU supports it, compute capability >= 8.0; else float16,
for which Keras adds loss scaling itself) and XLA through Keras' "auto" (on with a GPU).
On a CPU none of these: XLA was measured ~2x slower for small convnets on the 2-core
development machine, and mixed precision only adds casts there. Flags override every
choice; the settings each trial ran under go into its record's provenance, never its key.
Must be applied before the process builds its first model.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import asdict, dataclass, replace

import suite.core.backend  # noqa: F401 (sets TensorFlow's environment, oneDNN included, before its first import)

PRECISIONS = ("auto", "float32", "mixed_bfloat16", "mixed_float16")
XLA_CHOICES = ("auto", "on", "off")


@dataclass(frozen=True)
class DeviceOptions:
    precision: str = "auto"  # one of PRECISIONS
    xla: str = "auto"  # one of XLA_CHOICES
    memory_limit_mb: int | None = None  # per process; set by executors that put several trials on one GPU
    threads_per_trial: int | None = None  # intra- and inter-op threads; None: default_threads_per_trial()


_SETTINGS: dict | None = None


def _nvidia_smi(*args: str) -> str:
    """What nvidia-smi prints for `args` ("" without it), so that no framework is imported."""
    if not shutil.which("nvidia-smi"):
        return ""
    try:
        return subprocess.run(["nvidia-smi", *args], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return ""


def count_gpus() -> int:
    """GPUs visible to a fresh process."""
    if os.environ.get("CUDA_VISIBLE_DEVICES") == "":
        return 0
    return sum(line.startswith("GPU ") for line in _nvidia_smi("-L").splitlines())


def gpu_memory_mb() -> int | None:
    """Total memory of the first GPU in MiB, or None without one."""
    out = _nvidia_smi("--query-gpu=memory.total", "--format=csv,noheader,nounits").split()
    return int(float(out[0])) if out else None


def default_threads_per_trial() -> int:
    """The cores each worker of the default executor gets (one worker per core, at most 4), so
    that the default run uses every core and any other executor computes the same numbers."""
    cores = os.cpu_count() or 1
    return max(1, cores // min(4, cores))


class ThreadsAlreadySetError(RuntimeError):
    """The framework started its thread pools before the suite could size them."""


def _pin_threads(backend: str, threads: int) -> dict:
    """Size this process's thread pools; must run before the framework runs its first op."""
    os.environ["OMP_NUM_THREADS"] = str(threads)  # OpenMP builds of oneDNN read it at their first kernel
    if backend == "tensorflow":
        import tensorflow as tf

        try:  # a no-op when already at `threads`; refused once the runtime has started
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(threads)
        except RuntimeError:
            running = tf.config.threading.get_intra_op_parallelism_threads() or "as many as cores"
            raise ThreadsAlreadySetError(
                f"TensorFlow already runs on {running} intra-op threads in this process, so its trials cannot "
                f"run on {threads} as every other trial does (their float32 sums would round differently); "
                "apply the device options before anything runs a TensorFlow op") from None
    elif backend == "jax" and threads == 1:  # XLA's CPU client sizes its pool itself; one thread can be asked for
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false").strip()
    return {"intra_op": threads, "inter_op": threads}


def _memory_environment(options: DeviceOptions, backend: str) -> None:
    """JAX and TensorFlow read their allocator settings when they first touch the GPU."""
    if backend == "jax":
        os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # grow, as TensorFlow does below
        if options.memory_limit_mb and (total := gpu_memory_mb()):
            os.environ["XLA_PYTHON_CLIENT_MEM_FRACTION"] = f"{options.memory_limit_mb / total:.3f}"


def _gpus(backend: str, options: DeviceOptions) -> list[tuple[str, float]]:
    """(name, compute capability) of each visible GPU; configures memory on the way."""
    if backend == "tensorflow":
        import tensorflow as tf

        found = []
        for gpu in tf.config.list_physical_devices("GPU"):
            if options.memory_limit_mb:
                tf.config.set_logical_device_configuration(
                    gpu, [tf.config.LogicalDeviceConfiguration(memory_limit=options.memory_limit_mb)])
            else:
                tf.config.experimental.set_memory_growth(gpu, True)
            capability = tf.config.experimental.get_device_details(gpu).get("compute_capability", (0, 0))
            found.append((gpu.name, capability[0] + capability[1] / 10))
        return found
    if backend == "jax":
        import jax

        return [(str(d), float(getattr(d, "compute_capability", 0) or 0)) for d in jax.devices() if d.platform == "gpu"]
    if backend == "torch":
        import torch

        if not torch.cuda.is_available():
            return []
        if options.memory_limit_mb and (total := gpu_memory_mb()):
            torch.cuda.set_per_process_memory_fraction(min(1.0, options.memory_limit_mb / total))
        return [(torch.cuda.get_device_name(i), float("{}.{}".format(*torch.cuda.get_device_capability(i))))
                for i in range(torch.cuda.device_count())]
    return []


def resolve_precision(requested: str, gpus: list[tuple[str, float]]) -> str:
    if requested != "auto":
        return requested
    if not gpus:
        return "float32"
    return "mixed_bfloat16" if min(capability for _, capability in gpus) >= 8.0 else "mixed_float16"


def apply_device_options(options: DeviceOptions | None = None) -> dict:
    """Configure this process once and say how. A later call returns the first settings; one that
    asks for other settings is refused, since this process's trials already ran under the first."""
    global _SETTINGS
    asked = options is not None
    options = options or DeviceOptions()
    options = replace(options, threads_per_trial=options.threads_per_trial or default_threads_per_trial())
    if _SETTINGS is not None:
        if asked and asdict(options) != _SETTINGS["requested"]:
            raise RuntimeError(f"this process already runs under {_SETTINGS['requested']}; it cannot switch to "
                               f"{asdict(options)} (start a new process)")
        return _SETTINGS
    if options.precision not in PRECISIONS or options.xla not in XLA_CHOICES:
        raise ValueError(f"precision must be one of {PRECISIONS} and xla one of {XLA_CHOICES}, got {options}")
    from suite.core.backend import import_keras

    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    _memory_environment(options, backend)
    keras = import_keras()
    threads = _pin_threads(backend, options.threads_per_trial)
    gpus = _gpus(backend, options)
    precision = resolve_precision(options.precision, gpus)
    keras.config.set_dtype_policy(precision)  # float16 gets loss scaling from Model.compile
    deterministic = _deterministic_ops(backend)
    _SETTINGS = {
        "device": ", ".join(name for name, _ in gpus) or "CPU",
        "precision": precision,
        "xla": {"auto": "auto (on with a GPU; on CPU off, except packed training loops)", "on": "on", "off": "off"}[options.xla],
        "memory": (f"{options.memory_limit_mb} MiB cap" if options.memory_limit_mb else "growth") if gpus else "host",
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES", ""),
        "requested": asdict(options),
        "deterministic_ops": deterministic,
        "threads": threads,
    }
    return _SETTINGS


def _deterministic_ops(backend: str) -> bool:
    """TensorFlow: op determinism on (same seed, same numbers, on CPU and GPU alike); JAX is
    deterministic on CPU by construction and on GPU with XLA's deterministic-ops flag."""
    if backend == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
        return True
    if backend == "jax":
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_gpu_deterministic_ops=true").strip()
        return True
    return False


def device_settings() -> dict:
    """The settings this process runs under (defaults applied if nothing was chosen)."""
    return apply_device_options()


def jit_compile():
    """The `jit_compile` argument for Model.compile under this process's settings."""
    return {"on": True, "off": False}.get(device_settings()["requested"]["xla"], "auto")

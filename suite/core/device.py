"""device: how one process uses its accelerator, decided once per process and recorded.

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
from dataclasses import asdict, dataclass

PRECISIONS = ("auto", "float32", "mixed_bfloat16", "mixed_float16")
XLA_CHOICES = ("auto", "on", "off")


@dataclass(frozen=True)
class DeviceOptions:
    precision: str = "auto"  # one of PRECISIONS
    xla: str = "auto"  # one of XLA_CHOICES
    memory_limit_mb: int | None = None  # per process; set by executors that put several trials on one GPU


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
    """Configure this process once (later calls return the first settings) and say how."""
    global _SETTINGS
    if _SETTINGS is not None:
        return _SETTINGS
    options = options or DeviceOptions()
    if options.precision not in PRECISIONS or options.xla not in XLA_CHOICES:
        raise ValueError(f"precision must be one of {PRECISIONS} and xla one of {XLA_CHOICES}, got {options}")
    from suite.core.backend import import_keras

    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    _memory_environment(options, backend)
    keras = import_keras()
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

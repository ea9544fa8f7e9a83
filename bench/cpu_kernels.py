"""Which CPU kernels TensorFlow runs, and what they cost: one trial of the convolutional depth study
(its net and training settings) in fresh processes with oneDNN on and off (and held to AVX2), alternated.

TensorFlow 2.9+ on Linux turns its oneDNN kernels on by default only on CPUs with
neural-network features (AVX512_VNNI, AVX512_BF16, AVX_VNNI or AMX; `DefaultOneDnnPolicy` in
tensorflow/core/util/util.cc). An AVX2-only CPU runs the Eigen kernels instead unless
`TF_ENABLE_ONEDNN_OPTS=1` says otherwise; this bench measures what that costs on this CPU.

    python bench/cpu_kernels.py [--repeats 2] [--depth 32] [--examples 2000] [--epochs 2]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._timing import machine  # noqa: E402

VARIANTS = {
    "TensorFlow's default here": {},
    "oneDNN off (an AVX2-only CPU's default)": {"TF_ENABLE_ONEDNN_OPTS": "0"},
    "oneDNN on, held to AVX2": {"TF_ENABLE_ONEDNN_OPTS": "1", "ONEDNN_MAX_CPU_ISA": "AVX2"},
}

TRIAL = """
import json, sys
from suite.core.device import apply_device_options
from suite.core.plugins import load_plugins
load_plugins(); apply_device_options()
from suite.core.datasets import load_dataset
from suite.core.runner import run_trial
from suite.core import loader
depth, examples, epochs = (int(a) for a in sys.argv[1:4])
study = loader.load_study(loader.STUDIES_DIR / "depth.yaml")  # the depth study's net and training settings
config = {**study.model, **study.training, "family": "plain_net", "depth": depth, "train_examples": examples,
          "epochs": epochs, "dataset": "fashion_mnist"}
outcome = run_trial(config, 0, (), load_dataset("fashion_mnist"))
print(json.dumps({"step_seconds": outcome["timing"]["step_seconds"], "status": outcome["status"]}))
"""


def one_run(env: dict, depth: int, examples: int, epochs: int) -> float:
    done = subprocess.run([sys.executable, "-c", TRIAL, str(depth), str(examples), str(epochs)],
                          env={**os.environ, **env, "TF_CPP_MIN_LOG_LEVEL": "2"}, capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parent.parent)
    if done.returncode != 0:
        raise SystemExit(done.stderr[-2000:])
    return json.loads(done.stdout.strip().splitlines()[-1])["step_seconds"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--depth", type=int, default=32)
    parser.add_argument("--examples", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    times = {name: [] for name in VARIANTS}
    for _ in range(args.repeats):  # alternated, so that drift in the machine hits every variant alike
        for name, env in VARIANTS.items():
            times[name].append(one_run(env, args.depth, args.examples, args.epochs))
    print(f"machine: {machine()}; plain_net {args.depth} layers, {args.examples} images, {args.epochs} epochs, "
          f"1 thread, {args.repeats} alternated runs each\n")
    base = statistics.median(times["TensorFlow's default here"])
    print("| kernels | ms per SGD step (runs) | against the default |\n|---|---|---:|")
    for name, runs in times.items():
        shown = ", ".join(f"{1000 * t:.0f}" for t in runs)
        print(f"| {name} | {1000 * statistics.median(runs):.0f} ({shown}) | {statistics.median(runs) / base:.2f}x |")


if __name__ == "__main__":
    main()

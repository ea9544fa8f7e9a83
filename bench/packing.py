"""Trials per hour: K small trials packed into one compiled program vs one at a time.

The init study's MLP (5 x 100 ReLU, He normal, plain SGD at its three learning rates, batch
128, 10,000 Fashion-MNIST images, validation every epoch, one test evaluation), K trials with
seeds 0..K-1. "one at a time" is the existing standard path (`run_trial`: seed_sample, the
standard procedure with its reused compiled model, no probes); "packed" is
`suite.techniques.standard.packed.train_pack` on the same K trials. Alternated, several
repeats in one run, so load on the machine hits both alike; a warm-up of each comes first
(tracing, as a study's first trial pays it once per process). Also the achieved GFLOP/s of the
training steps (3 x forward FLOPs per image) against bench/flops.py's measured matmul peak.

    python bench/packing.py [--members 8] [--epochs 3] [--repeats 3]

Measured 2026-12-02 on the 2-core development machine while it was loaded by other jobs
(load average 8-12), K = 8, 3 epochs, defaults otherwise; ratios from the same run:
TensorFlow: one at a time 18.9 s per 8 trials (1,520 trials/h), packed 7.8 s (3,699 trials/h),
2.43x; step 3.2 ms per trial vs 22.9 ms per pack of 8 (28 vs 32 GFLOP/s, peak 89).
JAX (KERAS_BACKEND=jax, 2 repeats): 6.2 s vs 6.1 s per 8 trials, 1.00x; step 1.7 ms per trial vs
18.9 ms per pack of 8 (55 vs 39 GFLOP/s, peak 92). On this CPU one trial's matmuls already
reach 30-60% of the peak: packing saves the per-trial fixed costs (TensorFlow's are large),
not compute; a pack of one steps as fast as Keras (1.6 ms on JAX), a pack of 8 at 2.4 ms per member.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._timing import machine  # noqa: E402
from bench.flops import matmul_peak  # noqa: E402
from suite.core.backend import import_keras  # noqa: E402

keras = import_keras()

from suite.core.datasets import load_dataset  # noqa: E402
from suite.core.device import device_settings  # noqa: E402
from suite.core.runner import run_trial  # noqa: E402
from suite.techniques.architectures.classic import count_flops  # noqa: E402
from suite.techniques.architectures.families import build_model  # noqa: E402
from suite.techniques.standard.packed import train_pack  # noqa: E402

CONFIG = {"family": "mlp", "depth": 5, "width": 100, "activation": "relu", "kernel_initializer": "he_normal",
          "optimizer": "sgd", "batch_size": 128, "train_examples": 10000, "dataset": "fashion_mnist"}
RATES = (0.1, 0.03, 0.01)  # the init study's grid


def trials(members: int, epochs: int) -> tuple[list[dict], list[int]]:
    configs = [{**CONFIG, "epochs": epochs, "learning_rate": RATES[i % len(RATES)]} for i in range(members)]
    return configs, list(range(members))


def one_at_a_time(configs, seeds, data) -> tuple[float, list[dict]]:
    started = time.perf_counter()
    outcomes = [run_trial(config, seed, (), data) for config, seed in zip(configs, seeds)]
    return time.perf_counter() - started, outcomes


def packed(configs, seeds, data) -> tuple[float, list[dict]]:
    started = time.perf_counter()
    outcomes = train_pack(configs, seeds, data)
    return time.perf_counter() - started, outcomes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=8, help="K: trials per pack")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--size", type=int, default=1024, help="matmul size for the peak")
    args = parser.parse_args()
    settings = device_settings()
    data = load_dataset("fashion_mnist")
    configs, seeds = trials(args.members, args.epochs)
    forward = count_flops(build_model(configs[0], data.input_shape, data.num_classes))
    warm = trials(args.members, 1)
    one_at_a_time(warm[0][:1], warm[1][:1], data)  # warm-up: imports, the standard path's first trace
    packed(*warm, data)  # the packed program's first trace (full and last partial batch)
    seconds = {"one at a time": [], "packed": []}
    steps = {"one at a time": [], "packed": []}  # seconds per training step (per trial's step / per pack's step)
    for _ in range(args.repeats):  # alternated
        spent, outcomes = packed(configs, seeds, data)
        assert all(o["status"] == "ok" for o in outcomes), [o["message"] for o in outcomes]
        seconds["packed"].append(spent)
        steps["packed"].append(outcomes[0]["timing"]["pack_step_seconds"])
        spent, outcomes = one_at_a_time(configs, seeds, data)
        assert all(o["status"] == "ok" for o in outcomes), [o["message"] for o in outcomes]
        seconds["one at a time"].append(spent)
        steps["one at a time"].append(statistics.median(o["timing"]["step_seconds"] for o in outcomes))
    packed_accuracy = [o["final"]["test_accuracy"] for o in train_pack(configs, seeds, data)]
    alone_accuracy = [o["final"]["test_accuracy"] for o in one_at_a_time(configs, seeds, data)[1]]
    peak = matmul_peak(args.size)

    print(f"Machine: {machine()}; device {settings['device']}, backend {keras.config.backend()}")
    print(f"K = {args.members} trials of the init MLP, {args.epochs} epochs, {CONFIG['train_examples']} images, "
          f"batch {CONFIG['batch_size']}; {args.repeats} alternated repeats")
    print(f"Measured matmul peak ({args.size}x{args.size}, float32): {peak / 1e9:.1f} GFLOP/s\n")
    print("| path | wall s per K trials (median; all) | trials per hour | step time | achieved GFLOP/s (share of peak) |")
    print("|---|---:|---:|---:|---:|")
    rate = {}
    for name in seconds:
        median = statistics.median(seconds[name])
        rate[name] = args.members / median * 3600
        step = statistics.median(steps[name])
        images = CONFIG["batch_size"] * (args.members if name == "packed" else 1)
        achieved = 3 * forward * images / step
        runs = ", ".join(f"{s:.1f}" for s in seconds[name])
        label = "per pack of K" if name == "packed" else "per trial"
        print(f"| {name} | {median:.1f} ({runs}) | {rate[name]:,.0f} | {step * 1e3:.1f} ms {label} | "
              f"{achieved / 1e9:.2f} ({achieved / peak:.1%}) |")
    print(f"\nRatio packed / one at a time (trials per hour): {rate['packed'] / rate['one at a time']:.2f}x")
    print("Test accuracy per seed, packed (explicit epoch order) vs one at a time (Keras' shuffle): "
          + ", ".join(f"{p:.3f}/{a:.3f}" for p, a in zip(packed_accuracy, alone_accuracy)))


if __name__ == "__main__":
    main()

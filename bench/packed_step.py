"""How close a packed training step comes to its own matmuls, on one thread (what each worker has).

One pack of the init study's MLP (5 x 100, batch 128, `--members` members) trains an epoch of
`--examples` images, with and without XLA; the same step's matmuls alone (forward, and backward
to the weights and to every layer's input but the first, as autodiff runs them) are timed as
batched einsums. The ratio step / matmuls is what any further work on the packed program could
still win; the packing ratio of bench/packing.py cannot exceed (unpacked trial time) / (matmul time).
Each matmul shape is also timed alone against one core's peak (a 2048 x 2048 matmul on the same
thread): the members' matmuls are many small ones (batch 128, width 100), and how fast the
kernels run those is what bounds the step.

    python bench/packed_step.py [--members 9] [--examples 20000] [--activation relu]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._timing import best_seconds, machine  # noqa: E402
from bench.flops import matmul_peak  # noqa: E402
from suite.core.backend import import_keras  # noqa: E402

keras = import_keras()

import suite.core.device as device  # noqa: E402
from suite.core.datasets import load_dataset  # noqa: E402
from suite.core.plugins import load_plugins  # noqa: E402
from suite.techniques.standard import pack_program, packed  # noqa: E402

load_plugins()
LAYERS = [(784, 100), (100, 100), (100, 100), (100, 100), (100, 100), (100, 10)]
BATCH = 128


def epoch_seconds(members: int, examples: int, activation: str, xla: bool, data) -> tuple[float, int]:
    """Best of two epochs (after one that traces) of a fresh pack; and its steps per epoch."""
    device.jit_compile = lambda: xla  # what --xla on/off sets; read when the program compiles
    pack_program._PROGRAMS.clear()
    config = {"family": "mlp", "depth": 5, "width": 100, "activation": activation, "kernel_initializer": "he_normal",
              "optimizer": "sgd", "learning_rate": 0.01, "batch_size": BATCH, "train_examples": examples, "epochs": 3,
              "dataset": "fashion_mnist"}
    pack = packed.PackedMLP([config] * members, list(range(members)), data)
    pack.train_epoch()
    results = [pack.train_epoch() for _ in range(2)]
    return min(r.seconds for r in results), results[0].step_losses.shape[1]


def matmul_seconds(members: int) -> tuple[float, float]:
    """Best time of one step's matmuls alone, and their FLOPs."""
    import tensorflow as tf

    weights = [tf.random.normal((members, i, o)) for i, o in LAYERS]
    inputs = [tf.random.normal((members, BATCH, i)) for i, _ in LAYERS]
    grads = [tf.random.normal((members, BATCH, o)) for _, o in LAYERS]

    @tf.function
    def step(weights, inputs, grads):
        out = []
        for k, (w, x, g) in enumerate(zip(weights, inputs, grads)):
            out.append(tf.einsum("mbi,mio->mbo", x, w))  # forward
            out.append(tf.einsum("mbi,mbo->mio", x, g))  # gradient of the weights
            if k:  # gradient of the layer's input (none for the images)
                out.append(tf.einsum("mbo,mio->mbi", g, w))
        return [tf.reduce_sum(o) for o in out]

    best = best_seconds(lambda: [o.numpy() for o in step(weights, inputs, grads)], 30)
    flops = members * BATCH * 2 * sum(i * o * (3 if k else 2) for k, (i, o) in enumerate(LAYERS))
    return best, flops


def shape_rates(members: int, xla: bool) -> list[tuple[str, float, float, float]]:
    """Per layer shape: GFLOP/s of the forward, weight-gradient and input-gradient einsums alone,
    one call each (the cost of an empty call subtracted; the result stays a tensor, uncopied)."""
    import tensorflow as tf

    empty_call = tf.function(lambda a, b: a[0, 0, 0] + b[0, 0, 0], jit_compile=xla)
    zero = tf.zeros((1, 1, 1))
    empty = best_seconds(lambda: empty_call(zero, zero), 50)
    rows = []
    for i, o in dict.fromkeys(LAYERS):
        x, w, g = (tf.random.normal(shape) for shape in ((members, BATCH, i), (members, i, o), (members, BATCH, o)))
        rates = []
        for equation, a, b in (("mbi,mio->mbo", x, w), ("mbi,mbo->mio", x, g), ("mbo,mio->mbi", g, w)):
            einsum = tf.function(lambda a, b, equation=equation: tf.einsum(equation, a, b), jit_compile=xla)
            seconds = best_seconds(lambda einsum=einsum, a=a, b=b: einsum(a, b), 50) - empty
            rates.append(2 * members * BATCH * i * o / max(seconds, 1e-9) / 1e9)
        rows.append((f"{i} x {o}", *rates))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=9)
    parser.add_argument("--examples", type=int, default=20000)
    parser.add_argument("--activation", default="relu")
    args = parser.parse_args()
    if keras.config.backend() != "tensorflow":
        raise SystemExit("bench/packed_step.py times the TensorFlow program (the CPU backend)")
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    data = load_dataset("fashion_mnist")
    matmuls, flops = matmul_seconds(args.members)
    peak = matmul_peak(2048) / 1e9
    print(machine())
    print(f"One thread; a pack of {args.members} members of the init MLP (5 x 100, {args.activation}), "
          f"batch {BATCH}, {args.examples:,} images per epoch; one core's matmul peak (2048 x 2048): "
          f"{peak:.0f} GFLOP/s\n")
    print("| program | step ms | share of the step spent in its matmuls | GFLOP/s (share of the core's peak) |")
    print("|---|---:|---:|---:|")
    rate = flops / matmuls / 1e9
    print(f"| the step's matmuls alone | {matmuls * 1e3:.2f} | 100% | {rate:.1f} ({rate / peak:.0%}) |")
    for xla in (False, True):
        seconds, steps = epoch_seconds(args.members, args.examples, args.activation, xla, data)
        step = seconds / steps
        rate = flops / step / 1e9
        print(f"| packed, XLA {'on' if xla else 'off'} | {step * 1e3:.2f} | {matmuls / step:.0%} | "
              f"{rate:.1f} ({rate / peak:.0%}) |")
    for xla in (False, True):
        print(f"\nEach matmul of the step alone, XLA {'on' if xla else 'off'} (GFLOP/s; share of the core's peak):\n")
        print("| layer (in x out) | forward | weight gradient | input gradient |")
        print("|---|---:|---:|---:|")
        for shape, *rates in shape_rates(args.members, xla):
            print(f"| {shape} | " + " | ".join(f"{r:.0f} ({r / peak:.0%})" for r in rates) + " |")


if __name__ == "__main__":
    main()

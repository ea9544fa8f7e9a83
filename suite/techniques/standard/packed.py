"""packed: many small `mlp` trials trained together as members of one compiled program.

Not yet used by the runner (issue "Many small trials in one compiled program" is open): this
is the trainer, its equality tests and `bench/packing.py`; wiring it in needs packs formed by
the plan, probes per member (`member_model`) and the explicit epoch order in `standard`.

Trials that differ only in value settings (seed, learning rate, initializers) train as the
members of one pack: every weight gets a leading member axis, a dense layer is one batched
`einsum`, and one compiled function runs a whole epoch for all members (`fori_loop` over the
steps). Each member keeps what makes it its own trial:

- initial weights: the member's Keras model is built exactly as `standard` builds it
  (`keras.utils.set_random_seed(seed)`, then the family), and its values are stacked;
- data: the training subset `seed_sample(data, seed)` draws (the first `train_examples` images
  of the seed's order of the pool), visited each epoch in an explicit order, `epoch_order(seed,
  epoch, n)`. Keras' own per-epoch shuffle inside `fit` (what `standard` uses) cannot be
  reproduced outside Keras, so a packed member equals the unpacked trial only when the
  unpacked path visits the same explicit order: `train_alone` below is that path (Keras'
  `fit` per epoch on the pre-ordered images, `shuffle=False`);
- learning rate and optimizer state: SGD, SGD with momentum and Nesterov's variant, with a
  learning-rate vector over members and a velocity per member, updated in the same operation
  order as Keras' `SGD.update_step`;
- divergence: a member whose batch loss is non-finite stops counting from that step on (its
  updates are masked with `where`, so NaN never reaches the other members' numbers) and ends
  `diverged`, as the standard divergence guard would; the others train on.

Per member it returns the outcome `standard` returns (history rows 0..epochs with train_loss,
train_accuracy, val_loss, val_accuracy; final metrics with test_loss and test_accuracy),
without probes (see `member_model` for running them). Supported: `mlp` with a Keras
elementwise activation, norm `none`, `batchnorm` or `batchnorm_after` (per-member batch
statistics and moving averages), l2, optimizers `sgd` (with `momentum`), `momentum`,
`nesterov`. Refused (ValueError): dropout, prelu/maxout, layernorm, other optimizers,
augmentation, data views. TensorFlow (tf.function) and JAX (jax.jit) backends; both through
the same `keras.ops` code, only the gradient call differs.

Self-contained: nothing in the runner or plan calls this module yet.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass

import numpy as np

from suite.core.backend import import_keras
from suite.core.datasets import Dataset, seed_sample
from suite.core.fit import DIVERGED, EVAL_BATCH, OK, TIMEOUT, TrialContext, finite_or_none, outcome
from suite.core.keys import derive_seed
from suite.techniques.architectures.families import MODEL_DEFAULTS, build_model

keras = import_keras()
ops = keras.ops

# Settings that may differ between the members of one pack: they change values, never the
# computation. Everything else in the configs must be equal (see `pack_signature`).
PACKABLE_KEYS = ("kernel_initializer", "bias_initializer", "learning_rate")
# optimizer name -> (momentum or None for the config's, nesterov)
OPTIMIZERS = {"sgd": (None, False), "momentum": (0.9, False), "nesterov": (0.9, True)}
NORMS = ("none", "batchnorm", "batchnorm_after")
BN_MOMENTUM, BN_EPSILON = 0.99, 1e-3  # Keras' BatchNormalization defaults, which the family uses


def pack_signature(config: dict) -> str:
    """Trials whose configs have the same signature can be members of one pack."""
    return json.dumps({k: v for k, v in config.items() if k not in PACKABLE_KEYS}, sort_keys=True, default=str)


def sample_indices(seed: int, pool: int, n: int) -> np.ndarray:
    """The pool indices of the first `n` images `seed_sample(data, seed)` puts in x_train
    (the same draw, without copying the pool)."""
    return np.random.default_rng(derive_seed(seed, "train_sample")).permutation(pool)[:n]


def epoch_order(seed: int, epoch: int, n: int) -> np.ndarray:
    """The explicit order a member visits its `n` training images in epoch `epoch` (1-based)."""
    return np.random.default_rng(derive_seed(seed, f"epoch_order_{epoch}")).permutation(n)


def check_packable(configs: list[dict]) -> None:
    """Raise ValueError unless `configs` can train as one pack."""
    if not configs:
        raise ValueError("a pack needs at least one member")
    signatures = {pack_signature(c) for c in configs}
    if len(signatures) > 1:
        raise ValueError("pack members differ in more than " + ", ".join(PACKABLE_KEYS))
    config = {**MODEL_DEFAULTS, **configs[0]}
    problems = []
    if config["family"] != "mlp":
        problems.append(f"family {config['family']} (only mlp)")
    if config.get("procedure", "standard") != "standard":
        problems.append(f"procedure {config['procedure']}")
    if config.get("optimizer") not in OPTIMIZERS:
        problems.append(f"optimizer {config.get('optimizer')} (only {', '.join(OPTIMIZERS)})")
    if config["norm"] not in NORMS:
        problems.append(f"norm {config['norm']}")
    if config["dropout"]:
        problems.append("dropout (a per-member mask stream would not equal Keras' draws)")
    if config.get("augmentation", "none") != "none" or "data_view" in config:
        problems.append("augmentation or data view")
    try:
        activation = keras.activations.get(config["activation"])
    except (ValueError, TypeError):
        activation = None
    if activation is None or config["activation"] in ("prelu", "maxout", "softmax", "log_softmax"):
        problems.append(f"activation {config['activation']} (only Keras' elementwise ones)")
    if problems:
        raise ValueError("cannot pack: " + "; ".join(problems))


@dataclass
class EpochResult:
    step_losses: np.ndarray  # (members, steps): each step's batch loss, before that step's update
    step_correct: np.ndarray  # (members, steps): correct predictions in each step's batch
    batch_sizes: np.ndarray  # (steps,)
    alive: np.ndarray  # (members,) bool, after the epoch
    seconds: float


class PackedMLP:
    """The members' weights, stacked, and the compiled functions that train and evaluate them."""

    def __init__(self, configs: list[dict], seeds: list[int], data: Dataset):
        check_packable(configs)
        self.configs, self.seeds, self.data = [dict(c) for c in configs], list(seeds), data
        config = {**MODEL_DEFAULTS, **configs[0]}
        self.members = len(configs)
        self.depth, self.norm = int(config["depth"]), config["norm"]
        self.batch_size, self.n = int(config["batch_size"]), int(config["train_examples"])
        momentum, self.nesterov = OPTIMIZERS[config["optimizer"]]
        self.momentum = float(config.get("momentum", 0.0) if momentum is None else momentum)
        self.learning_rates = ops.convert_to_tensor(np.array([c["learning_rate"] for c in configs], "float32"))
        self.models = [self._fresh_model(c, s) for c, s in zip(configs, seeds)]
        self.parameters = int(self.models[0].count_params())
        self.params, self.stats = self._stack(self.models)
        self.velocity = [ops.zeros_like(p) for p in self.params] if self.momentum else []
        self.alive = ops.convert_to_tensor(np.ones(self.members, bool))
        pool = data.x_train.reshape(len(data.x_train), -1)
        self.pool_x, self.pool_y = ops.convert_to_tensor(pool), ops.convert_to_tensor(data.y_train.astype("int32"))
        self.subsets = np.stack([sample_indices(s, len(pool), self.n) for s in seeds])  # (members, n)
        self.epochs_done = 0
        self.program = program_for(self.members, self.depth, self.norm, config["activation"], float(config["l2"]),
                                   self.momentum, self.nesterov)

    # ---- building ------------------------------------------------------------------------
    def _fresh_model(self, config: dict, seed: int) -> keras.Model:
        """The member's model as `standard` builds it: same seed, same draws, same weights."""
        keras.utils.set_random_seed(seed)
        return build_model(config, self.data.input_shape, self.data.num_classes)

    def _layer_names(self) -> list[tuple[str, str | None]]:
        return [(f"dense_{i}", f"norm_{i}" if self.norm != "none" else None) for i in range(1, self.depth + 1)]

    def _stack(self, models) -> tuple[list, list]:
        """Trainable tensors [W1, b1, (gamma1, beta1), ..., W_head, b_head] and batch-norm
        moving statistics [mean1, var1, ...], each with a leading member axis."""
        params, stats = [], []
        for dense, norm in self._layer_names():
            layers = [m.get_layer(dense) for m in models]
            params += [np.stack([ops.convert_to_numpy(layer.kernel) for layer in layers]),
                       np.stack([ops.convert_to_numpy(layer.bias) for layer in layers])]
            if norm:
                bns = [m.get_layer(norm) for m in models]
                params += [np.stack([ops.convert_to_numpy(getattr(b, name)) for b in bns]) for name in ("gamma", "beta")]
                stats += [np.stack([ops.convert_to_numpy(getattr(b, name)) for b in bns])
                          for name in ("moving_mean", "moving_variance")]
        heads = [m.get_layer("head") for m in models]
        params += [np.stack([ops.convert_to_numpy(h.kernel) for h in heads]),
                   np.stack([ops.convert_to_numpy(h.bias) for h in heads])]
        return [ops.convert_to_tensor(p) for p in params], [ops.convert_to_tensor(s) for s in stats]

    def member_model(self, member: int) -> keras.Model:
        """The member's Keras model holding its current weights (for probes, saving, checks)."""
        model = self.models[member]
        params = [ops.convert_to_numpy(p[member]) for p in self.params]
        stats = [ops.convert_to_numpy(s[member]) for s in self.stats]
        for dense, norm in self._layer_names():
            layer = model.get_layer(dense)
            layer.kernel.assign(params.pop(0))
            layer.bias.assign(params.pop(0))
            if norm:
                bn = model.get_layer(norm)
                bn.gamma.assign(params.pop(0))
                bn.beta.assign(params.pop(0))
                bn.moving_mean.assign(stats.pop(0))
                bn.moving_variance.assign(stats.pop(0))
        model.get_layer("head").kernel.assign(params.pop(0))
        model.get_layer("head").bias.assign(params.pop(0))
        return model

    # ---- driving -------------------------------------------------------------------------
    def epoch_batches(self, epoch: int) -> np.ndarray:
        """(members, n) pool indices in the order each member visits them in `epoch`."""
        return np.stack([subset[epoch_order(seed, epoch, self.n)] for subset, seed in zip(self.subsets, self.seeds)])

    def train_epoch(self) -> EpochResult:
        """One epoch for every member; full batches in one compiled loop, the last partial
        batch (as Keras makes it) in a second."""
        started = time.perf_counter()
        self.epochs_done += 1
        order = self.epoch_batches(self.epochs_done).astype("int32")
        full, rest = divmod(self.n, self.batch_size)
        chunks = [order[:, :full * self.batch_size].reshape(self.members, full, self.batch_size)] if full else []
        if rest:
            chunks.append(order[:, full * self.batch_size:].reshape(self.members, 1, rest))
        losses, correct, sizes = [], [], []
        for chunk in chunks:
            params, velocity, stats, alive, step_losses, step_correct = self.program.train(
                self.params, self.velocity, self.stats, self.alive, self.learning_rates, ops.convert_to_tensor(chunk),
                self.pool_x, self.pool_y)
            self.params, self.velocity, self.stats, self.alive = list(params), list(velocity), list(stats), alive
            losses.append(ops.convert_to_numpy(step_losses))
            correct.append(ops.convert_to_numpy(step_correct))
            sizes += [chunk.shape[2]] * chunk.shape[1]
        return EpochResult(np.concatenate(losses, axis=1), np.concatenate(correct, axis=1), np.array(sizes),
                           ops.convert_to_numpy(self.alive).astype(bool), time.perf_counter() - started)

    def evaluate(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        """Per-member (loss, accuracy) on the validation or test split, EVAL_BATCH images a call."""
        x, y = (self.data.x_val, self.data.y_val) if split == "val" else (self.data.x_test, self.data.y_test)
        x, y = x.reshape(len(x), -1), y.astype("int32")
        loss, correct = np.zeros(self.members), np.zeros(self.members)
        for start in range(0, len(x), EVAL_BATCH):
            chunk = slice(start, start + EVAL_BATCH)
            batch_loss, batch_correct = self.program.eval(self.params, self.stats, ops.convert_to_tensor(x[chunk]),
                                                          ops.convert_to_tensor(y[chunk]))
            loss += ops.convert_to_numpy(batch_loss)
            correct += ops.convert_to_numpy(batch_correct)
        if self.program.l2:
            loss += len(x) * ops.convert_to_numpy(self.program.penalty(self.params))
        return loss / len(x), correct / len(x)


class _Program:
    """The computation of one pack shape: keras.ops only, so it runs under tf.function and
    jax.jit alike. It holds structure, never values, so packs of the same structure share
    one program and its traces (`program_for`)."""

    def __init__(self, members: int, depth: int, norm: str, activation: str, l2: float, momentum: float,
                 nesterov: bool):
        self.members, self.depth, self.norm, self.l2 = members, depth, norm, l2
        self.activation, self.momentum, self.nesterov = keras.activations.get(activation), momentum, nesterov
        self.train = _compile(self._train_steps)
        self.eval = _compile(self._eval_batch)

    def _forward(self, params, stats, x, training: bool):
        """Probabilities (members, batch, classes) and, in training, the batch statistics.
        `x` is (members, batch, features), or (batch, features) shared by all members."""
        h, new_stats, p, s = x, [], list(params), list(stats)
        for _ in range(self.depth):
            kernel, bias = p.pop(0), p.pop(0)
            equation = "mbi,mio->mbo" if len(h.shape) == 3 else "bi,mio->mbo"
            h = ops.add(ops.einsum(equation, h, kernel), bias[:, None, :])  # Keras Dense: matmul, then add
            if self.norm == "none":
                h = self.activation(h)
                continue
            gamma, beta, mean, variance = p.pop(0), p.pop(0), s.pop(0), s.pop(0)
            if self.norm == "batchnorm_after":
                h = self.activation(h)
            if training:  # per-member batch statistics, as each member's own BatchNormalization
                batch_mean, batch_var = ops.moments(h, axes=[1], keepdims=False)
                new_stats += [ops.add(ops.multiply(mean, BN_MOMENTUM), ops.multiply(batch_mean, 1.0 - BN_MOMENTUM)),
                              ops.add(ops.multiply(variance, BN_MOMENTUM), ops.multiply(batch_var, 1.0 - BN_MOMENTUM))]
                mean, variance = batch_mean, batch_var
            h = ops.batch_normalization(h, mean[:, None, :], variance[:, None, :], axis=-1,
                                        offset=beta[:, None, :], scale=gamma[:, None, :], epsilon=BN_EPSILON)
            if self.norm == "batchnorm":
                h = self.activation(h)
        kernel, bias = p.pop(0), p.pop(0)
        equation = "mbi,mio->mbo" if len(h.shape) == 3 else "bi,mio->mbo"
        logits = ops.add(ops.einsum(equation, h, kernel), bias[:, None, :])
        return keras.activations.softmax(logits), new_stats  # softmax keeps its logits for the loss, as in Keras

    def penalty(self, params):
        """Keras' L2 regularizer on every hidden kernel: l2 * sum(W^2), per member."""
        kernels = [params[i * (4 if self.norm != "none" else 2)] for i in range(self.depth)]
        return ops.sum(ops.stack([ops.sum(ops.square(k), axis=(1, 2)) for k in kernels]), axis=0) * self.l2

    def _member_losses(self, params, stats, x, y):
        """Per-member mean batch loss (members,), correct counts and new moving statistics."""
        probs, new_stats = self._forward(params, stats, x, training=True)
        losses = ops.mean(ops.sparse_categorical_crossentropy(y, probs), axis=1)
        if self.l2:
            losses = ops.add(losses, self.penalty(params))
        correct = ops.sum(ops.cast(ops.equal(ops.cast(ops.argmax(probs, axis=-1), "int32"), y), "float32"), axis=1)
        return losses, (correct, new_stats)

    def _train_steps(self, params, velocity, stats, alive, learning_rates, batches, pool_x, pool_y):
        """All steps of `batches` (members, steps, batch) pool indices; returns the new state
        and the per-step losses and correct counts (members, steps)."""
        steps = batches.shape[1]
        members = self.members
        grad = _value_and_grad(self._member_losses)
        step_ids = ops.arange(steps)[None, :]

        def body(i, carry):
            params, velocity, stats, alive, step_losses, step_correct = carry
            index = batches[:, i, :]
            x, y = ops.take(pool_x, index, axis=0), ops.take(pool_y, index, axis=0)
            losses, (correct, new_stats), grads = grad(params, stats, x, y)
            counting = ops.logical_and(alive, ops.isfinite(losses))
            new_params, new_velocity = [], []
            for k, (p, g) in enumerate(zip(params, grads)):
                shape = (members,) + (1,) * (len(p.shape) - 1)
                rate, keep = ops.reshape(learning_rates, shape), ops.reshape(counting, shape)
                if self.momentum:  # Keras SGD.update_step, operation for operation
                    v = ops.subtract(ops.multiply(velocity[k], self.momentum), ops.multiply(g, rate))
                    if self.nesterov:
                        step = ops.subtract(ops.multiply(v, self.momentum), ops.multiply(g, rate))
                    else:
                        step = v
                    new_velocity.append(ops.where(keep, v, velocity[k]))
                    updated = ops.add(p, step)
                else:
                    updated = ops.subtract(p, ops.multiply(g, rate))
                new_params.append(ops.where(keep, updated, p))
            stats = [ops.where(ops.reshape(counting, (members, 1)), new, old) for new, old in zip(new_stats, stats)]
            here = ops.equal(step_ids, i)
            step_losses = ops.where(here, losses[:, None], step_losses)
            step_correct = ops.where(here, correct[:, None], step_correct)
            return new_params, new_velocity, stats, counting, step_losses, step_correct

        zeros = ops.zeros((members, steps), "float32")
        carry = (list(params), list(velocity), list(stats), alive, zeros, zeros)
        return ops.fori_loop(0, steps, body, carry)

    def _eval_batch(self, params, stats, x, y):
        """Summed loss and correct count per member over one evaluation batch shared by all."""
        probs, _ = self._forward(params, stats, x, training=False)
        targets = ops.broadcast_to(y[None, :], (self.members, y.shape[0]))
        losses = ops.sparse_categorical_crossentropy(targets, probs)
        correct = ops.cast(ops.equal(ops.cast(ops.argmax(probs, axis=-1), "int32"), targets), "float32")
        return ops.sum(losses, axis=1), ops.sum(correct, axis=1)


_PROGRAMS: dict[tuple, _Program] = {}
MAX_PROGRAMS = 8


def program_for(*structure) -> _Program:
    """The compiled program for this structure, built once per process (tracing a fresh one
    costs about as much as a small trial's epoch)."""
    if structure not in _PROGRAMS:
        if len(_PROGRAMS) >= MAX_PROGRAMS:
            _PROGRAMS.pop(next(iter(_PROGRAMS)))
        _PROGRAMS[structure] = _Program(*structure)
    return _PROGRAMS[structure]


def _compile(function):
    """tf.function (XLA as the suite's device settings say) or jax.jit."""
    if keras.config.backend() == "jax":
        import jax

        return jax.jit(function)
    if keras.config.backend() != "tensorflow":
        raise NotImplementedError(f"packed training runs on TensorFlow and JAX, not {keras.config.backend()}")
    import tensorflow as tf

    from suite.core.device import jit_compile

    xla = jit_compile()
    if xla == "auto":
        xla = bool(tf.config.list_physical_devices("GPU"))
    return tf.function(function, jit_compile=xla)


def _value_and_grad(member_losses):
    """(losses, aux, gradients of sum(losses) w.r.t. params). The members are independent, so
    each member's gradient is that of its own loss; a non-finite loss never leaks across."""
    if keras.config.backend() == "jax":
        import jax

        def total(params, stats, x, y):
            losses, aux = member_losses(params, stats, x, y)
            return ops.sum(losses), (losses, aux)

        def grad(params, stats, x, y):
            (_, (losses, aux)), grads = jax.value_and_grad(total, has_aux=True)(params, stats, x, y)
            return losses, aux, grads

        return grad
    import tensorflow as tf

    def grad(params, stats, x, y):
        with tf.GradientTape() as tape:
            tape.watch(params)
            losses, aux = member_losses(params, stats, x, y)
            total = ops.sum(losses)
        return losses, aux, tape.gradient(total, params)

    return grad


def train_pack(configs: list[dict], seeds: list[int], data: Dataset,
               contexts: list[TrialContext] | None = None) -> list[dict]:
    """Train the trials (configs[i], seeds[i]) as one pack on the unsampled pool `data` (what
    `run_trial` receives); one outcome per member, in the format `standard` returns."""
    contexts = contexts or [TrialContext() for _ in configs]
    started = time.perf_counter()
    pack = PackedMLP(configs, seeds, data)
    epochs = int(configs[0]["epochs"])
    rows = [[{"epoch": 0}] for _ in configs]
    status = [OK] * pack.members
    messages = [""] * pack.members
    train_seconds, step_seconds = 0.0, []
    limit = min((c.time_limit for c in contexts if c.time_limit), default=None)
    for epoch in range(1, epochs + 1):
        result = pack.train_epoch()
        train_seconds += result.seconds
        if epoch > 1 or epochs == 1:  # the first epoch traces
            step_seconds.append(result.seconds / result.step_losses.shape[1])
        val_loss, val_accuracy = pack.evaluate("val")
        for m in range(pack.members):
            if status[m] != OK:
                continue
            losses = result.step_losses[m]
            bad = np.flatnonzero(~np.isfinite(losses))
            upto = bad[0] + 1 if len(bad) else len(losses)  # a diverged member counted up to its last step
            sizes = result.batch_sizes[:upto]
            train_loss = float(np.sum(losses[:upto].astype("float64") * sizes) / np.sum(sizes))
            train_accuracy = float(np.sum(result.step_correct[m, :upto]) / np.sum(sizes))
            rows[m].append({"epoch": epoch, "train_loss": train_loss, "train_accuracy": train_accuracy,
                            "val_loss": float(val_loss[m]), "val_accuracy": float(val_accuracy[m])})
            if len(bad):
                status[m], messages[m] = DIVERGED, f"non-finite loss in epoch {epoch}"
            contexts[m].epochs_done += 1
            if contexts[m].on_epoch is not None:
                contexts[m].on_epoch(contexts[m].epochs_done, max(contexts[m].planned_epochs, epochs))
        if limit and time.perf_counter() - started > limit and epoch < epochs:
            for m in range(pack.members):
                if status[m] == OK:
                    status[m], messages[m] = TIMEOUT, f"stopped after {limit:g} s (--trial-timeout), in epoch {epoch}"
            break
        if not any(s == OK for s in status):
            break
    test_loss, test_accuracy = pack.evaluate("test")
    outcomes = []
    step = float(np.median(step_seconds)) if step_seconds else float("nan")
    for m in range(pack.members):
        history = [{k: finite_or_none(v) for k, v in row.items()} for row in rows[m]]
        final = {k: _finite_or_nan(v) for k, v in history[-1].items() if k != "epoch"}
        final.update(test_loss=_finite_or_nan(test_loss[m]), test_accuracy=_finite_or_nan(test_accuracy[m]))
        final["dev_test_gap"] = abs(final.get("val_accuracy", float("nan")) - final["test_accuracy"])
        contexts[m].started = started
        outcomes.append(outcome(contexts[m], status[m], history, final, messages[m],
                                train_seconds=train_seconds, pack_size=pack.members, pack_step_seconds=step,
                                steps_per_epoch=math.ceil(pack.n / pack.batch_size), parameters=pack.parameters))
    return outcomes


def _finite_or_nan(value) -> float:
    value = float("nan") if value is None else float(value)
    return value if math.isfinite(value) else float("nan")


def train_alone(config: dict, seed: int, data: Dataset) -> list[dict]:
    """The unpacked reference: the trial trained by Keras' own `fit` (the standard procedure's
    model, optimizer and compile settings) on the same explicit per-epoch order a packed member
    visits (`epoch_order`), one `fit` per epoch with `shuffle=False`. History rows as
    `train_pack` records them (epoch 0 empty; no probes), test metrics in the last row."""
    from suite.core.fit import compile_model

    keras.utils.set_random_seed(seed)
    sampled = seed_sample(data, seed)
    n = config["train_examples"]
    x, y = sampled.x_train[:n], sampled.y_train[:n]
    model = build_model(config, data.input_shape, data.num_classes)
    compile_model(model, config, "sparse_categorical_crossentropy", ["accuracy"])
    rows = [{"epoch": 0}]
    for epoch in range(1, config["epochs"] + 1):
        order = epoch_order(seed, epoch, n)
        logs = model.fit(x[order], y[order], batch_size=config["batch_size"], epochs=1, shuffle=False, verbose=0,
                         validation_data=(data.x_val, data.y_val), validation_batch_size=EVAL_BATCH).history
        rows.append({"epoch": epoch, "train_loss": logs["loss"][0], "train_accuracy": logs["accuracy"][0],
                     "val_loss": logs["val_loss"][0], "val_accuracy": logs["val_accuracy"][0]})
    test_loss, test_accuracy = model.evaluate(data.x_test, data.y_test, batch_size=EVAL_BATCH, verbose=0)
    rows[-1].update(test_loss=test_loss, test_accuracy=test_accuracy)
    return rows

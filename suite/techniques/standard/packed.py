"""packed: many small `mlp` trials trained together as the members of one compiled program.

Trials that differ only in value settings (seed, learning rate, initializers) train as the
members of one pack: every weight gets a leading member axis, a dense layer is one batched
`einsum`, and one compiled function runs a whole epoch for all members (`fori_loop` over the
steps). Which trials form a pack is fixed by the plan (suite.core.packs, through the
`pack_trainer` registered here); `--no-pack` trains each alone with `standard`. Each member
keeps what makes it its own trial, so it gives the numbers `standard` gives, within float32
rounding (tests/techniques/standard/test_packed.py):

- initial weights: the member's Keras model is built exactly as `standard` builds it
  (`keras.utils.set_random_seed(seed)`, then the family), and its values are stacked;
- data: the training subset `seed_sample(data, seed)` draws, visited each epoch in the explicit
  order `epoch_order(seed, epoch, n)` that `standard` follows too;
- learning rate and optimizer state: SGD, SGD with momentum and Nesterov's variant, with a
  learning-rate vector over members and a velocity per member, updated in the same operation
  order as Keras' `SGD.update_step`;
- divergence: a member whose batch loss is non-finite takes that step as Keras would, then stops
  counting and ends `diverged`, as the standard divergence guard would; the others train on;
- probes: `activation_stats` and `gradient_stats` computed for all members in one compiled
  call each (the same rows, through the probe module's own row builders); any other probe runs
  as its Keras callback on the member's model (`member_model`).

Supported: `mlp` with an elementwise activation, PReLU (its learned slopes are one more stacked
weight per layer) or maxout (the max over the pieces of a wider layer), norm `none`, `batchnorm` or `batchnorm_after`,
l2, optimizers `sgd` (with `momentum`), `momentum`, `nesterov`, the standard procedure without
augmentation or data view. Anything else is not packable and trains alone. TensorFlow
(tf.function) and JAX (jax.jit) backends, through the same `keras.ops` code.

Three rooms: `pack_eligibility` (who may pack with whom), `pack_program` (the compiled
computation of one pack shape), and this module: the members' stacked state (`PackedMLP`),
their probes (`PackProbes`) and the driver (`train_pack`) that turns epochs into records.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from suite.core import registry, step_curve
from suite.core.backend import import_keras
from suite.core.datasets import Dataset, epoch_order, sample_order, seed_sample
from suite.core.fit import DIVERGED, EVAL_BATCH, OK, TIMEOUT, TrialContext, finite_or_nan, finite_or_none, outcome
from suite.core.probe import build_probes
from suite.techniques.architectures.families import HIDDEN_PREFIX, MODEL_DEFAULTS, build_model
from suite.techniques.optimizers.schedules import step_rates
from suite.techniques.probes.activation_stats import activation_rows
from suite.techniques.probes.gradient_stats import gradient_batches, gradient_rows
from suite.techniques.standard.pack_eligibility import OPTIMIZERS, check_packable, packing_key
from suite.techniques.standard.pack_program import program_for
from suite.techniques.standard.procedure import PROBE_EXAMPLES

keras = import_keras()
ops = keras.ops

PACKED_PROBES = ("activation_stats", "gradient_stats")  # computed for all members at once


def sample_indices(seed: int, pool: int, n: int) -> np.ndarray:
    """The pool indices of the first `n` images `seed_sample(data, seed)` puts in x_train
    (the same draw, without copying the pool)."""
    return sample_order(seed, pool)[:n]


_POOL: list = []  # [(x_train array, its (images, features) tensor, labels tensor)]: one dataset per worker


def pool_tensors(data: Dataset) -> tuple:
    """The training pool as tensors: images flattened, labels int32. Kept for the next pack on the
    same pool (converting Fashion-MNIST's 55,000 images copies 172 MB: 0.3 s a pack, measured)."""
    if not _POOL or _POOL[0][0] is not data.x_train:
        x = ops.convert_to_tensor(data.x_train.reshape(len(data.x_train), -1))
        _POOL[:] = [(data.x_train, x, ops.convert_to_tensor(data.y_train.astype("int32")))]
    return _POOL[0][1], _POOL[0][2]


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
        # (members, steps): each member's rate at each step of its schedule, the table Keras reads alone
        total_steps = math.ceil(self.n / self.batch_size) * int(config["epochs"])
        self.step_rates = np.stack([step_rates(c, total_steps) for c in configs])
        self.program = program_for(self.members, self.depth, self.norm, config["activation"], float(config["l2"]),
                                   self.momentum, self.nesterov)
        self.models = [self._fresh_model(c, s) for c, s in zip(configs, seeds)]
        self.parameters = int(self.models[0].count_params())
        self.params, self.stats = self._stack(self.models)
        self.velocity = [ops.zeros_like(p) for p in self.params] if self.momentum else []
        self.alive = ops.convert_to_tensor(np.ones(self.members, bool))
        self.pool_x, self.pool_y = pool_tensors(data)
        self.subsets = np.stack([sample_indices(s, len(data.x_train), self.n) for s in seeds])  # (members, n)
        self.epochs_done = 0

    # ---- building ------------------------------------------------------------------------
    def _fresh_model(self, config: dict, seed: int) -> keras.Model:
        """The member's model as `standard` builds it: same seed, same draws, same weights."""
        keras.utils.set_random_seed(seed)
        return build_model(config, self.data.input_shape, self.data.num_classes)

    def _layer_names(self) -> list[tuple[str, str | None, str | None]]:
        """Per hidden layer: its Dense, its BatchNormalization, its PReLU (None where it has none)."""
        return [(f"dense_{i}", f"norm_{i}" if self.norm != "none" else None,
                 f"{HIDDEN_PREFIX}{i}" if self.program.kind == "prelu" else None) for i in range(1, self.depth + 1)]

    def _stack(self, models) -> tuple[list, list]:
        """Trainable tensors [W1, b1, (gamma1, beta1), (alpha1), ..., W_head, b_head] and batch-norm
        moving statistics [mean1, var1, ...], each with a leading member axis."""
        params, stats = [], []
        for dense, norm, learned in self._layer_names():
            layers = [m.get_layer(dense) for m in models]
            params += [np.stack([ops.convert_to_numpy(layer.kernel) for layer in layers]),
                       np.stack([ops.convert_to_numpy(layer.bias) for layer in layers])]
            if norm:
                bns = [m.get_layer(norm) for m in models]
                params += [np.stack([ops.convert_to_numpy(getattr(b, name)) for b in bns]) for name in ("gamma", "beta")]
                stats += [np.stack([ops.convert_to_numpy(getattr(b, name)) for b in bns])
                          for name in ("moving_mean", "moving_variance")]
            if learned:
                params.append(np.stack([ops.convert_to_numpy(m.get_layer(learned).alpha) for m in models]))
        heads = [m.get_layer("head") for m in models]
        params += [np.stack([ops.convert_to_numpy(h.kernel) for h in heads]),
                   np.stack([ops.convert_to_numpy(h.bias) for h in heads])]
        return [ops.convert_to_tensor(p) for p in params], [ops.convert_to_tensor(s) for s in stats]

    def member_model(self, member: int) -> keras.Model:
        """The member's Keras model holding its current weights (for probes, saving, checks)."""
        model = self.models[member]
        params = [ops.convert_to_numpy(p[member]) for p in self.params]
        stats = [ops.convert_to_numpy(s[member]) for s in self.stats]
        for dense, norm, learned in self._layer_names():
            layer = model.get_layer(dense)
            layer.kernel.assign(params.pop(0))
            layer.bias.assign(params.pop(0))
            if norm:
                bn = model.get_layer(norm)
                bn.gamma.assign(params.pop(0))
                bn.beta.assign(params.pop(0))
                bn.moving_mean.assign(stats.pop(0))
                bn.moving_variance.assign(stats.pop(0))
            if learned:
                model.get_layer(learned).alpha.assign(params.pop(0))
        model.get_layer("head").kernel.assign(params.pop(0))
        model.get_layer("head").bias.assign(params.pop(0))
        return model

    # ---- probes --------------------------------------------------------------------------
    def activation_stats(self, epoch: int, probe_x: np.ndarray, activation: str) -> list[tuple[list, dict]]:
        """`activation_stats` of every member: (rows, columns) each, as the probe's callback gives."""
        x = ops.convert_to_tensor(probe_x.reshape(len(probe_x), -1))
        pres, outs, slopes = (list(map(ops.convert_to_numpy, part)) for part in self.program.probe(self.params,
                                                                                                   self.stats, x))
        names = [f"{HIDDEN_PREFIX}{i}" for i in range(1, self.depth + 1)]
        return [activation_rows(epoch, names, [p[m] for p in pres], [o[m] for o in outs], [d[m] for d in slopes],
                                activation) for m in range(self.members)]

    def gradient_stats(self, epoch: int, probe_x: np.ndarray, probe_y: np.ndarray) -> list[tuple[list, dict]]:
        """`gradient_stats` of every member, averaged over the probe's batches as the callback does."""
        norms = [ops.convert_to_numpy(self.program.gradients(
            self.params, self.stats, ops.convert_to_tensor(xb.reshape(len(xb), -1)),
            ops.convert_to_tensor(yb.astype("int32")))) for xb, yb in gradient_batches(probe_x, probe_y, self.batch_size)]
        mean = np.mean(np.stack(norms).astype("float64"), axis=0)  # (members, depth)
        names = [f"dense_{i}" for i in range(1, self.depth + 1)]
        return [gradient_rows(epoch, names, list(mean[m])) for m in range(self.members)]

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
        step = (self.epochs_done - 1) * (full + bool(rest))  # the run's steps before this epoch
        for chunk in chunks:
            rates = self.step_rates[:, step:step + chunk.shape[1]]
            step += chunk.shape[1]
            params, velocity, stats, alive, step_losses, step_correct = self.program.train(
                self.params, self.velocity, self.stats, self.alive, ops.convert_to_tensor(rates), ops.convert_to_tensor(chunk),
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


class PackProbes:
    """The study's probes for every member of a pack: `activation_stats` and `gradient_stats`
    for all members at once, any other probe as its callback on each member's model."""

    def __init__(self, pack: PackedMLP, names: tuple, data: Dataset):
        self.pack, self.names = pack, tuple(names)
        self.activation = pack.configs[0].get("activation", "")
        self.probe_x, self.probe_y = data.x_val[:PROBE_EXAMPLES], data.y_val[:PROBE_EXAMPLES]
        self.layer_rows = [{name: [] for name in self.names} for _ in range(pack.members)]
        self.columns = [{} for _ in range(pack.members)]  # member -> epoch -> columns
        self.callbacks = {}  # (member, name) -> probe, for probes without a packed form
        alone = [name for name in self.names if name not in PACKED_PROBES]
        for m in range(pack.members):
            def sample(m=m):  # the images member m trains on, as `standard` gives them to its probes
                sampled = seed_sample(data, pack.seeds[m])
                return sampled.x_train[:pack.n], sampled.y_train[:pack.n]

            probes = build_probes(alone, self.probe_x, self.probe_y, pack.configs[m], training_sample=sample)
            self.callbacks.update({(m, name): probe for name, probe in zip(alone, probes)})

    def measure(self, epoch: int, members: list[int], logs: list[dict]) -> None:
        """Epoch `epoch` (0 = before training) for `members`; `logs` per member as Keras gives them."""
        results = {}
        if "activation_stats" in self.names:
            results["activation_stats"] = self.pack.activation_stats(epoch, self.probe_x, self.activation)
        if "gradient_stats" in self.names:
            results["gradient_stats"] = self.pack.gradient_stats(epoch, self.probe_x, self.probe_y)
        for m in members:
            columns = self.columns[m].setdefault(epoch, {})
            for name, per_member in results.items():
                rows, scalars = per_member[m]
                self.layer_rows[m][name].extend(rows)
                columns.update(scalars)
            for name in self.names:
                callback = self.callbacks.get((m, name))
                if callback is None:
                    continue
                callback.set_model(self.pack.member_model(m))
                callback.observe(epoch, logs[m])
                columns.update(callback.epoch_columns.get(epoch, {}))

    def rows_of(self, member: int) -> list[dict]:
        """The member's per-layer rows, probe by probe in the study's order (as `standard` gives them)."""
        rows = []
        for name in self.names:
            callback = self.callbacks.get((member, name))
            rows += callback.layer_rows if callback is not None else self.layer_rows[member][name]
        return rows


def train_pack(configs: list[dict], seeds: list[int], data: Dataset,
               contexts: list[TrialContext] | None = None, probes: tuple = ()) -> list[dict]:
    """Train the trials (configs[i], seeds[i]) as one pack on the unsampled pool `data` (what
    `run_trial` receives) with the study's `probes`; one outcome per member, in the format
    `standard` returns. Progress goes to the first context's `on_epoch`; the pack stops at the
    smallest `time_limit` among the contexts."""
    contexts = contexts or [TrialContext() for _ in configs]
    started = time.perf_counter()
    pack = PackedMLP(configs, seeds, data)
    measured = PackProbes(pack, probes, data)
    epochs = int(configs[0]["epochs"])
    rows = [[{"epoch": 0}] for _ in configs]
    status = [OK] * pack.members
    messages = [""] * pack.members
    measured.measure(0, list(range(pack.members)), [{}] * pack.members)
    train_seconds, step_seconds = 0.0, []
    steps = [[] for _ in configs]  # per member, per epoch: (correct, images, loss sums) of each step
    limit = min((c.time_limit for c in contexts if c.time_limit), default=None)
    for epoch in range(1, epochs + 1):
        result = pack.train_epoch()
        train_seconds += result.seconds
        if epoch > 1 or epochs == 1:  # the first epoch traces
            step_seconds.append(result.seconds / result.step_losses.shape[1])
        val_loss, val_accuracy = pack.evaluate("val")
        trained = [m for m in range(pack.members) if status[m] == OK]
        for m in trained:
            losses = result.step_losses[m]
            bad = np.flatnonzero(~np.isfinite(losses))
            upto = bad[0] + 1 if len(bad) else len(losses)  # a diverged member counted up to its last step
            sizes = result.batch_sizes[:upto]
            train_loss = float(np.sum(losses[:upto].astype("float64") * sizes) / np.sum(sizes))
            train_accuracy = float(np.sum(result.step_correct[m, :upto]) / np.sum(sizes))
            steps[m].append((result.step_correct[m, :upto], sizes, losses[:upto].astype("float64") * sizes))
            rows[m].append({"epoch": epoch, "train_loss": train_loss, "train_accuracy": train_accuracy,
                            "val_loss": float(val_loss[m]), "val_accuracy": float(val_accuracy[m])})
            if len(bad):
                status[m], messages[m] = DIVERGED, f"non-finite loss in epoch {epoch}"
        measured.measure(epoch, trained, [rows[m][-1] for m in range(pack.members)])
        if contexts[0].on_epoch is not None:
            contexts[0].on_epoch(epoch, epochs)
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
        for row in rows[m]:
            row.update(measured.columns[m].get(row["epoch"], {}))
        history = [{k: finite_or_none(v) for k, v in row.items()} for row in rows[m]]
        final = {k: finite_or_nan(v) for k, v in history[-1].items() if k != "epoch"}
        final.update(test_loss=finite_or_nan(test_loss[m]), test_accuracy=finite_or_nan(test_accuracy[m]))
        if "train_eval_accuracy" in final:  # as `standard` (D1, D4)
            final["test_gap"] = final["train_eval_accuracy"] - final["test_accuracy"]
        final["dev_test_gap"] = abs(final.get("val_accuracy", float("nan")) - final["test_accuracy"])
        contexts[m].started = started
        contexts[m].sgd_steps = sum(len(sizes) for _, sizes, _ in steps[m])  # as Keras' optimizer counts them
        # step_seconds: the pack's step time shared among its members (A9 compares arms packed alike)
        outcomes.append(outcome(contexts[m], status[m], history, final, messages[m], layers=measured.rows_of(m),
                                step_curve=step_curve.windowed(steps[m]),
                                train_seconds=train_seconds, step_seconds=step / pack.members,
                                pack_members=pack.members, pack_step_seconds=step,
                                steps_per_epoch=math.ceil(pack.n / pack.batch_size), parameters=pack.parameters))
    return outcomes


# the packed form of the standard procedure, found by suite.core.packs (core never imports techniques)
registry.add("pack_trainer", "standard", train_pack, signature=packing_key)

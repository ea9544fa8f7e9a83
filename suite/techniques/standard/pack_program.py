"""pack_program: the compiled computation of one pack shape (members x layers x norm x activation).

Every weight has a leading member axis and a dense layer is one batched `einsum`; one compiled
function runs a whole epoch's steps for all members, in the operation order of Keras' own layers
and `SGD.update_step`, so each member gives the numbers it would alone. `keras.ops` only, so the
same code runs under tf.function and jax.jit. Holds structure, never values: packs of one
structure share a program and its traces (`program_for`).
"""

from __future__ import annotations

from suite.core.backend import import_keras
from suite.techniques.activations.activations import MAXOUT_PIECES
from suite.techniques.standard.pack_eligibility import activation_function, activation_kind

keras = import_keras()
ops = keras.ops

BN_MOMENTUM, BN_EPSILON = 0.99, 1e-3  # Keras' BatchNormalization defaults, which the family uses


def _batch_normalize(h, mean, variance, beta, gamma):
    """Per-member batch-norm of h (members, batch, units), in the arithmetic order of Keras' own
    `ops.batch_normalization` on both backends (x * inv + (beta - mean * inv)); that op cannot take
    per-member statistics on JAX, which reshapes them to one vector."""
    inv = ops.multiply(ops.rsqrt(ops.add(variance, BN_EPSILON)), gamma)[:, None, :]
    return ops.add(ops.multiply(h, inv), ops.subtract(beta[:, None, :], ops.multiply(mean[:, None, :], inv)))


class PackProgram:
    """The computation of one pack shape: keras.ops only, so it runs under tf.function and
    jax.jit alike. It holds structure, never values, so packs of the same structure share
    one program and its traces (`program_for`)."""

    def __init__(self, members: int, depth: int, norm: str, activation: str, l2: float, momentum: float,
                 nesterov: bool):
        self.members, self.depth, self.norm, self.l2 = members, depth, norm, l2
        self.kind, self.momentum, self.nesterov = activation_kind(activation), momentum, nesterov
        self.activation = activation_function(activation) if self.kind == "elementwise" else None
        # each hidden layer's stacked params: kernel, bias, [gamma, beta], [PReLU's alpha]
        self.per_layer = 2 + (2 if norm != "none" else 0) + (1 if self.kind == "prelu" else 0)
        # Unlike Keras' own fit, where XLA was ~2x slower on these CPUs, the training loop gains:
        # XLA fuses the ~200 small ops of a step around its matmuls (2 cores, one thread, 9 members of
        # the init MLP: epoch 2.27 s -> 1.73 s with ReLU, 2.12 -> 1.71 s with sigmoid; the step's
        # matmuls alone take 6.9 of its 7.3 ms). Evaluation stays as Keras evaluates (argmax of a
        # diverged net's NaN outputs differs under XLA).
        self.train = _compile(self._train_steps, xla_on_cpu=True)
        self.eval = _compile(self._eval_batch)
        self.probe = _compile(self._probe_tensors)
        self.gradients = _compile(self._kernel_gradients)

    def _forward(self, params, stats, x, training: bool):
        """Probabilities (members, batch, classes) and, in training, the batch statistics.
        `x` is (members, batch, features), or (batch, features) shared by all members."""
        h, new_stats, p, s = x, [], list(params), list(stats)
        # each hidden activation's input, output and function (activation_stats)
        self.pres, self.outs, self.functions = [], [], []
        for _ in range(self.depth):
            kernel, bias = p.pop(0), p.pop(0)
            if self.norm != "none":
                gamma, beta, mean, variance = p.pop(0), p.pop(0), s.pop(0), s.pop(0)
            function = self._activation(p.pop(0) if self.kind == "prelu" else None)
            equation = "mbi,mio->mbo" if len(h.shape) == 3 else "bi,mio->mbo"
            h = ops.add(ops.einsum(equation, h, kernel), bias[:, None, :])  # Keras Dense: matmul, then add
            if self.norm == "none":
                h = self._activate(h, function)
                continue
            if self.norm == "batchnorm_after":
                h = self._activate(h, function)
            if training:  # per-member batch statistics, as each member's own BatchNormalization
                batch_mean, batch_var = ops.moments(h, axes=[1], keepdims=False)
                new_stats += [ops.add(ops.multiply(mean, BN_MOMENTUM), ops.multiply(batch_mean, 1.0 - BN_MOMENTUM)),
                              ops.add(ops.multiply(variance, BN_MOMENTUM), ops.multiply(batch_var, 1.0 - BN_MOMENTUM))]
                mean, variance = batch_mean, batch_var
            h = _batch_normalize(h, mean, variance, beta, gamma)
            if self.norm == "batchnorm":
                h = self._activate(h, function)
        kernel, bias = p.pop(0), p.pop(0)
        equation = "mbi,mio->mbo" if len(h.shape) == 3 else "bi,mio->mbo"
        logits = ops.add(ops.einsum(equation, h, kernel), bias[:, None, :])
        return keras.activations.softmax(logits), new_stats  # softmax keeps its logits for the loss, as in Keras

    def _activation(self, alpha):
        """The hidden activation as a function of h (members, batch, units), in the operation order
        of its Keras layer; `alpha` (members, units): PReLU's learned slopes."""
        if self.kind == "prelu":  # keras.layers.PReLU.call: relu(x) + (-alpha) * relu(-x)
            negative_alpha = ops.negative(alpha)[:, None, :]
            return lambda h: ops.add(keras.activations.relu(h),
                                     ops.multiply(negative_alpha, keras.activations.relu(ops.negative(h))))
        if self.kind == "maxout":  # Maxout.call: the units grouped as (channels, pieces), max over pieces
            def maxout(h):
                grouped = ops.reshape(h, (*h.shape[:-1], h.shape[-1] // MAXOUT_PIECES, MAXOUT_PIECES))
                return ops.max(grouped, axis=-1)
            return maxout
        return self.activation

    def _activate(self, h, function):
        out = function(h)
        self.pres.append(h)
        self.outs.append(out)
        self.functions.append(function)
        return out

    def _probe_tensors(self, params, stats, x):
        """Inference mode on the probe images shared by all members: per hidden layer the
        activation's input, its output and its slope f'(input), each (members, images, units)."""
        self._forward(params, stats, x, training=False)
        pres, outs = list(self.pres), list(self.outs)
        return pres, outs, [_activation_slope(function, pre) for function, pre in zip(self.functions, pres)]

    def _kernel_gradients(self, params, stats, x, y):
        """Per member, the norm of d(loss)/d(kernel) of every hidden layer, in training mode (batch
        statistics), the loss without the L2 penalty: what `kernel_gradient_norms` reads (members, depth)."""
        def member_losses(params, stats, x, y):
            probs, new_stats = self._forward(params, stats, x, training=True)
            targets = ops.broadcast_to(y[None, :], (self.members, y.shape[0]))
            return ops.mean(ops.sparse_categorical_crossentropy(targets, probs), axis=1), new_stats

        _, _, grads = _value_and_grad(member_losses)(params, stats, x, y)
        kernels = [grads[i * self.per_layer] for i in range(self.depth)]
        return ops.stack([ops.sqrt(ops.sum(ops.square(k), axis=(1, 2))) for k in kernels], axis=1)

    def penalty(self, params):
        """Keras' L2 regularizer on every hidden kernel: l2 * sum(W^2), per member."""
        kernels = [params[i * self.per_layer] for i in range(self.depth)]
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
        """All steps of `batches` (members, steps, batch) pool indices at `learning_rates` (members,
        steps); returns the new state and the per-step losses and correct counts (members, steps)."""
        steps = batches.shape[1]
        members = self.members
        grad = _value_and_grad(self._member_losses)
        step_ids = ops.arange(steps)[None, :]

        def body(i, carry):
            params, velocity, stats, alive, step_losses, step_correct = carry
            index = batches[:, i, :]
            x, y = ops.take(pool_x, index, axis=0), ops.take(pool_y, index, axis=0)
            losses, (correct, new_stats), grads = grad(params, stats, x, y)
            # a member whose loss turned non-finite takes this step as Keras would (its weights become
            # NaN, as the unpacked trial's do) and stops counting; members share no arithmetic, so the
            # NaN stays in its own slice
            counting = ops.logical_and(alive, ops.isfinite(losses))
            keeping = alive
            new_params, new_velocity = [], []
            for k, (p, g) in enumerate(zip(params, grads)):
                shape = (members,) + (1,) * (len(p.shape) - 1)
                rate, keep = ops.reshape(ops.take(learning_rates, i, axis=1), shape), ops.reshape(keeping, shape)
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
            stats = [ops.where(ops.reshape(keeping, (members, 1)), new, old) for new, old in zip(new_stats, stats)]
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

_PROGRAMS: dict[tuple, PackProgram] = {}

MAX_PROGRAMS = 8


def program_for(*structure) -> PackProgram:
    """The compiled program for this structure, built once per process (tracing a fresh one
    costs about as much as a small trial's epoch)."""
    if structure not in _PROGRAMS:
        if len(_PROGRAMS) >= MAX_PROGRAMS:
            _PROGRAMS.pop(next(iter(_PROGRAMS)))
        _PROGRAMS[structure] = PackProgram(*structure)
    return _PROGRAMS[structure]


def _compile(function, xla_on_cpu: bool = False):
    """tf.function (XLA as the suite's device settings say) or jax.jit. `xla_on_cpu`: what
    "auto" means without a GPU."""
    if keras.config.backend() == "jax":
        import jax

        return jax.jit(function)
    if keras.config.backend() != "tensorflow":
        raise NotImplementedError(f"packed training runs on TensorFlow and JAX, not {keras.config.backend()}")
    import tensorflow as tf

    from suite.core.device import jit_compile

    xla = jit_compile()
    if xla == "auto":
        xla = xla_on_cpu or bool(tf.config.list_physical_devices("GPU"))
    return tf.function(function, jit_compile=xla)


def _activation_slope(function, z):
    """d(sum f(z)) / dz at every element of z, by autodiff (as `activation_stats.activation_slope`): f'(z) for
    an elementwise f, for maxout 1 where a piece wins and 0 elsewhere."""
    if keras.config.backend() == "jax":
        import jax
        import jax.numpy as jnp

        return jax.grad(lambda v: jnp.sum(function(v)))(z)
    import tensorflow as tf

    with tf.GradientTape() as tape:
        tape.watch(z)
        total = tf.reduce_sum(function(z))
    return tape.gradient(total, z)


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

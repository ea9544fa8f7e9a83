"""classic: the classic convolutional nets of claim D6, scaled to small images (kind "model").
What they cost is in `cost`, what their first layers learn in `architecture_probe`.

LeNet-5 keeps its paper size (61,706 parameters); the AlexNet-, VGG-, Network-in-Network
and Inception-style nets keep their papers' layer patterns with channel widths scaled
down to a 28x28x1 input; the small ResNet is `models.residual_net` with batch-norm after
every conv, as He et al.'s (the others have none, as their papers). Every hidden layer
goes through `models.Block` (`conv_<i>`/`dense_<i>` -> `act_<i>`), so the suite's probes
read any of them. This module builds and measures networks; it trains nothing and
judges nothing (the standard procedure and suite.core.analysis do).
"""

from __future__ import annotations

from suite.core import registry
from suite.core.backend import import_keras
from suite.techniques.architectures.families import Block, _head, residual_net

keras = import_keras()

AUX_PREFIX = "aux_"  # training-only layers: left out of inference FLOPs
FC_DROPOUT = 0.5  # AlexNet and VGG put dropout on their fully connected layers only


# ---- families ------------------------------------------------------------------------

def _block(activation, kernel_initializer, norm) -> Block:
    return Block(activation, kernel_initializer, "zeros", norm)


def _classifier(block: Block, x, num_classes: int, units: int, layers: int = 2):
    """Flatten -> `layers` fully connected layers with dropout (AlexNet, VGG) -> softmax."""
    x = keras.layers.Flatten()(x)
    for _ in range(layers):
        x = block.hidden(x, "dense", units)
        x = keras.layers.Dropout(FC_DROPOUT, name=f"fc_drop_{block.index}")(x)
    return _head(x, num_classes)


@registry.register("model")
def lenet5(input_shape, num_classes, activation="tanh", kernel_initializer="glorot_uniform",
           norm="none") -> keras.Model:
    """LeCun et al. (1998): C1 6@5x5, S2 avg-pool, C3 16@5x5, S4 avg-pool, F5 120, F6 84.
    C1 pads by 2 ("same" on 28x28), as the paper's 32x32 input did: 61,706 parameters."""
    block = _block(activation, kernel_initializer, norm)
    inputs = keras.Input(input_shape)
    x = block.hidden(inputs, "conv", 6, kernel_size=5)
    x = keras.layers.AveragePooling2D(2, name="pool_1")(x)
    x = block.hidden(x, "conv", 16, kernel_size=5, padding="valid")
    x = keras.layers.AveragePooling2D(2, name="pool_2")(x)
    x = keras.layers.Flatten()(x)
    x = block.hidden(x, "dense", 120)
    x = block.hidden(x, "dense", 84)
    return keras.Model(inputs, _head(x, num_classes), name="lenet5")


@registry.register("model")
def alexnet_style(input_shape, num_classes, width=12, activation="relu", kernel_initializer="he_normal",
                  norm="none") -> keras.Model:
    """Krizhevsky et al. (2012) at 1/8 of the width (96 -> 12 first channels): five convs
    (large first kernel, then 5x5, then three 3x3), overlapping 3x3/2 max-pools, two
    dropout FC layers. The 11x11 stride-4 stem becomes 5x5 stride 1 for 28x28 images."""
    block = _block(activation, kernel_initializer, norm)
    inputs = keras.Input(input_shape)
    x = block.hidden(inputs, "conv", width, kernel_size=5)
    x = keras.layers.MaxPooling2D(3, strides=2, padding="same", name="pool_1")(x)
    x = block.hidden(x, "conv", width * 8 // 3, kernel_size=5)
    x = keras.layers.MaxPooling2D(3, strides=2, padding="same", name="pool_2")(x)
    for channels in (width * 4, width * 4, width * 8 // 3):
        x = block.hidden(x, "conv", channels)
    x = keras.layers.MaxPooling2D(3, strides=2, padding="same", name="pool_3")(x)
    return keras.Model(inputs, _classifier(block, x, num_classes, width * 16), name="alexnet_style")


@registry.register("model")
def vgg_style(input_shape, num_classes, width=12, activation="relu", kernel_initializer="he_normal",
              norm="none") -> keras.Model:
    """Simonyan & Zisserman (2015): stacks of 3x3 "same" convs, channels doubling after
    every 2x2 max-pool (blocks of 2, 2, 3 convs for three pooling stages), two FC layers."""
    block = _block(activation, kernel_initializer, norm)
    inputs = keras.Input(input_shape)
    x = inputs
    for stage, convs in enumerate((2, 2, 3)):
        for _ in range(convs):
            x = block.hidden(x, "conv", width * 2 ** stage)
        x = keras.layers.MaxPooling2D(2, name=f"pool_{stage + 1}")(x)
    return keras.Model(inputs, _classifier(block, x, num_classes, width * 16), name="vgg_style")


@registry.register("model")
def nin(input_shape, num_classes, width=16, activation="relu", kernel_initializer="he_normal",
        norm="none") -> keras.Model:
    """Lin et al. (2014), Network in Network: each "mlpconv" block is a spatial conv
    followed by two 1x1 convs (a small MLP at every position); global average pooling
    replaces the fully connected layers."""
    block = _block(activation, kernel_initializer, norm)
    inputs = keras.Input(input_shape)
    x = inputs
    for stage, (channels, kernel) in enumerate(((width, 5), (width * 2, 5), (width * 2, 3))):
        x = block.hidden(x, "conv", channels, kernel_size=kernel)
        x = block.hidden(x, "conv", channels, kernel_size=1)
        x = block.hidden(x, "conv", channels, kernel_size=1)
        if stage < 2:
            x = keras.layers.MaxPooling2D(3, strides=2, padding="same", name=f"pool_{stage + 1}")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, _head(x, num_classes), name="nin")


def inception_block(block: Block, x, width: int, reduce: bool = True):
    """GoogLeNet's module with 3a's proportions (64 : 96>128 : 16>32 : 32 per 64): parallel
    1x1, 3x3, 5x5 convs and a 3x3 max-pool, concatenated. `reduce` puts the 1x1 convs
    in front of the 3x3/5x5 (Szegedy et al. Fig. 2b); without it they read every input
    channel (the naive module, Fig. 2a; its pool branch keeps its 1x1 so widths match)."""
    # built in Keras' layer order (deeper first), so `act_<i>` numbers follow model.layers
    three = block.hidden(x, "conv", width * 3 // 2, kernel_size=1) if reduce else x
    five = block.hidden(x, "conv", max(width // 4, 1), kernel_size=1) if reduce else x
    one = block.hidden(x, "conv", width, kernel_size=1)
    three = block.hidden(three, "conv", width * 2, kernel_size=3)
    five = block.hidden(five, "conv", width // 2, kernel_size=5)
    pool = keras.layers.MaxPooling2D(3, strides=1, padding="same", name=f"branch_pool_{block.index}")(x)
    pool = block.hidden(pool, "conv", width // 2, kernel_size=1)
    return keras.layers.Concatenate(name=f"concat_{block.index}")([one, three, five, pool])


class AuxiliaryClassifierModel(keras.Model):
    """A functional model with a training-only side classifier (GoogLeNet, D6): in
    training it returns (main, auxiliary) and adds `aux_weight` x the auxiliary
    cross-entropy to the loss, so gradient enters the middle of the net; in inference
    (evaluate, predict, probes) it is the main classifier alone."""

    def __init__(self, inputs, outputs, aux_weight: float = 0.3, **kwargs):
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)
        self.aux_weight = aux_weight

    def call(self, inputs, training=None, mask=None):
        main, aux = super().call(inputs, training=training, mask=mask)
        return (main, aux) if training else main

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        if not isinstance(y_pred, (tuple, list)):
            return super().compute_loss(x, y, y_pred, sample_weight, training)
        main, aux = y_pred
        if len(y.shape) == len(aux.shape):  # one-hot (soft) labels
            aux_loss = keras.losses.categorical_crossentropy(y, aux)
        else:
            aux_loss = keras.losses.sparse_categorical_crossentropy(y, aux)
        return super().compute_loss(x, y, main, sample_weight, training) + self.aux_weight * keras.ops.mean(aux_loss)

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        main = y_pred[0] if isinstance(y_pred, (tuple, list)) else y_pred
        return super().compute_metrics(x, y, main, sample_weight)


def _auxiliary_head(x, num_classes: int, width: int):
    """GoogLeNet's side classifier, scaled: avg-pool, 1x1 conv, FC, dropout 0.7, softmax."""
    x = keras.layers.AveragePooling2D(3, strides=2, padding="same", name="aux_pool")(x)
    x = keras.layers.Conv2D(width * 2, 1, activation="relu", name="aux_conv")(x)
    x = keras.layers.Flatten(name="aux_flatten")(x)
    x = keras.layers.Dense(width * 8, activation="relu", name="aux_dense")(x)
    x = keras.layers.Dropout(0.7, name="aux_drop")(x)
    return keras.layers.Dense(num_classes, activation="softmax", name="aux_head", dtype="float32")(x)


@registry.register("model")
def inception_style(input_shape, num_classes, width=8, activation="relu", kernel_initializer="he_normal",
                    norm="none", reduce=True, aux_weight=0.0) -> keras.Model:
    """Szegedy et al. (2015), scaled: a 3x3 stem, two Inception modules at half the
    resolution and two at a quarter (width, then 2 x width per module branch unit),
    global average pooling. `aux_weight` > 0 adds the side classifier after the
    second module (the middle of the net), weighted like GoogLeNet's 0.3."""
    block = _block(activation, kernel_initializer, norm)
    inputs = keras.Input(input_shape)
    x = block.hidden(inputs, "conv", width * 2)
    x = keras.layers.MaxPooling2D(2, name="pool_1")(x)
    x = inception_block(block, x, width, reduce)
    x = inception_block(block, x, width, reduce)
    x = keras.layers.MaxPooling2D(2, name="pool_2")(x)
    middle = x
    x = inception_block(block, x, width * 2, reduce)
    x = inception_block(block, x, width * 2, reduce)
    main = _head(keras.layers.GlobalAveragePooling2D()(x), num_classes)
    if not aux_weight:
        return keras.Model(inputs, main, name="inception_style")
    aux = _auxiliary_head(middle, num_classes, width)
    return AuxiliaryClassifierModel(inputs, [main, aux], aux_weight=aux_weight, name="inception_aux")


@registry.register("model")
def small_resnet(input_shape, num_classes, depth=8, width=8, activation="relu", kernel_initializer="he_normal",
                 norm="batchnorm") -> keras.Model:
    """He et al. (2016), small: `models.residual_net` with three residual blocks (depth 8) and,
    as in the paper, batch-norm right after every conv and before its activation: conv -> BN ->
    ReLU, and conv -> BN -> + shortcut -> ReLU in the block's second layer. `norm` defaults to
    batchnorm, so a study that leaves `norm` unset trains the paper's net (D6); `norm: none`
    removes it for comparisons. Where the shape changes the shortcut is a 1x1 projection (option B)
    without a batch-norm of its own."""
    return residual_net(input_shape, num_classes, depth, width, activation, kernel_initializer, norm)


@registry.register("model")
def inception_aux(input_shape, num_classes, width=8, activation="relu", kernel_initializer="he_normal",
                  norm="none") -> keras.Model:
    """The Inception-style net with GoogLeNet's auxiliary classifier (weight 0.3)."""
    return inception_style(input_shape, num_classes, width, activation, kernel_initializer, norm, aux_weight=0.3)


@registry.register("model")
def inception_naive(input_shape, num_classes, width=8, activation="relu", kernel_initializer="he_normal",
                    norm="none") -> keras.Model:
    """The Inception-style net without the 1x1 reductions (the naive module)."""
    return inception_style(input_shape, num_classes, width, activation, kernel_initializer, norm, reduce=False)

"""Model families: every registered family names its layers as the probes expect, in every norm (contract)."""

import inspect

import keras
import numpy as np
import pytest

from suite.core import registry
from suite.techniques.architectures import families as models
from suite.techniques.architectures.families import build_model, list_hidden_layers, list_linear_layers

MODEL_FAMILIES = registry.list_names("model")


@pytest.mark.parametrize("family", MODEL_FAMILIES)
@pytest.mark.parametrize("norm", models.NORMS)
def test_model_contract(family, norm):
    depth = 9 if family == "residual_mlp" else 8  # 8 = 6n + 2 for CIFAR-style nets; 9 = 1 + 2n for residual_mlp
    config = {"family": family, "depth": depth, "width": 4, "activation": "tanh",
              "kernel_initializer": "he_normal", "norm": norm}
    model = build_model(config, (28, 28, 1), 10)
    hidden = list_hidden_layers(model)
    # families with a depth keyword honour depth 8; fixed designs (LeNet-5: 4 hidden layers) have their own
    assert len(hidden) >= (7 if "depth" in inspect.signature(registry.get("model", family)).parameters else 2)
    assert [layer.name for layer in hidden] == [f"act_{i}" for i in range(1, len(hidden) + 1)]
    assert len(list_linear_layers(model)) == len(hidden)  # probes pair each activation with its weights
    out = keras.ops.convert_to_numpy(model(np.zeros((3, 28, 28, 1), "float32")))
    assert out.shape == (3, 10) and np.allclose(out.sum(axis=1), 1, atol=1e-5)
    assert any(isinstance(layer, keras.layers.BatchNormalization) for layer in model.layers) == norm.startswith("batchnorm")


def test_residual_net_differs_from_plain_net_only_by_shortcuts():
    config = {"depth": 14, "width": 4, "activation": "relu", "kernel_initializer": "he_normal", "norm": "batchnorm"}
    plain = build_model({**config, "family": "plain_net"}, (28, 28, 1), 10)
    residual = build_model({**config, "family": "residual_net"}, (28, 28, 1), 10)
    kinds = lambda m: sorted(type(layer).__name__ for layer in m.layers if not layer.name.startswith(("add_", "proj_")))
    assert kinds(plain) == kinds(residual)
    assert sum(layer.name.startswith("add_") for layer in residual.layers) == 6  # (14 - 2) / 2 blocks
    with pytest.raises(ValueError, match="6n \\+ 2"):
        build_model({**config, "family": "plain_net", "depth": 10}, (28, 28, 1), 10)


def test_residual_mlp_differs_from_mlp_only_by_shortcuts():
    config = {"depth": 9, "width": 8, "activation": "relu", "kernel_initializer": "he_normal", "norm": "batchnorm"}
    plain = build_model({**config, "family": "mlp"}, (28, 28, 1), 10)
    residual = build_model({**config, "family": "residual_mlp"}, (28, 28, 1), 10)
    kinds = lambda m: sorted(type(layer).__name__ for layer in m.layers if not layer.name.startswith("add_"))
    assert kinds(plain) == kinds(residual) and plain.count_params() == residual.count_params()
    assert sum(layer.name.startswith("add_") for layer in residual.layers) == 4  # (9 - 1) / 2 blocks
    x = np.random.default_rng(0).normal(size=(4, 28, 28, 1)).astype("float32")
    residual.set_weights(plain.get_weights())  # same weights: only the shortcuts can make the outputs differ
    assert not np.allclose(keras.ops.convert_to_numpy(plain(x)), keras.ops.convert_to_numpy(residual(x)))
    for depth in (1, 8):
        with pytest.raises(ValueError, match="1 \\+ 2n"):
            build_model({**config, "family": "residual_mlp", "depth": depth}, (28, 28, 1), 10)


def test_maxout_doubles_the_linear_layers():
    relu = build_model({"family": "mlp", "depth": 2, "width": 10, "activation": "relu"}, (28, 28, 1), 10)
    maxout = build_model({"family": "mlp", "depth": 2, "width": 10, "activation": "maxout"}, (28, 28, 1), 10)
    assert maxout.get_layer("dense_1").units == 2 * relu.get_layer("dense_1").units
    assert maxout.count_params() > 1.8 * relu.count_params()  # A8

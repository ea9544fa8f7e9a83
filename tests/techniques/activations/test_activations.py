"""Activations: every known name builds a layer with finite output in its declared range (contract over the registry)."""

import keras
import numpy as np
import pytest

from suite.core import registry
from suite.techniques.activations import activations
from suite.techniques.architectures.families import HIDDEN_PREFIX

ACTIVATIONS = activations.list_known()


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activation_contract(name):
    layer = activations.build_activation(name, f"{HIDDEN_PREFIX}1")
    out = keras.ops.convert_to_numpy(layer(keras.ops.convert_to_tensor(np.linspace(-3, 3, 12, dtype="float32").reshape(2, 6))))
    assert out.shape == (2, 6 // activations.units_per_output(name)) and np.all(np.isfinite(out))
    if name in activations.BOUNDED_RANGE:
        low, high = activations.BOUNDED_RANGE[name]
        assert out.min() >= low and out.max() <= high


def test_unknown_activation_raises_with_known_list():
    with pytest.raises(registry.UnknownNameError, match="known:"):
        activations.build_activation("nope", "act_1")

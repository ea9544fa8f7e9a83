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


def _apply(name, x):
    layer = activations.build_activation(name, f"{HIDDEN_PREFIX}1")
    return keras.ops.convert_to_numpy(layer(keras.ops.convert_to_tensor(np.asarray(x, dtype="float32"))))


def test_sigmoid_centered_is_registered_and_bounded():
    assert registry.lookup("activation", "sigmoid_centered") is not None
    assert "sigmoid_centered" in ACTIVATIONS and activations.is_known("sigmoid_centered")
    assert activations.BOUNDED_RANGE["sigmoid_centered"] == (-0.5, 0.5)


def test_sigmoid_centered_is_zero_centred_with_sigmoids_slope():
    """A2b's control: centred like tanh at 0, but with sigmoid's slope (1/4), not tanh's (1)."""
    x = np.linspace(-6, 6, 49)
    centred, sigmoid, tanh = (_apply(name, x) for name in ("sigmoid_centered", "sigmoid", "tanh"))
    np.testing.assert_allclose(centred, sigmoid - 0.5, atol=1e-6)  # sigmoid shifted down by 1/2
    np.testing.assert_allclose(centred, -centred[::-1], atol=1e-6)  # odd: zero-centred on symmetric inputs
    assert abs(float(_apply("sigmoid_centered", [0.0])[0])) < 1e-7
    h = 1e-2  # central differences at 0
    slope = {name: float(np.diff(_apply(name, [-h, h]))[0]) / (2 * h) for name in ("sigmoid_centered", "sigmoid", "tanh")}
    assert slope["sigmoid_centered"] == pytest.approx(0.25, rel=1e-3)
    assert slope["sigmoid_centered"] == pytest.approx(slope["sigmoid"], rel=1e-4)
    assert slope["tanh"] == pytest.approx(4 * slope["sigmoid_centered"], rel=1e-3)  # the slope A2b-slope is about

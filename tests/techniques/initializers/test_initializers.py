"""Initialisers: every known name builds finite weights (contract over the registry); named scales hold (I1-I6)."""

import keras
import numpy as np
import pytest

from suite.core import registry
from suite.techniques.initializers import initializers

INITIALIZERS = initializers.list_known()


def _concrete(name: str) -> str:
    """A parametric example such as normal_<std> turned into a real name."""
    return name.replace("<std>", "0.05").replace("<value>", "0.3")


@pytest.mark.parametrize("name", INITIALIZERS)
def test_initializer_contract(name):
    init = initializers.build_initializer(_concrete(name))
    values = keras.ops.convert_to_numpy(init((64, 32)))
    assert values.shape == (64, 32) and np.all(np.isfinite(values))


def test_named_scales_are_what_they_say():
    keras.utils.set_random_seed(0)
    normal = keras.ops.convert_to_numpy(initializers.build_initializer("normal_0.01")((400, 400)))
    assert abs(normal.std() - 0.01) < 0.001
    he = keras.ops.convert_to_numpy(initializers.build_initializer("he_normal")((400, 400)))
    assert abs(he.std() - np.sqrt(2 / 400)) < 0.01  # truncated normal: slightly below
    constant = keras.ops.convert_to_numpy(initializers.build_initializer("constant")((3, 3)))
    assert np.all(constant == initializers.CONSTANT_VALUE) and initializers.CONSTANT_VALUE != 0


def test_unknown_initializer_raises_with_known_list():
    with pytest.raises(registry.UnknownNameError, match="known:"):
        initializers.build_initializer("nope")

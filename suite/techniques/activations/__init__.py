"""activations: activation functions beyond Keras' own (PReLU, maxout, zero-centred sigmoid) and the `activation` setting."""

from suite.techniques.activations import activations  # noqa: F401 (registers)

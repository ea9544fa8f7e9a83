"""activations: activation functions beyond Keras' own (PReLU, maxout) and the `activation` setting."""

from suite.techniques.activations import activations  # noqa: F401 (registers)

"""probes: per-epoch measurements inside a network (activations, gradients, generalisation) and their metrics."""

from suite.techniques.probes import probes  # noqa: F401 (register)

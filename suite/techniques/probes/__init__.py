"""probes: per-epoch measurements inside a network (activations, gradients, generalisation) and their metrics."""

from suite.techniques.probes import probes, sections  # noqa: F401 (register)

"""probes: per-epoch measurements inside a network, one module per probe (kind "probe"): activation_stats,
gradient_stats, generalization. Each declares the metrics it adds (`METRICS`), so a claim may name them."""

from suite.techniques.probes import activation_stats, generalization, gradient_stats  # noqa: F401 (register)

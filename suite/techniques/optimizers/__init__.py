"""optimizers: named optimizers, learning-rate schedules and the learning-rate report sections (D3)."""

from suite.techniques.optimizers import optimizers, schedules  # noqa: F401 (register)

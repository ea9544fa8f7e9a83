"""optimizers: named optimizers and the learning-rate report sections (D3)."""

from suite.techniques.optimizers import optimizers  # noqa: F401 (register)

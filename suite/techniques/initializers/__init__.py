"""initializers: weight initialisers beyond Keras' own (`normal_<std>`, `constant_<value>`) and their settings."""

from suite.techniques.initializers import initializers  # noqa: F401 (registers)

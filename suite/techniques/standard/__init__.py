"""standard: the standard training procedure, used by every arm that names no `procedure`."""

from suite.techniques.standard import procedure  # noqa: F401 (registers)

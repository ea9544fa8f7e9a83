"""standard: the standard training procedure, used by every arm that names no `procedure`,
and its packed form (many small trials in one compiled program)."""

from suite.techniques.standard import packed, procedure  # noqa: F401 (registers)

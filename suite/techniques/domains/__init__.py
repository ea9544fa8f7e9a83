"""domains: the `split` study's code (D2): the phone_shift data view and its report section."""

from suite.techniques.domains import domains  # noqa: F401 (register)

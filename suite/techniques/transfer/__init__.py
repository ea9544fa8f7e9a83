"""transfer: freeze, fine-tune, distil and self-train as procedures (T1-T5) and their report sections."""

from suite.techniques.transfer import procedures, protocol  # noqa: F401 (register)

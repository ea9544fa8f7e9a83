"""architectures: model families (MLP, CNN, plain and residual CIFAR nets, the classic nets of D6),
their settings, the architecture probe and report sections."""

from suite.techniques.architectures import architecture_probe, classic, families  # noqa: F401 (register)

"""augmentation: training-batch pipelines of core Keras layers (D1) and the gap report sections (D1, D4)."""

from suite.techniques.augmentation import augment, sections  # noqa: F401 (register)

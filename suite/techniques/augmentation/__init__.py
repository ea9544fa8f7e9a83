"""augmentation: training-batch pipelines of core Keras layers (D1) and the gap report sections (D1, D4)."""

from suite.techniques.augmentation import augment  # noqa: F401 (register)

"""components: imports every module that registers techniques, so each registers once.

A new kind of study adds its module here. Modules register:
- their named pieces (`registry.register("model" | "augmentation" | "procedure" ...)`),
- the study-file settings they read (`registry.add("setting", key, (section, check))`),
- the metrics their trials record (`registry.add("metric", name, "final" | "epoch")`),
  so the study loader accepts exactly what some component understands.
"""

from suite import (  # noqa: F401 (imported for their registrations)
    activations,
    architectures,
    augment,
    domains,
    initializers,
    models,
    probes,
    regression,
    transfer,
)

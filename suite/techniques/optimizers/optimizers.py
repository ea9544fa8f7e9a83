"""optimizers: the optimizers a study may name (kind "optimizer") and their settings (D3).

A name means one optimizer everywhere: `sgd` is plain SGD in every procedure; momentum is
the stated setting `momentum` (SGD, RMSprop). `momentum` and `nesterov` are the notes' names
for SGD with momentum 0.9 (and Nesterov's variant), compared as optimizers of their own.
"""

from __future__ import annotations

from suite.core import registry
from suite.core.backend import import_keras
from suite.core.settings import Fraction, PositiveNumber, declare_setting, registered_name

keras = import_keras()

KERAS_OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop", "adagrad", "adadelta", "adamax", "nadam", "lion")
ALIASES = {"momentum": ("sgd", {"momentum": 0.9}), "nesterov": ("sgd", {"momentum": 0.9, "nesterov": True})}

declare_setting("optimizer", "training", registered_name("optimizer"), "the optimizer (kind optimizer)")
declare_setting("learning_rate", "training", PositiveNumber, "the optimizer's step size; a list is tuned per arm")
declare_setting("momentum", "training", Fraction, "SGD's or RMSprop's momentum (default 0: plain SGD)")
OPTIMIZER_SETTINGS = ("optimizer", "learning_rate", "momentum", "lr_schedule")  # what every procedure that trains reads


def _keras_optimizer(class_name: str, fixed: dict):
    def build(config: dict, learning_rate) -> keras.optimizers.Optimizer:
        options = {**fixed, "learning_rate": learning_rate}
        if "momentum" in config:
            options["momentum"] = config["momentum"]
        return keras.optimizers.get({"class_name": class_name, "config": options})

    return build


for _name in KERAS_OPTIMIZERS:
    registry.add("optimizer", _name, _keras_optimizer(_name, {}))
for _name, (_class, _fixed) in ALIASES.items():
    registry.add("optimizer", _name, _keras_optimizer(_class, _fixed))

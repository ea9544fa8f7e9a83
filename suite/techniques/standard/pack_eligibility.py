"""pack_eligibility: which `standard` trials can train as members of one pack, and with whom.

A trial can be a member when its net is an `mlp` with an elementwise activation, PReLU or
maxout, a supported norm and a plain or momentum SGD, trained without augmentation or data
view (`packing_problems`); members must agree on everything but the value settings
(`PACKABLE_KEYS`: `member_signature`). `packing_key` is what the plan asks (suite.core.packs).
"""

from __future__ import annotations

from suite.core.backend import import_keras
from suite.core.keys import canonical_json
from suite.techniques.activations.activations import Maxout, build_activation
from suite.techniques.architectures.families import MODEL_DEFAULTS

keras = import_keras()

# Settings that may differ between the members of one pack: they change values, never the
# computation. Everything else in the configs must be equal (see `member_signature`).
PACKABLE_KEYS = ("kernel_initializer", "bias_initializer", "learning_rate")

# optimizer name -> (momentum or None for the config's, nesterov)
OPTIMIZERS = {"sgd": (None, False), "momentum": (0.9, False), "nesterov": (0.9, True)}

NORMS = ("none", "batchnorm", "batchnorm_after")


def _activation_layer(name: str):
    """The hidden activation layer `name` as the family builds it, or None if there is no such activation."""
    try:
        return build_activation(name, "probe")
    except (ValueError, TypeError, KeyError):
        return None


def activation_function(name: str):
    """The elementwise function of activation `name` as the family builds it, or None when its
    layer is not a plain `Activation` (PReLU's learned slopes, maxout's pieces)."""
    layer = _activation_layer(name)
    return layer.activation if type(layer) is keras.layers.Activation else None


def activation_kind(name: str) -> str | None:
    """How a pack runs activation `name`: "elementwise", "prelu" (a learned slope per unit, stacked
    like a weight), "maxout" (the max over pieces), or None (it cannot)."""
    layer = _activation_layer(name)
    if type(layer) is keras.layers.Activation:
        return None if name in ("softmax", "log_softmax") else "elementwise"
    if type(layer) is keras.layers.PReLU and layer.shared_axes is None:
        return "prelu"
    if type(layer) is Maxout:
        return "maxout"
    return None


def packing_problems(config: dict) -> list[str]:
    """Why a trial with `config` cannot be a pack member (empty: it can)."""
    config = {**MODEL_DEFAULTS, **config}
    problems = []
    if config["family"] != "mlp":
        problems.append(f"family {config['family']} (only mlp)")
    if config.get("procedure", "standard") != "standard":
        problems.append(f"procedure {config['procedure']}")
    if config.get("optimizer") not in OPTIMIZERS:
        problems.append(f"optimizer {config.get('optimizer')} (only {', '.join(OPTIMIZERS)})")
    if config["norm"] not in NORMS:
        problems.append(f"norm {config['norm']}")
    if config["dropout"]:
        problems.append("dropout (a per-member mask stream would not equal Keras' draws)")
    if config.get("augmentation", "none") != "none" or "data_view" in config:
        problems.append("augmentation or data view")
    if activation_kind(config["activation"]) is None:
        problems.append(f"activation {config['activation']} (only elementwise ones, prelu and maxout)")
    return problems


def member_signature(config: dict) -> str:
    """Trials whose configs have the same signature can be members of one pack."""
    return canonical_json({k: v for k, v in config.items() if k not in PACKABLE_KEYS})


def packing_key(config: dict) -> str | None:
    """The plan's question: the pack signature of a `standard` trial, or None if it trains alone."""
    return None if packing_problems(config) else member_signature(config)


def check_packable(configs: list[dict]) -> None:
    """Raise ValueError unless `configs` can train as one pack."""
    if not configs:
        raise ValueError("a pack needs at least one member")
    if len({member_signature(c) for c in configs}) > 1:
        raise ValueError("pack members differ in more than " + ", ".join(PACKABLE_KEYS))
    problems = packing_problems(configs[0])
    if problems:
        raise ValueError("cannot pack: " + "; ".join(problems))

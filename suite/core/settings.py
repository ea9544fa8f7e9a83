"""settings: what a study file may set under `model:`, `training:` or as a factor, and who reads it.

A technique declares each setting it reads with `declare_setting(name, section, type)`, where
`type` is a pydantic annotation (the loader validates values with it and writes the JSON
Schema from it). A setting is *used* in an arm by the arm's model family (its keyword
parameters, for procedures that build the study's model family), its procedure and its data
view (their `settings` metadata), or by core (`CORE_SETTINGS`); the loader refuses a setting
that nothing in an arm uses, so no line of a study file is silently ignored.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from annotated_types import Ge, Gt, Lt
from pydantic import AfterValidator, Field, Strict

from suite.core import registry

SECTIONS = ("model", "training")
STANDARD_PROCEDURE = "standard"  # the procedure of an arm that names none
DEFAULT_FAMILY = "mlp"  # the model family of a study that names none

# ---- value types (pydantic annotations) ----------------------------------------------
PositiveInt = Annotated[int, Strict(), Gt(0)]
NonNegativeInt = Annotated[int, Strict(), Ge(0)]
PositiveNumber = Annotated[float, Strict(), Field(gt=0, allow_inf_nan=False)]
Fraction = Annotated[float, Strict(), Ge(0), Lt(1)]  # e.g. dropout, momentum: [0, 1)
Share = Annotated[float, Strict(), Ge(0), Field(le=1)]  # a share of a set: [0, 1]


def one_of(*levels) -> Any:
    """A setting with a fixed set of levels."""
    return Literal[levels]


class _KnownNames:
    """JSON Schema of a registered name, computed when the schema is written (after the
    techniques have registered): the known names as an enum, plus any parametric patterns."""

    def __init__(self, kind: str, list_known: Callable[[], list[str]], closed: bool):
        self.kind, self.list_known, self.closed = kind, list_known, closed

    def __get_pydantic_json_schema__(self, core_schema, handler):
        patterns = registry.list_patterns(self.kind)
        examples = {name for name in registry.list_names(self.kind) if "<" in name}
        names = [name for name in self.list_known() if name not in examples]
        if not self.closed:  # Keras resolves more names than it lists: no enum to hold editors to
            return {"type": "string", "description": f"a {self.kind} name: Keras' own or a registered one"}
        enum = {"type": "string", "enum": names}
        if not patterns:
            return {**enum, "description": f"a {self.kind} name"}
        return {"description": f"a {self.kind} name", "anyOf": [enum, *({"type": "string", "pattern": f"^{p}$"}
                                                                        for p in patterns)]}


def registered_name(kind: str, is_known: Callable[[str], bool] | None = None,
                    list_known: Callable[[], list[str]] | None = None) -> Any:
    """A setting that names a registered `kind` (augmentation, data view, ...); techniques whose
    kind Keras also knows (activations, initializers) pass their own `is_known`/`list_known`."""
    closed = is_known is None
    is_known = is_known or (lambda name: registry.lookup(kind, name) is not None)
    list_known = list_known or (lambda: registry.list_names(kind))

    def check(name: str) -> str:
        if not is_known(name):
            raise ValueError(f"unknown {kind} {name!r}; known: {', '.join(list_known())}")
        return name

    return Annotated[str, Strict(), AfterValidator(check), _KnownNames(kind, list_known, closed)]


# ---- declarations --------------------------------------------------------------------
@dataclass(frozen=True)
class Setting:
    name: str
    section: str  # "model" or "training": where the study file states it (or a factor)
    type: Any  # pydantic annotation of one value
    doc: str = ""
    # read when a trained net is evaluated, never while it trains (which validation set scores it):
    # arms that differ only in such settings share one training run (suite.core.plan)
    evaluation_only: bool = False


def declare_setting(name: str, section: str, type_: Any, doc: str = "", evaluation_only: bool = False) -> None:
    if section not in SECTIONS:
        raise ValueError(f"setting {name!r}: section must be one of {SECTIONS}, got {section!r}")
    registry.add("setting", name, Setting(name, section, type_, doc, evaluation_only))


def evaluation_only_settings() -> frozenset[str]:
    """The settings read only at evaluation (`declare_setting(..., evaluation_only=True)`)."""
    return frozenset(name for name, setting in list_settings().items() if setting.evaluation_only)


def list_settings() -> dict[str, Setting]:
    return registry.entries("setting")


# Settings core itself reads, in every arm.
declare_setting("procedure", "training", registered_name("procedure"),
                "how an arm trains (default: standard): a registered procedure")
declare_setting("data_view", "training", registered_name("data_view"),
                "replaces the dataset's splits before training (e.g. a shifted test distribution, D2)")
declare_setting("train_examples", "training", PositiveInt,
                "as a factor: the training-set size of the arm (overrides the profile's)")
declare_setting("batch_size", "training", PositiveInt, "examples per SGD step")
CORE_SETTINGS = frozenset({"procedure", "data_view", "train_examples", "batch_size"})


def family_parameters(family: str) -> set[str]:
    """The keywords a model family takes (its registered function's parameters)."""
    fn = registry.lookup("model", family)
    if fn is None:
        return set()
    return set(inspect.signature(fn).parameters) - {"input_shape", "num_classes"}


def _readers(config: dict) -> tuple[str, set[str], str | None]:
    """(procedure, the settings it declares, the model family it builds or None) for one arm."""
    procedure = config.get("procedure", STANDARD_PROCEDURE)
    meta = registry.metadata("procedure", procedure)
    family = config.get("family", DEFAULT_FAMILY) if meta.get("model_family") else None
    return procedure, set(meta.get("settings", ())), family


def settings_used(config: dict) -> set[str]:
    """Every setting something in this arm reads: core, its procedure, its model family, its data view."""
    _, used, family = _readers(config)
    used |= CORE_SETTINGS
    if family is not None:
        used |= {"family", *family_parameters(family)}
    view = config.get("data_view")
    if view:
        used |= set(registry.metadata("data_view", view).get("settings", ()))
    return used


def describe_users(config: dict) -> str:
    """What an arm's settings can be used by, for an error message."""
    procedure, reads, family = _readers(config)
    parts = [f"procedure {procedure} reads {', '.join(sorted(reads)) or 'nothing'}"]
    if family is not None:
        parts.append(f"model family {family} takes {', '.join(sorted(family_parameters(family)))}")
    else:
        parts.append("it builds no model family")
    return "; ".join(parts)

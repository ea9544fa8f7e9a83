"""schema: the study file's format as pydantic models, and as JSON Schema for editors.

`StudyFile` and its parts check the structure and types of a study file (pass 1 of
`suite.core.loader`); the settings under `model:`, `training:` and `factors:` are declared by the
techniques (`suite.core.settings`) and enter the JSON Schema from there.
`python run_all.py --write-schema` writes `studies/schema.json`; a test keeps it current.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter

from suite.core import registry, settings
from suite.core.settings import NonNegativeInt, PositiveInt
from suite.core.study import EXPECTABLE, NEEDS, PROFILE_NAMES, TESTS

STUDIES_DIR = Path(__file__).resolve().parents[2] / "studies"
SCHEMA_PATH = STUDIES_DIR / "schema.json"

Text = Annotated[str, StringConstraints(strict=True, pattern=r"\S")]  # a non-empty string
Number = Annotated[float, Field(strict=True, allow_inf_nan=False)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class ProfileFile(_Strict):
    """One budget: how much data, how long, how many seeds."""

    train_examples: PositiveInt = Field(description="training examples per arm (an arm may set its own)")
    epochs: PositiveInt
    seeds: PositiveInt
    dataset: Text | None = Field(None, description="replaces the study's dataset for this profile")
    factors: dict[str, list[Any]] | None = Field(None, description="replaces the levels of some factors")
    exclude: list[dict[str, Any]] | None = Field(None, description="arms (selectors) this profile does not run")
    tune_seeds: PositiveInt | None = Field(
        None, description="tune, then judge: tuned values chosen on this many seeds of their own, judged on fresh seeds")
    looks: list[PositiveInt] | None = Field(
        None, description="judging seeds at each look, the first being `seeds`: undecided claims get the next look's")
    spending: Literal["pocock", "obrien_fleming"] | None = Field(None, description="alpha spending of the looks")


class TargetFile(_Strict):
    metric: Text
    value: Number


class ClaimFile(_Strict):
    """A claim judged from the trials: `better` arms beat `worse` arms (or the value `than`) on `metric`."""

    id: Text
    text: Text
    metric: Text
    better: Any = Field(description="factor -> level (or list of levels), or a list of such mappings")
    worse: Any = None
    than: Number | None = None
    direction: Literal["higher", "lower"] = "higher"
    epoch: NonNegativeInt | None = Field(None, description="judge at this epoch (0 = before training); default: the last")
    target: TargetFile | None = None
    expect: dict[str, Literal[EXPECTABLE]] = Field(default_factory=dict)
    notes: str = ""
    seeds: PositiveInt | None = Field(None, description="the fewest seeds the compared arms run (power)")
    margin: Annotated[float, Field(strict=True, gt=0, allow_inf_nan=False)] = Field(
        description="the smallest difference that matters, in the metric's units (for `ratio`: a factor > 1)")
    margin_reason: Text = Field(description="why that margin, in one line")
    gpu_scale: Text | None = Field(None, description="why the claim as its paper states it needs a GPU at CIFAR or "
                                                     "ImageNet scale; the verdict here is at Fashion-MNIST scale")
    test: Literal[TESTS] = Field("superior", description="superior (A beats B), noninferior (A is not worse than B "
                                                          "by more than the margin), equivalent (A is about as good as B)")
    ratio: Annotated[float, Field(strict=True, gt=0, allow_inf_nan=False)] | None = Field(
        None, description="judge log(better / worse) against this stated ratio (\"6x sooner\": 6)")
    selection: Literal["pooled", "per_seed", "per_seed_checkpoint"] = Field(
        "pooled", description="pooled: each arm's tuned values chosen once, on the mean over seeds; per_seed: chosen "
                              "for each seed on its own validation score (a claim about the selection itself); "
                              "per_seed_checkpoint: the tuned values and the epoch's checkpoint chosen for each seed "
                              "on its own validation score (early stopping on the dev set). Either per-seed selection gives the "
                              "arms it compares every tuned value on the judging seeds")
    needs: Literal[NEEDS] = Field(description="the budget it can be judged at: initialisation (epoch 0), training "
                                              "(the course of training, any budget), trained (nets trained to the end of "
                                              "their schedule: judged at the budget and again at half of it)")


class FactFile(_Strict):
    """A measured number shown without a verdict: it holds by construction, so a test could not fail."""
    id: Text
    text: Text
    metric: Text
    arms: list[Any] = Field(min_length=1, description="selectors (factor -> level): the arms shown side by side")
    epoch: NonNegativeInt | None = Field(None, description="the value at this epoch (0 = before training); default: the last")
    why: Text = Field(description="why it holds by construction")


class ReferenceFile(_Strict):
    """The reference arm and the accuracy its net is known to reach on this data when trained properly."""
    arm: dict[str, Any]
    accuracy: Annotated[float, Field(strict=True, gt=0, le=1, allow_inf_nan=False)]
    source: Text = Field(description="where that accuracy comes from (a paper, a benchmark, a documented long run)")


class NotJudgedFile(_Strict):
    id: Text
    text: Text
    reason: Text


class StudyFile(_Strict):
    """A study: a factor grid, budgets per profile, and the claims to judge."""

    name: Text = Field(description="equals the file name")
    title: Text
    question: Text
    dataset: Text
    model: dict[str, Any] = Field(description="model settings (fixed for every arm)")
    factors: dict[str, list[Any]] = Field(default_factory=dict, description="setting -> levels; every combination is an arm")
    training: dict[str, Any] = Field(description="training settings; a list of values is tuned per arm on validation data")
    probes: list[Text] = Field(default_factory=list)
    report: list[Text] = Field(default_factory=list, description="report sections drawn on this study's page, in order")
    profiles: dict[str, ProfileFile]
    claims: list[ClaimFile] = Field(default_factory=list)
    not_judged: list[NotJudgedFile] = Field(default_factory=list)
    facts: list[FactFile] = Field(default_factory=list)
    reference: ReferenceFile | None = None
    version: PositiveInt = 1
    notes: str = ""


MODELS_BY_PATH = {  # where in a file each model applies (for error messages)
    "": StudyFile, "profiles.*": ProfileFile, "claims.*": ClaimFile, "claims.*.target": TargetFile,
    "not_judged.*": NotJudgedFile, "facts.*": FactFile, "reference": ReferenceFile}


def json_schema() -> dict:
    """The study format as JSON Schema (draft 2020-12), with the settings the loaded techniques declare."""
    schema = StudyFile.model_json_schema()
    by_section = {section: {} for section in settings.SECTIONS}
    for name, setting in sorted(settings.list_settings().items()):
        one = TypeAdapter(setting.type).json_schema()
        if setting.doc:
            one["description"] = setting.doc
        by_section[setting.section][name] = one
    props = schema["properties"]
    props["model"] = {"type": "object", "additionalProperties": False, "properties": by_section["model"],
                      "description": props["model"].get("description", "")}
    props["training"] = {"type": "object", "additionalProperties": False, "description": props["training"]["description"],
                         "properties": {name: {"anyOf": [one, {"type": "array", "items": one, "minItems": 1}]}
                                        for name, one in by_section["training"].items()}}
    every = {**by_section["model"], **by_section["training"]}
    props["factors"] = {"type": "object", "additionalProperties": False, "description": props["factors"]["description"],
                        "properties": {name: {"type": "array", "items": one, "minItems": 1} for name, one in every.items()}}
    for field, kind in (("dataset", "dataset"), ("probes", "probe"), ("report", "report_section")):
        names = {"type": "string", "enum": registry.list_names(kind)}
        props[field] = {"type": "array", "items": names} if field != "dataset" else names
    schema["properties"]["profiles"]["required"] = list(PROFILE_NAMES)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "Study file (studies/<name>.yaml)"
    return schema


def write_json_schema(path: Path = SCHEMA_PATH) -> Path:
    path.write_text(json.dumps(json_schema(), indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path

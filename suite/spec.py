"""spec: reads and validates a study file into a frozen `Study`; nothing else reads YAML.

Every problem is a `SpecError` naming the file and the field (e.g.
`factors.activation[2]`) and, for names, the known ones; the CLI turns it into exit
status 2 before anything is trained.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from suite import registry

STUDIES_DIR = Path(__file__).resolve().parent.parent / "studies"
PROFILE_NAMES = ("smoke", "quick", "full")
PROFILE_KEYS = ("train_examples", "epochs", "seeds")
OPTIONAL_PROFILE_KEYS = ("dataset", "factors", "exclude")  # e.g. `full` on CIFAR-10 and deeper nets
TOP_KEYS = {"name", "title", "question", "dataset", "model", "factors", "training", "probes",
            "profiles", "claims", "not_judged", "version", "notes"}
REQUIRED_TOP = ("name", "title", "question", "dataset", "model", "training", "profiles")
CLAIM_KEYS = {"id", "text", "metric", "better", "worse", "than", "direction", "epoch", "target", "expect", "notes",
              "seeds"}
EXPECTABLE = ("supported", "contradicted")  # what `--check` can hold a decided verdict to
NOT_JUDGED_KEYS = {"id", "text", "reason"}
DIRECTIONS = ("higher", "lower")
# Metrics every trial records; probes add their own (suite.probes.PROBE_METRICS).
HISTORY_METRICS = ("val_accuracy", "val_loss", "train_accuracy", "train_loss")
# Metrics with one value per trial: the test set is touched once; costs and outcomes.
FINAL_ONLY_METRICS = ("test_accuracy", "test_loss", "step_seconds", "parameters", "diverged", "epochs_to_target")
TRAINING_METRICS = HISTORY_METRICS + FINAL_ONLY_METRICS


class SpecError(ValueError):
    """A study file that cannot be run: `file: field: problem`."""

    def __init__(self, path: str | Path, where: str, problem: str):
        self.path, self.where, self.problem = str(path), where, problem
        super().__init__(f"{path}: {where}: {problem}" if where else f"{path}: {problem}")


@dataclass(frozen=True)
class Profile:
    name: str
    train_examples: int
    epochs: int
    seeds: int
    dataset: str | None = None  # overrides the study's dataset for this profile
    factors: dict | None = None  # replaces the levels of some factors for this profile
    # arms not run in this profile: selectors like a claim's (GitHub Actions' `matrix.exclude`),
    # e.g. cells that no claim judges, left to a richer profile
    exclude: tuple = ()


@dataclass(frozen=True)
class Claim:
    id: str
    text: str
    metric: str
    better: dict | list  # factor -> level (or list of levels): the arm(s) the claim favours; a list of such
    # mappings averages each one's value with equal weight (a difference of differences, D1)
    worse: dict | list | None  # the arm(s) compared against, or None when compared with `than`
    direction: str = "higher"  # the `better` arm should score higher (or lower) on `metric`
    epoch: int | None = None  # None: the final epoch
    than: float | None = None  # a fixed value to beat instead of `worse` arms
    target: dict | None = None  # for epochs_to_target: {metric: history metric, value: number}
    expect: dict = field(default_factory=dict)  # profile -> verdict that `--check` requires
    notes: str = ""
    # power: the fewest seeds the compared arms run (in a run of two or more seeds), for an
    # effect that is small next to its seed-to-seed spread; None: the profile's seeds
    seeds: int | None = None


@dataclass(frozen=True)
class NotJudged:
    """A claim of CLAIMS.md this study covers but cannot measure, with the reason."""

    id: str
    text: str
    reason: str


@dataclass(frozen=True)
class Study:
    name: str
    title: str
    question: str
    dataset: str
    model: dict
    factors: dict  # factor name -> list of levels, in file order
    training: dict  # scalar: fixed; list: tuned per arm on the validation split
    probes: tuple
    profiles: dict  # profile name -> Profile
    claims: tuple
    not_judged: tuple = ()
    version: int = 1
    notes: str = ""
    path: str = field(default="", compare=False)

    def dataset_for(self, profile: Profile) -> str:
        return profile.dataset or self.dataset

    @property
    def tuned(self) -> dict:
        return {key: value for key, value in self.training.items() if isinstance(value, list)}

    def list_arms(self, profile: Profile | None = None) -> list[dict]:
        """Every combination of factor levels (as overridden by `profile`, less what it
        excludes), in file order."""
        factors = {**self.factors, **((profile.factors or {}) if profile else {})}
        arms = [dict(zip(factors, levels)) for levels in itertools.product(*factors.values())]
        return [arm for arm in arms if not (profile and any(matches(arm, cell) for cell in profile.exclude))]

    def seeds_for(self, arm: dict, seeds: int) -> int:
        """Seeds `arm` runs when the study runs `seeds`: more if a claim comparing it asks
        for more (its `seeds`). A one-seed run (smoke) judges nothing, so it does not grow."""
        wanted = [claim.seeds for claim in self.claims if claim.seeds and
                  (matches(arm, claim.better) or claim.worse is not None and matches(arm, claim.worse))]
        return max([seeds, *wanted]) if seeds > 1 else seeds


def arm_label(arm: dict, factors=None) -> str:
    """"he_normal / relu": the levels in factor order (`factors`, else the dict's order)."""
    order = list(factors) if factors is not None else list(arm)
    return " / ".join(str(arm[key]) for key in order) or "baseline"


def matches(arm: dict, selector: dict | list) -> bool:
    """Does `arm` fall under a claim's selector (a level or a list of levels per factor)?
    A list of selectors matches what any of them matches."""
    if isinstance(selector, list):
        return any(matches(arm, part) for part in selector)
    for key, wanted in selector.items():
        levels = wanted if isinstance(wanted, list) else [wanted]
        if arm.get(key) not in levels:
            return False
    return True


# ---- per-key value checks: (section, check) ------------------------------------------

def _positive_int(value) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        return f"must be a positive integer, got {value!r}"
    return None


def _positive_number(value) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        return f"must be a positive number, got {value!r}"
    return None


def _fraction(value) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        return f"must be a number in [0, 1), got {value!r}"
    return None


def _name_in(kind: str, is_known: Callable[[str], bool], list_known: Callable[[], list]) -> Callable:
    def check(value) -> str | None:
        if not isinstance(value, str):
            return f"must be a {kind} name (a string), got {value!r}"
        if not is_known(value):
            return f"unknown {kind} {value!r}; known: {', '.join(list_known())}"
        return None

    return check


def one_of(*levels) -> Callable:
    """Check for a setting with a fixed set of levels."""

    def check(value) -> str | None:
        return None if value in levels else f"must be one of {', '.join(map(str, levels))}, got {value!r}"

    return check


def registered_name(kind: str) -> Callable:
    """Check for a setting that names a registered `kind` (augmentation, data view, ...)."""
    return _name_in(kind, lambda n: registry.lookup(kind, n) is not None, lambda: registry.list_names(kind))


positive_int, positive_number, fraction = _positive_int, _positive_number, _fraction  # for component modules


def registered_metrics() -> dict[str, str]:
    """Metrics that components record beyond the training ones: name -> "final" | "epoch"."""
    from suite import components  # noqa: F401 (registers)

    return registry.entries("metric")


def _value_checks() -> dict[str, tuple[str, Callable]]:
    # Imported here: name checks need Keras, and `--list` should not.
    from suite import activations, components, initializers, models, transfer  # noqa: F401 (registers)
    from suite.train import is_known_optimizer, list_known_optimizers

    return {**registry.entries("setting"), **{
        "family": ("model", _name_in("model", lambda n: registry.lookup("model", n) is not None,
                                     lambda: registry.list_names("model"))),
        "depth": ("model", _positive_int),
        "width": ("model", _positive_int),
        "activation": ("model", _name_in("activation", activations.is_known, activations.list_known)),
        "kernel_initializer": ("model", _name_in("initializer", initializers.is_known, initializers.list_known)),
        "norm": ("model", _name_in("norm", lambda n: n in models.NORMS, lambda: list(models.NORMS))),
        "optimizer": ("training", _name_in("optimizer", is_known_optimizer, list_known_optimizers)),
        "learning_rate": ("training", _positive_number),
        "bias_initializer": ("model", _name_in("initializer", initializers.is_known, initializers.list_known)),
        "stem_stride": ("model", _positive_int),
        "batch_size": ("training", _positive_int),
        # transfer procedures (suite.transfer)
        "procedure": ("training", _name_in("procedure", lambda n: registry.lookup("procedure", n) is not None,
                                           lambda: registry.list_names("procedure"))),
        "labels_per_class": ("training", _positive_int),
        "source_epochs": ("training", _positive_int),
        "head_epochs": ("training", _positive_int),
        "steps_per_epoch": ("training", _positive_int),  # the fewest SGD steps in an epoch (few-shot sets repeat)
        "iterations": ("training", _positive_int),
        "lr_ratio": ("training", _fraction),
        "teacher_arch": ("model", _name_in("architecture", lambda n: n in transfer.ARCHITECTURES,
                                           lambda: list(transfer.ARCHITECTURES))),
        "student_arch": ("model", _name_in("architecture", lambda n: n in transfer.ARCHITECTURES,
                                           lambda: list(transfer.ARCHITECTURES))),
        "source_weights": ("model", _name_in("source", lambda n: n in ("pretrain", "imagenet"),
                                             lambda: ["pretrain", "imagenet"])),
        "momentum": ("training", _fraction),
        "train_examples": ("training", _positive_int),  # as a factor: training-set size (overrides the profile)
        "dropout": ("model", _fraction),
        "l2": ("model", lambda v: None if isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v < 1
               else f"must be a number in [0, 1), got {v!r}"),
    }}


# ---- loading -------------------------------------------------------------------------

class _StrictLoader(yaml.SafeLoader):
    """Safe loader that refuses duplicate keys (YAML would silently keep the last)."""


def _construct_mapping(loader, node, deep=False):
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return yaml.SafeLoader.construct_mapping(loader, node, deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def list_study_paths(directory: Path = STUDIES_DIR) -> list[Path]:
    return sorted(directory.glob("*.yaml"))


def find_study_path(name: str, directory: Path = STUDIES_DIR) -> Path:
    path = directory / f"{name}.yaml"
    if not path.exists():
        known = ", ".join(p.stem for p in list_study_paths(directory)) or "(none)"
        raise SpecError(path, "", f"no study named {name!r}; known studies: {known}")
    return path


def read_yaml(path: Path) -> dict:
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_StrictLoader)
    except yaml.YAMLError as err:
        raise SpecError(path, "yaml", f"not valid YAML: {err}") from None
    except OSError as err:
        raise SpecError(path, "", f"cannot be read: {err}") from None
    if not isinstance(data, dict):
        raise SpecError(path, "", f"must be a mapping of fields, got {type(data).__name__}")
    return data


def load_study(path: str | Path) -> Study:
    """Read and fully validate one study file."""
    path = Path(path)
    return _Validator(path).study(read_yaml(path))


class _Validator:
    def __init__(self, path: Path):
        self.path = path
        self.checks = _value_checks()

    def fail(self, where: str, problem: str):
        raise SpecError(self.path, where, problem)

    def expect(self, value, kind: type | tuple, where: str, what: str):
        if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
            self.fail(where, f"must be {what}, got {type(value).__name__} {value!r}")
        return value

    def text(self, value, where: str) -> str:
        if not isinstance(value, str) or not value.strip():
            self.fail(where, f"must be a non-empty string, got {value!r}")
        return value

    def keys(self, mapping: dict, allowed, where: str):
        for key in mapping:
            if key not in allowed:
                prefix = f"{where}." if where else ""
                self.fail(f"{prefix}{key}", f"unknown field; allowed: {', '.join(sorted(allowed))}")

    def positive_int(self, value, where: str) -> int:
        problem = _positive_int(value)
        if problem:
            self.fail(where, problem)
        return value

    def value(self, key: str, value, where: str):
        problem = self.checks[key][1](value)
        if problem:
            self.fail(where, problem)

    def dataset(self, name, where: str) -> str:
        self.text(name, where)
        if registry.lookup("dataset", name) is None:
            self.fail(where, f"unknown dataset {name!r}; known: {', '.join(registry.list_names('dataset'))}")
        return name

    def section(self, data: dict, name: str) -> dict:
        mapping = self.expect(data.get(name, {}), dict, name, "a mapping")
        allowed = [key for key, (section, _) in self.checks.items() if section == name]
        self.keys(mapping, allowed, name)
        return mapping

    def study(self, data: dict) -> Study:
        self.keys(data, TOP_KEYS, "")
        for key in REQUIRED_TOP:
            if key not in data:
                self.fail(key, "required field is missing")
        name = self.text(data["name"], "name")
        if name != self.path.stem:
            self.fail("name", f"{name!r} must equal the file name {self.path.stem!r}")
        dataset = self.dataset(data["dataset"], "dataset")

        model = self.section(data, "model")
        for key, value in model.items():
            self.value(key, value, f"model.{key}")
        training = self.section(data, "training")
        for key, value in training.items():
            for i, item in enumerate(value) if isinstance(value, list) else [(None, value)]:
                self.value(key, item, f"training.{key}" + ("" if i is None else f"[{i}]"))
            if isinstance(value, list) and not value:
                self.fail(f"training.{key}", "an empty list tunes over nothing")
        factors = self.factors(data.get("factors", {}))
        for key in ("optimizer", "learning_rate", "batch_size"):
            if key not in training and key not in factors:
                self.fail(f"training.{key}", "required field is missing (set it here or as a factor)")
        overlap = set(factors) & set(training)
        if overlap:
            self.fail(f"factors.{sorted(overlap)[0]}", "is also set under `training`; set it in one place")
        probes = self.probes(data.get("probes", []))
        profiles = self.profiles(data["profiles"], factors)
        version = self.positive_int(data.get("version", 1), "version")

        study = Study(
            name=name, title=self.text(data["title"], "title"), question=self.text(data["question"], "question"),
            dataset=dataset, model={"family": "mlp", **model}, factors=factors, training=training,
            probes=probes, profiles=profiles, claims=(), version=version,
            notes=str(data.get("notes", "")), path=str(self.path),
        )
        claims = self.claims(data.get("claims", []), study)
        not_judged = self.not_judged(data.get("not_judged", []), {c.id for c in claims})
        return Study(**{**study.__dict__, "claims": claims, "not_judged": not_judged})

    def not_judged(self, entries, judged_ids: set) -> tuple:
        self.expect(entries, list, "not_judged", "a list of {id, text, reason}")
        result = []
        for i, raw in enumerate(entries):
            where = f"not_judged[{i}]"
            self.expect(raw, dict, where, "a mapping")
            self.keys(raw, NOT_JUDGED_KEYS, where)
            values = {key: self.text(raw.get(key), f"{where}.{key}") for key in sorted(NOT_JUDGED_KEYS)}
            if values["id"] in judged_ids:
                self.fail(f"{where}.id", f"claim {values['id']!r} is also judged under `claims`")
            result.append(NotJudged(**values))
        return tuple(result)

    def factors(self, factors, where: str = "factors") -> dict:
        self.expect(factors, dict, where, "a mapping of factor name -> list of levels")
        for key, levels in factors.items():
            if key not in self.checks:
                self.fail(f"{where}.{key}", f"unknown factor; known: {', '.join(sorted(self.checks))}")
            self.expect(levels, list, f"{where}.{key}", "a list of levels")
            if not levels:
                self.fail(f"{where}.{key}", "empty list: the grid would have no arms")
            for i, level in enumerate(levels):
                self.value(key, level, f"{where}.{key}[{i}]")
            if len(set(map(str, levels))) != len(levels):
                self.fail(f"{where}.{key}", "lists a level twice")
        return factors

    def probes(self, probes) -> tuple:
        self.expect(probes, list, "probes", "a list of probe names")
        for i, probe in enumerate(probes):
            if registry.lookup("probe", probe) is None:
                self.fail(f"probes[{i}]", f"unknown probe {probe!r}; known: {', '.join(registry.list_names('probe'))}")
        return tuple(probes)

    def profiles(self, profiles, factors: dict) -> dict:
        self.expect(profiles, dict, "profiles", "a mapping of profile name -> budget")
        for name in PROFILE_NAMES:
            if name not in profiles:
                self.fail(f"profiles.{name}", "required profile is missing")
        result = {}
        for name, budget in profiles.items():
            where = f"profiles.{name}"
            self.expect(budget, dict, where, "a mapping with " + ", ".join(PROFILE_KEYS))
            self.keys(budget, PROFILE_KEYS + OPTIONAL_PROFILE_KEYS, where)
            for key in PROFILE_KEYS:
                if key not in budget:
                    self.fail(f"{where}.{key}", "required field is missing")
                self.positive_int(budget[key], f"{where}.{key}")
            if "dataset" in budget:
                self.dataset(budget["dataset"], f"{where}.dataset")
            if "factors" in budget:
                for key in self.factors(budget["factors"], f"{where}.factors"):
                    if key not in factors:
                        self.fail(f"{where}.factors.{key}", "a profile may only change the levels of the study's factors")
            if "exclude" in budget:
                budget = {**budget, "exclude": self.exclude(budget["exclude"], factors, f"{where}.exclude")}
            result[name] = Profile(name=name, **budget)
        return result

    def exclude(self, cells, factors: dict, where: str) -> tuple:
        self.expect(cells, list, where, "a list of mappings factor -> level (or list of levels)")
        for i, cell in enumerate(cells):
            self.expect(cell, dict, f"{where}[{i}]", "a mapping factor -> level (or list of levels)")
            self.levels(cell, factors, f"{where}[{i}]")
        return tuple(cells)

    def levels(self, selection: dict, factors: dict, where: str):
        """Every key of `selection` is a factor and every level it names is one of that factor's."""
        for key, wanted in selection.items():
            if key not in factors:
                self.fail(f"{where}.{key}", f"not a factor of this study; factors: {', '.join(factors) or '(none)'}")
            for level in wanted if isinstance(wanted, list) else [wanted]:
                if level not in factors[key]:
                    self.fail(f"{where}.{key}", f"no arm has {key}={level!r}; levels: {', '.join(map(str, factors[key]))}")

    def claims(self, claims, study: Study) -> tuple:
        from suite.probes import PROBE_METRICS

        self.expect(claims, list, "claims", "a list of claims")
        extra = registered_metrics()
        metrics = set(TRAINING_METRICS) | set(extra)
        for probe in study.probes:
            metrics |= set(PROBE_METRICS.get(probe, ()))
        arms_by_profile = {name: study.list_arms(profile) for name, profile in study.profiles.items()}
        seen, result = set(), []
        for i, raw in enumerate(claims):
            where = f"claims[{i}]"
            self.expect(raw, dict, where, "a mapping")
            self.keys(raw, CLAIM_KEYS, where)
            for key in ("id", "text", "metric", "better"):
                if key not in raw:
                    self.fail(f"{where}.{key}", "required field is missing")
            if ("worse" in raw) == ("than" in raw):
                self.fail(where, "needs exactly one of `worse` (arms to compare with) or `than` (a value to beat)")
            claim_id = self.text(raw["id"], f"{where}.id")
            if claim_id in seen:
                self.fail(f"{where}.id", f"duplicate claim id {claim_id!r}")
            seen.add(claim_id)
            metric = raw["metric"]
            if metric not in metrics:
                known = ", ".join(sorted(metrics))
                self.fail(f"{where}.metric", f"unknown metric {metric!r} for this study; known: {known}")
            direction = raw.get("direction", "higher")
            if direction not in DIRECTIONS:
                self.fail(f"{where}.direction", f"must be one of {', '.join(DIRECTIONS)}, got {direction!r}")
            epoch = raw.get("epoch")
            if epoch is not None:
                if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
                    self.fail(f"{where}.epoch", f"must be an epoch number >= 0 (0 = before training), got {epoch!r}")
                if metric in FINAL_ONLY_METRICS or extra.get(metric) == "final":
                    self.fail(f"{where}.epoch", f"{metric} has one value per trial, not one per epoch")
            target = self.target(raw.get("target"), metric, f"{where}.target")
            than = raw.get("than")
            if than is not None and (isinstance(than, bool) or not isinstance(than, (int, float))):
                self.fail(f"{where}.than", f"must be a number, got {than!r}")
            for side in ("better", "worse"):
                if side in raw:
                    self.selector(raw[side], study, arms_by_profile, f"{where}.{side}")
            if "worse" in raw:
                if raw["better"] == raw["worse"]:
                    self.fail(where, "`better` and `worse` select the same arms")
            result.append(Claim(id=claim_id, text=self.text(raw["text"], f"{where}.text"), metric=metric,
                                better=raw["better"], worse=raw.get("worse"), direction=direction, epoch=epoch,
                                than=None if than is None else float(than), target=target,
                                expect=self.expect_verdicts(raw.get("expect", {}), study, f"{where}.expect"),
                                notes=str(raw.get("notes", "")),
                                seeds=self.positive_int(raw["seeds"], f"{where}.seeds") if "seeds" in raw else None))
        return tuple(result)

    def expect_verdicts(self, expect, study: Study, where: str) -> dict:
        self.expect(expect, dict, where, "a mapping of profile -> supported|contradicted")
        for profile, verdict in expect.items():
            if profile not in study.profiles:
                self.fail(f"{where}.{profile}", f"no such profile; profiles: {', '.join(study.profiles)}")
            if verdict not in EXPECTABLE:
                self.fail(f"{where}.{profile}", f"must be one of {', '.join(EXPECTABLE)}, got {verdict!r}")
        return expect

    def target(self, target, metric: str, where: str) -> dict | None:
        """`epochs_to_target` needs {metric: a per-epoch metric, value: the level to reach}."""
        if metric != "epochs_to_target":
            if target is not None:
                self.fail(where, "only used with metric epochs_to_target")
            return None
        self.expect(target, dict, where, "a mapping {metric, value}")
        self.keys(target, {"metric", "value"}, where)
        per_epoch = list(HISTORY_METRICS) + [name for name, kind in registered_metrics().items() if kind == "epoch"]
        if target.get("metric") not in per_epoch:
            self.fail(f"{where}.metric", f"must be one of {', '.join(per_epoch)}, got {target.get('metric')!r}")
        value = target.get("value")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.fail(f"{where}.value", f"must be a number, got {value!r}")
        return {"metric": target["metric"], "value": float(value)}

    def selector(self, selector, study: Study, arms_by_profile: dict, where: str):
        if isinstance(selector, list) and selector:  # several selections, averaged (D1)
            for i, part in enumerate(selector):
                self.selector(part, study, arms_by_profile, f"{where}[{i}]")
            return
        self.expect(selector, dict, where, "a mapping of factor -> level, or a list of such mappings")
        self.levels(selector, study.factors, where)
        for profile, arms in arms_by_profile.items():
            if not any(matches(arm, selector) for arm in arms):
                self.fail(where, f"selects no arm of profile {profile!r}")

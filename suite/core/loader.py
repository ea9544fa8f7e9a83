"""loader: reads a study file, validates all of it, and returns a frozen `Study`.

Two passes, and every problem of a file is reported at once, each naming the file and the
dotted field (`factors.activation[1]`) and, for names, the known ones:
1. the file's structure and types, by the pydantic models below (`StudyFile` ...);
2. what only the registered techniques know: setting values (their declared types), names,
   metrics, selectors that must pick arms, and settings that nothing in an arm uses.
`suite.core.schema` holds the pydantic models and writes them as `studies/schema.json`. The CLI turns
a `SpecError` into exit status 2 before anything is trained. Reads no Keras.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import TypeAdapter, ValidationError

from suite.core import registry, settings
from suite.core.schema import MODELS_BY_PATH, STUDIES_DIR, StudyFile
from suite.core.study import (
    FINAL_ONLY_METRICS,
    HISTORY_METRICS,
    MAX_TRIALS,
    PROFILE_NAMES,
    STEP_CURVE_METRICS,
    TARGET_METRICS,
    Claim,
    Fact,
    Profile,
    Reference,
    Study,
    Unmeasurable,
    arm_label,
    count_trials,
    matches,
)

CHECKPOINT_METRICS = ("test_accuracy", "test_loss")  # scored at every epoch where a factor is read at evaluation
REQUIRED_TRAINING = ("optimizer", "learning_rate", "lr_schedule", "batch_size")  # in `training:` or as a factor


class SpecError(ValueError):
    """A study file that cannot be run: every problem as `file: field: problem`."""

    def __init__(self, path: str | Path, where: str | list, problem: str = ""):
        self.path = str(path)
        self.problems = where if isinstance(where, list) else [(where, problem)]
        self.where, self.problem = self.problems[0]
        lines = [f"{w}: {p}" if w else p for w, p in self.problems]
        if len(lines) == 1:
            super().__init__(f"{path}: {lines[0]}")
        else:
            super().__init__(f"{path}: {len(lines)} problems:\n  " + "\n  ".join(lines))


# ---- pass 1: structure (the pydantic models of suite.core.schema) ------------------------
def dotted(loc: tuple) -> str:
    """('factors', 'activation', 1) -> 'factors.activation[1]'."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _message(error: dict) -> str:
    kind, loc = error["type"], error["loc"]
    if kind == "missing":
        return "required field is missing"
    if kind == "extra_forbidden":
        parent = ".".join("*" if isinstance(p, int) or i == 1 and loc[0] == "profiles" else str(p)
                          for i, p in enumerate(loc[:-1]))
        model = MODELS_BY_PATH.get(parent)
        allowed = f"; allowed: {', '.join(model.model_fields)}" if model else ""
        return f"unknown field{allowed}"
    message = error["msg"].removeprefix("Value error, ")
    message = message[0].lower() + message[1:]
    return f"{message}, got {error['input']!r}" if "input" in error else message


def _structure_problems(data: dict) -> list[tuple[str, str]]:
    try:
        StudyFile.model_validate(data)
    except ValidationError as err:
        return [(dotted(e["loc"]), _message(e)) for e in err.errors()]
    return []


# ---- reading -----------------------------------------------------------------------------
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
        data = yaml.load(path.read_bytes().decode("utf-8"), Loader=_StrictLoader)
    except UnicodeDecodeError as err:
        raise SpecError(path, "", f"is not UTF-8 text (byte {err.start} is {path.read_bytes()[err.start]:#04x})") from None
    except yaml.YAMLError as err:
        raise SpecError(path, "yaml", f"not valid YAML: {err}") from None
    except OSError as err:
        raise SpecError(path, "", f"cannot be read: {err}") from None
    if not isinstance(data, dict):
        raise SpecError(path, "", f"must be a mapping of fields, got {type(data).__name__}")
    return data


def load_study(path: str | Path) -> Study:
    """Read and fully validate one study file (the techniques must be loaded: `plugins`)."""
    path = Path(path)
    data = read_yaml(path)
    problems = _structure_problems(data)
    if problems:
        raise SpecError(path, problems)
    refuse_huge_grids(path, data)  # before anything walks the arms
    checker = _Checker(path)
    study = checker.study(data)
    if checker.problems:
        raise SpecError(path, checker.problems)
    return study


def refuse_huge_grids(path: Path, data: dict, profile: str | None = None, seeds: int | None = None) -> None:
    """SpecError naming every profile that would plan more than MAX_TRIALS trials, counted from the
    structurally valid file's list lengths: nothing is expanded and no technique is loaded, so a
    10^8-arm grid is refused at once. `seeds` (--seeds) replaces `profile`'s own count."""
    tuned = {key: value for key, value in (data.get("training") or {}).items() if isinstance(value, list)}
    claim_seeds = tuple(claim.get("seeds") or 0 for claim in data.get("claims") or [])
    budgets = 2 if any(claim.get("needs") == "trained" for claim in data.get("claims") or []) else 1
    problems = []
    for name, budget in data["profiles"].items():
        factors = {**(data.get("factors") or {}), **(budget.get("factors") or {})}
        asked = seeds if name == profile and seeds else None
        most = max([budget["seeds"], *(budget.get("looks") or [])])  # the last look's seeds, if any
        count, how = count_trials(factors, tuned, asked or most, claim_seeds, budgets)
        if count > MAX_TRIALS:
            problems.append((f"profiles.{name}", f"plans {count:,} trials ({how}{f', from --seeds {asked}' if asked else ''}); "
                                                 f"a profile may plan at most {MAX_TRIALS:,}: fewer factors, levels, "
                                                 "tuned values or seeds"))
    if problems:
        raise SpecError(path, problems)


def check_grid_size(path: Path, profile: str, seeds: int | None = None) -> None:
    """The bound alone, before the techniques (and Keras) load: a file whose structure is wrong is
    left to load_study, which says what is wrong with it."""
    data = read_yaml(path)
    if not _structure_problems(data):
        refuse_huge_grids(path, data, profile, seeds)


# ---- pass 2: what the registered techniques know ----------------------------------------
class _Checker:
    """Checks a structurally valid file; collects every problem instead of stopping at the first."""

    def __init__(self, path: Path):
        self.path = path
        self.problems: list[tuple[str, str]] = []
        self.settings = settings.list_settings()
        self._adapters: dict[str, TypeAdapter] = {}

    def fail(self, where: str, problem: str) -> None:
        if (where, problem) not in self.problems:
            self.problems.append((where, problem))

    def value(self, key: str, value, where: str) -> None:
        adapter = self._adapters.setdefault(key, TypeAdapter(self.settings[key].type))
        try:
            adapter.validate_python(value)  # the file's own value is kept: it enters the trial key as written
        except ValidationError as err:
            for error in err.errors():
                self.fail(where, _message({**error, "loc": ()}))

    def name_in(self, kind: str, name, where: str) -> None:
        if registry.lookup(kind, name) is None:
            self.fail(where, f"unknown {kind} {name!r}; known: {', '.join(registry.list_names(kind))}")

    def section(self, data: dict, name: str) -> dict:
        mapping = data.get(name, {})
        allowed = sorted(key for key, setting in self.settings.items() if setting.section == name)
        for key, value in mapping.items():
            if key not in self.settings or self.settings[key].section != name:
                self.fail(f"{name}.{key}", f"unknown field; allowed: {', '.join(allowed)}")
                continue
            items = list(enumerate(value)) if isinstance(value, list) and name == "training" else [(None, value)]
            if isinstance(value, list) and not value:
                self.fail(f"{name}.{key}", "an empty list tunes over nothing")
            for i, item in items:
                self.value(key, item, f"{name}.{key}" + ("" if i is None else f"[{i}]"))
        return {key: value for key, value in mapping.items() if key in self.settings}

    def factors(self, factors: dict, where: str = "factors") -> dict:
        for key, levels in factors.items():
            if key not in self.settings:
                self.fail(f"{where}.{key}", f"unknown factor; known: {', '.join(sorted(self.settings))}")
                continue
            if not levels:
                self.fail(f"{where}.{key}", "empty list: the grid would have no arms")
            for i, level in enumerate(levels):
                self.value(key, level, f"{where}.{key}[{i}]")
            if len(set(map(str, levels))) != len(levels):
                self.fail(f"{where}.{key}", "lists a level twice")
        return factors

    def study(self, data: dict) -> Study:
        name = data["name"]
        if name != self.path.stem:
            self.fail("name", f"{name!r} must equal the file name {self.path.stem!r}")
        self.name_in("dataset", data["dataset"], "dataset")
        model = self.section(data, "model")
        training = self.section(data, "training")
        factors = self.factors(data.get("factors", {}))
        for key in REQUIRED_TRAINING:
            if key not in training and key not in factors:
                self.fail(f"training.{key}", "required field is missing (set it here or as a factor)")
        for key in sorted(set(factors) & set(training)):
            self.fail(f"factors.{key}", "is also set under `training`; set it in one place")
        for i, probe in enumerate(data.get("probes", [])):
            self.name_in("probe", probe, f"probes[{i}]")
        for i, section in enumerate(data.get("report", [])):
            self.name_in("report_section", section, f"report[{i}]")
        profiles = self.profiles(data["profiles"], factors, training)
        study = Study(
            name=name, title=data["title"], question=data["question"], dataset=data["dataset"],
            model={"family": settings.DEFAULT_FAMILY, **model}, factors=factors, training=training,
            probes=tuple(data.get("probes", [])), profiles=profiles, claims=(), version=data.get("version", 1),
            notes=str(data.get("notes", "")), report=tuple(data.get("report", [])), path=str(self.path),
        )
        self.unused_settings(study, model)
        claims = self.claims(data.get("claims", []), study)
        facts = self.facts(data.get("facts", []), study, {c.id for c in claims})
        not_judged = self.not_judged(data.get("not_judged", []), {c.id for c in claims} | {f.id for f in facts})
        reference = self.reference(data.get("reference"), study)
        return Study(**{**study.__dict__, "claims": claims, "not_judged": not_judged, "facts": facts,
                        "reference": reference})

    def unused_settings(self, study: Study, model: dict) -> None:
        """A setting that nothing in an arm reads would be silently ignored: refuse it."""
        fixed = {key: value for key, value in study.training.items() if not isinstance(value, list)}
        tuned = {key: values[0] for key, values in study.tuned.items() if values}
        stated = {**{key: f"model.{key}" for key in model}, **{key: f"training.{key}" for key in study.training},
                  **{key: f"factors.{key}" for key in study.factors}}
        reported = set()  # one problem per field: the first arm that does not use it
        for profile in study.profiles.values():
            for arm in study.list_arms(profile):
                config = {**study.model, **fixed, **tuned, **arm}
                used = settings.settings_used(config)
                procedure = config.get("procedure", settings.STANDARD_PROCEDURE)
                if study.probes and not registry.metadata("procedure", procedure).get("probes") \
                        and "probes" not in reported:
                    reported.add("probes")
                    self.fail("probes", f"procedure {procedure} runs no probes (arm {arm_label(arm)!r}); "
                                        "remove them or use a procedure that runs them")
                for key, where in stated.items():
                    if key not in used and where not in reported:
                        reported.add(where)
                        self.fail(where, f"is not used by anything in arm {arm_label(arm)!r} "
                                         f"({settings.describe_users(config)})")

    def not_judged(self, entries: list, judged_ids: set) -> tuple:
        result = []
        for i, raw in enumerate(entries):
            if raw["id"] in judged_ids:
                self.fail(f"not_judged[{i}].id", f"{raw['id']!r} is also listed under `claims` or `facts`")
            result.append(Unmeasurable(id=raw["id"], text=raw["text"], reason=raw["reason"]))
        return tuple(result)

    def facts(self, entries: list, study: Study, claim_ids: set) -> tuple:
        metrics = self.metrics(study)
        arms_by_profile = {name: study.list_arms(profile) for name, profile in study.profiles.items()}
        seen, result = set(), []
        for i, raw in enumerate(entries):
            where = f"facts[{i}]"
            if raw["id"] in claim_ids | seen:
                self.fail(f"{where}.id", f"duplicate id {raw['id']!r} (ids are shared by claims and facts)")
            seen.add(raw["id"])
            if raw["metric"] not in metrics:
                self.fail(f"{where}.metric", f"unknown metric {raw['metric']!r} for this study; "
                                             f"known: {', '.join(sorted(metrics))}")
            if raw.get("epoch") is not None and metrics.get(raw["metric"]) == "final":
                self.fail(f"{where}.epoch", f"{raw['metric']} has one value per trial, not one per epoch")
            for j, selector in enumerate(raw["arms"]):
                self.selector(selector, study, arms_by_profile, f"{where}.arms[{j}]")
            result.append(Fact(id=raw["id"], text=raw["text"], metric=raw["metric"], arms=tuple(raw["arms"]),
                               why=raw["why"], epoch=raw.get("epoch")))
        return tuple(result)

    def reference(self, raw: dict | None, study: Study) -> Reference | None:
        if raw is None:
            return None
        arms_by_profile = {name: study.list_arms(profile) for name, profile in study.profiles.items()}
        self.selector(raw["arm"], study, arms_by_profile, "reference.arm")
        for profile, arms in arms_by_profile.items():
            count = sum(matches(arm, raw["arm"]) for arm in arms)
            if count > 1:
                self.fail("reference.arm", f"selects {count} arms of profile {profile!r}; name one arm")
        return Reference(arm=dict(raw["arm"]), accuracy=float(raw["accuracy"]), source=raw["source"])

    def profiles(self, profiles: dict, factors: dict, training: dict) -> dict:
        for name in PROFILE_NAMES:
            if name not in profiles:
                self.fail(f"profiles.{name}", "required profile is missing")
        result = {}
        for name, budget in profiles.items():
            where = f"profiles.{name}"
            if budget.get("dataset") is not None:
                self.name_in("dataset", budget["dataset"], f"{where}.dataset")
            for key in self.factors(budget.get("factors") or {}, f"{where}.factors"):
                if key not in factors:
                    self.fail(f"{where}.factors.{key}", "a profile may only change the levels of the study's factors")
            for i, cell in enumerate(budget.get("exclude") or []):
                self.levels(cell, factors, f"{where}.exclude[{i}]")
            self.sequential(budget, where, any(isinstance(v, list) for v in training.values()))
            result[name] = Profile(name=name, **{**budget, "exclude": tuple(budget.get("exclude") or ()),
                                                 "looks": tuple(budget.get("looks") or ()),
                                                 "spending": budget.get("spending") or "pocock"})
        return result

    def sequential(self, budget: dict, where: str, tunes: bool) -> None:
        """Looks rise from the profile's `seeds`; a spending function without looks, or seeds to tune on
        where nothing is tuned, would be a setting nothing uses."""
        looks = budget.get("looks")
        if looks is not None:
            if len(looks) < 2 or any(a >= b for a, b in zip(looks, looks[1:])):
                self.fail(f"{where}.looks", f"needs two or more rising seed counts, got {looks}")
            elif looks[0] != budget["seeds"]:
                self.fail(f"{where}.looks", f"the first look is the profile's seeds ({budget['seeds']}), got {looks[0]}")
        elif budget.get("spending") is not None:
            self.fail(f"{where}.spending", "spends alpha over looks, and this profile has no `looks`")
        if budget.get("tune_seeds") is not None and not tunes:
            self.fail(f"{where}.tune_seeds", "nothing in `training` is tuned (no list of values) to tune on these seeds")

    def levels(self, selection: dict, factors: dict, where: str) -> None:
        """Every key of `selection` is a factor and every level it names is one of that factor's."""
        for key, wanted in selection.items():
            if key not in factors:
                self.fail(f"{where}.{key}", f"not a factor of this study; factors: {', '.join(factors) or '(none)'}")
                continue
            for level in wanted if isinstance(wanted, list) else [wanted]:
                if level not in factors[key]:
                    self.fail(f"{where}.{key}", f"no arm has {key}={level!r}; levels: {', '.join(map(str, factors[key]))}")

    def metrics(self, study: Study) -> dict[str, str]:
        """Every metric a claim of this study may name -> "final" | "epoch"."""
        known = {**{m: "epoch" for m in HISTORY_METRICS}, **{m: "final" for m in FINAL_ONLY_METRICS}}
        for metric, kind in registry.entries("metric").items():
            if registry.metadata("metric", metric).get("probe") in (None, *study.probes):
                known[metric] = kind
        return known

    def claims(self, claims: list, study: Study) -> tuple:
        metrics = self.metrics(study)
        arms_by_profile = {name: study.list_arms(profile) for name, profile in study.profiles.items()}
        seen, result = set(), []
        for i, raw in enumerate(claims):
            where = f"claims[{i}]"
            if (raw.get("worse") is None) == (raw.get("than") is None):
                self.fail(where, "needs exactly one of `worse` (arms to compare with) or `than` (a value to beat)")
            if raw["id"] in seen:
                self.fail(f"{where}.id", f"duplicate claim id {raw['id']!r}")
            seen.add(raw["id"])
            metric = raw["metric"]
            if metric not in metrics:
                self.fail(f"{where}.metric", f"unknown metric {metric!r} for this study; known: {', '.join(sorted(metrics))}")
            if raw.get("epoch") is not None and metrics.get(metric) == "final":
                self.fail(f"{where}.epoch", f"{metric} has one value per trial, not one per epoch")
            target = self.target(raw.get("target"), metric, metrics, f"{where}.target")
            for side in ("better", "worse"):
                if raw.get(side) is not None:
                    self.selector(raw[side], study, arms_by_profile, f"{where}.{side}")
            if raw.get("worse") is not None and raw["better"] == raw["worse"]:
                self.fail(where, "`better` and `worse` select the same arms")
            if raw.get("ratio") is not None:
                if raw.get("worse") is None:
                    self.fail(f"{where}.ratio", "a ratio compares two arms: needs `worse`, not `than`")
                if raw.get("margin") is not None and raw["margin"] <= 1:
                    self.fail(f"{where}.margin", "for a ratio claim the margin is a factor > 1 (1.2: within 20%)")
            for profile in raw.get("expect", {}):
                if profile not in study.profiles:
                    self.fail(f"{where}.expect.{profile}", f"no such profile; profiles: {', '.join(study.profiles)}")
            result.append(Claim(id=raw["id"], text=raw["text"], metric=metric, better=raw["better"],
                                worse=raw.get("worse"), direction=raw.get("direction", "higher"), epoch=raw.get("epoch"),
                                than=None if raw.get("than") is None else float(raw["than"]), target=target,
                                expect=dict(raw.get("expect", {})), notes=str(raw.get("notes", "")), seeds=raw.get("seeds"),
                                margin=raw.get("margin"), margin_reason=raw.get("margin_reason") or "",
                                test=raw.get("test", "superior"), ratio=raw.get("ratio"), needs=raw["needs"],
                                selection=raw.get("selection", "pooled"), gpu_scale=raw.get("gpu_scale") or ""))
            if raw.get("selection") == "per_seed" and not study.tuned:
                self.fail(f"{where}.selection", "per_seed chooses among tuned values: the study tunes none")
            if raw.get("selection") == "per_seed_checkpoint":
                self.checkpoint_selection(study, metric, f"{where}.selection")
        return tuple(result)

    def checkpoint_selection(self, study: Study, metric: str, where: str) -> None:
        """Each epoch's checkpoint is scored on the test set only where a factor is read at evaluation
        (several dev sets score one net: a question of model selection), so only there can a claim on
        a test metric choose among checkpoints."""
        if metric not in CHECKPOINT_METRICS:
            self.fail(where, f"per_seed_checkpoint reads each epoch's {' or '.join(CHECKPOINT_METRICS)}; "
                             f"the metric is {metric}")
        if not set(study.factors) & settings.evaluation_only_settings():
            self.fail(where, "per_seed_checkpoint needs each epoch's test score, kept only in a study with a factor "
                             f"read at evaluation ({', '.join(sorted(settings.evaluation_only_settings())) or 'none here'})")

    def target(self, target: dict | None, metric: str, metrics: dict, where: str) -> dict | None:
        """`epochs_to_target` needs {metric: a per-epoch metric, value: the level to reach};
        `steps_to_target` one of the step curve's metrics."""
        if metric not in TARGET_METRICS:
            if target is not None:
                self.fail(where, f"only used with metric {' or '.join(TARGET_METRICS)}")
            return None
        if target is None:
            self.fail(where, f"must be a mapping {{metric, value}}: {metric} needs a target")
            return None
        per_epoch = ([name for name, kind in metrics.items() if kind == "epoch"] if metric == "epochs_to_target"
                     else list(STEP_CURVE_METRICS))
        if target["metric"] not in per_epoch:
            self.fail(f"{where}.metric", f"must be one of {', '.join(per_epoch)}, got {target['metric']!r}")
        return {"metric": target["metric"], "value": float(target["value"])}

    def selector(self, selector, study: Study, arms_by_profile: dict, where: str) -> None:
        if isinstance(selector, list) and selector:  # several selections, averaged (D1)
            for i, part in enumerate(selector):
                self.selector(part, study, arms_by_profile, f"{where}[{i}]")
            return
        if not isinstance(selector, dict):
            self.fail(where, f"must be a mapping of factor -> level, or a list of such mappings, got {selector!r}")
            return
        problems = len(self.problems)
        self.levels(selector, study.factors, where)
        if len(self.problems) > problems:
            return
        for profile, arms in arms_by_profile.items():
            if not any(matches(arm, selector) for arm in arms):
                self.fail(where, f"selects no arm of profile {profile!r}")

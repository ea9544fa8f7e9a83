"""study: the validated, frozen form of a study file (`Study`, `Profile`, `Claim`) and arm selection.

Built only by `suite.core.loader`; everything downstream (plan, analysis, report) reads these.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

PROFILE_NAMES = ("smoke", "quick", "standard", "full")
EXPECTABLE = ("supported", "contradicted", "equivalent")  # what `--check` can hold a decided verdict to
DIRECTIONS = ("higher", "lower")
TESTS = ("superior", "noninferior", "equivalent")  # what a claim's `test` may be (suite.core.verdicts decides each)
# Metrics every classification trial records; probes and procedures declare their own ("metric" kind).
HISTORY_METRICS = ("val_accuracy", "val_loss", "train_accuracy", "train_loss")
# Metrics with one value per trial: the test set is touched once (where dev sets choose among checkpoints,
# each checkpoint's test score is kept as well: `selection: per_seed_checkpoint`); costs and outcomes.
FINAL_ONLY_METRICS = ("test_accuracy", "test_loss", "step_seconds", "parameters", "diverged", "epochs_to_target",
                      "steps_to_target")
# Speed metrics: the time until a target level ({metric, value}) of a training curve
TARGET_METRICS = ("epochs_to_target", "steps_to_target")
# what `steps_to_target` can read: the columns of the step curve (suite.core.step_curve)
STEP_CURVE_METRICS = ("train_accuracy", "train_loss")
TRAINING_METRICS = HISTORY_METRICS + FINAL_ONLY_METRICS
# Metrics of the compiled program rather than of one net: the members of a pack share one
# measurement, so a claim on one of these would count one timing as n seeds. The trials of the
# arms such a claim compares train alone, each seed timed on its own (suite.core.packs).
PROGRAM_METRICS = ("step_seconds",)
# What budget a claim needs to be judged (its `needs`): `initialisation`, a claim about the net
# before training (epoch 0); `training`, about the course of training at any budget (speed to
# a target, early behaviour); `trained`, about nets trained to the end of their schedule: judged
# at the profile's budget B and again, on runs of their own, at half of it (suite.core.budget).
NEEDS = ("initialisation", "training", "trained")
# The most trials one profile may plan: a grid past it is a typo or a hostile file, refused
# before it is expanded (10^8 arms would fill the memory before the first trial ran).
MAX_TRIALS = 20_000


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
    # tune, then judge: each arm's tuned values are chosen on this many seeds of their own (the whole
    # grid at the budget), then frozen and judged on fresh seeds; None: the same seeds choose and judge
    tune_seeds: int | None = None
    # judging seeds at each pre-registered look (suite.core.sequential), the first being `seeds`: an
    # undecided claim's arms get the next look's; (): every arm runs `seeds` and is judged once
    looks: tuple = ()
    spending: str = "pocock"  # the alpha-spending function of the looks: pocock | obrien_fleming


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
    target: dict | None = None  # for epochs_/steps_to_target: {metric: history metric, value: number}
    expect: dict = field(default_factory=dict)  # profile -> verdict that `--check` requires
    notes: str = ""
    # power: the fewest seeds the compared arms run (in a run of two or more seeds), for an
    # effect that is small next to its seed-to-seed spread; None: the profile's seeds
    seeds: int | None = None
    margin: float | None = None  # the smallest difference that matters, in the metric's units (a factor for `ratio`);
    # every study file declares one (the loader requires it); None only in hand-built claims
    margin_reason: str = ""  # why that much, one line
    # why the claim as its paper states it needs a GPU at CIFAR or ImageNet scale ("" where this suite's
    # Fashion-MNIST-scale verdict is the claim's own): shown beside the verdict, and listed on the results page
    gpu_scale: str = ""
    test: str = "superior"  # superior | noninferior | equivalent (suite.core.verdicts)
    ratio: float | None = None  # judge log(better / worse) against this stated ratio ("6x sooner")
    needs: str = "training"  # one of NEEDS: the budget the claim can be judged at
    # pooled: the trials of each arm's tuned values chosen on the mean over seeds (`selected`); per_seed:
    # each seed's own best trial on validation, so a claim about the selection varies from seed to seed;
    # per_seed_checkpoint: each seed's best trial and epoch on validation (early stopping on the dev set)
    selection: str = "pooled"

    def compares(self, arm: dict) -> bool:
        """Whether `arm` is on either side of the claim."""
        return matches(arm, self.better) or self.worse is not None and matches(arm, self.worse)


@dataclass(frozen=True)
class Fact:
    """A measured number shown without a verdict, because it holds by construction (a
    parameter or FLOP count, an output range): a test of it could not fail."""

    id: str
    text: str
    metric: str
    arms: tuple  # selectors, shown side by side
    why: str  # why it holds by construction
    epoch: int | None = None  # None: the final epoch


@dataclass(frozen=True)
class Reference:
    """The study's reference arm and the accuracy its net is known to reach on this data when
    trained properly: the report says how much of it the budget reaches."""

    arm: dict
    accuracy: float
    source: str
    metric: str = "test_accuracy"


@dataclass(frozen=True)
class Unmeasurable:
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
    facts: tuple = ()
    reference: Reference | None = None
    version: int = 1
    notes: str = ""
    report: tuple = ()  # report sections (kind "report_section") drawn on this study's page, in order
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

    def checks_budget(self, arm: dict) -> bool:
        """Whether a claim about trained nets compares `arm`: it then also runs at half the budget."""
        return any(claim.needs == "trained" and claim.compares(arm) for claim in self.claims)

    def selects_per_seed(self, arm: dict) -> bool:
        """Whether a claim about the selection itself (`selection` per seed) compares `arm`: its
        judging seeds then run every tuned value, for each seed to choose among."""
        return any(claim.selection != "pooled" and claim.compares(arm) for claim in self.claims)

    def seeds_for(self, arm: dict, seeds: int) -> int:
        """Seeds `arm` runs when the study runs `seeds`: more if a claim comparing it asks
        for more (its `seeds`). A one-seed run (smoke) judges nothing, so it does not grow."""
        wanted = [claim.seeds for claim in self.claims if claim.seeds and claim.compares(arm)]
        return max([seeds, *wanted]) if seeds > 1 else seeds


def count_trials(factors: dict, tuned: dict, seeds: int, claim_seeds: tuple = (),
                 budgets: int = 1) -> tuple[int, str]:
    """(at most how many trials a grid plans: arms x tuned values x seeds x budgets, "depth 10 x
    width 10 arms x 3 learning_rate x 5 seeds") from the lengths of the lists alone: nothing is
    expanded, so a hostile grid is refused before it exists. `claim_seeds`: the claims' `seeds`,
    which grow the arms they compare (Study.seeds_for); `budgets`: 2 where claims about trained
    nets add runs at half the budget."""
    most_seeds = max([seeds, *claim_seeds]) if seeds > 1 else seeds
    count = math.prod(map(len, factors.values())) * math.prod(map(len, tuned.values())) * most_seeds * budgets
    arms = " x ".join(f"{name} {len(levels)}" for name, levels in factors.items()) + " arms" if factors else "1 arm"
    parts = [arms, *(f"{len(values)} {name}" for name, values in tuned.items()),
             f"{most_seeds} seed" + ("s" if most_seeds != 1 else ""), *(["2 budgets"] if budgets == 2 else [])]
    return count, " x ".join(parts)


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

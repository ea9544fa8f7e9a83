"""budget: whether a verdict about trained nets holds at half the budget too.

A claim that `needs: trained` is judged at the profile's budget B and again at B/2: runs of their
own at half the epochs (suite.core.plan), each with its learning-rate schedule over its own steps,
tuned on their own validation scores. The two verdicts give the claim's outcome:

| at B/2 | at B | outcome | the page says |
|---|---|---|---|
| X | X (decided) | X | holds at B/2 and B |
| inconclusive | inconclusive | inconclusive | inconclusive at B/2 and B |
| X | Y, both decided, X != Y | budget-dependent | X at B/2, Y at B, with both effects |
| undecided | X (decided) | X | decided at B only: the effect grows with training (1) |
| X (decided) | inconclusive | inconclusive | decided at B/2 only: the effect fades with training (1) |
| none | anything | the verdict at B | not checked (no runs at B/2, e.g. a one-epoch budget) |

(1) For an equivalence: longer training settled it / leaves it undecided.
With looks, the verdict at B/2 stops at the look that decides it or where B stopped, whichever is
first, and an arm's seeds at B/2 follow its claims about trained nets (suite.core.sequential).
"Decided" is supported, contradicted or equivalent; a claim not judged at B stays not judged; one
not judged at B/2 counts as undecided there. A budget-dependent outcome is a finding about the claim
(when it holds), not a failure of the run. This replaces a rule that read the last fifth of the
training loss, which a loss falling like t^-a fails at every budget and a stalled net passes.
"""

from __future__ import annotations

from dataclasses import dataclass

from suite.core.verdicts import DECIDED, EQUIVALENT, INCONCLUSIVE

BUDGET_DEPENDENT = "budget-dependent"
NOT_JUDGED = "not judged"

# the cases of the table above
HOLDS, UNDECIDED, DEPENDS, EMERGES, FADES, NOT_CHECKED = (
    "holds", "undecided at both", "budget-dependent", "decided at B only", "decided at B/2 only", "not checked")


@dataclass(frozen=True)
class BudgetCheck:
    case: str  # one of the cases above
    outcome: str  # the claim's verdict after the check
    half: dict | None  # {verdict, effect, ci, n, epochs} at B/2; None: not checked
    full: dict  # the same at B
    note: str  # the sentence the page shows

    def as_dict(self) -> dict:
        return {"case": self.case, "outcome": self.outcome, "half": self.half, "full": self.full, "note": self.note}


def split_records(records: list[dict]) -> tuple[list[dict], list[dict]]:
    """(the records at the profile's budget, those of the budget check's runs at half the epochs)."""
    return [r for r in records if not r.get("half_budget")], [r for r in records if r.get("half_budget")]


def combine(full: str, half: str | None) -> tuple[str, str]:
    """(case, outcome) of the verdict words at B and at B/2 (None: no runs at B/2)."""
    if full == NOT_JUDGED:
        return NOT_CHECKED, NOT_JUDGED
    if half is None:
        return NOT_CHECKED, full
    half_decided, full_decided = half in DECIDED, full in DECIDED
    if half_decided and full_decided:
        return (HOLDS, full) if half == full else (DEPENDS, BUDGET_DEPENDENT)
    if full_decided:
        return EMERGES, full
    if half_decided:
        return FADES, full
    return UNDECIDED, full


def check(full: dict, half: dict | None) -> BudgetCheck:
    """The budget check of one claim from its verdict at B and at B/2 (`{verdict, effect, ci, n, epochs}`)."""
    case, outcome = combine(full["verdict"], half["verdict"] if half else None)
    return BudgetCheck(case, outcome, half, full, _note(case, full, half))


def _at(side: dict) -> str:
    effect = side.get("effect")
    shown = "" if effect is None else f" (effect {effect:+.3g}, n = {side.get('n')})"
    return f"{side['verdict']} at {side['epochs']} epochs{shown}"


def _note(case: str, full: dict, half: dict | None) -> str:
    if case == NOT_CHECKED:
        if full["verdict"] == NOT_JUDGED:
            return ""
        return "not checked at half the budget: " + ("one epoch cannot be halved" if full.get("epochs") == 1
                                                     else "no runs at half the budget")
    if case == HOLDS:
        return f"holds at half the budget and at the budget: {_at(half)}; {_at(full)}"
    if case == DEPENDS:
        return f"budget-dependent: {_at(half)}, but {_at(full)}"
    if case == EMERGES:  # an equivalence that longer training settles is no growing effect
        why = ("at half the budget no compared arm had learned" if half["verdict"] == NOT_JUDGED
               else "longer training settled it" if full["verdict"] == EQUIVALENT else "the effect grows with training")
        return f"decided at the budget only: {_at(half)}; {_at(full)}: {why}"
    if case == FADES:
        why = "longer training leaves it undecided" if half["verdict"] == EQUIVALENT else "the effect fades with training"
        return f"decided at half the budget only: {_at(half)}, but {_at(full)}: {why}"
    return f"{INCONCLUSIVE} at half the budget and at the budget: {_at(half)}; {_at(full)}"

"""frames: trial records as tidy pandas frames, the tuned values each arm chose, and means.

One row per trial (`trials_frame`), per trial and epoch (`epochs_frame`), per trial, epoch and
hidden layer (`layers_frame`); per arm, the tuned training values chosen on the validation
split (`tuning_table`, `mark_selected`); a mean with its 95% t-interval over seeds (`mean_ci`).
Pure pandas and scipy: imports no Keras and judges nothing (suite.core.analysis does).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from suite.core.study import Study, arm_label

CONFIDENCE = 0.95
TUNING_METRIC = "val_accuracy"  # tuned values are chosen on validation data, never on test


def _identity(record: dict, study: Study) -> dict:
    # stored records have sorted keys: label in the study's factor order
    return {"key": record["key"], "arm": arm_label(record["arm"], study.factors), **record["arm"],
            **{f"tuned_{k}": v for k, v in record.get("tuning", {}).items()}, "seed": record["seed"]}


def trials_frame(records: list[dict], study: Study) -> pd.DataFrame:
    """One row per trial: identity, status, final metrics, timings."""
    rows = []
    for record in records:
        row = {**_identity(record, study), "status": record["status"], "message": record.get("message", ""),
               "diverged": float(record["status"] == "diverged")}
        row.update({k: v for k, v in record.get("final", {}).items()})
        row.update({k: v for k, v in record.get("timing", {}).items()})
        row["step_curve"] = record.get("step_curve")  # read by steps_to_target
        row["classes"] = record.get("provenance", {}).get("classes")  # chance is 1 / classes
        rows.append(row)
    frame = pd.DataFrame(rows)
    return frame.astype({c: float for c in frame.columns if frame[c].dtype == object and _numeric(frame[c])})


def _numeric(column: pd.Series) -> bool:
    return column.map(lambda v: v is None or isinstance(v, (int, float)) and not isinstance(v, bool)).all()


def epochs_frame(records: list[dict], study: Study) -> pd.DataFrame:
    """One row per (trial, epoch); epoch 0 is before training (probe columns only)."""
    rows = [{**_identity(r, study), "status": r["status"], **epoch} for r in records for epoch in r.get("history", [])]
    frame = pd.DataFrame(rows)
    return frame.astype({c: float for c in frame.columns if frame[c].dtype == object and _numeric(frame[c])})


def layers_frame(records: list[dict], study: Study) -> pd.DataFrame:
    """One row per (trial, epoch, hidden layer) from the probes, histograms included."""
    return pd.DataFrame([{**_identity(r, study), **row} for r in records for row in r.get("layers", [])])


def tuning_table(trials: pd.DataFrame, study: Study) -> pd.DataFrame:
    """Per arm and tuned value: mean validation accuracy over seeds (failed trials count 0)."""
    tuned = [f"tuned_{k}" for k in study.tuned]
    if not tuned or trials.empty:
        return pd.DataFrame()
    scores = trials.assign(score=trials[TUNING_METRIC].fillna(0.0) if TUNING_METRIC in trials else 0.0)
    table = scores.groupby(["arm", *tuned], sort=False).agg(
        val_accuracy=("score", "mean"), seeds=("seed", "nunique"),
        failed=("status", lambda s: int((s != "ok").sum()))).reset_index()
    best = table.groupby("arm", sort=False)["val_accuracy"].transform("max")
    table["chosen"] = False
    for _, group in table[table["val_accuracy"] == best].groupby("arm", sort=False):
        table.loc[group.index[0], "chosen"] = True  # ties: the first listed value wins
    return table


def tuning_overview(table: pd.DataFrame, study: Study) -> pd.DataFrame:
    """One row per arm: the chosen values, then mean validation accuracy per tried value."""
    if table.empty:
        return table
    tuned = [f"tuned_{k}" for k in study.tuned]
    chosen = table[table["chosen"]].set_index("arm")[tuned].rename(columns=lambda c: "chosen " + c.removeprefix("tuned_"))
    tried = table.assign(tried=table[tuned].astype(str).agg(", ".join, axis=1))
    scores = tried.pivot(index="arm", columns="tried", values="val_accuracy")
    scores.columns = [f"val acc @ {c}" for c in scores.columns]
    failed = table.groupby("arm")["failed"].sum().rename("failed trials")
    edges = pd.Series({arm: ", ".join(keys) for arm, keys in tuned_at_edge(table, study).items()},
                      name="chosen at grid edge", dtype=object)
    order = list(dict.fromkeys(table["arm"]))
    return chosen.join(scores).join(failed).join(edges).fillna({"chosen at grid edge": ""}).loc[order].reset_index()


def tuned_at_edge(table: pd.DataFrame, study: Study) -> dict:
    """Arm -> the numeric tuned keys whose chosen value is the smallest or largest of its grid:
    the best value may lie outside the grid, so the arm may be handicapped by the grid."""
    edges: dict = {}
    for _, row in table[table["chosen"]].iterrows() if not table.empty else []:
        for key, grid in study.tuned.items():
            numeric = [v for v in grid if isinstance(v, (int, float)) and not isinstance(v, bool)]
            if len(numeric) >= 2 and len(numeric) == len(grid) and row[f"tuned_{key}"] in (min(numeric), max(numeric)):
                edges.setdefault(row["arm"], []).append(key)
    return edges


def chosen_values(table: pd.DataFrame, study: Study) -> dict:
    """Arm label -> the tuned values `tuning_table` chose, as plain JSON values (so a confirmation
    trial's key equals that of the same value and seed in a tuning run); {} when nothing is tuned."""
    if table.empty:
        return {}
    return {row["arm"]: {key: _plain(row[f"tuned_{key}"]) for key in study.tuned}
            for _, row in table[table["chosen"]].iterrows()}


def _plain(value):
    return value.item() if hasattr(value, "item") else value


def mark_selected(trials: pd.DataFrame, study: Study, judge_seeds: set | None = None) -> pd.DataFrame:
    """Add `selected`: the trial uses its arm's chosen tuned values (all, if none tuned).
    With `judge_seeds` (a confirmation run), the values are chosen on the other seeds and only
    the trials of `judge_seeds` are selected: the tuning trials choose, fresh trials judge."""
    judging = trials["seed"].isin(judge_seeds) if judge_seeds else pd.Series(True, index=trials.index)
    table = tuning_table(trials[~judging] if judge_seeds else trials, study)
    if table.empty:
        return trials.assign(selected=judging)
    tuned = [f"tuned_{k}" for k in study.tuned]
    chosen = table.loc[table["chosen"], ["arm", *tuned]].assign(selected=True)
    merged = trials.merge(chosen, on=["arm", *tuned], how="left")
    return merged.assign(selected=merged["selected"].fillna(False).astype(bool) & judging.to_numpy())


def best_per_seed(trials: pd.DataFrame) -> pd.DataFrame:
    """Per arm and judging seed, the trial whose tuned values scored best on validation (failed: 0)."""
    return _best_on_validation(_judging_seed_trials(trials))


def best_checkpoint_per_seed(trials: pd.DataFrame, epochs: pd.DataFrame) -> pd.DataFrame:
    """Per arm and judging seed, the (trial, epoch) whose checkpoint scored best on validation
    (failed: 0), from the epochs frame: early stopping on the dev set, among every tuned value."""
    judging = _judging_seed_trials(trials)
    if judging.empty or epochs.empty:
        return pd.DataFrame(columns=["key", "arm", "seed", "epoch"])
    return _best_on_validation(epochs[epochs["key"].isin(judging["key"]) & (epochs["epoch"] >= 1)])


def _judging_seed_trials(trials: pd.DataFrame) -> pd.DataFrame:
    """The trials a per-seed selection chooses among: every trial of the judging seeds."""
    return trials[trials["seed"].isin(set(trials.loc[trials["selected"], "seed"]))]


def _best_on_validation(rows: pd.DataFrame) -> pd.DataFrame:
    """Per arm and seed, the row with the best validation score (a missing score counts 0)."""
    if rows.empty:
        return rows
    score = rows[TUNING_METRIC].fillna(0.0) if TUNING_METRIC in rows else pd.Series(0.0, index=rows.index)
    return rows.loc[score.groupby([rows["arm"], rows["seed"]]).idxmax().to_numpy()]


def mean_ci(values) -> tuple[float, float, float, int]:
    """Mean and t-interval (95%) of finite values; (mean, low, high, n)."""
    values = np.asarray([v for v in values if v is not None and np.isfinite(v)], dtype=float)
    n = len(values)
    if n == 0:
        return (math.nan, math.nan, math.nan, 0)
    mean = float(values.mean())
    if n < 2:
        return (mean, -math.inf, math.inf, 1)
    half = float(stats.t.ppf(0.5 + CONFIDENCE / 2, n - 1) * values.std(ddof=1) / math.sqrt(n))
    return (mean, mean - half, mean + half, n)


def timed_alone(rows: pd.DataFrame) -> pd.Series:
    """Per trial: whether its step time was measured with nothing beside it (suite.core.packs)."""
    return rows["timed_alone"].eq(True) if "timed_alone" in rows else pd.Series(False, index=rows.index)


def timed_step_seconds(group: pd.DataFrame) -> pd.Series:
    """The step times of an arm's trials worth averaging: those timed with nothing beside them
    where the arm has any (a timing claim's seeds), else all. An arm's seeds run after its timing
    claims stopped share the machine, and a neighbour's threads enter their step time."""
    alone = timed_alone(group)
    return group.loc[alone, "step_seconds"] if alone.any() else group["step_seconds"]


def arm_summary(trials: pd.DataFrame, metrics=("test_accuracy", "val_accuracy", "train_accuracy", "train_loss",
                                              "parameters", "step_seconds")) -> pd.DataFrame:
    """Per arm (selected trials): mean and 95% CI of each metric (step time: `timed_step_seconds`),
    and trial counts."""
    rows = []
    for arm, group in trials[trials["selected"]].groupby("arm", sort=False):
        row = {"arm": arm, "trials": len(group), "ok": int((group["status"] == "ok").sum())}
        for metric in metrics:
            if metric in group:
                values = timed_step_seconds(group) if metric == "step_seconds" else group[metric]
                mean, low, high, _ = mean_ci(values)
                row.update({metric: mean, f"{metric}_low": low, f"{metric}_high": high})
        rows.append(row)
    return pd.DataFrame(rows)


def select_arms(trials: pd.DataFrame, selector: dict | list) -> pd.Series:
    """Rows whose factor columns match a claim's selector (a level or a list of levels);
    for a list of selectors, the rows any of them matches."""
    if isinstance(selector, list):
        return pd.concat([select_arms(trials, part) for part in selector], axis=1).any(axis=1)
    mask = pd.Series(True, index=trials.index)
    for key, wanted in selector.items():
        mask &= trials[key].isin(wanted if isinstance(wanted, list) else [wanted])
    return mask


def status_counts(trials: pd.DataFrame) -> dict:
    return {str(k): int(v) for k, v in trials["status"].value_counts().items()} if not trials.empty else {}

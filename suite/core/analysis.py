"""analysis: pure functions from trial records to pandas frames and claim verdicts.

Imports no Keras. Per arm, tuned training values are chosen on the validation split;
claims compare the `better` and `worse` arms paired by seed, with a t-interval (95%)
on the mean paired difference: `supported` when it lies above zero, `contradicted`
when below, `inconclusive` otherwise (or when fewer than two pairs exist).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from suite.core.study import Claim, Study, arm_label

SUPPORTED, CONTRADICTED, INCONCLUSIVE = "supported", "contradicted", "inconclusive"
VERDICTS = (SUPPORTED, CONTRADICTED, INCONCLUSIVE)
CONFIDENCE = 0.95
TUNING_METRIC = "val_accuracy"  # tuned values are chosen on validation data, never on test


@dataclass(frozen=True)
class Verdict:
    claim: Claim
    verdict: str
    effect: float  # mean paired difference, oriented so that > 0 favours the claim
    ci: tuple  # (low, high) of the effect
    n: int  # pairs (seeds) that entered the comparison
    better_mean: float
    worse_mean: float
    reason: str = ""  # why inconclusive, or pairs that were dropped
    pairs: list = field(default_factory=list)  # [{seed, better, worse}]

    def as_dict(self) -> dict:
        def num(x):
            return None if x is None or not math.isfinite(x) else round(float(x), 6)

        return {"id": self.claim.id, "text": self.claim.text, "metric": self.claim.metric,
                "epoch": self.claim.epoch, "direction": self.claim.direction, "verdict": self.verdict,
                "effect": num(self.effect), "ci": [num(self.ci[0]), num(self.ci[1])], "n": self.n,
                "better_mean": num(self.better_mean), "worse_mean": num(self.worse_mean), "reason": self.reason}


# ---- frames --------------------------------------------------------------------------

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


# ---- tuning --------------------------------------------------------------------------

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
    order = list(dict.fromkeys(table["arm"]))
    return chosen.join(scores).join(failed).loc[order].reset_index()


def mark_selected(trials: pd.DataFrame, study: Study) -> pd.DataFrame:
    """Add `selected`: the trial uses its arm's chosen tuned values (all, if none tuned)."""
    table = tuning_table(trials, study)
    if table.empty:
        return trials.assign(selected=True)
    tuned = [f"tuned_{k}" for k in study.tuned]
    chosen = table.loc[table["chosen"], ["arm", *tuned]].assign(selected=True)
    merged = trials.merge(chosen, on=["arm", *tuned], how="left")
    return merged.assign(selected=merged["selected"].fillna(False).astype(bool))


# ---- aggregation ---------------------------------------------------------------------

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


def arm_summary(trials: pd.DataFrame, metrics=("test_accuracy", "val_accuracy", "train_accuracy", "train_loss",
                                              "parameters", "step_seconds")) -> pd.DataFrame:
    """Per arm (selected trials): mean and 95% CI of each metric, and trial counts."""
    rows = []
    for arm, group in trials[trials["selected"]].groupby("arm", sort=False):
        row = {"arm": arm, "trials": len(group), "ok": int((group["status"] == "ok").sum())}
        for metric in metrics:
            if metric in group:
                mean, low, high, _ = mean_ci(group[metric])
                row.update({metric: mean, f"{metric}_low": low, f"{metric}_high": high})
        rows.append(row)
    return pd.DataFrame(rows)


# ---- claims --------------------------------------------------------------------------

def select_arms(trials: pd.DataFrame, selector: dict | list) -> pd.Series:
    """Rows whose factor columns match a claim's selector (a level or a list of levels);
    for a list of selectors, the rows any of them matches."""
    if isinstance(selector, list):
        return pd.concat([select_arms(trials, part) for part in selector], axis=1).any(axis=1)
    mask = pd.Series(True, index=trials.index)
    for key, wanted in selector.items():
        mask &= trials[key].isin(wanted if isinstance(wanted, list) else [wanted])
    return mask


def epochs_to_target(epochs: pd.DataFrame, target: dict) -> pd.Series:
    """Per trial key: the first epoch at which `target["metric"]` reaches `target["value"]`
    (at or below it for a loss). Never reached: the budget + 1, a censored value that
    understates the true time, so a speed claim judged on it errs towards caution."""
    metric, value = target["metric"], target["value"]
    trained = epochs[epochs["epoch"] >= 1]
    if trained.empty or metric not in trained:
        return pd.Series(dtype=float)
    budget = int(trained["epoch"].max())
    level = pd.to_numeric(trained[metric], errors="coerce")
    reached = trained[level <= value] if metric.endswith("loss") else trained[level >= value]
    first = reached.groupby("key")["epoch"].min()
    return first.reindex(trained["key"].unique()).fillna(budget + 1).astype(float)


def claim_values(claim: Claim, selector: dict | list, trials: pd.DataFrame, epochs: pd.DataFrame) -> pd.Series:
    """Per seed that every matched arm ran: the claim's metric, averaged over those arms.
    A list of selectors: each one's per-seed value, averaged with equal weight, so
    [{a: x, n: small}, {a: none, n: large}] vs [{a: none, n: small}, {a: x, n: large}]
    is half the difference of differences (D1: augmentation matters more with less data)."""
    if isinstance(selector, list):
        parts = pd.concat([claim_values(claim, part, trials, epochs) for part in selector], axis=1, join="inner")
        return parts.mean(axis=1, skipna=False)
    chosen = trials[trials["selected"] & select_arms(trials, selector)]
    if claim.metric == "epochs_to_target":
        reached = epochs_to_target(epochs, claim.target).rename("epochs_to_target")
        values = chosen[["key", "seed"]].merge(reached, left_on="key", right_index=True, how="left")
    elif claim.epoch is None and claim.metric in chosen:
        values = chosen[["seed", claim.metric]]
    else:
        rows = epochs[epochs["key"].isin(chosen["key"])] if not epochs.empty else epochs
        if rows.empty or claim.metric not in rows:
            return pd.Series(dtype=float)
        epoch = claim.epoch if claim.epoch is not None else rows.groupby("key")["epoch"].transform("max")
        at = rows[rows["epoch"] == epoch]
        # a trial that stopped (diverged) before the epoch has no value there
        values = chosen[["key", "seed"]].merge(at[["key", claim.metric]], on="key", how="left")
    values = values.assign(v=pd.to_numeric(values[claim.metric], errors="coerce"))
    per_seed = values.groupby("seed")["v"].agg(lambda s: s.mean() if s.notna().all() else math.nan)
    # a seed that only some of the arms ran (another claim asked those for more seeds, or a
    # run is unfinished) is not a value: averaging the arms it has would compare other things
    arms_run = chosen.groupby("seed")["arm"].nunique()
    return per_seed[per_seed.index.isin(arms_run[arms_run == chosen["arm"].nunique()].index)]


def judge_claim(claim: Claim, trials: pd.DataFrame, epochs: pd.DataFrame) -> Verdict:
    better = claim_values(claim, claim.better, trials, epochs)
    if claim.worse is None:  # a claim against a fixed value (`than`)
        worse = pd.Series(claim.than, index=better.index, dtype=float)
    else:
        worse = claim_values(claim, claim.worse, trials, epochs)
    # seeds both sides ran; a seed with a failed trial is there as NaN and counts as dropped
    paired = pd.concat({"better": better, "worse": worse}, axis=1, join="inner")
    total = len(paired)
    paired = paired.dropna()
    sign = 1.0 if claim.direction == "higher" else -1.0
    diffs = sign * (paired["better"] - paired["worse"])
    effect, low, high, n = mean_ci(diffs)
    reasons = []
    if total - len(paired):
        reasons.append(f"{total - len(paired)} of {total} seeds dropped (a trial diverged, failed or lacks the metric)")
    if n < 2:
        verdict = INCONCLUSIVE
        reasons.append("fewer than two paired seeds: no interval")
    elif low > 0:
        verdict = SUPPORTED
    elif high < 0:
        verdict = CONTRADICTED
    else:
        verdict = INCONCLUSIVE
        reasons.append(f"the {int(CONFIDENCE * 100)}% interval of the difference contains zero")
    pairs = [{"seed": int(seed), "better": row.better, "worse": row.worse} for seed, row in paired.iterrows()]
    return Verdict(claim=claim, verdict=verdict, effect=effect, ci=(low, high), n=n,
                   better_mean=float(paired["better"].mean()) if n else math.nan,
                   worse_mean=float(paired["worse"].mean()) if n else math.nan,
                   reason="; ".join(reasons), pairs=pairs)


def judge_claims(study: Study, trials: pd.DataFrame, epochs: pd.DataFrame) -> list[Verdict]:
    return [judge_claim(claim, trials, epochs) for claim in study.claims]


def status_counts(trials: pd.DataFrame) -> dict:
    return {str(k): int(v) for k, v in trials["status"].value_counts().items()} if not trials.empty else {}

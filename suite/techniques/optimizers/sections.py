"""optimizer_sections: report sections of the optimizer study (claim D3).

Three entries, drawn from the trials and epochs frames only: how much the learning rate
mattered next to the choice of optimizer (validation accuracy over the learning-rate grid,
and a table that sets the two effects side by side); the training loss against optimisation
steps at each optimizer's tuned rate; and steps to the study's loss target with the final
accuracy. Studies without an `optimizer` factor and a tuned `learning_rate` get nothing.
Computes and draws; judges no claim.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import seaborn as sns

from suite.core import analysis, frames, registry, step_curve
from suite.core.report import figures
from suite.core.report.html import csv_link, table_html
from suite.core.study import TARGET_METRICS, Study

LR = "tuned_learning_rate"


def _applies(trials: pd.DataFrame, study: Study) -> bool:
    return "optimizer" in study.factors and "learning_rate" in study.tuned and not trials.empty and LR in trials


def _scores(trials: pd.DataFrame) -> pd.DataFrame:
    """Validation accuracy per trial as the tuning sees it: a failed or diverged trial counts 0."""
    return trials.assign(score=trials["val_accuracy"].fillna(0.0) if "val_accuracy" in trials else 0.0)


def sensitivity_table(trials: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """Per optimizer: its tuned rate and what the rest of the grid cost; plus the study-wide
    comparison of the learning rate's effect with the optimizer's (in accuracy points)."""
    cells = _scores(trials).groupby(["optimizer", LR], sort=False).agg(
        score=("score", "mean"), seed_std=("score", "std")).reset_index()
    rows = []
    for optimizer, group in cells.groupby("optimizer", sort=False):
        group = group.sort_values(LR).reset_index(drop=True)
        best = int(group["score"].idxmax())
        neighbours = group.loc[[i for i in (best - 1, best + 1) if 0 <= i < len(group)], "score"]
        rows.append({"optimizer": optimizer, "tuned learning rate": f"{group.loc[best, LR]:g}",
                     "val acc at tuned rate": group.loc[best, "score"],
                     "seed std at tuned rate": group.loc[best, "seed_std"],
                     "worst val acc on the grid": group["score"].min(),
                     "range over the grid": group["score"].max() - group["score"].min(),
                     "cost of one grid step off": group.loc[best, "score"] - neighbours.mean(),
                     "rates within 1 point of best": int((group["score"] >= group.loc[best, "score"] - 0.01).sum())})
    table = pd.DataFrame(rows)
    means = cells.groupby("optimizer")["score"].transform("mean")
    between = float(((means - cells["score"].mean()) ** 2).sum())
    within = float(((cells["score"] - means) ** 2).sum())
    tuned = table["val acc at tuned rate"]
    summary = {
        "optimizer_range": float(tuned.max() - tuned.min()),
        "best_optimizer": table.loc[tuned.idxmax(), "optimizer"], "worst_optimizer": table.loc[tuned.idxmin(), "optimizer"],
        "lr_range": float(table["range over the grid"].mean()),
        "step_cost": float(table["cost of one grid step off"].mean()),
        "lr_share": within / (within + between) if within + between > 0 else math.nan,
        "seed_std": float(table["seed std at tuned rate"].mean()),
    }
    return table, summary


@registry.register("report_section")
def learning_rate_vs_optimizer(trials: pd.DataFrame, epochs: pd.DataFrame, study: Study,
                               layers: pd.DataFrame | None = None) -> list[dict]:
    """(D3) Validation accuracy over the learning-rate grid, one line per optimizer."""
    if not _applies(trials, study):
        return []

    data = _scores(trials)
    grid = sns.relplot(data=data, x=LR, y="score", hue="optimizer", kind="line", errorbar=figures.t_interval,
                       marker="o", height=3.4, aspect=1.7)
    grid.set(xscale="log", ylim=(0, 1))
    grid.set_axis_labels("learning rate (log scale)", "validation accuracy (failed = 0)")
    table, s = sensitivity_table(trials)
    caption = (
        f"At their tuned rates the optimizers span {100 * s['optimizer_range']:.1f} accuracy points "
        f"({s['worst_optimizer']} to {s['best_optimizer']}); within one optimizer the learning-rate grid spans "
        f"{100 * s['lr_range']:.1f} points on average, and one grid step (half a decade) from the tuned rate costs "
        f"{100 * s['step_cost']:.1f} points on average. Of the variance of the grid's mean validation accuracies, "
        f"{100 * s['lr_share']:.0f}% lies between learning rates within an optimizer and the rest between optimizers. "
        f"For scale: the seed-to-seed standard deviation at the tuned rates is {100 * s['seed_std']:.1f} points.")
    return [
        {"title": "Learning rate against optimizer", "uri": figures.to_data_uri(grid.figure),
         "caption": "Validation accuracy at the end of training for every learning rate of the shared grid, per "
                    "optimizer (mean and 95% interval over seeds). " + caption},
        {"title": "How much the learning rate mattered", "caption": caption,
         "table": table_html(table), "csv": csv_link(table, f"{study.name}-learning-rate-sensitivity.csv")},
    ]


def _selected_epochs(trials: pd.DataFrame, epochs: pd.DataFrame) -> pd.DataFrame:
    chosen = trials.loc[trials["selected"], ["key", "steps_per_epoch"] if "steps_per_epoch" in trials else ["key"]]
    data = epochs[(epochs["epoch"] >= 1)].merge(chosen, on="key")
    steps = data["steps_per_epoch"] if "steps_per_epoch" in data else np.nan
    return data.assign(step=data["epoch"] * steps)


@registry.register("report_section")
def loss_by_steps(trials: pd.DataFrame, epochs: pd.DataFrame, study: Study,
                  layers: pd.DataFrame | None = None) -> list[dict]:
    """(D3) Training loss and validation accuracy against optimisation steps, each optimizer at its tuned rate."""
    if not _applies(trials, study) or epochs.empty or "train_loss" not in epochs:
        return []
    data = _selected_epochs(trials, epochs)
    x = "step" if data["step"].notna().all() else "epoch"
    long = data.melt(id_vars=[x, "seed", "optimizer"], value_vars=["train_loss", "val_accuracy"], var_name="measure")
    grid = sns.relplot(data=long, x=x, y="value", hue="optimizer", col="measure", kind="line", marker="o",
                       errorbar=figures.t_interval, height=3.2, aspect=1.3, facet_kws={"sharey": False})
    grid.set_axis_labels("optimisation steps (mini-batches)" if x == "step" else "epoch", "")
    grid.set_titles("{col_name}")
    grid.axes.flat[0].set_yscale("log")
    return [{"title": "Loss against steps", "uri": figures.to_data_uri(grid.figure),
             "caption": "Each optimizer at its tuned learning rate (mean and 95% interval over seeds). The training "
                        "loss is Keras' running mean over each epoch's mini-batches (log scale), plotted at the "
                        "epoch's last step."}]


@registry.register("report_section")
def steps_to_target(trials: pd.DataFrame, epochs: pd.DataFrame, study: Study,
                    layers: pd.DataFrame | None = None) -> list[dict]:
    """(D3) Per optimizer at its tuned rate: steps to the claims' loss target, early and final loss, test accuracy."""
    targets = list({(c.target["metric"], c.target["value"], c.metric): c for c in study.claims
                    if c.metric in TARGET_METRICS}.values())
    if not _applies(trials, study) or epochs.empty or not targets:
        return []

    chosen = trials[trials["selected"]].copy()
    first = epochs[epochs["epoch"] == 1].set_index("key")["train_loss"]
    rows = []
    for claim in targets:
        target = claim.target
        if claim.metric == "steps_to_target":  # the step curve: the end of the first window at the target
            chosen["steps"] = chosen["step_curve"].map(lambda c, target=target: step_curve.steps_to_target(c, target))
            chosen["hit"] = chosen["steps"] <= chosen["step_curve"].map(lambda c: c["ends"][-1] if c else -1)
        else:  # checked once per epoch: the end of the first epoch that reached it
            reached = analysis.epochs_to_target(epochs, target)
            epochs_needed = chosen["key"].map(reached)
            chosen["hit"] = epochs_needed <= int(epochs["epoch"].max())
            chosen["steps"] = epochs_needed * chosen.get("steps_per_epoch", np.nan)
        for optimizer, group in chosen.groupby("optimizer", sort=False):
            hit = group["hit"]
            accuracy, low, high, _ = frames.mean_ci(group["test_accuracy"])
            rows.append({"target": f"{target['metric']} {target['value']:g}", "optimizer": optimizer,
                         "tuned learning rate": f"{group[LR].iloc[0]:g}", "seeds": len(group), "not reached": int((~hit).sum()),
                         "mean steps (reached only)": group.loc[hit, "steps"].mean() if hit.any() else None,
                         "train loss after epoch 1": first.reindex(group["key"]).mean(),
                         "final train loss": group["train_loss"].mean(),
                         "test accuracy": accuracy, "test accuracy 95% CI": f"[{low:.3f}, {high:.3f}]"})
    table = pd.DataFrame(rows)
    return [{"title": "Steps to target and final accuracy",
             "caption": "Each optimizer at its tuned learning rate. Steps: SGD steps until the end of the first "
                        f"{step_curve.STEP_WINDOW}-step window whose training loss reached the target (the "
                        "trial's step curve; for an epoch-level claim, the end of the first epoch that reached it). "
                        "Seeds that never reached it within the budget are counted, not averaged.",
             "table": table_html(table), "csv": csv_link(table, f"{study.name}-steps-to-target.csv")}]

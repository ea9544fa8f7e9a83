"""regression_sections: report sections of the regression study (claim D5).

The five regression metrics on clean test labels per loss and outlier fraction (table and
figure), validation error per epoch (did every loss converge within the budget?), and for
the logistic-regression arm the training accuracy reached from each starting scale, with the
stall and convexity measures. Studies whose trials lack these metrics get nothing.
Computes and draws; judges no claim.
"""

from __future__ import annotations

import pandas as pd
import seaborn as sns

from suite.core import frames, registry
from suite.core.report import figures
from suite.core.report.html import csv_link, table_html
from suite.core.study import Study

METRICS = ("test_mae", "test_mse", "test_rmse", "test_rmsle", "test_r2")
LOGISTIC = ("stalled_fraction", "start_gap", "convexity_violations", "train_accuracy", "test_accuracy")
FRACTION = "outlier_fraction"


def _arms(trials: pd.DataFrame, metric: str) -> pd.DataFrame:
    if trials.empty or metric not in trials or "loss" not in trials or FRACTION not in trials:
        return pd.DataFrame()
    return trials[trials["selected"] & trials[metric].notna()]


def metric_table(data: pd.DataFrame, metrics) -> pd.DataFrame:
    """Per loss and outlier fraction: mean of each metric over seeds, with a 95% interval."""
    rows = []
    for (loss, fraction), group in data.groupby(["loss", FRACTION], sort=False):
        row = {"loss": loss, FRACTION: fraction, "seeds": len(group)}
        for metric in metrics:
            mean, low, high, _ = frames.mean_ci(group[metric])
            row[metric] = mean
            row[f"{metric} 95% CI"] = f"[{low:.3g}, {high:.3g}]"
        rows.append(row)
    return pd.DataFrame(rows)


@registry.register("report_section")
def regression_metrics(trials: pd.DataFrame, epochs: pd.DataFrame, study: Study,
                       layers: pd.DataFrame | None = None) -> list[dict]:
    """(D5) MAE, MSE, RMSE, RMSLE and R^2 on clean test labels, per loss and outlier fraction."""
    data = _arms(trials, "test_rmse")
    if data.empty:
        return []

    table = metric_table(data, METRICS)
    long = data.melt(id_vars=["loss", FRACTION, "seed"], value_vars=["test_rmse", "test_mae", "test_r2"], var_name="metric")
    grid = sns.relplot(data=long, x=FRACTION, y="value", hue="loss", col="metric", kind="line", marker="o",
                       errorbar=figures.t_interval, height=3.0, aspect=1.2, facet_kws={"sharey": False})
    grid.set_titles("{col_name}")
    grid.set_axis_labels("share of training labels made outliers", "")
    return [
        {"title": "Losses under outliers", "uri": figures.to_data_uri(grid.figure),
         "caption": "Clean test RMSE, MAE (lower is better) and R^2 (higher is better) of the linear model trained "
                    "with each loss, against the share of training labels replaced by outliers (mean and 95% "
                    "interval over seeds; each seed corrupts the same labels for every loss)."},
        {"title": "Regression metrics on clean test labels",
         "caption": "MAE, MSE, RMSE, RMSLE (predictions clipped at 0) and R^2 = 1 - SSE/SST, in the target's units.",
         "table": table_html(table, "{:.4g}"), "csv": csv_link(table, f"{study.name}-regression-metrics.csv")},
    ]


@registry.register("report_section")
def regression_convergence(trials: pd.DataFrame, epochs: pd.DataFrame, study: Study,
                           layers: pd.DataFrame | None = None) -> list[dict]:
    """(D5) Validation RMSE per epoch: a loss that had not converged would lose for the wrong reason."""
    data = _arms(trials, "test_rmse")
    if data.empty or epochs.empty or "val_rmse" not in epochs:
        return []
    rows = epochs[epochs["key"].isin(data["key"]) & (epochs["epoch"] >= 1)]
    grid = sns.relplot(data=rows, x="epoch", y="val_rmse", hue="loss", col=FRACTION, kind="line",
                       errorbar=figures.t_interval, height=2.8, aspect=1.2)
    grid.set_titles("outlier fraction {col_name}")
    grid.set(yscale="log")
    return [{"title": "Validation error per epoch", "uri": figures.to_data_uri(grid.figure),
             "caption": "Validation RMSE (clean labels, log scale) after every epoch: flat lines at the end mean "
                        "the loss had converged within the budget."}]


@registry.register("report_section")
def logistic_starts(trials: pd.DataFrame, epochs: pd.DataFrame, study: Study,
                    layers: pd.DataFrame | None = None) -> list[dict]:
    """(D5) Logistic regression: training accuracy reached from each starting scale, stalls, convexity."""
    data = _arms(trials, "stalled_fraction")
    if data.empty:
        return []

    columns = [c for c in data if c.startswith("train_accuracy_start_")]
    long = data.melt(id_vars=["loss", FRACTION, "seed"], value_vars=columns, var_name="start", value_name="accuracy")
    long["start scale"] = long["start"].str.removeprefix("train_accuracy_start_").astype(float)
    grid = sns.relplot(data=long, x="start scale", y="accuracy", hue="loss", col=FRACTION, kind="line", marker="o",
                       errorbar=figures.t_interval, height=3.0, aspect=1.2)
    grid.set(xscale="log")
    grid.set_titles("flipped labels {col_name}")
    grid.set_axis_labels("std of the initial weights (log scale)", "final training accuracy")
    table = metric_table(data, LOGISTIC)
    return [
        {"title": "Logistic regression: where training starts", "uri": figures.to_data_uri(grid.figure),
         "caption": "Final training accuracy of logistic regressions trained by plain SGD from random starts of "
                    "growing scale (8 starts per scale and seed; mean and 95% interval over seeds). With squared "
                    "error the gradient carries a factor p(1 - p), which vanishes where a large start saturates "
                    "the sigmoid; cross-entropy's gradient (p - y) x does not."},
        {"title": "Logistic regression: stalls and convexity",
         "caption": "stalled_fraction: share of the 40 starts that ended more than 5 points below the training "
                    "accuracy of the cross-entropy optimum (L-BFGS); start_gap: training accuracy from the smallest "
                    "starts minus from the largest; convexity_violations: share of 500 random weight pairs whose "
                    "midpoint cost lies above the chord (0 for a convex cost). Accuracies are means over starts.",
         "table": table_html(table, "{:.3g}"), "csv": csv_link(table, f"{study.name}-logistic.csv")},
    ]

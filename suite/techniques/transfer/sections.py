"""transfer_sections: report sections of the transfer study (claims T1-T5).

Test accuracy against the number of target labels for every arm (figure and table), the
self-training generations and the distillation temperature sweep. Studies without a
`labels_per_class` factor or those procedures get nothing. Computes and draws; judges no claim.
"""

from __future__ import annotations

import matplotlib.ticker
import pandas as pd
import seaborn as sns

from suite.core import frames, registry
from suite.core.report import figures
from suite.core.report.html import csv_link, table_html
from suite.core.report.sections import figure_entry, selected_rows
from suite.core.study import Study

LABELS, PROCEDURE = "labels_per_class", "procedure"


def _chosen(trials: pd.DataFrame) -> pd.DataFrame:
    return selected_rows(trials, (LABELS, PROCEDURE), "test_accuracy")


def accuracy_by_labels(data: pd.DataFrame) -> pd.DataFrame:
    """Per arm and labels per class: mean test accuracy, its 95% interval, seeds."""
    rows = []
    for (procedure, labels), group in data.groupby([PROCEDURE, LABELS], sort=False):
        mean, low, high, n = frames.mean_ci(group["test_accuracy"])
        rows.append({PROCEDURE: procedure, LABELS: int(labels), "test accuracy": mean,
                     "95% CI": f"[{low:.3f}, {high:.3f}]" if n > 1 else "–", "seeds": n})
    return pd.DataFrame(rows).sort_values([LABELS], kind="stable")


def labels_figure(data: pd.DataFrame) -> str:
    grid = sns.relplot(data=data, x=LABELS, y="test_accuracy", hue=PROCEDURE, kind="line", marker="o",
                       errorbar=figures.t_interval, height=3.6, aspect=1.7)
    levels = sorted(data[LABELS].unique())
    for ax in grid.axes.flat:
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(matplotlib.ticker.FixedLocator(levels))
        ax.xaxis.set_major_formatter(matplotlib.ticker.FixedFormatter([str(v) for v in levels]))
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    grid.set_axis_labels("labelled target images per class (log scale)", "test accuracy")
    return figures.to_data_uri(grid.figure)


@registry.register("report_section")
def accuracy_against_labels(trials: pd.DataFrame, epochs: pd.DataFrame, study: Study,
                            layers: pd.DataFrame | None = None) -> list[dict]:
    """(T1-T5) Which way of reusing a network pays off, as the target labels grow."""
    data = _chosen(trials)
    if data.empty:
        return []

    table = accuracy_by_labels(data)
    return [{"title": "Test accuracy against the number of target labels",
             "uri": labels_figure(data),
             "caption": "Every arm's test accuracy on the target classes (mean and 95% interval over seeds) "
                        "against the labelled images per class. An arm a profile excludes at some level has no "
                        "point there.",
             "table": table_html(table), "csv": csv_link(table, f"{study.name}-accuracy-by-labels.csv")}]


def iteration_curves(trials: pd.DataFrame) -> str | None:
    """Self-training: test accuracy of the teacher (iteration 0) and of each student generation."""
    columns = sorted(c for c in trials if c.startswith("test_accuracy_iteration_"))
    data = trials[trials["selected"]].dropna(subset=columns[:1]) if columns else pd.DataFrame()
    if data.empty or "teacher_test_accuracy" not in data:
        return None
    renamed = {"teacher_test_accuracy": 0, **{c: int(c.rsplit("_", 1)[1]) for c in columns}}
    long = data.melt(id_vars=["arm", "seed"], value_vars=list(renamed), var_name="iteration", value_name="test accuracy")
    long["iteration"] = long["iteration"].map(renamed)
    grid = sns.relplot(data=long.dropna(), x="iteration", y="test accuracy", hue="arm", kind="line",
                       errorbar=figures.t_interval, marker="o", height=3.2, aspect=1.6)
    grid.set(xticks=sorted(set(renamed.values())))
    return figures.to_data_uri(grid.figure)


def temperature_sweep(trials: pd.DataFrame, procedure: str = "procedure") -> str | None:
    """Distillation: student test accuracy against the temperature T (arms named distill_t<T>)."""
    if procedure not in trials:
        return None
    data = trials[trials["selected"] & trials[procedure].astype(str).str.fullmatch(r"distill_t\d+")]
    if data.empty:
        return None
    data = data.assign(temperature=data[procedure].str.removeprefix("distill_t").astype(int))
    hue = "labels_per_class" if "labels_per_class" in data else None
    grid = sns.relplot(data=data, x="temperature", y="test_accuracy", hue=hue, kind="line", errorbar=figures.t_interval,
                       marker="o", height=3.2, aspect=1.6, palette="viridis" if hue else None)
    temperatures = sorted(data["temperature"].unique())
    grid.set(xscale="log")
    for ax in grid.axes.flat:
        ax.xaxis.set_major_locator(matplotlib.ticker.FixedLocator(temperatures))
        ax.xaxis.set_major_formatter(matplotlib.ticker.FixedFormatter([str(t) for t in temperatures]))
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    return figures.to_data_uri(grid.figure)


@registry.register("report_section")
def self_training_iterations(trials: pd.DataFrame, epochs: pd.DataFrame, study: Study,
                             layers: pd.DataFrame | None = None) -> list[dict]:
    return figure_entry(iteration_curves(trials), "Self-training iterations",
                         "Test accuracy of the fine-tuned teacher (iteration 0) and of each student generation; "
                         "each student becomes the next teacher.")


@registry.register("report_section")
def distillation_temperatures(trials: pd.DataFrame, epochs: pd.DataFrame, study: Study,
                              layers: pd.DataFrame | None = None) -> list[dict]:
    return figure_entry(temperature_sweep(trials), "Distillation temperature sweep",
                         "Test accuracy of the small student against the distillation temperature T (log scale), "
                         "per labels-per-class level.")

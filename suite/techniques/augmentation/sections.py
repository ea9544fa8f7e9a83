"""augmentation_sections: report sections of the augmentation (D1) and regularization (D4) studies.

Both studies fight overfitting and read it from the `generalization` probe: accuracy on the
clean training images (inference mode) minus validation or test accuracy. Entries:
- augmentation: gap, test accuracy and training accuracy per augmentation at each
  training-set size, with each augmentation's paired change against no augmentation
  (figure and table), and the train - validation gap over epochs;
- regularization: the train - validation gap over epochs per L2 strength and dropout rate,
  training vs validation accuracy curves, and a table of the final numbers with the
  paired change against the unregularised net.
Studies without those factors and probe columns get nothing. Computes and draws; judges
no claim (suite.core.analysis does).
"""

from __future__ import annotations

import pandas as pd
import seaborn as sns

from suite.core import frames, registry
from suite.core.report import figures
from suite.core.report.html import csv_link, table_html
from suite.core.study import Study

AUGMENTATION, SIZE = "augmentation", "train_examples"
NO_AUGMENTATION = "none"
REGULARIZERS = ("l2", "dropout")
GAP, TRAIN, TEST = "test_gap", "train_eval_accuracy", "test_accuracy"
MEASURES = {GAP: "gap (train - test accuracy)", TEST: "test accuracy", TRAIN: "training accuracy (clean images)"}


def _selected(trials: pd.DataFrame, epochs: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    if trials.empty:
        return trials, epochs
    chosen = trials[trials["selected"] & (trials["status"] == "ok")]
    return chosen, epochs[epochs["key"].isin(chosen["key"])] if not epochs.empty else epochs


def _ci_text(values) -> tuple[float, str]:
    mean, low, high, n = frames.mean_ci(values)
    return mean, (f"[{low:+.3f}, {high:+.3f}]" if n >= 2 else "–")


def paired_change(data: pd.DataFrame, metric: str, group: list[str], reference: dict) -> pd.DataFrame:
    """Per cell of `group`: the mean of `metric` and its change against the `reference`
    arm with the same remaining factor levels, paired by seed (mean and 95% interval)."""
    rows = []
    for levels, cell in data.groupby(group, sort=False):
        levels = dict(zip(group, levels if isinstance(levels, tuple) else (levels,)))
        base = data[(data[list(levels)] == pd.Series({**levels, **reference})).all(axis=1)]
        if all(levels.get(key) == value for key, value in reference.items()):
            change, interval = None, "(reference)"
        else:
            paired = cell.set_index("seed")[metric] - base.set_index("seed")[metric]
            change, interval = _ci_text(paired.dropna())
        rows.append({**levels, metric: cell[metric].mean(), f"change in {metric}": change, "95% CI of change": interval})
    return pd.DataFrame(rows)


# ---- augmentation (D1) ---------------------------------------------------------------

def augmentation_table(data: pd.DataFrame) -> pd.DataFrame:
    """Per augmentation and size: training/test accuracy, gap, and the paired change in gap
    and in test accuracy against no augmentation at the same size."""
    group = [AUGMENTATION, SIZE]
    gap = paired_change(data, GAP, group, {AUGMENTATION: NO_AUGMENTATION})
    test = paired_change(data, TEST, group, {AUGMENTATION: NO_AUGMENTATION})
    train = data.groupby(group, sort=False).agg(seeds=("seed", "nunique"), **{TRAIN: (TRAIN, "mean")}).reset_index()
    table = train.merge(test, on=group).merge(gap, on=group, suffixes=(" (test acc)", " (gap)"))
    return table.sort_values([SIZE, AUGMENTATION], key=lambda c: c.map(_order(data, c.name)), kind="stable")


def _order(data: pd.DataFrame, column: str) -> dict:
    return {level: i for i, level in enumerate(dict.fromkeys(data[column]))}


def augmentation_figure(data: pd.DataFrame) -> str | None:
    long = data.melt(id_vars=[AUGMENTATION, SIZE, "seed"], value_vars=list(MEASURES), var_name="measure")
    long["measure"] = long["measure"].map(MEASURES)
    # points, not bars: accuracies differ by a few points far from zero
    grid = sns.catplot(data=long, x=AUGMENTATION, y="value", hue=SIZE, col="measure", kind="point",
                       errorbar=figures.t_interval, capsize=0.1, dodge=0.35, linestyle="none", height=3.4,
                       aspect=1.25, sharey=False, palette="viridis")
    grid.set_titles("{col_name}")
    grid.set_axis_labels("", "")
    for ax in grid.axes.flat:
        ax.tick_params(axis="x", labelrotation=35)
        for label in ax.get_xticklabels():
            label.set_horizontalalignment("right")
    return figures.to_data_uri(grid.figure)


@registry.register("report_section")
def augmentation_gap(trials: pd.DataFrame, epochs: pd.DataFrame, study: Study,
                     layers: pd.DataFrame | None = None) -> list[dict]:
    """D1: the generalisation gap and test accuracy per augmentation at each training-set size."""
    data, rows = _selected(trials, epochs)
    if AUGMENTATION not in study.factors or data.empty or not {GAP, TRAIN, SIZE} <= set(data):
        return []

    table = augmentation_table(data)
    entries = [{
        "title": "Generalisation gap by augmentation and training-set size",
        "uri": augmentation_figure(data),
        "caption": "Per augmentation (colour: training images): accuracy on the clean training images measured "
                   "like the test set (inference mode, no augmentation), test accuracy, and their difference, the "
                   "generalisation gap. Bars: mean over seeds, 95% t-interval. The table gives each augmentation's "
                   "change against no augmentation at the same size, paired by seed.",
        "table": table_html(table), "csv": csv_link(table, f"{study.name}-gap-by-augmentation.csv")}]
    if "generalization_gap" in rows and rows["generalization_gap"].notna().any():
        curves = rows[rows["epoch"] >= 1]
        grid = sns.relplot(data=curves, x="epoch", y="generalization_gap", hue=AUGMENTATION, col=SIZE, kind="line",
                           errorbar=figures.t_interval, height=3.2, aspect=1.3)
        grid.set_axis_labels("epoch", "train - validation accuracy")
        entries.append({"title": "Train - validation gap over epochs", "uri": figures.to_data_uri(grid.figure),
                        "caption": "The gap after every epoch (clean training images vs the validation split), "
                                   "one panel per training-set size; bands: 95% t-interval over seeds."})
    return entries


# ---- regularization (D4) -------------------------------------------------------------

def regularization_table(data: pd.DataFrame, factors: list[str]) -> pd.DataFrame:
    """Per arm: final training/validation/test accuracy, gap, and the paired change in gap
    and test accuracy against the unregularised arm (every regularizer at 0)."""
    reference = {factor: 0.0 for factor in factors}
    gap = paired_change(data, "generalization_gap", factors, reference)
    test = paired_change(data, TEST, factors, reference)
    accuracy = data.groupby(factors, sort=False)[[TRAIN, "val_accuracy"]].mean().reset_index()
    return accuracy.merge(gap, on=factors).merge(test, on=factors, suffixes=(" (gap)", " (test acc)"))


@registry.register("report_section")
def regularization_curves(trials: pd.DataFrame, epochs: pd.DataFrame, study: Study,
                          layers: pd.DataFrame | None = None) -> list[dict]:
    """D4: the train - validation gap over epochs per L2 strength and dropout rate."""
    factors = [factor for factor in REGULARIZERS if factor in study.factors]
    data, rows = _selected(trials, epochs)
    if not factors or data.empty or rows.empty or "generalization_gap" not in rows:
        return []

    hue, col = factors[0], (factors[1] if len(factors) > 1 else None)
    curves = rows[rows["epoch"] >= 1].copy()
    curves[hue] = curves[hue].map(str)  # one distinct colour per level (0.001 and 0.01 look alike on a linear scale)
    palette = dict(zip(map(str, study.factors[hue]), sns.color_palette("viridis", len(study.factors[hue]))))
    gap = sns.relplot(data=curves, x="epoch", y="generalization_gap", hue=hue, col=col, kind="line",
                      errorbar=figures.t_interval, palette=palette, height=3.0, aspect=1.2)
    gap.set_axis_labels("epoch", "train - validation accuracy")
    long = curves.melt(id_vars=["epoch", "seed", *factors], value_vars=[TRAIN, "val_accuracy"], var_name="measured on")
    long["measured on"] = long["measured on"].map({TRAIN: "training images", "val_accuracy": "validation"})
    accuracy = sns.relplot(data=long, x="epoch", y="value", hue=hue, style="measured on", col=col, kind="line",
                           errorbar=None, palette=palette, height=3.0, aspect=1.2)
    accuracy.set_axis_labels("epoch", "accuracy")
    table = regularization_table(data, factors)  # trials carry the last epoch's probe columns
    return [
        {"title": "Train - validation gap over epochs", "uri": figures.to_data_uri(gap.figure),
         "caption": f"Accuracy on the training images minus validation accuracy, both in inference mode (no "
                    f"dropout), after every epoch; colour: {hue}" + (f", panels: {col}" if col else "") +
                    ". Bands: 95% t-interval over seeds. The table gives the final values and each arm's change "
                    "against the unregularised net, paired by seed.",
         "table": table_html(table), "csv": csv_link(table, f"{study.name}-gap-by-regularizer.csv")},
        {"title": "Training vs validation accuracy", "uri": figures.to_data_uri(accuracy.figure),
         "caption": "Solid: accuracy on the training images; dashed: on the validation split (means over seeds). "
                    "Overfitting shows as the training curve pulling away from the validation curve."},
    ]

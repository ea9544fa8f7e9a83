"""architecture_sections: report sections of the architecture study (claim D6).

Cost and accuracy of every net side by side (table and figure), the notes' 1x1-convolution
example and the classic nets at their papers' sizes (both built in Keras and counted), the
spatial size after every conv and pooling layer (padding, stride, pooling), and how
edge-like the first-layer filters are before and after training. Studies whose trials
lack FLOP counts get nothing. Computes and draws; judges no claim.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import matplotlib.ticker
import pandas as pd

from suite.core import frames, registry
from suite.core.report import figures
from suite.core.report.html import csv_link, table_html
from suite.core.report.sections import selected_rows
from suite.core.study import Study

FAMILY = "family"


def _chosen(trials: pd.DataFrame) -> pd.DataFrame:
    return selected_rows(trials, (FAMILY,), "flops")


def cost_table(data: pd.DataFrame, epochs: pd.DataFrame) -> pd.DataFrame:
    """Per family: parameters, FLOPs, step time, accuracy (mean and 95% interval), edge filters."""
    initial = epochs[epochs["epoch"] == 0].set_index("key")["edge_filter_share"] if "edge_filter_share" in epochs \
        else pd.Series(dtype=float)
    rows = []
    for family, group in data.groupby(FAMILY, sort=False):
        accuracy, low, high, _ = frames.mean_ci(group["test_accuracy"])
        rows.append({"net": family, "seeds": len(group), "parameters": int(group["parameters"].iloc[0]),
                     "MFLOPs per image": group["flops"].iloc[0] / 1e6,
                     "step ms": 1000 * frames.timed_step_seconds(group).mean(),
                     "test accuracy": accuracy, "95% CI": f"[{low:.3f}, {high:.3f}]",
                     "edge filters at init": initial.reindex(group["key"]).mean(),
                     "edge filters trained": group["edge_filter_share"].mean()})
    return pd.DataFrame(rows)


def cost_figure(table: pd.DataFrame, data: pd.DataFrame) -> str:
    """Test accuracy against parameters and against FLOPs (log x), one point per net, 95% bars."""
    figure, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharey=True)
    for ax, column, label in ((axes[0], "parameters", "parameters"), (axes[1], "MFLOPs per image", "MFLOPs per image")):
        for _, row in table.iterrows():
            low, high = figures.t_interval(data.loc[data[FAMILY] == row["net"], "test_accuracy"].to_numpy())
            ax.errorbar(row[column], row["test accuracy"], yerr=[[row["test accuracy"] - low], [high - row["test accuracy"]]],
                        fmt="o", capsize=3)
            ax.annotate(row["net"], (row[column], row["test accuracy"]), textcoords="offset points", xytext=(4, 4),
                        fontsize=7)
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:,.4g}"))
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xlabel(label)
    axes[0].set_ylabel("test accuracy")
    figure.tight_layout()
    return figures.to_data_uri(figure)


@registry.register("report_section")
def architecture_costs(trials: pd.DataFrame, epochs: pd.DataFrame, study: Study,
                       layers: pd.DataFrame | None = None) -> list[dict]:
    """(D6) What each architecture costs and what it reaches, at this budget."""
    data = _chosen(trials)
    if data.empty:
        return []

    table = cost_table(data, epochs)
    return [
        {"title": "Cost and accuracy side by side", "uri": cost_figure(table, data),
         "caption": "Test accuracy (mean and 95% interval over seeds) against the parameter count and the forward "
                    "FLOPs per image (2 x the multiply-adds of every conv and dense layer on the inference path; "
                    "the auxiliary classifier is training-only and left out). Accuracy is at this profile's budget: "
                    "a net that learns more slowly is behind here even if it would end ahead."},
        {"title": "Architectures: cost, accuracy, first-layer filters",
         "caption": "Parameters as Keras counts them (the auxiliary classifier's included); step ms: median training "
                    "step after the first epoch; edge filters: share of first-layer filters whose |Pearson r| with "
                    "an oriented edge kernel (Sobel/Scharr at 3x3, derivative of a Gaussian otherwise) is at least "
                    "0.7, at initialisation and after training.",
         "table": table_html(table, "{:.4g}"), "csv": csv_link(table, f"{study.name}-architectures.csv")},
    ]


@registry.register("report_section")
def architecture_counts(trials: pd.DataFrame, epochs: pd.DataFrame, study: Study,
                        layers: pd.DataFrame | None = None) -> list[dict]:
    """(D6) The notes' 1x1-convolution example, the classic nets' sizes, the layer shapes."""
    data = _chosen(trials)
    if data.empty:
        return []
    from suite.techniques.architectures import cost
    from suite.techniques.architectures.families import build_model

    saving = pd.DataFrame(cost.one_by_one_saving())
    ratio = saving["multiplications"].iloc[0] / saving["multiplications"].iloc[1]
    classic = pd.DataFrame(list(cost.paper_sized_nets()))
    paths = pd.DataFrame([{"net": family, "input > layer kernel/stride padding output > ...": cost.layer_path(
        build_model({**study.model, FAMILY: family}, (28, 28, 1), 10))} for family in data[FAMILY].unique()])
    return [
        {"title": "The 1x1 convolution on the notes' example",
         "caption": f"28x28x192 -> 28x28x32 with a 5x5 convolution, directly or through a 1x1 convolution to 16 "
                    f"channels: Keras' parameter counts and the multiplications per image ({ratio:.1f}x fewer; the "
                    f"notes say 120M vs 12.4M).",
         "table": table_html(saving, "{:,.0f}"), "csv": csv_link(saving, f"{study.name}-one-by-one.csv")},
        {"title": "Classic nets at their papers' sizes",
         "caption": "Built in Keras (untrained) and counted, next to the sizes the notes quote.",
         "table": table_html(classic, "{:,.3g}"), "csv": csv_link(classic, f"{study.name}-paper-sizes.csv")},
        {"title": "Spatial size through each net",
         "caption": "Output size after every conv and pooling layer for a 28x28x1 image: 'same' padding keeps "
                    "height and width, 'valid' shrinks them by kernel - 1, a stride of 2 or a 2x2 pool halves them.",
         "table": table_html(paths), "csv": csv_link(paths, f"{study.name}-layer-shapes.csv")},
    ]

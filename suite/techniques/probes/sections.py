"""sections: the probes' report sections: what they measured inside the networks, per epoch and per layer.

A study that runs a probe names the sections it wants drawn (`report: [probe_curves,
gradients_by_layer, activation_histograms]`).
Computes and draws; judges no claim.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import matplotlib.ticker
import numpy as np
import pandas as pd
import seaborn as sns

from suite.core import registry
from suite.core.report import figures
from suite.core.report.sections import figure_entry
from suite.core.study import Study

PROBE_COLUMNS = ("saturated_fraction", "dead_fraction", "no_gradient_fraction", "symmetry", "activation_std",
                 "depth_std_ratio", "activation_abs_mean", "preactivation_std", "log10_grad_ratio", "log10_grad_slope",
                 "train_eval_loss")





def probe_curves(epochs: pd.DataFrame, factors: list[str]) -> str | None:
    """The probes' scalar columns per epoch (0 = at initialisation), per arm."""
    columns = [c for c in PROBE_COLUMNS if c in epochs and epochs[c].notna().any()]
    if epochs.empty or not columns:
        return None
    hue, col = figures.facet_roles(factors)
    long = epochs.melt(id_vars=["epoch", "seed", "arm", *factors], value_vars=columns, var_name="probe").dropna(subset=["value"])
    grid = sns.relplot(data=long, x="epoch", y="value", hue=hue, kind="line", errorbar=figures.t_interval, marker="o",
                       height=2.4, aspect=1.4, **figures._panels("probe", col, len(columns)))
    grid.set_axis_labels("epoch", "")
    for name, ax in grid.axes_dict.items():  # keys: a probe, or (probe, column level)
        # log scales: a ratio spans orders of magnitude (I4, I5), and an untrained net's loss (about 7
        # for a deep plain net) would flatten the trained epochs' (0.1-1) into a line
        if {"depth_std_ratio", "train_eval_loss"} & set(name if isinstance(name, tuple) else (name,)):
            ax.set_yscale("log")
            figures.log_floor(ax)
    return figures.to_data_uri(grid.figure)


def gradient_by_layer(layers: pd.DataFrame, factors: list[str]) -> str | None:
    """Weight-gradient norm per hidden layer (log scale), at initialisation and at the end (A1, R3)."""
    data = layers[layers["probe"] == "gradient_stats"] if "probe" in layers else pd.DataFrame()
    if data.empty:
        return None
    last = int(data["epoch"].max())
    data = data[data["epoch"].isin([0, last])].assign(
        when=lambda d: np.where(d["epoch"] == 0, "at initialisation", f"after epoch {last}"))
    hue, col = figures.facet_roles(factors)
    grid = sns.relplot(data=data, x="layer", y="grad_norm", hue=hue, col=col, row="when", kind="line",
                       errorbar=figures.t_interval, marker="o", height=2.8, aspect=1.3,
                       # x per column: a column per depth, and an 8-layer net on a 32-layer axis is a squeezed corner
                       facet_kws={"sharex": "col", "sharey": False, "margin_titles": True})
    grid.set(yscale="log")
    for ax in grid.axes.flat:
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))  # layers are whole numbers
    grid.set_axis_labels("hidden layer (input side first)", "gradient norm")
    grid.tight_layout()  # again: the log scale's tick labels are wider than those relplot laid out for
    return figures.to_data_uri(grid.figure)


def layer_histograms(layers: pd.DataFrame, rows: list[str], title: str) -> str | None:
    """Per-layer activation histograms: one row per arm, one column per hidden layer.

    The picture of the study notes: how each initialisation spreads (or piles up) the
    activations of every layer. `layers` holds one trial per arm, at one epoch. All
    panels share one Axes (each histogram scaled into its cell): 30 small Axes took
    ~2 s per figure to lay out.
    """
    if layers.empty:
        return None
    depth = int(layers["layer"].max())
    figure, ax = plt.subplots(figsize=(1.9 * depth + 1.6, 0.95 * len(rows) + 0.7))
    cell_w, cell_h = 0.86, 0.78
    for r, arm in enumerate(rows):
        top = len(rows) - r
        for c in range(depth):
            left = c + 0.07
            ax.add_patch(plt.Rectangle((left, top - cell_h - 0.04), cell_w, cell_h + 0.02,
                                       fill=False, lw=0.4, ec="#bbb"))
            match = layers[(layers["arm"] == arm) & (layers["layer"] == c + 1)]
            if match.empty or len(match.iloc[0]["hist_counts"]) == 0:
                ax.text(left + cell_w / 2, top - cell_h / 2, "no data\n(diverged)", ha="center", va="center", fontsize=7)
                continue
            row = match.iloc[0]
            edges, counts = np.asarray(row["hist_edges"]), np.asarray(row["hist_counts"], dtype=float)
            heights = counts / max(counts.max(), 1.0) * (cell_h - 0.06)
            x = left + (edges - edges[0]) / (edges[-1] - edges[0]) * cell_w
            ax.stairs(top - cell_h + heights, x, baseline=top - cell_h, fill=True, color="#4c72b0")
            ax.text(left, top - cell_h - 0.03, f"{edges[0]:.3g}", fontsize=6, va="top", ha="left", color="#555")
            ax.text(left + cell_w, top - cell_h - 0.03, f"{edges[-1]:.3g}", fontsize=6, va="top", ha="right", color="#555")
    ax.set_xlim(0, depth)
    ax.set_ylim(0, len(rows) + 0.1)
    ax.set_xticks([c + 0.5 for c in range(depth)], [f"layer {c + 1}" for c in range(depth)], fontsize=9)
    ax.xaxis.tick_top()
    ax.set_yticks([len(rows) - r - cell_h / 2 for r in range(len(rows))], rows, fontsize=8)
    ax.grid(False)
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.set_title(title, fontsize=10, pad=22)
    return figures.to_data_uri(figure)


def _histogram_figures(study: Study, layers: pd.DataFrame, trials: pd.DataFrame) -> list[dict]:
    """Per group of arms (by the last factor) and for the first and last epoch."""
    if "probe" in layers:
        layers = layers[layers["probe"] == "activation_stats"]
    if layers.empty:
        return []
    chosen = trials[trials["selected"]]
    first_seed = chosen.sort_values("seed").groupby("arm", sort=False).head(1)
    data = layers[layers["key"].isin(first_seed["key"])]
    factors = list(study.factors)
    group_by = factors[-1] if len(factors) >= 2 else None
    groups = list(dict.fromkeys(chosen[group_by])) if group_by else [None]
    last_epoch = int(data["epoch"].max()) if not data.empty else 0
    result = []
    for level in groups:
        in_group = chosen if group_by is None else chosen[chosen[group_by] == level]
        arms = list(dict.fromkeys(in_group["arm"]))
        for epoch, when in ((0, "at initialisation"), (last_epoch, f"after epoch {last_epoch}")):
            subset = data[data["epoch"] == epoch]
            title = f"{group_by}={level}, {when}" if group_by else when
            uri = layer_histograms(subset, arms, title)
            if uri:
                result.append({"title": title, "uri": uri})
    return result


@registry.register("report_section", "probe_curves")
def probe_curves_section(trials: pd.DataFrame, epochs: pd.DataFrame, study: Study,
                         layers: pd.DataFrame | None = None) -> list[dict]:
    chosen = set(trials.loc[trials["selected"], "key"]) if not trials.empty else set()
    uri = probe_curves(epochs[epochs["key"].isin(chosen)] if not epochs.empty else epochs, list(study.factors))
    return figure_entry(uri, "Inside the network", PROBE_CAPTION)


@registry.register("report_section")
def gradients_by_layer(trials: pd.DataFrame, epochs: pd.DataFrame, study: Study,
                       layers: pd.DataFrame | None = None) -> list[dict]:
    if layers is None or layers.empty or trials.empty:
        return []
    chosen = set(trials.loc[trials["selected"], "key"])
    uri = gradient_by_layer(layers[layers["key"].isin(chosen)], list(study.factors))
    return figure_entry(uri, "Gradients by layer", GRADIENT_CAPTION)


@registry.register("report_section")
def activation_histograms(trials: pd.DataFrame, epochs: pd.DataFrame, study: Study,
                          layers: pd.DataFrame | None = None) -> list[dict]:
    if layers is None or layers.empty or trials.empty:
        return []
    return [{"title": f"Per-layer activation histograms, {h['title']}", "uri": h["uri"], "caption": HISTOGRAM_CAPTION}
            for h in _histogram_figures(study, layers, trials)]


PROBE_CAPTION = (
    "Probe statistics on 512 fixed validation images, epoch 0 = at initialisation. saturated_fraction: share of "
    "activations within 2% of either end of a bounded activation (sigmoid, tanh); dead_fraction: share of units whose "
    "input (pre-activation) is <= 0 for every image, for any activation; no_gradient_fraction: share of units whose "
    "activation slope is below 0.001 for every image, so they pass no gradient (a dead ReLU unit; not a dead Leaky ReLU "
    "unit); symmetry: share of units that duplicate another unit of their layer (dead units duplicate "
    "one another); activation_std: spread of the activations; depth_std_ratio: std of the deepest hidden layer over the "
    "first (log scale; 1 = the scale is kept); log10_grad_ratio: log10 of the first over the last hidden layer's "
    "weight-gradient norm, in training mode; log10_grad_slope: the least-squares slope of log10 gradient norm per layer "
    "towards the input (below 0 = gradients shrink towards the input); train_eval_loss: cross-entropy on a fixed sample "
    "of the training images in inference mode (batch-norm with the sample's own statistics).")
GRADIENT_CAPTION = (
    "Norm of the loss gradient with respect to each hidden layer's weights on the probe images (log scale), in "
    "training mode (batch-norm uses each batch's statistics, as in a training step; no weight or statistic changes), "
    "mean over 4 batches, at initialisation and after training. A line falling steeply towards the input side "
    "(layer 1) means vanishing gradients.")
HISTOGRAM_CAPTION = (
    "As in the study notes: the distribution of every hidden layer's outputs on the probe images, for the first seed of "
    "each arm. Look for piles at the ends of the range (saturation), a single spike (collapse, all units alike) or mass "
    "vanishing towards 0 in deeper layers.")

"""figures: seaborn/matplotlib figures of a study's frames, as embeddable PNG data URIs.

Each function takes tidy frames and returns a data URI (or None when there is nothing
to draw). Seed uncertainty is drawn by seaborn as 95% confidence bands/bars.
"""

from __future__ import annotations

import base64
import io

import matplotlib

matplotlib.use("Agg")  # no display; figures go straight into the HTML
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

sns.set_theme(style="whitegrid", context="notebook")
DPI = 80
PROBE_COLUMNS = ("saturated_fraction", "dead_fraction", "symmetry", "activation_std", "depth_std_ratio")


def to_data_uri(figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight")
    plt.close(figure)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def facet_roles(factors: list[str]) -> tuple[str, str | None]:
    """(hue, col): the first factor is the colour, the second (if any) the panel column."""
    if not factors:
        return "arm", None
    if len(factors) == 1:
        return factors[0], None
    if len(factors) == 2:
        return factors[0], factors[1]
    return "arm", None


def learning_curves(epochs: pd.DataFrame, factors: list[str], metrics=("train_loss", "val_accuracy")) -> str | None:
    """Training loss and validation accuracy per epoch, one line per arm, 95% CI bands."""
    data = epochs[(epochs["epoch"] >= 1)]
    metrics = [m for m in metrics if m in data and data[m].notna().any()]
    if data.empty or not metrics:
        return None
    hue, col = facet_roles(factors)
    long = data.melt(id_vars=["epoch", "seed", "arm", *factors], value_vars=metrics, var_name="metric")
    grid = sns.relplot(data=long, x="epoch", y="value", hue=hue, col=col, row="metric", kind="line",
                       errorbar=("ci", 95), marker="o", height=2.8, aspect=1.3,
                       facet_kws={"sharey": "row", "margin_titles": True})
    grid.set_axis_labels("epoch", "")
    return to_data_uri(grid.figure)


def probe_curves(epochs: pd.DataFrame, factors: list[str]) -> str | None:
    """The probes' scalar columns per epoch (0 = at initialisation), per arm."""
    columns = [c for c in PROBE_COLUMNS if c in epochs and epochs[c].notna().any()]
    if epochs.empty or not columns:
        return None
    hue, col = facet_roles(factors)
    long = epochs.melt(id_vars=["epoch", "seed", "arm", *factors], value_vars=columns, var_name="probe").dropna(subset=["value"])
    grid = sns.relplot(data=long, x="epoch", y="value", hue=hue, col=col, row="probe", kind="line",
                       errorbar=("ci", 95), marker="o", height=2.4, aspect=1.4,
                       facet_kws={"sharey": "row", "margin_titles": True})
    grid.set_axis_labels("epoch", "")
    if "depth_std_ratio" in grid.row_names:  # a ratio spans orders of magnitude (I4, I5)
        for ax in grid.axes[grid.row_names.index("depth_std_ratio")]:
            ax.set_yscale("log")
    return to_data_uri(grid.figure)


def final_comparison(trials: pd.DataFrame, factors: list[str], metric: str = "test_accuracy") -> str | None:
    """Final test accuracy per arm (selected tuned values), mean and 95% CI over seeds."""
    data = trials[trials["selected"]].dropna(subset=[metric]) if metric in trials else pd.DataFrame()
    if data.empty:
        return None
    hue, col = facet_roles(factors)
    x = col or hue
    grid = sns.catplot(data=data, x=x, y=metric, hue=hue if col else None, kind="bar", errorbar=("ci", 95),
                       height=3.4, aspect=2.2, capsize=0.1)
    grid.set_axis_labels(x, metric.replace("_", " "))
    return to_data_uri(grid.figure)


def layer_histograms(layers: pd.DataFrame, rows: list[str], title: str) -> str | None:
    """Per-layer activation histograms: one row per arm, one column per hidden layer.

    The picture of the study notes: how each initialisation spreads (or piles up) the
    activations of every layer. `layers` holds one trial per arm, at one epoch.
    """
    if layers.empty:
        return None
    depth = int(layers["layer"].max())
    figure, axes = plt.subplots(len(rows), depth, figsize=(2.1 * depth, 1.45 * len(rows) + 0.6), squeeze=False)
    for r, arm in enumerate(rows):
        for c in range(depth):
            ax = axes[r][c]
            match = layers[(layers["arm"] == arm) & (layers["layer"] == c + 1)]
            if not match.empty and len(match.iloc[0]["hist_counts"]) > 0:
                row = match.iloc[0]
                edges, counts = np.asarray(row["hist_edges"]), np.asarray(row["hist_counts"], dtype=float)
                ax.bar(edges[:-1], counts / max(counts.sum(), 1), width=np.diff(edges), align="edge", color="#4c72b0")
            else:
                ax.text(0.5, 0.5, "no data\n(diverged?)", ha="center", va="center", transform=ax.transAxes, fontsize=8)
            ax.set_yticks([])
            ax.tick_params(labelsize=7)
            if r == 0:
                ax.set_title(f"layer {c + 1}", fontsize=9)
            if c == 0:
                ax.set_ylabel(arm, fontsize=8, rotation=0, ha="right", va="center")
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    return to_data_uri(figure)


def claim_pairs(pairs: list[dict], metric: str, better: str, worse: str) -> str | None:
    """Per-seed values of the two sides of a claim, paired by seed."""
    if not pairs:
        return None
    figure, ax = plt.subplots(figsize=(3.6, 2.6))
    for pair in pairs:
        ax.plot([0, 1], [pair["better"], pair["worse"]], color="grey", alpha=0.6, marker="o")
    ax.set_xticks([0, 1], [_shorten(better), _shorten(worse)], fontsize=8)
    ax.set_xlim(-0.3, 1.3)
    ax.set_ylabel(metric.replace("_", " "), fontsize=9)
    ax.tick_params(labelsize=8)
    figure.tight_layout()
    return to_data_uri(figure)


def _shorten(text: str, width: int = 28) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"

"""figures: seaborn/matplotlib figures of a study's frames, as embeddable PNG data URIs.

Each function takes tidy frames and returns a data URI (or None when there is nothing
to draw). Seed uncertainty is drawn by seaborn as 95% confidence bands/bars.
"""

from __future__ import annotations

import base64
import io

import matplotlib

matplotlib.use("Agg")  # no display; figures go straight into the HTML
import matplotlib.lines  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from suite.core.analysis import mean_ci  # noqa: E402

sns.set_theme(style="whitegrid", context="notebook")
DPI = 80


def t_interval(values) -> tuple[float, float]:
    """Seaborn errorbar: the same 95% t-interval the verdicts use (no bootstrap: fast)."""
    _, low, high, n = mean_ci(values)
    if n < 2:
        mean = float(np.nanmean(values)) if len(values) else float("nan")
        return (mean, mean)
    return (low, high)


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


def _panels(measure: str, col: str | None, count: int) -> dict:
    """One row per measure and a column per level of `col`; with no `col`, wrap the measures in rows of three."""
    if col is None:
        return {"col": measure, "col_wrap": min(3, count), "facet_kws": {"sharey": False}}
    return {"col": col, "row": measure, "facet_kws": {"sharey": "row", "margin_titles": True}}


def learning_curves(epochs: pd.DataFrame, factors: list[str], metrics=("train_loss", "val_accuracy")) -> str | None:
    """Training loss and validation accuracy per epoch, one line per arm, 95% CI bands."""
    if "epoch" not in epochs:  # no trial has a history (every one failed)
        return None
    data = epochs[(epochs["epoch"] >= 1)]
    metrics = [m for m in metrics if m in data and data[m].notna().any()]
    if data.empty or not metrics:
        return None
    hue, col = facet_roles(factors)
    long = data.melt(id_vars=["epoch", "seed", "arm", *factors], value_vars=metrics, var_name="metric")
    grid = sns.relplot(data=long, x="epoch", y="value", hue=hue, kind="line", errorbar=t_interval, marker="o",
                       height=2.8, aspect=1.3, **_panels("metric", col, len(metrics)))
    grid.set_axis_labels("epoch", "")
    return to_data_uri(grid.figure)




def final_comparison(trials: pd.DataFrame, factors: list[str], metric: str = "test_accuracy") -> str | None:
    """Final test accuracy per arm (selected tuned values), mean and 95% CI over seeds."""
    data = trials[trials["selected"]].dropna(subset=[metric]) if metric in trials else pd.DataFrame()
    if data.empty:
        return None
    hue, col = facet_roles(factors)
    x = col or hue
    grid = sns.catplot(data=data, x=x, y=metric, hue=hue if col else None, kind="bar", errorbar=t_interval,
                       height=3.4, aspect=2.2, capsize=0.1)
    grid.set_axis_labels(x, metric.replace("_", " "))
    return to_data_uri(grid.figure)



def claim_pairs(pairs: list[dict], metric: str) -> str | None:
    """Per-seed values of the two sides of a claim, paired by seed."""
    if not pairs:
        return None
    figure, ax = plt.subplots(figsize=(3.6, 2.6))
    for pair in pairs:
        ax.plot([0, 1], [pair["better"], pair["worse"]], color="grey", alpha=0.6, marker="o")
    ax.set_xticks([0, 1], ["first arm(s)", "second arm(s)"], fontsize=8)
    ax.set_xlim(-0.3, 1.3)
    ax.set_ylabel(metric.replace("_", " "), fontsize=9)
    ax.tick_params(labelsize=8)
    figure.tight_layout()
    return to_data_uri(figure)



def budget_curve(rows: list[dict], margin: float | None, test: str, metric: str) -> str | None:
    """A claim judged at every stored epoch: its effect and 95% interval against SGD steps (or
    epochs), with zero and the margin drawn in; points coloured by that epoch's verdict."""
    rows = [row for row in rows if row["effect"] is not None]
    if len(rows) < 2:
        return None
    use_steps = all(row["steps"] is not None for row in rows)
    x = [row["steps"] if use_steps else row["epoch"] for row in rows]
    colours = {"supported": "#2a8a43", "contradicted": "#b33a3a", "equivalent": "#3a6fb3", "inconclusive": "#8c8a76"}
    figure, ax = plt.subplots(figsize=(4.6, 2.8))
    low = [row["ci"][0] if row["ci"][0] is not None else np.nan for row in rows]
    high = [row["ci"][1] if row["ci"][1] is not None else np.nan for row in rows]
    ax.fill_between(x, low, high, color="#c9d6e8", alpha=0.7, label="95% interval")
    ax.plot(x, [row["effect"] for row in rows], color="#33475b", lw=1.2)
    for xi, row in zip(x, rows):
        ax.plot(xi, row["effect"], "o", color=colours.get(row["verdict"], "grey"), ms=5)
    ax.axhline(0, color="black", lw=0.8)
    if margin:
        for level in ((-margin,) if test == "noninferior" else (-margin, margin)):
            ax.axhline(level, color="#b36b00", lw=0.8, ls="--")
    ax.set_xlabel("SGD steps" if use_steps else "epoch", fontsize=9)
    ax.set_ylabel(f"effect on {metric.replace('_', ' ')}", fontsize=9)
    ax.tick_params(labelsize=8)
    handles = [matplotlib.lines.Line2D([], [], marker="o", ls="", color=c, label=v) for v, c in colours.items()]
    ax.legend(handles=handles, fontsize=7, loc="best", frameon=False)
    figure.tight_layout()
    return to_data_uri(figure)

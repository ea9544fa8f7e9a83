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

from suite.core.frames import mean_ci  # noqa: E402

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


def log_floor(ax) -> None:
    """Bottom of a log-scaled panel at half the smallest mean plotted on its y-axis (all panels
    that share it). A 95% t-interval of a few seeds can reach below 0, which a log axis cannot
    show; left to autoscale, such a band pulled the axis decades down and flattened the means.
    The band now runs off the bottom instead."""
    means = [y for panel in ax.get_shared_y_axes().get_siblings(ax) for line in panel.get_lines()
             for y in np.asarray(line.get_ydata(), dtype=float) if np.isfinite(y) and y > 0]
    if means:
        ax.set_ylim(bottom=min(means) / 2)


def learning_curves(epochs: pd.DataFrame, factors: list[str], metrics=("train_loss", "val_accuracy")) -> str | None:
    """Training loss and validation accuracy per epoch, one line per arm, 95% CI bands."""
    grid = learning_curves_grid(epochs, factors, metrics)
    return None if grid is None else to_data_uri(grid.figure)


def learning_curves_grid(epochs: pd.DataFrame, factors: list[str], metrics=("train_loss", "val_accuracy")):
    """The seaborn grid of `learning_curves`. Losses on a log scale: one arm that starts at a loss of
    1,200 (constant initial weights) flattened every other arm's 0.3-2.3 to a line at 0. Accuracy
    panels end at 0 and 1: a 95% t-interval of three seeds can reach below 0, which no net scores."""
    if "epoch" not in epochs:  # no trial has a history (every one failed)
        return None
    data = epochs[(epochs["epoch"] >= 1)]
    metrics = [m for m in metrics if m in data and data[m].notna().any()]
    if data.empty or not metrics:
        return None
    hue, col = facet_roles(factors)
    long = data.melt(id_vars=["epoch", "seed", "arm", *factors], value_vars=metrics, var_name="metric")
    order = {"row_order": metrics} if col else {"col_order": metrics}
    grid = sns.relplot(data=long, x="epoch", y="value", hue=hue, kind="line", errorbar=t_interval, marker="o",
                       height=2.8, aspect=1.3, **order, **_panels("metric", col, len(metrics)))
    grid.set_axis_labels("epoch", "")
    for key, ax in grid.axes_dict.items():
        metric = key[0] if col else key
        values = long.loc[long["metric"] == metric, "value"]
        if metric.endswith("loss") and (values[np.isfinite(values)] > 0).all():
            ax.set_yscale("log")
            log_floor(ax)
        elif metric.endswith("accuracy"):
            low, high = ax.get_ylim()
            ax.set_ylim(max(low, 0.0), min(high, 1.0))
    return grid


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



def _margin_levels(margin: float | None, test: str) -> tuple[float, ...]:
    """Where a budget curve draws the margin: -margin only for a non-inferiority claim."""
    if not margin:
        return ()
    return (-margin,) if test == "noninferior" else (-margin, margin)


def budget_ylim(rows: list[dict], margin: float | None = None, test: str = "superior",
                squash: float = 2.0) -> tuple[float, float] | None:
    """The y-range of a budget curve fitted to the points after initialisation (with zero and the
    margin), or None when the step-0 point fits beside them.

    An untrained net's effect (its loss, say) can be many times any effect after training; drawn
    to scale it flattens the later points, which are what the curve is read for. The range is
    narrowed only when step 0 would stretch it more than `squash` times."""
    def values(subset):
        return [v for row in subset for v in (row["effect"], *row["ci"]) if v is not None and np.isfinite(v)]

    first = values([row for row in rows if row["epoch"] == 0])
    later = values([row for row in rows if row["epoch"] > 0])
    if not first or not later:
        return None
    later += [0.0, *_margin_levels(margin, test)]
    low, high = min(later), max(later)
    every = later + first
    if high <= low or max(every) - min(every) <= squash * (high - low):
        return None
    pad = 0.08 * (high - low)
    return low - pad, high + pad


def budget_curve(rows: list[dict], margin: float | None, test: str, metric: str,
                 fit_later: bool = True) -> str | None:
    """A claim judged at every stored epoch: its effect and 95% interval against SGD steps (or
    epochs), with zero and the margin drawn in; points coloured by that epoch's verdict.

    The x-axis stays linear: epochs are evenly spaced in steps, so a log axis would crowd the
    late points (and has no place for step 0). With `fit_later` the y-axis may fit the points
    after initialisation (`budget_ylim`); step 0 is then marked at the edge and its numbers
    written under the axis. A claim judged at step 0 passes fit_later=False."""
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
    for level in _margin_levels(margin, test):
        ax.axhline(level, color="#b36b00", lw=0.8, ls="--")
    xlabel = "SGD steps" if use_steps else "epoch"
    ylim = budget_ylim(rows, margin, test) if fit_later else None
    if ylim:
        ax.set_ylim(ylim)
        at = next(i for i, row in enumerate(rows) if row["epoch"] == 0)
        effect, (ci_low, ci_high) = rows[at]["effect"], rows[at]["ci"]
        interval = f" [{ci_low:.3g}, {ci_high:.3g}]" if ci_low is not None and ci_high is not None else ""
        note = f"step 0 (initialisation): {effect:.3g}{interval}"
        if ylim[0] <= effect <= ylim[1]:  # only its interval runs off the scale
            xlabel += f"\n{note}, interval cut: y fitted to later steps"
        else:  # the point itself is off the scale: mark where it went, and give its numbers
            above = effect > ylim[1]
            ax.plot(x[at], ylim[1] if above else ylim[0], "^" if above else "v", ms=7, clip_on=False,
                    color=colours.get(rows[at]["verdict"], "grey"))
            xlabel += f"\n{'▲' if above else '▼'} {note}, off the scale"
    ax.set_xlabel(xlabel, fontsize=8 if ylim else 9)
    ax.set_ylabel(f"effect on {metric.replace('_', ' ')}", fontsize=9)
    ax.tick_params(labelsize=8)
    handles = [matplotlib.lines.Line2D([], [], marker="o", ls="", color=c, label=v) for v, c in colours.items()]
    # above the axes, in one row: a legend inside them lands on the points sooner or later
    ax.legend(handles=handles, fontsize=7, loc="lower left", bbox_to_anchor=(0, 1.0), ncol=4, frameon=False,
              borderaxespad=0.2, handletextpad=0.1, columnspacing=0.8)
    figure.tight_layout()
    return to_data_uri(figure)

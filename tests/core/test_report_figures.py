"""Report figures and tables: what keeps them readable (y-range of budget curves, x-range of
gradient panels, width of the per-arm table)."""

import math

import pandas as pd
import pytest

from suite.core.report import figures, html


def _row(epoch, effect, ci=(None, None)):
    return {"epoch": epoch, "steps": 10 * epoch, "effect": effect, "ci": list(ci), "verdict": "inconclusive"}


def test_budget_ylim_fits_the_trained_points_when_step_0_is_far_off():
    rows = [_row(0, -4.0, (-7.0, -1.5)), _row(1, 0.8, (0.2, 1.4)), _row(2, 0.6, (0.1, 1.0))]
    low, high = figures.budget_ylim(rows, margin=0.05)
    assert low < -0.05 and 1.4 < high < 1.6  # later points, zero and the margin in view, step 0 out
    assert low > -1.0


def test_budget_ylim_keeps_everything_when_step_0_is_near():
    rows = [_row(0, -0.6), _row(1, 0.8, (0.2, 1.4)), _row(2, 0.6, (0.1, 1.0))]
    assert figures.budget_ylim(rows, margin=0.05) is None
    assert figures.budget_ylim([_row(1, 0.5), _row(2, 0.4)]) is None  # no step 0: nothing to fit around


@pytest.mark.parametrize("fit_later", [True, False])
def test_budget_curve_draws_with_step_0_off_the_scale(fit_later):
    rows = [_row(0, -4.0, (-7.0, -1.5)), _row(1, 0.8, (0.2, 1.4)), _row(2, 0.6, (None, None))]
    assert figures.budget_curve(rows, 0.05, "noninferior", "train_eval_loss", fit_later=fit_later).startswith(
        "data:image/png;base64,")


def test_gradient_panels_get_their_own_layer_range(monkeypatch):
    from suite.techniques.probes import sections

    monkeypatch.setattr(figures, "to_data_uri", lambda figure: figure)  # keep the figure to look at
    layers = pd.DataFrame([{"probe": "gradient_stats", "epoch": epoch, "layer": layer, "grad_norm": 1.0 + layer,
                            "family": family, "depth": depth, "arm": f"{family} / {depth}", "seed": 0}
                           for depth in (3, 12) for family in ("plain", "residual") for epoch in (0, 2)
                           for layer in range(1, depth + 1)])
    figure = sections.gradient_by_layer(layers, ["family", "depth"])
    right_ends = sorted(ax.get_xlim()[1] for ax in figure.axes if ax.has_data())
    assert len(right_ends) == 4 and right_ends[1] < 4 < 12 <= right_ends[2]  # the 3-layer net gets its own axis


def test_arm_table_has_one_interval_column_and_wrappable_headers():
    frame = pd.DataFrame({"arm": ["a", "b"], "test_accuracy": [0.8, 0.7], "test_accuracy_low": [0.75, -math.inf],
                          "test_accuracy_high": [0.85, math.inf], "step_seconds": [0.002, 0.003]})
    table = html.readable_arms(frame)
    assert list(table.columns) == ["arm", "test accuracy", "test accuracy 95% CI", "step ms"]
    assert list(table["test accuracy 95% CI"]) == ["[0.750, 0.850]", "–"]  # one seed: no interval, not ±inf


def test_a_log_panel_keeps_its_means_in_view_when_a_band_reaches_below_zero(monkeypatch):
    from suite.techniques.probes import sections

    monkeypatch.setattr(figures, "to_data_uri", lambda figure: figure)
    # three seeds whose loss spreads so widely that the t-interval's lower end is below 0
    # a second panel (depth 3) shares the row's y-axis and holds the lowest mean, 0.01
    epochs = pd.DataFrame([{"epoch": epoch, "seed": seed, "arm": f"plain / {depth}", "family": "plain",
                            "depth": depth, "train_eval_loss": loss * scale}
                           for depth, scale in ((3, 0.1), (12, 1.0)) for epoch in (0, 1, 2)
                           for seed, loss in enumerate([0.05, 0.1, 3.0 / (1 + epoch)])])
    figure = sections.probe_curves(epochs, ["family", "depth"])
    panels = [ax for ax in figure.axes if ax.has_data()]
    assert len(panels) == 2 and all(ax.get_yscale() == "log" for ax in panels)
    lowest_mean = min(epochs.groupby(["depth", "epoch"])["train_eval_loss"].mean())
    for ax in panels:  # both panels keep every mean in view, the lower one's too
        assert ax.get_ylim()[0] == pytest.approx(lowest_mean / 2)


def test_learning_curves_show_every_arm_beside_an_outlier_and_accuracy_within_0_and_1():
    """The init page: constant weights start at a training loss near 1,200 while the other arms train
    at 0.3-2.3 (a linear axis drew them as one line at 0); three seeds' accuracy bands reached -0.4."""
    rows = []
    for arm, loss, accuracies in (("constant", 1200.0, [0.1, 0.1, 0.1]), ("he_normal", 0.5, [0.85, 0.86, 0.84]),
                                  ("normal_0.01", 2.3, [0.05, 0.1, 0.9])):  # a spread whose band reaches below 0
        for epoch in (1, 2, 3):
            for seed, accuracy in enumerate(accuracies):
                rows.append({"epoch": epoch, "seed": seed, "arm": arm, "kernel_initializer": arm,
                             "train_loss": loss / epoch * (1 + 0.1 * seed), "val_accuracy": accuracy})
    grid = figures.learning_curves_grid(pd.DataFrame(rows), ["kernel_initializer"])
    loss_panel, accuracy_panel = grid.axes_dict["train_loss"], grid.axes_dict["val_accuracy"]
    assert loss_panel.get_yscale() == "log"
    bottom, top = loss_panel.get_ylim()
    assert bottom <= 0.5 / 3 and top >= 1200  # every arm's mean in view, the outlier's and the trained arm's
    assert top / bottom < 1e6  # and no band pulled the axis decades below the smallest mean
    low, high = accuracy_panel.get_ylim()
    assert 0.0 <= low and high <= 1.0
    assert accuracy_panel.get_yscale() == "linear"

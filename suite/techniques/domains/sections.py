"""split_sections: report sections of the split study (claim D2).

What the source and target images look like, accuracy against the share of target images
in training (on the target test set and on both dev sets), and what each dev set would
have chosen as the training mix and what that choice costs on the test set. Studies
whose trials lack `target_share` and `dev_distribution` get nothing. Computes and draws;
judges no claim.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from suite.core import registry
from suite.core.report import figures
from suite.core.report.html import csv_link, table_html
from suite.core.report.sections import selected_rows
from suite.core.study import Study

SHARE, DEV = "target_share", "dev_distribution"
EXAMPLES = 8


def _chosen(trials: pd.DataFrame) -> pd.DataFrame:
    return selected_rows(trials, (SHARE, DEV), "test_accuracy")


def example_images(study: Study) -> str | None:
    """The first test images as they are (source) and as the phone delivers them (target)."""
    from suite.core.datasets import DataError, load_dataset
    from suite.techniques.domains.domains import NOISE_SEEDS, phone_images, phone_settings

    try:
        data = load_dataset(study.dataset)
    except DataError:
        return None
    settings = phone_settings({**study.model, **study.training})
    source = data.x_test[:EXAMPLES]
    target = phone_images(source, settings["phone_size"], settings["phone_blur"], settings["phone_noise"],
                          seed=NOISE_SEEDS["test"])  # exactly the first target test images
    figure, axes = plt.subplots(2, EXAMPLES, figsize=(1.1 * EXAMPLES, 2.6))
    for row, (name, images) in enumerate((("source", source), ("target", target))):
        for i in range(EXAMPLES):
            axes[row, i].imshow(images[i].squeeze(), cmap="gray", vmin=0, vmax=1)
            axes[row, i].set_xticks([])
            axes[row, i].set_yticks([])
        axes[row, 0].set_ylabel(name, fontsize=9)
    figure.tight_layout()
    return figures.to_data_uri(figure)


def accuracy_by_share(data: pd.DataFrame) -> str:
    """Accuracy against the share of target images in training: test (target) and each dev set."""
    test = data[data[DEV] == data[DEV].iloc[0]].assign(measured_on="test (target)", accuracy=lambda d: d["test_accuracy"])
    dev = data.assign(measured_on=lambda d: "dev (" + d[DEV] + ")", accuracy=lambda d: d["val_accuracy"])
    long = pd.concat([test, dev])[[SHARE, "seed", "measured_on", "accuracy"]]
    grid = sns.relplot(data=long, x=SHARE, y="accuracy", hue="measured_on", style="measured_on", kind="line",
                       marker="o", errorbar=figures.t_interval, height=3.4, aspect=1.6)
    grid.set_axis_labels("share of target images in training", "accuracy")
    return figures.to_data_uri(grid.figure)


def selection_table(data: pd.DataFrame) -> pd.DataFrame:
    """Per dev distribution and seed: the training mix with the best dev accuracy, its test
    accuracy, and how far that is below the best test accuracy any mix reached (regret)."""
    rows = []
    for (dev, seed), group in data.groupby([DEV, "seed"], sort=True):
        pick = group.loc[group["val_accuracy"].idxmax()]
        best = group["test_accuracy"].max()
        rows.append({"dev set from": dev, "seed": int(seed), "chosen share": pick[SHARE],
                     "its dev accuracy": pick["val_accuracy"], "its test accuracy": pick["test_accuracy"],
                     "best test accuracy": best, "regret": best - pick["test_accuracy"]})
    return pd.DataFrame(rows)


@registry.register("report_section")
def split_distributions(trials: pd.DataFrame, epochs: pd.DataFrame, study: Study,
                        layers: pd.DataFrame | None = None) -> list[dict]:
    """(D2) Source vs target images, accuracy by training mix, and dev-set choices."""
    data = _chosen(trials)
    if data.empty:
        return []

    entries = []
    images = example_images(study)
    if images:
        entries.append({"title": "Source and target images", "uri": images,
                        "caption": "Test images as they are (source: what training mostly sees) and as the phone "
                                   "delivers them (target: blurred, taken at low resolution, scaled back up, noisy)."})
    selection = selection_table(data)
    summary = selection.groupby("dev set from", sort=True)[["its test accuracy", "regret"]].mean().reset_index()
    entries += [
        {"title": "Accuracy by training mix", "uri": accuracy_by_share(data),
         "caption": "Mean and 95% interval over seeds. The test set is always the target; the dev set is the fixed "
                    "validation split, as it is (source) or as the phone delivers it (target). The training-set size "
                    "is the same for every share."},
        {"title": "What each dev set would choose",
         "caption": "Choosing the training mix by dev accuracy (a use of D2, shown, not judged): per seed, the share "
                    "with the best dev accuracy, its test accuracy, and its regret against the best share. Mean over "
                    "seeds: " + "; ".join(f"dev from {r['dev set from']}: test {r['its test accuracy']:.3f}, regret "
                                          f"{r['regret']:.3f}" for _, r in summary.iterrows()) + ".",
         "table": table_html(selection), "csv": csv_link(selection, f"{study.name}-dev-choices.csv")},
    ]
    return entries

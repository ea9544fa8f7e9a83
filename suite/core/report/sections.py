"""sections: the study-specific parts of a report page (kind "report_section").

A technique registers its sections beside its code; a study names the ones its page shows
(`report: [transfer_curves, ...]` in the study file), in that order. A section receives the
study's frames (trials, per-epoch rows, per-layer probe rows) and returns
a list of entries: {title, caption} plus `uri` (a figure) and/or
`table` (an HTML table) and optionally `csv` (a download link).
"""

from __future__ import annotations

import pandas as pd

from suite.core import registry
from suite.core.study import Study


def figure_entry(uri: str | None, title: str, caption: str) -> list[dict]:
    """A section's one figure as its entries: none when there is nothing to draw."""
    return [{"title": title, "uri": uri, "caption": caption}] if uri else []


def selected_rows(trials: pd.DataFrame, columns: tuple, measured: str) -> pd.DataFrame:
    """The judging trials (each arm at its chosen tuned values) that measured `measured`; empty
    when the study lacks any of `columns`, so a section drawn for another study draws nothing."""
    if trials.empty or any(column not in trials for column in (*columns, measured)):
        return pd.DataFrame()
    return trials[trials["selected"] & trials[measured].notna()]


def study_sections(trials: pd.DataFrame, epochs: pd.DataFrame, study: Study, layers: pd.DataFrame) -> list[dict]:
    """The entries of every section the study file names, in its order."""
    return [entry for name in study.report
            for entry in registry.get("report_section", name)(trials, epochs, study, layers)]

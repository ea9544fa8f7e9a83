"""html: the small pieces a report page is made of (numbers, verdict badges, tables, CSV links).

Report sections of every study import these; they hold no knowledge of studies or verdicts
beyond the verdict words.
"""

from __future__ import annotations

import base64
import math

import pandas as pd
from markupsafe import Markup

from suite.core.analysis import BUDGET_DEPENDENT, VERDICTS


def missing(x) -> bool:
    return x is None or (isinstance(x, float) and not math.isfinite(x))


def format_number(x, digits: int = 3) -> str:
    if missing(x):
        return "–"
    return f"{x:,.0f}" if abs(x) >= 1000 else f"{x:.{digits}f}"  # counts (parameters, FLOPs) read as counts


def badge(verdict: str | None) -> Markup:
    """A verdict as a coloured label (grey for "not judged" and anything unknown)."""
    if not verdict:
        return Markup("")
    css = verdict if verdict in (*VERDICTS, BUDGET_DEPENDENT) else "none"
    return Markup('<span class="badge {}">{}</span>').format(css, verdict)


def table_html(frame: pd.DataFrame, float_format: str = "{:.3f}") -> Markup:
    """A frame as an escaped HTML table (pandas escapes cell text)."""
    if frame.empty:
        return Markup("<p class='muted'>(none)</p>")
    return Markup(frame.to_html(index=False, classes="data", border=0, na_rep="–", escape=True,
                                float_format=float_format.format))


def csv_link(frame: pd.DataFrame, filename: str) -> Markup:
    """A download link carrying the table as an embedded CSV (no request leaves the page)."""
    payload = base64.b64encode(frame.to_csv(index=False).encode()).decode()
    return Markup(f'<a class="csv" download="{filename}" href="data:text/csv;base64,{payload}">download CSV</a>')


def interval(low, high) -> str:
    if missing(low) or missing(high):  # one seed gives (-inf, inf)
        return "–"
    return f"[{low:.3f}, {high:.3f}]"


def readable_arms(frame: pd.DataFrame) -> pd.DataFrame:
    """The per-arm table as a reader wants it: parameter counts as whole numbers, step times in
    milliseconds (seconds at 3 decimals read 0.001 for every MLP), and narrow enough for the page:
    the test interval in one column, and headers with spaces, which wrap (snake_case does not)."""
    frame = frame.copy()
    if "parameters" in frame:
        frame["parameters"] = frame["parameters"].round().astype("Int64")
    if "step_seconds" in frame:
        frame = frame.rename(columns={"step_seconds": "step ms"})
        frame["step ms"] = 1000 * frame["step ms"]
    if {"test_accuracy", "test_accuracy_low", "test_accuracy_high"} <= set(frame):
        ci = [interval(low, high) for low, high in zip(frame.pop("test_accuracy_low"), frame.pop("test_accuracy_high"))]
        frame.insert(frame.columns.get_loc("test_accuracy") + 1, "test accuracy 95% CI", ci)
    return frame.rename(columns=lambda name: name.replace("_", " "))

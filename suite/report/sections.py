"""sections: study-specific parts of a report page (kind "report_section").

Every registered section is offered every study's frames and returns a list of
entries, empty when the study does not have what it draws (so no study names them).
An entry is {title, caption} plus `uri` (a figure) and/or `table` (an HTML table) and
optionally `csv` (a download link). Sections of one study live in their own module,
imported below.
"""

from __future__ import annotations

import pandas as pd

from suite import registry
from suite.spec import Study


def study_sections(trials: pd.DataFrame, epochs: pd.DataFrame, study: Study) -> list[dict]:
    """Every registered section's entries for this study, in registration order."""
    from suite.report import (  # noqa: F401 (register their sections)
        architecture_sections,
        augmentation_sections,
        optimizer_sections,
        regression_sections,
        split_sections,
        transfer_sections,
    )

    return [entry for section in registry.entries("report_section").values() for entry in section(trials, epochs, study)]

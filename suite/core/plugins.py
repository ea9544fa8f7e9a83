"""plugins: finds and imports the technique packages, so each registers its pieces once.

Every package under `suite.techniques` is a plugin: importing it registers its named pieces,
settings and metrics (suite.core.registry); importing its `sections` module registers its
report sections. A new technique is a new
package there; no list to edit. Called by the CLI, by each worker process at start-up and by
the test set-up; core modules never import a technique themselves.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil

TECHNIQUES = "suite.techniques"
SECTIONS = "sections"  # a technique's report sections live in its module of this name
_LOADED: list[str] = []
_SECTIONS_LOADED: list[str] = []


def load_plugins(package: str = TECHNIQUES, sections: bool = True) -> list[str]:
    """Import every technique package (once per process); returns their module names. With
    `sections`, their report sections too (`<package>.sections`): the process that checks study
    files or draws reports needs them; a worker that only trains skips seaborn and jinja2."""
    if not _LOADED:
        root = importlib.import_module(package)
        for info in sorted(pkgutil.iter_modules(root.__path__, f"{package}."), key=lambda m: m.name):
            if info.ispkg:
                importlib.import_module(info.name)
                _LOADED.append(info.name)
    if sections and not _SECTIONS_LOADED:
        for name in _LOADED:
            if importlib.util.find_spec(f"{name}.{SECTIONS}") is not None:
                importlib.import_module(f"{name}.{SECTIONS}")
                _SECTIONS_LOADED.append(f"{name}.{SECTIONS}")
    return list(_LOADED)

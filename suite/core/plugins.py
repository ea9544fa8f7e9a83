"""plugins: finds and imports the technique packages, so each registers its pieces once.

Every package under `suite.techniques` is a plugin: importing it registers its named pieces,
settings, metrics and report sections (suite.core.registry). A new technique is a new
package there; no list to edit. Called by the CLI, by each worker process at start-up and by
the test set-up; core modules never import a technique themselves.
"""

from __future__ import annotations

import importlib
import pkgutil

TECHNIQUES = "suite.techniques"
_LOADED: list[str] = []


def load_plugins(package: str = TECHNIQUES) -> list[str]:
    """Import every technique package (once per process); returns their module names."""
    if not _LOADED:
        root = importlib.import_module(package)
        for info in sorted(pkgutil.iter_modules(root.__path__, f"{package}."), key=lambda m: m.name):
            if info.ispkg:
                importlib.import_module(info.name)
                _LOADED.append(info.name)
    return list(_LOADED)

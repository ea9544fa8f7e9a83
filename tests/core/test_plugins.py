"""plugins: every technique package registers itself; a worker skips the report layer."""

import os
import subprocess
import sys

import pytest
from conftest import REPO


@pytest.mark.subprocess
def test_a_worker_loads_the_techniques_without_the_report_layer():
    """Workers only train: their plugin load leaves report sections, seaborn and jinja2 out; the
    process that checks study files and draws reports loads the sections too."""
    code = ("import sys; from suite.core.plugins import load_plugins; from suite.core import registry; "
            "load_plugins(sections=False); "
            "print(sorted(m for m in ('seaborn', 'jinja2') if m in sys.modules), "
            "len(registry.list_names('report_section'))); "
            "load_plugins(); print(len(registry.list_names('report_section')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO,
                         env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}).stdout.splitlines()
    assert out[0] == "[] 0" and int(out[1]) > 0

"""CI workflow files: valid YAML of the shape GitHub accepts, running the README's commands."""

from pathlib import Path

import pytest
import yaml
from conftest import REPO

WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.yml"))


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_is_a_valid_github_workflow(path: Path):
    workflow = yaml.safe_load(path.read_text())
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as true
    assert workflow["name"] and triggers
    for name, job in workflow["jobs"].items():
        assert job["runs-on"], name
        assert job["steps"] and all("uses" in step or "run" in step for step in job["steps"]), name
        runs = " ".join(step.get("run", "") for step in job["steps"])
        assert "setup.sh" in runs and "run_all.py" in runs, name


def test_gpu_workflow_checks_the_full_profile():
    runs = " ".join(step.get("run", "") for step in yaml.safe_load((REPO / ".github/workflows/gpu.yml").read_text())
                    ["jobs"]["full"]["steps"])
    assert "--profile full" in runs and "--check" in runs and "SUITE_TF" in (REPO / ".github/workflows/gpu.yml").read_text()

"""The GitHub Actions workflow: valid by structure, and doing what the README promises reviewers."""

from __future__ import annotations

import json

import yaml
from conftest import ROOT
from jsonschema import Draft7Validator

WORKFLOW = ROOT / ".github" / "workflows" / "dashboards.yml"


def load() -> dict:
    doc = yaml.safe_load(WORKFLOW.read_text())
    if True in doc:  # YAML 1.1 reads the key `on` as true
        doc["on"] = doc.pop(True)
    return doc


def test_workflow_matches_the_schema():
    schema = json.loads((ROOT / "schemas" / "github-workflow.schema.json").read_text())
    assert [f"{list(e.absolute_path)}: {e.message}" for e in Draft7Validator(schema).iter_errors(load())] == []


def test_workflow_runs_the_readme_commands_and_posts_the_diff():
    steps = load()["jobs"]["check"]["steps"]
    runs = [s.get("run", "") for s in steps]
    for command in ("nox -s build", "nox -s lint", "nox -s live", "nox -s tests", "nox -s preview"):
        assert any(command in run for run in runs), command
    diff = next(s for s in steps if "nox -s diff" in s.get("run", ""))
    assert diff["if"] == "github.event_name == 'pull_request'" and "github.base_ref" in diff["run"]
    assert any("gh pr comment" in run and "out/reports/diff.md" in run for run in runs)
    upload = next(s for s in steps if s.get("uses", "").startswith("actions/upload-artifact"))
    assert "out/preview/" in upload["with"]["path"]
    checkout = next(s for s in steps if s.get("uses", "").startswith("actions/checkout"))
    assert checkout["with"]["fetch-depth"] == 0, "the diff needs the base revision's history"
    assert any("prometheus" in run for run in runs)

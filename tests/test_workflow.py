"""The GitHub Actions workflow: checked by the real tools (actionlint, and the GitHub workflow schema vendored in
check-jsonschema, both from requirements-workflow.txt), each shown to fail on a broken copy, and doing what the
README promises: its set-up and sessions, on the oldest and the newest supported Python, the diff posted on pull
requests and the previews and reports (build/, never out/) kept."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import ROOT

WORKFLOW = ROOT / ".github" / "workflows" / "dashboards.yml"


def load(path: Path = WORKFLOW) -> dict:
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    if True in doc:  # YAML 1.1 reads the key `on` as true
        doc["on"] = doc.pop(True)
    return doc


def tool(name: str) -> str:
    """A tool of requirements-workflow.txt, from the environment running the tests (nox -s tests installs it)."""
    found = shutil.which(name, path=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
    if not found:
        pytest.fail(f"{name} is not installed: pip install -r requirements-workflow.txt (nox -s tests does)")
    return found


def actionlint(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [tool("actionlint"), "-no-color", "-oneline", str(path)], capture_output=True, text=True, timeout=120
    )


def schema_check(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def broken_copy(tmp_path: Path, old: str, new: str) -> Path:
    text = WORKFLOW.read_text(encoding="utf-8")
    assert old in text, f"test setup: {old!r} is no longer in the workflow"
    copy = tmp_path / "dashboards.yml"
    copy.write_text(text.replace(old, new, 1), encoding="utf-8")
    return copy


def test_actionlint_passes_the_workflow():
    run = actionlint(WORKFLOW)
    assert (run.returncode, run.stdout + run.stderr) == (0, "")


def test_the_github_workflow_schema_passes_the_workflow():
    run = schema_check(WORKFLOW)
    assert run.returncode == 0, run.stdout + run.stderr


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("actions/checkout@v6", "actions/checkout@v4", 'runtime "node20" is deprecated'),
        (
            "python-version: ${{ matrix.python-version }}",
            "python-version: ${{ matrix.pyhton-version }}",
            'property "pyhton-version" is not defined',
        ),
        (
            'node-version: "24"',
            'node-verson: "24"',
            'input "node-verson" is not defined in action "actions/setup-node@v6"',
        ),
        (
            "github.event_name == 'pull_request'",
            "github.event_nam == 'pull_request'",
            'property "event_nam" is not defined',
        ),
    ],
    ids=["node20-action", "matrix-typo", "input-typo", "context-typo"],
)
def test_actionlint_catches_a_broken_workflow(tmp_path, old, new, message):
    run = actionlint(broken_copy(tmp_path, old, new))
    assert run.returncode == 1 and message in run.stdout, run.stdout + run.stderr


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("\n    steps:\n", "\n    step:\n", "'step' was unexpected"),
        ("timeout-minutes: 30", "timeout-minutes: thirty", "'thirty' is not of type 'number'"),
        ("\non:\n", "\nwhen:\n", "'on' is a required property"),
    ],
    ids=["unknown-key", "wrong-type", "missing-on"],
)
def test_the_schema_catches_a_broken_workflow(tmp_path, old, new, message):
    run = schema_check(broken_copy(tmp_path, old, new))
    assert run.returncode == 1 and message in run.stdout, run.stdout + run.stderr


def readme_commands() -> list[str]:
    """The commands of the README's set-up block (the one .ci/run runs), one per `&&` or line, comments dropped."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- setup[^\n]*-->\n```sh\n(.*?)```\n<!-- /setup -->", readme, re.S)
    assert block, "README: no set-up block (<!-- setup --> ```sh ... ``` <!-- /setup -->)"
    lines = [line.split("#", 1)[0].strip() for line in block.group(1).splitlines()]
    return [command.strip() for line in lines if line for command in line.split("&&")]


def test_workflow_sets_up_and_runs_the_readme_commands_and_posts_the_diff():
    steps = load()["jobs"]["check"]["steps"]
    runs = [s.get("run", "") for s in steps]
    script = "\n".join(runs)
    commands = readme_commands()
    assert any("-m venv .venv" in c for c in commands) and any("nox -s tests" in c for c in commands), commands
    at = 0
    for command in commands:  # the README's own words, in its order
        found = script.find(command, at)
        assert found >= 0, f"the workflow does not run the README's `{command}` (after its earlier commands)"
        at = found + len(command)
    for command in (".venv/bin/nox -s lint", ".venv/bin/nox -s live", ".venv/bin/nox -s preview"):
        assert any(command in run for run in runs), command
    diff = next(s for s in steps if "nox -s diff" in s.get("run", ""))
    assert "github.event_name == 'pull_request'" in diff["if"]
    assert diff["env"]["BASE_REF"] == "${{ github.base_ref }}" and '"origin/$BASE_REF"' in diff["run"]
    comment = next(s for s in steps if "gh pr comment" in s.get("run", ""))
    assert "github.event_name == 'pull_request'" in comment["if"]
    assert re.findall(r"--body-file (\S+)", comment["run"]) == ["build/reports/diff.md"] * 2
    upload = next(s for s in steps if s.get("uses", "").startswith("actions/upload-artifact"))
    assert upload["with"]["path"].split() == ["build/preview/", "build/reports/"], (
        "previews and reports, nothing of out/"
    )
    checkout = next(s for s in steps if s.get("uses", "").startswith("actions/checkout"))
    assert checkout["with"]["fetch-depth"] == 0, "the diff needs the base revision's history"
    assert any("prometheus" in run and "apt-get install" in run for run in runs)
    text = WORKFLOW.read_text(encoding="utf-8")
    assert "out/reports" not in text and "out/preview" not in text, (
        "reports and previews are in build/: out/ is deployed whole"
    )


def test_workflow_tests_the_oldest_and_the_newest_supported_python():
    import tomllib

    job = load()["jobs"]["check"]
    matrix = job["strategy"]["matrix"]
    versions = [tuple(map(int, v.split("."))) for v in matrix["python-version"]]
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["requires-python"]
    oldest = tuple(map(int, re.fullmatch(r">=\s*([\d.]+)", requires).group(1).split(".")))
    assert min(versions) == (3, 11, 2) and min(versions)[: len(oldest)] == oldest, (
        "Debian 12's 3.11.2, the oldest supported"
    )
    assert max(versions)[:2] >= (3, 14) and job["strategy"]["fail-fast"] is False
    setup = next(s for s in job["steps"] if s.get("uses", "").startswith("actions/setup-python"))
    assert setup["with"]["python-version"] == "${{ matrix.python-version }}"
    # One leg posts the diff and keeps the previews: two comments or two artifacts of one name would clash.
    assert [leg for leg in matrix["include"] if leg.get("reports")] == [{"python-version": "3.11.2", "reports": True}]
    for step in job["steps"]:
        if (
            "nox -s diff" in step.get("run", "")
            or "nox -s preview" in step.get("run", "")
            or "gh pr" in step.get("run", "")
            or step.get("uses", "").startswith("actions/upload-artifact")
        ):
            assert step["if"].startswith("matrix.reports"), step


def test_the_previews_go_to_build_not_out(project):
    """What the workflow uploads is where the tool writes: build/preview/, none of it in out/ (deployed whole)."""
    project.write("build/preview/services/removed-service.svg", "<svg/>\n")  # a removed dashboard's picture
    project.write("build/preview/diff/base/kept.svg", "<svg/>\n")  # tools/diff.py's, not the preview's to remove
    run = project.tool("preview.py")
    assert run.returncode == 0, run.stderr
    pictures = sorted(
        p.relative_to(project.path / "build" / "preview").as_posix()
        for p in (project.path / "build" / "preview").rglob("*.svg")
    )
    dashboards = [line for line in run.stdout.splitlines() if line.endswith(".svg")]
    services = len(list((project.path / "values" / "services").glob("*.yaml")))
    assert len(dashboards) >= 1 + services and all(line.startswith("build/preview/") for line in dashboards), run.stdout
    assert pictures == sorted([line.removeprefix("build/preview/") for line in dashboards] + ["diff/base/kept.svg"])
    assert not (project.path / "out").exists()

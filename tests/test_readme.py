"""The README cannot go stale: every command it shows is run by .ci/run or by a test, every session it
names exists, every file it names is one the build writes."""

from __future__ import annotations

import ast
import re
import shlex

import yaml
from conftest import ROOT
from patches import remove_panel

from dashkit.pipeline import build

README = (ROOT / "README.md").read_text(encoding="utf-8")
# The README shows the shipped uid_prefix; a team that renamed the platform keeps a green suite.
PREFIX = yaml.safe_load((ROOT / "values" / "defaults.yaml").read_text(encoding="utf-8"))["uid_prefix"]


def as_built(path: str) -> str:
    return path.replace("pyairtable", PREFIX)


CI = (ROOT / ".ci" / "run").read_text(encoding="utf-8")


def shell_lines() -> list[str]:
    """Every command of the README's ```sh blocks, comments dropped."""
    lines = []
    for block in re.findall(r"```sh\n(.*?)```", README, re.S):
        lines += [
            line.split("  #", 1)[0].strip() for line in block.splitlines() if line.strip() and not line.startswith("#")
        ]
    return lines


def sessions() -> set[str]:
    tree = ast.parse((ROOT / "noxfile.py").read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and any("session" in ast.unparse(d) for d in node.decorator_list):
            explicit = [
                kw.value.value
                for d in node.decorator_list
                if isinstance(d, ast.Call)
                for kw in d.keywords
                if kw.arg == "name"
            ]
            names.add(explicit[0] if explicit else node.name)
    return names


def test_every_session_the_readme_names_exists():
    table = README.split("## Sessions", 1)[1]
    named = set(re.findall(r"nox (?:-R )?-s ([a-z][a-z0-9_-]*)", README)) | set(
        re.findall(r"^\| `([a-z]+)`", table, re.M)
    )
    named |= {n for pair in re.findall(r"^\| `([a-z]+)`, `([a-z]+)`", table, re.M) for n in pair}
    assert named and named <= sessions(), f"README names sessions noxfile.py lacks: {sorted(named - sessions())}"


def test_ci_runs_the_readme_set_up_block_as_written():
    block = re.search(r"<!-- setup[^\n]*-->\n```sh\n(.*?)```\n<!-- /setup -->", README, re.S)
    assert block, "the README's quick start is marked for .ci/run"
    commands = [line.split("#", 1)[0].strip() for line in block.group(1).splitlines()]
    assert any(c.endswith("nox -s build") for c in commands) and any(c.endswith("nox -s tests") for c in commands)
    assert "<!-- setup" in CI and 'bash -euo pipefail -c "$line"' in CI, ".ci/run executes the block line by line"


def test_every_readme_command_is_run_by_ci_or_a_test():
    """Each line is one of: the set-up block (.ci/run runs it), a nox session .ci/run runs, the deploy copy
    (tests/test_deploy.py runs the README's line), `nox -s verify` against Mimir (tests/test_verify_prometheus.py
    runs the README's line against a real Prometheus behind a proxy standing in for Mimir), or mimirtool, which cannot be installed here: its file
    arguments are checked against what the build writes instead."""
    setup = README.split("<!-- /setup -->")[0]
    ci_sessions = set(re.findall(r"^nox -s ([a-z-]+)", CI, re.M))
    files = set(build(ROOT).files)
    for line in shell_lines():
        words = shlex.split(line.removeprefix("sudo "))
        if line in setup:
            continue
        if words[0] == "mimirtool":
            rule_files = [w for w in words if w.startswith("out/")]
            assert rule_files and all(as_built(w.removeprefix("out/")) in files for w in rule_files), line
        elif words[0] in ("cp", "rm") and "/grafana/provisioning" in line:
            assert "readme_deploy_commands()" in (ROOT / "tests" / "test_deploy.py").read_text(encoding="utf-8")
        elif words[:3] == ["nox", "-s", "verify"]:  # needs a Mimir: run against a real Prometheus behind a proxy
            assert "readme_verify_commands()" in (ROOT / "tests" / "test_verify_prometheus.py").read_text(
                encoding="utf-8"
            )
        elif words[0] == "nox":
            assert words[1:2] == ["-s"] and words[2] in ci_sessions, f"{line}: not run by .ci/run"
        else:
            raise AssertionError(f"README command that nothing runs: {line}")


def test_every_out_file_the_readme_lists_is_one_the_build_writes():
    files = build(ROOT).files
    listed = [as_built(p) for p in re.findall(r"^  ((?:dashboards|datasources|alerting|rules)/\S+)", README, re.M)]
    assert listed
    for name in listed:
        pattern = re.escape(name).replace(re.escape("<service>"), "[a-z0-9-]+")
        assert any(re.fullmatch(pattern, f) for f in files), f"README lists out/{name}, which the build does not write"
    for name in files:
        generic = re.sub(
            r"^dashboards/(\w+)/services/[a-z0-9-]+\.json$", r"dashboards/\1/services/<service>.json", name
        )
        assert generic in listed, f"the build writes out/{name}, which the README's Deploy section does not list"


def test_the_readme_panel_example_builds_and_diffs_as_the_readme_shows(project):
    """Add a panel: the README's YAML, pasted into the service file it names, builds; `nox -s diff` then
    prints the README's example report, line for line."""
    from dashkit.diff import diff_trees

    section = README.split("### Add a panel", 1)[1].split("\n### ", 1)[0]
    example = re.search(r"```yaml\n(.*?)```", section, re.S).group(1)
    target = re.search(r"in\s+`(values/services/[a-z0-9-]+\.yaml)`", section).group(1)
    header, panel = example.split("    panels:\n", 1)
    header += "    panels:\n"
    # a user who followed the README already has the panel: start from the file without it
    remove_panel(project.file(target), yaml.safe_load(header)[0]["title"], yaml.safe_load(panel)[0]["title"])
    before = build(project.path).files
    project.edit(target, header, header + panel)
    report, count = diff_trees(before, build(project.path).files)
    review = README.split("### Review a change", 1)[1]
    shown = as_built(re.search(r"```\n(## .*?)```", review, re.S).group(1)).strip().splitlines()
    body = report.split("\n", 1)[1]  # after the report's own heading, "# Dashboard changes"
    assert count == 1 and [line for line in shown if line.strip()] == [
        line for line in body.splitlines() if line.strip()
    ]


def test_the_readme_panel_type_example_is_one_template_file_that_builds(project):
    """A new panel type: the README's Jsonnet, saved as templates/panels/<type>.jsonnet, is a type a panel
    can use, with no other file touched."""
    section = README.split("### A new panel type", 1)[1].split("\n## ", 1)[0]

    def service_status(root):
        overview = next(d for d in build(root).dashboards if d.kind == "overview")
        return next(p for p in overview.json["panels"] if p.get("title") == "Service status")

    stat = service_status(project.path)  # the built-in stat the example's pieces come from
    project.write("templates/panels/tile.jsonnet", re.search(r"```jsonnet\n(.*?)```", section, re.S).group(1))
    project.edit(
        "values/overview.yaml",
        "      - type: stat\n        title: Service status",
        "      - type: tile\n        title: Service status",
    )
    tile = service_status(project.path)
    # the shared pieces (targets, data-point limit) come out as on the built-in type they were taken from
    assert tile["type"] == "tile" and "maxDataPoints" in stat
    assert tile["maxDataPoints"] == stat["maxDataPoints"] and tile["targets"] == stat["targets"]

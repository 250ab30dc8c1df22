"""The README's everyday workflows keep the suite green with no edit to a test.

Each workflow runs end to end in a fresh copy of the project, as a user would: make the edit the README
describes, then `python build.py` (what `nox -s build` runs), the snapshot update (`nox -s snapshots`) and
the test suite (`nox -s tests`), each of which must exit 0. The four copies run two at a time.

What the suite run in each copy leaves out, and why (everything else runs, new test modules included):
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml
from conftest import ROOT
from patches import drop_lines, line_of_path, remove_panel, replace_in_line, yaml_lines

pytestmark = pytest.mark.workflow

SKIPPED = {  # test module -> why the copies do not run it
    "test_everyday_workflows.py": "this module: it would copy the project again from inside each copy",
    "test_hardening.py": "SIGKILL/SIGINT trials and races of real builds: what it checks does not depend on the values",
    "test_cache.py": "random edits of a copy built with and without the build cache, a minute per copy: it edits\n"
    "  the values itself",
    "test_live.py": "a Prometheus with 6 hours of synthetic data: a minute per copy (nox -s tests runs it)",
    "test_live_scenarios.py": "a Prometheus per scenario, a minute per copy; its checks of values/scenarios.yaml that need\n"
    "  no Prometheus do run (SCENARIO_CHECKS below)",
    "test_rules_promtool.py": "promtool test rules over every alert, 25 s per copy (nox -s tests runs it)",
    "test_grammar.py": "Grafana's LogQL/TraceQL grammars from npm, not installed in a fresh copy",
    "test_verify_prometheus.py": "verify's CLI against servers that misbehave, 1.5 minutes per copy; what depends on\n"
    "  the values (every panel shows data when scraped live) test_live_scrape.py checks in the copy",
}
__doc__ += "".join(f"\n- {name}: {why}" for name, why in SKIPPED.items()) + "\n"

LEFT_OUT = {
    ".git",
    ".nox",
    ".venv",
    "out",
    "build",
    ".cache",
    ".hypothesis",
    ".pytest_cache",
    ".ruff_cache",
    "node_modules",
    ".out.lock",
}
SERVICES = ROOT / "values" / "services"


def fresh_copy(base: Path) -> Path:
    """The working tree (uncommitted and untracked files included, git's history and every generated folder
    left out) at base/project, with ../shared (the specification, Grafana's schemas) beside it as here."""
    dest = base / "project"
    shutil.copytree(ROOT, dest, ignore=lambda folder, names: {n for n in names if n in LEFT_OUT or n == "__pycache__"})
    grammar = ROOT / "tools" / "grammar" / "node_modules"
    if grammar.is_dir():
        (dest / "tools" / "grammar" / "node_modules").symlink_to(grammar)
    if (ROOT.parent / "shared").is_dir():
        (base / "shared").symlink_to(ROOT.parent / "shared")
    return dest


def run(copy: Path, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")} | {
        "PYTHONPATH": str(copy)
    }  # its own dashkit
    return subprocess.run([sys.executable, *args], cwd=copy, capture_output=True, text=True, timeout=timeout, env=env)


# ---- the workflows, as the README tells a user to do them ------------------------------------------


def add_a_service(copy: Path) -> str:
    """A values/services file and its metric in the catalog (README: Add a service), under a name and a port
    no one would pick for a real service."""
    (copy / "values/services/zz-test-notifications.yaml").write_text(
        "service: zz-test-notifications\n"
        "title: Notification Service\n"
        "port: 65510\n"
        "description: Sends e-mail and push notifications for the platform.\n"
        "rows:\n"
        "  - title: Delivery\n"
        "    panels:\n"
        "      - type: stat\n"
        "        title: Queued notifications\n"
        "        description: Notifications waiting to be sent right now.\n"
        '        expr: sum(zz_test_notifications_queue_depth{job="$job"})\n'
        "        unit: short\n",
        encoding="utf-8",
    )
    catalog = copy / "values/metrics.yaml"
    text = catalog.read_text(encoding="utf-8")
    assert "\nmetrics:\n" in text
    catalog.write_text(
        text.replace(
            "\nmetrics:\n",
            "\nmetrics:\n"
            "  zz_test_notifications_queue_depth:\n"
            "    type: gauge\n"
            "    service: zz-test-notifications\n"
            "    spec: false\n"
            "    help: Notifications waiting to be sent.\n"
            "    synthetic: {min: 0, max: 20}\n",
            1,
        ),
        encoding="utf-8",
    )
    return "services/zz-test-notifications.json"


def readme_panel() -> tuple[str, str, str]:
    """The README's "Add a panel" example: (values file, row header lines, panel lines)."""
    section = (ROOT / "README.md").read_text(encoding="utf-8").split("### Add a panel", 1)[1].split("\n### ", 1)[0]
    example = re.search(r"```yaml\n(.*?)```", section, re.S).group(1)
    target = re.search(r"in\s+`(values/services/[a-z0-9-]+\.yaml)`", section).group(1)
    header, panel = example.split("    panels:\n", 1)
    return target, header + "    panels:\n", panel


def add_a_panel(copy: Path) -> str:
    """The README's own example panel, pasted into the row it names (a copy whose values already hold it
    gets it anew)."""
    target, header, panel = readme_panel()
    remove_panel(copy / target, yaml.safe_load(header)[0]["title"], yaml.safe_load(panel)[0]["title"])
    text = (copy / target).read_text(encoding="utf-8")
    assert header in text, f"the README's example row is not in {target}"
    (copy / target).write_text(text.replace(header, header + panel, 1), encoding="utf-8")
    return f"services/{Path(target).stem}.json"


def removed_service() -> str:
    """A real service to remove: automation-services (it has its own alert, recording rules, an overview
    panel and live-check scenario events), or the last service file if a team already retired it."""
    names = sorted(p.stem for p in SERVICES.glob("*.yaml"))
    return "automation-services" if "automation-services" in names else names[-1]


def mentions(text: str, names: set[str]) -> bool:
    return any(re.search(rf"(?<![\w:]){re.escape(n)}(?:_bucket|_sum|_count)?(?![\w:])", text) for n in names)


def remove_a_service(copy: Path) -> str:
    """README: delete the service's file and the catalog metrics that name it as their service; then fix what
    the build lists: the overview panels and recording rules over those metrics, and its live-check
    scenario entries."""
    service = removed_service()
    (copy / f"values/services/{service}.yaml").unlink()

    def edit(rel: str, pick) -> None:
        """Drop from a values file the items (list items or mapping entries) pick(path, item, item text) chooses."""
        path = copy / rel
        text = path.read_text(encoding="utf-8")
        lines, doc = yaml_lines(text), yaml.safe_load(text)
        split = text.split("\n")
        spans = []
        for where, (first, last) in lines.items():
            node = doc
            for part in where:  # keys as written; one YAML 1.1 reads otherwise (on, 1) is not a node pick() wants
                node = node.get(part) if isinstance(node, dict) else node[part] if isinstance(node, list) else None
            if where and pick(where, node, "\n".join(split[first - 1 : last])):
                spans.append((first, last))
        path.write_text(drop_lines(text, spans), encoding="utf-8")

    catalog = yaml.safe_load((copy / "values/metrics.yaml").read_text(encoding="utf-8"))["metrics"]
    gone = {name for name, entry in catalog.items() if entry["service"] == service}
    edit("values/metrics.yaml", lambda where, node, text: len(where) == 2 and where[1] in gone)
    recording = yaml.safe_load((copy / "values/rules.yaml").read_text(encoding="utf-8"))["recording"]
    while True:  # recorded series over its metrics, and over those, are gone too
        more = {r["record"] for r in recording if mentions(r["expr"], gone)} - gone
        if not more:
            break
        gone |= more
    edit(
        "values/rules.yaml",
        lambda where, node, text: len(where) == 2 and isinstance(where[1], int) and mentions(text, gone),
    )
    job = f'job="{service}"'
    panel_rows = [
        "values/overview.yaml",
        "values/standard.yaml",
        *(f"values/services/{p.name}" for p in (copy / "values/services").glob("*.yaml")),
    ]
    for rel in panel_rows:
        doc = yaml.safe_load((copy / rel).read_text(encoding="utf-8"))
        for key in ("rows", "leading_rows", "trailing_rows"):
            emptied = {
                i
                for i, row in enumerate(doc.get(key) or [])
                if all(mentions(str(p), gone) or job in str(p) for p in row.get("panels") or [])
            }
            edit(
                rel,
                lambda where, node, text, key=key, emptied=emptied: (
                    (len(where) == 2 and where[0] == key and where[1] in emptied)
                    or (
                        len(where) == 4
                        and where[0] == key
                        and where[2] == "panels"
                        and (mentions(text, gone) or job in text)
                    )
                ),
            )
    edit(
        "values/scenarios.yaml",
        lambda where, node, text: (
            (
                len(where) == 4
                and where[2] in ("events", "alerts")
                and isinstance(node, dict)
                and (node.get("service") == service or node.get("metric") in gone)
            )
            or (len(where) == 4 and where[2] == "gauges" and where[3] in gone)
        ),
    )
    path = copy / "values/scenarios.yaml"  # names of its metrics in flow lists such as absent_metrics: [a, b]
    text = path.read_text(encoding="utf-8")
    for name in gone:
        text = re.sub(rf"(?<=[\[ ]){re.escape(name)},\s*|,\s*{re.escape(name)}(?=\s*\])", "", text)
    path.write_text(text, encoding="utf-8")
    keep_a_backlog_in_the_incident(path)
    return f"services/{service}.json"


def keep_a_backlog_in_the_incident(path: Path) -> None:
    """The incident scenario must still fire a queue-backlog alert (the specification's queue depth condition;
    tests/test_live_scenarios.py says so). If the removed service's queue was the one that backed up, back up
    another's: copy a backlog event and its alert from another scenario, for a service the incident neither
    takes down nor loses."""
    text = path.read_text(encoding="utf-8")
    doc, lines, split = yaml.safe_load(text), yaml_lines(text), text.split("\n")
    incident = doc["scenarios"]["incident"]
    if any(a["alert"].endswith("Backlog") for a in incident.get("alerts", [])):
        return
    busy = {e["service"] for e in incident["events"] if e["kind"] in ("down", "absent")}
    for name, scenario in doc["scenarios"].items():
        for i, alert in enumerate(scenario.get("alerts") or []):
            if alert["alert"].endswith("Backlog") and alert["service"] not in busy and name != "incident":
                j = next(
                    j
                    for j, e in enumerate(scenario["events"])
                    if e["service"] == alert["service"] and e["kind"] == "gauge"
                )
                event_line = split[lines[("scenarios", name, "events", j)][0] - 1]
                alert_line = split[lines[("scenarios", name, "alerts", i)][0] - 1]
                last_event = lines[("scenarios", "incident", "events", len(incident["events"]) - 1)][1]
                last_alert = lines[("scenarios", "incident", "alerts", len(incident["alerts"]) - 1)][1]
                for after, line in sorted(((last_event, event_line), (last_alert, alert_line)), reverse=True):
                    split[after:after] = [line]
                path.write_text("\n".join(split), encoding="utf-8")
                return
    raise AssertionError("no other service's queue can back up in the incident")


def rename_a_panel(copy: Path) -> str:
    """README: change its title, and any alert's `panel:` that names it. The first panel of the README's
    example service (of the first service, if a team removed that one)."""
    names = sorted(p.stem for p in (copy / "values/services").glob("*.yaml"))
    service = "api-gateway" if "api-gateway" in names else names[0]
    path = copy / f"values/services/{service}.yaml"
    text = path.read_text(encoding="utf-8")
    doc, lines = yaml.safe_load(text), yaml_lines(text)
    old = doc["rows"][0]["panels"][0]["title"]
    new = f"{old} zz renamed"
    replace_in_line(path, line_of_path(lines, ("rows", 0, "panels", 0, "title")), old, new)
    for i, alert in enumerate(doc.get("alerts", [])):
        if alert.get("panel") == old:
            replace_in_line(path, line_of_path(lines, ("alerts", i, "panel")), old, new)
    return f"services/{service}.json"


WORKFLOWS = {
    "add-a-service": add_a_service,
    "add-a-panel": add_a_panel,
    "remove-a-service": remove_a_service,
    "rename-a-panel": rename_a_panel,
}


SCENARIO_CHECKS = [  # the tests of test_live_scenarios.py that read values/scenarios.yaml and need no Prometheus
    "test_the_incident_covers_every_alert_condition_of_the_specification",
    "test_every_alert_is_expected_to_fire_in_some_scenario",
    "test_a_scenario_naming_a_missing_service_or_metric_is_one_line_each",
]


def suite(copy: Path) -> list[str]:
    modules = sorted(f"tests/{p.name}" for p in (copy / "tests").glob("test_*.py") if p.name not in SKIPPED)
    return modules + [f"tests/test_live_scenarios.py::{name}" for name in SCENARIO_CHECKS]


def workflow(name: str, base: Path) -> dict:
    """Copy, edit, build, accept snapshots, run the suite. Returns what each step said and how long it took."""
    start = time.monotonic()
    copy = fresh_copy(base)
    changed = WORKFLOWS[name](copy)
    steps, seconds = {}, {}
    for step, args in (
        ("build", ["build.py"]),
        (
            "snapshots",
            [
                "-m",
                "pytest",
                "tests/test_snapshots.py",
                "tests/test_diff_and_preview.py",
                "--snapshot-update",
                "-q",
                "-p",
                "no:cacheprovider",
            ],
        ),
        ("tests", ["-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *suite(copy)]),
    ):
        began = time.monotonic()
        steps[step] = run(copy, *args)
        seconds[step] = round(time.monotonic() - began, 1)
        if steps[step].returncode != 0:
            break
    seconds["total"] = round(time.monotonic() - start, 1)
    return {"copy": copy, "changed": changed, "steps": steps, "seconds": seconds}


@pytest.fixture(scope="module")
def runs(request, tmp_path_factory):
    """The selected workflows, all started on first use, two at a time (or one per core)."""
    selected = {item.name for item in request.session.items}
    names = [name for name in WORKFLOWS if f"test_{name.replace('-', '_')}" in selected]
    pool = ThreadPoolExecutor(max_workers=max(1, min(len(names), os.cpu_count() or 1)))
    futures = {name: pool.submit(workflow, name, tmp_path_factory.mktemp(name)) for name in names}
    yield futures
    pool.shutdown(wait=True, cancel_futures=True)


def assert_green(outcome: dict) -> None:
    print(f"{outcome['changed']}: seconds per step {outcome['seconds']}")  # shown with -rP
    for step in ("build", "snapshots", "tests"):
        assert step in outcome["steps"], f"{step} did not run"
        result = outcome["steps"][step]
        assert result.returncode == 0, f"{step} exited {result.returncode}:\n{(result.stdout + result.stderr)[-6000:]}"


def dashboards_of(copy: Path) -> dict[str, bytes]:
    """Dashboard path (as in the snapshots) -> bytes, from the copy's out/."""
    prefix = yaml.safe_load((copy / "values/defaults.yaml").read_text(encoding="utf-8"))["uid_prefix"]
    folder = copy / "out" / "dashboards" / prefix
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*.json")}


def snapshot_names(copy: Path) -> set[str]:
    folder = copy / "tests" / "__snapshots__" / "test_snapshots"
    return {p.name for p in folder.iterdir()} if folder.is_dir() else set()


def test_add_a_service(runs):
    outcome = runs["add-a-service"].result()
    assert_green(outcome)
    assert outcome["changed"] in dashboards_of(outcome["copy"])
    assert any("zz-test-notifications" in name for name in snapshot_names(outcome["copy"])), (
        "nox -s snapshots took in its dashboard"
    )


def test_add_a_panel(runs):
    outcome = runs["add-a-panel"].result()
    assert_green(outcome)
    _, _, panel = readme_panel()
    title = yaml.safe_load(panel)[0]["title"]
    assert f'"title": "{title}"'.encode() in dashboards_of(outcome["copy"])[outcome["changed"]]


def test_remove_a_service(runs):
    outcome = runs["remove-a-service"].result()
    assert_green(outcome)
    gone = outcome["changed"]
    assert gone not in dashboards_of(outcome["copy"])
    assert not [n for n in snapshot_names(outcome["copy"]) if Path(gone).stem in n], (
        "nox -s snapshots dropped its snapshot"
    )


def test_rename_a_panel(runs):
    outcome = runs["rename-a-panel"].result()
    assert_green(outcome)
    assert b" zz renamed" in dashboards_of(outcome["copy"])[outcome["changed"]]

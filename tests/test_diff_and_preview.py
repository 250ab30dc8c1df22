"""Review in pull requests: the semantic diff names what changed in words, never renumbered ids or shifted
positions; the layout preview draws what the JSON says."""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest
import yaml
from conftest import ROOT, panels_of
from syrupy.extensions.single_file import SingleFileSnapshotExtension, WriteMode

from dashkit.diff import diff_dashboards, diff_rules, diff_trees
from dashkit.pipeline import build
from dashkit.preview import COLUMN, ROW_UNIT, render_svg

API = "services/api-gateway.json"


@pytest.fixture
def api(tree):
    return copy.deepcopy(tree[API])


def panel(dashboard: dict, title: str) -> dict:
    return next(p for p in panels_of(dashboard) if p.get("title") == title)


def test_no_change_reports_nothing(api, tree):
    assert diff_dashboards(tree[API], api) == []


def test_added_and_removed_panels(api, tree):
    new = copy.deepcopy(panel(api, "Active connections"))
    new["title"], new["targets"][0]["expr"] = "Queued requests", "sum(x)"
    api["panels"].insert(3, new)
    gone = panel(api, "Backend status codes")
    api["panels"].remove(gone)
    assert diff_dashboards(tree[API], api) == [
        "- panel **Queued requests** added to row *Service health* (stat, short)",
        "- panel **Backend status codes** removed from row *Backend routing*",
    ]


def test_a_pure_reorder_is_only_moved_and_ids_and_positions_are_noise(api, tree):
    top = api["panels"]
    i, j = top.index(panel(api, "Request rate")), top.index(panel(api, "Error rate"))
    top[i], top[j] = top[j], top[i]
    for p in panels_of(api):  # renumber everything and shift the grid: none of it is a change
        p["id"] += 1000
        p["gridPos"]["y"] += 3
    lines = diff_dashboards(tree[API], api)
    assert lines and all(re.match(r"- panel \*\*.+\*\* moved within row \*Service health\*$", line) for line in lines)
    assert len(lines) == 1


def test_moved_to_another_row(api, tree):
    moving = panel(api, "Active connections")
    api["panels"].remove(moving)
    api["panels"].append(moving)  # after the last row header: now in "Logs and traces"
    assert diff_dashboards(tree[API], api) == ["- panel **Active connections** moved from row *Authentication & rate limiting* to row *Logs and traces*"]


def test_renamed_panel_is_one_rename_not_add_and_remove(api, tree):
    panel(api, "Active connections")["title"] = "Open client connections"
    assert diff_dashboards(tree[API], api) == ["- panel **Active connections** renamed to **Open client connections** (row *Authentication & rate limiting*)"]


@pytest.mark.parametrize("change,edit,expected", [
    ("query", lambda p: p["targets"][0].update(expr="sum(api_gateway_active_connections)"),
     ["- panel **Active connections**: query A changed", "  ```diff", '  - sum(api_gateway_active_connections{job="$job"})',
      "  + sum(api_gateway_active_connections)", "  ```"]),
    ("unit", lambda p: p["fieldConfig"]["defaults"].update(unit="percent"), ["- panel **Active connections**: unit `short` → `percent`"]),
    ("thresholds", lambda p: p["fieldConfig"]["defaults"]["thresholds"]["steps"].append({"color": "red", "value": 500}),
     ["- panel **Active connections**: thresholds `green` → `green, red from 500`"]),
    ("legend", lambda p: p["targets"][0].update(legendFormat="{{instance}}"), ["- panel **Active connections**: legend A `__auto` → `{{instance}}`"]),
    ("description", lambda p: p.update(description="Connections."),
     ["- panel **Active connections**: description `Client connections open on the gateway right now.` → `Connections.`"]),
    ("datasource", lambda p: p.update(datasource={"type": "prometheus", "uid": "mimir-eu"}), ["- panel **Active connections**: datasource `mimir` → `mimir-eu`"]),
])
def test_each_kind_of_panel_change_is_named(api, tree, change, edit, expected):
    edit(panel(api, "Active connections"))
    assert diff_dashboards(tree[API], api) == expected


def test_variable_changes(api, tree):
    var = next(v for v in api["templating"]["list"] if v["name"] == "backend")
    var["query"] = var["query"].replace("backend)", "backend_name)")
    api["templating"]["list"].append({"type": "custom", "name": "region", "query": "eu,us"})
    assert diff_dashboards(tree[API], api) == [
        "- variable **$region** added (custom: `eu,us`)",
        '- variable **$backend**: query `label_values(api_gateway_backend_requests_total{job="api-gateway"}, backend)` → '
        '`label_values(api_gateway_backend_requests_total{job="api-gateway"}, backend_name)`',
    ]


def test_alert_rule_changes():
    old = build(ROOT).files["rules/pyairtable-alerts.yaml"]
    doc = yaml.safe_load(old)
    group = doc["groups"][0]
    first, was = group["rules"][0]["alert"], group["rules"][0]["for"]
    group["rules"][0]["for"] = "17m"
    removed = group["rules"].pop(1)["alert"]
    lines = diff_rules(old, yaml.safe_dump(doc))
    assert lines == [f"- rule **{removed}** removed from {group['name']}",
                     f"- rule **{first}** ({group['name']}): for `{was}` → `17m`"]


def test_dashboards_added_and_removed(tree):
    old = {API: json.dumps(tree[API])}
    new = {"services/search.json": json.dumps(dict(tree[API], title="Search"))}
    report, count = diff_trees(old, new)
    assert count == 2 and "- dashboard added" in report and "- dashboard removed" in report


def test_adding_one_panel_to_a_values_file_is_a_few_lines_naming_it(project):
    before = build(project.path).files
    project.edit("values/services/api-gateway.yaml", "  - title: Backend routing\n    panels:\n",
                 "  - title: Backend routing\n    panels:\n      - {type: stat, title: Backends up, description: Backends in use.,"
                 " expr: 'count(sum by (backend) (rate(api_gateway_backend_requests_total{job=\"$job\"}[$interval])))', unit: short}\n")
    report, count = diff_trees(before, build(project.path).files)
    assert count == 1
    assert "- panel **Backends up** added to row *Backend routing* (stat, short)" in report
    assert len([line for line in report.splitlines() if line.startswith("- ")]) == 1


def test_diff_cli_on_two_files_and_check(tmp_path, tree):
    old, new = tmp_path / "old.json", tmp_path / "new.json"
    old.write_text(json.dumps(tree[API]))
    changed = copy.deepcopy(tree[API])
    panel(changed, "Error rate")["fieldConfig"]["defaults"]["unit"] = "percent"
    new.write_text(json.dumps(changed))
    run = subprocess.run([sys.executable, str(ROOT / "tools" / "diff.py"), "--files", str(old), str(new), "--check"], capture_output=True, text=True)
    assert run.returncode == 1 and "- panel **Error rate**: unit `percentunit` → `percent`" in run.stdout
    same = subprocess.run([sys.executable, str(ROOT / "tools" / "diff.py"), "--files", str(old), str(old), "--check"], capture_output=True, text=True)
    assert same.returncode == 0 and "No dashboard or rule changes." in same.stdout


class SVG(SingleFileSnapshotExtension):
    file_extension = "svg"
    _write_mode = WriteMode.TEXT


def test_preview_of_a_known_dashboard_matches_its_snapshot(tree, snapshot):
    assert render_svg(tree[API]) == snapshot(extension_class=SVG)


def test_preview_draws_every_panel_where_its_gridpos_says(tree):
    for dash in tree.values():
        svg = ET.fromstring(render_svg(dash))
        rects = svg.findall("{http://www.w3.org/2000/svg}rect")
        texts = [t.text for t in svg.findall("{http://www.w3.org/2000/svg}text")]
        visible = [p for p in dash["panels"]] + []
        for p in visible:
            if p["type"] == "row":
                continue
            pos = p["gridPos"]
            assert any(r.get("width") == str(pos["w"] * COLUMN - 6) and r.get("height") == str(pos["h"] * ROW_UNIT - 6) for r in rects), p["title"]
            assert any(t and (t == p["title"] or (t.endswith("…") and p["title"].startswith(t[:-1]))) for t in texts), p["title"]


def test_diff_against_a_git_revision_builds_the_base_from_history(project):
    import shutil

    shutil.copytree(ROOT / "tools", project.path / "tools", ignore=shutil.ignore_patterns("node_modules"))
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", "-c", "init.defaultBranch=main"]
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "base"]):
        subprocess.run(git + args, cwd=project.path, check=True, capture_output=True)
    project.edit("values/services/mcp-server.yaml", "        title: Available tools\n", "        title: Registered tools\n")
    run = subprocess.run([sys.executable, "tools/diff.py", "HEAD", "--check"], cwd=project.path, capture_output=True, text=True)
    assert run.returncode == 1, run.stderr
    assert "- panel **Available tools** renamed to **Registered tools** (row *Connections and sessions*)" in run.stdout
    assert (project.path / "build" / "reports" / "diff.md").exists()
    assert subprocess.run(git + ["status", "--porcelain", "values"], cwd=project.path, capture_output=True, text=True).stdout.strip() == "M values/services/mcp-server.yaml"

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
from patches import insert_lines, line_of_path, replace_in_line, yaml_lines
from syrupy.extensions.single_file import SingleFileSnapshotExtension, WriteMode

from dashkit.diff import diff_dashboards, diff_rules, diff_trees
from dashkit.pipeline import build
from dashkit.preview import COLUMN, ROW_UNIT, render_svg


def _subject() -> tuple[str, dict, int]:
    """The dashboard the examples below edit, from values/: the README's api-gateway while it has what they
    need (two rows of its own, a variable over a metric, a plain stat panel), else the first service that has.
    Returns (service, its values, the index of that stat panel in its first row)."""
    docs = {
        p.stem: yaml.safe_load(p.read_text(encoding="utf-8"))
        for p in sorted((ROOT / "values" / "services").glob("*.yaml"))
    }
    for service in sorted(docs, key=lambda s: s != "api-gateway"):
        doc = docs[service]
        rows = doc.get("rows") or []
        if len(rows) < 2 or not any("metric" in v for v in doc.get("variables", [])):
            continue
        for i, p in enumerate(rows[0]["panels"]):
            if (
                p["type"] == "stat"
                and "expr" in p
                and "unit" in p
                and not {"thresholds", "legend", "datasource", "mappings"} & set(p)
            ):
                return service, doc, i
    pytest.skip("no service has two rows, a metric variable and a plain stat panel", allow_module_level=True)


SERVICE, VALUES, INDEX = _subject()
API = f"services/{SERVICE}.json"
ROW = VALUES["rows"][0]["title"]  # the first row of the service's own
TITLE = VALUES["rows"][0]["panels"][INDEX]["title"]  # a plain stat panel in it
OTHER_ROW = VALUES["rows"][1]["title"]
OTHER = VALUES["rows"][1]["panels"][-1]["title"]  # the last panel of the second row
VARIABLE = next(v["name"] for v in VALUES["variables"] if "metric" in v)


@pytest.fixture
def api(tree):
    return copy.deepcopy(tree[API])


def panel(dashboard: dict, title: str) -> dict:
    return next(p for p in panels_of(dashboard) if p.get("title") == title)


def holder(dashboard: dict, title: str) -> list:
    """The list that holds the panel: the dashboard's, or a collapsed row's."""
    return next(
        lst
        for lst in [dashboard["panels"], *(p.get("panels", []) for p in dashboard["panels"])]
        if any(p.get("title") == title for p in lst)
    )


def test_no_change_reports_nothing(api, tree):
    assert diff_dashboards(tree[API], api) == []


def test_added_and_removed_panels(api, tree):
    original = panel(api, TITLE)
    new = copy.deepcopy(original)
    new["title"], new["targets"][0]["expr"] = "Zz queued requests", "sum(x)"
    siblings = holder(api, TITLE)
    siblings.insert(siblings.index(original) + 1, new)
    holder(api, OTHER).remove(panel(api, OTHER))
    assert diff_dashboards(tree[API], api) == [
        f"- panel **Zz queued requests** added to row *{ROW}* ({original['type']}, {original['fieldConfig']['defaults']['unit']})",
        f"- panel **{OTHER}** removed from row *{OTHER_ROW}*",
    ]


def test_a_pure_reorder_is_only_moved_and_ids_and_positions_are_noise(api, tree):
    top = api["panels"]
    header = next(i for i, p in enumerate(top) if p["type"] == "row")
    assert top[header + 1]["type"] != "row" and top[header + 2]["type"] != "row", (
        "test setup: the first row shows two panels"
    )
    i, j = header + 1, header + 2
    top[i], top[j] = top[j], top[i]
    for p in panels_of(api):  # renumber everything and shift the grid: none of it is a change
        p["id"] += 1000
        p["gridPos"]["y"] += 3
    lines = diff_dashboards(tree[API], api)
    assert lines and all(
        re.match(rf"- panel \*\*.+\*\* moved within row \*{re.escape(top[header]['title'])}\*$", line) for line in lines
    )
    assert len(lines) == 1


def test_moved_to_another_row(api, tree):
    moving = panel(api, TITLE)
    holder(api, TITLE).remove(moving)
    api["panels"].append(moving)  # after the last row header: now in that row
    last = [p for p in api["panels"] if p["type"] == "row"][-1]["title"]
    assert diff_dashboards(tree[API], api) == [f"- panel **{TITLE}** moved from row *{ROW}* to row *{last}*"]


def test_renamed_panel_is_one_rename_not_add_and_remove(api, tree):
    panel(api, TITLE)["title"] = "Zz renamed panel"
    assert diff_dashboards(tree[API], api) == [f"- panel **{TITLE}** renamed to **Zz renamed panel** (row *{ROW}*)"]


def _changes(p: dict) -> list[tuple[str, object, list[str]]]:
    """(change, edit, expected lines) for each kind of change, on panel p as built."""
    expr, unit, ds = p["targets"][0]["expr"], p["fieldConfig"]["defaults"]["unit"], p["datasource"]["uid"]
    base = ", ".join(
        step["color"] for step in p["fieldConfig"]["defaults"]["thresholds"]["steps"]
    )  # a single base colour
    other_unit = "percent" if unit != "percent" else "short"
    return [
        (
            "query",
            lambda q: q["targets"][0].update(expr="sum(up)"),
            [f"- panel **{TITLE}**: query A changed", "  ```diff", f"  - {expr}", "  + sum(up)", "  ```"],
        ),
        (
            "unit",
            lambda q: q["fieldConfig"]["defaults"].update(unit=other_unit),
            [f"- panel **{TITLE}**: unit `{unit}` → `{other_unit}`"],
        ),
        (
            "thresholds",
            lambda q: q["fieldConfig"]["defaults"]["thresholds"]["steps"].append({"color": "red", "value": 500}),
            [f"- panel **{TITLE}**: thresholds `{base}` → `{base}, red from 500`"],
        ),
        (
            "legend",
            lambda q: q["targets"][0].update(legendFormat="{{instance}}"),
            [f"- panel **{TITLE}**: legend A `__auto` → `{{{{instance}}}}`"],
        ),
        (
            "description",
            lambda q: q.update(description="Zz."),
            [f"- panel **{TITLE}**: description `{p['description']}` → `Zz.`"],
        ),
        (
            "datasource",
            lambda q: q.update(datasource={"type": "prometheus", "uid": ds + "-eu"}),
            [f"- panel **{TITLE}**: datasource `{ds}` → `{ds}-eu`"],
        ),
    ]


@pytest.mark.parametrize("change", ["query", "unit", "thresholds", "legend", "description", "datasource"])
def test_each_kind_of_panel_change_is_named(api, tree, change):
    _, edit, expected = next(c for c in _changes(panel(tree[API], TITLE)) if c[0] == change)
    edit(panel(api, TITLE))
    assert diff_dashboards(tree[API], api) == expected


def test_variable_changes(api, tree):
    var = next(v for v in api["templating"]["list"] if v["name"] == VARIABLE)
    old = var["query"]
    assert old.endswith(f", {VARIABLE})"), old
    var["query"] = old.removesuffix(f"{VARIABLE})") + f"{VARIABLE}_name)"
    api["templating"]["list"].append({"type": "custom", "name": "zz_region", "query": "eu,us"})
    assert diff_dashboards(tree[API], api) == [
        "- variable **$zz_region** added (custom: `eu,us`)",
        f"- variable **${VARIABLE}**: query `{old}` → `{var['query']}`",
    ]


def test_alert_rule_changes():
    result = build(ROOT)
    old = result.files[result.tree.ruler_alerts]
    doc = yaml.safe_load(old)
    group = doc["groups"][0]
    first, was = group["rules"][0]["alert"], group["rules"][0]["for"]
    group["rules"][0]["for"] = "17m"
    removed = group["rules"].pop(1)["alert"]
    lines = diff_rules(old, yaml.safe_dump(doc))
    assert lines == [
        f"- rule **{removed}** removed from {group['name']}",
        f"- rule **{first}** ({group['name']}): for `{was}` → `17m`",
    ]


def test_dashboards_added_and_removed(tree):
    old = {API: json.dumps(tree[API])}
    new = {"services/search.json": json.dumps(dict(tree[API], title="Search"))}
    report, count = diff_trees(old, new)
    assert count == 2 and "- dashboard added" in report and "- dashboard removed" in report


def test_adding_one_panel_to_a_values_file_is_a_few_lines_naming_it(project):
    """The README's "Add a panel", with a title no one would give a real panel (the values may already hold
    the README's own example)."""
    before = build(project.path).files
    rel = f"values/services/{SERVICE}.yaml"
    line = line_of_path(yaml_lines(project.file(rel).read_text(encoding="utf-8")), ("rows", 1, "panels"))
    insert_lines(
        project.file(rel),
        line,
        "      - {type: stat, title: Zz review panel, description: A panel no one would add.,"
        " expr: 'count(up{job=\"$job\"})', unit: short}",
    )
    report, count = diff_trees(before, build(project.path).files)
    assert count == 1
    assert f"- panel **Zz review panel** added to row *{OTHER_ROW}* (stat, short)" in report
    assert len([line for line in report.splitlines() if line.startswith("- ")]) == 1


def test_diff_cli_on_two_files_and_check(tmp_path, tree):
    old, new = tmp_path / "old.json", tmp_path / "new.json"
    old.write_text(json.dumps(tree[API]))
    changed = copy.deepcopy(tree[API])
    unit = panel(changed, TITLE)["fieldConfig"]["defaults"]["unit"]
    panel(changed, TITLE)["fieldConfig"]["defaults"]["unit"] = "zz-unit"
    new.write_text(json.dumps(changed))
    run = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "diff.py"), "--files", str(old), str(new), "--check"],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 1 and f"- panel **{TITLE}**: unit `{unit}` → `zz-unit`" in run.stdout
    same = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "diff.py"), "--files", str(old), str(old), "--check"],
        capture_output=True,
        text=True,
    )
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
            assert any(
                r.get("width") == str(pos["w"] * COLUMN - 6) and r.get("height") == str(pos["h"] * ROW_UNIT - 6)
                for r in rects
            ), p["title"]
            assert any(t and (t == p["title"] or (t.endswith("…") and p["title"].startswith(t[:-1]))) for t in texts), (
                p["title"]
            )


def test_diff_against_a_git_revision_builds_the_base_from_history(project):
    project.add_tools()  # committed with the base: the diff builds the base with its own code
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", "-c", "init.defaultBranch=main"]
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "base"]):
        subprocess.run(git + args, cwd=project.path, check=True, capture_output=True)
    rel = f"values/services/{SERVICE}.yaml"
    line = line_of_path(
        yaml_lines(project.file(rel).read_text(encoding="utf-8")), ("rows", 0, "panels", INDEX, "title")
    )
    replace_in_line(project.file(rel), line, TITLE, f"{TITLE} zz renamed")
    run = project.tool("diff.py", "HEAD", "--check")
    assert run.returncode == 1, run.stderr
    assert f"- panel **{TITLE}** renamed to **{TITLE} zz renamed** (row *{ROW}*)" in run.stdout
    assert (project.path / "build" / "reports" / "diff.md").exists()
    assert (
        subprocess.run(
            git + ["status", "--porcelain", "values"], cwd=project.path, capture_output=True, text=True
        ).stdout.strip()
        == f"M {rel}"
    )

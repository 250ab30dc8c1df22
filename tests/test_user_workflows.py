"""What a user does and sees: add a service, find every specified metric, write odd text, rebuild."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, panels_of
from patches import line_of_path, replace_whole_line, yaml_lines

from dashkit.pipeline import REFERENCE, build

SPEC = ROOT.parent / "shared" / "seed" / "000_46a01db3e9b742e8.txt"
SPEC_SECTIONS = {  # the specification's section per service it names (a fact of the specification, not of values/)
    "API Gateway": "api-gateway",
    "Airtable Gateway": "airtable-gateway",
    "LLM Orchestrator": "llm-orchestrator",
    "MCP Server": "mcp-server",
    "Platform Services": "platform-services",
    "Automation Services": "automation-services",
}
STANDARD = [
    "up",
    "http_requests_total",
    "http_request_duration_seconds_bucket",
    "process_cpu_seconds_total",
    "process_resident_memory_bytes",
]
CHAOS = [
    "chaos_engineering_experiments_total",
    "circuit_breaker_trips_total",
    "recovery_time_seconds",
    "failover_events_total",
]


def load(rel: str):
    return yaml.safe_load((ROOT / rel).read_text(encoding="utf-8"))


DEFAULTS = load("values/defaults.yaml")
PREFIX = DEFAULTS["uid_prefix"]
OVERVIEW = f"{PREFIX}-overview.json"
SERVICES = {
    p.stem: yaml.safe_load(p.read_text(encoding="utf-8")) for p in sorted((ROOT / "values" / "services").glob("*.yaml"))
}
STANDARD_ROWS = load("values/standard.yaml")


def steps(levels: dict) -> list[dict]:
    """The Grafana threshold steps a preset's levels colour with: green where fine, orange from the warning
    level, red from the critical one; for `direction: below` the other way round."""
    marks = [("orange", levels["warning"])] if "warning" in levels else []
    marks += [("red", levels["critical"])] if "critical" in levels else []
    if levels.get("direction") == "below":
        ordered = sorted(marks, key=lambda m: m[1])  # the lowest level is the worst
        colours = [c for c, _ in ordered] + ["green"]
        return [{"color": colours[0], "value": None}] + [
            {"color": colours[i + 1], "value": v} for i, (_, v) in enumerate(ordered)
        ]
    return [{"color": "green", "value": None}] + [
        {"color": c, "value": v} for c, v in sorted(marks, key=lambda m: m[1])
    ]


def rows_of(dashboard: dict) -> dict[tuple[str, str], dict]:
    """(row title, panel title) -> panel, rows collapsed or not."""
    found, row = {}, ""
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            row = panel["title"]
            for inner in panel.get("panels", []):
                found[(row, inner["title"])] = inner
        else:
            found[(row, panel["title"])] = panel
    return found


def service_rows(service: str) -> list[dict]:
    """A service dashboard's rows as values write them: the shared leading rows, its own, the shared trailing ones."""
    return (
        STANDARD_ROWS.get("leading_rows", [])
        + (SERVICES[service].get("rows") or [])
        + STANDARD_ROWS.get("trailing_rows", [])
    )


def exprs(dashboard: dict, recorded: dict[str, list[str]]) -> str:
    """Every query of a dashboard, with each recording rule followed by the raw metrics it reads (`recorded`:
    BuildResult.recorded)."""
    text = "\n".join(t.get("expr", "") for p in panels_of(dashboard) for t in p.get("targets", []))
    return text + "\n" + " ".join(raw for name, sources in recorded.items() if name in text for raw in sources)


def spec_metrics() -> dict[str, list[str]]:
    """The metric names the specification lists, by dashboard, read from the specification itself."""
    if not SPEC.exists():
        pytest.skip(f"the specification is not at {SPEC}")
    text = SPEC.read_text(encoding="utf-8")
    found: dict[str, list[str]] = {}
    for section, service in SPEC_SECTIONS.items():
        block = re.search(rf"#### {section}\n```\n(.*?)```", text, re.S)
        assert block, section
        if service in SERVICES:  # a team that retired a service of the specification has no dashboard to check
            found[f"services/{service}.json"] = re.findall(r"^([a-z_]+)", block.group(1), re.M)
    return found


def test_every_metric_the_specification_names_is_on_its_dashboard(tree):
    recorded = build(ROOT).recorded
    for path, names in spec_metrics().items():
        assert len(names) == 4
        shown = exprs(tree[path], recorded)
        missing = [n for n in names + STANDARD if not shows(shown, n)]
        assert missing == [], path
    overview = exprs(tree[OVERVIEW], recorded)
    assert [n for n in CHAOS + STANDARD if not shows(overview, n)] == []


def shows(text: str, series: str) -> bool:
    """A histogram's _bucket series counts as shown when a recording rule over the histogram is."""
    base = re.sub(r"_bucket$", "", series)
    return re.search(rf"\b{re.escape(base)}(?:_bucket)?\b", text) is not None


def test_overview_shows_health_of_every_service_and_links_to_each(tree):
    overview = tree[OVERVIEW]
    service_var = next(v for v in overview["templating"]["list"] if v["name"] == "service")
    jobs = sorted(SERVICES)
    assert service_var["query"].split(",") == jobs
    assert [link["url"] for link in overview["links"]] == [f"/d/{PREFIX}-{job}" for job in jobs]
    # every selected service's lowest `up`, and a DOWN tile for one whose target vanished in the last day
    status = [
        p
        for p in panels_of(overview)
        if p.get("targets")
        and p["targets"][0].get("expr", "").startswith('min by (job) (up{job=~"$service"}) or on (job) (0 * ')
    ]
    assert len(status) == 1 and status[0]["targets"][0]["instant"] is True
    for path, dash in tree.items():
        if path.startswith("services/"):
            assert dash["links"][0]["url"] == f"/d/{PREFIX}-overview"


def test_every_panel_has_title_description_and_unit(tree):
    for path, dash in tree.items():
        for panel in panels_of(dash):
            if panel["type"] == "row":
                continue
            assert panel["title"] and panel["description"], (path, panel.get("title"))
            assert panel["fieldConfig"]["defaults"]["unit"], (path, panel["title"])


def test_dashboards_follow_the_conventions(tree):
    defaults = yaml.safe_load((ROOT / "values" / "defaults.yaml").read_text(encoding="utf-8"))
    for dash in tree.values():
        assert (
            dash["schemaVersion"] >= 42 and dash["refresh"] == defaults["refresh"]
        )  # 42: Grafana 12.2's, nothing to migrate
        assert len(dash["uid"]) <= 40 and dash["uid"].startswith(f"{defaults['uid_prefix']}-")
        interval = dash["templating"]["list"][0]
        assert interval["name"] == "interval" and interval["query"] == ",".join(defaults["interval"]["options"])
        assert interval["current"]["value"] == "5m"
        for panel in panels_of(dash):
            for i, target in enumerate(panel.get("targets", [])):
                assert target["refId"] == "ABCDEFGHIJKLMNOPQRSTUVWXYZ"[i]
            if panel.get("datasource"):
                assert panel["datasource"]["uid"] in {"mimir", "loki", "tempo"}
            # Loki's own auto window; Prometheus's rate window of time series and of stats
            windows = (
                ("[$__auto]",)
                if panel.get("datasource", {}).get("type") == "loki"
                else ("[$__rate_interval]", "[$interval]")
            )
            for target in panel.get("targets", []):
                if "rate(" in target.get("expr", ""):
                    assert any(w in target["expr"] for w in windows), target["expr"]
    ids = [p["id"] for dash in tree.values() for p in panels_of(dash)]
    assert all(isinstance(i, int) and i > 0 for i in ids)


def test_label_value_variables_come_from_mimir(tree):
    wanted = [(service, v) for service, doc in SERVICES.items() for v in doc.get("variables", []) if "metric" in v]
    assert wanted, "test setup: some service has a label-value variable"
    for service, spec in wanted:
        var = next(v for v in tree[f"services/{service}.json"]["templating"]["list"] if v["name"] == spec["name"])
        assert var["type"] == "query" and var["datasource"]["uid"] == DEFAULTS["datasources"]["metrics"]["uid"]
        assert var["query"].startswith(f"label_values({spec['metric']}")
        assert var["query"].endswith(f", {spec.get('label_name', spec['name'])})")


def test_threshold_colours_match_the_alert_levels(tree):
    """Every panel that names a threshold preset is coloured at the preset's levels (the ones the alerts use),
    or at its service's own where the service overrides them."""
    checked = 0
    for service, doc in SERVICES.items():
        built = rows_of(tree[f"services/{service}.json"])
        for row in service_rows(service):
            for p in row["panels"]:
                if isinstance(p.get("thresholds"), str):
                    levels = {
                        **DEFAULTS["thresholds"][p["thresholds"]],
                        **(doc.get("thresholds") or {}).get(p["thresholds"], {}),
                    }
                    assert built[(row["title"], p["title"])]["fieldConfig"]["defaults"]["thresholds"]["steps"] == steps(
                        levels
                    ), (service, p["title"])
                    checked += 1
    assert checked >= len(SERVICES)


def test_a_service_threshold_override_colours_its_panels_and_fires_its_alerts(tree):
    overridden = [
        (s, preset, levels) for s, doc in SERVICES.items() for preset, levels in (doc.get("thresholds") or {}).items()
    ]
    if not overridden:
        pytest.skip("no service overrides a threshold preset")
    service, preset, override = overridden[0]
    own = {**DEFAULTS["thresholds"][preset], **override}
    assert own != DEFAULTS["thresholds"][preset], f"test setup: {service} overrides {preset}"
    others = [s for s in SERVICES if preset not in (SERVICES[s].get("thresholds") or {})]
    shared = [
        (row["title"], p["title"])
        for row in STANDARD_ROWS.get("leading_rows", []) + STANDARD_ROWS.get("trailing_rows", [])
        for p in row["panels"]
        if p.get("thresholds") == preset
    ]
    for where in shared:  # shared rows: one spec, levels per service
        assert rows_of(tree[f"services/{service}.json"])[where]["fieldConfig"]["defaults"]["thresholds"][
            "steps"
        ] == steps(own)
        for other in others:
            assert rows_of(tree[f"services/{other}.json"])[where]["fieldConfig"]["defaults"]["thresholds"][
                "steps"
            ] == steps(DEFAULTS["thresholds"][preset])
    per_service = [
        p
        for row in load("values/overview.yaml")["rows"]
        for p in row["panels"]
        if p.get("thresholds") == preset and p.get("legend") == "{{job}}"
    ]
    names = sorted(s for s, pr, _ in overridden if pr == preset)
    for spec in per_service:  # overview panels with one series per service: the service's levels as a field override
        built = next(p for p in panels_of(tree[OVERVIEW]) if p.get("title") == spec["title"])
        assert {
            "matcher": {"id": "byNames", "options": {"mode": "include", "names": [service]}},
            "properties": [{"id": "thresholds", "value": {"mode": "absolute", "steps": steps(own)}}],
        } in built["fieldConfig"]["overrides"]
        assert len(built["fieldConfig"]["overrides"]) == len(names)
    result = build(ROOT)
    groups = yaml.safe_load(result.files[result.tree.ruler_alerts])["groups"]
    fired = {(g["name"], r["alert"]): r["expr"].rsplit(" ", 1)[1] for g in groups for r in g["rules"]}
    alerts = [
        (a["alert"], a["threshold"].split(".")[1])
        for a in load("values/rules.yaml")["alerts"]
        if a["threshold"].split(".")[0] == preset
    ]
    assert alerts, f"test setup: an alert every service gets uses {preset}"
    for alert, level in alerts:
        assert float(fired[(f"{PREFIX}-{service}", alert)]) == own[level]
        for other in others:
            assert float(fired[(f"{PREFIX}-{other}", alert)]) == DEFAULTS["thresholds"][preset][level]
    grafana = yaml.safe_load(result.files[result.tree.alert_rules])["groups"]
    alert, level = alerts[0]
    rule = next(r for g in grafana if g["name"] == service for r in g["rules"] if r["title"].startswith(f"{alert} "))
    assert rule["data"][1]["model"]["conditions"][0]["evaluator"]["params"] == [own[level]]


def test_ratio_panels_say_no_traffic_instead_of_no_data(tree):
    """A zero-guarded ratio is empty only without traffic; the panel says so rather than 'No data'."""
    ratios = [
        (path, p)
        for path, dash in tree.items()
        for p in panels_of(dash)
        if p.get("targets")
        and any(" or 0 * " in t.get("expr", "") or ":ratio_rate5m" in t.get("expr", "") for t in p["targets"])
    ]
    assert len(ratios) >= len(SERVICES), "test setup: every service shows its error ratio"
    assert [(path, p["title"]) for path, p in ratios if not p["fieldConfig"]["defaults"].get("noValue")] == []


def test_adding_a_service_is_one_values_file(project):
    """The README's "Add a service", under a name and port no one would pick for a real one."""
    project.write(
        "values/services/zz-test-search.yaml",
        "service: zz-test-search\ntitle: Search Service\nport: 65501\ndescription: Full-text search.\nrows: []\n",
    )
    result = project.build()
    assert result.returncode == 0, result.stderr
    search = project.dashboard("services/zz-test-search.json")
    assert search["uid"] == f"{PREFIX}-zz-test-search"
    assert [p["title"] for p in panels_of(search) if p["type"] == "row"][:2] == [
        r["title"] for r in STANDARD_ROWS["leading_rows"]
    ][:2]
    overview = project.dashboard(OVERVIEW)
    assert "zz-test-search" in next(v for v in overview["templating"]["list"] if v["name"] == "service")["query"].split(
        ","
    )
    assert f"/d/{PREFIX}-zz-test-search" in [link["url"] for link in overview["links"]]


def test_removing_a_service_removes_its_file(project):
    """The README's "Remove a service": its file and its catalog metrics go; until the metrics do, the build
    names each one; then its dashboard is gone from out/."""
    project.write(
        "values/services/zz-test-search.yaml",
        "service: zz-test-search\ntitle: Search Service\nport: 65502\ndescription: Full-text search.\nrows:\n"
        "  - title: Index\n    panels:\n      - {type: stat, title: Documents, description: Documents in the index.,"
        " expr: 'sum(zz_test_search_documents{job=\"$job\"})', unit: short}\n",
    )
    metric = (
        "  zz_test_search_documents:\n    type: gauge\n    service: zz-test-search\n    help: Documents in the index.\n"
    )
    project.edit("values/metrics.yaml", "\nmetrics:\n", "\nmetrics:\n" + metric)
    assert project.build().returncode == 0, project.build().stderr
    assert project.dashboard("services/zz-test-search.json")
    project.file("values/services/zz-test-search.yaml").unlink()
    result = project.build()
    assert result.returncode == 1
    assert "metrics.zz_test_search_documents.service: unknown service 'zz-test-search'" in result.stderr
    project.edit("values/metrics.yaml", metric, "")
    result = project.build()
    assert result.returncode == 0, result.stderr
    assert not (
        project.path / "out" / build(project.path).tree.dashboards_dir / "services" / "zz-test-search.json"
    ).exists()


HOSTILE = 'He said "hi" \\ {{ panel.title }} {% if x %} {# c #} ${DS_MIMIR} ||| tab\there\nnewline ünïcødé 🚀 </script>'


def test_hostile_text_comes_out_as_the_same_text(project):
    rel = (
        "values/services/api-gateway.yaml"
        if "api-gateway" in SERVICES
        else f"values/services/{next(iter(SERVICES))}.yaml"
    )
    text = project.file(rel).read_text(encoding="utf-8")
    lines = yaml_lines(text)
    first = ("rows", 0, "panels", 0)
    for path, value in (
        (first + ("title",), HOSTILE),
        (first + ("description",), HOSTILE + " (d)"),
        (("rows", 0, "title"), HOSTILE + " row"),
    ):
        line = line_of_path(lines, path)
        key = text.split("\n")[line - 1].split(f"{path[-1]}:")[0] + f"{path[-1]}:"
        replace_whole_line(project.file(rel), line, f"{key} {json.dumps(value, ensure_ascii=False)}")
    result = project.build()
    assert result.returncode == 0, result.stderr
    api = project.dashboard(f"services/{Path(rel).stem}.json")
    titles = [p["title"] for p in panels_of(api)]
    assert HOSTILE in titles and HOSTILE + " row" in titles
    assert next(p for p in panels_of(api) if p["title"] == HOSTILE)["description"] == HOSTILE + " (d)"


def test_the_committed_metric_reference_is_current():
    assert (ROOT / REFERENCE).read_text(encoding="utf-8") == build(ROOT).reference, (
        "run `nox -s build` and commit docs/metrics.md"
    )


def test_the_committed_runbooks_are_current():
    text = (ROOT / "docs" / "runbooks.md").read_text(encoding="utf-8")
    assert text == build(ROOT).runbooks, "run `nox -s build` and commit docs/runbooks.md"
    rules = load("values/rules.yaml")
    alerts = [a["alert"] for a in rules["alerts"] + rules.get("platform_alerts", [])] + [
        a["alert"] for d in SERVICES.values() for a in d.get("alerts", [])
    ]
    assert [a for a in alerts if f"## {a}\n" not in text] == []


def test_metric_reference_lists_every_catalog_metric_with_its_panels():
    reference = build(ROOT).reference
    assert "**none**" not in reference
    catalog = load("values/metrics.yaml")["metrics"]
    for name, entry in catalog.items():  # a row per catalog metric: name, type, labels
        labels = ", ".join(f"`{label}`" for label in entry.get("labels") or {}) or "—"
        row = re.compile(
            rf"^\| `{re.escape(name)}`( \*\(added\)\*)? \| {entry['type']} \| {re.escape(labels)} \|", re.M
        )
        assert row.search(reference), name


def test_builds_are_byte_identical_across_processes_and_hash_seeds(tmp_path):
    trees = []
    for seed in ("0", "1", "12345"):
        out = tmp_path / f"out-{seed}"
        env = dict(os.environ, PYTHONHASHSEED=seed)
        subprocess.run(
            [sys.executable, str(ROOT / "build.py"), "--out", str(out)], check=True, env=env, capture_output=True
        )
        trees.append({p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()})
    assert trees[0] == trees[1] == trees[2]
    assert all(text.endswith(b"}\n") for path, text in trees[0].items() if path.endswith(".json"))
    result = build(ROOT)
    overview = result.tree.in_out(next(d.path for d in result.dashboards if d.kind == "overview"))
    assert Path(tmp_path / "out-0" / overview).read_text().startswith('{\n  "annotations"')

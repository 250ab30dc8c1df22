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

from dashkit.pipeline import REFERENCE, build

SPEC = ROOT.parent / "shared" / "seed" / "000_46a01db3e9b742e8.txt"
SPEC_SECTIONS = {
    "API Gateway": "services/api-gateway.json",
    "Airtable Gateway": "services/airtable-gateway.json",
    "LLM Orchestrator": "services/llm-orchestrator.json",
    "MCP Server": "services/mcp-server.json",
    "Platform Services": "services/platform-services.json",
    "Automation Services": "services/automation-services.json",
}
STANDARD = ["up", "http_requests_total", "http_request_duration_seconds_bucket", "process_cpu_seconds_total", "process_resident_memory_bytes"]
CHAOS = ["chaos_engineering_experiments_total", "circuit_breaker_trips_total", "recovery_time_seconds", "failover_events_total"]


RECORDED = build(ROOT).recorded


def exprs(dashboard: dict) -> str:
    """Every query of a dashboard, with each recording rule followed by the raw metrics it reads."""
    text = "\n".join(t.get("expr", "") for p in panels_of(dashboard) for t in p.get("targets", []))
    return text + "\n" + " ".join(raw for name, sources in RECORDED.items() if name in text for raw in sources)


def spec_metrics() -> dict[str, list[str]]:
    """The metric names the specification lists, by dashboard, read from the specification itself."""
    if not SPEC.exists():
        pytest.skip(f"the specification is not at {SPEC}")
    text = SPEC.read_text(encoding="utf-8")
    found: dict[str, list[str]] = {}
    for section, path in SPEC_SECTIONS.items():
        block = re.search(rf"#### {section}\n```\n(.*?)```", text, re.S)
        assert block, section
        found[path] = re.findall(r"^([a-z_]+)", block.group(1), re.M)
    return found


def test_every_metric_the_specification_names_is_on_its_dashboard(tree):
    for path, names in spec_metrics().items():
        assert len(names) == 4
        shown = exprs(tree[path])
        missing = [n for n in names + STANDARD if not shows(shown, n)]
        assert missing == [], path
    overview = exprs(tree["pyairtable-overview.json"])
    assert [n for n in CHAOS + STANDARD if not shows(overview, n)] == []


def shows(text: str, series: str) -> bool:
    """A histogram's _bucket series counts as shown when a recording rule over the histogram is."""
    base = re.sub(r"_bucket$", "", series)
    return re.search(rf"\b{re.escape(base)}(?:_bucket)?\b", text) is not None


def test_overview_shows_health_of_every_service_and_links_to_each(tree):
    overview = tree["pyairtable-overview.json"]
    service_var = next(v for v in overview["templating"]["list"] if v["name"] == "service")
    jobs = [path.split("/")[1][:-5] for path in tree if path.startswith("services/")]
    assert service_var["query"].split(",") == sorted(jobs)
    assert [link["url"] for link in overview["links"]] == [f"/d/pyairtable-{job}" for job in sorted(jobs)]
    status = next(p for p in panels_of(overview) if p["title"] == "Service status")
    # every selected service's lowest `up`, and a DOWN tile for one whose target vanished in the last day
    assert status["targets"][0]["expr"].startswith('min by (job) (up{job=~"$service"}) or on (job) (0 * ')
    assert status["targets"][0]["instant"] is True
    for path, dash in tree.items():
        if path.startswith("services/"):
            assert dash["links"][0]["url"] == "/d/pyairtable-overview"


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
        assert dash["schemaVersion"] >= 42 and dash["refresh"] == defaults["refresh"]  # 42: Grafana 12.2's, nothing to migrate
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
            windows = ("[$__auto]",) if panel.get("datasource", {}).get("type") == "loki" else ("[$__rate_interval]", "[$interval]")
            for target in panel.get("targets", []):
                if "rate(" in target.get("expr", ""):
                    assert any(w in target["expr"] for w in windows), target["expr"]
    ids = [p["id"] for dash in tree.values() for p in panels_of(dash)]
    assert all(isinstance(i, int) and i > 0 for i in ids)


def test_label_value_variables_come_from_mimir(tree):
    wanted = {"services/llm-orchestrator.json": "model", "services/airtable-gateway.json": "operation", "services/mcp-server.json": "tool"}
    for path, name in wanted.items():
        var = next(v for v in tree[path]["templating"]["list"] if v["name"] == name)
        assert var["type"] == "query" and var["datasource"]["uid"] == "mimir"
        assert var["query"].startswith("label_values(") and var["query"].endswith(f", {name})")


def test_threshold_colours_match_the_alert_levels(tree):
    api = tree["services/api-gateway.json"]
    error_rate = next(p for p in panels_of(api) if p["title"] == "Error rate")
    steps = error_rate["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert steps == [{"color": "green", "value": None}, {"color": "orange", "value": 0.01}, {"color": "red", "value": 0.05}]
    cache = next(p for p in panels_of(tree["services/airtable-gateway.json"]) if p["title"] == "Cache hit rate")
    assert cache["fieldConfig"]["defaults"]["thresholds"]["steps"] == [{"color": "orange", "value": None}, {"color": "green", "value": 0.8}]


def test_a_service_threshold_override_colours_its_panels_and_fires_its_alerts(tree):
    import yaml

    presets = yaml.safe_load((ROOT / "values/defaults.yaml").read_text())["thresholds"]
    overrides = yaml.safe_load((ROOT / "values/services/llm-orchestrator.yaml").read_text())["thresholds"]
    own = {**presets["p95_latency"], **overrides["p95_latency"]}
    assert own != presets["p95_latency"], "test setup: the LLM Orchestrator overrides p95_latency"

    def levels(path: str, title: str) -> list:
        panel = next(p for p in panels_of(tree[path]) if p["title"] == title)
        return [step["value"] for step in panel["fieldConfig"]["defaults"]["thresholds"]["steps"]]

    for title in ("P95 latency", "Response time percentiles"):  # shared rows: one spec, levels per service
        assert levels("services/llm-orchestrator.json", title) == [None, own["warning"], own["critical"]]
        assert levels("services/api-gateway.json", title) == [None, presets["p95_latency"]["warning"], presets["p95_latency"]["critical"]]
    overview = next(p for p in panels_of(tree["pyairtable-overview.json"]) if p["title"] == "P95 latency by service")
    assert overview["fieldConfig"]["overrides"] == [{"matcher": {"id": "byNames", "options": {"mode": "include", "names": ["llm-orchestrator"]}}, "properties": [
        {"id": "thresholds", "value": {"mode": "absolute", "steps": [
            {"color": "green", "value": None}, {"color": "orange", "value": own["warning"]}, {"color": "red", "value": own["critical"]}]}}]}]
    files = build(ROOT).files
    groups = yaml.safe_load(files["rules/pyairtable-alerts.yaml"])["groups"]
    fired = {(g["name"], r["alert"]): r["expr"].rsplit(" ", 1)[1] for g in groups for r in g["rules"]}
    assert float(fired[("pyairtable-llm-orchestrator", "HighLatency")]) == own["critical"]
    assert float(fired[("pyairtable-llm-orchestrator", "ElevatedLatency")]) == own["warning"]
    assert float(fired[("pyairtable-api-gateway", "HighLatency")]) == presets["p95_latency"]["critical"]
    grafana = yaml.safe_load(files["alerting/pyairtable-alert-rules.yaml"])["groups"]
    rule = next(r for g in grafana if g["name"] == "llm-orchestrator" for r in g["rules"] if r["title"].startswith("HighLatency "))
    assert rule["data"][1]["model"]["conditions"][0]["evaluator"]["params"] == [own["critical"]]


def test_ratio_panels_say_no_traffic_instead_of_no_data(tree):
    """A zero-guarded ratio is empty only without traffic; the panel says so rather than 'No data'."""
    error_rate = next(p for p in panels_of(tree["services/api-gateway.json"]) if p["title"] == "Error rate")
    assert error_rate["fieldConfig"]["defaults"]["noValue"] == "No traffic"
    assert " or 0 * " in error_rate["targets"][0]["expr"] or "ratio_rate5m" in error_rate["targets"][0]["expr"]


def test_adding_a_service_is_one_values_file(project):
    project.write(
        "values/services/search-service.yaml",
        "service: search-service\ntitle: Search Service\nport: 8010\ndescription: Full-text search.\nrows: []\n",
    )
    result = project.build()
    assert result.returncode == 0, result.stderr
    search = project.dashboard("services/search-service.json")
    assert search["uid"] == "pyairtable-search-service"
    assert [p["title"] for p in panels_of(search) if p["type"] == "row"][:2] == ["Service health", "Requests"]
    overview = project.dashboard("pyairtable-overview.json")
    assert "search-service" in next(v for v in overview["templating"]["list"] if v["name"] == "service")["query"].split(",")
    assert "/d/pyairtable-search-service" in [link["url"] for link in overview["links"]]


def test_removing_a_service_removes_its_file(project):
    assert project.build().returncode == 0
    (project.path / "values/services/mcp-server.yaml").unlink()
    project.edit("values/metrics.yaml", "service: mcp-server", "service: platform", count=-1)
    result = project.build()
    # Its metrics now belong to no panel, which the build reports: the catalog and dashboards must agree.
    assert result.returncode == 1 and "is in the catalog but on no panel" in result.stderr


HOSTILE = 'He said "hi" \\ {{ panel.title }} {% if x %} {# c #} ${DS_MIMIR} ||| tab\there\nnewline ünïcødé 🚀 </script>'


def test_hostile_text_comes_out_as_the_same_text(project):
    project.edit("values/services/api-gateway.yaml", "title: Active connections", f"title: {json.dumps(HOSTILE, ensure_ascii=False)}")
    project.edit("values/services/api-gateway.yaml", "description: Client connections open on the gateway right now.",
                 f"description: {json.dumps(HOSTILE + ' (d)', ensure_ascii=False)}")
    project.edit("values/services/api-gateway.yaml", "title: Authentication & rate limiting", f"title: {json.dumps(HOSTILE + ' row', ensure_ascii=False)}")
    result = project.build()
    assert result.returncode == 0, result.stderr
    api = project.dashboard("services/api-gateway.json")
    titles = [p["title"] for p in panels_of(api)]
    assert HOSTILE in titles and HOSTILE + " row" in titles
    assert next(p for p in panels_of(api) if p["title"] == HOSTILE)["description"] == HOSTILE + " (d)"


def test_the_committed_metric_reference_is_current():
    assert (ROOT / REFERENCE).read_text(encoding="utf-8") == build(ROOT).reference, "run `nox -s build` and commit docs/metrics.md"


def test_the_committed_runbooks_are_current():
    text = (ROOT / "docs" / "runbooks.md").read_text(encoding="utf-8")
    assert text == build(ROOT).runbooks, "run `nox -s build` and commit docs/runbooks.md"
    assert "## HighErrorRate" in text and "## CacheHitRateLow" in text


def test_metric_reference_lists_every_catalog_metric_with_its_panels():
    reference = build(ROOT).reference
    assert "**none**" not in reference
    assert "| `llm_orchestrator_cost_usd_total` | counter | `model`, `operation` |" in reference


def test_builds_are_byte_identical_across_processes_and_hash_seeds(tmp_path):
    trees = []
    for seed in ("0", "1", "12345"):
        out = tmp_path / f"out-{seed}"
        env = dict(os.environ, PYTHONHASHSEED=seed)
        subprocess.run([sys.executable, str(ROOT / "build.py"), "--out", str(out)], check=True, env=env, capture_output=True)
        trees.append({p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()})
    assert trees[0] == trees[1] == trees[2]
    assert all(text.endswith(b"}\n") for path, text in trees[0].items() if path.endswith(".json"))
    overview = build(ROOT).tree.in_out(next(d.path for d in build(ROOT).dashboards if d.kind == "overview"))
    assert Path(tmp_path / "out-0" / overview).read_text().startswith('{\n  "annotations"')

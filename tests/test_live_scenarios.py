"""The dashboards and alerts in the states the platform is really in (values/scenarios.yaml): a healthy
platform with no errors at all, an incident, a fresh deployment. Each scenario's data goes into a real
Prometheus (Debian's package); every panel must show what its values declare, every variable selection a
person can make must match something, and exactly the scenario's alerts fire, in both rule formats.
Each classic mistake is shown to be caught, with its message."""

from __future__ import annotations

import copy
import dataclasses
import io
import re
import shutil

import pytest
import yaml
from conftest import ROOT
from patches import line_of_path, replace_in_line, yaml_lines

from dashkit.live import alerts, check, synth
from dashkit.live.prometheus import Prometheus
from dashkit.live.run import expectations, prepare, scenarios_of
from dashkit.pipeline import build

needs_prometheus = pytest.mark.skipif(
    shutil.which("prometheus") is None or shutil.which("promtool") is None,
    reason="prometheus/promtool are not on PATH (apt-get install -y --no-install-recommends prometheus): scenarios not run",
)
RESULT = None


def result():
    global RESULT
    if RESULT is None:
        RESULT = build(ROOT)
    return RESULT


def scenario(name: str) -> synth.Scenario:
    return next(s for s in scenarios_of(result()) if s.name == name)


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    """One Prometheus per scenario, with the project's own rule files loaded, started on demand."""
    started: dict[str, Prometheus] = {}

    def get(name: str) -> Prometheus:
        if name not in started:
            workdir = tmp_path_factory.mktemp(name)
            tsdb, _, _ = prepare(result(), workdir, scenario=scenario(name))
            rules = workdir / "rules"
            rules.mkdir()
            paths = []
            for rel, text in result().files.items():
                if rel.startswith("rules/"):
                    (rules / rel.split("/")[1]).write_text(text, encoding="utf-8")
                    paths.append(rules / rel.split("/")[1])
            started[name] = Prometheus(tsdb, rule_files=paths, workdir=workdir)
            started[name].start()
        return started[name]

    yield get
    for prom in started.values():
        prom.stop()


def run(prom, name: str, boards=None, rules=None) -> check.Report:
    boards = boards if boards is not None else [d.json for d in result().dashboards]
    report = check.run(
        boards,
        result().rules,
        result().catalog,
        prom,
        synth.DEFAULT_WINDOW,
        stats=False,
        expect=expectations(result()),
        scenario=scenario(name),
    )
    alerts.evaluate(rules or result().rules, prom, synth.DEFAULT_WINDOW.end, scenario(name), report, result().catalog)
    return report


def board(title: str) -> dict:
    return copy.deepcopy(next(d.json for d in result().dashboards if d.json["title"] == title))


def panel(dash: dict, title: str) -> dict:
    return next(p for top in dash["panels"] for p in [top, *top.get("panels", [])] if p.get("title") == title)


@needs_prometheus
@pytest.mark.parametrize(
    "name", sorted(yaml.safe_load((ROOT / "values" / "scenarios.yaml").read_text(encoding="utf-8"))["scenarios"])
)
def test_every_panel_variable_selection_and_alert_holds_in_each_scenario(servers, name):
    report = run(servers(name), name)
    assert [f"{f.where}: {f.message}" for f in report.findings] == []
    assert report.targets > 0 and report.selections > 0
    firing = sorted((a.alert, a.service, a.severity) for a in report.alerts if a.prometheus == "firing")
    assert firing == sorted(scenario(name).alerts)
    assert not [a.line() for a in report.alerts if a.grafana in ("NoData", "Error")]


def test_the_incident_covers_every_alert_condition_of_the_specification():
    """Service down, error rate 5%/1%, P95 2 s/1 s, CPU, memory, cache hit rate, queue depth: the seed's nine,
    each with its severity, and the absent target."""
    fired = {(a, sev) for a, _, sev in scenario("incident").alerts}
    levels = {r.spec.name: r.spec for r in result().rules.alerts}
    for name, sev in [
        ("ServiceDown", "critical"),
        ("HighErrorRate", "critical"),
        ("ElevatedErrorRate", "warning"),
        ("HighLatency", "critical"),
        ("ElevatedLatency", "warning"),
        ("HighCpuUsage", "critical"),
        ("HighMemoryUsage", "critical"),
        ("CacheHitRateLow", "warning"),
        ("TargetMissing", "critical"),
    ]:
        assert (name, sev) in fired and levels[name].severity == sev, (
            f"the incident scenario of values/scenarios.yaml no longer fires {name} ({sev}), a condition of the specification: "
            "if its service was removed, give its event and expected alert to another service"
        )
    assert any(a.endswith("Backlog") and sev == "warning" for a, _, sev in scenario("incident").alerts), (
        "the incident scenario of values/scenarios.yaml fires no queue-backlog alert (the specification's queue depth condition): "
        "if the service whose queue backed up was removed, back up another service's queue (a gauge event, as in the backlog scenario)"
    )


@needs_prometheus
def test_a_ratio_without_its_zero_guard_shows_no_data_on_a_healthy_service(servers):
    dash = board("API Gateway")
    target = panel(dash, "Error rate")["targets"][0]
    target["expr"] = (
        'sum(rate(http_requests_total{job="$job", status=~"5.."}[$__rate_interval]))'
        ' / sum(rate(http_requests_total{job="$job"}[$__rate_interval]))'
    )
    found = [f"{f.where}: {f.message}" for f in run(servers("healthy"), "healthy", [dash]).findings]
    assert "API Gateway › Error rate [A]: empty result: the panel would show No data" in [
        f.split(" where")[0] for f in found
    ]


@needs_prometheus
def test_a_multi_value_filter_without_a_format_matches_nothing_at_all(servers):
    dash = board(next(d.json["title"] for d in result().dashboards if d.kind == "overview"))
    service_map = next(
        p for top in dash["panels"] for p in [top, *top.get("panels", [])] if p.get("type") == "nodeGraph"
    )
    service_map["targets"][0]["serviceMapQuery"] = re.sub(
        r"\$\{service:\w+\}", "$service", service_map["targets"][0]["serviceMapQuery"]
    )
    found = [f"{f.where}: {f.message}" for f in run(servers("healthy"), "healthy", [dash]).findings]
    assert any(
        f.startswith(f"{dash['title']} › {service_map['title']} [A] with $service = default: client=~'{{")
        and "matches none of the picked values" in f
        for f in found
    ), found


@needs_prometheus
def test_a_rule_that_pages_on_no_data_is_caught_in_the_healthy_scenario(servers):
    rules = copy.copy(result().rules)
    quiet_when_absent = next(r for r in rules.alerts if r.spec.name == "PlatformFailover")
    spec = dataclasses.replace(quiet_when_absent.spec, no_data="NoData")
    rules.alerts = [dataclasses.replace(r, spec=spec) if r is quiet_when_absent else r for r in rules.alerts]
    report = run(servers("healthy"), "healthy", [], rules)
    assert [f"{f.where}: {f.message}" for f in report.findings] == [
        "alert PlatformFailover (platform): Grafana rule is NoData in healthy, which expects it quiet"
    ]


@needs_prometheus
def test_a_rule_whose_query_answers_nothing_on_a_healthy_service_is_named(servers):
    """noDataState OK keeps a rule quiet when its query answers nothing, which also hides a query that can
    never answer (a label typo): on a service that is up and exports the metrics, that is a finding."""
    rules = copy.copy(result().rules)
    memory = next(r for r in rules.alerts if r.spec.name == "HighMemoryUsage" and r.group == "api-gateway")
    blind = dataclasses.replace(
        memory, expr=memory.expr.replace('job="api-gateway"', 'job="api-gateway", instance="typo"')
    )
    rules.alerts = [blind if r is memory else r for r in rules.alerts]
    report = run(servers("healthy"), "healthy", [], rules)
    assert [f"{f.where}: {f.message}" for f in report.findings] == [
        "alert HighMemoryUsage (api-gateway): its query answers nothing in healthy although api-gateway is up and exports what it reads: "
        "the rule sits in Normal (no data) and could never fire"
    ]


@needs_prometheus
def test_an_expected_alert_that_stays_quiet_is_named(servers):
    quiet = dataclasses.replace(scenario("healthy"), alerts=(("HighErrorRate", "api-gateway", "critical"),))
    report = check.Report("healthy")
    alerts.evaluate(result().rules, servers("healthy"), synth.DEFAULT_WINDOW.end, quiet, report)
    assert [f"{f.where}: {f.message}" for f in report.findings] == [
        "alert HighErrorRate (api-gateway): should fire (critical) in healthy: Prometheus rule is inactive",
        "alert HighErrorRate (api-gateway): should fire (critical) in healthy: Grafana rule is Normal",
    ]


@needs_prometheus
def test_a_panel_declared_zero_that_shows_another_value_is_named(servers):
    """`expect: {healthy: zero}` is checked as a value: a panel that shows 1 where 0 is declared fails."""
    dash = board("API Gateway")
    status = panel(dash, "Status")
    declared = {dash["uid"]: {status["id"]: {"*": {"healthy": "zero"}}}}  # as assembled: "*" is the panel's own
    report = check.run(
        [dash],
        None,
        result().catalog,
        servers("healthy"),
        synth.DEFAULT_WINDOW,
        stats=False,
        expect=declared,
        scenario=scenario("healthy"),
    )
    assert [f"{f.where}: {f.message}" for f in report.findings if "Status" in f.where] == [
        "API Gateway › Status [A]: expected 0, last value 1"
    ]


def test_multi_values_are_escaped_as_grafana_escapes_them_for_each_datasource():
    picked = {"model": ["gemini-2.5-flash", "gemini-2.5-pro"], "service": ["api-gateway", "mcp-server"]}
    assert (
        check.interpolate('x{model=~"$model"}', picked, "prometheus")[0]
        == 'x{model=~"(gemini-2\\\\.5-flash|gemini-2\\\\.5-pro)"}'
    )
    assert check.interpolate('{client=~"$service"}', picked, "tempo")[0] == '{client=~"{api-gateway,mcp-server}"}'
    assert (
        check.interpolate('{client=~"${service:regex}"}', picked, "tempo")[0] == '{client=~"(api-gateway|mcp-server)"}'
    )
    assert check.interpolate('{client=~"${service:pipe}"}', picked, "tempo")[0] == '{client=~"api-gateway|mcp-server"}'


def generated(name: str) -> str:
    out = io.StringIO()
    raw = {k: v for k, v in result().catalog.items() if not v.recorded}
    synth.generate(raw, result().services, out, scenario=scenario(name))
    return out.getvalue()


def test_the_healthy_data_has_no_error_series_at_all():
    text = generated("healthy")
    assert "http_requests_total{" in text
    assert not re.search(r'status="5\d\d"', text)
    for metric in scenario("healthy").absent_metrics:
        assert not re.search(rf"^{metric}(_bucket|_sum|_count)?{{", text, re.M)


def test_a_fresh_deployment_exports_only_the_standard_metrics():
    text = generated("minimal")
    names = {line.split("{")[0] for line in text.splitlines() if "{" in line}
    standard = {n for n, m in result().catalog.items() if m.service == "all" and not m.recorded}
    assert names and {re.sub(r"_(bucket|sum|count)$", "", n) for n in names} <= standard


def test_an_absent_target_has_no_samples_after_it_vanished():
    text = generated("incident")
    event = next(e for e in scenario("incident").events if e["kind"] == "absent")
    gone = synth.DEFAULT_WINDOW.end - event.get("minutes", 30) * 60
    stamps = [int(line.rsplit(" ", 1)[1]) for line in text.splitlines() if f'job="{event["service"]}"' in line]
    assert stamps and max(stamps) < gone
    down = next(e for e in scenario("incident").events if e["kind"] == "down")
    ups = [line for line in text.splitlines() if line.startswith("up{") and f'job="{down["service"]}"' in line]
    assert ups[-1].split(" ")[1] == "0"


@needs_prometheus
def test_a_service_gone_from_service_discovery_keeps_a_down_tile_on_the_overview(servers):
    overview = next(d.json for d in result().dashboards if d.kind == "overview")
    tile = panel(overview, "Service status")
    every = [o["value"] for v in overview["templating"]["list"] if v["name"] == "service" for o in v["options"]]
    expr, _ = check.interpolate(tile["targets"][0]["expr"], {"service": every}, "prometheus")
    gone = next(e["service"] for e in scenario("incident").events if e["kind"] == "absent")
    answer = servers("incident").query(expr, synth.DEFAULT_WINDOW.end)
    tiles = {s["metric"]["job"]: float(s["value"][1]) for s in answer["data"]["result"]}
    assert set(tiles) == set(result().services) and tiles[gone] == 0
    plain = servers("incident").query(expr.split(" or ")[0], synth.DEFAULT_WINDOW.end)  # min(up) alone loses the tile
    assert gone not in {s["metric"]["job"] for s in plain["data"]["result"]}


def test_a_scenario_naming_a_missing_service_or_metric_is_one_line_each(project):
    """The first event of values/scenarios.yaml naming a service, and the first gauge event, misspelt by a letter."""
    rel = "values/scenarios.yaml"
    written = yaml.safe_load(project.file(rel).read_text(encoding="utf-8"))["scenarios"]
    services = {p.stem for p in (project.path / "values" / "services").glob("*.yaml")}
    events = [(name, i, e) for name, sc in written.items() for i, e in enumerate(sc.get("events", []))]
    name, i, event = next((n, i, e) for n, i, e in events if e.get("service") in services)
    gname, gi, gauge = next((n, i, e) for n, i, e in events if e["kind"] == "gauge" and (n, i) != (name, i))
    lines = yaml_lines(project.file(rel).read_text(encoding="utf-8"))
    replace_in_line(
        project.file(rel),
        line_of_path(lines, ("scenarios", name, "events", i, "service")),
        f"service: {event['service']}",
        f"service: {event['service'][:-1]}",
    )
    replace_in_line(
        project.file(rel),
        line_of_path(lines, ("scenarios", gname, "events", gi, "metric")),
        f"metric: {gauge['metric']}",
        f"metric: {gauge['metric'][:-1]}",
    )
    result = project.tool("live_check.py")
    assert result.returncode == 1
    out = result.stderr.splitlines()
    assert all(line.startswith(f"{rel}:") for line in out[:2]), out
    assert any(
        line.endswith(
            f": scenarios.{name}.events[{i}].service: unknown service '{event['service'][:-1]}' (did you mean '{event['service']}'?)"
        )
        for line in out[:2]
    ), out
    assert any(
        line.endswith(f"metric: a gauge event needs a catalog metric (did you mean '{gauge['metric']}'?)")
        for line in out[:2]
    ), out
    assert out[2] == f"live check not run: 2 problem(s) in {rel}"


def test_every_alert_is_expected_to_fire_in_some_scenario():
    """An alert no scenario fires is an alert whose condition nothing shows to work (a query over the
    wrong scale, a typo in a label) until the day it should have paged."""
    expected = {alert for s in scenarios_of(result()) for alert, _, _ in s.alerts}
    assert sorted({r.spec.name for r in result().rules.alerts} - expected) == []


@needs_prometheus
def test_a_time_series_drawn_outside_its_units_range_is_named(servers):
    dash = board("API Gateway")
    cpu = next(
        p
        for top in dash["panels"]
        for p in [top, *top.get("panels", [])]
        if p.get("type") == "timeseries"
        and p["fieldConfig"]["defaults"].get("unit") == "percentunit"
        and "cpu" in p["targets"][0]["expr"]
    )
    cpu["targets"][0]["expr"] = f"100 * ({cpu['targets'][0]['expr']})"  # a share written as a percentage
    found = [f"{f.where}: {f.message}" for f in run(servers("healthy"), "healthy", [dash]).findings]
    assert found and all(
        f.startswith(f"API Gateway › {cpu['title']} [A]")
        and f.endswith("is outside the sensible range of unit percentunit [0, 1]")
        for f in found
    ), found

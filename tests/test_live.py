"""The live check against a real Prometheus (Debian's package) holding synthetic data from the catalog:
the real dashboards all show data, and each classic "No data" mistake is caught with a clear message."""

from __future__ import annotations

import copy
import json
import shutil

import pytest
from conftest import ROOT

from dashkit.live import check, synth
from dashkit.live.prometheus import Prometheus
from dashkit.live.run import prepare, rule_levels
from dashkit.pipeline import build

pytestmark = pytest.mark.skipif(
    shutil.which("prometheus") is None or shutil.which("promtool") is None,
    reason="prometheus/promtool are not on PATH (apt-get install -y --no-install-recommends prometheus): live check not run",
)


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    result = build(ROOT)
    workdir = tmp_path_factory.mktemp("live")
    tsdb, _, counts = prepare(result, workdir)
    with Prometheus(tsdb, workdir=workdir) as prom:
        yield result, prom, counts


def dashboards(result) -> dict[str, dict]:
    return {rel: json.loads(text) for rel, text in result.dashboard_files().items()}


def where(result, path: str, written: str) -> str:
    """'<dashboard> › <panel>' as findings name the panel whose query holds `written` (JSON text), whatever it is titled."""
    board = dashboards(result)[path]
    found = next(
        p for p, _ in check.panels_with_state(board) if any(written in json.dumps(t) for t in p.get("targets", []))
    )
    return f"{board['title']} › {found['title']}"


def run(result, prom, boards):
    return check.run(list(boards), result.rules, result.catalog, prom, synth.DEFAULT_WINDOW, stats=False)


def test_every_target_variable_and_rule_returns_data(live):
    result, prom, counts = live
    assert counts["series"] > 1000 and counts["samples"] == counts["series"] * (6 * 3600 // 15 + 1)
    report = run(result, prom, dashboards(result).values())
    assert [str(f) for f in report.findings] == []
    boards = dashboards(result).values()
    query_variables = sum(1 for d in boards for v in d["templating"]["list"] if v["type"] == "query")
    assert report.variables == query_variables and report.rules == len(result.rules.recording) + len(
        result.rules.alerts
    )
    assert report.targets == sum(
        len(p.get("targets", []))
        for d in boards
        for p in check.panels_with_state(d) and [x for x, _ in check.panels_with_state(d)]
        if p.get("datasource", {}).get("type") == "prometheus"
    )


def edited(result, path: str, old: str, new: str) -> dict:
    board = copy.deepcopy(dashboards(result)[path])
    text = json.dumps(board)
    assert old in text, old
    return json.loads(text.replace(old, new))


def findings(result, prom, board) -> list[str]:
    return [f"{f.where}: {f.message}" for f in run(result, prom, [board]).findings]


def test_a_misspelt_label_value_is_no_data(live):
    result, prom, _ = live
    written = 'airtable_gateway_sync_operations_total{job=\\"$job\\", status=\\"error\\"}'
    board = edited(result, "services/airtable-gateway.json", written, written.replace("error", "eror"))
    assert findings(result, prom, board) == [
        f"{where(result, 'services/airtable-gateway.json', written)} [A]: empty result: the panel would show No data"
    ]


def test_a_misspelt_label_name_is_named(live):
    result, prom, _ = live
    written = 'sum(api_gateway_active_connections{job=\\"$job\\"})'
    panel = where(result, "services/api-gateway.json", written)
    board = edited(result, "services/api-gateway.json", written, 'sum(api_gateway_active_connections{jbo=\\"$job\\"})')
    assert findings(result, prom, board) == [
        f"{panel} [A]: label 'jbo' is not a label of api_gateway_active_connections (did you mean 'job'?)",
        f"{panel} [A]: empty result: the panel would show No data",
    ]


def test_a_counter_without_rate_is_named(live):
    result, prom, _ = live
    written = 'sum(api_gateway_active_connections{job=\\"$job\\"})'
    panel = where(result, "services/api-gateway.json", written)
    board = edited(
        result, "services/api-gateway.json", written, 'sum(api_gateway_rate_limit_hits_total{job=\\"$job\\"})'
    )
    assert findings(result, prom, board) == [
        f"{panel} [A]: counter api_gateway_rate_limit_hits_total used without rate() or increase(): its raw value only ever climbs"
    ]


def test_a_variable_that_matches_nothing_is_named(live):
    result, prom, _ = live
    board = edited(
        result,
        "services/api-gateway.json",
        '"label_values(api_gateway_backend_requests_total{job=\\"api-gateway\\"}, backend)"',
        '"label_values(api_gateway_backend_requests_total{job=\\"api-gateway\\"}, backnd)"',
    )
    assert findings(result, prom, board)[0].startswith(f"{board['title']} › variable $backend: matches nothing")


def test_a_ratio_shown_as_a_percentage_is_out_of_range(live):
    result, prom, _ = live
    panel = where(result, "services/api-gateway.json", "1 - ((sum(rate(api_gateway_auth_failures_total")
    board = edited(
        result,
        "services/api-gateway.json",
        '"expr": "1 - ((sum(rate(api_gateway_auth_failures_total',
        '"expr": "100 - ((sum(rate(api_gateway_auth_failures_total',
    )
    found = findings(result, prom, board)
    assert found[0].startswith(f"{panel} [A]: last value 99.9")  # at the default $interval
    assert all(
        f.startswith(f"{panel} [A]") and f.endswith("is outside the sensible range of unit percentunit [0, 1]")
        for f in found
    )  # and at every other $interval a person can pick


def test_recording_rules_are_backfilled_in_dependency_order():
    levels = rule_levels(build(ROOT).rules.recording)
    names = [sorted(r["record"] for r in level) for level in levels]
    assert "job_le:http_request_duration_seconds_bucket:rate5m" in names[1]  # summed from the per-endpoint rates
    assert names[2] == [
        "job:http_request_duration_seconds:p50_rate5m",
        "job:http_request_duration_seconds:p95_rate5m",
        "job:http_request_duration_seconds:p99_rate5m",
    ]

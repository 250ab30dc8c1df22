"""Bad values, the way a user would write them: each case breaks one real file in a copy of the project,
runs the real `build.py`, and asserts the exact `file:line: key.path: message` lines, a non-zero exit,
and an out/ tree byte-for-byte as it was."""

from __future__ import annotations

import shutil

import pytest
from conftest import ROOT

A = "values/services/api-gateway.yaml"
S = "values/standard.yaml"
D = "values/defaults.yaml"
R = "values/rules.yaml"
M = "values/services/mcp-server.yaml"
AT = "values/services/airtable-gateway.yaml"
OV = "values/overview.yaml"

def line(rel: str, needle: str) -> int:
    """The line of the first occurrence of `needle` in a real values file (so rule files can grow)."""
    return next(i for i, text in enumerate((ROOT / rel).read_text().splitlines(), 1) if needle in text)


# (case, file, text to replace, replacement, expected problem lines)
CASES = [
    ("yaml-syntax", A, "port: 8000", "port: [8000",
     [f"{A}:4: (document): YAML syntax error: did not find expected ',' or ']'"]),
    ("yaml-tab", A, "title: API Gateway", "title:\n\tAPI Gateway",
     [f"{A}:3: (document): YAML syntax error: found character that cannot start any token"]),
    ("yaml-duplicate-key", A, "port: 8000", "port: 8000\nport: 8001",
     [f"{A}:4: port: duplicate key (first defined on line 3)"]),
    ("unknown-key", A, "        unit: short\n      - type: stat\n        title: Authentication success rate",
     "        units: short\n      - type: stat\n        title: Authentication success rate",
     [f"{A}:14: rows[0].panels[0].units: unknown key 'units' (did you mean 'unit'?)"]),
    ("wrong-type", A, "port: 8000", "port: eight thousand",
     [f'{A}:3: port: "eight thousand" is not of type "integer"']),
    ("unknown-panel-type", A, "      - type: piechart", "      - type: piechat",
     [f"{A}:45: rows[1].panels[0].type: unknown panel type 'piechat' (did you mean 'piechart'?)"]),
    ("missing-description", A, "        description: Client connections open on the gateway right now.\n", "",
     [f"{A}:10: rows[0].panels[0]: missing required key 'description'"]),
    ("unknown-metric", A, "sum(api_gateway_active_connections{", "sum(api_gateway_active_connection{",
     [f"{A}:13: rows[0].panels[0].expr: unknown metric 'api_gateway_active_connection': not in values/metrics.yaml "
      "(did you mean 'api_gateway_active_connections'?)"]),
    ("label-not-in-catalog", A, 'rate(api_gateway_rate_limit_hits_total{job="$job"}[$__rate_interval])',
     'rate(api_gateway_rate_limit_hits_total{job="$job", tier="gold"}[$__rate_interval])',
     [f"{A}:39: rows[0].panels[4].expr: label 'tier' is not a label of api_gateway_rate_limit_hits_total"]),
    ("invalid-promql", A, "expr: sum(api_gateway_active_connections{job=\"$job\"})",
     "expr: sum(api_gateway_active_connections{job=\"$job\"}",
     [f"{A}:13: rows[0].panels[0].expr: invalid PromQL: unclosed left parenthesis"]),
    ("rate-on-gauge", A, "expr: sum(api_gateway_active_connections{job=\"$job\"})",
     "expr: sum(rate(api_gateway_active_connections{job=\"$job\"}[$interval]))",
     [f"{A}:13: rows[0].panels[0].expr: rate() on api_gateway_active_connections, a gauge: rate needs a counter"]),
    ("counter-without-rate", A, "expr: sum(api_gateway_active_connections{job=\"$job\"})",
     "expr: sum(api_gateway_rate_limit_hits_total{job=\"$job\"})",
     [f"{A}:13: rows[0].panels[0].expr: counter api_gateway_rate_limit_hits_total used without rate() or increase(): "
      "its raw value only ever climbs"]),
    ("undefined-variable", A, 'backend=~"$backend"}[$__rate_interval]))\n        legend: "{{backend}}"\n        unit: reqps',
     'backend=~"$backnd"}[$__rate_interval]))\n        legend: "{{backend}}"\n        unit: reqps',
     [f"{A}:55: rows[1].panels[1].expr: variable '$backnd' is used but not defined (did you mean 'backend'?)"]),
    ("width-over-24", A, "        width: 6\n      - type: timeseries\n        title: Rate limit hits",
     "        width: 30\n      - type: timeseries\n        title: Rate limit hits",
     [f"{A}:35: rows[0].panels[3].width: 30 is greater than the maximum of 24"]),
    ("unknown-threshold-preset", A, "thresholds: success_ratio", "thresholds: sucess_ratio",
     [f"{A}:20: rows[0].panels[1].thresholds: unknown threshold preset 'sucess_ratio' (did you mean 'success_ratio'?)"]),
    ("unknown-unit", A, "        unit: short\n      - type: stat\n        title: Authentication success rate",
     "        unit: shrt\n      - type: stat\n        title: Authentication success rate",
     [f'{A}:14: rows[0].panels[0].unit: "shrt" is not one of none, short, sishort, percent, percentunit, s, ms, µs, ns, dtdurations, bytes, '
      "decbytes, bits, Bps, bps, reqps, reqpm, ops, opm, pps, cps, cpm, currencyUSD, bool, bool_on_off, string, dateTimeFromNow, locale "
      "(did you mean 'short'?)"]),
    ("standard-row-error", S, "title: Status", "titel: Status",
     [f"{S}:8: leading_rows[0].panels[0]: missing required key 'title'",
      f"{S}:9: leading_rows[0].panels[0].titel: unknown key 'titel' (did you mean 'title'?)"]),
    ("unknown-variable-metric", A, "{name: backend, metric: api_gateway_backend_requests_total}", "{name: backend, metric: api_gateway_backend_request_total}",
     [f"{A}:6: variables[0].metric: variable 'backend': metric 'api_gateway_backend_request_total' is not in values/metrics.yaml "
      "(did you mean 'api_gateway_backend_requests_total'?)"]),
    ("duplicate-panel-title", A, "title: Rate-limited requests", "title: Active connections",
     [f"{A}:23: rows[0].panels[2].title: another panel in this row has the same title (values/services/api-gateway.yaml:11); titles must differ"]),
    # rules and alerts
    ("alert-threshold-not-a-number", D, "  error_ratio: {warning: 0.01, critical: 0.05}", "  error_ratio: {warning: 0.01, critical: high}",
     [f'{D}:22: thresholds.error_ratio.critical: "high" is not of type "number"']),
    ("rule-unknown-metric", R, '    expr: up{job="$job"}', '    expr: upp{job="$job"}',
     [f"{R}:{line(R, 'expr: up{')}: alerts[0].expr: unknown metric 'upp': not in values/metrics.yaml (did you mean 'up'?)"]),
    ("duplicate-alert-name", AT, "  - alert: AirtableRequestQueueBacklog", "  - alert: HighErrorRate",
     [f"{AT}:124: alerts[1].alert: duplicate alert name 'HighErrorRate' in group airtable-gateway (also values/rules.yaml:{line(R, '- alert: HighErrorRate')})"]),
    ("runbook-missing", M,
     "    runbook: |\n      1. Tool execution time: is one tool slow (often Airtable)?\n      2. Protocol errors: timeouts pile messages up behind them.\n", "",
     [f"{M}:94: alerts[0]: missing required key 'runbook'"]),
    ("alert-summary-templated", R, "    summary: A PyAirtable service instance is down.", "    summary: '{{ $labels.job }} is down.'",
     [f"{R}:{line(R, 'summary: A PyAirtable service instance is down.')}: alerts[0].summary: summary must be one plain sentence "
      "(capital first, full stop last, no {{ templating }})"]),
    ("alert-name-not-camel-case", M, "  - alert: McpMessageQueueBacklog", "  - alert: mcp_message_queue_backlog",
     [f"{M}:94: alerts[0].alert: alert name 'mcp_message_queue_backlog' must be CamelCase and at most 40 characters"]),
    ("alert-panel-unknown", M, "    panel: Message queue depth", "    panel: Message queue",
     [f"{M}:100: alerts[0].panel: no panel titled 'Message queue' on pyairtable-mcp-server (did you mean 'Message queue depth'?)"]),
    # dashboard lint
    ("lint-fixed-rate-window", A, 'sum by (reason) (rate(api_gateway_auth_failures_total{job="$job"}[$__rate_interval]))',
     'sum by (reason) (rate(api_gateway_auth_failures_total{job="$job"}[5m]))',
     [f"{A}:32: rows[0].panels[3].expr: lint target-rate-interval: rate() over [5m]: use [$__rate_interval] (time series) or [$interval] (stat) "
      "(excuse it under lint_exceptions with a reason)"]),
    ("lint-no-job-matcher", A, 'expr: sum(api_gateway_active_connections{job="$job"})', "expr: sum(api_gateway_active_connections)",
     [f"{A}:13: rows[0].panels[0].expr: lint target-job-matcher: no job matcher on api_gateway_active_connections "
      "(excuse it under lint_exceptions with a reason)"]),
    ("lint-exception-without-reason", OV, "target-job-matcher: Chaos and failover metrics come from the platform's chaos controller, not from one service's job.",
     "target-job-matcher: because",
     [f'{OV}:118: rows[3].panels[0].lint_exceptions.target-job-matcher: "because" is shorter than 15 characters']),
    ("two-files-two-problems", A, "port: 8000", "port: 8002",
     [f"{A}:3: port: port 8002 is already used by service 'airtable-gateway'"]),
]


@pytest.mark.parametrize("case,rel,old,new,expected", CASES, ids=[c[0] for c in CASES])
def test_bad_values_are_reported_exactly_and_out_is_untouched(project, case, rel, old, new, expected):
    assert project.build().returncode == 0
    before = project.out_bytes()
    project.edit(rel, old, new)
    result = project.build()
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert lines[:-1] == expected
    assert lines[-1].startswith(f"build failed: {len(expected)} problem(s)")
    assert project.out_bytes() == before


def test_duplicate_service_names_the_other_file(project):
    project.write("values/services/api-gateway-copy.yaml", project.file(A).read_text())
    result = project.build()
    assert result.returncode == 1
    assert result.stderr.splitlines()[0] == (
        "values/services/api-gateway-copy.yaml:1: service: duplicate service 'api-gateway' (also in values/services/api-gateway.yaml)"
    )


def test_every_problem_of_a_run_is_reported_at_once(project):
    project.edit(A, "port: 8000", "port: eight thousand")
    project.edit(S, "title: Status", "titel: Status")
    project.edit("values/services/mcp-server.yaml", "mcp_server_registered_tools{", "mcp_server_registerd_tools{")
    lines = project.build().stderr.splitlines()
    files = {line.split(":", 1)[0] for line in lines[:-1]}
    assert files == {A, S, "values/services/mcp-server.yaml"}


def test_a_jinja_undefined_variable_is_an_error_never_empty_text(project):
    project.edit("templates/panels/stat.json.j2", '"wideLayout": true', '"wideLayout": {{ panel.wide_layout | tojson }}')
    result = project.build()
    assert result.returncode == 1
    first = result.stderr.splitlines()[0]
    assert first.endswith("type: template error: templates/panels/stat.json.j2:17: 'dict object' has no attribute 'wide_layout'")
    assert first.startswith("values/overview.yaml:18: rows[0].panels[1].type:")
    assert len(result.stderr.splitlines()) == 2, "one broken template is one problem, not one per panel"


def test_python_tags_in_yaml_are_refused(project):
    project.edit(A, "port: 8000", "port: !!python/object/apply:os.system ['true']")
    result = project.build()
    assert result.returncode == 1
    assert result.stderr.splitlines()[0] == f"{A}:3: port: unsupported YAML: tag 'tag:yaml.org,2002:python/object/apply:os.system' is not allowed"


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not on PATH: the build cannot run it")
def test_what_only_promtool_catches_is_reported_at_the_alert(project):
    project.edit(M, "wait in the {{ $labels.job }} queue.", "wait in the {{ $labels.job queue.")
    result = project.build()
    assert result.returncode == 1
    assert result.stderr.splitlines()[0] == (
        f"{M}:99: alerts[0].description: promtool: template: __alert_McpMessageQueueBacklog:1: function \"queue\" not defined"
    )


def test_a_service_name_cannot_leave_out(project):
    project.edit(A, "service: api-gateway", "service: ../../etc")
    result = project.build()
    assert result.returncode == 1
    assert result.stderr.splitlines()[0] == (
        f'{A}:1: service: "../../etc" is not allowed here: lowercase words joined by hyphens, at most 29 characters '
        "(the dashboard uid adds 'pyairtable-')"
    )
    assert not (project.path / "etc").exists()

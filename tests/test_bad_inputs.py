"""Bad input that needs more than one malformed file to show (the single-file cases are the corpus in
tests/corpus/, run by test_corpus.py): each runs the real `build.py` on a copy of the project."""

from __future__ import annotations

import shutil

import pytest

A = "values/services/api-gateway.yaml"
S = "values/standard.yaml"
D = "values/defaults.yaml"
R = "values/rules.yaml"
M = "values/services/mcp-server.yaml"
AT = "values/services/airtable-gateway.yaml"
OV = "values/overview.yaml"

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
        f"{M}:{_line(project, M, 'wait in the {{ $labels.job queue.')}: alerts[0].description: promtool: template: __alert_McpMessageQueueBacklog:1: function \"queue\" not defined"
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


def _line(project, rel: str, text: str) -> int:
    """The line of `text` in a values file of the project copy (so a test survives edits above it)."""
    lines = project.file(rel).read_text(encoding="utf-8").splitlines()
    return next(i for i, line in enumerate(lines, 1) if text in line)


GUARD = ("ratio without a zero guard: its numerator ({}) has no series until the first such event, so the ratio shows "
         "No data instead of 0; write (numerator or 0 * denominator) / denominator")


def test_a_ratio_without_its_zero_guard_is_caught_in_panels_and_rules(project):
    hits = 'sum(rate(api_gateway_rate_limit_hits_total{job="$job"}[$interval]))'
    total = 'sum(rate(http_requests_total{job="$job"}[$interval]))'
    project.edit(A, f"({hits} or 0 * {total}) / {total}", f"{hits} / {total}")
    errors = 'sum by (job) (job_endpoint_status:http_requests:rate5m{status=~"5.."})'
    project.edit(R, f"({errors} or 0 * sum by (job) (job_endpoint_status:http_requests:rate5m)) /", f"{errors} /")
    result = project.build()
    assert result.returncode == 1
    assert result.stderr.splitlines()[:-1] == [  # sorted by file, then line
        f"{R}:{_line(project, R, errors)}: recording[2].expr: lint ratio-zero-guard: "
        + GUARD.format('job_endpoint_status:http_requests:rate5m{status=~"5.."}'),
        f"{A}:{_line(project, A, hits)}: rows[0].panels[2].expr: lint ratio-zero-guard: "
        + GUARD.format("api_gateway_rate_limit_hits_total, a count of hits only") + " (excuse it under lint_exceptions with a reason)",
    ]


def test_a_ratio_excused_with_a_reason_builds(project):
    hits = 'sum(rate(api_gateway_rate_limit_hits_total{job="$job"}[$interval]))'
    total = 'sum(rate(http_requests_total{job="$job"}[$interval]))'
    project.edit(A, f"({hits} or 0 * {total}) / {total}", f"{hits} / {total}")
    project.edit(A, "        no_value: No traffic\n        thresholds: error_ratio",
                 "        no_value: No traffic\n        thresholds: error_ratio\n        lint_exceptions:\n"
                 "          ratio-zero-guard: Reviewed; an empty panel is what we want while nothing was rate limited.")
    assert project.build("--check").returncode == 0


def test_a_multi_value_variable_without_a_format_in_a_tempo_query_is_caught(project):
    project.edit(OV, '{client=~"${service:regex}"}', '{client=~"$service"}')
    result = project.build()
    assert result.returncode == 1
    assert result.stderr.splitlines()[:-1] == [
        f"{OV}:{_line(project, OV, 'client=~')}: rows[5].panels[0].expr: multi-value variable $service has no format in a Tempo service map "
        "query, where Grafana may expand several values as {a,b} (no regex matches that): write ${service:regex} or ${service:pipe}"
    ]


def test_a_multi_value_variable_without_a_format_in_a_loki_query_is_caught(project):
    project.edit(S, 'level=~"${level:regex}"', 'level=~"$level"')
    lines = project.build().stderr.splitlines()
    line = _line(project, S, 'level=~"$level"')
    assert lines[:-1] == [
        f"{S}:{line}: trailing_rows[2].panels[2].expr: multi-value variable $level has no format in a LogQL "
        "query, where Grafana may expand several values as {a,b} (no regex matches that): write ${level:regex} or ${level:pipe}"
    ]


def test_exemplars_on_recorded_series_only_are_refused(project):
    project.edit(S, "        unit: s\n        thresholds: p95_latency\n      - type: timeseries\n        title: Error ratio",
                 "        exemplar: true\n        unit: s\n        thresholds: p95_latency\n      - type: timeseries\n        title: Error ratio")
    lines = project.build().stderr.splitlines()
    first = _line(project, S, "job:http_request_duration_seconds:p50_rate5m")
    assert lines[:-1] == [
        f"{S}:{first + i}: trailing_rows[0].panels[0].targets[{i}].expr: exemplar: true on a query without raw _bucket series: "
        "recorded series keep no exemplars, so none would show"
        for i in range(3)
    ]


def test_a_service_threshold_override_must_name_a_preset(project):
    L = "values/services/llm-orchestrator.yaml"
    project.edit(L, "  p95_latency: {warning: 10, critical: 20}", "  p95_latncy: {warning: 10, critical: 20}")
    lines = project.build().stderr.splitlines()
    assert lines[:-1] == [f"{L}:{_line(project, L, 'p95_latncy')}: thresholds.p95_latncy: unknown threshold preset 'p95_latncy' (did you mean 'p95_latency'?)"]

"""Bad input that needs more than one malformed file to show (the single-file cases are the corpus in
tests/corpus/, run by test_corpus.py): each runs the real `build.py` on a copy of the project."""

from __future__ import annotations

import json
import shutil

import pytest
from patches import line_of_path, replace_whole_line, yaml_lines

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


def test_a_broken_panel_template_is_one_problem_at_its_first_panel(project):
    project.edit("templates/panels/stat.jsonnet", "wideLayout: true", "wideLayout: panel.wide_layout")
    result = project.build()
    assert result.returncode == 1
    assert result.stderr.splitlines()[0] == (
        "values/overview.yaml:18: rows[0].panels[1].type: template error: templates/panels/stat.jsonnet: RUNTIME ERROR: Field does not exist: wide_layout"
    )
    assert len(result.stderr.splitlines()) == 2, "one broken template is one problem, not one per panel"


@pytest.mark.parametrize(
    "field, message",
    [
        ("datasource: 1,", 'datasource: 1 is not of type "object"'),
        ("datasource: null,", 'datasource: null is not of type "object"'),
        ("targets: 1,", 'targets: 1 is not of type "array"'),
        ("targets: [1],", 'targets.0: 1 is not of type "object"'),
    ],
)
def test_a_panel_template_writing_a_field_of_the_wrong_shape_is_told_at_each_panel(project, field, message):
    """Grafana's schema lets a panel take one of several shapes: the build names the field that is wrong in
    the closest one, at each panel's line, rather than quoting the whole panel (or failing inside)."""
    project.edit("templates/panels/stat.jsonnet", "lib.sparkline + {", "lib.sparkline + {\n  " + field)
    result = project.build()
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert lines[0] == (
        f"values/overview.yaml:18: rows[0].panels[1]: generated pyairtable-overview.json: {message} (the closest of the shapes it may take)"
    )
    assert all(line.endswith(f": {message} (the closest of the shapes it may take)") for line in lines[:-1]), lines
    assert "internal error" not in result.stderr


# A panel type a user adds as a Jinja template: for a panel that is mostly text (README, "A new panel type").
NOTES = """{#- The panel's text, in Markdown: the product of this template. -#}
{%- set markdown -%}
**{{ panel.title }}**

{{ panel.content }}
{%- endset -%}
{"type": "text", "title": {{ panel.title | tojson }}, "description": {{ panel.description | tojson }},
 "fieldConfig": {"defaults": {"unit": {{ panel.unit | tojson }}}, "overrides": []},
 "options": {"code": {"language": "plaintext", "showLineNumbers": false, "showMiniMap": false}, "content": {{ markdown | tojson }}, "mode": "markdown"}}
"""


def test_a_jinja_panel_type_a_user_adds_is_a_panel_type_like_any(project):
    project.write("templates/panels/notes.json.j2", NOTES)
    project.edit(OV, "      - type: text\n", "      - type: notes\n")
    result = project.build()
    assert result.returncode == 0, result.stderr
    overview = json.loads(project.file("out/dashboards/pyairtable/pyairtable-overview.json").read_text())
    panel = next(p for p in overview["panels"] if p["title"] == "About this dashboard")
    assert panel["type"] == "text" and panel["options"]["content"].startswith(
        "**About this dashboard**\n\n**PyAirtable platform overview.**"
    )


def test_a_jinja_undefined_variable_is_an_error_never_empty_text(project):
    project.write("templates/panels/notes.json.j2", NOTES.replace("panel.content", "panel.contents"))
    project.edit(OV, "      - type: text\n", "      - type: notes\n")
    result = project.build()
    assert result.returncode == 1
    assert result.stderr.splitlines()[0] == (
        "values/overview.yaml:10: rows[0].panels[0].type: template error: templates/panels/notes.json.j2:5: 'dict object' has no attribute 'contents'"
    )
    assert len(result.stderr.splitlines()) == 2


def test_python_tags_in_yaml_are_refused(project):
    project.edit(A, "port: 8000", "port: !!python/object/apply:os.system ['true']")
    result = project.build()
    assert result.returncode == 1
    assert (
        result.stderr.splitlines()[0]
        == f"{A}:3: port: unsupported YAML: tag 'tag:yaml.org,2002:python/object/apply:os.system' is not allowed"
    )


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not on PATH: the build cannot run it")
def test_what_only_promtool_catches_is_reported_at_the_alert(project):
    project.edit(M, "wait in the {{ $labels.job }} queue.", "wait in the {{ $labels.job queue.")
    result = project.build()
    assert result.returncode == 1
    assert result.stderr.splitlines()[0] == (
        f'{M}:{_line(project, M, "wait in the {{ $labels.job queue.")}: alerts[0].description: promtool: template: __alert_McpMessageQueueBacklog:1: function "queue" not defined'
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


GUARD = (
    "ratio without a zero guard: its numerator ({}) has no series until the first such event, so the ratio shows "
    "No data instead of 0; write (numerator or 0 * denominator) / denominator"
)


def test_a_ratio_without_its_zero_guard_is_caught_in_panels_and_rules(project):
    hits = 'sum(rate(api_gateway_rate_limit_hits_total{job="$job"}[$interval]))'
    total = 'sum(rate(http_requests_total{job="$job"}[$interval]))'
    project.edit(A, f"({hits} or 0 * {total}) / ({total} > 0)", f"{hits} / {total}")
    errors = 'sum by (job) (job_endpoint_status:http_requests:rate5m{status=~"5.."})'
    project.edit(R, f"({errors} or 0 * sum by (job) (job_endpoint_status:http_requests:rate5m)) / (", f"{errors} / (")
    result = project.build()
    assert result.returncode == 1
    assert result.stderr.splitlines()[:-1] == [  # sorted by file, then line
        f"{R}:{_line(project, R, errors)}: recording[2].expr: lint ratio-zero-guard: "
        + GUARD.format('job_endpoint_status:http_requests:rate5m{status=~"5.."}'),
        f"{A}:{_line(project, A, hits)}: rows[0].panels[2].expr: lint ratio-zero-guard: "
        + GUARD.format("api_gateway_rate_limit_hits_total, a count of hits only")
        + " (excuse it under lint_exceptions with a reason)",
    ]


def test_vector_0_is_no_zero_guard_for_a_grouped_ratio(project):
    """`or vector(0)` has no labels: after `sum by (job)` it matches no denominator, so the ratio stays empty."""
    errors = 'sum by (job) (job_endpoint_status:http_requests:rate5m{status=~"5.."})'
    project.edit(
        R,
        f"({errors} or 0 * sum by (job) (job_endpoint_status:http_requests:rate5m)) / (",
        f"({errors} or vector(0)) / (",
    )
    result = project.build()
    assert result.returncode == 1
    assert result.stderr.splitlines()[:-1] == [
        f"{R}:{_line(project, R, errors)}: recording[2].expr: lint ratio-zero-guard: "
        + GUARD.format('job_endpoint_status:http_requests:rate5m{status=~"5.."}')
    ]


def test_a_ratio_excused_with_a_reason_builds(project):
    hits = 'sum(rate(api_gateway_rate_limit_hits_total{job="$job"}[$interval]))'
    total = 'sum(rate(http_requests_total{job="$job"}[$interval]))'
    project.edit(A, f"({hits} or 0 * {total}) / ({total} > 0)", f"{hits} / {total}")
    project.edit(
        A,
        "        no_value: No traffic\n        thresholds: error_ratio",
        "        no_value: No traffic\n        thresholds: error_ratio\n        lint_exceptions:\n"
        "          ratio-zero-guard: Reviewed; an empty panel is what we want while nothing was rate limited.",
    )
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
    project.edit(
        S,
        "        unit: s\n        thresholds: p95_latency\n      - type: timeseries\n        title: Error ratio",
        "        exemplar: true\n        unit: s\n        thresholds: p95_latency\n      - type: timeseries\n        title: Error ratio",
    )
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
    assert lines[:-1] == [
        f"{L}:{_line(project, L, 'p95_latncy')}: thresholds.p95_latncy: unknown threshold preset 'p95_latncy' (did you mean 'p95_latency'?)"
    ]


# --- input confinement, limits and YAML 1.1 (issue 10) ------------------------------------------------------
SECRET = "hunter2-TOP-SECRET-token"


def _fails_with(project, *expected: str, timeout: float | None = None) -> None:
    """The build exits 1 with exactly these problem lines, and leaves out/ as it was."""
    before = project.out_bytes() if (project.path / "out").exists() else {}
    result = project.build()
    assert result.returncode == 1, result.stdout
    assert result.stderr.splitlines()[:-1] == list(expected)
    assert "Traceback" not in result.stderr
    assert project.out_bytes() == before if before else not (project.path / "out").exists()


def test_a_symlink_leaving_the_project_is_refused_and_its_text_never_shown(project, tmp_path):
    secret = tmp_path / "secret.yaml"
    secret.write_text(f"password: {SECRET}\n", encoding="utf-8")
    project.file(AT).unlink()
    project.file(AT).symlink_to(secret)
    result = project.build()
    assert result.returncode == 1
    assert SECRET not in result.stderr + result.stdout
    assert result.stderr.splitlines()[0] == (
        f"{AT}: is a symlink to outside the project: refused (values and templates are read only from the project)"
    )


def test_a_symlink_inside_the_project_is_read(project):
    project.file("values/kept.yaml").write_bytes(project.file(AT).read_bytes())
    project.file(AT).unlink()
    project.file(AT).symlink_to(project.file("values/kept.yaml"))
    assert project.build("--check").returncode == 0


def test_a_fifo_does_not_hang_the_build(project):
    import os
    import time

    project.file(AT).unlink()
    os.mkfifo(project.file(AT))
    start = time.monotonic()
    _fails_with(project, f"{AT}: is a FIFO, not a regular file: refused")
    assert time.monotonic() - start < 10


def test_dev_zero_behind_a_symlink_is_refused(project):
    project.file(AT).unlink()
    project.file(AT).symlink_to("/dev/zero")
    _fails_with(
        project,
        f"{AT}: is a symlink to outside the project: refused (values and templates are read only from the project)",
    )


def test_a_directory_named_like_a_service_file_and_a_dangling_link(project):
    project.file("values/services/zz-folder.yaml").mkdir()
    project.file("values/services/zz-gone.yaml").symlink_to(project.file("values/services/not-there.yaml"))
    _fails_with(
        project,
        "values/services/zz-folder.yaml: is a directory, not a regular file: refused",
        "values/services/zz-gone.yaml: is a symlink to a missing file",
    )


def test_a_missing_defaults_file_and_templates_folder(project):
    project.file(D).unlink()
    shutil.rmtree(project.file("templates"))
    _fails_with(
        project,
        "templates: folder is missing: the panel, dashboard and provisioning templates live there",
        f"{D}: file is missing",
    )


def test_a_template_symlink_leaving_the_project_is_refused(project, tmp_path):
    secret = tmp_path / "secret.jsonnet"
    secret.write_text(f"'{SECRET}'\n", encoding="utf-8")
    project.file("templates/lib/evil.libsonnet").symlink_to(secret)
    result = project.build()
    assert SECRET not in result.stderr
    assert result.stderr.splitlines()[:-1] == [
        "templates/lib/evil.libsonnet: is a symlink to outside the project: refused (values and templates are read only from the project)"
    ]


def test_an_oversized_values_file_is_refused(project):
    from dashkit.safe_read import MAX_VALUES_BYTES

    text = project.file(AT).read_text(encoding="utf-8")
    project.write(AT, text + "#" * MAX_VALUES_BYTES + "\n")
    size = len((text + "#" * MAX_VALUES_BYTES + "\n").encode())
    _fails_with(project, f"{AT}: is {size:,} bytes; input files are limited to {MAX_VALUES_BYTES:,} bytes (1 MiB)")


def test_undecodable_bytes(project):
    line = _line(project, AT, "title: Airtable")
    project.file(AT).write_bytes(project.file(AT).read_bytes().replace(b"title: Airtable", b"title: \xff\xfeAirtable"))
    _fails_with(project, f"{AT}: line {line}: not UTF-8 text (byte 0xff); save the file as UTF-8")


@pytest.mark.parametrize(
    ("written", "message"),
    [
        (
            "port: 123456789012345678901234567890",
            "port: integer 123456789012345678901234567890 does not fit in 64 bits",
        ),
        ("port: 2024-01-01", "port: 2024-01-01 is read by YAML as a date: quote it if text is meant"),
        ("port: !!binary aGVsbG8=", "port: unsupported YAML: tag 'tag:yaml.org,2002:binary' is not allowed"),
        (
            "port: 010",
            "port: 010 is read by YAML 1.1 as the number 8: write the number without leading zeros, colons or underscores, "
            "or quote '010' if text is meant",
        ),
        (
            "port: 12:30",
            "port: 12:30 is read by YAML 1.1 as the number 750: write the number without leading zeros, colons or "
            "underscores, or quote '12:30' if text is meant",
        ),
        ("port: .nan", "port: .nan is not a finite number"),
    ],
)
def test_yaml_scalars_that_would_change_meaning(project, written, message):
    project.edit(AT, "port: 8002", written)
    _fails_with(project, f"{AT}:{_line(project, AT, written)}: {message}")


def test_a_billion_laughs_document_is_refused_quickly(project):
    import time

    laughs = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [" + ",".join(["*" + chr(97 + i)] * 9) + "]\n" for i in range(9)
    )
    project.write(AT, laughs)
    start = time.monotonic()
    result = project.build()
    assert time.monotonic() - start < 10
    assert result.returncode == 1
    assert result.stderr.splitlines()[0].endswith(
        ": (document): aliases expand this document by more than 100,000 values (an alias bomb?)"
    )


def test_deeply_nested_yaml_is_refused_not_a_crash(project):
    project.write(AT, "rows: " + "[" * 100_000 + "]" * 100_000 + "\n")
    _fails_with(project, f"{AT}:1: (document): YAML nested more than 64 levels deep")


def test_very_long_and_deeply_nested_promql(project):
    import time

    from dashkit.promql import MAX_LENGTH, MAX_NESTING

    expr = 'sum(api_gateway_active_connections{job="$job"})'
    long = expr + " + 0" * (MAX_LENGTH // 4)
    project.edit(A, f"expr: {expr}", f"expr: {long}")
    # 1,000 open brackets: what made promql-parser crash; refused before it parses (the query stays unbalanced)
    project.edit(M, "mcp_server_registered_tools{", "(" * 1000 + "mcp_server_registered_tools{")
    start = time.monotonic()
    result = project.build()
    assert time.monotonic() - start < 20
    lines = result.stderr.splitlines()[:-1]
    prefix = f"{A}:{_line(project, A, long[:60])}: rows[0].panels[0].expr: invalid PromQL: query is "  # counted after substitution
    assert any(
        line.startswith(prefix) and line.endswith(f" characters long; at most {MAX_LENGTH:,}") for line in lines
    ), lines
    assert any(line.startswith(f"{M}:") and f"; at most {MAX_NESTING}" in line for line in lines), lines
    assert "Traceback" not in result.stderr


def test_regex_that_prometheus_refuses_is_caught_without_promtool(project):
    project.edit(
        A,
        'sum(api_gateway_active_connections{job="$job"',
        'sum(api_gateway_active_connections{job="$job", instance=~"(?<e>a)"',
    )
    lines = project.build().stderr.splitlines()[:-1]
    assert any(
        line.endswith(
            "label 'instance': named group (?<name>...) is not supported by Prometheus's regex engine (RE2): write (?P<name>...)"
        )
        for line in lines
    ), lines


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not on PATH: the build cannot run it")
def test_a_function_prometheus_does_not_have_is_caught_by_promtool(project):
    expr = 'sum(api_gateway_active_connections{job="$job"})'
    project.edit(A, f"expr: {expr}", f'expr: sort_by_label({expr}, "job")')
    line = _line(project, A, "sort_by_label")
    _fails_with(
        project,
        f"{A}:{line}: rows[0].panels[0].expr: Prometheus rejects this query (promtool): 1:1: parse error: "
        'unknown function with name "sort_by_label"',
    )


def test_dollar_in_provisioning_text_is_escaped(project):
    project.edit(D, "name: Mimir,", 'name: "Mimir ${GF_SECURITY_ADMIN_PASSWORD} $HOME",')
    result = project.build()
    assert result.returncode == 0, result.stderr
    text = project.file("out/datasources/pyairtable-lgtm.yaml").read_text(encoding="utf-8")
    assert "Mimir $${GF_SECURITY_ADMIN_PASSWORD} $$HOME" in text
    assert 'url: "$MIMIR_URL"' in text  # the allowlisted variable is still expanded by Grafana


def test_only_allowlisted_environment_variables(project):
    project.edit(D, "url_env: MIMIR_URL", "url_env: GF_SECURITY_ADMIN_PASSWORD")
    _fails_with(
        project,
        f'{D}:{_line(project, D, "GF_SECURITY")}: datasources.metrics.url_env: "GF_SECURITY_ADMIN_PASSWORD" is not one of '
        "MIMIR_URL, LOKI_URL, TEMPO_URL",
    )


def test_two_titles_whose_ids_collide_are_reported_truthfully(project):
    # Found by a search: crc32 of these two titles under this row meets (masked to 31 bits). The first row of the
    # file and its first two panels are given those titles, whatever they are called today.
    row = "Authentication & rate limiting"
    lines = yaml_lines(project.file(A).read_text(encoding="utf-8"))
    for path, title in (
        (("rows", 0, "title"), row),
        (("rows", 0, "panels", 0, "title"), "Panel uejgtcuo"),
        (("rows", 0, "panels", 1, "title"), "Panel iiwucoup"),
    ):
        line = line_of_path(lines, path)
        text = project.file(A).read_text(encoding="utf-8").split("\n")[line - 1]
        replace_whole_line(project.file(A), line, text.split("title:")[0] + f"title: {title}")
    first, second = _line(project, A, "Panel uejgtcuo"), _line(project, A, "Panel iiwucoup")
    from dashkit.layout import stable_id

    assert stable_id(row, "Panel uejgtcuo") == stable_id(row, "Panel iiwucoup")
    lines = project.build().stderr.splitlines()[:-1]
    assert (
        f"{A}:{second}: rows[0].panels[1].title: title 'Panel iiwucoup' gets panel id {stable_id(row, 'Panel iiwucoup')}, the id of "
        f"'Panel uejgtcuo' ({A}:{first}) (ids are a hash of row and title): change either title slightly" in lines
    )

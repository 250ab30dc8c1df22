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

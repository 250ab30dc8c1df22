"""LogQL on the dashboards parses with Grafana's own grammar (@grafana/lezer-logql, installed by nox -s lint)."""

from __future__ import annotations

import pytest
from conftest import ROOT

from dashkit.grammar import grammar_available, grammar_problems

MISSING = grammar_available()
SERVICES = len(list((ROOT / "values" / "services").glob("*.yaml")))
pytestmark = pytest.mark.skipif(MISSING is not None, reason=f"Grafana's LogQL grammar is not installed: {MISSING}")


def test_every_logql_query_parses():
    assert grammar_problems(ROOT) == []


def test_a_broken_logql_query_is_named_with_its_line(project):
    written = 'expr: \'{job="$job"} | json | level=~"${level:regex}"\''
    project.edit("values/standard.yaml", written, written.replace('"$job"}', '"$job"'))
    problems = [str(p) for p in grammar_problems(project.path)]
    line = (
        project.file("values/standard.yaml")
        .read_text()
        .splitlines()
        .index("        " + written.replace('"$job"}', '"$job"'))
        + 1
    )
    assert len(problems) == SERVICES  # the shared logs panel, once per service dashboard
    prefix = f"values/standard.yaml:{line}: trailing_rows[2].panels[2].expr: invalid LogQL at character "
    assert problems[1].startswith(prefix) and problems[1].endswith(': {job="api-gateway" | json | level=~".*"')


def test_a_broken_traceql_query_is_named(project):
    project.edit(
        "values/standard.yaml",
        "expr: '{resource.service.name=\"$job\" && (duration > 1s || status = error)}'",
        "expr: '{resource.service.name= && (duration > 1s || status = error)}'",
    )
    problems = [str(p) for p in grammar_problems(project.path)]
    assert len(problems) == SERVICES and "trailing_rows[2].panels[1].expr: invalid TraceQL at character" in problems[0]

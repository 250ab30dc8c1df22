"""LogQL on the dashboards parses with Grafana's own grammar (@grafana/lezer-logql, installed by nox -s lint)."""

from __future__ import annotations

import pytest
from conftest import ROOT

from dashkit.grammar import grammar_available, grammar_problems

MISSING = grammar_available()
pytestmark = pytest.mark.skipif(MISSING is not None, reason=f"Grafana's LogQL grammar is not installed: {MISSING}")


def test_every_logql_query_parses():
    assert grammar_problems(ROOT) == []


def test_a_broken_logql_query_is_named_with_its_line(project):
    project.edit("values/standard.yaml", "expr: '{job=\"$job\"}'", "expr: '{job=\"$job\"'")
    problems = [str(p) for p in grammar_problems(project.path)]
    line = project.file("values/standard.yaml").read_text().splitlines().index("        expr: '{job=\"$job\"'") + 1
    assert len(problems) == 6  # the shared logs panel, once per service dashboard
    assert problems[1] == f'values/standard.yaml:{line}: trailing_rows[2].panels[0].expr: invalid LogQL at character 19: {{job="api-gateway"'

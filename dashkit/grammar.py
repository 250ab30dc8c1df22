"""LogQL and TraceQL checked with Grafana's own Lezer grammars (npm), run by `nox -s lint`.

No Loki or Tempo server can run here, so the grammar is the strongest check available: a query that
Grafana's own parser rejects would show an error in the panel. The build itself needs no Node.js.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from . import promql
from .check import variable_values
from .panels import datasource_type, panels_of, targets_of
from .pipeline import build
from .problems import Problem

TOOL = Path(__file__).resolve().parent.parent / "tools" / "grammar"
LANGUAGE = {"loki": "logql", "tempo": "traceql"}


def grammar_available() -> str | None:
    """None when the check can run, else why not."""
    if shutil.which("node") is None:
        return "node is not on PATH"
    if not (TOOL / "node_modules" / "@grafana" / "lezer-logql").is_dir():
        return f"run `npm ci --prefix {TOOL.name}` first (nox -s lint does)"
    return None


def grammar_problems(root: Path) -> list[Problem]:
    result = build(root)
    queries, where = [], {}
    for dash in result.dashboards:
        values = variable_values(dash)
        for panel in panels_of(dash.json):
            language = LANGUAGE.get(datasource_type(panel))
            if language is None:
                continue
            for i, target in targets_of(panel):
                if language == "traceql" and target.get("queryType") != "traceql":
                    continue  # a service-map target is a metrics filter, not TraceQL
                written = target.get("query", "") if language == "traceql" else target.get("expr", "")
                expr, _ = promql.substitute(written, values)
                key = f"{len(queries)}"
                queries.append({"id": key, "language": language, "expr": expr})
                where[key] = (dash.target_where(panel, i), language, expr)
    if not queries:
        return []
    run = subprocess.run(
        ["node", str(TOOL / "check.mjs")],
        input=json.dumps(queries),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    problems = []
    for item in json.loads(run.stdout):
        if item["errors"]:
            at, language, expr = where[item["id"]]
            offset = item["errors"][0]
            problems.append(
                Problem(
                    at, f"invalid {'LogQL' if language == 'logql' else 'TraceQL'} at character {offset + 1}: {expr}"
                )
            )
    return problems

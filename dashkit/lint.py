"""Dashboard lint: the rules of Grafana's dashboard-linter that fit this project, on every Prometheus
target. Most are enforced unconditionally elsewhere (schema: title, description, unit, datasource by uid;
promql: parses, counters only under rate/increase). The two below may be excused per panel, in values,
with a written reason:

    lint_exceptions:
      target-job-matcher: Chaos experiments are recorded by the platform, not by a service job.
"""

from __future__ import annotations

import re

import promql_parser as pp

RULES = {
    "target-job-matcher": "every selector has a job matcher, so a panel never mixes in another service's series",
    "target-rate-interval": "rate() and irate() use [$__rate_interval] or [$interval], never a fixed window",
}
RATE_RANGE = re.compile(r"\b(i?rate)\s*\(")
ALLOWED_RANGES = {"$__rate_interval", "$interval", "${interval}", "${__rate_interval}"}


def lint_target(written: str, substituted_ast) -> list[tuple[str, str]]:
    """(rule, message) for each finding on one target. `written` is the expression as in values."""
    findings = []
    missing = sorted({s.name or "{…}" for s in selectors(substituted_ast) if not any(m.name == "job" for m in s.matchers.matchers)})
    if missing:
        findings.append(("target-job-matcher", f"no job matcher on {', '.join(missing)}"))
    for match in RATE_RANGE.finditer(written):
        window = _range_after(written, match.end())
        if window is not None and window not in ALLOWED_RANGES:
            findings.append(("target-rate-interval", f"{match.group(1)}() over [{window}]: use [$__rate_interval] (time series) or [$interval] (stat)"))
    return findings


def _range_after(text: str, start: int) -> str | None:
    """The [range] of the first matrix selector after `start`, at the call's own nesting level."""
    depth, i = 0, start
    while i < len(text):
        c = text[i]
        if c in "\"'`":  # skip string literals: a regex like "[45].." is not a range
            close = text.find(c, i + 1)
            while close > 0 and c != "`" and text[close - 1] == "\\":
                close = text.find(c, close + 1)
            i = close + 1 if close > 0 else len(text)
            continue
        if c == "(":
            depth += 1
        elif c == ")":
            if depth == 0:
                return None
            depth -= 1
        elif c == "[" and depth == 0:
            end = text.find("]", i)
            return text[i + 1 : end].strip() if end > 0 else None
        i += 1
    return None


def selectors(node):
    """Every vector selector in a parsed expression."""
    if isinstance(node, pp.VectorSelector):
        yield node
    elif isinstance(node, pp.MatrixSelector):
        yield node.vector_selector
    elif isinstance(node, pp.Call):
        for arg in node.args:
            yield from selectors(arg)
    elif isinstance(node, pp.BinaryExpr):
        yield from selectors(node.lhs)
        yield from selectors(node.rhs)
    elif isinstance(node, pp.AggregateExpr):
        yield from selectors(node.expr)
        if node.param is not None:
            yield from selectors(node.param)
    elif getattr(node, "expr", None) is not None:
        yield from selectors(node.expr)

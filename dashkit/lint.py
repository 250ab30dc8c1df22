"""Dashboard lint: the rules of Grafana's dashboard-linter that fit this project, on every Prometheus
target. Most are enforced unconditionally elsewhere (schema: title, description, unit, datasource by uid;
promql: parses, counters only under rate/increase). The rules below may be excused per panel, in values,
with a written reason:

    lint_exceptions:
      target-job-matcher: Chaos experiments are recorded by the platform, not by a service job.
"""

from __future__ import annotations

import json
import re

import promql_parser as pp

from .problems import Problem
from .promql import parse, selectors, walk
from .specs import Values

RULES = {
    "target-job-matcher": "every selector has a job matcher, so a panel never mixes in another service's series",
    "target-rate-interval": "rate() and irate() use [$__rate_interval] or [$interval], never a fixed window",
    "ratio-zero-guard": "a ratio whose numerator counts a subset (errors, failures, hits) is 0, not empty, when none occurred",
}
# A counter of a subset of events: it has no series until the first such event (client libraries create a
# labelled child on first use), so `errors / total` is empty, not 0, while all is well.
SUBSET_NAME = re.compile(
    r"(?:^|[_:])(errors?|failures?|failed|hits|misses|rejected|rejections|timeouts?|dropped)(?=[_:]|$)"
)
IGNORED_LABELS = {"__name__", "job", "instance"}
NOUNS = {
    "error": "errors",
    "failure": "failures",
    "failed": "failures",
    "rejected": "rejections",
    "timeout": "timeouts",
    "dropped": "drops",
}
RATE_RANGE = re.compile(r"\b(i?rate)\s*\(")
ALLOWED_RANGES = {"$__rate_interval", "$interval", "${interval}", "${__rate_interval}"}


def lint_target(written: str, substituted_ast) -> list[tuple[str, str]]:
    """(rule, message) for each finding on one target. `written` is the expression as in values."""
    findings = []
    missing = sorted(
        {s.name or "{…}" for s in selectors(substituted_ast) if not any(m.name == "job" for m in s.matchers.matchers)}
    )
    if missing:
        findings.append(("target-job-matcher", f"no job matcher on {', '.join(missing)}"))
    for match in RATE_RANGE.finditer(written):
        window = _range_after(written, match.end())
        if window is not None and window not in ALLOWED_RANGES:
            findings.append(
                (
                    "target-rate-interval",
                    f"{match.group(1)}() over [{window}]: use [$__rate_interval] (time series) or [$interval] (stat)",
                )
            )
    findings += [("ratio-zero-guard", message) for message in unguarded_ratios(substituted_ast)]
    return findings


def unguarded_ratios(ast) -> list[str]:
    """A message for every `a / b` whose numerator counts a subset of the denominator's events and has no
    zero guard. The guard is `(a or 0 * b) / b`: 0 while b has traffic, and still empty (no traffic, the
    panel's no_value text) when b has none."""
    found = []
    for node in _divisions(ast):
        num, den = _unwrap(node.lhs), _unwrap(node.rhs)
        if isinstance(num, pp.NumberLiteral) or isinstance(den, pp.NumberLiteral) or _zero_guarded(num):
            continue
        reason = _subset(num, den)
        if reason:
            found.append(
                f"ratio without a zero guard: its numerator ({reason}) has no series until the first such event, so the ratio "
                "shows No data instead of 0; write (numerator or 0 * denominator) / denominator"
            )
    return found


def _divisions(node):
    return (n for n in walk(node) if isinstance(n, pp.BinaryExpr) and str(n.op) == "/")


def _unwrap(node):
    while isinstance(node, pp.ParenExpr):
        node = node.expr
    return node


def _zero_guarded(num) -> bool:
    """`x or 0 * y`, or `x or vector(0)` where x carries no labels: the numerator falls back to zero.
    vector(0) has no labels, so after `sum by (backend)` it matches no denominator and the ratio stays empty."""
    if not (isinstance(num, pp.BinaryExpr) and str(num.op) == "or"):
        return False
    zeros = [n for n in walk(num.rhs) if _is_zero(n)]
    if any(not isinstance(n, pp.Call) for n in zeros):
        return True
    return bool(zeros) and _labelless(num.lhs)


def _labelless(node) -> bool:
    node = _unwrap(node)
    if not isinstance(node, pp.AggregateExpr):
        return False
    modifier = node.modifier
    return modifier is None or (not modifier.labels and "Without" not in str(modifier.type))


def _is_zero(node) -> bool:
    if isinstance(node, pp.BinaryExpr) and str(node.op) == "*":
        return any(
            isinstance(_unwrap(side), pp.NumberLiteral) and float(_unwrap(side).val) == 0
            for side in (node.lhs, node.rhs)
        )
    if isinstance(node, pp.Call) and node.func.name == "vector":
        arg = _unwrap(node.args[0])
        return isinstance(arg, pp.NumberLiteral) and float(arg.val) == 0
    return False


def _subset(num, den) -> str | None:
    """What makes the numerator a subset: an error/failure/hit counter, or a label matcher the
    denominator's selectors of the same metric do not have (status=~"5..")."""
    den_matchers: dict[str, set] = {}
    for sel in selectors(den):
        den_matchers.setdefault(sel.name, set()).update(_matchers(sel))
    for sel in selectors(num):
        word = SUBSET_NAME.search(sel.name or "")
        if word:
            return f"{sel.name}, a count of {NOUNS.get(word.group(1), word.group(1))} only"
        if sel.name in den_matchers:
            extra = sorted(_matchers(sel) - den_matchers[sel.name])
            if extra:
                return f"{sel.name}{{{', '.join(f'{n}{op}{json.dumps(v)}' for n, op, v in extra)}}}"
    return None


def _matchers(sel) -> set[tuple[str, str, str]]:
    ops = {"MatchOp.Equal": "=", "MatchOp.NotEqual": "!=", "MatchOp.Re": "=~", "MatchOp.NotRe": "!~"}
    return {(m.name, ops.get(str(m.op), "="), m.value) for m in sel.matchers.matchers if m.name not in IGNORED_LABELS}


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


def lint_rules(values: Values) -> list[Problem]:
    """The ratio rule on recording rules and alerts too: an alert on an empty ratio goes NoData instead of
    reading 0 (or firing). Rules have no lint_exceptions: a rule that needs one should be rewritten."""
    if values.rules is None:
        return []
    exprs = [(r.expr, r.src) for r in values.rules.recording]
    exprs += [(a.expr, a.src) for a in values.rules.alerts + values.rules.platform_alerts]
    exprs += [(a.expr, a.src) for d in values.dashboards for a in d.alerts]
    problems = []
    for expr, src in exprs:
        try:
            ast = parse(expr.replace("$job", "job"))
        except ValueError:
            continue  # the catalog check reports it
        problems += [Problem(src.at("expr"), f"lint ratio-zero-guard: {message}") for message in unguarded_ratios(ast)]
    return problems

"""PromQL as Grafana sends it: substitute macros and variables, parse with a real PromQL parser, and check
every selector against the metric catalog. Pure functions; the check stage decides what to do with findings.
"""

from __future__ import annotations

import functools
import re

import promql_parser as pp

from .specs import Catalog, MetricSpec
from .suggest import did_you_mean

# $var, ${var}, ${var:format}, [[var]], [[var:format]] — the variable syntaxes Grafana expands.
VARIABLE = re.compile(r"\$(\w+)|\$\{(\w+)(?::([^}]*))?\}|\[\[(\w+)(?::([^\]]*))?\]\]")
# Grafana's escaping for the regex format (its regexEscape): the characters special in a regex.
REGEX_SPECIAL = re.compile(r"[\\^$*+?.()|{}\[\]/]")
# What Grafana puts in place of its global macros (any valid value parses the same).
MACROS = {
    "__rate_interval": "1m",
    "__interval": "30s",
    "__interval_ms": "30000",
    "__range": "6h",
    "__range_s": "21600",
    "__range_ms": "21600000",
    "__auto": "1m",  # Loki: Grafana's step for range queries, the whole range for instant ones
}
# Grafana's label-values variable query, as this project writes it.
LABEL_VALUES = re.compile(r"^label_values\((?P<selector>.+),\s*(?P<label>\w+)\)$")
COUNTER_FUNCTIONS = {"rate", "irate", "increase", "resets"}
PRESENCE = "(presence)"  # a context that reads which series exist, never their values
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")
IMPLIED_LABELS = {"job", "instance", "__name__"}


def variable_references(expr: str) -> list[tuple[str, str | None, str]]:
    """(name, format or None, text as written) of every variable reference, in order."""
    out = []
    for match in VARIABLE.finditer(expr):
        name = match.group(1) or match.group(2) or match.group(4)
        fmt = match.group(3) if match.group(2) else match.group(5)
        out.append((name, fmt, match.group(0)))
    return out


def format_value(value: str | list[str], fmt: str | None) -> str:
    """One variable's value as Grafana writes it with a format. A string is used as it is (a constant, an
    interval, a chosen value or a custom All value such as `.*`, which Grafana never escapes); a list is a
    multi-value selection, joined the way the format says (no format: the regex form Prometheus gets)."""
    if isinstance(value, str):
        return value
    if fmt == "pipe":
        return "|".join(value)
    if fmt in ("csv", "raw", "text"):
        return ",".join(value) if fmt != "text" else " + ".join(value)
    if fmt == "glob":
        return value[0] if len(value) == 1 else "{" + ",".join(value) + "}"
    if fmt == "json":
        return "[" + ",".join('"' + v.replace('"', '\\"') + '"' for v in value) + "]"
    if fmt == "singlequote":
        return ",".join("'" + v.replace("'", "\\'") + "'" for v in value)
    if fmt == "doublequote":
        return ",".join('"' + v.replace('"', '\\"') + '"' for v in value)
    escaped = [REGEX_SPECIAL.sub(lambda m: "\\" + m.group(0), v) for v in value]  # regex, and no format
    return escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"


def substitute(expr: str, values: dict[str, str | list[str]]) -> tuple[str, list[str]]:
    """Expand variables as Grafana would: $var, ${var}, ${var:regex}, ${var:pipe}, ${var:csv}, [[var]], ...
    Returns (expr, names of undefined variables)."""
    missing = []

    def replace(match):
        name = match.group(1) or match.group(2) or match.group(4)
        fmt = match.group(3) if match.group(2) else match.group(5)
        if name in values:  # a caller's own value wins: the live check passes Grafana's computed intervals
            return format_value(values[name], fmt)
        if name in MACROS:
            return MACROS[name]
        missing.append(name)
        return match.group(0)

    return VARIABLE.sub(replace, expr), missing


# Limits checked before the parser sees a query: very long or deeply nested PromQL made promql-parser take
# seconds, overflow Python's recursion in the walk below, or crash. Real queries here are far inside them.
MAX_LENGTH = 4096  # characters
MAX_NESTING = 20  # brackets of any kind, ( [ {, inside each other
MAX_OPERATORS = 100  # binary and unary operators: each one nests the syntax tree one level deeper
OPERATOR = re.compile(r"==|!=|>=|<=|[-+*/%^<>]|\b(?:and|or|unless)\b")


def limits_problem(expr: str) -> str | None:
    """Why a query is too large to parse, or None. Quoted text is skipped, so a long regex is no operator."""
    if len(expr) > MAX_LENGTH:
        return f"query is {len(expr):,} characters long; at most {MAX_LENGTH:,}"
    # Counted over the whole text, quotes included, these are upper bounds: under both limits (every real
    # query) the character walk below is not needed, and a 1,000-service build has ~27,000 queries.
    if sum(map(expr.count, "([{")) <= MAX_NESTING and len(OPERATOR.findall(expr)) <= MAX_OPERATORS:
        return None
    depth = deepest = operators = 0
    outside = []
    i = 0
    while i < len(expr):
        c = expr[i]
        if c in "\"'`":
            end = i + 1
            while end < len(expr) and expr[end] != c:
                end += 2 if expr[end] == "\\" and c != "`" else 1
            i = end + 1
            outside.append(" ")
            continue
        depth += c in "([{"
        depth -= c in ")]}"
        deepest = max(deepest, depth)
        outside.append(c)
        i += 1
    if deepest > MAX_NESTING:
        return f"query nests brackets {deepest} deep; at most {MAX_NESTING}"
    operators = len(OPERATOR.findall("".join(outside)))
    if operators > MAX_OPERATORS:
        return f"query has {operators} operators; at most {MAX_OPERATORS}"
    return None


def parse(expr: str):
    """Parse PromQL; raise ValueError with the parser's message (or the limit the query is past)."""
    ast, error = _parse(expr)
    if error:
        raise ValueError(error)
    return ast


def forget() -> None:
    """Let go of the parsed queries (a large build's next batch of services asks mostly its own)."""
    _parse.cache_clear()


@functools.lru_cache(maxsize=1 << 16)  # a 1,000-service build has ~27,000 distinct queries, each asked 2-3 times
def _parse(expr: str):
    """(ast, None) or (None, message), once per distinct query: the static check and the list of queries
    handed to promtool both need to know whether a query parses. Syntax trees are only ever read."""
    problem = limits_problem(expr)
    if problem:
        return None, problem
    try:
        return pp.parse(expr), None
    except ValueError as err:
        return None, _excerpt(str(err).strip(), 300)


def _excerpt(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def re2_problem(pattern: str) -> str | None:
    """Why Prometheus (Go's RE2 syntax, as of the Prometheus this project deploys) would refuse a regex that
    promql-parser (Rust's regex crate) accepts, or None: checked here so the build catches it without
    promtool. Lookaround, backreferences, atomic groups and possessive quantifiers are not RE2 either."""
    i, in_class = 0, False
    while i < len(pattern):
        c, rest = pattern[i], pattern[i + 1 :]
        if c == "\\":
            nxt = rest[:1]
            if nxt.isdigit() and nxt != "0" or nxt == "k":
                return f"backreference \\{nxt} is not supported by Prometheus's regex engine (RE2)"
            if nxt in ("<", ">", "Z"):
                return f"\\{nxt} is not supported by Prometheus's regex engine (RE2)"
            i += 2
            continue
        if in_class:
            if c == "]":
                in_class = False
            elif rest[:1] == c and c in "&~-" and pattern[i - 1 : i] != "[":
                return f"class set operation {c}{c} is not supported by Prometheus's regex engine (RE2)"
            elif c == "[" and rest[:1] != ":":
                return "a class nested in a class is not supported by Prometheus's regex engine (RE2)"
            i += 1
            continue
        if c == "[":
            in_class = True
            i += 2 if rest[:1] == "]" or rest[:2] == "^]" else 1
            continue
        if c == "(" and rest[:1] == "?":
            group = rest[1:]
            if group[:1] in ("=", "!") or group[:2] in ("<=", "<!"):
                return f"lookaround (?{_excerpt(group, 3)} is not supported by Prometheus's regex engine (RE2)"
            if group[:1] in (">", "(", "R", "|") or group[:1].isdigit():
                return f"(?{group[:1]} is not supported by Prometheus's regex engine (RE2)"
            if group[:1] == "<":
                return (
                    "named group (?<name>...) is not supported by Prometheus's regex engine (RE2): write (?P<name>...)"
                )
            flags = re.match(r"[a-zA-Z-]*", group).group(0)
            if group[len(flags) : len(flags) + 1] in (")", ":") and set(flags) - set("imsU-"):
                return f"flag (?{flags}) is not supported by Prometheus's regex engine (RE2): only i, m, s and U"
        if c in "*+?}" and rest[:1] == "+":
            return f"possessive quantifier {c}+ is not supported by Prometheus's regex engine (RE2)"
        i += 1
    return None


# --- the one walker over parsed expressions ---------------------------------------------------------
# Node type -> its sub-expressions in order (dispatch on the exact type: the parser's classes are final).
_CHILDREN = {
    pp.VectorSelector: lambda node: (),
    pp.NumberLiteral: lambda node: (),
    pp.StringLiteral: lambda node: (),
    pp.MatrixSelector: lambda node: (node.vector_selector,),
    pp.BinaryExpr: lambda node: (node.lhs, node.rhs),
    pp.Call: lambda node: tuple(node.args),
    pp.AggregateExpr: lambda node: (node.expr,) if node.param is None else (node.expr, node.param),
    pp.ParenExpr: lambda node: (node.expr,),
    pp.UnaryExpr: lambda node: (node.expr,),
    pp.SubqueryExpr: lambda node: (node.expr,),
}


def children(node) -> tuple:
    """The sub-expressions of a parsed node, in order."""
    of = _CHILDREN.get(type(node))
    if of is not None:
        return of(node)
    inner = getattr(node, "expr", None)
    return (inner,) if inner is not None else ()


def walk(node):
    """Every node of a parsed expression, depth first, each before its sub-expressions (a stack, not
    recursion: nested generators would pass every node up through each level above it)."""
    stack = [node]
    pop, push, of = stack.pop, stack.extend, _CHILDREN.get  # bound once: the lint walks every query a few times
    while stack:
        node = pop()
        yield node
        known = of(type(node))
        push((known(node) if known is not None else children(node))[::-1])


def selectors(node):
    """Every vector selector in a parsed expression (a range selector's included), in order."""
    return (n for n in walk(node) if isinstance(n, pp.VectorSelector))


# --- the catalog ----------------------------------------------------------------------------------
def resolve_series(name: str, catalog: Catalog) -> tuple[str | None, MetricSpec | None, str]:
    """Series name -> (catalog name, metric, part). part is '', or the histogram suffix."""
    if name in catalog:
        if catalog[name].type == "histogram":
            return None, None, ""  # no series has the bare name of a histogram
        return name, catalog[name], ""
    for suffix in HISTOGRAM_SUFFIXES:
        base = name[: -len(suffix)]
        if name.endswith(suffix) and base in catalog and catalog[base].type == "histogram":
            return base, catalog[base], suffix
    return None, None, ""


def _series_names(catalog: Catalog) -> list[str]:
    names = []
    for name, metric in catalog.items():
        if metric.type == "histogram":
            names.extend(name + s for s in HISTOGRAM_SUFFIXES)
        else:
            names.append(name)
    return names


def series_labels(metric: MetricSpec, part: str) -> set[str]:
    if metric.recorded:  # a recording rule keeps exactly the labels it aggregates by
        return set(metric.labels) | {"__name__"}
    labels = set(metric.labels) | IMPLIED_LABELS
    if part == "_bucket":
        labels.add("le")
    return labels


def check_expr(expr: str, catalog: Catalog) -> tuple[list[str], list[str]]:
    """Check an expression whose variables are substituted. Returns (problems, catalog metric names used)."""
    problems, used, _ = analyse(expr, catalog)
    return problems, used


def analyse(expr: str, catalog: Catalog) -> tuple[list[str], list[str], set[str]]:
    """(problems, catalog metric names used, labels the result carries; '*' when unknown)."""
    try:
        ast = parse(expr)
    except ValueError as err:
        return [f"invalid PromQL: {err}"], [], set()
    problems: list[str] = []
    used: list = []
    labels = _walk(ast, None, catalog, problems, used)
    return problems, sorted({base for base, _ in used}), labels


def selector_name(vs) -> str | None:
    if vs.name:
        return vs.name
    for m in vs.matchers.matchers:
        if m.name == "__name__" and str(m.op) == "MatchOp.Equal":
            return m.value
    return None


def _walk(node, function: str | None, catalog: Catalog, problems: list[str], used: list) -> set[str]:
    """Analyse node in the context of the function it is an argument of; return the label names its
    selectors can carry (for by/without checks)."""
    if isinstance(node, pp.MatrixSelector):
        node = node.vector_selector
    if isinstance(node, pp.VectorSelector):
        return _check_selector(node, function, catalog, problems, used)
    if isinstance(node, pp.Call):
        return _call(node, function, catalog, problems, used)
    if isinstance(node, pp.AggregateExpr):
        return _aggregate(node, function, catalog, problems, used)
    if isinstance(node, pp.BinaryExpr):
        # the right side of `unless` / `and` only filters by which label sets exist
        right = PRESENCE if str(node.op) in ("unless", "and") and function is None else function
        return _walk(node.lhs, function, catalog, problems, used) | _walk(node.rhs, right, catalog, problems, used)
    labels: set[str] = set()
    for child in children(node):  # ParenExpr, UnaryExpr, SubqueryExpr: one inner expression
        labels |= _walk(child, function, catalog, problems, used)
    return labels


def _call(node, function: str | None, catalog: Catalog, problems: list[str], used: list) -> set[str]:
    name = node.func.name
    labels: set[str] = set()
    inner = name if name in COUNTER_FUNCTIONS else function
    for i, arg in enumerate(node.args):
        start = len(used)
        labels |= _walk(arg, inner, catalog, problems, used)
        if name == "histogram_quantile" and i == 1:
            for base, part in used[start:]:
                if part != "_bucket" and "le" not in catalog[base].labels:
                    problems.append(f"histogram_quantile() needs _bucket series of a histogram, got {base}{part}")
    if name == "histogram_quantile":
        labels.discard("le")
    return labels


def _aggregate(node, function: str | None, catalog: Catalog, problems: list[str], used: list) -> set[str]:
    # count() and group() read which series exist, not their values: a raw counter is fine there
    inner = PRESENCE if str(node.op) in ("count", "group") and function is None else function
    labels = _walk(node.expr, inner, catalog, problems, used)
    if node.param is not None:
        _walk(node.param, None, catalog, problems, used)
    modifier = node.modifier
    if modifier is not None and labels is not None and "*" not in labels:
        unknown = [lbl for lbl in modifier.labels if lbl not in labels]
        for lbl in unknown:
            problems.append(
                f"label '{lbl}' in by/without is not a label of the metrics aggregated{did_you_mean(lbl, labels)}"
            )
    if modifier is not None and str(modifier.type).endswith("By"):
        return set(modifier.labels) | {"*"} if labels and "*" in labels else set(modifier.labels)
    return labels


def _check_selector(vs, function, catalog, problems, used) -> set[str]:
    name = selector_name(vs)
    if name is None:
        return {"*"}  # {__name__=~"..."}: a meta query over many metrics; nothing to check against
    base, metric, part = resolve_series(name, catalog)
    if metric is None:
        if name in catalog and catalog[name].type == "histogram":
            problems.append(f"'{name}' is a histogram: query {name}_bucket, {name}_sum or {name}_count")
        else:
            problems.append(
                f"unknown metric '{name}': not in values/metrics.yaml{did_you_mean(name, _series_names(catalog))}"
            )
        return {"*"}
    used.append((base, part))
    labels = series_labels(metric, part)
    for m in vs.matchers.matchers:
        if str(m.op) in ("MatchOp.Re", "MatchOp.NotRe") and re2_problem(m.value):
            problems.append(f"label '{m.name}': {re2_problem(m.value)}")
        if m.name not in labels:
            problems.append(f"label '{m.name}' is not a label of {name}{did_you_mean(m.name, labels)}")
    counter_like = metric.type == "counter" or part in ("_bucket", "_sum", "_count")
    if function == PRESENCE:
        pass
    elif function in COUNTER_FUNCTIONS and not counter_like:
        problems.append(f"{function}() on {name}, a {metric.type}: {function} needs a counter")
    elif counter_like and function is None:
        problems.append(f"counter {name} used without rate() or increase(): its raw value only ever climbs")
    return labels

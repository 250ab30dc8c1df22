"""Stage 4, check: everything about the assembled dashboards that must hold before a byte is written.

- each dashboard against the project's own strict schema (schemas/dashboard.schema.json);
- every PromQL expression parsed after Grafana's macro and variable substitution, and every metric, label
  and function checked against the catalog;
- variable queries point at catalog metrics and labels; every variable a query uses is defined;
- uids unique, panel ids unique, no two panels overlapping.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from pathlib import Path

from . import promql
from .assemble import Assembled
from .layout import grids
from .lint import lint_target
from .panels import datasource_type, panels_of, targets_of
from .problems import Problem, Source
from .specs import Catalog
from .suggest import did_you_mean
from .values_schema import jsonschema

SCHEMA_FILE = Path(__file__).resolve().parent.parent / "schemas" / "dashboard.schema.json"
_validator = None


def prepare() -> None:
    """Compile the dashboard schema ahead of the check (jsonschema-rs imported for it): a helper process does
    it while it waits for the schema check's request (dashkit/helper.py)."""
    _dashboard_validator()


def forget() -> None:
    """Let go of what the check keeps of the queries it has seen: a process building a large fleet a batch of
    services at a time calls it between batches, which share little (1,000 services: 107 -> 90 MiB)."""
    _substituted.cache_clear()
    _refused_regex.cache_clear()
    promql.forget()


def _dashboard_validator():
    global _validator
    if _validator is None:
        _validator = jsonschema().Draft7Validator(json.loads(SCHEMA_FILE.read_text(encoding="utf-8")))
    return _validator


def check(dashboards: list[Assembled], catalog: Catalog) -> tuple[dict[str, list[str]], list[Problem]]:
    """Returns (metric name -> the panels that show it, as 'Dashboard › Panel', problems)."""
    usages, problems = check_each(dashboards, catalog)
    return merge_usage(usages), problems


def check_each(
    dashboards: list[Assembled], catalog: Catalog, schema_errors: Callable[[], list | None] | None = None
) -> tuple[list[dict[str, list[str]]], list[Problem]]:
    """check, with each dashboard's usage on its own (what a build cache keeps per service). schema_errors:
    each dashboard's schema errors found elsewhere (a helper process's, dashkit/helper.py), or None where
    they are found here."""
    found: list[tuple[list[Problem], list[Problem]]] = []  # per dashboard: before and after its schema's
    usages: list[dict[str, list[str]]] = []
    uids: dict[str, Assembled] = {}
    memo: dict = {}
    for dash in dashboards:
        uid = dash.json.get("uid", "")
        before = []
        if uid in uids:
            before.append(Problem(dash.src.at(), f"dashboard uid '{uid}' is also made by {uids[uid].src.file}"))
        uids[uid] = dash
        usages.append({})
        found.append((before, _grid(dash) + _queries(dash, catalog, usages[-1], memo)))
    errors = schema_errors() if schema_errors is not None else None
    if errors is None or len(errors) != len(dashboards):
        errors = [dashboard_schema_errors(dash.json) for dash in dashboards]
    problems: list[Problem] = []
    for dash, (before, after), errs in zip(dashboards, found, errors, strict=True):
        problems += before + _schema(dash, errs) + after
    return usages, problems


def dashboard_schema_errors(dashboard: dict) -> list[tuple[list, str]]:
    """(the path to the value, the message) of each way a dashboard breaks the schema: plain data, so a helper
    process can find them."""
    return [_worded(err) for err in _dashboard_validator().iter_errors(dashboard)]


def _worded(err) -> tuple[list, str]:
    """One schema error as (path, message). A value that matches none of a oneOf's or anyOf's choices (a panel
    of no known shape) is told by its closest choice's first error, found deeper, rather than by the
    validator's words, which quote the whole value."""
    path = list(err.instance_path)
    choices = getattr(err.kind, "context", None) if type(err.kind).__name__ in ("OneOfNotValid", "AnyOf") else None
    if not choices or not all(choices):
        return path, err.message
    closest = min(choices, key=lambda errors: (len(errors), -max(len(e.instance_path) for e in errors)))
    deeper = _worded(closest[0])
    return deeper[0] if len(deeper[0]) > len(path) else path, f"{deeper[1]} (the closest of the shapes it may take)"


def merge_usage(usages: list[dict[str, list[str]]]) -> dict[str, list[str]]:
    """Dashboards' usages in their order as one: each panel once per metric, in the order first seen; by metric."""
    merged: dict[str, dict[str, None]] = {}  # dicts as ordered sets: a standard metric is on every service
    for usage in usages:
        for name, panels in usage.items():
            merged.setdefault(name, {}).update(dict.fromkeys(panels))
    return {name: list(merged[name]) for name in sorted(merged)}


def _schema(dash: Assembled, errors: list[tuple[list, str]]) -> list[Problem]:
    problems = []
    top = dash.json.get("panels", [])
    for path, message in errors:
        src, rest = dash.src, path
        if len(path) >= 2 and path[0] == "panels":
            panel = top[path[1]]
            rest = path[2:]
            if len(rest) >= 2 and rest[0] == "panels":
                panel = panel["panels"][rest[1]]
                rest = rest[2:]
            src = dash.panel_source(panel)
        problems.append(Problem(src.at(), f"generated {dash.path}: {'.'.join(map(str, rest)) or 'panel'}: {message}"))
    return problems


def _grid(dash: Assembled) -> list[Problem]:
    problems = []
    for grid in grids(dash.json):
        placed: list[tuple[dict, int, int, int, int]] = []  # panel, left, right, top, bottom
        for panel in grid:
            pos = panel.get("gridPos")
            if not pos:
                continue
            left, top = pos["x"], pos["y"]
            right, bottom = left + pos["w"], top + pos["h"]
            if right > 24:
                problems.append(
                    Problem(
                        dash.panel_source(panel).at("width"),
                        f"panel is {pos['w']} wide at x={pos['x']}: past the 24-column grid",
                    )
                )
            # layout.overlaps, unrolled: every pair of a dashboard's panels is compared (~650,000 pairs
            # in a 1,000-service build), and a call with eight dict lookups a pair was most of the check.
            for other, o_left, o_right, o_top, o_bottom in placed:
                if left < o_right and o_left < right and top < o_bottom and o_top < bottom:
                    problems.append(
                        Problem(
                            dash.panel_source(panel).at(),
                            f"panel '{panel.get('title')}' overlaps panel '{other.get('title')}'",
                        )
                    )
            placed.append((panel, left, right, top, bottom))
    return problems


def variable_values(dash: Assembled | dict) -> dict[str, str]:
    """A value per defined variable, as Grafana would substitute it for a static check of a query."""
    doc = dash.json if isinstance(dash, Assembled) else dash
    values = {}
    for var in doc.get("templating", {}).get("list", []):
        current = var.get("current", {}).get("value")
        if var["type"] == "constant" or var["type"] == "interval":
            values[var["name"]] = current
        else:
            values[var["name"]] = ".*"  # multi-value and All become a regex alternation
    return values


def _queries(dash: Assembled, catalog: Catalog, usage: dict, memo: dict) -> list[Problem]:
    problems = []
    values = _static_values(dash)
    values_key = json.dumps(values, sort_keys=True)
    variables = dash.json.get("templating", {}).get("list", [])
    for var in variables:
        if var.get("type") != "query":
            continue
        found = _label_values_problems(var["query"], catalog)
        problems.extend(Problem(dash.variable_where(var["name"]), f"variable '{var['name']}': {msg}") for msg in found)
    multi = {var["name"] for var in variables if var.get("multi")}
    for panel in panels_of(dash.json):
        if datasource_type(panel) != "prometheus":
            problems.extend(_unformatted_multi_values(dash, panel, multi))
            continue
        for i, target in targets_of(panel):
            found = _target(dash, panel, target, values, values_key, catalog, usage, memo)
            if found:  # located only when there is something to say: most targets are clean
                where = dash.target_where(panel, i)
                problems += [Problem(where, message) for message in found]
    return problems


def _static_values(dash: Assembled) -> dict[str, str]:
    """variable_values, with one placeholder for the dashboard's own job: the analysis does not depend on
    which job, so the shared rows of every service dashboard are the same expressions, analysed once (memo)
    instead of once per service."""
    values = variable_values(dash)
    values.update({name: "job" for name, value in values.items() if value == dash.job and dash.job})
    return values


@functools.lru_cache(maxsize=1 << 16)
def _substituted(written: str, values_key: str) -> tuple[str, tuple[str, ...]]:
    """promql.substitute under a dashboard's static values (values_key: them as JSON), once per distinct
    pair: the shared rows of every service dashboard are one text under one set of values, and both the
    static check and the queries handed to promtool ask (~70,000 asks, a few thousand distinct)."""
    expr, missing = promql.substitute(written, json.loads(values_key))
    return expr, tuple(missing)


def _target(
    dash: Assembled,
    panel: dict,
    target: dict,
    values: dict,
    values_key: str,
    catalog: Catalog,
    usage: dict,
    memo: dict,
) -> list[str]:
    """One Prometheus query: variables defined, PromQL against the catalog, exemplars, lint; its metrics
    noted in usage. Returns what is wrong with it."""
    written = target.get("expr", "")
    expr, missing = _substituted(written, values_key)
    if missing:
        return [f"variable '${name}' is used but not defined{did_you_mean(name, values)}" for name in missing]
    if (written, expr) not in memo:
        found, used = promql.check_expr(expr, catalog)
        memo[(written, expr)] = (found, used, [] if found else lint_target(written, promql.parse(expr)))
    found, used, findings = memo[(written, expr)]
    problems = list(found)
    if not found and target.get("exemplar") and not _reads_raw_buckets(expr):
        problems.append(
            "exemplar: true on a query without raw _bucket series: recorded series keep no exemplars, so none would show"
        )
    if not found:
        excused = dash.panel_exceptions.get(panel.get("id"), {})
        problems += [
            f"lint {rule}: {message} (excuse it under lint_exceptions with a reason)"
            for rule, message in findings
            if rule not in excused
        ]
    entry = f"{dash.json['title']} › {panel['title']}"
    for name in used:
        shown = usage.setdefault(name, [])
        if entry not in shown:
            shown.append(entry)
    return problems


def promtool_queries(dashboards: list[Assembled]) -> dict[str, list]:
    """Every Prometheus query of the dashboards (panel targets, variable selectors), substituted as for the
    static check, -> where each was written. Prometheus's own parser (promtool) reads them too: promql-parser
    accepts functions and regex syntax Prometheus does not have."""
    out: dict[str, list] = {}
    for dash in dashboards:
        values_key = json.dumps(_static_values(dash), sort_keys=True)
        for var in dash.json.get("templating", {}).get("list", []):
            match = promql.LABEL_VALUES.match(var.get("query") or "") if var.get("type") == "query" else None
            if match and var["name"] in dash.variable_src and not promql._parse(match["selector"])[1]:
                out.setdefault(match["selector"], []).append(dash.variable_where(var["name"]))
        for panel in panels_of(dash.json):
            if datasource_type(panel) != "prometheus":
                continue
            for i, target in targets_of(panel):
                expr, missing = _substituted(target.get("expr", ""), values_key)
                if missing or promql._parse(expr)[1] or _refused_regex(expr):
                    continue  # the static check reports it; promtool would only say it again
                out.setdefault(expr, []).append(dash.target_where(panel, i))
    return out


REGEX_MATCHER = re.compile(r'[=!]~\s*"((?:[^"\\]|\\.)*)"')


@functools.lru_cache(maxsize=1 << 16)  # asked once per target; a few thousand distinct queries
def _refused_regex(expr: str) -> bool:
    """A regex matcher the static check refuses already (not RE2): promtool would only say it again."""
    return any(promql.re2_problem(m.group(1).replace("\\\\", "\\")) for m in REGEX_MATCHER.finditer(expr))


# Where each non-Prometheus target keeps its query, and the language named in messages.
QUERY_KEYS = {"loki": ("expr", "LogQL"), "tempo": ("query", "TraceQL")}


def _unformatted_multi_values(dash: Assembled, panel: dict, multi: set[str]) -> list[Problem]:
    """Outside Prometheus, Grafana's default format for a multi-value variable is the datasource's choice:
    Tempo's service map takes it as a glob, {a,b}, which as a regex matches nothing (All included). A
    multi-value variable there must say its format."""
    kind = datasource_type(panel)
    if kind not in QUERY_KEYS:
        return []
    problems = []
    for i, target in targets_of(panel):
        key, language = QUERY_KEYS[kind]
        if target.get("queryType") == "serviceMap":
            key, language = "serviceMapQuery", "Tempo service map"
        where = dash.target_where(panel, i)
        for name, fmt, written in promql.variable_references(target.get(key) or ""):
            if name in multi and fmt is None:
                problems.append(
                    Problem(
                        where,
                        f"multi-value variable {written} has no format in a {language} query, where Grafana may expand "
                        f"several values as {{a,b}} (no regex matches that): write ${{{name}:regex}} or ${{{name}:pipe}}",
                    )
                )
    return problems


def _reads_raw_buckets(expr: str) -> bool:
    return any((s.name or "").endswith("_bucket") for s in promql.selectors(promql.parse(expr)))


def _label_values_problems(query: str, catalog: Catalog) -> list[str]:
    match = promql.LABEL_VALUES.match(query)
    if not match:
        return [f"query '{query}' is not label_values(selector, label)"]
    try:
        ast = promql.parse(match["selector"])
    except ValueError as err:
        return [f"invalid selector in '{query}': {err}"]
    name = getattr(ast, "name", None)
    base, metric, part = promql.resolve_series(name or "", catalog)
    if metric is None:
        return [f"metric '{name}' is not in values/metrics.yaml{did_you_mean(name, catalog)}"]
    labels = promql.series_labels(metric, part)
    if match["label"] not in labels:
        return [f"'{match['label']}' is not a label of {name}{did_you_mean(match['label'], labels)}"]
    return []


def through_recording_rules(usage: dict[str, list[str]], catalog: Catalog) -> dict[str, list[str]]:
    """A panel of a recorded series shows the raw metrics the rule is computed from."""
    out: dict[str, dict[str, None]] = {}  # dicts as ordered sets: `up` is on a panel of every service
    for name, panels in usage.items():
        for metric in catalog[name].sources if name in catalog else [name]:
            out.setdefault(metric, {}).update(dict.fromkeys(panels))
    return {name: list(out[name]) for name in sorted(out)}


def unused_metrics(catalog: Catalog, src: Source, usage: dict[str, list[str]]) -> list[Problem]:
    """The catalog and the panels must agree: a catalog metric on no panel is a leftover or a missing panel."""
    return [
        Problem(src.at("metrics", name), f"metric '{name}' is in the catalog but on no panel")
        for name in catalog
        if name not in usage
    ]

"""Run every query of every dashboard, every variable query and every rule expression against a real
Prometheus, as Grafana would, and say which return nothing, fail, or land outside their unit's range."""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from .. import promql
from ..panels import panels_with_state
from ..specs import Catalog
from . import labels
from .synth import Window

DEFAULT_RANGE = 6 * 3600  # the dashboards' default time range, now-6h .. now
PANEL_PIXELS = 1000  # Grafana's step for a panel about 1,000 px wide
# Grafana's interval rounding (rangeutil.roundInterval): raw interval up to `limit` seconds -> `value`.
ROUNDING = (
    (1.5, 1),
    (3.5, 2),
    (7.5, 5),
    (12.5, 10),
    (17.5, 15),
    (25, 20),
    (45, 30),
    (90, 60),
    (210, 120),
    (450, 300),
    (900, 600),
    (1200, 900),
    (2700, 1200),
    (5400, 1800),
    (math.inf, 3600),
)
RANGES = {"percentunit": (0.0, 1.0), "percent": (0.0, 100.0)}
NON_NEGATIVE = {"s", "ms", "bytes", "reqps", "ops", "short", "currencyUSD", "none"}


def grafana_intervals(
    range_seconds: int = DEFAULT_RANGE, scrape: int = 15, max_points: int | None = None
) -> dict[str, str]:
    """$__interval and friends as Grafana computes them for this range, panel width (or the panel's own
    maxDataPoints, when lower) and scrape interval."""
    raw = range_seconds / min(PANEL_PIXELS, max_points or PANEL_PIXELS)
    nice = next(value for limit, value in ROUNDING if raw <= limit)
    interval = max(nice, scrape)
    rate_interval = max(interval + scrape, 4 * scrape)
    return {
        "__interval": f"{interval}s",
        "__interval_ms": str(interval * 1000),
        "__rate_interval": f"{rate_interval}s",
        "__range": f"{range_seconds}s",
        "__range_s": str(range_seconds),
        "__range_ms": str(range_seconds * 1000),
        "step": interval,
    }


@dataclass
class Finding:
    where: str
    expr: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}\n    {self.expr}"


@dataclass(frozen=True)
class Outcome:
    """What one query answered, for a per-panel table (tools/verify.py): kind is panel, variable or rule;
    status is data, empty, error, not run (a query budget spent) or not checked (LogQL/TraceQL)."""

    kind: str
    dashboard: str
    uid: str
    panel: str
    panel_id: int | None
    ref: str
    expr: str
    status: str
    message: str = ""


def panel_outcome(dash: dict, panel: dict, ref: str, expr: str, status: str, message: str = "") -> Outcome:
    return Outcome(
        "panel", dash["title"], dash.get("uid", ""), panel["title"], panel.get("id"), ref, expr, status, message
    )


def answer_status(answer: dict) -> tuple[str, str]:
    """(status, message) of one API answer: data, empty, error, or not run (the client's budget refused it)."""
    if answer.get("status") != "success":
        return ("not run" if answer.get("errorType") == "budget" else "error"), str(answer.get("error", answer))
    result = answer.get("data")
    result = result.get("result") if isinstance(result, dict) else result
    return ("data" if result else "empty"), ""


@dataclass
class Report:
    scenario: str = "busy"
    targets: int = 0
    variables: int = 0
    rules: int = 0
    selections: int = 0  # extra runs of a target with a variable at All, two values, one value
    expected_empty: list[str] = field(default_factory=list)  # "where: reason" for panels empty by declaration
    zeros: int = 0  # targets that had to show 0 and did
    not_run: dict[str, int] = field(default_factory=dict)  # LogQL / TraceQL: no server here
    findings: list[Finding] = field(default_factory=list)
    query_ms: dict[str, float] = field(default_factory=dict)  # dashboard -> Prometheus time for one refresh
    slowest: list[tuple[float, str, str]] = field(default_factory=list)  # (ms, where, expr)
    samples: dict[str, int] = field(default_factory=dict)  # dashboard -> samples touched
    alerts: list = field(default_factory=list)  # alert states, filled by dashkit.live.alerts
    # (dashboard uid, panel id) -> (title, threshold levels, values the panel shows at the end of the data)
    shown: dict = field(default_factory=dict)
    outcomes: list[Outcome] = field(default_factory=list)  # every query's answer, in the order run

    @property
    def ok(self) -> bool:
        return not self.findings


ALL = "$__all"
PROMETHEUS_REGEX_SPECIAL = re.compile(r"[$^*{}\[\]'+?.()|]")  # Grafana's prometheusSpecialRegexEscape


def variable_options(
    dash: dict, prom, window: Window, report: Report, range_seconds: int = DEFAULT_RANGE
) -> dict[str, list[str]]:
    """Every value a person can pick, per variable: fixed options, or what the label values API returns."""
    options = {}
    for var in dash["templating"]["list"]:
        name, kind = var["name"], var["type"]
        if kind == "constant":
            options[name] = [var["current"]["value"]]
        elif kind in ("interval", "custom"):
            options[name] = [o["value"] for o in var.get("options", [])] or var["query"].split(",")
        elif kind == "query":
            report.variables += 1
            match = promql.LABEL_VALUES.match(var["query"])
            where = f"{dash['title']} › variable ${name}"
            if not match:
                report.findings.append(Finding(where, var["query"], "not a label_values() query"))
                options[name] = []
                continue
            answer = prom.label_values(match["label"], match["selector"], window.end - range_seconds, window.end)
            found = sorted(answer.get("data") or [])
            if answer.get("status") != "success":
                report.findings.append(Finding(where, var["query"], f"query failed ({answer.get('error')})"))
            status, message = answer_status(answer)
            report.outcomes.append(
                Outcome(
                    "variable", dash["title"], dash.get("uid", ""), f"${name}", None, "", var["query"], status, message
                )
            )
            options[name] = found
    return options


def selections(var: dict, options: list[str]) -> list[tuple[str, str | list[str]]]:
    """(name, value) of the selections a person makes: the default first, then All, two values, one value.
    A list is a multi-value selection (formatted per datasource); a string is used as it is."""
    multi = bool(var.get("multi") or var.get("includeAll"))
    current = var.get("current", {}).get("value")
    every = list(options)
    all_value: str | list[str] = var["allValue"] if var.get("allValue") else every
    if current in (ALL, [ALL]):
        default: str | list[str] = all_value
    elif isinstance(current, list):
        default = current
    elif current is None:
        default = every[:1] if multi else (every[0] if every else "")
    else:
        default = [current] if multi else current
    out = [("default", default)]
    if not multi:
        out += [("one value", o) for o in every[:1] if o != default]
        return out
    if var.get("includeAll") and all_value != default:
        out.append(("All", all_value))
    if len(every) >= 2:
        out.append(("two values", every[:2]))
    if every:
        out.append(("one value", every[:1]))
    return out


def interpolate(expr: str, values: dict, datasource: str) -> tuple[str, list[str]]:
    """Variables as Grafana writes them into a query: with no explicit format a multi-value becomes a regex
    for Prometheus, and a glob ({a,b}) where the datasource calls Grafana's generic replace (Tempo, Loki)."""

    def unformatted(match):
        name = match.group(1) or match.group(2) or match.group(4)
        fmt = match.group(3) if match.group(2) else match.group(5)
        value = values.get(name)
        if fmt or not isinstance(value, list):
            return match.group(0)
        if datasource != "prometheus":
            return "${" + name + ":glob}"
        # Grafana's Prometheus datasource escapes each value for a regex inside a PromQL string literal,
        # so the backslash itself is doubled: gemini-2.5 -> gemini-2\\.5
        escaped = [
            PROMETHEUS_REGEX_SPECIAL.sub(lambda m: "\\\\" + m.group(0), v.replace("\\", "\\\\\\\\")) for v in value
        ]
        return escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"

    return promql.substitute(promql.VARIABLE.sub(unformatted, expr), values)


def matcher_problems(selector_text: str, chosen: list[str]) -> str | None:
    """For a query that cannot run here (Tempo's service map filter): does each regex matcher still match
    one of the values picked? Returns the problem, or None."""
    try:
        node = promql.parse(selector_text)
    except ValueError as err:
        return f"the filter does not parse once interpolated: {err}"
    for matcher in getattr(getattr(node, "matchers", None), "matchers", []):
        if str(matcher.op).endswith("=~") or "Re" in str(matcher.op):
            try:
                pattern = re.compile(matcher.value)
            except re.error as err:
                return f"{matcher.name}=~{matcher.value!r} is not a valid regex: {err}"
            if not any(pattern.fullmatch(v) for v in chosen):
                return f"{matcher.name}=~{matcher.value!r} matches none of the picked values {', '.join(chosen)}"
    return None


def run(
    dashboards: list[dict],
    rules,
    catalog: Catalog,
    prom,
    window: Window,
    stats: bool = True,
    expect: dict | None = None,
    scenario=None,
    range_seconds: int = DEFAULT_RANGE,
    vary: bool = True,
    pool_map: Callable | None = None,
    probe_labels: bool = True,
) -> Report:
    """Every target of every dashboard in one scenario. expect: dashboard uid -> panel id -> scenario ->
    expectation (data, zero or {empty: reason}), as written in values. range_seconds: the time range ending
    at window.end; vary: also run each target with its variables at All, two values, one value; pool_map:
    map(fn, items) -> results in order, e.g. a thread pool's (a remote server is asked several at a time);
    probe_labels: ask which labels each metric's series carry (count() queries beyond the targets' own)."""
    report = Report(scenario.name if scenario is not None else "busy")
    # fallbacks once per run: every query of the minimal scenario asks
    state = _Run(
        report,
        prom,
        window,
        catalog,
        scenario,
        fallbacks_of(rules),
        stats,
        expect or {},
        labels.LabelProbe(prom, window.end, catalog) if probe_labels else _NO_PROBE,
        range_seconds,
        vary,
        pool_map or _in_turn,
    )
    for dash in dashboards:
        _run_dashboard(state, dash)
    expressions = rule_expressions(rules)
    answers = state.map(lambda rule: prom.query(rule[0], window.end), expressions)
    for (text, where, quiet_when_empty), answer in zip(expressions, answers, strict=True):
        report.rules += 1
        _judge_rule(answer, where, text, report, must_answer=scenario is None and not quiet_when_empty)
        report.findings += [Finding(where, text, gap) for gap in state.probe.gaps(text)]
        report.outcomes.append(Outcome("rule", "", "", where, None, "", text, *answer_status(answer)))
    report.slowest.sort(reverse=True)
    return report


def _in_turn(fn: Callable, items) -> list:
    return [fn(item) for item in items]


class _NoProbe:
    """For a caller that reads label drift from the server itself (tools/verify.py) and counts its queries."""

    def gaps(self, expr: str) -> list[str]:
        return []


_NO_PROBE = _NoProbe()


@dataclass
class _Run:
    """What every query of one run shares."""

    report: Report
    prom: object
    window: Window
    catalog: Catalog
    scenario: object
    fallbacks: set[str]
    stats: bool
    expect: dict
    probe: labels.LabelProbe  # which metrics' series carry which labels, asked once each
    range_seconds: int
    vary: bool
    map: Callable

    @property
    def start(self) -> int:
        return self.window.end - self.range_seconds


@dataclass
class _Board:
    """One dashboard as a person opens it: its variables, the selections of each, the default selection."""

    json: dict
    variables: dict
    picks: dict
    defaults: dict


def _run_dashboard(state: _Run, dash: dict) -> None:
    report = state.report
    options = variable_options(dash, state.prom, state.window, report, state.range_seconds)
    variables = {var["name"]: var for var in dash["templating"]["list"]}
    picks = {name: selections(var, options.get(name, [])) for name, var in variables.items()}
    for name, var in variables.items():
        if (
            var["type"] == "query"
            and not options.get(name)
            and not _empty_ok_for_variable(var, state.scenario, state.catalog, state.fallbacks)
        ):
            report.findings.append(
                Finding(f"{dash['title']} › variable ${name}", var["query"], "matches nothing (no values)")
            )
    board = _Board(dash, variables, picks, {name: choices[0][1] for name, choices in picks.items()})
    queued: list[_Target] = []
    for panel, collapsed in panels_with_state(dash):
        kind = panel.get("datasource", {}).get("type")
        if kind in ("loki", "tempo"):
            _check_filters(dash, panel, variables, picks, board.defaults, kind, report)
            language = "LogQL" if kind == "loki" else "TraceQL/service map"
            report.not_run[language] = report.not_run.get(language, 0) + len(panel.get("targets", []))
            report.outcomes.append(
                panel_outcome(dash, panel, "", "", f"not checked ({'LogQL' if kind == 'loki' else 'TraceQL'})")
            )
            continue
        queued += [_prepare_target(state, board, panel, target, collapsed) for target in panel.get("targets", [])]
    # the queries of a dashboard are independent: asked together (a pool's map), judged in order
    answers = iter(state.map(lambda t: _timed_query(state, t), [t for t in queued if t.expr is not None]))
    spent, touched = 0.0, 0
    for target in queued:
        elapsed, samples = _finish_target(state, board, target, next(answers) if target.expr is not None else None)
        spent += elapsed
        touched += samples
    report.query_ms[dash["title"]] = spent
    report.samples[dash["title"]] = touched


@dataclass
class _Target:
    """One Prometheus target of a panel, interpolated at the default selection and ready to ask."""

    panel: dict
    target: dict
    collapsed: bool
    where: str
    macros: dict
    step: int
    wanted: object
    expr: str | None  # None: it cannot run (an undefined variable)
    early: list[Finding]  # what was found before asking, reported in place when the answer is judged


def _prepare_target(state: _Run, board: _Board, panel: dict, target: dict, collapsed: bool) -> _Target:
    state.report.targets += 1
    dash = board.json
    where = f"{dash['title']} › {panel['title']} [{target['refId']}]"
    macros = grafana_intervals(state.range_seconds, state.window.step, panel.get("maxDataPoints"))
    step = macros.pop("step")
    # a query's own expectation, else the panel's, else what the scenario implies
    declared = state.expect.get(dash.get("uid"), {}).get(panel.get("id"), {})
    own = dict(declared.get("*", {}), **declared.get(target["refId"], {}))
    wanted = _expectation(own, state.scenario, target, state.catalog, board.defaults.get("job"), state.fallbacks)
    expr, missing = interpolate(target["expr"], dict(board.defaults, **macros), "prometheus")
    if missing:
        early = [Finding(where, target["expr"], f"undefined variable(s): {', '.join(missing)}")]
        return _Target(panel, target, collapsed, where, macros, step, wanted, None, early)
    early = [Finding(where, expr, message) for message in promql.check_expr(expr, state.catalog)[0]]
    return _Target(panel, target, collapsed, where, macros, step, wanted, expr, early)


def _timed_query(state: _Run, t: _Target) -> tuple[dict, float]:
    began = time.perf_counter()
    answer = _query(state.prom, t.expr, t.target, state.start, state.window.end, t.step, state.stats)
    return answer, (time.perf_counter() - began) * 1000


def _finish_target(state: _Run, board: _Board, t: _Target, asked: tuple[dict, float] | None) -> tuple[float, int]:
    """Judge one target's answer at the default selection; then run it at the other selections of its
    variables. Returns (time, samples) a refresh spends on it: none in a collapsed row, which is queried
    only when someone opens it."""
    report, dash, panel, target, where = state.report, board.json, t.panel, t.target, t.where
    report.findings += t.early
    if asked is None:
        return 0.0, 0
    answer, wall_ms = asked
    elapsed = _server_ms(answer) if state.stats else wall_ms
    spent = (0.0, 0) if t.collapsed else (elapsed, _samples(answer))
    if not t.collapsed:
        report.slowest.append((elapsed, where, t.expr))
    _judge(answer, panel, where, t.expr, report, t.wanted, state.window.end)
    _remember(report, dash, panel, answer, state.window.end)
    report.findings += [Finding(where, t.expr, gap) for gap in state.probe.gaps(t.expr)]
    grouped = labels.grouping_gap(t.expr, answer)
    if grouped:
        report.findings.append(Finding(where, t.expr, grouped))
    report.outcomes.append(panel_outcome(dash, panel, target["refId"], t.expr, *answer_status(answer)))
    if isinstance(t.wanted, dict) or not state.vary:
        return spent  # empty by declaration: other selections cannot make it show data either
    for name, _fmt, _text in promql.variable_references(target["expr"]):
        for label, value in board.picks.get(name, [])[1:]:
            report.selections += 1
            values = dict(board.defaults, **t.macros, **{name: value})
            varied, _ = interpolate(target["expr"], values, "prometheus")
            answer = _query(state.prom, varied, target, state.start, state.window.end, t.step, False)
            _judge(answer, panel, f"{where} with ${name} = {label}", varied, report, "data", state.window.end)
    return spent


def _remember(report: Report, dash: dict, panel: dict, answer: dict, end: int) -> None:
    """What the panel shows now: the values at the end of the data (a range series that stopped earlier
    would be shown by a stat as its last value, stale)."""
    levels = [
        s.get("value") for s in panel.get("fieldConfig", {}).get("defaults", {}).get("thresholds", {}).get("steps", [])
    ]
    _, _, current, _ = report.shown.get((dash.get("uid"), panel.get("id")), (None, None, [], None))
    for series in (answer.get("data") or {}).get("result", []):
        point = series["values"][-1] if "values" in series else series["value"]
        if int(float(point[0])) == end:
            current.append(float(point[1]))
    # An instant panel with no value shows its noValue text ("No target"), which is the state itself.
    instant_text = (
        panel.get("fieldConfig", {}).get("defaults", {}).get("noValue")
        if all(t.get("instant") for t in panel.get("targets", []))
        else None
    )
    report.shown[(dash.get("uid"), panel.get("id"))] = (
        panel.get("title"),
        [v for v in levels if v is not None],
        current,
        instant_text,
    )


def _query(prom, expr: str, target: dict, start: int, end: int, step: int, stats: bool) -> dict:
    if target.get("instant"):
        return prom.query(expr, end, stats=stats)
    return prom.query_range(expr, start, end, step, stats=stats)


def _expectation(declared: dict, scenario, target: dict, catalog: Catalog, job: str | None, fallbacks: set[str]):
    """'data', 'zero' or {'empty': reason} for one query in this scenario: as declared in values, else what
    the scenario itself implies (a target gone for good, metrics a fresh deployment does not export)."""
    if scenario is None:
        return "data"
    for name in (scenario.name, scenario.like):
        if name in declared:
            return declared[name]
    gone = [e for e in scenario.events if e["kind"] == "absent" and e["service"] == job]
    if any(e.get("minutes", 30) * 60 >= DEFAULT_RANGE for e in gone):
        return {"empty": f"{job} has had no scrape target for the whole time range in this scenario", "implied": True}
    if gone and target.get("instant"):
        return {"empty": f"{job} has no scrape target now in this scenario, and the query shows now", "implied": True}
    if scenario.only_standard:  # declared once for the scenario: panels of metrics not yet exported
        placeholder = {name: "5m" for name, _, _ in promql.variable_references(target["expr"])}
        expr, _ = promql.substitute(target["expr"], placeholder)
        if any(not available(name, scenario, catalog, fallbacks) for name in promql.analyse(expr, catalog)[1]):
            return {"empty": scenario.only_standard, "implied": True}  # may still show a guarded 0
    return "data"


def fallbacks_of(rules) -> set[str]:
    """Recorded series whose rule is `a or b or c`: they exist when any one source does."""
    found = set()
    for rule in rules.recording if rules is not None else []:
        try:
            node = promql.parse(rule["expr"])
        except ValueError:
            continue
        if type(node).__name__ == "BinaryExpr" and str(node.op) == "or":
            found.add(rule["record"])
    return found


def available(name: str, scenario, catalog: Catalog, fallbacks: set[str]) -> bool:
    metric = catalog.get(name)
    if metric is None:
        return True
    if not metric.recorded:
        return scenario.exported(name, metric)
    sources = [available(raw, scenario, catalog, fallbacks) for raw in metric.sources]
    return any(sources) if name in fallbacks else all(sources)


def _is_instant(panel: dict) -> bool:
    return bool(panel.get("targets")) and all(t.get("instant") for t in panel["targets"])


def _empty_ok_for_variable(var: dict, scenario, catalog: Catalog, fallbacks: set[str]) -> bool:
    """A variable over a metric the scenario does not export has no values, rightly."""
    match = promql.LABEL_VALUES.match(var["query"])
    if scenario is None or not match:
        return False
    return any(
        not available(metric, scenario, catalog, fallbacks) for metric in promql.analyse(match["selector"], catalog)[1]
    )


def _check_filters(
    dash: dict, panel: dict, variables: dict, picks: dict, defaults: dict, kind: str, report: Report
) -> None:
    """Loki and Tempo cannot run here; check instead that each selection of a multi-value variable still
    gives a filter that matches what was picked (a glob in a regex matches nothing)."""
    for target in panel.get("targets", []):
        text = target.get("expr") or target.get("serviceMapQuery") or target.get("query") or ""
        for name, _fmt, _written in promql.variable_references(text):
            var = variables.get(name)
            if var is None or not (var.get("multi") or var.get("includeAll")):
                continue
            for label, value in picks.get(name, []):
                chosen = value if isinstance(value, list) else [value]
                report.selections += 1
                expanded, _ = interpolate(text, dict(defaults, **{name: value}), kind)
                selector = expanded.split("|")[0].strip() if kind == "loki" else expanded
                problem = matcher_problems(selector, chosen) if selector.startswith("{") and "=~" in selector else None
                if problem:
                    report.findings.append(
                        Finding(
                            f"{dash['title']} › {panel['title']} [{target.get('refId', 'A')}] with ${name} = {label}",
                            expanded,
                            problem,
                        )
                    )


def rule_expressions(rules) -> list[tuple[str, str, bool]]:
    """Recording rule expressions, and each alert's measured quantity (the comparison would be empty
    whenever the alert is quiet, which is not a fault), with whether empty is normal: an alert whose
    values declare no data its quiet state (`no_data.quiet`: absent(), a failover counter)."""
    if rules is None:
        return []
    out = [(r["expr"], f"recording rule {r['record']}", False) for r in rules.recording]
    out += [(a.expr, f"alert {a.spec.name} ({a.group})", a.spec.no_data_quiet) for a in rules.alerts]
    return out


def _server_ms(answer: dict) -> float:
    timings = (answer.get("data") or {}).get("stats", {}).get("timings", {})
    return 1000 * float(timings.get("evalTotalTime", 0.0))


def _samples(answer: dict) -> int:
    return int((answer.get("data") or {}).get("stats", {}).get("samples", {}).get("totalQueryableSamples", 0))


def _judge(
    answer: dict, panel: dict, where: str, expr: str, report: Report, wanted="data", end: int | None = None
) -> bool:
    """Record what is wrong with one query's answer. Returns whether it showed anything."""
    if answer.get("status") != "success":
        report.findings.append(Finding(where, expr, f"query failed: {answer.get('error', answer)}"))
        return False
    result = answer["data"]["result"]
    if isinstance(wanted, dict):
        if result and not wanted.get("implied"):  # a stale reason hides nothing today, but would hide the next real gap
            report.findings.append(
                Finding(
                    where,
                    expr,
                    f"declared empty in {report.scenario} ({wanted['empty']}) but shows data: drop the declaration",
                )
            )
        else:
            report.expected_empty.append(f"{where}: {wanted['empty']}")
        return bool(result)
    if not result:
        zero = " where a person expects 0" if wanted == "zero" else ""
        report.findings.append(Finding(where, expr, f"empty result: the panel would show No data{zero}"))
        return False
    lasts = [float((series["values"][-1] if "values" in series else series["value"])[1]) for series in result]
    if wanted == "zero":
        if any(v != 0 for v in lasts):
            report.findings.append(Finding(where, expr, f"expected 0, last value {max(lasts, key=abs):g}"))
        else:
            report.zeros += 1
    defaults = panel.get("fieldConfig", {}).get("defaults", {})
    unit = defaults.get("unit", "none")
    low, high = RANGES.get(unit, (0.0 if unit in NON_NEGATIVE else -math.inf, math.inf))
    high = (
        defaults["max"] if defaults.get("max") is not None and defaults["max"] > high else high
    )  # a panel that says it can exceed 1
    if panel.get("type") in ("stat", "gauge", "bargauge"):
        values, what = lasts, "last value"  # what the panel shows
    else:
        values, what = (
            [float(v) for s in result for _, v in s.get("values", [s.get("value", (0, "0"))])],
            "a value",
        )  # every point drawn
    bad = next((v for v in values if math.isnan(v) or not low <= v <= high), None)
    if bad is not None:
        report.findings.append(
            Finding(where, expr, f"{what} {bad:g} is outside the sensible range of unit {unit} [{low:g}, {high:g}]")
        )
    return True


def _judge_rule(answer: dict, where: str, expr: str, report: Report, must_answer: bool) -> None:
    """A rule's measured quantity must never fail. In the busy dataset (every series exists) it must also
    answer; in a scenario, emptiness is judged by the alert evaluation, which knows the scenario."""
    if answer.get("status") != "success":
        report.findings.append(Finding(where, expr, f"query failed: {answer.get('error', answer)}"))
    elif must_answer and not answer["data"]["result"]:
        report.findings.append(Finding(where, expr, "empty result: the rule's query answers nothing"))

"""Run every query of every dashboard, every variable query and every rule expression against a real
Prometheus, as Grafana would, and say which return nothing, fail, or land outside their unit's range."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

from .. import promql
from .synth import Window

DEFAULT_RANGE = 6 * 3600  # the dashboards' default time range, now-6h .. now
PANEL_PIXELS = 1000  # Grafana's step for a panel about 1,000 px wide
# Grafana's interval rounding (rangeutil.roundInterval): raw interval up to `limit` seconds -> `value`.
ROUNDING = ((1.5, 1), (3.5, 2), (7.5, 5), (12.5, 10), (17.5, 15), (25, 20), (45, 30), (90, 60), (210, 120), (450, 300),
            (900, 600), (1200, 900), (2700, 1200), (5400, 1800), (math.inf, 3600))
RANGES = {"percentunit": (0.0, 1.0), "percent": (0.0, 100.0)}
NON_NEGATIVE = {"s", "ms", "bytes", "reqps", "ops", "short", "currencyUSD", "none"}


def grafana_intervals(range_seconds: int = DEFAULT_RANGE, scrape: int = 15, max_points: int | None = None) -> dict[str, str]:
    """$__interval and friends as Grafana computes them for this range, panel width (or the panel's own
    maxDataPoints, when lower) and scrape interval."""
    raw = range_seconds / min(PANEL_PIXELS, max_points or PANEL_PIXELS)
    nice = next(value for limit, value in ROUNDING if raw <= limit)
    interval = max(nice, scrape)
    rate_interval = max(interval + scrape, 4 * scrape)
    return {
        "__interval": f"{interval}s", "__interval_ms": str(interval * 1000), "__rate_interval": f"{rate_interval}s",
        "__range": f"{range_seconds}s", "__range_s": str(range_seconds), "__range_ms": str(range_seconds * 1000),
        "step": interval,
    }


@dataclass
class Finding:
    where: str
    expr: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}\n    {self.expr}"


@dataclass
class Report:
    targets: int = 0
    variables: int = 0
    rules: int = 0
    not_run: dict[str, int] = field(default_factory=dict)  # LogQL / TraceQL: no server here
    findings: list[Finding] = field(default_factory=list)
    query_ms: dict[str, float] = field(default_factory=dict)  # dashboard -> Prometheus time for one refresh
    slowest: list[tuple[float, str, str]] = field(default_factory=list)  # (ms, where, expr)
    samples: dict[str, int] = field(default_factory=dict)  # dashboard -> samples touched

    @property
    def ok(self) -> bool:
        return not self.findings


def variable_values(dash: dict, prom, window: Window, report: Report) -> dict[str, str]:
    """A value per variable that the variable's own query returns (Grafana's label values API)."""
    values = {}
    for var in dash["templating"]["list"]:
        name, kind = var["name"], var["type"]
        if kind in ("constant", "interval"):
            values[name] = var["current"]["value"]
        elif kind == "custom":
            values[name] = var["query"].split(",")[0]
        elif kind == "query":
            report.variables += 1
            match = promql.LABEL_VALUES.match(var["query"])
            where = f"{dash['title']} › variable ${name}"
            if not match:
                report.findings.append(Finding(where, var["query"], "not a label_values() query"))
                continue
            answer = prom.label_values(match["label"], match["selector"], window.end - DEFAULT_RANGE, window.end)
            found = sorted(answer.get("data") or [])
            if answer.get("status") != "success" or not found:
                report.findings.append(Finding(where, var["query"], f"matches nothing ({answer.get('error', 'no values')})"))
                values[name] = "__no_value__"
            else:
                values[name] = found[0]
    return values


def run(dashboards: list[dict], rules, catalog: dict, prom, window: Window, stats: bool = True) -> Report:
    report = Report()
    end, start = window.end, window.end - DEFAULT_RANGE
    for dash in dashboards:
        variables = variable_values(dash, prom, window, report)
        spent, touched = 0.0, 0
        for panel, collapsed in panels_with_state(dash):
            macros = grafana_intervals(DEFAULT_RANGE, window.step, panel.get("maxDataPoints"))
            step = macros.pop("step")
            values = dict(variables, **macros)
            kind = panel.get("datasource", {}).get("type")
            if kind in ("loki", "tempo"):
                language = "LogQL" if kind == "loki" else "TraceQL/service map"
                report.not_run[language] = report.not_run.get(language, 0) + len(panel.get("targets", []))
                continue
            for target in panel.get("targets", []):
                report.targets += 1
                where = f"{dash['title']} › {panel['title']} [{target['refId']}]"
                expr, missing = promql.substitute(target["expr"], values)
                if missing:
                    report.findings.append(Finding(where, target["expr"], f"undefined variable(s): {', '.join(missing)}"))
                    continue
                for message in promql.check_expr(expr, catalog)[0]:
                    report.findings.append(Finding(where, expr, message))
                began = time.perf_counter()
                answer = prom.query(expr, end, stats=stats) if target.get("instant") else prom.query_range(expr, start, end, step, stats=stats)
                elapsed = _server_ms(answer) if stats else (time.perf_counter() - began) * 1000
                if not collapsed:  # a collapsed row's panels are queried only when someone opens it
                    spent += elapsed
                    touched += _samples(answer)
                    report.slowest.append((elapsed, where, expr))
                _judge(answer, panel, where, expr, report)
        report.query_ms[dash["title"]] = spent
        report.samples[dash["title"]] = touched
    for text, where in rule_expressions(rules):
        report.rules += 1
        _judge(prom.query(text, end), {"type": "rule"}, where, text, report)
    report.slowest.sort(reverse=True)
    return report


def panels_with_state(dash: dict):
    """(panel, in a collapsed row) for every panel that is not a row."""
    for panel in dash["panels"]:
        if panel.get("type") == "row":
            for child in panel.get("panels", []):
                yield child, bool(panel.get("collapsed"))
        else:
            yield panel, False


def rule_expressions(rules) -> list[tuple[str, str]]:
    """Recording rule expressions, and each alert's measured quantity (the comparison would be empty
    whenever the alert is quiet, which is not a fault)."""
    if rules is None:
        return []
    out = [(r["expr"], f"recording rule {r['record']}") for r in rules.recording]
    out += [(a.expr, f"alert {a.spec.name} ({a.group})") for a in rules.alerts]
    return out


def _server_ms(answer: dict) -> float:
    timings = (answer.get("data") or {}).get("stats", {}).get("timings", {})
    return 1000 * float(timings.get("evalTotalTime", 0.0))


def _samples(answer: dict) -> int:
    return int((answer.get("data") or {}).get("stats", {}).get("samples", {}).get("totalQueryableSamples", 0))


def _judge(answer: dict, panel: dict, where: str, expr: str, report: Report) -> None:
    if answer.get("status") != "success":
        report.findings.append(Finding(where, expr, f"query failed: {answer.get('error', answer)}"))
        return
    result = answer["data"]["result"]
    if not result:
        report.findings.append(Finding(where, expr, "empty result: the panel would show No data"))
        return
    if panel.get("type") not in ("stat", "gauge"):
        return
    unit = panel.get("fieldConfig", {}).get("defaults", {}).get("unit", "none")
    for series in result:
        point = series["values"][-1] if "values" in series else series["value"]
        value = float(point[1])
        low, high = RANGES.get(unit, (0.0 if unit in NON_NEGATIVE else -math.inf, math.inf))
        if math.isnan(value) or not low <= value <= high:
            report.findings.append(Finding(where, expr, f"last value {value:g} is outside the sensible range of unit {unit} [{low:g}, {high:g}]"))

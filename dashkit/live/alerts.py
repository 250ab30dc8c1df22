"""Alerts in a scenario, evaluated against the same Prometheus as the panels, both ways they are deployed:

- Prometheus/Mimir rules: the condition (`expr > level`) must hold at every evaluation over its `for`
  period, ending at the end of the data (Prometheus evaluates rules live only, so this is how it would
  have judged the same samples).
- Grafana-managed rules: query A as Grafana runs it (instant, at each evaluation), reduced to the last
  value per series, compared by the threshold expression; no series at all is NoData, mapped through the
  rule's own noDataState; a failed query is Error (execErrState).

The scenario lists exactly what fires. Anything else firing, an expected alert that stays quiet or fires
with another severity, and any Grafana rule left in NoData or Error is a finding.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from .. import promql
from ..specs import Catalog
from .check import Finding, Report, available, fallbacks_of

EVALUATION = 60  # seconds between rule evaluations (values/rules.yaml interval)
NO_DATA_OK = "Normal (no data)"  # noDataState OK: quiet, but only because the query answered nothing


@dataclass(frozen=True)
class AlertState:
    alert: str
    service: str  # the rule's group: a service, or "platform"
    severity: str
    prometheus: str  # firing | pending | inactive | error
    grafana: str  # Alerting | Pending | Normal | NoData | Error

    def line(self) -> str:
        return f"{self.alert} ({self.service}, {self.severity}): Prometheus {self.prometheus}, Grafana {self.grafana}"


def seconds(duration: str) -> int:
    total = 0
    for amount, unit in re.findall(r"(\d+)([smhd])", duration):
        total += int(amount) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[unit]
    return total


def _holds(value: float, op: str, level: float) -> bool:
    if math.isnan(value):
        return False  # Grafana's threshold and Prometheus's comparison both drop NaN
    return value > level if op == ">" else value < level


def _evaluations(end: int, duration: str) -> list[int]:
    """The evaluation times that must all see the condition for the alert to fire at `end`."""
    span = seconds(duration)
    return list(range(end - (span // EVALUATION) * EVALUATION, end + 1, EVALUATION))


def prometheus_state(prom, rule, end: int) -> str:
    times = _evaluations(end, rule.spec.duration)
    answer = prom.query_range(rule.condition, times[0], times[-1], EVALUATION)
    if answer.get("status") != "success":
        return "error"
    held = [{int(t) for t, _ in series["values"]} for series in answer["data"]["result"]]
    if any(set(times) <= stamps for stamps in held):
        return "firing"
    return "pending" if any(end in stamps for stamps in held) else "inactive"


def grafana_state(prom, rule, end: int) -> str:
    times = _evaluations(end, rule.spec.duration)
    answer = prom.query_range(rule.expr, times[0], times[-1], EVALUATION)  # = instant query A at each evaluation
    if answer.get("status") != "success":
        return "Error"
    result = answer["data"]["result"]
    at_end = [s for s in result if any(int(t) == end for t, _ in s["values"])]
    if not at_end:
        return {"OK": NO_DATA_OK, "Alerting": "Alerting", "NoData": "NoData", "KeepLast": "KeepLast"}[rule.spec.no_data]
    for series in at_end:
        values = {int(t): float(v) for t, v in series["values"]}  # reduce: the one value per evaluation
        if all(t in values and _holds(values[t], rule.spec.op, rule.spec.value) for t in times):
            return "Alerting"
    if any(_holds(float(v), rule.spec.op, rule.spec.value) for s in at_end for t, v in s["values"] if int(t) == end):
        return "Pending"
    return "Normal"


def _check_linked_panel(rule, report: Report, where: str) -> None:
    """Whoever follows a firing alert's dashboard link must see the problem on that panel, now."""
    if (rule.dashboard_uid, rule.panel_id) not in report.shown:
        return  # the panel's queries did not run here (no dashboards given, or a Loki/Tempo panel)
    title, levels, current, instant_text = report.shown[(rule.dashboard_uid, rule.panel_id)]
    if not current and instant_text:
        return  # the panel says so in words ("No target")
    if not current:
        report.findings.append(
            Finding(
                where,
                "",
                f"fires, but the panel it links to ('{title}') shows no current value: it would show an old value or No data",
            )
        )
    elif rule.spec.value in levels and not any(_holds(v, rule.spec.op, rule.spec.value) for v in current):
        shown = ", ".join(f"{v:g}" for v in current)
        report.findings.append(
            Finding(
                where,
                "",
                f"fires, but the panel it links to ('{title}') shows {shown}, not {rule.spec.op} {rule.spec.value:g}",
            )
        )


def _blind(rule, scenario, catalog: Catalog, fallbacks: set[str]) -> bool:
    """A rule whose query answered nothing although its service is up and every metric it reads exists
    in this scenario: in production it would sit in Normal and could never fire."""
    if rule.spec.no_data_quiet or scenario is None:
        return False
    if any(e["kind"] in ("down", "absent") and e["service"] == rule.group for e in scenario.events):
        return False
    names = promql.analyse(rule.expr, catalog)[1]
    return all(available(name, scenario, catalog, fallbacks) for name in names)


def evaluate(
    rules, prom, end: int, scenario, report: Report, catalog: Catalog | None = None, now: dict | None = None
) -> list[AlertState]:
    """Every alert's state at `end`, checked against the scenario's list of what fires.

    now: the server's own rule states ((ruler group, alert) -> state) where Prometheus evaluated the rules
    live over data that began moments ago (the scrape mode): no `for` period has passed, so an alert fires
    when its condition holds now (pending or firing, Pending or Alerting), and a pending one nobody expects
    is a finding."""
    if rules is None:
        return []
    states = []
    for rule in rules.alerts:
        held = now.get((rule.ruler_group, rule.spec.name), "missing") if now is not None else None
        states.append(
            AlertState(
                rule.spec.name,
                rule.group,
                rule.spec.severity,
                held or prometheus_state(prom, rule, end),
                grafana_state(prom, rule, end),
            )
        )
    fires = ("firing", "pending") if now is not None else ("firing",)
    alerting = ("Alerting", "Pending") if now is not None else ("Alerting",)
    report.alerts = states
    rule_of = {(r.spec.name, r.group, r.spec.severity): r for r in rules.alerts}
    fallbacks = fallbacks_of(rules)
    expected = set(scenario.alerts) if scenario is not None else set()
    for state in states:
        key = (state.alert, state.service, state.severity)
        where = f"alert {state.alert} ({state.service})"
        if key in expected:
            _check_linked_panel(rule_of[key], report, where)
            if state.prometheus not in fires:
                report.findings.append(
                    Finding(
                        where,
                        "",
                        f"should fire ({state.severity}) in {report.scenario}: Prometheus rule is {state.prometheus}",
                    )
                )
            if state.grafana not in alerting:
                report.findings.append(
                    Finding(
                        where,
                        "",
                        f"should fire ({state.severity}) in {report.scenario}: Grafana rule is {state.grafana}",
                    )
                )
            continue
        if state.prometheus in (*fires, "error", "missing"):
            report.findings.append(
                Finding(
                    where, "", f"Prometheus rule is {state.prometheus} in {report.scenario}, which expects it quiet"
                )
            )
        if state.grafana in (*alerting, "NoData", "Error", "KeepLast"):
            report.findings.append(
                Finding(where, "", f"Grafana rule is {state.grafana} in {report.scenario}, which expects it quiet")
            )
        elif state.grafana == NO_DATA_OK and catalog is not None and _blind(rule_of[key], scenario, catalog, fallbacks):
            report.findings.append(
                Finding(
                    where,
                    rule_of[key].expr,
                    f"its query answers nothing in {report.scenario} although {state.service} is up "
                    "and exports what it reads: the rule sits in Normal (no data) and could never fire",
                )
            )
    known = {(s.alert, s.service, s.severity) for s in states}
    for alert, service, severity in sorted(expected - known):
        close = [s for s in states if s.alert == alert and s.service == service]
        message = (
            f"has severity {close[0].severity}, the scenario expects {severity}"
            if close
            else "no such alert for this service"
        )
        report.findings.append(Finding(f"alert {alert} ({service})", "", message))
    return states

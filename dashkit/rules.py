"""Stage 3b, rules: recording rules, and the alerts of every service and of the platform, in two formats:
Prometheus rule files (Mimir ruler, `mimirtool rules load`, Prometheus) and Grafana unified alerting
provisioning. Each alert is linked to the dashboard panel it belongs to.
"""

from __future__ import annotations

import functools
import re
import zlib
from dataclasses import dataclass, field

from . import promql
from .assemble import Assembled
from .out_tree import OutTree, out_tree
from .panels import panels_of
from .problems import Problem
from .specs import AlertSpec, Catalog, MetricSpec, Values
from .suggest import did_you_mean

# Prometheus templates say $value; Grafana's say $values.<refId>.Value for the same number.
GRAFANA_VALUE = re.compile(r"\$value\b")


@dataclass
class AlertRule:
    """One alert as deployed: a spec instantiated for one group (a service, or the platform)."""

    group: str
    spec: AlertSpec
    expr: str  # the measured quantity, variables substituted
    dashboard_uid: str
    panel_id: int | None
    ruler_group: str  # the group's name in the Prometheus rule files (group_name), as promtool names it

    @functools.cached_property  # both rule files and the runbooks read it: parsed once
    def condition(self) -> str:
        # `a or b > 1` compares only b: comparison binds tighter than the set operators, so wrap those
        expr = f"({self.expr})" if _top_level_set_operation(self.expr) else self.expr
        return f"{expr} {self.spec.op} {_number(self.spec.value)}"


def _top_level_set_operation(expr: str) -> bool:
    try:
        node = promql.parse(expr)
    except ValueError:
        return False  # reported where the expression is checked
    return type(node).__name__ == "BinaryExpr" and str(node.op) in ("or", "and", "unless")


@dataclass
class Rules:
    recorded: Catalog  # recorded series name -> its metric
    recording: list[dict]  # the recording rules as written to the rule file
    alerts: list[AlertRule] = field(default_factory=list)


def group_name(prefix: str, group: str) -> str:
    """A rule group's name in the Prometheus rule files, and so in promtool's messages: <uid_prefix>-<group>,
    the group being a service, `platform` or `recording`. The one place that name is made."""
    return f"{prefix}-{group}"


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def recorded_catalog(values: Values) -> tuple[Catalog, list[Problem]]:
    """The catalog plus one gauge per recording rule, labelled with exactly what the rule aggregates by."""
    catalog = dict(values.catalog)
    problems = []
    for rule in values.rules.recording if values.rules else []:
        found, used, labels = promql.analyse(rule.expr, catalog)
        problems += [Problem(rule.src.at("expr"), msg) for msg in found]
        if rule.record in catalog:
            problems.append(Problem(rule.src.at("record"), f"'{rule.record}' is already a metric"))
            continue
        kept = sorted(label for label in labels if label not in ("*", "__name__"))
        catalog[rule.record] = MetricSpec(
            rule.record,
            "gauge",
            "all",
            f"Recording rule: {rule.expr}",
            {label: ["(recorded)"] for label in kept},
            recorded=True,
            # the raw metrics behind it, so a panel of the rule counts as showing them
            sources=tuple(sorted({m for name in used for m in catalog[name].sources})),
        )
    return catalog, problems


def build_rules(
    values: Values, dashboards: list[Assembled], link_panels: bool = True
) -> tuple[Rules | None, list[Problem]]:
    """Every alert instantiated per group and linked to its panel. link_panels=False drops the problems
    instantiating finds (the pipeline's gate link_alerts_to_panels says when, and why)."""
    if values.rules is None:
        return None, []
    catalog, problems = recorded_catalog(values)
    by_kind = {(d.kind, d.job): d for d in dashboards}
    titles_of: dict[str, dict] = {}
    overview = next((d for d in dashboards if d.kind == "overview"), None)
    rules = Rules(
        {k: v for k, v in catalog.items() if v.recorded},
        [{"record": r.record, "expr": r.expr} for r in values.rules.recording],
    )
    prefix = out_tree(values.defaults).prefix
    for dash in values.dashboards:
        if dash.kind != "service":
            continue
        shared = (
            values.rules.alerts if dash.rule_alerts is None else dash.rule_alerts
        )  # with the service's threshold overrides
        for spec in shared + dash.alerts:
            target = overview if spec.dashboard == "overview" else by_kind.get(("service", dash.job))
            rules.alerts.append(
                _instantiate(
                    dash.job, prefix, spec, {"job": dash.job}, target, problems if link_panels else [], titles_of
                )
            )
    for spec in values.rules.platform_alerts:
        target = overview if spec.dashboard == "overview" else None
        rules.alerts.append(
            _instantiate("platform", prefix, spec, {}, target, problems if link_panels else [], titles_of)
        )
    return rules, problems


def _instantiate(
    group: str,
    prefix: str,
    spec: AlertSpec,
    variables: dict,
    dashboard: Assembled | None,
    problems: list[Problem],
    titles_of: dict,
) -> AlertRule:
    expr, missing = promql.substitute(spec.expr, variables)
    for name in missing:
        problems.append(
            Problem(
                spec.src.at("expr"), f"variable '${name}' cannot be used in an alert (only $job, in service alerts)"
            )
        )
    panel_id = None
    uid = dashboard.json["uid"] if dashboard else ""
    if dashboard is None:
        problems.append(Problem(spec.src.at("dashboard"), "a platform alert must say `dashboard: overview`"))
    else:
        if dashboard.path not in titles_of:  # once per dashboard, however many alerts link to it
            titles: dict[str, list] = {}
            for p in panels_of(dashboard.json):
                if p.get("type") != "row":
                    titles.setdefault(p.get("title"), []).append(p.get("id"))
            titles_of[dashboard.path] = titles
        titles = titles_of[dashboard.path]
        if len(titles.get(spec.panel, [])) == 1:
            panel_id = titles[spec.panel][0]
        elif spec.panel in titles:  # two rows may share a panel title; an alert must not guess which it means
            problems.append(
                Problem(
                    spec.src.at("panel"),
                    f"{len(titles[spec.panel])} panels on {uid} are titled '{spec.panel}': "
                    "give the one this alert shows a title of its own",
                )
            )
        else:
            problems.append(
                Problem(
                    spec.src.at("panel"), f"no panel titled '{spec.panel}' on {uid}{did_you_mean(spec.panel, titles)}"
                )
            )
    return AlertRule(group, spec, expr, uid, panel_id, group_name(prefix, group))


def rule_uid(group: str, alert: str) -> str:
    """Grafana rule uids: at most 40 characters, stable, readable where they can be."""
    full = f"{group}-{alert}".lower()
    return f"{full[:31]}-{zlib.crc32(full.encode()):08x}"


def anchor(alert: str) -> str:
    return alert.lower()


def prometheus_files(rules: Rules, interval: str, runbook_base: str, tree: OutTree) -> dict[str, dict]:
    recording = {
        "groups": [{"name": group_name(tree.prefix, "recording"), "interval": interval, "rules": rules.recording}]
    }
    groups: dict[str, list] = {}
    for rule in rules.alerts:
        groups.setdefault(rule.ruler_group, []).append(
            {
                "alert": rule.spec.name,
                "expr": rule.condition,
                "for": rule.spec.duration,
                "labels": {"severity": rule.spec.severity, "service": rule.group},
                "annotations": {
                    "summary": rule.spec.summary,
                    "description": rule.spec.description,
                    "runbook_url": f"{runbook_base}#{anchor(rule.spec.name)}",
                    "dashboard": f"/d/{rule.dashboard_uid}?viewPanel={rule.panel_id}",
                },
            }
        )
    alerts = {"groups": [{"name": group, "interval": interval, "rules": items} for group, items in groups.items()]}
    return {tree.recording_rules: recording, tree.ruler_alerts: alerts}


def grafana_alerting(rules: Rules, interval: str, runbook_base: str, metrics_uid: str, folder: str) -> dict:
    """Grafana's alert rule provisioning file. Python dicts like prometheus_files, not a Jsonnet template like
    the other provisioning files: both rule formats are written side by side from one list of alerts, in
    the key order Grafana's own export uses (Jsonnet writes keys sorted), ~25x faster than a Jsonnet
    evaluation of the same rules."""
    groups: dict[str, list] = {}
    for rule in rules.alerts:
        groups.setdefault(rule.group, []).append(_grafana_rule(rule, runbook_base, metrics_uid))
    return {
        "apiVersion": 1,
        "groups": [
            {"orgId": 1, "name": group, "folder": folder, "interval": interval, "rules": items}
            for group, items in groups.items()
        ],
    }


def _grafana_rule(rule: AlertRule, runbook_base: str, metrics_uid: str) -> dict:
    threshold = {"type": "gt" if rule.spec.op == ">" else "lt", "params": [rule.spec.value]}
    return {
        "uid": rule_uid(rule.group, rule.spec.name),
        "title": f"{rule.spec.name} ({rule.group})",
        "condition": "B",
        "data": [
            {
                "refId": "A",
                "relativeTimeRange": {"from": 600, "to": 0},
                "datasourceUid": metrics_uid,
                "model": {
                    "refId": "A",
                    "expr": rule.expr,
                    "instant": True,
                    "range": False,
                    "datasource": {"type": "prometheus", "uid": metrics_uid},
                },
            },
            {
                "refId": "B",
                "datasourceUid": "__expr__",
                "model": {
                    "refId": "B",
                    "type": "threshold",
                    "expression": "A",
                    "datasource": {"type": "__expr__", "uid": "__expr__"},
                    "conditions": [{"evaluator": threshold}],
                },
            },
        ],
        "dashboardUid": rule.dashboard_uid,
        "panelId": rule.panel_id,
        "noDataState": rule.spec.no_data,
        # A query that fails is Mimir or the rule being broken, not the service: Grafana's Error state
        # pages once as DatasourceError instead of firing (or silencing) every alert of the group.
        "execErrState": "Error",
        "for": rule.spec.duration,
        "labels": {"severity": rule.spec.severity, "service": rule.group},
        "annotations": {
            "summary": rule.spec.summary,
            "description": GRAFANA_VALUE.sub("$values.A.Value", rule.spec.description),
            "runbook_url": f"{runbook_base}#{anchor(rule.spec.name)}",
        },
        "isPaused": False,
    }

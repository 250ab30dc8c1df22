"""The build: values -> load -> render -> assemble -> rules -> files -> check -> write. Each stage only reads
what the ones before it produced and returns (result, problems); problems from every stage are gathered so
one run reports them all. Which stages still run after earlier problems is decided by the gates below,
each named and saying why.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from .assemble import Assembled, assemble
from .check import check, promtool_queries, through_recording_rules, unused_metrics
from .check_rules import Promtool, check_rules
from .engines import Templates
from .lint import lint_rules
from .load import load
from .out_tree import OutTree, out_tree
from .problems import BuildFailed, Problem
from .provision import provisioning
from .reference import metric_reference, runbooks
from .render import render
from .rules import Rules, build_rules, grafana_alerting, prometheus_files
from .specs import Catalog, Values
from .write import WriteFailed, path_refusal, refused, serialise, serialise_yaml, shown, write_output

REFERENCE = "docs/metrics.md"
RUNBOOKS = "docs/runbooks.md"


@dataclass
class Build:
    files: dict[str, str]  # out/-relative path -> file text
    dashboards: list[Assembled]
    reference: str
    runbooks: str
    catalog: Catalog = field(default_factory=dict)  # the metric catalog plus recorded series
    usage: dict[str, list[str]] = field(default_factory=dict)  # metric -> panels that show it
    rules: Rules | None = None
    services: dict[str, int] = field(default_factory=dict)  # job -> port
    scenarios: dict = field(default_factory=dict)  # live-check scenarios as written in values/scenarios.yaml
    scenarios_src: object = None  # where each was written (a Source), for the live check's messages
    tree: OutTree | None = None  # where each file is in out/

    def dashboard_files(self) -> dict[str, str]:
        """Each dashboard's text by its name relative to the dashboards folder (services/<job>.json, ...)."""
        return {d.path: self.files[self.tree.in_out(d.path)] for d in self.dashboards}

    @property
    def recorded(self) -> dict[str, list[str]]:
        """Recording rule -> the raw metrics it is computed from."""
        return {name: list(metric.sources) for name, metric in self.catalog.items() if metric.recorded}


def build(root: Path) -> Build:
    """Run every stage up to (not including) writing. Raises BuildFailed with every problem found."""
    root = Path(root)
    values, problems = load(root)
    if values is None:
        raise BuildFailed(problems)
    templates = Templates(root / "templates") if (root / "templates").is_dir() else Templates()
    rendered, found = render(values, templates)
    problems += found
    dashboards, found = assemble(rendered, values.defaults, templates)
    problems += found
    rules, found = build_rules(values, dashboards, link_panels=link_alerts_to_panels(problems))
    problems += found
    tree = out_tree(values.defaults)
    rule_files, found = rule_and_provisioning_files(values, rules, templates, tree)
    problems += found
    promtool = start_promtool(root, rule_files, dashboards, tree, problems)
    catalog = dict(values.catalog, **(rules.recorded if rules else {}))
    usage, found = check_everything(values, dashboards, rules, catalog, problems)
    problems += found
    files = {tree.in_out(d.path): serialise(d.json) for d in dashboards}  # serialised while promtool runs
    problems += promtool.problems(rules, values.rules.src.at() if values.rules else values.catalog_src.at())
    if problems:
        raise BuildFailed(problems)
    runbook_text = runbooks(rules.alerts) if rules else ""
    services = {d.job: d.port for d in values.dashboards if d.kind == "service"}
    return Build(
        {**files, **rule_files},
        dashboards,
        metric_reference(values.catalog, usage) + "\n",
        runbook_text,
        catalog,
        usage,
        rules,
        services,
        values.scenarios,
        values.scenarios_src,
        tree,
    )


# --- gates: what still runs after earlier problems --------------------------------------------------
def link_alerts_to_panels(problems: list[Problem]) -> bool:
    """Alerts are linked to their panels only after clean earlier stages: a panel an alert cannot find is
    then most likely one those problems dropped, and saying so again per alert and service would bury the
    real cause."""
    return not problems


def run_promtool(problems: list[Problem]) -> bool:
    """promtool reads the rule files and the dashboards' queries only while everything is clean so far: a
    broken rule or query is reported already, and promtool would only say it again in its own words."""
    return not problems


def dashboards_to_check(dashboards: list[Assembled], problems: list[Problem]) -> list[Assembled]:
    """The overview is derived from every service: while a service file is broken, its problems are the
    real ones and the overview's would only echo them."""
    broken_service = any(p.where.file.startswith("values/services/") for p in problems)
    return [d for d in dashboards if not (broken_service and d.kind == "overview")]


def report_unused_metrics(problems: list[Problem]) -> bool:
    """A catalog metric on no panel is meaningful only once every query checked cleanly: the catalog and
    the panels must agree, and a panel or query dropped for a problem would make its metrics look unused."""
    return not problems


# --- stages ---------------------------------------------------------------------------------------
def rule_and_provisioning_files(
    values: Values, rules: Rules | None, templates: Templates, tree: OutTree
) -> tuple[dict[str, str], list[Problem]]:
    """Everything in out/ but the dashboards, as text: the rule files of both formats and the provisioning."""
    files = {}
    if rules is not None:
        r = values.rules
        files = {
            path: serialise_yaml(doc)
            for path, doc in prometheus_files(rules, r.interval, r.runbook_base_url, tree).items()
        }
        metrics_uid = values.defaults["datasources"]["metrics"]["uid"]
        alerting = grafana_alerting(
            rules, r.interval, r.runbook_base_url, metrics_uid, values.defaults["grafana"]["folder"]
        )
        files[tree.alert_rules] = serialise_yaml(alerting)
    provisioned, problems = provisioning(templates, values.defaults, values.defaults_src)
    files.update({path: serialise_yaml(doc) for path, doc in provisioned.items()})
    return files, problems


def start_promtool(
    root: Path, rule_files: dict[str, str], dashboards: list[Assembled], tree: OutTree, problems: list[Problem]
) -> Promtool:
    """promtool on the ruler's rule files and every dashboard query, running beside the checks."""
    if not run_promtool(problems):
        return Promtool({})
    ruler = {path: text for path, text in rule_files.items() if path in (tree.recording_rules, tree.ruler_alerts)}
    return Promtool(ruler, root / ".cache" / "promtool", queries=promtool_queries(dashboards))


def check_everything(
    values: Values, dashboards: list[Assembled], rules: Rules | None, catalog: Catalog, earlier: list[Problem]
) -> tuple[dict[str, list[str]], list[Problem]]:
    """The check stage: dashboards, rules and the catalog. Returns (metric -> the panels that show it, problems)."""
    usage, problems = check(dashboards_to_check(dashboards, earlier), catalog)
    usage = through_recording_rules(usage, catalog)
    problems += check_rules(rules, catalog)
    problems += lint_rules(values)
    if report_unused_metrics(earlier + problems):
        problems += unused_metrics(values.catalog, values.catalog_src, usage)
    return usage, problems


def build_and_write(root: Path, out: Path) -> Build:
    """Build, then put out/ and the generated docs in place together. Raises BuildFailed or WriteFailed."""
    root = Path(root)
    reason = path_refusal(Path(os.path.realpath(out)), Path(os.path.realpath(root)))
    if reason:  # before building: `--out values` must not even wait for the build to be refused
        raise WriteFailed([refused(shown(out), reason)])
    result = build(root)
    write_output(
        out,
        result.files,
        {root / REFERENCE: result.reference, root / RUNBOOKS: result.runbooks},
        root,
        label=shown(out),
    )
    return result


__all__ = ["build", "build_and_write", "BuildFailed", "Problem", "WriteFailed"]

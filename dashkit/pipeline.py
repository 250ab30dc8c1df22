"""The build: values -> load -> render -> assemble -> check -> write. Each stage only reads what the one
before it produced; problems from every stage are gathered so one run reports them all."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from .assemble import Assembled, assemble
from .check import check, promtool_queries
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
from .write import WriteFailed, path_refusal, refused, serialise, serialise_yaml, shown, write_output

REFERENCE = "docs/metrics.md"
RUNBOOKS = "docs/runbooks.md"


@dataclass
class Build:
    files: dict[str, str]  # out/-relative path -> file text
    dashboards: list[Assembled]
    reference: str
    runbooks: str
    catalog: dict = field(default_factory=dict)  # the metric catalog plus recorded series
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
        return {name: entry["from"] for name, entry in self.catalog.items() if entry.get("recorded")}


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
    rules, found = build_rules(values, dashboards, link_panels=not problems)
    problems += found
    tree = out_tree(values.defaults)
    rule_files = {}  # everything but the dashboards: rule files and provisioning
    if rules is not None:
        r = values.rules
        rule_files = {path: serialise_yaml(doc) for path, doc in prometheus_files(rules, r.interval, r.runbook_base_url, tree).items()}
        metrics_uid = values.defaults["datasources"]["metrics"]["uid"]
        alerting = grafana_alerting(rules, r.interval, r.runbook_base_url, metrics_uid, values.defaults["grafana"]["folder"])
        rule_files[tree.alert_rules] = serialise_yaml(alerting)
    provisioned, found = provisioning(templates, values.defaults, values.defaults_src)
    problems += found
    rule_files.update({path: serialise_yaml(doc) for path, doc in provisioned.items()})
    promtool = Promtool({k: v for k, v in rule_files.items() if k in (tree.recording_rules, tree.ruler_alerts)} if not problems else {}, root / ".cache" / "promtool",
                        queries=promtool_queries(dashboards) if not problems else None)
    catalog = dict(values.catalog, **(rules.recorded if rules else {}))
    # The overview is derived from every service: while a service file is broken, its problems are the
    # real ones and the overview's would only echo them.
    broken_service = any(p.where.file.startswith("values/services/") for p in problems)
    checked = [d for d in dashboards if not (broken_service and d.kind == "overview")]
    found, usage = check(checked, catalog)
    problems += found
    usage = through_recording_rules(usage, catalog)
    problems += check_rules(rules, catalog)
    problems += lint_rules(values)
    if not problems:  # only meaningful once every query checked cleanly: the catalog and the panels must agree
        problems += [
            Problem(values.catalog_src.at("metrics", name), f"metric '{name}' is in the catalog but on no panel")
            for name in values.catalog
            if name not in usage
        ]
    files = {tree.in_out(d.path): serialise(d.json) for d in dashboards}  # serialised while promtool runs
    problems += promtool.problems(rules, values.rules.src.at() if values.rules else values.catalog_src.at(), tree.prefix)
    if problems:
        raise BuildFailed(problems)
    files.update(rule_files)
    runbook_text = runbooks(rules.alerts) if rules else ""
    services = {d.job: d.port for d in values.dashboards if d.kind == "service"}
    return Build(files, dashboards, metric_reference(values.catalog, usage) + "\n", runbook_text, catalog, usage, rules, services,
                 values.scenarios, values.scenarios_src, tree)


def through_recording_rules(usage: dict[str, list[str]], catalog: dict) -> dict[str, list[str]]:
    """A panel of a recorded series shows the raw metrics the rule is computed from."""
    out: dict[str, list[str]] = {}
    for name, panels in usage.items():
        for metric in catalog.get(name, {}).get("from", [name]):
            shown = out.setdefault(metric, [])
            shown += [p for p in panels if p not in shown]
    return dict(sorted(out.items()))


def build_and_write(root: Path, out: Path) -> Build:
    """Build, then put out/ and the generated docs in place together. Raises BuildFailed or WriteFailed."""
    root = Path(root)
    reason = path_refusal(Path(os.path.realpath(out)), Path(os.path.realpath(root)))
    if reason:  # before building: `--out values` must not even wait for the build to be refused
        raise WriteFailed([refused(shown(out), reason)])
    result = build(root)
    write_output(out, result.files, {root / REFERENCE: result.reference, root / RUNBOOKS: result.runbooks}, root, label=shown(out))
    return result


__all__ = ["build", "build_and_write", "BuildFailed", "Problem", "WriteFailed"]

"""The build: values -> load -> render -> assemble -> rules -> files -> check -> write. Each stage only reads
what the ones before it produced and returns (result, problems); problems from every stage are gathered so
one run reports them all. Which stages still run after earlier problems is decided by the gates below,
each named and saying why.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from .assemble import Assembled, assemble
from .check import check_each, merge_usage, promtool_queries, through_recording_rules, unused_metrics
from .check_rules import Promtool, check_rules
from .engines import TEMPLATES, Templates, warm_up_jsonnet
from .helper import Helper
from .lint import lint_rules
from .load import load
from .out_tree import OutTree, out_tree
from .problems import BuildFailed, Problem
from .provision import provisioning
from .reference import metric_reference, runbooks
from .render import render
from .rules import Rules, build_rules, grafana_alerting, prometheus_files
from .specs import Catalog, Elsewhere, Values
from .write import (
    OutChanged,
    WriteFailed,
    path_refusal,
    refused,
    serialise,
    serialise_yaml,
    shown,
    write_output,
    yaml_item,
)

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

    processes: int = 1  # 2 when a helper process read the values files and shared the work (dashkit/helper.py)

    def dashboard_files(self) -> dict[str, str]:
        """Each dashboard's text by its name relative to the dashboards folder (services/<job>.json, ...)."""
        return {d.path: self.files[self.tree.in_out(d.path)] for d in self.dashboards}

    @property
    def recorded(self) -> dict[str, list[str]]:
        """Recording rule -> the raw metrics it is computed from."""
        return {name: list(metric.sources) for name, metric in self.catalog.items() if metric.recorded}

    @property
    def dashboard_count(self) -> int:
        return len(self.dashboards)

    @property
    def file_count(self) -> int:
        return len(self.files)

    @property
    def panel_count(self) -> int:
        return sum(panel_count(d.json) for d in self.dashboards)


def panel_count(dashboard: dict) -> int:
    """Panels of a dashboard's JSON, row headers and collapsed rows' children included."""
    return sum(1 + len(p.get("panels", [])) for p in dashboard["panels"])


@dataclass
class Staged:
    """What the stages made of the values (all of them, or some service files), before writing."""

    values: Values
    dashboards: list[Assembled]
    rules: Rules | None
    tree: OutTree
    files: dict[str, str]  # out/-relative path -> text: every file of out/ (none once a problem is found)
    rule_docs: dict[str, dict]  # rule and provisioning files as documents, each rule group a YamlPart
    catalog: Catalog
    usages: dict[str, dict[str, list[str]]]  # dashboard path -> metric -> the panels that show it
    usage: dict[str, list[str]] | None  # all dashboards' usage through the recording rules (whole builds)
    problems: list[Problem]


def build(root: Path, helper: Helper | None = None) -> Build:
    """Run every stage up to (not including) writing. Raises BuildFailed with every problem found.
    helper: a second process reading the values files, and evaluating Jsonnet (dashkit/helper.py)."""
    if helper is not None and not helper.done():
        warm_up_jsonnet()  # nothing else to do till the files have come: go-jsonnet's first evaluation costs more
    staged = stages(Path(root), parsed=helper, helper=helper)
    if staged.problems:
        raise BuildFailed(staged.problems)
    values, rules = staged.values, staged.rules
    runbook_text = runbooks(rules.alerts) if rules else ""
    services = {d.job: d.port for d in values.dashboards if d.kind == "service"}
    return Build(
        staged.files,
        staged.dashboards,
        metric_reference(values.catalog, staged.usage) + "\n",
        runbook_text,
        staged.catalog,
        staged.usage,
        rules,
        services,
        values.scenarios,
        values.scenarios_src,
        staged.tree,
        2 if helper is not None and helper.helped() else 1,
    )


def stages(
    root: Path,
    only: list[str] | None = None,
    elsewhere: tuple[Elsewhere, ...] = (),
    overview: Assembled | None = None,
    parsed=None,
    helper: Helper | None = None,
) -> Staged:
    """Every stage up to writing, with every problem found. Raises BuildFailed only when nothing can be
    built (defaults, catalog or templates unusable).

    For the build cache (dashkit/incremental.py): only, the service files to build (all when None);
    elsewhere, the other services as the cache has them, for the overview; overview, the overview as the
    cache has it (what alerts link to), which is then not built again; parsed, values files parsed before;
    helper, a second process for a share of the Jsonnet and the schema check (dashkit/helper.py).
    The checks that must see every service (metrics on no panel) run only on a whole build."""
    values, problems = load(root, only, elsewhere, overview=overview is None, parsed=parsed)
    if values is None:
        raise BuildFailed(problems)
    templates = Templates(root / "templates" if (root / "templates").is_dir() else TEMPLATES, helper)
    rendered, found = render(values, templates)
    problems += found
    dashboards, found = assemble(rendered, values.defaults, templates, elsewhere)
    problems += found
    linked = dashboards + ([overview] if overview is not None else [])
    rules, found = build_rules(values, linked, link_panels=link_alerts_to_panels(problems))
    problems += found
    tree = out_tree(values.defaults)
    rule_docs, found = rule_and_provisioning_docs(values, rules, templates, tree)
    problems += found
    rule_files = {path: serialise_yaml(doc) for path, doc in rule_docs.items()} if files_needed(problems) else {}
    promtool = start_promtool(root, rule_files, dashboards, tree, problems)
    catalog = dict(values.catalog, **(rules.recorded if rules else {}))
    usages, usage, found = check_everything(values, dashboards, rules, catalog, problems, only is None, helper)
    problems += found
    files = {}
    if files_needed(problems):
        files = {tree.in_out(d.path): serialise(d.json) for d in dashboards}  # serialised while promtool runs
    problems += promtool.problems(rules, values.rules.src.at() if values.rules else values.catalog_src.at())
    return Staged(values, dashboards, rules, tree, {**files, **rule_files}, rule_docs, catalog, usages, usage, problems)


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


def files_needed(problems: list[Problem]) -> bool:
    """The files are written only by a build without a problem: a broken one skips making their text (67 MB
    of JSON and 18 MB of YAML at 1,000 services), and only finds and reports."""
    return not problems


def report_unused_metrics(problems: list[Problem]) -> bool:
    """A catalog metric on no panel is meaningful only once every query checked cleanly: the catalog and
    the panels must agree, and a panel or query dropped for a problem would make its metrics look unused."""
    return not problems


# --- stages ---------------------------------------------------------------------------------------
def rule_and_provisioning_docs(
    values: Values, rules: Rules | None, templates: Templates, tree: OutTree
) -> tuple[dict[str, dict], list[Problem]]:
    """Everything in out/ but the dashboards, as documents: the rule files of both formats (each rule
    group serialised on its own, a YamlPart, so the build cache can keep a service's groups) and the
    provisioning."""
    docs = {}
    if rules is not None:
        r = values.rules
        docs = prometheus_files(rules, r.interval, r.runbook_base_url, tree)
        metrics_uid = values.defaults["datasources"]["metrics"]["uid"]
        docs[tree.alert_rules] = grafana_alerting(
            rules, r.interval, r.runbook_base_url, metrics_uid, values.defaults["grafana"]["folder"]
        )
        for path in (tree.ruler_alerts, tree.alert_rules):
            docs[path]["groups"] = [yaml_item(group, RULE_GROUP_INDENT) for group in docs[path]["groups"]]
    provisioned, problems = provisioning(templates, values.defaults, values.defaults_src)
    docs.update(provisioned)
    return docs, problems


RULE_GROUP_INDENT = 2  # a rule group is an item of the top-level `groups:` list


def start_promtool(
    root: Path, rule_files: dict[str, str], dashboards: list[Assembled], tree: OutTree, problems: list[Problem]
) -> Promtool:
    """promtool on the ruler's rule files and every dashboard query, running beside the checks."""
    if not run_promtool(problems):
        return Promtool({})
    ruler = {path: text for path, text in rule_files.items() if path in (tree.recording_rules, tree.ruler_alerts)}
    return Promtool(ruler, root / ".cache" / "promtool", queries=promtool_queries(dashboards))


def check_everything(
    values: Values,
    dashboards: list[Assembled],
    rules: Rules | None,
    catalog: Catalog,
    earlier: list[Problem],
    whole: bool = True,
    helper: Helper | None = None,
) -> tuple[dict[str, dict[str, list[str]]], dict[str, list[str]] | None, list[Problem]]:
    """The check stage: dashboards, rules and the catalog. Returns (dashboard path -> metric -> the panels
    that show it, the same for all dashboards through the recording rules (None unless whole), problems).
    With a helper the dashboards are checked against the schema there, beside the other checks here."""
    checked = dashboards_to_check(dashboards, earlier)
    schema_errors = helper.schema_errors([d.json for d in checked]) if helper is not None else None
    usages, problems = check_each(checked, catalog, schema_errors)
    problems += check_rules(rules, catalog)
    problems += lint_rules(values)
    usage = None
    if whole:
        usage = through_recording_rules(merge_usage(usages), catalog)
        if report_unused_metrics(earlier + problems):
            problems += unused_metrics(values.catalog, values.catalog_src, usage)
    return {d.path: u for d, u in zip(checked, usages, strict=True)}, usage, problems


def build_and_write(root: Path, out: Path, cache: bool = True, helper: Helper | None = None) -> Build:
    """Build, then put out/ and the generated docs in place together. Raises BuildFailed or WriteFailed.

    With the cache, what the last builds made from the same inputs is taken from .cache/build/ and out/
    (dashkit/incremental.py); whenever that path cannot decide something (a problem, above all), the whole
    build below runs, so the cache never changes what a build writes or reports."""
    root = Path(root)
    reason = path_refusal(Path(os.path.realpath(out)), Path(os.path.realpath(root)))
    if reason:  # before building: `--out values` must not even wait for the build to be refused
        raise WriteFailed([refused(shown(out), reason)])
    if cache or in_parts(root):
        from .cache import MemoryStore
        from .incremental import build_and_write_incremental

        with contextlib.suppress(OutChanged):  # out/ changed under the build: written in full below
            written = build_and_write_incremental(root, out, shown(out), None if cache else MemoryStore())
            if written is not None:
                return written
    result = build(root, helper)
    write_output(
        out,
        result.files,
        {root / REFERENCE: result.reference, root / RUNBOOKS: result.runbooks},
        root,
        label=shown(out),
    )
    return result


def in_parts(root: Path) -> bool:
    """Whether a build without the cache is still made in parts (dashkit/incremental.py), for the parts of a
    large fleet are built on every core; the output is the same, and any problem runs the whole build."""
    from .values_files import service_files
    from .workers import LARGE_FLEET, processes  # not incremental's: a small build never imports it

    return processes() > 1 and len(service_files(root)) >= LARGE_FLEET


__all__ = ["build", "build_and_write", "BuildFailed", "Problem", "WriteFailed"]

"""Stage 1, load: read values/*.yaml, check them against the values schema, and resolve them into typed
specs (dashkit/specs.py) with every default in place.

Nothing here knows about Grafana JSON; it only turns what users wrote into located, complete specs. Each
phase below returns (result, problems); load runs them in order and gathers every problem, so one build
reports them all.
"""

from __future__ import annotations

import os
from functools import partial
from pathlib import Path
from typing import NamedTuple

from .panels import distinct_panel_specs
from .problems import Problem, Source, Where
from .safe_read import read_text, template_problems
from .specs import (
    AlertSpec,
    Catalog,
    DashboardSpec,
    Elsewhere,
    Levels,
    Link,
    Mapping,
    MetricSpec,
    PanelSpec,
    RecordingSpec,
    RowSpec,
    RulesSpec,
    Synthetic,
    TargetSpec,
    Values,
    VariableSpec,
)
from .suggest import did_you_mean
from .values_files import SCENARIOS, SHARED, parse_checked, service_files
from .values_schema import quote
from .workers import forked_map, processes


def load(
    root: Path,
    only: list[str] | None = None,
    elsewhere: tuple[Elsewhere, ...] = (),
    overview: bool = True,
    parsed=None,
) -> tuple[Values | None, list[Problem]]:
    """Read every values file under root/values. Returns the resolved values and all problems found.

    For the build cache (dashkit/incremental.py): only, the service files to load (all when None);
    elsewhere, the other services as far as the overview depends on them; overview=False leaves the
    overview out (the cache has it); parsed, files parsed and checked before (cache.Parsed)."""
    root = Path(root)
    refused = refused_templates(root)
    docs, problems = read_documents(root, parsed)
    context, found = defaults_context(docs)
    problems += found
    rules, found = rules_spec(docs, context)
    problems += found
    shared, found = shared_parts(docs, context)
    problems += found
    (services, overridden), found = service_dashboards(root, docs, context, shared, only, parsed)
    problems += found
    overridden.update(elsewhere_contexts(context, elsewhere))
    overview, found = overview_dashboard(docs, context, overridden) if overview else ([], [])
    problems += found
    catalog, found = catalog_specs(root, docs)
    problems += found
    dashboards = overview + services
    problems += scenario_problems(docs, dashboards)
    if not usable(docs, refused):
        return None, problems + refused
    scenarios = (docs.scenarios or {}).get("scenarios", {})
    return Values(
        docs.defaults, catalog, docs.catalog_src, dashboards, rules, docs.defaults_src, scenarios, docs.scenarios_src
    ), problems


def usable(docs: Documents, refused: list[Problem]) -> bool:
    """Whether later stages can run at all. They need the defaults (every dashboard's frame, the datasources,
    the presets) and the catalog (every query is checked against it), and templates that may be read (the
    engines open their files themselves, so the whole tree is confined first). Any other broken file only
    drops what it defines: later stages still run on whatever loaded cleanly, and one build reports every
    problem at once."""
    return docs.defaults is not None and docs.catalog is not None and not refused


# --- reading --------------------------------------------------------------------------------------
class Documents(NamedTuple):
    """Every values file as read and checked against the schema: None where it cannot be used."""

    defaults: dict | None
    defaults_src: Source
    catalog: dict | None
    catalog_src: Source
    standard: dict | None
    standard_src: Source
    overview: dict | None
    overview_src: Source
    rules: dict | None
    rules_src: Source
    scenarios: dict | None = None  # values/scenarios.yaml is optional
    scenarios_src: Source | None = None


def refused_templates(root: Path) -> list[Problem]:
    return [Problem(Where(rel, 0), why) for rel, why in template_problems(root, root / "templates")]


def read_documents(root: Path, parsed=None) -> tuple[Documents, list[Problem]]:
    problems: list[Problem] = []
    read = {kind: _read(root, rel, kind, problems, parsed) for kind, rel in SHARED}
    kind, rel = SCENARIOS
    scenarios = _read(root, rel, kind, problems, parsed) if os.path.lexists(root / rel) else (None, None)
    return Documents(
        *read["defaults"], *read["metrics"], *read["standard"], *read["overview"], *read["rules"], *scenarios
    ), problems


def _read(root: Path, rel: str, kind: str, problems: list[Problem], parsed=None):
    text, refused = read_text(root, rel)
    if text is None:
        problems.append(Problem(Where(rel, 0), refused))
        return None, Source(rel, {(): 1})
    known = parsed.get(kind, rel, text) if parsed is not None else None
    if known is not None:
        return known[0], Source(rel, known[1])
    data, src, found = parse_checked(text, rel, kind)
    problems.extend(found)
    if parsed is not None and data is not None:
        parsed.put(kind, rel, text, data, src.lines)
    return data, src


PARALLEL_FROM = 64  # service files; below this a second process costs more than it saves


def _read_chunk(root: Path, parsed, rels: list[str]) -> list[tuple]:
    """(rel, document or None, the line of each key, problems as plain tuples) per file: plain data, as a
    forked reader sends it back (workers.forked_map)."""
    out = []
    for rel in rels:
        found: list[Problem] = []
        doc, src = _read(root, rel, "service", found, parsed)
        out.append((rel, doc, src.lines, [(p.where.file, p.where.line, p.where.path, p.message) for p in found]))
    return out


def read_services(root: Path, rels: list[str], parsed=None) -> list[tuple]:
    """(rel, document or None, source, problems) per service file, in order. A large fleet is read on
    every core: parsing and validating YAML is most of a 1,000-service build's single-core time. A reader
    that fails (killed, say) and the files are read again here."""
    workers = processes()
    read = partial(_read_chunk, root, parsed)
    results = None
    if len(rels) >= PARALLEL_FROM and workers >= 2:
        chunks = forked_map(read, [rels[i::workers] for i in range(workers)])
        results = [item for chunk in chunks for item in chunk] if chunks is not None else None
    if results is None:
        results = read(rels)
    order = {rel: i for i, rel in enumerate(rels)}
    return [
        (
            rel,
            doc,
            Source(rel, lines),
            [Problem(Where(file, line, tuple(path)), message) for file, line, path, message in found],
        )
        for rel, doc, lines, found in sorted(results, key=lambda item: order[item[0]])
    ]


# --- threshold presets and panel sizes ------------------------------------------------------------
class Context(NamedTuple):
    """What resolving panels and alerts takes from values/defaults.yaml: threshold presets and panel sizes.

    presets is None when defaults.yaml itself is broken: its one problem is reported, not one per preset
    use (and load returns no values, so the sizes then are never used)."""

    presets: dict[str, Levels] | None
    sizes: dict  # panel type -> {width, height}
    size: dict  # the size of any other panel type
    written: dict  # preset name -> its levels as values/defaults.yaml writes them
    changed: frozenset = frozenset()  # the presets a service's `thresholds:` writes differently

    def with_overrides(self, overrides: dict, src: Source) -> tuple[Context, list[Problem]]:
        """The presets as one service sees them: a service file's `thresholds:` replaces levels of named
        presets (the LLM Orchestrator's requests take seconds), for its panels and its alerts alike."""
        if not overrides or self.presets is None:
            return self, []
        own, changed, problems = dict(self.presets), set(), []
        for name, levels in overrides.items():
            if name not in self.presets:
                problems.append(
                    Problem(
                        src.at("thresholds", name),
                        f"unknown threshold preset '{name}'{did_you_mean(name, self.presets)}",
                    )
                )
                continue
            own[name] = self.presets[name]._replace(**levels)
            if {**self.written[name], **levels} != self.written[name]:
                changed.add(name)
        return self._replace(presets=own, changed=frozenset(changed)), problems


def defaults_context(docs: Documents) -> tuple[Context, list[Problem]]:
    defaults = docs.defaults
    if defaults is None:
        return Context(None, {}, {"width": 0, "height": 0}, {}), []
    presets, problems = {}, []
    for name, levels in defaults.get("thresholds", {}).items():
        if levels_problem(levels):
            problems.append(Problem(docs.defaults_src.at("thresholds", name), levels_problem(levels)))
        presets[name] = Levels(levels.get("warning"), levels.get("critical"), levels.get("direction", "above"), name)
    return Context(
        presets, defaults.get("panel_sizes", {}), defaults["panel_size"], defaults.get("thresholds", {})
    ), problems


def levels_problem(levels: dict) -> str | None:
    """A direction alone sets no level: Grafana would get threshold steps with no values."""
    if "warning" not in levels and "critical" not in levels:
        return "thresholds set no level: give warning, critical or both (a direction alone colours nothing)"
    return None


# --- panels and rows ------------------------------------------------------------------------------
def _rows(rows: list, src: Source, context: Context) -> tuple[list[RowSpec], list[Problem]]:
    out, problems = [], []
    for i, row in enumerate(rows):
        row_src = src.child(i)
        panels = []
        for j, written in enumerate(row["panels"]):
            panel, found = _panel(written, row_src.child("panels", j), context)
            problems += found
            if panel is not None:
                panels.append(panel)
        out.append(RowSpec(row["title"], bool(row.get("collapsed", False)), panels, row_src))
    return out, problems


def _panel(panel: dict, src: Source, context: Context) -> tuple[PanelSpec | None, list[Problem]]:
    """One panel resolved, or None (and why) when it cannot be."""
    if "expr" not in panel and "targets" not in panel and "content" not in panel:
        return None, [Problem(src.at(), "a panel needs 'expr' or 'targets' (or 'content' for text)")]
    written = panel.get("thresholds")
    if isinstance(written, dict) and levels_problem(written):
        return None, [Problem(src.at("thresholds"), levels_problem(written))]
    problems = _mapping_problems(panel.get("mappings") or [], src)
    presets = context.presets
    if isinstance(written, str) and presets is not None and written not in presets:
        return None, problems + [
            Problem(src.at("thresholds"), f"unknown threshold preset '{written}'{did_you_mean(written, presets)}")
        ]
    if isinstance(written, dict):
        levels = Levels(written.get("warning"), written.get("critical"), written.get("direction", "above"))
    else:
        levels = presets[written] if written is not None and presets is not None else None
    return _panel_spec(panel, src, context, levels), problems


def _panel_spec(panel: dict, src: Source, context: Context, levels: Levels | None) -> PanelSpec:
    size = context.sizes.get(panel["type"], context.size)
    return PanelSpec(
        type=panel["type"],
        title=panel["title"],
        description=panel["description"],
        targets=_targets(panel, src),
        datasource=panel.get("datasource", "metrics"),
        unit=panel.get("unit", "none"),
        width=panel.get("width", size["width"]),
        height=panel.get("height", size["height"]),
        height_fixed="height" in panel,
        src=src,
        thresholds=levels,
        series_per_job=panel.get("legend") == "{{job}}",
        mappings=[Mapping(m["value"], m["text"], m.get("color")) for m in panel.get("mappings", [])],
        links=[Link(link["title"], link["url"]) for link in panel.get("links", [])],
        decimals=panel.get("decimals"),
        min=panel.get("min"),
        max=panel.get("max"),
        no_value=panel.get("no_value"),
        stack=bool(panel.get("stack", False)),
        reduce=panel.get("reduce", "lastNotNull"),
        orientation=panel.get("orientation", "auto"),
        color=panel.get("color"),
        content=panel.get("content", ""),
        lint_exceptions=panel.get("lint_exceptions", {}),
        expect=panel.get("expect", {}),
    )


def _targets(panel: dict, src: Source) -> list[TargetSpec]:
    """The panel's queries: its `targets`, or its one `expr` (with the panel's legend), or none."""
    if "targets" in panel:
        written = [(target, src.child("targets", i)) for i, target in enumerate(panel["targets"])]
    else:
        written = [({"expr": panel["expr"], "legend": panel.get("legend")}, src)] if "expr" in panel else []
    table = "table" if panel["type"] == "table" else "time_series"
    return [
        TargetSpec(
            expr=target["expr"],
            legend=target.get("legend") or "__auto",
            # the target's own, else the panel's, else False
            instant=bool(target["instant"] if target.get("instant") is not None else panel.get("instant", False)),
            exemplar=bool(target["exemplar"] if target.get("exemplar") is not None else panel.get("exemplar", False)),
            format=target.get("format", table),
            src=target_src,
            expect=target.get("expect", {}),
        )
        for target, target_src in written
    ]


def _mapping_problems(mappings: list, src: Source) -> list[Problem]:
    """Grafana keys value mappings by text, so 1 and '1' are one value and the second would silently win."""
    problems, seen = [], {}
    for k, mapping in enumerate(mappings):
        key = str(mapping["value"])
        if key in seen:
            problems.append(
                Problem(
                    src.at("mappings", k, "value"),
                    f"value {quote(mapping['value'])} is already mapped by mappings[{seen[key]}] "
                    f"(Grafana compares values as text): map each value once",
                )
            )
        seen.setdefault(key, k)
    return problems


# --- variables ------------------------------------------------------------------------------------
# Variables every dashboard frame defines itself (templates/dashboard.jsonnet): job and interval on service
# dashboards, service on the overview. A values variable of the same name would be a second one.
BUILT_IN_VARIABLES = ("interval", "job", "service")


def variable_problems(own: list, shared: list, src: Source, shared_src: Source | None) -> list[Problem]:
    """A service's variables may not repeat a built-in, a shared (values/standard.yaml) or each other's name,
    nor take a name of Grafana's own ($__interval, $__range, ...)."""
    problems = []
    first: dict[str, Where] = {}
    for k, var in enumerate(shared):
        first.setdefault(var["name"], shared_src.at(k, "name"))
    for k, var in enumerate(own):
        name, where = var["name"], src.at(k, "name")
        if name in BUILT_IN_VARIABLES or name.startswith("__"):
            problems.append(
                Problem(
                    where,
                    f"variable '{name}' repeats a built-in variable (every dashboard defines "
                    f"{', '.join(BUILT_IN_VARIABLES)}; Grafana's own start with __): pick another name",
                )
            )
        elif name in first:
            other = first[name]
            problems.append(
                Problem(where, f"variable '{name}' is already defined ({other.file}:{other.line}): pick another name")
            )
        first.setdefault(name, where)
    return problems


def _variables(specs: list, src: Source) -> list[VariableSpec]:
    return [
        VariableSpec(
            name=var["name"],
            label=var.get("label", var["name"].replace("_", " ").capitalize()),
            metric=var.get("metric"),
            values=var.get("values"),
            label_name=var.get("label_name", var["name"]),
            multi=var.get("multi", True),
            include_all=var.get("include_all", True),
            src=src.child(k),
        )
        for k, var in enumerate(specs)
    ]


# --- alerts and recording rules -------------------------------------------------------------------
def _alerts(alerts: list, src: Source, presets: dict[str, Levels] | None) -> tuple[list[AlertSpec], list[Problem]]:
    out, problems = [], []
    if presets is None:
        return out, problems
    for i, alert in enumerate(alerts):
        a_src = src.child(i)
        preset, level = alert["threshold"].split(".")
        if preset not in presets:
            problems.append(
                Problem(a_src.at("threshold"), f"unknown threshold preset '{preset}'{did_you_mean(preset, presets)}")
            )
            continue
        levels = presets[preset]
        if getattr(levels, level) is None:
            problems.append(Problem(a_src.at("threshold"), f"threshold preset '{preset}' has no {level} level"))
            continue
        out.append(
            AlertSpec(
                name=alert["alert"],
                expr=alert["expr"],
                op="<" if levels.direction == "below" else ">",
                value=getattr(levels, level),
                severity=level,
                duration=alert["for"],
                summary=alert["summary"],
                description=alert["description"],
                dashboard=alert.get("dashboard", "service"),
                panel=alert["panel"],
                runbook=alert["runbook"],
                src=a_src,
                no_data=alert["no_data"]["state"],
                no_data_quiet=alert["no_data"].get("quiet", False),
            )
        )
    return out, problems


def rules_spec(docs: Documents, context: Context) -> tuple[RulesSpec | None, list[Problem]]:
    doc, src = docs.rules, docs.rules_src
    if doc is None:
        return None, []
    alerts, problems = _alerts(doc["alerts"], src.child("alerts"), context.presets)
    platform, found = _alerts(doc["platform_alerts"], src.child("platform_alerts"), context.presets)
    recording = [
        RecordingSpec(r["record"], r["expr"], src.child("recording", i)) for i, r in enumerate(doc["recording"])
    ]
    return RulesSpec(doc["interval"], doc["runbook_base_url"], recording, alerts, platform, src), problems + found


# --- dashboards -----------------------------------------------------------------------------------
class Shared(NamedTuple):
    """What values/standard.yaml gives every service dashboard, resolved once: the same row objects go on
    every service whose levels are the defaults'."""

    leading: list[RowSpec]
    trailing: list[RowSpec]
    variables: list[dict]  # as written, for the name checks of each service's own
    variables_src: Source | None
    variable_specs: list[VariableSpec]


def shared_parts(docs: Documents, context: Context) -> tuple[Shared, list[Problem]]:
    standard, src = docs.standard, docs.standard_src
    if standard is None:
        return Shared([], [], [], None, []), []
    variables = standard.get("variables", [])
    problems = variable_problems(variables, [], src.child("variables"), None)
    leading, found = _rows(standard["leading_rows"], src.child("leading_rows"), context)
    trailing, found2 = _rows(standard["trailing_rows"], src.child("trailing_rows"), context)
    shared = Shared(leading, trailing, variables, src.child("variables"), _variables(variables, src.child("variables")))
    return shared, problems + found + found2


def service_dashboards(
    root: Path, docs: Documents, context: Context, shared: Shared, only: list[str] | None = None, parsed=None
) -> tuple[tuple[list[DashboardSpec], dict], list[Problem]]:
    """((service dashboards by name, service -> its context where its file overrides levels), problems)."""
    services: dict[str, DashboardSpec] = {}
    overridden: dict[str, Context] = {}
    problems: list[Problem] = []
    rels = only if only is not None else service_files(root)
    for rel, doc, src, found in read_services(root, rels, parsed):
        problems += found
        if doc is None:
            continue
        found = _service_name_problems(root, rel, doc, src)
        if found:
            problems += found
            continue
        (spec, own), found = _service(doc, src, docs, context, shared)
        problems += found
        services[spec.slug] = spec
        if own is not context:
            overridden[spec.slug] = own
    problems += _port_problems(list(services.values()))
    return ([services[name] for name in sorted(services)], overridden), problems


def elsewhere_contexts(context: Context, elsewhere: tuple[Elsewhere, ...]) -> dict[str, Context]:
    """The contexts of services taken from the cache, as far as the overview reads them (their changed levels)."""
    if context.presets is None:
        return {}
    return {
        other.slug: context._replace(
            presets={**context.presets, **other.changed_levels}, changed=frozenset(other.changed_levels)
        )
        for other in elsewhere
        if other.changed_levels
    }


def _service_name_problems(root: Path, rel: str, doc: dict, src: Source) -> list[Problem]:
    name = doc["service"]
    if name != Path(rel).stem:
        twin = root / "values" / "services" / f"{name}.yaml"
        message = (
            f"duplicate service '{name}' (also in values/services/{name}.yaml)"
            if twin.exists()
            else f"service '{name}' must live in values/services/{name}.yaml"
        )
        return [Problem(src.at("service"), message)]
    if name == "overview":
        return [Problem(src.at("service"), "'overview' is the platform overview's name; pick another")]
    return []


def _service(
    doc: dict, src: Source, docs: Documents, context: Context, shared: Shared
) -> tuple[tuple[DashboardSpec, Context], list[Problem]]:
    """One service's dashboard, and the context (presets) it sees."""
    problems = variable_problems(
        doc.get("variables", []), shared.variables, src.child("variables"), shared.variables_src
    )
    dropped = {p.where.path for p in problems}  # left out, so they do not also fail every query that uses them
    own_variables = [
        v for v in _variables(doc.get("variables", []), src.child("variables")) if v.src.at("name").path not in dropped
    ]
    own, found = context.with_overrides(doc.get("thresholds", {}), src)
    problems += found
    rows, found = _rows(doc["rows"], src.child("rows"), own)
    problems += found
    lead, trail = shared.leading, shared.trailing
    if own is not context and docs.standard is not None:
        # The shared rows with this service's levels: its latency panels colour at its own levels.
        lead = _rows(docs.standard["leading_rows"], docs.standard_src.child("leading_rows"), own)[0]
        trail = _rows(docs.standard["trailing_rows"], docs.standard_src.child("trailing_rows"), own)[0]
    alerts, found = _alerts(doc.get("alerts", []), src.child("alerts"), own.presets)
    problems += found
    rule_alerts = None
    if own is not context and docs.rules is not None:
        rule_alerts = _alerts(docs.rules["alerts"], docs.rules_src.child("alerts"), own.presets)[0]
    name = doc["service"]
    spec = DashboardSpec(
        "service",
        name,
        doc["title"],
        doc["description"],
        list(doc.get("tags", [])),
        lead + rows + trail,
        src,
        job=name,
        port=doc["port"],
        variables=shared.variable_specs + own_variables,
        alerts=alerts,
        rule_alerts=rule_alerts,
        changed_levels={preset: own.presets[preset] for preset in sorted(own.changed)},
    )
    return (spec, own), problems


def _port_problems(services: list[DashboardSpec]) -> list[Problem]:
    problems, ports = [], {}
    for spec in services:
        if spec.port in ports:
            problems.append(
                Problem(spec.src.at("port"), f"port {spec.port} is already used by service '{ports[spec.port]}'")
            )
        ports.setdefault(spec.port, spec.slug)
    return problems


def overview_dashboard(
    docs: Documents, context: Context, overridden: dict[str, Context]
) -> tuple[list[DashboardSpec], list[Problem]]:
    """The overview, first of the dashboards (an empty list when its file is broken)."""
    doc, src = docs.overview, docs.overview_src
    if doc is None:
        return [], []
    rows, problems = _rows(doc["rows"], src.child("rows"), context)
    return [
        DashboardSpec(
            "overview",
            "overview",
            doc["title"],
            doc["description"],
            list(doc.get("tags", [])),
            _per_service_levels(rows, overridden),
            src,
        )
    ], problems


def _per_service_levels(rows: list[RowSpec], overridden: dict[str, Context]) -> list[RowSpec]:
    """On the overview, a panel with one series per service (legend {{job}}) colours each service's series
    at that service's own levels, so a service with an override is not red at its normal."""
    for row in rows:
        for panel in row.panels:
            levels = panel.thresholds
            if levels is None or levels.preset is None or not panel.series_per_job:
                continue
            panel.series_thresholds = {
                job: own.presets[levels.preset]
                for job, own in sorted(overridden.items())
                if levels.preset in own.changed
            }
    return rows


# --- the catalog and the scenarios ----------------------------------------------------------------
def catalog_specs(root: Path, docs: Documents) -> tuple[Catalog, list[Problem]]:
    metrics = (docs.catalog or {}).get("metrics", {})
    # Owners are the service files present, loaded cleanly or not, so one broken file is one problem.
    known_owners = {rel[len("values/services/") : -len(".yaml")] for rel in service_files(root)} | {"all", "platform"}
    problems = [
        Problem(
            docs.catalog_src.at("metrics", name, "service"),
            f"unknown service '{metric['service']}'{did_you_mean(metric['service'], known_owners)}",
        )
        for name, metric in metrics.items()
        if metric["service"] not in known_owners
    ]
    catalog = {
        name: MetricSpec(
            name,
            metric["type"],
            metric["service"],
            metric["help"],
            metric.get("labels", {}),
            metric.get("spec", False),
            Synthetic(**metric.get("synthetic", {})),
            sources=(name,),
        )
        for name, metric in metrics.items()
    }
    return catalog, problems


def scenario_problems(docs: Documents, dashboards: list[DashboardSpec]) -> list[Problem]:
    """Panels name scenarios: a typo would silently check nothing. (What scenarios name, services and
    metrics, is checked by the live check: removing a service must not fail the build.)"""
    if docs.scenarios is None:
        return []
    scenarios = docs.scenarios.get("scenarios", {})
    declared = []
    for panel in distinct_panel_specs(dashboards):
        declared += [(panel.src, name) for name in panel.expect]
        declared += [(target.src, name) for target in panel.targets for name in target.expect]
    return [
        Problem(src.at("expect", name), f"unknown scenario '{name}'{did_you_mean(name, scenarios)}")
        for src, name in declared
        if name not in scenarios
    ]

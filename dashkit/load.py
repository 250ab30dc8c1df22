"""Stage 1, load: read values/*.yaml, check them against the values schema, and resolve them into specs.

Nothing here knows about Grafana JSON; it only turns what users wrote into located, complete specs.
"""

from __future__ import annotations

import difflib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import jsonschema_rs

from .problems import Problem, Source, Where
from .safe_read import read_text, template_problems
from .yamlsource import excerpt, load_yaml

SCHEMA_FILE = Path(__file__).resolve().parent.parent / "schemas" / "values.schema.json"
_validators: dict[str, object] = {}
_schema: dict | None = None


@dataclass
class PanelSpec:
    values: dict  # the panel as written, with threshold presets resolved
    src: Source  # where it was written, for error messages


@dataclass
class RowSpec:
    title: str
    collapsed: bool
    panels: list[PanelSpec]
    src: Source


@dataclass
class VariableSpec:
    name: str
    label: str
    metric: str | None  # label values of this metric, or
    values: list[str] | None  # fixed choices
    label_name: str
    multi: bool
    include_all: bool
    src: Source


@dataclass
class AlertSpec:
    name: str
    expr: str  # the measured quantity, with $job where the alert is per service
    op: str  # ">" or "<", from the preset's direction
    value: float  # the preset's level
    severity: str  # the level's name: warning or critical
    duration: str
    summary: str
    description: str
    dashboard: str  # "service" or "overview"
    panel: str
    runbook: str
    src: Source
    no_data: str = "NoData"  # Grafana's noDataState for this alert, chosen in values with a reason
    no_data_quiet: bool = False  # no data is the alert's quiet state (absent(), a counter before its first event)


@dataclass
class RecordingSpec:
    record: str
    expr: str
    src: Source


@dataclass
class RulesSpec:
    interval: str
    runbook_base_url: str
    recording: list[RecordingSpec]
    alerts: list[AlertSpec]  # instantiated for every service
    platform_alerts: list[AlertSpec]
    src: Source


@dataclass
class DashboardSpec:
    kind: str  # "overview" or "service"
    slug: str  # "overview" or the service name
    title: str
    description: str
    tags: list[str]
    rows: list[RowSpec]
    src: Source
    job: str | None = None
    port: int | None = None
    variables: list[VariableSpec] = field(default_factory=list)
    alerts: list[AlertSpec] = field(default_factory=list)  # the service's own
    # values/rules.yaml's alerts resolved with this service's threshold overrides; None: no overrides
    rule_alerts: list[AlertSpec] | None = None


@dataclass
class Values:
    defaults: dict
    catalog: dict  # metric name -> metric dict
    catalog_src: Source
    dashboards: list[DashboardSpec]  # overview first, then services by name
    rules: RulesSpec | None = None
    defaults_src: Source | None = None
    scenarios: dict = field(default_factory=dict)  # live-check scenario name -> its values (values/scenarios.yaml)
    scenarios_src: Source | None = None


def _schema_for(kind: str):
    global _schema
    if kind not in _validators:
        if _schema is None:
            _schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
        doc = {"$ref": f"#/definitions/{kind}", "definitions": _schema["definitions"]}
        _validators[kind] = jsonschema_rs.Draft7Validator(doc)
    return _validators[kind]


def _subschema(path) -> dict:
    """Follow a jsonschema-rs schema_path back to the schema object it names."""
    node: object = {"definitions": _schema["definitions"]}
    for part in path:
        if isinstance(node, dict) and "$ref" in node and part not in node:
            node = _schema["definitions"][node["$ref"].rsplit("/", 1)[1]]
        node = node[part] if isinstance(node, dict) else node[int(part)]
    if isinstance(node, dict) and "$ref" in node:
        node = _schema["definitions"][node["$ref"].rsplit("/", 1)[1]]
    return node


def did_you_mean(word: str, choices) -> str:
    close = difflib.get_close_matches(str(word), sorted(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def schema_problems(data, kind: str, src: Source) -> list[Problem]:
    problems = []
    for err in _schema_for(kind).iter_errors(data):
        path = tuple(err.instance_path)
        kind_name = type(err.kind).__name__
        if kind_name == "AdditionalProperties":
            allowed = _subschema(list(err.schema_path)[:-1]).get("properties", {})
            for key in err.kind.unexpected:
                problems.append(Problem(src.at(*path, key), f"unknown key '{key}'{did_you_mean(key, allowed)}"))
            continue
        if kind_name == "Required":
            message = f"missing required key '{err.kind.property}'"
        elif kind_name == "Not":
            message = "use either 'expr' or 'targets', not both"
        elif kind_name == "Enum":
            options = err.kind.options if hasattr(err.kind, "options") else _subschema(err.schema_path)["enum"]
            message = f"{_quote(_at(data, path))} is not one of {', '.join(map(str, options))}{did_you_mean(_at(data, path), options)}"
        elif kind_name == "Pattern":
            desc = _subschema(list(err.schema_path)[:-1]).get("description")
            message = f"{_quote(_at(data, path))} is not allowed here" + (f": {desc}" if desc else "")
        elif kind_name == "OneOfNotValid" and list(err.schema_path)[-2:-1] == ["thresholds"]:
            message = "thresholds must be a preset name or {warning, critical, direction}"
        elif kind_name == "OneOfNotValid" and {"metric", "values"} <= set(_subschema(list(err.schema_path)[:-1]).get("properties", {})):
            message = "a variable needs 'metric' (label values from Mimir) or 'values' (fixed choices), one of the two"
        else:
            message = _short_message(err.message, _at(data, path))
        problems.append(Problem(src.at(*path), message))
    return problems


def _quote(value) -> str:
    """A value as JSON, cut to a short excerpt: a message never repeats a whole document back."""
    return excerpt(json.dumps(value, ensure_ascii=False), 60)


def _short_message(message: str, value) -> str:
    """jsonschema-rs starts its messages with the whole offending value; keep only an excerpt of it."""
    for written in (json.dumps(value, ensure_ascii=False), json.dumps(value, ensure_ascii=False, separators=(",", ":")), json.dumps(value)):
        if message.startswith(written) and len(written) > 60:
            return _quote(value) + message[len(written):]
    return excerpt(message, 300)


def _at(data, path):
    for part in path:
        data = data[part]
    return data


def _read(root: Path, rel: str, kind: str, problems: list[Problem]):
    text, refused = read_text(root, rel)
    if text is None:
        problems.append(Problem(Where(rel, 0), refused))
        return None, Source(rel, {(): 1})
    data, src, found = load_yaml(text, rel)
    problems.extend(found)
    if data is None or found:
        return None, src
    found = schema_problems(data, kind, src)
    problems.extend(found)
    return (None if found else data), src


PARALLEL_FROM = 64  # service files; below this a second process costs more than it saves


def _read_chunk(args: tuple) -> list[tuple]:
    root, rels = args
    out = []
    for rel in rels:
        found: list[Problem] = []
        doc, src = _read(root, rel, "service", found)
        out.append((rel, doc, src, found))
    return out


def read_services(root: Path, rels: list[str]) -> list[tuple]:
    """(rel, document or None, source, problems) per service file, in order. A large fleet is read on
    every core: parsing and validating YAML is most of a 1,000-service build's single-core time."""
    workers = min(os.cpu_count() or 1, 4)
    if len(rels) < PARALLEL_FROM or workers < 2:
        return _read_chunk((root, rels))
    import multiprocessing

    chunks = [(root, rels[i::workers]) for i in range(workers)]
    with multiprocessing.get_context("fork").Pool(workers - 1) as pool:
        pending = pool.map_async(_read_chunk, chunks[1:])
        results = _read_chunk(chunks[0])  # this process takes a share too
        for chunk in pending.get(timeout=600):
            results += chunk
    order = {rel: i for i, rel in enumerate(rels)}
    return sorted(results, key=lambda item: order[item[0]])


def _rows(rows: list, src: Source, presets: dict, problems: list[Problem]) -> list[RowSpec]:
    out = []
    for i, row in enumerate(rows):
        row_src = src.child(i)
        panels = []
        for j, panel in enumerate(row["panels"]):
            p_src = row_src.child("panels", j)
            panel = dict(panel)
            if "expr" not in panel and "targets" not in panel and "content" not in panel:
                problems.append(Problem(p_src.at(), "a panel needs 'expr' or 'targets' (or 'content' for text)"))
                continue
            th = panel.get("thresholds")
            if isinstance(th, dict) and levels_problem(th):
                problems.append(Problem(p_src.at("thresholds"), levels_problem(th)))
                continue
            problems += _mapping_problems(panel.get("mappings") or [], p_src)
            if isinstance(th, str) and presets is not None:
                if th not in presets:
                    problems.append(
                        Problem(p_src.at("thresholds"), f"unknown threshold preset '{th}'{did_you_mean(th, presets)}")
                    )
                    continue
                panel["thresholds"] = dict(presets[th], preset=th)
            panels.append(PanelSpec(panel, p_src))
        out.append(RowSpec(row["title"], bool(row.get("collapsed", False)), panels, row_src))
    return out


def levels_problem(levels: dict) -> str | None:
    """A direction alone sets no level: Grafana would get threshold steps with no values."""
    if "warning" not in levels and "critical" not in levels:
        return "thresholds set no level: give warning, critical or both (a direction alone colours nothing)"
    return None


def _mapping_problems(mappings: list, src: Source) -> list[Problem]:
    """Grafana keys value mappings by text, so 1 and '1' are one value and the second would silently win."""
    problems, seen = [], {}
    for k, mapping in enumerate(mappings):
        key = str(mapping["value"])
        if key in seen:
            problems.append(Problem(src.at("mappings", k, "value"),
                                    f"value {_quote(mapping['value'])} is already mapped by mappings[{seen[key]}] "
                                    f"(Grafana compares values as text): map each value once"))
        seen.setdefault(key, k)
    return problems


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
            problems.append(Problem(where, f"variable '{name}' repeats a built-in variable (every dashboard defines "
                                           f"{', '.join(BUILT_IN_VARIABLES)}; Grafana's own start with __): pick another name"))
        elif name in first:
            other = first[name]
            problems.append(Problem(where, f"variable '{name}' is already defined ({other.file}:{other.line}): pick another name"))
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


def _alerts(alerts: list, src: Source, presets: dict, problems: list[Problem]) -> list[AlertSpec]:
    out = []
    if presets is None:
        return out
    for i, alert in enumerate(alerts):
        a_src = src.child(i)
        preset, level = alert["threshold"].split(".")
        if preset not in presets:
            problems.append(Problem(a_src.at("threshold"), f"unknown threshold preset '{preset}'{did_you_mean(preset, presets)}"))
            continue
        if level not in presets[preset]:
            problems.append(Problem(a_src.at("threshold"), f"threshold preset '{preset}' has no {level} level"))
            continue
        out.append(
            AlertSpec(
                name=alert["alert"],
                expr=alert["expr"],
                op="<" if presets[preset].get("direction") == "below" else ">",
                value=presets[preset][level],
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
    return out


def _service_presets(presets: dict | None, overrides: dict, src: Source, problems: list[Problem]) -> dict | None:
    """The threshold presets as one service sees them: a service file's `thresholds:` replaces levels of
    named presets (the LLM Orchestrator's requests take seconds), for its panels and its alerts alike."""
    if not overrides or presets is None:
        return presets
    own = dict(presets)
    for name, levels in overrides.items():
        if name not in presets:
            problems.append(Problem(src.at("thresholds", name), f"unknown threshold preset '{name}'{did_you_mean(name, presets)}"))
            continue
        own[name] = {**presets[name], **levels}
    return own


def _per_service_levels(rows: list[RowSpec], overridden: dict[str, dict]) -> list[RowSpec]:
    """On the overview, a panel with one series per service (legend {{job}}) colours each service's series
    at that service's own levels, so a service with an override is not red at its normal."""
    for row in rows:
        for panel in row.panels:
            levels = panel.values.get("thresholds")
            if isinstance(levels, dict) and "preset" in levels and panel.values.get("legend") == "{{job}}":
                series = {job: dict(own[levels["preset"]], preset=levels["preset"]) for job, own in sorted(overridden.items())
                          if own[levels["preset"]] != {k: v for k, v in levels.items() if k != "preset"}}
                if series:
                    panel.values["series_thresholds"] = series
    return rows


def load(root: Path) -> tuple[Values | None, list[Problem]]:
    """Read every values file under root/values. Returns the resolved values and all problems found."""
    root = Path(root)
    # Template engines open their files themselves: the whole tree is confined first, and any refusal stops
    # the build before a template is read.
    refused_templates = [Problem(Where(rel, 0), why) for rel, why in template_problems(root, root / "templates")]
    problems: list[Problem] = []
    defaults, defaults_src = _read(root, "values/defaults.yaml", "defaults", problems)
    catalog_doc, catalog_src = _read(root, "values/metrics.yaml", "metrics", problems)
    standard, standard_src = _read(root, "values/standard.yaml", "standard", problems)
    overview, overview_src = _read(root, "values/overview.yaml", "overview", problems)
    rules_doc, rules_src = _read(root, "values/rules.yaml", "rules", problems)
    scenarios_doc, scenarios_src = (_read(root, "values/scenarios.yaml", "scenarios", problems)
                                    if os.path.lexists(root / "values" / "scenarios.yaml") else (None, None))
    # None when defaults.yaml itself is broken: its one problem is reported, not one per preset use.
    presets = defaults.get("thresholds", {}) if defaults is not None else None
    for name, levels in (presets or {}).items():
        if levels_problem(levels):
            problems.append(Problem(defaults_src.at("thresholds", name), levels_problem(levels)))
    if standard:
        problems += variable_problems(standard.get("variables", []), [], standard_src.child("variables"), None)
    rules = None
    if rules_doc is not None:
        rules = RulesSpec(
            interval=rules_doc["interval"],
            runbook_base_url=rules_doc["runbook_base_url"],
            recording=[
                RecordingSpec(r["record"], r["expr"], rules_src.child("recording", i)) for i, r in enumerate(rules_doc["recording"])
            ],
            alerts=_alerts(rules_doc["alerts"], rules_src.child("alerts"), presets, problems),
            platform_alerts=_alerts(rules_doc["platform_alerts"], rules_src.child("platform_alerts"), presets, problems),
            src=rules_src,
        )

    # The shared rows are resolved once and the same row objects go on every service dashboard.
    shared_rows = (
        (_rows(standard["leading_rows"], standard_src.child("leading_rows"), presets, problems),
         _rows(standard["trailing_rows"], standard_src.child("trailing_rows"), presets, problems))
        if standard else ([], [])
    )
    services: dict[str, DashboardSpec] = {}
    overridden: dict[str, dict] = {}  # service -> its presets, for services whose file overrides levels
    service_files = [p.relative_to(root).as_posix() for p in sorted((root / "values" / "services").glob("*.yaml"))]
    for rel, doc, src, found in read_services(root, service_files):
        problems.extend(found)
        path = root / rel
        if doc is None:
            continue
        name = doc["service"]
        if name != path.stem:
            twin = root / "values" / "services" / f"{name}.yaml"
            message = (
                f"duplicate service '{name}' (also in values/services/{name}.yaml)"
                if twin.exists()
                else f"service '{name}' must live in values/services/{name}.yaml"
            )
            problems.append(Problem(src.at("service"), message))
            continue
        if name == "overview":
            problems.append(Problem(src.at("service"), "'overview' is the platform overview's name; pick another"))
            continue
        found = variable_problems(doc.get("variables", []), (standard or {}).get("variables", []), src.child("variables"),
                                  standard_src.child("variables") if standard else None)
        problems += found
        dropped = {p.where.path for p in found}  # left out, so they do not also fail every query that uses them
        shared = _variables(standard.get("variables", []), standard_src.child("variables")) if standard else []
        variables = shared + [v for v in _variables(doc.get("variables", []), src.child("variables")) if v.src.at("name").path not in dropped]
        own_presets = _service_presets(presets, doc.get("thresholds", {}), src, problems)
        if own_presets is not presets:
            overridden[name] = own_presets
        own = _rows(doc["rows"], src.child("rows"), own_presets, problems)
        lead, trail = shared_rows
        if own_presets is not presets and standard:
            # The shared rows with this service's levels: its latency panels colour at its own levels.
            lead = _rows(standard["leading_rows"], standard_src.child("leading_rows"), own_presets, [])
            trail = _rows(standard["trailing_rows"], standard_src.child("trailing_rows"), own_presets, [])
        services[name] = DashboardSpec(
            kind="service",
            slug=name,
            title=doc["title"],
            description=doc["description"],
            tags=list(doc.get("tags", [])),
            rows=lead + own + trail,
            src=src,
            job=name,
            port=doc["port"],
            variables=variables,
            alerts=_alerts(doc.get("alerts", []), src.child("alerts"), own_presets, problems),
            rule_alerts=(_alerts(rules_doc["alerts"], rules_src.child("alerts"), own_presets, [])
                         if own_presets is not presets and rules_doc is not None else None),
        )

    ports: dict[int, str] = {}
    for spec in services.values():
        if spec.port in ports:
            problems.append(Problem(spec.src.at("port"), f"port {spec.port} is already used by service '{ports[spec.port]}'"))
        ports.setdefault(spec.port, spec.slug)

    dashboards = []
    if overview is not None:
        dashboards.append(
            DashboardSpec(
                kind="overview",
                slug="overview",
                title=overview["title"],
                description=overview["description"],
                tags=list(overview.get("tags", [])),
                rows=_per_service_levels(_rows(overview["rows"], overview_src.child("rows"), presets, problems), overridden),
                src=overview_src,
            )
        )
    dashboards.extend(services[name] for name in sorted(services))

    catalog = (catalog_doc or {}).get("metrics", {})
    # Owners are the service files present, loaded cleanly or not, so one broken file is one problem.
    known_owners = {p.stem for p in (root / "values" / "services").glob("*.yaml")} | {"all", "platform"}
    for name, metric in catalog.items():
        if metric["service"] not in known_owners:
            problems.append(
                Problem(
                    catalog_src.at("metrics", name, "service"),
                    f"unknown service '{metric['service']}'{did_you_mean(metric['service'], known_owners)}",
                )
            )
    scenarios = (scenarios_doc or {}).get("scenarios", {})
    if scenarios_doc is not None:
        problems += _scenario_problems(scenarios, scenarios_src, dashboards, catalog)
    # Later stages still run on whatever loaded cleanly, so one build reports every problem at once.
    if defaults is None or catalog_doc is None or refused_templates:
        return None, problems + refused_templates
    return Values(defaults, catalog, catalog_src, dashboards, rules, defaults_src, scenarios, scenarios_src), problems


def _scenario_problems(scenarios: dict, src: Source, dashboards: list[DashboardSpec], catalog: dict) -> list[Problem]:
    """Panels name scenarios: a typo would silently check nothing. (What scenarios name, services and
    metrics, is checked by the live check: removing a service must not fail the build.)"""
    problems = []
    seen: set[int] = set()
    for dash in dashboards:
        for row in dash.rows:
            for panel in row.panels:
                if id(panel) in seen:  # shared rows: one spec on every service dashboard, checked once
                    continue
                seen.add(id(panel))
                declared = [(("expect", name)) for name in panel.values.get("expect", {})]
                declared += [("targets", i, "expect", name) for i, target in enumerate(panel.values.get("targets") or [])
                             for name in target.get("expect", {})]
                for path in declared:
                    if path[-1] not in scenarios:
                        problems.append(Problem(panel.src.at(*path), f"unknown scenario '{path[-1]}'{did_you_mean(path[-1], scenarios)}"))
    return problems

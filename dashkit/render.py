"""Stage 2, render: turn each panel spec into Grafana panel JSON through its panel-type template.

A panel type is one file in templates/panels/: `<type>.json.j2` (Jinja, sandboxed) or `<type>.jsonnet`
(go-jsonnet). The engine is chosen by the extension (see engines.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .engines import TemplateError, Templates
from .problems import Problem, Source
from .specs import DashboardSpec, Levels, Link, Mapping, PanelSpec, Values
from .suggest import did_you_mean

REF_IDS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


# --- the data a panel template receives ------------------------------------------------------------
def threshold_steps(levels: Levels | None, colors: dict) -> dict:
    """Warning/critical levels -> Grafana threshold steps in the project's one colour scheme."""
    if levels is None:
        return {"mode": "absolute", "steps": [{"color": colors["ok"], "value": None}]}
    warning, critical = levels.warning, levels.critical
    if levels.direction == "above":
        steps = [{"color": colors["ok"], "value": None}]
        if warning is not None:
            steps.append({"color": colors["warning"], "value": warning})
        if critical is not None:
            steps.append({"color": colors["critical"], "value": critical})
    else:
        first = colors["critical"] if critical is not None else colors["warning"]
        steps = [{"color": first, "value": None}]
        if critical is not None and warning is not None:
            steps.append({"color": colors["warning"], "value": critical})
        steps.append({"color": colors["ok"], "value": warning if warning is not None else critical})
    return {"mode": "absolute", "steps": steps}


def value_mappings(mappings: list[Mapping]) -> list:
    if not mappings:
        return []
    options = {}
    for index, m in enumerate(mappings):
        result = {"index": index, "text": m.text}
        if m.color is not None:
            result["color"] = m.color
        options[str(m.value)] = result
    return [{"type": "value", "options": options}]


def data_link(link: Link) -> dict:
    """A data link, in the full link shape Grafana's published schema asks of fieldConfig links."""
    return {
        "title": link.title,
        "url": link.url,
        "type": "link",
        "icon": "external link",
        "tooltip": link.title,
        "tags": [],
        "asDropdown": False,
        "targetBlank": False,
        "includeVars": False,
        "keepTime": True,
    }


def panel_context(spec: PanelSpec, defaults: dict) -> dict:
    v = spec  # its fields map one to one to what the template gets
    ds = defaults["datasources"][v.datasource]
    targets = []
    for i, t in enumerate(v.targets):
        targets.append(
            {
                "refId": REF_IDS[i],
                "expr": t.expr,
                "legendFormat": t.legend,
                "instant": t.instant,
                "range": not t.instant,
                # exemplars (trace ids on histogram samples) drawn as points that open the trace in Tempo
                "exemplar": t.exemplar,
                "format": t.format,
            }
        )
    levels = v.thresholds
    return {
        "type": v.type,
        "title": v.title,
        "description": v.description,
        "datasource": {"type": ds["type"], "uid": ds["uid"]},
        "targets": targets,
        "unit": v.unit,
        "decimals": v.decimals,
        "min": v.min,
        "max": v.max,
        "no_value": v.no_value,  # what Grafana shows instead of "No data"
        "has_thresholds": levels is not None,
        "thresholds": threshold_steps(levels, defaults["colors"]),
        # one series' own levels (a service overriding a preset, on the overview), by its display name
        "overrides": [
            {"matcher": {"id": "byNames", "options": {"mode": "include", "names": [name]}},  # object options: Grafana's published schema
             "properties": [{"id": "thresholds", "value": threshold_steps(own, defaults["colors"])}]}
            for name, own in sorted(v.series_thresholds.items())
        ],
        "mappings": value_mappings(v.mappings),
        "links": [data_link(link) for link in v.links],
        "stack": v.stack,
        "reduce": v.reduce,
        "orientation": v.orientation,
        "color": v.color,
        "content": v.content,
    }


@dataclass
class RenderedPanel:
    json: dict
    width: int
    height: int
    src: Source
    lint_exceptions: dict
    height_fixed: bool = False
    expect: dict = field(default_factory=dict)  # live-check scenario -> expectation, as written


@dataclass
class RenderedRow:
    json: dict
    panels: list[RenderedPanel]
    src: Source


@dataclass
class RenderedDashboard:
    spec: DashboardSpec
    rows: list[RenderedRow]


def render(values: Values, renderer: Templates | None = None) -> tuple[list[RenderedDashboard], list[Problem]]:
    renderer = renderer or Templates()
    problems: list[Problem] = []
    out = []
    done: dict[int, RenderedPanel | None] = {}  # shared rows: one spec object, rendered once
    for dash in values.dashboards:
        rows = []
        for row in dash.rows:
            panels = []
            for spec in row.panels:
                if id(spec) not in done:
                    done[id(spec)] = render_panel(spec, values.defaults, renderer, problems)
                rendered = done[id(spec)]
                if rendered is not None:
                    panels.append(rendered)
            try:
                header = renderer.render_file(renderer.panels["row"], row={"title": row.title, "collapsed": row.collapsed})
            except (KeyError, TemplateError) as err:
                message = f"template error: row: {err}"
                if not any(p.message == message for p in problems):  # once, not once per row
                    problems.append(Problem(row.src.at("title"), message))
                continue
            rows.append(RenderedRow(header, panels, row.src))
        out.append(RenderedDashboard(dash, rows))
    return out, problems


def render_panel(spec: PanelSpec, defaults: dict, renderer: Templates, problems: list[Problem]) -> RenderedPanel | None:
    kind = spec.type
    template = renderer.panels.get(kind)
    if template is None or kind == "row":
        choices = [t for t in renderer.panels if t != "row"]
        problems.append(Problem(spec.src.at("type"), f"unknown panel type '{kind}'{did_you_mean(kind, choices)}"))
        return None
    try:
        body = renderer.render_file(template, panel=panel_context(spec, defaults))
    except TemplateError as err:
        # A broken template breaks every panel of its type: report it once, at the first panel.
        message = f"template error: {err}"
        if not any(p.message.startswith(message) for p in problems):
            problems.append(Problem(spec.src.at("type"), message))
        return None
    return RenderedPanel(body, spec.width, spec.height, spec.src, spec.lint_exceptions, spec.height_fixed,
                         _expectations(spec))


def _expectations(spec: PanelSpec) -> dict:
    """Live-check expectations as written: the panel's under "*", a query's own under its refId."""
    found = {"*": spec.expect} if spec.expect else {}
    for i, target in enumerate(spec.targets):
        if target.expect:
            found[REF_IDS[i]] = target.expect
    return found



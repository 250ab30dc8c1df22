"""Stage 2, render: turn each panel spec into Grafana panel JSON through its panel-type template.

A panel type is one file in templates/panels/: `<type>.jsonnet` (go-jsonnet: every built-in type; the
pieces they share are templates/lib/panel.libsonnet) or `<type>.json.j2` (Jinja, sandboxed: for a panel
that is mostly text). The engine is chosen by the extension (see engines.py). This module only turns
values into the data a template receives; what Grafana's JSON looks like is written in templates/.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .engines import TemplateError, Templates
from .problems import Problem, Source
from .specs import DashboardSpec, Levels, Mapping, PanelSpec, Values
from .suggest import did_you_mean

REF_IDS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


# --- the data a panel template receives ------------------------------------------------------------
# Values as data: defaults filled in, queries given refIds. What Grafana's JSON looks like (threshold steps,
# mappings, links, targets) is the templates' business, written once in templates/lib/panel.libsonnet.
def panel_context(spec: PanelSpec, defaults: dict) -> dict:
    v = spec  # its fields map one to one to what the template gets; load resolved every default
    ds = defaults["datasources"][v.datasource]
    return {
        "type": v.type,
        "title": v.title,
        "description": v.description,
        "datasource": {"type": ds["type"], "uid": ds["uid"]},
        "targets": _targets(v),
        "unit": v.unit,
        "decimals": v.decimals,
        "min": v.min,
        "max": v.max,
        "no_value": v.no_value,  # what Grafana shows instead of "No data"
        "thresholds": _levels(v.thresholds),  # {warning, critical, direction} or None
        "series_thresholds": [
            {"name": name, "levels": _levels(own)} for name, own in sorted(v.series_thresholds.items())
        ],
        "colors": defaults["colors"],  # ok, warning, critical: the one colour scheme
        "mappings": _mappings(v.mappings),
        "links": [{"title": link.title, "url": link.url} for link in v.links],
        "stack": v.stack,
        "reduce": v.reduce,
        "orientation": v.orientation,
        "color": v.color,
        "content": v.content,
    }


def _targets(v: PanelSpec) -> list[dict]:
    return [
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
        for i, t in enumerate(v.targets)
    ]


def _levels(levels: Levels | None) -> dict | None:
    if levels is None:
        return None
    return {"warning": levels.warning, "critical": levels.critical, "direction": levels.direction}


def _mappings(mappings: list[Mapping]) -> list[dict]:
    """Keyed by the value as text, as Grafana compares them (a repeated value is a problem load reports)."""
    by_text = {}
    for index, m in enumerate(mappings):
        by_text[str(m.value)] = {"value": str(m.value), "index": index, "text": m.text, "color": m.color}
    return list(by_text.values())


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
    results = _render_all(values, renderer)
    problems: list[Problem] = []
    out = []
    done: dict[int, RenderedPanel | None] = {}  # shared rows: one spec object, rendered once
    for dash in values.dashboards:
        rows = []
        for row in dash.rows:
            panels = []
            for spec in row.panels:
                if id(spec) not in done:
                    done[id(spec)] = _panel(spec, results.get(id(spec)), values.defaults, renderer, problems)
                if done[id(spec)] is not None:
                    panels.append(done[id(spec)])
            header = results.get((row.title, row.collapsed), KeyError("row"))
            if isinstance(header, Exception):
                message = f"template error: row: {header}"
                if not any(p.message == message for p in problems):  # once, not once per row
                    problems.append(Problem(row.src.at("title"), message))
                continue
            rows.append(RenderedRow(header, panels, row.src))
        out.append(RenderedDashboard(dash, rows))
    return out, problems


def _render_all(values: Values, renderer: Templates) -> dict:
    """Every distinct panel (by spec: the shared rows are one spec object on every service) and row header
    through its template in one batch: id(spec) or (title, collapsed) -> its JSON or the TemplateError."""
    jobs: dict = {}
    for dash in values.dashboards:
        for row in dash.rows:
            for spec in row.panels:
                template = renderer.panels.get(spec.type)
                if id(spec) not in jobs and template is not None and spec.type != "row":
                    jobs[id(spec)] = (template, {"panel": panel_context(spec, values.defaults)})
            if "row" in renderer.panels:
                jobs[(row.title, row.collapsed)] = (
                    renderer.panels["row"],
                    {"row": {"title": row.title, "collapsed": row.collapsed}},
                )
    return dict(zip(jobs, renderer.render_batch(list(jobs.values())), strict=True))


def _panel(spec: PanelSpec, body, defaults: dict, renderer: Templates, problems: list[Problem]) -> RenderedPanel | None:
    """A rendered panel with its size and what the later stages need, or None with the problem said once."""
    if body is None:
        kind = spec.type
        choices = [t for t in renderer.panels if t != "row"]
        problems.append(Problem(spec.src.at("type"), f"unknown panel type '{kind}'{did_you_mean(kind, choices)}"))
        return None
    if isinstance(body, TemplateError):
        # A broken template breaks every panel of its type: report it once, at the first panel.
        message = f"template error: {body}"
        if not any(p.message.startswith(message) for p in problems):
            problems.append(Problem(spec.src.at("type"), message))
        return None
    return RenderedPanel(
        body, spec.width, spec.height, spec.src, spec.lint_exceptions, spec.height_fixed, _expectations(spec)
    )


def _expectations(spec: PanelSpec) -> dict:
    """Live-check expectations as written: the panel's under "*", a query's own under its refId."""
    found = {"*": spec.expect} if spec.expect else {}
    for i, target in enumerate(spec.targets):
        if target.expect:
            found[REF_IDS[i]] = target.expect
    return found

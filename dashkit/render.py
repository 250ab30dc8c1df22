"""Stage 2, render: turn each panel spec into Grafana panel JSON through its panel-type template.

A panel type is one file in templates/panels/: `<type>.jsonnet` (go-jsonnet: every built-in type; the
pieces they share are templates/lib/panel.libsonnet) or `<type>.json.j2` (Jinja, sandboxed: for a panel
that is mostly text). The engine is chosen by the extension (see engines.py). This module only turns
values into the data a template receives; what Grafana's JSON looks like is written in templates/.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .engines import TemplateError, Templates
from .load import DashboardSpec, PanelSpec, Values, did_you_mean
from .problems import Problem, Source

REF_IDS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


# --- the data a panel template receives ------------------------------------------------------------
# Values as data: defaults filled in, queries given refIds. What Grafana's JSON looks like (threshold steps,
# mappings, links, targets) is the templates' business, written once in templates/lib/panel.libsonnet.
def panel_context(spec: PanelSpec, defaults: dict) -> dict:
    v = spec.values
    ds = defaults["datasources"][v.get("datasource", "metrics")]
    return {
        "type": v["type"],
        "title": v["title"],
        "description": v["description"],
        "datasource": {"type": ds["type"], "uid": ds["uid"]},
        "targets": _targets(v),
        "unit": v.get("unit", "none"),
        "decimals": v.get("decimals"),
        "min": v.get("min"),
        "max": v.get("max"),
        "no_value": v.get("no_value"),  # what Grafana shows instead of "No data"
        "thresholds": _levels(v.get("thresholds")),  # {warning, critical, direction} or None
        "series_thresholds": [{"name": name, "levels": _levels(own)} for name, own in sorted(v.get("series_thresholds", {}).items())],
        "colors": defaults["colors"],  # ok, warning, critical: the one colour scheme
        "mappings": _mappings(v.get("mappings")),
        "links": [{"title": link["title"], "url": link["url"]} for link in v.get("links", [])],
        "stack": bool(v.get("stack", False)),
        "reduce": v.get("reduce", "lastNotNull"),
        "orientation": v.get("orientation", "auto"),
        "color": v.get("color"),
        "content": v.get("content", ""),
    }


def _targets(v: dict) -> list[dict]:
    written = v.get("targets") or ([{"expr": v["expr"], "legend": v.get("legend"), "instant": v.get("instant"), "exemplar": v.get("exemplar")}] if "expr" in v else [])
    targets = []
    for i, t in enumerate(written):
        instant = bool(t.get("instant") if t.get("instant") is not None else v.get("instant", False))
        targets.append(
            {
                "refId": REF_IDS[i],
                "expr": t["expr"],
                "legendFormat": t.get("legend") or "__auto",
                "instant": instant,
                "range": not instant,
                # exemplars (trace ids on histogram samples) drawn as points that open the trace in Tempo
                "exemplar": bool(t.get("exemplar") if t.get("exemplar") is not None else v.get("exemplar", False)),
                "format": t.get("format", "table" if v["type"] == "table" else "time_series"),
            }
        )
    return targets


def _levels(levels: dict | None) -> dict | None:
    if not levels:
        return None
    return {"warning": levels.get("warning"), "critical": levels.get("critical"), "direction": levels.get("direction", "above")}


def _mappings(mappings: list | None) -> list[dict]:
    """Keyed by the value as text, as Grafana compares them (a repeated value is a problem load reports)."""
    by_text = {}
    for index, m in enumerate(mappings or []):
        by_text[str(m["value"])] = {"value": str(m["value"]), "index": index, "text": m["text"], "color": m.get("color")}
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


def _size(spec: PanelSpec, defaults: dict) -> tuple[int, int]:
    size = defaults.get("panel_sizes", {}).get(spec.values["type"], defaults["panel_size"])
    return spec.values.get("width", size["width"]), spec.values.get("height", size["height"])


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
                template = renderer.panels.get(spec.values["type"])
                if id(spec) not in jobs and template is not None and spec.values["type"] != "row":
                    jobs[id(spec)] = (template, {"panel": panel_context(spec, values.defaults)})
            if "row" in renderer.panels:
                jobs[(row.title, row.collapsed)] = (renderer.panels["row"], {"row": {"title": row.title, "collapsed": row.collapsed}})
    return dict(zip(jobs, renderer.render_batch(list(jobs.values())), strict=True))


def _panel(spec: PanelSpec, body, defaults: dict, renderer: Templates, problems: list[Problem]) -> RenderedPanel | None:
    """A rendered panel with its size and what the later stages need, or None with the problem said once."""
    if body is None:
        kind = spec.values["type"]
        choices = [t for t in renderer.panels if t != "row"]
        problems.append(Problem(spec.src.at("type"), f"unknown panel type '{kind}'{did_you_mean(kind, choices)}"))
        return None
    if isinstance(body, TemplateError):
        # A broken template breaks every panel of its type: report it once, at the first panel.
        message = f"template error: {body}"
        if not any(p.message.startswith(message) for p in problems):
            problems.append(Problem(spec.src.at("type"), message))
        return None
    width, height = _size(spec, defaults)
    return RenderedPanel(body, width, height, spec.src, spec.values.get("lint_exceptions", {}), "height" in spec.values,
                         _expectations(spec))


def _expectations(spec: PanelSpec) -> dict:
    """Live-check expectations as written: the panel's under "*", a query's own under its refId."""
    found = {"*": spec.values["expect"]} if spec.values.get("expect") else {}
    for i, target in enumerate(spec.values.get("targets") or []):
        if target.get("expect"):
            found[REF_IDS[i]] = target["expect"]
    return found



"""Stage 3, assemble: lay rendered panels out on the grid, give them ids, and wrap them in the frame.

The frame (templates/dashboard.jsonnet) is the single place where every dashboard's defaults are applied.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .engines import TemplateError, Templates
from .layout import dashboard_uid, flow, stable_id
from .out_tree import out_tree
from .problems import Problem, Source, Where
from .render import RenderedDashboard


@dataclass
class Assembled:
    """One dashboard ready to check and write, with where each panel came from."""

    path: str  # relative to the dashboards folder of out/ (OutTree.dashboard): what snapshots and diffs name
    json: dict
    src: Source  # the values file of the dashboard
    panel_src: dict[int, Source] = field(default_factory=dict)
    variable_src: dict[str, Source] = field(default_factory=dict)
    panel_exceptions: dict[int, dict] = field(default_factory=dict)  # panel id -> lint rule -> reason
    panel_expect: dict[int, dict] = field(default_factory=dict)  # panel id -> live-check scenario -> expectation
    kind: str = "service"
    job: str | None = None

    # Where generated JSON came from in values: the one lookup every check and report uses.
    def panel_source(self, panel: dict) -> Source:
        """The values a panel was written in (the dashboard's file for a panel of no values, a row's)."""
        return self.panel_src.get(panel.get("id"), self.src)

    def target_where(self, panel: dict, i: int) -> Where:
        """The line of a panel's i-th query: its `targets[i].expr`, or its `expr`."""
        src = self.panel_source(panel)
        return src.at("targets", i, "expr") if (src.base + ("targets",)) in src.lines else src.at("expr")

    def variable_where(self, name: str) -> Where:
        """The line of a variable's metric, or the dashboard's `variables` for one the frame defines."""
        return self.variable_src[name].at("metric") if name in self.variable_src else self.src.at("variables")


def lay_out(
    dash: RenderedDashboard,
) -> tuple[list[dict], dict[int, Source], dict[int, dict], dict[int, dict], list[Problem]]:
    panels: list[dict] = []
    sources: dict[int, Source] = {}
    exceptions: dict[int, dict] = {}
    expect: dict[int, dict] = {}
    problems: list[Problem] = []
    titles: dict[int, str] = {}  # id -> the title it was derived from, to tell a hash collision from a repeat
    y = 0
    for row in dash.rows:
        row_json = dict(row.json)
        row_json["id"] = stable_id("row", row_json["title"])
        row_json["gridPos"] = {"h": 1, "w": 24, "x": 0, "y": y}
        _claim(row_json["id"], row.src.at("title"), sources, row.src, problems, "row", titles, row_json["title"])
        header_y = y
        positions, y = flow(
            [(p.width, p.height) for p in row.panels], y + 1, fixed=[p.height_fixed for p in row.panels]
        )
        children = []
        for rendered, pos in zip(row.panels, positions, strict=True):
            body = dict(rendered.json)
            body["id"] = stable_id(row_json["title"], body.get("title", ""))
            body["gridPos"] = pos
            if _claim(
                body["id"],
                rendered.src.at("title"),
                sources,
                rendered.src,
                problems,
                "panel",
                titles,
                body.get("title", ""),
            ):
                children.append(body)
                if rendered.lint_exceptions:
                    exceptions[body["id"]] = rendered.lint_exceptions
                if rendered.expect:
                    expect[body["id"]] = rendered.expect
        panels.append(row_json)
        if row_json.get("collapsed"):
            # Grafana keeps a collapsed row's panels inside it, placed as if expanded below its header;
            # the next row starts right under the header, not under the hidden panels.
            row_json["panels"] = children
            y = header_y + 1
        else:
            panels.extend(children)
    return panels, sources, exceptions, expect, problems


def _claim(
    panel_id: int, where, sources: dict, src: Source, problems: list[Problem], what: str, titles: dict, title: str
) -> bool:
    """Ids come from titles, so two rows (or two panels of a row) with one title would share an id."""
    if panel_id in sources:
        other = sources[panel_id].at("title")
        mine, theirs = title, titles.get(panel_id)
        if theirs is not None and mine != theirs:
            # Two different titles whose hashes meet: say so, rather than claim they are the same title.
            problems.append(
                Problem(
                    where,
                    f"title {mine!r} gets panel id {panel_id}, the id of {theirs!r} ({other.file}:{other.line}) "
                    "(ids are a hash of row and title): change either title slightly",
                )
            )
            return False
        scope = "another row of this dashboard" if what == "row" else "another panel in this row"
        problems.append(Problem(where, f"{scope} has the same title ({other.file}:{other.line}); titles must differ"))
        return False
    sources[panel_id] = src
    titles[panel_id] = title
    return True


def assemble(
    rendered: list[RenderedDashboard], defaults: dict, templates: Templates | None = None, elsewhere: tuple = ()
) -> tuple[list[Assembled], list[Problem]]:
    """elsewhere: services taken from the cache (specs.Elsewhere), listed on the overview with the rendered ones."""
    templates = templates or Templates()
    prefix = defaults["uid_prefix"]
    tree = out_tree(defaults)
    services = [
        {"job": d.spec.job, "title": d.spec.title, "uid": dashboard_uid(prefix, d.spec.slug)}
        for d in rendered
        if d.spec.kind == "service"
    ]
    if elsewhere:  # in the order of a whole build: by name
        services += [{"job": e.slug, "title": e.title, "uid": dashboard_uid(prefix, e.slug)} for e in elsewhere]
        services.sort(key=lambda service: service["job"])
    frame = templates.dir / "dashboard.jsonnet"
    problems: list[Problem] = []
    laid_out, frames = [], []
    for dash in rendered:
        spec = dash.spec
        panels, sources, exceptions, expect, found = lay_out(dash)
        problems.extend(found)
        laid_out.append((spec, panels, sources, exceptions, expect))
        frames.append(_frame_data(spec, prefix, services))
    try:
        bodies = templates.render_many(frame, "dashboard", frames, defaults=defaults)
    except TemplateError:
        bodies = []
        for (spec, *_), data in zip(laid_out, frames, strict=True):
            try:
                bodies.append(templates.render_file(frame, dashboard=data, defaults=defaults))
            except TemplateError as err:
                problems.append(Problem(spec.src.at(), f"template error: {err}"))
                bodies.append(None)
    out: list[Assembled] = []
    for (spec, panels, sources, exceptions, expect), body in zip(laid_out, bodies, strict=True):
        if body is None:
            continue
        body["panels"] = panels  # the frame never sees panels: they are laid out already, and large
        variable_src = {v.name: v.src for v in spec.variables}
        out.append(
            Assembled(
                tree.dashboard(spec.kind, spec.slug),
                body,
                spec.src,
                sources,
                variable_src,
                exceptions,
                expect,
                spec.kind,
                spec.job,
            )
        )
    return out, problems


def _frame_data(spec, prefix: str, services: list[dict]) -> dict:
    """What the frame template gets for one dashboard: everything but the panels."""
    description = spec.description + (f" Port {spec.port}." if spec.port else "")
    service_tag = f"{prefix}-service"  # the services drop-down on every service dashboard lists this tag
    tags = list(spec.tags) + ([service_tag, spec.slug] if spec.kind == "service" else [f"{prefix}-overview"])
    return {
        "uid": dashboard_uid(prefix, spec.slug),
        "title": spec.title,
        "description": description,
        "tags": tags,
        "kind": spec.kind,
        "job": spec.job,
        "services": services if spec.kind == "overview" else [],  # only the overview lists them (O(N), not O(N²))
        "service_tag": service_tag,
        "overview_uid": dashboard_uid(prefix, "overview"),
        "variables": [
            {
                "name": v.name,
                "label": v.label,
                "metric": v.metric,
                "values": v.values,
                "label_name": v.label_name,
                "multi": v.multi,
                "include_all": v.include_all,
                "job": spec.job,
            }
            for v in spec.variables
        ],
    }

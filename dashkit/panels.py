"""Panel iteration, the one way every stage and tool walks a dashboard's panels.

A dashboard's JSON holds its panels in one list, row headers included; a collapsed row keeps its own
panels inside it. Specs hold rows of panel specs, the shared rows' specs being one object on every
service dashboard.
"""

from __future__ import annotations

from collections.abc import Iterator

from .specs import DashboardSpec, PanelSpec


def placed_panels(doc: dict) -> Iterator[tuple[dict, dict | None, bool]]:
    """(panel, row, collapsed) for every panel of a dashboard's JSON in order: row headers, each followed by
    the panels under it. row is the header a panel is under (None for a header itself and for panels above
    the first row); collapsed says it is inside a collapsed row, queried only once someone opens the row."""
    row = None
    for panel in doc.get("panels", []):
        if panel.get("type") != "row":
            yield panel, row, False
            continue
        row = panel
        yield panel, None, False
        collapsed = bool(panel.get("collapsed"))
        for child in panel.get("panels", []):
            yield child, panel, collapsed


def panels_of(doc: dict) -> Iterator[dict]:
    """Every panel of a dashboard's JSON, row headers and collapsed rows' children included."""
    return (panel for panel, _, _ in placed_panels(doc))


def datasource_type(panel: dict) -> str | None:
    """The type of the datasource a panel queries; None when it names none, or when its template wrote
    something other than an object there (the dashboard schema check reports that)."""
    datasource = panel.get("datasource")
    return datasource.get("type") if isinstance(datasource, dict) else None


def targets_of(panel: dict) -> list:
    """A panel's queries as (index, target) pairs, the targets that are objects only (the schema check
    reports any other)."""
    targets = panel.get("targets")
    return [(i, t) for i, t in enumerate(targets) if isinstance(t, dict)] if isinstance(targets, list) else []


def panels_with_state(doc: dict) -> Iterator[tuple[dict, bool]]:
    """(panel, in a collapsed row) for every panel that is not a row header."""
    return ((panel, collapsed) for panel, _, collapsed in placed_panels(doc) if panel.get("type") != "row")


def distinct_panel_specs(dashboards: list[DashboardSpec]) -> Iterator[PanelSpec]:
    """Every panel spec once: a shared row's panels are one spec on every service dashboard."""
    seen: set[int] = set()
    for dash in dashboards:
        for row in dash.rows:
            for panel in row.panels:
                if id(panel) not in seen:
                    seen.add(id(panel))
                    yield panel

"""A picture of a dashboard's layout, as SVG: Grafana's 24-column grid, rows, and each panel drawn at its
gridPos with its title, type and unit, coloured by type. Deterministic, so it can be a snapshot."""

from __future__ import annotations

from xml.sax.saxutils import escape

COLUMN = 50  # px per grid column: 24 columns = 1200 px, about a laptop's Grafana
ROW_UNIT = 30  # px per grid height unit (Grafana's cell height)
GAP = 6
HEADER = 48
COLOURS = {
    "timeseries": "#3274d9",
    "stat": "#37872d",
    "gauge": "#56a64b",
    "bargauge": "#8ab8ff",
    "table": "#8f3bb8",
    "piechart": "#ff9830",
    "logs": "#c4162a",
    "text": "#808080",
    "nodeGraph": "#fa6400",
    "row": "#464c54",
}
CHAR = 7.0  # approximate width of a 12 px sans-serif character


def _fit(text: str, width: float) -> str:
    room = max(int(width / CHAR), 3)
    return text if len(text) <= room else text[: room - 1] + "…"


def render_svg(dashboard: dict) -> str:
    items, bottom = [], 0
    for panel in dashboard.get("panels", []):
        items.append((panel, False))
        if panel.get("type") == "row" and panel.get("collapsed"):
            continue  # Grafana shows a collapsed row as its header only
        bottom = max(bottom, panel["gridPos"]["y"] + panel["gridPos"]["h"])
    height = HEADER + bottom * ROW_UNIT + GAP
    width = 24 * COLUMN + GAP
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif">',
        f'<rect width="{width}" height="{height}" fill="#111217"/>',
        f'<text x="{GAP}" y="30" font-size="18" fill="#ffffff">{escape(dashboard.get("title", ""))}</text>',
        f'<text x="{width - GAP}" y="30" font-size="12" fill="#9fa7b3" text-anchor="end">{escape(dashboard.get("uid", ""))}</text>',
    ]
    y_shift = 0
    for panel, _ in items:
        pos = panel["gridPos"]
        x = GAP + pos["x"] * COLUMN
        y = HEADER + (pos["y"] - y_shift) * ROW_UNIT
        w = pos["w"] * COLUMN - GAP
        if panel.get("type") == "row":
            label = panel.get("title", "")
            if panel.get("collapsed"):
                label = f"▸ {label} (collapsed, {len(panel.get('panels', []))} panels)"
            out.append(f'<rect x="{x}" y="{y}" width="{w}" height="{ROW_UNIT - GAP}" fill="{COLOURS["row"]}" rx="2"/>')
            out.append(
                f'<text x="{x + 8}" y="{y + 17}" font-size="13" font-weight="bold" fill="#ffffff">{escape(_fit(label, w - 16))}</text>'
            )
            continue
        h = pos["h"] * ROW_UNIT - GAP
        colour = COLOURS.get(panel.get("type"), "#5a5a5a")
        unit = panel.get("fieldConfig", {}).get("defaults", {}).get("unit", "")
        detail = f"{panel.get('type')}" + (f" · {unit}" if unit and unit != "none" else "")
        out.append(
            f'<rect x="{x}" y="{y}" width="{w}" height="{h}" fill="#181b1f" stroke="{colour}" stroke-width="2" rx="3"/>'
        )
        out.append(f'<rect x="{x}" y="{y}" width="{w}" height="4" fill="{colour}"/>')
        out.append(
            f'<text x="{x + 8}" y="{y + 22}" font-size="12" fill="#ffffff">{escape(_fit(panel.get("title", ""), w - 16))}</text>'
        )
        if h > 40:
            out.append(
                f'<text x="{x + 8}" y="{y + 40}" font-size="11" fill="#9fa7b3">{escape(_fit(detail, w - 16))}</text>'
            )
    out.append("</svg>")
    return "\n".join(out) + "\n"

"""Pure layout helpers: the 24-column grid, stable ids and refIds. No I/O, no Grafana knowledge beyond the grid."""

from __future__ import annotations

import zlib

GRID_COLUMNS = 24


def flow(sizes: list[tuple[int, int]], top: int, columns: int = GRID_COLUMNS) -> tuple[list[dict], int]:
    """Place panels left to right, wrapping to a new line when the next one does not fit.

    sizes: (width, height) per panel. Returns (gridPos per panel, the first free y below them).
    """
    positions = []
    x, y, line_height = 0, top, 0
    for width, height in sizes:
        if x + width > columns:
            x, y, line_height = 0, y + line_height, 0
        positions.append({"h": height, "w": width, "x": x, "y": y})
        x += width
        line_height = max(line_height, height)
    return positions, y + line_height


def stable_id(*parts: str) -> int:
    """A panel id derived from what the panel is (row and title), not where it is.

    Inserting a panel therefore leaves every other panel's id, and so every link to it, unchanged.
    """
    return zlib.crc32("\x1f".join(parts).encode("utf-8")) & 0x7FFFFFFF or 1


def overlaps(a: dict, b: dict) -> bool:
    return a["x"] < b["x"] + b["w"] and b["x"] < a["x"] + a["w"] and a["y"] < b["y"] + b["h"] and b["y"] < a["y"] + a["h"]


def dashboard_uid(prefix: str, slug: str) -> str:
    return f"{prefix}-{slug}"


def grids(dashboard: dict) -> list[list[dict]]:
    """The sets of panels that share one grid and must not overlap: the dashboard's own panels (rows
    included), and separately the hidden panels inside each collapsed row."""
    top = list(dashboard.get("panels", []))
    return [top] + [row.get("panels", []) for row in top if row.get("type") == "row" and row.get("collapsed")]

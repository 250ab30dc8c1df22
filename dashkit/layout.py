"""Pure layout helpers: the 24-column grid, stable ids and refIds. No I/O, no Grafana knowledge beyond the grid."""

from __future__ import annotations

import zlib

GRID_COLUMNS = 24


def flow(
    sizes: list[tuple[int, int]], top: int, columns: int = GRID_COLUMNS, fixed: list[bool] | None = None
) -> tuple[list[dict], int]:
    """Place panels left to right, wrapping to a new line when the next one does not fit.

    sizes: (width, height) per panel; fixed: whether each height was asked for. A panel whose height was
    not asked for grows to the tallest panel of its line, so a line has no holes under short panels.
    Returns (gridPos per panel, the first free y below them).
    """
    fixed = fixed or [True] * len(sizes)
    positions: list[dict] = []
    line: list[int] = []  # indexes of the panels on the current line
    x, y, line_height = 0, top, 0

    def close_line() -> None:
        for i in line:
            if not fixed[i]:
                positions[i]["h"] = line_height

    for i, (width, height) in enumerate(sizes):
        if x + width > columns:
            close_line()
            x, y, line_height, line = 0, y + line_height, 0, []
        positions.append({"h": height, "w": width, "x": x, "y": y})
        line.append(i)
        x += width
        line_height = max(line_height, height)
    close_line()
    return positions, y + line_height


def stable_id(*parts: str) -> int:
    """A panel id derived from what the panel is (row and title), not where it is.

    Inserting a panel therefore leaves every other panel's id, and so every link to it, unchanged.
    """
    return zlib.crc32("\x1f".join(parts).encode("utf-8")) & 0x7FFFFFFF or 1


def overlaps(a: dict, b: dict) -> bool:
    return (
        a["x"] < b["x"] + b["w"] and b["x"] < a["x"] + a["w"] and a["y"] < b["y"] + b["h"] and b["y"] < a["y"] + a["h"]
    )


def dashboard_uid(prefix: str, slug: str) -> str:
    return f"{prefix}-{slug}"


def grids(dashboard: dict) -> list[list[dict]]:
    """The sets of panels that share one grid and must not overlap: the dashboard's own panels (rows
    included), and separately the hidden panels inside each collapsed row."""
    top = list(dashboard.get("panels", []))
    return [top] + [row.get("panels", []) for row in top if row.get("type") == "row" and row.get("collapsed")]

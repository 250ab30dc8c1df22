"""The benchmark's peer: this project's dashboards written with grafanalib, as a team using grafanalib would.

Usage: python benchmarks/grafanalib_peer.py [--root PROJECT] --out DIR
(run in the bench's own venv, `.nox/bench-grafanalib`, which has grafanalib and PyYAML; never the build venv)

What it is. A grafanalib program for the overview and one dashboard per service, the same panels, queries,
rows and variables as `python build.py` makes. Rather than spell out 247 panels in Python it reads the
project's values YAML (values/defaults.yaml, standard.yaml, overview.yaml, services/*.yaml) to drive
grafanalib: the per-panel work is then grafanalib's own (attrs classes built and validated, `to_json_data`,
the `DashboardEncoder`), as in a hand-written grafanalib repository, with a little reading of YAML on top
(libyaml's loader, as the build uses). Each dashboard is written to DIR with `json.dump` and grafanalib's
`DashboardEncoder`, `sort_keys=True, indent=2`, exactly as grafanalib's `generate-dashboard` does, under the
paths the build uses (dashboards/<uid_prefix>/<uid_prefix>-overview.json, .../services/<service>.json).

What it does not do (so that it is what such a team would run): no validation beyond grafanalib's own attrs
validators (no schema, no PromQL parsing, no metric catalog, no lint, no promtool), no alert or recording
rules, datasources, contact point or notification policy (the build writes those too), no atomic
replacement of the output folder. Kept where grafanalib can express them: titles, descriptions, datasource,
every target's query, legend and instant flag, units, decimals, min/max, thresholds (the presets and a
service's overrides), value mappings, no-value text, stacking, panel links, the grid (the same flow as the
build: left to right, a panel without a height as tall as its line), rows (collapsed too), the interval,
job, log-level and label-value variables, the overview's service filter and every dashboard link, tags,
refresh, time and time zone. Left out, as grafanalib has no field for them: exemplars, Tempo's query type
and the service-map query (a node graph panel is a small subclass of grafanalib's `Panel`), the trace
table's sort. Panel ids are grafanalib's `auto_panel_ids()`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import yaml
from grafanalib import core as G
from grafanalib._gen import DashboardEncoder

Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
COLUMNS = 24


class NodeGraph(G.Panel):
    """grafanalib 0.7.1 has no node graph panel: the subclass a grafanalib user writes."""

    def to_json_data(self):
        return self.panel_json({"type": "nodeGraph"})


def load(path: Path):
    with open(path, encoding="utf-8") as f:
        return yaml.load(f, Loader=Loader)


def steps(spec: dict, colors: dict) -> list[dict]:
    """Threshold steps of {warning, critical, direction}: green / orange / red, reversed for direction below."""
    warning, critical = spec.get("warning"), spec.get("critical")
    if spec.get("direction") == "below":
        out = [{"color": colors["critical" if critical is not None else "warning"], "value": None}]
        if critical is not None and warning is not None:
            out.append({"color": colors["warning"], "value": critical})
        out.append({"color": colors["ok"], "value": warning if warning is not None else critical})
        return out
    out = [{"color": colors["ok"], "value": None}]
    if warning is not None:
        out.append({"color": colors["warning"], "value": warning})
    if critical is not None:
        out.append({"color": colors["critical"], "value": critical})
    return out


class Builder:
    def __init__(self, root: Path) -> None:
        values = root / "values"
        self.defaults = load(values / "defaults.yaml")
        self.standard = load(values / "standard.yaml")
        self.overview = load(values / "overview.yaml")
        self.services = [load(p) for p in sorted((values / "services").glob("*.yaml"))]
        d = self.defaults
        self.prefix = d["uid_prefix"]
        self.datasources = {k: {"type": v["type"], "uid": v["uid"]} for k, v in d["datasources"].items()}
        self.colors = {"ok": d["colors"]["ok"], "warning": d["colors"]["warning"], "critical": d["colors"]["critical"]}

    # --- panels -------------------------------------------------------------------------------------------
    def targets(self, panel: dict, ds: dict) -> list[G.Target]:
        specs = panel.get("targets") or [{"expr": panel["expr"], "legend": panel.get("legend")}]
        fmt = G.TABLE_TARGET_FORMAT if panel["type"] == "table" else G.TIME_SERIES_TARGET_FORMAT
        return [
            G.Target(
                expr=t["expr"],
                legendFormat=t.get("legend") or "__auto",
                refId=chr(ord("A") + i),
                instant=bool(panel.get("instant", False)),
                format=fmt,
                datasource=ds,
            )
            for i, t in enumerate(specs)
        ]

    def panel(self, p: dict, presets: dict, grid: G.GridPos):
        kind = p["type"]
        ds = self.datasources[p.get("datasource", "metrics")]
        th = p.get("thresholds")
        th = presets[th] if isinstance(th, str) else th
        thresholds = steps(th, self.colors) if th else [{"color": self.colors["ok"], "value": None}]
        extra = {"fieldConfig": {"defaults": {"noValue": p["no_value"]}}} if "no_value" in p else None
        links = [G.DataLink(title=link["title"], linkUrl=link["url"]) for link in p.get("links", [])]
        common = dict(
            title=p["title"], description=p["description"], gridPos=grid, links=links, dataSource=ds, extraJson=extra
        )
        if kind == "text":
            return G.Text(title=p["title"], description=p["description"], gridPos=grid, content=p["content"])
        targets = self.targets(p, ds)
        unit = p.get("unit", "")
        if kind == "stat":
            mappings = (
                [
                    G.StatValueMappings(
                        *(
                            G.StatValueMappingItem(m["text"], str(m["value"]), m["color"], i)
                            for i, m in enumerate(p["mappings"])
                        )
                    )
                ]
                if p.get("mappings")
                else []
            )
            common["extraJson"] = None
            return G.Stat(
                **common,
                targets=targets,
                format=unit,
                decimals=p.get("decimals"),
                noValue=p.get("no_value"),  # grafanalib's default "none" would show the word
                mappings=mappings,
                thresholds=thresholds,
                colorMode="background" if th else "none",
                reduceCalc="lastNotNull",
            )
        if kind == "timeseries":
            return G.TimeSeries(
                **common,
                targets=targets,
                unit=unit,
                thresholds=thresholds,
                thresholdsStyleMode="dashed" if th else "off",
                stacking={"mode": "normal", "group": "A"} if p.get("stack") else {"mode": "none", "group": "A"},
                fillOpacity=25 if p.get("stack") else 10,
                showPoints="never",
                tooltipMode="multi",
                tooltipSort="desc",
                valueMin=p.get("min"),
                valueMax=p.get("max"),
                valueDecimals=p.get("decimals"),
            )
        if kind == "bargauge":
            return G.BarGauge(
                **common,
                targets=targets,
                format=unit,
                thresholds=thresholds,
                decimals=p.get("decimals"),
                min=p.get("min"),
                max=p.get("max"),
                calc="lastNotNull",
                displayMode=G.GAUGE_DISPLAY_MODE_GRADIENT,
            )
        if kind == "gauge":
            return G.GaugePanel(
                **common,
                targets=targets,
                format=unit,
                thresholds=thresholds,
                decimals=p.get("decimals"),
                min=p.get("min", 0),
                max=p.get("max", 100),
                calc="lastNotNull",
            )
        if kind == "piechart":
            return G.PieChartv2(
                **common,
                targets=targets,
                unit=unit,
                pieType="donut",
                legendDisplayMode="table",
                legendPlacement="right",
                legendValues=["value", "percent"],
            )
        if kind in ("table", "traces"):
            return G.Table(**common, targets=targets, unit=unit, thresholds=thresholds)
        if kind == "logs":
            return G.Logs(**common, targets=targets, showTime=True, wrapLogMessages=True, enableLogDetails=True)
        if kind == "nodeGraph":
            return NodeGraph(**common, targets=targets)
        raise SystemExit(f"{p['title']}: panel type {kind!r} not handled by the peer")

    def size(self, p: dict) -> tuple[int, int]:
        d = self.defaults
        default = d["panel_sizes"].get(p["type"], d["panel_size"])
        return p.get("width", default["width"]), p.get("height", default["height"])

    def flow(self, panels: list[dict], top: int) -> tuple[list[G.GridPos], int]:
        """The build's layout on the 24-column grid: left to right, wrapping; a panel without a height grows
        to the tallest panel of its line. Returns a GridPos per panel and the first free y below them."""
        grids: list[G.GridPos] = []
        line: list[tuple[int, bool]] = []  # (index, height asked for) of the current line's panels
        x, y, line_h = 0, top, 0
        for i, p in enumerate(panels):
            w, h = self.size(p)
            if x + w > COLUMNS:
                for j, fixed in line:
                    grids[j].h = grids[j].h if fixed else line_h
                x, y, line_h, line = 0, y + line_h, 0, []
            grids.append(G.GridPos(h=h, w=w, x=x, y=y))
            line.append((i, "height" in p))
            x += w
            line_h = max(line_h, h)
        for j, fixed in line:
            grids[j].h = grids[j].h if fixed else line_h
        return grids, y + line_h

    def rows(self, rows: list[dict], presets: dict) -> list:
        """RowPanels and their panels; a collapsed row holds its panels."""
        out: list = []
        y = 0
        for row in rows:
            grids, bottom = self.flow(row["panels"], y + 1)
            placed = [self.panel(p, presets, grid) for p, grid in zip(row["panels"], grids, strict=True)]
            row_grid = G.GridPos(h=1, w=COLUMNS, x=0, y=y)
            if row.get("collapsed", False):
                out.append(G.RowPanel(title=row["title"], gridPos=row_grid, collapsed=True, panels=placed))
                y += 1
            else:
                out.append(G.RowPanel(title=row["title"], gridPos=row_grid))
                out.extend(placed)
                y = bottom
        return out

    # --- variables and dashboards -----------------------------------------------------------------------
    def interval(self) -> G.Template:
        iv = self.defaults["interval"]
        return G.Template(
            name="interval",
            label="Interval",
            query=",".join(iv["options"]),
            default=iv["default"],
            type="interval",
            refresh=G.REFRESH_ON_TIME_RANGE_CHANGE,
        )

    def custom(self, name: str, label: str, values: list[str]) -> G.Template:
        return G.Template(
            name=name,
            label=label,
            query=",".join(values),
            type="custom",
            default="$__all",
            includeAll=True,
            multi=True,
            allValue=".*",
        )

    def dashboard(self, **kwargs) -> G.Dashboard:
        d = self.defaults
        return G.Dashboard(
            refresh=d["refresh"],
            time=G.Time(d["time"]["from"], d["time"]["to"]),
            timezone=d["timezone"],
            graphTooltip=G.GRAPH_TOOLTIP_MODE_SHARED_CROSSHAIR,
            **kwargs,
        ).auto_panel_ids()

    def service(self, svc: dict) -> G.Dashboard:
        job = svc["service"]
        presets = {**self.defaults["thresholds"], **svc.get("thresholds", {})}
        rows = self.standard["leading_rows"] + svc.get("rows", []) + self.standard["trailing_rows"]
        variables = [
            self.interval(),
            G.Template(name="job", query=job, default=job, type="constant", hide=G.HIDE_VARIABLE),
            *(self.custom(v["name"], v["label"], v["values"]) for v in self.standard.get("variables", [])),
            *(
                G.Template(
                    name=v["name"],
                    label=v.get("label", v["name"].replace("_", " ").capitalize()),
                    query=f'label_values({v["metric"]}{{job="{job}"}}, {v["name"]})',
                    dataSource=self.datasources["metrics"],
                    default="$__all",
                    includeAll=True,
                    multi=True,
                    allValue=".*",
                    refresh=G.REFRESH_ON_TIME_RANGE_CHANGE,
                )
                for v in svc.get("variables", [])
            ),
        ]
        links = [
            G.DashboardLink(
                type="link",
                title="Platform overview",
                tooltip="All services at a glance",
                uri=f"/d/{self.prefix}-overview",
                icon="dashboard",
            ),
            G.DashboardLink(
                type="dashboards",
                title="Services",
                tooltip="Every service dashboard",
                tags=[f"{self.prefix}-service"],
                asDropdown=True,
            ),
        ]
        return self.dashboard(
            title=svc["title"],
            uid=f"{self.prefix}-{job}",
            description=f"{svc['description']} Port {svc['port']}.",
            tags=[*self.defaults["tags"], f"{self.prefix}-service", job],
            templating=G.Templating(list=variables),
            links=links,
            panels=self.rows(rows, presets),
        )

    def overview_dashboard(self) -> G.Dashboard:
        jobs = [s["service"] for s in self.services]
        links = [
            G.DashboardLink(
                type="link",
                title=s["title"],
                tooltip=f"{s['title']} service dashboard",
                uri=f"/d/{self.prefix}-{s['service']}",
                icon="dashboard",
            )
            for s in self.services
        ]
        return self.dashboard(
            title=self.overview["title"],
            uid=f"{self.prefix}-overview",
            description=self.overview["description"],
            tags=[*self.defaults["tags"], f"{self.prefix}-overview"],
            templating=G.Templating(list=[self.interval(), self.custom("service", "Service", jobs)]),
            links=links,
            panels=self.rows(self.overview["rows"], self.defaults["thresholds"]),
        )


def write(dashboard: G.Dashboard, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(dashboard.to_json_data(), f, sort_keys=True, indent=2, cls=DashboardEncoder)
        f.write("\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parent.parent, help="project folder")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    args = parser.parse_args(argv)
    builder = Builder(args.root)
    folder = args.out / "dashboards" / builder.prefix
    write(builder.overview_dashboard(), folder / f"{builder.prefix}-overview.json")
    for svc in builder.services:
        write(builder.service(svc), folder / "services" / f"{svc['service']}.json")
    print(f"wrote {1 + len(builder.services)} dashboards to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

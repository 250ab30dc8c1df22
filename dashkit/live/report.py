"""Reports of the live check: coverage of the catalog by the dashboards, and what one refresh costs."""

from __future__ import annotations

import re
from pathlib import Path

import promql_parser as pp

from .. import promql
from ..check import variable_values
from ..panels import panels_of
from ..pipeline import Build

LEGEND_LABEL = re.compile(r"\{\{\s*(\w+)\s*\}\}")


def coverage(build: Build) -> dict:
    """Catalog metrics on no panel, panels per metric, and catalog labels no query ever uses."""
    raw = {k: v for k, v in build.catalog.items() if not v.recorded}
    queried: dict[str, set[str]] = {name: set() for name in raw}
    exprs = []
    for dash in build.dashboards:
        values = variable_values(dash)
        for panel in panels_of(dash.json):
            if panel.get("datasource", {}).get("type") != "prometheus":
                continue
            for target in panel.get("targets", []):
                exprs.append((promql.substitute(target["expr"], values)[0], target.get("legendFormat", "")))
        exprs += [
            (promql.substitute(v["query"], values)[0], "")
            for v in dash.json["templating"]["list"]
            if v["type"] == "query"
        ]
    for rule in build.rules.recording if build.rules else []:
        exprs.append((rule["expr"], ""))
    for expr, legend in exprs:
        match = promql.LABEL_VALUES.match(expr)
        if match:
            expr, extra = match["selector"], {match["label"]}
        else:
            extra = set(LEGEND_LABEL.findall(legend))
        try:
            ast = promql.parse(expr)
        except ValueError:
            continue
        grouping = extra | _grouping_labels(ast)
        for sel in promql.selectors(ast):
            base = promql.resolve_series(sel.name or "", build.catalog)[0]
            for name in build.catalog[base].sources if base else []:
                if name in queried:
                    queried[name] |= {m.name for m in sel.matchers.matchers} | grouping
    never = {name: sorted(set(metric.labels) - queried[name]) for name, metric in raw.items()}
    return {
        "unused": sorted(name for name in raw if name not in build.usage),
        "panels": {name: len(build.usage.get(name, [])) for name in sorted(raw)},
        "labels_never_queried": {k: v for k, v in sorted(never.items()) if v},
    }


def _grouping_labels(node) -> set[str]:
    """The labels every by/without of an expression names."""
    return {
        label
        for n in promql.walk(node)
        if isinstance(n, pp.AggregateExpr) and n.modifier is not None
        for label in n.modifier.labels
    }


def write_reports(folder: Path, results: list, cover: dict, wall: float, scrape: bool = False) -> str:
    """results: (scenario, report, timings, counts) per scenario. One Markdown report, a section each."""
    lines = [
        "# Live check" + (" (scrape mode)" if scrape else ""),
        "",
        f"Wall time {wall:.1f} s for {len(results)} scenario(s).",
        *(["", SCRAPE_MODE] if scrape else []),
        "",
        "| scenario | targets | variable selections | rules | alerts firing | expected empty | findings |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for scenario, report, _, _ in results:
        firing = sum(1 for a in report.alerts if a.prometheus in ("firing", "pending" if scrape else "firing"))
        lines.append(
            f"| {scenario.name} | {report.targets} | {report.selections} | {report.rules} | {firing} | "
            f"{len(report.expected_empty)} | {len(report.findings)} |"
        )
    for scenario, report, timings, counts in results:
        lines += _scenario_section(scenario, report, timings, counts)
    lines += [
        "",
        "## Coverage",
        "",
        f"- catalog metrics on no panel: {', '.join(cover['unused']) or 'none'}",
        f"- catalog labels no query uses: {sum(len(v) for v in cover['labels_never_queried'].values())}",
        *[f"  - `{m}`: {', '.join(v)}" for m, v in cover["labels_never_queried"].items()],
        "",
    ]
    text = "\n".join(lines)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / ("live-check-scrape.md" if scrape else "live-check.md")).write_text(text, encoding="utf-8")
    return text


SCRAPE_MODE = (
    "Reference services (prometheus_client) hold each scenario's state, scraped by Prometheus every few seconds "
    "with the project's rule files evaluated live: an alert *fires* here when its condition holds now (pending "
    "or firing); its `for` period is the backfilled check's to prove."
)


def _data_line(counts: dict, timings) -> str:
    if counts.get("mode") == "scrape":
        return (
            f"Scraped: {counts['series']:,} series served by {counts['jobs']} reference service(s). Serving and "
            f"scraping until settled {timings.generate:.1f} s, queries and alerts {timings.queries:.1f} s."
        )
    return (
        f"Synthetic data: {counts['series']:,} series, {counts['samples']:,} samples. Generate {timings.generate:.1f} s, "
        f"promtool backfill {timings.backfill:.1f} s, recording rules {timings.rules:.1f} s, queries and alerts {timings.queries:.1f} s."
    )


def _scenario_section(scenario, report, timings, counts) -> list[str]:
    total = report.targets + report.variables + report.rules + report.selections
    return [
        "",
        f"## Scenario `{scenario.name}`",
        "",
        scenario.description,
        "",
        _data_line(counts, timings),
        "",
        f"- panel targets run: {report.targets} ({report.zeros} had to show 0 and did)",
        f"- variable queries run: {report.variables}; extra runs with a variable at All, two values or one value: {report.selections}",
        f"- rule expressions run: {report.rules}",
        f"- checks passed: {total - len(report.findings)} of {total}",
        f"- not run (no server on this machine): {', '.join(f'{n} {k}' for k, n in sorted(report.not_run.items())) or 'none'}",
        "",
        "### Alerts",
        "",
        f"Expected to fire: {', '.join(f'{a} ({s}, {sev})' for a, s, sev in scenario.alerts) or 'nothing'}.",
        "",
        "| alert | service | severity | Prometheus rule | Grafana rule |",
        "| --- | --- | --- | --- | --- |",
        *[f"| {a.alert} | {a.service} | {a.severity} | {a.prometheus} | {a.grafana} |" for a in report.alerts],
        "",
        "### Panels empty by declaration",
        "",
        *([f"- {line}" for line in sorted(set(report.expected_empty))] or ["none"]),
        "",
        "### Findings",
        "",
        *([f"- {f.where}: {f.message}" + (f" — `{f.expr}`" if f.expr else "") for f in report.findings] or ["none"]),
    ]

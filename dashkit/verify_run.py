"""tools/verify.py --prometheus-url, end to end: probe the server, read catalog drift from it, run every panel
target, variable query and rule expression of the built tree as Grafana would (the live check's runner, default
selections only), and judge each panel.

Exit: 0 every panel shows data (or is allowed empty) and nothing drifts; 1 a panel or variable empty and not
allowed, a query error, or drift; 2 (raised as RemoteError by the client) the server cannot be used.
"""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

import yaml

from . import promql
from .live import check
from .live.synth import Window
from .panels import datasource_type
from .pipeline import Build
from .verify_panels import (
    PanelResult,
    apply_allowed,
    as_json,
    failing,
    markdown,
    panel_results,
    rule_results,
    summary,
)
from .verify_server import explain, families_by_job, raw_metrics, server_drift

DURATION = re.compile(r"(\d+)([smhdw])")
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def duration(text: str) -> int:
    """'6h', '90m', '1h30m' -> seconds; ValueError for anything else."""
    if not re.fullmatch(r"(\d+[smhdw])+", text or ""):
        raise ValueError(f"'{text}' is not a duration like 6h, 90m or 1d")
    return sum(int(n) * UNITS[u] for n, u in DURATION.findall(text))


def instant(text: str) -> int:
    """Unix seconds or RFC 3339 ('2026-01-01T06:00:00Z') -> unix seconds; ValueError otherwise."""
    try:
        return int(float(text))
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"'{text}' is neither unix seconds nor RFC 3339 (2026-01-01T06:00:00Z)") from None
    if moment.tzinfo is None:
        raise ValueError(f"'{text}': say the time zone (Z or +01:00)")
    return int(moment.timestamp())


def rfc3339(at: int) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def scrape_interval(build: Build) -> int:
    """The metrics datasource's timeInterval as provisioned: Grafana's floor for $__interval."""
    for rel in sorted(build.files):
        if rel.startswith("datasources/"):
            for ds in yaml.safe_load(build.files[rel]).get("datasources", []):
                if ds.get("type") == "prometheus" and ds.get("jsonData", {}).get("timeInterval"):
                    return duration(ds["jsonData"]["timeInterval"])
    return 15


def planned_calls(build: Build) -> int:
    """How many API calls a run makes: the probe, metadata, a series call per catalog metric, every variable
    query, Prometheus target and rule expression. Known before anything is sent, so a budget too small for
    the tree is refused up front instead of leaving a production server half asked."""
    calls = 2 + len(raw_metrics(build.catalog)) + len(check.rule_expressions(build.rules))
    for dash in (d.json for d in build.dashboards):
        calls += sum(v["type"] == "query" for v in dash["templating"]["list"])
        for panel, _ in check.panels_with_state(dash):
            if datasource_type(panel) not in ("loki", "tempo"):
                calls += len(panel.get("targets", []))
    return calls


@dataclass
class Verdict:
    head: dict
    results: list[PanelResult]
    rules: list[dict]
    drift: list[dict]
    totals: dict
    notes: list[str]
    code: int

    def json(self) -> dict:
        return as_json(
            dict(self.head, notes=self.notes, exit=self.code), self.results, self.rules, self.drift, self.totals
        )

    def markdown(self) -> str:
        text = markdown(self.head, self.results, self.rules, self.drift, self.totals)
        return text + ("\n## Notes\n\n" + "\n".join(f"- {n}" for n in self.notes) + "\n" if self.notes else "")


def verify_server(build: Build, remote, end: int, range_seconds: int, concurrency: int, allowed: dict, where, tenant):
    """Everything against one server. RemoteError propagates: the caller prints its one line, exit 2."""
    window = Window(end - range_seconds, end, scrape_interval(build))
    remote.probe(end)
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="verify") as pool:

        def pool_map(fn, items):
            return list(pool.map(fn, items))

        by_job, failed, metadata = families_by_job(remote, build.catalog, window.start, end, pool_map)
        dashboards = [d.json for d in build.dashboards]
        # default selections only (vary=False): what a person sees on opening, at the fewest queries
        report = check.run(
            dashboards,
            build.rules,
            build.catalog,
            remote,
            window,
            stats=False,
            range_seconds=range_seconds,
            vary=False,
            pool_map=pool_map,
            probe_labels=False,  # label drift comes from /api/v1/series below, within the planned calls
        )
    endpoints = server_drift(remote.url, by_job, build.catalog, where, failed, metadata)
    results = panel_results(report.outcomes)
    notes = apply_allowed(results, allowed)
    _explain(results, build, endpoints)
    if not metadata:
        notes.append("types not checked: the server has no metric metadata (/api/v1/metadata is empty)")
    drift = [dict(asdict(e), source=e.url, lines=e.lines(), drift=e.drift) for e in endpoints] + [
        {"source": f"series of `{m}`", "lines": [f"series query failed: {why}"], "drift": True}
        for m, why in sorted(failed.items())
    ]
    rules = rule_results(report.outcomes)
    drifting = sum(len(d["lines"]) for d in drift if d["drift"])
    totals = summary(results, rules, drifting, len(failed), remote)
    code = 2 if remote.refused else 1 if failing(results, rules) or drifting else 0
    head = {
        "prometheus_url": remote.url,
        "tenant": tenant,
        "start": rfc3339(window.start),
        "end": rfc3339(end),
        "range": _range_text(range_seconds),
    }
    return Verdict(head, results, rules, drift, totals, notes, code)


def _explain(results: list[PanelResult], build: Build, endpoints) -> None:
    """Name the drift behind each empty panel and variable, and behind a panel that shows data but reads what
    drifts (a `by (endpoint)` over series with `handler` draws one unnamed line; a zero-guarded ratio over a
    missing `status` shows a calm 0)."""
    recording = {r["record"]: r["expr"] for r in (build.rules.recording if build.rules else [])}
    jobs = {d.json["uid"]: d.job for d in build.dashboards}
    for r in results:
        if r.status not in ("empty", "allowed empty", "data"):
            continue
        exprs = [_as_promql(q["expr"]) for q in r.queries]
        r.explained_by = explain(exprs, jobs.get(r.uid), endpoints, build.catalog, recording, r.status == "data")


def _as_promql(expr: str) -> str:
    """A variable's label_values(selector, label) as the PromQL that reads the same metric and label."""
    match = promql.LABEL_VALUES.match(expr)
    return f"group by ({match['label']}) ({match['selector']})" if match else expr


def _range_text(seconds: int) -> str:
    for unit in ("w", "d", "h", "m"):
        if seconds % UNITS[unit] == 0:
            return f"{seconds // UNITS[unit]}{unit}"
    return f"{seconds}s"

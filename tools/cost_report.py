#!/usr/bin/env python3
"""Query cost of one dashboard refresh on the large preset (about 100,000 series), from Prometheus's own
query statistics (evalTotalTime), and the recording-rule P99 against the raw histogram_quantile.

Usage: python tools/cost_report.py [--keep DIR] [--reuse]   (nox -s cost; needs prometheus; about 5 minutes)
Report: build/reports/cost.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from dashkit.live import check, synth
from dashkit.live.prometheus import Prometheus
from dashkit.live.run import prepare
from dashkit.pipeline import build

ROOT = Path(__file__).resolve().parent.parent

REPEAT = 3
BUDGET_MS = 250


def p99_comparison(prom, window, services, intervals) -> list[tuple[str, float, float]]:
    end, start, step = window.end, window.end - check.DEFAULT_RANGE, int(intervals["__interval"][:-1])
    out = []
    for job in sorted(services):
        raw = f'histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{{job="{job}"}}[{intervals["__rate_interval"]}])))'
        recorded = f'job:http_request_duration_seconds:p99_rate5m{{job="{job}"}}'
        times = {}
        for name, expr in (("raw", raw), ("recorded", recorded)):
            runs = [check._server_ms(prom.query_range(expr, start, end, step, stats=True)) for _ in range(5)]
            times[name] = statistics.median(runs)
        out.append((job, times["raw"], times["recorded"]))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="work in this folder and keep the TSDB")
    parser.add_argument("--reuse", action="store_true", help="reuse the TSDB already in --keep")
    args = parser.parse_args()
    result = build(ROOT)
    window = synth.PRESETS["large"].window
    with tempfile.TemporaryDirectory(prefix="dashkit-cost-") as tmp:
        workdir = args.keep or Path(tmp)
        began = time.perf_counter()
        if args.reuse and (workdir / "tsdb").is_dir():
            tsdb, counts = workdir / "tsdb", json.loads((workdir / "counts.json").read_text())
        else:
            tsdb, _, counts = prepare(result, workdir, "large")
            (workdir / "counts.json").write_text(json.dumps(counts))
        prepared = time.perf_counter() - began
        dashboards = [json.loads(t) for rel, t in sorted(result.files.items()) if rel.endswith(".json")]
        with Prometheus(tsdb, workdir=workdir) as prom:
            runs = [check.run(dashboards, result.rules, result.catalog, prom, window) for _ in range(REPEAT)]
            p99 = p99_comparison(
                prom, window, result.services, check.grafana_intervals(check.DEFAULT_RANGE, window.step)
            )
    per_dashboard = {d: statistics.median(r.query_ms[d] for r in runs) for d in runs[0].query_ms}
    lines = [
        "# Query cost on the large preset",
        "",
        f"{counts['series']:,} series, {counts['samples']:,} samples (6 h at {window.step} s); TSDB built in {prepared:.0f} s.",
        f"One refresh = every Prometheus target of the dashboard over its default range (6 h) at Grafana's step for a"
        f" 1,000 px panel; Prometheus evalTotalTime summed, median of {REPEAT} refreshes. Budget {BUDGET_MS} ms.",
        "",
        "| dashboard | ms per refresh | samples touched | within budget |",
        "| --- | ---: | ---: | --- |",
        *[
            f"| {d} | {ms:.1f} | {runs[0].samples[d]:,} | {'yes' if ms < BUDGET_MS else 'NO'} |"
            for d, ms in sorted(per_dashboard.items())
        ],
        "",
        "Slowest panels (one refresh):",
        "",
        *[f"- {ms:.1f} ms {where}" for ms, where, _ in runs[-1].slowest[:8]],
        "",
        "## P99: recording rule against raw histogram_quantile (median of 5 range queries)",
        "",
        "| service | raw ms | recording rule ms | cheaper |",
        "| --- | ---: | ---: | ---: |",
        *[f"| {job} | {raw:.1f} | {rec:.2f} | {raw / max(rec, 1e-3):.0f}x |" for job, raw, rec in p99],
        "",
        f"Empty or failing queries on this data: {len(runs[0].findings)}",
        *[f"- {f.where}: {f.message}" for f in runs[0].findings[:20]],
        "",
    ]
    text = "\n".join(lines)
    folder = ROOT / "build" / "reports"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "cost.md").write_text(text, encoding="utf-8")
    print(text)
    return 0 if all(ms < BUDGET_MS for ms in per_dashboard.values()) else 1


if __name__ == "__main__":
    sys.exit(main())

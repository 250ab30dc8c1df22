#!/usr/bin/env python3
"""Live check: every panel query, variable query and rule expression against a real Prometheus holding
synthetic data generated from the metric catalog, once per scenario of values/scenarios.yaml.
Usage: python tools/live_check.py [--scrape] [--scenario NAME ...] [--keep DIR]

--scrape: instead of backfilled data, reference services (the real prometheus_client) serve each scenario's
state and a real Prometheus scrapes them (dashkit/live/scrape.py); the scenarios a running service can hold.

Exit 1 when a query fails, a panel shows No data that its values do not declare, a value is outside its
unit's range, or an alert fires (or stays quiet) against the scenario's list, naming dashboard, panel and
query. Report: build/reports/live-check.md, live-check-scrape.md with --scrape (out/ holds only what is deployed).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from dashkit.live.prometheus import ToolMissing
from dashkit.live.reference_service import playable
from dashkit.live.report import coverage, write_reports
from dashkit.live.run import live, scenario_problems, scenarios_of
from dashkit.live.scrape import live_scraped
from dashkit.pipeline import BuildFailed, build

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--keep", type=Path, help="work in this folder and keep the TSDBs (default: a temporary folder)"
    )
    parser.add_argument("--scenario", action="append", help="run only this scenario (repeatable; default: all of them)")
    parser.add_argument(
        "--scrape", action="store_true", help="reference services scraped by Prometheus instead of backfilled data"
    )
    args = parser.parse_args()
    began = time.perf_counter()
    try:
        result = build(ROOT)
    except BuildFailed as failed:
        print("\n".join(map(str, failed.problems)), file=sys.stderr)
        return 1
    problems = scenario_problems(result)
    if problems:
        print("\n".join(map(str, problems)), file=sys.stderr)
        print(f"live check not run: {len(problems)} problem(s) in values/scenarios.yaml", file=sys.stderr)
        return 1
    chosen = scenarios_of(result)
    unknown = sorted(set(args.scenario or []) - {s.name for s in chosen})
    if unknown:
        print(
            f"unknown scenario(s): {', '.join(unknown)}; values/scenarios.yaml has {', '.join(s.name for s in chosen)}",
            file=sys.stderr,
        )
        return 2
    chosen = [s for s in chosen if not args.scenario or s.name in args.scenario]
    if args.scrape:
        for scenario in [s for s in chosen if playable(s)]:
            print(f"scenario {scenario.name}: not scraped, {playable(scenario)}")
        chosen = [s for s in chosen if not playable(s)]
    run_one = live_scraped if args.scrape else live
    results = []
    with tempfile.TemporaryDirectory(prefix="dashkit-live-") as tmp:
        for scenario in chosen:
            workdir = (args.keep or Path(tmp)) / scenario.name
            try:
                report, timings, counts = run_one(result, workdir, scenario=scenario)
            except ToolMissing as missing:
                print(f"live check cannot run: {missing}", file=sys.stderr)
                return 2
            results.append((scenario, report, timings, counts))
    cover = coverage(result)
    text = write_reports(ROOT / "build" / "reports", results, cover, time.perf_counter() - began, scrape=args.scrape)
    print(text)
    failed = False
    # with every scenario backfilled, every alert must have been seen firing in one of them
    if not args.scenario and not args.scrape:
        fired = {s.alert for _, report, _, _ in results for s in report.alerts if s.prometheus == "firing"}
        for name in sorted({rule.spec.name for rule in (result.rules.alerts if result.rules else [])} - fired):
            failed = True
            print(
                f"alert {name} fires in no scenario of values/scenarios.yaml: its condition is never shown to work",
                file=sys.stderr,
            )
    for scenario, report, _, _ in results:
        for finding in report.findings:
            failed = True
            print(f"[{scenario.name}] {finding}", file=sys.stderr)
    return 0 if not failed and not cover["unused"] else 1


if __name__ == "__main__":
    sys.exit(main())

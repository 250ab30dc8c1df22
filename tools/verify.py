#!/usr/bin/env python3
"""Catalog drift against the real services: read their /metrics endpoints and say which catalog metrics they do
not export, which catalog labels their series lack (and the likely rename) and which types disagree.

Usage: python tools/verify.py --metrics-url URL [URL ...] [--job NAME [NAME ...]] [--report-md FILE]
       [--report-json FILE] [--timeout S]          (nox -s verify -- ARGS)

--job: one name for every URL, or one per URL in order; without it the service is recognised from the
catalog metrics it exports. Exit 0: no drift; 1: drift; 2: an endpoint unreadable, a usage or build error.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from dashkit.load import load
from dashkit.pipeline import BuildFailed, build
from dashkit.verify import EndpointError, as_json, fetch, markdown, service_metrics, verify

ROOT = Path(__file__).resolve().parent.parent


def arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--metrics-url", nargs="+", required=True, metavar="URL", help="a service's /metrics")
    parser.add_argument("--job", nargs="+", metavar="NAME", help="the service: one for all URLs, or one per URL")
    parser.add_argument("--report-md", type=Path, metavar="FILE", help="write a Markdown report")
    parser.add_argument("--report-json", type=Path, metavar="FILE", help="write a JSON report")
    parser.add_argument("--timeout", type=float, default=10.0, metavar="S", help="seconds per request (10)")
    args = parser.parse_args(argv)
    if args.job and len(args.job) not in (1, len(args.metrics_url)):
        parser.error(f"--job: give one name, or one per URL ({len(args.metrics_url)})")
    if args.timeout <= 0:
        parser.error("--timeout: must be more than 0")
    return args


def main(argv: list[str] | None = None) -> int:
    args = arguments(argv)
    try:
        catalog = build(ROOT).catalog
    except BuildFailed as failed:
        print("\n".join(map(str, failed.problems)), file=sys.stderr)
        return 2
    src = load(ROOT)[0].catalog_src

    def where(*path) -> str:
        at = src.at(*path)
        return f"{at.file}:{at.line}"

    services = service_metrics(catalog)
    jobs = (args.job * len(args.metrics_url) if len(args.job) == 1 else args.job) if args.job else []
    for job in dict.fromkeys(jobs):
        if job not in services:
            print(f"--job {job}: not a service of the catalog ({', '.join(services)})", file=sys.stderr)
            return 2
    endpoints = []
    for i, url in enumerate(args.metrics_url):
        try:
            endpoints.append(verify(url, fetch(url, args.timeout), catalog, where, jobs[i] if jobs else None))
        except EndpointError as e:
            print(e, file=sys.stderr)
            return 2
    for e in endpoints:
        lines = e.lines()
        print(f"{e.url}: {e.service or 'service unknown'}: {'no drift' if not lines else f'{len(lines)} finding(s)'}")
        for line in lines:
            print(f"  {line}")
    reports = {args.report_md: markdown, args.report_json: lambda e: json.dumps(as_json(e), indent=2) + "\n"}
    for path, text in reports.items():
        if path is None:
            continue
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text(endpoints), encoding="utf-8")
        except OSError as e:
            print(f"{path}: {e.strerror or e}", file=sys.stderr)
            return 2
    return 1 if any(e.drift for e in endpoints) else 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Reference services: the catalog's metrics served through the official prometheus_client, one /metrics per
job on 127.0.0.1, with the traffic of a scenario of values/scenarios.yaml (or `busy`: every series present).

Usage: python tools/reference_service.py [--scenario NAME] [--rename JOB:LABEL=NEW ...] [--seconds S]

Prints one `job URL` line per served job, then serves until Ctrl-C (or for --seconds). Point
`nox -s verify -- --metrics-url URL...` or a Prometheus at them. --rename plays a service that names a
label differently (`api-gateway:endpoint=handler`).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

from dashkit.live.reference_service import ReferenceServices, playable
from dashkit.live.run import scenarios_of
from dashkit.live.synth import BUSY
from dashkit.pipeline import BuildFailed, build

ROOT = Path(__file__).resolve().parent.parent


def renames_of(items: list[str], parser: argparse.ArgumentParser) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for item in items:
        job, _, pair = item.partition(":")
        label, _, new = pair.partition("=")
        if not (job and label and new):
            parser.error(f"--rename {item}: expected JOB:LABEL=NEW, e.g. api-gateway:endpoint=handler")
        out.setdefault(job, {})[label] = new
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", default="healthy", help="a scenario of values/scenarios.yaml, or busy")
    parser.add_argument("--rename", action="append", default=[], metavar="JOB:LABEL=NEW")
    parser.add_argument("--seconds", type=float, help="stop after this long (default: until Ctrl-C)")
    args = parser.parse_args(argv)
    renames = renames_of(args.rename, parser)
    try:
        tree = build(ROOT)
    except BuildFailed as failed:
        print("\n".join(map(str, failed.problems)), file=sys.stderr)
        return 2
    scenarios = {s.name: s for s in scenarios_of(tree)} | {BUSY.name: BUSY}
    if args.scenario not in scenarios:
        parser.error(f"--scenario {args.scenario}: one of {', '.join(sorted(scenarios))}")
    chosen = scenarios[args.scenario]
    if playable(chosen):
        print(f"--scenario {chosen.name}: {playable(chosen)}", file=sys.stderr)
        return 2
    unknown = sorted(set(renames) - set(tree.services))
    if unknown:
        parser.error(f"--rename: unknown job(s) {', '.join(unknown)}; the catalog has {', '.join(tree.services)}")
    done = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: done.set())
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    with ReferenceServices(tree.catalog, tree.services, chosen, renames) as ref:
        for job, url in sorted(ref.urls().items()):
            print(f"{job} {url}", flush=True)
        done.wait(args.seconds)
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Live check: every panel query, variable query and rule expression against a real Prometheus holding
synthetic data generated from the metric catalog. Usage: python tools/live_check.py [--keep DIR]

Exit 1 when any query fails or comes back empty (the panel would say "No data"), naming the dashboard,
panel and query. Reports go to out/reports/.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dashkit.live.prometheus import ToolMissing  # noqa: E402
from dashkit.live.report import coverage, write_reports  # noqa: E402
from dashkit.live.run import live  # noqa: E402
from dashkit.pipeline import BuildFailed, build  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="work in this folder and keep the TSDB (default: a temporary folder)")
    args = parser.parse_args()
    began = time.perf_counter()
    try:
        result = build(ROOT)
    except BuildFailed as failed:
        print("\n".join(map(str, failed.problems)), file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="pyairtable-live-") as tmp:
        workdir = args.keep or Path(tmp)
        try:
            report, timings, counts = live(result, workdir)
        except ToolMissing as missing:
            print(f"live check cannot run: {missing}", file=sys.stderr)
            return 2
    cover = coverage(result)
    text = write_reports(ROOT / "out" / "reports", report, timings, counts, cover, time.perf_counter() - began)
    print(text)
    for finding in report.findings:
        print(finding, file=sys.stderr)
    return 0 if report.ok and not cover["unused"] else 1


if __name__ == "__main__":
    sys.exit(main())

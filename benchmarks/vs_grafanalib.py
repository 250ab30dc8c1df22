"""Beside grafanalib: the build and the grafanalib peer on the same fleets, whole process, interleaved.

Usage: python benchmarks/vs_grafanalib.py --peer-python PYTHON [--pairs K] [N ...]
(`nox -s bench` runs it in the bench venv with the peer's own venv, .nox/bench-grafanalib)

For each N (default 6, 10, 100, 1000 services; 6 is the project itself: its seven dashboards) it lays out a
fleet with benchmarks/fleet.py's make_fleet (dashkit compiled once, so no run recompiles it), then runs

    A  python build.py --no-cache --out DIR    this interpreter, every check on, cold: nothing from
                                               .cache/build/ (a large fleet on every core, as by default)
    B  PEER benchmarks/grafanalib_peer.py --root FLEET --out DIR2   grafanalib in its own venv

once each as a warm-up (the build's Jinja and promtool caches, the page cache: what stays warm on any
machine that built once; --no-cache leaves out only the build cache of results), then K pairs A B A B ...
(default 20 pairs up to 10 services, 10 at 100, 5 at 1,000). Each run is one process: wall time, and peak
RSS from os.wait4 (the largest single process of the run: the build's promtool child counts, it is not
added). Printed as a Markdown table: the medians of wall time and of peak RSS, the median of the pair-by-pair
ratios A/B (below 1: the build is faster). Before the table row is printed, both outputs are read back and must hold the
same dashboards with the same panel titles in the same order, so that like is compared with like.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fleet import make_fleet  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PEER = ROOT / "benchmarks" / "grafanalib_peer.py"


def default_pairs(n: int) -> int:
    return 20 if n <= 10 else 10 if n <= 100 else 5


def run(cmd: list[str], cwd: Path) -> tuple[float, int]:
    """Wall seconds and peak RSS (bytes) of one whole process; its output is thrown away, a failure stops us."""
    with tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            err.seek(0)
            raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{err.read().decode()[-3000:]}")
    return wall, usage.ru_maxrss * 1024


def panel_titles(out: Path) -> dict[str, list[str]]:
    """Dashboard file (relative) -> titles of its panels, rows included, collapsed rows' panels after their row."""
    found = {}
    for path in sorted((out / "dashboards").rglob("*.json")):
        dashboard = json.loads(path.read_bytes())
        titles = []
        for panel in dashboard["panels"]:
            titles.append(panel["title"])
            titles.extend(p["title"] for p in panel.get("panels") or [])
        found[str(path.relative_to(out))] = titles
    return found


def size_mib(out: Path) -> float:
    return sum(p.stat().st_size for p in (out / "dashboards").rglob("*.json")) / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peer-python", required=True, help="the Python of the venv that has grafanalib")
    parser.add_argument("--pairs", type=int, default=None, help="A/B pairs per size (default: by size)")
    parser.add_argument("sizes", nargs="*", type=int, default=[6, 10, 100, 1000], help="services (6: the project)")
    args = parser.parse_args()
    args.peer_python = os.path.abspath(args.peer_python)  # not resolved: a venv's python is a symlink
    version = subprocess.run(
        [args.peer_python, "-c", "import importlib.metadata as m; print(m.version('grafanalib'))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    print(f"build: {sys.executable} build.py --no-cache --out DIR; peer: grafanalib {version}, {args.peer_python}")
    print(f"{os.cpu_count()} cores, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} at start\n")
    print(
        "| services | dashboards | panels (rows included) | pairs | build wall | grafanalib wall | ratio build/grafanalib"
        " | build peak | grafanalib peak | build JSON | grafanalib JSON |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for n in args.sizes:
        pairs = args.pairs or default_pairs(n)
        with tempfile.TemporaryDirectory(prefix="pyairtable-vs-grafanalib-") as tmp:
            fleet = Path(tmp) / "fleet"
            services = make_fleet(fleet, n)
            out_a, out_b = Path(tmp) / "out-build", Path(tmp) / "out-grafanalib"
            a = [sys.executable, "build.py", "--no-cache", "--out", str(out_a)]  # cold: nothing from .cache/build
            b = [args.peer_python, str(PEER), "--root", str(fleet), "--out", str(out_b)]
            run(a, fleet), run(b, fleet)  # warm-up
            runs_a, runs_b = [], []
            for _ in range(pairs):
                runs_a.append(run(a, fleet))
                runs_b.append(run(b, fleet))
            titles_a, titles_b = panel_titles(out_a), panel_titles(out_b)
            if titles_a != titles_b:
                differ = sorted(k for k in titles_a.keys() | titles_b.keys() if titles_a.get(k) != titles_b.get(k))
                raise SystemExit(f"{n} services: the peer's dashboards differ from the build's: {differ[:5]}")
            panels = sum(len(t) for t in titles_a.values())
            wall_a = statistics.median(w for w, _ in runs_a)
            wall_b = statistics.median(w for w, _ in runs_b)
            ratio = statistics.median(wa / wb for (wa, _), (wb, _) in zip(runs_a, runs_b, strict=True))
            peak_a = statistics.median(m for _, m in runs_a) / 2**20
            peak_b = statistics.median(m for _, m in runs_b) / 2**20
            print(
                f"| {services:,}{' (the project)' if n <= 6 else ''} | {len(titles_a):,} | {panels:,} | {pairs} | {wall_a:.3f} s | {wall_b:.3f} s"
                f" | {ratio:.2f} | {peak_a:.0f} MiB | {peak_b:.0f} MiB | {size_mib(out_a):.1f} MiB"
                f" | {size_mib(out_b):.1f} MiB |",
                flush=True,
            )
    print(f"\nload average {' '.join(f'{x:.2f}' for x in os.getloadavg())} at the end")


if __name__ == "__main__":
    main()

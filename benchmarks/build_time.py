"""Whole-process time of `python build.py --check` (every check on, nothing written): median of N runs.

Usage: python benchmarks/build_time.py [RUNS]   (nox -s bench runs it in the build venv)
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 15
    subprocess.run([sys.executable, "build.py", "--check"], cwd=ROOT, check=True, capture_output=True)  # warm caches
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, "build.py", "--check"], cwd=ROOT, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    print(
        f"python build.py --check, whole process, {runs} runs: median {statistics.median(times):.3f} s, "
        f"min {min(times):.3f} s, max {max(times):.3f} s"
    )


if __name__ == "__main__":
    main()

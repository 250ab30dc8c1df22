"""Scale: build a fleet of N services, whole process, and report wall time, peak memory and output size;
then rebuilds with the build cache: with nothing changed, and after editing one service file.

Usage: python benchmarks/fleet.py [N ...]   (nox -s bench runs 10, 100 and 1000)

A fleet project is this project's templates, schemas and values plus clones of the six real service
files (renamed, own port) until there are N services: every clone is a real service file with its own
panels, variables and alerts, so the work per service is the real work.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def make_fleet(dest: Path, n: int, python: str = sys.executable) -> int:
    """Lay out a fleet project in dest: the six real service files plus clones up to n; returns how many.

    Its dashkit is compiled once by `python` (the interpreter that will run the builds): where
    PYTHONDONTWRITEBYTECODE is set (as here and on CI) a copy without bytecode would recompile every module
    on every run, timing the compiler rather than the build."""
    for name in ("templates", "schemas", "values", "dashkit", "docs"):
        shutil.copytree(ROOT / name, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(ROOT / "build.py", dest / "build.py")
    originals = sorted((dest / "values" / "services").glob("*.yaml"))
    for i in range(max(0, n - len(originals))):
        source = originals[i % len(originals)]
        text = source.read_text(encoding="utf-8")
        name = f"{source.stem}-{i:04d}"
        text = text.replace(f"service: {source.stem}\n", f"service: {name}\n", 1)
        text = (
            "\n".join(f"port: {20000 + i}" if line.startswith("port: ") else line for line in text.splitlines()) + "\n"
        )
        (dest / "values" / "services" / f"{name}.yaml").write_text(text, encoding="utf-8")
    subprocess.run([python, "-m", "compileall", "-q", str(dest / "dashkit")], check=True)
    return len(list((dest / "values" / "services").glob("*.yaml")))


def measure(project: Path, *args: str) -> tuple[float, int]:
    """Wall seconds and peak RSS (bytes) of one whole `python build.py ARGS` process."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "build.py", *args], cwd=project, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"fleet build failed:\n{proc.stderr.read().decode()[-3000:]}")
    return wall, usage.ru_maxrss * 1024


def edit_one(project: Path, n: int) -> None:
    """Rename a panel of the first service file (one no alert links to): its dashboard and docs/metrics.md
    change, as when a person edits a service."""
    path = sorted((project / "values" / "services").glob("*.yaml"))[0]
    text = path.read_text(encoding="utf-8")
    linked = set(re.findall(r"^ *panel: (.*)$", text + (project / "values" / "rules.yaml").read_text(), re.M))
    lines = text.splitlines(keepends=True)
    first = next(i for i, line in enumerate(lines) if line.startswith("        title: ") and line[15:-1] not in linked)
    lines[first] = f"        title: Edited panel {n}\n"
    path.write_text("".join(lines), encoding="utf-8")


def median(runs: list[tuple[float, int]]) -> float:
    return sorted(r[0] for r in runs)[len(runs) // 2]


def main() -> None:
    sizes = [int(a) for a in sys.argv[1:]] or [10, 100, 1000]
    print(
        "| services | panels | wall s (median of 3) | peak MiB | output MiB | files "
        "| cached: no change s | cached: one file edited s |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for n in sizes:
        with tempfile.TemporaryDirectory(prefix="pyairtable-fleet-") as tmp:
            project = Path(tmp)
            services = make_fleet(project, n)
            measure(
                project, "--no-cache"
            )  # first run fills the caches a user's second run would have (Jinja, promtool)
            runs = [measure(project, "--no-cache") for _ in range(3)]  # the whole build
            wall = median(runs)
            measure(project)  # fills the build cache
            unchanged = median([measure(project) for _ in range(3)])
            edited = []
            for i in range(3):
                edit_one(project, i)
                edited.append(measure(project))
            peak = max(r[1] for r in runs)
            out = project / "out"
            files = [p for p in out.rglob("*") if p.is_file()]
            size = sum(p.stat().st_size for p in files)
            panels = sum(p.read_text().count('"gridPos"') for p in files if p.suffix == ".json")
            print(
                f"| {services} | {panels} | {wall:.2f} | {peak / 2**20:.0f} | {size / 2**20:.1f} | {len(files)} "
                f"| {unchanged:.2f} | {median(edited):.2f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()

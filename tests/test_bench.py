"""The benchmark beside grafanalib compares like with like: its grafanalib program (benchmarks/grafanalib_peer.py)
makes, from the project's values, the dashboards the build makes, with the same panels in the same places asking
the same queries. No timing here (`nox -s bench` times them).

The peer runs in the bench's own venv, .nox/bench-grafanalib (made by `nox -s tests` and `nox -s bench`), so the
test venv stays without grafanalib; without that venv (pytest run by hand) the test is skipped, saying so.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from conftest import ROOT, panels_of

PEER_PYTHON = ROOT / ".nox" / "bench-grafanalib" / "bin" / "python"

pytestmark = pytest.mark.skipif(
    not PEER_PYTHON.exists(),
    reason=f"grafanalib's venv {PEER_PYTHON.parent.parent.relative_to(ROOT)} is not there: `nox -s tests` and `nox -s bench` make it "
    "(the test venv is kept without grafanalib)",
)


def query(target: dict) -> str | None:
    """A target's query, wherever its datasource keeps it (Prometheus and Loki `expr`, Tempo `query` or
    `serviceMapQuery`)."""
    return target.get("expr") or target.get("query") or target.get("serviceMapQuery")


def summary(dashboard: dict) -> dict:
    return {
        "uid": dashboard["uid"],
        "title": dashboard["title"],
        "variables": [v["name"] for v in dashboard["templating"]["list"]],
        "links": [link.get("url") or link.get("tags") for link in dashboard["links"]],
        "panels": [(p["title"], p["gridPos"], [query(t) for t in p.get("targets", [])]) for p in panels_of(dashboard)],
    }


def test_peer_makes_the_builds_dashboards(tree: dict[str, dict], tmp_path: Path) -> None:
    run = subprocess.run(
        [
            str(PEER_PYTHON),
            str(ROOT / "benchmarks" / "grafanalib_peer.py"),
            "--root",
            str(ROOT),
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    (folder,) = (tmp_path / "dashboards").iterdir()  # dashboards/<uid_prefix>/, as in out/
    peer = {str(p.relative_to(folder)): json.loads(p.read_text(encoding="utf-8")) for p in folder.rglob("*.json")}
    assert sorted(peer) == sorted(tree)
    for rel, dashboard in tree.items():
        assert summary(peer[rel]) == summary(dashboard), rel

"""Which Jsonnet binding renders the project's own Jsonnet templates faster: go-jsonnet or the C++ one.

Renders templates/dashboard.jsonnet and templates/panels/row.jsonnet with real arguments, many times.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = ROOT / "templates"


def bench(module, name: str, runs: int = 100) -> float:
    defaults = yaml.safe_load((ROOT / "values" / "defaults.yaml").read_text())
    frame_args = {
        "dashboard": json.dumps(
            {
                "uid": "pyairtable-x",
                "title": "X",
                "description": "d",
                "tags": [],
                "kind": "service",
                "job": "x",
                "services": [{"job": "x", "title": "X", "uid": "pyairtable-x"}],
                "service_tag": "t",
                "overview_uid": "pyairtable-overview",
                "variables": [],
            }
        ),
        "defaults": json.dumps(defaults),
    }
    frame = (TEMPLATES / "dashboard.jsonnet").read_text()
    row = (TEMPLATES / "panels" / "row.jsonnet").read_text()
    start = time.perf_counter()
    for i in range(runs):
        module.evaluate_snippet(
            str(TEMPLATES / "dashboard.jsonnet"), frame, tla_codes=frame_args, jpathdir=[str(TEMPLATES)]
        )
        module.evaluate_snippet(
            "row.jsonnet", row, tla_codes={"row": json.dumps({"title": f"r{i}", "collapsed": False})}
        )
    per_call = (time.perf_counter() - start) / (2 * runs) * 1000
    print(f"{name}: {per_call:.2f} ms per template evaluation")
    return per_call


def main() -> None:
    import _gojsonnet
    import _jsonnet

    go = bench(_gojsonnet, "gojsonnet (Go)")
    cpp = bench(_jsonnet, "jsonnet (C++)")
    print(f"gojsonnet is {cpp / go:.0f}x faster; the build uses gojsonnet")


if __name__ == "__main__":
    main()

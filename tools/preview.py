#!/usr/bin/env python3
"""A picture of every dashboard's layout: build/preview/<path>.svg, and .png where rsvg-convert is present
(out/ holds only what is deployed). Pictures of dashboards that no longer exist are removed.

Usage: python tools/preview.py   (nox -s preview)
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from dashkit.pipeline import BuildFailed, build
from dashkit.preview import render_svg

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    try:
        files = build(ROOT).files
    except BuildFailed as failed:
        print("\n".join(map(str, failed.problems)), file=sys.stderr)
        return 1
    folder = ROOT / "build" / "preview"
    converter = shutil.which("rsvg-convert")
    written = set()
    for path, text in sorted(files.items()):
        if not path.endswith(".json"):
            continue
        svg = folder / path.replace(".json", ".svg")
        svg.parent.mkdir(parents=True, exist_ok=True)
        svg.write_text(render_svg(json.loads(text)), encoding="utf-8")
        written.add(svg)
        if converter:
            subprocess.run([converter, str(svg), "-o", str(svg.with_suffix(".png"))], check=True, timeout=60)
            written.add(svg.with_suffix(".png"))
        print(svg.relative_to(ROOT))
    for stale in sorted(folder.rglob("*")):  # a removed service's picture; diff/ is tools/diff.py's
        if stale.suffix in (".svg", ".png") and stale not in written and (folder / "diff") not in stale.parents:
            stale.unlink()
    if not converter:
        print("no rsvg-convert (Debian: librsvg2-bin): SVG only")
    return 0


if __name__ == "__main__":
    sys.exit(main())

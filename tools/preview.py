#!/usr/bin/env python3
"""A picture of every dashboard's layout: out/preview/<path>.svg, and .png where rsvg-convert is present.

Usage: python tools/preview.py   (nox -s preview)
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dashkit.pipeline import BuildFailed, build  # noqa: E402
from dashkit.preview import render_svg  # noqa: E402


def main() -> int:
    try:
        files = build(ROOT).files
    except BuildFailed as failed:
        print("\n".join(map(str, failed.problems)), file=sys.stderr)
        return 1
    folder = ROOT / "out" / "preview"
    converter = shutil.which("rsvg-convert")
    for path, text in sorted(files.items()):
        if not path.endswith(".json"):
            continue
        svg = folder / path.replace(".json", ".svg")
        svg.parent.mkdir(parents=True, exist_ok=True)
        svg.write_text(render_svg(json.loads(text)), encoding="utf-8")
        if converter:
            subprocess.run([converter, str(svg), "-o", str(svg.with_suffix(".png"))], check=True, timeout=60)
        print(svg.relative_to(ROOT))
    if not converter:
        print("no rsvg-convert (Debian: librsvg2-bin): SVG only")
    return 0


if __name__ == "__main__":
    sys.exit(main())

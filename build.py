#!/usr/bin/env python3
"""Build the PyAirtable dashboards: values/*.yaml -> out/. Usage: python build.py [--out DIR] [--check]

On any problem it prints one line per problem (`file:line: key.path: message`), exits 1, and leaves
out/ exactly as it was.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dashkit.pipeline import BuildFailed, build, build_and_write

ROOT = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=ROOT, help="project folder holding values/ and templates/")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: ROOT/out)")
    parser.add_argument("--check", action="store_true", help="run every check, write nothing")
    args = parser.parse_args(argv)
    out = args.out or args.root / "out"
    try:
        result = build(args.root) if args.check else build_and_write(args.root, out)
    except BuildFailed as failed:
        for problem in failed.problems:
            print(problem, file=sys.stderr)
        print(f"build failed: {len(failed.problems)} problem(s); {out} left unchanged", file=sys.stderr)
        return 1
    verb = "checked" if args.check else f"wrote {len(result.dashboards)} dashboards and {len(result.files) - len(result.dashboards)} rule and provisioning files to {out}"
    panels = sum(sum(1 + len(p.get("panels", [])) for p in d.json["panels"]) for d in result.dashboards)
    print(f"{verb} ({panels} panels)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

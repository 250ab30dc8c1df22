#!/usr/bin/env python3
"""Semantic diff of the dashboards and rules: what changed, panel by panel, in words.

Usage:
  python tools/diff.py [BASE] [--check]        BASE (a git revision; default: merge base with main) -> working tree
  python tools/diff.py --files OLD.json NEW.json [--check]

BASE is built from git (git archive into a temporary folder), never touching the working tree. Exit 0, or
with --check, 1 when anything changed. The report is printed and written to build/reports/diff.md, with
before/after layout pictures under build/preview/diff/ for dashboards whose layout changed (out/ holds only
what is deployed).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tarfile
import tempfile
from io import BytesIO
from pathlib import Path

from dashkit.diff import diff_trees
from dashkit.pipeline import BuildFailed, build
from dashkit.preview import render_svg

ROOT = Path(__file__).resolve().parent.parent


def git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, check=True, capture_output=True, text=True).stdout.strip()


def default_base() -> str:
    for main in ("main", "origin/main"):
        try:
            return git("merge-base", "HEAD", main)
        except subprocess.CalledProcessError:
            continue
    return "HEAD"


def _plain_members(tar: tarfile.TarFile) -> list[tarfile.TarInfo]:
    """Files and folders that stay inside the extraction folder. What tarfile's filter="data" does, which
    exists only from Python 3.11.4 (Debian 12 ships 3.11.2); git archive writes nothing else but links."""
    plain = []
    for member in tar.getmembers():
        parts = Path(member.name).parts
        if (member.isfile() or member.isdir()) and not Path(member.name).is_absolute() and ".." not in parts:
            member.mode = 0o755 if member.isdir() else 0o644
            plain.append(member)
    return plain


def tree_at(revision: str) -> dict[str, str]:
    """Build the dashboards of a git revision with that revision's own code, in a temporary folder."""
    archive = subprocess.run(
        ["git", "archive", "--format=tar", revision], cwd=ROOT, check=True, capture_output=True
    ).stdout
    with tempfile.TemporaryDirectory(prefix="dashkit-base-") as tmp:
        with tarfile.open(fileobj=BytesIO(archive)) as tar:
            tar.extractall(tmp, members=_plain_members(tar))
        out = Path(tmp) / "out"
        run = subprocess.run([sys.executable, "build.py", "--out", str(out)], cwd=tmp, capture_output=True, text=True)
        if run.returncode != 0:
            raise SystemExit(f"the base {revision} does not build:\n{run.stderr}")
        return {
            p.relative_to(out).as_posix(): p.read_text(encoding="utf-8") for p in sorted(out.rglob("*")) if p.is_file()
        }


def previews(old: dict[str, str], new: dict[str, str]) -> dict[str, tuple[str, str]]:
    import json

    folder = ROOT / "build" / "preview" / "diff"
    shutil.rmtree(folder, ignore_errors=True)  # only this comparison's pictures, none from an earlier one
    links = {}
    for path in sorted(set(old) & set(new)):
        if not path.endswith(".json"):
            continue
        for side, tree in (("base", old), ("head", new)):
            target = folder / side / path.replace(".json", ".svg")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(render_svg(json.loads(tree[path])), encoding="utf-8")
        svg = path.replace(".json", ".svg")
        links[path] = (f"../preview/diff/base/{svg}", f"../preview/diff/head/{svg}")
    return links


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base", nargs="?", help="git revision to compare with (default: merge base with main)")
    parser.add_argument("--files", nargs=2, metavar=("OLD", "NEW"), help="compare two dashboard JSON files instead")
    parser.add_argument("--check", action="store_true", help="exit 1 when anything changed")
    args = parser.parse_args()
    if args.files:
        old_path, new_path = (Path(f) for f in args.files)
        report, count = diff_trees({"dashboard.json": old_path.read_text()}, {"dashboard.json": new_path.read_text()})
    else:
        base = args.base or default_base()
        try:
            new = build(ROOT).files
        except BuildFailed as failed:
            print("\n".join(map(str, failed.problems)), file=sys.stderr)
            return 2
        old = tree_at(base)
        report, count = diff_trees(old, new, previews(old, new))
        report = report.replace(
            "# Dashboard changes\n",
            f"# Dashboard changes\n\n`{git('rev-parse', '--short', base)}` → working tree, {count} change(s)\n",
            1,
        )
        folder = ROOT / "build" / "reports"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "diff.md").write_text(report, encoding="utf-8")
    print(report)
    return 1 if args.check and count else 0


if __name__ == "__main__":
    sys.exit(main())

"""The build: values -> load -> render -> assemble -> check -> write. Each stage only reads what the one
before it produced; problems from every stage are gathered so one run reports them all."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .assemble import Assembled, assemble
from .check import check
from .engines import Templates
from .load import load
from .problems import BuildFailed, Problem
from .reference import metric_reference
from .render import render
from .write import serialise, write_file, write_tree

REFERENCE = "docs/metrics.md"


@dataclass
class Build:
    files: dict[str, str]  # out/-relative path -> JSON text
    dashboards: list[Assembled]
    reference: str


def build(root: Path) -> Build:
    """Run every stage up to (not including) writing. Raises BuildFailed with every problem found."""
    root = Path(root)
    values, problems = load(root)
    if values is None:
        raise BuildFailed(problems)
    templates = Templates(root / "templates") if (root / "templates").is_dir() else Templates()
    rendered, found = render(values, templates)
    problems += found
    dashboards, found = assemble(rendered, values.defaults, templates)
    problems += found
    found, usage = check(dashboards, values.catalog)
    problems += found
    if not problems:  # only meaningful once every query checked cleanly: the catalog and the panels must agree
        problems += [
            Problem(values.catalog_src.at("metrics", name), f"metric '{name}' is in the catalog but on no panel")
            for name in values.catalog
            if name not in usage
        ]
    if problems:
        raise BuildFailed(problems)
    files = {d.path: serialise(d.json) for d in dashboards}
    return Build(files, dashboards, metric_reference(values.catalog, usage) + "\n")


def build_and_write(root: Path, out: Path) -> Build:
    result = build(root)
    write_tree(out, result.files)
    write_file(Path(root) / REFERENCE, result.reference)
    return result


__all__ = ["build", "build_and_write", "BuildFailed", "Problem"]

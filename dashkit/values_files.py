"""The files values/ holds, and one of them read and checked on its own: what load reads (dashkit/load.py)
and what a forked reader reads ahead of it (dashkit/helper.py). Light to import: the reader is forked
right after the build starts, and what it reads with (PyYAML, jsonschema-rs) is imported in it."""

from __future__ import annotations

import os
from pathlib import Path

from .problems import Problem, Source  # imported before the helper forks: both processes need them

# (schema kind, file) of the files every build reads; values/scenarios.yaml is optional.
SHARED = (
    ("defaults", "values/defaults.yaml"),
    ("metrics", "values/metrics.yaml"),
    ("standard", "values/standard.yaml"),
    ("overview", "values/overview.yaml"),
    ("rules", "values/rules.yaml"),
)
SCENARIOS = ("scenarios", "values/scenarios.yaml")


def service_files(root: Path) -> list[str]:
    """Every service file (values/services/*.yaml, hidden names aside), relative to root, sorted."""
    try:
        names = os.listdir(Path(root) / "values" / "services")  # a fleet's thousand files: no Path per name
    except OSError:  # as glob: no folder, no service files (the catalog's checks then name what is missing)
        return []
    # A hidden name is an editor's, never a service: emacs links `.#name.yaml` to nothing while a buffer
    # has unsaved changes, and that would have failed the build as a broken service file.
    return [f"values/services/{name}" for name in sorted(names) if name.endswith(".yaml") and name[0] != "."]


def values_files(root: Path) -> list[tuple[str, str]]:
    """(schema kind, file) of every values file a whole build reads."""
    scenarios = [SCENARIOS] if os.path.lexists(Path(root) / SCENARIOS[1]) else []
    return [*SHARED, *scenarios, *(("service", rel) for rel in service_files(root))]


def parse_checked(text: str, rel: str, kind: str) -> tuple[object, Source, list[Problem]]:
    """A values file's text parsed and checked against the schema's `kind`: (the document, or None when it
    has a problem; the line of each key; its problems)."""
    from .values_schema import schema_problems
    from .yamlsource import load_yaml  # here: a build whose files were read ahead never imports PyYAML

    data, src, problems = load_yaml(text, rel)
    if data is None or problems:
        return None, src, problems
    problems = schema_problems(data, kind, src)
    return (None if problems else data), src, problems

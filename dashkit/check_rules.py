"""Checks of the rules before anything is written: every expression against the catalog (recording rules
included), and the alert conventions that mixtool lints for."""

from __future__ import annotations

import re

from . import promql
from .problems import Problem
from .rules import Rules

CAMEL_CASE = re.compile(r"^[A-Z][a-z0-9]+(?:[A-Z][a-z0-9]*)*$")
MAX_NAME = 40
MAX_GROUP = 20
SEVERITIES = {"critical", "warning"}


def check_rules(rules: Rules | None, catalog: dict) -> tuple[list[Problem], set[str]]:
    """Returns (problems, catalog metric names the rules use)."""
    if rules is None:
        return [], set()
    problems: list[Problem] = []
    used: set[str] = set()
    seen: dict[tuple[str, str], object] = {}
    sizes: dict[str, int] = {}
    linted: set[int] = set()
    for rule in rules.alerts:
        spec = rule.spec
        found, names = promql.check_expr(rule.condition, catalog)
        used.update(names)
        problems += [Problem(spec.src.at("expr"), msg) for msg in found]
        key = (rule.group, spec.name)
        if key in seen and seen[key] is not spec:
            other = seen[key].src.at("alert")
            problems.append(Problem(spec.src.at("alert"), f"duplicate alert name '{spec.name}' in group {rule.group} (also {other.file}:{other.line})"))
        seen.setdefault(key, spec)
        sizes[rule.group] = sizes.get(rule.group, 0) + 1
        if sizes[rule.group] == MAX_GROUP + 1:
            problems.append(Problem(spec.src.at("alert"), f"group {rule.group} has more than {MAX_GROUP} alerts; split it"))
        if id(spec) not in linted:
            linted.add(id(spec))
            problems += lint_alert(spec)
    return problems, used


def lint_alert(spec) -> list[Problem]:
    problems = []
    if not CAMEL_CASE.match(spec.name) or len(spec.name) > MAX_NAME:
        problems.append(Problem(spec.src.at("alert"), f"alert name '{spec.name}' must be CamelCase and at most {MAX_NAME} characters"))
    if spec.severity not in SEVERITIES:
        problems.append(Problem(spec.src.at("threshold"), f"severity '{spec.severity}' must be critical or warning"))
    if "{{" in spec.summary or not spec.summary[:1].isupper() or not spec.summary.endswith("."):
        problems.append(Problem(spec.src.at("summary"), "summary must be one plain sentence (capital first, full stop last, no {{ templating }})"))
    if "{{" not in spec.description:
        problems.append(Problem(spec.src.at("description"), "description must use templating ({{ $labels.job }}, {{ $value }}) to say what fired"))
    return problems


class Promtool:
    """`promtool check rules` on the generated rule files, run on the other core while the build goes on."""

    def __init__(self, files: dict[str, str]):
        import shutil
        import subprocess
        import tempfile

        self.binary = shutil.which("promtool")
        self.files = files
        self.proc = None
        if self.binary is None or not files:
            return
        self.dir = tempfile.TemporaryDirectory(prefix="pyairtable-rules-")
        paths = []
        for rel, text in sorted(files.items()):
            path = f"{self.dir.name}/{rel.replace('/', '__')}"
            with open(path, "w", encoding="utf-8") as fh:
                fh.write(text)
            paths.append(path)
        self.proc = subprocess.Popen([self.binary, "check", "rules", *paths], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def problems(self, where) -> list[Problem]:
        """Wait for promtool; a failure becomes one problem per failing file."""
        if self.proc is None:
            return []
        output, _ = self.proc.communicate(timeout=60)
        self.dir.cleanup()
        if self.proc.returncode == 0:
            return []
        text = " ".join(line.strip() for line in output.splitlines() if line.strip() and not line.startswith("Checking"))
        return [Problem(where, f"promtool check rules failed: {text.replace(self.dir.name + '/', '')}")]

"""Checks of the rules before anything is written: every expression against the catalog (recording rules
included), and the alert conventions that mixtool lints for."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from pathlib import Path

from . import promql
from .problems import Problem
from .rules import Rules
from .specs import Catalog

PROMTOOL_RULE_ERROR = re.compile(
    r'group "(?P<group>[^"]+)", rule \d+, "(?P<rule>[^"]+)":(?: annotation "(?P<annotation>[^"]+)":)?(?P<message>.*)$'
)
CAMEL_CASE = re.compile(r"^[A-Z][a-z0-9]+(?:[A-Z][a-z0-9]*)*$")
QUERY_GROUP = "dashkit-dashboard-queries"
QUERY_FILE = "queries/dashkit-dashboard-queries.rules.yaml"  # a temporary file only, never written to out/
MAX_NAME = 40
MAX_GROUP = 20
SEVERITIES = {"critical", "warning"}


def check_rules(rules: Rules | None, catalog: Catalog) -> list[Problem]:
    if rules is None:
        return []
    problems: list[Problem] = []
    seen: dict[tuple[str, str], object] = {}
    sizes: dict[str, int] = {}
    linted: set[int] = set()
    for rule in rules.alerts:
        spec = rule.spec
        found, _ = promql.check_expr(rule.condition, catalog)
        problems += [Problem(spec.src.at("expr"), msg) for msg in found]
        key = (rule.group, spec.name)
        if key in seen and seen[key] is not spec:
            other = seen[key].src.at("alert")
            problems.append(
                Problem(
                    spec.src.at("alert"),
                    f"duplicate alert name '{spec.name}' in group {rule.group} (also {other.file}:{other.line})",
                )
            )
        seen.setdefault(key, spec)
        sizes[rule.group] = sizes.get(rule.group, 0) + 1
        if sizes[rule.group] == MAX_GROUP + 1:
            problems.append(
                Problem(spec.src.at("alert"), f"group {rule.group} has more than {MAX_GROUP} alerts; split it")
            )
        if id(spec) not in linted:
            linted.add(id(spec))
            problems += lint_alert(spec)
    return problems


def lint_alert(spec) -> list[Problem]:
    problems = []
    # fullmatch: match() with a pattern ending in $ lets a name ending in a newline through
    if not CAMEL_CASE.fullmatch(spec.name) or len(spec.name) > MAX_NAME:
        problems.append(
            Problem(
                spec.src.at("alert"), f"alert name {spec.name!r} must be CamelCase and at most {MAX_NAME} characters"
            )
        )
    if spec.severity not in SEVERITIES:
        problems.append(Problem(spec.src.at("threshold"), f"severity '{spec.severity}' must be critical or warning"))
    if "{{" in spec.summary or not spec.summary[:1].isupper() or not spec.summary.endswith("."):
        problems.append(
            Problem(
                spec.src.at("summary"),
                "summary must be one plain sentence (capital first, full stop last, no {{ templating }})",
            )
        )
    if "{{" not in spec.description:
        problems.append(
            Problem(
                spec.src.at("description"),
                "description must use templating ({{ $labels.job }}, {{ $value }}) to say what fired",
            )
        )
    return problems


class Promtool:
    """`promtool check rules` on the generated rule files, run on the other core while the build goes on.

    A verdict depends only on the files' bytes and promtool's version, so a pass is remembered under
    .cache/promtool/ and the same files are not checked twice."""

    def __init__(self, files: dict[str, str], cache_dir: Path | None = None, queries: dict[str, list] | None = None):
        self.binary = shutil.which("promtool")
        self.proc = None
        self.marker = None
        # Dashboard queries ride along as recording rules of one more group; each rule name leads back to
        # where its query was written.
        self.queries = {f"query_{i}": wheres for i, wheres in enumerate((queries or {}).values(), 1)}
        if queries:
            rules = [{"record": name, "expr": expr} for name, expr in zip(self.queries, queries, strict=True)]
            files = dict(
                files, **{QUERY_FILE: json.dumps({"groups": [{"name": QUERY_GROUP, "rules": rules}]}, indent=1) + "\n"}
            )
        if self.binary is None or not files:
            return
        digest = hashlib.sha256(self.binary.encode() + str(os.stat(self.binary).st_mtime_ns).encode())
        for rel, text in sorted(files.items()):
            digest.update(rel.encode() + b"\0" + text.encode() + b"\0")
        if cache_dir is not None:
            self.marker = cache_dir / digest.hexdigest()
            if self.marker.exists():
                return
        self.dir = tempfile.TemporaryDirectory(prefix="dashkit-rules-")
        paths = []
        for rel, text in sorted(files.items()):
            path = Path(self.dir.name) / rel.replace("/", "__")
            path.write_text(text, encoding="utf-8")
            paths.append(str(path))
        import subprocess  # only when promtool runs: a build whose files passed before never starts it

        self.proc = subprocess.Popen(
            [self.binary, "check", "rules", *paths], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )

    def problems(self, rules: Rules | None, fallback) -> list[Problem]:
        """Wait for promtool; each failure it names becomes a problem at the alert's line in values (found by
        the group name the rules stage gave it)."""
        if self.proc is None:
            return []
        output, _ = self.proc.communicate(timeout=60)
        self.dir.cleanup()
        if self.proc.returncode == 0:
            self._remember()
            return []
        specs = {(r.ruler_group, r.spec.name): r.spec for r in (rules.alerts if rules else [])}
        problems = []
        for line in output.splitlines():
            found = PROMTOOL_RULE_ERROR.search(line)
            if found and found["group"] == QUERY_GROUP and found["rule"] in self.queries:
                message = found["message"].strip().removeprefix("could not parse expression: ")
                problems += [
                    Problem(where, f"Prometheus rejects this query (promtool): {message}")
                    for where in self.queries[found["rule"]]
                ]
                continue
            if found and (found["group"], found["rule"]) in specs:
                spec = specs[(found["group"], found["rule"])]
                key = found["annotation"] or "expr"
                problems.append(Problem(spec.src.at(key), f"promtool: {found['message'].strip()}"))
        if not problems:
            text = " ".join(
                line.strip() for line in output.splitlines() if line.strip() and not line.startswith("Checking")
            )
            problems.append(Problem(fallback, f"promtool check rules failed: {text.replace(self.dir.name + '/', '')}"))
        return problems

    def _remember(self) -> None:
        if self.marker is None:
            return
        try:
            self.marker.parent.mkdir(parents=True, exist_ok=True)
            self.marker.touch()
        except OSError:
            pass  # no cache: promtool simply runs again next time

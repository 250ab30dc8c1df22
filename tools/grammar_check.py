#!/usr/bin/env python3
"""Lint: every LogQL (and TraceQL) query on every dashboard parses with Grafana's own grammar.

Usage: python tools/grammar_check.py   (nox -s lint installs the grammars and runs it)
"""

from __future__ import annotations

import sys
from pathlib import Path

from dashkit.grammar import grammar_available, grammar_problems

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    missing = grammar_available()
    if missing:
        print(f"grammar check cannot run: {missing}", file=sys.stderr)
        return 2
    problems = grammar_problems(ROOT)
    for problem in problems:
        print(problem, file=sys.stderr)
    print(f"grammar check: {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

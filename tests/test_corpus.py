"""The bad-input corpus: tests/corpus/<case>/patch.yaml breaks a copy of the project with a few lines (never a
copy of a values file), and expected.txt holds the lines the build must print, with the line numbers and key
paths that depend on the current values computed from the patched files. Every case: exit 1, exactly those
problems, out/ byte-for-byte unchanged. A case without patch.yaml or expected.txt fails. Format:
tests/corpus/README.md."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from conftest import ROOT
from patches import apply_patch, item_at_line, line_of_path, load_patch, parse_path, path_at_line, show_path, yaml_lines

CORPUS = ROOT / "tests" / "corpus"
CASES = sorted(p.name for p in CORPUS.iterdir() if p.is_dir())
PLACEHOLDER = re.compile(r"\{(?:(path|item)(\d*)|line of '(.+?)' in (\S+?))\}")
LINE = re.compile(r"\{line([+-]\d+)?\}")
_TEMPLATE: dict[str, Path] = {}


@pytest.fixture
def built_project(project, tmp_path_factory):
    """The `project` copy with out/ already built: built once, then copied for every case (a build per case
    is what a case costs)."""
    if "path" not in _TEMPLATE:
        assert project.build().returncode == 0, project.build().stderr
        _TEMPLATE["path"] = tmp_path_factory.mktemp("corpus-template") / "project"
        shutil.copytree(project.path, _TEMPLATE["path"], symlinks=True)
    else:
        shutil.rmtree(project.path)
        shutil.copytree(_TEMPLATE["path"], project.path, symlinks=True)
    return project


def expected_lines(case: str, root: Path, landed: dict[str, list[int]]) -> list[str]:
    """expected.txt with its placeholders filled in from the patched files under root."""
    parsed: dict[str, dict] = {}

    def lines_of(rel: str) -> dict:
        if rel not in parsed:
            parsed[rel] = yaml_lines((root / rel).read_text(encoding="utf-8"))
        return parsed[rel]

    def edit_line(rel: str, n: str) -> int:
        edits = landed.get(rel)
        assert edits and len(edits) >= int(n or 1), (
            f"corpus/{case}: expected.txt names edit {n or 1} of {rel}, which the patch does not make"
        )
        return edits[int(n or 1) - 1]

    out = []
    for template in (CORPUS / case / "expected.txt").read_text(encoding="utf-8").splitlines():
        rel = template.split(":", 1)[0]

        def fill(match: re.Match, rel=rel) -> str:
            kind, n, text, file = match.groups()
            if text is not None:
                found = [
                    i
                    for i, line in enumerate((root / file).read_text(encoding="utf-8").splitlines(), 1)
                    if text in line
                ]
                assert found, f"corpus/{case}: {text!r} is not in {file}"
                return str(found[0])
            line = edit_line(rel, n)
            return show_path(path_at_line(lines_of(rel), line) if kind == "path" else item_at_line(lines_of(rel), line))

        message = PLACEHOLDER.sub(fill, template)
        match = LINE.search(message)
        if match:
            where = message[match.end() :].removeprefix(": ").split(": ", 1)[0]
            base = edit_line(rel, "") if where == "(document)" else line_of_path(lines_of(rel), parse_path(where))
            message = message[: match.start()] + str(base + int(match.group(1) or 0)) + message[match.end() :]
        out.append(message)
    return out


def test_the_corpus_is_large_enough():
    assert len(CASES) >= 40


def test_every_case_is_a_patch_and_its_expected_lines():
    """Cases hold a few changed lines, not copies of values files that go stale as the values change."""
    for case in CASES:
        assert sorted(p.name for p in (CORPUS / case).iterdir()) == ["expected.txt", "patch.yaml"], case


@pytest.mark.parametrize("case", CASES)
def test_corpus_case(built_project, case):
    project = built_project
    before = project.out_bytes()
    landed = apply_patch(project.path, load_patch(CORPUS / case / "patch.yaml"))
    result = project.build()
    expected = expected_lines(case, project.path, landed)
    assert result.returncode == 1, result.stderr
    assert result.stderr.splitlines()[:-1] == expected
    assert result.stderr.splitlines()[-1].startswith(f"build failed: {len(expected)} problem(s); ")
    assert project.out_bytes() == before

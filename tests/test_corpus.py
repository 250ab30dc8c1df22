"""The bad-input corpus: tests/corpus/<case>/ holds real malformed files (values, or templates) laid over a
copy of the project, and expected.txt the exact lines the build must print. Every case: exit 1, exactly
those problems, out/ byte-for-byte unchanged. A case with no expected.txt fails."""

from __future__ import annotations

import shutil

import pytest
from conftest import ROOT

CORPUS = ROOT / "tests" / "corpus"
CASES = sorted(p.name for p in CORPUS.iterdir() if p.is_dir())


def test_the_corpus_is_large_enough():
    assert len(CASES) >= 40


@pytest.mark.parametrize("case", CASES)
def test_corpus_case(project, case):
    assert project.build().returncode == 0
    before = project.out_bytes()
    folder = CORPUS / case
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.name != "expected.txt":
            target = project.path / path.relative_to(folder)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
    result = project.build()
    expected = (folder / "expected.txt").read_text(encoding="utf-8").splitlines()
    assert result.returncode == 1
    assert result.stderr.splitlines()[:-1] == expected
    assert result.stderr.splitlines()[-1].startswith(f"build failed: {len(expected)} problem(s); ")
    assert project.out_bytes() == before

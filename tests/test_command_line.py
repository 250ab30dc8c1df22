"""The command line: a plain one (options written out in full, as the README and nox write them) is read
without argparse, which costs milliseconds before a small build's helper can fork; whatever it reads must be
what argparse reads, and anything else goes to argparse, which reads it or words the mistake."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import re
import subprocess
import sys

import pytest
from conftest import ROOT
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st


@pytest.fixture(scope="module")
def build_script():
    spec = importlib.util.spec_from_file_location("build_script", ROOT / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def argparse_reads(module, argv: list[str]) -> dict | None:
    """What argparse makes of argv, or None where it refuses it (it exits 2 with a message)."""
    with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
        try:
            return vars(module.parser().parse_args(argv))
        except SystemExit:
            return None


def words_of(module) -> list[str]:
    """Words a command line is made of: each of build.py's options in full, abbreviated, with `=` and a value,
    and values argparse reads in its own ways (a leading dash, an empty word, digits that are not ASCII,
    numbers out of range). The options come from the parser, so a new one is tried too."""
    options = [name for action in module.parser()._actions for name in action.option_strings]
    forms = [
        form for name in options for form in (name, name[:-1], f"{name}=3", f"{name}=", f"{name}=-x", f"{name}=--")
    ]
    return forms + ["--", "-", "-5", "0", "1", "01", str(module.MAX_JOBS), str(module.MAX_JOBS + 1), "\u0663", ""]


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_command_line_read_without_argparse_is_read_as_argparse_reads_it(build_script, data):
    argv = data.draw(st.lists(st.sampled_from(words_of(build_script) + ["o", "out dir", "x=y"]), max_size=6))
    plain = build_script.plain_arguments(argv)
    if plain is not None:
        assert vars(plain) == argparse_reads(build_script, argv), argv


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["--no-cache"],
        ["--check"],
        ["--no-cache", "--out", "DIR"],
        ["--out=DIR", "--jobs", "2", "--no-cache"],
        ["--root", "fleet", "--out", "out", "--jobs=1", "--check"],
    ],
)
def test_the_command_lines_the_readme_and_nox_write_are_read_without_argparse(build_script, argv):
    plain = build_script.plain_arguments(argv)
    assert plain is not None, argv
    assert vars(plain) == argparse_reads(build_script, argv)


def test_other_command_lines_still_get_argparse(build_script, tmp_path):
    """An abbreviation is argparse's to read; a mistake gets its usage line and exit status 2."""
    abbreviated = subprocess.run(
        [sys.executable, "build.py", "--no-c", "--chec"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert abbreviated.returncode == 0, abbreviated.stderr
    assert abbreviated.stdout.startswith("checked ")
    wrong = subprocess.run(
        [sys.executable, "build.py", "--jobs", "0", "--out", str(tmp_path / "o")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert wrong.returncode == 2
    assert re.search(r"^usage: build\.py", wrong.stderr, re.M)
    assert f"--jobs: must be a whole number of processes from 1 to {build_script.MAX_JOBS}: '0'" in wrong.stderr
    assert not (tmp_path / "o").exists()

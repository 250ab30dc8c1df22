"""The values files read ahead: parsed and checked in a forked process while this one imports the build's
modules, for a small build is mostly start-up. Reading, parsing and checking the values files (PyYAML and
jsonschema-rs imported for it) is a third of a 7-dashboard build before its first stage; done beside the
imports it costs the build next to nothing (docs/performance.md).

The reader reads, parses and checks every values file as load does (values_files.parse_checked) and sends
back each file that had no problem, with the text it read. load takes a file from it only for that same
text (a file edited meanwhile is read again) and reads every other file itself, so each problem is found
and reported as without it. Nothing is read ahead for a fleet built in parts (its files are read on every
core), with `--jobs 1`, on one core, or when the system refuses a process; a reader that fails or is
killed and the build reads the files itself.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

from . import workers
from .values_files import values_files


def read_ahead(root: Path) -> ReadAhead | None:
    """Start reading root's values files in a forked process; None when it is not worth it or not possible."""
    if workers.processes() < 2:
        return None
    files = values_files(root)
    if sum(kind == "service" for kind, _ in files) >= workers.LARGE_FLEET:
        return None
    reader = workers.start(partial(_read_all, root), files)
    return ReadAhead(reader) if reader is not None else None


class ReadAhead:
    """What the reader found, in the form load asks a store of parsed files (`get`, `put`)."""

    def __init__(self, reader: workers.Child):
        self.reader = reader
        self._found: dict | None = None

    def done(self) -> bool:
        """Whether the reader has ended (found() would not wait)."""
        return self._found is not None or self.reader.ended()

    def found(self) -> dict:
        """(kind, file) -> (its text, its document, the line of each key), waiting for the reader once."""
        if self._found is None:
            result = self.reader.result()
            self._found = result if isinstance(result, dict) else {}
        return self._found

    def get(self, kind: str, rel: str, text: str) -> tuple[object, dict] | None:
        hit = self.found().get((kind, rel))
        return (hit[1], hit[2]) if hit is not None and hit[0] == text else None

    def put(self, kind: str, rel: str, text: str, data, lines: dict) -> None:
        """Nothing to keep: this build read the file itself."""

    def stop(self) -> None:
        """End the reader if it still runs (a build that stopped early, or never asked)."""
        self.reader.stop()


def _read_all(root: Path, files: list[tuple[str, str]]) -> dict:
    """Runs in the reader: every file without a problem, as ReadAhead.found gives it (plain data)."""
    from .safe_read import read_text
    from .values_files import parse_checked

    found = {}
    for kind, rel in files:
        text, _ = read_text(root, rel)
        if text is None:
            continue
        data, src, _ = parse_checked(text, rel, kind)
        if data is not None:
            found[kind, rel] = (text, data, src.lines)
    return found

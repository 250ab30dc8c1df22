"""Where a problem is, and how it is reported: `file:line: key.path: message`."""

from __future__ import annotations

from collections import namedtuple


def format_path(path: tuple) -> str:
    """('rows', 0, 'panels', 1, 'unit') -> 'rows[0].panels[1].unit'."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += ("." if text else "") + str(part)
    return text or "(document)"


EXCERPT = 40  # characters of what was read that a message may quote


def excerpt(text: str, limit: int = EXCERPT) -> str:
    """At most `limit` characters of text a user wrote, for a message: never the whole of what was read."""
    text = str(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


# Named tuples, not dataclasses: the values files' reader is forked before the build imports dataclasses
# (and `inspect` with it, ~9 ms), and needs no more than these (dashkit/helper.py).
class Where(namedtuple("Where", ("file", "line", "path"), defaults=((),))):
    __slots__ = ()


class Problem(namedtuple("Problem", ("where", "message"))):
    __slots__ = ()

    def __str__(self) -> str:
        w = self.where
        message = self.message.replace("\r", "\\r").replace(
            "\n", "\\n"
        )  # one problem, one line, whatever text it quotes
        if w.line == 0:  # about the file itself (missing, unreadable, refused): there is no line to name
            return f"{w.file}: {message}"
        return f"{w.file}:{w.line}: {format_path(w.path)}: {message}"


class Source:
    """A located YAML document: turns a key path into the line a user should look at."""

    __slots__ = ("file", "lines", "base")

    def __init__(self, file: str, lines: dict, base: tuple = ()):
        self.file = file
        self.lines = lines
        self.base = base

    def child(self, *path) -> Source:
        return Source(self.file, self.lines, self.base + path)

    def at(self, *path) -> Where:
        full = self.base + path
        probe = full
        while probe not in self.lines and probe:
            probe = probe[:-1]
        return Where(self.file, self.lines.get(probe, 1), full)


class BuildFailed(Exception):
    """Raised with every problem found; the build writes nothing."""

    def __init__(self, problems: list[Problem]):
        super().__init__(f"{len(problems)} problem(s)")
        self.problems = sorted(set(problems), key=lambda p: (p.where.file, p.where.line, str(p)))

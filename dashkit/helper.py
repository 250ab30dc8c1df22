"""A small build's second process. Forked as the build starts, it reads, parses and checks the values files
while the build's process imports its modules, then evaluates two fifths of the panels' Jsonnet and checks
the dashboards against the schema beside it. A 7-dashboard build is mostly start-up and one long go-jsonnet
evaluation, on one core of two (docs/performance.md).

Reading: the helper reads, parses and checks every values file as load does (values_files.parse_checked)
and sends back each file that had no problem, with the text it read. load takes a file from it only for that
same text (a file edited meanwhile is read again) and reads every other file itself, so each problem is
found and reported as without it. Jsonnet: the build's process sends a share of a batch's items and
evaluates the rest itself; the results are the same values in the same places (each item is evaluated on
its own), and a share the helper cannot give is evaluated in the build's process, which reports any error.
The schema check's errors come back as plain data and become the same problems.

Started only where it pays and is safe: on two cores or more with one to spare (the load average below the
cores, or `--jobs 2` asked), for fewer service files than a fleet built in parts (workers.LARGE_FLEET; a
`--check` of such a fleet reads its files on every core from 64 on), for a build without the build cache
(which keeps parsed files of its own), and before go-jsonnet is loaded (its runtime does not survive a
fork). Like every worker it ignores Ctrl-C, dies with the build, and is stopped when it ends; one that
says nothing for SILENCE seconds (stopped, starved) is given up and its share done here.
"""

from __future__ import annotations

import contextlib
import marshal
import os
import select
import struct
from collections.abc import Callable
from functools import partial
from pathlib import Path

from . import workers
from .values_files import values_files

Reply = Callable[[], object]  # waits for a request's reply: None when the helper could not give it
HEADER = struct.Struct("<Q")  # a message's length, before it: marshal data, many messages on one pipe
# A helper that sends nothing for this long is given up (stopped, say, or starved): the build does its share.
# Its whole work for the largest fleet it takes is well under a second.
SILENCE = 10.0


def start(root: Path) -> Helper | None:
    """The helper for a build of root, reading its values files already; None where it does not pay or the
    system refuses a process or a pipe."""
    if workers.processes() < 2 or not workers.spare_core():
        return None
    files = values_files(root)
    if sum(kind == "service" for kind, _ in files) >= workers.LARGE_FLEET:
        return None
    pipes: list[tuple[int, int]] = []
    try:
        for _ in range(2):
            pipes.append(os.pipe())
    except OSError:
        _close(*(fd for pipe in pipes for fd in pipe))
        return None
    (requests_in, requests_out), (replies_in, replies_out) = pipes
    child = workers.start(partial(_serve, root, files, requests_in, replies_out, (requests_out, replies_in)), None)
    _close(requests_in, replies_out)  # the helper's ends
    if child is None:
        _close(requests_out, replies_in)
        return None
    return Helper(child, requests_out, replies_in)


class Helper:
    """The build's side: what the helper read, in the form load asks a store of parsed files (`get`, `put`),
    and Jsonnet evaluated there (`evaluate`). Replies come in the order asked; the files come first."""

    def __init__(self, child: workers.Child, requests: int, replies: int):
        self.child, self.requests, self.replies = child, requests, replies
        self._found: dict | None = None
        self.failed = False  # it ended or sent what it should not: the build does the rest itself
        self.answered = False  # it gave a reply to a request

    def done(self) -> bool:
        """Whether the files have come (found() would not wait)."""
        return self._found is not None or _readable(self.replies, 0)

    def found(self) -> dict:
        """(kind, file) -> (its text, its document, the line of each key), waiting for the helper once."""
        if self._found is None:
            result = self._receive()
            self._found = result if isinstance(result, dict) else {}
        return self._found

    def helped(self) -> bool:
        """Whether it gave this build anything (the build says it was made in two processes)."""
        return bool(self._found) or self.answered

    def get(self, kind: str, rel: str, text: str) -> tuple[object, dict] | None:
        hit = self.found().get((kind, rel))
        return (hit[1], hit[2]) if hit is not None and hit[0] == text else None

    def put(self, kind: str, rel: str, text: str, data, lines: dict) -> None:
        """Nothing to keep: this build read the file itself."""

    def evaluate(self, name: str, source: str, tla_vars: dict[str, str], jpathdir: list[str]) -> Reply:
        """engines.evaluate_text(...) there: its text."""
        return self._ask("jsonnet", name, source, tla_vars, jpathdir)

    def schema_errors(self, dashboards: list[dict]) -> Reply:
        """check.dashboard_schema_errors of each dashboard there."""
        return self._ask("schema", dashboards)

    def _ask(self, kind: str, *arguments) -> Reply:
        """Send a request; returns a function that waits for its reply (None: the helper could not give it).
        Each reply must be taken before the next request's: they come in order."""
        self.found()  # the files come first
        asked = not self.failed and self._send((kind, *arguments))

        def reply():
            answer = self._receive() if asked else None
            if isinstance(answer, tuple) and answer[0] == "ok":
                self.answered = True
                return answer[1]
            return None

        return reply

    def stop(self) -> None:
        """End the helper: it has done its share, or the build stopped early."""
        _close(self.requests, self.replies)
        self.requests = self.replies = -1
        self.child.stop()

    def _send(self, message) -> bool:
        try:
            _write(self.requests, message)
            return True
        except (OSError, ValueError):
            self.failed = True
            return False

    def _receive(self):
        if self.failed:
            return None
        try:
            return _read(self.replies, SILENCE)
        except (OSError, ValueError, EOFError, TypeError, TimeoutError):
            self.failed = True  # dead, stopped or lost: what it has not given, the build does itself
            self.child.stop()
            return None


# --- the helper's side --------------------------------------------------------------------------------
def _serve(root: Path, files: list[tuple[str, str]], requests: int, replies: int, theirs: tuple[int, int], _) -> bool:
    """Runs in the helper: the files, then each request's reply, until the build closes its end."""
    _close(*theirs)
    _write(replies, _read_all(root, files))
    from .engines import warm_up_jsonnet

    warm_up_jsonnet()  # before the first request, which the build's process is already waiting on
    while True:
        try:
            request = _read(requests)
        except EOFError:
            return True
        kind, *arguments = request
        try:
            answer = ("ok", HANDLERS[kind](*arguments))
        except Exception as err:  # noqa: BLE001 (the build's process does it again and reports)
            answer = ("error", type(err).__name__)
        _write(replies, answer)
        if kind == "jsonnet":  # the dashboard schema's request comes next, and this process is idle till then
            with contextlib.suppress(Exception):
                _check().prepare()


def _check():
    from . import check

    return check


HANDLERS = {
    "jsonnet": lambda *arguments: _evaluate_text(*arguments),
    "schema": lambda dashboards: [_check().dashboard_schema_errors(d) for d in dashboards],
}


def _evaluate_text(*arguments) -> str:
    from .engines import evaluate_text

    return evaluate_text(*arguments)


def _read_all(root: Path, files: list[tuple[str, str]]) -> dict:
    """Every file without a problem, as Helper.found gives it (plain data)."""
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


def _write(fd: int, message) -> None:
    data = marshal.dumps(message)
    view = memoryview(HEADER.pack(len(data)) + data)
    while view:
        view = view[os.write(fd, view) :]


def _read(fd: int, silence: float | None = None):
    """One message; EOFError when the other side has closed its end, TimeoutError after `silence` seconds
    without a byte."""
    (size,) = HEADER.unpack(_exactly(fd, HEADER.size, silence))
    return marshal.loads(_exactly(fd, size, silence))


def _exactly(fd: int, size: int, silence: float | None) -> bytes:
    parts, left = [], size
    while left:
        if silence is not None and not _readable(fd, silence):
            raise TimeoutError
        part = os.read(fd, min(left, 1 << 20))
        if not part:
            raise EOFError
        parts.append(part)
        left -= len(part)
    return b"".join(parts)


def _readable(fd: int, seconds: float) -> bool:
    """Whether fd has something to read (or its end closed) within `seconds`. poll, not select: a build that
    inherited a thousand open files has descriptors past select's limit."""
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(seconds * 1000))


def _close(*fds: int) -> None:
    for fd in fds:
        if fd >= 0:
            with contextlib.suppress(OSError):
                os.close(fd)

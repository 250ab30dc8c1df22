"""Work split over the machine's cores in forked processes: a large fleet's services are built in parts
(dashkit/incremental.py) side by side, and its service files read side by side (dashkit/load.py).

Forked, not spawned: a child starts with every module imported and every values file this process read
(spawning re-imports for ~0.1 s a worker). Only before the Go runtime is loaded: go-jsonnet's threads do not
survive a fork, and a child that evaluated Jsonnet after one could hang. Children ignore Ctrl-C, and this
process, which answers it, kills them; their results come back as plain data (marshal runs no code).
"""

from __future__ import annotations

import contextlib
import marshal
import os
import signal
import sys
from collections.abc import Callable, Iterator

MAX_CORES = 4  # beyond this, forking and gathering cost more than the cores give (measured on 2)
_share: int | None = None  # while a forked map runs: the cores this process may use of its own
_allowed: int | None = None  # `python build.py --jobs N`


def allow(jobs: int | None) -> None:
    """`jobs` processes for this build (None: one per core, at most MAX_CORES)."""
    global _allowed
    _allowed = jobs


def processes() -> int:
    """How many processes the work at hand may be forked into: cores(), or one once go-jsonnet is loaded
    (see above)."""
    return 1 if "_gojsonnet" in sys.modules else cores()


def cores() -> int:
    """How many cores the work at hand may take: the cores this process may run on (or --jobs), one while it
    shares them with the siblings of a forked map."""
    if _share is not None:
        return _share
    if _allowed is not None:
        return _allowed  # as asked, even beyond the cores: the same output, only slower
    try:
        available = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        available = os.cpu_count() or 1
    return max(1, min(available, MAX_CORES))


@contextlib.contextmanager
def _sharing() -> Iterator[None]:
    global _share
    before, _share = _share, 1
    try:
        yield
    finally:
        _share = before


def forked_map(function: Callable, chunks: list) -> list | None:
    """[function(chunk) for chunk in chunks]: the first chunk in this process, each other one in a child
    forked for it. Results must be plain data (marshal). None when a child did not return one (it failed:
    the caller then does the work in one process, where a failure is reported as it always is)."""
    children: list[tuple[int, int]] = []
    try:
        for chunk in chunks[1:]:
            read_end, write_end = os.pipe()
            pid = os.fork()
            if pid == 0:  # the child: never returns
                os.close(read_end)
                _child(function, chunk, write_end)
            os.close(write_end)
            children.append((pid, read_end))
        with _sharing():
            results = [function(chunks[0])]
        while children:
            pid, read_end = children[0]
            with os.fdopen(read_end, "rb") as pipe:
                data = pipe.read()
            _, status = os.waitpid(pid, 0)
            children.pop(0)
            if os.waitstatus_to_exitcode(status) != 0 or not data:
                return None
            results.append(marshal.loads(data))
        return results
    finally:
        for pid, read_end in children:  # a failure or Ctrl-C here: the children's work is of no use
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(OSError):
                os.close(read_end)
            with contextlib.suppress(OSError):
                os.waitpid(pid, 0)


def _child(function: Callable, chunk, write_end: int) -> None:
    """Run one chunk and write its result to the pipe; exit without the interpreter's teardown (the parent's
    buffers and handlers are not this process's to flush or run)."""
    code = 1
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        global _share
        _share = 1
        data = marshal.dumps(function(chunk))
        with os.fdopen(write_end, "wb") as pipe:
            pipe.write(data)
        code = 0
    except BaseException:  # noqa: BLE001 (any failure: the parent redoes the work and reports it)
        code = 1
    finally:
        os._exit(code)

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

from .interrupts import interrupts_held

LARGE_FLEET = 48  # service files from which a build is made in parts on every core (measured: incremental.py)
MAX_CORES = 4  # a guess, not a measurement (this machine has 2 cores): gathering in one process bounds the gain
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


def spare_core() -> bool:
    """Whether a second process would find a core of its own: asked for (--jobs), or the load average below
    the cores (on a machine busy on every core, a helper only slows the build down)."""
    if _allowed is not None:
        return _allowed >= 2
    try:
        return os.getloadavg()[0] < cores()
    except OSError:
        return True


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


class Child:
    """A function running on its own argument in a forked process; its result comes back as plain data."""

    def __init__(self, pid: int, read_end: int):
        self.pid, self.read_end = pid, read_end
        self.exit: int | None = None  # its exit status once reaped

    def ended(self) -> bool:
        """Whether it has ended (reaped without waiting)."""
        if self.exit is None:
            try:
                done, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:
                done, status = self.pid, 1 << 8
            if done:
                self.exit = os.waitstatus_to_exitcode(status)
        return self.exit is not None

    def result(self):
        """Its function's result, waiting for it; None when it gave none or failed (killed, say)."""
        with os.fdopen(self.read_end, "rb") as pipe:
            self.read_end = None
            data = pipe.read()
        if self.exit is None:
            self.exit = os.waitstatus_to_exitcode(os.waitpid(self.pid, 0)[1])
        return marshal.loads(data) if self.exit == 0 and data else None

    def stop(self) -> None:
        """Kill and reap it unless it has ended, and close its pipe: its work is of no use now."""
        if self.exit is None:
            with contextlib.suppress(OSError):
                os.kill(self.pid, signal.SIGKILL)
            with contextlib.suppress(OSError):
                os.waitpid(self.pid, 0)
            self.exit = -signal.SIGKILL
        if self.read_end is not None:
            with contextlib.suppress(OSError):
                os.close(self.read_end)
            self.read_end = None


def start(function: Callable, argument) -> Child | None:
    """function(argument) in a forked process, or None when the system refuses one (no process, memory or
    file left): the caller then does the work itself. Its result must be plain data (marshal); a function
    returns None when it cannot do the work."""
    fds: tuple[int, ...] = ()
    try:
        fds = os.pipe()
        pid = os.fork()
    except OSError:
        for fd in fds:
            os.close(fd)
        return None
    read_end, write_end = fds
    if pid == 0:  # the child: never returns
        os.close(read_end)
        _child(function, argument, write_end, os.getppid())
    os.close(write_end)
    return Child(pid, read_end)


def forked_map(function: Callable, chunks: list, here: bool = True) -> list | None:
    """[function(chunk) for chunk in chunks]: the first chunk in this process (unless not `here`: then every
    chunk in a child, and this process only waits, holding none of their work), each other one in a child
    forked for it (start). None as soon as any chunk gives None or a child fails: the others are stopped,
    not waited for. A long function may ask siblings_failed() between its steps, to give up early too."""
    global _siblings
    children: list[Child] = []
    try:
        for chunk in chunks[1:] if here else chunks:
            # A Ctrl-C or SIGTERM just after the fork would leave the new child unknown to the finally below:
            # it lands once the child is on the list.
            with interrupts_held():
                child = start(function, chunk)
                if child is not None:
                    children.append(child)
            if child is None:
                return None
        if not here:
            return _gathered(children)
        with _sharing():
            _siblings = children
            try:
                first = function(chunks[0])
            finally:
                _siblings = []
        if first is None or any(child.exit for child in children):
            return None
        results = [first]
        for child in children:
            result = child.result()
            if result is None:
                return None
            results.append(result)
        return results
    finally:
        for child in children:  # a failure or Ctrl-C here: the children's work is of no use
            child.stop()


def _gathered(children: list[Child]) -> list | None:
    """Each child's result in their order, taken as each one ends: None at the first that fails."""
    import select

    results: dict[Child, object] = {}
    while len(results) < len(children):
        poller = select.poll()  # not select: a build may hold descriptors past 1024
        waiting = {child.read_end: child for child in children if child not in results}
        for fd in waiting:
            poller.register(fd, select.POLLIN)
        for fd, _ in poller.poll():
            result = results[waiting[fd]] = waiting[fd].result()  # readable: its result or its end
            if result is None:
                return None
    return [results[child] for child in children]


_siblings: list[Child] = []  # while this process does its own chunk: forked_map's children
GAVE_UP = 3  # a child's exit status when its chunk gave None


def siblings_failed() -> bool:
    """Whether a process doing another chunk of the same forked map has ended without a result: the map's
    outcome is then None, and the rest of this chunk's work would be thrown away. A child that has ended
    with its result (exit 0) is not a failure."""
    return any(child.ended() and child.exit != 0 for child in _siblings)


def _child(function: Callable, chunk, write_end: int, parent: int) -> None:
    """Run one chunk and write its result to the pipe; exit without the interpreter's teardown (the parent's
    buffers and handlers are not this process's to flush or run).

    The parent answers Ctrl-C (SIGINT reaches the whole group) and stops its children; if the parent itself is
    killed, the kernel stops them (Linux: PR_SET_PDEATHSIG), and they never hold the caller's output open."""
    code = 1
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        _die_with(parent)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        global _share
        _share = 1
        result = function(chunk)
        if result is None:
            code = GAVE_UP
        else:
            data = marshal.dumps(result)
            with os.fdopen(write_end, "wb") as pipe:
                pipe.write(data)
            code = 0
    except BaseException:  # noqa: BLE001 (any failure: the parent redoes the work and reports it)
        code = 1
    finally:
        os._exit(code)


PR_SET_PDEATHSIG = 1


def _die_with(parent: int) -> None:
    """Ask the kernel for SIGKILL when the parent ends (Linux), and end now if it already has."""
    if sys.platform.startswith("linux"):
        import ctypes

        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:
        os._exit(1)

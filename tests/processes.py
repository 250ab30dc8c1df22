"""The processes of a build, read from /proc (Linux): for the tests of builds made in more than one process."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path


def build_processes(pgid: int) -> list[int]:
    """The processes of a build's process group still alive (zombies aside)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                found.append(int(entry))
    return found


def workers_of(pid: int) -> list[int]:
    """The build's forked Python children (not promtool)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            name, fields = stat[stat.index("(") + 1 : stat.rindex(")")], stat.rsplit(")", 1)[1].split()
            if int(fields[1]) == pid and "python" in name:
                found.append(int(entry))
    return found


def gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except OSError:
        return True


def ctrl_c_trials(
    start: Callable[[], subprocess.Popen], written: Callable[[], object], trials: int, seed: int, latest: float
) -> list[int]:
    """Ctrl-C reaches every process of the terminal's foreground group. Each trial starts a build (in a
    session of its own), waits till its first forked worker runs, then a random moment up to `latest` s, and
    sends SIGINT to the group: exit 130 (or 0, done first), nothing printed, no process of the group left,
    `written()` as before. Returns the exit codes."""
    before = written()
    rng = random.Random(seed)
    codes = []
    for trial in range(trials):
        proc = start()
        deadline = time.monotonic() + 30
        while not workers_of(proc.pid) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.001)  # until a worker runs: a Ctrl-C before that is the one-process case
        time.sleep(rng.uniform(0.0, latest))
        with contextlib.suppress(ProcessLookupError):  # the build may be done already: exit 0 then
            os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        codes.append(proc.returncode)
        assert proc.returncode in (0, 130), f"trial {trial}: exit {proc.returncode}: {err}"
        assert err == "", f"trial {trial}: {err!r}"
        deadline = time.monotonic() + 10
        while build_processes(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert build_processes(proc.pid) == [], f"trial {trial}: a worker outlived the build"
        assert written() == before, f"trial {trial}"
    return codes


def stop_a_worker(proc: subprocess.Popen) -> int | None:
    """A worker of the build, once it is under way (its output already pointed away from the caller's),
    stopped (SIGSTOP) so it can neither finish nor exit by itself; None if the build got done first."""
    deadline = time.monotonic() + 30
    while proc.poll() is None and time.monotonic() < deadline:
        for pid in workers_of(proc.pid):
            with contextlib.suppress(OSError):
                if os.readlink(f"/proc/{pid}/fd/1") == os.devnull:
                    os.kill(pid, signal.SIGSTOP)
                    return pid
        time.sleep(0.002)
    return None


def ended(pid: int, within: float = 10) -> bool:
    """Whether the process is gone (or a zombie) within `within` seconds."""
    deadline = time.monotonic() + within
    while not gone(pid) and time.monotonic() < deadline:
        time.sleep(0.01)
    return gone(pid)

"""A Ctrl-C or SIGTERM the very moment after a worker is forked (dashkit/workers.py): the build still knows
the worker and stops it before it ends, rather than leaving it to the kernel's parent-death signal."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import ROOT

SCRIPT = textwrap.dedent(
    """
    import os, signal, sys, time
    from dashkit import workers

    class Stopped(KeyboardInterrupt):
        pass

    def stopped(signum, frame):
        raise Stopped

    signal.signal(signal.SIGTERM, stopped)
    forked, real_fork = [], os.fork

    def fork():  # SIGTERM arrives right after the fork, before the caller has the child in hand
        pid = real_fork()
        if pid:
            forked.append(pid)
            os.kill(os.getpid(), signal.SIGTERM)
        return pid

    os.fork = fork
    try:
        workers.forked_map(lambda chunk: time.sleep(30) or chunk, [[1], [2]])
        print("not interrupted")
    except Stopped:
        pass
    # Stopped and reaped by the build itself: no longer a process at all.
    print(all(not os.path.exists(f"/proc/{pid}") for pid in forked), len(forked))
    """
)


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads processes from /proc (Linux)")
def test_a_signal_just_after_a_fork_still_stops_the_new_worker_fork_wrapped():
    done = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "1"], done.stdout

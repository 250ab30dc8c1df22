"""Hold Ctrl-C for a few steps that must not be cut in two, then act on it."""

from __future__ import annotations

import contextlib
import os
import signal
import threading

HELD = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def interrupts_held():
    """SIGINT and SIGTERM received inside the block take effect when it ends (KeyboardInterrupt, or the
    default action). A Python handler that records them, not a signal mask: the Go runtime's threads
    (go-jsonnet) take process signals too and trip Python's handler whatever the main thread masks."""
    if threading.current_thread() is not threading.main_thread():  # handlers can only be set there
        yield
        return
    caught: list[int] = []
    previous = {number: signal.signal(number, lambda signum, frame: caught.append(signum)) for number in HELD}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        if caught:
            handler = previous[caught[0]]
            if callable(handler):
                handler(caught[0], None)  # Python's default for SIGINT raises KeyboardInterrupt
            elif handler == signal.SIG_DFL:
                os.kill(os.getpid(), caught[0])

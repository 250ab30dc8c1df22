#!/usr/bin/env python3
"""Build the PyAirtable dashboards: values/*.yaml -> out/. Usage: python build.py [--out DIR] [--check]

On any problem it prints one line per problem (`file:line: key.path: message`, or `path: message` for the
filesystem), exits 1, and leaves out/ exactly as it was. Ctrl-C exits 130 (SIGTERM 143), out/ whole (old or new).
"""

from __future__ import annotations

import _signal  # built in, loads no Python code: the mask below comes first thing

if __name__ == "__main__":  # Ctrl-C is held until main() can make it a quiet exit 130
    _signal.pthread_sigmask(_signal.SIG_BLOCK, {_signal.SIGINT})

import contextlib  # noqa: E402
import gc  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = plain_arguments(argv) or parser().parse_args(argv)
    out = args.out or args.root / "out"
    from dashkit import helper
    from dashkit.workers import allow

    allow(args.jobs)
    # A small build without the cache has a second process: it reads the values files while this one imports
    # the build's modules, then takes a share of the Jsonnet and the schema check (dashkit/helper.py). The
    # cache keeps parsed files of its own.
    from dashkit.interrupts import interrupts_held

    second = None
    try:
        with interrupts_held():  # a SIGTERM just after the fork lands once the helper is known, to be stopped
            second = helper.start(args.root) if args.check or not args.cache else None
        return build_and_report(args, out, second)
    finally:
        if second is not None:
            second.stop()


MAX_JOBS = 64  # more processes than this only fork and wait (a share is 24 services at least anyway)


def jobs_number(text: str) -> int | None:
    return int(text) if text.isascii() and text.isdigit() and 1 <= int(text) <= MAX_JOBS else None


def jobs_count(text: str) -> int:
    """--jobs for argparse."""
    number = jobs_number(text)
    if number is None:
        import argparse

        raise argparse.ArgumentTypeError(f"must be a whole number of processes from 1 to {MAX_JOBS}: {text!r}")
    return number


def parser():
    import argparse  # here: a plain command line never needs it (plain_arguments)

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=ROOT, help="project folder holding values/ and templates/")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="output folder (default: ROOT/out); replaced only if empty, missing or written by this build",
    )
    parser.add_argument("--check", action="store_true", help="run every check, write nothing")
    parser.add_argument(
        "--no-cache",
        dest="cache",
        action="store_false",
        help="build everything anew: neither read nor write .cache/build/ (the output is the same either way)",
    )
    parser.add_argument(
        "--jobs",
        type=jobs_count,
        default=None,
        metavar="N",
        help=f"at most N processes (default: one per core, up to 4; 1 to {MAX_JOBS}; a small build uses 2); the output is the same",
    )
    return parser


FLAGS = {"--check": ("check", True), "--no-cache": ("cache", False)}
VALUED = {"--root": ("root", Path), "--out": ("out", Path), "--jobs": ("jobs", jobs_number)}


def plain_arguments(argv: list[str]) -> Arguments | None:
    """The arguments of a command line of the options above written out in full (as the README and nox write
    them), exactly as argparse reads it; None for anything else (-h, an abbreviation, a mistake), which
    argparse then reads and words. Importing and setting up argparse costs ~4 ms before the helper of a small
    build can fork (docs/performance.md)."""
    args = Arguments()
    words = iter(argv)
    for word in words:
        if word in FLAGS:
            setattr(args, *FLAGS[word])
            continue
        name, equals, value = word.partition("=")
        if name not in VALUED:
            return None
        if not equals:
            value = next(words, None)
            if value is None or value.startswith("-"):  # argparse takes a leading dash for an option
                return None
        elif value == "--":  # argparse drops a `--` even there (--out=-- gives an empty list)
            return None
        key, read = VALUED[name]
        value = read(value)
        if value is None:
            return None
        setattr(args, key, value)
    return args


class Arguments:
    """What argparse's namespace would hold for a plain command line, with its defaults."""

    def __init__(self) -> None:
        self.root, self.out, self.check, self.cache, self.jobs = ROOT, None, False, True, None


def build_and_report(args, out: Path, second) -> int:
    # Ctrl-C is held while the modules load (a tenth of a second): jsonschema_rs imports `decimal` from
    # Rust, where a KeyboardInterrupt becomes a panic with its own message instead of a quiet exit 130.
    from dashkit.interrupts import interrupts_held

    with interrupts_held():
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})  # one held since the start lands here
        from dashkit.pipeline import BuildFailed, WriteFailed, build, build_and_write
        from dashkit.write import shown

    try:
        result = (
            build(args.root, second) if args.check else build_and_write(args.root, out, cache=args.cache, helper=second)
        )
    except BuildFailed as failed:
        for problem in failed.problems:
            print(problem, file=sys.stderr)
        print(f"build failed: {len(failed.problems)} problem(s); {shown(out)} left unchanged", file=sys.stderr)
        return 1
    except WriteFailed as failed:
        print("\n".join(failed.lines), file=sys.stderr)
        return 1
    dashboards = result.dashboard_count
    verb = (
        "checked"
        if args.check
        else f"wrote {dashboards} dashboards and {result.file_count - dashboards} rule and provisioning files to {shown(out)}"
    )
    processes = f", built in {result.processes} processes" if result.processes > 1 else ""
    say(f"{verb} ({result.panel_count} panels{processes})")
    return 0


def say(text: str) -> None:
    try:
        print(text, flush=True)
    except BrokenPipeError:  # the reader went away (`| head -0`): the build itself succeeded
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except OSError as err:
        err.filename = "stdout"  # e.g. redirected to a full disk
        raise


def last_resort(error: BaseException) -> int:
    """Anything main() did not turn into problems: one line, never a traceback (DASHKIT_TRACEBACK=1 shows it)."""
    if isinstance(error, OSError):
        where = error.filename if error.filename is not None else "build.py"
        print(f"{where}: {error.strerror or error}", file=sys.stderr)
    else:
        print(
            f"build.py: internal error: {type(error).__name__}: {error} (DASHKIT_TRACEBACK=1 python build.py shows where)",
            file=sys.stderr,
        )
    return 1


class Terminated(KeyboardInterrupt):
    """SIGTERM (`kill`, `timeout`, a CI runner cancelling) ends a build as Ctrl-C does: what it started (its
    workers, promtool's temporary files, a staged tree) is stopped and removed, out/ is whole, nothing is
    printed; the exit status is 143 (128 + SIGTERM), as a shell shows it for a process ended by the signal."""


def terminated(signum, frame) -> None:
    raise Terminated


def run() -> int:
    try:
        return main()
    except Terminated:
        return 128 + signal.SIGTERM
    except KeyboardInterrupt:
        return 130  # Ctrl-C: quiet; whatever was staged is removed, out/ is whole
    except SystemExit:
        raise
    except BaseException as error:  # BaseException: an extension's panic (pyo3) is not an Exception
        if os.environ.get("DASHKIT_TRACEBACK"):
            raise
        return last_resort(error)


if __name__ == "__main__":
    # No cyclic garbage collection: a build keeps nearly all it makes until it writes, so the collector's
    # passes over an ever larger heap freed little and were a fifth of a 1,000-service build's CPU time
    # (1.25 s in 2,000 collections); the forked readers inherit this and no longer copy the pages the
    # collector touched. The peak memory did not grow (docs/performance.md, issue 14).
    gc.disable()
    signal.signal(signal.SIGTERM, terminated)
    try:
        code = run()
    except KeyboardInterrupt as stopped:  # a Ctrl-C or SIGTERM while a problem was being reported
        code = 128 + (signal.SIGTERM if isinstance(stopped, Terminated) else signal.SIGINT)
    # The outcome is decided: a Ctrl-C from now on is ignored, and the interpreter's shutdown is skipped: it
    # resets SIGINT to its default while the Go runtime's threads (go-jsonnet) still take signals, so a
    # Ctrl-C there ended a finished build by the signal instead of its exit status.
    try:  # noqa: SIM105 (contextlib.suppress would run Python code, where the Ctrl-C could land)
        _signal.signal(_signal.SIGINT, _signal.SIG_IGN)
        _signal.signal(_signal.SIGTERM, _signal.SIG_IGN)
    except KeyboardInterrupt:
        pass  # one that arrived in this instant: the outcome stands
    with contextlib.suppress(OSError):
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(code)

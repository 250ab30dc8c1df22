"""The files a large build writes beside out/ before the write: each share of a fleet built on every core
(dashkit/incremental.py) writes the dashboards, rule groups and parts of each batch of services into the
build's folder of parts as it makes them, so no process holds them all until the write, which hard-links
them into the staged tree (write.Spilled). The folder goes when the build ends, however it ends; a killed
build's is removed by the next one (write.clear_dead_parts).
"""

from __future__ import annotations

import contextlib
import fcntl
import marshal
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from .interrupts import interrupts_held
from .write import FILE_MODE, YamlPart, clear_dead_parts, serialise_yaml, write_new


@contextlib.contextmanager
def spill_folder(out: Path) -> Iterator[str | None]:
    """A folder beside `out` (resolved) for files written before the tree is staged, removed on the way out;
    None when it cannot be made (the texts then stay in memory). A flock on it marks it as a live build's:
    clear_dead_parts removes only one nobody holds. While it is held, the build's temporary files are made in
    it too. (Between its creation and the flock a cleaner could take it for a dead build's: then it is None,
    or the build's writes fail and it builds in one process: slower, never wrong.)"""
    clear_dead_parts(out)  # a killed build's, without waiting for the next write to this out/
    try:
        folder = tempfile.mkdtemp(prefix=f".{out.name}.parts-", dir=out.parent)
    except OSError:
        yield None
        return
    fd, temporary = None, tempfile.tempdir
    try:
        try:
            fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            fcntl.flock(fd, fcntl.LOCK_EX)  # inherited by the forked shares, released when the last one ends
        except OSError:  # removed by a cleaner before it was held
            yield None
        else:
            # The build's temporary files (promtool's rule files) are made here too, in this process and the
            # shares it forks: a share stopped midway (SIGKILL, once another found a problem, or at Ctrl-C)
            # cleans nothing up, and its files go with this folder instead of staying in /tmp for good.
            tempfile.tempdir = folder
            yield folder
    finally:
        with interrupts_held():
            tempfile.tempdir = temporary
            shutil.rmtree(folder, ignore_errors=True)
            if fd is not None:
                os.close(fd)


def spill(folder: str, rel: str, text: str) -> str:
    """Write one file of the tree into the spill folder (named by a hash of its path in out/); its path there."""
    path = _spill_path(folder, _spill_name(rel))
    write_new(path, text.encode("utf-8"))
    return path


def _spill_name(rel: str) -> str:
    import hashlib  # only a large build spills

    return hashlib.sha256(rel.encode("utf-8")).hexdigest()[:32]


def _spill_path(folder: str, name: str) -> str:
    path = f"{folder}/{name}"
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)  # made again (a second round of incremental.parts_of)
    return path


def spill_data(folder: str, name: str, value) -> str:
    """Plain data (marshal) written into the spill folder; its path there."""
    path = _spill_path(folder, name)
    write_new(path, marshal.dumps(value))
    return path


def discard_spilled(folder: str, prefix: str) -> None:
    """Remove the spill folder's files named with `prefix`, once read for the last time."""
    for name in os.listdir(folder):
        if name.startswith(prefix):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(f"{folder}/{name}")


class SpillLost(Exception):
    """A file written into the spill folder cannot be read back as written (removed or changed under the
    build): the caller builds in full."""


def read_spilled_data(path: str):
    """What spill_data wrote (marshal runs no code). Raises SpillLost."""
    try:
        with open(path, "rb") as f:
            return marshal.loads(f.read())
    except (OSError, EOFError, ValueError, TypeError) as err:
        raise SpillLost(path) from err


def spill_texts(folder: str, name: str, texts: list[str]) -> list[list]:
    """Texts written one after another into one file of the spill folder; where each is ([path, start, size])."""
    data = [text.encode("utf-8") for text in texts]
    path = _spill_path(folder, name)
    write_new(path, b"".join(data))
    places, start = [], 0
    for piece in data:
        places.append([path, start, len(piece)])
        start += len(piece)
    return places


def read_spilled_text(place: list) -> str:
    """A text spill_texts wrote, read back. Raises SpillLost."""
    path, start, size = place
    try:
        with open(path, "rb") as f:
            f.seek(start)
            data = f.read(size)
        if len(data) != size:
            raise SpillLost(path)
        return data.decode("utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise SpillLost(path) from err


_ITEMS = "\0items\0"  # never in serialise_yaml's output: a NUL in a value is written escaped


def spill_yaml(folder: str, rel: str, shell: dict, key: str, items: Iterable[YamlPart]) -> str:
    """serialise_yaml({**shell, key: items}) written into the spill folder an item at a time, the same bytes,
    so the joined rule files (18 MB at 1,000 services) are never one string; its path there."""
    head, tail = serialise_yaml({**shell, key: [YamlPart(_ITEMS)]}).split(_ITEMS)
    path = _spill_path(folder, _spill_name(rel))
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE)
    os.fchmod(fd, FILE_MODE)  # open's mode is cut by the umask
    with open(fd, "w", encoding="utf-8", newline="") as f:
        written = False
        for item in items:
            f.write(("\n" if written else head) + item)
            written = True
        f.write(tail if written else serialise_yaml({**shell, key: []}))
    return path

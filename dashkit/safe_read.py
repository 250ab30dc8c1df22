"""Reading the project's own input files, and nothing else.

Values and templates are read only from regular files inside the project: a symlink that leaves it could
echo any readable file (secrets included) into an error message, a FIFO would block the build forever and
a device such as /dev/zero would fill memory. Each refusal is one message; nothing is read first.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

MAX_VALUES_BYTES = 1024 * 1024  # 1 MiB per values file: the largest real one is a few dozen KiB
MAX_TEMPLATE_BYTES = 1024 * 1024
KINDS = {
    stat.S_IFDIR: "a directory",
    stat.S_IFIFO: "a FIFO",
    stat.S_IFCHR: "a device",
    stat.S_IFBLK: "a device",
    stat.S_IFSOCK: "a socket",
}


def _kind(mode: int) -> str:
    return KINDS.get(stat.S_IFMT(mode), "not a regular file")


def confined(root: Path, path: Path) -> tuple[Path | None, str | None]:
    """(the real path to open, None) or (None, why it may not be read). Resolves symlinks, refusing any
    that leave the project or lead nowhere, without opening anything."""
    try:
        os.lstat(path)
    except FileNotFoundError:
        return None, "file is missing"
    except OSError as err:
        return None, f"cannot be read ({err.strerror})"
    real = Path(os.path.realpath(path))
    if not real.is_relative_to(Path(os.path.realpath(root))):
        return (
            None,
            "is a symlink to outside the project: refused (values and templates are read only from the project)",
        )
    if not os.path.lexists(real) or not real.exists():
        return None, "is a symlink to a missing file"
    return real, None


def read_text(root: Path, rel: str, limit: int = MAX_VALUES_BYTES) -> tuple[str | None, str | None]:
    """(text, None) or (None, message). Never blocks: the file is opened non-blocking, without following a
    final symlink (resolved and confined above), and must be a regular file of at most `limit` bytes."""
    real, why = confined(root, Path(root) / rel)
    if real is None:
        return None, why
    try:
        fd = os.open(real, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
    except IsADirectoryError:
        return None, "is a directory, not a file"
    except OSError as err:
        return None, f"cannot be read ({err.strerror})"
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return None, f"is {_kind(info.st_mode)}, not a regular file: refused"
        if info.st_size > limit:
            return None, f"is {info.st_size:,} bytes; input files are limited to {limit:,} bytes (1 MiB)"
        with os.fdopen(fd, "rb", closefd=False) as handle:
            data = handle.read(limit + 1)
    finally:
        os.close(fd)
    if len(data) > limit:
        return None, f"is over {limit:,} bytes; input files are limited to {limit:,} bytes (1 MiB)"
    return decode(data)


def decode(data: bytes) -> tuple[str | None, str | None]:
    try:
        return data.decode("utf-8"), None
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        return None, f"line {line}: not UTF-8 text (byte 0x{data[err.start]:02x}); save the file as UTF-8"


def template_problems(root: Path, folder: Path) -> list[tuple[str, str]]:
    """(file relative to root, message) for every entry under the templates folder that is not a regular
    file inside the project: template engines open files themselves (Jinja's loader, Jsonnet imports), so
    the tree is checked as a whole before any of them runs."""
    if not os.path.lexists(folder):
        return [
            (
                folder.relative_to(root).as_posix(),
                "folder is missing: the panel, dashboard and provisioning templates live there",
            )
        ]
    found = []
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in sorted(dirnames + filenames):
            path = Path(dirpath) / name
            rel = path.relative_to(root).as_posix()
            if name == "__pycache__":
                continue
            real, why = confined(root, path)
            if real is None:
                found.append((rel, why))
                if name in dirnames:
                    dirnames.remove(name)  # os.walk would not follow it anyway; keep it out of the walk
                continue
            mode = os.stat(real).st_mode
            if stat.S_ISDIR(mode):
                continue
            if not stat.S_ISREG(mode):
                found.append((rel, f"is {_kind(mode)}, not a regular file: refused"))
            elif os.stat(real).st_size > MAX_TEMPLATE_BYTES:
                found.append((rel, f"is over {MAX_TEMPLATE_BYTES:,} bytes; templates are limited to 1 MiB"))
    return sorted(found)

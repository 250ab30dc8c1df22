"""Stage 5, write: serialise deterministically and swap the whole tree into place at once.

The new tree is written to a temporary directory beside out/ and renamed into place only after every
file is on disk, so out/ is always a complete old tree or a complete new one, and files of removed
services disappear.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import orjson


def serialise(document) -> str:
    """2-space indent, sorted keys, real unicode, trailing newline: byte-identical for equal input.

    orjson rather than json.dumps(indent=2): the stdlib's indenting encoder is pure Python and was a
    quarter of the build's time; orjson is ~20x faster.
    """
    return orjson.dumps(document, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode("utf-8") + "\n"


def write_tree(out: Path, files: dict[str, str]) -> None:
    """Replace the directory `out` with exactly `files` (relative path -> text)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.new-", dir=out.parent))
    try:
        for rel in sorted(files):
            target = (staging / rel).resolve()
            if staging.resolve() not in target.parents:
                raise ValueError(f"refusing to write outside {out}: {rel}")
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(target, "w", encoding="utf-8", newline="\n") as fh:
                fh.write(files[rel])
        retired = None
        if out.exists():
            retired = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
            os.rename(out, retired / out.name)
        os.rename(staging, out)
        if retired is not None:
            shutil.rmtree(retired, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def write_file(path: Path, text: str) -> bool:
    """Write one file atomically if its content changed. Returns True when it changed."""
    path = Path(path)
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return False
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
        fh.write(text)
    os.replace(tmp, path)
    return True

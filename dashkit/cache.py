"""The build cache: results kept under the hash of everything they were made from (content-addressed), so a
rebuild after editing one service file redoes only what that file affects (dashkit/incremental.py).

Entries live in .cache/build/<kind>/<key> (gitignored, beside .cache/promtool and .cache/jinja), as plain
data (dicts, lists, strings, numbers: marshal, which runs no code when read). Each is written to a
temporary file and renamed into place, so a reader sees a whole entry or none, and each carries the SHA-256
of its contents: one that does not match (truncated by a full disk or a crash, edited, from another Python)
is ignored, and the result is built again. Nothing here is needed: a missing, unreadable or read-only
cache only makes the build slower. A build whose inputs changed while it ran keeps nothing under their keys
(unchanged_since).
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import marshal
import os
import stat
import sys
from pathlib import Path

MAGIC = b"dashkit-cache 1\n"
_TEMPS = itertools.count()
PROMTOOL = "promtool"  # its verdicts depend on its version: the binary's identity is an input of every result


def digest(*parts: bytes | str) -> str:
    """One key from many inputs; each is length-prefixed, so ("ab", "c") and ("a", "bc") differ."""
    h = hashlib.sha256()
    for part in parts:
        data = part.encode("utf-8") if isinstance(part, str) else part
        h.update(b"%d:" % len(data))
        h.update(data)
    return h.hexdigest()


def data_digest(value) -> str:
    """The key of plain data (as marshal writes it: dicts in their order)."""
    return hashlib.sha256(marshal.dumps(value)).hexdigest()


class Store:
    """Entries by kind and key. get() returns None for anything missing or not whole; put() never fails the build."""

    lasting = True  # entries outlive the build (MemoryStore's do not)

    def __init__(self, folder: Path):
        self.dir = Path(folder)
        self.used: dict[str, set[str]] = {}  # kind -> the keys this build read or wrote
        self.written: list[tuple[str, str]] = []  # (kind, key) of the entries this build wrote

    def get(self, kind: str, key: str):
        self.used.setdefault(kind, set()).add(key)
        data = plain_bytes(f"{self.dir}/{kind}/{key}")
        if data is None:
            return None
        head, checksum, payload = data[: len(MAGIC)], data[len(MAGIC) : len(MAGIC) + 32], data[len(MAGIC) + 32 :]
        if head != MAGIC or hashlib.sha256(payload).digest() != checksum:
            return None  # torn, truncated or not ours: never trusted
        try:
            return marshal.loads(payload)
        except (EOFError, ValueError, TypeError):
            return None

    def put(self, kind: str, key: str, value, replace: bool = False) -> None:
        """Keep value under key: written beside its place and renamed there. A key names its contents, so an
        entry already there is left alone, unless replace (the one mutable kind: what out/ holds)."""
        self.used.setdefault(kind, set()).add(key)
        target = self.dir / kind / key
        if not replace and os.path.isfile(target):
            return
        payload = marshal.dumps(value)
        tmp = None
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = f"{target.parent}/.new-{os.getpid()}-{next(_TEMPS)}-{key}"  # this process's own: no other writes it
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
            with os.fdopen(fd, "wb") as handle:
                handle.write(MAGIC + hashlib.sha256(payload).digest() + payload)
            os.replace(tmp, target)
            tmp = None
            self.written.append((kind, key))
        except OSError:
            pass  # a full disk or a read-only project: the next build simply computes it again
        finally:
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)

    def withdraw(self, kinds: set[str]) -> None:
        """Remove the entries of these kinds that this build wrote."""
        for kind, key in self.written:
            if kind in kinds:
                with contextlib.suppress(OSError):
                    os.unlink(self.dir / kind / key)

    def entries(self, kind: str) -> list[str]:
        try:
            return os.listdir(self.dir / kind)
        except OSError:
            return []

    def sweep(self, kind: str, live: set[str]) -> None:
        """Remove the entries of a kind that are not live, and temporary files a killed build left."""
        for name in self.entries(kind):
            if name not in live:
                with contextlib.suppress(OSError):
                    os.unlink(self.dir / kind / name)


class MemoryStore(Store):
    """A store this process alone holds, gone when it ends: `--no-cache` builds a large fleet in parts on
    every core (dashkit/workers.py) without reading or writing .cache/build/. Values are kept as put, not
    copied: nothing changes a value after putting it or once it is read."""

    lasting = False

    def __init__(self):
        super().__init__(Path("<memory>"))
        self.kept: dict[tuple[str, str], object] = {}

    def get(self, kind: str, key: str):
        self.used.setdefault(kind, set()).add(key)
        return self.kept.get((kind, key))

    def put(self, kind: str, key: str, value, replace: bool = False) -> None:
        self.used.setdefault(kind, set()).add(key)
        if replace or (kind, key) not in self.kept:
            self.kept[kind, key] = value

    def withdraw(self, kinds: set[str]) -> None:
        """Nothing outlives the build."""

    def entries(self, kind: str) -> list[str]:
        return [key for k, key in self.kept if k == kind]

    def sweep(self, kind: str, live: set[str]) -> None:
        for key in self.entries(kind):
            if key not in live:
                del self.kept[kind, key]


def store_for(root: Path) -> Store:
    return Store(Path(root) / ".cache" / "build")


# --- what every result depends on ------------------------------------------------------------------
CODE = Path(__file__).resolve().parent  # the dashkit package: its sources are an input of every result


def code_key(root: Path, seen: dict | None = None) -> str | None:
    """The key of what reads and checks a values file: the code, the schemas, the Python and packages and
    promtool that run. None when one of them is not a plain file (a symlink, a FIFO, ...). seen: each file
    read -> its identity then (unchanged_since)."""
    return _files_key(
        [sys.version, sys.executable, *tools()],
        [(CODE, False), (Path(root) / "schemas", True), (CODE.parent / "schemas", True)],
        seen,
    )


def inputs_key(root: Path, code: str, seen: dict | None = None) -> str | None:
    """The key of what every service's result reads besides its own file: code_key, the templates and the
    values files other than the services' (defaults, catalog, standard rows, overview, rules, scenarios).
    None when one of them is not a plain file: the whole build says what is wrong with it."""
    root = Path(root)
    return _files_key([code], [(root / "templates", True), (root / "values", False)], seen)


def _files_key(parts: list, folders: list[tuple[Path, bool]], seen: dict | None = None) -> str | None:
    """parts and every file's name and bytes in the folders (recursive or not; bytecode and hidden names aside)
    as one key.
    seen: also each folder's identity before it is listed (a file added later), dashkit's own aside (Python
    may add its __pycache__ there)."""
    for folder, recursive in folders:
        noting = seen is not None and Path(folder) != CODE
        if noting:
            note_folder(os.fspath(folder), seen)
        for top, dirs, files in os.walk(folder):
            if recursive and any(os.path.islink(os.path.join(top, d)) for d in dirs):
                return None  # os.walk does not follow it, the engines would
            dirs[:] = sorted(d for d in dirs if d != "__pycache__" and d[0] != ".") if recursive else []
            for name in dirs if noting else ():
                note_folder(os.path.join(top, name), seen)  # before os.walk lists it
            for name in sorted(name for name in files if name[0] != "."):  # an editor's lock or swap file
                path = os.path.join(top, name)
                data = plain_bytes(path, seen)
                if data is None:
                    return None
                parts += [os.path.relpath(path, folder), data]
    return digest(*parts)


def plain_bytes(path: str, seen: dict | None = None) -> bytes | None:
    """A regular file's bytes, not through a symlink; None for anything else (or an unreadable file).
    seen: path -> the file's identity as it was read is added to it (unchanged_since)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return None
        chunks = []
        while chunk := os.read(fd, info.st_size + 1):  # to the end, even if it grew meanwhile
            chunks.append(chunk)
        if seen is not None:
            seen[path] = _identity(info)
        return b"".join(chunks)
    except OSError:
        return None
    finally:
        os.close(fd)


def _identity(info: os.stat_result) -> tuple:
    """What changes whenever a file's bytes may have: an edit in place (its times, its size) or a new file
    saved over it (its inode)."""
    return (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)


def note_folder(path: str, seen: dict) -> None:
    """A folder's identity into seen, taken before it is listed: a file created, removed or renamed in it
    changes it."""
    with contextlib.suppress(OSError):
        seen[path] = _identity(os.stat(path, follow_symlinks=False))


def unchanged_since(seen: dict) -> bool:
    """Whether every file and folder in `seen` (plain_bytes, note_folder) is still the one read then: a file
    saved while a build ran (an editor, `git checkout`) may have been read twice, before and after, so what
    the build made of it must not be kept under the key of the first reading."""
    for path, then in seen.items():
        try:
            now = _identity(os.stat(path, follow_symlinks=False))
        except OSError:
            return False
        if now != then:
            return False
    return True


def tools() -> list[str]:
    """What identifies the installed packages (their dist-info folders name name and version) and promtool."""
    found = []
    for entry in sys.path:
        if entry.endswith(("site-packages", "dist-packages")) and os.path.isdir(entry):  # a venv's, Debian's
            found += sorted(name for name in os.listdir(entry) if name.endswith(".dist-info"))
    import shutil

    binary = shutil.which("promtool")
    if binary is not None:
        info = os.stat(binary)
        found.append(f"{PROMTOOL} {binary} {info.st_size} {info.st_mtime_ns}")
    return found


class Parsed:
    """Values files as read and checked against the values schema, by their text (and code_key): a file
    read before is not parsed again. Only files without a problem are kept, so every problem is found anew."""

    KIND = "parsed"

    def __init__(self, store: Store, code: str):
        self.store, self.code = store, code

    def _key(self, kind: str, rel: str, text: str | bytes) -> str:
        return digest(self.code, kind, rel, text)  # text as UTF-8: the key of the file's bytes

    def key(self, kind: str, rel: str, data: bytes) -> str:
        """The key a file of these bytes is kept under (to tell entries in use from the rest)."""
        return self._key(kind, rel, data)

    def get(self, kind: str, rel: str, text: str) -> tuple[object, dict] | None:
        """(the document, the line of each key path) or None."""
        found = self.store.get(self.KIND, self._key(kind, rel, text))
        return tuple(found) if isinstance(found, tuple) and len(found) == 2 else None

    def put(self, kind: str, rel: str, text: str, data, lines: dict) -> None:
        if kind == "service" and isinstance(self.store, MemoryStore):
            return  # read once a build: in memory it would only hold a fleet's every document to the end
        self.store.put(self.KIND, self._key(kind, rel, text), (data, lines))

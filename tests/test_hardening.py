"""A build killed or interrupted at any instant, or racing other builds, never leaves a torn out/; it
refuses output folders it must not replace; filesystem failures are one line; rebuilds are byte-identical.

The normal test run does a few trials; `nox -s hardening` does 100 of each (KILL_TRIALS, REBUILDS).
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dashkit.pipeline import build

KILL_TRIALS = int(os.environ.get("KILL_TRIALS", "8"))
REBUILDS = int(os.environ.get("REBUILDS", "3"))
EXTRA = "values/services/zz-test-search.yaml"  # a name and a port no one would pick for a real service
SEARCH = "service: zz-test-search\ntitle: Search Service\nport: 65504\ndescription: Full-text search.\nrows: []\n"


def snapshot_tree(project) -> dict[str, bytes] | None:
    out = project.path / "out"
    return project.out_bytes() if out.exists() else None


def leftovers(*folders: Path) -> list[str]:
    """What a build left beside out/ or the docs besides the lock file: staging folders, staged docs."""
    return sorted(
        p.name
        for folder in folders
        for p in folder.iterdir()
        if p.name.startswith(".") and not p.name.endswith(".lock") and p.name != ".cache"
    )


def docs_of(project) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((project.path / "docs").iterdir()) if p.is_file()}


def two_versions(project):
    """(out/, docs) after building without and with an extra service; leaves the project at version A."""
    (project.path / EXTRA).unlink(missing_ok=True)
    assert project.build().returncode == 0
    a = (snapshot_tree(project), docs_of(project))
    project.write(EXTRA, SEARCH)
    assert project.build().returncode == 0
    b = (snapshot_tree(project), docs_of(project))
    assert a[0] != b[0] and a[1] != b[1], "test setup: the extra service must change out/ and both docs"
    (project.path / EXTRA).unlink()
    assert project.build().returncode == 0
    return a, b


def everything(root: Path) -> dict[str, object]:
    """Every path under root with its bytes (files), target (links) or None (folders): 'nothing touched'."""
    seen = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        seen[rel] = os.readlink(p) if p.is_symlink() else p.read_bytes() if p.is_file() else None
    return seen


def test_a_killed_build_leaves_the_old_or_the_new_tree(project):
    # Two versions: A without and B with an extra service (so B -> A also proves stale files vanish).
    assert project.build().returncode == 0
    tree_a = snapshot_tree(project)
    project.write(EXTRA, SEARCH)
    assert project.build().returncode == 0
    tree_b = snapshot_tree(project)
    extra = build(project.path).tree.in_out("services/zz-test-search.json")  # where its dashboard is in out/
    assert extra in tree_b and extra not in tree_a
    rng = random.Random(2026)
    outcomes = {"old": 0, "new": 0}
    for trial in range(KILL_TRIALS):
        want_b = trial % 2 == 0
        before = snapshot_tree(project)
        if want_b:
            project.write(EXTRA, SEARCH)
        else:
            (project.path / EXTRA).unlink(missing_ok=True)
        proc = subprocess.Popen(
            [sys.executable, str(project.path / "build.py")],
            cwd=project.path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(rng.uniform(0.02, 0.3))  # the build takes about 0.2-0.3 s: most kills land mid-build
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        after = snapshot_tree(project)
        assert after in (tree_a, tree_b), f"trial {trial}: out/ is neither the old nor the new tree"
        outcomes["old" if after == before else "new"] += 1
    assert sum(outcomes.values()) == KILL_TRIALS
    print(f"SIGKILL trials: {KILL_TRIALS}, out/ {outcomes}")
    # After the last kill, one clean build leaves no staging leftovers beside out/.
    assert project.build().returncode == 0
    assert leftovers(project.path) == []


@pytest.mark.skipif(REBUILDS < 2, reason="REBUILDS < 2")
def test_rebuilds_in_fresh_processes_are_byte_identical(project, tmp_path):
    trees = set()
    for seed in range(REBUILDS):
        out = tmp_path / f"out-{seed}"
        env = dict(os.environ, PYTHONHASHSEED=str(seed * 7919 % 4294967295))
        subprocess.run(
            [sys.executable, str(project.path / "build.py"), "--out", str(out)],
            cwd=project.path,
            env=env,
            check=True,
            capture_output=True,
            timeout=120,
        )
        files = tuple((p.relative_to(out).as_posix(), p.read_bytes()) for p in sorted(out.rglob("*")) if p.is_file())
        trees.add(files)
    assert len(trees) == 1


def start(project, *args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(project.path / "build.py"), *args],
        cwd=project.path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


@pytest.mark.parametrize("width", [2, 3])
def test_concurrent_builds_leave_one_whole_tree(project, width):
    """Builds started together serialise on the lock: every one succeeds, out/ and the docs are one
    whole version, and no staging folder is left (before the lock, one build removed another's)."""
    versions = two_versions(project)
    for trial in range(max(2, KILL_TRIALS // 2)):  # KILL_TRIALS in all, half with two builds, half with three
        want_b = trial % 2 == 0  # out/ holds the other version when the trial starts
        if want_b:
            project.write(EXTRA, SEARCH)
        else:
            (project.path / EXTRA).unlink(missing_ok=True)
        procs = [start(project) for _ in range(width)]
        results = [(proc.wait(timeout=120), proc.stderr.read()) for proc in procs]
        for proc in procs:
            proc.stdout.close()
            proc.stderr.close()
        assert [code for code, _ in results] == [0] * width, f"trial {trial}: {results}"
        assert not any("Traceback" in err for _, err in results), f"trial {trial}: {results}"
        assert (snapshot_tree(project), docs_of(project)) == versions[want_b], (
            f"trial {trial}: out/ or docs are not the version just built"
        )
        assert leftovers(project.path, project.path / "docs") == [], f"trial {trial}"


def interpreter_start() -> float:
    """The slowest of five starts of this interpreter to its first line of program (seconds)."""
    times = []
    for _ in range(5):
        began = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        times.append(time.perf_counter() - began)
    return max(times)


def test_ctrl_c_exits_130_quietly_and_leaves_a_whole_version(project):
    versions = two_versions(project)
    rng = random.Random(130)
    # Ctrl-C is drawn from when the interpreter has started (site imports, .pth files such as an editable
    # install's finder) to well into the build: before that, SIGINT stops Python's own start-up, which prints
    # its own fatal error whatever the program, so only the program's window is this test's.
    started = interpreter_start()
    outcomes = {"old": 0, "new": 0}
    codes: dict[int, int] = {}
    for trial in range(KILL_TRIALS):
        want_b = trial % 2 == 0
        before = (snapshot_tree(project), docs_of(project))
        if want_b:
            project.write(EXTRA, SEARCH)
        else:
            (project.path / EXTRA).unlink(missing_ok=True)
        proc = start(project)
        time.sleep(started + rng.uniform(0.0, 0.5))
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
        # Before Python installs its handler SIGINT ends the process by the signal: the shell shows 130 too.
        assert proc.returncode in (0, 130, -signal.SIGINT), f"trial {trial}: exit {proc.returncode}: {err}"
        codes[proc.returncode] = codes.get(proc.returncode, 0) + 1
        if proc.returncode != 0:
            assert err == "", f"trial {trial}: Ctrl-C must be quiet, got {err!r}"
        after = (snapshot_tree(project), docs_of(project))
        which = [
            next((name for name, v in zip("AB", versions, strict=True) if v[i] == after[i]), "torn") for i in (0, 1)
        ]
        assert after in versions, (
            f"trial {trial}: out/ is {which[0]} and the docs are {which[1]} ({sorted(after[1])}): {err!r}"
        )
        outcomes["old" if after == before else "new"] += 1
    assert sum(outcomes.values()) == KILL_TRIALS
    print(f"SIGINT trials: {KILL_TRIALS}, out/ and docs {outcomes}, exit codes {dict(sorted(codes.items()))}")
    assert project.build().returncode == 0
    assert leftovers(project.path, project.path / "docs") == []


REFUSALS = {
    "project root": (".", ".: cannot be the output folder: it is the project folder or contains it"),
    "values": ("values", "values: cannot be the output folder: it is inside the project's values/"),
    "inside .git": (".git/objects", ".git/objects: cannot be the output folder: it is inside the project's .git/"),
    "foreign folder": (
        "mine",
        "mine: cannot be the output folder: it is not empty and was not written by this build "
        "(no .dashkit-manifest); empty or remove it, or choose another --out",
    ),
    "a file": ("notes.txt", "notes.txt: cannot be the output folder: it exists and is not a folder"),
    "missing parent": (
        "no/such/out",
        "no/such/out: cannot be the output folder: its parent folder no/such does not exist",
    ),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_a_refused_out_is_one_line_and_nothing_is_touched(project, case):
    target, message = REFUSALS[case]
    project.write(".git/objects/ab/cdef", "a git object\n")
    project.write("mine/photo.jpg", "not ours\n")
    project.write("notes.txt", "my notes\n")
    assert project.build().returncode == 0
    before = everything(project.path)
    result = project.build("--out", target)
    assert (result.returncode, result.stderr.splitlines(), result.stdout) == (1, [message], "")
    assert everything(project.path) == before


def test_a_symlinked_out_is_followed(project, tmp_path):
    """The tree replaces the link's target, the link stays, and nothing is left beside either."""
    target = tmp_path / "grafana" / "pyairtable"
    target.parent.mkdir()
    (project.path / "out").symlink_to(target)
    assert project.build().returncode == 0
    assert project.build().returncode == 0  # the second build exchanges, the first one created
    assert (project.path / "out").is_symlink() and os.readlink(project.path / "out") == str(target)
    result = build(project.path)
    overview = result.tree.in_out(next(d.path for d in result.dashboards if d.kind == "overview"))
    assert (target / ".dashkit-manifest").is_file() and (target / overview).is_file()
    assert leftovers(project.path, target.parent) == [] and (target.parent / ".pyairtable.lock").is_file()


def test_modes_are_0755_and_0644_whatever_the_umask(project):
    project.write(EXTRA, SEARCH)  # so the docs are rewritten too
    result = subprocess.run(
        [sys.executable, "build.py"],
        cwd=project.path,
        capture_output=True,
        text=True,
        preexec_fn=lambda: os.umask(0o077),
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    out = project.path / "out"
    modes = {p.relative_to(project.path).as_posix(): p.stat().st_mode & 0o777 for p in [out, *out.rglob("*")]}
    modes.update(
        {
            f"docs/{name}": (project.path / "docs" / name).stat().st_mode & 0o777
            for name in ("metrics.md", "runbooks.md")
        }
    )
    wrong = {
        path: oct(mode) for path, mode in modes.items() if mode != (0o755 if (project.path / path).is_dir() else 0o644)
    }
    assert wrong == {}


def test_docs_and_out_land_together(project):
    """A doc that cannot be replaced (a folder stands where it goes) fails the build after out/ was
    exchanged: the exchange and the docs already replaced are undone."""
    versions = two_versions(project)
    runbooks = project.path / "docs" / "runbooks.md"
    runbooks.unlink()
    project.write("docs/runbooks.md/keep.txt", "a folder in the way\n")
    before = (snapshot_tree(project), everything(project.path / "docs"))
    project.write(EXTRA, SEARCH)
    result = project.build()
    assert (result.returncode, result.stderr.splitlines()) == (1, ["docs/runbooks.md: Is a directory"])
    assert (snapshot_tree(project), everything(project.path / "docs")) == before
    assert before[0] == versions[0][0]
    assert leftovers(project.path, project.path / "docs") == []


def test_a_live_builds_staging_is_never_removed_and_a_held_lock_is_reported(project):
    import fcntl

    assert project.build().returncode == 0
    before = snapshot_tree(project)
    live = project.path / ".out.new-live"  # what a build holding the lock is writing
    live.mkdir()
    fd = os.open(project.path / ".out.lock", os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        env = dict(os.environ, DASHKIT_LOCK_WAIT="0.3")
        result = subprocess.run(
            [sys.executable, "build.py"], cwd=project.path, capture_output=True, text=True, env=env, timeout=120
        )
        assert (result.returncode, result.stderr.splitlines()) == (
            1,
            [
                "out: another build is writing it; waiting (up to 0.3 s)",
                "out: another build held its lock (.out.lock) for 0.3 s; try again when it is done",
            ],
        )
        assert live.is_dir() and snapshot_tree(project) == before
    finally:
        os.close(fd)
    assert project.build().returncode == 0
    assert not live.exists(), "with the lock free, a staging folder is a dead build's and is removed"


@pytest.fixture
def small_fs(tmp_path):
    """A real filesystem of a chosen size (tmpfs, as root); skipped where mounting is not permitted."""
    mounted = []

    def mount(size: int) -> Path:
        folder = tmp_path / f"fs{len(mounted)}"
        folder.mkdir()
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True, text=True
        )
        if done.returncode != 0:
            pytest.skip(f"cannot mount a small tmpfs here: {done.stderr.strip() or done.returncode}")
        mounted.append(folder)
        return folder

    yield mount
    for folder in mounted:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def test_a_full_disk_and_a_read_only_out_are_one_line(project, small_fs):
    versions = two_versions(project)
    pages = sum(-(-len(data) // 4096) for data in versions[0][0].values()) + 1  # + the manifest
    fs = small_fs(pages * 4096 * 3 // 2)  # the old tree fits
    out = fs / "out"
    assert project.build("--out", str(out)).returncode == 0
    # and little beside it: the files the new tree changes do not fit (unchanged files it carries over are
    # hard links, which take no room)
    room = os.statvfs(fs)
    (fs / "filler").write_bytes(b"\0" * (room.f_bavail * room.f_frsize - 4 * 4096))
    before = (everything(fs), docs_of(project))
    project.write(EXTRA, SEARCH)
    result = project.build("--out", str(out))
    assert result.returncode == 1 and len(result.stderr.splitlines()) == 1, result.stderr
    where, _, message = result.stderr.strip().rpartition(": ")
    assert message == "No space left on device" and where.startswith(str(out)), result.stderr
    assert (everything(fs), docs_of(project)) == before

    subprocess.run(["mount", "-o", "remount,ro", str(fs)], check=True)
    result = project.build("--out", str(out))
    assert (result.returncode, result.stderr.splitlines()) == (1, [f"{out}: Read-only file system"])
    assert (everything(fs), docs_of(project)) == before


def test_an_unwritable_out_is_one_line(project):
    """Permission denied where out/ goes (its folder read-only). Root may write anywhere, so as root the
    build runs without the capabilities that let it (setpriv, util-linux)."""
    assert project.build().returncode == 0
    before = everything(project.path)
    command = [sys.executable, "build.py"]
    if os.geteuid() == 0:
        if not shutil.which("setpriv"):
            pytest.skip("running as root without setpriv: root is never denied")
        command = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", "--", *command]
    os.chmod(project.path, 0o555)
    try:
        result = subprocess.run(command, cwd=project.path, capture_output=True, text=True, timeout=120)
    finally:
        os.chmod(project.path, 0o755)
    assert (result.returncode, result.stderr.splitlines()) == (1, ["out: Permission denied"])
    assert everything(project.path) == before

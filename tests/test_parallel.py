"""A large fleet is built in parts on every core (dashkit/workers.py, dashkit/incremental.py): what a user
sees is the build of one process, only sooner, whatever happens to the build or its workers."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT
from processes import build_processes, ctrl_c_trials, ended, gone, stop_a_worker, workers_of

sys.path.insert(0, str(ROOT / "benchmarks"))
from fleet import make_fleet  # noqa: E402

from dashkit.incremental import PARALLEL_FROM  # noqa: E402

FLEET = PARALLEL_FROM + 3  # just past where a build splits: the smallest fleet a user sees it on
BIG_FLEET = 4 * PARALLEL_FROM  # workers that live long enough (~0.5 s) to be interrupted or killed midway


@pytest.fixture(scope="module")
def fleets(tmp_path_factory) -> dict[int, Path]:
    made = {}
    for size in (FLEET, BIG_FLEET):
        made[size] = tmp_path_factory.mktemp("fleet") / "base"
        assert make_fleet(made[size], size) == size
    return made


def copy_of(base: Path, dest: Path) -> Path:
    shutil.copytree(base, dest, symlinks=True)
    return dest


@pytest.fixture
def fleet(fleets, tmp_path) -> Path:
    return copy_of(fleets[FLEET], tmp_path / "fleet")


@pytest.fixture
def big_fleet(fleets, tmp_path) -> Path:
    return copy_of(fleets[BIG_FLEET], tmp_path / "fleet")


def build(root: Path, *args: str, out: str = "out") -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "build.py", "--out", out, *args], cwd=root, capture_output=True, text=True, timeout=300
    )


def tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def written(root: Path, out: str) -> tuple[dict, dict]:
    return tree(root / out), {name: (root / "docs" / name).read_bytes() for name in ("metrics.md", "runbooks.md")}


def beside(root: Path, out: str = "out") -> list[str]:
    """The spill folders beside out/: a build's own, while it runs."""
    return sorted(p.name for p in root.glob(f".{out}.parts-*"))


def test_a_large_fleet_built_on_two_cores_is_byte_for_byte_the_one_built_in_one_process(fleet):
    one = build(fleet, "--no-cache", "--jobs", "1", out="one")
    assert one.returncode == 0, one.stderr
    assert "processes" not in one.stdout
    one_tree = written(fleet, "one")
    for args in (["--no-cache"], []):  # the same without the cache and with an empty one
        two = build(fleet, *args, "--jobs", "2", out="two")
        assert two.returncode == 0, two.stderr
        assert "built in 2 processes" in two.stdout, two.stdout
        assert two.stdout.replace(", built in 2 processes", "").replace("two", "one") == one.stdout
        assert written(fleet, "two") == one_tree
        shutil.rmtree(fleet / "two")
    # An edit every service reads (the catalog) rebuilds them all, in shares, with the cache warm.
    catalog = fleet / "values" / "metrics.yaml"
    catalog.write_text(
        catalog.read_text(encoding="utf-8").replace("    help: ", "    help: Edited. ", 1), encoding="utf-8"
    )
    cached = build(fleet, "--jobs", "2", out="two")
    assert "built in 2 processes" in cached.stdout, cached.stdout + cached.stderr
    assert build(fleet, "--no-cache", "--jobs", "1", out="one").returncode == 0
    one_tree = written(fleet, "one")
    assert written(fleet, "two") == one_tree
    # Then one service's alert levels edited: the rule files are joined again, the other services' groups
    # taken from what the shares kept in the cache.
    overriding = [
        p for p in sorted((fleet / "values" / "services").glob("*.yaml")) if "\nthresholds:\n" in p.read_text()
    ]
    assert overriding, "no service file sets its own alert levels (thresholds:)"
    head, levels = overriding[0].read_text(encoding="utf-8").split("\nthresholds:\n", 1)
    levels = re.sub(r"critical: (\d+)", lambda m: f"critical: {int(m[1]) + 5}", levels, count=1)
    overriding[0].write_text(f"{head}\nthresholds:\n{levels}", encoding="utf-8")
    edited = build(fleet, "--jobs", "2", out="two")
    assert edited.returncode == 0 and "processes" not in edited.stdout, edited.stdout + edited.stderr
    assert build(fleet, "--no-cache", "--jobs", "1", out="one").returncode == 0
    one_tree = written(fleet, "one")
    assert written(fleet, "two") == one_tree
    # More processes than cores is allowed, as many as there is work for: the same output again.
    three = build(fleet, "--no-cache", "--jobs", "3", out="three")
    used = re.search(r"built in (\d+) processes", three.stdout)
    assert used and 2 <= int(used[1]) <= 3, three.stdout + three.stderr
    assert written(fleet, "three") == one_tree


def test_a_problem_in_a_large_fleet_is_reported_as_one_process_reports_it(fleet):
    assert build(fleet).returncode == 0
    before = written(fleet, "out")
    services = sorted((fleet / "values" / "services").glob("*.yaml"))
    broken = services[2 * (len(services) // 4) + 1]  # an odd index: the second process's share (shares interleave)
    text = broken.read_text(encoding="utf-8")
    broken.write_text(text.replace("unit: ", "unit: not-a-grafana-unit-", 1), encoding="utf-8")
    one = build(fleet, "--no-cache", "--jobs", "1")
    two = build(fleet, "--no-cache", "--jobs", "2")
    assert one.returncode == two.returncode == 1
    assert broken.name in two.stderr
    assert two.stderr == one.stderr
    assert written(fleet, "out") == before


@pytest.mark.parametrize("index", [1, 2])  # one in each share: whichever finds it stops the other
def test_a_share_stopped_while_promtool_runs_leaves_no_temporary_files_promtool_slowed(fleet, tmp_path, index):
    """A share that finds a problem stops the other, which may be running promtool on its rule files: they
    were left in the temporary folder, a folder for each such build. Now they are made in the build's folder
    beside out/, which goes however the build ends. (promtool is slowed here, as on a busy machine, so that
    the other share is surely running it when it is stopped.)"""
    real = shutil.which("promtool")
    assert real is not None, "promtool is installed by the README's set-up"
    slowed = tmp_path / "bin" / "promtool"
    slowed.parent.mkdir()
    slowed.write_text(f'#!/bin/sh\nsleep 2\nexec {real} "$@"\n', encoding="utf-8")
    slowed.chmod(0o755)
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    services = sorted((fleet / "values" / "services").glob("*.yaml"))
    broken = services[index]
    text = broken.read_text(encoding="utf-8")
    broken.write_text(text.replace("unit: ", "unit: not-a-grafana-unit-", 1), encoding="utf-8")
    env = {**os.environ, "TMPDIR": str(temporary), "PATH": f"{slowed.parent}{os.pathsep}{os.environ['PATH']}"}
    failed = subprocess.run(
        [sys.executable, "build.py", "--no-cache", "--jobs", "2"],
        cwd=fleet,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert failed.returncode == 1 and broken.name in failed.stderr, failed.stderr
    assert sorted(p.name for p in temporary.iterdir()) == []
    assert beside(fleet) == []


def start_on_two_cores(root: Path, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "build.py", "--no-cache", "--jobs", "2"],
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads processes from /proc (Linux)")
def test_ctrl_c_on_a_build_on_two_cores_is_quiet_and_leaves_no_process(big_fleet):
    """Ctrl-C reaches every process of the terminal's foreground group: the workers ignore it, the build
    stops them and exits 130 without a word, out/ whole."""
    assert build(big_fleet, "--no-cache").returncode == 0
    codes = ctrl_c_trials(
        lambda: start_on_two_cores(big_fleet, start_new_session=True),
        lambda: (written(big_fleet, "out"), beside(big_fleet)),  # and no folder left beside out/
        8,
        2,
        0.3,
    )
    assert 130 in codes, f"no trial interrupted the build: {codes}"


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads processes from /proc (Linux)")
def test_a_worker_killed_midway_costs_time_not_the_build(big_fleet):
    """The kernel's OOM killer takes a worker: the build does the work in one process and succeeds."""
    assert build(big_fleet, "--no-cache", "--jobs", "1", out="one").returncode == 0
    expected = written(big_fleet, "one")
    proc = start_on_two_cores(big_fleet)
    killed = []
    deadline = time.monotonic() + 30
    while not killed and proc.poll() is None and time.monotonic() < deadline:
        for pid in workers_of(proc.pid):
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
        time.sleep(0.002)
    out, err = proc.communicate(timeout=120)
    assert killed, "the build finished before a worker could be killed"
    assert proc.returncode == 0, err
    assert err == ""
    assert "processes" not in out  # built again in one process
    assert written(big_fleet, "out") == expected


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads processes from /proc (Linux)")
def test_sigterm_ends_the_build_and_its_workers_quietly(big_fleet):
    """`kill` or `timeout` sends SIGTERM to the build alone: it stops its workers (here one that would
    never end by itself) and exits 143 without a word, out/ whole."""
    assert build(big_fleet, "--no-cache").returncode == 0
    before = written(big_fleet, "out")
    proc = start_on_two_cores(big_fleet, start_new_session=True)
    worker = stop_a_worker(proc)
    try:
        assert worker is not None, "the build finished before a worker could be stopped"
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 128 + signal.SIGTERM, err  # as a shell shows a process ended by SIGTERM
        assert err == ""
        assert gone(worker)
        assert build_processes(proc.pid) == []
        assert written(big_fleet, "out") == before
        assert beside(big_fleet) == []
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the kernel's parent-death signal is Linux's")
def test_workers_of_a_killed_build_end_with_it_and_the_next_build_clears_what_it_left(big_fleet):
    """A build killed outright (SIGKILL: the OOM killer, a CI runner's hard stop) runs no code of its own:
    its workers end with it rather than build on, holding the caller's output open. The folder its shares
    wrote beside out/ stays until the next large build of that out/ starts (or a build writes it); a folder
    a live build holds (another build of the same out/, still making its parts) is not touched."""
    from dashkit.spill import spill_folder

    assert build(big_fleet, "--no-cache", "--jobs", "1", out="one").returncode == 0
    expected = written(big_fleet, "one")
    proc = start_on_two_cores(big_fleet, start_new_session=True)
    worker = stop_a_worker(proc)
    try:
        assert worker is not None, "the build finished before a worker could be stopped"
        proc.kill()
        proc.communicate(timeout=60)
        assert ended(worker), "a worker outlived the killed build"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    dead = beside(big_fleet)
    assert len(dead) == 1, dead
    with spill_folder(big_fleet / "out") as live:  # held as a running build holds its own
        # The next large build removes it as it starts, even one that then finds a problem and writes nothing.
        service = sorted((big_fleet / "values" / "services").glob("*.yaml"))[-1]
        text = service.read_text(encoding="utf-8")
        service.write_text(text.replace("port: ", "port: x", 1), encoding="utf-8")
        assert build(big_fleet, "--no-cache", "--jobs", "2").returncode == 1
        assert beside(big_fleet) == [Path(live).name]
        service.write_text(text, encoding="utf-8")
        done = build(big_fleet, "--no-cache", "--jobs", "2")
        assert done.returncode == 0, done.stderr
        assert beside(big_fleet) == [Path(live).name]
    assert beside(big_fleet) == []
    assert written(big_fleet, "out") == expected


def test_a_fork_refused_by_the_system_builds_in_one_process_mocked(fleet, monkeypatch):
    """No process left to fork (EAGAIN: a limit on processes or memory, which this machine cannot be driven
    into safely, so os.fork is mocked to refuse): the build is made in one process, the same output."""
    import errno

    from dashkit import workers
    from dashkit.pipeline import build_and_write

    assert build(fleet, "--no-cache", "--jobs", "1", out="one").returncode == 0
    expected = written(fleet, "one")
    shutil.rmtree(fleet / "one")

    def refused():
        raise OSError(errno.EAGAIN, "Resource temporarily unavailable")

    monkeypatch.setattr(workers.os, "fork", refused)
    monkeypatch.setattr(workers, "processes", lambda: 2)  # this process may have loaded go-jsonnet already
    monkeypatch.setattr("dashkit.incremental.processes", lambda: 2)
    monkeypatch.setattr("dashkit.pipeline.in_parts", lambda root: True)
    result = build_and_write(fleet, fleet / "one", cache=False)
    assert result.processes == 1
    assert written(fleet, "one") == expected


def test_a_large_build_leaves_nothing_beside_out_whatever_its_end(fleet):
    """The shares write each dashboard beside out/ as they make it, so no process holds them all; a build
    that succeeds, finds a problem, or is run again after an edit leaves no such folder behind."""
    assert build(fleet, "--no-cache", "--jobs", "2").returncode == 0
    assert beside(fleet) == []
    assert build(fleet, "--jobs", "2").returncode == 0  # the cache's path spills too
    assert beside(fleet) == []
    service = sorted((fleet / "values" / "services").glob("*.yaml"))[-1]
    service.write_text(service.read_text(encoding="utf-8").replace("port: ", "port: x", 1), encoding="utf-8")
    assert build(fleet, "--no-cache", "--jobs", "2").returncode == 1
    assert beside(fleet) == []


def build_into_two_with(root: Path, change: str) -> subprocess.CompletedProcess:
    """`build.py --no-cache --jobs 2 --out two` in a process whose dashkit.incremental (as `incremental`) the
    Python `change` alters first."""
    script = (
        "import runpy, sys\n"
        "import dashkit.incremental as incremental\n"
        f"{change}"
        "sys.argv = ['build.py', '--no-cache', '--jobs', '2', '--out', 'two']\n"
        "runpy.run_path('build.py', run_name='__main__')\n"
    )
    return subprocess.run([sys.executable, "-c", script], cwd=root, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("step", ["spill", "spill_data", "spill_yaml"])
def test_a_share_that_cannot_write_beside_out_costs_time_not_the_build_mocked(fleet, step):
    """A full disk (ENOSPC, mocked: this machine's disks cannot be filled safely) while a share writes a
    dashboard, or while the rule files are joined, beside out/: the build is made in one process and writes
    the same files; nothing is left beside out/."""
    assert build(fleet, "--no-cache", "--jobs", "1", out="one").returncode == 0
    expected = written(fleet, "one")
    full = (
        "import errno\n"
        "def full(*args):\n"
        "    raise OSError(errno.ENOSPC, 'No space left on device')\n"
        f"incremental.{step} = full\n"
    )
    done = build_into_two_with(fleet, full)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    # A dashboard not written: the build ran again in one process; a rule file: joined in memory instead.
    assert ("built in 2 processes" in done.stdout) == (step == "spill_yaml"), done.stdout
    assert written(fleet, "two") == expected
    assert beside(fleet, "two") == []


def test_the_parts_removed_beside_out_before_the_write_cost_time_not_the_build(fleet):
    """Something removes the build's folder of parts beside out/ just before the write (a cleaning job, say):
    nothing is written from it, the build is made again in one process and writes the same files."""
    assert build(fleet, "--no-cache", "--jobs", "1", out="one").returncode == 0
    expected = written(fleet, "one")
    removing = (
        "import glob, shutil\n"
        "real = incremental.write_output\n"
        "def write_output(*args, **kwargs):\n"
        "    for folder in glob.glob('.two.parts-*'):\n"
        "        shutil.rmtree(folder)\n"
        "    return real(*args, **kwargs)\n"
        "incremental.write_output = write_output\n"
    )
    done = build_into_two_with(fleet, removing)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert "processes" not in done.stdout, done.stdout  # built again in one process
    assert written(fleet, "two") == expected
    assert beside(fleet, "two") == []


def test_a_dead_builds_leftovers_are_cleared_whatever_out_is_called(fleet):
    """An out/ named with glob characters: its own leftovers are removed, another folder's never."""
    out = "o[1]*"
    for left in (f".{out}.parts-dead", f".{out}.new-dead", ".o1x.new-other", ".o1x.parts-other"):
        (fleet / left).mkdir()
    done = build(fleet, "--no-cache", out=out)
    assert done.returncode == 0, done.stderr
    assert not (fleet / f".{out}.parts-dead").exists() and not (fleet / f".{out}.new-dead").exists()
    assert (fleet / ".o1x.new-other").is_dir() and (fleet / ".o1x.parts-other").is_dir()

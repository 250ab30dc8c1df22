"""A small build's second process (dashkit/helper.py): a build without the cache reads its values files in
it while the build's process imports its modules, and shares the Jsonnet and the schema check with it. It
makes the build sooner, never different: the same files and the same words, whatever happens to it.

`--jobs 2` asks for it whatever the machine's cores; `--jobs 1` builds in one process, as without it."""

from __future__ import annotations

import contextlib
import json
import os
import random
import resource
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from processes import ctrl_c_trials, ended, stop_a_worker, workers_of

from dashkit import helper, workers
from dashkit.helper import SILENCE

LINUX_PROC = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads processes from /proc (Linux)")
TWO = ", built in 2 processes"


def run(project, *args: str, out: str = "out") -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "build.py", "--out", out, *args], cwd=project.path, capture_output=True, text=True, timeout=120
    )


def start(project, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "build.py", "--no-cache", "--jobs", "2"],
        cwd=project.path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


def tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def first_service(project) -> str:
    return sorted(p.name for p in (project.path / "values" / "services").glob("*.yaml"))[0]


@pytest.mark.parametrize("mode", ["--no-cache", "--check"])
def test_with_the_helper_the_same_files_and_words_as_in_one_process(project, mode):
    two = run(project, mode, "--jobs", "2", out="two")
    one = run(project, mode, "--jobs", "1", out="one")
    assert two.returncode == one.returncode == 0, two.stderr + one.stderr
    assert TWO in two.stdout, two.stdout  # the helper did take part
    assert two.stdout.replace(TWO, "").replace("two", "one") == one.stdout
    assert two.stderr == one.stderr == ""
    if mode == "--no-cache":
        assert tree(project.path / "two") == tree(project.path / "one")


def yaml_syntax_error(project):
    rel = f"values/services/{first_service(project)}"
    project.write(rel, project.file(rel).read_text(encoding="utf-8") + "\nbroken: [unclosed\n")


def unknown_key(project):
    rel = f"values/services/{first_service(project)}"
    project.write(rel, project.file(rel).read_text(encoding="utf-8") + "\ncolour: red\n")


def catalog_problem(project):
    project.write(
        "values/metrics.yaml", project.file("values/metrics.yaml").read_text(encoding="utf-8") + "\nextra: 1\n"
    )


def broken_template(name: str):
    def breaking(project):
        rel = f"templates/panels/{name}.jsonnet"
        project.write(
            rel, project.file(rel).read_text(encoding="utf-8").replace("function(panel)", "function(panel) nope +", 1)
        )

    return breaking


def fifo_service_file(project):
    os.mkfifo(project.file("values/services/zz-fifo.yaml"))


def defaults_missing(project):
    project.file("values/defaults.yaml").unlink()


@pytest.mark.parametrize(
    "breaking",
    [
        yaml_syntax_error,
        unknown_key,
        catalog_problem,
        broken_template("timeseries"),  # in both processes' share of the panels
        broken_template("gauge"),  # a few panels: in one share or the other
        fifo_service_file,
        defaults_missing,
    ],
    ids=[
        "yaml-syntax",
        "unknown-key",
        "catalog",
        "template-of-many-panels",
        "template-of-few-panels",
        "fifo",
        "no-defaults",
    ],
)
def test_a_problem_is_reported_in_the_same_words_with_the_helper(project, breaking):
    assert run(project, "--no-cache", "--jobs", "1").returncode == 0
    before = tree(project.path / "out")
    breaking(project)
    for mode in ("--no-cache", "--check"):
        two = run(project, mode, "--jobs", "2")
        one = run(project, mode, "--jobs", "1")
        assert two.returncode == one.returncode == 1, two.stderr
        assert two.stderr == one.stderr
        assert two.stdout == one.stdout == ""
    assert tree(project.path / "out") == before


@LINUX_PROC
def test_the_helper_killed_at_any_moment_costs_time_not_the_build(project):
    """The OOM killer takes the helper, whatever it is doing: the build does the rest itself and succeeds."""
    assert run(project, "--no-cache", "--jobs", "1", out="one").returncode == 0
    expected = tree(project.path / "one")
    rng = random.Random(3)
    killed = 0
    for trial in range(10):
        proc = start(project)
        delay = time.monotonic() + rng.uniform(0.0, 0.25)
        while proc.poll() is None and time.monotonic() < delay:
            time.sleep(0.001)
        for pid in workers_of(proc.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
                killed += 1
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, f"trial {trial}: {err}"
        assert err == "", f"trial {trial}"
        assert tree(project.path / "out") == expected, f"trial {trial}"
    assert killed, "every build finished before its helper could be killed"


@LINUX_PROC
def test_ctrl_c_with_the_helper_is_quiet_and_leaves_no_process(project):
    assert run(project, "--no-cache").returncode == 0
    codes = ctrl_c_trials(
        lambda: start(project, start_new_session=True), lambda: tree(project.path / "out"), 8, 4, latest=0.15
    )
    assert 130 in codes, f"no trial interrupted the build: {codes}"


@LINUX_PROC
def test_sigterm_ends_the_build_and_a_stopped_helper_quietly(project):
    """A helper that can neither answer nor exit by itself (SIGSTOP): SIGTERM to the build still ends both,
    exit 143, nothing printed."""
    proc = start(project, start_new_session=True)
    try:
        helper = stop_a_worker(proc)
        assert helper is not None, "the build finished before its helper could be stopped"
        time.sleep(0.3)  # the build is waiting on it by now
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 128 + signal.SIGTERM, err
        assert err == ""
        assert ended(helper)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)


def test_a_file_edited_after_the_helper_read_it_is_built_as_it_is_now(project):
    """The helper's reading counts only for the text the build reads itself: an edit in between is built."""
    rel = f"values/services/{first_service(project)}"
    script = textwrap.dedent(
        f"""
        import json, sys
        from pathlib import Path
        from dashkit import helper, workers
        from dashkit.pipeline import build

        root = Path(".")
        workers.allow(2)
        second = helper.start(root)
        assert second is not None
        second.found()  # the helper has read every file
        path = root / {rel!r}
        text = path.read_text(encoding="utf-8")
        title = next(line for line in text.splitlines() if line.startswith("title:"))
        path.write_text(text.replace(title, "title: Edited meanwhile"), encoding="utf-8")
        built = build(root, second)
        second.stop()
        print(json.dumps({{"processes": built.processes, "titles": [d.json["title"] for d in built.dashboards]}}))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=project.path, env=project.env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert found["processes"] == 2  # the other files came from the helper
    assert "Edited meanwhile" in found["titles"]


@LINUX_PROC
def test_a_helper_that_never_answers_is_given_up_and_the_build_succeeds(project):
    """A helper stopped (SIGSTOP) before it sends a thing: after SILENCE seconds without a word the build does
    its work itself, writes what one process writes, and the stopped helper does not outlive it."""
    assert run(project, "--no-cache", "--jobs", "1", out="one").returncode == 0
    proc = start(project, start_new_session=True)
    try:
        stopped = stop_a_worker(proc)
        assert stopped is not None, "the build finished before its helper could be stopped"
        out, err = proc.communicate(timeout=SILENCE + 60)
        assert proc.returncode == 0, err
        assert err == ""
        assert tree(project.path / "out") == tree(project.path / "one")
        assert ended(stopped)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)


def test_a_build_that_inherited_a_thousand_open_files_still_has_its_helper(project):
    """Descriptors past 1024 (a shell or CI runner with a high `ulimit -n` and many open files): the helper's
    pipes land there, and waiting on them must still work (poll, not select)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 1200:
        pytest.skip(f"the hard limit on open files ({hard}) is below 1200")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 1200), hard))
    opened = []
    try:
        while not opened or opened[-1] < 1040:
            opened.append(os.open(os.devnull, os.O_RDONLY))
        done = subprocess.run(
            [sys.executable, "build.py", "--no-cache", "--jobs", "2", "--out", "two"],
            cwd=project.path,
            capture_output=True,
            text=True,
            timeout=120,
            pass_fds=range(3, opened[-1] + 1),  # every descriptor below is taken: the build's own land above
        )
    finally:
        for fd in opened:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert done.returncode == 0, done.stderr
    assert TWO in done.stdout
    assert run(project, "--no-cache", "--jobs", "1", out="one").returncode == 0
    assert tree(project.path / "two") == tree(project.path / "one")


def test_a_pipe_the_system_refuses_leaves_no_descriptor_open_mocked(project, monkeypatch):
    """os.pipe mocked to fail on its second call (the machine cannot safely be run out of descriptors): no
    helper, and the first pipe is closed again."""
    monkeypatch.setattr(workers, "processes", lambda: 2)  # this process may have loaded go-jsonnet already
    monkeypatch.setattr(workers, "spare_core", lambda: True)
    real_pipe, calls = os.pipe, []

    def pipe():
        calls.append(1)
        if len(calls) == 2:
            raise OSError(24, "Too many open files")
        return real_pipe()

    monkeypatch.setattr(os, "pipe", pipe)
    before = set(os.listdir("/proc/self/fd")) if Path("/proc/self/fd").exists() else None
    assert helper.start(project.path) is None
    assert len(calls) == 2
    if before is not None:
        assert set(os.listdir("/proc/self/fd")) <= before


def test_no_helper_when_every_core_is_busy_unless_asked_mocked(monkeypatch):
    """os.getloadavg mocked (a machine cannot be made busy on cue): at a load of the cores or more a second
    process would only wait for a core, so the build does without it; `--jobs 2` still asks for it."""
    monkeypatch.setattr(workers, "cores", lambda: 2)
    monkeypatch.setattr(os, "getloadavg", lambda: (2.5, 2.0, 1.0))
    monkeypatch.setattr(workers, "_allowed", None)
    assert not workers.spare_core()
    monkeypatch.setattr(os, "getloadavg", lambda: (1.2, 1.0, 1.0))
    assert workers.spare_core()
    monkeypatch.setattr(os, "getloadavg", lambda: (8.0, 8.0, 8.0))
    workers.allow(2)
    try:
        assert workers.spare_core()
    finally:
        workers.allow(None)

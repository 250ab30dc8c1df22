"""Sessions: build, tests, lint, snapshots, compat, bench, ... `nox -l` lists them; `nox -R` reuses venvs."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nox

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.sessions = ["build", "tests", "lint"]
nox.options.reuse_venv = "yes"

BUILD_REQS = ("-r", "requirements.txt")
TEST_REQS = ("-r", "requirements-test.txt")
WORKFLOW_REQS = ("-r", "requirements-workflow.txt")  # actionlint, check-jsonschema
# The project itself, editable: what imports `dashkit` from outside the project folder (pytest, tools/*.py) finds
# this checkout's. `python build.py` needs no install (its folder is on sys.path), so the build session skips it.
PROJECT = ("-e", ".")

# The Python services' metrics client: verify parses /metrics with it, the live check serves reference services.
CLIENT = "prometheus-client==0.26.0"


def install(session: nox.Session, *args: str) -> None:
    """Install with bytecode compiled: where PYTHONDONTWRITEBYTECODE is set (as on our CI machines), an
    uncompiled venv recompiles every imported module on every run, which doubled the build's time."""
    session.env["UV_COMPILE_BYTECODE"] = "1"
    session.install(*args)
    session.run("python", "-m", "compileall", "-q", "dashkit", silent=True)


@nox.session
def build(session: nox.Session) -> None:
    """Build the dashboards: values/*.yaml -> out/ (and refresh docs/metrics.md). Every check runs first."""
    install(session, *BUILD_REQS)
    session.run("python", "build.py", *session.posargs)


@nox.session
def tests(session: nox.Session) -> None:
    """Run the test suite: snapshots, Grafana conformance, corpus, promtool, live Prometheus, grammars, hardening."""
    install(session, *TEST_REQS, *PROJECT)
    prometheus(session, required=False)
    if shutil.which("npm"):
        grammars(session)
    peer_python(session)  # grafanalib in a venv of its own, for tests/test_bench.py (the benchmark's peer)
    session.run("pytest", *session.posargs)


NEWER_PYTHONS = ("3.15", "3.14", "3.13", "3.12")  # newest first; 3.11 (Debian 12's 3.11.2) is the oldest supported
# The fast part of the suite: all but the tests whose minutes go to Prometheus computing answers (the same
# whatever Python built the rules); `nox -s tests` runs those.
COMPAT_PYTEST = (
    "-m",
    "not workflow",
    "--ignore=tests/test_live.py",
    "--ignore=tests/test_live_scenarios.py",
    "--ignore=tests/test_rules_promtool.py",
)


@nox.session(venv_backend="none")
def compat(session: nox.Session) -> None:
    """The build and the fast tests on the newest CPython of the machine, if newer than nox's (else skipped, saying why).

    Looks for python3.15, 3.14, 3.13, 3.12 in that order: on PATH, in pyenv's versions, with `uv python find`.
    Its own venv (.nox/compat, made anew when the interpreter changes). `nox -s compat -- ARGS`: pytest's arguments."""
    running = f"{sys.version_info.major}.{sys.version_info.minor}"
    found = newest_python()
    if found is None:
        newer = [v for v in NEWER_PYTHONS if tuple(map(int, v.split("."))) > sys.version_info[:2]]
        session.skip(
            f"no CPython newer than {running} (nox's own) on this machine: looked for python{', python'.join(newer)} on PATH, "
            "in pyenv's versions and with `uv python find`"
            if newer
            else f"nox runs on Python {running}: none newer to look for"
        )
    version, interpreter = found
    venv = session.env_dir
    python = venv / "bin" / "python"
    session.log(f"Python {version} at {interpreter}; venv {venv}")
    if python_facts(python) != python_facts(interpreter):  # none yet, or made by another interpreter: made anew
        shutil.rmtree(venv, ignore_errors=True)
        if uv := uv_binary():
            session.run(uv, "venv", "--quiet", "--python", interpreter, str(venv), external=True)
        else:
            session.run(interpreter, "-m", "venv", str(venv), external=True)
    env = {
        "VIRTUAL_ENV": str(venv),
        "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
        "UV_COMPILE_BYTECODE": "1",
    }
    if uv := uv_binary():
        session.run(
            uv, "pip", "install", "--quiet", "--python", str(python), *TEST_REQS, *PROJECT, env=env, external=True
        )
    else:
        session.run(str(python), "-m", "pip", "install", "--quiet", *TEST_REQS, *PROJECT, env=env, external=True)
    session.run(str(python), "-m", "compileall", "-q", "dashkit", env=env, silent=True, external=True)
    if shutil.which("npm"):
        grammars(session)
    # The real build, writing: out/'s atomic exchange is the most interpreter-bound code there is. Into the
    # session's folder, so the out/ you deploy stays as `nox -s build` made it (the docs are rewritten, same bytes).
    session.run(str(python), "build.py", "--out", str(venv / "out"), env=env, external=True)
    session.run(str(python), "-m", "pytest", *(session.posargs or COMPAT_PYTEST), env=env, external=True)


def newest_python() -> tuple[str, str] | None:
    """(X.Y, path) of the newest CPython of NEWER_PYTHONS on this machine newer than the running one, or None."""
    for version in NEWER_PYTHONS:
        if tuple(map(int, version.split("."))) <= sys.version_info[:2]:
            return None
        for candidate in python_candidates(version):
            facts = python_facts(candidate)
            if (
                facts and facts[0] == "cpython" and facts[1] == version and not facts[3]
            ):  # free-threaded builds lack wheels
                return version, candidate
    return None


def python_candidates(version: str):
    """pythonX.Y on PATH (a pyenv shim of a version not selected fails the probe and is passed over), each patch
    release in pyenv's versions/ newest first, and what `uv python find` answers."""
    if found := shutil.which(f"python{version}"):
        yield found
    roots = [os.environ.get("PYENV_ROOT", "")]
    if pyenv := shutil.which("pyenv"):
        roots.append(subprocess.run([pyenv, "root"], capture_output=True, text=True, timeout=30).stdout.strip())
    for root in dict.fromkeys(r for r in roots if r):
        releases = [
            d
            for d in Path(root, "versions").glob(f"{version}.*")
            if re.fullmatch(rf"{re.escape(version)}\.\d+", d.name)
        ]
        for release in sorted(releases, key=lambda d: int(d.name.rsplit(".", 1)[1]), reverse=True):
            yield str(release / "bin" / f"python{version}")
    if uv := uv_binary():
        found = subprocess.run(
            [uv, "python", "find", "--no-project", f"cpython@{version}"], capture_output=True, text=True, timeout=60
        )
        if found.returncode == 0 and found.stdout.strip():
            yield found.stdout.strip()


def python_facts(interpreter: str | Path) -> tuple | None:
    """(implementation, X.Y, full version, free-threaded) of an interpreter that runs, else None."""
    probe = "import sys, sysconfig; print(sys.implementation.name, '%d.%d' % sys.version_info[:2], sys.version.split()[0], bool(sysconfig.get_config_var('Py_GIL_DISABLED')))"
    try:
        run = subprocess.run([str(interpreter), "-c", probe], capture_output=True, text=True, timeout=30)
    except OSError:
        return None
    words = run.stdout.split()
    return (words[0], words[1], words[2], words[3] == "True") if run.returncode == 0 and len(words) == 4 else None


def uv_binary() -> str | None:
    """The uv installed beside nox (README: `pip install nox uv`), else one on PATH."""
    try:
        from uv import find_uv_bin

        return find_uv_bin()
    except (ImportError, FileNotFoundError):
        return shutil.which("uv")


@nox.session
def snapshots(session: nox.Session) -> None:
    """Accept the current dashboards and layout previews as the new snapshots (review the diff before committing)."""
    install(session, *TEST_REQS, *PROJECT)
    session.run(
        "pytest", "tests/test_snapshots.py", "tests/test_diff_and_preview.py", "--snapshot-update", *session.posargs
    )


@nox.session
def lint(session: nox.Session) -> None:
    """Lint: ruff (check, format --check), the build's checks without writing, the GitHub workflow (actionlint, its
    schema), Grafana's grammars. .pre-commit-config.yaml runs the same.

    The workflow schema is the one vendored in check-jsonschema (offline); LogQL/TraceQL grammars from npm, pinned."""
    install(session, "ruff==0.17.6", *BUILD_REQS, *WORKFLOW_REQS, *PROJECT)
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    workflows = sorted(str(p) for p in Path(".github/workflows").glob("*.y*ml"))
    session.run("actionlint", *workflows)
    session.run("check-jsonschema", "--builtin-schema", "vendor.github-workflows", *workflows)
    session.run("python", "build.py", "--check")
    grammars(session)
    session.run("python", "tools/grammar_check.py")


def prometheus(session: nox.Session, required: bool = True) -> None:
    """Find Prometheus and promtool, or install Debian's package where we may (as root, with apt-get)."""
    if shutil.which("prometheus") and shutil.which("promtool"):
        return
    if os.geteuid() == 0 and shutil.which("apt-get"):
        session.run("apt-get", "update", "-qq", external=True)
        session.run(
            "apt-get",
            "install",
            "-y",
            "-qq",
            "--no-install-recommends",
            "prometheus",
            external=True,
            env={"DEBIAN_FRONTEND": "noninteractive"},
        )
    elif required:
        session.error("prometheus is not installed: apt-get install -y --no-install-recommends prometheus")
    else:
        session.warn(
            "prometheus/promtool not installed: the rule and live tests will be skipped (apt-get install prometheus)"
        )


def grammars(session: nox.Session) -> None:
    """Grafana's LogQL/TraceQL grammars, pinned in tools/grammar/package-lock.json."""
    session.run("npm", "ci", "--prefix", "tools/grammar", "--no-audit", "--no-fund", "--loglevel=error", external=True)


@nox.session
def fuzz(session: nox.Session) -> None:
    """Property test: 10,000 generated values documents with hostile text (override: FUZZ_EXAMPLES=N)."""
    install(session, *TEST_REQS, *PROJECT)
    session.run(
        "pytest",
        "tests/test_fuzz.py",
        "--hypothesis-show-statistics",
        "-q",
        env={"FUZZ_EXAMPLES": os.environ.get("FUZZ_EXAMPLES", "10000")},
    )


@nox.session
def hardening(session: nox.Session) -> None:
    """100 builds killed with SIGKILL and 100 with SIGINT at random points, 100 trials of two or three builds at
    once, 100 rebuilds in fresh processes, refused outputs, full disk, the bad-input corpus (`-- -s`: figures)."""
    install(session, *TEST_REQS, *PROJECT)
    session.run(
        "pytest",
        "tests/test_hardening.py",
        "tests/test_bad_inputs.py",
        "tests/test_corpus.py",
        "-q",
        *session.posargs,
        env={"KILL_TRIALS": os.environ.get("KILL_TRIALS", "100"), "REBUILDS": os.environ.get("REBUILDS", "100")},
    )


@nox.session
def diff(session: nox.Session) -> None:
    """What changed against BASE (default: merge base with main), panel by panel: nox -s diff -- [BASE] [--check].
    Report: build/reports/diff.md; before/after layouts under build/preview/diff/."""
    install(session, *BUILD_REQS, *PROJECT)
    session.run("python", "tools/diff.py", *session.posargs)


@nox.session
def preview(session: nox.Session) -> None:
    """A picture of every dashboard's layout under build/preview/ (SVG; PNG where rsvg-convert exists); never in out/."""
    install(session, *BUILD_REQS, *PROJECT)
    session.run("python", "tools/preview.py", *session.posargs)


@nox.session
def verify(session: nox.Session) -> None:
    """Verify against the real platform: every panel, variable and rule against a Prometheus or Mimir, and catalog
    drift from it or from services' /metrics. nox -s verify -- --prometheus-url URL [--tenant ID]
    [--bearer-token-env NAME] [--allow-empty FILE] ... | --metrics-url URL [URL ...]; README "Check against your Mimir"."""
    install(session, *BUILD_REQS, CLIENT, *PROJECT)
    session.run("python", "tools/verify.py", *session.posargs)


@nox.session
def live(session: nox.Session) -> None:
    """Every panel, variable selection and alert against a real Prometheus, per scenario of values/scenarios.yaml
    (healthy, incident, backlog, minimal): over backfilled data, then with reference services (prometheus_client)
    scraped live. `-- --scenario NAME` runs one; `-- --scrape` only the scrape mode. Installs Debian's prometheus
    if missing."""
    prometheus(session)
    install(session, *BUILD_REQS, *PROJECT, CLIENT)
    if "--scrape" not in session.posargs:
        session.run("python", "tools/live_check.py", *session.posargs)
    session.run("python", "tools/live_check.py", "--scrape", *[a for a in session.posargs if a != "--scrape"])


@nox.session
def cost(session: nox.Session) -> None:
    """Query cost of one refresh per dashboard on ~100,000 series (large preset; about 3 minutes, 6 GB of disk)."""
    prometheus(session)
    install(session, *BUILD_REQS, *PROJECT)
    session.run("python", "tools/cost_report.py", *session.posargs)


# The peer of `benchmarks/vs_grafanalib.py`, in a venv of its own (.nox/bench-grafanalib): never in the build's.
# grafanalib 0.7.1 is the newest release; attrs its one dependency; PyYAML as the build pins it.
PEER_REQS = ("grafanalib==0.7.1", "attrs==26.1.0", "PyYAML==6.0.3")
PEER_VENV = "bench-grafanalib"


@nox.session
def bench(session: nox.Session) -> None:
    """Time whole-process `python build.py`, a fleet of 10, 100 and 1,000 services, the Jsonnet bindings, and the
    build beside grafanalib on the same fleets (`-- N ...`: fleet sizes for both)."""
    install(session, *BUILD_REQS, "jsonnet==0.22.0")
    peer = peer_python(session)
    session.run("python", "benchmarks/build_time.py")
    session.run("python", "benchmarks/fleet.py", *(session.posargs or ["10", "100", "1000"]))
    session.run("python", "benchmarks/jsonnet_bindings.py")
    session.run("python", "benchmarks/vs_grafanalib.py", "--peer-python", peer, *session.posargs)


def peer_python(session: nox.Session) -> str:
    """The Python of .nox/bench-grafanalib, made with the session's interpreter, PEER_REQS installed compiled."""
    venv = Path(session.virtualenv.location).parent / PEER_VENV
    python = str(venv / "bin" / "python")
    env = {"UV_COMPILE_BYTECODE": "1"}
    if uv := uv_binary():
        own = str(Path(session.virtualenv.location) / "bin" / "python")
        session.run(uv, "venv", "--quiet", "--allow-existing", "--python", own, str(venv), external=True)
        session.run(uv, "pip", "install", "--quiet", "--python", python, *PEER_REQS, env=env, external=True)
    else:
        session.run("python", "-m", "venv", str(venv))
        session.run(python, "-m", "pip", "install", "--quiet", *PEER_REQS, external=True)  # pip compiles
    return python

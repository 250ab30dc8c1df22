"""Sessions: build, tests, lint, snapshots, bench. `nox -l` lists them; `nox -R` reuses venvs."""

from __future__ import annotations

import os
import shutil

import nox

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.sessions = ["build", "tests", "lint"]
nox.options.reuse_venv = "yes"

BUILD_REQS = ("-r", "requirements.txt")
TEST_REQS = ("-r", "requirements-test.txt")


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
    install(session, *TEST_REQS)
    prometheus(session, required=False)
    if shutil.which("npm"):
        grammars(session)
    session.run("pytest", *session.posargs)


@nox.session
def snapshots(session: nox.Session) -> None:
    """Accept the current dashboards and layout previews as the new snapshots (review the diff before committing)."""
    install(session, *TEST_REQS)
    session.run("pytest", "tests/test_snapshots.py", "tests/test_diff_and_preview.py", "--snapshot-update", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """Lint: ruff, the build's own checks without writing, and LogQL parsed by Grafana's grammar (npm, pinned)."""
    install(session, "ruff==0.17.6", *BUILD_REQS)
    session.run("ruff", "check", ".")
    session.run("python", "build.py", "--check")
    grammars(session)
    session.run("python", "tools/grammar_check.py")


def prometheus(session: nox.Session, required: bool = True) -> None:
    """Find Prometheus and promtool, or install Debian's package where we may (as root, with apt-get)."""
    if shutil.which("prometheus") and shutil.which("promtool"):
        return
    if os.geteuid() == 0 and shutil.which("apt-get"):
        session.run("apt-get", "update", "-qq", external=True)
        session.run("apt-get", "install", "-y", "-qq", "--no-install-recommends", "prometheus", external=True,
                    env={"DEBIAN_FRONTEND": "noninteractive"})
    elif required:
        session.error("prometheus is not installed: apt-get install -y --no-install-recommends prometheus")
    else:
        session.warn("prometheus/promtool not installed: the rule and live tests will be skipped (apt-get install prometheus)")


def grammars(session: nox.Session) -> None:
    """Grafana's LogQL/TraceQL grammars, pinned in tools/grammar/package-lock.json."""
    session.run("npm", "ci", "--prefix", "tools/grammar", "--no-audit", "--no-fund", "--loglevel=error", external=True)


@nox.session
def fuzz(session: nox.Session) -> None:
    """Property test: 10,000 generated values documents with hostile text (override: FUZZ_EXAMPLES=N)."""
    install(session, *TEST_REQS)
    session.run("pytest", "tests/test_fuzz.py", "--hypothesis-show-statistics", "-q",
                env={"FUZZ_EXAMPLES": os.environ.get("FUZZ_EXAMPLES", "10000")})


@nox.session
def hardening(session: nox.Session) -> None:
    """100 builds killed with SIGKILL and 100 with SIGINT at random points, 100 trials of two or three builds at
    once, 100 rebuilds in fresh processes, refused outputs, full disk, the bad-input corpus (`-- -s`: figures)."""
    install(session, *TEST_REQS)
    session.run("pytest", "tests/test_hardening.py", "tests/test_bad_inputs.py", "tests/test_corpus.py", "-q", *session.posargs,
                env={"KILL_TRIALS": os.environ.get("KILL_TRIALS", "100"), "REBUILDS": os.environ.get("REBUILDS", "100")})


@nox.session
def diff(session: nox.Session) -> None:
    """What changed against BASE (default: merge base with main), panel by panel: nox -s diff -- [BASE] [--check]."""
    install(session, *BUILD_REQS)
    session.run("python", "tools/diff.py", *session.posargs)


@nox.session
def preview(session: nox.Session) -> None:
    """A picture of every dashboard's layout under out/preview/ (SVG; PNG where rsvg-convert exists)."""
    install(session, *BUILD_REQS)
    session.run("python", "tools/preview.py", *session.posargs)


@nox.session
def live(session: nox.Session) -> None:
    """Every panel, variable selection and alert against a real Prometheus, per scenario of values/scenarios.yaml
    (healthy, incident, minimal); `-- --scenario NAME` runs one. Installs Debian's prometheus if missing."""
    prometheus(session)
    install(session, *BUILD_REQS)
    session.run("python", "tools/live_check.py", *session.posargs)


@nox.session
def cost(session: nox.Session) -> None:
    """Query cost of one refresh per dashboard on ~100,000 series (large preset; about 3 minutes, 6 GB of disk)."""
    prometheus(session)
    install(session, *BUILD_REQS)
    session.run("python", "tools/cost_report.py", *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    """Time whole-process `python build.py`, a fleet of 10, 100 and 1,000 services, and the Jsonnet bindings."""
    install(session, *BUILD_REQS, "jsonnet==0.22.0")
    session.run("python", "benchmarks/build_time.py")
    session.run("python", "benchmarks/fleet.py", *(session.posargs or ["10", "100", "1000"]))
    session.run("python", "benchmarks/jsonnet_bindings.py")

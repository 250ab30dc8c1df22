from __future__ import annotations

import contextlib
import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from dashkit.pipeline import build

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def tree() -> dict[str, dict]:
    """The real dashboard tree, as `nox -s build` makes it: out/-relative path -> parsed JSON."""
    return {path: json.loads(text) for path, text in build(ROOT).dashboard_files().items()}


def panels_of(dashboard: dict):
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


class Project:
    """A throw-away copy of the project to break on purpose; runs the real build.py as a user would."""

    def __init__(self, path: Path):
        self.path = path

    def file(self, rel: str) -> Path:
        return self.path / rel

    def edit(self, rel: str, old: str, new: str, count: int = 1) -> None:
        target = self.file(rel)
        text = target.read_text(encoding="utf-8")
        assert old in text, f"test setup: {old!r} not in {rel}"
        target.write_text(text.replace(old, new, count), encoding="utf-8")

    def write(self, rel: str, text: str) -> None:
        target = self.file(rel)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")

    @property
    def env(self) -> dict[str, str]:
        """The environment for running this copy's tools (`python tools/x.py`): its own dashkit, not the one
        installed in the venv (nox installs the checkout's, editable)."""
        return {**os.environ, "PYTHONPATH": str(self.path)}

    def add_tools(self) -> None:
        """The copy's own tools/ (node_modules left out), for tests that run them as a user would."""
        if not (self.path / "tools").exists():
            shutil.copytree(
                ROOT / "tools", self.path / "tools", ignore=shutil.ignore_patterns("node_modules", "__pycache__")
            )

    def tool(self, script: str, *args: str) -> subprocess.CompletedProcess:
        """`python tools/<script> ARGS` in this copy, with its own dashkit."""
        self.add_tools()
        return subprocess.run(
            [sys.executable, f"tools/{script}", *args],
            cwd=self.path,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    def build(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, str(self.path / "build.py"), *args],
            cwd=self.path,
            capture_output=True,
            text=True,
            timeout=120,
        )

    def dashboard(self, name: str) -> dict:
        """A built dashboard of this copy by its name (`services/<job>.json`, `<uid_prefix>-overview.json`)."""
        import yaml

        prefix = yaml.safe_load(self.file("values/defaults.yaml").read_text(encoding="utf-8"))["uid_prefix"]
        return json.loads((self.path / "out" / "dashboards" / prefix / name).read_text(encoding="utf-8"))

    def out_bytes(self) -> dict[str, bytes]:
        out = self.path / "out"
        return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


@pytest.fixture
def project(tmp_path: Path) -> Project:
    dest = tmp_path / "project"
    dest.mkdir()
    for name in ("values", "templates", "schemas", "dashkit", "docs"):
        shutil.copytree(ROOT / name, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(ROOT / "build.py", dest / "build.py")
    return Project(dest)


def expected_alerts() -> int:
    """Alerts the values ask for: the shared ones once per service, each service's own, the platform's."""
    import yaml

    rules = yaml.safe_load((ROOT / "values" / "rules.yaml").read_text(encoding="utf-8"))
    services = [
        yaml.safe_load(p.read_text(encoding="utf-8")) for p in sorted((ROOT / "values" / "services").glob("*.yaml"))
    ]
    return (
        len(services) * len(rules["alerts"])
        + sum(len(s.get("alerts", [])) for s in services)
        + len(rules["platform_alerts"])
    )


@contextlib.contextmanager
def loopback(handler: type[http.server.BaseHTTPRequestHandler]):
    """An HTTP server on 127.0.0.1 and a free port answering with `handler`; yields its base URL, shut down after."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

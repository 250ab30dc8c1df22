"""A real Prometheus (Debian's package) on 127.0.0.1 and a free port, over a TSDB built with promtool.

Started as its own process and stopped by its own PID, every wait bounded in time.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

READY_TIMEOUT = 30.0
QUERY_TIMEOUT = 30.0


class ToolMissing(RuntimeError):
    pass


def binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise ToolMissing(f"{name} is not on PATH: apt-get install -y --no-install-recommends prometheus")
    return path


BIND_ATTEMPTS = 5


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def backfill_openmetrics(source: Path, tsdb: Path) -> None:
    tsdb.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [binary("promtool"), "tsdb", "create-blocks-from", "openmetrics", str(source), str(tsdb)],
        check=True,
        capture_output=True,
        timeout=600,
    )


def backfill_rules(rule_file: Path, url: str, start: int, end: int, output: Path, interval: str = "60s") -> None:
    output.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            binary("promtool"),
            "tsdb",
            "create-blocks-from",
            "rules",
            f"--start={start}",
            f"--end={end}",
            f"--url={url}",
            f"--output-dir={output}",
            f"--eval-interval={interval}",
            str(rule_file),
        ],
        check=True,
        capture_output=True,
        timeout=600,
    )


class Prometheus:
    """`with Prometheus(tsdb) as prom: prom.query(...)`; rule files are loaded for live evaluation too."""

    def __init__(
        self, tsdb: Path, rule_files: list[Path] = (), workdir: Path | None = None, scrape: dict | None = None
    ):
        """scrape: {"interval": seconds, "jobs": {job: [host:port, ...]}} to scrape targets (the live check's
        scrape mode); without it Prometheus scrapes nothing and serves the TSDB it is given."""
        self.scrape = scrape
        self.tsdb = Path(tsdb)
        self.rule_files = [Path(p) for p in rule_files]
        self.workdir = Path(workdir or self.tsdb.parent)
        self.proc: subprocess.Popen | None = None
        self.log = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Prometheus:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> None:
        config = self.workdir / "prometheus.yml"
        rules = "".join(f"  - {json.dumps(str(p))}\n" for p in self.rule_files)
        config.write_text(self._config(rules), encoding="utf-8")
        try:
            for _ in range(BIND_ATTEMPTS):  # the port found free may be taken before Prometheus binds it
                self.port = free_port()
                if self._started(config):
                    return
        except BaseException:  # Ctrl-C in the wait, say: __exit__ will not run, so it is stopped here
            self.stop()
            raise
        raise RuntimeError(
            f"prometheus found no free port in {BIND_ATTEMPTS} attempts; see {self.workdir / 'prometheus.log'}"
        )

    def _started(self, config: Path) -> bool:
        """Start Prometheus on self.port and wait till it is ready; False if the port was taken meanwhile."""
        self.log = open(self.workdir / "prometheus.log", "wb")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(
            [
                binary("prometheus"),
                f"--config.file={config}",
                f"--storage.tsdb.path={self.tsdb}",
                "--storage.tsdb.retention.time=3650d",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--log.level=warn",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                code = self.proc.returncode
                self.stop()
                if b"address already in use" in (self.workdir / "prometheus.log").read_bytes():
                    return False
                raise RuntimeError(f"prometheus exited with {code}; see {self.workdir / 'prometheus.log'}")
            if self._ours_ready():
                return True
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"prometheus was not ready within {READY_TIMEOUT:.0f} s")

    def _ours_ready(self) -> bool:
        """Whether the server on self.port is ready and is this one: until it has bound the port, another
        program that took it meanwhile (another Prometheus, any server) could answer."""
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as response:
                if response.status != 200:
                    return False
            answer = self.api("/api/v1/status/flags")
        except (OSError, ValueError):
            return False
        flags = answer.get("data") if isinstance(answer, dict) else None
        return isinstance(flags, dict) and flags.get("storage.tsdb.path") == str(self.tsdb)

    def _config(self, rules: str) -> str:
        text = "global:\n  evaluation_interval: 1m\n"
        if self.scrape:
            every = f"{self.scrape['interval']}s"
            text = f"global:\n  scrape_interval: {every}\n  scrape_timeout: {every}\n  evaluation_interval: {every}\n"
            text += "scrape_configs:\n"
            for job, targets in sorted(self.scrape["jobs"].items()):
                text += (
                    f"  - job_name: {json.dumps(job)}\n    static_configs:\n      - targets: {json.dumps(targets)}\n"
                )
        return text + (f"rule_files:\n{rules}" if rules else "")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=15)
            self.proc = None
        if self.log is not None:
            self.log.close()
            self.log = None

    def api(self, path: str, **params) -> dict:
        """GET an API path; returns the decoded body (status 'success' or 'error')."""
        query = urllib.parse.urlencode(params, doseq=True)
        try:
            with urllib.request.urlopen(f"{self.url}{path}?{query}", timeout=QUERY_TIMEOUT) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as err:
            return json.loads(err.read() or b'{"status": "error", "error": "HTTP error"}')

    def query(self, expr: str, at: int, stats: bool = False) -> dict:
        return self.api("/api/v1/query", query=expr, time=at, **({"stats": "all"} if stats else {}))

    def query_range(self, expr: str, start: int, end: int, step: int, stats: bool = False) -> dict:
        return self.api(
            "/api/v1/query_range", query=expr, start=start, end=end, step=step, **({"stats": "all"} if stats else {})
        )

    def label_values(self, label: str, match: str, start: int, end: int) -> dict:
        return self.api(
            f"/api/v1/label/{urllib.parse.quote(label)}/values", **{"match[]": match, "start": start, "end": end}
        )

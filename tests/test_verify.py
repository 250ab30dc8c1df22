"""tools/verify.py against real services: prometheus_client registries served by its own HTTP server.

The reference service is derived from the catalog: every metric values/metrics.yaml gives api-gateway and
`service: all`, declared with the catalog's type and labels (one series each, at the first example values), the
process_* ones from the client's own ProcessCollector. The drifted services are that one with one thing changed.
"""

from __future__ import annotations

import http.server
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import loopback
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector, start_http_server
from prometheus_client.openmetrics.exposition import generate_latest as openmetrics_latest

from dashkit.pipeline import build
from dashkit.verify import service_metrics

ROOT = Path(__file__).resolve().parent.parent
SERVICE = "api-gateway"
TYPES = {"counter": Counter, "gauge": Gauge, "histogram": Histogram}
ENV = dict(os.environ, PYTHONPATH=str(ROOT))


@pytest.fixture(scope="module")
def catalog():
    return build(ROOT).catalog


def registry(catalog, renamed=None, retyped=None, dropped=()) -> CollectorRegistry:
    """The reference service of SERVICE, with labels renamed ({metric: {catalog label: exported}}), metrics
    declared with another type ({metric: type}) or left out."""
    reg = CollectorRegistry()
    ProcessCollector(registry=reg)
    from_process = {s.name for f in ProcessCollector(registry=None).collect() for s in f.samples}
    for spec in service_metrics(catalog)[SERVICE]:
        if spec.name in from_process or spec.name in dropped:
            continue
        names = (renamed or {}).get(spec.name, {})
        labels = {names.get(k, k): str(v[0]) for k, v in spec.labels.items()}
        kind = (retyped or {}).get(spec.name, spec.type)
        metric = TYPES[kind](spec.name, spec.help, list(labels), registry=reg)
        series = metric.labels(**labels) if labels else metric
        {"counter": lambda s: s.inc(), "gauge": lambda s: s.set(1), "histogram": lambda s: s.observe(0.1)}[kind](series)
    return reg


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def serve():
    """serve(registry) -> the URL of its /metrics; every server is shut down after the test."""
    servers = []

    def start(reg: CollectorRegistry) -> str:
        server, thread = start_http_server(0, addr="127.0.0.1", registry=reg)  # port 0: never a taken one
        servers.append((server, thread))
        return f"http://127.0.0.1:{server.server_port}/metrics"

    yield start
    for server, thread in servers:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "tools" / "verify.py"), "--timeout", "3", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=ENV,
        cwd=ROOT,
    )


def test_the_reference_service_has_no_drift(catalog, serve, tmp_path):
    url = serve(registry(catalog))
    done = run("--metrics-url", url, "--report-json", str(tmp_path / "r.json"), "--report-md", str(tmp_path / "r.md"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{url}: {SERVICE}: no drift" in done.stdout
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["drift"] is False
    (endpoint,) = report["endpoints"]
    own = sum(1 for m in service_metrics(catalog)[SERVICE] if m.service == SERVICE)
    assert endpoint["service"] == SERVICE and endpoint["service_from"].startswith(f"exports {own} of its {own}")
    assert not endpoint["missing"] and not endpoint["labels"] and not endpoint["types"]
    assert "No drift" in (tmp_path / "r.md").read_text()


def test_an_endpoint_that_always_answers_openmetrics_is_read_with_that_parser(catalog, tmp_path):
    """Some exporters ignore Accept and serve OpenMetrics (counters as `# TYPE x counter` over `x_total`
    samples, a closing `# EOF`): read with the classic parser every counter would look retyped."""
    reg = registry(catalog)

    class OpenMetricsOnly(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = openmetrics_latest(reg)
            self.send_response(200)
            self.send_header("Content-Type", "application/openmetrics-text; version=1.0.0; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    with loopback(OpenMetricsOnly) as base:
        url = f"{base}/metrics"
        assert urllib.request.urlopen(url, timeout=5).read().rstrip().endswith(b"# EOF")
        done = run("--metrics-url", url)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{url}: {SERVICE}: no drift" in done.stdout


def test_renamed_labels_are_named_with_the_rename(catalog, serve, tmp_path):
    renamed = {
        "http_requests_total": {"endpoint": "handler", "status": "status_code"},
        "http_request_duration_seconds": {"endpoint": "handler"},
    }
    url = serve(registry(catalog, renamed=renamed))
    done = run("--metrics-url", url, "--job", SERVICE, "--report-md", str(tmp_path / "r.md"))
    assert done.returncode == 1, done.stdout + done.stderr
    for line in (
        "`http_requests_total` has `handler`, not `endpoint` (values/metrics.yaml:",
        "`http_requests_total` has `status_code`, not `status` (values/metrics.yaml:",
        "`http_request_duration_seconds` has `handler`, not `endpoint` (values/metrics.yaml:",
    ):
        assert line in done.stdout
        assert line in (tmp_path / "r.md").read_text()
    assert done.stdout.count("has `") == 3  # nothing else drifted


def test_a_missing_metric_and_a_wrong_type_are_named(catalog, serve, tmp_path):
    reg = registry(
        catalog, dropped={"api_gateway_active_connections"}, retyped={"api_gateway_auth_failures_total": "gauge"}
    )
    url = serve(reg)
    done = run("--metrics-url", url, "--report-json", str(tmp_path / "r.json"))
    assert done.returncode == 1, done.stdout + done.stderr
    assert "`api_gateway_active_connections` (gauge, api-gateway) is not exported (values/metrics.yaml:" in done.stdout
    assert "`api_gateway_auth_failures_total` is a gauge, the catalog says counter (values/metrics.yaml:" in done.stdout
    (endpoint,) = json.loads((tmp_path / "r.json").read_text())["endpoints"]
    assert [m["metric"] for m in endpoint["missing"]] == ["api_gateway_active_connections"]
    assert endpoint["types"] == [
        {
            "metric": "api_gateway_auth_failures_total",
            "catalog": "counter",
            "exported": "gauge",
            "where": endpoint["types"][0]["where"],
        }
    ]
    assert not endpoint["labels"]


class Broken(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/html":
            body = b"<html><body>{not metrics}</body></html>\n"
            self.send_response(200)
        else:
            body = b"boom"
            self.send_response(500)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_HEAD(self):
        self.do_GET()

    def log_message(self, *args):
        pass


@pytest.fixture
def broken():
    with loopback(Broken) as url:
        yield url


def test_unreadable_endpoints_give_one_line_and_exit_2(broken):
    closed = f"http://127.0.0.1:{free_port()}/metrics"
    for url, says in (
        (f"{broken}/metrics", "HTTP 500"),
        (closed, "refused"),
        (f"{broken}/html", "not the Prometheus text format"),
    ):
        started = time.monotonic()
        done = run("--metrics-url", url)
        assert done.returncode == 2, (url, done.stdout, done.stderr)
        assert done.stderr.count("\n") == 1 and done.stderr.startswith(f"{url}: "), done.stderr
        assert says in done.stderr and "Traceback" not in done.stderr
        assert time.monotonic() - started < 30


def test_a_silent_endpoint_times_out():
    with socket.socket() as listener:  # accepts connections, never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/metrics"
        done = subprocess.run(
            [sys.executable, str(ROOT / "tools" / "verify.py"), "--timeout", "0.5", "--metrics-url", url],
            capture_output=True,
            text=True,
            timeout=60,
            env=ENV,
            cwd=ROOT,
        )
    assert done.returncode == 2 and done.stderr == f"{url}: no answer within 0.5 s\n", done.stderr


def test_an_unknown_job_is_a_usage_error(serve, catalog):
    done = run("--metrics-url", serve(registry(catalog)), "--job", "nope")
    assert done.returncode == 2 and done.stderr.startswith("--job nope: not a service of the catalog")


def test_the_nox_session_installs_the_pinned_client():
    pin = next(
        line for line in (ROOT / "requirements-test.txt").read_text().splitlines() if "prometheus-client" in line
    )
    assert f'"{pin}"' in (ROOT / "noxfile.py").read_text()

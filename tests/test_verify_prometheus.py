"""tools/verify.py --prometheus-url against a real Prometheus (Debian's package) scraping the reference services
(the real prometheus_client, dashkit.live.scrape) with the project's rules, against one holding the live check's
backfilled synthetic data (pinned at its window with --end), and against servers that misbehave.

Mimir cannot run here: a loopback proxy stands in for it, recording every request's headers before forwarding it
to the real Prometheus (and answering some requests itself where a test says so). Expectations are derived from
the built tree, never written as numbers.
"""

from __future__ import annotations

import base64
import http.server
import json
import os
import re
import shlex
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import pytest
from conftest import ROOT, loopback

from dashkit.live import synth
from dashkit.live.prometheus import Prometheus
from dashkit.live.run import prepare, scenarios_of
from dashkit.live.scrape import scraped
from dashkit.panels import panels_of
from dashkit.pipeline import build
from dashkit.remote import Remote
from dashkit.verify import service_metrics
from dashkit.verify_run import planned_calls, rfc3339

pytestmark = pytest.mark.skipif(
    shutil.which("prometheus") is None or shutil.which("promtool") is None,
    reason="prometheus/promtool are not on PATH (apt-get install -y --no-install-recommends prometheus)",
)
END = rfc3339(synth.DEFAULT_WINDOW.end)  # the synthetic data's last sample: "now" for these runs
README = (ROOT / "README.md").read_text(encoding="utf-8")
RENAMED = {"endpoint": "handler", "status": "status_code"}  # starlette-exporter's names for the catalog's


@pytest.fixture(scope="module")
def built():
    return build(ROOT)


def serve(result, workdir):
    """The synthetic data of `result`'s catalog in a real Prometheus, stopped (by its PID) when done."""
    tsdb, _, _ = prepare(result, workdir)
    return Prometheus(tsdb, workdir=workdir)


@pytest.fixture(scope="module")
def busy(built, tmp_path_factory):
    with serve(built, tmp_path_factory.mktemp("busy")) as prom:
        yield prom.url


@pytest.fixture(scope="module")
def reference(built, tmp_path_factory):
    """The reference services with every series (the busy dataset), scraped live: data ends now."""
    with scraped(built, tmp_path_factory.mktemp("reference"), synth.BUSY) as live:
        yield live.url


@pytest.fixture(scope="module")
def renamed(built, tmp_path_factory):
    """Every service exporting `handler` and `status_code` for `endpoint` and `status`, the dashboards unchanged."""
    renames = {job: RENAMED for job in built.services}
    with scraped(built, tmp_path_factory.mktemp("renamed"), synth.BUSY, renames=renames) as live:
        yield live.url


def verify(*args: str, env: dict | None = None, timeout: float = 5) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "tools" / "verify.py"), "--timeout", str(timeout), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        cwd=ROOT,
    )


def reports(tmp_path) -> tuple[list[str], callable]:
    """The report options, and a reader of (JSON, Markdown) once written."""
    md, js = tmp_path / "verify.md", tmp_path / "verify.json"
    return ["--report-md", str(md), "--report-json", str(js)], lambda: (json.loads(js.read_text()), md.read_text())


def prometheus_panels(result) -> list[tuple[str, str]]:
    """(dashboard title, panel title) of every panel with a Prometheus query."""
    return [
        (d.json["title"], p["title"])
        for d in result.dashboards
        for p in panels_of(d.json)
        if p.get("targets") and p.get("datasource", {}).get("type") not in ("loki", "tempo")
    ]


# --- a loopback proxy standing in for Mimir ---------------------------------------------------------------
class Recording(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, upstream: str, delay: float = 0.0, answer=None):
        super().__init__(("127.0.0.1", 0), Forward)
        self.upstream, self.delay, self.answer = upstream, delay, answer
        self.requests: list[tuple[str, str, dict]] = []  # (method, path, headers)
        self.lock = threading.Lock()
        self.in_flight = self.max_in_flight = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class Forward(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.relay(None)

    def do_POST(self):
        self.relay(self.rfile.read(int(self.headers.get("Content-Length", 0))))

    def relay(self, body: bytes | None):
        server = self.server
        with server.lock:
            server.requests.append((self.command, self.path, {k.lower(): v for k, v in self.headers.items()}))
            server.in_flight += 1
            server.max_in_flight = max(server.max_in_flight, server.in_flight)
        try:
            time.sleep(server.delay)  # long enough for a pool's calls to overlap
            own = server.answer(self.command, self.path, body or b"") if server.answer else None
            code, data = own or self.forward(body)
        finally:
            with server.lock:
                server.in_flight -= 1
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def forward(self, body: bytes | None) -> tuple[int, bytes]:
        request = urllib.request.Request(self.server.upstream + self.path, data=body, method=self.command)
        if body is not None:
            request.add_header("Content-Type", self.headers["Content-Type"])
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                return answer.status, answer.read()
        except urllib.error.HTTPError as err:  # Prometheus's 400/422 query errors, passed on as they are
            return err.code, err.read()

    def log_message(self, *args):
        pass


@pytest.fixture
def proxy():
    """proxy(upstream, delay=0, answer=None, tls=None) -> a started Recording server (HTTPS with an SSLContext);
    all are shut down after the test."""
    started = []

    def start(upstream: str, delay: float = 0.0, answer=None, tls: ssl.SSLContext | None = None) -> Recording:
        server = Recording(upstream, delay, answer)
        if tls is not None:
            server.socket = tls.wrap_socket(server.socket, server_side=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        started.append((server, thread))
        return server

    yield start
    for server, thread in started:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# --- the real platform's two states ------------------------------------------------------------------------
def test_reference_services_scraped_live_every_prometheus_panel_shows_data_and_nothing_drifts(
    built, reference, tmp_path
):
    options, read = reports(tmp_path)
    done = verify("--prometheus-url", reference, *options)
    assert done.returncode == 0, done.stdout + done.stderr
    data, md = read()
    panels = [p for p in data["panels"] if p["kind"] == "panel"]
    shown = sorted((p["dashboard"], p["panel"]) for p in panels if p["status"] == "data")
    assert shown == sorted(prometheus_panels(built))
    assert {p["status"] for p in panels if (p["dashboard"], p["panel"]) not in shown} <= {
        "not checked (LogQL)",
        "not checked (TraceQL)",
    }
    variables = [p for p in data["panels"] if p["kind"] == "variable"]
    assert variables and {v["status"] for v in variables} == {"data"}
    assert {r["status"] for r in data["rules"]} <= {"data", "empty"}
    assert data["summary"]["drift"] == 0 and not any(d["drift"] for d in data["catalog_drift"])
    # every job of the catalog was looked at, and the platform metrics on any job
    assert {d["service"] for d in data["catalog_drift"]} == set(service_metrics(built.catalog)) | {"platform"}
    assert data["summary"]["queries_run"] == planned_calls(built) and data["summary"]["queries_not_run"] == 0
    assert f"| {len(shown)} | 0 | 0 | 0 |" in md and "No drift." in md
    assert not data["notes"]  # types checked too: the scrape left the client's metadata


def rightly_empty_when_healthy(result) -> list[dict]:
    """Allow-empty entries for the panels values declare empty when healthy (every query of the panel), with the
    reason written there: what a team writes into its allow file."""
    entries = []
    for d in result.dashboards:
        for panel in panels_of(d.json):
            declared = d.panel_expect.get(panel.get("id"), {})
            refs = [t["refId"] for t in panel.get("targets", [])]
            reasons = [dict(declared.get("*", {}), **declared.get(ref, {})).get("healthy") for ref in refs]
            if refs and all(isinstance(r, dict) for r in reasons):
                entries.append({"dashboard": d.json["uid"], "panel": panel["title"], "reason": reasons[0]["empty"]})
    return entries


def test_a_healthy_platform_passes_the_gate_with_its_rightly_empty_panels_allowed(built, tmp_path):
    """No failure yet: the error counters are declared (HELP and TYPE served) but have no series, their panels
    are empty for the reason values give. With those panels allowed the deploy gate passes: a counter that
    never fired is a note, not drift."""
    allow = tmp_path / "allow-empty.yaml"
    entries = rightly_empty_when_healthy(built)
    allow.write_text("".join(f"- {json.dumps(e)}\n" for e in entries), encoding="utf-8")
    options, read = reports(tmp_path)
    healthy = next(s for s in scenarios_of(built) if s.name == "healthy")
    with scraped(built, tmp_path / "healthy", healthy) as live:
        done = verify("--prometheus-url", live.url, "--allow-empty", str(allow), *options)
    assert done.returncode == 0, done.stdout + done.stderr
    data, _ = read()
    assert entries and data["summary"]["panels"]["allowed empty"] == len(entries)
    assert data["summary"]["panels"]["empty"] == 0 and data["summary"]["drift"] == 0
    # the metrics healthy leaves without series are named as declared, not as missing
    notes = "\n".join(n for d in data["catalog_drift"] for n in d.get("notes", []))
    for metric in sorted(healthy.absent_metrics):
        if built.catalog[metric].labels:  # a labelled metric: declared at import, no series before its first use
            assert f"`{metric}` is declared but has no series yet" in notes, metric
    assert "note: " in done.stdout


def test_backfilled_data_pinned_with_end(built, busy, tmp_path):
    """A past window (--end): the live check's backfilled data, which has no metadata (types not checked)."""
    options, read = reports(tmp_path)
    done = verify("--prometheus-url", busy, "--end", END, *options)
    assert done.returncode == 0, done.stdout + done.stderr
    data, _ = read()
    assert (data["start"], data["end"]) == (rfc3339(synth.DEFAULT_WINDOW.start), END)
    assert data["summary"]["panels"]["data"] == len(prometheus_panels(built))
    assert data["notes"] == ["types not checked: the server has no metric metadata (/api/v1/metadata is empty)"]


def test_renamed_labels_fail_and_every_panel_reading_them_names_the_rename(built, renamed, tmp_path):
    options, read = reports(tmp_path)
    done = verify("--prometheus-url", renamed, *options)
    assert done.returncode == 1, done.stdout + done.stderr
    data, md = read()
    empty = [p for p in data["panels"] if p["status"] == "empty"]
    assert empty and not [p for p in data["panels"] if p["status"] == "error"]
    for panel in empty:  # each names the drift that explains it, on the terminal and in the report
        assert any(re.search(r"has `(handler|status_code)`, not `(endpoint|status)`", w) for w in panel["explained_by"])
        assert f"{panel['dashboard']} › {panel['panel']}: empty — " in done.stdout
    for label, exported in RENAMED.items():
        line = f"`http_requests_total` has `{exported}`, not `{label}` (values/metrics.yaml:"
        jobs = {d["service"] for d in data["catalog_drift"] if any(x.startswith(line) for x in d["lines"])}
        assert jobs == set(service_metrics(built.catalog)), line  # on every service's job
        assert f"drift: {line}" in done.stdout and line in md
    # the README's example of this output is this output (line numbers and the list of jobs aside: the catalog
    # grows, a service is added or removed the README's way)
    section = README.split("## Check against your Mimir", 1)[1].split("\n## ", 1)[0]
    example = re.search(r"\n   ```\n(.*?)\n   ```", section, re.S).group(1)
    jobs = ", ".join(sorted(service_metrics(built.catalog)))
    for line in example.splitlines():
        line = re.sub(r"^(drift: .*\)) on .*$", rf"\1 on {jobs}", line.strip())
        assert re.sub(r"yaml:\d+", "yaml:N", line) in re.sub(r"yaml:\d+", "yaml:N", done.stdout), line
    # every catalog metric a service exports with one of those labels, and nothing else
    services = set(service_metrics(built.catalog)) | {"all"}
    drifted = {
        (m.name, label)
        for m in built.catalog.values()
        if not m.recorded and m.service in services
        for label in RENAMED
        if label in m.labels
    }
    assert {(x["metric"], x["label"]) for d in data["catalog_drift"] for x in d.get("labels", [])} == drifted
    assert not any(d.get("missing") or d.get("types") for d in data["catalog_drift"])
    # every panel whose queries read a renamed label is named, the ones still showing data too (one unnamed
    # line for `by (endpoint)`, a calm 0 for a zero-guarded ratio over `status`)
    reading = re.compile(r"\b(" + "|".join(RENAMED) + r")\b")
    affected = [p for p in data["panels"] if any(reading.search(q["expr"]) for q in p["queries"])]
    assert any(p["status"] == "data" for p in affected)  # the silent kind is among them
    for panel in affected:
        assert panel["explained_by"], panel
        shown = "data, but it reads what drifts" if panel["status"] == "data" else panel["status"]
        assert f"{panel['dashboard']} › {panel['panel']}: {shown} — " in done.stdout
    assert data["summary"]["panels_reading_drift"] == sum(1 for p in data["panels"] if p["explained_by"])


def test_allowed_empty_panels_are_listed_with_their_reason_and_drift_still_fails(renamed, tmp_path):
    options, read = reports(tmp_path)
    first = verify("--prometheus-url", renamed, "--report-json", str(tmp_path / "first.json"))
    empty = [p for p in json.loads((tmp_path / "first.json").read_text())["panels"] if p["status"] == "empty"]
    allow = tmp_path / "allow-empty.yaml"
    allow.write_text(
        "".join(
            f"- {json.dumps({'dashboard': p['uid'], 'panel': p['panel'], 'reason': 'Renamed upstream.'})}\n"
            for p in empty
        )
    )
    done = verify("--prometheus-url", renamed, "--allow-empty", str(allow), *options)
    assert first.returncode == done.returncode == 1, done.stdout + done.stderr  # the drift itself still fails
    data, md = read()
    allowed = [p for p in data["panels"] if p["status"] == "allowed empty"]
    assert len(allowed) == len(empty) and {p["detail"] for p in allowed} == {"Renamed upstream."}
    assert data["summary"]["panels"]["empty"] == 0 and data["summary"]["panels"]["allowed empty"] == len(empty)
    assert "| allowed empty | Renamed upstream." in md
    assert ": empty" not in done.stdout


def test_allow_empty_with_an_unknown_panel_or_no_reason_is_a_file_line_error(busy, tmp_path):
    allow = tmp_path / "allow.yaml"
    allow.write_text(
        "- dashboard: API Gateway\n  panel: Errors by status code\n  reason: fine\n"
        "- dashboard: API Gateway\n  panel: Erors by status code\n  reason: typo\n"
        "- dashboard: API Gateway\n  panel: Errors by status code\n"
    )
    done = verify("--prometheus-url", busy, "--end", END, "--allow-empty", str(allow))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.splitlines() == [
        f"{allow}:5: [1].panel: no panel 'Erors by status code' on 'API Gateway' (did you mean 'Errors by status code'?)",
        f"{allow}:7: [2]: reason: a reason is required: why is this panel empty, rightly?",
    ]


# --- Mimir's way in: tenant, token, concurrency, budget ------------------------------------------------------
def readme_verify_commands() -> list[list[str]]:
    """The README's `nox -s verify -- ...` lines, as the tool's arguments."""
    lines = re.findall(r"^nox -s verify -- (.+)$", README, re.M)
    assert lines, "the README shows how to run verify against Mimir"
    return [shlex.split(line.split("  #", 1)[0]) for line in lines]


def test_readme_command_via_recording_proxy_standing_in_for_mimir_sends_tenant_and_token(reference, proxy, tmp_path):
    """The README's command as written, its URL pointed at the proxy in front of the scraped reference services
    and its allow-empty file the README's example: every request carries the tenant and the token, and the token
    is in no output."""
    section = README.split("## Check against your Mimir", 1)[1].split("\n## ", 1)[0]
    mimir = proxy(reference)
    token = "tok-" + "5ecret" * 4
    (args,) = readme_verify_commands()
    env_var = args[args.index("--bearer-token-env") + 1]
    tenant = args[args.index("--tenant") + 1]
    allow = tmp_path / "allow-empty.yaml"
    allow.write_text(re.search(r"```yaml\n(.*?)```", section, re.S).group(1))
    args[args.index("--allow-empty") + 1] = str(allow)
    args[args.index("--prometheus-url") + 1] = mimir.url
    for option in ("--report-md", "--report-json"):
        args[args.index(option) + 1] = str(tmp_path / args[args.index(option) + 1])
    done = verify(*args, env={env_var: token})
    assert done.returncode == 0, done.stdout + done.stderr
    assert mimir.requests and all(
        h.get("x-scope-orgid") == tenant and h.get("authorization") == f"Bearer {token}" for _, _, h in mimir.requests
    )
    written = [p for p in tmp_path.glob("**/*") if p.is_file()]
    for text in [done.stdout, done.stderr, *(p.read_text() for p in written)]:
        assert "5ecret" not in text


def test_basic_auth_via_recording_proxy_standing_in_for_mimir_and_concurrency_is_bounded(busy, proxy, tmp_path):
    mimir = proxy(busy, delay=0.01)
    user, password = "reader", "pa55-" + "w0rd" * 4
    options, read = reports(tmp_path)
    done = verify(
        "--prometheus-url", mimir.url, "--end", END, "--concurrency", "3", "--basic-auth-env", "MIMIR_USER", "MIMIR_PASS",
        *options, env={"MIMIR_USER": user, "MIMIR_PASS": password},
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    basic = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    assert {h.get("authorization") for _, _, h in mimir.requests} == {basic}
    assert "x-scope-orgid" not in mimir.requests[0][2]  # no --tenant, no header
    assert mimir.max_in_flight == 3  # asked together, never more than --concurrency
    for text in [done.stdout, done.stderr, *(json.dumps(r) if isinstance(r, dict) else r for r in read())]:
        assert "w0rd" not in text and basic.split()[1] not in text


def test_a_budget_too_small_for_the_tree_is_refused_before_anything_is_sent(built, busy, proxy):
    mimir = proxy(busy)
    needed = planned_calls(built)
    done = verify("--prometheus-url", mimir.url, "--end", END, "--max-queries", str(needed - 1))
    assert done.returncode == 2 and mimir.requests == []
    assert done.stderr == f"--max-queries {needed - 1}: this tree needs {needed} API calls; nothing was sent\n"
    done = verify("--prometheus-url", mimir.url, "--end", END, "--max-queries", str(needed))
    assert done.returncode == 0 and len(mimir.requests) == needed, done.stdout + done.stderr


def test_the_client_itself_never_sends_past_its_budget(busy):
    remote = Remote(busy, timeout=5, max_queries=2)
    remote.probe(synth.DEFAULT_WINDOW.end)
    assert remote.query("1", synth.DEFAULT_WINDOW.end)["status"] == "success"
    refused = remote.query("1", synth.DEFAULT_WINDOW.end)
    assert refused["errorType"] == "budget" and (remote.used, remote.refused) == (2, 1)


def test_a_missing_token_variable_is_one_line_and_nothing_is_sent(busy, proxy):
    mimir = proxy(busy)
    env = {k: v for k, v in os.environ.items() if k != "DASHKIT_TEST_NO_TOKEN"}
    done = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "verify.py"), "--prometheus-url", mimir.url, "--bearer-token-env",
         "DASHKIT_TEST_NO_TOKEN"],
        capture_output=True, text=True, timeout=120, env={**env, "PYTHONPATH": str(ROOT)}, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 2 and mimir.requests == []
    assert done.stderr == "environment variable DASHKIT_TEST_NO_TOKEN is not set (named on the command line)\n"


# --- servers that cannot be used, and queries that fail ------------------------------------------------------
class Answers(http.server.BaseHTTPRequestHandler):
    """/5xx: 503 to everything; /html: a login page with 200."""

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body, code = (b"<html>Sign in</html>", 200) if self.path.startswith("/html") else (b"overloaded\n", 503)
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST

    def log_message(self, *args):
        pass


@pytest.fixture
def answers():
    with loopback(Answers) as url:
        yield url


def test_an_unusable_server_is_one_line_and_exit_2(answers):
    with socket.socket() as silent, socket.socket() as closed:
        silent.bind(("127.0.0.1", 0))
        silent.listen()  # accepts, never answers
        closed.bind(("127.0.0.1", 0))  # bound, not listening: refused
        cases = {
            f"http://127.0.0.1:{silent.getsockname()[1]}": "no answer within 0.5 s",
            f"http://127.0.0.1:{closed.getsockname()[1]}": "refused",
            f"{answers}/5xx": "HTTP 503 Service Unavailable: overloaded",
            f"{answers}/html": "the answer is not JSON (is this the Prometheus API base URL?)",
        }
        for url, says in cases.items():
            started = time.monotonic()
            done = verify("--prometheus-url", url, timeout=0.5)
            assert done.returncode == 2, (url, done.stdout, done.stderr)
            assert done.stderr.startswith(f"{url}/api/v1/query: ") and done.stderr.count("\n") == 1, done.stderr
            assert says in done.stderr and "Traceback" not in done.stderr and done.stdout == ""
            assert time.monotonic() - started < 30


def test_a_server_failing_mid_run_stops_after_five_failures_in_a_row(busy, proxy):
    asked = []

    def fail_after_probe(method, path, body):
        asked.append(path)
        return (503, b"ingester down\n") if len(asked) > 1 else None

    mimir = proxy(busy, answer=fail_after_probe)
    done = verify("--prometheus-url", mimir.url, "--end", END, "--concurrency", "1")
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.count("\n") == 1 and "HTTP 503 Service Unavailable: ingester down" in done.stderr
    assert "(5 calls in a row failed: stopped asking)" in done.stderr and len(asked) == 6  # the probe and 5


def test_a_query_the_server_refuses_is_that_panels_error(built, busy, proxy, tmp_path):
    """Prometheus and Mimir answer a query they refuse (too many series, bad data) with 422/400 and a JSON
    error: that panel's error, named, and the run goes on."""
    metric = "api_gateway_active_connections"
    refusal = json.dumps({"status": "error", "errorType": "execution", "error": "expanding series: limit reached"})

    def refuse(method, path, body):
        return (422, refusal.encode()) if path.startswith("/api/v1/query") and metric.encode() in body else None

    options, read = reports(tmp_path)
    done = verify("--prometheus-url", proxy(busy, answer=refuse).url, "--end", END, *options)
    assert done.returncode == 1, done.stdout + done.stderr
    data, _ = read()
    reading = {
        (d.json["title"], p["title"])
        for d in built.dashboards
        for p in panels_of(d.json)
        if any(metric in t.get("expr", "") for t in p.get("targets", []))
    }
    failed = {(p["dashboard"], p["panel"]) for p in data["panels"] if p["status"] == "error"}
    assert reading and failed == reading
    assert all("expanding series: limit reached" in p["detail"] for p in data["panels"] if p["status"] == "error")
    assert data["summary"]["panels"]["data"] == len(prometheus_panels(built)) - len(reading)


def test_metrics_url_and_prometheus_url_together(busy, tmp_path):
    from prometheus_client import CollectorRegistry, Gauge, start_http_server

    registry = CollectorRegistry()
    Gauge("up", "scraped", registry=registry).set(1)
    server, thread = start_http_server(0, addr="127.0.0.1", registry=registry)
    port = server.server_port
    try:
        options, read = reports(tmp_path)
        url = f"http://127.0.0.1:{port}/metrics"
        done = verify("--metrics-url", url, "--job", "api-gateway", "--prometheus-url", busy, "--end", END, *options)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
    assert done.returncode == 1, done.stdout + done.stderr  # the endpoint lacks the catalog's metrics
    data, md = read()
    assert data["metrics_endpoints"]["drift"] is True and data["summary"]["drift"] == 0
    assert md.startswith("# Catalog drift") and "# Verify against" in md


# --- types, from what a real scrape left in the server's metadata ------------------------------------------
@pytest.fixture
def scraping(tmp_path):
    """scraping(job, target) -> the URL of a real Prometheus scraping `target` every second as `job`, once two
    scrapes in a row succeeded and its metadata has arrived; stopped (by its PID) after the test."""
    started = []

    def start(job: str, target: str) -> str:
        prom = Prometheus(tmp_path / "tsdb", workdir=tmp_path, scrape={"interval": 1, "jobs": {job: [target]}})
        started.append(prom)
        prom.start()
        # metadata alone is no sign: runs found it before the service's own series, so two good scrapes too
        scrapes = f'sum_over_time(up{{job="{job}"}}[1m]) >= 2'
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if prom.query(scrapes, int(time.time()))["data"]["result"] and prom.api("/api/v1/metadata")["data"]:
                return prom.url
            time.sleep(0.2)
        raise AssertionError(
            f"two scrapes and metadata not there within 30 s: {(tmp_path / 'prometheus.log').read_text()}"
        )

    yield start
    for prom in started:
        prom.stop()


def test_a_type_that_disagrees_with_the_servers_metadata_is_drift(built, scraping, tmp_path):
    """A counter the service declares as a gauge: Prometheus keeps the declared type from the scrape, and the
    same comparison as --metrics-url names it."""
    from prometheus_client import start_http_server
    from test_verify import SERVICE, registry

    server, thread = start_http_server(0, addr="127.0.0.1", registry=registry(built.catalog, retyped={
        "api_gateway_auth_failures_total": "gauge"}))  # fmt: skip
    port = server.server_port
    try:
        options, read = reports(tmp_path)
        done = verify("--prometheus-url", scraping(SERVICE, f"127.0.0.1:{port}"), "--range", "5m", *options)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
    assert done.returncode == 1, done.stdout + done.stderr
    line = "`api_gateway_auth_failures_total` is a gauge, the catalog says counter (values/metrics.yaml:"
    assert f"drift: {line}" in done.stdout and f"{line}" in read()[1]
    (gateway,) = [d for d in read()[0]["catalog_drift"] if d["service"] == SERVICE]
    assert [t["metric"] for t in gateway["types"]] == ["api_gateway_auth_failures_total"]
    assert not gateway["missing"] and not gateway["labels"]  # the reference service exports the rest as written
    assert "types not checked" not in done.stdout


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not on PATH: no certificate to test TLS with")
def test_tls_is_verified_unless_told_otherwise(busy, proxy, tmp_path):
    """A self-signed certificate: refused by default (one line), trusted with --ca-file, or not verified."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    mimir = proxy(busy, tls=context)
    url = mimir.url.replace("http://", "https://")
    refused = verify("--prometheus-url", url, "--end", END)
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1 and "Traceback" not in refused.stderr
    assert refused.stderr.startswith(f"{url}/api/v1/query: TLS certificate not trusted (self") and not mimir.requests
    assert verify("--prometheus-url", url, "--end", END, "--ca-file", str(cert)).returncode == 0
    assert verify("--prometheus-url", url, "--end", END, "--insecure-skip-verify").returncode == 0
    assert mimir.requests

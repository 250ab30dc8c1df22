"""The live check's scrape mode: reference services (the real prometheus_client, over HTTP on 127.0.0.1) scraped
by Debian's real Prometheus with the project's rule files, then every panel, variable and alert.

Each scrape takes ~15 s (Prometheus scrapes every target several times and evaluates every rule group before the
queries run), so this module runs four of them.
"""

from __future__ import annotations

import shutil
import time
import urllib.request
from pathlib import Path

import pytest

from dashkit.live.reference_service import ReferenceServices, playable
from dashkit.live.run import scenarios_of
from dashkit.live.scrape import live_scraped, rule_states, scraped
from dashkit.live.synth import BUSY, PLATFORM_JOB, Scenario
from dashkit.panels import panels_with_state
from dashkit.pipeline import build
from dashkit.verify import parse, verify

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(shutil.which("prometheus") is None, reason="Debian's prometheus is not installed")


@pytest.fixture(scope="module")
def tree():
    return build(ROOT)


def scenario(tree, name: str) -> Scenario:
    return next(s for s in scenarios_of(tree) if s.name == name)


def test_reference_services_export_what_the_catalog_says_through_the_real_client(tree):
    """Every served job's /metrics, read over HTTP and parsed by the client's own parser, has no drift from the
    catalog: every metric, type and label of its service (and `service: all`) is there."""
    with ReferenceServices(tree.catalog, tree.services, BUSY) as ref:
        urls = ref.urls()
        assert set(urls) == set(tree.services) | {PLATFORM_JOB}
        for job in sorted(tree.services):
            text = urllib.request.urlopen(urls[job], timeout=10).read().decode()
            found = verify(urls[job], text, tree.catalog, lambda *path: "values/metrics.yaml", job)
            assert not found.drift, found.lines()
            # what the plain client adds and a real service therefore carries: *_created series, python_info
            families = parse(urls[job], text)
            assert "python_info" in families
            assert any(name.endswith("_created") for f in families.values() for name in f.series)


def test_a_scenario_that_needs_time_to_pass_is_left_to_the_backfilled_check(tree):
    """A running service holds a state; a restart or a target that vanished mid-window is history."""
    for s in scenarios_of(tree):
        kinds = {e["kind"] for e in s.events}
        assert (playable(s) is None) == kinds.isdisjoint({"restart"}), s.name
    timed = [s for s in scenarios_of(tree) if playable(s)]
    if timed:
        with pytest.raises(ValueError, match="backfilled live check"):
            ReferenceServices(tree.catalog, tree.services, timed[0])


def test_a_port_taken_between_being_picked_and_bound_stops_nothing_race_simulated(tree, tmp_path, monkeypatch):
    """A port found free is free only until something takes it: an outgoing connection or another program
    may get it before a server binds it. The race is simulated for Prometheus: the first ports it "finds
    free" are one this test serves, answering 200 to any request as a careless server would; Prometheus finds
    that server answering in its place and tries another port. The reference services bind port 0 and take
    the kernel's: none of them answers on the taken port, and each answers on its own."""
    import http.server
    import threading

    from dashkit.live import prometheus

    class Anything(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b'{"status": "success", "data": {}}')

        def log_message(self, *args):
            pass

    other = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Anything)
    serving = threading.Thread(target=other.serve_forever, daemon=True)
    serving.start()
    try:
        taken = other.server_port
        with ReferenceServices(tree.catalog, tree.services, BUSY) as ref:
            for job, url in sorted(ref.urls().items()):
                assert f":{taken}/" not in url, job
                assert "# TYPE" in urllib.request.urlopen(url, timeout=10).read().decode(), job
        picks, free_port = iter([taken, taken]), prometheus.free_port
        monkeypatch.setattr(prometheus, "free_port", lambda: next(picks, None) or free_port())
        with prometheus.Prometheus(tmp_path / "tsdb", workdir=tmp_path) as prom:
            assert prom.port != taken
            assert prom.api("/api/v1/status/buildinfo")["data"]["version"]
    finally:
        other.shutdown()
        other.server_close()
        serving.join(timeout=5)


def test_a_down_services_port_stays_refused_while_the_check_runs(tree):
    """A `down` service's target must refuse every scrape: its port is held (bound, not listening) for as long
    as the services run, so nothing that binds a port meanwhile, the other services' servers included, can
    answer there."""
    import socket

    job = sorted(tree.services)[0]
    with ReferenceServices(
        tree.catalog, tree.services, Scenario("down-now", events=({"kind": "down", "service": job},))
    ) as ref:
        down = next(j for j in ref.jobs if j.name == job)
        assert down.registry is None and down.port
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            assert probe.connect_ex(("127.0.0.1", down.port)) != 0  # refused
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as other, pytest.raises(OSError):
            other.bind(("127.0.0.1", down.port))  # nobody else can take it


def test_prometheus_interrupted_while_it_starts_is_stopped(tmp_path, monkeypatch):
    """Ctrl-C while Prometheus starts: the `with` block was never entered, so nothing else would stop it."""
    import subprocess

    from dashkit.live import prometheus

    started, popen = [], subprocess.Popen

    def recorded(*args, **kwargs):
        started.append(popen(*args, **kwargs))
        return started[-1]

    def interrupted(self):
        raise KeyboardInterrupt

    monkeypatch.setattr(prometheus.subprocess, "Popen", recorded)
    monkeypatch.setattr(prometheus.Prometheus, "_ours_ready", interrupted)
    with pytest.raises(KeyboardInterrupt):
        prometheus.Prometheus(tmp_path / "tsdb", workdir=tmp_path).start()
    assert len(started) == 1
    assert started[0].poll() is not None, "prometheus was left running"


def test_healthy_platform_scraped_live_passes_every_check(tree, tmp_path):
    """The whole path is real: client -> exposition -> scrape -> rules -> PromQL -> panel. No finding, every
    panel that must show data does, and no alert holds."""
    report, _, counts = live_scraped(tree, tmp_path, scenario(tree, "healthy"))
    assert report.ok, "\n".join(map(str, report.findings))
    prometheus_targets = sum(
        len(p.get("targets", []))
        for d in tree.dashboards
        for p, _ in panels_with_state(d.json)
        if p.get("datasource", {}).get("type") == "prometheus"
    )
    assert report.targets == prometheus_targets
    assert counts["jobs"] == len(tree.services) + 1
    assert all(a.prometheus == "inactive" for a in report.alerts), [a.line() for a in report.alerts]
    assert len(report.alerts) == len(tree.rules.alerts)


def test_a_service_exporting_other_label_names_is_caught_on_the_panels_that_read_them(tree, tmp_path):
    """One service exports `handler` and `status_code` instead of the catalog's `endpoint` and `status`, as
    starlette-exporter does. Its zero-guarded panels would calmly show 0 and its `by (endpoint)` panels one
    unnamed series; the check names each of them, and only on that service."""
    job = "api-gateway" if "api-gateway" in tree.services else sorted(tree.services)[0]
    renames = {job: {"endpoint": "handler", "status": "status_code"}}
    report, _, _ = live_scraped(tree, tmp_path, scenario(tree, "healthy"), renames=renames)
    title = next(d.json["title"] for d in tree.dashboards if d.job == job)
    assert report.findings
    assert {f.where.split(" › ")[0] for f in report.findings} == {title}
    messages = "\n".join(f.message for f in report.findings)
    assert "none carries the label `status`" in messages
    assert "grouped by endpoint, but no series has it" in messages
    # every finding reads a label the service renamed
    for finding in report.findings:
        assert "status" in finding.expr or "endpoint" in finding.expr, finding


def test_a_service_that_stops_answering_is_down_and_service_down_holds_only_for_it(tree, tmp_path):
    """A `down` service's target answers nothing: Prometheus itself writes up == 0, and the project's ServiceDown
    rule (evaluated live by Prometheus) holds for that service and no other."""
    job = sorted(tree.services)[0]
    state = Scenario("down-now", events=({"kind": "down", "service": job},))
    with scraped(tree, tmp_path, state) as live:
        answer = live.prometheus.query("up", int(time.time()))
        ups = {s["metric"]["job"]: float(s["value"][1]) for s in answer["data"]["result"]}
        assert ups.pop(job) == 0.0
        assert ups and all(v == 1.0 for v in ups.values())
        states = rule_states(live.prometheus)
    down = {group for (group, alert), s in states.items() if alert == "ServiceDown" and s in ("pending", "firing")}
    service_down = [r for r in tree.rules.alerts if r.spec.name == "ServiceDown"]
    assert down == {r.ruler_group for r in service_down if r.group == job}

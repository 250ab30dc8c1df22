"""Reference services: the catalog's metrics served through the official prometheus_client, as a PyAirtable
service would serve them, with traffic driven by a scenario of values/scenarios.yaml.

One CollectorRegistry and one HTTP server (the client's own `start_http_server`) per job, on 127.0.0.1.
Metrics are declared with the client's Counter, Gauge and Histogram (its default buckets, as a service that
does not choose its own has them), plus the client's platform and GC collectors a real service carries. A
labelled series exists only once it is first incremented or set, exactly as with the client in a service:
which series exist, and how fast they move, is the scenario's state at its end (synth.shape_for), held
from the start. A `down` service has a target nobody answers on (up == 0); an `absent` one is not served
and not scraped. Labels can be renamed per job to play a service that names things differently.

`process_cpu_seconds_total` and `process_resident_memory_bytes` are declared by hand and driven by the
scenario instead of read by the client's ProcessCollector: all jobs live in this one process, so the real
numbers would be the same for every service and a scenario could not move them.
"""

from __future__ import annotations

import functools
import math
import random
import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector

from ..specs import Catalog, MetricSpec
from ..verify import NOT_EXPORTED
from .synth import NO_HINTS, PLATFORM_JOB, Scenario, _is_error, _latest, _rate_at, _wave, label_sets, shape_for

TICK = 0.25  # seconds between traffic steps
N = 1000  # the scenario's length in synth's samples; a live service holds the state at its last sample
# Events that need time to pass (a restart: counters that fell back to zero) are not a state a service holds:
# the backfilled live check plays them.
TIMELESS_EVENTS = {"rate", "latency", "gauge", "down", "absent"}
KINDS = {"counter": Counter, "gauge": Gauge, "histogram": Histogram}


def jobs_of(metric: MetricSpec, services: Mapping[str, int]) -> list[str]:
    if metric.service == "all":
        return sorted(services)
    if metric.service == "platform":
        return [PLATFORM_JOB]
    return [metric.service] if metric.service in services else []


def _per_service_containers(metric: MetricSpec, services: Mapping[str, int]) -> MetricSpec:
    """A cluster exporter's container series, one per service: the catalog's `container` values are examples,
    and each service runs in a container named after its job (values/metrics.yaml), a service added since
    included."""
    if metric.service != "platform" or "container" not in metric.labels:
        return metric
    return metric._replace(labels={**metric.labels, "container": sorted(services)})


def playable(scenario: Scenario) -> str | None:
    """None when the scenario is a state a running service can hold; else why it is not."""
    kinds = sorted({e["kind"] for e in scenario.events} - TIMELESS_EVENTS)
    if kinds:
        return f"its {', '.join(kinds)} event(s) need time to pass: the backfilled live check plays it"
    return None


@dataclass
class Series:
    """One labelled series of one metric and what it does each tick."""

    child: object  # the client's metric (or its labelled child)
    kind: str
    per_second: float = 0.0  # counter increments, histogram observations
    median: float = 0.0  # histogram: the median duration
    value: float | None = None  # gauge: held value, else it moves between low and high
    low: float = 0.0
    high: float = 0.0
    phase: float = 0.0
    owed: float = 0.0  # histogram observations not yet made (the fraction left of the last tick)


@dataclass
class Job:
    name: str
    registry: CollectorRegistry | None  # None: down or absent, nothing answers
    port: int
    scraped: bool  # False: gone from service discovery
    series: list[Series] = field(default_factory=list)

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"


def build_jobs(
    catalog: Catalog,
    services: Mapping[str, int],
    scenario: Scenario,
    renames: Mapping[str, Mapping[str, str]] | None = None,
    seed: int = 7,
) -> list[Job]:
    """Every job's registry, metrics and series for the scenario (nothing served yet). renames: job ->
    {catalog label: the label that job exports instead}."""
    renames = renames or {}
    rng = random.Random(seed)
    gone = {e["service"]: e["kind"] for e in scenario.events if e["kind"] in ("down", "absent")}
    jobs = {}
    for name in [*sorted(services), PLATFORM_JOB]:
        registry = None if name in gone else CollectorRegistry()
        if registry is not None and name != PLATFORM_JOB:  # what a service's client exports besides its own
            PlatformCollector(registry=registry)
            GCCollector(registry=registry)
        jobs[name] = Job(name, registry, 0, scraped=gone.get(name) != "absent")  # its port: ReferenceServices
    for metric_name in sorted(catalog):
        metric = catalog[metric_name]
        if metric.recorded or metric_name in NOT_EXPORTED:  # what no service's /metrics carries
            continue
        for job_name in jobs_of(metric, services):
            job, renamed = jobs[job_name], renames.get(job_name, {})
            names = [renamed.get(k, k) for k in sorted(metric.labels)]
            declare = functools.partial(KINDS[metric.type], metric.name, metric.help or metric.name, names)
            declared = None
            if names and job.registry is not None:
                # declared at import, as services do: HELP and TYPE are served before the first series exists
                declared = declare(registry=job.registry)
            for labels in label_sets(_per_service_containers(metric, services), 0):
                phase = rng.random() * 2 * math.pi  # drawn for every series, so scenarios share their base
                shape = shape_for(scenario, metric_name, metric, job_name, {"job": job_name, **labels}, N, 15, "", 0)
                if shape is None or job.registry is None:
                    continue  # the client creates a labelled series on its first increment: none yet
                if declared is None:  # an unlabelled metric is served (at 0) from its declaration: declared with it
                    declared = declare(registry=job.registry)
                exported = {renamed.get(k, k): v for k, v in labels.items()}
                child = declared.labels(**exported) if exported else declared
                job.series.append(_start(metric, child, labels, shape, phase))
    return list(jobs.values())


def _start(metric: MetricSpec, child, labels: dict, shape, phase: float) -> Series:
    """The series as its scenario leaves it, created in the client the way a service creates it."""
    hint = metric.synthetic
    series = Series(child, metric.type, phase=phase)
    if metric.type == "gauge":
        held = _latest(shape.gauge, N - 1)
        series.low, series.high = (
            (shape.bounds.get("min", NO_HINTS.min), shape.bounds.get("max", NO_HINTS.max))
            if shape.bounds
            else (hint.min, hint.max)
        )
        series.value = held[0] if held is not None else None
        step(series, 0, 0.0, random.Random(0))
        return series
    base = hint.rate * (0.02 if metric.type == "counter" and _is_error(labels) else 1.0)
    series.per_second = _rate_at(N - 1, N, phase, base, shape)
    if metric.type == "counter":
        # created by its first increment (an event's first failure counts 1, as synth has it); else exported at 0
        child.inc(1.0 if shape.born else 0.0)
    else:
        spike = _latest(shape.latency, N - 1)
        series.median = hint.median * (spike[0] if spike is not None else 1.0)
    return series


def step(series: Series, tick: int, seconds: float, rng: random.Random) -> None:
    """What one series does over `seconds` of traffic."""
    if series.kind == "gauge":
        value = series.value
        if value is None:
            value = series.low + (series.high - series.low) * _wave(N - 1 + tick, N, series.phase)
        series.child.set(value)
    elif series.kind == "counter":
        series.child.inc(series.per_second * seconds)
    else:
        series.owed += series.per_second * seconds
        while series.owed >= 1.0:
            series.owed -= 1.0
            series.child.observe(rng.lognormvariate(math.log(series.median), 0.8))


class ReferenceServices:
    """`with ReferenceServices(catalog, services, scenario) as ref: ref.jobs` -- every job served on 127.0.0.1
    (its /metrics at http://TARGET/metrics) and its traffic running, until the block ends."""

    def __init__(self, catalog: Catalog, services: Mapping[str, int], scenario: Scenario, renames=None, seed=7):
        why = playable(scenario)
        if why:
            raise ValueError(f"scenario {scenario.name} cannot be served live: {why}")
        self.jobs = build_jobs(catalog, services, scenario, renames, seed)
        self._servers: list = []
        self._held: list[socket.socket] = []  # the down jobs' ports
        self._stop = threading.Event()
        self._traffic = threading.Thread(target=self._run, args=(seed,), name="reference-traffic", daemon=True)

    def __enter__(self) -> ReferenceServices:
        try:
            for job in self.jobs:
                # Port 0: the kernel gives a free one as the socket binds. A port found free beforehand could be
                # taken meanwhile (any outgoing connection may get it): a served job's server would fail to start,
                # a down job's target could answer.
                if job.registry is not None:
                    server, thread = start_http_server(0, addr="127.0.0.1", registry=job.registry)
                    self._servers.append((server, thread))
                    job.port = server.server_port
                else:  # down: a port held but not listening, so every scrape of it is refused
                    held = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                    self._held.append(held)
                    held.bind(("127.0.0.1", 0))
                    job.port = held.getsockname()[1]
        except BaseException:
            self.stop()
            raise
        self._traffic.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def urls(self) -> dict[str, str]:
        """job -> its /metrics URL, for the jobs that answer."""
        return {job.name: f"http://{job.target}/metrics" for job in self.jobs if job.registry is not None}

    def _run(self, seed: int) -> None:
        rng = random.Random(seed)
        tick, last = 0, time.monotonic()
        while not self._stop.wait(TICK):
            now = time.monotonic()
            tick += 1
            for job in self.jobs:
                for series in job.series:
                    step(series, tick, now - last, rng)
            last = now

    def stop(self) -> None:
        self._stop.set()
        if self._traffic.is_alive():
            self._traffic.join(timeout=5)
        for server, thread in self._servers:
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)
        self._servers.clear()
        for held in self._held:
            held.close()
        self._held.clear()

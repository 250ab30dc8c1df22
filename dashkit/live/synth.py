"""Synthetic metrics from the catalog, as OpenMetrics text for `promtool tsdb create-blocks-from openmetrics`.

Deterministic (seeded): counters only go up (resetting at a restart), gauges move between their catalog
`synthetic` min and max, histogram buckets are cumulative and agree with _sum and _count. A Scenario
(values/scenarios.yaml) decides which series exist and how its events bend them; the busy dataset of the
cost report has every series, error bursts and one restart.
"""

from __future__ import annotations

import itertools
import math
import random
import re
from dataclasses import dataclass, field

from ..specs import Catalog, MetricSpec, Synthetic

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, math.inf)
ERROR_VALUES = {
    "error",
    "timeout",
    "5xx",
    "4xx",
    "invalid_request",
    "internal_error",
    "method_not_found",
    "failed",
    "failure",
}
PLATFORM_JOB = "chaos-controller"
MAX_PRODUCT = 40  # label combinations per metric and job before we cycle instead of taking every product
NO_HINTS = Synthetic()  # the catalog's defaults, for a scenario's gauge bounds that leave one out


@dataclass(frozen=True)
class Window:
    start: int  # unix seconds, inclusive
    end: int  # unix seconds, the last sample
    step: int  # seconds

    @property
    def times(self) -> range:
        return range(self.start, self.end + 1, self.step)


# 2026-01-01T00:00:00Z .. +6h, 15 s apart: fixed, so the data (and every query result) is reproducible.
DEFAULT_WINDOW = Window(1767225600, 1767225600 + 6 * 3600, 15)


@dataclass(frozen=True)
class Preset:
    name: str
    instances: int  # instances per job
    label_scale: int  # extra synthetic values per label (cardinality), 0 = the catalog's own
    max_product: int  # label combinations per metric and job before cycling instead of the full product
    window: Window


PRESETS = {
    # every label value of the catalog, one instance per job, 6 h at a 15 s scrape: the live check
    "default": Preset("default", 1, 0, MAX_PRODUCT, DEFAULT_WINDOW),
    # over 100,000 series: 31 instances per job, two more values per label; 6 h at a 60 s scrape so the
    # text for promtool stays near 5 GB (the cost report, nox -s cost)
    "large": Preset("large", 31, 2, 100, Window(DEFAULT_WINDOW.start, DEFAULT_WINDOW.end, 60)),
}


def jobs_for(metric: MetricSpec, services: dict[str, int]) -> list[tuple[str, int]]:
    owner = metric.service
    if owner == "all":
        return sorted(services.items())
    if owner == "platform":
        return [(PLATFORM_JOB, 9000)]
    return [(owner, services[owner])]


def label_sets(metric: MetricSpec, scale: int, max_product: int = MAX_PRODUCT) -> list[dict]:
    labels = {k: [str(v) for v in vs] for k, vs in sorted(metric.labels.items())}
    if scale:
        labels = {k: vs + [f"{vs[0]}-{i}" for i in range(scale)] for k, vs in labels.items()}
    if not labels:
        return [{}]
    names = list(labels)
    size = math.prod(len(v) for v in labels.values())
    if size <= max_product:
        return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*labels.values())]
    longest = max(len(v) for v in labels.values())
    return [{n: labels[n][k % len(labels[n])] for n in names} for k in range(longest)]


def _is_error(labels: dict) -> bool:
    return any(v in ERROR_VALUES or (len(v) == 3 and v[0] == "5" and v.isdigit()) for v in labels.values())


def _fmt(value: float) -> str:
    return repr(round(value, 6)) if not float(value).is_integer() else str(int(value))


def _labels_text(name: str, labels: dict) -> str:
    inner = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    return f"{name}{{{inner}}}"


@dataclass(frozen=True)
class Scenario:
    """A state of the platform (values/scenarios.yaml), turned into what the generator does per series."""

    name: str
    description: str = ""
    errors_absent: bool = False  # error-like series do not exist (a labelled child appears on its first increment)
    absent_metrics: frozenset = frozenset()
    only_standard: str | None = None  # the reason panels of other metrics may be empty
    bursts: bool = True
    restarts: bool = True
    gauges: tuple = ()  # (metric, {min, max}) overrides
    events: tuple = ()  # event dicts as written
    alerts: tuple = ()  # (alert, service, severity) that fire, exactly
    like: str | None = None  # panels expect here what they declare for that scenario

    @classmethod
    def from_values(cls, name: str, doc: dict) -> Scenario:
        return cls(
            name,
            doc.get("description", ""),
            doc.get("errors") == "absent",
            frozenset(doc.get("absent_metrics", [])),
            doc.get("only_standard"),
            doc.get("bursts", False),
            doc.get("restarts", False),
            tuple(sorted(doc.get("gauges", {}).items())),
            tuple(doc.get("events", [])),
            tuple(sorted((a["alert"], a["service"], a["severity"]) for a in doc.get("alerts", []))),
            doc.get("like"),
        )

    def exported(self, name: str, metric: MetricSpec) -> bool:
        if name in self.absent_metrics:
            return False
        return not (self.only_standard and metric.service != "all")


# The friendly dataset of the cost report: every series exists, error series burst once, one restart.
BUSY = Scenario("busy", "Every metric present, errors bursting once, one restart.")


def _event_start(event: dict, n: int, step: int) -> int:
    return max(0, n - 1 - (event.get("minutes", 30) * 60) // step)  # the sample at end - minutes


def _matches(event: dict, name: str, job: str, labels: dict) -> bool:
    if event["service"] != job and not (event["service"] == "platform" and job == PLATFORM_JOB):
        return False
    if event.get("metric") not in (None, name):
        return False
    return all(re.fullmatch(pattern, labels.get(key, "")) for key, pattern in event.get("labels", {}).items())


@dataclass
class Shape:
    """What one series does over the window: which samples exist and how events bend it."""

    first: int  # index of its first sample
    last: int  # one past its last sample
    restart: int | None = None
    burst_start: int | None = None
    rate: list = field(default_factory=list)  # (from index, factor or None, per_second or None)
    latency: list = field(default_factory=list)  # (from index, factor)
    gauge: list = field(default_factory=list)  # (from index, value)
    bounds: dict | None = None  # gauge min/max override
    born: bool = False  # created mid-window by its first increment: a client exports it from 1, never from 0


def shape_for(
    scenario: Scenario,
    name: str,
    metric: MetricSpec,
    job: str,
    labels: dict,
    n: int,
    step: int,
    restart_job: str,
    burst_start: int,
) -> Shape | None:
    """None when the series does not exist at all in this scenario."""
    shape = Shape(0, n)
    if scenario.restarts and job == restart_job:
        shape.restart = n // 3
    error = _is_error(labels)
    if scenario.bursts and (metric.synthetic.burst or error):
        shape.burst_start = burst_start
    if metric.type == "gauge":
        shape.bounds = dict(scenario.gauges).get(name)
    created_by_event = None
    for event in scenario.events:
        begin = _event_start(event, n, step)
        kind = event["kind"]
        if kind in ("down", "absent") and event["service"] == job:
            if kind == "down" and name == "up":
                shape.gauge.append((begin, 0.0))  # the target answers no scrape, so only `up` is written
            else:
                shape.last = min(shape.last, begin)
        elif kind == "restart" and event["service"] == job:
            shape.restart = begin
        elif _matches(event, name, job, labels):
            if kind == "rate":
                shape.rate.append((begin, event.get("factor"), event.get("per_second")))
                created_by_event = begin if created_by_event is None else min(created_by_event, begin)
            elif kind == "latency":
                shape.latency.append((begin, event["factor"]))
            elif kind == "gauge":
                shape.gauge.append((begin, float(event["value"])))
    if not scenario.exported(name, metric) or (scenario.errors_absent and error):
        if created_by_event is None:
            return None  # a client library creates the labelled series on its first increment
        shape.first, shape.born = created_by_event, True
    return shape if shape.first < shape.last else None


def generate(
    catalog: Catalog, services: dict[str, int], out, preset: str = "default", seed: int = 7, scenario: Scenario = BUSY
) -> dict:
    """Write OpenMetrics for every catalog metric to the text stream `out`, as the scenario has it. Returns counts."""
    rng = random.Random(seed)
    spec = PRESETS[preset]
    window = spec.window
    times = list(window.times)
    n = len(times)
    restart_job = "mcp-server" if "mcp-server" in services else sorted(services)[0]
    series = samples = 0
    for name in sorted(catalog):
        metric = catalog[name]
        hint = metric.synthetic
        for job, port in jobs_for(metric, services):
            for inst in range(spec.instances):
                instance = f"{job}:{port}" if spec.instances == 1 else f"{job}-{inst}:{port}"
                for extra in label_sets(metric, spec.label_scale, spec.max_product):
                    labels = {"job": job, "instance": instance, **extra}
                    # drawn for every series whatever the scenario, so scenarios share the same base data
                    phase = rng.random() * 2 * math.pi
                    burst_start = rng.randrange(n // 4, 3 * n // 4)
                    shape = shape_for(scenario, name, metric, job, labels, n, window.step, restart_job, burst_start)
                    if shape is None:
                        continue
                    if metric.type == "gauge":
                        lines = _gauge(name, labels, hint, times, phase, shape)
                    elif metric.type == "counter":
                        lines = _counter(name, labels, hint, times, phase, shape, window.step)
                    else:
                        lines = _histogram(name, labels, hint, times, phase, shape, window.step)
                    for block in lines:
                        out.write(block)
                        series += 1
                        samples += shape.last - shape.first
    out.write("# EOF\n")
    return {"series": series, "samples": samples}


def _wave(i: int, n: int, phase: float) -> float:
    """0..1, two slow cycles over the window plus a faster ripple."""
    return 0.5 + 0.35 * math.sin(phase + 4 * math.pi * i / n) + 0.15 * math.sin(phase * 3 + 40 * math.pi * i / n)


def _latest(changes: list, i: int):
    """The change in force at index i (the latest that started), or None."""
    found = None
    for begin, *value in changes:
        if begin <= i:
            found = value
    return found


def _gauge(name, labels, hint: Synthetic, times, phase, shape: Shape):
    # a scenario's bounds replace the catalog's (a bound it leaves out is the default, not the catalog's)
    low, high = (
        (shape.bounds.get("min", NO_HINTS.min), shape.bounds.get("max", NO_HINTS.max))
        if shape.bounds
        else (hint.min, hint.max)
    )
    head = _labels_text(name, labels)
    n = len(times)
    parts = []
    for i in range(shape.first, shape.last):
        held = _latest(shape.gauge, i)
        value = held[0] if held is not None else low + (high - low) * _wave(i, n, phase)
        parts.append(f"{head} {_fmt(value)} {times[i]}\n")
    yield "".join(parts)


def _bursting(shape: Shape, i: int, n: int) -> bool:
    return (
        shape.burst_start is not None and shape.burst_start <= i < shape.burst_start + n // 18
    )  # 20 minutes of 6 hours


def _rate_at(i, n, phase, base, shape: Shape):
    rate = base * (0.6 + 0.8 * _wave(i, n, phase))
    if _bursting(shape, i, n):
        rate *= 10
    change = _latest(shape.rate, i)
    if change is not None:
        factor, per_second = change
        rate = per_second if per_second is not None else rate * factor
    return rate


def _counter(name, labels, hint: Synthetic, times, phase, shape: Shape, step):
    base = hint.rate
    if _is_error(labels):
        base *= 0.02
    head = _labels_text(name, labels)
    n = len(times)
    value, parts = 0.0, []
    for i in range(shape.first, shape.last):
        if i == shape.restart:
            value = 0.0
        elif i > shape.first:
            value += _rate_at(i, n, phase, base, shape) * step
        elif shape.born:  # its first sample already counts the increment that created it
            value = max(1.0, _rate_at(i, n, phase, base, shape) * step)
        parts.append(f"{head} {_fmt(value)} {times[i]}\n")
    yield "".join(parts)


def _histogram(name, labels, hint: Synthetic, times, phase, shape: Shape, step):
    base, median = hint.rate, hint.median
    n = len(times)
    counts = [0] * len(BUCKETS)
    total = 0.0
    heads = [_labels_text(f"{name}_bucket", dict(labels, le="+Inf" if b == math.inf else _fmt(b))) for b in BUCKETS]
    bucket_lines = [[] for _ in BUCKETS]
    sum_lines, count_lines = [], []
    sum_head, count_head = _labels_text(f"{name}_sum", labels), _labels_text(f"{name}_count", labels)
    plain = Shape(shape.first, shape.last, rate=shape.rate)  # request counts do not burst with the latency
    for i in range(shape.first, shape.last):
        t = times[i]
        if i == shape.restart:
            counts, total = [0] * len(BUCKETS), 0.0
        elif i > shape.first:
            observed = round(_rate_at(i, n, phase, base, plain) * step)
            slow = 4.0 if _bursting(shape, i, n) else 1.0
            spike = _latest(shape.latency, i)
            if spike is not None:
                slow *= spike[0]
            m = median * slow * (0.7 + 0.6 * _wave(i, n, phase))
            previous_bound, below_before = 0.0, 0
            for k, bound in enumerate(BUCKETS):
                share = 1.0 if bound == math.inf else _lognormal_cdf(bound, m)
                below = round(observed * share)
                counts[k] += below
                middle = m * 3 if bound == math.inf else (previous_bound + bound) / 2
                total += (below - below_before) * middle
                previous_bound, below_before = bound, below
        for k in range(len(BUCKETS)):
            bucket_lines[k].append(f"{heads[k]} {counts[k]} {t}\n")
        sum_lines.append(f"{sum_head} {_fmt(total)} {t}\n")
        count_lines.append(f"{count_head} {counts[-1]} {t}\n")
    for lines in bucket_lines:
        yield "".join(lines)
    yield "".join(count_lines)
    yield "".join(sum_lines)


def _lognormal_cdf(x: float, median: float, sigma: float = 0.8) -> float:
    return 0.5 * (1 + math.erf(math.log(x / median) / (sigma * math.sqrt(2))))

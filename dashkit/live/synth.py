"""Synthetic metrics from the catalog, as OpenMetrics text for `promtool tsdb create-blocks-from openmetrics`.

Deterministic (seeded): counters only go up (with one process restart, so one reset per series of that
job), gauges move between their catalog `synthetic` min and max, histogram buckets are cumulative and
agree with _sum and _count, and error-like series burst once so threshold panels change colour.
"""

from __future__ import annotations

import itertools
import math
import random
from dataclasses import dataclass

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, math.inf)
ERROR_VALUES = {"error", "timeout", "5xx", "4xx", "invalid_request", "internal_error", "method_not_found"}
PLATFORM_JOB = "chaos-controller"
MAX_PRODUCT = 40  # label combinations per metric and job before we cycle instead of taking every product


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


def jobs_for(metric: dict, services: dict[str, int]) -> list[tuple[str, int]]:
    owner = metric["service"]
    if owner == "all":
        return sorted(services.items())
    if owner == "platform":
        return [(PLATFORM_JOB, 9000)]
    return [(owner, services[owner])]


def label_sets(metric: dict, scale: int, max_product: int = MAX_PRODUCT) -> list[dict]:
    labels = {k: [str(v) for v in vs] for k, vs in sorted(metric.get("labels", {}).items())}
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


def generate(catalog: dict, services: dict[str, int], out, preset: str = "default", seed: int = 7) -> dict:
    """Write OpenMetrics for every catalog metric to the text stream `out`. Returns counts."""
    rng = random.Random(seed)
    spec = PRESETS[preset]
    window = spec.window
    times = list(window.times)
    n = len(times)
    restart_job = "mcp-server" if "mcp-server" in services else sorted(services)[0]
    restart_at = n // 3  # counters of this job start again from zero here
    series = samples = 0
    for name in sorted(catalog):
        metric = catalog[name]
        hint = metric.get("synthetic", {})
        for job, port in jobs_for(metric, services):
            for inst in range(spec.instances):
                instance = f"{job}:{port}" if spec.instances == 1 else f"{job}-{inst}:{port}"
                for extra in label_sets(metric, spec.label_scale, spec.max_product):
                    labels = {"job": job, "instance": instance, **extra}
                    restart = restart_at if job == restart_job else None
                    phase = rng.random() * 2 * math.pi
                    burst_start = rng.randrange(n // 4, 3 * n // 4)
                    if metric["type"] == "gauge":
                        lines = _gauge(name, labels, hint, times, phase, rng)
                    elif metric["type"] == "counter":
                        lines = _counter(name, labels, hint, times, phase, burst_start, restart, window.step)
                    else:
                        lines = _histogram(name, labels, hint, times, phase, burst_start, restart, window.step)
                    for block in lines:
                        out.write(block)
                        series += 1
                        samples += n
    out.write("# EOF\n")
    return {"series": series, "samples": samples}


def _wave(i: int, n: int, phase: float) -> float:
    """0..1, two slow cycles over the window plus a faster ripple."""
    return 0.5 + 0.35 * math.sin(phase + 4 * math.pi * i / n) + 0.15 * math.sin(phase * 3 + 40 * math.pi * i / n)


def _gauge(name, labels, hint, times, phase, rng):
    low, high = hint.get("min", 0.0), hint.get("max", 100.0)
    head = _labels_text(name, labels)
    n = len(times)
    body = "".join(f"{head} {_fmt(low + (high - low) * _wave(i, n, phase))} {t}\n" for i, t in enumerate(times))
    yield body


def _rate_at(i, n, phase, base, burst_start, bursting):
    rate = base * (0.6 + 0.8 * _wave(i, n, phase))
    if bursting and burst_start <= i < burst_start + n // 18:  # 20 minutes of the 6 hours
        rate *= 10
    return rate


def _counter(name, labels, hint, times, phase, burst_start, restart, step):
    base = hint.get("rate", 1.0)
    error = _is_error(labels)
    if error:
        base *= 0.02
    bursting = hint.get("burst", False) or error
    head = _labels_text(name, labels)
    n = len(times)
    value, parts = 0.0, []
    for i, t in enumerate(times):
        if i == restart:
            value = 0.0
        elif i:
            value += _rate_at(i, n, phase, base, burst_start, bursting) * step
        parts.append(f"{head} {_fmt(value)} {t}\n")
    yield "".join(parts)


def _histogram(name, labels, hint, times, phase, burst_start, restart, step):
    base, median = hint.get("rate", 1.0), hint.get("median", 0.1)
    n = len(times)
    counts = [0] * len(BUCKETS)
    total = 0.0
    heads = [_labels_text(f"{name}_bucket", dict(labels, le="+Inf" if b == math.inf else _fmt(b))) for b in BUCKETS]
    bucket_lines = [[] for _ in BUCKETS]
    sum_lines, count_lines = [], []
    sum_head, count_head = _labels_text(f"{name}_sum", labels), _labels_text(f"{name}_count", labels)
    for i, t in enumerate(times):
        if i == restart:
            counts, total = [0] * len(BUCKETS), 0.0
        elif i:
            observed = round(_rate_at(i, n, phase, base, burst_start, False) * step)
            slow = 4.0 if burst_start <= i < burst_start + n // 18 else 1.0  # latency rises during the burst
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

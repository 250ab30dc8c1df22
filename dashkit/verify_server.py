"""Catalog drift from what a Prometheus or Mimir server holds (issue 13): the same Family structures and the same
comparison (dashkit.verify.compare) as a service's /metrics text, built from `/api/v1/metadata` (types) and
`/api/v1/series` (label sets, grouped by job), and which drift explains an empty panel.

Jobs: a catalog service is a Prometheus job (service name = job label); `service: all` metrics are expected on
every service's job, `up` included (the server records it at each scrape); `service: platform` metrics come from
Kubernetes' exporters under whatever job a cluster gives them, so they are looked for on any job.
"""

from __future__ import annotations

import promql_parser as pp

from . import promql
from .specs import Catalog, MetricSpec
from .verify import NOT_EXPORTED, Endpoint, Family, compare, label_line, missing_line, sample_names, service_metrics

# On a server `up` exists for every scraped job; the optional memory limit stays optional.
SERVER_NOT_EXPORTED = {name: why for name, why in NOT_EXPORTED.items() if name != "up"}
ANY_JOB = "platform"  # the Endpoint.service of the metrics that have no fixed job


def metadata_type(metadata: dict, spec: MetricSpec) -> str | None:
    """The type the server's metadata gives the metric, None when it has none (backfilled or remote-written
    without metadata). A counter's family is `x_total` in the classic text format and `x` in OpenMetrics."""
    types = set()
    for name in dict.fromkeys((spec.name, spec.name.removesuffix("_total"))):
        types |= {entry.get("type") for entry in metadata.get(name) or []}
    types -= {None, "unknown"}
    if not types:
        return None
    return spec.type if spec.type in types else sorted(types)[0]


def raw_metrics(catalog: Catalog) -> list[MetricSpec]:
    return [catalog[name] for name in sorted(catalog) if not catalog[name].recorded]


def families_by_job(remote, catalog: Catalog, start: int, end: int, pool_map=map) -> tuple[dict, dict, dict]:
    """(job -> metric -> Family, metric -> error of its series call, the server's metadata: name -> entries).
    One series call per catalog metric (a histogram's _count carries its labels): bounded by the catalog, not by
    how many series a job has."""
    answer = remote.metadata()
    metadata = (answer.get("data") or {}) if answer.get("status") == "success" else {}
    metrics = raw_metrics(catalog)
    answers = list(pool_map(lambda spec: remote.series(sample_names(spec)[0], start, end), metrics))
    by_job: dict[str, dict[str, Family]] = {}
    failed = {}
    for spec, found in zip(metrics, answers, strict=True):
        if found.get("status") != "success":
            failed[spec.name] = str(found.get("error", found))
            continue
        kind, sample = metadata_type(metadata, spec), sample_names(spec)[0]
        for labels in found.get("data") or []:
            labels = {k: v for k, v in labels.items() if k != "__name__"}
            family = by_job.setdefault(labels.get("job", ""), {}).setdefault(spec.name, Family(spec.name, kind))
            family.series.setdefault(sample, []).append(labels)
    return by_job, failed, metadata


def _merged(by_job: dict) -> dict[str, Family]:
    """Every job's families as one: where a metric of no fixed job is looked for."""
    merged: dict[str, Family] = {}
    for job in sorted(by_job):
        for name, family in by_job[job].items():
            into = merged.setdefault(name, Family(name, family.type))
            for sample, sets in family.series.items():
                into.series.setdefault(sample, []).extend(sets)
    return merged


def server_drift(
    url: str, by_job: dict, catalog: Catalog, where, skip: dict, metadata: dict | None = None
) -> list[Endpoint]:
    """One Endpoint per service job, and one for the platform metrics (any job); `skip`: metrics whose series
    could not be read (reported as query errors, not as missing). A service's own metric with metadata but no
    series (declared by the service, never used yet) is a note, not missing. The server's metadata is not per
    job, so a `service: all` metric is taken as declared only while no job has a series of it (a breaker that
    has tripped nowhere); once one job has series, a job without is missing it."""
    metadata = metadata or {}
    endpoints = []
    for job, metrics in service_metrics(catalog, SERVER_NOT_EXPORTED).items():
        families = by_job.get(job, {})
        told = "job label" if families else f'no series with job="{job}" on the server'
        found = Endpoint(f'{url} job="{job}"', job, told, unscraped=not families)
        found.not_checked = {k: v for k, v in SERVER_NOT_EXPORTED.items() if k in catalog}
        if families:
            own = {
                m.name: metadata_type(metadata, m)
                for m in metrics
                if m.service == job or not any(m.name in fams for fams in by_job.values())
            }
            known = declared(families, {name: kind for name, kind in own.items() if kind is not None})
            endpoints.append(compare(found, [m for m in metrics if m.name not in skip], known, where))
        else:
            endpoints.append(found)
    platform = [m for m in raw_metrics(catalog) if m.service == "platform" and m.name not in skip]
    if platform:
        found = compare(
            Endpoint(f"{url} (any job)", ANY_JOB, "no fixed job: looked for on every job"),
            platform,
            declared(_merged(by_job), {m.name: metadata_type(metadata, m) for m in platform} if metadata else {}),
            where,
        )
        # the cluster's exporters are the platform's choice, several are alternatives (a container limit from
        # kube-state-metrics or from cAdvisor): one absent is a note; labels and types that disagree stay drift
        found.notes += [
            f"`{m['metric']}` (platform) is on no job of the server ({m['where']}): its panels show what their "
            "fallbacks give"
            for m in found.missing
        ]
        found.missing = []
        endpoints.append(found)
    return endpoints


def declared(families: dict[str, Family], types: dict[str, str | None]) -> dict[str, Family]:
    """The families with series plus those only declared (metadata, no series yet), with no label sets."""
    return families | {name: Family(name, kind) for name, kind in types.items() if kind and name not in families}


# --- which drift explains an empty panel --------------------------------------------------------------
def reads(expr: str, catalog: Catalog, recording: dict[str, str]) -> tuple[set[str], set[str]]:
    """(catalog metrics, label names) an expression reads, through the recording rules it reads: a panel on
    `job:http_requests:rate5m` is empty when `http_requests_total` lacks a label that rule groups by."""
    metrics: set[str] = set()
    labels: set[str] = set()
    todo, seen = [expr], set()
    while todo:
        try:
            node = promql.parse(todo.pop())
        except ValueError:
            continue
        for n in promql.walk(node):
            labels |= _labels_of(n)
            if isinstance(n, pp.VectorSelector):
                base, spec, _ = promql.resolve_series(promql.selector_name(n) or "", catalog)
                if spec is None:
                    continue
                metrics.add(base)
                if spec.recorded and base in recording and base not in seen:
                    seen.add(base)
                    todo.append(recording[base])
    return metrics, labels


def _labels_of(node) -> set[str]:
    if isinstance(node, pp.VectorSelector):
        return {m.name for m in node.matchers.matchers if m.name != "__name__"}
    if isinstance(node, pp.AggregateExpr) and node.modifier is not None:
        return set(node.modifier.labels)
    if isinstance(node, pp.BinaryExpr) and node.modifier is not None:
        matching = node.modifier.matching
        return set(matching.labels if matching is not None else []) | set(node.modifier.group_labels or [])
    return set()


def explain(
    exprs: list[str], job: str | None, endpoints: list[Endpoint], catalog: Catalog, recording, shows_data=False
) -> list[str]:
    """The drift lines that explain why these queries of a panel (on `job`'s dashboard; None: every job's) are
    empty: a metric they read is not exported, or lacks a label they read. For a panel that shows data
    (shows_data): only the labels its own queries group or match on, whatever recording rules lie between (a
    sum that adds an upstream `by (endpoint)` away reads no endpoint), and no missing metric (an `or` fallback
    answered)."""
    metrics: set[str] = set()
    labels: set[str] = set()
    for expr in exprs:
        m, lab = reads(expr, catalog, recording)
        metrics |= m
        labels |= reads(expr, catalog, {})[1] if shows_data else lab
    found = set()
    for e in endpoints:
        if job is not None and e.service not in (job, ANY_JOB):
            continue
        if not shows_data:
            found |= {missing_line(m) for m in e.missing if m["metric"] in metrics}
        found |= {label_line(lab) for lab in e.labels if lab["metric"] in metrics and lab["label"] in labels}
    return sorted(found)

"""Catalog drift: what services' /metrics endpoints really export, against values/metrics.yaml (issue 13).

Each endpoint is read once (HTTP GET, with a timeout) and parsed with prometheus_client's own text parser. Its
service is the --job given, else the service whose catalog metrics it exports most of. Then, for the catalog
metrics of that service and of `service: all`: the ones it does not export, the catalog labels its series lack
(with a likely rename when the series carry a label the catalog does not know) and the types that disagree.
Recorded series (recording rules' outputs) and `service: platform` metrics (Kubernetes' exporters) are not read
from a service, so not checked here.
"""

from __future__ import annotations

import difflib
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field

from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics_families
from prometheus_client.parser import text_string_to_metric_families

from .specs import Catalog, MetricSpec

# Catalog metrics of `service: all` no service's /metrics carries, and why (the catalog has no field for it).
NOT_EXPORTED = {
    "up": "Prometheus records it at each scrape; no endpoint exports it",
    "process_memory_limit_bytes": "optional: only a service outside Kubernetes exports it (values/metrics.yaml)",
}
IMPLIED_LABELS = {"job", "instance"}  # added by the scrape, never on the endpoint
SAMPLE_LABELS = {"le", "quantile"}  # a histogram's and a summary's own
ACCEPT = "text/plain;version=0.0.4;q=1,*/*;q=0.1"  # the classic text format: the parser reads exactly that


class EndpointError(Exception):
    """An endpoint that could not be read or parsed: str() is the one line to print."""


@dataclass
class Family:
    name: str
    type: str | None  # None: the source does not say (a server without metadata for it)
    series: dict[str, list[dict]] = field(default_factory=dict)  # sample name -> the label sets of its samples


def fetch(url: str, timeout: float) -> str:
    """The body of GET url, or EndpointError('url: why')."""
    request = urllib.request.Request(url, headers={"Accept": ACCEPT})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            body = answer.read()
    except urllib.error.HTTPError as e:
        raise EndpointError(f"{url}: HTTP {e.code} {e.reason}") from None
    except urllib.error.URLError as e:
        reason = e.reason
        if isinstance(reason, TimeoutError):
            raise EndpointError(f"{url}: no answer within {timeout:g} s") from None
        raise EndpointError(f"{url}: {getattr(reason, 'strerror', None) or reason}") from None
    except TimeoutError:
        raise EndpointError(f"{url}: no answer within {timeout:g} s") from None
    except (OSError, ValueError) as e:  # a reset connection, a malformed URL
        raise EndpointError(f"{url}: {e}") from None
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        raise EndpointError(f"{url}: the body is not UTF-8 text") from None


def parse(url: str, text: str) -> dict[str, Family]:
    """Family name -> Family, as prometheus_client reads the text; EndpointError when it cannot."""
    families = {}
    # an endpoint that ignores Accept and always answers OpenMetrics (it ends with `# EOF`) gets that format's
    # parser: the classic one would read a counter's `_total` samples as a family of unknown type
    openmetrics = text.rstrip().endswith("# EOF")
    reader = openmetrics_families if openmetrics else text_string_to_metric_families
    try:
        for parsed in reader(text):
            family = families.setdefault(parsed.name, Family(parsed.name, parsed.type))
            for sample in parsed.samples:
                family.series.setdefault(sample.name, []).append(dict(sample.labels))
    except Exception as e:  # the parser raises ValueError, IndexError, ... on text that is not the format
        kind = "OpenMetrics" if openmetrics else "Prometheus text"
        raise EndpointError(f"{url}: not the {kind} format ({type(e).__name__}: {e})") from None
    if text.strip() and not families:
        raise EndpointError(f"{url}: no metrics in the body (is it a /metrics endpoint?)")
    return families


def sample_names(spec: MetricSpec) -> list[str]:
    """The sample names that carry the metric's labels, in the order to look for them."""
    if spec.type == "histogram":
        return [spec.name + "_count", spec.name + "_bucket", spec.name + "_sum"]
    return [spec.name]


def find(spec: MetricSpec, families: dict[str, Family]) -> tuple[Family, list[dict]] | None:
    """The family exporting the catalog metric and the label sets of its series, else None. A family declared
    with no series yet (HELP and TYPE only: a labelled metric before its first use) is found with no label sets;
    the classic text parser names a counter's family without `_total`."""
    for name in sample_names(spec):
        for family in families.values():
            if name in family.series:
                return family, family.series[name]
    family = families.get(spec.name) or families.get(spec.name.removesuffix("_total"))
    return (family, [labels for sets in family.series.values() for labels in sets]) if family else None


def service_metrics(catalog: Catalog, not_exported=NOT_EXPORTED) -> dict[str, list[MetricSpec]]:
    """Service -> the catalog metrics its endpoint should export (`all` ones included), recorded ones left out."""
    raw = [m for m in catalog.values() if not m.recorded]
    services = sorted({m.service for m in raw} - {"all", "platform"})
    common = [m for m in raw if m.service == "all" and m.name not in not_exported]
    return {s: [m for m in raw if m.service == s] + common for s in services}


def identify(catalog: Catalog, families: dict[str, Family]) -> tuple[str | None, str]:
    """(service, how it was told) from which service-specific catalog metrics the endpoint exports."""
    counts = {}
    for service, metrics in service_metrics(catalog).items():
        own = [m for m in metrics if m.service == service]
        counts[service] = (sum(find(m, families) is not None for m in own), len(own))
    best = max(counts.values(), key=lambda c: c[0])[0] if counts else 0
    if best == 0:
        return None, "exports no service-specific catalog metric: pass --job"
    winners = sorted(s for s, (n, _) in counts.items() if n == best)
    if len(winners) > 1:
        return None, f"exports as many metrics of {', '.join(winners)}: pass --job"
    n, total = counts[winners[0]]
    return winners[0], f"exports {n} of its {total} own catalog metrics"


def renames(missing: list[str], extra: dict[str, set], spec: MetricSpec) -> dict[str, str]:
    """Catalog label -> the unknown label of the series it was most likely renamed to: shared example values
    first, then the likeness of the names. Each unknown label is suggested once."""
    scored = []
    for label in missing:
        examples = {str(v) for v in spec.labels.get(label) or []}
        for other, values in extra.items():
            shared = len(examples & values)
            likeness = difflib.SequenceMatcher(None, label, other).ratio()
            scored.append((-shared, -likeness, label, other))
    chosen, used = {}, set()
    for _, _, label, other in sorted(scored):
        if label not in chosen and other not in used:
            chosen[label] = other
            used.add(other)
    return chosen


@dataclass
class Endpoint:
    url: str
    service: str | None
    service_from: str  # "--job", or how the service was recognised / why it was not
    missing: list[dict] = field(default_factory=list)  # {metric, type, service, where}
    labels: list[dict] = field(default_factory=list)  # {metric, label, where, has (a rename) or None}
    types: list[dict] = field(default_factory=list)  # {metric, catalog, exported, where}
    not_checked: dict[str, str] = field(default_factory=dict)  # metric -> why
    notes: list[str] = field(default_factory=list)  # what is as it should be, though it looks absent
    unscraped: bool = False  # no series of the job at all: one line instead of one per metric

    @property
    def drift(self) -> bool:
        return bool(self.service is None or self.unscraped or self.missing or self.labels or self.types)

    def lines(self) -> list[str]:
        """The findings, one per line, as the terminal and the Markdown report show them."""
        out = [] if self.service else [f"service unknown: {self.service_from}"]
        if self.unscraped:
            out.append(f"{self.service_from}: is it scraped, and under this job name?")
        out += [missing_line(m) for m in self.missing]
        for t in self.types:
            out.append(f"`{t['metric']}` is a {t['exported']}, the catalog says {t['catalog']} ({t['where']})")
        return out + [label_line(lab) for lab in self.labels]


def missing_line(m: dict) -> str:
    return f"`{m['metric']}` ({m['type']}, {m['service']}) is not exported ({m['where']})"


def label_line(lab: dict) -> str:
    if lab["has"]:
        return f"`{lab['metric']}` has `{lab['has']}`, not `{lab['label']}` ({lab['where']})"
    return f"`{lab['metric']}` lacks the label `{lab['label']}` ({lab['where']})"


def verify(url: str, text: str, catalog: Catalog, where, job: str | None = None) -> Endpoint:
    """Check one endpoint's text against the catalog. `where(*path)` gives a catalog key's Where."""
    families = parse(url, text)
    if job:
        service, told = job, "--job"
    else:
        service, told = identify(catalog, families)
    expected = service_metrics(catalog)
    found = Endpoint(url, service, told)
    found.not_checked = {name: why for name, why in NOT_EXPORTED.items() if name in catalog}
    metrics = expected.get(service) or [m for m in next(iter(expected.values()), []) if m.service == "all"]
    compare(found, metrics, families, where)
    return found


def compare(found: Endpoint, metrics: list[MetricSpec], families: dict[str, Family], where) -> Endpoint:
    """Record in `found` what of `metrics` the families lack or say otherwise: one code path for a /metrics
    text and for what a Prometheus server holds (dashkit/verify_server.py)."""
    for spec in metrics:
        at = where("metrics", spec.name)
        hit = find(spec, families)
        if hit is None:
            found.missing.append({"metric": spec.name, "type": spec.type, "service": spec.service, "where": str(at)})
            continue
        family, label_sets = hit
        if not label_sets:  # declared, no series yet: a counter of failures before the first failure
            found.notes.append(
                f"`{spec.name}` is declared but has no series yet (a labelled metric appears on its first use)"
            )
        if family.type is not None and family.type != spec.type:
            found.types.append({"metric": spec.name, "catalog": spec.type, "exported": family.type, "where": str(at)})
        seen: dict[str, set] = {}
        for labels in label_sets:
            for name, value in labels.items():
                seen.setdefault(name, set()).add(value)
        lacking = [label for label in spec.labels if label not in seen] if label_sets else []
        unknown = {k: v for k, v in seen.items() if k not in spec.labels and k not in IMPLIED_LABELS | SAMPLE_LABELS}
        suggested = renames(lacking, unknown, spec)
        for label in lacking:
            found.labels.append(
                {
                    "metric": spec.name,
                    "label": label,
                    "has": suggested.get(label),
                    "where": str(where("metrics", spec.name, "labels", label)),
                }
            )
    return found


def markdown(endpoints: list[Endpoint]) -> str:
    out = ["# Catalog drift", ""]
    for e in endpoints:
        out += [f"## {e.url}", "", f"Service: **{e.service or 'unknown'}** ({e.service_from}).", ""]
        lines = e.lines()
        out += [f"- {line}" for line in lines] if lines else ["No drift: every catalog metric, label and type agrees."]
        out += ["", *[f"- note: {n}" for n in e.notes]] if e.notes else []
        if e.not_checked:
            out += ["", "Not checked: " + "; ".join(f"`{k}` ({v})" for k, v in e.not_checked.items()) + "."]
        out.append("")
    return "\n".join(out)


def as_json(endpoints: list[Endpoint]) -> dict:
    return {
        "drift": any(e.drift for e in endpoints),
        "endpoints": [dict(asdict(e), drift=e.drift) for e in endpoints],
    }

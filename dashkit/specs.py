"""What load returns: the values as typed specs, every default resolved where it is defined (in load).

Later stages map these fields to Grafana JSON, rule files and reports; none of them re-derives a default.
The JSON Schema in schemas/values.schema.json stays the contract for what users write; these classes are
what that input means once read. Pure data: no stage is imported here.

Values that never change once read are NamedTuples (immutable, and a tenth of a dataclass's cost to define
at start-up, which every build pays); specs a later step of load completes or a test replaces a field of
are dataclasses, compared by identity (eq=False: a shared row's panel is one object on every service
dashboard, and nothing compares specs by value).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from .problems import Source


class Levels(NamedTuple):
    """Threshold levels: a preset of values/defaults.yaml (with a service's overrides), or written inline."""

    warning: float | None = None
    critical: float | None = None
    direction: str = "above"  # above: values over a level are bad; below: values under it are
    preset: str | None = None  # the preset's name, when the levels come from one


class Mapping(NamedTuple):
    """A value mapping: a value shown as text, optionally coloured."""

    value: float | str
    text: str
    color: str | None = None


class Link(NamedTuple):
    title: str
    url: str


class TargetSpec(NamedTuple):
    """One query of a panel: `expr` (with `legend`, ...) on the panel, or one item of its `targets`."""

    expr: str
    legend: str  # the legend format; "__auto" when none was written
    instant: bool  # the target's own, else the panel's, else False
    exemplar: bool  # the target's own, else the panel's, else False
    format: str  # the target's own, else "table" on a table panel, else "time_series"
    src: Source  # the target item of `targets`, or the panel itself for `expr`
    expect: dict  # live-check scenario -> expectation, as written on the target


@dataclass(eq=False)
class PanelSpec:
    type: str
    title: str
    description: str
    targets: list[TargetSpec]  # empty for a panel of `content` only
    datasource: str  # which datasource of values/defaults.yaml: metrics, logs or traces
    unit: str
    width: int  # the panel's own, else its type's size in values/defaults.yaml, else panel_size
    height: int
    height_fixed: bool  # height was written: the panel does not grow to the tallest of its line
    src: Source  # where it was written, for error messages
    thresholds: Levels | None = None
    series_per_job: bool = False  # `legend: "{{job}}"` written on the panel: one series per service
    series_thresholds: dict[str, Levels] = field(
        default_factory=dict
    )  # overview: a service's own levels for its series
    mappings: list[Mapping] = field(default_factory=list)
    links: list[Link] = field(default_factory=list)
    decimals: int | None = None
    min: float | None = None
    max: float | None = None
    no_value: str | None = None  # what Grafana shows instead of "No data"
    stack: bool = False
    reduce: str = "lastNotNull"
    orientation: str = "auto"
    color: str | None = None
    content: str = ""
    lint_exceptions: dict[str, str] = field(default_factory=dict)  # lint rule -> why this panel may break it
    expect: dict = field(default_factory=dict)  # live-check scenario -> expectation, as written on the panel


@dataclass(eq=False)
class RowSpec:
    title: str
    collapsed: bool
    panels: list[PanelSpec]
    src: Source


@dataclass(eq=False)
class VariableSpec:
    name: str
    label: str
    metric: str | None  # label values of this metric, or
    values: list[str] | None  # fixed choices
    label_name: str
    multi: bool
    include_all: bool
    src: Source


@dataclass(eq=False)
class AlertSpec:
    name: str
    expr: str  # the measured quantity, with $job where the alert is per service
    op: str  # ">" or "<", from the preset's direction
    value: float  # the preset's level
    severity: str  # the level's name: warning or critical
    duration: str
    summary: str
    description: str
    dashboard: str  # "service" or "overview"
    panel: str
    runbook: str
    src: Source
    no_data: str = "NoData"  # Grafana's noDataState for this alert, chosen in values with a reason
    no_data_quiet: bool = False  # no data is the alert's quiet state (absent(), a counter before its first event)


@dataclass(eq=False)
class RecordingSpec:
    record: str
    expr: str
    src: Source


@dataclass(eq=False)
class RulesSpec:
    interval: str
    runbook_base_url: str
    recording: list[RecordingSpec]
    alerts: list[AlertSpec]  # instantiated for every service
    platform_alerts: list[AlertSpec]
    src: Source


@dataclass(eq=False)
class DashboardSpec:
    kind: str  # "overview" or "service"
    slug: str  # "overview" or the service name
    title: str
    description: str
    tags: list[str]
    rows: list[RowSpec]
    src: Source
    job: str | None = None
    port: int | None = None
    variables: list[VariableSpec] = field(default_factory=list)
    alerts: list[AlertSpec] = field(default_factory=list)  # the service's own
    # values/rules.yaml's alerts resolved with this service's threshold overrides; None: no overrides
    rule_alerts: list[AlertSpec] | None = None
    # preset -> this service's levels, for the presets its `thresholds:` changes (the overview colours its series so)
    changed_levels: dict[str, Levels] = field(default_factory=dict)


class Elsewhere(NamedTuple):
    """A service a build takes from its cache instead of loading it: what the overview needs of it (its
    entry in the services list, and its own levels for its series)."""

    slug: str
    title: str
    changed_levels: dict  # preset -> Levels, as DashboardSpec.changed_levels


class Synthetic(NamedTuple):
    """Hints for the live check's synthetic data (values/metrics.yaml `synthetic:`), defaults resolved."""

    min: float = 0.0  # gauge range
    max: float = 100.0
    rate: float = 1.0  # counter and histogram: mean increase per second of one series
    median: float = 0.1  # histogram: median observation
    burst: bool = False  # counter: rises 10x for 20 minutes once


class MetricSpec(NamedTuple):
    """A series name the queries may use: a metric of values/metrics.yaml, or a recording rule's output."""

    name: str
    type: str  # counter, gauge or histogram
    service: str  # the job that exposes it, "all" or "platform"
    help: str
    labels: dict[str, list]  # label name -> example values (job and instance are implied)
    spec: bool = False  # named by the specification (False: added by this project)
    synthetic: Synthetic = Synthetic()
    recorded: bool = False  # the output of a recording rule
    sources: tuple[str, ...] = ()  # the raw metrics it is computed from: itself, or a recording rule's inputs


Catalog = dict[str, MetricSpec]  # series name -> metric


@dataclass(eq=False)
class Values:
    defaults: dict  # values/defaults.yaml as written: handed to the templates whole
    catalog: Catalog
    catalog_src: Source
    dashboards: list[DashboardSpec]  # overview first, then services by name
    rules: RulesSpec | None = None
    defaults_src: Source | None = None
    scenarios: dict = field(default_factory=dict)  # live-check scenario name -> its values (values/scenarios.yaml)
    scenarios_src: Source | None = None

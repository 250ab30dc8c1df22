"""The live check's scrape mode: reference services (the real prometheus_client) scraped by a real Prometheus,
so the whole path -- client -> exposition format -> scrape -> rules -> PromQL -> panel -- is real.

The scrape config is generated from the catalog's jobs, one job per service as values names it. Prometheus
evaluates the project's own rule files live; their groups are evaluated every scrape interval instead of
every minute (the one change to the files), so a run takes seconds, not an hour. A service's state is held
from the start (reference_service), so this mode checks panels, variables and what the rules say *now*:
an alert the scenario lists must hold now (pending or firing; its `for` period is the backfilled check's to
prove) and no other may. Time-based scenarios (a restart, a service that went away mid-window) and the long
ranges of the cost report stay with the backfilled check.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import yaml

from ..pipeline import Build
from . import alerts, check
from .prometheus import Prometheus
from .reference_service import ReferenceServices
from .run import Timings, expectations
from .synth import BUSY, Scenario, Window

INTERVAL = 1  # seconds between scrapes and rule evaluations
SCRAPES = 6  # scrapes of every target before the queries run: rate() over $__rate_interval needs several
SETTLE_TIMEOUT = 90.0


@dataclass
class Scraped:
    """A running Prometheus scraping the reference services: `with scraped(build, workdir, scenario) as s:`."""

    prometheus: Prometheus
    services: ReferenceServices
    started: int  # unix seconds of the first scrape

    @property
    def url(self) -> str:
        return self.prometheus.url


def rule_files_for_scrape(build: Build, folder: Path, interval: int) -> list[Path]:
    """The build's Prometheus rule files with every group evaluated each `interval` seconds."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for rel, text in sorted(build.files.items()):
        if rel.startswith("rules/"):
            doc = yaml.safe_load(text)
            for group in doc.get("groups", []):
                group["interval"] = f"{interval}s"
            path = folder / Path(rel).name
            path.write_text(json.dumps(doc, indent=1), encoding="utf-8")
            paths.append(path)
    return paths


class scraped:  # noqa: N801 (used as a context manager, like open)
    """Reference services for the scenario, a Prometheus scraping them with the project's rules, and a wait
    until every target has been scraped SCRAPES times and every rule group has evaluated after that."""

    def __init__(self, build: Build, workdir: Path, scenario: Scenario, renames=None, interval: int = INTERVAL):
        self.build, self.workdir, self.scenario = build, Path(workdir), scenario
        self.renames, self.interval = renames, interval
        self._services: ReferenceServices | None = None
        self._prometheus: Prometheus | None = None

    def __enter__(self) -> Scraped:
        self.workdir.mkdir(parents=True, exist_ok=True)
        tsdb = self.workdir / "tsdb"
        tsdb.mkdir(exist_ok=True)
        self._services = ReferenceServices(self.build.catalog, self.build.services, self.scenario, self.renames)
        self._services.__enter__()
        try:
            jobs = {job.name: [job.target] for job in self._services.jobs if job.scraped}
            rules = rule_files_for_scrape(self.build, self.workdir / "rules", self.interval)
            self._prometheus = Prometheus(
                tsdb, rules, self.workdir, scrape={"interval": self.interval, "jobs": jobs}
            ).__enter__()
            started = int(time.time())
            settle(self._prometheus, set(jobs), self.interval)
        except BaseException:
            self.__exit__()
            raise
        return Scraped(self._prometheus, self._services, started)

    def __exit__(self, *exc) -> None:
        if self._prometheus is not None:
            self._prometheus.stop()
            self._prometheus = None
        if self._services is not None:
            self._services.stop()
            self._services = None


def settle(prom: Prometheus, jobs: set[str], interval: int, timeout: float = SETTLE_TIMEOUT) -> None:
    """Wait (bounded) until every job has SCRAPES scrapes and every rule group evaluated since."""
    deadline = time.monotonic() + timeout
    scraped_at = None
    while time.monotonic() < deadline:
        if scraped_at is None:
            answer = prom.query(f"count_over_time(up[{SCRAPES * interval * 2}s])", int(time.time()))
            counts = {s["metric"].get("job"): float(s["value"][1]) for s in answer.get("data", {}).get("result", [])}
            if jobs <= set(counts) and all(counts[job] >= SCRAPES for job in jobs):
                scraped_at = time.time()
        else:
            groups = prom.api("/api/v1/rules")["data"]["groups"]
            if all(_evaluated_after(g, scraped_at) for g in groups):
                return
        time.sleep(interval / 4)
    raise RuntimeError(f"Prometheus had not scraped every target {SCRAPES} times within {timeout:.0f} s")


def _evaluated_after(group: dict, moment: float) -> bool:
    stamp = group.get("lastEvaluation", "")
    if not stamp or stamp.startswith("0001"):
        return False
    # RFC 3339 with nanoseconds: seconds resolution is enough here
    return datetime.fromisoformat(stamp[:19] + "+00:00").timestamp() > moment


def rule_states(prom: Prometheus) -> dict[tuple[str, str], str]:
    """(ruler group, alert name) -> what Prometheus says now: firing | pending | inactive | error."""
    states = {}
    for group in prom.api("/api/v1/rules", type="alert")["data"]["groups"]:
        for rule in group["rules"]:
            states[(group["name"], rule["name"])] = "error" if rule.get("health") == "err" else rule["state"]
    return states


def live_scraped(build: Build, workdir: Path, scenario: Scenario, renames=None) -> tuple[check.Report, Timings, dict]:
    """One scenario in scrape mode: every query and alert against Prometheus scraping the reference services."""
    timings = Timings()
    began = time.perf_counter()
    with scraped(build, workdir, scenario, renames) as live:
        timings.generate = time.perf_counter() - began  # serving and scraping until the data is there
        began = time.perf_counter()
        end = int(time.time())
        window = Window(live.started, end, INTERVAL)
        dashboards = [d.json for d in build.dashboards]
        report = check.run(
            dashboards,
            build.rules,
            build.catalog,
            live.prometheus,
            window,
            expect=expectations(build),
            scenario=scenario,
        )
        if scenario is not BUSY:  # the busy dataset is for panels; it makes no claim about alerts
            alerts.evaluate(
                build.rules, live.prometheus, end, scenario, report, build.catalog, now=rule_states(live.prometheus)
            )
        timings.queries = time.perf_counter() - began
        served = [job for job in live.services.jobs if job.registry is not None]
        counts = {"mode": "scrape", "series": sum(len(job.series) for job in served), "jobs": len(served)}
    return report, timings, counts

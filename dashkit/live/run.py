"""The live check end to end: data -> TSDB (promtool) -> recording rules backfilled level by level ->
Prometheus with the project's rule files -> every query -> report."""

from __future__ import annotations

import json
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from ..pipeline import Build
from ..problems import Problem
from ..suggest import did_you_mean
from . import alerts, check, synth
from .prometheus import Prometheus, backfill_openmetrics, backfill_rules


@dataclass
class Timings:
    generate: float = 0.0
    backfill: float = 0.0
    rules: float = 0.0
    queries: float = 0.0


def rule_levels(recording: list[dict]) -> list[list[dict]]:
    """Recording rules in the order they can be backfilled: promtool evaluates each rule against the
    server, so a rule over another rule's series waits until that series is in the TSDB."""
    names = {r["record"] for r in recording}
    level: dict[str, int] = {}

    def depth(rule: dict) -> int:
        if rule["record"] not in level:
            deps = [
                r
                for r in recording
                if r["record"] != rule["record"]
                and re.search(rf"(?<![\w:]){re.escape(r['record'])}(?![\w:])", rule["expr"])
            ]
            level[rule["record"]] = 1 + max((depth(d) for d in deps), default=-1)
        return level[rule["record"]]

    for rule in recording:
        depth(rule)
    out: list[list[dict]] = [[] for _ in range(max(level.values(), default=-1) + 1)]
    for rule in recording:
        out[level[rule["record"]]].append(rule)
    assert set(level) == names
    return out


def scenario_problems(build: Build) -> list[Problem]:
    """What values/scenarios.yaml names must exist: its services (or `platform`) and catalog metrics."""
    problems = []
    services = set(build.services) | {"platform"}
    raw = {name for name, metric in build.catalog.items() if not metric.recorded}
    for name, scenario in build.scenarios.items():
        here = build.scenarios_src.child("scenarios", name)
        for i, event in enumerate(scenario.get("events", [])):
            if event["service"] not in services:
                problems.append(
                    Problem(
                        here.at("events", i, "service"),
                        f"unknown service '{event['service']}'{did_you_mean(event['service'], services)}",
                    )
                )
            if event["kind"] not in ("down", "absent", "restart") and event.get("metric") not in raw:
                problems.append(
                    Problem(
                        here.at("events", i, "metric"),
                        f"a {event['kind']} event needs a catalog metric{did_you_mean(event.get('metric', ''), raw)}",
                    )
                )
        for i, metric in enumerate(scenario.get("absent_metrics", [])):
            if metric not in raw:
                problems.append(
                    Problem(here.at("absent_metrics", i), f"unknown metric '{metric}'{did_you_mean(metric, raw)}")
                )
        for metric in scenario.get("gauges", {}):
            if metric not in raw or build.catalog[metric].type != "gauge":
                problems.append(
                    Problem(
                        here.at("gauges", metric),
                        f"'{metric}' is not a gauge of the catalog{did_you_mean(metric, raw)}",
                    )
                )
        if scenario.get("like") and scenario["like"] not in build.scenarios:
            problems.append(
                Problem(
                    here.at("like"),
                    f"unknown scenario '{scenario['like']}'{did_you_mean(scenario['like'], build.scenarios)}",
                )
            )
        for i, alert in enumerate(scenario.get("alerts", [])):
            if alert["service"] not in services:
                problems.append(
                    Problem(
                        here.at("alerts", i, "service"),
                        f"unknown service '{alert['service']}'{did_you_mean(alert['service'], services)}",
                    )
                )
    return problems


def scenarios_of(build: Build) -> list[synth.Scenario]:
    return [synth.Scenario.from_values(name, doc) for name, doc in build.scenarios.items()]


def prepare(
    build: Build, workdir: Path, preset: str = "default", scenario: synth.Scenario = synth.BUSY
) -> tuple[Path, Timings, dict]:
    """Build the TSDB of one scenario in workdir. Returns (tsdb path, timings, data counts)."""
    timings = Timings()
    window = synth.PRESETS[preset].window
    workdir.mkdir(parents=True, exist_ok=True)
    tsdb = workdir / "tsdb"
    shutil.rmtree(tsdb, ignore_errors=True)
    began = time.perf_counter()
    source = workdir / "data.om"
    raw_catalog = {k: v for k, v in build.catalog.items() if not v.recorded}
    with open(source, "w", encoding="utf-8") as out:
        counts = synth.generate(raw_catalog, build.services, out, preset, scenario=scenario)
    timings.generate = time.perf_counter() - began
    began = time.perf_counter()
    backfill_openmetrics(source, tsdb)
    source.unlink()
    timings.backfill = time.perf_counter() - began
    began = time.perf_counter()
    for i, rules in enumerate(rule_levels(build.rules.recording if build.rules else [])):
        rule_file = workdir / f"recording-level-{i}.yaml"
        rule_file.write_text(json.dumps({"groups": [{"name": f"level-{i}", "rules": rules}]}), encoding="utf-8")
        blocks = workdir / f"recorded-{i}"
        shutil.rmtree(blocks, ignore_errors=True)
        with Prometheus(tsdb, workdir=workdir) as prom:
            backfill_rules(rule_file, prom.url, window.start, window.end + 1, blocks, f"{max(window.step, 60)}s")
        for block in blocks.iterdir():
            if block.is_dir():
                shutil.move(str(block), tsdb / block.name)
    timings.rules = time.perf_counter() - began
    return tsdb, timings, counts


def expectations(build: Build) -> dict:
    """dashboard uid -> panel id -> scenario -> expectation, as written in values."""
    return {d.json["uid"]: d.panel_expect for d in build.dashboards}


def live(
    build: Build, workdir: Path, preset: str = "default", scenario: synth.Scenario = synth.BUSY
) -> tuple[check.Report, Timings, dict]:
    """One scenario end to end: its TSDB, Prometheus with the project's rule files, every query and alert."""
    tsdb, timings, counts = prepare(build, workdir, preset, scenario)
    rule_dir = workdir / "rules"
    rule_dir.mkdir(exist_ok=True)
    rule_files = []
    for rel, text in build.files.items():
        if rel.startswith("rules/"):
            path = rule_dir / Path(rel).name
            path.write_text(text, encoding="utf-8")
            rule_files.append(path)
    began = time.perf_counter()
    dashboards = [d.json for d in build.dashboards]
    window = synth.PRESETS[preset].window
    named = scenario if scenario is not synth.BUSY else None
    with Prometheus(tsdb, rule_files=rule_files, workdir=workdir) as prom:
        report = check.run(
            dashboards, build.rules, build.catalog, prom, window, expect=expectations(build), scenario=named
        )
        if named is not None:
            alerts.evaluate(build.rules, prom, window.end, named, report, build.catalog)
    timings.queries = time.perf_counter() - began
    return report, timings, counts

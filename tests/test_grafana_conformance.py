"""Every dashboard against Grafana's own published JSON Schemas (grafana-foundation-sdk, in ../shared).

The dashboard schema treats panel options, fieldConfig.defaults.custom and targets as opaque, so those are
checked here against each panel type's Options / FieldConfig definitions and the Prometheus dataquery.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from conftest import ROOT, panels_of
from jsonschema import Draft7Validator

SCHEMA_DIR = Path(
    os.environ.get(
        "GRAFANA_SCHEMA_DIR",
        ROOT.parent / "shared" / "grafana-schema" / "grafana-foundation-sdk" / "v0.0.18" / "jsonschema",
    )
)
pytestmark = pytest.mark.skipif(
    not SCHEMA_DIR.is_dir(),
    reason=f"Grafana's published schemas are not at {SCHEMA_DIR} (set GRAFANA_SCHEMA_DIR): conformance not checked",
)
PANEL_SCHEMA_FILE = {
    "timeseries": "timeseries",
    "stat": "stat",
    "gauge": "gauge",
    "bargauge": "bargauge",
    "table": "table",
    "piechart": "piechart",
    "logs": "logs",
    "text": "text",
    "nodeGraph": "nodegraph",
}


def _load(name: str) -> dict:
    return json.loads((SCHEMA_DIR / f"{name}.jsonschema.json").read_text(encoding="utf-8"))


def _validator(name: str, definition: str | None = None) -> Draft7Validator:
    schema = _load(name)
    if definition:
        schema = {"$ref": f"#/definitions/{definition}", "definitions": schema["definitions"]}
    return Draft7Validator(schema)


def _errors(validator: Draft7Validator, instance) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message[:200]}" for e in validator.iter_errors(instance)]


def test_every_dashboard_passes_grafanas_dashboard_schema(tree):
    validator = _validator("dashboard")
    problems = {path: _errors(validator, dash) for path, dash in tree.items()}
    assert {p: e for p, e in problems.items() if e} == {}


def test_every_panel_type_has_a_grafana_schema(tree):
    types = {panel["type"] for dash in tree.values() for panel in panels_of(dash)} - {"row"}
    assert types <= set(PANEL_SCHEMA_FILE), types - set(PANEL_SCHEMA_FILE)
    assert types == set(PANEL_SCHEMA_FILE), "every panel type the issue asks for is in real use"


def test_panel_options_and_field_config_pass_their_panel_schemas(tree):
    problems = []
    for path, dash in tree.items():
        for panel in panels_of(dash):
            if panel["type"] == "row":
                continue
            name = PANEL_SCHEMA_FILE[panel["type"]]
            for err in _errors(_validator(name, "Options"), panel["options"]):
                problems.append(f"{path} {panel['title']}: options {err}")
            if "FieldConfig" in _load(name)["definitions"]:
                custom = panel["fieldConfig"]["defaults"].get("custom", {})
                for err in _errors(_validator(name, "FieldConfig"), custom):
                    problems.append(f"{path} {panel['title']}: fieldConfig.defaults.custom {err}")
    assert problems == []


def test_prometheus_targets_pass_the_dataquery_schema(tree):
    validator = _validator("prometheus")
    problems = []
    checked = 0
    for path, dash in tree.items():
        for panel in panels_of(dash):
            if panel.get("datasource", {}).get("type") != "prometheus":
                continue
            for target in panel["targets"]:
                checked += 1
                problems += [f"{path} {panel['title']} {target['refId']}: {e}" for e in _errors(validator, target)]
    assert checked >= len(tree), "every dashboard has Prometheus targets"
    assert problems == []


def test_every_unit_is_a_grafana_unit(tree):
    units = {d["const"] for d in _load("units")["definitions"].values()}
    used = {
        (path, panel["title"], panel["fieldConfig"]["defaults"]["unit"])
        for path, dash in tree.items()
        for panel in panels_of(dash)
        if panel["type"] != "row"
    }
    assert [u for u in used if u[2] not in units] == []

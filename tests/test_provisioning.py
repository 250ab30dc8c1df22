"""out/ as a Grafana 12 provisioning tree: every file against a schema of the documented format, and the
cross-references between them (alerts -> dashboards and panels, datasources -> each other)."""

from __future__ import annotations

import json
import re

import pytest
import yaml
from conftest import ROOT, expected_alerts, panels_of
from jsonschema import Draft7Validator

from dashkit.pipeline import build

SCHEMAS = {  # every provisioning file Grafana reads (its OutTree property), and the schema of its documented format
    "datasources": "datasources",
    "provider": "dashboards",
    "alert_rules": "alerting",
    "contact_points": "contact-points",
    "notification_policy": "notification-policy",
}


@pytest.fixture(scope="module")
def result():
    return build(ROOT)


@pytest.fixture(scope="module")
def files(result):
    return result.files


@pytest.fixture(scope="module")
def out(result):
    """Where each file is in out/."""
    return result.tree


@pytest.mark.parametrize("kind,schema", SCHEMAS.items(), ids=list(SCHEMAS.values()))
def test_provisioning_file_matches_its_format(files, out, kind, schema):
    document = yaml.safe_load(files[getattr(out, kind)])
    validator = Draft7Validator(json.loads((ROOT / "schemas" / "provisioning" / f"{schema}.schema.json").read_text()))
    assert [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(document)] == []


def test_datasources_take_urls_and_tenants_from_the_environment(files, out):
    text = files[out.datasources]
    sources = {d["uid"]: d for d in yaml.safe_load(text)["datasources"]}
    assert {uid: d["url"] for uid, d in sources.items()} == {
        "mimir": "$MIMIR_URL",
        "loki": "$LOKI_URL",
        "tempo": "$TEMPO_URL",
    }
    assert "://" not in text and "password" not in text.lower()
    # Grafana expands $VAR in provisioning files: variables meant for Grafana itself must be escaped as $$.
    assert re.findall(r"(?<!\$)\$\{", text) == []
    assert re.findall(r"(?<!\$)\$__", text) == []


def test_datasources_are_wired_for_correlation(files, out):
    sources = {d["uid"]: d for d in yaml.safe_load(files[out.datasources])["datasources"]}
    tempo, loki, mimir = sources["tempo"]["jsonData"], sources["loki"], sources["mimir"]["jsonData"]
    assert tempo["tracesToLogsV2"]["datasourceUid"] == "loki" and tempo["tracesToLogsV2"]["filterByTraceID"]
    assert tempo["tracesToMetrics"]["datasourceUid"] == "mimir"
    assert tempo["serviceMap"]["datasourceUid"] == "mimir" and tempo["nodeGraph"]["enabled"]
    assert mimir["exemplarTraceIdDestinations"][0]["datasourceUid"] == "tempo"
    derived = loki["jsonData"]["derivedFields"][0]
    assert derived["datasourceUid"] == "tempo"
    for line, trace in [
        ('{"level":"error","trace_id":"4bf92f3577b34da6"}', "4bf92f3577b34da6"),
        ("level=info traceID=abc123 msg=ok", "abc123"),
    ]:
        assert re.search(derived["matcherRegex"], line).group(1) == trace
    assert {c["targetUID"] for c in loki["correlations"]} == {"mimir"}


def test_every_alert_points_at_a_real_dashboard_panel(files, tree, out):
    panels = {d["uid"]: {p["id"]: p["title"] for p in panels_of(d)} for d in tree.values()}
    groups = yaml.safe_load(files[out.alert_rules])["groups"]
    rules = [r for g in groups for r in g["rules"]]
    assert len(rules) == expected_alerts()
    assert len({r["uid"] for r in rules}) == len(rules)
    for rule in rules:
        assert rule["panelId"] in panels[rule["dashboardUid"]], rule["title"]
        assert rule["condition"] in {d["refId"] for d in rule["data"]}
    assert {g["name"] for g in groups} == {p.split("/")[1][:-5] for p in tree if p.startswith("services/")} | {
        "platform"
    }


def test_grafana_alerts_match_the_prometheus_alerts(files, out):
    grafana = [r for g in yaml.safe_load(files[out.alert_rules])["groups"] for r in g["rules"]]
    prom = [r for g in yaml.safe_load(files[out.ruler_alerts])["groups"] for r in g["rules"]]
    assert len(grafana) == len(prom)
    for g, p in zip(grafana, prom, strict=True):
        threshold = g["data"][1]["model"]["conditions"][0]["evaluator"]
        op = ">" if threshold["type"] == "gt" else "<"
        value = threshold["params"][0]
        assert p["expr"] == f"{g['data'][0]['model']['expr']} {op} {int(value) if float(value).is_integer() else value}"
        assert g["for"] == p["for"] and g["labels"] == p["labels"]

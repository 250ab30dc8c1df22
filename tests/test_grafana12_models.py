"""Every dashboard, panel, query and Grafana-managed alert rule through Grafana 12's typed models.

The JSON Schemas of test_grafana_conformance.py accept fields a current Grafana no longer reads. Here each
object is decoded with the model of the Grafana foundation SDK (pinned in requirements-test.txt): the
dashboard, each panel's options and fieldConfig.defaults.custom by panel type, each target by its
datasource type (prometheus, loki, tempo, __expr__) and each alert rule with its queries. The decoded
object is encoded again and compared with ours, key by key:

- UNKNOWN: the key is not a field of the model (its decoder never reads it: Grafana 12 has no such field);
- DROPPED: a field of the model that did not survive the round trip (e.g. a null);
- CHANGED: a value that came back different;
- MISSING: a field the model always writes (required) that we do not write;
- TYPE: a value the model's type refuses (wrong scalar type, a value outside an enum or literal);
- NO MODEL: a panel type or datasource type the SDK has no model for.

Ignored, the one lossless normalisation: an optional field we leave out that the SDK writes back with its
own default (Panel.transparent, repeatDirection, a variable's skipUrlSync, ...): nothing of ours is lost.
Alert rules are read as the file-provisioning format spells them; see check_alerting for the translation.
"""

from __future__ import annotations

import copy
import enum
import functools
import inspect
import json
import re
import types
import typing
import warnings
from dataclasses import dataclass

import pytest
import yaml
from conftest import ROOT, panels_of

from dashkit.pipeline import build

pytest.importorskip(
    "grafana_foundation_sdk",
    reason="grafana-foundation-sdk is not installed (pip install -r requirements-test.txt): Grafana 12 models not checked",
)

with warnings.catch_warnings():
    # The classic (v1) dashboard model warns that v2 exists; v1 is what file provisioning reads, so it is ours.
    warnings.simplefilter("ignore", DeprecationWarning)
    from grafana_foundation_sdk.cog import plugins
    from grafana_foundation_sdk.cog import runtime as cogruntime
    from grafana_foundation_sdk.cog.encoder import JSONEncoder
    from grafana_foundation_sdk.models import alerting, dashboard

plugins.register_default_plugins()


@dataclass(frozen=True)
class Finding:
    where: str
    path: str
    kind: str
    detail: str

    def __str__(self) -> str:
        return f"{self.where} › {self.path or '.'}: {self.kind}: {self.detail}"


def _encode(obj) -> typing.Any:
    return json.loads(json.dumps(obj, cls=JSONEncoder))


def _is_model(obj) -> bool:
    return callable(getattr(obj, "to_json", None)) and callable(getattr(type(obj), "from_json", None))


def _model_name(cls: type) -> str:
    return f"{cls.__module__.rsplit('.', 1)[-1]}.{cls.__qualname__}"


@functools.cache
def _fields(cls: type) -> dict[str, str]:
    """JSON key -> attribute of a model, read from its own decoder: the SDK generates one `if "key" in data:`
    per field, followed by the `args["attribute"]` it fills. A key missing here is one the model never reads."""
    found = dict(
        re.findall(r'if "([^"]+)" in data:\s*\n(?:[^\n]*\n)*?\s*args\["(\w+)"\]', inspect.getsource(cls.from_json))
    )
    assert found, f"could not read the fields of {_model_name(cls)}: has the SDK's code generation changed?"
    return found


@functools.cache
def _required(cls: type) -> frozenset[str]:
    """Keys the model's encoder always writes (the literal its payload starts from): required fields."""
    literal = re.search(r"payload: dict\[str, object\] = \{(.*?)\}", inspect.getsource(cls.to_json), re.S)
    return frozenset(re.findall(r'"([^"]+)":', literal.group(1))) if literal else frozenset()


@functools.cache
def _hints(cls: type) -> dict[str, typing.Any]:
    return typing.get_type_hints(cls)


def _strip_optional(hint):
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return args[0] if len(args) == 1 else hint
    return hint


def _conforms(value, hint) -> bool:
    """Shallow type check of one value against a model's annotation (containers' items are walked separately)."""
    if hint is None or hint is typing.Any or hint is object:
        return True
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_conforms(value, arg) for arg in typing.get_args(hint))
    if origin is typing.Literal:
        return any(type(value) is type(arg) and value == arg for arg in typing.get_args(hint))
    if origin is list:
        return isinstance(value, list)
    if origin is dict:
        return isinstance(value, dict)
    if hint is type(None):
        return value is None
    if not isinstance(hint, type):
        return True
    if issubclass(hint, enum.Enum):
        base = str if issubclass(hint, str) else int
        return isinstance(value, hint) or (type(value) is base and value in {m.value for m in hint})
    if hint is bool:
        return type(value) is bool
    if hint is int:
        return type(value) is int
    if hint is float:
        return type(value) in (int, float)
    if hint is str:
        return type(value) is str
    if callable(getattr(hint, "from_json", None)):
        return isinstance(value, hint | dict)
    return isinstance(value, hint)


def _hint_name(hint) -> str:
    hint = _strip_optional(hint)
    if typing.get_origin(hint) is typing.Literal:
        return "one of " + ", ".join(map(repr, typing.get_args(hint)))
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")


def _item_hint(hint, origin):
    hint = _strip_optional(hint)
    if typing.get_origin(hint) is origin:
        return typing.get_args(hint)[-1]
    return None


class Checker:
    """Walks our JSON, the decoded model and its re-encoding side by side, collecting findings."""

    def __init__(self, where: str):
        self.where = where
        self.findings: list[Finding] = []

    def add(self, where: str, path: str, kind: str, detail: str) -> None:
        self.findings.append(Finding(where, path, kind, detail))

    def check(self, data, cls: type, where: str | None = None, path: str = "") -> list[Finding]:
        where = where or self.where
        try:
            obj = cls.from_json(data)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            self.add(where, path, "TYPE", f"{_model_name(cls)} refuses it ({type(exc).__name__}: {exc})")
            return self.findings
        self.walk(data, obj, _encode(obj), cls, where, path)
        return self.findings

    def walk(self, ours, obj, back, hint, where: str, path: str) -> None:
        if hint is not None and not _is_model(obj) and not _conforms(ours, hint):
            self.add(where, path, "TYPE", f"{ours!r} is not {_hint_name(hint)}")
            return
        if _is_model(obj):
            self.walk_model(ours, obj, back, where, path)
        elif isinstance(obj, cogruntime.UnknownDataquery):
            self.add(
                where,
                path,
                "NO MODEL",
                f"no query model for datasource type {ours.get('datasource', {}).get('type')!r}",
            )
        elif isinstance(ours, list) and isinstance(obj, list):
            item = _item_hint(hint, list)
            for i, (o, d, b) in enumerate(zip(ours, obj, back if isinstance(back, list) else [], strict=False)):
                self.walk(o, d, b, item, where, f"{path}[{i}]")
            if not isinstance(back, list) or len(back) < len(ours):
                self.add(
                    where, path, "DROPPED", f"{len(ours)} items in, {len(back) if isinstance(back, list) else 0} out"
                )
        elif isinstance(ours, dict) and isinstance(obj, dict):
            model = _strip_optional(hint)
            if isinstance(model, type) and callable(getattr(model, "from_json", None)):
                # The SDK keeps this value as it came (no decoding), though its annotation names a model:
                # decode it with that model so its keys are checked too.
                self.check(ours, model, where, path)
                return
            item = _item_hint(hint, dict)
            for key, value in ours.items():
                sub = f"{path}.{key}" if path else key
                if not isinstance(back, dict) or key not in back:
                    self.add(where, sub, "DROPPED", "lost in the round trip")
                else:
                    self.walk(value, obj.get(key, value), back[key], item, where, sub)
        elif type(ours) is not type(back) or ours != back:
            self.add(where, path, "CHANGED", f"{ours!r} came back as {back!r}")

    def walk_model(self, ours, obj, back, where: str, path: str) -> None:
        cls = type(obj)
        if not isinstance(ours, dict):
            self.add(where, path, "TYPE", f"{ours!r} is not an object ({_model_name(cls)})")
            return
        if isinstance(obj, dashboard.Panel | dashboard.RowPanel):
            # Messages name the panel by title, then the path inside it.
            where, path = f"{where.split(' › ')[0]} › {ours.get('title', '(untitled)')}", ""
            if isinstance(obj, dashboard.Panel):
                self.panel_models(ours, obj, where)
        fields, hints = _fields(cls), _hints(cls)
        for key, value in ours.items():
            sub = f"{path}.{key}" if path else key
            if key not in fields and key not in _required(cls):
                self.add(where, sub, "UNKNOWN", f"not a field of {_model_name(cls)}")
            elif not isinstance(back, dict) or key not in back:
                self.add(where, sub, "DROPPED", f"{_model_name(cls)} lost it in the round trip")
            elif key not in fields:  # a constant the model writes itself (a row's type, an expression's type)
                self.walk(value, back[key], back[key], None, where, sub)
            else:
                attr = fields[key]
                self.walk(value, getattr(obj, attr), back[key], hints.get(attr), where, sub)
        for key in sorted(_required(cls) - ours.keys()):
            self.add(where, f"{path}.{key}" if path else key, "MISSING", f"required by {_model_name(cls)}")

    def panel_models(self, ours: dict, obj: dashboard.Panel, where: str) -> None:
        """A panel type without options/fieldConfig models, or a target decoded with another datasource's model."""
        config = cogruntime.panelcfg_config(ours.get("type", ""))
        if "options" in ours and (config is None or config.options_from_json_hook is None):
            self.add(where, "options", "NO MODEL", f"no options model for panel type {ours.get('type')!r}")
        custom = ours.get("fieldConfig", {}).get("defaults", {}).get("custom")
        if custom and (config is None or config.field_config_from_json_hook is None):
            self.add(
                where,
                "fieldConfig.defaults.custom",
                "NO MODEL",
                f"no field config model for panel type {ours.get('type')!r}",
            )
        panel_type = (ours.get("datasource") or {}).get("type", "")
        for i, target in enumerate(ours.get("targets", [])):
            own = (target.get("datasource") or {}).get("type", panel_type)
            if own != panel_type:
                # Grafana runs a target with its own datasource; the SDK decodes it with the panel's.
                self.add(
                    where,
                    f"targets[{i}].datasource.type",
                    "TYPE",
                    f"{own!r} under a {panel_type!r} panel: decoded with the wrong model",
                )


def check_dashboard(path: str, data: dict) -> list[Finding]:
    return Checker(f"{path} › (dashboard)").check(data, dashboard.Dashboard)


def _seconds(duration: str) -> int:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    return sum(int(n) * units[u] for n, u in re.findall(r"(\d+)([smhd])", duration))


def check_alerting(path: str, document: dict) -> list[Finding]:
    """File provisioning (apiVersion 1) nests rules in groups and spells a few things differently from the
    HTTP API model the SDK types. Only these documented equivalents are translated before decoding:
    group name/folder/orgId -> each rule's ruleGroup/folderUID/orgID (the file names the folder by title,
    Grafana resolves it on load), group name -> RuleGroup.title, interval "1m" -> seconds, and a rule's
    dashboardUid/panelId -> the __dashboardUid__/__panelId__ annotations Grafana stores them as."""
    findings: list[Finding] = []
    for group in document.get("groups", []):
        rules = []
        for rule in group.get("rules", []):
            api = {k: v for k, v in rule.items() if k not in ("dashboardUid", "panelId")}
            links = {"__dashboardUid__": rule.get("dashboardUid"), "__panelId__": rule.get("panelId")}
            api["annotations"] = {
                **rule.get("annotations", {}),
                **{k: str(v) for k, v in links.items() if v is not None},
            }
            api.update(orgID=group.get("orgId"), ruleGroup=group.get("name"), folderUID=group.get("folder"))
            rules.append(api)
            findings += Checker(f"{path} › {rule.get('title', '(untitled)')}").check(api, alerting.Rule)
        unmapped = {k: v for k, v in group.items() if k not in ("orgId", "name", "folder", "interval", "rules")}
        api_group = {
            "title": group.get("name"),
            "folderUid": group.get("folder"),
            "interval": _seconds(group.get("interval", "")),
            **unmapped,
        }
        findings += Checker(f"{path} › group {group.get('name')}").check(api_group, alerting.RuleGroup)
    return findings


def check_notifications(path: str, document: dict) -> list[Finding]:
    """Contact points and the notification policy. The file nests receivers under a named contact point and
    gives each policy an orgId; the SDK's models are the API's, one receiver each with the contact point's
    name, and a route without orgId. Only those documented equivalents are translated before decoding."""
    findings: list[Finding] = []
    for point in document.get("contactPoints", []):
        for receiver in point.get("receivers", []):
            findings += Checker(f"{path} › {point.get('name')} › {receiver.get('type')}").check(
                {**receiver, "name": point.get("name")}, alerting.ContactPoint
            )
    for policy in document.get("policies", []):
        findings += Checker(f"{path} › policy").check(
            {k: v for k, v in policy.items() if k != "orgId"}, alerting.NotificationPolicy
        )
    return findings


@pytest.fixture(scope="module")
def built() -> dict[str, str]:
    return build(ROOT).files


@pytest.fixture(scope="module")
def dashboards(built) -> dict[str, dict]:
    return {path: json.loads(text) for path, text in built.items() if path.endswith(".json")}


def test_every_dashboard_panel_and_target_survives_grafana12_models(dashboards):
    assert dashboards
    findings = [str(f) for path, data in sorted(dashboards.items()) for f in check_dashboard(path, data)]
    assert findings == []


def test_every_panel_type_and_datasource_of_the_build_has_a_grafana12_model(dashboards):
    panels = [p for d in dashboards.values() for p in panels_of(d) if p["type"] != "row"]
    assert {p["type"] for p in panels if cogruntime.panelcfg_config(p["type"]) is None} == set()
    kinds = {t["datasource"]["type"] for p in panels for t in p.get("targets", [])}
    assert kinds >= {"prometheus", "loki", "tempo"}
    assert {k for k in kinds if k not in cogruntime.Runtime().dataquery_variants} == set()


def test_every_grafana_managed_alert_rule_survives_grafana12_models(built):
    files = {p: t for p, t in built.items() if p.startswith("alerting/") and "alert-rules" in p}
    assert files
    rules = [r for t in files.values() for g in yaml.safe_load(t)["groups"] for r in g["rules"]]
    assert rules and all(len(r["data"]) >= 2 for r in rules), "every rule has a query and a condition to check"
    findings = [str(f) for path, text in sorted(files.items()) for f in check_alerting(path, yaml.safe_load(text))]
    assert findings == []


def test_the_contact_point_and_notification_policy_survive_grafana12_models(built):
    tree = build(ROOT).tree
    documents = {p: yaml.safe_load(built[p]) for p in (tree.contact_points, tree.notification_policy)}
    assert documents[tree.contact_points]["contactPoints"] and documents[tree.notification_policy]["policies"]
    findings = [str(f) for path, document in documents.items() for f in check_notifications(path, document)]
    assert findings == []


def test_a_contact_point_of_an_unknown_type_and_a_misspelt_policy_key_are_caught(built):
    tree = build(ROOT).tree
    point = yaml.safe_load(built[tree.contact_points])
    point["contactPoints"][0]["receivers"][0]["type"] = "carrier-pigeon"
    policy = yaml.safe_load(built[tree.notification_policy])
    policy["policies"][0]["group_wiat"] = "30s"
    findings = [str(f) for f in check_notifications("cp", point) + check_notifications("np", policy)]
    assert any("carrier-pigeon" in f for f in findings), findings
    assert any("group_wiat" in f and "UNKNOWN" in f for f in findings), findings


def _first_panel(dashboards, predicate) -> tuple[str, dict, dict]:
    for path, data in sorted(dashboards.items()):
        for panel in panels_of(data):
            if predicate(panel):
                return path, data, panel
    pytest.fail("the build has no such panel")


def _broken(dashboards, predicate, breakage) -> tuple[str, str, list[str]]:
    path, data, panel = _first_panel(dashboards, predicate)
    data = copy.deepcopy(data)
    target = next(p for p in panels_of(data) if p.get("id") == panel.get("id"))
    breakage(target)
    return path, panel["title"], [str(f) for f in check_dashboard(path, data)]


def _is_loki_timeseries(panel: dict) -> bool:
    return panel["type"] == "timeseries" and panel.get("datasource", {}).get("type") == "loki"


def test_a_prometheus_only_field_on_a_loki_query_is_caught(dashboards):
    path, title, found = _broken(
        dashboards, _is_loki_timeseries, lambda p: p["targets"][0].update(exemplar=False, format="time_series")
    )
    assert found == [
        f"{path} › {title} › targets[0].exemplar: UNKNOWN: not a field of loki.Dataquery",
        f"{path} › {title} › targets[0].format: UNKNOWN: not a field of loki.Dataquery",
    ]


def test_a_misplaced_table_option_and_a_wrong_type_are_caught(dashboards):
    def breakage(panel: dict) -> None:
        panel["options"]["footer"]["reducers"] = ["sum"]  # Grafana's footer reads `reducer`
        panel["options"]["cellHeight"] = "tall"  # not a TableCellHeight
        panel["fieldConfig"]["defaults"]["custom"]["width"] = "100px"  # a number of pixels
        panel["targets"][0]["instant"] = "true"

    path, title, found = _broken(
        dashboards, lambda p: p["type"] == "table" and p["datasource"]["type"] == "prometheus", breakage
    )
    assert sorted(found) == sorted(
        [
            f"{path} › {title} › options.footer.reducers: UNKNOWN: not a field of common.TableFooterOptions",
            f"{path} › {title} › options.cellHeight: TYPE: 'tall' is not TableCellHeight",
            f"{path} › {title} › fieldConfig.defaults.custom.width: TYPE: '100px' is not float",
            f"{path} › {title} › targets[0].instant: TYPE: 'true' is not bool",
        ]
    )


def test_a_target_under_a_panel_of_another_datasource_is_caught(dashboards):
    def breakage(panel: dict) -> None:
        panel["targets"][0]["datasource"] = {"type": "loki", "uid": "loki"}

    path, title, found = _broken(dashboards, lambda p: p["type"] == "stat", breakage)
    assert found == [
        f"{path} › {title} › targets[0].datasource.type: TYPE: 'loki' under a 'prometheus' panel: decoded with the wrong model"
    ]


def test_a_null_is_dropped_and_an_unknown_dashboard_key_is_caught(dashboards):
    path = sorted(dashboards)[0]
    data = copy.deepcopy(dashboards[path])
    data["refresh"] = None
    data["sharedCrosshair"] = True  # replaced by graphTooltip long ago
    assert [str(f) for f in check_dashboard(path, data)] == [
        f"{path} › (dashboard) › refresh: DROPPED: dashboard.Dashboard lost it in the round trip",
        f"{path} › (dashboard) › sharedCrosshair: UNKNOWN: not a field of dashboard.Dashboard",
    ]


def test_a_rule_field_the_model_refuses_is_caught(built):
    path = next(p for p in sorted(built) if p.startswith("alerting/") and "alert-rules" in p)
    document = copy.deepcopy(yaml.safe_load(built[path]))
    rule = document["groups"][0]["rules"][0]
    rule["noDataState"] = "Silence"  # not one of OK, Alerting, NoData, KeepLast
    rule["data"][0]["model"]["exemplar"] = "yes"
    found = [str(f) for f in check_alerting(path, document)]
    assert (
        f"{path} › {rule['title']} › noDataState: TYPE: 'Silence' is not one of 'OK', 'Alerting', 'NoData', 'KeepLast'"
        in found
    )
    assert f"{path} › {rule['title']} › data[0].model.exemplar: TYPE: 'yes' is not bool" in found

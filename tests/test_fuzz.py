"""Property: any text in any text field of the values either comes out as exactly that text in valid JSON,
or is rejected with a message naming the field. No text is ever evaluated as a template.

The normal run tries FUZZ_EXAMPLES (default 60) generated documents; `nox -s fuzz` tries 10,000.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, panels_of
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from dashkit.pipeline import BuildFailed, build

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "60"))
NASTY = [
    '"',
    "'",
    "\\",
    "{{ 7 * 7 }}",
    "{% raw %}",
    "{#",
    "#}",
    "${DS_MIMIR}",
    "$job",
    "|||",
    "\n",
    "\r\n",
    "\t",
    "\x00",
    "\x1b[31m",
    "\u2028",
    "é",
    "中文",
    "🚀",
    "</script>",
    "%s",
    "{}",
    "[]",
    ": ",
    "- ",
    "&anchor",
    "*alias",
    "!!python/object",
    "---",
    "...",
]
text = st.lists(st.one_of(st.sampled_from(NASTY), st.text(max_size=8)), min_size=1, max_size=6).map("".join)


def minimal_project(tmp: Path) -> Path:
    """The real templates and schemas with small values: one service, one panel per text field to fuzz."""
    for name in ("templates", "schemas"):
        shutil.copytree(ROOT / name, tmp / name, dirs_exist_ok=True)
    (tmp / "values" / "services").mkdir(parents=True, exist_ok=True)
    shutil.copy2(ROOT / "values" / "defaults.yaml", tmp / "values" / "defaults.yaml")
    catalog = {
        "metrics": {
            "up": {"type": "gauge", "service": "all", "help": "up"},
            "hits_total": {"type": "counter", "service": "all", "help": "hits", "labels": {"kind": ["a"]}},
        }
    }
    (tmp / "values" / "metrics.yaml").write_text(yaml.safe_dump(catalog))
    (tmp / "values" / "standard.yaml").write_text("leading_rows: []\ntrailing_rows: []\n")
    (tmp / "values" / "rules.yaml").write_text(
        "interval: 1m\nrunbook_base_url: https://example.invalid/r\nrecording: []\nalerts: []\nplatform_alerts: []\n"
    )
    return tmp


def write_values(root: Path, fields: dict) -> None:
    overview = {
        "title": fields["overview_title"],
        "description": fields["overview_description"],
        "tags": [fields["tag"]],
        "rows": [
            {
                "title": "Health",
                "panels": [
                    {
                        "type": "stat",
                        "title": "Up",
                        "description": "d",
                        "expr": 'min(up{job=~"$service"})',
                        "unit": "none",
                    }
                ],
            }
        ],
    }
    service = {
        "service": "svc",
        "title": fields["service_title"],
        "port": 9000,
        "description": fields["service_description"],
        "rows": [
            {
                "title": fields["row_title"],
                "panels": [
                    {
                        "type": "timeseries",
                        "title": fields["panel_title"],
                        "description": fields["panel_description"],
                        "expr": 'sum by (kind) (rate(hits_total{job="$job"}[$__rate_interval]))',
                        "legend": fields["legend"],
                        "unit": "reqps",
                        "links": [{"title": fields["link_title"], "url": fields["link_url"]}],
                    },
                    {
                        "type": "stat",
                        "title": "Up",
                        "description": "d",
                        "expr": 'min(up{job="$job"})',
                        "unit": "none",
                        "mappings": [{"value": 1, "text": fields["mapping_text"]}],
                    },
                    {
                        "type": "text",
                        "title": "Notes",
                        "description": "d",
                        "content": fields["content"],
                        "unit": "none",
                    },
                ],
            }
        ],
    }
    for rel, doc in (("values/overview.yaml", overview), ("values/services/svc.yaml", service)):
        # Double-quoted scalars: every character survives YAML (a plain scalar folds NEL, tabs, ...).
        text = yaml.safe_dump(doc, allow_unicode=True, default_style='"', width=1 << 20)
        assert yaml.safe_load(text) == doc, "the test's own YAML must round-trip"
        (root / rel).write_text(text, encoding="utf-8")


FIELDS = [
    "overview_title",
    "overview_description",
    "tag",
    "service_title",
    "service_description",
    "row_title",
    "panel_title",
    "panel_description",
    "legend",
    "link_title",
    "link_url",
    "mapping_text",
    "content",
]


@pytest.fixture(scope="module")
def fuzz_root(tmp_path_factory) -> Path:
    return minimal_project(tmp_path_factory.mktemp("fuzz"))


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(fields=st.fixed_dictionaries({name: text for name in FIELDS}))
def test_any_text_comes_out_verbatim_or_is_rejected_by_field(fuzz_root, fields):
    root = fuzz_root
    write_values(root, fields)
    try:
        result = build(root)
    except BuildFailed as failed:
        event("rejected")
        for problem in failed.problems:  # rejected: every line names a file, a line and a key path
            assert problem.where.file.startswith("values/") and problem.where.line >= 1 and problem.message
            assert problem.where.path, f"a rejection must name the field: {problem}"
        return
    event("accepted")
    files = result.dashboard_files()  # dashboard path (as in the snapshots) -> text
    svc = json.loads(files["services/svc.json"])
    overview = json.loads(files[next(d.path for d in result.dashboards if d.kind == "overview")])
    panels = {p["title"]: p for p in panels_of(svc)}
    row = next(p for p in svc["panels"] if p["type"] == "row")
    graph = next(p for p in svc["panels"] if p["type"] == "timeseries")
    assert overview["title"] == fields["overview_title"] and overview["description"] == fields["overview_description"]
    assert fields["tag"] in overview["tags"]
    assert (
        svc["title"] == fields["service_title"] and svc["description"] == fields["service_description"] + " Port 9000."
    )
    assert row["title"] == fields["row_title"]
    assert graph["title"] == fields["panel_title"] and graph["description"] == fields["panel_description"]
    assert graph["targets"][0]["legendFormat"] == (fields["legend"] or "__auto")
    assert graph["fieldConfig"]["defaults"]["links"][0]["title"] == fields["link_title"]
    assert graph["fieldConfig"]["defaults"]["links"][0]["url"] == fields["link_url"]
    assert panels["Up"]["fieldConfig"]["defaults"]["mappings"][0]["options"]["1"]["text"] == fields["mapping_text"]
    assert panels["Notes"]["options"]["content"] == fields["content"]


yaml_keys = st.one_of(
    st.sampled_from(["alert", "expr", "for", "on", "yes", "null", "1m", "a.b", "x-y", "ünï", "", " k", "#c"]),
    st.text(max_size=6),
)
yaml_values = st.recursive(
    st.one_of(
        st.none(), st.booleans(), st.integers(-(10**12), 10**12), st.floats(allow_nan=False, allow_infinity=False), text
    ),
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(yaml_keys, children, max_size=4)),
    max_leaves=20,
)


@settings(max_examples=max(EXAMPLES, 200), deadline=None, derandomize=True)
@given(document=st.dictionaries(yaml_keys, yaml_values, min_size=1, max_size=5))
def test_rule_and_provisioning_yaml_reads_back_as_written(document):
    from dashkit.write import serialise_yaml

    assert yaml.safe_load(serialise_yaml(document)) == document


@settings(max_examples=max(EXAMPLES, 200), deadline=None, derandomize=True)
@given(
    shell=st.dictionaries(yaml_keys, yaml_values, max_size=4),
    groups=st.lists(st.dictionaries(yaml_keys, yaml_values, min_size=1, max_size=4), max_size=4),
    at=st.integers(0, 4),
)
def test_a_rule_file_joined_group_by_group_on_disk_is_the_one_written_whole(tmp_path_factory, shell, groups, at):
    """A large build writes its joined rule files a group at a time beside out/ (spill.spill_yaml): the bytes
    are serialise_yaml's of the whole document, wherever the groups' key sits among the others."""
    from dashkit.spill import spill_yaml
    from dashkit.write import YamlPart, serialise_yaml, yaml_item

    items = list(shell.items())
    shell = dict([*items[:at], ("groups", []), *items[at:]])
    parts = [yaml_item(group, 2) for group in groups]
    path = spill_yaml(str(tmp_path_factory.mktemp("spill")), "rules/x.yaml", shell, "groups", iter(parts))
    whole = serialise_yaml({**shell, "groups": [YamlPart(part) for part in parts]})
    assert Path(path).read_bytes() == whole.encode("utf-8")

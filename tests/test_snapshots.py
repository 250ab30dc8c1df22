"""Every generated dashboard, as a reviewed snapshot. A change to values or templates shows up here as a
diff; `nox -s snapshots` accepts it. Which dashboards there are comes from values/: the overview and one
per values/services/*.yaml, so adding or removing a service needs no edit here."""

from __future__ import annotations

import pytest
import yaml
from conftest import ROOT
from syrupy.extensions.json import JSONSnapshotExtension


def expected_dashboards() -> list[str]:
    """The overview (named after the uid prefix) and one dashboard per service file, as dashboard paths."""
    prefix = yaml.safe_load((ROOT / "values" / "defaults.yaml").read_text(encoding="utf-8"))["uid_prefix"]
    services = [p.stem for p in (ROOT / "values" / "services").glob("*.yaml")]
    return sorted([f"{prefix}-overview.json", *(f"services/{service}.json" for service in services)])


EXPECTED = expected_dashboards()


def test_the_tree_is_exactly_the_specification_layout(tree):
    assert sorted(tree) == EXPECTED


@pytest.mark.parametrize("path", EXPECTED)
def test_dashboard_matches_snapshot(tree, path, snapshot):
    assert tree[path] == snapshot(extension_class=JSONSnapshotExtension)

"""Every generated dashboard, as a reviewed snapshot. A change to values or templates shows up here as a
diff; `nox -s snapshots` accepts it."""

from __future__ import annotations

import pytest
from syrupy.extensions.json import JSONSnapshotExtension

EXPECTED = [
    "pyairtable-overview.json",
    "services/airtable-gateway.json",
    "services/api-gateway.json",
    "services/automation-services.json",
    "services/llm-orchestrator.json",
    "services/mcp-server.json",
    "services/platform-services.json",
]


def test_the_tree_is_exactly_the_specification_layout(tree):
    assert sorted(tree) == EXPECTED


@pytest.mark.parametrize("path", EXPECTED)
def test_dashboard_matches_snapshot(tree, path, snapshot):
    assert tree[path] == snapshot(extension_class=JSONSnapshotExtension)

"""The grid helpers, and the laid-out dashboards they produce."""

from __future__ import annotations

import os
import subprocess
import sys

from conftest import ROOT, panels_of
from patches import insert_lines, line_of_path, yaml_lines

from dashkit.layout import flow, grids, overlaps, stable_id


def test_flow_wraps_when_the_next_panel_does_not_fit():
    positions, bottom = flow([(12, 8), (12, 8), (8, 4), (24, 2)], top=1)
    assert [(p["x"], p["y"]) for p in positions] == [(0, 1), (12, 1), (0, 9), (0, 13)]
    assert bottom == max(p["y"] + p["h"] for p in positions) == 1 + 8 + 4 + 2  # top, then the three lines' heights


def test_panels_without_a_height_grow_to_their_line():
    positions, bottom = flow(
        [(4, 4), (4, 4), (16, 8), (12, 3), (12, 6)], top=0, fixed=[False, True, False, False, False]
    )
    assert [p["h"] for p in positions] == [8, 4, 8, 6, 6]
    assert bottom == max(p["y"] + p["h"] for p in positions) == 8 + 6  # the two lines, each as tall as its tallest


def test_stable_ids_are_the_same_in_every_process():
    """Not Python's salted hash(): the id a panel had in the last deploy (alert links, ?viewPanel= bookmarks) is the
    one every later build, on any machine, gives it (the reviewed snapshots hold the ids of every deployed panel)."""
    probe = "from dashkit.layout import stable_id; print(stable_id('Requests', 'Error rate'))"
    for seed in ("0", "1", "random"):
        run = subprocess.run(
            [sys.executable, "-c", probe],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
        )
        assert int(run.stdout) == stable_id("Requests", "Error rate")


def test_stable_ids_tell_rows_and_titles_apart():
    titles = [f"Panel {i}" for i in range(2000)]
    ids = [stable_id("Requests", t) for t in titles]
    assert len(set(ids)) == len(ids)  # distinct titles in a row, distinct ids
    assert all(0 < i < 2**31 for i in ids)  # Grafana's panel id: a positive int32
    assert stable_id("Requests", "Error rate") != stable_id("Latency", "Error rate")  # same title, another row
    assert stable_id("Requests", "Error rate") != stable_id(
        "Error rate", "Requests"
    )  # row and title are not interchangeable
    assert stable_id("Requests", "Error rate") != stable_id("Requests Error", "rate")  # nor is where one ends


def test_overlap():
    assert overlaps({"x": 0, "y": 0, "w": 12, "h": 8}, {"x": 11, "y": 7, "w": 4, "h": 4})
    assert not overlaps({"x": 0, "y": 0, "w": 12, "h": 8}, {"x": 12, "y": 0, "w": 12, "h": 8})


def test_no_dashboard_has_overlapping_or_out_of_grid_panels(tree):
    for path, dash in tree.items():
        for grid in grids(dash):
            placed = [p["gridPos"] for p in grid]
            assert all(g["x"] + g["w"] <= 24 for g in placed), path
            clashes = [(a, b) for i, a in enumerate(placed) for b in placed[i + 1 :] if overlaps(a, b)]
            assert clashes == [], path
        ids = [p["id"] for p in panels_of(dash)]
        assert len(ids) == len(set(ids)), path


def test_the_row_after_a_collapsed_row_starts_right_under_its_header(tree):
    panels = next(dash for path, dash in tree.items() if not path.startswith("services/"))["panels"]  # the overview
    collapsed = next(i for i, p in enumerate(panels) if p.get("collapsed"))
    assert panels[collapsed + 1]["gridPos"]["y"] == panels[collapsed]["gridPos"]["y"] + 1


def test_inserting_a_panel_keeps_other_panel_ids(project, tree):
    service = min(p.stem for p in (project.path / "values" / "services").glob("*.yaml"))
    rel = f"values/services/{service}.yaml"
    first_row = line_of_path(yaml_lines(project.file(rel).read_text(encoding="utf-8")), ("rows", 0, "panels"))
    insert_lines(
        project.file(rel),
        first_row,
        "      - {type: stat, title: Zz new, description: d, expr: 'sum(up{job=\"$job\"})', unit: none}",
    )
    assert project.build().returncode == 0
    after = project.dashboard(f"services/{service}.json")
    before_ids = {p["title"]: p["id"] for p in panels_of(tree[f"services/{service}.json"])}
    after_ids = {p["title"]: p["id"] for p in panels_of(after)}
    assert {t: after_ids[t] for t in before_ids} == before_ids

"""The fusion proposal (geo/fusion.py) on a layout that can be checked by hand.

Unified grids: four 1 km squares in a row, B1 [0,1], B2 [1,2], B3 [2,3], B4 [3,4] (km, height 1).

城管 (city management):
  D1 = [0, 1.6] × [0, 1]          covers B1 (1.0 km²) and 60 % of B2 (0.6 km²)
  D2 = [1.6, 3] × [0, 1]          covers 40 % of B2 (0.4) and B3 (1.0)
  D3 = [3.2, 3.8] × [0.2, 0.8]    inside B4
  D4 = [5, 6] × [0, 1]            outside every unified grid
应急 (emergency):
  E1 = [0, 1.9] × [0, 1]          B1 (1.0), B2 (0.9)
  E2 = [1.9, 2.05] × [0, 1]       B2 (0.1), B3 (0.05)
  E3 = [2.05, 3] × [0, 1]         B3 (0.95)

By the rule: B1, B2 → D1 (0.6 > 0.4), B3 → D2, B4 → D3; so D1 adopts [B1, B2], D2 adopts [B3]
and keeps 1.0 / 1.4 of its area, D3 is aligned with B4, D4 is uncovered. For 应急: B1, B2 → E1,
B3 → E3 (0.95 > 0.05), and E3 lies inside B3 (aligned); E2 gets nothing and merges into E1
(it overlaps B2 most, which E1 took).
"""
from __future__ import annotations

import geopandas as gpd
import pandas as pd
import pytest
from shapely.geometry import box

from geo.fusion import STATUSES, proposal, status_counts
from geo.grids import fusion_report

KM = 1000.0


def _box(x0, y0, x1, y1):
    return box(x0 * KM, y0 * KM, x1 * KM, y1 * KM)


@pytest.fixture(scope="module")
def layout():
    basic = gpd.GeoDataFrame({"grid_id": ["B1", "B2", "B3", "B4"]},
                             geometry=[_box(i, 0, i + 1, 1) for i in range(4)], crs="EPSG:32649")
    dept = gpd.GeoDataFrame(
        {"department": ["城管"] * 4 + ["应急"] * 3,
         "grid_id": ["D1", "D2", "D3", "D4", "E1", "E2", "E3"]},
        geometry=[_box(0, 0, 1.6, 1), _box(1.6, 0, 3, 1), _box(3.2, 0.2, 3.8, 0.8),
                  _box(5, 0, 6, 1), _box(0, 0, 1.9, 1), _box(1.9, 0, 2.05, 1),
                  _box(2.05, 0, 3, 1)],
        crs="EPSG:32649")
    return dept, basic, fusion_report(dept, basic)


def test_proposal_by_hand(layout):
    dept, _, report = layout
    p = proposal(report.overlaps, dept).set_index("dept_grid_id")
    assert p.loc["D1", "status"] == "adopt" and p.loc["D1", "adopt"] == ["B1", "B2"]
    assert p.loc["D1", "area_kept_share"] == pytest.approx(1.0)
    assert p.loc["D2", "status"] == "adopt" and p.loc["D2", "adopt"] == ["B3"]
    assert p.loc["D2", "area_kept_share"] == pytest.approx(1.0 / 1.4)
    assert p.loc["D3", "status"] == "aligned" and p.loc["D3", "adopt"] == ["B4"]
    assert p.loc["D4", "status"] == "uncovered" and p.loc["D4", "adopt"] == []
    assert p.loc["E1", "adopt"] == ["B1", "B2"]
    assert p.loc["E3", "status"] == "aligned" and p.loc["E3", "adopt"] == ["B3"]
    assert p.loc["E2", "status"] == "merge" and p.loc["E2", "merge_with"] == "E1"
    assert p.loc["E2", "n_adopt"] == 0 and p.loc["E2", "area_kept_share"] == 0.0
    # D1 and D2 are split (two unified grids each); D3 lies in one
    assert p.loc[["D1", "D2", "D3"], "split"].tolist() == [True, True, False]
    assert p.loc["D2", "max_share"] == pytest.approx(1.0 / 1.4)


def test_every_unified_grid_has_one_owner(layout):
    dept, _, report = layout
    p = proposal(report.overlaps, dept)
    for _, part in p.groupby("department"):
        adopted = [b for lst in part["adopt"] for b in lst]
        assert len(adopted) == len(set(adopted))
    # merged grids point to a grid of their own department that adopts something
    merged = p[p["status"] == "merge"]
    for dept_name, target in zip(merged["department"], merged["merge_with"]):
        row = p[(p["department"] == dept_name) & (p["dept_grid_id"] == target)]
        assert len(row) == 1 and row["n_adopt"].iloc[0] > 0


def test_counts_agree_with_the_fusion_summary(layout):
    dept, _, report = layout
    p = proposal(report.overlaps, dept)
    s = report.summary.set_index("department")
    for dept_name, part in p.groupby("department"):
        assert len(part) == s.loc[dept_name, "n_grids"]
        assert int(part["split"].sum()) == s.loc[dept_name, "n_split"]
        assert part["aligned"].mean() == pytest.approx(s.loc[dept_name, "share_aligned"])
    counts = status_counts(p).set_index("department")
    assert list(counts.columns) == list(STATUSES)
    assert counts.loc["城管"].tolist() == [1, 2, 0, 1]
    assert counts.loc["应急"].tolist() == [1, 1, 1, 0]  # E3 aligned, E1 adopts, E2 merges


def test_without_the_grid_list_and_ties():
    # two department grids cover a unified grid equally: the smaller id takes it
    ov = pd.DataFrame({"department": ["X", "X"], "dept_grid_id": ["b", "a"],
                       "basic_grid_id": ["B", "B"], "overlap_km2": [0.5, 0.5],
                       "share_of_dept_grid": [0.5, 0.5]})
    p = proposal(ov).set_index("dept_grid_id")
    assert p.loc["a", "adopt"] == ["B"] and p.loc["b", "merge_with"] == "a"

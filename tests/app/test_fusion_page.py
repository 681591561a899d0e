"""The fusion page (app_pages/fusion.py) on the small demo city, its map's escaping and its
workbook.

Figures are compared with ``grid_fusion`` and with :func:`geo.fusion.proposal` run on the
stored ``grid_fusion_overlaps``.
"""
from __future__ import annotations

import io
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
from shapely.geometry import box

from app_pages import _fusion as fu
from geo.fusion import proposal
from pipelines.db import connect, read_table
from tests.app import apptest_kit as kit

PAGE = "app_pages/fusion.py"
TIMEOUT = 120


def stored(project: Path, sql: str, params=None) -> pd.DataFrame:
    con = connect(project / "gridgov.duckdb", read_only=True)
    try:
        return read_table(con, sql, params)
    finally:
        con.close()


@pytest.fixture(scope="module")
def demo(small_demo) -> Path:
    return small_demo


def test_fusion_page_figures(demo, monkeypatch):
    at = kit.open_page(demo, monkeypatch, PAGE, timeout=TIMEOUT)
    assert at.title[0].value == "多网融合：部门网格与统一网格"
    summary = stored(demo, "SELECT * FROM grid_fusion ORDER BY department")
    dept = at.selectbox(key="fusion_dept").value
    row = summary.set_index("department").loc[dept]
    cards = kit.metrics(at)
    assert cards["部门网格"] == f"{int(row['n_grids']):,}"
    assert cards["被分割"].startswith(f"{int(row['n_split']):,} ")
    assert cards["被基础网格覆盖"] == f"{1 - row['uncovered_share']:.1%}"

    overlaps = stored(demo, "SELECT * FROM grid_fusion_overlaps")
    grids = stored(demo, "SELECT department, grid_id FROM department_grids")
    want = proposal(overlaps, grids)
    want = want[want["department"] == dept]
    shown = next(d.value for d in at.dataframe if "建议" in d.value.columns)
    assert shown["部门网格编号"].tolist() == want["dept_grid_id"].tolist()
    assert shown["采用的基础网格"].tolist() == [", ".join(v) for v in want["adopt"]]
    assert int(shown["被分割"].sum()) == int(row["n_split"])
    assert shown["已对齐"].mean() == pytest.approx(row["share_aligned"])
    # every basic grid a department grid adopts is one of today's grids, adopted once
    basic = set(stored(demo, "SELECT grid_id FROM grids WHERE grid_type = 'basic'")["grid_id"])
    adopted = [b for v in want["adopt"] for b in v]
    assert adopted and set(adopted) <= basic and len(adopted) == len(set(adopted))

    at.toggle(key="fusion_only_split").set_value(True).run()
    assert not at.exception
    shown = next(d.value for d in at.dataframe if "建议" in d.value.columns)
    assert len(shown) == int(row["n_split"])
    assert at.get("download_button")[0].label == "下载融合表（Excel）"


def test_english(demo, monkeypatch):
    at = kit.open_page(demo, monkeypatch, PAGE, lang="en", timeout=TIMEOUT)
    assert at.title[0].value == "Grid fusion: department grids on the unified grids"
    assert "Adopts basic grids" in next(
        d.value for d in at.dataframe if "Proposal" in d.value.columns).columns


def test_workbook(demo):
    from openpyxl import load_workbook

    data = fu.load_fusion(str(demo / "gridgov.duckdb"), 0.0)
    book = load_workbook(io.BytesIO(fu.workbook_bytes(data["summary"], data["proposal"],
                                                      data["overlaps"])))
    assert book.sheetnames == ["部门概况 Departments", "融合建议 Proposal", "重叠明细 Overlaps"]
    sheet = book["融合建议 Proposal"]
    assert sheet.max_row - 1 == len(data["proposal"])
    assert sheet.page_setup.orientation == "landscape"
    heads = [c.value for c in sheet[1]]
    assert "采用的基础网格 Adopts basic grids" in heads
    assert book["重叠明细 Overlaps"].max_row - 1 == len(data["overlaps"])


def test_map_escapes_names():
    hostile = "<img src=x onerror=alert(1)>"
    dept = gpd.GeoDataFrame({"department": ["城管"], "grid_id": [hostile]},
                            geometry=[box(111.60, 40.80, 111.62, 40.81)], crs="EPSG:4326")
    basic = gpd.GeoDataFrame({"grid_id": ["B1", "B2"], "grid_type": ["basic"] * 2},
                             geometry=[box(111.60, 40.80, 111.61, 40.81),
                                       box(111.61, 40.80, 111.62, 40.81)], crs="EPSG:4326")
    ov = pd.DataFrame({"department": ["城管"] * 2, "dept_grid_id": [hostile] * 2,
                       "basic_grid_id": ["B1", "B2"], "overlap_km2": [0.9, 0.9],
                       "share_of_dept_grid": [0.5, 0.5]})
    prop = proposal(ov)
    fmap = fu.fusion_map(dept, basic, prop, metric_crs="EPSG:32649", lang="zh", tiles=None,
                         attribution=None)
    html = fmap.get_root().render()
    assert hostile not in html
    # escaped once, then JSON-encoded (& as \u0026) inside the map's script
    assert "\\u0026lt;img src=x onerror=alert(1)\\u0026gt;" in html
    assert "B1, B2" in html  # the proposal in the tooltip


def test_without_department_grids(project, monkeypatch):
    """A project without department grids: a message and the command, no traceback."""
    at = kit.open_page(project.dir, monkeypatch, PAGE, timeout=TIMEOUT)
    assert "department_grids" in at.info[0].value

"""End to end: demo → run → every contract table present and consistent."""
from __future__ import annotations

import subprocess
import sys

from pipelines.db import connect
from pipelines.run import available_stages, db_path

INPUT_TABLES = ["streets", "communities", "buildings", "incidents", "special_units", "barriers", "staff",
                "rejects", "runs"]
STAGE_TABLES = {
    "grids": ["grids", "grid_members", "plans", "grid_metrics"],
    "hotspots": ["hotspots", "grid_risk", "case_timeliness"],
    "staffing": ["staffing", "street_allocation", "staffing_explanation"],
    "cases": ["case_rates", "case_outcomes"],
}


def test_demo_run_writes_consistent_tables(small_demo):
    con = connect(db_path(small_demo), read_only=True)
    names = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    expected = list(INPUT_TABLES)
    for stage in available_stages():
        expected += STAGE_TABLES[stage]
    missing = [t for t in expected if t not in names]
    assert not missing, missing
    q = lambda sql: con.execute(sql).fetchone()[0]  # noqa: E731
    # every building and incident sits in a known community of a known street
    assert q("SELECT count(*) FROM buildings b LEFT JOIN communities c USING (community_code) "
             "WHERE c.community_code IS NULL") == 0
    assert q("SELECT count(*) FROM communities c LEFT JOIN streets s USING (street_code) "
             "WHERE s.street_code IS NULL") == 0
    assert q("SELECT count(*) FROM incidents WHERE NOT ST_Within(geometry, (SELECT ST_Union_Agg(geometry) "
             "FROM communities))") == 0
    assert q("SELECT count(DISTINCT building_id) FROM buildings") == q("SELECT count(*) FROM buildings")
    # geometries stored as lon/lat near Hohhot
    x, y = con.execute("SELECT avg(ST_X(ST_Centroid(geometry))), avg(ST_Y(ST_Centroid(geometry))) "
                       "FROM buildings").fetchone()
    assert 111.0 < x < 112.5 and 40.3 < y < 41.3
    # the run is recorded and its counts add up with rejects
    status, summary = con.execute("SELECT status, summary FROM runs ORDER BY started_at DESC LIMIT 1").fetchone()
    assert status == "success"
    import json

    layers = json.loads(summary)["ingest"]["layers"]
    for layer, c in layers.items():
        assert c["read"] == c["kept"] + c["rejected"], layer
        if layer in INPUT_TABLES:
            assert q(f"SELECT count(*) FROM {layer}") == c["kept"], layer
    # personal data columns of the demo's raw files never reach the database
    for t, cols in (("incidents", ("reporter_name", "reporter_phone")), ("staff", ("staff_name", "phone", "id_card"))):
        have = {r[0] for r in con.execute(f"DESCRIBE {t}").fetchall()}
        assert not have & set(cols)


def test_cli_help_and_export(small_demo, tmp_path):
    out = subprocess.run([sys.executable, "-m", "pipelines", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "demo" in out.stdout and "export" in out.stdout
    for fmt, suffix in (("geojson", ".geojson"), ("shp", ".shp"), ("gpkg", ".gpkg"), ("csv", ".csv"), ("xlsx", ".xlsx")):
        r = subprocess.run([sys.executable, "-m", "pipelines", "export", str(small_demo), "--table", "communities",
                            "--format", fmt, "--out", str(tmp_path / f"c{suffix}")], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        assert (tmp_path / f"c{suffix}").exists()
    assert (tmp_path / "c.cpg").read_text().upper().startswith("UTF")
    import geopandas as gpd

    back = gpd.read_file(tmp_path / "c.shp")  # Chinese names survive the .cpg round trip
    con = connect(db_path(small_demo), read_only=True)
    names = {r[0] for r in con.execute("SELECT community_name FROM communities").fetchall()}
    assert len(back) == len(names)
    assert names <= set(back.drop(columns="geometry").astype(str).stack())


def test_cli_run_failure_is_one_line_nonzero(tmp_path):
    r = subprocess.run([sys.executable, "-m", "pipelines", "-q", "run", str(tmp_path / "nope")],
                       capture_output=True, text=True)
    assert r.returncode != 0
    assert "does not exist" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_demo_plan_is_contiguous_and_tiles(small_demo):
    con = connect(db_path(small_demo), read_only=True)
    names = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    if "grids" not in names:
        import pytest

        pytest.skip("grids stage not installed")
    q = lambda sql: con.execute(sql).fetchone()[0]  # noqa: E731
    assert q("SELECT count(*) FROM grids WHERE ST_GeometryType(geometry) <> 'POLYGON'") == 0
    # each grid lies in its own community (to 1 m² of projection noise), and grids tile communities
    outside = q("""SELECT max(ST_Area(ST_Transform(ST_Difference(g.geometry, c.geometry), 'EPSG:4326', 'EPSG:4546',
                   always_xy := true))) FROM grids g JOIN communities c USING (community_code)""")
    assert outside < 1.0
    gap = q("""WITH u AS (SELECT community_code, ST_Union_Agg(geometry) AS g FROM grids GROUP BY 1)
               SELECT sum(ST_Area(ST_Difference(c.geometry, u.g))) / sum(ST_Area(c.geometry))
               FROM communities c JOIN u USING (community_code)""")
    assert gap < 1e-4  # under 0.01 % of the community area
    # every building is in exactly one grid of the current plan
    assert q("SELECT count(*) FROM buildings") == q("SELECT count(DISTINCT building_id) FROM grid_members")


def test_cli_export_report_opens_with_sheets(small_demo, tmp_path):
    import openpyxl

    out = tmp_path / "report.xlsx"
    r = subprocess.run([sys.executable, "-m", "pipelines", "export", str(small_demo), "--report", "--out", str(out)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    wb = openpyxl.load_workbook(out, read_only=True)
    from pipelines.stage_staffing import REPORT_SHEETS

    assert [s[0] for s in REPORT_SHEETS] == wb.sheetnames

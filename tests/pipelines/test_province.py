"""The synthetic province generator (gridgov/province.py, `gridgov demo DIR --province`).

A tiny province (about 5k buildings, 50k incidents) is built once per module; no timed asserts.
"""
from __future__ import annotations

import re
from pathlib import Path

import duckdb
import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import shapely

from gridgov import province as pv
from gridgov.demo_city import HOHHOT_DIR, _load_sources

SMALL = {"buildings": 5_000, "incidents": 50_000}
PART = re.compile(r"incidents/month=(\d{4}-\d{2})/part-(\d{5})\.parquet")


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("province") / "p"
    said: list[str] = []
    summary = pv.build_province(out, seed=11, progress=said.append, **SMALL)
    assert any("incidents" in m for m in said)
    return out, summary


def test_same_seed_same_bytes_whatever_the_chunking(tiny, tmp_path):
    out, _ = tiny
    first = _files(out)
    # other step size and two worker processes: not one byte differs
    again = tmp_path / "again"
    pv.build_province(again, seed=11, chunk_rows=3_000, workers=2, **SMALL)
    second = _files(again)
    assert sorted(first) == sorted(second)
    assert [k for k in first if first[k] != second[k]] == []
    other = tmp_path / "other"
    pv.build_province(other, seed=12, **SMALL)
    third = _files(other)
    parts = [k for k in first if k.startswith("incidents/")]
    assert any(first[k] != third.get(k) for k in parts)


def test_layout_like_the_demo(tiny):
    out, summary = tiny
    for name in pv.OUTPUT_FILES:
        assert (out / name).is_file(), name
    assert not (out / "incidents.csv").exists()
    readme = (out / "README.txt").read_text(encoding="utf-8")
    assert "SYNTHETIC" in readme and "99" in readme and "real boundaries" in readme
    b = gpd.read_parquet(out / "buildings.parquet")
    assert len(b) == summary["buildings"] and 4_000 <= len(b) <= 9_000
    assert b.crs.to_epsg() == 4326 and b["building_id"].is_unique and b.is_valid.all()
    assert {"households", "residents", "elderly", "community_code", "floors", "building_type"} <= set(b.columns)
    cm = gpd.read_file(out / "communities.geojson")
    st = gpd.read_file(out / "streets.geojson")
    assert cm["community_code"].is_unique and set(cm["street_code"]) == set(st["street_code"])
    # city 0 keeps the real codes and names of Hohhot (NBS 2023)
    towns = pd.read_csv(HOHHOT_DIR / "hohhot_townships_nbs2023.csv", dtype=str)
    assert set(zip(st["street_code"], st["street_name"])) <= set(zip(towns["code12"], towns["name"]))
    gr = gpd.read_file(out / "current_grids.geojson")
    staff = pd.read_csv(out / "staff.csv", dtype=str, keep_default_na=False)
    assert gr["grid_id"].is_unique and set(gr["staff_id"]) - {""} <= set(staff["staff_id"])
    assert staff["staff_id"].is_unique and len(staff) == summary["staff"]


def test_settings_give_empty_land_province_sized_cells(tiny):
    from pipelines.config import load_settings

    out, _ = tiny
    settings = load_settings(out)  # a TOML with one [grids] table, read by the product's loader
    assert settings["grids"]["max_cell_area"] == pv.PROVINCE_MAX_CELL_AREA == 250_000
    assert settings["allocation"]["budget"] > 0


def test_incidents_folder_is_hive_partitioned_by_month(tiny):
    out, summary = tiny
    files = sorted(p.relative_to(out).as_posix() for p in (out / "incidents").rglob("*") if p.is_file())
    assert files and all(PART.fullmatch(f) for f in files)
    months = sorted({PART.fullmatch(f).group(1) for f in files})
    assert months == [str(m) for m in pd.period_range("2024-01", "2025-12", freq="M")]
    assert len(files) == summary["incident_files"]
    total = 0
    for f in files:
        t = pq.read_table(out / f)
        assert tuple(t.column_names) == pv.INCIDENT_COLUMNS
        occ = t.column("occurred_at").to_pandas()
        assert (occ.dt.strftime("%Y-%m") == PART.fullmatch(f).group(1)).all()
        total += t.num_rows
    assert total == summary["incidents"]
    assert 0.9 * SMALL["incidents"] <= total <= 1.15 * SMALL["incidents"]
    con = duckdb.connect()
    glob = (out / "incidents" / "*" / "*.parquet").as_posix()
    q = con.execute(
        "SELECT count(*), count(DISTINCT incident_id), count(DISTINCT month), min(occurred_at), max(occurred_at) "
        "FROM read_parquet(?, hive_partitioning = true)", [glob]).fetchone()
    assert q[0] == q[1] == total and q[2] == 24
    assert str(q[3]) >= "2024-01-01" and str(q[4]) < "2026-01-01"
    bad = con.execute(
        "SELECT count(*) FROM read_parquet(?) r LEFT JOIN read_parquet(?) p ON r.repeat_of = p.incident_id "
        "WHERE r.repeat_of IS NOT NULL AND (p.incident_id IS NULL OR p.occurred_at > r.occurred_at)",
        [glob, glob]).fetchone()[0]
    assert bad == 0
    n_rep = con.execute("SELECT count(repeat_of) FROM read_parquet(?)", [glob]).fetchone()[0]
    assert n_rep > 0
    cats = {r[0] for r in con.execute("SELECT DISTINCT category FROM read_parquet(?)", [glob]).fetchall()}
    assert cats == {"dispute", "safety_hazard", "sanitation", "public_order", "complaint_12345"}


def test_incidents_lie_in_communities(tiny):
    out, _ = tiny
    cm = gpd.read_file(out / "communities.geojson")
    t = pq.read_table(out / "incidents" / "month=2025-07" / "part-00000.parquet", columns=["lon", "lat"])
    pts = shapely.points(t.column("lon").to_numpy(), t.column("lat").to_numpy())
    src, _ = shapely.STRtree(cm.geometry.values).query(pts, predicate="within")
    inside = len(np.unique(src)) / len(pts)
    assert inside >= 0.995


def test_ingest_accepts_the_province(tiny, tmp_path):
    from pipelines.config import load_settings
    from pipelines.db import connect
    from pipelines.ingest import ingest

    out, summary = tiny
    con = connect(tmp_path / "p.duckdb")
    try:
        report = ingest(out, con, load_settings(out)).as_dict()
        layers = report["layers"]
        for name in ("streets", "communities", "buildings", "staff", "current_grids", "incidents"):
            assert layers[name]["kept"] > 0, name
        assert layers["buildings"]["read"] == summary["buildings"]
        assert layers["incidents"]["read"] == summary["incidents"]
        assert layers["incidents"]["rejected"] <= 0.005 * summary["incidents"]
        n = con.execute("SELECT count(*) FROM incidents").fetchone()[0]
        assert n == layers["incidents"]["kept"]
    finally:
        con.close()


def test_cities_beyond_hohhot_are_labelled_copies():
    src = _load_sources(pv.TEMPLATE_DISTRICTS)
    plans = pv.plan_cities(src, 300_000, seed=3)
    assert [p["city"] for p in plans] == list(range(len(plans))) and len(plans) >= 2
    assert len(plans[0]["streets"]) == len(src["towns"])  # city 0: every real street of the nine
    assert sum(p["expected_buildings"] for p in plans) >= 300_000
    assert pv.city_code("150102001001", 0) == "150102001001"
    assert pv.city_code("150102001001", 3) == "990302001001"
    offsets = [pv.city_offset(p["city"]) for p in plans]
    assert offsets[0] == (0.0, 0.0) and len(set(offsets)) == len(offsets)
    for k, (x1, y1) in enumerate(offsets):  # far enough apart that the copies never overlap
        assert all(max(abs(x1 - x2), abs(y1 - y2)) >= pv.CITY_STEP_M for x2, y2 in offsets[k + 1:])
    assert pv.city_seed(3, 0) == 3 and pv.city_seed(3, 1) != pv.city_seed(3, 2)


def test_cli_demo_province(tmp_path, capsys):
    from pipelines.cli import main

    assert main(["demo", str(tmp_path / "p"), "--province", "--buildings", "1500", "--incidents", "4000",
                 "--seed", "5", "-q"]) == 0
    printed = capsys.readouterr().out
    assert "province" in printed and (tmp_path / "p" / "incidents").is_dir()
    assert main(["demo", str(tmp_path / "q"), "--buildings", "10"]) == 2  # only with --province
    assert main(["demo", str(tmp_path / "q"), "--province", "--small"]) == 2
    assert main(["demo", str(tmp_path / "p"), "--province", "--buildings", "1500", "-q"]) == 2  # not empty


def test_a_synthetic_copy_is_shifted_renamed_and_labelled(tmp_path, monkeypatch):
    from gridgov import demo_city as dc

    def two_cities(src, n, seed):  # one real street of 新城区 in Hohhot and in synthetic city 1
        plans = []
        for c in (0, 1):
            sc = pv.city_seed(seed, c)
            st = dc._make_streets(src, ("150102",), sc)
            st = st[st["street_code"] == dc.SMALL_STREET].reset_index(drop=True)
            plans.append({"city": c, "seed": sc, "streets": st, "dcodes": ("150102",), "expected_buildings": 1})
        return plans

    monkeypatch.setattr(pv, "plan_cities", two_cities)
    out = tmp_path / "two"
    s = pv.build_province(out, buildings=2, incidents=20_000, seed=4)
    assert s["cities"] == 2 and s["streets"] == 2
    st = gpd.read_file(out / "streets.geojson")
    copy = st[st["street_code"] != dc.SMALL_STREET].iloc[0]
    assert copy["street_code"] == "9901" + dc.SMALL_STREET[4:] and copy["district_code"] == "990102"
    assert copy["street_name"].endswith("·合成1") and copy["district_name"].startswith("合成1市")
    real = st[st["street_code"] == dc.SMALL_STREET].geometry.iloc[0]
    dx = copy.geometry.centroid.x - real.centroid.x
    assert 2.0 < dx < 3.5  # about 230 km east (in degrees at 41°N)
    cm = gpd.read_file(out / "communities.geojson")
    assert cm["community_code"].is_unique
    assert set(cm["community_code"].str[:4]) == {"1501", "9901"}
    assert cm.loc[cm["community_code"].str.startswith("99"), "community_name"].str.endswith("·合成1").all()
    b = gpd.read_parquet(out / "buildings.parquet")
    assert b["building_id"].is_unique
    assert set(b["community_code"].dropna().str[:4]) == {"1501", "9901"}
    gr = gpd.read_file(out / "current_grids.geojson")
    su = gpd.read_file(out / "special_units.geojson")
    dg = gpd.read_file(out / "department_grids.geojson")
    staff = pd.read_csv(out / "staff.csv", dtype=str, keep_default_na=False)
    for df, col in ((gr, "grid_id"), (su, "unit_id"), (dg, "grid_id"), (staff, "staff_id")):
        assert df[col].is_unique, col
    assert set(staff["street_code"]) == set(st["street_code"])
    east = shapely.get_x(shapely.centroid(su.geometry.values)) > real.centroid.x + 2
    assert east.any() and not su.loc[east, "unit_name"].str.contains("呼和浩特").any()
    inc = duckdb.connect().execute(
        "SELECT count(*) FILTER (WHERE lon > ?), count(*) FROM read_parquet(?)",
        [real.centroid.x + 2, (out / "incidents" / "*" / "*.parquet").as_posix()]).fetchone()
    assert 0 < inc[0] < inc[1]
    readme = (out / "README.txt").read_text(encoding="utf-8")
    assert "city 1: 合成1市 (SYNTHETIC copy, shifted +230 km east, +0 km north)" in readme

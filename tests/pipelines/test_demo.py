"""The seeded demo-city generator (gridgov/demo_city.py).

Fast tests use size="small" (one real street); the slow test builds the full city and checks
the census totals per district.
"""
from __future__ import annotations

import tomllib
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from gridgov.demo_city import HOHHOT_DIR, OUTPUT_FILES, SMALL_STREET, build_demo

METRIC = "EPSG:4546"


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("demo") / "small"
    messages: list[str] = []
    summary = build_demo(out, size="small", progress=messages.append)
    assert messages, "progress callback was never called"
    return out, summary


@pytest.fixture(scope="module")
def layers(small):
    out, _ = small
    return {
        "streets": gpd.read_file(out / "streets.geojson"),
        "communities": gpd.read_file(out / "communities.geojson"),
        "buildings": gpd.read_parquet(out / "buildings.parquet"),
        "special_units": gpd.read_file(out / "special_units.geojson"),
        "barriers": gpd.read_file(out / "barriers.geojson"),
        "current_grids": gpd.read_file(out / "current_grids.geojson"),
        "department_grids": gpd.read_file(out / "department_grids.geojson"),
        "incidents": pd.read_csv(out / "incidents.csv", dtype=str, keep_default_na=False),
        "staff": pd.read_csv(out / "staff.csv", dtype=str, keep_default_na=False),
        "truth": pd.read_csv(out / "truth" / "planted_hotspots.csv", dtype={"hotspot_id": str}),
    }


def _tiles(parts: gpd.GeoSeries, whole, rel: float = 1e-4) -> None:
    """``parts`` cover ``whole`` (areas within ``rel``) without overlapping each other."""
    union = shapely.union_all(parts.values)
    assert abs(union.area - whole.area) <= rel * whole.area
    assert shapely.symmetric_difference(union, whole).area <= rel * whole.area
    assert parts.area.sum() - union.area <= 1e-6 * whole.area  # no overlaps


def test_all_files_written(small):
    out, summary = small
    for name in OUTPUT_FILES:
        assert (out / name).is_file(), name
    assert summary["size"] == "small" and summary["streets"] == 1
    assert summary["buildings"] >= 1000 and summary["incidents"] >= 3000


def test_existing_folder_is_refused_unless_overwrite(small, tmp_path):
    out, _ = small
    with pytest.raises(FileExistsError) as e:
        build_demo(out, size="small")
    msg = str(e.value)
    assert "overwrite" in msg and any("\u4e00" <= ch <= "\u9fff" for ch in msg)  # bilingual
    with pytest.raises(ValueError):
        build_demo(tmp_path / "x", size="medium")


def test_geometries_valid_and_in_lonlat(layers):
    for name in ("streets", "communities", "buildings", "special_units", "barriers",
                 "current_grids", "department_grids"):
        g = layers[name]
        assert len(g) > 0, name
        assert g.is_valid.all() and not g.is_empty.any(), name
        assert g.crs is not None and g.crs.to_epsg() == 4326, name
        minx, miny, maxx, maxy = g.total_bounds
        assert 111.0 < minx and maxx < 112.5 and 40.3 < miny and maxy < 41.3, name
    assert set(layers["streets"].geom_type) == {"Polygon"}
    assert set(layers["communities"].geom_type) == {"Polygon"}
    assert set(layers["barriers"].geom_type) <= {"LineString", "MultiLineString"}


def test_communities_tile_streets(layers):
    st = layers["streets"].to_crs(METRIC)
    cm = layers["communities"].to_crs(METRIC)
    assert set(cm["street_code"]) == set(st["street_code"])
    for s in st.itertuples():
        _tiles(cm.loc[cm["street_code"] == s.street_code, "geometry"], s.geometry)


def test_current_grids_tile_communities(layers):
    cm = layers["communities"].to_crs(METRIC)
    gr = layers["current_grids"].to_crs(METRIC)
    assert gr["grid_id"].is_unique and set(gr["grid_type"]) == {"basic"}
    assert set(gr["community_code"]) == set(cm["community_code"])
    for c in cm.itertuples():
        _tiles(gr.loc[gr["community_code"] == c.community_code, "geometry"], c.geometry)
    staff_ids = set(layers["staff"]["staff_id"])
    assert set(gr["staff_id"]) - {""} - {None} <= staff_ids


def test_codes_and_names_are_real(layers):
    towns = pd.read_csv(HOHHOT_DIR / "hohhot_townships_nbs2023.csv", dtype=str)
    vill = pd.read_csv(HOHHOT_DIR / "hohhot_villages_nbs2023.csv", dtype=str)
    st, cm = layers["streets"], layers["communities"]
    real_st = set(zip(towns["code12"], towns["name"]))
    assert set(zip(st["street_code"], st["street_name"])) <= real_st
    assert st["street_code"].tolist() == [SMALL_STREET]
    assert (st["district_code"] == SMALL_STREET[:6]).all()
    real_cm = vill[vill["street_code9"] + "000" == SMALL_STREET]
    assert set(zip(cm["community_code"], cm["community_name"])) == set(zip(real_cm["code12"], real_cm["name"]))
    assert (cm["street_code"] == SMALL_STREET).all()
    kinds = dict(zip(real_cm["code12"], real_cm["kind"]))
    for code, kind in zip(cm["community_code"], cm["kind"]):
        assert kind == ("rural" if kinds[code] == "村委会" else "urban")
    assert set(st["function_type"]) <= {"core_commercial", "old_town", "residential",
                                        "new_development", "industrial", "urban_rural_fringe"}


def test_buildings(layers, small):
    _, summary = small
    b = layers["buildings"]
    assert b["building_id"].is_unique
    assert (b["households"] > 0).all() and (b["residents"] >= b["households"]).all()
    for col in ("elderly", "elderly_alone", "disabled", "low_income", "children", "renters", "floors"):
        assert col in b and (b[col] >= 0).all(), col
    assert (b["elderly_alone"] <= b["elderly"]).all()
    assert (b["elderly"] + b["children"] <= b["residents"]).all()
    blank = b["community_code"].isna().mean()
    assert 0.005 < blank < 0.08  # a few left for the ingest's spatial join
    codes = set(layers["communities"]["community_code"])
    assert set(b["community_code"].dropna()) <= codes
    # the building's centroid lies in its own community
    cm = layers["communities"]
    tree = shapely.STRtree(cm.geometry.values)
    src, hit = tree.query(shapely.centroid(b.geometry.values), predicate="within")
    assert len(np.unique(src)) == len(b)
    own = b["community_code"].values[src]
    ok = pd.isna(own) | (own == cm["community_code"].values[hit])
    assert ok.all()
    # buildings do not overlap
    bm = b.to_crs(METRIC)
    i, j = shapely.STRtree(bm.geometry.values).query(bm.geometry.values, predicate="intersects")
    assert (i == j).all()
    # totals: the street's share of the district's census totals
    c = summary["census"][SMALL_STREET[:6]]
    assert b["households"].sum() == c["households_target"] == summary["households"]
    assert b["residents"].sum() == c["residents_target"] == summary["residents"]
    assert 0.05 < c["households_target"] / c["census_households"] < 0.3


def test_incidents(layers):
    inc = layers["incidents"]
    assert inc["incident_id"].is_unique
    t = pd.to_datetime(inc["occurred_at"], format="%Y-%m-%d %H:%M:%S")
    assert t.min() >= pd.Timestamp("2024-01-01") and t.max() < pd.Timestamp("2026-01-01")
    assert t.dt.to_period("M").nunique() == 24
    assert set(inc["category"]) == {"dispute", "safety_hazard", "sanitation", "public_order", "complaint_12345"}
    comp = inc["category"] == "complaint_12345"
    assert (inc.loc[comp, "service_type"] != "").all() and (inc.loc[~comp, "service_type"] == "").all()
    assert set(inc.loc[comp, "service_type"]) <= {"water", "power", "gas", "heating", "property", "noise", "other"}
    assert set(inc["severity"].astype(int)) <= {1, 2, 3, 4, 5}
    assert set(inc["source"]) <= {"12345", "patrol", "app", "walk_in"}
    # heating complaints only in the heating season (15 Oct - 15 Apr)
    heat = t[inc["service_type"] == "heating"]
    md = heat.dt.month * 100 + heat.dt.day
    assert len(heat) > 0 and ((md >= 1015) | (md <= 415)).all()
    # sanitation peaks in summer
    san = t[inc["category"] == "sanitation"].dt.month
    assert san.isin([6, 7, 8]).sum() > 1.5 * san.isin([12, 1, 2]).sum()
    # times are ordered; open cases have no close time
    resp = pd.to_datetime(inc["responded_at"].replace("", None))
    close = pd.to_datetime(inc["closed_at"].replace("", None))
    assert (resp.dropna() >= t[resp.notna()]).all() and (close.dropna() >= t[close.notna()]).all()
    assert (inc.loc[inc["status"] != "closed", "closed_at"] == "").all()
    # repeats point to earlier incidents; staff ids exist
    rep = inc[inc["repeat_of"] != ""]
    assert len(rep) > 0
    ids = dict(zip(inc["incident_id"], t))
    assert all(ids[r] <= ids[i] for r, i in zip(rep["repeat_of"], rep["incident_id"]))
    assert set(inc["staff_id"]) - {""} <= set(layers["staff"]["staff_id"])


def test_incidents_inside_communities(layers):
    inc = layers["incidents"]
    pts = shapely.points(inc["lon"].astype(float).values, inc["lat"].astype(float).values)
    tree = shapely.STRtree(layers["communities"].geometry.values)
    src, _ = tree.query(pts, predicate="within")
    assert len(np.unique(src)) == len(inc)


def test_planted_hotspots(layers):
    h = layers["truth"]
    assert list(h.columns) == ["hotspot_id", "lon", "lat", "radius_m", "category", "kind",
                               "start_month", "extra_incidents"]
    assert len(h) == 3 and set(h["kind"]) == {"persistent", "new", "intensifying"}
    assert h["radius_m"].between(150, 400).all() and (h["extra_incidents"] > 0).all()
    # the planted cluster stands out against the same category around it
    inc = layers["incidents"]
    from pyproj import Transformer

    tr = Transformer.from_crs(4326, 4546, always_xy=True)
    x, y = tr.transform(inc["lon"].astype(float).values, inc["lat"].astype(float).values)
    for r in h.itertuples():
        hx, hy = tr.transform(r.lon, r.lat)
        d = np.hypot(x - hx, y - hy)
        same = inc["category"].values == r.category
        inside = (same & (d <= r.radius_m)).sum()
        ring = (same & (d > r.radius_m) & (d <= 2 * r.radius_m)).sum()  # 3x the area
        assert inside >= r.extra_incidents and inside > ring


def test_personal_data_columns_in_raw_files(layers):
    inc, staff = layers["incidents"], layers["staff"]
    assert {"reporter_name", "reporter_phone"} <= set(inc.columns)
    assert {"staff_name", "phone", "id_card"} <= set(staff.columns)
    phones = inc.loc[inc["reporter_phone"] != "", "reporter_phone"]
    assert len(phones) > 0 and phones.str.fullmatch(r"1380000\d{4}").all()
    assert staff["id_card"].str.fullmatch(r"000000\d{11}[\dX]").all()  # fake: no real region code


def test_staff_and_settings(layers, small):
    out, _ = small
    staff = layers["staff"]
    assert staff["staff_id"].is_unique and (staff["street_code"] == SMALL_STREET).all()
    assert set(staff["role"]) <= {"full_time", "part_time"} and (staff["grid_id"] == "").all()
    assert set(staff["community_code"]) <= set(layers["communities"]["community_code"])
    cfg = tomllib.loads((out / "gridgov.toml").read_text(encoding="utf-8"))
    assert cfg["crs"] == "EPSG:4326" and cfg["encoding"] == "auto"
    assert cfg["norms"]["urban"] == {"households_min": 300, "households_max": 500}
    assert cfg["allocation"]["min_per_street"] == 10
    assert cfg["allocation"]["budget"] == round(len(staff) * 1.1)
    readme = (out / "README.txt").read_text(encoding="utf-8")
    assert "SYNTHETIC" in readme and "天地图" in readme


def test_special_units_barriers_department_grids(layers):
    sp = layers["special_units"]
    assert sp["unit_id"].is_unique
    assert set(sp["unit_type"]) <= {"school", "hospital", "government", "industrial_park", "market",
                                    "commercial_building", "enterprise", "other"}
    assert {"school", "hospital", "government"} <= set(sp["unit_type"])
    assert (sp["households"] >= 0).all() and (sp["headcount"] > 0).all()
    assert set(layers["barriers"]["kind"]) <= {"major_road", "railway", "river"}
    dg = layers["department_grids"]
    assert set(dg["department"]) == {"城管", "应急"} and dg["grid_id"].is_unique


def test_same_seed_same_bytes(small, tmp_path):
    out, _ = small
    again = tmp_path / "again"
    build_demo(again, size="small")
    for name in OUTPUT_FILES:
        assert (out / name).read_bytes() == (again / name).read_bytes(), name
    other = tmp_path / "other"
    build_demo(other, size="small", seed=7)
    assert (out / "incidents.csv").read_bytes() != (other / "incidents.csv").read_bytes()


def test_overwrite_replaces_demo_files(tmp_path):
    out = tmp_path / "d"
    build_demo(out, size="small", seed=1)
    (out / "notes.txt").write_text("mine")
    build_demo(out, size="small", seed=2, overwrite=True)
    assert (out / "notes.txt").read_text() == "mine"  # other files are left alone
    assert "seed=2" in (out / "README.txt").read_text(encoding="utf-8")


@pytest.mark.slow
def test_full_city_matches_census(tmp_path):
    summary = build_demo(tmp_path / "full", size="full")
    assert summary["streets"] == 43 and summary["communities"] == 515
    assert 30_000 <= summary["buildings"] <= 60_000
    assert 150_000 <= summary["incidents"] <= 250_000
    assert summary["planted_hotspots"] == 8
    census = pd.read_csv(HOHHOT_DIR / "hohhot_census2020_districts.csv", dtype={"adcode": str}).set_index("adcode")
    b = gpd.read_parquet(tmp_path / "full" / "buildings.parquet")
    cm = gpd.read_file(tmp_path / "full" / "communities.geojson")
    # district of each building by its location (community_code is blank for a few)
    tree = shapely.STRtree(cm.geometry.values)
    src, hit = tree.query(shapely.centroid(b.geometry.values), predicate="within")
    district = np.empty(len(b), dtype=object)
    district[src] = cm["street_code"].str[:6].values[hit]
    assert pd.notna(district).all()
    for d in ("150102", "150103", "150104", "150105"):
        m = district == d
        hh, res = b["households"].values[m].sum(), b["residents"].values[m].sum()
        assert abs(hh / census.loc[d, "family_households"] - 1) <= 0.03, d
        assert abs(res / census.loc[d, "pop_total"] - 1) <= 0.03, d
    st = gpd.read_file(tmp_path / "full" / "streets.geojson").to_crs(METRIC)
    cmm = cm.to_crs(METRIC)
    for s in st.itertuples():
        _tiles(cmm.loc[cmm["street_code"] == s.street_code, "geometry"], s.geometry)

"""Ingest: every bad-input kind lands in rejects with its reason; good rows are all kept."""
from __future__ import annotations

import json
import zipfile
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
import shapely

from pipelines.db import connect, read_gdf
from pipelines.errors import InputFileError, SettingsError
from pipelines.run import db_path, run_project
from tests.conftest import LAT0, LON0, feature


def _tables(project: Path) -> dict:
    con = connect(db_path(project), read_only=True)
    try:
        names = [r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()]
        counts = {n: con.execute(f'SELECT count(*) FROM "{n}"').fetchone()[0] for n in names}
        rejects = con.execute("SELECT layer, source_row, reason, raw FROM rejects ORDER BY layer, source_row").df()
        cols = {n: [r[0] for r in con.execute(f'DESCRIBE "{n}"').fetchall()] for n in names}
    finally:
        con.close()
    return {"counts": counts, "rejects": rejects, "cols": cols}


def test_clean_project_loads_everything(tiny_project):
    summary = run_project(tiny_project, stages=[])
    t = _tables(tiny_project)
    assert t["counts"]["streets"] == 2 and t["counts"]["communities"] == 4
    assert t["counts"]["buildings"] == 40 and t["counts"]["incidents"] == 30
    assert t["counts"]["rejects"] == 0 and summary["ingest"]["rejected"] == 0
    # every building got its community and street by point-in-polygon
    con = connect(db_path(tiny_project), read_only=True)
    assert con.execute("SELECT count(*) FROM buildings WHERE community_code IS NULL OR street_code IS NULL").fetchone()[0] == 0
    b = con.execute("SELECT community_code FROM buildings WHERE building_id='B001'").fetchone()[0]
    assert b == "150102001001"
    areas = con.execute("SELECT area_km2 FROM communities").fetchnumpy()["area_km2"]
    # a 0.01° square at 40.8°N: 1113 m × 843 m ≈ 0.937 km²
    assert all(abs(a - 0.937) < 0.01 for a in areas)


def test_personal_data_never_enters_database(tiny_project):
    run_project(tiny_project, stages=[])
    t = _tables(tiny_project)
    assert "reporter_phone" not in t["cols"]["incidents"] and "reporter_name" not in t["cols"]["incidents"]
    assert "reporter_key" in t["cols"]["incidents"]
    for c in ("staff_name", "phone", "id_card"):
        assert c not in t["cols"]["staff"]
    raw = db_path(tiny_project).read_bytes()
    assert b"13912345678" not in raw and b"110101199003071234" not in raw and b"13800000001" not in raw


def _break_everything(project: Path) -> dict[str, int]:
    """Append one bad row of each kind; return expected rejects per layer."""
    b = (project / "buildings.csv").read_text(encoding="utf-8").splitlines()
    b += [
        f",10,20,0,{LON0 + 0.005},{LAT0 + 0.005}",                 # missing id
        f"B001,10,20,0,{LON0 + 0.005},{LAT0 + 0.005}",             # duplicate id
        f"B900,-5,20,0,{LON0 + 0.005},{LAT0 + 0.005}",             # negative households
        f"B901,abc,20,0,{LON0 + 0.005},{LAT0 + 0.005}",            # households not a number
        f"B902,10,20,0,{LON0 + 0.5},{LAT0 + 0.5}",                 # building in no street
        f"B903,10,20,0,x,{LAT0}",                                  # unparseable coordinates
    ]
    (project / "buildings.csv").write_text("\n".join(b) + "\n", encoding="utf-8")
    inc = (project / "incidents.csv").read_text(encoding="utf-8").splitlines()
    inc += [
        f"E900,not-a-date,dispute,3,{LON0 + 0.005},{LAT0 + 0.005},,",   # unparseable time
        f"E901,2024-03-01 10:00,dispute,3,{LON0 - 0.3},{LAT0},,",        # outside every community
        f"E902,2024-03-01 10:00,dispute,9,{LON0 + 0.005},{LAT0 + 0.005},,",  # severity out of range
    ]
    (project / "incidents.csv").write_text("\n".join(inc) + "\n", encoding="utf-8")
    gj = json.loads((project / "special_units.geojson").read_text(encoding="utf-8"))
    gj["features"].append(feature({"unit_id": "U3", "unit_name": "道路", "unit_type": "school"}, "LineString",
                                  [[LON0, LAT0], [LON0 + 0.001, LAT0 + 0.001]]))   # wrong geometry type
    gj["features"].append(feature({"unit_id": "U4", "unit_name": "某厂", "unit_type": "spaceport"}, "Point",
                                  [LON0 + 0.003, LAT0 + 0.003]))                  # unknown unit type
    (project / "special_units.geojson").write_text(json.dumps(gj, ensure_ascii=False), encoding="utf-8")
    return {"buildings": 6, "incidents": 3, "special_units": 2}


def test_one_bad_row_of_each_kind(tiny_project):
    expected = _break_everything(tiny_project)
    summary = run_project(tiny_project, stages=[])
    t = _tables(tiny_project)
    rej = t["rejects"]
    assert rej.groupby("layer").size().to_dict() == expected
    # good rows are all kept, and the counts add up
    assert t["counts"]["buildings"] == 40 and t["counts"]["incidents"] == 30 and t["counts"]["special_units"] == 2
    for layer, c in summary["ingest"]["layers"].items():
        assert c["read"] == c["kept"] + c["rejected"], layer
    reasons = dict(zip(zip(rej.layer, rej.source_row), rej.reason))
    assert "missing building_id" in reasons[("buildings", 41)]
    assert "duplicate building_id (same as row 1)" in reasons[("buildings", 42)]
    assert "households is negative" in reasons[("buildings", 43)] and "为负数" in reasons[("buildings", 43)]
    assert "not a number" in reasons[("buildings", 44)]
    assert "building lies in no street" in reasons[("buildings", 45)]
    assert "coordinates cannot be parsed" in reasons[("buildings", 46)]
    assert "occurred_at cannot be parsed" in reasons[("incidents", 31)]
    assert "outside every community" in reasons[("incidents", 32)]
    assert "severity must be 1–5" in reasons[("incidents", 33)]
    assert "wrong geometry type" in reasons[("special_units", 3)]
    assert "unit_type is not one of" in reasons[("special_units", 4)]
    # the raw row is kept as JSON, without personal data
    raw = json.loads(rej[(rej.layer == "buildings") & (rej.source_row == 43)].raw.iloc[0])
    assert raw["building_id"] == "B900" and int(raw["households"]) == -5
    assert not any("reporter_phone" in r or "reporter_name" in r or "13800000" in r for r in rej.raw)


def test_missing_required_layer_stops_with_clear_message(tiny_project):
    (tiny_project / "communities.geojson").unlink()
    with pytest.raises(InputFileError, match="Required layer communities is missing"):
        run_project(tiny_project)


def test_missing_required_column_names_file_and_fix(tiny_project):
    text = (tiny_project / "buildings.csv").read_text(encoding="utf-8").replace("households", "hh", 1)
    (tiny_project / "buildings.csv").write_text(text, encoding="utf-8")
    with pytest.raises(InputFileError, match=r"buildings\.csv .*lacks required columns \['households'\]") as exc:
        run_project(tiny_project)
    assert "columns.buildings" in str(exc.value) and "缺少必需列" in str(exc.value)


def test_failed_run_leaves_previous_database(tiny_project):
    run_project(tiny_project, stages=[])
    before = db_path(tiny_project).read_bytes()
    (tiny_project / "streets.geojson").write_text("{not json", encoding="utf-8")
    with pytest.raises(InputFileError, match="streets.geojson"):
        run_project(tiny_project, stages=[])
    assert db_path(tiny_project).read_bytes() == before
    assert not list(tiny_project.glob("*.tmp-*"))


def test_chinese_columns_gbk_csv_and_mapping(tiny_project):
    lines = (tiny_project / "buildings.csv").read_text(encoding="utf-8").splitlines()
    lines[0] = "楼栋编号,户数,常住人口,独居老人,经度,纬度"
    (tiny_project / "buildings.csv").write_bytes(("\n".join(lines) + "\n").encode("gbk"))
    run_project(tiny_project, stages=[])
    assert _tables(tiny_project)["counts"]["buildings"] == 40
    # a user mapping in gridgov.toml for a non-standard name
    lines[0] = "楼号,住户,人数,独居,lon,lat"
    (tiny_project / "buildings.csv").write_text("\n".join(lines) + "\n", encoding="gb18030")
    (tiny_project / "gridgov.toml").write_text(
        '[columns.buildings]\n"楼号" = "building_id"\n"住户" = "households"\n"人数" = "residents"\n', encoding="utf-8")
    run_project(tiny_project, stages=[])
    con = connect(db_path(tiny_project), read_only=True)
    assert con.execute("SELECT sum(households) FROM buildings").fetchone()[0] == sum(40 + j for j in range(10)) * 4


@pytest.mark.parametrize("fmt", ["gpkg", "shpzip", "shpdir", "geoparquet", "parquet_wkt", "csv_wkt"])
def test_every_format_reads_the_same(tiny_project, fmt):
    comms = gpd.read_file(tiny_project / "communities.geojson")
    (tiny_project / "communities.geojson").unlink()
    out = tiny_project / "communities"
    if fmt == "gpkg":
        comms.to_file(f"{out}.gpkg", driver="GPKG")
    elif fmt in ("shpzip", "shpdir"):
        out.mkdir()
        # shapefile field names stop at 10 characters: the user maps them in gridgov.toml
        comms.rename(columns={"community_code": "code", "community_name": "name_c", "street_code": "street"}).to_file(
            out / "communities.shp", encoding="UTF-8")
        (tiny_project / "gridgov.toml").write_text(
            '[columns.communities]\ncode = "community_code"\nname_c = "community_name"\nstreet = "street_code"\n',
            encoding="utf-8")
        if fmt == "shpzip":
            with zipfile.ZipFile(f"{out}.zip", "w") as zf:
                for f in out.iterdir():
                    zf.write(f, f.name)
            for f in out.iterdir():
                f.unlink()
            out.rmdir()
    elif fmt == "geoparquet":
        comms.to_parquet(f"{out}.parquet")
    elif fmt == "parquet_wkt":
        df = comms.assign(geometry=comms.geometry.to_wkt())
        pd.DataFrame(df).to_parquet(f"{out}.parquet")
    elif fmt == "csv_wkt":
        df = comms.assign(geometry=comms.geometry.to_wkt())
        pd.DataFrame(df).to_csv(f"{out}.csv", index=False, encoding="utf-8")
    run_project(tiny_project, stages=[])
    con = connect(db_path(tiny_project), read_only=True)
    got = read_gdf(con, "SELECT * FROM communities ORDER BY community_code")
    assert list(got.community_name) == ["社区11", "社区12", "社区21", "社区22"]
    assert got.to_crs(4546).geometry.area.sum() == pytest.approx(comms.to_crs(4546).geometry.area.sum(), rel=1e-9)


@pytest.mark.parametrize("crs", ["GCJ-02", "BD-09", "EPSG:4490"])
def test_offset_input_is_shifted_back_to_wgs84(tiny_project, crs):
    from geo.chinacrs import wgs84_to_bd09, wgs84_to_gcj02

    forward = {"GCJ-02": wgs84_to_gcj02, "BD-09": wgs84_to_bd09, "EPSG:4490": lambda x, y: (x, y)}[crs]
    lines = (tiny_project / "buildings.csv").read_text(encoding="utf-8").splitlines()
    out = [lines[0]]
    for line in lines[1:]:
        parts = line.split(",")
        lon, lat = forward(float(parts[-2]), float(parts[-1]))
        parts[-2], parts[-1] = f"{lon:.8f}", f"{lat:.8f}"
        out.append(",".join(parts))
    (tiny_project / "buildings.csv").write_text("\n".join(out) + "\n", encoding="utf-8")
    (tiny_project / "gridgov.toml").write_text(f'[layers.buildings]\ncrs = "{crs}"\n', encoding="utf-8")
    run_project(tiny_project, stages=[])
    con = connect(db_path(tiny_project), read_only=True)
    x, y = con.execute("SELECT ST_X(geometry), ST_Y(geometry) FROM buildings WHERE building_id='B001'").fetchone()
    assert abs(x - (LON0 + 0.001)) < 1e-6 and abs(y - (LAT0 + 0.002)) < 1e-6
    assert _tables(tiny_project)["counts"]["rejects"] == 0


def test_projected_crs_declared_and_undeclared(tiny_project):
    lines = (tiny_project / "buildings.csv").read_text(encoding="utf-8").splitlines()
    from pyproj import Transformer

    tr = Transformer.from_crs(4326, 4546, always_xy=True)
    out = [lines[0]]
    for line in lines[1:]:
        parts = line.split(",")
        x, y = tr.transform(float(parts[-2]), float(parts[-1]))
        parts[-2], parts[-1] = f"{x:.3f}", f"{y:.3f}"
        out.append(",".join(parts))
    (tiny_project / "buildings.csv").write_text("\n".join(out) + "\n", encoding="utf-8")
    with pytest.raises(InputFileError, match="look projected"):
        run_project(tiny_project, stages=[])
    (tiny_project / "gridgov.toml").write_text('[layers.buildings]\ncrs = "EPSG:4546"\n', encoding="utf-8")
    run_project(tiny_project, stages=[])
    assert _tables(tiny_project)["counts"]["buildings"] == 40


def test_invalid_polygon_is_repaired(tiny_project):
    gj = json.loads((tiny_project / "special_units.geojson").read_text(encoding="utf-8"))
    x, y = LON0 + 0.012, LAT0 + 0.002
    bowtie = [[[x, y], [x + 0.002, y + 0.002], [x + 0.002, y], [x, y + 0.002], [x, y]]]
    gj["features"].append(feature({"unit_id": "U9", "unit_name": "市场", "unit_type": "market"}, "Polygon", bowtie))
    (tiny_project / "special_units.geojson").write_text(json.dumps(gj), encoding="utf-8")
    s = run_project(tiny_project, stages=[])
    assert s["ingest"]["layers"]["special_units"]["repaired"] == 1
    con = connect(db_path(tiny_project), read_only=True)
    g = shapely.from_wkb(con.execute("SELECT ST_AsWKB(geometry) FROM special_units WHERE unit_id='U9'").fetchone()[0])
    assert g.is_valid and g.area > 0


def test_bad_settings_file(tiny_project):
    (tiny_project / "gridgov.toml").write_text("[norms.urban]\nhouseholds_min = 600\nhouseholds_max = 500\n")
    with pytest.raises(SettingsError, match="households_min=600"):
        run_project(tiny_project)
    (tiny_project / "gridgov.toml").write_text('crs = "Mars-42"\n')
    with pytest.raises(InputFileError, match="unknown coordinate reference system"):
        run_project(tiny_project)

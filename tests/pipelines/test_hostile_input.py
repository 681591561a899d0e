"""Hostile input through ingest: column names and values never become SQL, odd files and odd
values end as rejects or one-line messages (never a traceback), rejects keep the raw text."""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest

from pipelines.dates import parse_datetimes
from pipelines.db import connect, quote_ident, quote_literal, read_table, write_gdf
from pipelines.errors import GridgovError, InputFileError, MostlyRejectedError
from pipelines.export import export_table
from pipelines.run import db_path, run_project
from tests.conftest import LAT0, LON0, D, make_project, square, write_geojson


def _con(project: Path):
    return connect(db_path(project), read_only=True)


def _columns(con, table: str) -> list[str]:
    return [r[0] for r in con.execute(f"DESCRIBE {quote_ident(table)}").fetchall()]


def test_quote_helpers_double_their_quotes():
    assert quote_ident('a"b') == '"a""b"'
    assert quote_literal("it's") == "'it''s'"
    con = connect()
    name = 'x"; DROP TABLE t; --'
    con.execute(f"CREATE TABLE t AS SELECT 1 AS {quote_ident(name)}")
    assert con.execute("SELECT * FROM t").df().columns.tolist() == [name]
    # a table name is quoted whatever it holds; project queries (also after a comment) run as queries
    write_gdf(con, name, pd.DataFrame({name: [1, 2]}))
    assert read_table(con, name)[name].tolist() == [1, 2]
    assert read_table(con, "-- a comment\nSELECT 3 AS x")["x"].tolist() == [3]
    write_gdf(con, "select_columns", pd.DataFrame({"a": [4]}))
    assert read_table(con, "select_columns")["a"].tolist() == [4]


def test_hostile_column_names_are_data_not_sql(tiny_project, tmp_path_factory):
    target = tmp_path_factory.mktemp("out") / "pwned.csv"
    evil = f"a\"; COPY (SELECT 1) TO '{target.as_posix()}'; --"
    # GeoJSON property keys (communities and barriers)
    gj = json.loads((tiny_project / "communities.geojson").read_text(encoding="utf-8"))
    for k, f in enumerate(gj["features"]):
        f["properties"][evil] = f"v{k}"
        f["properties"]['"'] = "quote"
        f["properties"]["Note"] = "upper"
        f["properties"]["note"] = "lower"
    (tiny_project / "communities.geojson").write_text(json.dumps(gj, ensure_ascii=False), encoding="utf-8")
    # CSV headers (buildings): a quote, the injection, an empty header and a pipeline-internal name
    lines = (tiny_project / "buildings.csv").read_text(encoding="utf-8").splitlines()
    csv_evil = evil.replace('"', '""')
    lines[0] += f',"{csv_evil}","""",,__row'
    lines[1:] = [ln + ",x,y,z,w" for ln in lines[1:]]
    (tiny_project / "buildings.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    # values that look like SQL
    inc = (tiny_project / "incidents.csv").read_text(encoding="utf-8").splitlines()
    inc[1] = inc[1].replace("dispute", "x'); DROP TABLE buildings; --", 1)
    (tiny_project / "incidents.csv").write_text("\n".join(inc) + "\n", encoding="utf-8")

    run_project(tiny_project, stages=[])
    assert not target.exists()
    con = _con(tiny_project)
    try:
        assert con.execute("SELECT count(*) FROM communities").fetchone()[0] == 4
        assert con.execute("SELECT count(*) FROM buildings").fetchone()[0] == 40
        cols = _columns(con, "communities")
        assert evil in cols and '"' in cols and "Note" in cols and "note_2" in cols
        got = con.execute(f"SELECT {quote_ident(evil)} FROM communities ORDER BY community_code").fetchall()
        assert [r[0] for r in got] == ["v0", "v1", "v2", "v3"]
        bcols = _columns(con, "buildings")
        assert evil in bcols and '"' in bcols and not any(c.startswith("__") for c in bcols)
        cat = con.execute("SELECT category FROM incidents WHERE incident_id='E000'").fetchone()[0]
        assert cat == "x'); DROP TABLE buildings; --"
    finally:
        con.close()
    # and out again through every export format
    out_dir = tmp_path_factory.mktemp("export")
    for fmt in ("csv", "xlsx", "geojson", "gpkg"):
        path = export_table(db_path(tiny_project), "communities", fmt, out_dir / f"communities.{fmt}")
        back = pd.read_csv(path) if fmt == "csv" else pd.read_excel(path) if fmt == "xlsx" else gpd.read_file(path)
        assert evil in back.columns and sorted(back[evil]) == ["v0", "v1", "v2", "v3"], fmt
    assert not target.exists()


def _rejects(project: Path) -> pd.DataFrame:
    con = _con(project)
    try:
        return con.execute("SELECT layer, source_row, reason, raw FROM rejects ORDER BY layer, source_row").df()
    finally:
        con.close()


def _reason(rej: pd.DataFrame, layer: str, row: int) -> str:
    got = rej[(rej.layer == layer) & (rej.source_row == row)]
    assert len(got) == 1, (layer, row, rej[rej.layer == layer][["source_row", "reason"]].to_string())
    return got.reason.iloc[0]


M = 1 / (111_320 * math.cos(math.radians(LAT0)))  # one metre of longitude in degrees, near LAT0


def test_geometry_is_the_truth(tiny_project):
    inc = (tiny_project / "incidents.csv").read_text(encoding="utf-8").splitlines()
    inc[0] += ",community_code,街道编码"
    inc[1:] = [ln + ",," for ln in inc[1:]]
    x, y = LON0 + 0.005, LAT0 + 0.005  # inside community 150102001001 of street 150102001000
    inc += [
        "E900,2024-03-01 10:00,dispute,3,100.0,30.0,,,150102001001,",            # 31 far away, valid code
        f"E901,2024-03-01 10:00,dispute,3,{x},{y},,,150102002002,",              # 32 code of another community
        f"E902,2024-03-01 10:00,dispute,3,{LON0 - 30 * M},{y},,,,",              # 33 30 m outside: kept
        f"E903,2024-03-01 10:00,dispute,3,{x},{y},,,,150102002000",              # 34 street contradicts
        f"E904,2024-03-01 10:00,dispute,3,{x},{y},,,,150102001000",              # 35 street agrees: kept
        f"E905,2024-03-01 10:00,dispute,3,{LON0 - 100 * M},{y},,,,",             # 36 100 m outside
        f"E906,2024-03-01 10:00,dispute,3,{LON0 - 30 * M},{y},,,150102001001,",  # 37 30 m outside, own code
    ]
    (tiny_project / "incidents.csv").write_text("\n".join(inc) + "\n", encoding="utf-8")
    gj = json.loads((tiny_project / "communities.geojson").read_text(encoding="utf-8"))
    gj["features"].append({"type": "Feature", "properties": {
        "community_code": "150102001009", "community_name": "错街社区", "street_code": "150102001000"},
        "geometry": {"type": "Polygon", "coordinates": square(LON0 + D + 0.002, LAT0 + 0.002, 0.002, 0.002)}})
    (tiny_project / "communities.geojson").write_text(json.dumps(gj, ensure_ascii=False), encoding="utf-8")

    run_project(tiny_project, stages=[])
    rej = _rejects(tiny_project)
    assert "outside every community" in _reason(rej, "incidents", 31)
    r = _reason(rej, "incidents", 32)
    assert "community_code 150102002002 contradicts the location" in r and "150102001001" in r
    r = _reason(rej, "incidents", 34)
    assert "街道编码 (street_code) 150102002000 contradicts the location" in r and "与位置不符" in r
    assert "outside every community" in _reason(rej, "incidents", 36)
    assert "contradicts the geometry" in _reason(rej, "communities", 5)
    assert set(rej[rej.layer == "incidents"].source_row) == {31, 32, 34, 36}
    con = _con(tiny_project)
    try:
        got = dict(con.execute("SELECT incident_id, community_code || '/' || street_code FROM incidents "
                               "WHERE incident_id IN ('E902', 'E904', 'E906')").fetchall())
        cols = _columns(con, "incidents")
    finally:
        con.close()
    assert got == {"E902": "150102001001/150102001000", "E904": "150102001001/150102001000",
                   "E906": "150102001001/150102001000"}
    assert "街道编码" not in cols and cols.count("street_code") == 1


def test_dates_numbers_and_ids(tiny_project, monkeypatch):
    monkeypatch.setenv("GRIDGOV_NOW", "2025-06-30 12:00")
    inc = (tiny_project / "incidents.csv").read_text(encoding="utf-8").splitlines()
    inc[0] = inc[0].replace("occurred_at", "发生时间") + ",办结时间"
    inc[1:] = [ln + "," for ln in inc[1:]]
    x, y = LON0 + 0.005, LAT0 + 0.005
    rows = [
        ("2031-01-01 10:00", "3", ""),                    # 31 future
        ("1999-12-31 10:00", "3", ""),                    # 32 before 2000
        ("2025-03-05 10:00", "3", "2025-03-04 10:00"),    # 33 closed before occurred
        ("2025-03-05 10:00", "1e308", ""),                # 34 overflow
        ("2025-03-05 10:00", "inf", ""),                  # 35 infinity
        ("not-a-date", "3", ""),                          # 36 unparseable, raw kept
        ("2025年3月5日 14时20分", "3", "2025年03月06日"),     # 37 ok
        ("2025/3/5 14:20", "3", ""),                      # 38 ok
        ("45721.5972222", "3", ""),                       # 39 ok (Excel serial)
        ("2025-03-05T06:20:00Z", "3", ""),                # 40 ok (UTC → Shanghai)
        ("2025-06-30 18:00", "3", ""),                    # 41 ok: later today is not "after the run date"
    ]
    for k, (occ, sev, closed) in enumerate(rows):
        inc.append(f"E9{k:02d},{occ},dispute,{sev},{x},{y},,,{closed}")
    (tiny_project / "incidents.csv").write_text("\n".join(inc) + "\n", encoding="utf-8")
    b = (tiny_project / "buildings.csv").read_text(encoding="utf-8").splitlines()
    b[0] = b[0].replace("households", "户数")
    b += [f"B900,1e308,20,0,{x},{y}", f"B901,inf,20,0,{x},{y}", f"Ｂ００１,10,20,0,{x},{y}",
          f"Ｂ９０２,10,20,0,{x},{y}"]
    (tiny_project / "buildings.csv").write_text("\n".join(b) + "\n", encoding="utf-8")

    summary = run_project(tiny_project, stages=[])
    rej = _rejects(tiny_project)
    assert "发生时间 (occurred_at) is after the run date 2025-06-30" in _reason(rej, "incidents", 31)
    assert "before 2000" in _reason(rej, "incidents", 32)
    assert "办结时间 (closed_at) is before 发生时间 (occurred_at)" in _reason(rej, "incidents", 33)
    assert "severity is too large" in _reason(rej, "incidents", 34)
    assert "severity is not a finite number" in _reason(rej, "incidents", 35)
    r = _reason(rej, "incidents", 36)
    assert "发生时间 (occurred_at) cannot be parsed: 'not-a-date'" in r and "2025年3月5日" in r
    raw = json.loads(rej[(rej.layer == "incidents") & (rej.source_row == 36)].raw.iloc[0])
    assert raw["发生时间"] == "not-a-date" and raw["lon"] == str(x)
    raw = json.loads(rej[(rej.layer == "incidents") & (rej.source_row == 34)].raw.iloc[0])
    assert raw["severity"] == "1e308"
    assert set(rej[rej.layer == "incidents"].source_row) == {31, 32, 33, 34, 35, 36}
    assert "户数 (households) is too large" in _reason(rej, "buildings", 41)
    assert "户数 (households) is not a finite number" in _reason(rej, "buildings", 42)
    assert "duplicate building_id (same as row 1)" in _reason(rej, "buildings", 43)
    assert json.loads(rej[(rej.layer == "buildings") & (rej.source_row == 41)].raw.iloc[0])["户数"] == "1e308"
    assert summary["ingest"]["layers"]["incidents"]["kept"] == 35
    con = _con(tiny_project)
    try:
        times = con.execute("SELECT incident_id, strftime(occurred_at, '%Y-%m-%d %H:%M') FROM incidents "
                            "WHERE incident_id BETWEEN 'E906' AND 'E909' ORDER BY 1").fetchall()
        closed = con.execute("SELECT closed_at FROM incidents WHERE incident_id='E906'").fetchone()[0]
        b902 = con.execute("SELECT count(*) FROM buildings WHERE building_id='B902'").fetchone()[0]
    finally:
        con.close()
    assert [t for _, t in times] == ["2025-03-05 14:20"] * 4
    assert str(closed) == "2025-03-06 00:00:00" and b902 == 1


def test_date_parser_formats():
    got = parse_datetimes(pd.Series(["2025-03-05 14:20", "2025/3/5 14:20", "2025年3月5日 14时20分",
                                     "2025年03月05日", "45721.5972222", "2025-03-05T06:20:00Z",
                                     "2025-03-05T14:20:00+08:00", "２０２５－０３－０５ １４：２０", "2025-02-30",
                                     "05/03/2025", "", None], dtype="str"))
    want = ["2025-03-05 14:20"] * 3 + ["2025-03-05 00:00"] + ["2025-03-05 14:20"] * 4
    assert [t.strftime("%Y-%m-%d %H:%M") for t in got[:8]] == want
    assert got[8:].isna().all()
    serial = parse_datetimes(pd.Series([45721.5972222, float("inf"), 1e308]))
    assert str(serial[0]) == "2025-03-05 14:20:00" and serial[1:].isna().all()


def test_header_only_files(tiny_project):
    (tiny_project / "incidents.csv").write_text("incident_id,occurred_at,category,lon,lat\n", encoding="utf-8")
    write_geojson(tiny_project / "special_units.geojson", [])
    summary = run_project(tiny_project, stages=[])
    assert any("incidents.csv" in n and "no data rows" in n for n in summary["ingest"]["notes"])
    assert summary["ingest"]["layers"]["incidents"]["read"] == 0
    con = _con(tiny_project)
    try:
        assert con.execute("SELECT count(*) FROM buildings").fetchone()[0] == 40
    finally:
        con.close()
    (tiny_project / "buildings.csv").write_text("building_id,households,lon,lat\n", encoding="utf-8")
    with pytest.raises(InputFileError, match="buildings.csv .*has no data rows"):
        run_project(tiny_project, stages=[])


def _cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipelines", *args], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parents[2], timeout=600)


def test_bad_metric_crs_is_one_line(tiny_project):
    (tiny_project / "gridgov.toml").write_text('metric_crs = "EPSG:999999"\n', encoding="utf-8")
    with pytest.raises(GridgovError, match="metric_crs"):
        run_project(tiny_project, stages=[])
    (tiny_project / "gridgov.toml").write_text('metric_crs = "EPSG:4326"\n', encoding="utf-8")
    with pytest.raises(GridgovError, match="not a projected CRS in metres"):
        run_project(tiny_project, stages=[])
    out = _cli("ingest", str(tiny_project))
    assert out.returncode != 0 and "Traceback" not in out.stderr + out.stdout
    assert "metric_crs" in out.stderr + out.stdout


def test_mostly_rejected_layer_stops_and_keeps_the_database(tiny_project):
    run_project(tiny_project, stages=[])
    before = db_path(tiny_project).read_bytes()
    lines = (tiny_project / "buildings.csv").read_text(encoding="utf-8").splitlines()
    lines[1:31] = [ln.replace(",", ",-", 1) for ln in lines[1:31]]  # 30 of 40 households negative
    (tiny_project / "buildings.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(MostlyRejectedError, match=r"30 of 40 rows \(75%\) of layer buildings") as exc:
        run_project(tiny_project, stages=[])
    assert "households is negative" in str(exc.value) and "max_reject_share" in str(exc.value)
    assert db_path(tiny_project).read_bytes() == before
    out = _cli("run", str(tiny_project))
    assert out.returncode != 0 and "Traceback" not in out.stderr + out.stdout
    (tiny_project / "gridgov.toml").write_text("[ingest]\nmax_reject_share = 1.0\n", encoding="utf-8")
    run_project(tiny_project, stages=[])
    con = _con(tiny_project)
    try:
        assert con.execute("SELECT count(*) FROM buildings").fetchone()[0] == 10
    finally:
        con.close()


def test_xlsx_layer_with_chinese_headers_and_dates(tiny_project):
    inc = pd.read_csv(tiny_project / "incidents.csv", dtype=str)
    (tiny_project / "incidents.csv").unlink()
    inc = inc.rename(columns={"incident_id": "事件编号", "occurred_at": "发生时间", "category": "类别",
                              "lon": "经度", "lat": "纬度"})
    inc["发生时间"] = [f"2024年{1 + k % 9}月1{k % 10}日 08时30分" for k in range(len(inc))]
    inc["经度"] = inc["经度"].astype(float)
    inc["纬度"] = inc["纬度"].astype(float)
    inc.to_excel(tiny_project / "incidents.xlsx", index=False, sheet_name="工单")
    summary = run_project(tiny_project, stages=[])
    assert summary["ingest"]["files"]["incidents"] == "incidents.xlsx"
    con = _con(tiny_project)
    try:
        n, first = con.execute("SELECT count(*), min(occurred_at) FROM incidents").fetchone()
    finally:
        con.close()
    assert n == 30 and str(first) == "2024-01-10 08:30:00"


def test_utf8_shapefile_without_cpg(tiny_project):
    comms = gpd.read_file(tiny_project / "communities.geojson")
    (tiny_project / "communities.geojson").unlink()
    out = tiny_project / "communities"
    out.mkdir()
    comms = comms.rename(columns={"community_code": "code", "community_name": "name_c", "street_code": "street"})
    comms["备注"] = "老旧小区"
    comms.to_file(out / "communities.shp", encoding="UTF-8")
    (out / "communities.cpg").unlink(missing_ok=True)
    dbf = (out / "communities.dbf").read_bytes()
    with pytest.raises(UnicodeDecodeError):
        dbf.decode("utf-8")  # the header's binary fields are not UTF-8: only the records can tell
    (tiny_project / "gridgov.toml").write_text(
        '[columns.communities]\ncode = "community_code"\nname_c = "community_name"\nstreet = "street_code"\n',
        encoding="utf-8")
    run_project(tiny_project, stages=[])
    con = _con(tiny_project)
    try:
        names = [r[0] for r in con.execute("SELECT community_name FROM communities ORDER BY 1").fetchall()]
        remark = con.execute("SELECT 备注 FROM communities LIMIT 1").fetchone()[0]
    finally:
        con.close()
    assert names == ["社区11", "社区12", "社区21", "社区22"] and remark == "老旧小区"


def test_project_path_with_quote_and_space(tmp_path):
    project = make_project(tmp_path / "it's a city" / "新 城区")
    run_project(project, stages=[])
    run_project(project, stages=[])  # the second run opens the first run's database
    con = _con(project)
    try:
        assert con.execute("SELECT count(*) FROM runs").fetchone()[0] == 2
        assert con.execute("SELECT count(*) FROM buildings").fetchone()[0] == 40
    finally:
        con.close()


def test_a_line_with_too_many_fields_is_a_reject(tiny_project):
    lines = (tiny_project / "buildings.csv").read_text(encoding="utf-8").splitlines()
    lines.insert(3, f"B100,10,20,0,{LON0 + 0.005},{LAT0 + 0.005},多出,的字段")  # data row 3
    lines.insert(6, "")  # a blank line is skipped, not counted
    (tiny_project / "buildings.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    summary = run_project(tiny_project, stages=[])
    rej = _rejects(tiny_project)
    r = _reason(rej, "buildings", 3)
    assert "this line has 8 fields, more than the header's 6" in r and "字段" in r
    assert json.loads(rej.raw.iloc[0])["line"].startswith("B100,10,20,0,")
    assert summary["ingest"]["layers"]["buildings"] == {**summary["ingest"]["layers"]["buildings"],
                                                         "read": 41, "kept": 40, "rejected": 1}
    con = _con(tiny_project)
    try:
        assert con.execute("SELECT count(*) FROM buildings").fetchone()[0] == 40
    finally:
        con.close()


def test_utf8_csv_with_a_gbk_line_pasted_in(tiny_project):
    lines = (tiny_project / "buildings.csv").read_text(encoding="utf-8").splitlines()
    lines[0] = lines[0].replace("building_id", "楼栋编号") + ",备注"
    body = [(ln + ",正常").encode("utf-8") for ln in lines[1:]]
    body[4] = (lines[5] + ",老旧小区").encode("gbk")  # data row 5 saved from another program
    (tiny_project / "buildings.csv").write_bytes(b"\n".join([lines[0].encode("utf-8"), *body]) + b"\n")
    summary = run_project(tiny_project, stages=[])
    assert any("1 line(s) are GBK" in n for n in summary["ingest"]["notes"])
    con = _con(tiny_project)
    try:
        remarks = dict(con.execute("SELECT building_id, 备注 FROM buildings").fetchall())
    finally:
        con.close()
    assert len(remarks) == 40 and remarks["B005"] == "老旧小区" and remarks["B001"] == "正常"


def test_mapping_onto_a_reserved_name_is_a_settings_error(tiny_project):
    (tiny_project / "gridgov.toml").write_text('[columns.buildings]\nresidents = "__row"\n', encoding="utf-8")
    with pytest.raises(GridgovError, match=r"maps to a name the platform reserves"):
        run_project(tiny_project, stages=[])


def test_old_excel_file_is_one_clear_message(tiny_project):
    (tiny_project / "incidents.csv").unlink()
    (tiny_project / "incidents.xls").write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 504)
    with pytest.raises(InputFileError, match=r"incidents\.xls is an old Excel \(\.xls\) file; save it as \.xlsx"):
        run_project(tiny_project, stages=[])


def test_an_impossible_date_after_many_good_ones_is_nat_not_a_recursion():
    # the fast path for "YYYY-MM-DD HH:MM:SS" leaves 2025-02-30 unparsed; parsing the leftovers
    # must not take the fast path again (it recursed until RecursionError)
    import pandas as pd

    from pipelines import dates

    s = pd.Series(["2024-01-01 08:40:06"] * 60 + ["2025-02-30 10:00:00", "2024/03/05 10:00"],
                  dtype="str")
    got = dates.parse_datetimes(s)
    assert got.iloc[:60].eq(pd.Timestamp("2024-01-01 08:40:06")).all()
    assert pd.isna(got.iloc[60])
    assert got.iloc[61] == pd.Timestamp("2024-03-05 10:00:00")

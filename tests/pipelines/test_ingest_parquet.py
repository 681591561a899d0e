"""Incidents as a folder of Parquet files (hive-partitioned by month), validated and located in DuckDB
(issue #13.2): the same ``incidents`` table as the CSV path, the same rejects, no SQL from names,
no personal data stored."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from pipelines import ingest_parquet
from pipelines.config import load_settings
from pipelines.db import connect
from pipelines.ingest import ingest

NOW = "2026-06-30 12:00"


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    from gridgov.demo_city import build_demo

    root = tmp_path_factory.mktemp("pq") / "demo"
    build_demo(root, size="small")
    return root


def _copy(demo: Path, dst: Path) -> Path:
    shutil.copytree(demo, dst, ignore=shutil.ignore_patterns("gridgov.duckdb*", "incidents.csv", "truth"))
    return dst


def _csv(demo: Path) -> pd.DataFrame:
    return pd.read_csv(demo / "incidents.csv", dtype=str, keep_default_na=False, na_values=[""])


def _to_folder(df: pd.DataFrame, folder: Path, name: str = "part-0.parquet") -> list[Path]:
    """Hive-partitioned by month, as exports arrive: folder/month=2024-01/part-0.parquet …"""
    out = []
    months = df["occurred_at"].astype(str).str.slice(0, 7).where(df["occurred_at"].notna(), "none")
    for m, g in df.groupby(months, sort=True):
        d = folder / f"month={m}"
        d.mkdir(parents=True, exist_ok=True)
        g.to_parquet(d / name, index=False)
        out.append(d / name)
    return out


def _ingest(project: Path, monkeypatch, **extra) -> tuple:
    monkeypatch.setenv("GRIDGOV_NOW", NOW)
    settings = load_settings(project)
    for sec, kv in extra.items():
        settings.setdefault(sec, {}).update(kv)
    con = connect(":memory:")
    report = ingest(project, con, settings)
    return con, report


def _table(con, name: str = "incidents") -> pd.DataFrame:
    return con.execute(f"SELECT * EXCLUDE geometry, ST_AsText(geometry) AS wkt FROM {name}").df()


def _types(con, name: str = "incidents") -> list:
    return [tuple(r[:2]) for r in con.execute(f"DESCRIBE {name}").fetchall()]


def test_folder_gives_the_csv_paths_incidents(demo, tmp_path, monkeypatch):
    """The demo's incidents as a hive-partitioned folder: the same rows, columns and types as the CSV."""
    a = _copy(demo, tmp_path / "csv")
    shutil.copy(demo / "incidents.csv", a / "incidents.csv")
    b = _copy(demo, tmp_path / "folder")
    files = _to_folder(_csv(demo), b / "incidents")
    assert len(files) >= 12
    con_a, rep_a = _ingest(a, monkeypatch)
    shutil.copy(a / ".gridgov-salt", b / ".gridgov-salt")  # same salt: same reporter keys
    con_b, rep_b = _ingest(b, monkeypatch)
    assert rep_b.files["incidents"] == "incidents/"
    assert rep_a.layers["incidents"]["read"] == rep_b.layers["incidents"]["read"] == len(_csv(demo))
    assert rep_a.layers["incidents"]["rejected"] == rep_b.layers["incidents"]["rejected"] == 0
    assert rep_b.layers["incidents"]["pii_columns_dropped"] == ["reporter_name", "reporter_phone"]
    assert _types(con_a) == _types(con_b)
    ta = _table(con_a).sort_values("incident_id").reset_index(drop=True)
    tb = _table(con_b).sort_values("incident_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(ta, tb)
    assert tb["community_code"].notna().all() and tb["street_code"].notna().all()
    assert tb["reporter_key"].notna().sum() > 0.5 * len(tb)  # the demo gives a phone for about 60 %
    # the folder is read in path order (month by month), each file in its row order
    order = con_b.execute("SELECT incident_id FROM incidents").fetchnumpy()["incident_id"].tolist()
    expect = pd.concat([pd.read_parquet(f) for f in sorted((b / "incidents").rglob("*.parquet"))])
    assert order == expect["incident_id"].tolist()
    # the stages' other inputs are untouched
    for t in ("communities", "buildings", "streets"):
        assert con_a.execute(f"SELECT count(*) FROM {t}").fetchone() == con_b.execute(f"SELECT count(*) FROM {t}").fetchone()


def _typed(df: pd.DataFrame) -> pd.DataFrame:
    out = df.copy()
    out["severity"] = pd.to_numeric(out["severity"]).astype("Int64")
    out["lon"] = out["lon"].astype(float)
    out["lat"] = out["lat"].astype(float)
    for c in ("occurred_at", "closed_at"):
        out[c] = pd.to_datetime(out[c])
    return out


@pytest.mark.parametrize("typed", [False, True], ids=["text", "typed-geoparquet"])
def test_one_parquet_file_streamed_equals_pandas_path(demo, tmp_path, monkeypatch, typed):
    """One incidents.parquet: the DuckDB path (threshold 0) writes exactly the pandas path's table, in order."""
    df = _csv(demo).iloc[:3000].copy()
    phones = ["+86 138-1234-5678", "１３８１２３４５６７８", "0086 13812345678", "(0471)1234567", ""]
    df.loc[df.index[:5], "reporter_phone"] = phones  # one reporter key for the first three
    df = _typed(df) if typed else df
    p = _copy(demo, tmp_path / "one")
    if typed:  # GeoParquet: the points in a geometry column
        import geopandas as gpd

        df = gpd.GeoDataFrame(df.drop(columns=["lon", "lat"]), crs="EPSG:4326",
                              geometry=gpd.points_from_xy(df["lon"], df["lat"]))
    df.to_parquet(p / "incidents.parquet", index=False)
    con_s, rep_s = _ingest(p, monkeypatch, ingest={"stream_threshold_mb": 0})
    con_p, rep_p = _ingest(p, monkeypatch, ingest={"stream_threshold_mb": 10_000})
    assert ingest_parquet.wants_stream(p / "incidents.parquet", "incidents", {"ingest": {"stream_threshold_mb": 0}})
    assert rep_s.layers["incidents"] == rep_p.layers["incidents"]
    assert _types(con_s) == _types(con_p)
    pd.testing.assert_frame_equal(_table(con_s), _table(con_p))
    keys = _table(con_s)["reporter_key"].iloc[:5].tolist()
    assert keys[0] == keys[1] == keys[2] != keys[3] and keys[0] is not None and pd.isna(keys[4])


HOSTILE_COL = 'x"; COPY (SELECT 42) TO \'PWNED\'; --'


def _far_community(demo: Path, lon: float, lat: float) -> str:
    import geopandas as gpd
    import shapely

    comms = gpd.read_file(demo / "communities.geojson").to_crs("EPSG:4546")
    pt = gpd.GeoSeries([shapely.Point(lon, lat)], crs="EPSG:4326").to_crs("EPSG:4546").iloc[0]
    return str(comms.loc[comms.distance(pt).idxmax(), "community_code"])


def _bad_rows(good: pd.DataFrame, demo: Path) -> tuple[pd.DataFrame, dict[str, str]]:
    """Good rows with one bad row of each kind appended (every column text, as exports are);
    returns the frame and, per bad incident_id, a fragment its reason must hold."""
    base = good.iloc[0].to_dict()
    far = _far_community(demo, float(base["lon"]), float(base["lat"]))
    lat = base["lat"]
    rows, expect = [], {}

    def bad(iid, frag, **kv):
        r = dict(base, incident_id=iid, **kv)
        rows.append(r)
        if iid:
            expect[iid] = frag

    bad("BAD-COORD", "coordinates cannot be parsed (lon='x', lat=", lon="x")
    bad("BAD-FAR", "location is outside every community", lon="100.0", lat="30.0")
    bad("BAD-RANGE", "coordinates outside lon/lat range", lon="500", lat=lat)
    bad("BAD-DATE", "time occurred_at cannot be parsed: 'not-a-date'", occurred_at="not-a-date")
    bad("BAD-FUTURE", "occurred_at is after the run date 2026-06-30 (2031-01-01 10:00:00)",
        occurred_at="2031-01-01 10:00:00", accepted_at=None, dispatched_at=None, responded_at=None, closed_at=None)
    bad("BAD-OLD", "occurred_at is before 2000", occurred_at="1999-01-01 10:00:00")
    bad("BAD-SEV", "severity must be 1–5", severity="9")
    bad("BAD-HUGE", "severity is too large (limit 1000000)", severity="1e308")
    bad("BAD-INF", "severity is not a finite number", severity="inf")
    bad("BAD-NUM", "severity is not a number", severity="high")
    bad("BAD-CAT", "missing required value category", category="  ")
    bad("BAD-ORDER", "closed_at is before occurred_at", closed_at="2020-01-01 00:00:00")
    bad("BAD-COMM", "community_code not found in the communities layer", community_code="999999999999")
    bad("BAD-CONTRA", f"community_code {far} contradicts the location, which lies in community", community_code=far)
    bad("BAD-STREET", "street_code 150102999000 contradicts the location: its community", street_code="150102999000")
    bad(None, "")  # missing id
    bad(base["incident_id"], "")  # duplicate of the first good row: expected separately
    return pd.DataFrame(rows), expect


def test_hostile_folder(demo, tmp_path, monkeypatch):
    """SQL in a column name, a quote in a file name, bad rows of each kind, personal data in free text."""
    monkeypatch.chdir(tmp_path)
    good = _csv(demo).iloc[:400].copy()
    good[HOSTILE_COL] = "ok"
    good["备注"] = "居民反映噪音"
    good.loc[good.index[5], "备注"] = "请回电 138-1234-5678 或 13912345678，身份证 110101199003071234"
    good["community_code"] = None
    good["street_code"] = None
    badf, expect = _bad_rows(good, demo)
    p = _copy(demo, tmp_path / "hostile")
    folder = p / "incidents"
    _to_folder(good, folder)
    (folder / "month=2099-12").mkdir()
    badf.to_parquet(folder / "month=2099-12" / "it's; DROP TABLE x.parquet", index=False)
    con, rep = _ingest(p, monkeypatch)
    # nothing ran: no file written by a COPY, no table dropped or made
    assert not (tmp_path / "PWNED").exists() and not Path("PWNED").exists()
    tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    assert {"incidents", "rejects", "communities"} <= tables and not any(t.startswith("__inc") for t in tables)
    # good rows all kept, with the hostile column stored under its own name
    inc = con.execute("SELECT * EXCLUDE geometry FROM incidents").df()
    assert len(inc) == len(good)
    assert sorted(inc["incident_id"]) == sorted(good["incident_id"])
    assert HOSTILE_COL in inc.columns and (inc[HOSTILE_COL] == "ok").all()
    # each bad row is a reject naming the file, the row and the column, with its raw text
    rej = con.execute("SELECT source_file, source_row, reason, raw FROM rejects WHERE layer = 'incidents' "
                      "ORDER BY source_row").df()
    assert rep.layers["incidents"]["rejected"] == len(rej) == len(badf)
    assert (rej["source_file"] == "incidents/month=2099-12/it's; DROP TABLE x.parquet").all()
    assert rej["source_row"].tolist() == list(range(1, len(badf) + 1))
    raw = [json.loads(r) for r in rej["raw"]]
    for i, (iid, frag) in enumerate(zip(badf["incident_id"], [expect.get(x, "") for x in badf["incident_id"]])):
        if frag:
            assert frag in rej["reason"].iloc[i], (iid, rej["reason"].iloc[i])
            assert " / " in rej["reason"].iloc[i]  # Chinese / English
            assert raw[i]["incident_id"] == iid
    assert "时间 occurred_at 无法解析：'not-a-date'" in rej["reason"].iloc[3]
    assert raw[3]["occurred_at"] == "not-a-date" and raw[0]["lon"] == "x"
    assert rej["reason"].iloc[-2].startswith("缺少 incident_id（编号为空） / missing incident_id (empty id)")
    first = good["incident_id"].iloc[0]
    assert rej["reason"].iloc[-1] == ("incident_id 重复（与 incidents/month=2024-01/part-0.parquet 第 1 行相同） / "
                                      "duplicate incident_id (same as row 1 of incidents/month=2024-01/part-0.parquet)")
    assert raw[-1]["incident_id"] == first and HOSTILE_COL in raw[-1]
    assert "reporter_phone" not in raw[0] and "reporter_name" not in raw[0]
    # personal data never stored: the phone and ID numbers in free text are masked everywhere
    note = inc.loc[inc["incident_id"] == good["incident_id"].iloc[5], "备注"].iloc[0]
    assert note == "请回电 *** 或 ***，身份证 ***"
    assert rep.layers["incidents"]["pii_values_masked"] >= 1
    con.execute("COPY (SELECT * EXCLUDE geometry FROM incidents) TO 'inc.csv' (HEADER)")
    con.execute("COPY (SELECT * FROM rejects) TO 'rej.csv' (HEADER)")
    blob = Path("inc.csv").read_text() + Path("rej.csv").read_text()
    for planted in ("138-1234-5678", "13912345678", "110101199003071234", "13800004595"):
        assert planted not in blob
    assert "reporter_phone" not in inc.columns and "reporter_key" in inc.columns


def test_rejects_same_as_pandas_path(demo, tmp_path, monkeypatch):
    """The same bad rows in one Parquet file: streamed and pandas paths reject the same rows, same reasons."""
    good = _csv(demo).iloc[:300].copy()
    good["community_code"] = None
    good["street_code"] = None
    badf, _ = _bad_rows(good, demo)
    p = _copy(demo, tmp_path / "same")
    pd.concat([good, badf], ignore_index=True).to_parquet(p / "incidents.parquet", index=False)
    con_s, rep_s = _ingest(p, monkeypatch, ingest={"stream_threshold_mb": 0})
    con_p, rep_p = _ingest(p, monkeypatch, ingest={"stream_threshold_mb": 10_000})
    q = "SELECT source_file, source_row, reason, raw FROM rejects WHERE layer = 'incidents' ORDER BY source_row"
    rs, rp = con_s.execute(q).df(), con_p.execute(q).df()
    assert len(rs) == len(badf)
    pd.testing.assert_frame_equal(rs[["source_file", "source_row", "reason"]], rp[["source_file", "source_row", "reason"]])
    for a, b in zip(rs["raw"], rp["raw"]):
        assert json.loads(a) == json.loads(b)
    pd.testing.assert_frame_equal(_table(con_s), _table(con_p))
    assert rep_s.layers["incidents"] == rep_p.layers["incidents"]


def test_mostly_rejected_folder_stops(demo, tmp_path, monkeypatch):
    from pipelines.errors import MostlyRejectedError

    df = _csv(demo).iloc[:100].copy()
    df.loc[df.index[:80], "severity"] = "9"
    p = _copy(demo, tmp_path / "mostly")
    _to_folder(df, p / "incidents")
    with pytest.raises(MostlyRejectedError) as err:
        _ingest(p, monkeypatch)
    msg = " ".join(map(str, err.value.args))
    assert "80 of 100 rows" in msg and "severity must be 1–5" in msg and "incidents/" in msg


def test_gridgov_run_on_a_folder(demo, tmp_path, monkeypatch):
    """`gridgov run` (ingest only) takes the folder: the database holds the incidents and the rejects."""
    from pipelines.run import db_path, run_project

    monkeypatch.setenv("GRIDGOV_NOW", NOW)
    p = _copy(demo, tmp_path / "run")
    df = _csv(demo).iloc[:500].copy()
    df.loc[df.index[7], "severity"] = "7"
    _to_folder(df, p / "incidents")
    summary = run_project(p, stages=[])
    assert summary["ingest"]["layers"]["incidents"]["kept"] == 499
    con = connect(db_path(p), read_only=True)
    assert con.execute("SELECT count(*) FROM incidents").fetchone()[0] == 499
    assert con.execute("SELECT source_file, source_row FROM rejects WHERE layer = 'incidents'").fetchall() == [
        ("incidents/month=2024-01/part-0.parquet", 8)]
    assert not any(t.startswith("__inc") for (t,) in con.execute(
        "SELECT table_name FROM information_schema.tables").fetchall())
    con.close()


def test_other_layer_as_parquet_folder_is_read_whole(demo, tmp_path, monkeypatch):
    """A small layer other than incidents may be a folder of Parquet files too (read by pandas, whole)."""
    p = _copy(demo, tmp_path / "bfolder")
    shutil.copy(demo / "incidents.csv", p / "incidents.csv")
    b = pd.read_parquet(p / "buildings.parquet")
    (p / "buildings").mkdir()
    b.iloc[: len(b) // 2].to_parquet(p / "buildings" / "part-0.parquet", index=False)
    b.iloc[len(b) // 2:].to_parquet(p / "buildings" / "part-1.parquet", index=False)
    (p / "buildings.parquet").unlink()
    con, rep = _ingest(p, monkeypatch)
    assert rep.files["buildings"] == "buildings" and rep.layers["buildings"]["read"] == len(b)
    assert con.execute("SELECT count(*) FROM buildings").fetchone()[0] == rep.layers["buildings"]["kept"] > 0.9 * len(b)


def test_memory_limit_and_temp_directory_applied(tmp_path):
    from pipelines.db import apply_compute_settings

    con = connect(":memory:")
    apply_compute_settings(con, {"compute": {"memory_limit": "1GB", "temp_directory": ""}}, tmp_path / "it's")
    limit, tmp = con.execute("SELECT current_setting('memory_limit'), current_setting('temp_directory')").fetchone()
    assert limit in ("953.6 MiB", "1.0 GB", "1GB", "953.6MiB")
    assert tmp == str((tmp_path / "it's" / ".gridgov-tmp").resolve())
    with pytest.raises(ValueError):
        apply_compute_settings(con, {"compute": {"memory_limit": "1GB'; DROP TABLE x; --"}}, tmp_path)


def test_batches_of_files_give_the_same_tables(demo, tmp_path, monkeypatch):
    """A folder ingested one file per batch (as a 100M-row province is, in batches of about
    BATCH_BYTES) gives exactly the tables of one batch: the same rows in the same order, the same
    rejects with their files, rows and raw text; a duplicate id in a later file names the first."""
    from pipelines import ingest_parquet as ip

    good = _csv(demo).iloc[:600].copy()
    good["community_code"] = None
    good["street_code"] = None
    badf, _ = _bad_rows(good, demo)
    p = _copy(demo, tmp_path / "batches")
    folder = p / "incidents"
    files = _to_folder(pd.concat([good, badf.assign(occurred_at=badf["occurred_at"].where(
        badf["incident_id"].isin(["BAD-DATE", "BAD-FUTURE", "BAD-OLD", "BAD-ORDER"]), "2024-12-31 09:00:00"))],
        ignore_index=True), folder)
    assert len(files) >= 4
    seen: list[int] = []
    real = ip._file_batches

    def spy(*a, **k):
        out = real(*a, **k)
        seen.append(len(out))
        return out

    monkeypatch.setattr(ip, "_file_batches", spy)
    con1, rep1 = _ingest(p, monkeypatch)
    monkeypatch.setattr(ip, "BATCH_BYTES", 1)  # every file its own batch
    con2, rep2 = _ingest(p, monkeypatch)
    assert seen == [1, len(files)]
    t1, t2 = _table(con1), _table(con2)
    assert len(t1) == len(good) - 0 and len(t1) > 500
    pd.testing.assert_frame_equal(t1, t2)  # same rows, same order
    q = ("SELECT source_file, source_row, reason, raw FROM rejects WHERE layer = 'incidents' "
         "ORDER BY source_file, source_row")
    r1, r2 = con1.execute(q).df(), con2.execute(q).df()
    assert len(r1) == len(badf) and rep1.layers["incidents"]["rejected"] == len(badf)
    pd.testing.assert_frame_equal(r1, r2)
    dup = r2[r2["reason"].str.startswith("incident_id 重复")]
    assert len(dup) == 1 and "month=2024-01/part-0.parquet 第 1 行" in dup["reason"].iloc[0]
    assert rep1.layers["incidents"] == rep2.layers["incidents"]


def test_files_with_other_columns_batched_like_one(demo, tmp_path, monkeypatch):
    """Files that differ in columns: every batch reads the whole set (columns and types of all
    files) filtered to its files, so the batched tables equal the one-batch tables."""
    from pipelines import ingest_parquet as ip

    good = _csv(demo).iloc[:300].copy()
    p = _copy(demo, tmp_path / "ragged")
    files = _to_folder(good, p / "incidents")
    pd.read_parquet(files[-1]).assign(extra_note="x").to_parquet(files[-1], index=False)
    pd.read_parquet(files[0]).assign(severity=None).to_parquet(files[0], index=False)  # an all-null column
    seen: list[int] = []
    real = ip._file_batches
    monkeypatch.setattr(ip, "_file_batches", lambda *a, **k: (seen.append(len(out := real(*a, **k))), out)[1])
    con1, rep1 = _ingest(p, monkeypatch)
    monkeypatch.setattr(ip, "BATCH_BYTES", 1)
    con2, rep2 = _ingest(p, monkeypatch)
    assert seen == [1, len(files)] and len(files) >= 2
    t1, t2 = _table(con1), _table(con2)
    assert rep2.layers["incidents"]["kept"] == len(good) == len(t2)
    assert "extra_note" in t2.columns and (t2["extra_note"] == "x").sum() == len(pd.read_parquet(files[-1]))
    pd.testing.assert_frame_equal(t1, t2)
    assert rep1.layers["incidents"] == rep2.layers["incidents"]

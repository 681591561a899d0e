"""The hotspot stage on a small in-memory DuckDB built here (fallback cells and real grids)."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from pyproj import Transformer

from geo.hotspots import HOTSPOT_CLASSES, TREND_CLASSES
from pipelines import stage_hotspots
from pipelines.db import connect, read_gdf, table_exists, write_gdf

CRS = "EPSG:4546"
X0, Y0 = Transformer.from_crs("EPSG:4326", CRS, always_xy=True).transform(111.70, 40.82)
SIDE = 4  # 4 × 4 communities
COMM = 1000.0  # of 1 km
HOT = (X0 + 1250.0, Y0 + 2750.0)  # a planted, permanent hot spot
NEW = (X0 + 3250.0, Y0 + 750.0)  # a cluster that appears in the last 5 months


def make_city(months: int = 24, n_bg: int = 6000, seed: int = 0):
    rng = np.random.default_rng(seed)
    comms = [
        shapely.box(X0 + i * COMM, Y0 + j * COMM, X0 + (i + 1) * COMM, Y0 + (j + 1) * COMM)
        for i in range(SIDE)
        for j in range(SIDE)
    ]
    communities = gpd.GeoDataFrame(
        {
            "community_code": [f"c{i:02d}" for i in range(len(comms))],
            "community_name": "社区",
            "street_code": [f"S{i // 8}" for i in range(len(comms))],
            "kind": "urban",
            "area_km2": 1.0,
        },
        geometry=comms,
        crs=CRS,
    )
    nb = 400
    bxy = rng.random((nb, 2)) * SIDE * COMM + [X0, Y0]
    buildings = gpd.GeoDataFrame(
        {
            "building_id": [f"b{i}" for i in range(nb)],
            "households": rng.integers(10, 80, nb),
            "residents": np.where(rng.random(nb) < 0.2, np.nan, rng.integers(20, 200, nb)),
            "elderly_alone": rng.integers(0, 6, nb),
            "disabled": rng.integers(0, 4, nb),
            "low_income": rng.integers(0, 5, nb),
        },
        geometry=gpd.points_from_xy(bxy[:, 0], bxy[:, 1]),
        crs=CRS,
    )
    special = gpd.GeoDataFrame(
        {
            "unit_id": ["u1", "u2"],
            "unit_name": ["学校", "医院"],
            "unit_type": ["school", "hospital"],
        },
        geometry=[
            shapely.box(HOT[0] - 50, HOT[1] - 50, HOT[0] + 50, HOT[1] + 50),
            shapely.Point(X0 + 100, Y0 + 100),
        ],
        crs=CRS,
    )
    xy = [rng.random((n_bg, 2)) * SIDE * COMM + [X0, Y0]]
    month = [rng.integers(0, months, n_bg)]
    n_hot = n_bg // 2
    xy.append(rng.normal(HOT, 300, (n_hot, 2)))
    month.append(rng.integers(0, months, n_hot))
    n_new = n_bg // 10
    xy.append(rng.normal(NEW, 300, (n_new, 2)))
    month.append(rng.integers(max(months - 5, 0), months, n_new))
    xy, month = np.vstack(xy), np.concatenate(month)
    n = len(xy)
    start = pd.Timestamp("2023-01-01")
    occurred = pd.date_range(start, periods=months, freq="MS")[month] + pd.to_timedelta(
        rng.random(n) * 27 * 86400, unit="s"
    )
    resp = occurred + pd.to_timedelta(rng.exponential(6, n), unit="h")
    closed = resp + pd.to_timedelta(rng.exponential(40, n), unit="h")
    open_ = rng.random(n) < 0.05
    incidents = gpd.GeoDataFrame(
        {
            "incident_id": [f"e{i}" for i in range(n)],
            "occurred_at": occurred,
            "category": rng.choice(["噪音扰民", "停水", "环境卫生"], n, p=[0.5, 0.3, 0.2]),
            "severity": rng.integers(1, 6, n),
            "source": "12345",
            "status": "closed",
            "responded_at": resp.where(~open_),
            "closed_at": closed.where(~open_),
            "staff_id": rng.choice(["w1", "w2", "w3", None], n),
            "repeat_of": np.where(rng.random(n) < 0.1, "e0", None),
            "community_code": None,
            "street_code": rng.choice(["S0", "S1"], n),
        },
        geometry=gpd.points_from_xy(xy[:, 0], xy[:, 1]),
        crs=CRS,
    )
    return communities, buildings, special, incidents


def load(con, **layers):
    for name, frame in layers.items():
        write_gdf(con, name, frame)


@pytest.fixture(scope="module")
def cells_run():
    c, b, s, i = make_city()
    con = connect()
    load(con, communities=c, buildings=b, special_units=s, incidents=i)
    summary = stage_hotspots.run(
        con, {"hotspots": {"forecast": {"equal_cells": True}}}, progress=lambda m: None
    )
    yield con, summary, i
    con.close()


def unit_at(con, x, y) -> str:
    lon, lat = Transformer.from_crs(CRS, "EPSG:4326", always_xy=True).transform(x, y)
    return con.execute(
        "SELECT grid_id FROM hotspot_units WHERE ST_Contains(geometry, ST_Point(?, ?))", [lon, lat]
    ).fetchone()[0]


def test_skips_without_incidents():
    con = connect()
    c, *_ = make_city(n_bg=10)
    load(con, communities=c)
    assert "skipped" in stage_hotspots.run(con, {})
    con.execute(
        "CREATE TABLE incidents (incident_id VARCHAR, occurred_at TIMESTAMP, category VARCHAR, "
        "geometry GEOMETRY)"
    )
    assert "skipped" in stage_hotspots.run(con, {})
    assert not table_exists(con, "hotspots")


def test_contract_tables_and_columns(cells_run):
    con, summary, inc = cells_run
    cols = lambda t: [r[0] for r in con.execute(f"DESCRIBE {t}").fetchall()]
    assert cols("hotspots") == [
        "grid_id",
        "category",
        "period",
        "z_score",
        "p_value",
        "p_fdr",
        "hotspot_class",
        "trend_class",
        "method",
        "observed",
        "expected",
        "ratio",
        "hot_categories",
        "top_category",
    ]
    assert cols("grid_risk") == ["grid_id", "risk_score", "components"]
    assert cols("case_timeliness")[:7] == [
        "scope",
        "scope_id",
        "cases",
        "median_hours_to_respond",
        "median_hours_to_close",
        "on_time_rate",
        "repeat_rate",
    ]
    for t in (
        "forecast",
        "forecast_backtest",
        "incident_counts",
        "hotspot_units",
        "hotspot_density",
        "hotspot_fishnet",
    ):
        assert table_exists(con, t), t
    fish = con.execute("SELECT DISTINCT method, cell_m FROM hotspot_fishnet").fetchall()
    assert len(fish) == 1 and fish[0][0] == "gi_star_fishnet_knn8"
    assert fish[0][1] == summary["fishnet"]["cell_m"] and "isa" in summary["fishnet"]
    assert summary["unit_source"] == "square" and summary["metric_crs"] == "EPSG:4546"
    assert summary["months"] == 24 and summary["first_period"] == "2023-01"
    assert summary["incidents_used"] + summary["incidents_outside_units"] == len(inc)


def test_hotspot_rows(cells_run):
    con, summary, _ = cells_run
    hs = con.execute("SELECT * FROM hotspots").df()
    n_units = con.execute("SELECT count(*) FROM hotspot_units").fetchone()[0]
    cats = ["all", "噪音扰民", "停水", "环境卫生"]
    assert sorted(hs["category"].unique()) == sorted(cats + ["any"])
    assert len(hs) == n_units * len(cats) * (24 + 1) + n_units  # + one 'any' row per unit
    assert hs["method"].str.startswith("excess_").all()
    anyr = hs[hs.category == "any"].set_index("grid_id")
    assert anyr.loc[unit_at(con, *HOT), "hotspot_class"].startswith("hot")
    assert anyr["period"].eq("all").all()
    assert set(hs["hotspot_class"]) <= set(HOTSPOT_CLASSES)
    overall = hs[hs.period == "all"]
    assert overall["trend_class"].notna().all()
    assert set(overall["trend_class"]) <= set(TREND_CLASSES)
    assert hs[hs.period != "all"]["trend_class"].isna().all()
    assert hs[hs.period != "all"]["period"].str.fullmatch(r"\d{4}-\d{2}").all()
    assert (hs["p_fdr"] >= hs["p_value"] - 1e-12).all()
    aa = overall[overall.category == "all"].set_index("grid_id")
    assert aa.loc[unit_at(con, *HOT), "hotspot_class"] in ("hot_99", "hot_95")
    assert aa.loc[unit_at(con, *HOT), "trend_class"] in (
        "persistent_hot",
        "intensifying_hot",
        "diminishing_hot",
    )
    assert aa.loc[unit_at(con, *NEW), "trend_class"] in ("new_hot", "consecutive_hot")
    # the counts behind it
    ic = con.execute("SELECT * FROM incident_counts WHERE category = 'all' AND period = 'all'").df()
    assert ic["incidents"].sum() == summary["incidents_used"]


def test_risk_forecast_timeliness(cells_run):
    con, summary, _ = cells_run
    risk = con.execute(
        "SELECT grid_id, risk_score, CAST(components AS VARCHAR) c FROM grid_risk"
    ).df()
    assert risk["risk_score"].between(0, 100).all()
    comp = json.loads(risk.iloc[0]["c"])
    assert set(comp) == {"incidents", "elderly_alone", "disabled", "low_income", "special_units"}
    total = sum(v["contribution"] for v in comp.values())
    assert total == pytest.approx(risk.iloc[0]["risk_score"], abs=1e-3)
    top = risk.sort_values("risk_score").iloc[-1]["grid_id"]
    assert top in {unit_at(con, *HOT), unit_at(con, *NEW)} or risk["risk_score"].max() > 50
    fc = con.execute("SELECT * FROM forecast").df()
    assert set(fc["method"]) == {
        "model",
        "last_period",
        "moving_average_3",
        "historical_mean",
        "kde",
    }
    assert (fc["period"] == "2025-01").all() and (fc["predicted"] >= 0).all()
    bt = con.execute("SELECT * FROM forecast_backtest").df()
    assert set(bt["area_share"].round(2)) == {0.05, 0.1, 0.2}
    # 5 methods × 3 shares on grids; the equal cells have no KDE baseline: 4 × 3
    assert ((bt["target_period"] == "mean") & (bt["unit"] == "grid")).sum() == 15
    assert ((bt["target_period"] == "mean") & (bt["unit"] != "grid")).sum() == 12
    assert "model_vs_best_baseline_pai10" in summary["forecast"]
    grid_rows = bt["unit"] == "grid"
    assert (bt.loc[grid_rows, "ranked_by"] == "density").all()
    assert (bt.loc[~grid_rows, "ranked_by"] == "count").all()  # equal cells: the same order
    assert bt["pei"].dropna().between(0, 1 + 1e-9).all()
    assert set(bt["unit"]) == {"grid", f"cell_{int(summary['fishnet']['cell_m'])}m"}
    rec = con.execute("SELECT * FROM forecast_recommendation").df()
    assert list(rec["unit"]) == ["grid", f"cell_{int(summary['fishnet']['cell_m'])}m"]
    assert rec["text_zh"].str.len().gt(0).all()
    # a method is recommended only when it beats random patrols
    assert (rec["recommended"] == (rec["pai"] > 1)).all()
    tl = con.execute("SELECT * FROM case_timeliness").df()
    assert set(tl["scope"]) == {"grid", "staff", "street"}
    assert tl["on_time_rate"].between(0, 1).all() and tl["repeat_rate"].between(0, 1).all()
    assert set(tl.loc[tl.scope == "staff", "scope_id"]) == {"w1", "w2", "w3"}
    dens = read_gdf(con, "hotspot_density")
    assert (dens["density_per_km2"] > 0).all()


def test_uses_grids_and_members_and_few_months():
    c, b, s, i = make_city(months=7, n_bg=1500, seed=1)
    # two grids per community (west / east halves)
    parts, ids, comm = [], [], []
    for code, g in zip(c["community_code"], c.geometry):
        x0, y0, x1, y1 = g.bounds
        xm = (x0 + x1) / 2
        parts += [shapely.box(x0, y0, xm, y1), shapely.box(xm, y0, x1, y1)]
        ids += [f"{code}-1", f"{code}-2"]
        comm += [code, code]
    grids = gpd.GeoDataFrame({"grid_id": ids, "community_code": comm}, geometry=parts, crs=CRS)
    members = gpd.sjoin(b, grids, predicate="within")[["building_id", "grid_id"]]
    # points exactly on a shared grid edge are counted once
    edge = i.iloc[:3].copy()
    edge["geometry"] = [shapely.Point(X0 + 500, Y0 + 300)] * 3
    edge["incident_id"] = ["x1", "x2", "x3"]
    i = pd.concat([i, edge], ignore_index=True)
    con = connect()
    load(
        con,
        communities=c,
        buildings=b,
        special_units=s,
        incidents=i,
        grids=grids,
        grid_members=pd.DataFrame(members),
    )
    summary = stage_hotspots.run(con, {"hotspots": {"forecast": {"backtest_months": 2}}})
    assert summary["unit_source"] == "grids" and summary["units"] == len(grids)
    inside = int(i.geometry.to_crs(4326).intersects(grids.to_crs(4326).union_all()).sum())
    assert summary["incidents_used"] == inside  # each once, the edge points too
    assert summary["incidents_used"] + summary["incidents_outside_units"] == len(i)
    assert any("10" in w for w in summary["warnings"])  # < 10 months: no EHSA
    hs = con.execute("SELECT * FROM hotspots WHERE period = 'all'").df()
    assert hs["trend_class"].isna().all()
    res = con.execute("SELECT sum(residents) FROM hotspot_units").fetchone()[0]
    expected = b["residents"].fillna(b["households"] * stage_hotspots.DEFAULTS["household_size"]).sum()
    assert res == pytest.approx(expected)
    assert set(con.execute("SELECT grid_id FROM grid_risk").df()["grid_id"]) == set(ids)
    # early warning runs on grids: the contract table exists, with its columns, statuses kept
    cols = [r[0] for r in con.execute("DESCRIBE alerts").fetchall()]
    assert cols[:12] == ["alert_id", "detected_at", "window_start", "window_end", "grid_id",
                         "category", "observed", "expected", "recurrence_days", "method", "status",
                         "owner_staff_id"]
    assert "geometry" in cols and table_exists(con, "alert_status")
    assert summary["alerts"]["alerts"] == con.execute("SELECT count(*) FROM alerts").fetchone()[0]
    # communities and streets get the same excess test, their counts summed from the grids
    ar = con.execute("SELECT * FROM hotspot_areas WHERE category = 'all'").df()
    assert set(ar["scope"]) == {"community"}  # the test grids carry no street_code
    assert ar["observed"].sum() == summary["incidents_used"]
    assert ar["expected"].sum() == pytest.approx(ar["observed"].sum(), rel=0.5)
    hot_c = ar.loc[ar["hotspot_class"].str.startswith("hot"), "scope_id"].tolist()
    hot_comm = c.loc[c.contains(shapely.Point(*HOT)), "community_code"].iloc[0]
    assert hot_comm in hot_c  # the community of the planted permanent hot spot


def test_hex_cells_and_distance_band():
    c, _, _, i = make_city(months=12, n_bg=1500, seed=2)
    con = connect()
    load(con, communities=c, incidents=i)  # no buildings / special units: zero components
    summary = stage_hotspots.run(
        con,
        {
            "hotspots": {
                "cell_shape": "hex",
                "cell_size_m": 400,
                "weights": "distance_band",
                "forecast": {"enabled": False},
            }
        },
    )
    assert summary["unit_source"] == "hex" and summary["weights"].startswith("distance_band")
    ids = con.execute("SELECT grid_id FROM hotspot_units").df()["grid_id"]
    assert ids.str.startswith("H_").all()
    assert not table_exists(con, "forecast")
    assert con.execute("SELECT count(*) FROM grid_risk").fetchone()[0] == len(ids)


def test_burst_in_the_last_days_raises_an_alert_with_owner():
    c, b, s, i = make_city(months=12, n_bg=6000, seed=4)
    parts, ids, comm = [], [], []
    for code, g in zip(c["community_code"], c.geometry):
        x0, y0, x1, y1 = g.bounds
        xm = (x0 + x1) / 2
        parts += [shapely.box(x0, y0, xm, y1), shapely.box(xm, y0, x1, y1)]
        ids += [f"{code}-1", f"{code}-2"]
        comm += [code, code]
    grids = gpd.GeoDataFrame({"grid_id": ids, "community_code": comm}, geometry=parts, crs=CRS)
    members = gpd.sjoin(b, grids, predicate="within")[["building_id", "grid_id"]]
    spot = shapely.Point(X0 + 2250.0, Y0 + 1500.0)
    target = grids.loc[grids.contains(spot), "grid_id"].iloc[0]
    last_day = i["occurred_at"].max().normalize()
    burst_days = pd.date_range(last_day - pd.Timedelta(days=6), last_day, freq="D")
    n = 24
    burst = i.iloc[:n].copy()
    burst["incident_id"] = [f"burst{k}" for k in range(n)]
    burst["occurred_at"] = np.repeat(burst_days, -(-n // len(burst_days)))[:n] + pd.Timedelta(hours=10)
    burst["geometry"] = [spot] * n
    i = pd.concat([i, burst], ignore_index=True)
    staff = pd.DataFrame({"staff_id": ["w9"], "street_code": ["S0"], "grid_id": [target]})
    con = connect()
    load(con, communities=c, buildings=b, special_units=s, incidents=i, grids=grids,
         grid_members=pd.DataFrame(members), staff=staff)
    summary = stage_hotspots.run(con, {"hotspots": {"forecast": {"enabled": False}}})
    al = con.execute("SELECT * FROM alerts WHERE grid_id = ? AND category = 'all'", [target]).df()
    assert len(al) == 1, summary["alerts"]
    a = al.iloc[0]
    assert a["owner_staff_id"] == "w9" and a["status"] == "new"
    assert pd.Timestamp(a["window_end"]) >= burst_days[0]
    assert pd.Timestamp(a["window_start"]) <= burst_days[-1]
    assert pd.Timestamp(a["detected_at"]) <= last_day  # a data date, not the clock
    assert a["observed"] > 3 * a["expected"] and a["recurrence_days"] >= 365
    others = con.execute("SELECT count(*) FROM alerts WHERE grid_id <> ?", [target]).fetchone()[0]
    assert others <= 2


def test_gi_star_verdict_is_still_available():
    c, b, s, i = make_city(months=12, n_bg=3000, seed=5)
    con = connect()
    load(con, communities=c, buildings=b, special_units=s, incidents=i)
    summary = stage_hotspots.run(con, {"hotspots": {"verdict": "gi_star",
                                                    "forecast": {"enabled": False}}})
    h = con.execute("SELECT * FROM hotspots WHERE period = 'all' AND category = 'all'").df()
    assert (h["method"] == "gi_star_units_knn").all()
    assert "any" not in set(con.execute("SELECT DISTINCT category FROM hotspots").df()["category"])
    assert h.set_index("grid_id").loc[unit_at(con, *HOT), "hotspot_class"].startswith("hot")
    assert summary["verdict"] == "gi_star"


def test_density_raster_coarsens_to_stay_within_max_cells():
    """A wide area (a province) must not make a months × rows × columns raster of billions of
    cells: the cell grows so that the raster holds at most ``[hotspots.kde] max_cells``, and the
    surface still integrates to the incidents it was made from."""
    c, _, _, i = make_city(months=12, n_bg=1500, seed=3)
    con = connect()
    load(con, communities=c, incidents=i)
    base = {"forecast": {"enabled": False}, "kde": {"bandwidth_m": 400.0}}
    stage_hotspots.run(con, {"hotspots": base})
    fine = con.execute("SELECT min(cell_m), max(cell_m) FROM hotspot_density").fetchone()
    assert fine == (100.0, 100.0)  # the default cell where the raster is small
    stage_hotspots.run(con, {"hotspots": {**base, "kde": {"bandwidth_m": 400.0, "max_cells": 20_000}}})
    cell = con.execute("SELECT min(cell_m) FROM hotspot_density").fetchone()[0]
    # the area the raster covers: the units' bounds (4 km) plus one bandwidth on each side, or
    # more where incidents lie outside; 12 monthly layers within 20,000 cells
    span = (SIDE * COMM + 2 * 400.0) ** 2
    assert cell > 100.0
    assert span / cell**2 * 12 <= 20_000 * 1.05
    dens = con.execute("SELECT sum(density_per_km2) FROM hotspot_density").fetchone()[0]
    assert dens * (cell / 1000.0) ** 2 == pytest.approx(len(i), rel=0.02)

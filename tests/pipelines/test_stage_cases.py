"""Stage `cases` on a generated city with planted differences.

Six streets side by side, two communities each, two grids per community. Street S1 answers and
closes fast, S6 slowly; of six heating companies, 热力一公司 is slow. Resolution, satisfaction and
returned values are drawn per street with known probabilities, in mixed formats (是/否/1/0/true,
满意/基本满意/不满意 or 1–5, counts), some empty; the test recomputes the shares from the data.
"""
from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import Point, box

from pipelines import stage_cases
from pipelines.db import connect, read_table, write_gdf

X0, Y0, D = 111.60, 40.80, 0.02
STREETS = [f"S{k}" for k in range(1, 7)]
FAST, SLOW = "S1", "S6"
COMPANIES = ["热力一公司", "热力二公司", "热力三公司", "热力四公司", "热力五公司", "热力六公司"]
SLOW_COMPANY = "热力一公司"
# per street: (P resolved, P satisfied, P returned, P late: answered after 30 h and closed after
# 10 days, beyond the 24 h / 7-day deadlines of a general case)
PROFILE = {
    "S1": (0.97, 0.96, 0.01, 0.0),
    "S2": (0.90, 0.88, 0.05, 0.15),
    "S3": (0.88, 0.86, 0.06, 0.18),
    "S4": (0.86, 0.85, 0.07, 0.20),
    "S5": (0.85, 0.83, 0.08, 0.22),
    "S6": (0.60, 0.50, 0.30, 0.80),
}
MONTHS = ["2025-01", "2025-02", "2025-03"]


def _gdf(rows: list[dict]) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(rows, geometry="geometry", crs="EPSG:4326")


def _fmt_resolved(v: bool, k: int) -> object:
    return [("是", "否"), ("1", "0"), ("true", "false")][k % 3][0 if v else 1]


def _fmt_satisfaction(v: bool, k: int) -> object:
    if k % 2:
        return str(5 if v else 2) if k % 4 == 1 else (4 if v else 3)
    return ("满意" if k % 3 else "基本满意") if v else "不满意"


def build_city(con, seed: int = 7) -> pd.DataFrame:
    """Write the city into ``con``; return the incidents as written (for the shares)."""
    rng = np.random.default_rng(seed)
    streets, comms, grids = [], [], []
    for s, code in enumerate(STREETS):
        x = X0 + s * D
        streets.append({"street_code": code, "street_name": f"{'一二三四五六'[s]}街道",
                        "district_code": "150102", "district_name": "新城区",
                        "geometry": box(x, Y0, x + D, Y0 + D)})
        for c in range(2):
            cc = f"{code}C{c + 1}"
            comms.append({"community_code": cc, "community_name": f"{cc}社区",
                          "street_code": code,
                          "geometry": box(x, Y0 + c * D / 2, x + D, Y0 + (c + 1) * D / 2)})
            for g in range(2):
                grids.append({"grid_id": f"{cc}G{g + 1}", "plan_id": "P0001",
                              "grid_type": "basic", "community_code": cc, "street_code": code,
                              "geometry": box(x + g * D / 2, Y0 + c * D / 2,
                                              x + (g + 1) * D / 2, Y0 + (c + 1) * D / 2)})
    write_gdf(con, "streets", _gdf(streets))
    write_gdf(con, "communities", _gdf(comms))
    write_gdf(con, "grids", _gdf(grids))
    write_gdf(con, "plans", pd.DataFrame([{"plan_id": "P0001", "created_at": pd.Timestamp("2025-01-01"),
                                           "is_current": True}]))
    rows = []
    k = 0
    for s, code in enumerate(STREETS):
        p_res, p_sat, p_ret, p_late = PROFILE[code]
        for month in MONTHS:
            for j in range(30):  # 30 cases per street and month; 90 in all
                k += 1
                heating = j % 3 == 0
                company = COMPANIES[(j // 3 + s) % 6] if heating else None
                late = rng.random() < p_late
                r_h, c_h = (30.0, 240.0) if late else (2.0 if code == FAST else 8.0, 24.0)
                if company == SLOW_COMPANY:  # the slow company: late on every case
                    r_h, c_h = max(r_h, 30.0), max(c_h, 300.0)
                if heating and company != SLOW_COMPANY:
                    r_h, c_h = min(r_h, 1.0), min(c_h, 12.0)
                occurred = pd.Timestamp(f"{month}-01 08:00") + pd.Timedelta(hours=int(rng.integers(0, 24 * 25)))
                accepted = occurred + pd.Timedelta(minutes=10)
                dispatched = accepted + pd.Timedelta(minutes=20)
                responded = occurred + pd.Timedelta(hours=r_h * float(rng.uniform(0.8, 1.2)))
                closed = responded + pd.Timedelta(hours=c_h * float(rng.uniform(0.8, 1.2)))
                resolved = rng.random() < p_res
                satisfied = rng.random() < p_sat
                returned = rng.random() < p_ret
                px = X0 + s * D + float(rng.uniform(0.001, D - 0.001))
                py = Y0 + float(rng.uniform(0.001, D - 0.001))
                cc = f"{code}C{1 if py < Y0 + D / 2 else 2}"
                rows.append({
                    "incident_id": f"E{k:05d}", "occurred_at": occurred,
                    "accepted_at": accepted.strftime("%Y/%m/%d %H:%M"),  # text, as a raw CSV keeps it
                    "dispatched_at": dispatched, "responded_at": responded, "closed_at": closed,
                    "category": "complaint_12345", "service_type": "heating" if heating else "noise",
                    "severity": 3, "staff_id": f"W{code}{j % 4}",
                    "resolved": None if k % 17 == 0 else _fmt_resolved(resolved, k),
                    "satisfaction": None if k % 5 == 0 else str(_fmt_satisfaction(satisfied, k)),
                    "returned": None if k % 23 == 0 else str(int(rng.integers(1, 3)) if returned else 0),
                    "department": "住建" if heating else ("城管" if j % 2 else "生态环境"),
                    "service_company": company, "street_code": code, "community_code": cc,
                    "geometry": Point(px, py),
                })
    incidents = _gdf(rows)
    write_gdf(con, "incidents", incidents)
    return pd.DataFrame(incidents.drop(columns="geometry"))


@pytest.fixture(scope="module")
def city():
    con = connect()
    data = build_city(con)
    summary = stage_cases.run(con, {})
    rates = read_table(con, "case_rates")
    yield con, data, summary, rates
    con.close()


def _share(values: pd.Series, good) -> float:
    v = values.dropna()
    return float(v.map(good).mean())


def test_fast_street_red_slow_street_black(city):
    _, _, summary, rates = city
    st = rates[(rates["scope"] == "street") & (rates["period"] == "all")].set_index("scope_id")
    assert st.loc[FAST, "rank"] == 1 and st.loc[FAST, "board"] == "red"
    assert st.loc[SLOW, "rank"] == 6 and st.loc[SLOW, "board"] == "black"
    assert (st["board"] == "red").sum() == 3 and (st["board"] == "black").sum() == 3
    assert st.loc[FAST, "response_rate"] == st["response_rate"].max()
    assert st.loc[FAST, "satisfaction_rate"] == st["satisfaction_rate"].max()
    assert st.loc[SLOW, "response_rate"] < 0.5 and st.loc[SLOW, "on_time_close_rate"] < 0.5
    assert st.loc[FAST, "scope_name"] == "一街道"
    assert summary["red_all"]["street"][0] == FAST and SLOW in summary["black_all"]["street"]
    for month in MONTHS:  # every month too
        m = rates[(rates["scope"] == "street") & (rates["period"] == month)].set_index("scope_id")
        assert m.loc[FAST, "board"] == "red" and m.loc[SLOW, "board"] == "black"


def test_slow_heating_company_is_black(city):
    _, _, _, rates = city
    co = rates[(rates["scope"] == "service_company") & (rates["period"] == "all")].set_index("scope_id")
    assert len(co) == 6
    assert co.loc[SLOW_COMPANY, "board"] == "black"
    assert co.loc[SLOW_COMPANY, "rank"] == 6
    assert co.loc[SLOW_COMPANY, "response_rate"] == 0.0
    assert co["response_rate"].drop(SLOW_COMPANY).min() == 1.0


def test_rates_equal_the_shares_in_the_data(city):
    _, data, _, rates = city
    res = {"是": 1, "1": 1, "true": 1, "否": 0, "0": 0, "false": 0}

    def sat(v):
        return 1 if v in ("满意", "基本满意", "4", "5") else 0

    def ret(v):
        return int(int(v) > 0)

    for scope, col in (("street", "street_code"), ("community", "community_code"),
                       ("department", "department"), ("service_company", "service_company"),
                       ("staff", "staff_id")):
        got = rates[(rates["scope"] == scope) & (rates["period"] == "all")].set_index("scope_id")
        for sid, part in data.groupby(col):
            row = got.loc[sid]
            assert row["cases"] == len(part)
            assert row["resolution_rate"] == pytest.approx(_share(part["resolved"], res.get))
            assert row["satisfaction_rate"] == pytest.approx(_share(part["satisfaction"], sat))
            assert row["returned_rate"] == pytest.approx(_share(part["returned"], ret))
            assert row["resolved_n"] == part["resolved"].notna().sum()
            assert row["rated_n"] == part["satisfaction"].notna().sum()
    # and per month
    data = data.assign(period=pd.to_datetime(data["occurred_at"]).dt.strftime("%Y-%m"))
    got = rates[rates["scope"] == "street"].set_index(["scope_id", "period"])
    for (sid, period), part in data.groupby(["street_code", "period"]):
        assert got.loc[(sid, period), "satisfaction_rate"] == pytest.approx(
            _share(part["satisfaction"], sat))


def test_grids_from_the_plan_and_stage_hours(city):
    con, data, summary, rates = city
    grid = rates[(rates["scope"] == "grid") & (rates["period"] == "all")]
    assert len(grid) == 24 and grid["cases"].sum() == len(data)
    assert summary["cases_without_grid"] == 0 and summary["plan_id"] == "P0001"
    # 30 cases per street-month in 4 grids: a grid-month has fewer than 20 -> flagged, not ranked
    gm = rates[(rates["scope"] == "grid") & (rates["period"] != "all")]
    assert gm["small_n"].all() and gm["rank"].isna().all() and gm["board"].isna().all()
    st = rates[(rates["scope"] == "street") & (rates["period"] == "all")]
    assert np.allclose(st["median_hours_to_accept"], 10 / 60)  # text stamps parsed
    assert np.allclose(st["median_hours_accept_to_dispatch"], 20 / 60)
    out = read_table(con, "case_outcomes")
    assert len(out) == len(data) and out["grid_id"].notna().all()
    assert set(summary["life_cycle_columns"]) >= {"accepted_at", "resolved", "service_company"}


def test_too_few_cases_are_flagged_not_ranked(city):
    con, _, _, _ = city
    summary = stage_cases.run(con, {"cases": {"min_cases": 91}})  # every street has 90
    rates = read_table(con, "case_rates")
    st = rates[(rates["scope"] == "street") & (rates["period"] == "all")]
    assert st["small_n"].all() and st["rank"].isna().all() and st["board"].isna().all()
    assert "street" not in summary["red_all"]
    stage_cases.run(con, {})  # leave the module fixture as it was


def test_only_some_columns_and_no_incidents():
    con = connect()
    data = build_city(con)
    con.execute("ALTER TABLE incidents DROP COLUMN satisfaction")
    con.execute("ALTER TABLE incidents DROP COLUMN responded_at")
    con.execute("ALTER TABLE incidents DROP COLUMN closed_at")
    con.execute("ALTER TABLE incidents DROP COLUMN service_company")
    stage_cases.run(con, {})
    rates = read_table(con, "case_rates")
    assert "service_company" not in set(rates["scope"])
    assert rates["satisfaction_rate"].isna().all() and rates["response_rate"].isna().all()
    assert rates["on_time_close_rate"].isna().all()
    assert rates["resolution_rate"].notna().all()
    st = rates[(rates["scope"] == "street") & (rates["period"] == "all")].set_index("scope_id")
    assert st.loc[FAST, "board"] == "red" and st.loc[SLOW, "board"] == "black"
    assert st["cases"].sum() == len(data)
    con.execute("DELETE FROM incidents")
    summary = stage_cases.run(con, {})
    assert summary["cases"] == 0 and len(read_table(con, "case_rates")) == 0


def test_small_demo_planted_life_cycle(tmp_path):
    """The demo generator plants a fast and a slow community (streets in the full demo) and a
    slow heating company; after ingest the stage finds them."""
    from gridgov.demo_city import build_demo, life_cycle_plant
    from pipelines.config import load_settings
    from pipelines.run import db_path, run_project

    root = tmp_path / "demo"
    build_demo(root, size="small")
    run_project(root, stages=[])  # ingest only: streets, communities, incidents
    con = connect(db_path(root))
    try:
        stage_cases.run(con, load_settings(root))
        rates = read_table(con, "case_rates")
        comm = read_table(con, "communities")
        inc = read_table(con, "SELECT satisfaction, resolved, community_code FROM incidents")
    finally:
        con.close()
    plant = life_cycle_plant(comm["street_code"], comm["community_code"])
    assert plant["level"] == "community"
    al = rates[rates["period"] == "all"].set_index(["scope", "scope_id"])
    assert al.loc[("community", plant["fast"]), "rank"] == 1
    assert al.loc[("community", plant["fast"]), "board"] == "red"
    assert al.loc[("community", plant["slow"]), "board"] == "black"
    assert al.loc[("service_company", plant["slow_company"]), "board"] == "black"
    # shares straight from the ingested table
    part = inc[inc["community_code"] == plant["slow"]]
    rated = part["satisfaction"].replace("", None).dropna()
    assert al.loc[("community", plant["slow"]), "satisfaction_rate"] == pytest.approx(
        rated.isin(["满意", "基本满意"]).mean())
    res = part["resolved"].replace("", None).dropna()
    assert al.loc[("community", plant["slow"]), "resolution_rate"] == pytest.approx(
        (res == "是").mean())


def test_outcomes_written_in_slices_equal_one_slice(city, monkeypatch):
    """case_outcomes is written in slices of incidents (a province's 100M in slices of 10M):
    slices of 7 give the same table, in the same (incidents') order."""
    con, _, _, _ = city
    whole = read_table(con, "case_outcomes")
    assert len(whole) > 50
    monkeypatch.setattr(stage_cases, "OUTCOME_SLICE", 7)
    stage_cases.run(con, {})
    sliced = read_table(con, "case_outcomes")
    pd.testing.assert_frame_equal(whole, sliced)
    ids = con.execute("SELECT incident_id FROM incidents ORDER BY rowid").df()["incident_id"].astype(str)
    assert sliced["incident_id"].astype(str).tolist() == ids.tolist()
    monkeypatch.undo()
    stage_cases.run(con, {})  # leave the module fixture as it was

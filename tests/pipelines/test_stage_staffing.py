"""Stage `staffing` on a tiny city built in memory with write_gdf, and its Excel report."""
from __future__ import annotations

import re

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import Point, box

from geo.apportion import BudgetTooSmall
from geo.staffing import COMPONENTS, monthly_capacity
from pipelines import stage_staffing
from pipelines.db import connect, read_table, table_exists, write_gdf

X0, Y0, D = 111.70, 40.80, 0.01  # Hohhot; each grid is a 0.01° square

# grid -> (column, community, street, type); C1, C2 in old-town S1, C3 in residential S2
GRIDS = {
    "G1": (0, "C1", "S1", "basic"),
    "G2": (1, "C1", "S1", "basic"),
    "G3": (2, "C1", "S1", "dedicated"),
    "G4": (3, "C2", "S1", "basic"),
    "G5": (4, "C3", "S2", "basic"),
}
HOUSEHOLDS = {"G1": 400, "G2": 300, "G3": 0, "G4": 350, "G5": 450}
CJK = re.compile(r"[\u4e00-\u9fff]")


def _cell(col: int) -> object:
    return box(X0 + col * D, Y0, X0 + (col + 1) * D, Y0 + D)


def _centre(col: int, dx: float = 0.5) -> Point:
    return Point(X0 + (col + dx) * D, Y0 + 0.5 * D)


def gdf(rows: list[dict]) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(rows, geometry="geometry", crs="EPSG:4326")


def build_city(con, *, with_grids: bool = True) -> None:
    write_gdf(con, "streets", gdf([
        {"street_code": "S1", "street_name": "一街道", "district_code": "150102",
         "district_name": "新城区", "function_type": "old_town", "area_km2": 3.4,
         "geometry": box(X0, Y0, X0 + 4 * D, Y0 + D)},
        {"street_code": "S2", "street_name": "二街道", "district_code": "150102",
         "district_name": "新城区", "function_type": "residential", "area_km2": 0.85,
         "geometry": box(X0 + 4 * D, Y0, X0 + 5 * D, Y0 + D)},
    ]))
    write_gdf(con, "communities", gdf([
        {"community_code": "C1", "community_name": "甲社区", "street_code": "S1", "kind": "urban",
         "area_km2": 2.55, "geometry": box(X0, Y0, X0 + 3 * D, Y0 + D)},
        {"community_code": "C2", "community_name": "乙社区", "street_code": "S1", "kind": "urban",
         "area_km2": 0.85, "geometry": _cell(3)},
        {"community_code": "C3", "community_name": "丙村", "street_code": "S2", "kind": "rural",
         "area_km2": 0.85, "geometry": _cell(4)},
    ]))
    buildings, members = [], []
    for gid, (col, comm, street, _) in GRIDS.items():
        for k in range(2 if HOUSEHOLDS[gid] else 0):
            bid = f"{gid}-B{k}"
            buildings.append({
                "building_id": bid, "households": HOUSEHOLDS[gid] // 2,
                "residents": None if k else HOUSEHOLDS[gid],  # one building without residents
                "elderly": 20, "elderly_alone": 5, "disabled": 3, "low_income": 2, "children": 30,
                "renters": 10, "community_code": comm, "street_code": street,
                "geometry": _centre(col, 0.3 + 0.4 * k),
            })
            members.append({"building_id": bid, "grid_id": gid, "plan_id": "P2"})
    write_gdf(con, "buildings", gdf(buildings))
    t0 = pd.Timestamp("2024-01-01 08:00")
    incidents = []
    for i in range(60):  # G1 busy and served by W1; a few in G5 by W5
        gid, staff = ("G1", "W1") if i < 50 else ("G5", "W5")
        col = GRIDS[gid][0]
        occurred = t0 + pd.Timedelta(days=6 * i)
        incidents.append({
            "incident_id": f"I{i}", "occurred_at": occurred,
            "category": "dispute" if i % 2 else "sanitation", "severity": 3, "source": "12345",
            "status": "closed", "responded_at": occurred + pd.Timedelta(hours=1),
            # every 5th case of W1 closes late (after 10 days > 7-day deadline)
            "closed_at": occurred + pd.Timedelta(days=10 if i % 5 == 0 else 1),
            "staff_id": staff, "repeat_of": "I3" if i == 7 else None,
            "community_code": GRIDS[gid][1], "street_code": GRIDS[gid][2],
            "geometry": _centre(col, 0.5),
        })
    write_gdf(con, "incidents", gdf(incidents))
    write_gdf(con, "special_units", gdf([
        {"unit_id": "U1", "unit_name": "第一中学", "unit_type": "school", "households": 0,
         "headcount": 120, "community_code": "C1", "street_code": "S1",
         "geometry": box(X0 + 2.2 * D, Y0 + 0.2 * D, X0 + 2.8 * D, Y0 + 0.8 * D)},
    ]))
    write_gdf(con, "staff", pd.DataFrame([
        {"staff_id": "W1", "street_code": "S1", "grid_id": "G1", "role": "full_time",
         "community_code": "C1"},
        {"staff_id": "W2", "street_code": "S1", "grid_id": None, "role": "full_time",
         "community_code": "C1"},
        {"staff_id": "W3", "street_code": "S2", "grid_id": None, "role": "full_time",
         "community_code": None},
        {"staff_id": "W4", "street_code": "S1", "grid_id": "G3", "role": "full_time",
         "community_code": "C1"},
        {"staff_id": "W5", "street_code": "S2", "grid_id": "G5", "role": "part_time",
         "community_code": "C3"},
    ]))
    if with_grids:
        rows = []
        for plan in ("P1", "P2"):  # P1 is an older plan that must be ignored
            for gid, (col, comm, street, gtype) in GRIDS.items():
                rows.append({"grid_id": gid, "plan_id": plan, "grid_type": gtype,
                             "community_code": comm, "street_code": street,
                             "households": HOUSEHOLDS[gid], "residents": 0, "workload": 0.0,
                             "area_km2": 0.85, "compactness": 0.78, "geometry": _cell(col)})
        write_gdf(con, "grids", gdf(rows))
        write_gdf(con, "grid_members", pd.DataFrame(members))
        write_gdf(con, "plans", pd.DataFrame([
            {"plan_id": "P1", "parent_plan_id": None, "created_at": pd.Timestamp("2024-01-01"),
             "author": "t", "note": "", "settings": "{}"},
            {"plan_id": "P2", "parent_plan_id": "P1", "created_at": pd.Timestamp("2024-06-01"),
             "author": "t", "note": "", "settings": "{}"},
        ]))


@pytest.fixture
def city():
    con = connect()
    build_city(con)
    yield con
    con.close()


SETTINGS = {"allocation": {"budget": 12, "min_per_street": 3}}


def test_stage_writes_contract_tables(city):
    summary = stage_staffing.run(city, SETTINGS)
    for table in stage_staffing.OUTPUT_TABLES:
        assert table_exists(city, table)
    staffing = read_table(city, "staffing")
    assert list(staffing.columns[:5]) == ["grid_id", "workload", "required_staff",
                                          "current_staff", "gap"]
    assert sorted(staffing["grid_id"]) == sorted(GRIDS)  # plan P2 only, once each
    assert summary["unit"] == "grid" and summary["plan_id"] == "P2"
    np.testing.assert_allclose(staffing[list(COMPONENTS)].sum(axis=1), staffing["workload"])
    np.testing.assert_allclose(staffing["gap"], staffing["required_staff"] - staffing["current_staff"])

    streets = read_table(city, "street_allocation")
    for col in ["street_code", "function_type", "area_km2", "residents", "workload",
                "current_staff", "recommended_staff", "gap", "current_per_10k_residents",
                "recommended_per_1k_hours", "gap_rank"]:
        assert col in streets.columns
    assert streets["recommended_staff"].sum() == 12
    assert (streets["recommended_staff"] >= 3).all()
    assert summary["budget"] == 12 and summary["budget_source"] == "settings"


def test_stage_places_staff_and_separates_dedicated_grids(city):
    stage_staffing.run(city, SETTINGS)
    s = read_table(city, "staffing").set_index("grid_id")
    assert s.loc["G3", "staff_source"] == "unit" and s.loc["G3", "current_staff"] == 1.0
    assert s.loc["G3", "wl_special_units"] == pytest.approx(4.0)  # the school's inspections
    # W1 on G1 outright, W2 shared over C1's basic grids G1, G2 by workload, W5 part-time
    assert s.loc["G1", "current_staff"] + s.loc["G2", "current_staff"] == pytest.approx(2.0)
    assert s.loc["G1", "current_staff"] > 1.0
    assert s.loc["G5", "current_staff"] == pytest.approx(1.5)  # W3 (street pool) + W5 at 0.5
    assert s.loc["G1", "wl_incidents"] > s.loc["G2", "wl_incidents"] == 0
    streets = read_table(city, "street_allocation").set_index("street_code")
    assert streets.loc["S1", "current_staff"] == 2  # W4 belongs to the school's grid
    assert streets.loc["S2", "current_staff"] == 2
    assert streets.loc["S1", "dedicated_workload"] == pytest.approx(s.loc["G3", "workload"])
    assert streets.loc["S1", "workload"] == pytest.approx(s.loc[["G1", "G2", "G4"], "workload"].sum())


def test_stage_community_allocation_splits_each_street(city):
    stage_staffing.run(city, SETTINGS)
    streets = read_table(city, "street_allocation").set_index("street_code")
    comm = read_table(city, "community_allocation")
    per_street = comm.groupby("street_code")["recommended_staff"].sum()
    assert per_street.to_dict() == streets["recommended_staff"].to_dict()
    assert (comm["recommended_staff"] >= 1).all()
    equity = read_table(city, "allocation_equity")
    assert set(equity["level"]) == {"street", "community"}


def test_stage_worker_performance(city):
    stage_staffing.run(city, SETTINGS)
    perf = read_table(city, "worker_performance").set_index("staff_id")
    assert set(perf.index) == {"W1", "W2", "W3", "W4", "W5"}
    w1 = perf.loc["W1"]
    assert w1["cases"] == 50 and w1["on_time"] == 40 and w1["on_time_rate"] == pytest.approx(0.8)
    assert w1["on_time_ci_low"] < 0.8 < w1["on_time_ci_high"]
    assert w1["repeat_complaints"] == 1 and not w1["small_n"]
    assert perf.loc["W5", "small_n"] and perf.loc["W2", "cases"] == 0
    assert perf.loc["W1", "workload_carried"] > 0
    # the grid of the largest share of each worker's time; W3 (street S2) and W5 work in G5
    staffing = read_table(city, "staffing").set_index("grid_id")
    assert perf.loc["W1", "main_grid_id"] == "G1" and perf.loc["W4", "main_grid_id"] == "G3"
    busier = staffing.loc[["G1", "G2"], "workload"].idxmax()  # W2 is split over C1's basic grids
    assert perf.loc["W2", "main_grid_id"] == busier
    assert perf.loc["W3", "main_grid_id"] == "G5" and perf.loc["W5", "main_grid_id"] == "G5"


def test_load_allocation_reproduces_the_table_for_whatifs(city):
    from geo.staffing import whatif

    stage_staffing.run(city, SETTINGS)
    stored = read_table(city, "street_allocation").set_index("street_code")["recommended_staff"]
    base = stage_staffing.load_allocation(city, SETTINGS)
    assert base.recommended.to_dict() == stored.to_dict()
    assert whatif(base, budget=14).allocation.recommended.sum() == 14


def test_stage_without_budget_uses_current_headcount(city):
    summary = stage_staffing.run(city, {})
    streets = read_table(city, "street_allocation")
    assert summary["budget_source"] == "current_staff"
    assert streets["recommended_staff"].sum() == streets["current_staff"].sum() == 4


def test_stage_budget_below_minimum_is_refused_in_two_languages(city):
    with pytest.raises(BudgetTooSmall, match=r"预算.*budget"):
        stage_staffing.run(city, {"allocation": {"budget": 5, "min_per_street": 3}})


def test_stage_falls_back_to_communities_without_grids():
    con = connect()
    build_city(con, with_grids=False)
    summary = stage_staffing.run(con, SETTINGS)
    s = read_table(con, "staffing")
    assert summary["unit"] == "community"
    assert sorted(s["grid_id"]) == ["C1", "C2", "C3"]
    assert s.set_index("grid_id").loc["C1", "wl_incidents"] > 0
    assert summary["incidents_unassigned"] == 0
    assert read_table(con, "street_allocation")["recommended_staff"].sum() == 12


def test_stage_runs_without_optional_layers():
    con = connect()
    build_city(con, with_grids=False)
    for t in ("incidents", "special_units", "staff"):
        con.execute(f"DROP TABLE {t}")
    summary = stage_staffing.run(con, SETTINGS)
    assert summary["current_staff"] == 0
    assert read_table(con, "street_allocation")["recommended_staff"].sum() == 12
    assert len(read_table(con, "worker_performance")) == 0


def test_excel_report_has_documented_sheets_with_chinese_headers(city, tmp_path):
    openpyxl = pytest.importorskip("openpyxl")
    stage_staffing.run(city, SETTINGS)
    path = stage_staffing.export_report(city, tmp_path / "report.xlsx")
    wb = openpyxl.load_workbook(path, read_only=True)
    assert wb.sheetnames == [name for name, _, _ in stage_staffing.REPORT_SHEETS]
    for name, table, _ in stage_staffing.REPORT_SHEETS[1:]:
        rows = list(wb[name].iter_rows(values_only=True))
        assert all(CJK.search(str(h)) for h in rows[0]), (name, rows[0])
        assert len(rows) - 1 == len(read_table(city, table))
    workers = list(wb["网格员绩效"].iter_rows(values_only=True))
    assert "主要负责网格" in workers[0]
    for i, head in enumerate(workers[0]):  # no column left empty
        assert any(r[i] not in (None, "") for r in workers[1:]), head
    grids = list(wb["网格工作量"].iter_rows(values_only=True))
    gaps = [r[grids[0].index("缺口(正数为缺员)")] for r in grids[1:]]
    assert gaps == sorted(gaps, reverse=True)  # largest shortfall first
    wb2 = openpyxl.load_workbook(path)
    assert wb2["网格工作量"].page_setup.orientation == "landscape"
    about = [r for r in wb["说明"].iter_rows(values_only=True) if r and r[0]]
    gap_rows = {r[0]: r[1] for r in about if str(r[0]).startswith("缺口说明")}
    assert "全区编制 12 人" in gap_rows["缺口说明·街道 gap, streets"]
    street_rows = list(wb["街道配置"].iter_rows(values_only=True))
    assert street_rows[0][:2] == ("街道代码", "街道名称")
    assert "老城区" in [r[2] for r in street_rows[1:]]


def test_excel_report_before_any_run_notes_missing_tables(tmp_path):
    openpyxl = pytest.importorskip("openpyxl")
    con = connect()
    path = stage_staffing.export_report(con, tmp_path / "empty.xlsx")
    wb = openpyxl.load_workbook(path, read_only=True)
    assert wb.sheetnames == [name for name, _, _ in stage_staffing.REPORT_SHEETS]
    first = next(wb["街道配置"].iter_rows(values_only=True))
    assert "未生成" in first[0]


def test_streets_without_function_type_use_the_stated_default():
    """An own city without 功能定位: no NA reaches the tables (pages test it with ``if``)."""
    con = connect()
    build_city(con)
    con.execute("ALTER TABLE streets DROP COLUMN function_type")
    summary = stage_staffing.run(con, SETTINGS)
    types = dict(con.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_name = 'street_allocation'").fetchall())
    assert types["function_type"] == "VARCHAR"
    st = read_table(con, "street_allocation")
    assert st["function_type"].tolist() == ["residential", "residential"]
    assert st["function_type_assumed"].tolist() == [True, True]
    assert summary["function_type_assumed"] == 2
    for v in st["function_type"]:  # what the page does; pd.NA raised here before
        assert bool(v)
    # both streets now carry multiplier 1.0
    assert st["function_multiplier"].tolist() == [1.0, 1.0]
    com = read_table(con, "community_allocation")
    assert com["function_type"].notna().all()
    assert stage_staffing.load_allocation(con, SETTINGS).recommended.sum() == 12


def test_stage_writes_whole_people_and_a_gap_explanation(city):
    summary = stage_staffing.run(city, SETTINGS)
    st = read_table(city, "street_allocation").set_index("street_code")
    assert st["required_headcount"].dtype == np.int64
    assert (st["required_headcount"] == np.ceil(st["required_staff"] - 1e-9)).all()
    for code, row in st.iterrows():
        g = int(row["gap"])
        word = "缺" if g > 0 else ("超" if g < 0 else "持平")
        assert row["gap_note_zh"].startswith(word)
        assert f"建议 {int(row['recommended_staff'])} 人" in row["gap_note_zh"] or g == 0
    both = read_table(city, "staffing_explanation").set_index("level")
    assert list(both.index) == ["street", "community"]
    com = read_table(city, "community_allocation")
    assert both.loc["community", "people_short"] == int(com["gap"].clip(lower=0).sum())
    assert "个社区缺员" in both.loc["community", "explanation_zh"]
    assert com["gap_note_zh"].str.len().gt(0).all()
    ex = both.loc["street"]
    assert ex["budget"] == 12
    assert ex["people_short"] == int(st["gap"].clip(lower=0).sum())
    assert ex["people_over"] == int((-st["gap"]).clip(lower=0).sum())
    assert ex["people_short"] - ex["people_over"] == ex["budget"] - ex["current_staff"]
    assert ex["required_people"] == summary["required_people"]
    assert f"全区编制 12 人，现有 {int(ex['current_staff'])} 人" in ex["explanation_zh"]
    assert ex["explanation_en"].startswith("The district shares 12 posts among 2 streets")
    assert "个街道缺员" in ex["explanation_zh"]


# --- risk feeds staffing (#11.5) ----------------------------------------------------------------

def _forecast(con, *, recommended: str | None = "last_period") -> None:
    rows = []
    for method, values in {"model": {"G1": 99.0, "G5": 99.0, "G2": 99.0},
                           "last_period": {"G1": 10.0, "G5": 2.0, "G2": 0.0}}.items():
        for gid, v in values.items():
            rows.append({"grid_id": gid, "period": "2025-01", "method": method, "predicted": v,
                         "rank": 1})
    write_gdf(con, "forecast", pd.DataFrame(rows))
    write_gdf(con, "forecast_recommendation", pd.DataFrame([
        {"unit": "grid", "area_share": 0.1, "method": recommended, "pai": 2.0}]))


def test_stage_turns_next_months_forecast_into_hours(city):
    _forecast(city)
    summary = stage_staffing.run(city, SETTINGS)
    fw = read_table(city, "forecast_workload").set_index("grid_id")
    assert list(read_table(city, "forecast_workload").columns) == \
        stage_staffing.FORECAST_WORKLOAD_COLUMNS
    assert sorted(fw.index) == ["G1", "G2", "G5"]  # grids with a forecast
    assert (fw["method"] == "last_period").all()  # the recommended forecast, not the model's
    # G1's incidents are half disputes (120 min), half sanitation (45 min), severity 3:
    # 10 predicted = 5 x 120 + 5 x 45 minutes = 13.75 h; G5 likewise: 1 x 120 + 1 x 45 = 2.75 h
    assert fw.loc["G1", "predicted_hours"] == pytest.approx(13.75)
    assert fw.loc["G5", "predicted_hours"] == pytest.approx(2.75)
    assert fw.loc["G2", "predicted_hours"] == 0.0
    s = read_table(city, "staffing").set_index("grid_id")
    for g in fw.index:
        assert fw.loc[g, "current_hours"] == pytest.approx(s.loc[g, "wl_incidents"])
        assert fw.loc[g, "delta_hours"] == pytest.approx(
            fw.loc[g, "predicted_hours"] - s.loc[g, "wl_incidents"])
        assert fw.loc[g, "predicted_workload"] == pytest.approx(
            s.loc[g, "workload"] + fw.loc[g, "delta_hours"])
        assert fw.loc[g, "required_fte_delta"] == pytest.approx(
            fw.loc[g, "delta_hours"] / monthly_capacity())  # 20.83 days x 6 h
    assert fw.loc["G1", "community_code"] == "C1" and fw.loc["G5", "street_code"] == "S2"
    assert fw.loc["G1", "predicted_incidents"] == 10.0
    info = summary["forecast_workload"]
    assert info["written"] and info["method"] == "last_period" and info["grids"] == 3
    assert info["predicted_hours"] == pytest.approx(16.5)
    # nothing recommended (nothing beats random): the model's forecast
    _forecast(city, recommended=None)
    stage_staffing.run(city, SETTINGS)
    fw = read_table(city, "forecast_workload").set_index("grid_id")
    assert (fw["method"] == "model").all() and fw.loc["G1", "predicted_incidents"] == 99.0


def test_stage_without_forecast_writes_no_forecast_workload(city):
    _forecast(city)
    stage_staffing.run(city, SETTINGS)
    assert table_exists(city, "forecast_workload")
    city.execute("DROP TABLE forecast")
    summary = stage_staffing.run(city, SETTINGS)
    assert not table_exists(city, "forecast_workload")  # no stale table from an earlier run
    assert summary["forecast_workload"] == {"written": False, "reason": "no forecast"}


def _edge_cases(con) -> None:
    """Rows that test each rule of the per-worker figures (the city's incidents, edited)."""
    for sql in (
        "UPDATE incidents SET staff_id = '' WHERE incident_id = 'I2'",  # a blank id is a worker
        "UPDATE incidents SET staff_id = NULL WHERE incident_id = 'I6'",  # nobody's case
        "UPDATE incidents SET occurred_at = NULL WHERE incident_id = 'I4'",  # undated: not a case
        # repeats: of W5's I55 (one from a case without a worker), of an undated case, of nothing
        "UPDATE incidents SET repeat_of = 'I55' WHERE incident_id IN ('I10', 'I6')",
        "UPDATE incidents SET repeat_of = 'I4' WHERE incident_id = 'I12'",
        "UPDATE incidents SET repeat_of = 'nope' WHERE incident_id = 'I13'",
        "UPDATE incidents SET responded_at = NULL WHERE incident_id IN ('I14', 'I15')",
        "UPDATE incidents SET closed_at = NULL WHERE incident_id IN ('I15', 'I58', 'I59')",
        "UPDATE incidents SET closed_at = occurred_at - INTERVAL 2 HOUR WHERE incident_id = 'I20'",
        "UPDATE incidents SET severity = 5 WHERE incident_id IN ('I16', 'I17')",  # emergencies
        # a duplicated id handled again by W5: a repeat of I3 counts for its first handler, W1
        "INSERT INTO incidents SELECT * REPLACE ('W5' AS staff_id) FROM incidents "
        "WHERE incident_id = 'I3'",
    ):
        con.execute(sql)


@pytest.mark.parametrize("variant", ["timestamps", "no_repeat_of"])
def test_worker_performance_from_duckdb_equals_the_pandas_path(city, variant):
    """The stage aggregates per worker inside DuckDB (issue #13.2); the old path read every
    incident into pandas and called ``geo.staffing.worker_performance``: same table, exactly."""
    from geo import staffing as model

    _edge_cases(city)
    if variant == "no_repeat_of":
        city.execute("ALTER TABLE incidents DROP COLUMN repeat_of")
        city.execute("ALTER TABLE incidents DROP COLUMN responded_at")
    settings = {**SETTINGS, "hotspots": {"timeliness": {
        "category_deadlines": {"sanitation": [2, 30]}, "emergency_severity": 5}}}
    stage_staffing.run(city, settings)
    got = read_table(city, "worker_performance").drop(columns="main_grid_id")
    cases = stage_staffing._read(city, "incidents", [
        "incident_id", "staff_id", "category", "severity", "service_type", "occurred_at",
        "responded_at", "closed_at", "repeat_of"])
    cfg, _ = stage_staffing._settings(settings)
    ref = model.worker_performance(
        cases, staff=stage_staffing._read(city, "staff", ["staff_id", "street_code", "grid_id",
                                                          "role", "community_code"]),
        carried=got.set_index("staff_id")["workload_carried"], params=cfg,
        timeliness=stage_staffing._timeliness_kw(settings))
    write_gdf(city, "__ref", ref)
    cols = ", ".join(f'"{c}"' for c in ref.columns)
    ref = read_table(city, f"SELECT {cols} FROM __ref ORDER BY staff_id")
    got = read_table(city, f"SELECT {cols} FROM worker_performance ORDER BY staff_id")
    pd.testing.assert_frame_equal(got, ref, check_exact=True)
    perf = got.set_index("staff_id")
    assert set(perf.index) == {"", "W1", "W2", "W3", "W4", "W5"}
    assert perf.loc["", "cases"] == 1 and perf.loc["W5", "cases"] == 11
    if variant != "no_repeat_of":  # I7 -> I3 (W1's, the first I3); I10, I6 -> I55 (W5's)
        assert (perf.loc["W1", "repeat_complaints"], perf.loc["W5", "repeat_complaints"]) == (1, 2)
    else:
        assert perf["repeat_complaints"].eq(0).all()
    # I59, open and the latest case, is not judged yet; I15, open long past its deadline, is late
    assert perf.loc["W5", "decided"] == perf.loc["W5", "cases"] - 1
    assert perf.loc["W1", "decided"] == perf.loc["W1", "cases"]


def test_worker_figures_of_text_times_equal_the_pandas_path(city):
    """A hand-built incidents table with times as text (the stage's workload window needs
    TIMESTAMP, as ``gridgov ingest`` stores them; the per-worker figures parse text too)."""
    from geo import staffing as model

    _edge_cases(city)
    for c in ("occurred_at", "responded_at", "closed_at"):
        city.execute(f"ALTER TABLE incidents ALTER {c} TYPE VARCHAR")
    kw = {"category_deadlines": {"sanitation": [2, 30]}, "emergency_severity": 5}
    got = stage_staffing._worker_figures(city, kw)
    cases = stage_staffing._read(city, "incidents", [
        "incident_id", "staff_id", "category", "severity", "service_type", "occurred_at",
        "responded_at", "closed_at", "repeat_of"])
    assert cases["occurred_at"].dtype.kind not in "mM"  # really text
    ref = model.worker_case_figures(cases, timeliness=kw)
    assert list(got.index) == list(ref.index) == ["", "W1", "W5"]
    for c in model.WORKER_FIGURES:
        np.testing.assert_array_equal(got[c].to_numpy(float), ref[c].to_numpy(float), err_msg=c)
    assert got["repeat_complaints"].tolist() == [0, 1, 2]


def test_workload_rows_come_in_a_fixed_order(city):
    """Same input, same answer: the incident and special-unit rows the workload sums arrive
    sorted, so the float sums do not follow DuckDB's parallel hash/join order (which made
    ``wl_incidents`` and what follows from it differ in the last bits between runs)."""
    cfg, _ = stage_staffing._settings(SETTINGS)
    city.execute("INSERT INTO incidents SELECT * REPLACE ('water' AS category, 4 AS severity) "
                 "FROM incidents WHERE incident_id IN ('I3', 'I52')")
    _, mode, plan = stage_staffing._units(city, cfg)
    inc, _, _ = stage_staffing._incidents(city, mode, plan, 120)
    su, _ = stage_staffing._special_units(city, mode, plan)
    assert len(inc) > 4 and len(su) == 1
    for frame in (inc, su):
        ordered = frame.sort_values(list(frame.columns), na_position="last", kind="stable")
        pd.testing.assert_frame_equal(frame, ordered.reset_index(drop=True))

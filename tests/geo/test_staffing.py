"""Workload model, grid staffing, street allocation, what-if, equity and worker performance."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from geo import staffing as st
from geo.apportion import BudgetTooSmall

HOURS = pytest.approx


# --- workload ---------------------------------------------------------------------------------

def one_unit(**extra) -> pd.DataFrame:
    row = {"grid_id": "g", "households": 300, "residents": 700, "renters": 6, "elderly_alone": 10,
           "disabled": 3, "low_income": 6, "area_km2": 0.25, "kind": "urban"}
    return pd.DataFrame([{**row, **extra}])


def test_workload_hand_example():
    incidents = pd.DataFrame({"grid_id": ["g", "g", "elsewhere"], "category": ["dispute", "邻里纠纷", "dispute"],
                              "severity": [3, 5, 3], "n": [6, 3, 100]})
    special = pd.DataFrame({"grid_id": ["g", "g"], "unit_type": ["school", "market"], "households": [0, 12]})
    wl = st.unit_workload(one_unit(), incidents=incidents, special_units=special, months=3).iloc[0]
    assert wl["wl_households"] == HOURS(300 * (1 / 3) * 15 / 60)  # 25 h: a visit a quarter
    assert wl["wl_residents"] == HOURS(700 / 60)
    assert wl["wl_renters"] == HOURS(1.0)
    assert wl["wl_elderly_alone"] == HOURS(10 * 2 * 20 / 60)
    assert wl["wl_disabled"] == HOURS(1.0)
    assert wl["wl_low_income"] == HOURS(2.0)
    # 6 disputes × 120 min + 3 severe (×1.6) disputes found by keyword, over 3 months
    assert wl["wl_incidents"] == HOURS((6 * 120 + 3 * 120 * 1.6) / 60 / 3)
    assert wl["wl_special_units"] == HOURS(4 + 6 + 12 * 5 / 60)
    assert wl["wl_patrol"] == HOURS(0.25 * 8 * 20.83 / 4)  # 8 km road/km², daily, walking
    assert wl["workload"] == HOURS(75.94833, abs=1e-4)


def test_workload_components_add_up_on_random_units():
    rng = np.random.default_rng(3)
    n = 300
    units = pd.DataFrame({
        "grid_id": [f"g{i}" for i in range(n)],
        "households": rng.integers(0, 800, n),
        "residents": np.where(rng.random(n) < 0.3, np.nan, rng.integers(0, 2000, n)),
        "renters": rng.integers(0, 50, n), "elderly_alone": rng.integers(0, 40, n),
        "disabled": rng.integers(0, 20, n), "low_income": rng.integers(0, 20, n),
        "area_km2": rng.random(n) * 3, "kind": rng.choice(["urban", "rural", None], n),
    })
    cats = ["dispute", "sanitation", "12345_heating", "unknown thing", None]
    incidents = pd.DataFrame({"grid_id": rng.choice(units["grid_id"], 5000),
                              "category": rng.choice(np.array(cats, dtype=object), 5000),
                              "severity": rng.choice([1, 2, 3, 4, 5, None], 5000)})
    special = pd.DataFrame({"grid_id": rng.choice(units["grid_id"], 40),
                            "unit_type": rng.choice(["school", "market", "spaceport", None], 40)})
    wl = st.unit_workload(units, incidents=incidents, special_units=special, months=12)
    assert list(wl.index) == list(units.index)
    np.testing.assert_allclose(wl[list(st.COMPONENTS)].sum(axis=1), wl["workload"], rtol=0, atol=1e-9)
    assert (wl[list(st.COMPONENTS)] >= 0).all().all()
    assert wl["wl_incidents"].sum() > 0 and wl["wl_special_units"].sum() > 0


def test_missing_residents_come_from_households_and_rural_patrols_differently():
    units = pd.DataFrame({"grid_id": ["u", "r"], "households": [100, 100], "residents": [None, None],
                          "area_km2": [4.0, 4.0], "kind": ["urban", "rural"]})
    wl = st.unit_workload(units)
    assert wl.loc[0, "wl_residents"] == HOURS(100 * 2.3 / 60)
    assert wl.loc[1, "wl_patrol"] == HOURS(4 * 2 * 8 / 15)
    assert wl.loc[0, "wl_patrol"] > wl.loc[1, "wl_patrol"]


def test_workload_settings_override_defaults():
    base = st.unit_workload(one_unit())
    doubled = st.unit_workload(one_unit(), params={"workload": {"household_visit_minutes": 30}})
    assert doubled.loc[0, "wl_households"] == HOURS(2 * base.loc[0, "wl_households"])
    assert doubled.loc[0, "wl_residents"] == base.loc[0, "wl_residents"]


def test_service_type_refines_the_incident_category():
    incidents = pd.DataFrame({"grid_id": ["g", "g"], "category": ["complaint_12345"] * 2,
                              "service_type": ["heating", None]})
    wl = st.unit_workload(one_unit(), incidents=incidents)
    assert wl.loc[0, "wl_incidents"] == HOURS((45 + 60) / 60)


def test_category_lookup_exact_then_keyword_then_default():
    got = st.lookup_by_category(pd.Series(["Dispute", "12345_heating", "违法建设举报", "??", None]),
                                st.DEFAULTS["workload"]["incident_minutes"])
    assert got.tolist() == [120.0, 45.0, 120.0, 60.0, 60.0]


def test_capacity_is_working_days_times_field_hours():
    assert st.monthly_capacity() == HOURS(20.83 * 6)
    assert st.monthly_capacity({"capacity": {"field_hours_per_day": 5}}) == HOURS(20.83 * 5)


# --- grid staffing ------------------------------------------------------------------------------

@pytest.fixture
def grids() -> pd.DataFrame:
    return pd.DataFrame({
        "grid_id": ["g1", "g2", "g3", "g4"],
        "community_code": ["c1", "c1", "c1", "c2"],
        "street_code": ["s1", "s1", "s1", "s1"],
        "grid_type": ["basic", "basic", "dedicated", "basic"],
        "workload": [150.0, 50.0, 40.0, 100.0],
    })


def test_assign_staff_by_grid_then_community_then_street(grids):
    staff = pd.DataFrame({
        "staff_id": ["a", "b", "c", "d", "e"],
        "street_code": ["s1", "s1", "s1", "s1", "s9"],
        "community_code": [None, "c1", None, None, None],
        "grid_id": ["g1", "old-7", None, "g3", None],
        "role": ["full_time", "full_time", "part_time", "full_time", "full_time"],
    })
    a = st.assign_staff(staff, grids)
    fte = a.groupby(["staff_id", "grid_id"])["fte"].sum()
    assert fte[("a", "g1")] == 1.0
    # b's old grid id is gone: shared over c1's basic grids (not the dedicated g3) by workload
    assert fte[("b", "g1")] == HOURS(0.75) and fte[("b", "g2")] == HOURS(0.25)
    assert ("b", "g3") not in fte.index
    # c is part-time and known only by street: 0.5 FTE over s1's basic grids
    assert a[a["staff_id"] == "c"]["fte"].sum() == HOURS(0.5)
    assert fte[("c", "g4")] == HOURS(0.5 * 100 / 300)
    assert fte[("d", "g3")] == 1.0  # named on the dedicated grid
    assert "e" not in set(a["staff_id"])  # street s9 has no grids
    assert set(a["placed_by"]) == {"grid", "community", "street"}


def test_grid_staffing_required_current_gap(grids):
    staff = pd.DataFrame({"staff_id": ["a", "d"], "street_code": ["s1", "s1"], "grid_id": ["g1", "g3"]})
    a = st.assign_staff(staff, grids)
    out = st.grid_staffing(grids, a).set_index("grid_id")
    cap = st.monthly_capacity()
    assert out.loc["g1", "required_staff"] == HOURS(150 / cap)
    assert out.loc["g1", "current_staff"] == 1.0 and out.loc["g2", "current_staff"] == 0.0
    np.testing.assert_allclose(out["gap"], out["required_staff"] - out["current_staff"])
    assert out.loc["g3", "staff_source"] == "unit" and out.loc["g1", "staff_source"] == "street"
    carried = st.workload_carried(a, out.reset_index())
    assert carried.to_dict() == {"a": HOURS(150.0), "d": HOURS(40.0)}


# --- street allocation ----------------------------------------------------------------------------

def random_streets(seed: int, n: int = 30) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "street_code": [f"s{i:03d}" for i in range(n)],
        "function_type": rng.choice(list(st.FUNCTION_TYPES), n),
        "area_km2": rng.lognormal(1, 1, n),
        "residents": rng.integers(5_000, 120_000, n),
        "workload": rng.lognormal(7, 0.6, n),
        "current_staff": rng.integers(2, 40, n),
    })


def test_allocation_sums_to_budget_respects_minimum_and_is_monotone():
    streets = random_streets(0)
    prev = None
    for budget in range(50, 501):
        alloc = st.allocate(streets, budget, minimum=1)
        rec = alloc.table["recommended_staff"].to_numpy()
        assert rec.sum() == budget and (rec >= 1).all()
        if prev is not None:
            assert (rec >= prev).all(), budget
        prev = rec


def test_allocation_refuses_budget_below_minimum_in_two_languages():
    with pytest.raises(BudgetTooSmall, match=r"编制预算 299 人少于最低配置 10 × 30 = 300.*raise the budget"):
        st.allocate(random_streets(1), 299, minimum=10)


def test_allocation_moves_staff_toward_higher_workload_per_head():
    # same size and residents, workload 2:1, staffed 10:10 today
    streets = pd.DataFrame({"street_code": ["busy", "quiet"], "workload": [2000.0, 1000.0],
                            "residents": [50_000, 50_000], "area_km2": [4.0, 4.0],
                            "current_staff": [10, 10]})
    t = st.allocate(streets, 20, minimum=1).table.set_index("street_code")
    assert t.loc["busy", "recommended_staff"] > 10 > t.loc["quiet", "recommended_staff"]
    assert t.loc["busy", "gap"] > 0 > t.loc["quiet", "gap"]
    assert t.loc["busy", "gap_rank"] == 1
    workload_only = {"weights": {"workload": 1, "residents": 0, "area": 0}}
    t = st.allocate(streets, 21, score=workload_only).table.set_index("street_code")
    assert t["recommended_staff"].to_dict() == {"busy": 14, "quiet": 7}


def test_redistribution_lowers_inequality_on_random_districts():
    workload_only = {"weights": {"workload": 1, "residents": 0, "area": 0}}
    for seed in range(10):
        streets = random_streets(seed)
        alloc = st.allocate(streets, None, score=workload_only)  # re-distribute today's staff
        t = alloc.table
        assert alloc.params["budget"] == streets["current_staff"].sum()
        eq = st.equity_summary(t).set_index("metric")
        assert eq.loc["gini_staff_per_workload", "recommended"] < eq.loc["gini_staff_per_workload", "current"]
        hardest = t["hours_per_current_staff"].idxmax()  # most hours per head today
        easiest = t["hours_per_current_staff"].idxmin()
        assert t.loc[hardest, "gap"] > 0 and t.loc[easiest, "gap"] < 0


def test_function_type_and_area_enter_the_score():
    streets = pd.DataFrame({"street_code": ["a", "b"], "workload": [100.0, 100.0],
                            "residents": [1000, 1000], "area_km2": [1.0, 1.0],
                            "function_type": ["old_town", "industrial"]})
    s = st.allocation_scores(streets)
    assert s.loc[0, "function_multiplier"] == 1.15 and s.loc[1, "function_multiplier"] == 0.9
    assert s.loc[0, "score"] / s.loc[1, "score"] == HOURS(1.15 / 0.9)
    parts = s[["score_workload", "score_residents", "score_area"]].sum(axis=1)
    np.testing.assert_allclose(s["score"], s["function_multiplier"] * parts)
    bigger = streets.assign(area_km2=[4.0, 1.0], function_type="residential")
    s2 = st.allocation_scores(bigger)
    assert s2.loc[0, "score_area"] == HOURS(0.15 * 2 / 3)  # sqrt(4) : sqrt(1)


def test_a_quantity_missing_everywhere_drops_out_of_the_score():
    streets = pd.DataFrame({"street_code": ["a", "b"], "workload": [300.0, 100.0],
                            "residents": [0, 0], "area_km2": [0.0, 0.0]})
    assert st.allocation_scores(streets)["score"].tolist() == HOURS([0.75, 0.25])


def test_unknown_function_type_warns_and_counts_as_one():
    streets = pd.DataFrame({"street_code": ["a"], "workload": [1.0], "function_type": ["spaceport"]})
    with pytest.warns(UserWarning, match="spaceport"):
        s = st.allocation_scores(streets)
    assert s.loc[0, "function_multiplier"] == 1.0


def test_derived_budget_is_todays_headcount_or_required_staff():
    streets = pd.DataFrame({"street_code": ["a", "b"], "workload": [3.0, 1.0],
                            "current_staff": [0, 0], "required_staff": [2.2, 1.1]})
    assert st.allocate(streets, None).params["budget"] == 4
    assert st.allocate(streets.assign(current_staff=[5, 4]), None).params["budget"] == 9


def test_equity_columns():
    streets = pd.DataFrame({"street_code": ["a"], "workload": [2000.0], "residents": [40_000],
                            "area_km2": [8.0], "current_staff": [10]})
    t = st.allocate(streets, 16).table.iloc[0]
    assert t["current_per_10k_residents"] == HOURS(2.5) and t["recommended_per_10k_residents"] == HOURS(4.0)
    assert t["current_per_km2"] == HOURS(1.25) and t["recommended_per_1k_hours"] == HOURS(8.0)
    assert t["hours_per_current_staff"] == HOURS(200.0) and t["gap"] == 6 and t["status"] == "under"


# --- what-if ------------------------------------------------------------------------------------

def test_whatif_budget_moves_only_upward():
    base = st.allocate(random_streets(2), 300)
    w = st.whatif(base, budget=320)
    assert w.allocation.table["recommended_staff"].sum() == 320
    assert (w.moved["change"] > 0).all() and w.moved["change"].sum() == 20
    assert w.persons_moved == 20


def test_whatif_function_type_and_weights():
    streets = random_streets(3)
    base = st.allocate(streets, 300)
    target = streets.loc[streets["function_type"] == "industrial", "street_code"].iloc[0]
    w = st.whatif(base, function_type={target: "old_town"})
    moved = w.moved.set_index("street_code")
    assert moved.loc[target, "change"] > 0
    assert w.moved["change"].sum() == 0  # same budget: gains equal losses
    assert w.allocation.table.set_index("street_code").loc[target, "function_type"] == "old_town"
    w2 = st.whatif(base, weights={"workload": 1, "residents": 0, "area": 0}, method="huntington_hill")
    assert w2.allocation.params["method"] == "huntington_hill"
    assert w2.allocation.params["score"]["weights"]["residents"] == 0
    assert st.whatif(base).moved.empty
    more_work = st.whatif(base, workload={target: float(streets["workload"].max() * 3)})
    assert more_work.moved.set_index("street_code").loc[target, "change"] > 0


def test_whatif_rejects_unknown_changes():
    with pytest.raises(TypeError, match="budgett"):
        st.whatif(st.allocate(random_streets(4), 100), budgett=3)


# --- communities inside streets (Art. 42) ---------------------------------------------------------

def test_nested_allocation_splits_each_street_exactly():
    rng = np.random.default_rng(5)
    comm = pd.DataFrame({
        "community_code": [f"c{i}" for i in range(12)],
        "street_code": ["s1"] * 5 + ["s2"] * 4 + ["s3"] * 3,
        "workload": rng.lognormal(5, 0.5, 12), "residents": rng.integers(1000, 9000, 12),
        "area_km2": rng.random(12) + 0.1, "current_staff": rng.integers(0, 5, 12),
    })
    t = st.allocate_nested(comm, {"s1": 20, "s2": 9, "s3": 2}, minimum=1)
    sums = t.groupby("street_code")["recommended_staff"].sum().to_dict()
    assert sums == {"s1": 20, "s2": 9, "s3": 2}
    assert (t.loc[t["street_code"] != "s3", "recommended_staff"] >= 1).all()
    s3 = t[t["street_code"] == "s3"]
    heaviest = s3.loc[s3["score"].idxmax(), "community_code"]
    assert s3.set_index("community_code").loc[heaviest, "recommended_staff"] == 1


# --- equity ---------------------------------------------------------------------------------------

def test_gini():
    assert st.gini([3, 3, 3]) == 0.0
    assert st.gini([0, 0, 0, 1]) == HOURS(0.75)
    assert st.gini([1, 2], weights=[2, 1]) == HOURS(st.gini([1, 1, 2]))
    assert np.isnan(st.gini([]))
    assert st.gini([1, np.nan, 1]) == 0.0


def test_extremes_lists_furthest_under_and_over():
    streets = pd.DataFrame({"street_code": list("abcd"), "workload": [400.0, 300.0, 200.0, 100.0],
                            "current_staff": [1, 3, 3, 3]})
    t = st.allocate(streets, 10, score={"weights": {"residents": 0, "area": 0}}).table
    ext = st.extremes(t, id_col="street_code", n=1)
    assert ext == {"under": ["a"], "over": ["d"]}


# --- worker performance ---------------------------------------------------------------------------

def test_wilson_interval():
    lo, hi = st.wilson_interval([8, 0, 0], [10, 5, 0])
    assert lo[0] == HOURS(0.4902, abs=1e-4) and hi[0] == HOURS(0.9433, abs=1e-4)
    assert lo[1] == 0.0 and 0 < hi[1] < 0.5
    assert np.isnan(lo[2]) and np.isnan(hi[2])


def test_worker_performance():
    t0 = pd.Timestamp("2024-03-01 09:00")
    h = pd.Timedelta(hours=1)
    cases = pd.DataFrame({
        "incident_id": ["1", "2", "3", "4", "5", "6"],
        "staff_id": ["a", "a", "a", "a", "b", None],
        "category": ["dispute", "dispute", "供暖", "dispute", "dispute", "dispute"],
        "occurred_at": [t0, t0, t0, t0 + 200 * h, t0, t0 + 210 * h],
        "responded_at": [t0 + h, t0 + h, t0 + h, pd.NaT, t0 + h, pd.NaT],
        "closed_at": [t0 + 10 * h, t0 + 200 * h, t0 + 30 * h, pd.NaT, t0 + 5 * h, pd.NaT],
        "repeat_of": [None, None, None, None, None, "1"],
    })
    staff = pd.DataFrame({"staff_id": ["a", "b", "z"], "street_code": ["s", "s", "s"]})
    perf = st.worker_performance(cases, staff=staff, carried=pd.Series({"a": 120.0})).set_index("staff_id")
    a = perf.loc["a"]
    # 1 on time; 2 late (200 h > 7 days); 3 heating closes in 30 h > 24 h: late;
    # 4 is open but only 10 h old at the end of the records: not judged yet
    assert (a["cases"], a["closed"], a["decided"], a["on_time"]) == (4, 3, 3, 1)
    assert a["on_time_rate"] == HOURS(1 / 3)
    assert a["on_time_ci_low"] < 1 / 3 < a["on_time_ci_high"]
    assert a["median_hours_to_close"] == HOURS(30.0)
    assert a["repeat_complaints"] == 1 and a["repeat_rate"] == HOURS(0.25)
    assert a["workload_carried"] == 120.0
    assert a["small_n"] and "20" in a["note"]
    assert perf.loc["z", "cases"] == 0 and np.isnan(perf.loc["z", "on_time_rate"])
    assert perf.loc["b", "on_time_rate"] == 1.0


def test_worker_performance_without_cases():
    staff = pd.DataFrame({"staff_id": ["a"], "street_code": ["s"]})
    empty = pd.DataFrame(columns=["incident_id", "staff_id", "category", "occurred_at", "closed_at"])
    perf = st.worker_performance(empty, staff=staff)
    assert perf["cases"].tolist() == [0] and perf["small_n"].tolist() == [True]


def test_finish_performance_scores_figures_aggregated_elsewhere():
    """``pipelines.stage_staffing`` aggregates per worker in DuckDB and scores with this."""
    figures = pd.DataFrame(
        {"cases": [30, 4], "closed": [28, 4], "decided": [25, 0], "on_time": [20, 0],
         "median_hours_to_respond": [2.0, np.nan], "median_hours_to_close": [30.0, 5.0],
         "repeat_complaints": [3, 0]},
        index=pd.Index(["b", "a"], name="staff_id"))
    before = figures.copy()
    staff = pd.DataFrame({"staff_id": ["z", "b", "a"], "street_code": ["s", "s", "t"]})
    perf = st.finish_performance(figures, staff=staff, carried=pd.Series({"b": 50.0}))
    pd.testing.assert_frame_equal(figures, before)  # the input is left as it was
    assert perf["staff_id"].tolist() == ["a", "b", "z"]  # one row per worker, sorted
    perf = perf.set_index("staff_id")
    b = perf.loc["b"]
    lo, hi = st.wilson_interval([20], [25])
    assert (b["on_time_rate"], b["on_time_ci_low"], b["on_time_ci_high"]) == (0.8, lo[0], hi[0])
    assert b["repeat_rate"] == 0.1 and b["workload_carried"] == 50.0 and not b["small_n"]
    assert np.isnan(perf.loc["a", "on_time_rate"]) and perf.loc["a", "small_n"]
    assert perf.loc["z", "cases"] == 0 and perf.loc["z", "street_code"] == "s"
    assert perf["cases"].dtype == np.int64 and perf["median_hours_to_close"].dtype == float
    no_cases = st.finish_performance(st.empty_worker_figures(), staff=staff)
    assert no_cases["cases"].tolist() == [0, 0, 0]


def test_worker_performance_is_case_figures_then_finish():
    t0 = pd.Timestamp("2024-03-01 09:00")
    h = pd.Timedelta(hours=1)
    cases = pd.DataFrame({
        "incident_id": ["1", "2", "3", "1"],
        "staff_id": ["a", "b", "a", "b"],
        "category": ["dispute", "供暖", "dispute", "dispute"],
        "occurred_at": [t0, t0, t0 + 50 * h, t0 + h],
        "closed_at": [t0 + 10 * h, pd.NaT, pd.NaT, t0 + 2 * h],
        "repeat_of": [None, "1", "1", None],
    })
    figures = st.worker_case_figures(cases)
    assert list(figures.columns) == list(st.WORKER_FIGURES)
    assert figures.loc["a", "repeat_complaints"] == 2  # id "1" was first a's case
    pd.testing.assert_frame_equal(st.worker_performance(cases), st.finish_performance(figures))


def test_fill_function_type_states_the_default():
    from geo.staffing import fill_function_type

    s = pd.DataFrame({"street_code": ["a", "b", "c"],
                      "function_type": pd.array(["old_town", None, "  "], dtype="str")})
    out = fill_function_type(s)
    assert out["function_type"].tolist() == ["old_town", "residential", "residential"]
    assert out["function_type_assumed"].tolist() == [False, True, True]
    nulls = pd.DataFrame({"street_code": ["a"], "function_type": pd.array([pd.NA], dtype="Int32")})
    assert fill_function_type(nulls, default="old_town")["function_type"].tolist() == ["old_town"]
    absent = fill_function_type(pd.DataFrame({"street_code": ["a"]}))
    assert absent["function_type_assumed"].tolist() == [True]


def test_gap_explanation_distribution_total_and_both():
    from geo.staffing import gap_explanation, headcount

    assert headcount([0.0, 2.0, 2.0000000001, 2.1]).tolist() == [0, 2, 2, 3]
    # 3 short in a, 3 over in b, budget = today's 10: a matter of distribution
    t = pd.DataFrame({"street_name": ["甲", "乙"], "current_staff": [5, 5],
                      "recommended_staff": [8, 2], "gap": [3, -3]})
    e = gap_explanation(t, budget=10, required_fte=6.5, capacity_hours=125)
    assert (e["cause"], e["people_short"], e["people_over"], e["movable"]) == ("distribution", 3, 3, 3)
    assert e["required_people"] == 7 and e["units_under"] == 1 and e["new_posts"] == 0
    assert "调配 3 人" in e["explanation_zh"] and "缺员最多：甲" in e["explanation_zh"]
    assert "moving 3 people" in e["explanation_en"]
    # 4 new posts, nobody over: the gap is the total
    t2 = pd.DataFrame({"current_staff": [5, 5], "recommended_staff": [7, 7], "gap": [2, 2]})
    e2 = gap_explanation(t2, budget=14, required_fte=13.2)
    assert e2["cause"] == "total" and e2["people_short"] == 4 and e2["new_posts"] == 4
    # 4 short, 1 over, 3 new posts: both
    t3 = pd.DataFrame({"current_staff": [5, 5], "recommended_staff": [9, 4], "gap": [4, -1]})
    e3 = gap_explanation(t3, budget=13, required_fte=20)
    assert e3["cause"] == "both" and e3["movable"] == 1
    assert "少 7 人" in e3["explanation_zh"]  # budget 13 below the 20 people the workload needs


# --- risk feeds staffing (#11.5): predicted incidents as hours --------------------------------

def test_incident_hours_is_the_workload_component():
    inc = pd.DataFrame({"grid_id": ["g", "g", "h"], "category": ["dispute", "garbage", "x"],
                        "severity": [3, 5, 3], "n": [6, 3, 4]})
    units = pd.DataFrame({"grid_id": ["g", "h"]})
    wl = st.unit_workload(units, incidents=inc, months=2)
    hours = st.incident_hours(inc, months=2)
    # g: (6 x 120 + 3 x 30 x 1.6) / 60 / 2 = 7.2 h; h: 4 x 60 / 60 / 2 = 2 h
    assert hours.to_dict() == {"g": HOURS(7.2), "h": HOURS(2.0)}
    assert wl["wl_incidents"].tolist() == HOURS([7.2, 2.0])


def test_forecast_workload_hours_are_incidents_times_minutes():
    pred = pd.DataFrame({"grid_id": ["a", "a", "b"], "category": ["dispute", "garbage", "other"],
                         "predicted": [3.0, 2.0, 4.5]})
    fw = st.forecast_workload(pred, current_hours=pd.Series({"a": 5.0, "b": 6.0})).set_index("grid_id")
    assert fw.loc["a", "predicted_incidents"] == HOURS(5.0)
    assert fw.loc["a", "predicted_hours"] == HOURS(3 * 120 / 60 + 2 * 30 / 60)  # 7 h
    assert fw.loc["b", "predicted_hours"] == HOURS(4.5 * 60 / 60)  # default 60 min
    assert fw["current_hours"].tolist() == [5.0, 6.0]
    assert fw["delta_hours"].tolist() == HOURS([2.0, -1.5])
    cap = st.monthly_capacity()  # 125 h
    assert fw["required_fte_delta"].tolist() == HOURS([2.0 / cap, -1.5 / cap])
    # a grid not in current_hours starts from 0; minutes follow the settings
    fast = st.forecast_workload(pred, params={"workload": {"incident_minutes": {"default": 6.0}}})
    assert fast.set_index("grid_id").loc["b", "predicted_hours"] == HOURS(4.5 * 6 / 60)
    assert fast["current_hours"].tolist() == [0.0, 0.0]
    assert st.forecast_workload(pred.iloc[:0]).empty


def test_split_forecast_uses_each_grids_own_mix_else_the_citys():
    pred = pd.DataFrame({"grid_id": ["a", "b", "c"], "predicted": [8.0, 2.0, 0.0]})
    hist = pd.DataFrame({"grid_id": ["a", "a", "a", "b"],
                         "category": ["dispute", "garbage", "garbage", "garbage"],
                         "severity": [3, 3, 5, 3], "n": [2, 1, 1, 4]})
    sp = st.split_forecast(pred, hist)
    a = sp[sp["grid_id"] == "a"].set_index(["category", "severity"])["predicted"]
    assert a.to_dict() == {("dispute", 3): HOURS(4.0), ("garbage", 3): HOURS(2.0),
                           ("garbage", 5): HOURS(2.0)}
    assert sp[sp["grid_id"] == "b"]["predicted"].tolist() == [2.0]
    assert sp.groupby("grid_id")["predicted"].sum().to_dict() == {"a": 8.0, "b": 2.0, "c": 0.0}
    # c has no history: the city's mix (dispute 2, garbage@3 5, garbage@5 1 of 8)
    c = st.split_forecast(pd.DataFrame({"grid_id": ["c"], "predicted": [16.0]}), hist)
    assert c.set_index(["category", "severity"])["predicted"].to_dict() == {
        ("dispute", 3): HOURS(4.0), ("garbage", 3): HOURS(10.0), ("garbage", 5): HOURS(2.0)}
    # whole chain: a's 8 predicted incidents are 4 x 120 + 2 x 30 + 2 x 30 x 1.6 minutes
    fw = st.forecast_workload(sp).set_index("grid_id")
    assert fw.loc["a", "predicted_hours"] == HOURS((4 * 120 + 2 * 30 + 2 * 30 * 1.6) / 60)

"""geo.caserates on frames small enough to check by hand."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from geo.caserates import (
    board,
    case_flags,
    case_rates,
    parse_resolved,
    parse_returned,
    parse_satisfaction,
    score,
)

T0 = pd.Timestamp("2025-03-03 09:00")


def H(hours: float) -> pd.Timestamp:
    return T0 + pd.Timedelta(hours=hours)


def test_parsers_cover_the_contract_formats():
    assert parse_resolved(pd.Series(["是", "否", "true", "FALSE", "1", "0", " 已解决 ", "", None]
                                    )).tolist()[:7] == [1, 0, 1, 0, 1, 0, 1]
    assert parse_resolved(pd.Series(["", None, "maybe"])).isna().all()
    sat = parse_satisfaction(pd.Series(["满意", "基本满意", "不满意", "一般", "5", 4, 3, "1", "",
                                        None, "6", "?"]))
    assert sat.tolist()[:8] == [1, 1, 0, 0, 1, 1, 0, 0]
    assert sat[8:].isna().all()  # empty = not rated; out of scale / unknown = not rated
    # a 1-10 scale with 8 as the bar, by settings
    ten = parse_satisfaction(pd.Series(["8", "7", "10"]),
                             params={"scale_max": 10, "satisfied_min": 8})
    assert ten.tolist() == [1, 0, 1]
    assert parse_returned(pd.Series([0, 1, 3, "0", "2", "是", "否", None])).tolist()[:7] == [
        0, 1, 1, 0, 1, 1, 0]


def test_rates_are_the_shares_among_cases_that_carry_the_field():
    # street a: 4 cases; b: 2 cases. Values chosen so every share is a simple fraction.
    cases = pd.DataFrame({
        "occurred_at": [T0] * 6,
        "street_code": ["a", "a", "a", "a", "b", "b"],
        "category": ["noise"] * 6,  # general class: 24 h to respond, 7 days to close
        "responded_at": [H(1), H(2), H(30), None, H(1), H(1)],
        "closed_at": [H(10), H(200), H(40), H(50), H(5), H(5)],
        "resolved": ["是", "否", None, "是", "是", "是"],
        "satisfaction": ["满意", "基本满意", "不满意", None, "5", "2"],
        "returned": [0, 1, 0, None, 0, 0],
    })
    r = case_rates(cases, params={"min_cases": 1, "board_size": 1})
    a = r[(r.scope == "street") & (r.period == "all")].set_index("scope_id").loc["a"]
    assert a["cases"] == 4
    # respond: 1 h ok, 2 h ok, 30 h late, none -> closed at 50 h answers it: late => 2/4
    assert a["response_rate"] == pytest.approx(2 / 4)
    assert a["resolution_rate"] == pytest.approx(2 / 3) and a["resolved_n"] == 3
    assert a["satisfaction_rate"] == pytest.approx(2 / 3) and a["rated_n"] == 3
    assert a["on_time_close_rate"] == pytest.approx(3 / 4)  # 200 h > 168 h
    assert a["returned_rate"] == pytest.approx(1 / 3) and a["returned_n"] == 3
    b = r[(r.scope == "street") & (r.period == "all")].set_index("scope_id").loc["b"]
    assert (b["response_rate"], b["resolution_rate"], b["satisfaction_rate"]) == (1.0, 1.0, 0.5)
    # the month row equals the overall row here (one month)
    m = r[(r.scope == "street") & (r.period == "2025-03")].set_index("scope_id")
    assert m.loc["a", "resolution_rate"] == a["resolution_rate"]
    # scopes without a column are left out
    assert set(r["scope"]) == {"street"}


def test_a_field_no_case_carries_is_null():
    cases = pd.DataFrame({"occurred_at": [T0, T0], "street_code": ["a", "a"],
                          "resolved": [None, None]})
    r = case_rates(cases, params={"min_cases": 1})
    assert r[["response_rate", "resolution_rate", "satisfaction_rate", "on_time_close_rate",
              "returned_rate", "score"]].isna().all().all()
    assert r["rank"].isna().all()  # nothing to rank on


def test_score_weights_and_returned_counts_against():
    r = pd.DataFrame({"resolution_rate": [1.0, 0.5], "returned_rate": [0.5, 0.0]})
    s = score(r, {"resolution_rate": 3, "returned_rate": 1})
    assert s.tolist() == pytest.approx([(3 * 1.0 + 1 * 0.5) / 4, (3 * 0.5 + 1 * 1.0) / 4])


def test_small_counts_are_flagged_and_not_ranked_and_boards_split():
    rows = []
    for k, (sid, n, p) in enumerate([("a", 10, 1.0), ("b", 10, 0.9), ("c", 10, 0.8),
                                      ("d", 10, 0.7), ("e", 10, 0.6), ("f", 10, 0.5),
                                      ("g", 10, 0.4), ("tiny", 3, 1.0)]):
        good = round(n * p)
        rows += [{"occurred_at": T0, "street_code": sid, "resolved": "是" if i < good else "否"}
                 for i in range(n)]
    r = case_rates(pd.DataFrame(rows), params={"min_cases": 5, "board_size": 3})
    al = r[r.period == "all"].set_index("scope_id")
    assert bool(al.loc["tiny", "small_n"]) and pd.isna(al.loc["tiny", "rank"])
    assert al.loc["tiny", "resolution_rate"] == 1.0  # shown, though not ranked
    assert al["rank"].dropna().astype(int).to_dict() == {
        "a": 1, "b": 2, "c": 3, "d": 4, "e": 5, "f": 6, "g": 7}
    assert al["board"].to_dict() == {"a": "red", "b": "red", "c": "red", "d": None,
                                     "e": "black", "f": "black", "g": "black", "tiny": None}
    # four ranked entries: two on each list
    assert board(pd.Series([1, 2, 3, 4]), size=3).tolist() == ["red", "red", "black", "black"]
    assert board(pd.Series([1.0]), size=3).tolist() == [None]


def test_ties_break_by_more_cases_then_id():
    rows = [{"occurred_at": T0, "street_code": s, "resolved": "是"}
            for s, n in (("b", 4), ("a", 4), ("c", 6)) for _ in range(n)]
    r = case_rates(pd.DataFrame(rows), params={"min_cases": 1})
    al = r[r.period == "all"].set_index("scope_id")
    assert al["rank"].astype(int).to_dict() == {"a": 2, "b": 3, "c": 1}


def test_months_and_stage_hours():
    cases = pd.DataFrame({
        "occurred_at": [T0, T0 + pd.Timedelta(days=31)],
        "accepted_at": ["2025/3/3 09:30", None],
        "dispatched_at": [H(1.5), None],
        "staff_id": ["w", "w"],
        "resolved": ["是", "否"],
    })
    f = case_flags(cases)
    assert f["period"].tolist() == ["2025-03", "2025-04"]
    assert f.loc[0, "hours_to_accept"] == 0.5 and f.loc[0, "hours_accept_to_dispatch"] == 1.0
    assert np.isnan(f.loc[1, "hours_to_accept"])
    r = case_rates(cases, params={"min_cases": 1})
    assert r["period"].tolist() == ["all", "2025-03", "2025-04"]
    assert r["resolution_rate"].tolist() == [0.5, 1.0, 0.0]
    assert r["scope"].unique().tolist() == ["staff"]


def test_deadlines_come_from_the_settings():
    cases = pd.DataFrame({"occurred_at": [T0], "street_code": ["a"], "category": ["noise"],
                          "responded_at": [H(5)], "closed_at": [H(6)]})
    default = case_rates(cases, params={"min_cases": 1})
    strict = case_rates(cases, params={"min_cases": 1, "timeliness": {
        "category_deadlines": {"noise": [4, 8]}}})
    assert default.loc[0, "response_rate"] == 1.0 and strict.loc[0, "response_rate"] == 0.0
    assert strict.loc[0, "on_time_close_rate"] == 1.0


def test_empty_input_gives_the_columns():
    r = case_rates(pd.DataFrame(columns=["occurred_at", "street_code"]))
    assert len(r) == 0 and {"scope", "scope_id", "period", "rank", "board"} <= set(r.columns)

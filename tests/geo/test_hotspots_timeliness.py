"""Tests of geo.timeliness: deadline classes, on-time rules, repeat rate, scopes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from geo.timeliness import DEFAULT_DEADLINES, case_outcomes, case_timeliness, deadline_classes

T0 = pd.Timestamp("2024-03-01 08:00")


def h(hours):
    return T0 + pd.Timedelta(hours=hours)


def cases():
    return pd.DataFrame(
        {
            "occurred_at": [T0] * 6,
            "responded_at": [h(0.5), h(3), h(1), h(30), pd.NaT, pd.NaT],
            "closed_at": [h(1.5), h(20), h(100), h(200), pd.NaT, h(5)],
            "category": ["消防隐患", "停水", "噪音扰民", "疑难纠纷", "噪音扰民", "Heating failure"],
            "severity": [5, 3, 2, 3, 3, 3],
            "staff_id": ["w1", "w1", "w2", "w2", "w2", None],
            "street_code": ["S1", "S1", "S1", "S2", "S2", "S2"],
            "grid_id": ["g1", "g1", "g2", "g2", "g2", "g3"],
            "repeat_of": [None, "", "i1", None, None, "i2"],
        }
    )


def test_deadline_classes_defaults():
    cls = deadline_classes(cases())
    assert cls.tolist() == ["emergency", "utility", "general", "complex", "general", "utility"]
    assert DEFAULT_DEADLINES["emergency"] == {"respond_hours": 1.0, "close_hours": 2.0}
    assert DEFAULT_DEADLINES["complex"]["close_hours"] == 15 * 24
    # service_type is matched too
    df = pd.DataFrame({"category": ["报修"], "service_type": ["供暖"], "severity": [2]})
    assert deadline_classes(df).tolist() == ["utility"]


def test_case_outcomes_rules():
    oc = case_outcomes(cases(), as_of=h(24 * 30))
    # 0 emergency: 0.5 h / 1.5 h  -> on time
    # 1 utility: respond 3 h > 2 h -> late
    # 2 general: 1 h / 100 h <= 168 h -> on time
    # 3 complex: 30 h respond > 24 h -> late
    # 4 general, never answered, 30 days later -> due and late
    # 5 utility, no response time: closing at 5 h counts as the response (> 2 h) -> late
    assert oc["on_time"].tolist() == [1.0, 0.0, 1.0, 0.0, 0.0, 0.0]
    assert oc["hours_to_respond"].tolist()[:4] == [0.5, 3.0, 1.0, 30.0]
    assert oc["hours_to_respond"][5] == 5.0
    assert oc["repeat"].tolist() == [0, 0, 1, 0, 0, 1]


def test_open_cases_within_deadline_are_not_judged():
    df = pd.DataFrame(
        {
            "occurred_at": [T0, T0],
            "responded_at": [pd.NaT, h(1)],
            "closed_at": [pd.NaT, h(2)],
            "category": ["噪音", "噪音"],
        }
    )
    oc = case_outcomes(df, as_of=h(10))
    assert not oc["due"][0] and np.isnan(oc["on_time"][0])
    oc = case_outcomes(df, as_of=h(24 * 8))
    assert oc["due"][0] and oc["on_time"][0] == 0.0


def test_negative_durations_are_ignored():
    df = pd.DataFrame(
        {"occurred_at": [T0], "responded_at": [h(-2)], "closed_at": [h(5)], "category": ["x"]}
    )
    oc = case_outcomes(df)
    assert np.isnan(oc["hours_to_respond"][0]) and oc["invalid_times"][0]


def test_overrides():
    oc = case_outcomes(
        cases(),
        as_of=h(24 * 30),
        category_deadlines={"停水": [4, 24]},
        deadlines={"complex": {"respond_hours": 48}},
    )
    assert oc["on_time"].tolist()[1] == 1.0 and oc["on_time"].tolist()[3] == 1.0


def test_case_timeliness_table():
    tl = case_timeliness(cases(), as_of=h(24 * 30))
    assert list(tl.columns[:7]) == [
        "scope",
        "scope_id",
        "cases",
        "median_hours_to_respond",
        "median_hours_to_close",
        "on_time_rate",
        "repeat_rate",
    ]
    assert set(tl["scope"]) == {"grid", "staff", "street"}
    s1 = tl[(tl.scope == "street") & (tl.scope_id == "S1")].iloc[0]
    assert s1.cases == 3 and s1.on_time_rate == pytest.approx(2 / 3)
    assert s1.median_hours_to_respond == 1.0 and s1.median_hours_to_close == 20.0
    assert s1.repeat_rate == pytest.approx(1 / 3)
    # the case without staff is not in any staff row; empty strings are not ids
    staff = tl[tl.scope == "staff"]
    assert staff["cases"].sum() == 5 and set(staff["scope_id"]) == {"w1", "w2"}


def test_no_time_columns_gives_no_on_time_rate():
    df = pd.DataFrame({"occurred_at": [T0, T0], "category": ["a", "b"], "street_code": ["S", "S"]})
    tl = case_timeliness(df)
    assert tl["cases"].tolist() == [2] and np.isnan(tl["on_time_rate"][0])

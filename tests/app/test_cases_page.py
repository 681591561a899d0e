"""The 红黑榜 page (app_pages/cases.py) on the small demo city, and its plain helpers.

The lists, the ranking and the drill-down are compared with ``case_rates`` / ``case_outcomes``
read straight from the database.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from app_pages import _cases as cs
from pipelines.db import connect, read_table
from tests.app import apptest_kit as kit

PAGE = "app_pages/cases.py"
TIMEOUT = 120


def stored(project: Path, sql: str, params=None) -> pd.DataFrame:
    con = connect(project / "gridgov.duckdb", read_only=True)
    try:
        return read_table(con, sql, params)
    finally:
        con.close()


# ---- plain helpers on a hand-made table ---------------------------------------------------


def _rates() -> pd.DataFrame:
    rows = []
    for period, boards in (("all", ["red", None, "black"]), ("2025-01", ["red", None, "black"]),
                           ("2025-02", [None, None, None])):
        for i, b in enumerate(boards):
            rows.append({"scope": "community", "scope_id": f"C{i}", "scope_name": f"社区{i}",
                         "period": period, "cases": 30 - i, "rank": i + 1 if b or period != "2025-02"
                         else None, "board": b, "small_n": period == "2025-02", "score": 0.9 - i / 10,
                         **{r: 0.5 for r in cs.RATES}})
    rows.append({"scope": "street", "scope_id": "S", "scope_name": "街道", "period": "all",
                 "cases": 90, "rank": 1, "board": None, "small_n": False, "score": 0.8,
                 **{r: 0.5 for r in cs.RATES}})
    return pd.DataFrame(rows)


def test_helpers_pick_the_newest_full_list():
    rates = _rates()
    # the street scope has no lists (one unit): the community scope is the default
    assert cs.default_scope(rates) == "community"
    assert cs.periods(rates, "community") == ["all", "2025-02", "2025-01"]
    # 2025-02 has no lists (every unit too small): the newest month with both is 2025-01
    assert cs.default_period(rates, "community") == "2025-01"
    assert cs.default_period(rates, "street") == "all"
    assert cs.board(rates, "community", "2025-01", "red")["scope_id"].tolist() == ["C0"]
    assert cs.board(rates, "community", "2025-01", "black")["scope_id"].tolist() == ["C2"]
    view = cs.table(cs.rows(rates, "community", "2025-02"), "en", 20)
    assert view["Note"].tolist() == ["fewer than 20 cases, not ranked"] * 3


# ---- the page on the small demo -----------------------------------------------------------


@pytest.fixture(scope="module")
def demo(small_demo) -> Path:
    return small_demo


def open_page(project: Path, monkeypatch, lang: str = "zh"):
    return kit.open_page(project, monkeypatch, PAGE, lang=lang, timeout=TIMEOUT)


def test_red_and_black_lists_match_the_table(demo, monkeypatch):
    at = open_page(demo, monkeypatch)
    assert at.title[0].value == "接诉即办红黑榜"
    scope = at.selectbox(key="cases_scope").value
    period = at.selectbox(key="cases_period").value
    rates = stored(demo, "SELECT * FROM case_rates")
    assert scope == cs.default_scope(rates)
    assert period == cs.default_period(rates, scope) and period != "all"  # a month's list

    part = rates[(rates["scope"] == scope) & (rates["period"] == period)]
    red = part[part["board"] == "red"].sort_values("rank")
    black = part[part["board"] == "black"].sort_values("rank", ascending=False)
    assert len(red) > 0 and len(black) > 0
    shown_red, shown_black, ranking = (at.dataframe[i].value for i in range(3))
    assert shown_red["编码"].tolist() == red["scope_id"].tolist()
    assert shown_red["名次"].tolist() == red["rank"].astype(int).tolist()
    assert shown_black["编码"].tolist() == black["scope_id"].tolist()
    assert set(shown_red["编码"]).isdisjoint(shown_black["编码"])
    assert shown_red["综合得分"].tolist() == pytest.approx(red["score"].tolist())
    assert shown_black["综合得分"].tolist() == pytest.approx(black["score"].tolist())
    # the full ranking holds every unit of the scope and month
    assert len(ranking) == len(part)


def test_small_units_are_noted_not_ranked(demo, monkeypatch):
    at = open_page(demo, monkeypatch)
    at.selectbox(key="cases_scope").set_value("grid").run()
    assert not at.exception
    period = at.selectbox(key="cases_period").value
    rates = stored(demo, "SELECT * FROM case_rates WHERE scope = 'grid' AND period = ?", [period])
    # the full ranking is the first table with a note column (the lists have none)
    ranking = next(d.value for d in at.dataframe if "备注" in d.value.columns)
    assert len(ranking) == len(rates)
    small = ranking["备注"] != ""
    assert small.sum() == int(rates["small_n"].sum()) > 0
    assert (ranking.loc[small, "备注"] == "案件少于 20 件，不排名").all()
    assert ranking.loc[small, "名次"].isna().all()
    assert ranking.loc[~small, "名次"].notna().all()


def test_drill_down_to_the_cases_of_a_grid(demo, monkeypatch):
    at = open_page(demo, monkeypatch)
    period = at.selectbox(key="cases_period").value
    street = at.selectbox(key="cases_drill_street").value  # one street: chosen already
    assert street != ""
    outcomes = stored(demo, "SELECT * FROM case_outcomes WHERE street_code = ? AND period = ?",
                      [street, period])
    grid = outcomes["grid_id"].value_counts().index[0]
    community = outcomes.loc[outcomes["grid_id"] == grid, "community_code"].iloc[0]
    at.selectbox(key="cases_drill_community").set_value(community).run()
    assert not at.exception
    at.selectbox(key="cases_drill_grid").set_value(grid).run()
    assert not at.exception
    cases = at.dataframe[-1].value
    want = outcomes[outcomes["grid_id"] == grid]
    assert sorted(cases["案件编号"]) == sorted(want["incident_id"])
    resolved = (pd.to_numeric(want["resolved"]) == 1).sum()
    assert (cases["已解决"] == "是").sum() == resolved
    assert at.get("download_button")[0].label == "下载简报 PDF"


def test_english(demo, monkeypatch):
    at = open_page(demo, monkeypatch, lang="en")
    assert at.title[0].value == "Case handling: the red–black list"
    assert "Score" in at.dataframe[0].value.columns
    assert "Satisfaction" in at.dataframe[2].value.columns  # the full ranking


def test_without_case_rates(project, monkeypatch):
    """A project whose cases stage has not run: a message and the command, no traceback."""
    at = open_page(project.dir, monkeypatch)
    assert "case_rates" in at.info[0].value
    assert any(c.value == f"gridgov run {project.dir}" for c in at.code)


def test_trend_unit_kept_when_the_month_changes(demo, monkeypatch):
    at = open_page(demo, monkeypatch)
    scope = at.selectbox(key="cases_scope").value
    ranking = next(d.value for d in at.dataframe if "备注" in d.value.columns)
    unit = ranking["编码"].iloc[-1]  # the last of this month's ranking, not the default
    at.selectbox(key=f"cases_unit_{scope}").set_value(unit).run()
    assert at.selectbox(key=f"cases_unit_{scope}").value == unit
    months = at.selectbox(key="cases_period").options
    at.selectbox(key="cases_period").set_value(months[-1]).run()  # the oldest month
    assert not at.exception
    assert at.selectbox(key="cases_period").value == months[-1]
    assert at.selectbox(key=f"cases_unit_{scope}").value == unit
    assert len(at.get("vega_lite_chart")) == 1  # the trend is drawn


def test_a_city_without_incidents_is_told_why_there_are_no_rates(project, monkeypatch, tmp_path):
    import shutil

    from app_pages.i18n import t

    own = tmp_path / "own"
    shutil.copytree(project.dir, own)
    con = connect(own / "gridgov.duckdb")
    con.execute("DROP TABLE incidents")
    con.close()
    at = open_page(own, monkeypatch)
    assert not at.exception
    assert [i.value for i in at.info] == [t("cases.no_incidents", "zh")]

"""AppTest checks of the leaders' page (人员配置) on projects whose staffing stage has run.

* ``staffing_project``: the small demo city (one street, ``[allocation] budget = 47``);
* ``two_streets``: the shared tiny input folder (two streets, 甲 old town and 乙 residential),
  so that a what-if can move people from one street to the other.
"""
from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from pipelines.db import connect, read_table
from tests.app import apptest_kit as kit
from tests.app.apptest_kit import metrics

TIMEOUT = 90
PAGE = "app_pages/leaders.py"


@pytest.fixture(scope="session")
def staffing_project(tmp_path_factory) -> Path:
    """The small demo city with only the staffing stage run (other stages may be unfinished)."""
    from gridgov.demo_city import build_demo
    from pipelines.run import run_project

    root = tmp_path_factory.mktemp("leaders") / "demo-small"
    build_demo(root, size="small")
    run_project(root, stages=["staffing"])
    return root


@pytest.fixture(scope="module")
def two_streets(tmp_path_factory) -> Path:
    from pipelines.run import run_project
    from tests.conftest import make_project

    root = make_project(tmp_path_factory.mktemp("leaders2") / "tiny")
    run_project(root, stages=["staffing"])
    return root


def stored(project: Path, table: str = "street_allocation"):
    con = connect(project / "gridgov.duckdb", read_only=True)
    try:
        return read_table(con, table)
    finally:
        con.close()


def open_page(project: Path, monkeypatch, lang: str = "zh") -> AppTest:
    return kit.open_page(project, monkeypatch, PAGE, lang=lang, timeout=TIMEOUT)


def frame_with(at: AppTest, *columns: str):
    """The first dataframe shown whose headers include ``columns``."""
    for df in at.dataframe:
        if set(columns) <= set(df.value.columns):
            return df.value
    raise AssertionError(f"no table with columns {columns}: "
                         f"{[list(d.value.columns) for d in at.dataframe]}")


def as_int(text: str) -> int:
    """A card's whole number: "1,234 人" / "1,234 people" / "3 / 5" -> 1234 / 3."""
    text = text.replace(",", "").split("/")[0]
    return int(text.replace("人", "").replace("people", "").strip())


def test_street_table_and_budget(staffing_project, monkeypatch):
    at = open_page(staffing_project, monkeypatch)
    assert at.title[0].value == "网格员配置与编制分配"
    table = stored(staffing_project)
    budget = int(table["recommended_staff"].sum())
    assert budget == 47  # the demo's [allocation] budget

    streets = frame_with(at, "街道", "功能定位", "建议人数（人）", "缺口（人）")
    assert len(streets) == len(table)
    assert int(streets["建议人数（人）"].sum()) == budget
    assert (streets["缺口（人）"] == streets["建议人数（人）"] - streets["现有人数（人）"]).all()
    for col in ("面积（平方公里）", "常住人口", "工作量（小时/月）", "现有人数（人）"):
        assert col in streets.columns
    # whole people for the workload (the stage's headcount), never the FTE float
    assert "工作量所需（全职当量）" not in streets.columns
    assert list(streets["工作量所需（人）"]) == list(
        table.sort_values("gap_rank")["required_headcount"])
    assert list(streets["缺口说明"]) == list(table.sort_values("gap_rank")["gap_note_zh"])
    assert set(streets["功能定位"]) <= {"核心商圈", "老城区", "居住区", "新开发区", "工业区",
                                        "城乡结合部"}
    got = metrics(at)
    assert got["编制预算"] == f"{budget:,} 人" and got["现有网格员"].endswith(" 人")
    expl = stored(staffing_project, "staffing_explanation")
    assert as_int(got["工作量所需"]) == int(expl["required_people"].iloc[0])
    # the sentence under the gap figures: why streets are short (one street: the community row)
    level = "community" if len(table) < 2 else "street"
    sentence = expl.loc[expl["level"] == level, "explanation_zh"].iloc[0]
    assert any(i.value.replace("\\", "") == sentence for i in at.info), [i.value for i in at.info]
    assert as_int(got["编制预算"]) == budget
    assert as_int(got["现有网格员"]) == int(table["current_staff"].sum())
    # the what-if starts where the run ended: nothing moved yet
    assert as_int(got["推演总人数"]) == budget
    assert as_int(got["调动人数"]) == 0


def test_whatif_budget_gives_the_new_total(staffing_project, monkeypatch):
    at = open_page(staffing_project, monkeypatch)
    at.number_input(key="wi_budget").set_value(60).run()
    assert not at.exception
    assert as_int(metrics(at)["推演总人数"]) == 60
    whole = frame_with(at, "推演建议（人）", "原建议（人）")
    assert int(whole["推演建议（人）"].sum()) == 60
    assert int(whole["原建议（人）"].sum()) == 47
    moved = frame_with(at, "变化（人）")
    assert int(moved["变化（人）"].sum()) == 13
    # the stored table is untouched
    assert int(stored(staffing_project)["recommended_staff"].sum()) == 47


def test_whatif_budget_below_minimum_is_explained(staffing_project, monkeypatch):
    at = open_page(staffing_project, monkeypatch)
    at.number_input(key="wi_budget").set_value(5).run()  # 1 street × minimum 10 > 5
    assert not at.exception
    assert any("少于最低配置" in e.value for e in at.error)
    at.number_input(key="wi_minimum").set_value(5).run()
    assert not at.error
    assert as_int(metrics(at)["推演总人数"]) == 5


def test_english_toggle_switches_labels(staffing_project, monkeypatch):
    at = open_page(staffing_project, monkeypatch, lang="en")
    assert at.title[0].value == "Grid staff and headcount allocation"
    streets = frame_with(at, "Street", "Function type", "Recommended (people)", "Gap (people)")
    expl = stored(staffing_project, "staffing_explanation")
    assert any(i.value.replace("\\", "") in set(expl["explanation_en"]) for i in at.info)
    assert len(streets) == len(stored(staffing_project))
    got = metrics(at)
    assert as_int(got["Budget"]) == 47
    assert as_int(got["What-if total"]) == 47
    assert "Old town" in set(streets["Function type"])
    perf = frame_with(at, "Worker", "Cases", "On-time rate", "Few cases")
    assert len(perf) == len(stored(staffing_project, "worker_performance"))
    # a what-if value survives the switch back to Chinese
    at.number_input(key="wi_budget").set_value(50).run()
    assert as_int(metrics(at)["What-if total"]) == 50
    at.sidebar.radio(key="lang").set_value("zh").run()
    assert not at.exception
    assert at.title[0].value == "网格员配置与编制分配"
    assert as_int(metrics(at)["推演总人数"]) == 50


def test_whatif_function_type_moves_people(two_streets, monkeypatch):
    at = open_page(two_streets, monkeypatch)
    table = stored(two_streets)
    assert len(frame_with(at, "街道", "建议人数（人）")) == 2 == len(table)
    budget = int(table["recommended_staff"].sum())
    # 甲 (old town) becomes industrial: a lower multiplier sends people to 乙
    at.number_input(key="wi_budget").set_value(budget + 21).run()
    at.selectbox(key="wi_street").set_value("150102001000").run()
    at.selectbox(key="wi_ftype").set_value("industrial").run()
    assert not at.exception
    got = metrics(at)
    assert as_int(got["推演总人数"]) == budget + 21
    moved = frame_with(at, "变化（人）", "街道")
    assert set(moved["街道"]) <= {"甲街道", "乙街道"}
    assert int(moved["变化（人）"].sum()) == 21
    changes = dict(zip(moved["街道"], moved["变化（人）"]))
    # with the function multiplier cut, 甲 gains fewer of the 21 new people than 乙
    assert changes.get("乙街道", 0) > changes.get("甲街道", 0)
    # reset returns to the run's settings
    at.button(key="wi_reset").click().run()
    assert as_int(metrics(at)["推演总人数"]) == budget
    assert at.selectbox(key="wi_ftype").value == ""


def test_weights_and_method_recompute(two_streets, monkeypatch):
    at = open_page(two_streets, monkeypatch)
    budget = int(stored(two_streets)["recommended_staff"].sum())
    at.slider(key="wi_w_area").set_value(1.0).run()
    at.selectbox(key="wi_method").set_value("huntington_hill").run()
    assert not at.exception
    assert as_int(metrics(at)["推演总人数"]) == budget
    assert any("计算用时" in c.value for c in at.caption)


def test_map_levels(staffing_project, two_streets, monkeypatch):
    at = open_page(staffing_project, monkeypatch)
    level = at.radio(key="leaders_level")
    assert level.options == ["街道缺口 Street gap", "社区缺口 Community gap"]
    assert level.value == "communities"  # one street alone: its communities first
    level.set_value("streets").run()
    assert not at.exception
    assert at.radio(key="leaders_level").value == "streets"
    at = open_page(two_streets, monkeypatch)
    assert at.radio(key="leaders_level").value == "streets"


def test_page_without_staffing_tables_says_what_to_run(tmp_path, monkeypatch):
    from pipelines.run import run_project
    from tests.conftest import make_project

    root = make_project(tmp_path / "ingest-only")
    run_project(root, stages=[])
    at = open_page(root, monkeypatch)
    assert any("staffing" in i.value or "人员配置" in i.value for i in at.info)
    assert any("gridgov run" in c.value for c in at.code)



def test_equity_figures(staffing_project, two_streets, monkeypatch):
    # one street: equity compares its communities (Art. 42), as stored by the stage
    eq = stored(staffing_project, "allocation_equity").set_index(["level", "metric"])
    at = open_page(staffing_project, monkeypatch)
    assert any("只有一个街道" in i.value for i in at.info)
    want = eq.loc[("community", "gini_staff_per_workload"), "recommended"]
    assert metrics(at)["基尼系数·人员/工作量"] == f"{want:,.3f}"
    # two streets: the street level
    eq = stored(two_streets, "allocation_equity").set_index(["level", "metric"])
    at = open_page(two_streets, monkeypatch)
    assert not any("只有一个街道" in i.value for i in at.info)
    want = eq.loc[("street", "gini_staff_per_resident"), "recommended"]
    assert metrics(at)["基尼系数·人员/人口"] == f"{want:,.3f}"


def test_workers_listed_with_their_main_grid(staffing_project, monkeypatch):
    at = open_page(staffing_project, monkeypatch)
    perf = stored(staffing_project, "worker_performance").sort_values("staff_id")
    shown = frame_with(at, "网格员编号", "主要负责网格")
    assert list(shown["网格员编号"]) == list(perf["staff_id"])
    assert list(shown["主要负责网格"].fillna("")) == list(perf["main_grid_id"].fillna(""))


def test_function_type_default_is_stated_and_na_is_safe():
    """A function type the stage filled with the default reads "（默认：居住区）"; a missing one
    (NULL / pd.NA, an old run) reads "—" instead of failing on truthiness."""
    import pandas as pd

    from app_pages._staffing import ftype_label, ftype_labels, headcount

    assert ftype_label("residential", True, "zh") == "（默认：居住区）"
    assert ftype_label("residential", True, "en") == "(default: Residential)"
    assert ftype_label("old_town", False, "zh") == "老城区"
    assert ftype_label(pd.NA, pd.NA, "zh") == ftype_label(None, None, "zh") == "—"
    frame = pd.DataFrame({"function_type": pd.array([pd.NA, "residential"], dtype="string"),
                          "function_type_assumed": pd.array([pd.NA, True], dtype="boolean")})
    assert ftype_labels(frame, "zh") == ["—", "（默认：居住区）"]
    assert ftype_labels(pd.DataFrame({"x": [1]}), "zh") == ["—"]
    # whole people: the stage's headcount, or the FTE rounded up for an older run
    assert list(headcount(pd.DataFrame({"required_headcount": [3, 7]}))) == [3, 7]
    assert list(headcount(pd.DataFrame({"required_staff": [2.01, 3.0, None]})).fillna(-1)) \
        == [3, 3, -1]


def test_next_months_forecast_workload_is_on_the_page(small_demo, monkeypatch):
    """With every stage run, the staffing page carries the forecast-as-hours section (#11.5)."""
    from app_pages.i18n import t

    con = connect(small_demo / "gridgov.duckdb", read_only=True)
    try:
        has = con.execute("SELECT count(*) FROM information_schema.tables "
                          "WHERE table_name = 'forecast_workload'").fetchone()[0]
        n = con.execute("SELECT count(*) FROM forecast_workload").fetchone()[0] if has else 0
    finally:
        con.close()
    if not n:
        pytest.skip("this run wrote no forecast_workload")
    at = open_page(small_demo, monkeypatch)
    assert t("fw.title", "zh") in [h.value for h in at.subheader]
    frame_with(at, t("fw.col.delta_hours", "zh"), t("fw.col.grid_id", "zh"))

"""The plan history page (app_pages/history.py) and pipelines/services/history.py on a copy of the small
demo city with a second plan saved by the planner (one community re-drawn to another norm).

Counts are compared with ``plan_members`` read straight from the database.
"""
from __future__ import annotations

import io
import shutil
from pathlib import Path

import pandas as pd
import pytest

from pipelines.db import connect, read_table
from pipelines.services import history
from tests.app import apptest_kit as kit

PAGE = "app_pages/history.py"
TIMEOUT = 120


def make_history_project(small_demo: Path, dest: Path) -> Path:
    """A copy of the small demo with plan P0002: one community re-drawn and saved."""
    from pipelines.services import planner as pl

    root = dest / "demo-history"
    shutil.copytree(small_demo, root)
    db = root / "gridgov.duckdb"
    con = connect(db, read_only=True)
    try:
        code = pl.list_communities(con)["community_code"].iloc[1]
        ws = pl.load_workspace(con, code)
    finally:
        con.close()
    edit = pl.new_edit(ws)
    pl.edit_redraw(ws, edit, households_min=250, households_max=400)
    saved = pl.save_plan(db, ws, pl.working_labels(ws, edit), author="测试", note="re-draw")
    assert saved.parent_plan_id == "P0001" and saved.plan_id == "P0002"
    return root


@pytest.fixture(scope="module")
def hist(small_demo, tmp_path_factory) -> Path:
    return make_history_project(small_demo, tmp_path_factory.mktemp("history"))


def stored(project: Path, sql: str, params=None) -> pd.DataFrame:
    con = connect(project / "gridgov.duckdb", read_only=True)
    try:
        return read_table(con, sql, params)
    finally:
        con.close()


def moved_by_hand(project: Path, a: str, b: str) -> pd.DataFrame:
    m = stored(project, "SELECT m.building_id, m.plan_id, m.grid_id, b.households FROM "
                        "plan_members m JOIN buildings b USING (building_id) "
                        "WHERE m.plan_id IN (?, ?)", [a, b])
    wide = m.pivot(index="building_id", columns="plan_id", values="grid_id")
    hh = m.drop_duplicates("building_id").set_index("building_id")["households"]
    moved = wide[wide[a] != wide[b]]
    return pd.DataFrame({"households": hh.reindex(moved.index)})


def test_compare_and_workbook(hist):
    want = moved_by_hand(hist, "P0001", "P0002")
    assert len(want) > 0
    con = connect(hist / "gridgov.duckdb", read_only=True)
    try:
        c = history.compare(con, "P0001", "P0002")
        xlsx = history.realignment_workbook(con, "P0002")  # against its parent P0001
    finally:
        con.close()
    assert c.buildings_moved == len(want) == len(c.moves)
    assert c.households_moved == int(want["households"].sum())
    assert set(c.moves["building_id"]) == set(want.index)
    # every grid that lost or gained households is listed, and nothing else
    touched = set(c.moves["from_grid"]) | set(c.moves["to_grid"])
    assert set(c.grids["grid_id"]) == touched
    figs = c.figures.set_index("metric")
    n = stored(hist, "SELECT plan_id, n_grids FROM grid_metrics").set_index("plan_id")["n_grids"]
    assert figs.loc["n_grids", "a"] == n["P0001"] and figs.loc["n_grids", "b"] == n["P0002"]

    from openpyxl import load_workbook

    book = load_workbook(io.BytesIO(xlsx))
    assert book.sheetnames == ["概要 Summary", "楼栋调整 Buildings moved", "网格对比 Grids",
                               "指标 Metrics"]
    assert book["楼栋调整 Buildings moved"].max_row - 1 == len(want)
    summary = {r[0].value: r[1].value for r in book["概要 Summary"].iter_rows(min_row=2)}
    assert summary["对比方案 Compared with"] == "P0001"
    assert summary["调整户数 Households moved"] == int(want["households"].sum())


def test_page_lists_and_compares(hist, monkeypatch):
    at = kit.open_page(hist, monkeypatch, PAGE, timeout=TIMEOUT)
    assert at.title[0].value == "网格方案历史"
    plans = stored(hist, "SELECT * FROM plans")
    table = at.dataframe[0].value
    assert sorted(table["方案"]) == sorted(plans["plan_id"])
    current = plans.loc[plans["is_current"], "plan_id"].iloc[0]
    assert table.loc[table["当前"], "方案"].tolist() == [current]
    # by default the current plan against its parent
    a, b = at.selectbox(key="history_a").value, at.selectbox(key="history_b").value
    assert b == current
    assert a == plans.set_index("plan_id").loc[current, "parent_plan_id"]
    want = moved_by_hand(hist, a, b)
    cards = kit.metrics(at)
    assert cards["调整楼栋"] == f"{len(want):,}"
    assert cards["调整户数"] == f"{int(want['households'].sum()):,}"
    assert at.get("download_button")[0].label == "下载调整报告"


def test_restore_from_the_page(hist, monkeypatch):
    before = stored(hist, "SELECT * FROM plans")
    at = kit.open_page(hist, monkeypatch, PAGE, timeout=TIMEOUT)
    at.selectbox(key="history_restore_plan").set_value("P0001")
    at.text_input(key="history_author").input("王工")
    at.text_input(key="history_note").input("回退到自动方案")
    next(b for b in at.button if b.label == "恢复为当前方案").click().run()
    assert not at.exception, at.exception

    after = stored(hist, "SELECT * FROM plans")
    assert len(after) == len(before) + 1
    new = after[~after["plan_id"].isin(before["plan_id"])].iloc[0]
    assert new["parent_plan_id"] == "P0001" and new["source"] == "restore"
    assert new["author"] == "王工" and new["note"] == "回退到自动方案"
    assert bool(new["is_current"]) and after["is_current"].sum() == 1
    assert any(new["plan_id"] in s.value for s in at.success)
    # the copy has the restored plan's buildings and grids exactly
    assert moved_by_hand(hist, "P0001", new["plan_id"]).empty
    grids = stored(hist, "SELECT grid_id FROM grids ORDER BY grid_id")["grid_id"].tolist()
    old = stored(hist, "SELECT grid_id FROM plan_grids WHERE plan_id = 'P0001' ORDER BY grid_id")
    assert grids == old["grid_id"].tolist()
    # after the rerun: the new plan compared with the restored one (no moves), in the table
    assert at.selectbox(key="history_a").value == "P0001"
    assert at.selectbox(key="history_b").value == new["plan_id"]
    assert kit.metrics(at)["调整户数"] == "0"
    assert new["plan_id"] in at.dataframe[0].value["方案"].tolist()


def test_restore_refused(hist):
    from pipelines.lock import project_lock

    with pytest.raises(history.HistoryError, match="name"):
        history.restore(hist / "gridgov.duckdb", "P0001", author="  ")
    with pytest.raises(history.HistoryError, match="P9999"):
        history.restore(hist / "gridgov.duckdb", "P9999", author="王工")
    n = len(stored(hist, "SELECT plan_id FROM plans"))
    history.RESTORE_LOCK_WAIT, wait = 0.0, history.RESTORE_LOCK_WAIT
    try:
        with project_lock(hist, purpose="run"):
            with pytest.raises(history.HistoryError):
                history.restore(hist / "gridgov.duckdb", "P0001", author="王工")
    finally:
        history.RESTORE_LOCK_WAIT = wait
    assert len(stored(hist, "SELECT plan_id FROM plans")) == n


def test_english(hist, monkeypatch):
    at = kit.open_page(hist, monkeypatch, PAGE, lang="en", timeout=TIMEOUT)
    assert at.title[0].value == "Grid plan history"
    assert "Households moved" in kit.metrics(at)


def test_without_plans(project, monkeypatch):
    """A project without grid plans: a message and the command, no traceback."""
    at = kit.open_page(project.dir, monkeypatch, PAGE, timeout=TIMEOUT)
    assert "plans" in at.info[0].value

"""AppTest checks of the planner page (网格规划) on the small demo city after the grids stage.

The page runs, a re-draw fills the proposal's figures, a unit can be reassigned (and a move
that splits a grid is refused with its reason), and "save as new plan" writes a new row in
``plans`` whose parent is the old current plan.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from pipelines.db import connect, read_table
from pipelines.services import planner as pl
from tests.app import apptest_kit as kit
from tests.app.apptest_kit import metrics

TIMEOUT = 90
PAGE = "app_pages/planner.py"
CODE = "150102001001"  # the first community of the small demo (selected by default)


@pytest.fixture(scope="module")
def grids_demo(tmp_path_factory) -> Path:
    """The small demo city with the grids stage run (copied by tests that save)."""
    from gridgov.demo_city import build_demo
    from pipelines.run import run_project

    root = tmp_path_factory.mktemp("planner-app") / "demo-small"
    build_demo(root, size="small")
    run_project(root, stages=["grids"])
    return root


@pytest.fixture
def writable(grids_demo, tmp_path) -> Path:
    dst = tmp_path / "demo"
    shutil.copytree(grids_demo, dst)
    return dst


def open_page(project: Path, monkeypatch, lang: str = "zh") -> AppTest:
    return kit.open_page(project, monkeypatch, PAGE, lang=lang, timeout=TIMEOUT)


def compare_table(at: AppTest, metric_header: str = "指标"):
    """The current-vs-proposed table (dataframes carry no key in AppTest)."""
    for df in at.dataframe:
        if metric_header in df.value.columns:
            return df.value
    raise AssertionError([list(d.value.columns) for d in at.dataframe])


def plans(project: Path):
    con = connect(project / "gridgov.duckdb", read_only=True)
    try:
        return read_table(con, "SELECT * FROM plans ORDER BY plan_id")
    finally:
        con.close()


def stored_plan(project: Path, code: str = CODE) -> dict:
    """The current plan id, and the community's households and basic grids in it."""
    from pipelines import results

    with results.open_project(project) as con:
        grids = results.plan_grids(con)
        current = pl.current_plan_id(con)
        households = con.execute("SELECT sum(households) FROM grid_cells "
                                 "WHERE community_code = ?", [code]).fetchone()[0]
    basic = (grids["community_code"] == code) & (grids["grid_type"] == "basic")
    return {"plan_id": current, "households": int(households), "basic": int(basic.sum())}


def test_page_shows_the_current_plan(grids_demo, monkeypatch):
    at = open_page(grids_demo, monkeypatch)
    assert at.title[0].value == "网格规划"
    m = metrics(at)
    want = stored_plan(grids_demo)
    assert m["当前方案"] == want["plan_id"] and m["户数"] == f"{want['households']:,}"
    assert m["现行基础网格"] == str(want["basic"]) and want["basic"] > 1
    assert m["方案户数达标率"] == "—"  # no proposal yet
    assert at.selectbox(key="planner_street").value == "150102001000"
    table = compare_table(at)
    assert list(table.columns) == ["指标", "现行", "方案"]
    assert (table["方案"] == "—").all()
    checks = [md.value for md in at.markdown if "✓" in md.value or "✗" in md.value]
    assert len(checks) == 4 and all("✓" in c for c in checks)
    assert at.button(key="planner_save").disabled


def test_redraw_fills_the_proposal(grids_demo, monkeypatch):
    at = open_page(grids_demo, monkeypatch)
    at.number_input(key=f"planner_max_{CODE}").set_value(400).run()
    # the tighter norm flags grids of the current plan
    checks = [md.value for md in at.markdown if "户数达标" in md.value]
    assert checks and "✗" in checks[0]
    at.button(key="planner_redraw").click().run()
    assert not at.exception, at.exception
    assert any("已生成方案" in s.value for s in at.success)
    m = metrics(at)
    assert m["方案户数达标率"] == "100%"
    assert int(m["调整户数"].replace(",", "")) > 0
    assert float(m["划分用时"].split()[0]) < 5
    table = compare_table(at).set_index("指标")
    assert table.loc["户数达标网格占比", "方案"] == "100%"
    assert int(table.loc["最多户数", "方案"].replace(",", "")) <= 400
    assert not at.button(key="planner_save").disabled
    # undo brings back the current plan
    at.button(key="planner_undo").click().run()
    assert metrics(at)["方案户数达标率"] == "—"


def test_each_community_keeps_its_own_edit(grids_demo, monkeypatch):
    at = open_page(grids_demo, monkeypatch)
    at.number_input(key=f"planner_max_{CODE}").set_value(420).run()
    at.button(key="planner_redraw").click().run()
    assert metrics(at)["方案户数达标率"] == "100%"
    community = at.selectbox(key="planner_community_150102001000")
    community.set_value("150102001002").run()
    assert not at.exception, at.exception
    assert metrics(at)["户数"] == "3,965" and metrics(at)["方案户数达标率"] == "—"
    assert at.number_input(key="planner_max_150102001002").value == 500  # the project's norm
    at.selectbox(key="planner_community_150102001000").set_value(CODE).run()
    assert metrics(at)["户数"] == "2,058" and metrics(at)["方案户数达标率"] == "100%"
    assert at.number_input(key=f"planner_max_{CODE}").value == 420


def test_without_grids_the_page_says_what_to_run(project, monkeypatch):
    at = open_page(project.dir, monkeypatch)  # the tiny app fixture: no grids stage
    assert any("gridgov run" in c.value for c in at.code)
    assert any("还没有网格方案" in i.value for i in at.info)


def test_reassign_a_unit_and_refuse_a_split(grids_demo, monkeypatch):
    ws = pl.open_workspace(grids_demo / "gridgov.duckdb", CODE)
    legal = splitting = None
    for cell in ws.cells["cell_id"]:
        if ws.current[cell] in ws.dedicated:
            continue
        for grid, across in pl.neighbour_grids(ws, ws.current, cell):
            if across or grid in ws.dedicated:
                continue
            ok = pl.move_cell(ws, ws.current, cell, grid).ok
            legal = legal or ((cell, grid) if ok else None)
            splitting = splitting or ((cell, grid) if not ok else None)
    assert legal and splitting

    at = open_page(grids_demo, monkeypatch)
    cell, grid = splitting
    at.selectbox(key=f"planner_cell_{CODE}").set_value(cell).run()
    at.selectbox(key=f"planner_to_{CODE}_{cell}").set_value(grid).run()
    at.button(key="planner_move").click().run()
    assert any("无法调整" in e.value and "分成" in e.value for e in at.error), \
        [e.value for e in at.error]
    assert metrics(at)["方案户数达标率"] == "—"  # still no proposal

    cell, grid = legal
    at.selectbox(key=f"planner_cell_{CODE}").set_value(cell).run()
    at.selectbox(key=f"planner_to_{CODE}_{cell}").set_value(grid).run()
    at.button(key="planner_move").click().run()
    assert not at.exception, at.exception
    assert any(grid in s.value for s in at.success)
    assert metrics(at)["调整楼栋"] != "—"
    checks = [md.value for md in at.markdown if "连通" in md.value]
    assert checks and "✓" in checks[0]


def test_english_page(grids_demo, monkeypatch):
    at = open_page(grids_demo, monkeypatch, lang="en")
    assert at.title[0].value == "Grid planner"
    assert "Current plan" in metrics(at)
    at.button(key="planner_redraw").click().run()
    assert not at.exception, at.exception
    assert any("Proposal drawn" in s.value for s in at.success)


def test_save_writes_a_new_plan(writable, monkeypatch):
    from pipelines.plans import new_plan_id

    before = plans(writable)["plan_id"].tolist()
    with connect(writable / "gridgov.duckdb", read_only=True) as con:
        parent, new_id = pl.current_plan_id(con), new_plan_id(con)
    at = open_page(writable, monkeypatch)
    at.number_input(key=f"planner_max_{CODE}").set_value(420).run()
    at.button(key="planner_redraw").click().run()
    at.text_input(key="planner_author").input("王工")
    at.text_input(key="planner_note").input("300–420 户")
    at.button(key="planner_save").click().run()
    assert not at.exception, at.exception
    assert any(f"已保存新方案 {new_id}" in s.value for s in at.success), \
        [s.value for s in at.success]
    rows = plans(writable)
    assert rows["plan_id"].tolist() == before + [new_id]
    new = rows.set_index("plan_id").loc[new_id]
    assert new["parent_plan_id"] == parent and bool(new["is_current"])
    assert new["author"] == "王工" and new["note"] == "300–420 户" and new["source"] == "planner"
    # the page now shows the saved plan as the current one, with no proposal
    assert metrics(at)["当前方案"] == new_id
    assert metrics(at)["方案户数达标率"] == "—"


# ---- #10.5: editing at the pace of a person ------------------------------------------------
def _two_cell_move(ws) -> tuple[list, str]:
    """Two cells of one basic grid that may move together to a neighbouring basic grid."""
    lab = ws.current
    for c in ws.cells["cell_id"]:
        if lab[c] in ws.dedicated:
            continue
        for grid, across in pl.neighbour_grids(ws, lab, c):
            if across or grid in ws.dedicated:
                continue
            for d in ws.cells["cell_id"]:
                if d != c and lab[d] == lab[c] and pl.move_cells(ws, lab, [c, d], grid).ok:
                    return [c, d], grid
    raise AssertionError("no two-cell move in the demo community")


def test_move_cells_is_all_or_nothing(grids_demo):
    ws = pl.open_workspace(grids_demo / "gridgov.duckdb", CODE)
    cells, grid = _two_cell_move(ws)
    res = pl.move_cells(ws, ws.current, cells, grid)
    assert res.ok and all(res.labels[c] == grid for c in cells)
    others = [c for c in ws.cells["cell_id"] if c not in cells]
    assert (res.labels[others] == ws.current[others]).all()
    # every cell of a grid: the grid would be emptied, so nothing moves
    src = ws.current[cells[0]]
    whole = list(ws.current.index[ws.current == src])
    bad = pl.move_cells(ws, ws.current, whole, grid)
    assert not bad.ok and bad.labels is None and "cell" in bad.reason_en


def test_multi_select_move_and_undo(grids_demo, monkeypatch):
    ws = pl.open_workspace(grids_demo / "gridgov.duckdb", CODE)
    cells, grid = _two_cell_move(ws)
    before = {c: ws.current[c] for c in cells}
    at = open_page(grids_demo, monkeypatch)
    at.toggle(key=f"planner_multi_{CODE}").set_value(True).run()
    at.multiselect(key=f"planner_sel_{CODE}").set_value(cells).run()
    at.selectbox(key=f"planner_selto_{CODE}").set_value(grid).run()
    at.button(key="planner_move_many").click().run()
    assert not at.exception, at.exception
    assert any("2 个单元" in s.value and grid in s.value for s in at.success), \
        [s.value for s in at.success]
    edit = at.session_state["planner_edits"][CODE]
    assert all(edit["labels"][c] == grid for c in cells)
    assert edit["undo"][-1]["op"] == "move_many"
    moved = [md.value for md in at.markdown if "连通" in md.value]
    assert moved and "✓" in moved[0]
    assert metrics(at)["调整楼栋"] != "—"
    # one undo brings every cell back
    at.button(key="planner_undo").click().run()
    edit = at.session_state["planner_edits"][CODE]
    assert edit["labels"] is None or all(edit["labels"][c] == before[c] for c in cells)
    assert metrics(at)["方案户数达标率"] == "—"
    # moving all of a grid's cells is refused with the reason, nothing changes
    src = before[cells[0]]
    whole = [c for c in ws.cells["cell_id"] if ws.current[c] == src]
    at.multiselect(key=f"planner_sel_{CODE}").set_value(whole).run()
    at.selectbox(key=f"planner_selto_{CODE}").set_value(grid).run()
    at.button(key="planner_move_many").click().run()
    assert any("无法调整" in e.value for e in at.error), [e.value for e in at.error]
    assert at.session_state["planner_edits"][CODE]["labels"] is None
    at.button(key="planner_clear_sel").click().run()
    assert at.multiselect(key=f"planner_sel_{CODE}").value == []


def test_lock_all_and_unlock_all(grids_demo, monkeypatch):
    ws = pl.open_workspace(grids_demo / "gridgov.duckdb", CODE)
    basic = sorted(set(ws.current.dropna()) - ws.dedicated)
    at = open_page(grids_demo, monkeypatch)
    assert at.button(key="planner_unlock_all").disabled
    at.button(key="planner_lock_all").click().run()
    assert at.session_state["planner_edits"][CODE]["locked"] == basic
    assert any(c.value.startswith("已锁定") and basic[-1] in c.value for c in at.caption)
    at.button(key="planner_unlock_all").click().run()
    assert at.session_state["planner_edits"][CODE]["locked"] == []
    at.button(key="planner_undo").click().run()  # one step back: all locked again
    assert at.session_state["planner_edits"][CODE]["locked"] == basic


def test_zoom_to_the_next_problem_grid(grids_demo, monkeypatch):
    at = open_page(grids_demo, monkeypatch)
    at.button(key="planner_next_problem").click().run()
    assert any("没有问题网格" in i.value for i in at.info)
    at.number_input(key=f"planner_max_{CODE}").set_value(400).run()  # grids now out of norm
    ws = pl.open_workspace(grids_demo / "gridgov.duckdb", CODE)
    norms = pl.norms_with(ws, 0, 400)
    want = [g for g, _ in pl.problem_grids(ws, None, pl.plan_grids(ws, None, norms))]
    assert want
    seen = []
    for _ in range(len(want) + 1):
        at.button(key="planner_next_problem").click().run()
        assert not at.exception, at.exception
        seen.append(at.session_state[f"planner_focus_{CODE}"])
        assert any("问题网格" in w.value and seen[-1] in w.value for w in at.warning)
    assert seen == want + want[:1]  # in code order, then round again


def test_search_switches_street_and_community(grids_demo, monkeypatch):
    at = open_page(grids_demo, monkeypatch)
    with connect(grids_demo / "gridgov.duckdb", read_only=True) as con:
        index = pl.list_communities(con)
    other = index[index["community_code"] != CODE].iloc[-1]
    street, code = other["street_code"], other["community_code"]
    at.text_input(key="planner_search").input(str(other["community_name"])[:3]).run()
    pick = at.selectbox(key="planner_search_pick")
    assert any(code in o and str(other["community_name"]) in o for o in pick.options)
    pick.set_value(f"{street}|{code}").run()
    at.button(key="planner_search_go").click().run()
    assert not at.exception, at.exception
    assert at.selectbox(key="planner_street").value == street
    assert at.selectbox(key=f"planner_community_{street}").value == code
    assert metrics(at)["户数"] == f"{int(other['households']):,}"
    # a street matches by its name too; no match says so
    at.text_input(key="planner_search").input(str(other["street_name"])[:3]).run()
    assert any(o.startswith(f"{other['street_name']} ({street})")
               for o in at.selectbox(key="planner_search_pick").options)
    at.text_input(key="planner_search").input("没有这个名字").run()
    assert any("没有匹配" in c.value for c in at.caption)


def test_balance_only_redraw_shows_the_trade_off(grids_demo, monkeypatch):
    ws = pl.open_workspace(grids_demo / "gridgov.duckdb", CODE)
    at = open_page(grids_demo, monkeypatch)
    m = metrics(at)
    assert {"户数极差（最大−最小）", "户数变异系数", "平均紧凑度"} <= set(m)
    at.checkbox(key=f"planner_bal_{CODE}").check().run()
    assert at.slider(key=f"planner_wc_{CODE}").disabled
    at.button(key="planner_redraw").click().run()
    assert not at.exception, at.exception
    w = pl.weights_with(ws)
    want = pl.redraw_community(ws, households_min=int(ws.norm()["households_min"]),
                               households_max=int(ws.norm()["households_max"]),
                               weights={"balance": w["balance"], "compactness": 0.0}).labels
    got = at.session_state["planner_edits"][CODE]["labels"]
    assert got == {str(k): v for k, v in want.items()}
    grids = pl.plan_grids(ws, want)
    basic = grids[grids["grid_type"] == "basic"]["households"]
    m = metrics(at)
    assert m["户数极差（最大−最小）"] == f"{basic.max() - basic.min():,.0f}"
    assert m["平均紧凑度"] != "—"

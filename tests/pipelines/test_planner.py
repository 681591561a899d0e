"""The planner's library (``pipelines.services.planner``) on the small demo city after ``gridgov run``.

Load a community, re-draw it (contiguous grids that tile the community), refuse a move that
would split a grid (with the reason in Chinese and English), apply and undo a legal move, lock
a grid, save the edit as a new plan (parent = the old current plan, which stays untouched),
and write the realignment report.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import shapely

from pipelines.db import connect, read_gdf, read_table
from pipelines.services import planner as pl

CODE = "150102001002"  # 赛马场社区: ten basic grids and a dedicated one in the small demo


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    """The small demo city with only the grids stage run (never modified by the tests)."""
    from gridgov.demo_city import build_demo
    from pipelines.run import run_project

    root = tmp_path_factory.mktemp("planner") / "demo-small"
    build_demo(root, size="small")
    run_project(root, stages=["grids"])
    return root


@pytest.fixture
def project(demo, tmp_path) -> Path:
    """A private copy of the demo for tests that write."""
    dst = tmp_path / "demo"
    shutil.copytree(demo, dst)
    return dst


@pytest.fixture(scope="module")
def ws(demo) -> pl.Workspace:
    return pl.open_workspace(demo / "gridgov.duckdb", CODE)


def _db(root: Path) -> Path:
    return root / "gridgov.duckdb"


def _components(ws: pl.Workspace, members: list) -> int:
    """Connected parts of a set of cells through contiguity and barrier links."""
    pos = {ws.adjacency.position[c] for c in members}
    extra: dict[int, list[int]] = {}
    for a, b in ws.adjacency.barrier_pairs:
        extra.setdefault(int(a), []).append(int(b))
        extra.setdefault(int(b), []).append(int(a))
    seen: set = set()
    parts = 0
    for s in pos:
        if s in seen:
            continue
        parts += 1
        stack = [s]
        seen.add(s)
        while stack:
            u = stack.pop()
            for v in list(ws.adjacency.neighbors(u)) + extra.get(u, []):
                if v in pos and v not in seen:
                    seen.add(v)
                    stack.append(v)
    return parts


def _moves(ws: pl.Workspace, labels: pd.Series):
    """(a legal move with households, a move refused because it splits the source grid)."""
    hh = ws.cells.set_index("cell_id")["households"]
    legal = splitting = None
    for cell in ws.cells["cell_id"]:
        if labels[cell] in ws.dedicated:
            continue
        for grid, across in pl.neighbour_grids(ws, labels, cell):
            if across or grid in ws.dedicated:
                continue
            res = pl.move_cell(ws, labels, cell, grid)
            if res.ok and legal is None and hh[cell] > 0:
                legal = (cell, grid)
            if not res.ok and splitting is None and "split" in res.reason_en:
                splitting = (cell, grid, res)
        if legal and splitting:
            break
    assert legal and splitting, "the demo community should offer both kinds of move"
    return legal, splitting


# --------------------------------------------------------------------------------------------


def test_load_community_matches_the_current_plan(demo, ws):
    con = connect(_db(demo), read_only=True)
    try:
        stored = read_table(con, "SELECT cell_id, grid_id FROM grid_cells WHERE community_code = ?",
                            [CODE])
        grids = read_table(con, "SELECT grid_id, grid_type FROM grids WHERE community_code = ?",
                           [CODE])
        index = pl.list_communities(con)
    finally:
        con.close()
    assert CODE in set(index["community_code"])
    assert ws.plan_id == "P0001" and ws.crs == "EPSG:4546"
    assert len(ws.cells) == len(stored) == ws.adjacency.n
    assert ws.current.notna().all()
    assert ws.current.reindex(stored["cell_id"]).tolist() == stored["grid_id"].tolist()
    assert set(ws.current) == set(grids["grid_id"])
    assert ws.dedicated == set(grids.loc[grids["grid_type"] == "dedicated", "grid_id"])
    checks = pl.checklist(ws)
    assert checks["ok"].all(), checks
    assert set(checks["check"]) == {"complete", "contiguous", "inside_one_community",
                                    "within_norm"}


@pytest.mark.parametrize("mode", pl.MODES)
def test_redraw_is_contiguous_and_tiles_the_community(ws, mode):
    res = pl.redraw_community(ws, households_min=300, households_max=400, mode=mode)
    labels = res.labels
    assert labels.notna().all() and list(labels.index) == list(ws.cells["cell_id"])
    # dedicated grids are untouched
    for g in ws.dedicated:
        assert (labels[ws.current == g] == g).all()
        assert (labels == g).sum() == (ws.current == g).sum()
    # every grid is one piece (through contiguity; a barrier link only where the engine joined)
    for g, members in labels.groupby(labels).groups.items():
        assert _components(ws, list(members)) == 1, g
    norms = pl.norms_with(ws, 300, 400)
    checks = pl.checklist(ws, labels, norms).set_index("check")["ok"]
    assert checks[["complete", "contiguous", "inside_one_community"]].all()
    # the grids tile the community: no gap, no overlap (up to the 1 mm snapping)
    grids = pl.plan_grids(ws, labels, norms)
    community = ws.communities.geometry.iloc[0]
    union = shapely.union_all(grids.geometry.values, grid_size=1e-3)
    assert shapely.difference(community, union).area < 1e-4 * community.area
    assert grids.geometry.area.sum() == pytest.approx(community.area, rel=1e-4)
    assert grids["grid_id"].str.fullmatch(rf"{CODE}\d{{3}}").all()
    assert (grids.loc[grids["grid_type"] == "basic", "households"] <= 400).all()
    # the same figures from the comparison table
    table = pl.compare(ws, labels, norms).set_index("metric")
    assert table.loc["share_within_norm", "proposed"] == 1.0
    assert table.loc["households_max", "current"] > 400  # the current plan breaks this norm
    assert table.loc["contiguous", "proposed"]


def test_redraw_is_the_same_every_time(ws):
    # a work budget, not seconds: the proposal does not depend on the machine's load
    for mode in pl.MODES:
        a = pl.redraw_community(ws, households_min=300, households_max=400, mode=mode)
        b = pl.redraw_community(ws, households_min=300, households_max=400, mode=mode)
        assert a.labels.equals(b.labels), mode


def test_minimal_redraw_keeps_grids_within_the_norm(ws):
    same = pl.redraw_community(ws, mode="minimal")
    assert (same.labels == ws.current).all()  # the current plan meets the project's norm
    tight = pl.redraw_community(ws, households_min=300, households_max=400, mode="minimal")
    fresh = pl.redraw_community(ws, households_min=300, households_max=400, mode="fresh")
    moved = pl.diff(ws, tight.labels)["households_moved"]
    assert 0 < moved < pl.diff(ws, fresh.labels)["households_moved"]


def test_move_that_splits_a_grid_is_refused_with_a_reason(ws):
    edit = pl.new_edit(ws)
    _, (cell, grid, res) = _moves(ws, pl.working_labels(ws, edit))
    assert not res.ok
    assert "分成" in res.reason_zh and "split" in res.reason_en
    out = pl.edit_move(ws, edit, cell, grid)
    assert not out.ok and out.reason("zh") == res.reason_zh and out.reason("en") == res.reason_en
    assert edit["labels"] is None and edit["undo"] == []  # nothing changed
    # a dedicated grid is locked
    ded = sorted(ws.dedicated)[0]
    cell_d = ws.current[ws.current == ded].index[0]
    near = [g for g, _ in pl.neighbour_grids(ws, ws.current, cell_d)]
    refused = pl.move_cell(ws, ws.current, cell_d, near[0])
    assert not refused.ok and "锁定" in refused.reason_zh and "locked" in refused.reason_en


def test_legal_move_is_applied_and_undone(ws):
    edit = pl.new_edit(ws)
    (cell, grid), _ = _moves(ws, ws.current)
    before = pl.working_labels(ws, edit)
    res = pl.edit_move(ws, edit, cell, grid)
    assert res.ok and pl.has_proposal(edit)
    after = pl.working_labels(ws, edit)
    changed = after[after != before]
    assert list(changed.index) == [cell] and changed[cell] == grid
    checks = pl.checklist(ws, after).set_index("check")["ok"]
    assert checks["contiguous"] and checks["complete"]
    d = pl.diff(ws, after)
    cell_buildings = ws.cells.set_index("cell_id").loc[cell, "building_ids"]
    assert sorted(d["moves"]["id"]) == sorted(cell_buildings)
    assert set(d["moves"]["to_grid"]) == {grid}
    # undo: back to the current plan, and the undo stack is plain data
    import json

    json.dumps(edit)
    step = pl.edit_undo(ws, edit)
    assert step["op"] == "move" and step["cell_id"] == cell
    assert edit["labels"] is None and (pl.working_labels(ws, edit) == ws.current).all()
    assert pl.edit_undo(ws, edit) is None


def test_locked_grid_survives_a_redraw_and_refuses_moves(ws):
    edit = pl.new_edit(ws)
    basic = sorted(g for g in set(ws.current) if g not in ws.dedicated)
    keep = basic[len(basic) // 2]
    pl.edit_lock(edit, keep)
    pl.edit_redraw(ws, edit, households_min=300, households_max=400)
    lab = pl.working_labels(ws, edit)
    assert ((lab == keep) == (ws.current == keep)).all()
    cell = lab[lab == keep].index[0]
    for grid, _ in pl.neighbour_grids(ws, lab, cell):
        res = pl.edit_move(ws, edit, cell, grid)
        assert not res.ok and keep in res.reason_en and "locked" in res.reason_en
    # undo the re-draw, then the lock
    assert pl.edit_undo(ws, edit)["op"] == "redraw" and edit["labels"] is None
    assert pl.edit_undo(ws, edit)["op"] == "lock" and edit["locked"] == []


def test_save_creates_a_new_plan_and_never_overwrites(project):
    db = _db(project)
    ws = pl.open_workspace(db, CODE)
    con = connect(db, read_only=True)
    try:
        old = {t: read_table(con, f"SELECT * EXCLUDE (geometry) FROM {t} WHERE plan_id = 'P0001' "
                                  "ORDER BY ALL") for t in ("plan_grids",)}
        old["plan_members"] = read_table(
            con, "SELECT * FROM plan_members WHERE plan_id = 'P0001' ORDER BY ALL")
        old["grid_metrics"] = read_table(con, "SELECT * FROM grid_metrics WHERE plan_id = 'P0001'")
        old["plans"] = read_table(con, "SELECT * EXCLUDE (is_current) FROM plans ORDER BY plan_id")
        old_grids = read_table(con, "SELECT * EXCLUDE (geometry) FROM grids ORDER BY grid_id")
    finally:
        con.close()

    edit = pl.new_edit(ws)
    pl.edit_redraw(ws, edit, households_min=300, households_max=400)
    labels = pl.working_labels(ws, edit)
    saved = pl.save_plan(db, ws, labels, author="王工", note="按 300–400 户重新划分",
                         households_min=300, households_max=400)
    assert saved.parent_plan_id == "P0001" and saved.plan_id == "P0002"

    con = connect(db, read_only=True)
    try:
        plans = read_table(con, "SELECT * FROM plans ORDER BY plan_id")
        # P0000 is today's map (current_grids) as given, P0001 the run's proposal from it
        assert plans["plan_id"].tolist() == ["P0000", "P0001", "P0002"]
        assert plans.set_index("plan_id").loc["P0001", "parent_plan_id"] == "P0000"
        new = plans.set_index("plan_id").loc["P0002"]
        assert new["parent_plan_id"] == "P0001" and new["author"] == "王工"
        assert new["note"] == "按 300–400 户重新划分" and new["source"] == "planner"
        assert plans.set_index("plan_id")["is_current"].to_dict() == {"P0000": False,
                                                                       "P0001": False,
                                                                       "P0002": True}
        # the old plan's rows are exactly as they were
        pd.testing.assert_frame_equal(old["plans"], read_table(
            con, "SELECT * EXCLUDE (is_current) FROM plans WHERE plan_id <> 'P0002' ORDER BY plan_id"))
        pd.testing.assert_frame_equal(old["plan_grids"], read_table(
            con, "SELECT * EXCLUDE (geometry) FROM plan_grids WHERE plan_id = 'P0001' "
                 "ORDER BY ALL"))
        pd.testing.assert_frame_equal(old["plan_members"], read_table(
            con, "SELECT * FROM plan_members WHERE plan_id = 'P0001' ORDER BY ALL"))
        pd.testing.assert_frame_equal(old["grid_metrics"], read_table(
            con, "SELECT * FROM grid_metrics WHERE plan_id = 'P0001'"))
        # `grids` now shows the new plan: other communities as they were, this one redrawn
        grids = read_gdf(con, "SELECT * FROM grids ORDER BY grid_id")
        assert set(grids["plan_id"]) == {"P0002"}
        others = grids[grids["community_code"] != CODE].drop(columns=["plan_id", "geometry"])
        before = old_grids[old_grids["community_code"] != CODE].drop(columns=["plan_id"])
        pd.testing.assert_frame_equal(others.reset_index(drop=True),
                                      before.reset_index(drop=True))
        mine = grids[grids["community_code"] == CODE].set_index("grid_id")
        hh = ws.cells.set_index("cell_id")["households"].reindex(labels.index)
        expect = hh.groupby(labels.to_numpy()).sum()
        assert mine["households"].to_dict() == expect.astype(int).to_dict()
        basic = mine[mine["grid_type"] == "basic"]
        assert (basic["households"] <= 400).all() and (basic["status"] == "ok").all()
        assert (mine.loc[sorted(ws.dedicated), "grid_type"] == "dedicated").all()
        # members: every building once, in the grid of its cell
        members = read_table(con, "SELECT * FROM grid_members")
        assert set(members["plan_id"]) == {"P0002"}
        assert len(members) == len(old["plan_members"]) == members["building_id"].nunique()
        assert members.set_index("building_id")["grid_id"].reindex(
            pl.building_grid(ws, labels).index).tolist() == pl.building_grid(ws, labels).tolist()
        metrics = read_table(con, "SELECT * FROM grid_metrics WHERE plan_id = 'P0002'")
        assert len(metrics) == 1 and metrics["n_grids"].iloc[0] == len(grids)
        cells = read_table(con, "SELECT cell_id, grid_id FROM grid_cells WHERE community_code = ?",
                           [CODE])
        assert cells.set_index("cell_id")["grid_id"].reindex(labels.index).tolist() == \
            labels.tolist()
        # the next edit starts from the saved plan
        ws2 = pl.load_workspace(con, CODE)
        assert ws2.plan_id == "P0002" and (ws2.current == labels).all()
    finally:
        con.close()

    # an edit begun on the old plan can no longer be saved over the new one
    with pytest.raises(pl.PlanChanged) as err:
        pl.save_plan(db, ws, labels, author="李工")
    assert "P0002" in err.value.zh and "P0002" in err.value.en


def test_save_refuses_a_broken_plan(project):
    db = _db(project)
    ws = pl.open_workspace(db, CODE)
    holes = ws.current.copy()
    holes.iloc[3] = np.nan
    with pytest.raises(pl.PlannerError) as err:
        pl.save_plan(db, ws, holes, author="王工")
    assert "全覆盖" in err.value.zh and "Complete" in err.value.en
    with pytest.raises(pl.PlannerError):
        pl.save_plan(db, ws, ws.current, author="  ")
    con = connect(db, read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM plans").fetchone()[0] == 2  # P0000, P0001
    finally:
        con.close()


def test_realignment_report_lists_the_moved_buildings(ws, tmp_path):
    from openpyxl import load_workbook

    res = pl.redraw_community(ws, households_min=300, households_max=400)
    d = pl.diff(ws, res.labels)
    path = pl.realignment_report(ws, res.labels, tmp_path / "report.xlsx",
                                 norms=pl.norms_with(ws, 300, 400), author="王工")
    book = load_workbook(path, read_only=True)
    assert book.sheetnames == list(pl.REPORT_SHEETS)
    rows = list(book[pl.REPORT_SHEETS[1]].iter_rows(values_only=True))
    head, body = rows[0], rows[1:]
    assert head[:6] == ("楼栋编号 Building ID", "户数 Households", "人口 Residents",
                        "单元编号 Cell ID", "原网格 From grid", "新网格 To grid")
    moved = d["moves"].set_index("id")
    assert len(body) == len(moved) > 0
    assert {r[0] for r in body} == set(moved.index)
    for r in body:
        assert (r[4], r[5]) == (moved.loc[r[0], "from_grid"], moved.loc[r[0], "to_grid"])
    assert sum(r[1] for r in body) == d["households_moved"]
    summary = dict(book[pl.REPORT_SHEETS[0]].iter_rows(min_row=2, values_only=True))
    assert summary["调整楼栋 Buildings moved"] == len(moved)
    assert summary["户数规范 Households norm"] == "300–400"
    assert summary["编制人 Author"] == "王工"
    # grids sheet: households after = before + in - out for every grid touched
    grows = list(book[pl.REPORT_SHEETS[2]].iter_rows(values_only=True))
    for r in grows[1:]:
        before, after, gained, lost = (r[3] or 0), (r[4] or 0), r[5], r[6]
        assert after == before + gained - lost, r
    # bytes when no destination is given
    data = pl.realignment_report(ws, res.labels)
    assert data[:2] == b"PK"


def test_grids_geojson_and_click_lookup(ws):
    import json

    gj = json.loads(pl.grids_geojson(ws))
    assert len(gj["features"]) == ws.current.nunique()
    assert {"grid_id", "households", "workload", "status"} <= set(gj["features"][0]["properties"])
    # a click inside a cell finds it (EPSG:4326 point on its surface)
    cell = ws.cells["cell_id"].iloc[10]
    p = ws.cells_wgs84.geometry.iloc[10].representative_point()
    assert pl.cell_at(ws, p.x, p.y) == cell
    assert pl.cell_at(ws, p.x + 1.0, p.y) is None

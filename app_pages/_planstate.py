"""The planner page's state (no layout): cached loaders over :mod:`pipelines.services.planner`, the
messages of the last action, and the buttons' callbacks.

The page keeps one *edit* per community in ``st.session_state["planner_edits"]`` (plain data:
the working labels, the locked grids, the undo stack). Every button acts in an ``on_click``
callback, before the script runs, so the maps and tables always show the edit's latest state.
The database is read through the cached read-only loaders (opened and closed per load, keyed by
the file's mtime); saving opens it read-write for the write only
(:func:`pipelines.services.planner.save_plan`), and the new mtime makes every loader read the new plan.
"""
from __future__ import annotations

import math

import geopandas as gpd
import pandas as pd
import streamlit as st

from app_pages._mapbuild import round_coords, shift_to
from app_pages._planmap import status_label
from app_pages._shared import md, open_db
from app_pages.i18n import t
from pipelines.services import planner as pl

CUR_KEY = "planner_map_current"
EDIT_KEY = "planner_map_edit"

# --------------------------------------------------------------------------------------------
# cached loaders (key: database path + mtime) and derived figures (key: + labels + norm)


@st.cache_data(show_spinner=False, max_entries=4)
def load_index(db: str, mtime: float) -> pd.DataFrame:
    """Streets and communities with cells (the two selectors)."""
    with open_db(db) as con:
        return pl.list_communities(con)


@st.cache_resource(show_spinner=False, max_entries=16)
def load_ws(db: str, mtime: float, code: str) -> pl.Workspace:
    """One community's cells, contiguity and current grids (shared, read-only)."""
    with open_db(db) as con:
        return pl.load_workspace(con, code)


@st.cache_data(show_spinner=False, max_entries=64)
def derived(db: str, mtime: float, code: str, key: tuple | None, lo: int, hi: int) -> dict:
    """Grids (metric CRS) and the checklist of a labelling (``key``: labels in cell order)."""
    ws = load_ws(db, mtime, code)
    labels = None if key is None else pd.Series(list(key), index=ws.cells["cell_id"].to_numpy())
    norms = pl.norms_with(ws, lo, hi)
    grids = pl.plan_grids(ws, labels, norms)
    return {"grids": grids, "checks": pl.checklist(ws, labels, norms)}


@st.cache_data(show_spinner=False, max_entries=32)
def comparison(db: str, mtime: float, code: str, key: tuple | None, lo: int, hi: int
               ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(figures current vs proposed, building moves) for a proposal."""
    ws = load_ws(db, mtime, code)
    norms = pl.norms_with(ws, lo, hi)
    cur = derived(db, mtime, code, None, lo, hi)["grids"]
    if key is None:
        return pl.compare(ws, None, norms, current_grids=cur), pd.DataFrame()
    labels = pd.Series(list(key), index=ws.cells["cell_id"].to_numpy())
    new = derived(db, mtime, code, key, lo, hi)["grids"]
    table = pl.compare(ws, labels, norms, current_grids=cur, proposed_grids=new)
    moves = pl.diff(ws, labels)["moves"]
    return table, moves


@st.cache_data(show_spinner=False, max_entries=8)
def display_cells(db: str, mtime: float, code: str, tiles_crs: str) -> gpd.GeoDataFrame:
    """Cell outlines in the display CRS (rounded)."""
    ws = load_ws(db, mtime, code)
    frame, _ = shift_to(ws.cells_wgs84[["cell_id", "geometry"]], tiles_crs)
    return round_coords(frame, 6)




# --------------------------------------------------------------------------------------------
# helpers


def bilingual(key: str) -> str:
    """A fixed option label (widget option labels must not change with the language)."""
    zh, en = t(key, "zh"), t(key, "en")
    return zh if zh == en else f"{zh} {en}"


def spread(grids: gpd.GeoDataFrame) -> dict:
    """Households spread (max−min), CV and mean compactness of a plan's basic grids."""
    b = grids[grids["grid_type"] == "basic"]
    h = b["households"].astype(float)
    if h.empty:
        return {"spread": None, "cv": None, "compactness": None}
    return {"spread": float(h.max() - h.min()),
            "cv": float(h.std(ddof=0) / h.mean()) if h.mean() > 0 else None,
            "compactness": float(b["compactness"].mean())}


def fmt_metric(metric: str, value: object, lang: str) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    if metric == "contiguous":
        return t("planner.yes", lang) if bool(value) else t("planner.no", lang)
    if metric == "share_within_norm":
        return f"{float(value):.0%}"
    if metric in ("workload_cv", "mean_compactness"):
        return f"{float(value):.3f}"
    return f"{round(float(value)):,}"


def grid_table(g: gpd.GeoDataFrame, locked: set, lang: str) -> pd.DataFrame:
    """A plan's grids as the page's table (translated headers and values)."""
    return pd.DataFrame({
        t("planner.col.grid_id", lang): g["grid_id"],
        t("planner.col.grid_type", lang): [t(f"planner.type.{v}", lang) for v in g["grid_type"]],
        t("planner.col.households", lang): g["households"].astype("int64"),
        t("planner.col.residents", lang): g["residents"].round(0).astype("int64"),
        t("planner.col.workload", lang): g["workload"].round(1),
        t("planner.col.compactness", lang): g["compactness"].round(3),
        t("planner.col.status", lang): [status_label(s, lang) for s in g["status"]],
        t("planner.col.locked", lang): g["grid_id"].isin(locked),
    })


def say(kind: str, zh: str, en: str) -> None:
    """Report the outcome of the action under way (kept until the next action).

    Messages stay on screen across re-runs (a map re-mount or a language switch re-runs the
    script) and are replaced by the next button press; :func:`begin` clears them.
    """
    st.session_state.setdefault("planner_msgs", []).append((kind, zh, en))


def begin(code: str) -> None:
    """A new action on community ``code``: forget the previous action's messages."""
    st.session_state["planner_msgs"] = []
    st.session_state["planner_msgs_code"] = code


def say_key(kind: str, key: str, **fmt) -> None:
    say(kind, t(key, "zh", **fmt), t(key, "en", **fmt))


# --------------------------------------------------------------------------------------------
# callbacks (run before the script, so everything below shows the new state)


def _edit(code: str) -> dict:
    return st.session_state["planner_edits"][code]


def cb_map_click(ident: tuple, tiles_crs: str) -> None:
    """A click on the proposal map: pick the unit under it."""
    value = st.session_state.get(EDIT_KEY) or {}
    point = value.get("last_object_clicked") if isinstance(value, dict) else None
    if not point:
        return
    lon, lat = float(point["lng"]), float(point["lat"])
    if tiles_crs == "GCJ-02":
        from geo.chinacrs import gcj02_to_wgs84

        lon, lat = (float(v) for v in gcj02_to_wgs84(lon, lat))
    ws = load_ws(*ident)
    cell = pl.cell_at(ws, lon, lat)
    if cell is None:
        return
    code = ident[2]
    begin(code)
    if st.session_state.get(f"planner_multi_{code}"):
        sel = list(st.session_state.get(f"planner_sel_{code}") or [])
        sel = [c for c in sel if c != cell] if cell in sel else sel + [cell]
        st.session_state[f"planner_sel_{code}"] = sel
    else:
        st.session_state[f"planner_cell_{code}"] = cell


def weights_from_state(code: str) -> dict:
    """The re-draw weights of the controls; "balance only" sets compactness to 0."""
    comp = 0.0 if st.session_state.get(f"planner_bal_{code}") else \
        float(st.session_state[f"planner_wc_{code}"])
    return {"balance": float(st.session_state[f"planner_wb_{code}"]), "compactness": comp}


def cb_move_many(ident: tuple) -> None:
    """Move the multi-selection to one grid (all or nothing, one undo step)."""
    code = ident[2]
    begin(code)
    cells = list(st.session_state.get(f"planner_sel_{code}") or [])
    target = st.session_state.get(f"planner_selto_{code}")
    if not cells or target is None:
        return
    res = pl.edit_move_many(load_ws(*ident), _edit(code), cells, target)
    if res.ok:
        say_key("success", "planner.moved_many", n=len(cells), grid=md(target))
    else:
        say("error", t("planner.refused", "zh", reason=res.reason_zh),
            t("planner.refused", "en", reason=res.reason_en))


def cb_clear_sel(code: str) -> None:
    st.session_state[f"planner_sel_{code}"] = []


def cb_lock_all(ident: tuple, locked: bool) -> None:
    begin(ident[2])
    pl.edit_lock_all(load_ws(*ident), _edit(ident[2]), locked)


def cb_next_problem(ident: tuple, problems: list) -> None:
    """Focus the next problem grid of the proposal (wraps round)."""
    code = ident[2]
    begin(code)
    if not problems:
        say_key("info", "planner.no_problem")
        st.session_state.pop(f"planner_focus_{code}", None)
        return
    ids = [g for g, _ in problems]
    cur = st.session_state.get(f"planner_focus_{code}")
    i = (ids.index(cur) + 1) % len(ids) if cur in ids else 0
    st.session_state[f"planner_focus_{code}"] = ids[i]
    why = problems[i][1]
    say("warning", t("planner.problem_at", "zh", grid=md(ids[i]), i=i + 1, n=len(ids),
                     why="、".join(t(f"planner.why.{w}", "zh") for w in why)),
        t("planner.problem_at", "en", grid=md(ids[i]), i=i + 1, n=len(ids),
          why=", ".join(t(f"planner.why.{w}", "en") for w in why)))


def cb_goto() -> None:
    """The search box's choice: switch the page to that street (and community)."""
    pick = st.session_state.get("planner_search_pick")
    if not pick:
        return
    street, _, code = str(pick).partition("|")
    st.session_state["planner_street"] = street
    if code:
        st.session_state[f"planner_community_{street}"] = code


def norm_from_state(code: str) -> tuple[int, int] | None:
    lo = int(st.session_state[f"planner_min_{code}"])
    hi = int(st.session_state[f"planner_max_{code}"])
    return None if lo > hi else (lo, hi)


def cb_redraw(ident: tuple) -> None:
    code = ident[2]
    begin(code)
    norm = norm_from_state(code)
    if norm is None:
        say_key("error", "planner.bad_norm")
        return
    ws = load_ws(*ident)
    mode = st.session_state[f"planner_mode_{code}"]
    weights = weights_from_state(code)
    try:
        res = pl.edit_redraw(ws, _edit(code), households_min=norm[0], households_max=norm[1],
                             weights=weights, mode=mode)
    except pl.PlannerError as exc:
        say("error", exc.zh, exc.en)
        return
    st.session_state[f"planner_seconds_{code}"] = res.seconds
    say("success", t("planner.redraw_done", "zh", mode=t(f"planner.mode.{mode}", "zh"),
                     seconds=res.seconds),
        t("planner.redraw_done", "en", mode=t(f"planner.mode.{mode}", "en"),
          seconds=res.seconds))


def cb_undo(ident: tuple) -> None:
    begin(ident[2])
    ws = load_ws(*ident)
    step = pl.edit_undo(ws, _edit(ident[2]))
    if step is None:
        say_key("info", "planner.nothing_to_undo")
    else:
        op = step["op"]
        say("info", t("planner.undone", "zh", what=t(f"planner.op.{op}", "zh")),
            t("planner.undone", "en", what=t(f"planner.op.{op}", "en")))


def cb_discard(ident: tuple) -> None:
    begin(ident[2])
    ws = load_ws(*ident)
    edit = _edit(ident[2])
    if pl.has_proposal(edit):
        pl.edit_reset(ws, edit)


def cb_move(ident: tuple) -> None:
    code = ident[2]
    begin(code)
    cell = st.session_state.get(f"planner_cell_{code}")
    target = st.session_state.get(f"planner_to_{code}_{cell}")
    if cell is None or target is None:
        return
    ws = load_ws(*ident)
    res = pl.edit_move(ws, _edit(code), cell, target)
    if res.ok:
        say_key("success", "planner.moved", cell=cell, grid=target)
    else:
        say("error", t("planner.refused", "zh", reason=res.reason_zh),
            t("planner.refused", "en", reason=res.reason_en))


def cb_lock(ident: tuple, locked: bool) -> None:
    code = ident[2]
    begin(code)
    grid = st.session_state.get(f"planner_lockpick_{code}")
    if grid:
        pl.edit_lock(_edit(code), grid, locked)


def cb_save(ident: tuple) -> None:
    db, _mtime, code = ident
    begin(code)
    edit = _edit(code)
    if not pl.has_proposal(edit):
        say_key("warning", "planner.save_nothing")
        return
    norm = norm_from_state(code)
    if norm is None:
        say_key("error", "planner.bad_norm")
        return
    ws = load_ws(*ident)
    labels = pl.working_labels(ws, edit)
    # No read-only handle may be open on the file while it is written (DuckDB allows one
    # configuration per file and process). The loaders open and close theirs per call; drop
    # their caches too, so nothing refers to the old file state, then write.
    load_index.clear()
    derived.clear()
    comparison.clear()
    display_cells.clear()
    try:
        saved = pl.save_plan(
            db, ws, labels, author=st.session_state.get("planner_author", ""),
            note=st.session_state.get("planner_note", ""), households_min=norm[0],
            households_max=norm[1],
            weights=weights_from_state(code))
    except pl.PlannerError as exc:
        say("error", t("planner.save_failed", "zh", error=exc.zh),
            t("planner.save_failed", "en", error=exc.en))
        return
    load_ws.clear()
    st.session_state["planner_edits"].pop(code, None)
    st.session_state["planner_last_saved"] = saved.plan_id
    say_key("success", "planner.flash_saved", plan_id=saved.plan_id,
            parent=saved.parent_plan_id)



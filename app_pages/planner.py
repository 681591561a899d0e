"""Planner page (网格规划): see, re-draw, edit, compare, save and export one community's grids.

Layout only. The work is in :mod:`pipelines.services.planner` (no Streamlit there), the state and the
buttons' callbacks in :mod:`app_pages._planstate`, the maps in :mod:`app_pages._planmap`. Two
maps side by side: the current plan and the proposal being edited. Clicking a unit on the
proposal map selects it: that map is the only one returning anything
(``returned_objects=["last_object_clicked"]``, a fixed key), and the selected unit is drawn as
a dynamic layer (``feature_group_to_add``), so a click re-runs the script but does not rebuild
the map.
"""
from __future__ import annotations

import functools

import pandas as pd
import streamlit as st

from app_pages._mapview import map_context, map_downloads, map_notes, show_map
from app_pages._planedit import edit_panel, search_box, tradeoff
from app_pages._planmap import class_breaks, display_grids, focus_view, grid_map, selected_layer
from app_pages._planstate import (
    CUR_KEY,
    EDIT_KEY,
    begin,
    bilingual,
    cb_discard,
    cb_map_click,
    cb_redraw,
    cb_save,
    cb_undo,
    comparison,
    derived,
    display_cells,
    fmt_metric,
    grid_table,
    load_index,
    load_ws,
    norm_from_state,
    say_key,
)
from app_pages._shared import current_db, load_or_stop, show_db_error
from app_pages.i18n import current_lang, t
from pipelines.services import planner as pl

MAP_HEIGHT = 470
XLSX_MIME = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

db, mtime = current_db()
lang = current_lang()
index = load_or_stop(load_index, db, mtime)

st.title(t("planner.title"))
st.caption(t("planner.intro"))

if index.empty:
    st.info(t("planner.no_plan"))
    st.code(f"gridgov run {db.parent}", language="bash")
    st.stop()

search_box(index)
streets = index.drop_duplicates("street_code")
street_names = dict(zip(streets["street_code"], streets["street_name"]))
c1, c2 = st.columns(2)
street = c1.selectbox(t("planner.street"), list(streets["street_code"]), key="planner_street",
                      format_func=lambda c: f"{street_names.get(c, c)} ({c})")
comms = index[index["street_code"] == street]
comm_names = dict(zip(comms["community_code"], comms["community_name"]))
code = c2.selectbox(t("planner.community"), list(comms["community_code"]),
                    key=f"planner_community_{street}",
                    format_func=lambda c: f"{comm_names.get(c, c)} ({c})")
ident = (str(db), mtime, code)
try:
    ws = load_ws(*ident)
except pl.PlannerError as exc:
    st.info(exc.text(lang))
    st.code(f"gridgov run {db.parent}", language="bash")
    st.stop()
except Exception as exc:
    show_db_error(db, exc)

edits: dict = st.session_state.setdefault("planner_edits", {})
edit = edits.get(code)
if edit is None or edit.get("plan_id") != ws.plan_id:
    if edit is not None and pl.has_proposal(edit):
        begin(code)
        say_key("info", "planner.reset_by_plan", plan_id=ws.plan_id)
    edit = edits[code] = pl.new_edit(ws)

# ---- headline ----------------------------------------------------------------------------
basic_today = sum(1 for g in set(ws.current.dropna()) if ws.grid_type.get(g) != "dedicated")
k1, k2, k3, k4, k5 = st.columns(5)
k1.metric(t("planner.kpi.households"), f"{int(ws.cells['households'].sum()):,}", border=True)
k2.metric(t("planner.kpi.cells"), f"{len(ws.cells):,}", border=True)
k3.metric(t("planner.kpi.grids"), f"{basic_today}", border=True)
k4.metric(t("planner.kpi.kind"), t(f"planner.kind.{ws.kind}"), border=True)
k5.metric(t("planner.kpi.plan"), ws.plan_id, border=True)

# ---- controls ----------------------------------------------------------------------------
norm0 = ws.norm()
w0 = pl.weights_with(ws)
# Streamlit forgets a widget's value when it is not drawn (another community is shown), so
# each community's controls are also kept in a plain dict and restored from there.
controls: dict = st.session_state.setdefault("planner_controls", {}).setdefault(code, {})
control_keys = ((f"planner_min_{code}", int(norm0["households_min"])),
                (f"planner_max_{code}", int(norm0["households_max"])),
                (f"planner_wb_{code}", float(w0["balance"])),
                (f"planner_wc_{code}", float(w0["compactness"])),
                (f"planner_mode_{code}", "fresh"), (f"planner_bal_{code}", False))
for key, value in control_keys:
    st.session_state.setdefault(key, controls.get(key, value))

with st.container(border=True):
    st.markdown(f"**{t('planner.controls')}**")
    a, b, c, d = st.columns([1.1, 1.2, 1.4, 1.3], gap="medium")
    color_by = a.radio(t("planner.color_by"), ["households", "workload"], key="planner_color",
                       format_func=lambda v: bilingual(f"planner.color.{v}"))
    b.number_input(t("planner.norm_min"), min_value=0, step=10, key=f"planner_min_{code}",
                   help=t("planner.norm_help"))
    b.number_input(t("planner.norm_max"), min_value=1, step=10, key=f"planner_max_{code}")
    c.slider(t("planner.w_balance"), 0.0, 5.0, step=0.5, key=f"planner_wb_{code}",
             help=t("planner.w_help"))
    c.slider(t("planner.w_compactness"), 0.0, 5.0, step=0.5, key=f"planner_wc_{code}",
             disabled=bool(st.session_state[f"planner_bal_{code}"]))
    c.checkbox(t("planner.balance_only"), key=f"planner_bal_{code}",
               help=t("planner.balance_only_help"))
    d.radio(t("planner.mode"), list(pl.MODES), key=f"planner_mode_{code}",
            format_func=lambda v: bilingual(f"planner.mode.{v}"), help=t("planner.mode_help"))
    b1, b2, b3, _ = st.columns([1, 1, 1, 3])
    b1.button(t("planner.redraw"), key="planner_redraw", type="primary", on_click=cb_redraw,
              args=(ident,), width="stretch")
    b2.button(t("planner.undo"), key="planner_undo", on_click=cb_undo, args=(ident,),
              disabled=not edit["undo"], width="stretch")
    b3.button(t("planner.discard"), key="planner_discard", on_click=cb_discard, args=(ident,),
              disabled=not pl.has_proposal(edit), width="stretch")

controls.update({key: st.session_state[key] for key, _ in control_keys})

if st.session_state.get("planner_msgs_code") == code:
    for kind, zh, en in st.session_state.get("planner_msgs", []):
        getattr(st, kind)(zh if lang == "zh" else en)

norm = norm_from_state(code)
if norm is None:
    st.error(t("planner.bad_norm"))
    norm = (int(norm0["households_min"]), int(norm0["households_max"]))
lo, hi = norm

# ---- the two plans -----------------------------------------------------------------------
work = pl.working_labels(ws, edit)
proposal_key = tuple(work.tolist()) if pl.has_proposal(edit) else None
locked = set(edit["locked"])
cur = derived(str(db), mtime, code, None, lo, hi)
prop = derived(str(db), mtime, code, proposal_key, lo, hi) if proposal_key else cur

ctx = map_context(db, mtime)
tiles_crs = ctx.tiles_crs
cur_disp = display_grids(cur["grids"], tiles_crs, set(), lang)
prop_disp = display_grids(prop["grids"], tiles_crs, locked, lang)
breaks = class_breaks([cur_disp, prop_disp], color_by)
cells_disp = display_cells(str(db), mtime, code, tiles_crs)
cell_key = f"planner_cell_{code}"
if st.session_state.get(cell_key) not in set(ws.cells["cell_id"]):
    st.session_state[cell_key] = None
selected = st.session_state.get(cell_key)
marked = ([selected] if selected is not None else []) + list(
    st.session_state.get(f"planner_sel_{code}") or [])
problems = pl.problem_grids(ws, work, prop["grids"])

left, right = st.columns(2, gap="medium")
with left:
    st.markdown(f"**{t('planner.map.current', plan_id=ws.plan_id)}**")
    m_cur = grid_map(cur_disp, column=color_by, breaks=breaks, lang=lang, tiles=ctx.tiles,
                     attribution=ctx.attribution)
    show_map(m_cur, ctx, key=CUR_KEY, height=MAP_HEIGHT)
    map_downloads(db, mtime, "grids", key="planner_dl", street_code=street, plan_id=ws.plan_id)
with right:
    st.markdown(f"**{t('planner.map.proposal')}**")
    m_edit = grid_map(prop_disp, column=color_by, breaks=breaks, lang=lang, tiles=ctx.tiles,
                      attribution=ctx.attribution, cells=cells_disp, selectable=True)
    show_map(m_edit, ctx, key=EDIT_KEY, height=MAP_HEIGHT,
             returned_objects=["last_object_clicked"],
             feature_group_to_add=selected_layer(cells_disp, marked),
             on_change=functools.partial(cb_map_click, ident, tiles_crs),
             **focus_view(prop_disp, st.session_state.get(f"planner_focus_{code}")))
    if not pl.has_proposal(edit):
        st.caption(t("planner.map.same"))
map_notes(ctx, t("planner.map.click_hint"))

# ---- reassign units, lock grids, next problem, checklist ------------------------------------
edit_panel(ident, ws, work, selected, locked, prop["checks"], problems, lang)

# ---- current vs proposed -----------------------------------------------------------------
st.subheader(t("planner.compare"))
table, moves = comparison(str(db), mtime, code, proposal_key, lo, hi)
row = table.set_index("metric")
q1, q2, q3, q4 = st.columns(4)
has = proposal_key is not None
q1.metric(t("planner.kpi.within"),
          fmt_metric("share_within_norm", row.loc["share_within_norm", "proposed"], lang)
          if has else "—", border=True)
q2.metric(t("planner.kpi.moved"),
          fmt_metric("households_moved", row.loc["households_moved", "proposed"], lang)
          if has else "—", border=True)
q3.metric(t("planner.kpi.moved_buildings"),
          fmt_metric("buildings_moved", row.loc["buildings_moved", "proposed"], lang)
          if has else "—", border=True)
secs = st.session_state.get(f"planner_seconds_{code}")
q4.metric(t("planner.kpi.seconds"), f"{secs:.2f} s" if secs is not None else "—", border=True)
shown = pd.DataFrame({
    t("planner.col.metric"): table["label_zh" if lang == "zh" else "label_en"],
    t("planner.col.current"): [fmt_metric(m, v, lang)
                               for m, v in zip(table["metric"], table["current"])],
    t("planner.col.proposed"): [fmt_metric(m, v, lang) if has else "—"
                                for m, v in zip(table["metric"], table["proposed"])],
})
st.dataframe(shown, hide_index=True, width="stretch", key="planner_compare")
tradeoff(cur["grids"], prop["grids"], has)

with st.expander(t("planner.grid_table")):
    gt = grid_table(prop["grids"], locked | ws.dedicated, lang)
    st.dataframe(gt, hide_index=True, width="stretch", key="planner_grids")
with st.expander(t("planner.moves_table")):
    if moves is None or moves.empty:
        st.caption(t("planner.no_moves"))
    else:
        st.dataframe(pd.DataFrame({
            t("planner.col.building_id"): moves["id"],
            t("planner.col.households"): moves["households"].astype("int64"),
            t("planner.col.from_grid"): moves["from_grid"],
            t("planner.col.to_grid"): moves["to_grid"],
        }), hide_index=True, width="stretch", key="planner_moves")

# ---- save and export ---------------------------------------------------------------------
st.subheader(t("planner.save"))
s1, s2 = st.columns([1.2, 1], gap="large")
with s1:
    st.text_input(t("planner.author"), key="planner_author")
    st.text_input(t("planner.note"), key="planner_note",
                  placeholder=t("planner.note_placeholder"))
    st.button(t("planner.save_button"), key="planner_save", type="primary", on_click=cb_save,
              args=(ident,), disabled=not has, help=t("planner.save_help"))
with s2:
    st.caption(t("planner.export_caption"))
    norms_now = pl.norms_with(ws, lo, hi)
    work_now = work.copy()
    author_now = st.session_state.get("planner_author") or ""
    stamp = f"{code}_{ws.plan_id}"
    st.download_button(
        t("planner.report_button"),
        data=lambda: pl.realignment_report(ws, work_now, norms=norms_now,
                                           author=author_now),
        file_name=f"gridgov_realignment_{stamp}.xlsx", mime=XLSX_MIME, key="planner_report",
        on_click="ignore", disabled=not has)
    st.download_button(
        t("planner.geojson_button"),
        data=lambda: pl.grids_geojson(ws, work_now, norms_now).encode("utf-8"),
        file_name=f"gridgov_grids_{stamp}.geojson", mime="application/geo+json",
        key="planner_geojson", on_click="ignore")

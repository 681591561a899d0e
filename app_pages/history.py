"""Plan history page (方案历史, #10.4): every stored grid plan with its parent, author, note and
figures; any two compared (map of changed grids, households moved, figures side by side); an
older plan restored as a new current one; the realignment workbook of any plan against its
parent (or another plan).

Layout only: reading, comparing, restoring and the workbook are :mod:`pipelines.services.history`; the
restore takes the project's write lock like a planner save.
"""
from __future__ import annotations

import streamlit as st

from app_pages import _history as hi
from app_pages._mapview import map_context, map_notes, show_map
from app_pages._shared import current_db, load_or_stop
from app_pages.i18n import current_lang, t
from pipelines.services import history

db, mtime = current_db()
lang = current_lang()
plans = load_or_stop(hi.load_plans, db, mtime)

st.title(t("history.title"))
if plans is None or plans.empty:
    st.info(t("history.none"))
    st.code(f"gridgov run {db.parent}", language="bash")
    st.stop()
st.markdown(t("history.intro"))
done = st.session_state.pop("history_restored", None)
if done:
    # compare the new current plan with the plan it restored: set before the widgets exist
    # (the browser keeps showing a widget's old choice when its state is only dropped)
    st.session_state.update(history_a=done[1], history_b=done[0], history_report_plan=done[0])
    st.success(t("history.restored", new=done[0], old=done[1]))

# ---- all plans ---------------------------------------------------------------------------
st.subheader(t("history.plans"))
st.dataframe(hi.plan_view(plans, lang), hide_index=True, width="stretch",
             column_config=hi.plan_config(lang), key="history_plans")

ids = plans["plan_id"].astype(str).tolist()  # newest first
current = plans.loc[plans["is_current"], "plan_id"].astype(str).tolist()
current_id = current[0] if current else ids[0]
parent_of = dict(zip(plans["plan_id"].astype(str), plans["parent_plan_id"]))
authors = dict(zip(plans["plan_id"].astype(str), plans["author"]))
sources = dict(zip(plans["plan_id"].astype(str), plans["source"]))
st.caption(t("history.current", plan=current_id))


def plan_label(pid: str) -> str:
    """An option's label: the plan id and its author (fixed for a plan: option labels must
    not change between runs — Streamlit matches the chosen option by its label)."""
    if sources.get(pid) == "current_grids":  # P0000: the city's grids as given
        return f"{pid} · {t('history.today')}"
    who = authors.get(pid)
    return f"{pid} · {who}" if isinstance(who, str) and who else str(pid)


# ---- compare -----------------------------------------------------------------------------
st.subheader(t("history.compare"))
if len(ids) < 2:
    st.caption(t("history.same"))
else:
    parent = parent_of.get(current_id)
    default_a = str(parent) if isinstance(parent, str) and parent in ids else \
        next(p for p in ids if p != current_id)
    c1, c2 = st.columns(2)
    a = c1.selectbox(t("history.plan_a"), ids, index=ids.index(default_a), key="history_a",
                     format_func=plan_label)
    b = c2.selectbox(t("history.plan_b"), ids, index=ids.index(current_id), key="history_b",
                     format_func=plan_label)
    if a == b:
        st.info(t("history.same"))
    else:
        got = load_or_stop(hi.load_comparison, db, mtime, a, b)
        cmp = got["cmp"]
        counts = cmp.grids["change"].value_counts()
        k1, k2, k3 = st.columns(3)
        k1.metric(t("history.kpi.buildings"), f"{cmp.buildings_moved:,}", border=True)
        k2.metric(t("history.kpi.households"), f"{cmp.households_moved:,}", border=True)
        k3.metric(t("history.kpi.grids"), f"{len(cmp.grids):,}", border=True,
                  help=t("history.kpi.grids_help", added=int(counts.get("added", 0)),
                         removed=int(counts.get("removed", 0)),
                         changed=int(counts.get("changed", 0))))
        left, right = st.columns([3, 2], gap="large")
        with left:
            st.markdown(f"**{t('history.map')}**")
            if cmp.grids.empty:
                st.caption(t("history.map_none"))
            ctx = map_context(db, mtime)
            fmap = hi.change_map(got["a"], got["b"], cmp.changed_grid_ids, lang=lang,
                                 tiles=ctx.tiles, attribution=ctx.attribution)
            show_map(fmap, ctx, key="history_map", height=520)
            map_notes(ctx, t("history.map_caption"))
        with right:
            st.markdown(f"**{t('history.figures')}**")
            st.dataframe(hi.figures_view(cmp.figures, a, b, lang), hide_index=True,
                         width="stretch", key="history_figures")
        if not cmp.grids.empty:
            with st.expander(t("history.grids_table")):
                st.dataframe(hi.grids_view(cmp.grids, lang), hide_index=True,
                             width="stretch", key="history_grids")

# ---- restore -----------------------------------------------------------------------------
st.subheader(t("history.restore"))
st.caption(t("history.restore_caption"))
older = [p for p in ids if p != current_id] or ids
with st.form("history_restore_form"):
    pick = st.selectbox(t("history.restore_plan"), older, key="history_restore_plan",
                        format_func=plan_label)
    author = st.text_input(t("history.author"), key="history_author", max_chars=60)
    note = st.text_input(t("history.note"), key="history_note", max_chars=200)
    go = st.form_submit_button(t("history.restore_button"), type="primary")
if go:
    if pick == current_id:
        st.warning(t("history.restore_current"))
    else:
        try:
            new_id = history.restore(db, pick, author=author, note=note)
        except history.HistoryError as exc:
            st.error(exc.text(lang))
        else:
            st.session_state["history_restored"] = (new_id, pick)
            st.rerun()

# ---- realignment workbook ----------------------------------------------------------------
st.subheader(t("history.report"))
st.caption(t("history.report_caption"))
PARENT = "__parent__"
r1, r2 = st.columns(2)
plan = r1.selectbox(t("history.report_plan"), ids, index=ids.index(current_id),
                    key="history_report_plan", format_func=plan_label)
has_parent = isinstance(parent_of.get(plan), str) and parent_of.get(plan) in ids
# the parent first, then today's map (plans stored from current_grids), then the others
others = sorted((p for p in ids if p != plan), key=lambda p: sources.get(p) != "current_grids")
against_opts = ([PARENT] if has_parent else []) + others
against = r2.selectbox(
    t("history.report_against"), against_opts, key=f"history_report_against_{plan}",
    format_func=lambda p: f"{t('history.report_parent')} ({parent_of.get(plan)})"
    if p == PARENT else plan_label(p))
if against is None:
    st.caption(t("history.report_none"))
else:
    other = None if against == PARENT else against
    db_str = str(db)
    st.download_button(
        t("history.report_button"),
        data=lambda: hi.report_bytes(db_str, mtime, plan, other),  # generated on click
        file_name=f"gridgov_realignment_{plan}_vs_{other or parent_of.get(plan)}.xlsx",
        mime=hi.XLSX_MIME, key="history_report", on_click="ignore", type="primary")

"""Layout pieces of the planner page (网格规划) kept out of the page file: the city-wide search
box, the edit panel (one unit, a multi-selection, locks, the checklist) and the
balance-vs-compactness figures. Callbacks live in :mod:`app_pages._planstate`.
"""
from __future__ import annotations

import pandas as pd
import streamlit as st

from app_pages._planstate import (
    bilingual,
    cb_clear_sel,
    cb_goto,
    cb_lock,
    cb_lock_all,
    cb_move,
    cb_move_many,
    cb_next_problem,
    spread,
)
from app_pages._shared import md
from app_pages.i18n import t
from pipelines.services import planner as pl


def search_box(index: pd.DataFrame) -> None:
    """A text box over every street and community of the city → choose → the page switches."""
    a, b, c = st.columns([1.4, 2.2, 0.6], vertical_alignment="bottom")
    text = a.text_input(t("planner.search"), key="planner_search").strip()
    if not text:
        return
    low = text.lower()
    hits: list[str] = []  # "street|community" ("street|" for a street)
    labels: dict = {}
    streets = index.drop_duplicates("street_code")
    for s, name in zip(streets["street_code"], streets["street_name"]):
        if low in str(name).lower() or low in str(s):
            hits.append(f"{s}|")
            labels[f"{s}|"] = f"{name} ({s}) · {t('planner.search_street')}"
    for s, sn, cc, cn in zip(index["street_code"], index["street_name"],
                             index["community_code"], index["community_name"]):
        if low in str(cn).lower() or low in str(cc):
            hits.append(f"{s}|{cc}")
            labels[f"{s}|{cc}"] = f"{cn} ({cc}) · {sn}"
    if not hits:
        a.caption(t("planner.search_none"))
        return
    b.selectbox(t("planner.search_pick"), hits[:200], key="planner_search_pick",
                format_func=lambda h: labels.get(h, h))
    c.button(t("planner.search_go"), key="planner_search_go", on_click=cb_goto,
             width="stretch")


def edit_panel(ident: tuple, ws, work: pd.Series, selected, locked: set, checks: pd.DataFrame,
               problems: list, lang: str) -> None:
    """Reassign one unit or a selection, lock grids, find problems, the checklist."""
    code = ident[2]
    cell_key = f"planner_cell_{code}"
    e1, e2, e3 = st.columns([1.4, 1.0, 1.3], gap="large")
    cell_info = ws.cells.set_index("cell_id")
    cell_ids = list(ws.cells["cell_id"])

    def cell_label(c) -> str:
        if c is None:
            return "—"
        r = cell_info.loc[c]
        first = r["building_ids"][0] if r["building_ids"] else ""
        more = f" +{len(r['building_ids']) - 1}" if len(r["building_ids"]) > 1 else ""
        return f"{c} · {first}{more} · {int(r['households'])} 户 hh"

    with e1:
        st.markdown(f"**{t('planner.edit')}**")
        st.selectbox(t("planner.cell"), [None] + cell_ids, key=cell_key,
                     format_func=cell_label, help=t("planner.cell_help"))
        if selected is not None:
            r = cell_info.loc[selected]
            st.caption(t("planner.cell_info", cell=md(selected), grid=md(work.get(selected)),
                         n=len(r["building_ids"]), households=int(r["households"])))
            near = pl.neighbour_grids(ws, work, selected)
            if near:
                across = {g for g, x in near if x}
                st.selectbox(t("planner.to_grid"), [g for g, _ in near],
                             key=f"planner_to_{code}_{selected}",
                             format_func=lambda g: g + (bilingual("planner.across")
                                                        if g in across else ""))
                st.button(t("planner.move"), key="planner_move", on_click=cb_move,
                          args=(ident,))
            else:
                st.caption(t("planner.no_neighbours"))
        # several units at once: map clicks add to the selection, one move, one undo
        st.toggle(t("planner.multi"), key=f"planner_multi_{code}", help=t("planner.multi_help"))
        sel_key = f"planner_sel_{code}"
        st.session_state[sel_key] = [c for c in st.session_state.get(sel_key) or []
                                     if c in cell_info.index]
        sel = st.multiselect(t("planner.selection"), cell_ids, key=sel_key,
                             format_func=cell_label)
        if sel:
            owners = pd.Series([work.get(c) for c in sel]).value_counts(sort=False)
            st.caption(t("planner.sel_grids", grids=md(", ".join(
                f"{g} ×{n}" for g, n in sorted(owners.items())))))
            near = sorted({g for c in sel for g, x in pl.neighbour_grids(ws, work, c) if not x}
                          | {work.get(c) for c in sel} - {None} - ws.dedicated)
            st.selectbox(t("planner.sel_to_grid"), near, key=f"planner_selto_{code}")
            m1, m2 = st.columns(2)
            m1.button(t("planner.move_many"), key="planner_move_many", on_click=cb_move_many,
                      args=(ident,), width="stretch")
            m2.button(t("planner.clear_sel"), key="planner_clear_sel", on_click=cb_clear_sel,
                      args=(code,), width="stretch")
    with e2:
        st.markdown(f"**{t('planner.lock_grid')}**")
        basic = sorted(g for g in set(work.dropna()) if ws.grid_type.get(g) != "dedicated")
        st.selectbox(t("planner.lock_grid"), basic, key=f"planner_lockpick_{code}",
                     label_visibility="collapsed")
        l1, l2 = st.columns(2)
        l1.button(t("planner.lock"), key="planner_lock", on_click=cb_lock, args=(ident, True),
                  width="stretch")
        l2.button(t("planner.unlock"), key="planner_unlock", on_click=cb_lock,
                  args=(ident, False), width="stretch")
        l3, l4 = st.columns(2)
        l3.button(t("planner.lock_all"), key="planner_lock_all", on_click=cb_lock_all,
                  args=(ident, True), width="stretch")
        l4.button(t("planner.unlock_all"), key="planner_unlock_all", on_click=cb_lock_all,
                  args=(ident, False), width="stretch", disabled=not locked)
        st.caption(t("planner.locked_list", grids=md(", ".join(sorted(locked)))) if locked
                   else t("planner.locked_none"))
        st.button(t("planner.next_problem"), key="planner_next_problem",
                  on_click=cb_next_problem, args=(ident, problems), width="stretch")
    with e3:
        st.markdown(f"**{t('planner.checks')}**")
        for r in checks.itertuples(index=False):
            mark = ":green[**✓**]" if r.ok else ":red[**✗**]"
            name = r.label_zh if lang == "zh" else r.label_en
            detail = r.detail_zh if lang == "zh" else r.detail_en
            st.markdown(f"{mark} **{name}** — {detail}")


def tradeoff(cur_grids, prop_grids, has: bool) -> None:
    """Households spread (max−min), CV and mean compactness, proposal next to current."""
    st.caption(t("planner.tradeoff"))
    a, b = spread(cur_grids), spread(prop_grids) if has else None
    cols = st.columns(3)
    for col, key, label, fmt in ((cols[0], "spread", "planner.spread", "{:,.0f}"),
                                 (cols[1], "cv", "planner.cv", "{:.3f}"),
                                 (cols[2], "compactness", "planner.compactness", "{:.3f}")):
        now = b[key] if b else a[key]
        delta = None
        if b and a[key] is not None and b[key] is not None:
            delta = fmt.format(b[key] - a[key])
        col.metric(t(label), "—" if now is None else fmt.format(now), delta=delta,
                   delta_color="inverse" if key != "compactness" else "normal", border=True)

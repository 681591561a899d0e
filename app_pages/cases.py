"""红黑榜 page (接诉即办, Art. 16, 43–45): red and black lists per scope and month, the full
ranking (units with too few cases greyed, not ranked), a unit's trend over months, a drill-down
street → community → grid → cases, and the meeting brief as a PDF.

Layout only: ``case_rates`` and ``case_outcomes`` come from :mod:`pipelines.results_more`; the
tables and the chart are built in :mod:`app_pages._cases`. Names from the data reach the
screen through ``st.dataframe`` and altair (text, never HTML) or :func:`md` (Markdown).
"""
from __future__ import annotations

import time

import pandas as pd
import streamlit as st

from app_pages import _cases as cs
from app_pages._shared import current_db, load_or_stop, md
from app_pages.i18n import current_lang, t

db, mtime = current_db()
lang = current_lang()
data = load_or_stop(cs.load_rates, db, mtime)
rates = data["rates"]
n_min = data["min_cases"]

st.title(t("cases.title"))
if not data["has_incidents"]:
    st.info(t("cases.no_incidents"))  # an own city without the optional incidents layer
    st.stop()
if rates is None or rates.empty:
    st.info(t("cases.none"))
    st.code(f"gridgov run {db.parent}", language="bash")
    st.stop()
st.markdown(t("cases.intro", min_cases=n_min))

# ---- scope and month ---------------------------------------------------------------------
scopes = cs.scopes_present(rates)
c1, c2 = st.columns(2)
with c1:
    scope = st.selectbox(t("cases.scope"), scopes, index=scopes.index(cs.default_scope(rates)),
                         format_func=lambda s: t(f"scope.{s}"), key="cases_scope")
months = cs.periods(rates, scope)
if st.session_state.get("cases_period") not in months:  # a new scope: its newest full list
    st.session_state["cases_period"] = cs.default_period(rates, scope)
with c2:
    period = st.selectbox(t("cases.period"), months, key="cases_period",
                          format_func=lambda p: t("cases.period_all") if p == "all" else p)

# ---- red and black lists -----------------------------------------------------------------
part = cs.rows(rates, scope, period)
left, right = st.columns(2, gap="large")
for col, which, color in ((left, "red", "red"), (right, "black", "gray")):
    with col:
        st.subheader(f":{color}[{t(f'cases.{which}')}]", help=t(f"cases.{which}_help"))
        listed = cs.board(rates, scope, period, which)
        if listed.empty:
            st.caption(t("cases.board_none"))
            continue
        view = cs.table(listed, lang, n_min, note=False, columns=cs.LIST_COLUMNS)
        st.dataframe(cs.styled(view, listed["small_n"], lang), hide_index=True,
                     width="stretch", key=f"cases_{which}", column_config=cs.list_config(lang))

# ---- full ranking ------------------------------------------------------------------------
st.subheader(t("cases.ranking"))
st.caption(t("cases.ranking_caption", min_cases=n_min, step=round(100 / max(n_min - 1, 1), 1)))
st.dataframe(cs.styled(cs.table(part, lang, n_min), part["small_n"], lang), hide_index=True,
             width="stretch", key="cases_ranking")

# ---- trend -------------------------------------------------------------------------------
st.subheader(t("cases.trend"))
# this month's ranking first, then the scope's other units (the choice survives a month change)
units = pd.concat([part, cs.rows(rates, scope, "all")]).drop_duplicates("scope_id")
labels = {r["scope_id"]: cs.unit_label(r) for _, r in units.iterrows()}
options = list(labels)
if options:
    unit = st.selectbox(t("cases.trend_unit"), options, key=f"cases_unit_{scope}",
                        format_func=lambda s: labels.get(s, s))
    long = cs.trend_frame(rates, scope, unit, lang)
    if long.empty:
        st.caption(t("cases.trend_none"))
    else:
        st.altair_chart(cs.trend_chart(long, lang), width="stretch")
        st.caption(t("cases.trend_caption", min_cases=n_min))

# ---- drill-down street → community → grid → cases ----------------------------------------
st.subheader(t("cases.drill"))
tree = data["tree"]
PICK = ""


def _name(code, names: dict) -> str:
    name = names.get(code)
    return f"{name} ({code})" if isinstance(name, str) and name else str(code)


def _level_rows(level: str, ids: list) -> None:
    sub = cs.rows(rates, level, period)
    sub = sub[sub["scope_id"].isin(ids)]
    if sub.empty:
        st.caption(t("cases.drill_empty"))
        return
    st.dataframe(cs.styled(cs.table(sub, lang, n_min), sub["small_n"], lang),
                 hide_index=True, width="stretch", key=f"cases_drill_{level}")


if tree.empty:
    st.caption(t("cases.drill_empty"))
else:
    snames = dict(zip(tree["street_code"], tree["street_name"]))
    cnames = dict(zip(tree["community_code"], tree["community_name"]))
    d1, d2, d3 = st.columns(3)
    streets = [PICK, *sorted(tree["street_code"].dropna().unique())]
    with d1:
        street = st.selectbox(t("cases.drill_street"), streets, key="cases_drill_street",
                              index=1 if len(streets) == 2 else 0,
                              format_func=lambda c: t("cases.drill_pick") if c == PICK
                              else _name(c, snames))
    if street != PICK:
        comms = sorted(tree.loc[tree["street_code"] == street, "community_code"].dropna()
                       .unique())
        st.markdown(t("cases.drill_communities", name=md(snames.get(street) or street)))
        _level_rows("community", comms)
        with d2:
            community = st.selectbox(
                t("cases.drill_community"), [PICK, *comms], key="cases_drill_community",
                format_func=lambda c: t("cases.drill_pick") if c == PICK else _name(c, cnames))
        if community in comms:
            grids = sorted(tree.loc[tree["community_code"] == community, "grid_id"].dropna()
                           .unique())
            st.markdown(t("cases.drill_grids", name=md(cnames.get(community) or community)))
            _level_rows("grid", grids)
            with d3:
                grid = st.selectbox(
                    t("cases.drill_grid"), [PICK, *grids], key="cases_drill_grid",
                    format_func=lambda c: t("cases.drill_pick") if c == PICK else str(c))
            if grid in grids:
                cases = load_or_stop(cs.load_cases, db, mtime, grid,
                                     None if period == "all" else period)
                st.markdown(t("cases.drill_cases", grid=md(grid), n=len(cases)))
                if len(cases) > cs.MAX_CASES:
                    st.caption(t("cases.drill_capped", shown=cs.MAX_CASES, n=len(cases)))
                st.dataframe(cs.case_table(cases.head(cs.MAX_CASES), lang), hide_index=True,
                             width="stretch", key="cases_drill_cases")

# ---- the brief ---------------------------------------------------------------------------
st.subheader(t("cases.brief"))
st.caption(t("cases.brief_caption"))
stamp = time.strftime("%Y%m%d", time.localtime(mtime)) if mtime else "brief"
project_dir = str(db.parent)
st.download_button(
    t("cases.brief_button"),
    data=lambda: cs.brief_bytes(project_dir, mtime),  # generated on click
    file_name=f"gridgov_brief_{stamp}.pdf", mime="application/pdf",
    key="cases_brief", on_click="ignore", type="primary",
)

"""Case timeliness page (案件办理时效): on-time response and closure, median hours and repeat
complaints by street, grid worker and analysis unit (Art. 24).

Layout only: the tables come from :func:`pipelines.results.hotspot_tables`.
"""
from __future__ import annotations

import pandas as pd
import streamlit as st

from app_pages._hotspots import hours_config, page_start, pct_config, unit_communities
from app_pages.i18n import t

db, mtime, lang, data = page_start("hs.time_title")

# ---- case timeliness ---------------------------------------------------------------------
st.subheader(t("hs.time"))
tl: pd.DataFrame | None = data.get("timeliness")
if tl is None or tl.empty:
    st.info(t("hs.time_none"))
else:
    st.caption(t("hs.time_caption"))
    streets_tl = tl[tl["scope"] == "street"]
    due_col = "due_cases" if "due_cases" in tl.columns else "cases"
    due = pd.to_numeric(streets_tl[due_col], errors="coerce").fillna(0)
    rate = pd.to_numeric(streets_tl["on_time_rate"], errors="coerce")
    rep = pd.to_numeric(streets_tl["repeat_rate"], errors="coerce")
    cases = pd.to_numeric(streets_tl["cases"], errors="coerce").fillna(0)
    m1, m2, m3 = st.columns(3)
    m1.metric(t("hs.time.kpi_cases"), f"{int(cases.sum()):,}", border=True)
    ok = rate.notna() & (due > 0)
    m2.metric(t("hs.time.kpi_on_time"),
              f"{(rate[ok] * due[ok]).sum() / due[ok].sum():.1%}" if ok.any() else "—",
              border=True)
    okr = rep.notna() & (cases > 0)
    m3.metric(t("hs.time.kpi_repeat"),
              f"{(rep[okr] * cases[okr]).sum() / cases[okr].sum():.1%}" if okr.any() else "—",
              border=True)

    metric_cols = ["cases", "due_cases", "on_time_rate", "respond_on_time_rate",
                   "close_on_time_rate", "median_hours_to_respond", "median_hours_to_close",
                   "repeat_rate"]
    comm = unit_communities(data)

    def scope_view(scope: str) -> pd.DataFrame:
        part = tl[tl["scope"] == scope].sort_values("scope_id")
        if scope == "street":
            front = {"street_name": part["scope_id"].map(data["street_names"]),
                     "scope_id": part["scope_id"]}
        elif scope == "staff":
            front = {"staff_id": part["scope_id"],
                     "street_name": part["scope_id"].map(data["staff_street"]).map(
                         data["street_names"])}
        else:
            front = {"grid_id": part["scope_id"],
                     "community_name": part["scope_id"].map(comm) if comm else None}
        view = pd.DataFrame(front, index=part.index)
        for c in metric_cols:
            if c in part.columns:
                view[c] = part[c]
        view = view.dropna(axis=1, how="all")
        return view.rename(columns={c: t(f"hs.col.{c}") for c in view.columns})

    heads_pct = [t(f"hs.col.{c}") for c in ("on_time_rate", "respond_on_time_rate",
                                             "close_on_time_rate", "repeat_rate")]
    heads_h = [t(f"hs.col.{c}") for c in ("median_hours_to_respond", "median_hours_to_close")]
    tcfg = {**pct_config(*heads_pct), **hours_config(*heads_h)}
    tabs = st.tabs([t("hs.time.street"), t("hs.time.staff"), t("hs.time.grid")])
    for tab, scope in zip(tabs, ("street", "staff", "grid")):
        with tab:
            st.dataframe(scope_view(scope), hide_index=True, width="stretch",
                         key=f"hs_time_{scope}", column_config=tcfg)
    st.caption(t("hs.time_caveat"))

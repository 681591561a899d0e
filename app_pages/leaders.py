"""Leaders' page (人员配置): street headcount, the gap map, equity, what-ifs, performance, report.

Layout only: the staffing stage's tables come from :func:`pipelines.results.staffing_tables`;
the map, tables, charts and the what-if section are built in :mod:`app_pages._staffing`. The
Excel report is :func:`pipelines.stage_staffing.export_report`, generated only on click.
"""
from __future__ import annotations

import math
import time

import numpy as np
import pandas as pd
import streamlit as st

from app_pages._forecast_workload import forecast_workload_section
from app_pages._mapview import map_context, map_downloads, map_notes, show_map
from app_pages._shared import current_db, load_or_stop, md
from app_pages._staffing import (
    EXTREMES_N,
    MAP_HEIGHT,
    MAP_KEY,
    XLSX_MIME,
    WhatIf,
    bilingual,
    community_view,
    equity_chart,
    equity_value,
    explanation,
    fmt_num,
    gap_map,
    gini_chart,
    headcount,
    load_base_allocation,
    load_gap_geometries,
    load_staffing_tables,
    number_config,
    performance_view,
    report_bytes,
    street_view,
    whatif_section,
)
from app_pages.i18n import current_lang, label, t
from geo import staffing as model

db, mtime = current_db()
lang = current_lang()
data = load_or_stop(load_staffing_tables, db, mtime)

st.title(t("leaders.title"))
streets: pd.DataFrame | None = data["street_allocation"]
if streets is None or streets.empty:
    st.info(t("leaders.no_tables"))
    st.code(f"gridgov run {db.parent}", language="bash")
    st.stop()

settings: dict = data["settings"] or {}
summary: dict = (data["summary"] or {}).get("stages", {}).get("staffing", {}) \
    if isinstance(data["summary"], dict) else {}
staffing_cfg = model.deep_merge(model.DEFAULTS, settings.get("staffing"))
base = load_or_stop(load_base_allocation, db, mtime)
method = base.params["method"]
st.markdown(t("leaders.intro", method=t(f"leaders.method.{method}")))

names = dict(zip(streets["street_code"], streets["street_name"]))
equity: pd.DataFrame | None = data["allocation_equity"]
communities: pd.DataFrame | None = data["community_allocation"]

# ---- headline figures --------------------------------------------------------------------
budget = int(streets["recommended_staff"].sum())
minimum = base.params["minimum"]
expl = data.get("staffing_explanation")
row = expl.iloc[0] if expl is not None and not expl.empty else {}
people = row.get("required_people") if hasattr(row, "get") else None
people = int(people) if people is not None and pd.notna(people) else int(
    headcount(streets).sum())  # whole people, never the FTE float
fte = float(streets["required_staff"].sum())
k1, k2, k3, k4, k5 = st.columns(5)
k1.metric(t("leaders.kpi.budget"), t("leaders.people", n=f"{budget:,}"), border=True,
          help=t("leaders.kpi.budget_help", minimum=minimum,
                 source=label("leaders.source", summary.get("budget_source") or "—")))
k2.metric(t("leaders.kpi.current"), t("leaders.people", n=f"{int(streets['current_staff'].sum()):,}"),
          border=True)
k3.metric(t("leaders.kpi.required"), t("leaders.people", n=f"{people:,}"), border=True,
          help=t("leaders.kpi.required_help", capacity=model.monthly_capacity(staffing_cfg),
                 hours=fmt_num(streets["workload"].sum()), fte=fmt_num(fte, 1)))
k4.metric(t("leaders.kpi.under"), f"{int((streets['gap'] > 0).sum())} / {len(streets)}",
          border=True)
k5.metric(t("leaders.kpi.over"), f"{int((streets['gap'] < 0).sum())} / {len(streets)}",
          border=True)
sentence = explanation(expl, len(streets), lang)
if sentence:
    st.info(md(sentence))

rebuilt = base.recommended.reindex(streets["street_code"]).to_numpy()
if not np.array_equal(rebuilt, streets["recommended_staff"].to_numpy()):
    st.caption(t("leaders.stale"))

# ---- map and the streets to look at first -------------------------------------------------
ctx = map_context(db, mtime)
left, right = st.columns([3, 2], gap="large")
with left:
    st.subheader(t("leaders.map"))
    geoms = load_gap_geometries(str(db), mtime, ctx.tiles_crs)
    levels = ["streets"]
    if communities is not None and not communities.empty and "communities" in geoms:
        levels.append("communities")
    # One street alone says little on a map: show its communities first.
    first = levels.index("communities") if len(streets) < 2 and len(levels) > 1 else 0
    level = st.radio(t("leaders.map_level"), levels, index=first, horizontal=True,
                     key="leaders_level",
                     format_func=lambda v: bilingual(f"leaders.layer.{v}"),
                     label_visibility="collapsed")
    if "streets" not in geoms or geoms["streets"].empty:
        st.info(t("leaders.map_none"))
    else:
        common = {"lang": lang, "tiles": ctx.tiles, "attribution": ctx.attribution}
        if level == "communities":
            cvals = communities.copy()
            cvals["community_name"] = cvals["community_name"].fillna(
                cvals["community_code"].map(data["community_names"]))
            fmap = gap_map(geoms["communities"], cvals, code="community_code",
                           name="community_name", level_key="leaders.layer.communities",
                           outline=geoms["streets"], **common)
        else:
            fmap = gap_map(geoms["streets"], streets, code="street_code", name="street_name",
                           level_key="leaders.layer.streets", outline=None, **common)
        show_map(fmap, ctx, key=MAP_KEY, height=MAP_HEIGHT)
        map_downloads(db, mtime, "staffing", key="leaders_dl",
                      level="community" if level == "communities" else "street")
        map_notes(ctx, t("leaders.map_caption"))

with right:
    st.subheader(t("leaders.extremes"))
    ext = model.extremes(streets, id_col="street_code", n=EXTREMES_N)
    by_code = streets.set_index("street_code")
    for key, codes, none_key, color in (
        ("leaders.most_under", ext["under"], "leaders.none_under", "red"),
        ("leaders.most_over", ext["over"], "leaders.none_over", "blue"),
    ):
        box = st.container(border=True)
        box.markdown(f"**:{color}[{t(key)}]**")
        if not codes:
            box.caption(t(none_key))
            continue
        lines = []
        for i, c in enumerate(codes, 1):
            r = by_code.loc[c]
            lines.append(f"{i}. " + t(
                "leaders.extreme_line", name=md(r["street_name"]), gap=int(r["gap"]),
                current=int(r["current_staff"]), recommended=int(r["recommended_staff"]),
                hours=fmt_num(r["hours_per_current_staff"])))
        box.markdown("  \n".join(lines))

# ---- street table ------------------------------------------------------------------------
st.subheader(t("leaders.table"))
st.caption(t("leaders.table_caption"))
st.dataframe(street_view(streets, lang), hide_index=True, width="stretch",
             column_config=number_config(lang), key="leaders_streets")
if communities is not None and not communities.empty:
    with st.expander(t("leaders.communities_table")):
        cview = community_view(communities, names, lang)
        st.dataframe(cview, hide_index=True, width="stretch", column_config=number_config(lang))

# ---- equity ------------------------------------------------------------------------------
st.subheader(t("leaders.equity"))
st.caption(t("leaders.equity_caption"))
# Equity across one street is trivial: with a single street, compare its communities instead.
eq_level, eq_frame, eq_name = "street", streets, "street_name"
if len(streets) < 2 and communities is not None and len(communities) > 1:
    eq_level, eq_name = "community", "community_name"
    eq_frame = communities.assign(community_name=communities["community_name"].fillna(
        communities["community_code"]))
    st.info(t("leaders.equity_communities"))
e1, e2, e3 = st.columns(3)
for col, metric, key in ((e1, "gini_staff_per_workload", "leaders.gini_workload"),
                         (e2, "gini_staff_per_resident", "leaders.gini_resident"),
                         (e3, "max_min_hours_per_staff", "leaders.maxmin")):
    cur = equity_value(equity, metric, "current", eq_level)
    rec = equity_value(equity, metric, "recommended", eq_level)
    delta = None if not (math.isfinite(cur) and math.isfinite(rec)) else round(rec - cur, 3)
    col.metric(t(key), fmt_num(rec, 3 if metric.startswith("gini") else 2), delta=delta or None,
               delta_color="inverse", border=True,
               help=t("leaders.gini_help", current=fmt_num(cur, 3), recommended=fmt_num(rec, 3)))
tabs = st.tabs([t("leaders.metric.per_1k_hours"), t("leaders.metric.per_10k"),
                t("leaders.metric.per_km2"), t("leaders.gini_chart_title")])
district_today = {
    "per_1k_hours": equity_value(equity, "staff_per_1k_hours", "current", eq_level),
    "per_10k_residents": equity_value(equity, "staff_per_10k_residents", "current", eq_level),
    "per_km2": (eq_frame["current_staff"].sum() / eq_frame["area_km2"].sum()
                if eq_frame["area_km2"].sum() > 0 else None),
}
for tab, metric, key in zip(tabs, ("per_1k_hours", "per_10k_residents", "per_km2"),
                            ("leaders.metric.per_1k_hours", "leaders.metric.per_10k",
                             "leaders.metric.per_km2")):
    with tab:
        st.altair_chart(equity_chart(eq_frame, metric, t(key), lang, district_today[metric],
                                     name=eq_name), width="stretch")
with tabs[3]:
    if equity is not None:
        st.altair_chart(gini_chart(equity[equity["level"] == eq_level], lang), width="stretch")


# ---- what-if -----------------------------------------------------------------------------
whatif_section(WhatIf(db=str(db), mtime=mtime, base=base, streets=streets, equity=equity,
                      names=names, method=method, minimum=minimum, budget=budget, lang=lang))


# ---- worker performance ------------------------------------------------------------------
st.subheader(t("leaders.perf"))
perf: pd.DataFrame | None = data["worker_performance"]
if perf is None or perf.empty:
    st.info(t("leaders.perf_none"))
else:
    small_n = int(staffing_cfg["performance"]["small_n"])
    flagged = perf["small_n"].fillna(False).astype(bool)
    st.warning(t("leaders.perf_caveat", small_n=small_n, k=int(flagged.sum()), n=len(perf)))
    options = [None] + sorted(c for c in perf["street_code"].dropna().unique())
    pick = st.selectbox(
        t("leaders.perf_filter"), options, key="perf_street",
        format_func=lambda c: t("leaders.perf_all") if c is None else f"{names.get(c, c)} ({c})")
    view = perf if pick is None else perf[perf["street_code"] == pick]
    view = view.sort_values("staff_id")
    shown = performance_view(view, names, data["community_names"], lang)
    heads = {c: t(f"leaders.col.{c}") for c in shown.columns}
    c = st.column_config
    st.dataframe(
        shown.rename(columns=heads), hide_index=True, width="stretch", key="leaders_perf",
        column_config={
            heads["on_time_rate"]: c.NumberColumn(format="percent"),
            heads["repeat_rate"]: c.NumberColumn(format="percent"),
            heads["median_hours_to_close"]: c.NumberColumn(format="%.1f"),
            heads["workload_carried"]: c.NumberColumn(format="%.0f"),
            heads["small_n"]: c.CheckboxColumn(),
        },
    )
    st.caption(t("leaders.perf_sorted"))

# ---- next month's forecast as hours (#11.5; nothing when the run wrote no forecast) -------
forecast_workload_section(db, mtime, lang)

# ---- Excel report ------------------------------------------------------------------------
st.subheader(t("leaders.report"))
st.caption(t("leaders.report_caption"))
stamp = time.strftime("%Y%m%d", time.localtime(mtime)) if mtime else "report"
db_str = str(db)
st.download_button(
    t("leaders.report_button"),
    data=lambda: report_bytes(db_str, mtime),  # generated on click, on its own thread
    file_name=f"gridgov_staffing_report_{stamp}.xlsx",
    mime=XLSX_MIME, key="leaders_report", on_click="ignore", type="primary",
)

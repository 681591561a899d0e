"""Risk index and forecast page (风险指数与预测): the grid risk index with its components, the
next month's forecast and the honest backtest of the forecast against simple baselines.

Layout only: the tables come from :func:`pipelines.results.hotspot_tables`.
"""
from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd
import streamlit as st

from app_pages._hotspots import (
    CHART_TOP,
    COMPONENT_COLORS,
    METHOD_ORDER,
    TOP_FORECAST,
    backtest_table,
    component_label,
    fmt_share,
    method_label,
    page_start,
    pct_config,
    recommendation_lines,
    unit_communities,
)
from app_pages.i18n import t

db, mtime, lang, data = page_start("hs.risk_title")
comm = unit_communities(data)

# ---- risk index --------------------------------------------------------------------------
st.subheader(t("hs.risk"))
risk: pd.DataFrame | None = data.get("risk")
if risk is None or risk.empty:
    st.info(t("hs.risk_none"))
else:
    st.caption(t("hs.risk_caption"))
    weights: dict = data.get("risk_weights") or {}
    comps = [c[:-8] for c in risk.columns if c.endswith("__points")]
    top_n = st.slider(t("hs.risk_n"), 5, max(5, min(100, len(risk))),
                      min(15, max(5, len(risk))), step=5, key="hs_risk_n") \
        if len(risk) > 5 else len(risk)
    top = risk.sort_values(["risk_score", "grid_id"], ascending=[False, True]).head(
        top_n).reset_index(drop=True)
    view = pd.DataFrame({t("hs.col.rank"): np.arange(1, len(top) + 1),
                         t("hs.col.grid_id"): top["grid_id"]})
    if comm:
        view[t("hs.col.community_name")] = top["grid_id"].map(comm)
    view[t("hs.col.risk_score")] = top["risk_score"]
    cfg = {t("hs.col.risk_score"): st.column_config.NumberColumn(format="%.1f")}
    for c in comps:
        name = component_label(c)
        head = t("hs.comp.points", name=name)
        view[head] = top[f"{c}__points"]
        cfg[head] = st.column_config.NumberColumn(
            format="%.1f", help=t("hs.comp.weight", weight=weights.get(c, 0.0)))
    for c in comps:
        head = t("hs.comp.raw", name=component_label(c))
        view[head] = top[f"{c}__raw"]
        cfg[head] = st.column_config.NumberColumn(format="%.1f")
    st.dataframe(view, hide_index=True, width="stretch", key="hs_risk", column_config=cfg)

    chart_top = top.head(CHART_TOP)
    long = pd.concat([
        pd.DataFrame({"unit": chart_top["grid_id"].astype(str),
                      "component": component_label(c),
                      "points": chart_top[f"{c}__points"].astype(float).round(2)})
        for c in comps], ignore_index=True)
    names = [component_label(c) for c in comps]
    chart = alt.Chart(long).mark_bar().encode(
        y=alt.Y("unit:N", sort=chart_top["grid_id"].astype(str).tolist(), title=None),
        x=alt.X("sum(points):Q", title=t("hs.risk_chart", n=len(chart_top))),
        color=alt.Color("component:N", scale=alt.Scale(
            domain=names, range=COMPONENT_COLORS[:len(names)]),
            legend=alt.Legend(title=None, orient="top")),
        tooltip=[alt.Tooltip("unit:N", title=t("hs.col.grid_id")),
                 alt.Tooltip("component:N", title=" "),
                 alt.Tooltip("points:Q", format=".1f")],
    ).properties(height=60 + 22 * len(chart_top))
    st.altair_chart(chart, width="stretch")

# ---- forecast ----------------------------------------------------------------------------
st.subheader(t("hs.forecast"))
forecast: pd.DataFrame | None = data.get("forecast")
backtest: pd.DataFrame | None = data.get("backtest")
if forecast is None or forecast.empty:
    st.info(t("hs.forecast_none"))
else:
    fm = forecast[forecast["method"] == "model"]
    if fm.empty:
        fm = forecast[forecast["method"] == forecast["method"].iloc[0]]
    next_period = str(fm["period"].iloc[0])
    st.caption(t("hs.forecast_caption", period=next_period))
    last_period = data["periods"][-1] if data["periods"] else None
    counts = data.get("counts")
    last_counts: dict = {}
    mean_counts: dict = {}
    if counts is not None:
        a = counts[counts["category"] == "all"]
        if last_period:
            lc = a[a["period"] == last_period]
            last_counts = dict(zip(lc["grid_id"], lc["incidents"]))
        tot = a[a["period"] == "all"]
        n_months = max(len(data["periods"]), 1)
        mean_counts = {g: v / n_months for g, v in zip(tot["grid_id"], tot["incidents"])}
    topf = fm.sort_values("rank").head(TOP_FORECAST)
    fview = pd.DataFrame({t("hs.col.rank"): topf["rank"].astype("int64"),
                          t("hs.col.grid_id"): topf["grid_id"]})
    if comm:
        fview[t("hs.col.community_name")] = topf["grid_id"].map(comm)
    fview[t("hs.col.predicted")] = topf["predicted"].astype(float)
    last_head = t("hs.col.last_month", period=last_period or "—")
    fview[last_head] = topf["grid_id"].map(last_counts).fillna(0).astype("int64")
    fview[t("hs.col.monthly_mean")] = topf["grid_id"].map(mean_counts).astype(float)
    st.dataframe(fview, hide_index=True, width="stretch", key="hs_forecast", column_config={
        t("hs.col.predicted"): st.column_config.NumberColumn(format="%.1f"),
        t("hs.col.monthly_mean"): st.column_config.NumberColumn(format="%.1f")})

st.subheader(t("hs.backtest"))
if backtest is None or backtest.empty:
    st.info(t("hs.forecast_none"))
else:
    months = sorted(p for p in backtest["target_period"].unique() if p != "mean")
    st.caption(t("hs.backtest_caption", n=len(months)))
    mean = backtest[backtest["target_period"] == "mean"]
    if mean.empty:
        mean = backtest.groupby(["method", "area_share"], as_index=False)[
            ["hit_rate", "pai", "mae"]].mean()
    shares = sorted(mean["area_share"].unique())
    methods = sorted(mean["method"].unique(),
                     key=lambda m: METHOD_ORDER.index(m) if m in METHOD_ORDER else 99)
    pai = mean.pivot_table(index="method", columns="area_share", values="pai")
    hit = mean.pivot_table(index="method", columns="area_share", values="hit_rate")
    mae = mean.groupby("method")["mae"].mean()
    table = pd.DataFrame({t("hs.col.method"): [method_label(m) for m in methods]})
    bcfg: dict = {}
    for s in shares:
        head = t("hs.col.pai", share=fmt_share(s))
        table[head] = [pai.loc[m, s] for m in methods]
        bcfg[head] = st.column_config.NumberColumn(format="%.2f")
    for s in shares:
        head = t("hs.col.hit", share=fmt_share(s))
        table[head] = [hit.loc[m, s] for m in methods]
        bcfg[head] = st.column_config.NumberColumn(format="percent")
    table[t("hs.col.mae")] = [mae.get(m) for m in methods]
    bcfg[t("hs.col.mae")] = st.column_config.NumberColumn(format="%.2f")

    # the honest verdict at 10 % of the area: the stage's text (forecast_recommendation)
    recommendation = recommendation_lines(data.get("recommendation"), lang)
    for ok, line in recommendation:
        (st.success if ok else st.warning)(line)
    s10 = min(shares, key=lambda s: abs(s - 0.10))
    col10 = pai[s10].dropna()
    if "model" in col10.index and len(col10) > 1:
        base = col10.drop("model")
        best = str(base.idxmax())
        m_pai, b_pai = float(col10["model"]), float(base.max())
        diff = f"{abs(m_pai / b_pai - 1):.1%}" if b_pai > 0 else "—"
        args = {"model": f"{m_pai:.2f}", "base": f"{b_pai:.2f}", "best": method_label(best),
                "diff": diff}
        if not recommendation:  # older runs: the page's own comparison
            if round(m_pai, 3) == round(b_pai, 3):
                st.info(t("hs.verdict_tie", **args))
            elif m_pai > b_pai:
                st.success(t("hs.verdict_model", **args))
            else:
                st.warning(t("hs.verdict_baseline", **args))
        winner = "model" if m_pai >= b_pai else best
        table.insert(0, " ", ["★" if m == winner else "" for m in methods])
    st.dataframe(table, hide_index=True, width="stretch", key="hs_backtest", column_config=bcfg)
    cells = data.get("backtest_cells")
    if cells is not None and not cells.empty:
        st.markdown(f"**{t('hs.backtest_cells')}**")
        st.caption(t("hs.backtest_cells_caption"))
        st.dataframe(backtest_table(cells, lang), hide_index=True, width="stretch",
                     key="hs_backtest_cells", column_config=pct_config(t("hs.col.hit_rate")))
    if months:
        with st.expander(t("hs.backtest_months")):
            per = backtest[backtest["target_period"] != "mean"].sort_values(
                ["target_period", "area_share", "pai"], ascending=[True, True, False])
            per_view = pd.DataFrame({
                t("hs.col.target_period"): per["target_period"],
                t("hs.col.method"): [method_label(m) for m in per["method"]],
                t("hs.col.area_share"): per["area_share"],
                "PAI": per["pai"],
                t("hs.col.hit_rate"): per["hit_rate"],
                t("hs.col.events"): per["events"],
                t("hs.col.mae"): per["mae"],
            })
            st.dataframe(per_view, hide_index=True, width="stretch", key="hs_backtest_months",
                         column_config={
                             t("hs.col.area_share"): st.column_config.NumberColumn(
                                 format="percent"),
                             "PAI": st.column_config.NumberColumn(format="%.2f"),
                             t("hs.col.hit_rate"): st.column_config.NumberColumn(
                                 format="percent"),
                             t("hs.col.events"): st.column_config.NumberColumn(format="%d"),
                             t("hs.col.mae"): st.column_config.NumberColumn(format="%.2f")})


"""Risk hotspot page (风险热点): hot grids (more incidents than their households lead one to
expect; excess test with FDR) and emerging trends on a map, by incident category and month —
'any' (hot in any category) by default — with Gi* on an equal-area fishnet ("where incidents
concentrate") as an optional layer, the kernel density surface, and the verdicts of
communities and streets (Art. 16 and Art. 24).

Layout only: the tables come from :func:`pipelines.results.hotspot_tables`, the map from
:func:`app_pages._hotspots.hotspot_base_map` (the same on every rerun) and its styles, legend
and layers from :func:`app_pages._hotspots.hotspot_channels` (sent apart: a change of category,
month, colouring or layer sends no geometry). The risk index and forecast are on
``hotspot_risk.py``, case timeliness on ``case_timeliness.py``.
"""
from __future__ import annotations

import pandas as pd
import streamlit as st

from app_pages._hotspots import (
    AREA_ROWS,
    MAP_HEIGHT,
    MAP_KEY,
    MAP_MAX_UNITS,
    MAP_NAME,
    TOP_HOT,
    area_view,
    category_label,
    category_periods,
    class_counts,
    class_label,
    clip_cells,
    hotspot_base_map,
    hotspot_channels,
    load_density,
    load_fishnet,
    load_street_shapes,
    load_unit_shapes,
    load_unit_streets,
    page_start,
    pct_config,
    period_label,
    selection,
    street_subset,
    trend_counts,
    trend_label,
    unit_communities,
)
from app_pages._mapview import map_context, map_downloads, map_notes, send_layer, show_map
from app_pages._shared import half
from app_pages.i18n import t
from pipelines.results import map_limits

db, mtime, lang, data = page_start("hs.title")
summary: dict = data.get("summary") or {}
hot = data["hotspots"]
st.markdown(t("hs.intro"))
st.markdown(t("hs.question.excess") + "  \n" + t("hs.question.fishnet"))
units_n = int(hot.loc[(hot["category"] == "all") & (hot["period"] == "all"), "grid_id"].nunique())
if summary:
    st.caption(t(
        "hs.units_source", units=f"{summary.get('units', units_n):,}",
        source=t(f"hs.source.{summary.get('unit_source', 'grids')}"),
        weights=summary.get("weights", "—"), first=summary.get("first_period", "—"),
        last=summary.get("last_period", "—"), months=summary.get("months", "—")))
for w in summary.get("warnings") or []:
    st.caption(t("hs.warning", text=half(w, lang)))

# ---- filters -----------------------------------------------------------------------------
categories: list[str] = data["categories"]
periods: list[str] = ["all"] + list(data["periods"])
for key, options in (("hs_category", categories), ("hs_period", periods)):
    if st.session_state.get(key) not in options:  # another project or run: start over
        st.session_state.pop(key, None)
f1, f2 = st.columns([1, 3], gap="large")
category = f1.selectbox(t("hs.category"), categories, key="hs_category",
                        format_func=category_label)
if category_periods(data, category) == ["all"]:  # e.g. 'any': hot in any category
    period = "all"
    f2.caption(t("hs.period_whole"))
else:
    period = f2.select_slider(t("hs.period"), periods, key="hs_period",
                              format_func=period_label, help=t("hs.period_help"))
g1, g2, g3 = st.columns(3)
trend_mode = g1.toggle(t("hs.trend_toggle"), key="hs_trend", help=t("hs.trend_toggle_help"))
show_kde = g2.toggle(t("hs.kde_toggle"), key="hs_kde", help=t("hs.kde_toggle_help"),
                     disabled=not data["has"].get("hotspot_density"))
show_net = g3.toggle(t("hs.fishnet_toggle"), key="hs_fishnet", help=t("hs.fishnet_toggle_help"),
                     disabled=not data["has"].get("hotspot_fishnet"))

sel = selection(data, category, period)
n_hot = int(sel["hotspot_class"].str.startswith("hot").sum())
n_cold = int(sel["hotspot_class"].str.startswith("cold").sum())
incidents_sel = int(sel["incidents"].sum()) if sel["incidents"].notna().all() else None
has_trend = sel["trend_class"].notna().any()

k1, k2, k3, k4, k5 = st.columns(5)
k1.metric(t("hs.kpi.units"), f"{len(sel):,}", border=True)
k2.metric(t("hs.kpi.incidents"), "—" if incidents_sel is None else f"{incidents_sel:,}",
          border=True)
k3.metric(t("hs.kpi.hot"), f"{n_hot:,}", border=True, help=t("hs.kpi.hot_help"))
k4.metric(t("hs.kpi.cold"), f"{n_cold:,}", border=True)
n_trend = int((sel["trend_class"].notna() & (sel["trend_class"] != "none")).sum())
k5.metric(t("hs.kpi.trend"), f"{n_trend:,}" if has_trend else "—", border=True)

# ---- map ---------------------------------------------------------------------------------
ctx = map_context(db, mtime)
mode = "trend" if trend_mode else "class"
street: str | None = None  # the street chosen under the map (level of detail)
unit_street: dict[str, str] = {}
left, right = st.columns([3, 2], gap="large")
with left:
    st.subheader(t("hs.map"))
    if trend_mode and not has_trend:
        st.info(t("hs.no_trend"))
    shapes = load_unit_shapes(str(db), mtime, ctx.tiles_crs) \
        if data["has"]["hotspot_units"] else None
    if not shapes or not shapes["ids"]:
        st.info(t("hs.map_none"))
    else:
        # level of detail (#13.4): every unit when they fit one view, else streets coloured by
        # their units first; a chosen street shows its own units
        streets = load_street_shapes(str(db), mtime, ctx.tiles_crs)
        max_units = map_limits(db.parent).get("map_max_units", MAP_MAX_UNITS)
        unit_street = load_unit_streets(str(db), mtime) if streets["ids"] else {}
        have = set(unit_street.values())
        options: list[str | None] = [None] + [c for c in streets["ids"] if c in have]
        if st.session_state.get("hs_street") not in options:
            st.session_state.pop("hs_street", None)
        if len(options) > 1:
            street = st.selectbox(
                t("maps.street"), options, key="hs_street", help=t("maps.street_help"),
                format_func=lambda c: t("maps.all_streets") if c is None
                else f"{streets['names'].get(c) or c} ({c})")  # same in both languages
        level_notes = []
        if street is not None:
            view_shapes = street_subset(shapes, unit_street, street)
            level_notes.append(t("maps.street_units", n=f"{len(view_shapes['ids']):,}",
                                 units=f"{len(shapes['ids']):,}",
                                 street=streets["names"].get(street) or street))
        elif len(shapes["ids"]) > max_units and len(options) > 1:
            view_shapes = streets
            level_notes.append(t("maps.street_level", units=f"{len(shapes['ids']):,}",
                                 max=f"{max_units:,}"))
        else:
            view_shapes = shapes
        density = load_density(str(db), mtime, ctx.tiles_crs) if show_kde else None
        fishnet = load_fishnet(str(db), mtime, ctx.tiles_crs, category) if show_net else None
        if street is not None:
            fishnet = clip_cells(fishnet, view_shapes["bounds"])
        title_line = t("hs.legend.selection", category=category_label(category),
                       period=period_label(period))
        # the map is the same on every rerun (Streamlit then sends a reference, not the map);
        # the selection's colours, legend and layers travel apart, without unit geometry
        fmap = hotspot_base_map(view_shapes, lang=lang, tiles=ctx.tiles,
                                attribution=ctx.attribution, community=unit_communities(data))
        show_map(fmap, ctx, key=MAP_KEY, height=MAP_HEIGHT)
        with st.container(gap=None, key="hs_map_channels"):
            for channel, payload in hotspot_channels(
                    view_shapes, sel, mode=mode, lang=lang, title_line=title_line,
                    tiles=ctx.tiles, density=density, fishnet=fishnet,
                    unit_street=unit_street).items():
                send_layer(MAP_NAME, channel, payload)
        map_downloads(db, mtime, "hotspots", key="hs_dl", category=category)
        map_notes(ctx, *level_notes,
                  t("hs.map_caption_trend") if trend_mode else t("hs.map_caption"))
        if fishnet is not None:
            net = summary.get("fishnet") if isinstance(summary.get("fishnet"), dict) else {}
            cell_m = net.get("cell_m") or (fishnet["cell_m"].iloc[0] if len(fishnet) else None)
            st.caption(t("hs.fishnet_caption", n=len(fishnet),
                         cell="—" if cell_m is None else f"{float(cell_m):,.0f}"))

with right:
    if trend_mode and has_trend:
        st.subheader(t("hs.trend_counts"))
        st.dataframe(trend_counts(sel, lang), hide_index=True, width="stretch", key="hs_trends",
                     column_config=pct_config(t("hs.col.share")))
    else:
        st.subheader(t("hs.class_counts"))
        st.dataframe(class_counts(sel, lang), hide_index=True, width="stretch",
                     key="hs_classes", column_config=pct_config(t("hs.col.share")))
    st.subheader(t("hs.hot_list"))
    hot_units = sel[sel["hotspot_class"].str.startswith("hot")].sort_values(
        ["z_score", "grid_id"], ascending=[False, True]).head(TOP_HOT)
    if hot_units.empty:
        st.info(t("hs.hot_none"))
    else:
        comm = unit_communities(data)
        view = pd.DataFrame({
            "grid_id": hot_units["grid_id"],
            "community_name": hot_units["grid_id"].map(comm) if comm else None,
            "incidents": hot_units["incidents"],
            "top_category": [category_label(c) if isinstance(c, str) and c else None
                             for c in hot_units["top_category"]],
            "observed": hot_units["observed"],
            "expected": pd.to_numeric(hot_units["expected"], errors="coerce").round(1),
            "ratio": pd.to_numeric(hot_units["ratio"], errors="coerce").round(2),
            "z": hot_units["z_score"].round(2),
            "p_fdr": hot_units["p_fdr"],
            "class": [class_label(v, lang) for v in hot_units["hotspot_class"]],
            "trend": [trend_label(v, lang) for v in hot_units["trend_class"]],
        })
        view = view.dropna(axis=1, how="all")
        st.dataframe(view.rename(columns={c: t(f"hs.col.{c}") for c in view.columns}),
                     hide_index=True, width="stretch", key="hs_hot_units",
                     column_config={t("hs.col.p_fdr"): st.column_config.NumberColumn(
                         format="%.4f")})


# ---- communities and streets -------------------------------------------------------------
areas = data.get("areas")
if areas is not None and not areas.empty:
    st.subheader(t("hs.areas"))
    shown_cat = category if (areas["category"] == category).any() else "all"
    st.caption(t("hs.areas_caption", category=category_label(shown_cat)))
    if street is not None:  # the chosen street and its communities (those of its units)
        comms = {data["unit_community"].get(g) for g, s_ in unit_street.items() if s_ == street}
        areas = areas[((areas["scope"] == "street") & (areas["scope_id"] == street))
                      | ((areas["scope"] == "community") & areas["scope_id"].isin(comms))]
    table = area_view(areas, data, shown_cat, lang)
    if len(table) > AREA_ROWS:  # a province: thousands of communities (#13.4: light views)
        st.caption(t("maps.areas_capped", n=f"{AREA_ROWS:,}", total=f"{len(table):,}"))
        table = table.head(AREA_ROWS)
    st.dataframe(table, hide_index=True, width="stretch",
                 key="hs_areas", column_config={t("hs.col.p_fdr"): st.column_config.NumberColumn(
                     format="%.4f")})

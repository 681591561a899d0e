"""Leaders' page (人员配置): street headcount, the gap map, equity, what-ifs, performance, report.

Reads the staffing stage's tables (``street_allocation``, ``community_allocation``,
``allocation_equity``, ``worker_performance``) read-only; the what-if controls call
:func:`geo.staffing.whatif` on the allocation rebuilt by
:func:`pipelines.stage_staffing.load_allocation` (milliseconds; the database is never changed
and the pipeline is never re-run). The Excel report is
:func:`pipelines.stage_staffing.export_report`, generated only when the button is clicked.
"""
from __future__ import annotations

import json
import math
import tempfile
import time
from pathlib import Path

import altair as alt
import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import streamlit as st
from streamlit_folium import st_folium

from app_pages import assets
from app_pages._mapbuild import (
    DISPLAY_CRS,
    LEGEND_CSS,
    NO_DATA_COLOR,
    TOLERANCE_M,
    Attribution,
    HtmlControl,
    _features,
    _tiles_layer,
    detect_tiles_crs,
    metric_crs_for,
    round_coords,
    shift_to,
    simplify_m,
)
from app_pages._shared import (current_db, half, load, load_or_stop, map_frame, open_db,
                               project_attribution, show_db_error, vendor_assets)
from app_pages.i18n import current_lang, label, t
from geo import staffing as model
from geo.apportion import BudgetTooSmall

MAP_KEY = "leaders_map"
MAP_HEIGHT = 520
#: Diverging colours of the gap: over-staffed (blue) … balanced … short of staff (red).
OVER_COLORS = ("#c6dbef", "#6baed6", "#2171b5")  # light → dark
UNDER_COLORS = ("#fcbba1", "#fb6a4a", "#cb181d")
BALANCED_COLOR = "#f7f7f7"
SERIES_COLORS = {"current": "#9ecae1", "recommended": "#08519c", "whatif": "#f16913"}
EXTREMES_N = 5
XLSX_MIME = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
#: Session keys of the what-if controls (reset together).
WI_KEYS = ("wi_budget", "wi_minimum", "wi_method", "wi_street", "wi_ftype",
           "wi_w_workload", "wi_w_residents", "wi_w_area")


# --------------------------------------------------------------------------------------------
# cached loaders (key: database path + mtime)


def load_staffing_tables(db: str, mtime: float) -> dict:
    """The staffing stage's tables and the latest run's settings and summary."""
    return load(db, mtime, "staffing_tables")


def load_base_allocation(db: str, mtime: float) -> model.Allocation:
    """The stored street allocation as an ``Allocation`` (the start of every what-if)."""
    return load(db, mtime, "base_allocation", load_staffing_tables(db, mtime)["settings"])


@st.cache_data(show_spinner=False, max_entries=6)
def load_gap_geometries(db: str, mtime: float, tiles_crs: str) -> dict[str, gpd.GeoDataFrame]:
    """Street and community outlines, simplified, shifted to the tiles' CRS and rounded."""
    layers = dict(load(db, mtime, "outlines"))
    _, mcrs = map_frame(db, mtime)
    for name, frame in layers.items():
        frame = simplify_m(frame, TOLERANCE_M[name], mcrs)
        frame, _ = shift_to(frame, tiles_crs)
        layers[name] = round_coords(frame)
    return layers


@st.cache_data(show_spinner=False, max_entries=2)
def report_bytes(db: str, mtime: float) -> bytes:
    """The Excel report of the stored tables (``export_report``), as bytes."""
    from pipelines.stage_staffing import export_report

    with tempfile.TemporaryDirectory(prefix="gridgov-report-") as tmp:
        path = Path(tmp) / "report.xlsx"
        with open_db(db) as con:
            export_report(con, path)
        return path.read_bytes()




# --------------------------------------------------------------------------------------------
# helpers




def bilingual(key: str) -> str:
    """A fixed "中文 English" option label (widget option labels must not change language)."""
    zh, en = t(key, "zh"), t(key, "en")
    return zh if zh == en else f"{zh} {en}"


def fmt_num(x: object, digits: int = 0) -> str:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return "—"
    return "—" if not math.isfinite(v) else f"{v:,.{digits}f}"


def gap_step(values: pd.Series) -> int:
    """Class width of the gap colours: about a third of the largest |gap|, a round number."""
    v = pd.to_numeric(values, errors="coerce").abs()
    m = float(v.max()) if v.notna().any() else 0.0
    if m <= 3:
        return 1
    want = 0.9 * m / 3  # the first round width from 90 % of a third of the largest gap
    for p in range(9):
        for mult in (1, 1.5, 2, 2.5, 3, 4, 5, 6, 7.5, 8):
            step = mult * 10**p
            if step >= want and step == int(step):
                return int(step)
    return math.ceil(want)


def gap_color(gap: object, step: int) -> str:
    """Diverging colour of a gap: red when short of staff, blue when over, grey-white at 0."""
    try:
        g = float(gap)
    except (TypeError, ValueError):
        return NO_DATA_COLOR
    if not math.isfinite(g):
        return NO_DATA_COLOR
    if g == 0:
        return BALANCED_COLOR
    k = min(3, max(1, math.ceil(abs(g) / step)))
    return (UNDER_COLORS if g > 0 else OVER_COLORS)[k - 1]


def gap_legend(step: int, lang: str, level_key: str) -> str:
    """HTML legend of the diverging gap classes (short of staff on top)."""
    def rng(k: int) -> str:
        lo, hi = (k - 1) * step + 1, k * step
        return f"{lo}" if lo == hi else f"{lo}–{hi}"

    rows = [f"<b>{t('leaders.legend.title', lang)}</b>", f"<small>{t(level_key, lang)}</small><br>"]
    rows.append(f'<i style="background:{UNDER_COLORS[2]}"></i>≥ +{2 * step + 1} '
                f'{t("leaders.legend.under", lang)}<br>')
    for k in (2, 1):
        rows.append(f'<i style="background:{UNDER_COLORS[k - 1]}"></i>+{rng(k)}<br>')
    rows.append(f'<i style="background:{BALANCED_COLOR}"></i>0 '
                f'{t("leaders.legend.balanced", lang)}<br>')
    for k in (1, 2):
        rows.append(f'<i style="background:{OVER_COLORS[k - 1]}"></i>−{rng(k)}<br>')
    rows.append(f'<i style="background:{OVER_COLORS[2]}"></i>≤ −{2 * step + 1} '
                f'{t("leaders.legend.over", lang)}<br>')
    rows.append(f'<i style="background:{NO_DATA_COLOR}"></i>{t("leaders.legend.no_data", lang)}')
    return "".join(rows)


def gap_map(
    shapes: gpd.GeoDataFrame,
    values: pd.DataFrame,
    *,
    code: str,
    name: str,
    level_key: str,
    outline: gpd.GeoDataFrame | None,
    lang: str,
    tiles: str | None,
    attribution: str | None,
) -> folium.Map:
    """A choropleth of ``values['gap']`` on ``shapes`` (joined on ``code``), offline-ready."""
    frame = shapes.merge(values, on=code, how="left")
    step = gap_step(frame["gap"])
    colors = {c: gap_color(g, step) for c, g in zip(frame[code], frame["gap"])}
    frame["status_label"] = [
        label("leaders.status", s, lang) if isinstance(s, str) else None for s in frame["status"]]
    frame["ftype_label"] = [
        label("function_type", v, lang) if isinstance(v, str) else None
        for v in frame["function_type"]]
    frame["hours"] = pd.to_numeric(frame["hours_per_current_staff"], errors="coerce").round(0)
    frame["gap_text"] = [
        None if pd.isna(g) else f"{int(g):+d}" for g in frame["gap"]]
    tip = {
        name: t("leaders.col.community_name" if code == "community_code"
                else "leaders.col.street_name", lang),
        "ftype_label": t("leaders.col.function_type", lang),
        "current_staff": t("leaders.col.current_staff", lang),
        "recommended_staff": t("leaders.col.recommended_staff", lang),
        "gap_text": t("leaders.col.gap", lang),
        "status_label": t("leaders.col.status", lang),
        "hours": t("leaders.tip.hours", lang),
    }
    data, fields = _features(frame, [code], list(tip))

    m = folium.Map(tiles=None, control_scale=True, zoom_start=11, location=[40.82, 111.67])
    m.get_root().header.add_child(folium.Element(LEGEND_CSS), name="gridgov_css")
    if tiles:
        _tiles_layer(tiles, lang).add_to(m)
    opacity = 0.6 if tiles else 0.85
    fg = folium.FeatureGroup(name=t(level_key, lang), show=True)
    folium.GeoJson(
        data,
        style_function=lambda f: {
            "fillColor": colors.get(f["properties"][code], NO_DATA_COLOR),
            "color": "#555555", "weight": 0.8, "fillOpacity": opacity,
        },
        highlight_function=lambda f: {"weight": 3, "color": "#222222"},
        tooltip=folium.GeoJsonTooltip(fields=fields, aliases=[tip[f] for f in fields],
                                      localize=True, sticky=True, labels=True),
    ).add_to(fg)
    fg.add_to(m)
    if outline is not None and not outline.empty:
        og = folium.FeatureGroup(name=t("leaders.layer.outline", lang), show=True)
        folium.GeoJson(
            json.loads(outline[[outline.geometry.name]].to_json(drop_id=True)),
            style_function=lambda f: {"color": "#1b3a5c", "weight": 2.2, "fill": False},
            interactive=False,
        ).add_to(og)
        og.add_to(m)
    HtmlControl(gap_legend(step, lang, level_key)).add_to(m)
    if attribution:
        Attribution(attribution).add_to(m)
    folium.LayerControl(collapsed=True, position="topright").add_to(m)
    if not frame.empty:
        x0, y0, x1, y1 = frame.total_bounds
        m.fit_bounds([[y0, x0], [y1, x1]])
    return m


def street_view(table: pd.DataFrame, lang: str, extra: list[str] | None = None) -> pd.DataFrame:
    """The street table as shown: translated values and headers, sorted by gap rank."""
    cols = ["street_name", "street_code", "function_type", "area_km2", "residents", "workload",
            "current_staff", "recommended_staff", "gap", "status", "required_staff",
            "hours_per_current_staff", "hours_per_recommended_staff"] + (extra or [])
    view = table.sort_values("gap_rank")[[c for c in cols if c in table.columns]].copy()
    view["function_type"] = [label("function_type", v, lang) for v in view["function_type"]]
    view["status"] = [label("leaders.status", v, lang) for v in view["status"]]
    for c in ("current_staff", "recommended_staff", "gap"):
        view[c] = view[c].astype("int64")
    return view.rename(columns={c: t(f"leaders.col.{c}", lang) for c in view.columns})


def number_config(lang: str) -> dict:
    """Column formats of the allocation tables (keyed by translated header)."""
    c = st.column_config
    return {
        t("leaders.col.area_km2", lang): c.NumberColumn(format="%.2f"),
        t("leaders.col.residents", lang): c.NumberColumn(format="localized"),
        t("leaders.col.workload", lang): c.NumberColumn(format="%.0f"),
        t("leaders.col.required_staff", lang): c.NumberColumn(format="%.1f"),
        t("leaders.col.hours_per_current_staff", lang): c.NumberColumn(format="%.0f"),
        t("leaders.col.hours_per_recommended_staff", lang): c.NumberColumn(format="%.0f"),
        t("leaders.col.gap", lang): c.NumberColumn(format="%+d", help=t("leaders.col.gap_help",
                                                                        lang)),
    }


def equity_chart(frame: pd.DataFrame, metric: str, title: str, lang: str,
                 district: float | None, name: str = "street_name") -> alt.Chart:
    """Horizontal grouped bars of one equity metric per unit: today against recommended."""
    frame = frame.assign(**{name: frame[name].astype(str)})
    order = frame.sort_values(f"current_{metric}", ascending=False)[name].tolist()
    long = pd.concat([
        pd.DataFrame({"street": frame[name], "series": t(f"leaders.series.{who}", lang),
                      "value": frame[f"{who}_{metric}"].astype(float).round(2)})
        for who in ("current", "recommended")
    ], ignore_index=True)
    names = [t("leaders.series.current", lang), t("leaders.series.recommended", lang)]
    bars = alt.Chart(long).mark_bar().encode(
        y=alt.Y("street:N", sort=order, title=None, axis=alt.Axis(labelLimit=160)),
        x=alt.X("value:Q", title=title),
        yOffset=alt.YOffset("series:N", sort=names),
        color=alt.Color("series:N", scale=alt.Scale(
            domain=names, range=[SERIES_COLORS["current"], SERIES_COLORS["recommended"]]),
            legend=alt.Legend(title=None, orient="top")),
        tooltip=[alt.Tooltip("street:N", title=t(f"leaders.col.{name}", lang)),
                 alt.Tooltip("series:N", title=" "),
                 alt.Tooltip("value:Q", title=title, format=",.2f")],
    )
    height = 90 + 28 * len(order)  # the axis and legend take ~90 px of the height
    if district is not None and math.isfinite(district):
        rule = alt.Chart(pd.DataFrame({"value": [round(district, 2)]})).mark_rule(
            strokeDash=[5, 4], color="#444444").encode(x="value:Q")
        return alt.layer(bars, rule).properties(height=height)
    return bars.properties(height=height)


def gini_chart(equity: pd.DataFrame, lang: str) -> alt.Chart:
    rows = []
    for metric, key in (("gini_staff_per_workload", "leaders.gini_workload"),
                        ("gini_staff_per_resident", "leaders.gini_resident")):
        sel = equity[equity["metric"] == metric]
        if sel.empty:
            continue
        for who in ("current", "recommended"):
            v = float(sel.iloc[0][who])
            rows.append({"metric": t(key, lang), "series": t(f"leaders.series.{who}", lang),
                         "value": round(v, 3) if math.isfinite(v) else None})
    data = pd.DataFrame(rows, columns=["metric", "series", "value"])
    names = [t("leaders.series.current", lang), t("leaders.series.recommended", lang)]
    return alt.Chart(data).mark_bar().encode(
        x=alt.X("metric:N", title=None, sort=None, axis=alt.Axis(labelAngle=0, labelLimit=220)),
        xOffset=alt.XOffset("series:N", sort=names),
        y=alt.Y("value:Q", title=t("leaders.gini_chart_title", lang),
                scale=alt.Scale(domainMin=0)),
        color=alt.Color("series:N", scale=alt.Scale(
            domain=names, range=[SERIES_COLORS["current"], SERIES_COLORS["recommended"]]),
            legend=alt.Legend(title=None, orient="top")),
        tooltip=[alt.Tooltip("metric:N", title=" "), alt.Tooltip("series:N", title=" "),
                 alt.Tooltip("value:Q", format=".3f")],
    ).properties(height=260)


def equity_value(equity: pd.DataFrame | None, metric: str, who: str,
                 level: str = "street") -> float:
    if equity is None:
        return float("nan")
    sel = equity[(equity["level"] == level) & (equity["metric"] == metric)]
    return float(sel.iloc[0][who]) if len(sel) and pd.notna(sel.iloc[0][who]) else float("nan")


# --------------------------------------------------------------------------------------------
# the page

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
try:
    base = load_base_allocation(str(db), mtime)
except Exception as exc:
    show_db_error(db, exc)
method = base.params["method"]
st.markdown(t("leaders.intro", method=t(f"leaders.method.{method}")))

names = dict(zip(streets["street_code"], streets["street_name"]))
equity: pd.DataFrame | None = data["allocation_equity"]
communities: pd.DataFrame | None = data["community_allocation"]

# ---- headline figures --------------------------------------------------------------------
budget = int(streets["recommended_staff"].sum())
minimum = base.params["minimum"]
k1, k2, k3, k4, k5 = st.columns(5)
k1.metric(t("leaders.kpi.budget"), f"{budget:,}", border=True,
          help=t("leaders.kpi.budget_help", minimum=minimum,
                 source=label("leaders.source", summary.get("budget_source") or "—")))
k2.metric(t("leaders.kpi.current"), f"{int(streets['current_staff'].sum()):,}", border=True)
k3.metric(t("leaders.kpi.required"), fmt_num(streets["required_staff"].sum(), 1), border=True,
          help=t("leaders.kpi.required_help", capacity=model.monthly_capacity(staffing_cfg)))
k4.metric(t("leaders.kpi.under"), f"{int((streets['gap'] > 0).sum())} / {len(streets)}",
          border=True)
k5.metric(t("leaders.kpi.over"), f"{int((streets['gap'] < 0).sum())} / {len(streets)}",
          border=True)

rebuilt = base.recommended.reindex(streets["street_code"]).to_numpy()
if not np.array_equal(rebuilt, streets["recommended_staff"].to_numpy()):
    st.caption(t("leaders.stale"))

# ---- map and the streets to look at first -------------------------------------------------
tiles = (st.session_state.get("tiles_url") or "").strip() or None
tiles_crs = DISPLAY_CRS
if tiles:
    choice = st.session_state.get("tiles_crs", "auto")
    tiles_crs = detect_tiles_crs(tiles) if choice == "auto" else choice

left, right = st.columns([3, 2], gap="large")
with left:
    st.subheader(t("leaders.map"))
    geoms = load_gap_geometries(str(db), mtime, tiles_crs)
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
        credit = project_attribution(db.parent)
        attribution = t(f"attribution.{credit}") if credit in ("demo", "project") else credit
        common = {"lang": lang, "tiles": tiles, "attribution": attribution}
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
        static_on = bool(st.get_option("server.enableStaticServing"))
        error = vendor_assets() if static_on else None
        if error:
            st.warning(t("map.assets_missing", error=error))
        # Same offline patching as the map page: Leaflet/jQuery from static/vendor (or inlined).
        assets.localize_map(fmap, inline=not static_on or error is not None)
        st_folium(fmap, key=MAP_KEY, height=MAP_HEIGHT, use_container_width=True,
                  returned_objects=[])
        notes = [t("leaders.map_caption")]
        if not tiles:
            notes.append(t("map.no_basemap"))
        st.caption(" ".join(notes))

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
                "leaders.extreme_line", name=r["street_name"], gap=int(r["gap"]),
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
        cview = communities.sort_values(["street_code", "gap_rank"]).copy()
        cview["street_name"] = cview["street_code"].map(names)
        cview["status"] = [label("leaders.status", v, lang) for v in cview["status"]]
        ccols = ["street_name", "community_name", "residents", "workload", "current_staff",
                 "recommended_staff", "gap", "status", "hours_per_current_staff",
                 "hours_per_recommended_staff"]
        cview = cview[[c for c in ccols if c in cview.columns]]
        st.dataframe(cview.rename(columns={c: t(f"leaders.col.{c}") for c in cview.columns}),
                     hide_index=True, width="stretch", column_config=number_config(lang))

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
def _wi_defaults() -> dict:
    w = base.params["score"]["weights"]
    return {
        "wi_budget": int(base.params["budget"]),
        "wi_minimum": int(minimum) if not isinstance(minimum, dict) else 0,
        "wi_method": method,
        "wi_street": str(streets.sort_values("gap_rank")["street_code"].iloc[0]),
        "wi_ftype": "",
        "wi_w_workload": float(w.get("workload", 0.0)),
        "wi_w_residents": float(w.get("residents", 0.0)),
        "wi_w_area": float(w.get("area", 0.0)),
    }


def _wi_reset() -> None:
    for k, v in _wi_defaults().items():
        st.session_state[k] = v


@st.fragment
def whatif_section() -> None:
    """The what-if controls and their result; reruns on its own when a control changes."""
    st.subheader(t("leaders.whatif"))
    st.caption(t("leaders.whatif_caption"))
    defaults = _wi_defaults()
    ident = (str(db), mtime)
    if st.session_state.get("wi_ident") != ident:  # new database: start from its settings
        st.session_state["wi_ident"] = ident
        _wi_reset()
    for k, v in defaults.items():
        st.session_state.setdefault(k, v)

    c1, c2, c3 = st.columns(3)
    # A ceiling keeps the divisor method (one step per person) well under a second.
    ceiling = max(10 * defaults["wi_budget"], 1000)
    c1.number_input(t("leaders.wi.budget"), min_value=0, max_value=ceiling, step=1,
                    key="wi_budget", help=t("leaders.wi.budget_help", ceiling=f"{ceiling:,}"))
    c1.number_input(t("leaders.wi.minimum"), min_value=0, max_value=ceiling, step=1,
                    key="wi_minimum")
    c1.selectbox(t("leaders.wi.method"), ["webster", "huntington_hill"], key="wi_method",
                 format_func=lambda m: bilingual(f"leaders.method.{m}"))
    codes = streets.sort_values("gap_rank")["street_code"].tolist()
    c2.selectbox(t("leaders.wi.street"), codes, key="wi_street",
                 format_func=lambda c: f"{names.get(c, c)} ({c})")
    c2.selectbox(t("leaders.wi.ftype"), [""] + list(model.FUNCTION_TYPES), key="wi_ftype",
                 format_func=lambda v: bilingual(f"function_type.{v}") if v
                 else t("leaders.wi.unchanged"))
    chosen = st.session_state["wi_street"]
    now = streets.set_index("street_code")["function_type"].get(chosen)
    c2.caption(t("leaders.wi.ftype_now", ftype=label("function_type", now) if now else "—"))
    c3.markdown(f"**{t('leaders.wi.weights')}**")
    for part in ("workload", "residents", "area"):
        c3.slider(t(f"leaders.wi.w_{part}"), 0.0, 1.0, step=0.05, key=f"wi_w_{part}")
    weights = {p: float(st.session_state[f"wi_w_{p}"]) for p in ("workload", "residents", "area")}
    total_w = sum(weights.values())
    if total_w > 0:
        c3.caption(t("leaders.wi.weights_note", **{p: w / total_w for p, w in weights.items()}))
    c3.button(t("leaders.wi.reset"), on_click=_wi_reset, key="wi_reset")

    changes: dict = {"budget": int(st.session_state["wi_budget"]),
                     "minimum": int(st.session_state["wi_minimum"])}
    if st.session_state["wi_method"] != method:
        changes["method"] = st.session_state["wi_method"]
    if any(abs(weights[p] - defaults[f"wi_w_{p}"]) > 1e-9 for p in weights):
        changes["weights"] = weights
    ftype = st.session_state["wi_ftype"]
    if ftype and ftype != now:
        changes["function_type"] = {chosen: ftype}
    t0 = time.perf_counter()
    try:
        result = model.whatif(base, **changes)
    except BudgetTooSmall as exc:
        st.error(half(exc, lang))
        return
    except (ValueError, KeyError) as exc:
        st.error(t("leaders.wi.error", error=half(exc, lang)))
        return
    ms = (time.perf_counter() - t0) * 1000
    new = result.allocation.table
    new_eq = model.equity_summary(new, level="street").set_index("metric")
    g_new = float(new_eq.loc["gini_staff_per_workload", "recommended"])
    g_run = equity_value(equity, "gini_staff_per_workload", "recommended")

    m1, m2, m3, m4 = st.columns(4)
    m1.metric(t("leaders.wi.total"), f"{int(new['recommended_staff'].sum()):,}",
              delta=int(new["recommended_staff"].sum()) - budget or None, border=True)
    m2.metric(t("leaders.wi.moved"), f"{result.persons_moved:,}", border=True,
              help=t("leaders.wi.moved_help"))
    m3.metric(t("leaders.wi.streets_changed"), f"{len(result.moved)} / {len(new)}", border=True)
    g_delta = round(g_new - g_run, 3) if math.isfinite(g_new) and math.isfinite(g_run) else 0
    m4.metric(t("leaders.wi.gini"), fmt_num(g_new, 3), border=True, delta_color="inverse",
              delta=g_delta or None)
    st.caption(t("leaders.wi.timing", ms=ms))

    run_rec = streets.set_index("street_code")["recommended_staff"]
    full = new[["street_code", "street_name", "function_type", "current_staff",
                "recommended_staff", "gap", "hours_per_recommended_staff"]].copy()
    full["before"] = full["street_code"].map(run_rec).astype("int64")
    full["change"] = full["recommended_staff"] - full["before"]
    full["function_type"] = [label("function_type", v, lang) for v in full["function_type"]]
    headers = {
        "street_name": t("leaders.col.street_name"), "street_code": t("leaders.col.street_code"),
        "function_type": t("leaders.col.function_type"),
        "current_staff": t("leaders.col.current_staff"), "before": t("leaders.wi.before"),
        "recommended_staff": t("leaders.wi.after"), "change": t("leaders.wi.change"),
        "gap": t("leaders.wi.new_gap"),
        "hours_per_recommended_staff": t("leaders.col.hours_per_recommended_staff"),
    }
    order = list(headers)
    cfg = {
        headers["change"]: st.column_config.NumberColumn(format="%+d"),
        headers["gap"]: st.column_config.NumberColumn(format="%+d"),
        headers["hours_per_recommended_staff"]: st.column_config.NumberColumn(format="%.0f"),
    }
    moved = full[full["change"] != 0].sort_values(["change", "street_code"],
                                                  ascending=[False, True])
    st.markdown(f"**{t('leaders.wi.what_moved')}**")
    if moved.empty:
        st.info(t("leaders.wi.no_change"))
    else:
        st.dataframe(moved[order].rename(columns=headers), hide_index=True, width="stretch",
                     column_config=cfg, key="wi_moved")
    with st.expander(t("leaders.wi.full")):
        shown = full.sort_values("gap", ascending=False)[order].rename(columns=headers)
        st.dataframe(shown, hide_index=True, width="stretch", column_config=cfg, key="wi_full")
        st.download_button(t("leaders.wi.csv"), shown.to_csv(index=False).encode("utf-8-sig"),
                           file_name="whatif_allocation.csv", mime="text/csv", key="wi_csv",
                           on_click="ignore")


whatif_section()

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
    ci = [
        "—" if pd.isna(lo) or pd.isna(hi) else f"{lo:.0%}–{hi:.0%}"
        for lo, hi in zip(view["on_time_ci_low"], view["on_time_ci_high"])]
    shown = pd.DataFrame({
        "staff_id": view["staff_id"],
        "street_name": view["street_code"].map(names),
        "community_name": view["community_code"].map(data["community_names"]),
        "role": [label("leaders.role", r) for r in view["role"]],
        "cases": view["cases"],
        "on_time_rate": view["on_time_rate"],
        "on_time_ci": ci,
        "median_hours_to_close": view["median_hours_to_close"],
        "repeat_complaints": view["repeat_complaints"],
        "repeat_rate": view["repeat_rate"],
        "workload_carried": view["workload_carried"],
        "small_n": view["small_n"].fillna(False).astype(bool),
        "note": [half(n, lang) for n in view["note"]],
    })
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

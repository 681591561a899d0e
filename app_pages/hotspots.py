"""Risk hotspot page (风险热点): Gi* hot/cold spots, emerging trends, risk index, forecast and
its backtest, case timeliness (Art. 16 and Art. 24).

Reads the tables of the ``hotspots`` stage read-only (``hotspots``, ``incident_counts``,
``hotspot_units``, ``hotspot_density``, ``grid_risk``, ``forecast``, ``forecast_backtest``,
``case_timeliness``; ``docs/hotspots.md`` describes them). Everything is loaded once per
database file (the cache key is path + modification time) and filtered in memory, so moving
the time slider only re-filters a frame and redraws the map.
"""
from __future__ import annotations

import json
import math

import altair as alt
import folium
import numpy as np
import pandas as pd
import streamlit as st
from streamlit_folium import st_folium

from app_pages import assets
from app_pages._mapbuild import (
    DENSITY_COLORS,
    DISPLAY_CRS,
    LEGEND_CSS,
    Attribution,
    HtmlControl,
    _tiles_layer,
    detect_tiles_crs,
    round_coords,
    shift_to,
    simplify_m,
)
from app_pages._shared import current_db, half, load, load_or_stop, map_frame, project_attribution, vendor_assets
from app_pages.i18n import STRINGS, current_lang, t
from pipelines import results

MAP_KEY = "hotspots_map"
MAP_HEIGHT = 600
UNIT_TOLERANCE_M = 5.0  # grids are simplified by 5 m (cells are squares/hexagons already)
TOP_HOT = 20
TOP_FORECAST = 10
CHART_TOP = 15
MAX_IMAGE_PX = 1000
LEGEND_ROOM = 0.4  # share of the units' width added on the east for the legend

TABLES = ("hotspots", "incident_counts", "hotspot_units", "hotspot_density", "grid_risk",
          "forecast", "forecast_backtest", "case_timeliness")

#: Gi* classes, hot (reds) … none (light grey) … cold (blues), as ArcGIS draws them.
CLASS_ORDER = ("hot_99", "hot_95", "hot_90", "none", "cold_90", "cold_95", "cold_99")
CLASS_COLORS = {
    "hot_99": "#b2182b", "hot_95": "#ef6548", "hot_90": "#fdbb84",
    "none": "#e4e4e4",
    "cold_90": "#9ecae1", "cold_95": "#4292c6", "cold_99": "#08519c",
}
#: The 17 emerging hot spot classes.
TREND_ORDER = tuple(
    f"{kind}_{side}" for side in ("hot", "cold") for kind in (
        "new", "consecutive", "intensifying", "persistent", "diminishing", "sporadic",
        "oscillating", "historical")) + ("none",)
TREND_COLORS = {
    "new_hot": "#ff7f00", "consecutive_hot": "#fdb863", "intensifying_hot": "#67000d",
    "persistent_hot": "#d7301f", "diminishing_hot": "#f4a582", "sporadic_hot": "#e7298a",
    "oscillating_hot": "#8e3b8f", "historical_hot": "#a6761d",
    "new_cold": "#01665e", "consecutive_cold": "#5ab4ac", "intensifying_cold": "#08306b",
    "persistent_cold": "#2171b5", "diminishing_cold": "#9ecae1", "sporadic_cold": "#80cdc1",
    "oscillating_cold": "#6a51a3", "historical_cold": "#8c96c6",
    "none": CLASS_COLORS["none"],
}
LEGEND_EXTRA_CSS = """
<style>
.gridgov-legend { max-width: 270px; }
.gridgov-legend table.hs-legend { border-collapse: collapse; }
.gridgov-legend table.hs-legend td { padding: 0 8px 0 0; white-space: nowrap; }
.gridgov-legend small.hs-selection { display: block; margin-top: 2px; }
</style>
"""
COMPONENTS = ("incidents", "elderly_alone", "disabled", "low_income", "special_units")
METHOD_ORDER = ("model", "last_period", "moving_average_3", "historical_mean", "kde")
COMPONENT_COLORS = ["#d7301f", "#fc8d59", "#6a51a3", "#4292c6", "#41ab5d", "#969696"]


# --------------------------------------------------------------------------------------------
# cached loaders (key: database path + mtime)


def load_hotspot_tables(db: str, mtime: float) -> dict:
    """Every table the page shows (except geometries), read once per database file."""
    data = dict(load(db, mtime, "hotspot_tables"))
    if "risk" in data:
        data["risk"], data["risk_weights"] = results.expand_components(data["risk"])
    return data


@st.cache_resource(show_spinner=False, max_entries=4)
def load_unit_shapes(db: str, mtime: float, tiles_crs: str) -> dict:
    """Analysis unit outlines, simplified in metres, shifted to the tiles' CRS and rounded,
    as GeoJSON geometries by unit id (built once: the map only adds properties per rerun).

    A shared resource, not a copy: callers must not change what they get.
    """
    units = load(db, mtime, "hotspot_units")
    if units.empty:
        return {"ids": [], "geometry": {}, "bounds": None}
    units = simplify_m(units, UNIT_TOLERANCE_M, map_frame(db, mtime)[1])
    units, _ = shift_to(units, tiles_crs)
    units = round_coords(units)
    geoms = [f["geometry"] for f in json.loads(units.to_json(drop_id=True))["features"]]
    return {"ids": units["grid_id"].tolist(), "geometry": dict(zip(units["grid_id"], geoms)),
            "bounds": tuple(float(v) for v in units.total_bounds)}


def _hex_rgb(color: str) -> np.ndarray:
    return np.array([int(color[i:i + 2], 16) for i in (1, 3, 5)], dtype=float)


def density_image(lon: np.ndarray, lat: np.ndarray, values: np.ndarray, cell_m: float,
                  max_px: int = MAX_IMAGE_PX) -> tuple[np.ndarray, list[list[float]]]:
    """An RGBA image of the density cells for a Leaflet image overlay, and its bounds.

    Pixel columns are spaced evenly in longitude and pixel rows evenly in Web-Mercator y, so
    Leaflet's linear stretch of the image between its corners puts every pixel in place. A
    pixel takes the value of the nearest cell centre within 0.75 cell (in local metres),
    otherwise it is transparent. Colours follow the map's density palette (square-root scale).
    """
    from scipy.spatial import cKDTree

    lat0 = float(np.mean(lat))
    kx, ky = 111_320.0 * math.cos(math.radians(lat0)), 110_574.0
    lon_lo, lon_hi = lon.min() - cell_m / kx, lon.max() + cell_m / kx
    lat_lo, lat_hi = lat.min() - cell_m / ky, lat.max() + cell_m / ky
    width_m, height_m = (lon_hi - lon_lo) * kx, (lat_hi - lat_lo) * ky
    px = max(cell_m / 2, max(width_m, height_m) / max_px)
    ncol, nrow = max(1, math.ceil(width_m / px)), max(1, math.ceil(height_m / px))

    def merc(la):
        return np.log(np.tan(np.pi / 4 + np.radians(la) / 2))

    y_top, y_bot = merc(lat_hi), merc(lat_lo)
    ys = y_top - (np.arange(nrow) + 0.5) * (y_top - y_bot) / nrow
    lat_c = np.degrees(2 * np.arctan(np.exp(ys)) - np.pi / 2)
    lon_c = lon_lo + (np.arange(ncol) + 0.5) * (lon_hi - lon_lo) / ncol
    grid_lon, grid_lat = np.meshgrid(lon_c, lat_c)
    tree = cKDTree(np.column_stack([lon * kx, lat * ky]))
    dist, idx = tree.query(np.column_stack([grid_lon.ravel() * kx, grid_lat.ravel() * ky]),
                           distance_upper_bound=0.75 * cell_m)
    found = np.isfinite(dist)
    v = np.zeros(grid_lon.size)
    v[found] = values[idx[found]]
    vmax = float(values.max()) if len(values) else 0.0
    frac = np.sqrt(np.clip(v / vmax, 0, 1)) if vmax > 0 else v
    palette = np.array([_hex_rgb(c) for c in DENSITY_COLORS])
    pos = frac * (len(palette) - 1)
    lo = np.floor(pos).astype(int).clip(0, len(palette) - 1)
    hi = np.minimum(lo + 1, len(palette) - 1)
    w = (pos - lo)[:, None]
    rgb = palette[lo] * (1 - w) + palette[hi] * w
    alpha = np.where(found & (frac > 0.1), 90 + 140 * frac, 0)
    rgba = np.concatenate([rgb, alpha[:, None]], axis=1).round().astype(np.uint8)
    return rgba.reshape(nrow, ncol, 4), [[float(lat_lo), float(lon_lo)],
                                         [float(lat_hi), float(lon_hi)]]


@st.cache_data(show_spinner=False, max_entries=4)
def load_density(db: str, mtime: float, tiles_crs: str) -> dict | None:
    """The kernel density surface as an image overlay (None when there is no surface)."""
    pts = load(db, mtime, "hotspot_density")
    if pts.empty:
        return None
    pts, _ = shift_to(pts, tiles_crs)
    cell_m = float(pts["cell_m"].iloc[0]) if pd.notna(pts["cell_m"].iloc[0]) else 100.0
    values = pts["density_per_km2"].to_numpy(float)
    image, bounds = density_image(pts.geometry.x.to_numpy(), pts.geometry.y.to_numpy(),
                                  values, cell_m)
    return {"image": image, "bounds": bounds, "max": float(values.max()), "cell_m": cell_m}




# --------------------------------------------------------------------------------------------
# helpers




def category_label(cat: str) -> str:
    """Fixed bilingual label of an incident category (widget option labels never change)."""
    if cat == "all":
        return t("hs.category_all")
    key = f"hs.cat.{cat}"
    return STRINGS[key][0] if key in STRINGS else str(cat)


def period_label(period: str) -> str:
    return t("hs.period_all") if period == "all" else str(period)


def class_label(value: object, lang: str) -> str | None:
    if not isinstance(value, str):
        return None
    key = f"hs.class.{value}"
    return t(key, lang) if key in STRINGS else value


def trend_label(value: object, lang: str) -> str | None:
    if not isinstance(value, str):
        return None
    key = f"hs.trend.{value}"
    return t(key, lang) if key in STRINGS else value


def component_label(name: str, lang: str | None = None) -> str:
    key = f"hs.comp.{name}"
    return t(key, lang) if key in STRINGS else name


def method_label(method: str, lang: str | None = None) -> str:
    key = f"hs.method.{method}"
    return t(key, lang) if key in STRINGS else method


def fmt_share(share: float) -> str:
    return f"{share:.0%}"


def selection(data: dict, category: str, period: str) -> pd.DataFrame:
    """One row per unit for the chosen category and period: Gi*, class, trend and count."""
    h = data["hotspots"]
    cat = h["category"] == category
    sel = h.loc[cat & (h["period"] == period),
                ["grid_id", "z_score", "p_fdr", "hotspot_class"]].copy()
    sel["hotspot_class"] = sel["hotspot_class"].astype(object).fillna("none")
    trend = h.loc[cat & (h["period"] == "all"), ["grid_id", "trend_class"]]
    sel["trend_class"] = sel["grid_id"].map(
        dict(zip(trend["grid_id"], trend["trend_class"].astype(object))))
    counts = data.get("counts")
    if counts is not None:
        c = counts[(counts["category"] == category) & (counts["period"] == period)]
        sel["incidents"] = sel["grid_id"].map(dict(zip(c["grid_id"], c["incidents"])))
        sel["incidents"] = sel["incidents"].fillna(0).astype("int64")
    else:
        sel["incidents"] = pd.NA
    return sel.reset_index(drop=True)


def class_counts(sel: pd.DataFrame, lang: str) -> pd.DataFrame:
    n = sel["hotspot_class"].value_counts()
    total = max(len(sel), 1)
    rows = [(class_label(c, lang), int(n.get(c, 0)), n.get(c, 0) / total) for c in CLASS_ORDER]
    return pd.DataFrame(rows, columns=[t("hs.col.class", lang), t("hs.col.units", lang),
                                       t("hs.col.share", lang)])


def trend_counts(sel: pd.DataFrame, lang: str) -> pd.DataFrame:
    n = sel["trend_class"].value_counts()
    total = max(len(sel), 1)
    order = [c for c in TREND_ORDER if n.get(c, 0) > 0 and c != "none"] + ["none"]
    rows = [(trend_label(c, lang), int(n.get(c, 0)), n.get(c, 0) / total) for c in order]
    return pd.DataFrame(rows, columns=[t("hs.col.trend", lang), t("hs.col.units", lang),
                                       t("hs.col.share", lang)])


def legend_html(mode: str, sel: pd.DataFrame, title_line: str, lang: str,
                density: dict | None) -> str:
    if mode == "trend":
        parts = [f"<b>{t('hs.legend.trend', lang)}</b>"]
        n = sel["trend_class"].value_counts()
        order = [c for c in TREND_ORDER if n.get(c, 0) > 0 and c != "none"] + ["none"]
        for c in order:
            parts.append(f'<i style="background:{TREND_COLORS.get(c, CLASS_COLORS["none"])}">'
                         f'</i>{trend_label(c, lang)} ({int(n.get(c, 0))})<br>')
    else:
        # compact: hot and cold side by side, so the legend covers little of the map
        n = sel["hotspot_class"].value_counts()

        def cell(c: str) -> str:
            return (f'<td><i style="background:{CLASS_COLORS[c]}"></i>'
                    f'{t(f"hs.short.{c}", lang)} ({int(n.get(c, 0))})</td>')

        rows = "".join(f"<tr>{cell(f'hot_{lvl}')}{cell(f'cold_{lvl}')}</tr>"
                       for lvl in ("99", "95", "90"))
        rows += f'<tr>{cell("none")}<td></td></tr>'
        parts = [f"<b>{t('hs.legend.classes', lang)}</b>",
                 f'<table class="hs-legend">{rows}</table>']
    parts.append(f'<small class="hs-selection">{title_line}</small>')
    if density is not None:
        ramp = ", ".join(DENSITY_COLORS)
        top = f"{density['max']:,.0f}"
        parts.append(
            f"<b>{t('hs.legend.kde', lang)}</b>"
            f'<i style="width:90px;background:linear-gradient(to right, {ramp})"></i><br>'
            f"<small>{t('hs.legend.kde_range', lang, max=top)}</small>")
    return "".join(parts)


def unit_features(shapes: dict, frame: pd.DataFrame, fields: list[str]) -> tuple[dict, list]:
    """A FeatureCollection of the cached unit geometries with ``fields`` as properties.

    Like ``_mapbuild._features``: fields empty in every row are left out, single missing
    values show as "—".
    """
    fields = [f for f in fields if f in frame.columns and frame[f].notna().any()]
    props = frame[["grid_id"] + [f for f in fields if f != "grid_id"]].astype(object)
    props = props.where(props.notna(), "—").to_dict("records")
    geometry = shapes["geometry"]
    feats = [{"type": "Feature", "properties": p, "geometry": geometry[p["grid_id"]]}
             for p in props if p["grid_id"] in geometry]
    return {"type": "FeatureCollection", "features": feats}, fields


def hotspot_map(shapes: dict, sel: pd.DataFrame, *, mode: str, lang: str,
                title_line: str, tiles: str | None, attribution: str | None,
                density: dict | None, community: dict[str, str]) -> folium.Map:
    """Units coloured by Gi* class (or trend class), tooltips, legend, optional density image."""
    frame = pd.DataFrame({"grid_id": shapes["ids"]}).merge(sel, on="grid_id", how="left")
    frame["community_name"] = frame["grid_id"].map(community) if community else None
    frame["z"] = pd.to_numeric(frame["z_score"], errors="coerce").round(2)
    frame["p"] = pd.to_numeric(frame["p_fdr"], errors="coerce").round(4)
    frame["class_label"] = [class_label(v, lang) for v in frame["hotspot_class"]]
    frame["trend_label"] = [trend_label(v, lang) for v in frame["trend_class"]]
    if mode == "trend":
        colors = {g: TREND_COLORS.get(v, CLASS_COLORS["none"]) if isinstance(v, str)
                  else CLASS_COLORS["none"] for g, v in zip(frame["grid_id"], frame["trend_class"])}
    else:
        colors = {g: CLASS_COLORS.get(v, CLASS_COLORS["none"]) if isinstance(v, str)
                  else CLASS_COLORS["none"]
                  for g, v in zip(frame["grid_id"], frame["hotspot_class"])}
    tip = {
        "grid_id": t("hs.col.grid_id", lang),
        "community_name": t("hs.col.community_name", lang),
        "incidents": t("hs.col.incidents", lang),
        "z": t("hs.col.z", lang),
        "p": t("hs.col.p_fdr", lang),
        "class_label": t("hs.col.class", lang),
        "trend_label": t("hs.col.trend", lang),
    }
    data, fields = unit_features(shapes, frame, list(tip))

    # quarter zoom steps: a single street fills the map instead of a quarter of it
    m = folium.Map(tiles=None, control_scale=True, zoom_start=12, location=[40.82, 111.67],
                   zoom_snap=0.25, zoom_delta=0.5)
    m.get_root().header.add_child(folium.Element(LEGEND_CSS), name="gridgov_css")
    m.get_root().header.add_child(folium.Element(LEGEND_EXTRA_CSS), name="hotspots_css")
    if tiles:
        _tiles_layer(tiles, lang).add_to(m)
    opacity = 0.55 if tiles else 0.8
    if density is not None:
        opacity = 0.25
    weight = 0.7 if len(frame) <= 3000 else 0.25  # thousands of small cells: finer outlines
    fg = folium.FeatureGroup(name=t("hs.layer.units", lang), show=True)
    folium.GeoJson(
        data,
        style_function=lambda f: {
            "fillColor": colors.get(f["properties"]["grid_id"], CLASS_COLORS["none"]),
            "color": "#ffffff", "weight": weight, "fillOpacity": opacity,
        },
        highlight_function=lambda f: {"weight": 3, "color": "#222222"},
        tooltip=folium.GeoJsonTooltip(fields=fields, aliases=[tip[f] for f in fields],
                                      localize=True, sticky=True, labels=True),
    ).add_to(fg)
    fg.add_to(m)
    if density is not None:
        folium.raster_layers.ImageOverlay(
            density["image"], bounds=density["bounds"], name=t("hs.layer.kde", lang),
            opacity=0.85, interactive=False, pixelated=True, show=True, zindex=400,
        ).add_to(m)
    HtmlControl(legend_html(mode, frame, title_line, lang, density)).add_to(m)
    if attribution:
        Attribution(attribution).add_to(m)
    folium.LayerControl(collapsed=True, position="topright").add_to(m)
    if shapes["bounds"] is not None:
        x0, y0, x1, y1 = shapes["bounds"]
        # room on the east for the legend in the lower right corner (bounds, not Leaflet's
        # padding option: padding wider than a not-yet-laid-out iframe gives a NaN zoom)
        m.fit_bounds([[y0, x0], [y1, x1 + LEGEND_ROOM * (x1 - x0)]])
    return m


def pct_config(*heads: str) -> dict:
    return {h: st.column_config.NumberColumn(format="percent") for h in heads}


def hours_config(*heads: str) -> dict:
    return {h: st.column_config.NumberColumn(format="%.1f") for h in heads}


# --------------------------------------------------------------------------------------------
# the page

db, mtime = current_db()
lang = current_lang()
data = load_or_stop(load_hotspot_tables, db, mtime)

st.title(t("hs.title"))
summary: dict = data.get("summary") or {}
hot = data.get("hotspots")
if hot is None or hot.empty:
    st.info(t("hs.no_tables"))
    if summary.get("skipped"):
        st.warning(t("hs.skipped", reason=half(summary["skipped"], lang)))
    st.code(f"gridgov run {db.parent}", language="bash")
    st.stop()

st.markdown(t("hs.intro"))
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
period = f2.select_slider(t("hs.period"), periods, key="hs_period", format_func=period_label,
                          help=t("hs.period_help"))
g1, g2 = st.columns(2)
trend_mode = g1.toggle(t("hs.trend_toggle"), key="hs_trend", help=t("hs.trend_toggle_help"))
show_kde = g2.toggle(t("hs.kde_toggle"), key="hs_kde", help=t("hs.kde_toggle_help"),
                     disabled=not data["has"].get("hotspot_density"))

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
tiles = (st.session_state.get("tiles_url") or "").strip() or None
tiles_crs = DISPLAY_CRS
if tiles:
    choice = st.session_state.get("tiles_crs", "auto")
    tiles_crs = detect_tiles_crs(tiles) if choice == "auto" else choice

mode = "trend" if trend_mode else "class"
left, right = st.columns([3, 2], gap="large")
with left:
    st.subheader(t("hs.map"))
    if trend_mode and not has_trend:
        st.info(t("hs.no_trend"))
    shapes = load_unit_shapes(str(db), mtime, tiles_crs) if data["has"]["hotspot_units"] \
        else None
    if not shapes or not shapes["ids"]:
        st.info(t("hs.map_none"))
    else:
        density = load_density(str(db), mtime, tiles_crs) if show_kde else None
        credit = project_attribution(db.parent)
        attribution = t(f"attribution.{credit}") if credit in ("demo", "project") else credit
        title_line = t("hs.legend.selection", category=category_label(category),
                       period=period_label(period))
        fmap = hotspot_map(shapes, sel, mode=mode, lang=lang, title_line=title_line,
                           tiles=tiles, attribution=attribution, density=density,
                           community={g: data["community_names"].get(c, c)
                                      for g, c in data["unit_community"].items()})
        static_on = bool(st.get_option("server.enableStaticServing"))
        error = vendor_assets() if static_on else None
        if error:
            st.warning(t("map.assets_missing", error=error))
        # Same offline patching as the map page: Leaflet/jQuery from static/vendor (or inlined).
        assets.localize_map(fmap, inline=not static_on or error is not None)
        st_folium(fmap, key=MAP_KEY, height=MAP_HEIGHT, use_container_width=True,
                  returned_objects=[])
        notes = [t("hs.map_caption_trend") if trend_mode else t("hs.map_caption")]
        if not tiles:
            notes.append(t("map.no_basemap"))
        st.caption(" ".join(notes))

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
        comm = {g: data["community_names"].get(c, c) for g, c in data["unit_community"].items()}
        view = pd.DataFrame({
            "grid_id": hot_units["grid_id"],
            "community_name": hot_units["grid_id"].map(comm) if comm else None,
            "incidents": hot_units["incidents"],
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
    comm = {g: data["community_names"].get(c, c) for g, c in data["unit_community"].items()}
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
    comm = {g: data["community_names"].get(c, c) for g, c in data["unit_community"].items()}
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

    # the honest verdict at 10 % of the area (or the share nearest to it)
    s10 = min(shares, key=lambda s: abs(s - 0.10))
    col10 = pai[s10].dropna()
    if "model" in col10.index and len(col10) > 1:
        base = col10.drop("model")
        best = str(base.idxmax())
        m_pai, b_pai = float(col10["model"]), float(base.max())
        diff = f"{abs(m_pai / b_pai - 1):.1%}" if b_pai > 0 else "—"
        args = {"model": f"{m_pai:.2f}", "base": f"{b_pai:.2f}", "best": method_label(best),
                "diff": diff}
        if round(m_pai, 3) == round(b_pai, 3):
            st.info(t("hs.verdict_tie", **args))
        elif m_pai > b_pai:
            st.success(t("hs.verdict_model", **args))
        else:
            st.warning(t("hs.verdict_baseline", **args))
        winner = "model" if m_pai >= b_pai else best
        table.insert(0, " ", ["★" if m == winner else "" for m in methods])
    st.dataframe(table, hide_index=True, width="stretch", key="hs_backtest", column_config=bcfg)
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
    comm = {g: data["community_names"].get(c, c) for g, c in data["unit_community"].items()}

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

"""The hotspot pages' building blocks (no layout): loaders, labels, the selection of one
category and period, the legend and the unit map, the density image.

The pages (``hotspots.py`` map and classes, ``hotspot_risk.py`` risk index and forecast,
``case_timeliness.py``) read the tables of the ``hotspots`` stage through
:func:`pipelines.results.hotspot_tables` once per database file (the cache key is path +
modification time) and filter in memory, so moving the time slider only re-filters a frame
and restyles the map: the map itself (:func:`hotspot_base_map`) is the same text on every
rerun, and the selection's colours, tooltip values, legend and optional layers travel apart
(:func:`hotspot_channels`, applied in the browser by :class:`HotspotReceiver`). Every text from
the data that reaches the map's HTML is escaped (:func:`app_pages._mapbuild.esc`).
"""
from __future__ import annotations

import json
import math

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import streamlit as st
from branca.element import MacroElement
from jinja2 import Template
from shapely.geometry import shape

from app_pages._mapbuild import (
    DENSITY_COLORS,
    UNPACK_JS,
    CompactGeoJson,
    _features,
    base_map,
    esc,
    finish_map,
    pack_columns,
    pack_features,
    round_coords,
    shift_to,
    simplify_m,
)
from app_pages._shared import current_db, half, load, load_or_stop, map_frame
from app_pages.i18n import STRINGS, current_lang, t
from pipelines import results
from pipelines.config import DEFAULTS

MAP_KEY = "hotspots_map"
MAP_HEIGHT = 600
UNIT_TOLERANCE_M = 5.0  # grids are simplified by 5 m (cells are squares/hexagons already)
STREET_TOLERANCE_M = 20.0  # street outlines at the street level (as on the map page)
#: Level of detail (#13.4): with more analysis units than this the map first shows streets
#: coloured by their units, and the units of one chosen street when zoomed in. The full demo
#: (3,042 grids) sends 0.80 MB for its first view, about 0.21 kB a unit plus 0.14 MB of
#: scripts: 3,500 units keep a view under about 0.9 MB.
MAP_MAX_UNITS = DEFAULTS["app"]["map_max_units"]  # [app] map_max_units
#: The streets' colour classes: share of a street's units that are hot (or have a hot
#: trend); the first class is "none" (0 %), the others are upper limits.
SHARE_BREAKS = (0.0, 0.05, 0.10, 0.20, 0.35, 1.0)
SHARE_COLORS = ("#e4e4e4", "#fde0c5", "#fdbb84", "#fc8d59", "#e34a33", "#b30000")
TOP_HOT = 20
AREA_ROWS = 200  # community and street verdicts shown at most (hot first, then by z)
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
COMPONENTS = results.RISK_COMPONENTS
METHOD_ORDER = ("model", "last_period", "moving_average_3", "historical_mean", "kde")
COMPONENT_COLORS = ["#d7301f", "#fc8d59", "#6a51a3", "#4292c6", "#41ab5d", "#969696"]


# --------------------------------------------------------------------------------------------
# cached loaders (key: database path + mtime)


@st.cache_data(show_spinner=False, max_entries=4)
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
        return {"kind": "units", "ids": [], "geometry": {}, "bounds": None, "bbox": {}}
    return _shapes(units, "grid_id", UNIT_TOLERANCE_M, map_frame(db, mtime)[1], tiles_crs,
                   "units")


def _shapes(frame: gpd.GeoDataFrame, key: str, tolerance_m: float, metric_crs: str,
            tiles_crs: str, kind: str) -> dict:
    """Outlines simplified in metres, shifted and rounded, as GeoJSON geometries by id, with
    each one's bounds (a street's units are framed without touching the geometries)."""
    frame = simplify_m(frame, tolerance_m, metric_crs)
    frame, _ = shift_to(frame, tiles_crs)
    frame = round_coords(frame)
    geoms = [f["geometry"] for f in json.loads(frame.to_json(drop_id=True))["features"]]
    ids = frame[key].tolist()
    boxes = [tuple(float(v) for v in b) for b in frame.geometry.bounds.to_numpy()]
    return {"kind": kind, "ids": ids, "geometry": dict(zip(ids, geoms)),
            "bounds": tuple(float(v) for v in frame.total_bounds), "bbox": dict(zip(ids, boxes))}


@st.cache_resource(show_spinner=False, max_entries=4)
def load_street_shapes(db: str, mtime: float, tiles_crs: str) -> dict:
    """Street outlines for the street level (:data:`MAP_MAX_UNITS`): simplified by
    :data:`STREET_TOLERANCE_M`, shifted and rounded, by street code, with names and districts.
    A shared resource: callers must not change what they get."""
    streets = load(db, mtime, "street_outlines")
    streets = streets[streets["street_code"].notna()].drop_duplicates("street_code")
    if streets.empty:
        return {"kind": "streets", "ids": [], "geometry": {}, "bounds": None, "bbox": {},
                "names": {}, "districts": {}}
    out = _shapes(streets, "street_code", STREET_TOLERANCE_M, map_frame(db, mtime)[1],
                  tiles_crs, "streets")
    out["names"] = {c: n for c, n in zip(streets["street_code"], streets["street_name"])
                    if isinstance(n, str) and n}
    out["districts"] = {c: n for c, n in zip(streets["street_code"], streets["district_name"])
                        if isinstance(n, str) and n}
    return out


@st.cache_data(show_spinner=False, max_entries=4)
def load_unit_streets(db: str, mtime: float) -> dict[str, str]:
    """Analysis unit -> street code (:func:`pipelines.results_maps.unit_streets`)."""
    return load(db, mtime, "unit_streets")


def street_subset(shapes: dict, unit_street: dict[str, str], street: str) -> dict:
    """The units of one street (in the map's order), framed on them; shares the geometries."""
    ids = [g for g in shapes["ids"] if unit_street.get(g) == street]
    if not ids:
        return {**shapes, "ids": [], "bounds": None}
    bbox = shapes.get("bbox") or {}
    boxes = np.array([bbox[g] if g in bbox else shape(shapes["geometry"][g]).bounds
                      for g in ids])
    bounds = (float(boxes[:, 0].min()), float(boxes[:, 1].min()),
              float(boxes[:, 2].max()), float(boxes[:, 3].max()))
    return {**shapes, "ids": ids, "bounds": bounds}


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


def category_periods(data: dict, category: str) -> list[str]:
    """The periods ``category`` has rows for ('all' first, then months)."""
    h = data["hotspots"]
    have = set(h.loc[h["category"] == category, "period"].astype(str))
    return [p for p in ["all"] + list(data["periods"]) if p in have]


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
    for col in ("observed", "expected", "ratio", "top_category"):
        sel[col] = h.loc[cat & (h["period"] == period), col].to_numpy() if col in h else None
    counts = data.get("counts")
    if counts is not None:
        # 'any' (hot in any category) has no counts of its own: every incident of the unit
        has = (counts["category"] == category).any()
        c = counts[(counts["category"] == (category if has else "all"))
                   & (counts["period"] == period)]
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
                         f'</i>{esc(trend_label(c, lang))} ({int(n.get(c, 0))})<br>')
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
    parts.append(f'<small class="hs-selection">{esc(title_line)}</small>')
    if density is not None:
        parts.append(_density_legend(density, lang))
    return "".join(parts)


#: The street level's tooltip values (:func:`street_frame`).
STREET_FIELDS = ("units", "hot_units", "hot_share", "cold_units", "trend_units", "trend_share",
                 "incidents")
MAP_NAME = "hotspots"  # the channel name of the hot-spot map (app_pages._mapview.send_layer)
#: Tooltip fields that change with the category and period (sent with the styles).
VALUE_FIELDS = ("incidents", "top_label", "observed", "expected_r", "ratio_r", "z", "p",
                "class_label", "trend_label")
VALUE_ALIASES = {"incidents": "hs.col.incidents", "top_label": "hs.col.top_category",
                 "observed": "hs.col.observed", "expected_r": "hs.col.expected",
                 "ratio_r": "hs.col.ratio", "z": "hs.col.z", "p": "hs.col.p_fdr",
                 "class_label": "hs.col.class", "trend_label": "hs.col.trend"}
TOOLTIP_CSS = """
<style>
.gridgov-tip table { margin: auto; }
.gridgov-tip tr { text-align: left; }
.gridgov-tip th { padding: 2px; padding-right: 8px; }
.gridgov-pixelated { image-rendering: pixelated; image-rendering: crisp-edges; }
</style>
"""


def shapes_sig(shapes: dict) -> str:
    """A short fingerprint of the units drawn (ids and bounds): a channel's data is applied
    only to the map of the same units (another project's map ignores it)."""
    import hashlib

    text = (str(shapes.get("kind", "units")) + "\n" + "\n".join(map(str, shapes["ids"]))
            + repr(shapes.get("bounds")))
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]


class HotspotReceiver(MacroElement):
    """The hot-spot map's receiver: applies the channels :func:`app_pages._mapview.send_layer`
    posts into the map's iframe — unit colours and tooltip values (``values``), colouring mode,
    opacity and legend (``view``), the density image (``kde``) and the fishnet cells
    (``fishnet``) — without rebuilding the map. Only messages of the same origin, this map's
    name and these units' fingerprint are applied; texts arrive HTML-escaped from Python."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        (function () {
          var map = {{ this._parent.get_name() }}, units = {{ this.layer.get_name() }};
          var NAME = {{ this.map_name|tojson }}, SIG = {{ this.sig|tojson }};
          var PAL = {{ this.palettes|tojson }}, BASE = {{ this.base|tojson }};
          var STATIC = {{ this.static_tip|tojson }};
          var unpack = {{ this.unpack_js }};
          var origin = window.location.origin, values = null, view = null, kde = null,
              net = null, byId = [];
          var legend = map.getContainer().querySelector(".gridgov-legend");
          function cell(t, k, i) {
            var v = t.c[k][i];
            if (v === null || v === undefined) { return "\u2014"; }
            if (t.s[k]) { return t.s[k][v]; }
            return typeof v === "number" ? v.toLocaleString() : v;
          }
          function table(rows) {
            return "<table>" + rows.map(function (r) {
              return "<tr><th>" + r[0] + "</th><td>" + r[1] + "</td></tr>";
            }).join("") + "</table>";
          }
          function unitTip(layer) {
            var props = layer.feature.properties, i = +layer.feature.id, rows = [];
            STATIC.k.forEach(function (k, j) {
              if (props[k] !== undefined) { rows.push([STATIC.a[j], props[k]]); }
            });
            if (values) {
              values.tip.k.forEach(function (k, j) { rows.push([values.tip.a[j], cell(values.tip, j, i)]); });
            }
            return table(rows);
          }
          function style(feature) {
            var i = +feature.id, s = Object.assign({}, BASE);
            if (view) { s.fillOpacity = view.opacity; }
            if (values && view) {
              var trend = view.mode === "trend", idx = (trend ? values.trend : values.cls)[i];
              s.fillColor = (trend ? PAL.trend : PAL.cls)[idx] || BASE.fillColor;
            }
            return s;
          }
          units.options.style = style;
          units.eachLayer(function (layer) {
            byId[+layer.feature.id] = layer;
            layer.bindTooltip(function () { return unitTip(layer); },
                              {sticky: true, className: "gridgov-tip"});
          });
          function restyle() { units.setStyle(style); }
          function showKde(p) {
            if (kde) { map.removeLayer(kde); kde = null; }
            if (p.url) {
              kde = L.imageOverlay(p.url, p.bounds, {opacity: 0.85, interactive: false,
                                   zIndex: 400, className: "gridgov-pixelated"}).addTo(map);
            }
          }
          function showNet(p) {
            if (net) { map.removeLayer(net); net = null; }
            if (!p.packed) { return; }
            var data = unpack(p.packed);
            net = L.geoJson(data, {
              style: function (f) {
                return {color: f.properties._color, weight: 2.5, fill: false, dashArray: "6 3"};
              },
              onEachFeature: function (f, layer) {
                layer.bindTooltip(function () {
                  return table(p.fields.map(function (k, j) {
                    var v = f.properties[k];
                    return [p.aliases[j], v === null || v === undefined ? "\u2014"
                            : (typeof v === "number" ? v.toLocaleString() : v)];
                  }));
                }, {sticky: true, className: "gridgov-tip"});
              }
            }).addTo(map);
          }
          function apply(p) {
            if (p.channel === "values") { values = p; restyle(); }
            else if (p.channel === "view") {
              view = p; restyle();
              if (legend) { legend.innerHTML = p.legend; }
            }
            else if (p.channel === "kde") { showKde(p); }
            else if (p.channel === "fishnet") { showNet(p); }
          }
          window.addEventListener("message", function (e) {
            var m = e.data, p;
            if (e.origin !== origin || !m || m.gridgov !== "layer" || typeof m.text !== "string") {
              return;
            }
            try { p = JSON.parse(m.text); } catch (err) { return; }
            if (p && p.map === NAME && p.sig === SIG) { apply(p); }
          });
          if (window.parent && window.parent !== window) {
            window.parent.postMessage({gridgov: "ready", map: NAME}, origin);
          }
        })();
        {% endmacro %}
        """
    )

    def __init__(self, layer, *, sig: str, static_tip: dict, base: dict,
                 palettes: dict | None = None):
        super().__init__()
        self._name = "HotspotReceiver"
        self.layer = layer
        self.map_name = MAP_NAME
        self.sig = sig
        self.static_tip = static_tip
        self.base = base
        self.palettes = palettes or {"cls": [CLASS_COLORS[c] for c in CLASS_ORDER],
                                     "trend": [TREND_COLORS[c] for c in TREND_ORDER]}
        self.unpack_js = UNPACK_JS


def hotspot_base_map(shapes: dict, *, lang: str, tiles: str | None, attribution: str | None,
                     community: dict[str, str]) -> folium.Map:
    """The hot-spot map without its styles: unit outlines (packed), grid id and community in
    the tooltip, an empty legend and the receiver of the page's channels
    (:func:`hotspot_channels`). It depends only on the units, the language, the basemap and
    the communities, so it is the same text on every rerun of the page: a category, period,
    colouring or layer change sends only the channels.

    ``shapes`` of kind ``streets`` (:func:`load_street_shapes`, the street level) draws street
    outlines instead, with name, code and district in the tooltip, coloured by
    :func:`street_channels` in the streets' share classes (:data:`SHARE_COLORS`)."""
    ids = list(shapes["ids"])
    streets = shapes.get("kind") == "streets"
    if streets:
        frame = pd.DataFrame({"street_name": [shapes["names"].get(c) or c for c in ids],
                              "street_code": ids})
        frame["district_name"] = frame["street_code"].map(shapes["districts"])
        fields = [f for f in ("street_name", "street_code", "district_name")
                  if frame[f].notna().any()]
        aliases = [esc(t(f"maps.col.{f}", lang)) for f in fields]
    else:
        frame = pd.DataFrame({"grid_id": ids})
        frame["community_name"] = frame["grid_id"].map(community) if community else None
        fields = [f for f in ("grid_id", "community_name") if frame[f].notna().any()]
        aliases = [esc(t(f"hs.col.{f}", lang)) for f in fields]
    props = frame[fields].astype(object).where(frame[fields].notna(), "—").map(esc)
    data = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "id": str(i), "properties": p, "geometry": shapes["geometry"][g]}
        for i, (p, g) in enumerate(zip(props.to_dict("records"), ids))]}
    # quarter zoom steps: a single street fills the map instead of a quarter of it
    m = base_map(shapes["bounds"], lang=lang, tiles=tiles, css=(LEGEND_EXTRA_CSS, TOOLTIP_CSS),
                 zoom_start=12, zoom_snap=0.25, zoom_delta=0.5)
    weight = 0.7 if len(ids) <= 3000 else 0.25  # thousands of small cells: finer outlines
    base = {"fillColor": CLASS_COLORS["none"], "color": "#ffffff", "weight": weight,
            "fillOpacity": 0.55 if tiles else 0.8}
    palettes = None
    if streets:
        base.update(color="#5a5a5a", weight=1.0)
        palettes = {"cls": list(SHARE_COLORS), "trend": list(SHARE_COLORS)}
    name = t("maps.layer.streets", lang) if streets else t("hs.layer.units", lang)
    fg = folium.FeatureGroup(name=name, show=True)
    units = CompactGeoJson(  # polygons packed: about a third of folium's GeoJSON text
        data, style_function=lambda f: base,
        highlight_function=lambda f: {"weight": 3, "color": "#222222"})
    units.add_to(fg)
    fg.add_to(m)
    finish_map(m, legend="&nbsp;", attribution=attribution, bounds=shapes["bounds"],
               east_room=LEGEND_ROOM)
    static_tip = {"k": fields, "a": aliases}
    HotspotReceiver(units, sig=shapes_sig(shapes), static_tip=static_tip, base=base,
                    palettes=palettes).add_to(m)
    return m


def unit_frame(shapes: dict, sel: pd.DataFrame, lang: str) -> pd.DataFrame:
    """The selection on the map's units (in their order), with the tooltip's columns."""
    frame = pd.DataFrame({"grid_id": shapes["ids"]}).merge(sel, on="grid_id", how="left")
    frame["z"] = pd.to_numeric(frame["z_score"], errors="coerce").round(2)
    frame["p"] = pd.to_numeric(frame["p_fdr"], errors="coerce").round(4)
    frame["top_label"] = [category_label(c) if isinstance(c, str) and c else None
                          for c in frame["top_category"]] if "top_category" in frame else None
    frame["expected_r"] = pd.to_numeric(frame.get("expected"), errors="coerce").round(1)
    frame["ratio_r"] = pd.to_numeric(frame.get("ratio"), errors="coerce").round(2)
    frame["class_label"] = [class_label(v, lang) for v in frame["hotspot_class"]]
    frame["trend_label"] = [trend_label(v, lang) for v in frame["trend_class"]]
    return frame


def _order_index(values, order: tuple[str, ...]) -> list[int]:
    pos = {c: i for i, c in enumerate(order)}
    none = pos["none"]
    return [pos.get(v, none) if isinstance(v, str) else none for v in values]


def street_frame(shapes: dict, sel: pd.DataFrame, unit_street: dict[str, str]) -> pd.DataFrame:
    """The selection summed by street, in the map's order of the streets: units, hot and cold
    units, units with a hot trend, incidents, and the shares of hot units / hot trends."""
    units = sel.assign(street_code=sel["grid_id"].map(unit_street))
    cls = units["hotspot_class"].astype(str)
    trend = units["trend_class"]
    units = units.assign(
        _hot=cls.str.startswith("hot").astype(int), _cold=cls.str.startswith("cold").astype(int),
        _trend=[int(isinstance(v, str) and v.endswith("_hot")) for v in trend],
        _inc=pd.to_numeric(units["incidents"], errors="coerce"))
    g = units.groupby("street_code").agg(
        units=("grid_id", "size"), hot_units=("_hot", "sum"), cold_units=("_cold", "sum"),
        trend_units=("_trend", "sum"), incidents=("_inc", "sum"))
    frame = pd.DataFrame({"street_code": shapes["ids"]}).merge(
        g, left_on="street_code", right_index=True, how="left")
    n = frame["units"].fillna(0)
    frame["hot_share"] = (frame["hot_units"] / n.where(n > 0)).astype(float)
    frame["trend_share"] = (frame["trend_units"] / n.where(n > 0)).astype(float)
    if not trend.notna().any():
        frame["trend_units"] = frame["trend_share"] = np.nan
    if not units["_inc"].notna().any():
        frame["incidents"] = np.nan
    return frame


def share_index(shares: pd.Series) -> list[int]:
    """Each share's class in :data:`SHARE_COLORS`: 0 for none (0 % or no units), then the first
    upper limit of :data:`SHARE_BREAKS` it does not exceed."""
    out = []
    for v in shares:
        if v is None or not np.isfinite(v) or v <= 0:
            out.append(0)
            continue
        out.append(next((i for i in range(1, len(SHARE_BREAKS)) if v <= SHARE_BREAKS[i]),
                        len(SHARE_BREAKS) - 1))
    return out


def street_legend_html(mode: str, classes: list[int], title_line: str, lang: str,
                       density: dict | None) -> str:
    """The street level's legend: the share classes with their number of streets."""
    key = "maps.legend.trend_share" if mode == "trend" else "maps.legend.hot_share"
    n = pd.Series(classes).value_counts()
    parts = [f"<b>{t(key, lang)}</b>",
             f'<i style="background:{SHARE_COLORS[0]}"></i>{t("maps.legend.none", lang)} '
             f"({int(n.get(0, 0))})<br>"]
    for i in range(1, len(SHARE_BREAKS)):
        lo, hi = SHARE_BREAKS[i - 1], SHARE_BREAKS[i]
        parts.append(f'<i style="background:{SHARE_COLORS[i]}"></i>'
                     f"{lo:.0%}–{hi:.0%} ({int(n.get(i, 0))})<br>")
    parts.append(f'<small class="hs-selection">{esc(title_line)}</small>')
    parts.append(f'<small class="hs-selection">{t("maps.legend.choose", lang)}</small>')
    if density is not None:
        parts.append(_density_legend(density, lang))
    return "".join(parts)


def clip_cells(cells: gpd.GeoDataFrame | None, bounds) -> gpd.GeoDataFrame | None:
    """The fishnet cells that touch ``bounds`` (a street's frame): a street's view carries only
    its own cells."""
    if cells is None or cells.empty or bounds is None:
        return cells
    x0, y0, x1, y1 = bounds
    return cells.cx[x0:x1, y0:y1]


def hotspot_channels(shapes: dict, sel: pd.DataFrame, *, mode: str, lang: str, title_line: str,
                     tiles: str | None, density: dict | None,
                     fishnet: gpd.GeoDataFrame | None,
                     unit_street: dict[str, str] | None = None) -> dict[str, dict]:
    """What the hot-spot map's receiver gets, by channel (no unit geometry in any):

    - ``values``: per unit (the map's order) its class and trend class as indexes into
      :data:`CLASS_ORDER` / :data:`TREND_ORDER`, and the tooltip's values of the selection
      (:func:`app_pages._mapbuild.pack_columns`, texts escaped);
    - ``view``: the colouring (``class`` or ``trend``), the fill opacity and the legend's HTML
      (built from escaped parts);
    - ``kde``: the density image as a PNG data URL and its bounds (``url`` null: none shown);
    - ``fishnet``: the significant fishnet cells, packed (``packed`` null: none shown).

    At the street level (``shapes`` of kind ``streets``, ``unit_street`` given) ``values``
    holds per street its share class of hot units (``cls``) and of units with a hot trend
    (``trend``) as indexes into :data:`SHARE_COLORS`, and the street's sums in the tooltip.
    """
    from folium.utilities import image_to_url

    sig = shapes_sig(shapes)
    opacity = 0.55 if tiles else 0.8
    if density is not None:
        opacity = 0.25
    if shapes.get("kind") == "streets":
        frame = street_frame(shapes, sel, unit_street or {})
        fields = [f for f in STREET_FIELDS if frame[f].notna().any()]
        shown = frame.assign(
            hot_share=[None if not np.isfinite(v) else f"{v:.0%}" for v in frame["hot_share"]],
            trend_share=[None if not np.isfinite(v) else f"{v:.0%}"
                         for v in frame["trend_share"]])
        tip = pack_columns(shown, fields)
        tip["a"] = [esc(t(f"maps.col.{f}", lang)) for f in fields]
        cls, trend = share_index(frame["hot_share"]), share_index(frame["trend_share"])
        values = {"sig": sig, "cls": cls, "trend": trend, "tip": tip}
        legend = street_legend_html(mode, trend if mode == "trend" else cls, title_line, lang,
                                    density)
    else:
        frame = unit_frame(shapes, sel, lang)
        fields = [f for f in VALUE_FIELDS if f in frame.columns and frame[f].notna().any()]
        tip = pack_columns(frame, fields)
        tip["a"] = [esc(t(VALUE_ALIASES[f], lang)) for f in fields]
        values = {"sig": sig, "cls": _order_index(frame["hotspot_class"], CLASS_ORDER),
                  "trend": _order_index(frame["trend_class"], TREND_ORDER), "tip": tip}
        legend = legend_html(mode, frame, title_line, lang, density)
    out = {
        "values": values,
        "view": {"sig": sig, "mode": mode, "opacity": opacity, "legend": legend},
        "kde": {"sig": sig, "url": None},
        "fishnet": {"sig": sig, "packed": None},
    }
    if density is not None:
        out["kde"].update(url=image_to_url(density["image"]), bounds=density["bounds"])
    if fishnet is not None and not fishnet.empty:
        out["fishnet"].update(fishnet_payload(fishnet, lang))
    return out


@st.cache_data(show_spinner=False, max_entries=8)
def load_fishnet(db: str, mtime: float, tiles_crs: str, category: str) -> gpd.GeoDataFrame:
    """The significant Gi* fishnet cells of ``category`` ('all' for 'any'), in the tiles' CRS."""
    cells = load(db, mtime, "hotspot_fishnet", "all" if category == "any" else category)
    if cells.empty:
        return cells
    cells, _ = shift_to(cells, tiles_crs)
    return round_coords(cells)


def fishnet_payload(cells: gpd.GeoDataFrame, lang: str) -> dict:
    """Hot/cold fishnet cells for the map's receiver: packed outlines with their colour and the
    tooltip's values (escaped), the tooltip's fields and their names (escaped)."""
    frame = cells.assign(
        class_label=[class_label(v, lang) for v in cells["hotspot_class"]],
        z=pd.to_numeric(cells["z_score"], errors="coerce").round(2),
        _color=[CLASS_COLORS.get(v, CLASS_COLORS["none"]) for v in cells["hotspot_class"]])
    tip = {"cell_id": t("hs.col.cell_id", lang), "incidents": t("hs.col.incidents", lang),
           "z": t("hs.col.z", lang), "class_label": t("hs.col.fishnet_class", lang)}
    data, fields = _features(frame, list(tip) + ["_color"])
    fields = [f for f in fields if f != "_color"]
    return {"packed": pack_features(data), "fields": fields,
            "aliases": [esc(tip[f]) for f in fields]}


def area_view(areas: pd.DataFrame, data: dict, category: str, lang: str) -> pd.DataFrame:
    """The community and street verdicts of ``category`` as shown: hot first, then by z."""
    a = areas[(areas["category"] == category) & (areas["period"].astype(str) == "all")].copy()
    a["_hot"] = a["hotspot_class"].astype(str).str.startswith("hot")
    a = a.sort_values(["_hot", "z_score", "scope_id"], ascending=[False, False, True])
    names = {"community": data["community_names"], "street": data["street_names"]}
    view = pd.DataFrame({
        "scope": [t(f"hs.scope.{s}", lang) if f"hs.scope.{s}" in STRINGS else s
                  for s in a["scope"]],
        "name": [names.get(s, {}).get(i) or i for s, i in zip(a["scope"], a["scope_id"])],
        "observed": a["observed"], "expected": pd.to_numeric(a["expected"]).round(1),
        "ratio": pd.to_numeric(a["ratio"]).round(2), "z": a["z_score"].round(2),
        "p_fdr": a["p_fdr"], "class": [class_label(v, lang) for v in a["hotspot_class"]]})
    return view.rename(columns={c: t(f"hs.col.{c}", lang) for c in view.columns})


def unit_label(unit: object, lang: str) -> str:
    """'grid' or 'cell_<m>m' (the backtest's unit) in words."""
    u = str(unit)
    if u.startswith("cell_") and u.endswith("m"):
        return t("hs.unit.cell", lang, m=u[5:-1])
    return t("hs.unit.grid", lang)


def recommendation_lines(rec: pd.DataFrame | None, lang: str) -> list[tuple[bool, str]]:
    """The stage's verdicts (``forecast_recommendation.text_zh/en``), grid first:
    (recommended?, line)."""
    if rec is None or rec.empty:
        return []
    col = "text_zh" if lang == "zh" else "text_en"
    rec = rec.assign(_cell=rec["unit"].astype(str) != "grid").sort_values(["_cell", "unit"])
    out = []
    for unit, ok, text in zip(rec["unit"], rec["recommended"], rec[col]):
        if isinstance(text, str) and text:
            out.append((bool(ok) if pd.notna(ok) else False,
                        t("hs.recommendation_unit", lang, unit=unit_label(unit, lang), text=text)))
    return out


def backtest_table(rows: pd.DataFrame, lang: str) -> pd.DataFrame:
    """Mean backtest rows of the equal-cell evaluation: unit, method, area share, PAI, PEI,
    hit rate."""
    mean = rows[rows["target_period"] == "mean"]
    if mean.empty:
        mean = rows.groupby(["unit", "method", "area_share"], as_index=False)[
            ["pai", "hit_rate"] + (["pei"] if "pei" in rows else [])].mean()
    mean = mean.sort_values(["unit", "area_share", "pai"], ascending=[True, True, False])
    view = pd.DataFrame({
        t("hs.col.unit", lang): [unit_label(u, lang) for u in mean["unit"]],
        t("hs.col.method", lang): [method_label(m, lang) for m in mean["method"]],
        t("hs.col.area_share", lang): [fmt_share(v) for v in mean["area_share"]],
        "PAI": pd.to_numeric(mean["pai"]).round(2),
        "PEI": pd.to_numeric(mean["pei"]).round(2) if "pei" in mean else None,
        t("hs.col.hit_rate", lang): mean["hit_rate"]})
    return view.dropna(axis=1, how="all")


def pct_config(*heads: str) -> dict:
    return {h: st.column_config.NumberColumn(format="percent") for h in heads}


def hours_config(*heads: str) -> dict:
    return {h: st.column_config.NumberColumn(format="%.1f") for h in heads}




def unit_communities(data: dict) -> dict[str, str]:
    """Analysis unit -> its community's name (the code when the name is missing)."""
    names = data["community_names"]
    return {g: names.get(c) or c for g, c in data["unit_community"].items()}


def page_start(title_key: str):
    """The three hotspot pages' common start: database, language, tables and title; stops
    with what to run when the stage has not run. Returns ``(db, mtime, lang, data)``."""
    db, mtime = current_db()
    lang = current_lang()
    data = load_or_stop(load_hotspot_tables, db, mtime)
    st.title(t(title_key))
    summary: dict = data.get("summary") or {}
    hot = data.get("hotspots")
    if hot is None or hot.empty:
        st.info(t("hs.no_tables"))
        if summary.get("skipped"):
            st.warning(t("hs.skipped", reason=half(summary["skipped"], lang)))
        st.code(f"gridgov run {db.parent}", language="bash")
        st.stop()
    return db, mtime, lang, data


def _density_legend(density: dict, lang: str) -> str:
    """The legend lines of the density layer (a colour ramp up to its maximum)."""
    ramp = ", ".join(DENSITY_COLORS)
    top = f"{density['max']:,.0f}"
    return (f"<b>{t('hs.legend.kde', lang)}</b>"
            f'<i style="width:90px;background:linear-gradient(to right, {ramp})"></i><br>'
            f"<small>{t('hs.legend.kde_range', lang, max=top)}</small>")

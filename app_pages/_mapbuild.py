"""Build the folium map of a project: display preparation and layers. No Streamlit here.

Size matters: everything drawn travels to the browser inside the map's JavaScript, roughly
0.5 kB per polygon. So geometries are simplified in metres (:func:`simplify_m`), coordinates
are rounded to 5 decimals (about 1 m), only tooltip and styling properties are sent,
individual buildings are drawn only for one street at a time, and every layer travels packed
(:class:`CompactGeoJson`: integer coordinate steps, each distinct text once; a third of
folium's GeoJSON text), unpacked by a few lines of JavaScript in the map.

Offline first: there is no basemap unless a tile URL template is given, the background is a
light neutral colour, markers are circle markers (no icon fonts), legends are plain HTML
Leaflet controls (branca colour maps would pull d3 from a CDN), and
:func:`app_pages.assets.localize_map` points every script at the app's own copy.
"""
from __future__ import annotations

import html
import json
import math
from dataclasses import dataclass, field
from urllib.parse import urlparse

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from branca.element import Element, MacroElement
from jinja2 import Template

from app_pages.i18n import label, t
from pipelines.config import DEFAULTS

DISPLAY_CRS = "EPSG:4326"
DECIMALS = 5
TOLERANCE_M = {"streets": 20.0, "communities": 10.0, "barriers": 15.0}
MAX_BUILDINGS = 5000
#: Level of detail (#13.4): with more communities than this, the map page first shows streets
#: (filled by household density) without communities and special units, and one chosen
#: street's communities, buildings and special units. 3,268 communities of a 200k-building
#: province are 0.47 MB of map script alone (the full demo's 515 communities: 0.07 MB).
MAP_MAX_COMMUNITIES = DEFAULTS["app"]["map_max_communities"]  # [app] map_max_communities
BACKGROUND = "#f3f2ee"

DENSITY_COLORS = ["#ffffb2", "#fed976", "#feb24c", "#fd8d3c", "#f03b20", "#bd0026"]
NO_DATA_COLOR = "#d9d9d9"
BUILDING_COLOR = "#2171b5"
UNIT_COLORS = {
    "school": "#1f77b4",
    "hospital": "#d62728",
    "government": "#9467bd",
    "industrial_park": "#8c564b",
    "market": "#ff7f0e",
    "commercial_building": "#17becf",
    "enterprise": "#7f7f7f",
    "other": "#bcbd22",
}
BARRIER_STYLES = {
    "major_road": {"color": "#6b6b6b", "weight": 3},
    "railway": {"color": "#222222", "weight": 2, "dashArray": "6 4"},
    "river": {"color": "#3a7bd5", "weight": 3},
}
BARRIER_DEFAULT = {"color": "#999999", "weight": 2}

#: Tile hosts whose tiles are drawn in GCJ-02 (AMap/Gaode, Tencent).
GCJ02_HOSTS = ("autonavi.com", "amap.com", "gtimg.com", "map.qq.com", "tencent")
TILE_EXAMPLES = {
    "OpenStreetMap": "https://tile.openstreetmap.org/{z}/{x}/{y}.png",
    "天地图 Tianditu": "https://t{s}.tianditu.gov.cn/DataServer?T=vec_w&x={x}&y={y}&l={z}&tk=您的密钥KEY",
    "高德 AMap": "https://webrd0{s}.is.autonavi.com/appmaptile?lang=zh_cn&size=1&scale=1&style=8&x={x}&y={y}&z={z}",
}


# --------------------------------------------------------------------------------------------
# display preparation


def metric_crs_for(frame: gpd.GeoDataFrame) -> str:
    """Projected CRS for metric work at the centre of ``frame`` (:mod:`geo.chinacrs`)."""
    from geo.chinacrs import metric_crs_for as pick

    return pick(frame)


def simplify_m(frame: gpd.GeoDataFrame, tolerance_m: float, metric_crs) -> gpd.GeoDataFrame:
    """Simplify geometries by ``tolerance_m`` metres; returns a copy in EPSG:4326."""
    if frame.empty or tolerance_m <= 0:
        return frame.copy()
    proj = frame.to_crs(metric_crs)
    geoms = shapely.simplify(proj.geometry.values, tolerance_m, preserve_topology=True)
    proj = proj.set_geometry(gpd.GeoSeries(geoms, index=proj.index, crs=metric_crs))
    return proj.to_crs(DISPLAY_CRS)


def round_coords(frame: gpd.GeoDataFrame, decimals: int = DECIMALS) -> gpd.GeoDataFrame:
    """Round every coordinate to ``decimals`` places (5 ≈ 1 m): shorter GeoJSON."""
    out = frame.copy()
    geoms = shapely.transform(out.geometry.values, lambda xy: np.round(xy, decimals))
    return out.set_geometry(gpd.GeoSeries(geoms, index=out.index, crs=frame.crs))


def detect_tiles_crs(url: str | None) -> str:
    """Coordinate system of a tile service, judged from its URL (GCJ-02 for AMap/Tencent)."""
    host = urlparse(url or "").netloc.lower()
    return "GCJ-02" if any(h in host for h in GCJ02_HOSTS) else DISPLAY_CRS


def shift_to(frame: gpd.GeoDataFrame, crs: str) -> tuple[gpd.GeoDataFrame, bool]:
    """Shift WGS84 data to a web-map offset (GCJ-02) so it lines up with those tiles.

    Returns the frame and whether the shift could be applied (``geo.chinacrs`` present).
    """
    if crs in (None, "", DISPLAY_CRS, "EPSG:4490") or frame.empty:
        return frame, True
    try:
        from geo.chinacrs import from_wgs84
    except ImportError:
        return frame, False
    return from_wgs84(frame, crs), True


@dataclass
class Display:
    """Layers ready to draw (simplified, shifted, rounded) and what happened on the way."""

    layers: dict[str, gpd.GeoDataFrame] = field(default_factory=dict)
    shifted_to: str = DISPLAY_CRS
    shift_ok: bool = True


def prepare_display(layers: dict[str, gpd.GeoDataFrame], tiles_crs: str = DISPLAY_CRS,
                    metric_crs: str | None = None) -> Display:
    """Simplify, compute community density, shift to the tiles' CRS and round coordinates.

    ``metric_crs`` (the project's, :func:`pipelines.results.metric_crs`) is used for metres;
    without it one is chosen at the centre of the data.
    """
    out = Display(shifted_to=tiles_crs)
    ref = next((f for f in layers.values() if not f.empty), None)
    mcrs = metric_crs or (metric_crs_for(ref) if ref is not None else None)
    for name, frame in layers.items():
        frame = frame.copy()
        if name == "communities":
            area = pd.to_numeric(frame["area_km2"], errors="coerce")
            missing = area.isna() | (area <= 0)
            if missing.any():
                area = area.where(~missing, frame.to_crs(mcrs).area / 1e6)
            frame["area_km2"] = area.round(3)
            hh = pd.to_numeric(frame["households"], errors="coerce").fillna(0)
            frame["density"] = (hh / area.where(area > 0)).round(0)
        if name in TOLERANCE_M:
            frame = simplify_m(frame, TOLERANCE_M[name], mcrs)
        frame, ok = shift_to(frame, tiles_crs)
        out.shift_ok = out.shift_ok and ok
        out.layers[name] = round_coords(frame)
    return out


# --------------------------------------------------------------------------------------------
# text that reaches HTML


def esc(value):
    """``value`` safe to place in HTML: strings escaped (``html.escape``), others unchanged.

    Every text that comes from a project's files (names, kinds, categories, ids) passes here
    before it reaches a tooltip, a legend or a label: Leaflet and folium's tooltips insert
    them with ``innerHTML``.
    """
    return html.escape(value) if isinstance(value, str) else value


def esc_frame(frame: pd.DataFrame, fields: list[str]) -> pd.DataFrame:
    """A copy of ``frame`` with the text of ``fields`` escaped (other values unchanged)."""
    out = frame.copy()
    for f in fields:
        if f in out.columns:
            out[f] = out[f].astype(object).map(esc)
    return out


# --------------------------------------------------------------------------------------------
# classification


def density_breaks(values: pd.Series, n: int = len(DENSITY_COLORS)) -> list[float]:
    """Upper class limits (quantiles of the positive values, rounded to 2 significant digits)."""
    v = pd.to_numeric(pd.Series(values), errors="coerce").astype(float)
    v = v[np.isfinite(v) & (v > 0)]
    if v.empty:
        return []
    n = max(1, min(n, v.nunique()))
    qs = np.quantile(v, np.linspace(0, 1, n + 1)[1:])
    breaks: list[float] = []
    for q in qs:
        step = 10.0 ** (math.floor(math.log10(q)) - 1)  # two significant digits, rounded up
        r = float(math.ceil(q / step - 1e-9) * step)
        if not breaks or r > breaks[-1]:
            breaks.append(r)
    return breaks


def class_colors(n: int) -> list[str]:
    """``n`` colours spread over the density palette (light → dark)."""
    k = len(DENSITY_COLORS)
    if n <= 1:
        return [DENSITY_COLORS[k // 2]] * n
    return [DENSITY_COLORS[round(i * (k - 1) / (n - 1))] for i in range(n)]


def density_color(value: float | None, breaks: list[float]) -> str:
    """Fill colour of a density value for the given class limits."""
    if value is None or not np.isfinite(value) or value <= 0 or not breaks:
        return NO_DATA_COLOR
    colors = class_colors(len(breaks))
    for color, upper in zip(colors, breaks):
        if value <= upper:
            return color
    return colors[-1]


# --------------------------------------------------------------------------------------------
# small Leaflet elements


class HtmlControl(MacroElement):
    """A plain-HTML Leaflet control (legends): no external scripts, no d3."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        var {{ this.get_name() }} = L.control({position: {{ this.position|tojson }}});
        {{ this.get_name() }}.onAdd = function (map) {
            var div = L.DomUtil.create("div", "gridgov-legend");
            div.innerHTML = {{ this.html|tojson }};
            L.DomEvent.disableClickPropagation(div);
            L.DomEvent.disableScrollPropagation(div);
            return div;
        };
        {{ this.get_name() }}.addTo({{ this._parent.get_name() }});
        {% endmacro %}
        """
    )

    def __init__(self, html: str, position: str = "bottomright"):
        super().__init__()
        self._name = "HtmlControl"
        self.html = html
        self.position = position


class Attribution(MacroElement):
    """Add a data source line to the map's attribution control."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        {{ this._parent.get_name() }}.attributionControl.setPrefix("Leaflet");
        {{ this._parent.get_name() }}.attributionControl.addAttribution({{ this.text|tojson }});
        {% endmacro %}
        """
    )

    def __init__(self, text: str):
        super().__init__()
        self._name = "Attribution"
        self.text = esc(text)  # Leaflet inserts attributions as HTML


LEGEND_CSS = f"""
<style>
.leaflet-container {{ background: {BACKGROUND};
  font-family: "Noto Sans CJK SC", "Source Han Sans SC", "Microsoft YaHei", "PingFang SC",
  sans-serif; }}
.leaflet-control-layers {{ font-size: 13px; line-height: 1.5; }}
.gridgov-legend {{ background: rgba(255,255,255,.92); padding: 6px 9px; border-radius: 4px;
  box-shadow: 0 1px 4px rgba(0,0,0,.3); font-size: 12px; line-height: 18px; max-width: 220px; }}
.gridgov-legend b {{ display: block; margin: 2px 0; }}
.gridgov-legend i {{ display: inline-block; width: 14px; height: 12px; margin-right: 5px;
  vertical-align: -1px; border: 1px solid rgba(0,0,0,.15); }}
.gridgov-legend i.dot {{ width: 10px; height: 10px; border-radius: 50%; }}
.gridgov-legend i.line {{ height: 0; border: 0; border-top: 3px solid; vertical-align: 3px; }}
</style>
"""


def _fmt(x: float) -> str:
    return f"{x:,.0f}"


def legend_html(breaks: list[float], unit_types: list[str], barrier_kinds: list[str], lang: str,
                buildings: bool = False) -> str:
    """HTML of the map legend: density classes, buildings, special unit types, barrier kinds."""
    parts = [f"<b>{t('legend.density', lang)}</b>"]
    lower = None
    for color, upper in zip(class_colors(len(breaks)), breaks):
        text = f"≤ {_fmt(upper)}" if lower is None else f"{_fmt(lower)}–{_fmt(upper)}"
        parts.append(f'<i style="background:{color}"></i>{text}<br>')
        lower = upper
    parts.append(f'<i style="background:{NO_DATA_COLOR}"></i>{t("legend.no_data", lang)}<br>')
    if buildings:
        parts.append(f'<b>{t("layer.buildings", lang)}</b><i class="dot" style="background:'
                     f'{BUILDING_COLOR}"></i>{t("legend.buildings", lang)}<br>')
    if unit_types:
        parts.append(f"<b>{t('legend.special_units', lang)}</b>")
        for ut in unit_types:
            color = UNIT_COLORS.get(ut, UNIT_COLORS["other"])
            parts.append(f'<i class="dot" style="background:{color}"></i>'
                         f'{esc(label("unit_type", ut, lang))}<br>')
    if barrier_kinds:
        parts.append(f"<b>{t('legend.barriers', lang)}</b>")
        for kind in barrier_kinds:
            style = BARRIER_STYLES.get(kind, BARRIER_DEFAULT)
            dash = "dashed" if "dashArray" in style else "solid"
            parts.append(f'<i class="line" style="border-color:{style["color"]};'
                         f'border-top-style:{dash}"></i>{esc(label("kind", kind, lang))}<br>')
    return "".join(parts)


# --------------------------------------------------------------------------------------------
# layers


ALIASES = {"kind_label": "field.kind", "type_label": "field.unit_type"}


def _features(frame: gpd.GeoDataFrame, tooltip: list[str]) -> tuple[dict, list[str]]:
    """GeoJSON whose properties are the tooltip fields only; returns it and those fields.

    Each feature's ``id`` is its row position (``"0"``, ``"1"`` …): a style function looks its
    style up by position (:func:`by_position`), so no styling column travels to the browser.
    Tooltip fields that are empty in every row (an optional column the project did not supply)
    are left out; single missing values show as "—". Every text is HTML-escaped (:func:`esc`):
    folium's tooltip inserts the values as HTML.
    """
    fields = [f for f in tooltip if f in frame.columns and frame[f].notna().any()]
    sub = esc_frame(frame[fields + [frame.geometry.name]], fields).reset_index(drop=True)
    for f in fields:
        if sub[f].isna().any():
            sub[f] = sub[f].astype(object).where(sub[f].notna(), "—")
    return json.loads(sub.to_json(drop_id=False, na="null")), fields


def by_position(styles: list[dict]):
    """A folium style function: the style of the feature at that row (see :func:`_features`)."""
    return lambda f: styles[int(f["id"])]


def _tooltip(fields: list[str], lang: str) -> folium.GeoJsonTooltip:
    return tooltip_for(fields, [t(ALIASES.get(f, f"field.{f}"), lang) for f in fields])


def tooltip_for(fields: list[str], aliases: list[str]) -> folium.GeoJsonTooltip:
    """folium's tooltip of ``fields`` (values escaped by :func:`_features`), aliases escaped."""
    return folium.GeoJsonTooltip(
        fields=fields,
        aliases=[esc(a) for a in aliases],
        localize=True,
        sticky=True,
        labels=True,
    )


def _tiles_layer(url: str, lang: str) -> folium.TileLayer:
    host = urlparse(url).netloc.lower()
    if "tianditu" in host:
        attr, subdomains = "© 天地图 Tianditu", "01234567"
    elif "autonavi" in host or "amap" in host:
        attr, subdomains = "© 高德地图 AMap", "1234"
    elif "openstreetmap" in host:
        attr, subdomains = "© OpenStreetMap contributors", "abc"
    else:
        attr, subdomains = esc(host) or "tiles", "abc"
    return folium.TileLayer(
        tiles=url, attr=attr, name=t("layer.basemap", lang), subdomains=subdomains,
        max_zoom=18, overlay=False, control=True,
    )


def base_map(bounds, *, lang: str, tiles: str | None = None, css: tuple[str, ...] = (),
             **options) -> folium.Map:
    """An empty map framed on ``bounds`` (lon/lat ``x0, y0, x1, y1`` of the data: no city is
    built in), with the legend CSS, extra ``css`` blocks and the basemap when one is set."""
    if bounds is not None and np.all(np.isfinite(bounds)):
        x0, y0, x1, y1 = (float(v) for v in bounds)
        options.setdefault("location", [(y0 + y1) / 2, (x0 + x1) / 2])
    m = folium.Map(tiles=None, control_scale=True, **options)
    m.get_root().header.add_child(Element(LEGEND_CSS), name="gridgov_css")
    for i, block in enumerate(css):
        m.get_root().header.add_child(Element(block), name=f"gridgov_css_{i}")
    if tiles:
        _tiles_layer(tiles, lang).add_to(m)
    return m


def finish_map(m: folium.Map, *, legend: str | None, attribution: str | None, bounds,
               collapsed: bool = True, east_room: float = 0.0) -> folium.Map:
    """Legend (HTML built from escaped parts), attribution, layer control, view on ``bounds``.

    ``east_room`` widens the view to the east by that share of the width (room for a legend
    in the lower right corner; bounds, not Leaflet's padding, which gives a NaN zoom in a
    not-yet-laid-out iframe).
    """
    if legend:
        HtmlControl(legend).add_to(m)
    if attribution:
        Attribution(attribution).add_to(m)
    folium.LayerControl(collapsed=collapsed, position="topright").add_to(m)
    if bounds is not None and np.all(np.isfinite(bounds)):
        x0, y0, x1, y1 = (float(v) for v in bounds)
        m.fit_bounds([[y0, x0], [y1, x1 + east_room * (x1 - x0)]])
    return m


def outline_layer(frame: gpd.GeoDataFrame, name: str, style: dict) -> folium.FeatureGroup:
    """Geometry only (no properties, not interactive): outlines drawn over a choropleth."""
    fg = folium.FeatureGroup(name=name, show=True)
    folium.GeoJson(json.loads(frame[[frame.geometry.name]].to_json(drop_id=True)),
                   style_function=lambda f: style, interactive=False).add_to(fg)
    return fg


def street_density(streets: gpd.GeoDataFrame, communities: gpd.GeoDataFrame | None
                   ) -> gpd.GeoDataFrame:
    """``streets`` with ``households`` and ``density`` (households per km² of their
    communities' area, from :func:`prepare_display`'s community columns) for the street level."""
    out = streets.copy()
    if communities is None or communities.empty or "street_code" not in communities:
        out["households"] = np.nan
        out["density"] = np.nan
        return out
    c = communities.assign(
        hh=pd.to_numeric(communities["households"], errors="coerce").fillna(0),
        km2=pd.to_numeric(communities["area_km2"], errors="coerce"))
    g = c.groupby("street_code")[["hh", "km2"]].sum(min_count=1)
    hh = out["street_code"].map(g["hh"])
    km2 = out["street_code"].map(g["km2"])
    out["households"] = hh.astype(float)
    out["density"] = (hh / km2.where(km2 > 0)).astype(float).round(0)
    return out


def street_level(display: Display, street_code: str | None, max_communities: int | None = None) -> Display:
    """What the map page draws of a large project (more than ``max_communities``, default
    :data:`MAP_MAX_COMMUNITIES`, communities): without a street, the streets filled by household density and the barriers;
    with one, every street's outline and that street's communities, buildings and special
    units. A project within the limit is drawn as it is."""
    layers = display.layers
    communities = layers.get("communities")
    limit = MAP_MAX_COMMUNITIES if max_communities is None else max_communities
    if communities is None or len(communities) <= limit:
        return display
    out = dict(layers)
    if street_code is None:
        out.pop("communities", None)
        out.pop("special_units", None)
        if layers.get("streets") is not None:
            out["streets"] = street_density(layers["streets"], communities)
    else:
        out["communities"] = communities[communities["street_code"] == street_code]
        units = layers.get("special_units")
        if units is not None and "street_code" in units:
            out["special_units"] = units[units["street_code"] == street_code]
    return Display(layers=out, shifted_to=display.shifted_to, shift_ok=display.shift_ok)


@dataclass
class MapInfo:
    """What the map shows, for captions and tests."""

    buildings_total: int = 0
    buildings_drawn: int = 0
    breaks: list[float] = field(default_factory=list)
    layers: list[str] = field(default_factory=list)


def build_map(
    display: Display,
    *,
    lang: str = "zh",
    street_code: str | None = None,
    tiles: str | None = None,
    attribution: str | None = None,
    max_buildings: int = MAX_BUILDINGS,
) -> tuple[folium.Map, MapInfo]:
    """Assemble the folium map: communities density, streets, barriers, special units, buildings.

    ``street_code`` selects one street: the map zooms to it and draws its buildings.
    """
    layers = display.layers
    info = MapInfo()
    streets = layers.get("streets")
    communities = layers.get("communities")
    frame = next((f for f in (streets, communities) if f is not None and not f.empty), None)
    m = base_map(None if frame is None else frame.total_bounds, lang=lang, tiles=tiles,
                 zoom_start=11)

    if communities is not None and not communities.empty:
        info.breaks = breaks = density_breaks(communities["density"])
        data, fields = _features(communities, [
            "community_name", "community_code", "households", "residents", "density", "area_km2"])
        opacity = 0.55 if tiles else 0.75  # let a basemap show through
        styles = [{"fillColor": density_color(d, breaks), "color": "#ffffff", "weight": 0.8,
                   "fillOpacity": opacity} for d in communities["density"]]
        fg = folium.FeatureGroup(name=t("layer.communities", lang), show=True)
        CompactGeoJson(
            data,
            style_function=by_position(styles),
            highlight_function=lambda f: {"weight": 2.5, "color": "#333333"},
            tooltip=_tooltip(fields, lang),
            smooth_factor=1.0,
        ).add_to(fg)
        fg.add_to(m)
        info.layers.append("communities")

    barriers = layers.get("barriers")
    kinds: list[str] = []
    if barriers is not None and not barriers.empty:
        barriers = barriers.copy()
        kinds = sorted(barriers["kind"].dropna().astype(str).unique())
        barriers["kind_label"] = [label("kind", k, lang) for k in barriers["kind"]]
        data, fields = _features(barriers, ["kind_label", "name"])
        styles = [{**BARRIER_STYLES.get(k, BARRIER_DEFAULT), "opacity": 0.9}
                  for k in barriers["kind"]]
        fg = folium.FeatureGroup(name=t("layer.barriers", lang), show=True)
        CompactGeoJson(
            data,
            style_function=by_position(styles),
            tooltip=_tooltip(fields, lang),
        ).add_to(fg)
        fg.add_to(m)
        info.layers.append("barriers")

    if streets is not None and not streets.empty:
        streets = streets.copy()
        streets["function_type"] = [
            None if pd.isna(v) else label("function_type", v, lang)
            for v in streets["function_type"]
        ]
        tip = ["street_name", "street_code", "function_type"]
        line = {"color": "#1b3a5c", "weight": 2.2, "fill": False, "opacity": 0.9}
        if "density" in streets.columns and communities is None:
            # the street level: streets filled by household density (street_density)
            info.breaks = breaks = density_breaks(streets["density"])
            opacity = 0.55 if tiles else 0.75
            styles = [{**line, "weight": 1.2, "fill": True, "fillOpacity": opacity,
                       "fillColor": density_color(d, breaks)} for d in streets["density"]]
            style_function = by_position(styles)
            tip += ["households", "density"]
        else:
            def style_function(f):
                return line
        data, fields = _features(streets, tip)
        fg = folium.FeatureGroup(name=t("layer.streets", lang), show=True)
        CompactGeoJson(
            data,
            style_function=style_function,
            highlight_function=lambda f: {"weight": 4, "color": "#0b63c4"},
            tooltip=_tooltip(fields, lang),
        ).add_to(fg)
        fg.add_to(m)
        info.layers.append("streets")

    buildings = layers.get("buildings")
    if street_code and buildings is not None:
        sel = buildings[buildings["street_code"] == street_code]
        info.buildings_total = len(sel)
        if len(sel) > max_buildings:
            sel = sel.nlargest(max_buildings, "households")
        info.buildings_drawn = len(sel)
        if len(sel):
            sel = sel.copy()
            hh = pd.to_numeric(sel["households"], errors="coerce").fillna(0)
            sel["r"] = np.clip(2 + np.sqrt(hh) / 2.5, 2, 9).round(1)
            data, fields = _features(sel, ["building_id", "households", "residents"])
            styles = [{"radius": float(r)} for r in sel["r"]]
            fg = folium.FeatureGroup(name=t("layer.buildings", lang), show=True)
            CompactGeoJson(
                data,
                marker=folium.CircleMarker(radius=3, weight=0.6, color="#08306b",
                                           fill=True, fill_color=BUILDING_COLOR, fill_opacity=0.7),
                style_function=by_position(styles),
                tooltip=_tooltip(fields, lang),
            ).add_to(fg)
            fg.add_to(m)
            info.layers.append("buildings")

    units = layers.get("special_units")
    unit_types: list[str] = []
    if units is not None and not units.empty:
        units = units.copy()
        unit_types = sorted(units["unit_type"].dropna().astype(str).unique(),
                            key=lambda u: list(UNIT_COLORS).index(u) if u in UNIT_COLORS else 99)
        units["type_label"] = [label("unit_type", u, lang) for u in units["unit_type"]]
        data, fields = _features(units, ["unit_name", "type_label", "households", "headcount"])
        styles = [{"fillColor": UNIT_COLORS.get(u, UNIT_COLORS["other"])}
                  for u in units["unit_type"]]
        fg = folium.FeatureGroup(name=t("layer.special_units", lang), show=True)
        CompactGeoJson(
            data,
            marker=folium.CircleMarker(radius=5, weight=1.2, color="#ffffff", fill=True,
                                       fill_opacity=0.95),
            style_function=by_position(styles),
            tooltip=_tooltip(fields, lang),
        ).add_to(fg)
        fg.add_to(m)
        info.layers.append("special_units")

    focus = None
    if street_code and streets is not None:
        focus = streets[streets["street_code"] == street_code]
    if focus is None or focus.empty:
        focus = frame
    finish_map(m, legend=legend_html(info.breaks, unit_types, kinds, lang,
                                     buildings="buildings" in info.layers),
               attribution=attribution, collapsed=False,
               bounds=None if focus is None else focus.total_bounds)
    return m, info


# --------------------------------------------------------------------------------------------
# compact GeoJSON (#13.4: maps that stay light)


def _geojson_template_source() -> str | None:
    """folium.GeoJson's template text with its embedded data replaced by a packed form, or
    None when this folium's template does not have the expected line (then nothing is packed)."""
    import inspect
    import re

    src = inspect.getsource(folium.GeoJson)
    m = re.search(r'_template = Template\(\s*"""(.*?)"""', src, re.S)
    old = "{{ this.get_name() }}_add({{ this.data|tojson }});"
    if not m or old not in m.group(1):
        return None
    new = ("{{ this.get_name() }}_add(" + UNPACK_JS + "({{ this.packed_js }}));")
    return m.group(1).replace(old, new)


#: Rebuilds the FeatureCollection from :func:`pack_features`' form (in the map's browser).
UNPACK_JS = """(function (p) {
  var x = 0, y = 0, feats = [];
  function ring(d) {
    var out = [];
    for (var i = 0; i < d.length; i += 2) {
      x += d[i]; y += d[i + 1]; out.push([x / p.q, y / p.q]);
    }
    return out;
  }
  for (var n = 0; n < p.g.length; n++) {
    var g = p.g[n], geom;
    var kind = p.t[n];
    if (kind === 1) {
      geom = {type: "MultiPolygon", coordinates: g.map(function (poly) { return poly.map(ring); })};
    } else if (kind === 2) {
      geom = {type: "Point", coordinates: ring(g)[0]};
    } else if (kind === 3) {
      geom = {type: "LineString", coordinates: ring(g)};
    } else if (kind === 4) {
      geom = {type: "MultiLineString", coordinates: g.map(ring)};
    } else {
      geom = {type: "Polygon", coordinates: g.map(ring)};
    }
    var props = {};
    for (var k = 0; k < p.k.length; k++) {
      var v = p.c[k][n];
      props[p.k[k]] = p.s[k] ? p.s[k][v] : v;
    }
    var f = {type: "Feature", properties: props, geometry: geom};
    if (p.i) { f.id = String(n); }
    feats.push(f);
  }
  return {type: "FeatureCollection", features: feats};
})"""


def _script_json(value) -> str:
    """JSON safe inside a <script> element (no '<', '>', '&', quote can end it)."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    for ch, code in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("'", "\\u0027"),
                     ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(ch, code)
    return text


def pack_features(data: dict, decimals: int = DECIMALS) -> dict | None:
    """A FeatureCollection of (multi)polygons, points and (multi)lines in a compact form:
    coordinates as integer steps of 10^-decimals degrees, each the difference to the previous
    point; properties by column, text columns as indexes into their list of distinct values.
    None when a feature is of another kind (MultiPoint, GeometryCollection, none) or a value is
    neither text nor a finite number (then the data is sent as folium sends it).

    Values are sent as they are (already escaped by the caller); :data:`UNPACK_JS` rebuilds the
    same features, with ``id`` = position when the features had positional ids.
    """
    feats = data.get("features") or []
    q = 10 ** decimals
    keys: list[str] = []
    for f in feats:
        for k in f.get("properties") or {}:
            if k not in keys:
                keys.append(k)
    cols: list[list] = [[] for _ in keys]
    types: list[int] = []
    geoms: list[list] = []
    px = py = 0
    positional = bool(feats) and all(str(f.get("id")) == str(i) for i, f in enumerate(feats))

    def ring(coords) -> list[int]:
        nonlocal px, py
        out: list[int] = []
        for pt in coords:
            ix, iy = round(pt[0] * q), round(pt[1] * q)
            out += (ix - px, iy - py)
            px, py = ix, iy
        return out

    for f in feats:
        g = f.get("geometry") or {}
        if g.get("type") == "Polygon":
            types.append(0)
            geoms.append([ring(r) for r in g["coordinates"]])
        elif g.get("type") == "MultiPolygon":
            types.append(1)
            geoms.append([[ring(r) for r in poly] for poly in g["coordinates"]])
        elif g.get("type") == "Point":
            types.append(2)
            geoms.append(ring([g["coordinates"]]))
        elif g.get("type") == "LineString":
            types.append(3)
            geoms.append(ring(g["coordinates"]))
        elif g.get("type") == "MultiLineString":
            types.append(4)
            geoms.append([ring(r) for r in g["coordinates"]])
        else:
            return None
        props = f.get("properties") or {}
        for col, k in zip(cols, keys):
            v = props.get(k)
            if isinstance(v, bool) or not (v is None or isinstance(v, (str, int, float))):
                return None
            if isinstance(v, float) and not math.isfinite(v):
                return None
            col.append(v)
    tables: list[list[str] | None] = []
    for i, col in enumerate(cols):
        if col and all(isinstance(v, str) for v in col):
            distinct = list(dict.fromkeys(col))
            index = {s: j for j, s in enumerate(distinct)}
            cols[i] = [index[v] for v in col]
            tables.append(distinct)
        else:
            tables.append(None)
    return {"q": q, "t": types, "g": geoms, "k": keys, "c": cols, "s": tables,
            "i": positional}


class CompactGeoJson(folium.GeoJson):
    """folium's GeoJson (same styles, highlight and tooltip) whose features travel packed
    (:func:`pack_features`, about a third of the text) and are unpacked in the browser.
    Falls back to folium's own embedding when the data cannot be packed."""

    _packed_template_source = None

    def __init__(self, data, *args, decimals: int = DECIMALS, **kwargs):
        super().__init__(data, *args, **kwargs)
        packed = pack_features(self.data) if isinstance(self.data, dict) else None
        source = _geojson_template_source() if packed is not None else None
        if packed is not None and source is not None and self.embed:
            from folium.features import Template as FoliumTemplate  # has 'tojavascript'

            self.packed_js = _script_json(packed)
            self._template = FoliumTemplate(source)


# --------------------------------------------------------------------------------------------
# restyling in the browser (#13.4: a toggle that only restyles re-sends no geometry)


def pack_columns(frame: pd.DataFrame, fields: list[str], decimals: int | None = None) -> dict:
    """Columns ``fields`` of ``frame`` in the compact form of :func:`pack_features`'
    properties: ``{"k": names, "c": columns, "s": tables}`` where a text column is a list of
    indexes into its table of distinct texts (every text HTML-escaped, :func:`esc`) and a
    number column is a list of numbers; missing values are ``null`` (shown as "—").

    Numbers are sent as they are (round them first); ``decimals`` rounds floats here.
    """
    cols: list[list] = []
    tables: list[list[str] | None] = []
    for f in fields:
        values = frame[f].tolist() if f in frame.columns else [None] * len(frame)
        texts = [v for v in values if isinstance(v, str)]
        if texts:
            distinct = list(dict.fromkeys(esc(v) for v in texts))
            index = {s: j for j, s in enumerate(distinct)}
            cols.append([index[esc(v)] if isinstance(v, str) else None for v in values])
            tables.append(distinct)
            continue
        col: list = []
        for v in values:
            if v is None or isinstance(v, bool) or not isinstance(v, (int, float, np.number)):
                col.append(None)
                continue
            v = v.item() if isinstance(v, np.generic) else v
            if isinstance(v, float):
                if not math.isfinite(v):
                    col.append(None)
                    continue
                if decimals is not None:
                    v = round(v, decimals)
                if v.is_integer() and abs(v) < 2 ** 53:
                    v = int(v)
            col.append(v)
        cols.append(col)
        tables.append(None)
    return {"k": list(fields), "c": cols, "s": tables}


def layer_json(value) -> str:
    """``value`` as compact JSON text (a map layer's data for :func:`app_pages._mapview.send_layer`)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)

"""The planner's maps (no Streamlit): a plan's grids coloured by households or workload,
violations hatched, locked grids outlined, grid numbers, the selected unit.

Grid ids and numbers can come from a project's own ``current_grids`` file: every text reaches
the map escaped (:func:`app_pages._mapbuild.esc`).
"""
from __future__ import annotations

import json

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
from branca.element import MacroElement
from jinja2 import Template

from app_pages._mapbuild import (
    DISPLAY_CRS,
    NO_DATA_COLOR,
    _features,
    base_map,
    by_position,
    class_colors,
    density_breaks,
    esc,
    finish_map,
    outline_layer,
    round_coords,
    shift_to,
    tooltip_for,
)
from app_pages.i18n import t

DEDICATED_COLOR = "#bcb3d9"
VIOLATION_COLOR = "#d7191c"
LOCKED_COLOR = "#1b1b3a"
SELECT_COLOR = "#ffd400"
HATCH_ID = "gridgov-hatch"

PLANNER_CSS = f"""
<style>
.gridgov-grid-label {{ font: 600 11px/14px "Noto Sans CJK SC", "Microsoft YaHei", sans-serif;
  color: #1d1d1d; text-align: center; text-shadow: 0 0 2px #fff, 0 0 2px #fff, 0 0 3px #fff;
  white-space: nowrap; pointer-events: none; }}
.gridgov-legend i.hatch {{ background: repeating-linear-gradient(45deg, {VIOLATION_COLOR} 0 2px,
  transparent 2px 6px); border: 2px dashed {VIOLATION_COLOR}; }}
.gridgov-legend i.locked {{ background: transparent; border: 3px solid {LOCKED_COLOR}; }}
.leaflet-container path.leaflet-interactive:focus {{ outline: none; }}
.gridgov-legend i.sel {{ background: {SELECT_COLOR}; border: 2px solid #b08d00; }}
</style>
"""


class HatchPattern(MacroElement):
    """An SVG hatch pattern in the map's overlay pane, usable as ``fillColor: url(#id)``.

    Plain SVG, no plugin (folium's StripePattern loads leaflet.pattern from a CDN).
    """

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        (function () {
            var map = {{ this._parent.get_name() }};
            function addHatch() {
                var svg = map.getPanes().overlayPane.querySelector("svg");
                if (!svg || svg.querySelector("#{{ this.pattern_id }}")) { return; }
                var ns = "http://www.w3.org/2000/svg";
                var defs = document.createElementNS(ns, "defs");
                var p = document.createElementNS(ns, "pattern");
                p.setAttribute("id", "{{ this.pattern_id }}");
                p.setAttribute("patternUnits", "userSpaceOnUse");
                p.setAttribute("width", "7");
                p.setAttribute("height", "7");
                p.setAttribute("patternTransform", "rotate(45)");
                var l = document.createElementNS(ns, "line");
                l.setAttribute("x1", "0"); l.setAttribute("y1", "0");
                l.setAttribute("x2", "0"); l.setAttribute("y2", "7");
                l.setAttribute("stroke", {{ this.color|tojson }});
                l.setAttribute("stroke-width", "2.2");
                p.appendChild(l);
                defs.appendChild(p);
                svg.insertBefore(defs, svg.firstChild);
            }
            addHatch();
            map.on("layeradd", addHatch);
        })();
        {% endmacro %}
        """
    )

    def __init__(self, pattern_id: str = HATCH_ID, color: str = VIOLATION_COLOR):
        super().__init__()
        self._name = "HatchPattern"
        self.pattern_id = pattern_id
        self.color = color




def status_label(status: object, lang: str) -> str:
    return t(f"planner.status.{status}", lang) if isinstance(status, str) else "—"


def display_grids(grids: gpd.GeoDataFrame, tiles_crs: str, locked: set, lang: str
                  ) -> gpd.GeoDataFrame:
    """Grids in the display CRS with the tooltip and styling properties."""
    g = grids.to_crs(DISPLAY_CRS)
    g, _ = shift_to(g, tiles_crs)
    g = round_coords(g, 6)
    out = gpd.GeoDataFrame({
        "grid_id": g["grid_id"].astype(str),
        "number": g["grid_id"].astype(str).str[-3:],
        "grid_type": g["grid_type"],
        "type_label": [t(f"planner.type.{v}", lang) for v in g["grid_type"]],
        "households": g["households"].astype("int64"),
        "workload": g["workload"].astype(float).round(0),
        "status_label": [status_label(s, lang) + (t("planner.locked_suffix", lang)
                                                  if gid in locked else "")
                         for s, gid in zip(g["status"], g["grid_id"])],
        "bad": ~g["within_norm"].astype(bool).to_numpy(),
        "locked": g["grid_id"].isin(locked).to_numpy(),
    }, geometry=g.geometry.values, crs=g.crs)
    return out


def class_breaks(frames: list[gpd.GeoDataFrame], column: str) -> list[float]:
    """Shared classes of the basic grids of both maps, so their colours compare."""
    values = pd.concat([f.loc[f["grid_type"] == "basic", column] for f in frames])
    return density_breaks(values, 5)


def fill_color(value: float, breaks: list[float]) -> str:
    if not breaks or value is None or not np.isfinite(value):
        return NO_DATA_COLOR
    colors = class_colors(len(breaks))
    for color, upper in zip(colors, breaks):
        if value <= upper:
            return color
    return colors[-1]


def legend(breaks: list[float], column: str, lang: str, *, selected: bool) -> str:
    parts = [f"<b>{t(f'planner.legend.{column}', lang)}</b>"]
    lower = None
    for color, upper in zip(class_colors(len(breaks)), breaks):
        text = f"≤ {upper:,.0f}" if lower is None else f"{lower:,.0f}–{upper:,.0f}"
        parts.append(f'<i style="background:{color}"></i>{text}<br>')
        lower = upper
    parts.append(f'<i style="background:{DEDICATED_COLOR}"></i>'
                 f'{t("planner.legend.dedicated", lang)}<br>')
    parts.append(f'<i class="hatch"></i>{t("planner.legend.violation", lang)}<br>')
    parts.append(f'<i class="locked"></i>{t("planner.legend.locked", lang)}<br>')
    if selected:
        parts.append(f'<i class="sel"></i>{t("planner.legend.selected", lang)}<br>')
    return "".join(parts)


def grid_map(grids: gpd.GeoDataFrame, *, column: str, breaks: list[float], lang: str,
             tiles: str | None, attribution: str | None, cells: gpd.GeoDataFrame | None = None,
             selectable: bool = False) -> folium.Map:
    """A plan's grids coloured by ``column``, violations hatched, locked grids outlined."""
    bounds = grids.total_bounds if not grids.empty else None
    m = base_map(bounds, lang=lang, tiles=tiles, css=(PLANNER_CSS,), zoom_start=14)
    frame = grids.copy()
    frame["_fill"] = [DEDICATED_COLOR if gt == "dedicated" else fill_color(v, breaks)
                      for gt, v in zip(frame["grid_type"], frame[column])]
    opacity = 0.55 if tiles else 0.8
    data, fields = _features(frame, [
        "grid_id", "type_label", "households", "workload", "status_label"])
    styles = [{"fillColor": fill, "fillOpacity": opacity,
               "color": LOCKED_COLOR if lk else "#ffffff", "weight": 3.5 if lk else 1.6,
               "opacity": 1} for fill, lk in zip(frame["_fill"], frame["locked"])]
    aliases = {"grid_id": "planner.tip.grid_id", "type_label": "planner.tip.type",
               "households": "planner.tip.households", "workload": "planner.tip.workload",
               "status_label": "planner.tip.status"}
    fg = folium.FeatureGroup(name=t("planner.layer.grids", lang), show=True)
    folium.GeoJson(
        data,
        style_function=by_position(styles),
        highlight_function=lambda f: {"weight": 3, "color": "#333333"},
        tooltip=tooltip_for(fields, [t(aliases[f], lang) for f in fields]),
    ).add_to(fg)
    fg.add_to(m)
    if cells is not None and not cells.empty:
        outline_layer(cells, t("planner.layer.cells", lang),
                      {"color": "#ffffff", "weight": 0.5, "opacity": 0.75, "fill": False}).add_to(m)
    bad = frame[frame["bad"]]
    if not bad.empty:
        HatchPattern().add_to(m)
        vg = folium.FeatureGroup(name=t("planner.layer.violations", lang), show=True)
        folium.GeoJson(
            json.loads(bad[[bad.geometry.name]].to_json(drop_id=True)),
            style_function=lambda f: {"fillColor": f"url(#{HATCH_ID})", "fillOpacity": 0.9,
                                      "color": VIOLATION_COLOR, "weight": 2.5,
                                      "dashArray": "6 4", "opacity": 1},
            interactive=False,
        ).add_to(vg)
        vg.add_to(m)
    lg = folium.FeatureGroup(name=t("planner.layer.labels", lang), show=True)
    points = frame.representative_point()
    for number, pt in zip(frame["number"], points):
        folium.Marker(
            [pt.y, pt.x], interactive=False,
            icon=folium.DivIcon(html=f'<div class="gridgov-grid-label">{esc(number)}</div>',
                                icon_size=(32, 14), icon_anchor=(16, 7)),
        ).add_to(lg)
    lg.add_to(m)
    return finish_map(m, legend=legend(breaks, column, lang, selected=selectable),
                      attribution=attribution, bounds=bounds)


def focus_view(grids: gpd.GeoDataFrame, grid_id) -> dict:
    """``center``/``zoom`` of st_folium on one grid (the map moves without being rebuilt)."""
    hit = grids[grids["grid_id"] == grid_id] if grid_id else grids.iloc[0:0]
    if hit.empty:
        return {}
    x0, y0, x1, y1 = hit.total_bounds
    span = max(x1 - x0, (y1 - y0) * 1.3, 1e-4)
    # the grid fills about two thirds of a ~500 px map: 256·2^z/360 px per degree
    zoom = int(max(13, min(18, np.floor(np.log2(500.0 * 360 / 256 / span)))))
    return {"center": [round((y0 + y1) / 2, 6), round((x0 + x1) / 2, 6)], "zoom": zoom}


def selected_layer(cells: gpd.GeoDataFrame, cell_ids) -> folium.FeatureGroup | None:
    """The selected unit(s) as a dynamic layer (added without re-rendering the map)."""
    if cell_ids is None:
        return None
    if isinstance(cell_ids, (str, int, np.integer)):
        cell_ids = [cell_ids]
    sel = cells[cells["cell_id"].isin(list(cell_ids))]
    if sel.empty:
        return None
    fg = folium.FeatureGroup(name="selected")
    folium.GeoJson(
        json.loads(sel[[sel.geometry.name]].to_json(drop_id=True)),
        style_function=lambda f: {"color": "#b08d00", "weight": 3, "fillColor": SELECT_COLOR,
                                  "fillOpacity": 0.55},
        interactive=False,
    ).add_to(fg)
    return fg



"""Planner page (网格规划): see, re-draw, edit, compare, save and export one community's grids.

All the work is in :mod:`pipelines.planner` (no Streamlit there); this page keeps one *edit*
per community in ``st.session_state["planner_edits"]`` (plain data: the working labels, the
locked grids, the undo stack) and draws two maps side by side: the current plan and the
proposal being edited. Clicking a unit on the proposal map selects it: that map is the only
one returning anything (``returned_objects=["last_object_clicked"]``, a fixed key), and the
selected unit is drawn as a dynamic layer (``feature_group_to_add``), so a click re-runs the
script but does not rebuild the map. Every button acts in an ``on_click`` callback, before the
script runs, so the maps and tables always show the edit's latest state.

The database is read through the cached read-only loaders (opened and closed per load, keyed by
the file's mtime). Saving opens it read-write for the duration of the write only
(:func:`pipelines.planner.save_plan`); the new mtime makes every loader read the new plan.
"""
from __future__ import annotations

import functools
import json
import math

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import streamlit as st
from branca.element import Element, MacroElement
from jinja2 import Template
from streamlit_folium import st_folium

from app_pages import assets
from app_pages._mapbuild import (
    DISPLAY_CRS,
    LEGEND_CSS,
    NO_DATA_COLOR,
    Attribution,
    HtmlControl,
    _features,
    _tiles_layer,
    class_colors,
    density_breaks,
    detect_tiles_crs,
    round_coords,
    shift_to,
)
from app_pages._shared import current_db, load_or_stop, open_db, project_attribution, show_db_error, vendor_assets
from app_pages.i18n import current_lang, t
from pipelines import planner as pl

CUR_KEY = "planner_map_current"
EDIT_KEY = "planner_map_edit"
MAP_HEIGHT = 470
XLSX_MIME = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
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


# --------------------------------------------------------------------------------------------
# cached loaders (key: database path + mtime) and derived figures (key: + labels + norm)


@st.cache_data(show_spinner=False, max_entries=4)
def load_index(db: str, mtime: float) -> pd.DataFrame:
    """Streets and communities with cells (the two selectors)."""
    with open_db(db) as con:
        return pl.list_communities(con)


@st.cache_resource(show_spinner=False, max_entries=16)
def load_ws(db: str, mtime: float, code: str) -> pl.Workspace:
    """One community's cells, contiguity and current grids (shared, read-only)."""
    with open_db(db) as con:
        return pl.load_workspace(con, code)


@st.cache_data(show_spinner=False, max_entries=64)
def derived(db: str, mtime: float, code: str, key: tuple | None, lo: int, hi: int) -> dict:
    """Grids (metric CRS) and the checklist of a labelling (``key``: labels in cell order)."""
    ws = load_ws(db, mtime, code)
    labels = None if key is None else pd.Series(list(key), index=ws.cells["cell_id"].to_numpy())
    norms = pl.norms_with(ws, lo, hi)
    grids = pl.plan_grids(ws, labels, norms)
    return {"grids": grids, "checks": pl.checklist(ws, labels, norms)}


@st.cache_data(show_spinner=False, max_entries=32)
def comparison(db: str, mtime: float, code: str, key: tuple | None, lo: int, hi: int
               ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(figures current vs proposed, building moves) for a proposal."""
    ws = load_ws(db, mtime, code)
    norms = pl.norms_with(ws, lo, hi)
    cur = derived(db, mtime, code, None, lo, hi)["grids"]
    if key is None:
        return pl.compare(ws, None, norms, current_grids=cur), pd.DataFrame()
    labels = pd.Series(list(key), index=ws.cells["cell_id"].to_numpy())
    new = derived(db, mtime, code, key, lo, hi)["grids"]
    table = pl.compare(ws, labels, norms, current_grids=cur, proposed_grids=new)
    moves = pl.diff(ws, labels)["moves"]
    return table, moves


@st.cache_data(show_spinner=False, max_entries=8)
def display_cells(db: str, mtime: float, code: str, tiles_crs: str) -> gpd.GeoDataFrame:
    """Cell outlines in the display CRS (rounded)."""
    ws = load_ws(db, mtime, code)
    frame, _ = shift_to(ws.cells_wgs84[["cell_id", "geometry"]], tiles_crs)
    return round_coords(frame, 6)




# --------------------------------------------------------------------------------------------
# helpers


def bilingual(key: str) -> str:
    """A fixed option label (widget option labels must not change with the language)."""
    zh, en = t(key, "zh"), t(key, "en")
    return zh if zh == en else f"{zh} {en}"


def status_label(status: object, lang: str) -> str:
    return t(f"planner.status.{status}", lang) if isinstance(status, str) else "—"


def fmt_metric(metric: str, value: object, lang: str) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    if metric == "contiguous":
        return t("planner.yes", lang) if bool(value) else t("planner.no", lang)
    if metric == "share_within_norm":
        return f"{float(value):.0%}"
    if metric in ("workload_cv", "mean_compactness"):
        return f"{float(value):.3f}"
    return f"{round(float(value)):,}"


def say(kind: str, zh: str, en: str) -> None:
    """Report the outcome of the action under way (kept until the next action).

    Messages stay on screen across re-runs (a map re-mount or a language switch re-runs the
    script) and are replaced by the next button press; :func:`begin` clears them.
    """
    st.session_state.setdefault("planner_msgs", []).append((kind, zh, en))


def begin(code: str) -> None:
    """A new action on community ``code``: forget the previous action's messages."""
    st.session_state["planner_msgs"] = []
    st.session_state["planner_msgs_code"] = code


def say_key(kind: str, key: str, **fmt) -> None:
    say(kind, t(key, "zh", **fmt), t(key, "en", **fmt))


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
    m = folium.Map(tiles=None, control_scale=True, zoom_start=14, location=[40.82, 111.67])
    m.get_root().header.add_child(Element(LEGEND_CSS), name="gridgov_css")
    m.get_root().header.add_child(Element(PLANNER_CSS), name="gridgov_planner_css")
    if tiles:
        _tiles_layer(tiles, lang).add_to(m)
    frame = grids.copy()
    frame["_fill"] = [DEDICATED_COLOR if gt == "dedicated" else fill_color(v, breaks)
                      for gt, v in zip(frame["grid_type"], frame[column])]
    opacity = 0.55 if tiles else 0.8
    data, fields = _features(frame, ["_fill", "locked"], [
        "grid_id", "type_label", "households", "workload", "status_label"])
    aliases = {"grid_id": "planner.tip.grid_id", "type_label": "planner.tip.type",
               "households": "planner.tip.households", "workload": "planner.tip.workload",
               "status_label": "planner.tip.status"}
    fg = folium.FeatureGroup(name=t("planner.layer.grids", lang), show=True)
    folium.GeoJson(
        data,
        style_function=lambda f: {
            "fillColor": f["properties"]["_fill"], "fillOpacity": opacity,
            "color": LOCKED_COLOR if f["properties"]["locked"] else "#ffffff",
            "weight": 3.5 if f["properties"]["locked"] else 1.6, "opacity": 1,
        },
        highlight_function=lambda f: {"weight": 3, "color": "#333333"},
        tooltip=folium.GeoJsonTooltip(fields=fields, aliases=[t(aliases[f], lang) for f in fields],
                                      localize=True, sticky=True, labels=True),
    ).add_to(fg)
    fg.add_to(m)
    if cells is not None and not cells.empty:
        cg = folium.FeatureGroup(name=t("planner.layer.cells", lang), show=True)
        folium.GeoJson(
            json.loads(cells[[cells.geometry.name]].to_json(drop_id=True)),
            style_function=lambda f: {"color": "#ffffff", "weight": 0.5, "opacity": 0.75,
                                      "fill": False},
            interactive=False,
        ).add_to(cg)
        cg.add_to(m)
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
            icon=folium.DivIcon(html=f'<div class="gridgov-grid-label">{number}</div>',
                                icon_size=(32, 14), icon_anchor=(16, 7)),
        ).add_to(lg)
    lg.add_to(m)
    HtmlControl(legend(breaks, column, lang, selected=selectable)).add_to(m)
    if attribution:
        Attribution(attribution).add_to(m)
    folium.LayerControl(collapsed=True, position="topright").add_to(m)
    if not frame.empty:
        x0, y0, x1, y1 = frame.total_bounds
        m.fit_bounds([[y0, x0], [y1, x1]])
    return m


def selected_layer(cells: gpd.GeoDataFrame, cell_id) -> folium.FeatureGroup | None:
    """The selected unit as a dynamic layer (added without re-rendering the map)."""
    if cell_id is None:
        return None
    sel = cells[cells["cell_id"] == cell_id]
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


# --------------------------------------------------------------------------------------------
# callbacks (run before the script, so everything below shows the new state)


def _edit(code: str) -> dict:
    return st.session_state["planner_edits"][code]


def cb_map_click(ident: tuple, tiles_crs: str) -> None:
    """A click on the proposal map: pick the unit under it."""
    value = st.session_state.get(EDIT_KEY) or {}
    point = value.get("last_object_clicked") if isinstance(value, dict) else None
    if not point:
        return
    lon, lat = float(point["lng"]), float(point["lat"])
    if tiles_crs == "GCJ-02":
        from geo.chinacrs import gcj02_to_wgs84

        lon, lat = (float(v) for v in gcj02_to_wgs84(lon, lat))
    ws = load_ws(*ident)
    cell = pl.cell_at(ws, lon, lat)
    if cell is not None:
        begin(ident[2])
        st.session_state[f"planner_cell_{ident[2]}"] = cell


def _norm_from_state(code: str) -> tuple[int, int] | None:
    lo = int(st.session_state[f"planner_min_{code}"])
    hi = int(st.session_state[f"planner_max_{code}"])
    return None if lo > hi else (lo, hi)


def cb_redraw(ident: tuple) -> None:
    code = ident[2]
    begin(code)
    norm = _norm_from_state(code)
    if norm is None:
        say_key("error", "planner.bad_norm")
        return
    ws = load_ws(*ident)
    mode = st.session_state[f"planner_mode_{code}"]
    weights = {"balance": float(st.session_state[f"planner_wb_{code}"]),
               "compactness": float(st.session_state[f"planner_wc_{code}"])}
    try:
        res = pl.edit_redraw(ws, _edit(code), households_min=norm[0], households_max=norm[1],
                             weights=weights, mode=mode)
    except pl.PlannerError as exc:
        say("error", exc.zh, exc.en)
        return
    st.session_state[f"planner_seconds_{code}"] = res.seconds
    say("success", t("planner.redraw_done", "zh", mode=t(f"planner.mode.{mode}", "zh"),
                     seconds=res.seconds),
        t("planner.redraw_done", "en", mode=t(f"planner.mode.{mode}", "en"),
          seconds=res.seconds))


def cb_undo(ident: tuple) -> None:
    begin(ident[2])
    ws = load_ws(*ident)
    step = pl.edit_undo(ws, _edit(ident[2]))
    if step is None:
        say_key("info", "planner.nothing_to_undo")
    else:
        op = step["op"]
        say("info", t("planner.undone", "zh", what=t(f"planner.op.{op}", "zh")),
            t("planner.undone", "en", what=t(f"planner.op.{op}", "en")))


def cb_discard(ident: tuple) -> None:
    begin(ident[2])
    ws = load_ws(*ident)
    edit = _edit(ident[2])
    if pl.has_proposal(edit):
        pl.edit_reset(ws, edit)


def cb_move(ident: tuple) -> None:
    code = ident[2]
    begin(code)
    cell = st.session_state.get(f"planner_cell_{code}")
    target = st.session_state.get(f"planner_to_{code}_{cell}")
    if cell is None or target is None:
        return
    ws = load_ws(*ident)
    res = pl.edit_move(ws, _edit(code), cell, target)
    if res.ok:
        say_key("success", "planner.moved", cell=cell, grid=target)
    else:
        say("error", t("planner.refused", "zh", reason=res.reason_zh),
            t("planner.refused", "en", reason=res.reason_en))


def cb_lock(ident: tuple, locked: bool) -> None:
    code = ident[2]
    begin(code)
    grid = st.session_state.get(f"planner_lockpick_{code}")
    if grid:
        pl.edit_lock(_edit(code), grid, locked)


def cb_save(ident: tuple) -> None:
    db, _mtime, code = ident
    begin(code)
    edit = _edit(code)
    if not pl.has_proposal(edit):
        say_key("warning", "planner.save_nothing")
        return
    norm = _norm_from_state(code)
    if norm is None:
        say_key("error", "planner.bad_norm")
        return
    ws = load_ws(*ident)
    labels = pl.working_labels(ws, edit)
    # No read-only handle may be open on the file while it is written (DuckDB allows one
    # configuration per file and process). The loaders open and close theirs per call; drop
    # their caches too, so nothing refers to the old file state, then write.
    load_index.clear()
    derived.clear()
    comparison.clear()
    display_cells.clear()
    try:
        saved = pl.save_plan(
            db, ws, labels, author=st.session_state.get("planner_author", ""),
            note=st.session_state.get("planner_note", ""), households_min=norm[0],
            households_max=norm[1],
            weights={"balance": float(st.session_state[f"planner_wb_{code}"]),
                     "compactness": float(st.session_state[f"planner_wc_{code}"])})
    except pl.PlannerError as exc:
        say("error", t("planner.save_failed", "zh", error=exc.zh),
            t("planner.save_failed", "en", error=exc.en))
        return
    load_ws.clear()
    st.session_state["planner_edits"].pop(code, None)
    st.session_state["planner_last_saved"] = saved.plan_id
    say_key("success", "planner.flash_saved", plan_id=saved.plan_id,
            parent=saved.parent_plan_id)


# --------------------------------------------------------------------------------------------
# the page

db, mtime = current_db()
lang = current_lang()
index = load_or_stop(load_index, db, mtime)

st.title(t("planner.title"))
st.caption(t("planner.intro"))

if index.empty:
    st.info(t("planner.no_plan"))
    st.code(f"gridgov run {db.parent}", language="bash")
    st.stop()

streets = index.drop_duplicates("street_code")
street_names = dict(zip(streets["street_code"], streets["street_name"]))
c1, c2 = st.columns(2)
street = c1.selectbox(t("planner.street"), list(streets["street_code"]), key="planner_street",
                      format_func=lambda c: f"{street_names.get(c, c)} ({c})")
comms = index[index["street_code"] == street]
comm_names = dict(zip(comms["community_code"], comms["community_name"]))
code = c2.selectbox(t("planner.community"), list(comms["community_code"]),
                    key=f"planner_community_{street}",
                    format_func=lambda c: f"{comm_names.get(c, c)} ({c})")
ident = (str(db), mtime, code)
try:
    ws = load_ws(*ident)
except pl.PlannerError as exc:
    st.info(exc.text(lang))
    st.code(f"gridgov run {db.parent}", language="bash")
    st.stop()
except Exception as exc:
    show_db_error(db, exc)

edits: dict = st.session_state.setdefault("planner_edits", {})
edit = edits.get(code)
if edit is None or edit.get("plan_id") != ws.plan_id:
    if edit is not None and pl.has_proposal(edit):
        begin(code)
        say_key("info", "planner.reset_by_plan", plan_id=ws.plan_id)
    edit = edits[code] = pl.new_edit(ws)

# ---- headline ----------------------------------------------------------------------------
basic_today = sum(1 for g in set(ws.current.dropna()) if ws.grid_type.get(g) != "dedicated")
k1, k2, k3, k4, k5 = st.columns(5)
k1.metric(t("planner.kpi.households"), f"{int(ws.cells['households'].sum()):,}", border=True)
k2.metric(t("planner.kpi.cells"), f"{len(ws.cells):,}", border=True)
k3.metric(t("planner.kpi.grids"), f"{basic_today}", border=True)
k4.metric(t("planner.kpi.kind"), t(f"planner.kind.{ws.kind}"), border=True)
k5.metric(t("planner.kpi.plan"), ws.plan_id, border=True)

# ---- controls ----------------------------------------------------------------------------
norm0 = ws.norm()
w0 = pl.weights_with(ws)
# Streamlit forgets a widget's value when it is not drawn (another community is shown), so
# each community's controls are also kept in a plain dict and restored from there.
controls: dict = st.session_state.setdefault("planner_controls", {}).setdefault(code, {})
control_keys = ((f"planner_min_{code}", int(norm0["households_min"])),
                (f"planner_max_{code}", int(norm0["households_max"])),
                (f"planner_wb_{code}", float(w0["balance"])),
                (f"planner_wc_{code}", float(w0["compactness"])),
                (f"planner_mode_{code}", "fresh"))
for key, value in control_keys:
    st.session_state.setdefault(key, controls.get(key, value))

with st.container(border=True):
    st.markdown(f"**{t('planner.controls')}**")
    a, b, c, d = st.columns([1.1, 1.2, 1.4, 1.3], gap="medium")
    color_by = a.radio(t("planner.color_by"), ["households", "workload"], key="planner_color",
                       format_func=lambda v: bilingual(f"planner.color.{v}"))
    b.number_input(t("planner.norm_min"), min_value=0, step=10, key=f"planner_min_{code}",
                   help=t("planner.norm_help"))
    b.number_input(t("planner.norm_max"), min_value=1, step=10, key=f"planner_max_{code}")
    c.slider(t("planner.w_balance"), 0.0, 5.0, step=0.5, key=f"planner_wb_{code}",
             help=t("planner.w_help"))
    c.slider(t("planner.w_compactness"), 0.0, 5.0, step=0.5, key=f"planner_wc_{code}")
    d.radio(t("planner.mode"), list(pl.MODES), key=f"planner_mode_{code}",
            format_func=lambda v: bilingual(f"planner.mode.{v}"), help=t("planner.mode_help"))
    b1, b2, b3, _ = st.columns([1, 1, 1, 3])
    b1.button(t("planner.redraw"), key="planner_redraw", type="primary", on_click=cb_redraw,
              args=(ident,), width="stretch")
    b2.button(t("planner.undo"), key="planner_undo", on_click=cb_undo, args=(ident,),
              disabled=not edit["undo"], width="stretch")
    b3.button(t("planner.discard"), key="planner_discard", on_click=cb_discard, args=(ident,),
              disabled=not pl.has_proposal(edit), width="stretch")

controls.update({key: st.session_state[key] for key, _ in control_keys})

if st.session_state.get("planner_msgs_code") == code:
    for kind, zh, en in st.session_state.get("planner_msgs", []):
        getattr(st, kind)(zh if lang == "zh" else en)

norm = _norm_from_state(code)
if norm is None:
    st.error(t("planner.bad_norm"))
    norm = (int(norm0["households_min"]), int(norm0["households_max"]))
lo, hi = norm

# ---- the two plans -----------------------------------------------------------------------
work = pl.working_labels(ws, edit)
proposal_key = tuple(work.tolist()) if pl.has_proposal(edit) else None
locked = set(edit["locked"])
cur = derived(str(db), mtime, code, None, lo, hi)
prop = derived(str(db), mtime, code, proposal_key, lo, hi) if proposal_key else cur

tiles = (st.session_state.get("tiles_url") or "").strip() or None
tiles_crs = DISPLAY_CRS
if tiles:
    choice = st.session_state.get("tiles_crs", "auto")
    tiles_crs = detect_tiles_crs(tiles) if choice == "auto" else choice
credit = project_attribution(db.parent)
attribution = t(f"attribution.{credit}") if credit in ("demo", "project") else credit
static_on = bool(st.get_option("server.enableStaticServing"))
error = vendor_assets() if static_on else None
if error:
    st.warning(t("map.assets_missing", error=error))

cur_disp = display_grids(cur["grids"], tiles_crs, set(), lang)
prop_disp = display_grids(prop["grids"], tiles_crs, locked, lang)
breaks = class_breaks([cur_disp, prop_disp], color_by)
cells_disp = display_cells(str(db), mtime, code, tiles_crs)
cell_key = f"planner_cell_{code}"
selected = st.session_state.get(cell_key)

left, right = st.columns(2, gap="medium")
with left:
    st.markdown(f"**{t('planner.map.current', plan_id=ws.plan_id)}**")
    m_cur = grid_map(cur_disp, column=color_by, breaks=breaks, lang=lang, tiles=tiles,
                     attribution=attribution)
    assets.localize_map(m_cur, inline=not static_on or error is not None)
    st_folium(m_cur, key=CUR_KEY, height=MAP_HEIGHT, use_container_width=True,
              returned_objects=[])
with right:
    st.markdown(f"**{t('planner.map.proposal')}**")
    m_edit = grid_map(prop_disp, column=color_by, breaks=breaks, lang=lang, tiles=tiles,
                      attribution=attribution, cells=cells_disp, selectable=True)
    assets.localize_map(m_edit, inline=not static_on or error is not None)
    sel_layer = selected_layer(cells_disp, selected)
    if sel_layer is not None:
        assets.localize_map(sel_layer, inline=not static_on or error is not None)
    st_folium(m_edit, key=EDIT_KEY, height=MAP_HEIGHT, use_container_width=True,
              returned_objects=["last_object_clicked"], feature_group_to_add=sel_layer,
              on_change=functools.partial(cb_map_click, ident, tiles_crs))
    if not pl.has_proposal(edit):
        st.caption(t("planner.map.same"))
notes = [t("planner.map.click_hint")]
if not tiles:
    notes.append(t("map.no_basemap"))
st.caption(" ".join(notes))

# ---- reassign units, lock grids, checklist -------------------------------------------------
e1, e2, e3 = st.columns([1.4, 1.0, 1.3], gap="large")
with e1:
    st.markdown(f"**{t('planner.edit')}**")
    cell_info = ws.cells.set_index("cell_id")
    options = [None] + list(ws.cells["cell_id"])

    def cell_label(c) -> str:
        if c is None:
            return "—"
        r = cell_info.loc[c]
        first = r["building_ids"][0] if r["building_ids"] else ""
        more = f" +{len(r['building_ids']) - 1}" if len(r["building_ids"]) > 1 else ""
        return f"{c} · {first}{more} · {int(r['households'])} 户 hh"

    if selected not in options:
        st.session_state[cell_key] = None
        selected = None
    st.selectbox(t("planner.cell"), options, key=cell_key, format_func=cell_label,
                 help=t("planner.cell_help"))
    if selected is not None:
        r = cell_info.loc[selected]
        st.caption(t("planner.cell_info", cell=selected, grid=work.get(selected),
                     n=len(r["building_ids"]), households=int(r["households"])))
        near = pl.neighbour_grids(ws, work, selected)
        if near:
            across = {g for g, x in near if x}
            st.selectbox(t("planner.to_grid"), [g for g, _ in near],
                         key=f"planner_to_{code}_{selected}",
                         format_func=lambda g: g + (bilingual("planner.across")
                                                    if g in across else ""))
            st.button(t("planner.move"), key="planner_move", on_click=cb_move, args=(ident,))
        else:
            st.caption(t("planner.no_neighbours"))
with e2:
    st.markdown(f"**{t('planner.lock_grid')}**")
    basic = sorted(g for g in set(work.dropna()) if ws.grid_type.get(g) != "dedicated")
    st.selectbox(t("planner.lock_grid"), basic, key=f"planner_lockpick_{code}",
                 label_visibility="collapsed")
    l1, l2 = st.columns(2)
    l1.button(t("planner.lock"), key="planner_lock", on_click=cb_lock, args=(ident, True),
              width="stretch")
    l2.button(t("planner.unlock"), key="planner_unlock", on_click=cb_lock, args=(ident, False),
              width="stretch")
    st.caption(t("planner.locked_list", grids=", ".join(sorted(locked))) if locked
               else t("planner.locked_none"))
with e3:
    st.markdown(f"**{t('planner.checks')}**")
    for r in prop["checks"].itertuples(index=False):
        mark = ":green[**✓**]" if r.ok else ":red[**✗**]"
        name = r.label_zh if lang == "zh" else r.label_en
        detail = r.detail_zh if lang == "zh" else r.detail_en
        st.markdown(f"{mark} **{name}** — {detail}")

# ---- current vs proposed -----------------------------------------------------------------
st.subheader(t("planner.compare"))
table, moves = comparison(str(db), mtime, code, proposal_key, lo, hi)
row = table.set_index("metric")
q1, q2, q3, q4 = st.columns(4)
has = proposal_key is not None
q1.metric(t("planner.kpi.within"),
          fmt_metric("share_within_norm", row.loc["share_within_norm", "proposed"], lang)
          if has else "—", border=True)
q2.metric(t("planner.kpi.moved"),
          fmt_metric("households_moved", row.loc["households_moved", "proposed"], lang)
          if has else "—", border=True)
q3.metric(t("planner.kpi.moved_buildings"),
          fmt_metric("buildings_moved", row.loc["buildings_moved", "proposed"], lang)
          if has else "—", border=True)
secs = st.session_state.get(f"planner_seconds_{code}")
q4.metric(t("planner.kpi.seconds"), f"{secs:.2f} s" if secs is not None else "—", border=True)
shown = pd.DataFrame({
    t("planner.col.metric"): table["label_zh" if lang == "zh" else "label_en"],
    t("planner.col.current"): [fmt_metric(m, v, lang)
                               for m, v in zip(table["metric"], table["current"])],
    t("planner.col.proposed"): [fmt_metric(m, v, lang) if has else "—"
                                for m, v in zip(table["metric"], table["proposed"])],
})
st.dataframe(shown, hide_index=True, width="stretch", key="planner_compare")

with st.expander(t("planner.grid_table")):
    g = prop["grids"]
    gt = pd.DataFrame({
        t("planner.col.grid_id"): g["grid_id"],
        t("planner.col.grid_type"): [t(f"planner.type.{v}") for v in g["grid_type"]],
        t("planner.col.households"): g["households"].astype("int64"),
        t("planner.col.residents"): g["residents"].round(0).astype("int64"),
        t("planner.col.workload"): g["workload"].round(1),
        t("planner.col.compactness"): g["compactness"].round(3),
        t("planner.col.status"): [status_label(s, lang) for s in g["status"]],
        t("planner.col.locked"): g["grid_id"].isin(locked | ws.dedicated),
    })
    st.dataframe(gt, hide_index=True, width="stretch", key="planner_grids")
with st.expander(t("planner.moves_table")):
    if moves is None or moves.empty:
        st.caption(t("planner.no_moves"))
    else:
        st.dataframe(pd.DataFrame({
            t("planner.col.building_id"): moves["id"],
            t("planner.col.households"): moves["households"].astype("int64"),
            t("planner.col.from_grid"): moves["from_grid"],
            t("planner.col.to_grid"): moves["to_grid"],
        }), hide_index=True, width="stretch", key="planner_moves")

# ---- save and export ---------------------------------------------------------------------
st.subheader(t("planner.save"))
s1, s2 = st.columns([1.2, 1], gap="large")
with s1:
    st.text_input(t("planner.author"), key="planner_author")
    st.text_input(t("planner.note"), key="planner_note",
                  placeholder=t("planner.note_placeholder"))
    st.button(t("planner.save_button"), key="planner_save", type="primary", on_click=cb_save,
              args=(ident,), disabled=not has, help=t("planner.save_help"))
with s2:
    st.caption(t("planner.export_caption"))
    norms_now = pl.norms_with(ws, lo, hi)
    work_now = work.copy()
    author_now = st.session_state.get("planner_author") or ""
    stamp = f"{code}_{ws.plan_id}"
    st.download_button(
        t("planner.report_button"),
        data=lambda: pl.realignment_report(ws, work_now, norms=norms_now,
                                           author=author_now),
        file_name=f"gridgov_realignment_{stamp}.xlsx", mime=XLSX_MIME, key="planner_report",
        on_click="ignore", disabled=not has)
    st.download_button(
        t("planner.geojson_button"),
        data=lambda: pl.grids_geojson(ws, work_now, norms_now).encode("utf-8"),
        file_name=f"gridgov_grids_{stamp}.geojson", mime="application/geo+json",
        key="planner_geojson", on_click="ignore")

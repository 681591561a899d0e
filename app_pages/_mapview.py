"""The map preamble every map page shares: basemap choice, the data's frame and metric CRS,
attribution, offline assets, and showing a folium map with streamlit-folium.

A page does::

    ctx = map_context(db, mtime)
    fmap = build_something(..., tiles=ctx.tiles, attribution=ctx.attribution)
    show_map(fmap, ctx, key="my_map", height=600)
    map_notes(ctx, t("my.caption"))

A map whose styles change with the page's widgets while its geometry does not (the hot-spot
map) is built once per project, language and basemap — byte-identical across reruns, so
Streamlit's message cache sends a reference instead of the map and streamlit-folium keeps its
iframe — and the changing parts travel apart with :func:`send_layer`: a small element per
channel (styles, legend, an image, an extra layer) whose JSON text a few lines of JavaScript in
the page hand to the map's iframe (``postMessage``, same origin only), where the map's own
receiver applies it (:class:`app_pages._hotspots.HotspotReceiver`).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import streamlit as st
from streamlit_folium import st_folium

from app_pages import assets
from app_pages._mapbuild import DISPLAY_CRS, detect_tiles_crs, layer_json
from app_pages._shared import map_frame, project_attribution, vendor_assets
from app_pages.i18n import t


@dataclass(frozen=True)
class MapContext:
    """What every map of a page needs to know, once per script run."""

    tiles: str | None
    tiles_crs: str
    attribution: str
    bounds: tuple[float, float, float, float] | None
    metric_crs: str
    inline: bool


def tiles_choice() -> tuple[str | None, str]:
    """The basemap URL from the sidebar (None: no basemap) and the CRS its tiles are drawn in."""
    tiles = (st.session_state.get("tiles_url") or "").strip() or None
    if not tiles:
        return None, DISPLAY_CRS
    choice = st.session_state.get("tiles_crs", "auto")
    return tiles, detect_tiles_crs(tiles) if choice == "auto" else choice


def attribution_text(project_dir: Path) -> str:
    """The map's credit line: the demo's sources, a neutral line, or the project's own text."""
    credit = project_attribution(project_dir)
    return t(f"attribution.{credit}") if credit in ("demo", "project") else credit


def map_context(db: Path, mtime: float) -> MapContext:
    """Tiles, frame, metric CRS and attribution of the project's maps; warns when the
    vendored Leaflet cannot be served (the maps then inline it)."""
    tiles, tiles_crs = tiles_choice()
    bounds, mcrs = map_frame(str(db), mtime)
    static_on = bool(st.get_option("server.enableStaticServing"))
    error = vendor_assets() if static_on else None
    if error:
        st.warning(t("map.assets_missing", error=error))
    return MapContext(tiles=tiles, tiles_crs=tiles_crs, attribution=attribution_text(db.parent),
                      bounds=bounds, metric_crs=mcrs, inline=not static_on or error is not None)


def show_map(fmap, ctx: MapContext, *, key: str, height: int,
             returned_objects: list[str] | None = None, **kwargs):
    """Point the map at the app's own Leaflet/jQuery (or inline them) and show it."""
    assets.localize_map(fmap, inline=ctx.inline)
    layer = kwargs.get("feature_group_to_add")
    if layer is not None:
        assets.localize_map(layer, inline=ctx.inline)
    return st_folium(fmap, key=key, height=height, use_container_width=True,
                     returned_objects=returned_objects or [], **kwargs)


#: Runs in the app's page (not in an iframe): keeps the latest text of every map channel and
#: posts it to the streamlit-folium iframes; a map that (re)loads asks for it with "ready".
LAYER_JS = """
export default function (component) {
  var w = window, origin = w.location.origin, text = component.data;
  var reg = w.__gridgovLayers || (w.__gridgovLayers = {});
  if (!w.__gridgovLayersListen) {
    w.__gridgovLayersListen = true;
    w.addEventListener("message", function (e) {
      var m = e.data;
      if (e.origin !== origin || !m || m.gridgov !== "ready" || !e.source) { return; }
      var parts = reg[m.map] || {};
      Object.keys(parts).forEach(function (k) {
        e.source.postMessage({gridgov: "layer", text: parts[k]}, origin);
      });
    });
  }
  if (typeof text !== "string") { return; }
  var p;
  try { p = JSON.parse(text); } catch (err) { return; }
  if (!p || typeof p.map !== "string" || typeof p.channel !== "string") { return; }
  (reg[p.map] || (reg[p.map] = {}))[p.channel] = text;
  document.querySelectorAll("iframe[title='streamlit_folium.st_folium']").forEach(function (f) {
    try { f.contentWindow.postMessage({gridgov: "layer", text: text}, origin); } catch (err) {}
  });
}
"""
_layer_component = None


def send_layer(map_name: str, channel: str, payload: dict) -> None:
    """Hand ``payload`` (JSON-able; no HTML from data unless escaped) to the map ``map_name``'s
    receiver on channel ``channel``, as its own small element: when it is the same as in the
    previous run, Streamlit sends a reference instead of the data."""
    global _layer_component
    if _layer_component is None:
        _layer_component = st.components.v2.component("gridgov_map_layer", js=LAYER_JS)
    text = layer_json({"map": map_name, "channel": channel, **payload})
    _layer_component(key=f"gridgov_layer_{map_name}_{channel}", data=text, height=0)


def map_notes(ctx: MapContext, *notes: str, sep: str = " ") -> None:
    """A caption under the map: the page's notes, and the no-basemap hint when offline."""
    parts = [n for n in notes if n]
    if not ctx.tiles:
        parts.append(t("map.no_basemap"))
    st.caption(sep.join(parts))


@st.cache_data(show_spinner=False, max_entries=8)
def _map_file(db: str, mtime: float, kind: str, fmt: str, opts: tuple) -> bytes:
    """The map as PNG/PDF bytes (:func:`pipelines.mapexport.render_map`), cached per file state."""
    from pipelines.mapexport import render_map

    return render_map(Path(db).parent, kind, fmt=fmt, **dict(opts))


def map_downloads(db: Path, mtime: float, kind: str, *, key: str, **opts) -> None:
    """PNG and PDF of this map (pipelines.mapexport: A4, legend, scale bar, north arrow, data
    date), drawn only when a button is clicked."""
    from pipelines.mapexport import file_name

    opts = {k: v for k, v in opts.items() if v is not None}
    c1, c2, _ = st.columns([1, 1, 3])
    for col, fmt, mime in ((c1, "png", "image/png"), (c2, "pdf", "application/pdf")):
        col.download_button(
            t(f"map.download_{fmt}"),
            data=lambda fmt=fmt: _map_file(str(db), mtime, kind, fmt, tuple(sorted(opts.items()))),
            file_name=file_name(kind, fmt, **{k: v for k, v in opts.items() if k != "level"}),
            mime=mime, key=f"{key}_{fmt}", on_click="ignore")

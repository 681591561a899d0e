"""Map page: streets, community household density, buildings of one street, special units."""
from __future__ import annotations

import streamlit as st
from streamlit_folium import st_folium

from app_pages import assets
from app_pages._mapbuild import DISPLAY_CRS, Display, build_map, detect_tiles_crs, prepare_display
from app_pages._shared import current_db, load_map_layers, project_attribution, show_db_error, vendor_assets
from app_pages.i18n import current_lang, t

MAP_KEY = "gridgov_map"
MAP_HEIGHT = 640


@st.cache_data(show_spinner=False, max_entries=6)
def display_layers(db: str, mtime: float, tiles_crs: str) -> Display:
    """Layers simplified, shifted to the basemap's CRS and rounded (cached per run and CRS)."""
    return prepare_display(load_map_layers(db, mtime), tiles_crs)




db, mtime = current_db()
lang = current_lang()
tiles = (st.session_state.get("tiles_url") or "").strip() or None
tiles_crs_choice = st.session_state.get("tiles_crs", "auto")
tiles_crs = DISPLAY_CRS
if tiles:
    tiles_crs = detect_tiles_crs(tiles) if tiles_crs_choice == "auto" else tiles_crs_choice

try:
    display = display_layers(str(db), mtime, tiles_crs)
except Exception as exc:
    show_db_error(db, exc)

st.title(t("map.title"))

streets = display.layers.get("streets")
options: list[str | None] = [None]
names: dict[str | None, str] = {None: t("map.all_streets")}
if streets is not None:
    for code, name in sorted(zip(streets["street_code"], streets["street_name"])):
        options.append(code)
        names[code] = f"{name} ({code})"  # same in both languages (see i18n: option labels)
street = st.selectbox(
    t("map.street"), options, format_func=lambda c: names.get(c, str(c)),
    key="map_street", help=t("map.street_hint"),
)

credit = project_attribution(db.parent)
attribution = t(f"attribution.{credit}") if credit in ("demo", "project") else credit
fmap, info = build_map(display, lang=lang, street_code=street, tiles=tiles, attribution=attribution)

static_on = bool(st.get_option("server.enableStaticServing"))
error = vendor_assets() if static_on else None
if error:
    st.warning(t("map.assets_missing", error=error))
# With static serving the iframe fetches ../../app/static/vendor/…; without it the files are
# inlined as data: URLs, which still works offline but resends ~300 kB with each map render.
assets.localize_map(fmap, inline=not static_on or error is not None)

st_folium(
    fmap,
    key=MAP_KEY,
    height=MAP_HEIGHT,
    use_container_width=True,
    returned_objects=[],
)

notes = []
if street:
    if info.buildings_drawn < info.buildings_total:
        notes.append(t("map.buildings_capped", total=f"{info.buildings_total:,}",
                       n=f"{info.buildings_drawn:,}"))
    else:
        notes.append(t("map.buildings_drawn", n=f"{info.buildings_drawn:,}"))
else:
    notes.append(t("map.street_hint"))
if not tiles:
    notes.append(t("map.no_basemap"))
elif tiles_crs != DISPLAY_CRS:
    notes.append(t("map.shifted") if display.shift_ok else t("map.shift_unavailable"))
st.caption(" · ".join(notes))
st.caption(attribution)

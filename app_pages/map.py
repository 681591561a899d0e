"""Map page: streets, community household density, buildings of one street, special units."""
from __future__ import annotations

import streamlit as st

from app_pages._mapbuild import (
    DISPLAY_CRS,
    MAP_MAX_COMMUNITIES,
    Display,
    build_map,
    prepare_display,
    street_level,
)
from app_pages._mapview import map_context, map_downloads, show_map
from app_pages._shared import current_db, load_map_layers, md, show_db_error
from app_pages.i18n import current_lang, t
from pipelines.results import map_limits

MAP_KEY = "gridgov_map"
MAP_HEIGHT = 640


@st.cache_data(show_spinner=False, max_entries=6)
def display_layers(db: str, mtime: float, tiles_crs: str, metric_crs: str) -> Display:
    """Layers simplified, shifted to the basemap's CRS and rounded (cached per run and CRS)."""
    return prepare_display(load_map_layers(db, mtime), tiles_crs, metric_crs)


db, mtime = current_db()
lang = current_lang()
try:
    ctx = map_context(db, mtime)
    display = display_layers(str(db), mtime, ctx.tiles_crs, ctx.metric_crs)
except Exception as exc:  # noqa: BLE001 - a locked or corrupt file: say so
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

# level of detail (#13.4): a large project shows streets first, one street's detail when chosen
max_communities = map_limits(db.parent).get("map_max_communities", MAP_MAX_COMMUNITIES)
shown = street_level(display, street, max_communities)
fmap, info = build_map(shown, lang=lang, street_code=street, tiles=ctx.tiles,
                       attribution=ctx.attribution)
show_map(fmap, ctx, key=MAP_KEY, height=MAP_HEIGHT)
map_downloads(db, mtime, "overview", key="map_dl", street_code=street)

notes = []
if street:
    if info.buildings_drawn < info.buildings_total:
        notes.append(t("map.buildings_capped", total=f"{info.buildings_total:,}",
                       n=f"{info.buildings_drawn:,}"))
    else:
        notes.append(t("map.buildings_drawn", n=f"{info.buildings_drawn:,}"))
elif shown is not display:
    notes.append(t("maps.map_street_level", max=f"{max_communities:,}",
                   communities=f"{len(display.layers['communities']):,}"))
else:
    notes.append(t("map.street_hint"))
if not ctx.tiles:
    notes.append(t("map.no_basemap"))
elif ctx.tiles_crs != DISPLAY_CRS:
    notes.append(t("map.shifted") if display.shift_ok else t("map.shift_unavailable"))
st.caption(" · ".join(notes))
st.caption(md(ctx.attribution))

"""gridgov Streamlit app: page config, the shared sidebar and the page router.

The entry script installed with the package (``gridgov app`` runs it); the checkout's
``app.py`` runs this file too. Start it on a project folder (one that holds
``gridgov.duckdb``)::

    gridgov app demo-city
    GRIDGOV_PROJECT=demo-city streamlit run app.py
    streamlit run app.py -- --project demo-city

The app opens only that project: the browser cannot choose another path. The pages live next
to this file; they read tables through :mod:`pipelines.results` (read-only) and lay them out.
"""
from __future__ import annotations

import datetime as dt
import os
import sys
from pathlib import Path

import streamlit as st

ROOT = Path(__file__).resolve().parents[1]  # the checkout, or site-packages when installed
if str(ROOT) not in sys.path:  # `app_pages`, `pipelines`, `geo` from a source checkout
    sys.path.insert(0, str(ROOT))

from app_pages._mapbuild import TILE_EXAMPLES  # noqa: E402
from app_pages._shared import (  # noqa: E402
    ENV_TILES,
    db_mtime,
    db_path_for,
    project_from_args,
    show_missing_db,
)
from app_pages.i18n import LANG_NAMES, LANGS, t  # noqa: E402

HERE = Path(__file__).resolve().parent  # app_pages/

# No page_icon, and no page icons: Streamlit fetches material/emoji icons from a CDN.
st.set_page_config(page_title="gridgov · 网格化治理", layout="wide")

# ---- shared sidebar ---------------------------------------------------------------------
with st.sidebar:
    st.radio(t("sidebar.language"), LANGS, format_func=LANG_NAMES.get, key="lang",
             horizontal=True)
    st.markdown(f"**{t('app.title')}**")

    # The project is fixed when the server starts (``gridgov app DIR``, GRIDGOV_PROJECT or
    # ``-- --project DIR``): the browser can neither choose nor type another path.
    project = project_from_args().strip()
    db = db_path_for(project).resolve() if project else None
    st.caption(f"{t('sidebar.database')}:")
    st.code(str(db) if db else "—", language=None, wrap_lines=True)
    if db is not None and db.exists():
        when = dt.datetime.fromtimestamp(db_mtime(db)).strftime("%Y-%m-%d %H:%M")
        st.caption(t("sidebar.modified", when=when))

    with st.expander(t("sidebar.map_settings")):
        if "tiles_url" not in st.session_state:
            st.session_state["tiles_url"] = os.environ.get(ENV_TILES, "")
        st.text_input(t("sidebar.tiles"), key="tiles_url", help=t("sidebar.tiles_help"),
                      placeholder="https://…/{z}/{x}/{y}.png")
        st.selectbox(t("sidebar.tiles_crs"), ["auto", "EPSG:4326", "GCJ-02"],
                     format_func=lambda c: t(f"tiles_crs.{c}"), key="tiles_crs",
                     help=t("sidebar.tiles_crs_help"))
        st.caption(t("sidebar.tiles_examples"))
        st.code("\n".join(f"# {k}\n{v}" for k, v in TILE_EXAMPLES.items()), language=None,
                wrap_lines=True)

# ---- router ------------------------------------------------------------------------------
# (file next to this one, title key, url path); a page whose file is absent is left out.
PAGES = [
    ("overview.py", "nav.overview", "overview"),
    ("map.py", "nav.map", "map"),
    ("planner.py", "nav.planner", "planner"),
    ("hotspots.py", "nav.hotspots", "hotspots"),
    ("hotspot_risk.py", "nav.hotspot_risk", "risk"),
    ("alerts.py", "nav.alerts", "alerts"),
    ("case_timeliness.py", "nav.case_timeliness", "timeliness"),
    ("leaders.py", "nav.leaders", "leaders"),
    ("cases.py", "nav.cases", "cases"),
    ("fusion.py", "nav.fusion", "fusion"),
    ("history.py", "nav.history", "history"),
]
pages = [
    st.Page(HERE / f, title=t(key), url_path=url, default=(url == "overview"))
    for f, key, url in PAGES if (HERE / f).exists()
]
page = st.navigation(pages)

if db is None or not db.exists():
    if not project:
        st.warning(t("nodb.unset", "zh") + " / " + t("nodb.unset", "en"))
    show_missing_db(db)
    st.stop()

page.run()

"""Project location, read-only database access and cached loaders shared by every page.

The database is opened read-only through :func:`pipelines.db.connect` for each load and closed
straight away, so ``gridgov run`` can swap in a new file while the app is open. Every loader
takes the database path *and its modification time*: a new run changes the mtime, which is a
new cache key, so the app shows fresh tables without a restart.
"""
from __future__ import annotations

import argparse
import contextlib
import math
import os
import sys
from pathlib import Path

import geopandas as gpd
import pandas as pd
import streamlit as st

from app_pages import assets
from app_pages.i18n import t
from pipelines import results, results_maps
from pipelines.db import connect

DB_NAME = results.DB_NAME
#: Only when a project has no geometry at all (nothing to measure anyway): Web Mercator.
DEFAULT_METRIC_CRS = "EPSG:3857"
ENV_PROJECT = "GRIDGOV_PROJECT"
ENV_TILES = "GRIDGOV_TILES"
DEFAULT_PROJECT = "demo-city"
BUILD_COMMAND = "gridgov demo demo-city && gridgov run demo-city"

#: The overview's count cards: (table, key for t()).
COUNT_TABLES = ("streets", "communities", "buildings", "incidents", "special_units", "staff")


# --------------------------------------------------------------------------------------------
# where is the project?


def project_from_args(argv: list[str] | None = None, environ: dict | None = None) -> str:
    """The project folder given on the command line, in ``GRIDGOV_PROJECT``, or the default.

    ``streamlit run app.py -- --project DIR`` wins over the environment variable; without
    either, ``./demo-city`` (what the README's commands build) is used.
    """
    argv = sys.argv[1:] if argv is None else argv
    environ = os.environ if environ is None else environ
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--project")
    args, _ = parser.parse_known_args(argv)
    return args.project or environ.get(ENV_PROJECT) or DEFAULT_PROJECT


def db_path_for(project: str | os.PathLike) -> Path:
    """The database file of a project folder (a path to a ``.duckdb`` file is taken as is)."""
    p = Path(project).expanduser()
    return p if p.suffix == ".duckdb" else p / DB_NAME


def db_mtime(db: Path) -> float:
    """Modification time used as the cache key (0 when the file is missing)."""
    try:
        return db.stat().st_mtime_ns / 1e9
    except OSError:
        return 0.0


@contextlib.contextmanager
def open_db(db: str | Path):
    """Read-only connection that is always closed again."""
    con = connect(db, read_only=True)
    try:
        yield con
    finally:
        con.close()


def current_db() -> tuple[Path, float]:
    """The database of the project the app was started on, and its mtime.

    Always derived from the server's start arguments (:func:`project_from_args`), never from
    anything the browser sends.
    """
    db = db_path_for(project_from_args()).resolve()
    return db, db_mtime(db)


def show_db_error(db: Path, exc: Exception) -> None:
    """Explain a database that exists but cannot be read, and stop the page."""
    st.error(t("dberror.title", path=db))
    st.exception(exc)
    st.stop()


def load_or_stop(loader, db: Path, mtime: float, *args):
    """``loader(str(db), mtime, *args)``; a locked or corrupt file gets a message, not a traceback."""
    try:
        return loader(str(db), mtime, *args)
    except Exception as exc:  # noqa: BLE001 - any read failure is shown to the user
        show_db_error(db, exc)


def show_missing_db(db: Path | None) -> None:
    """The bilingual 'build it first' message, always in both languages."""
    path = str(db) if db else "gridgov.duckdb"
    for lang in ("zh", "en"):
        st.subheader(t("nodb.title", lang))
        st.markdown(t("nodb.body", lang, path=path))
    st.code(BUILD_COMMAND, language="bash")
    st.markdown(t("nodb.then", "zh") + "  \n" + t("nodb.then", "en"))
    st.code(
        "GRIDGOV_PROJECT=demo-city streamlit run app.py\n"
        "streamlit run app.py -- --project demo-city\n"
        "gridgov app demo-city",
        language="bash",
    )


project_attribution = results.project_attribution  # one implementation, shared with map exports


# --------------------------------------------------------------------------------------------
# cached loaders (key: path + mtime): every read goes through pipelines.results

#: The readers of :mod:`pipelines.results` a page may call through :func:`load`.
READERS = frozenset({
    "table_counts", "runs", "rejects_summary", "map_layers", "outlines", "bounds",
    "metric_crs", "hotspot_tables", "hotspot_units", "hotspot_density", "staffing_tables",
    "base_allocation", "plans", "plan_grids", "hotspot_fishnet",
})
#: The readers of :mod:`pipelines.results_maps` (the maps' level of detail) :func:`load` serves.
MAP_READERS = frozenset({"street_outlines", "unit_streets"})


@st.cache_data(show_spinner=False, max_entries=32)
def load(db: str, mtime: float, reader: str, *args):
    """``pipelines.results.<reader>(con, *args)`` on a read-only connection, cached per file
    state (``mtime``) and arguments. Callers must not change what they get."""
    if reader not in READERS | MAP_READERS:
        raise ValueError(f"unknown reader {reader!r}")
    module = results_maps if reader in MAP_READERS else results
    with open_db(db) as con:
        return getattr(module, reader)(con, *args)


def load_table_counts(db: str, mtime: float) -> dict[str, int | None]:
    """Row count of every table in the database, plus households / residents sums."""
    return load(db, mtime, "table_counts")


def load_runs(db: str, mtime: float, limit: int = 20) -> pd.DataFrame:
    """The most recent runs, newest first."""
    return load(db, mtime, "runs", int(limit))


def load_rejects_summary(db: str, mtime: float) -> pd.DataFrame:
    """Rejected rows counted by layer and reason."""
    return load(db, mtime, "rejects_summary")


def load_map_layers(db: str, mtime: float) -> dict[str, gpd.GeoDataFrame]:
    """The tables the map draws, in EPSG:4326 (:func:`pipelines.results.map_layers`)."""
    return load(db, mtime, "map_layers")


def map_frame(db: str, mtime: float) -> tuple[tuple[float, float, float, float] | None, str]:
    """The data's bounds and the metric CRS (run setting, else chosen at the data's centre)."""
    box = load(db, mtime, "bounds")
    crs = load(db, mtime, "metric_crs")
    return box, crs or DEFAULT_METRIC_CRS


@st.cache_resource(show_spinner=False)
def vendor_assets() -> str | None:
    """Copy Leaflet/jQuery into static/vendor once per server; returns an error or None."""
    try:
        assets.ensure_vendor()
    except Exception as exc:  # read-only install, xstatic missing …
        return f"{type(exc).__name__}: {exc}"
    return None


#: Characters Markdown (and Streamlit's ``:color[…]``, ``$…$`` extensions) give a meaning to.
MD_SPECIAL = frozenset("\\`*_{}[]()#+-.!|<>~$:&")


def md(text: object) -> str:
    """Text from the data as literal Markdown: every special character backslash-escaped, so
    a name such as ``![x](http://…)`` or ``**x**`` shows as typed and loads nothing."""
    s = "" if text is None else str(text)
    return "".join("\\" + c if c in MD_SPECIAL else c for c in s)


def half(text: object, lang: str) -> str:
    """Texts stored as "中文 / English": the half in the interface language."""
    s = "" if text is None or (isinstance(text, float) and math.isnan(text)) else str(text)
    if " / " in s:
        zh, en = s.split(" / ", 1)
        return zh if lang == "zh" else en
    return s

"""Project location, read-only database access and cached loaders shared by every page.

The database is opened read-only through :func:`pipelines.db.connect` for each load and closed
straight away, so ``gridgov run`` can swap in a new file while the app is open. Every loader
takes the database path *and its modification time*: a new run changes the mtime, which is a
new cache key, so the app shows fresh tables without a restart.
"""
from __future__ import annotations

import argparse
import math
import contextlib
import os
import sys
import tomllib
from pathlib import Path

import geopandas as gpd
import pandas as pd
import streamlit as st

from app_pages import assets
from app_pages.i18n import t
from pipelines.db import connect, read_gdf, read_table, table_exists

DB_NAME = "gridgov.duckdb"
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
    """The database chosen in the sidebar and its mtime (set by ``app.py``)."""
    db = Path(st.session_state["db_path"])
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


def project_attribution(project_dir: str | Path) -> str:
    """Who to credit on the map: ``"demo"``, ``"project"`` or a text from the settings.

    ``[app] attribution = "…"`` in the project's ``gridgov.toml`` wins. Otherwise the demo city
    (its ``gridgov.toml`` / ``README.txt`` say "synthetic demo data") gets the demo credits
    (Tianditu boundaries, NBS names, synthetic geometry), and any other project a neutral line:
    a planner's own data must not be labelled synthetic.
    """
    folder = Path(project_dir)
    toml = folder / "gridgov.toml"
    try:
        text = toml.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        text = ""
    try:
        custom = tomllib.loads(text).get("app", {}).get("attribution")
    except tomllib.TOMLDecodeError:
        custom = None
    if isinstance(custom, str) and custom.strip():
        return custom.strip()
    heads = [text.splitlines()[0] if text else ""]
    try:
        with open(folder / "README.txt", encoding="utf-8") as f:
            heads.append(f.readline())
    except (OSError, UnicodeDecodeError):
        pass
    return "demo" if any("synthetic demo data" in h.lower() for h in heads) else "project"


# --------------------------------------------------------------------------------------------
# cached loaders (key: path + mtime)


@st.cache_data(show_spinner=False, max_entries=8)
def load_table_counts(db: str, mtime: float) -> dict[str, int | None]:
    """Row count of every table in the database, plus households / residents sums."""
    with open_db(db) as con:
        names = [r[0] for r in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' "
            "ORDER BY table_name"
        ).fetchall()]
        counts: dict[str, int | None] = {
            n: con.execute(f'SELECT count(*) FROM "{n}"').fetchone()[0] for n in names
        }
        counts["households"] = counts["residents"] = None
        if "buildings" in names:
            hh, res = con.execute(
                "SELECT sum(households), sum(residents) FROM buildings"
            ).fetchone()
            counts["households"] = None if hh is None else int(hh)
            counts["residents"] = None if res is None else int(res)
    return counts


@st.cache_data(show_spinner=False, max_entries=8)
def load_runs(db: str, mtime: float, limit: int = 20) -> pd.DataFrame:
    """The most recent runs, newest first."""
    with open_db(db) as con:
        if not table_exists(con, "runs"):
            return pd.DataFrame(columns=["run_id", "started_at", "finished_at", "status"])
        return read_table(
            con,
            "SELECT run_id, started_at, finished_at, status FROM runs "
            f"ORDER BY started_at DESC NULLS LAST LIMIT {int(limit)}",
        )


@st.cache_data(show_spinner=False, max_entries=8)
def load_rejects_summary(db: str, mtime: float) -> pd.DataFrame:
    """Rejected rows counted by layer and reason."""
    with open_db(db) as con:
        if not table_exists(con, "rejects"):
            return pd.DataFrame(columns=["layer", "reason", "n"])
        return read_table(
            con,
            "SELECT layer, reason, count(*) AS n FROM rejects "
            "GROUP BY layer, reason ORDER BY layer, n DESC, reason",
        )


def _columns(con, table: str) -> set[str]:
    rows = con.execute(
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_schema = 'main' AND table_name = ?", [table]).fetchall()
    return {r[0] for r in rows}


def _select(con, table: str, columns: list[str], geometry: str = "geometry") -> str:
    """``SELECT`` of ``columns`` from ``table``; optional columns it lacks come back as NULL."""
    have = _columns(con, table)
    parts = [f'"{c}"' if c in have else f'NULL AS "{c}"' for c in columns]
    return f'SELECT {", ".join(parts)}, {geometry} AS geometry FROM "{table}" ' \
           "WHERE geometry IS NOT NULL"


@st.cache_data(show_spinner=False, max_entries=4)
def load_map_layers(db: str, mtime: float) -> dict[str, gpd.GeoDataFrame]:
    """The tables the map draws, in EPSG:4326, with only the columns it needs.

    Communities carry building counts and household / resident sums from ``buildings``
    (joined on ``community_code``). Buildings and special units come as points (polygons are
    reduced to a point inside them); buildings are only drawn street by street.
    """
    layers: dict[str, gpd.GeoDataFrame] = {}
    with open_db(db) as con:
        has = {n: table_exists(con, n) for n in (
            "streets", "communities", "buildings", "special_units", "barriers")}
        if has["streets"]:
            layers["streets"] = read_gdf(con, _select(
                con, "streets", ["street_code", "street_name", "function_type"]))
        if has["communities"]:
            communities = _select(con, "communities", [
                "community_code", "community_name", "street_code", "area_km2"])
            if has["buildings"]:
                sql = f"""
                    WITH b AS (
                        SELECT community_code, count(*) AS buildings,
                               sum(households) AS households, sum(residents) AS residents
                        FROM buildings GROUP BY community_code
                    ), c AS ({communities})
                    SELECT c.community_code, c.community_name, c.street_code, c.area_km2,
                           coalesce(b.buildings, 0) AS buildings,
                           coalesce(b.households, 0) AS households,
                           b.residents, c.geometry
                    FROM c LEFT JOIN b USING (community_code)
                """
            else:
                sql = (f"SELECT *, 0 AS buildings, 0 AS households, NULL AS residents "
                       f"FROM ({communities})")
            layers["communities"] = read_gdf(con, sql)
        if has["buildings"]:
            layers["buildings"] = read_gdf(con, _select(
                con, "buildings", ["building_id", "households", "residents", "street_code"],
                "ST_PointOnSurface(geometry)"))
        if has["special_units"]:
            layers["special_units"] = read_gdf(con, _select(
                con, "special_units",
                ["unit_id", "unit_name", "unit_type", "households", "headcount", "street_code"],
                "ST_PointOnSurface(geometry)"))
        if has["barriers"]:
            layers["barriers"] = read_gdf(con, _select(con, "barriers", ["kind", "name"]))
    return layers


@st.cache_resource(show_spinner=False)
def vendor_assets() -> str | None:
    """Copy Leaflet/jQuery into static/vendor once per server; returns an error or None."""
    try:
        assets.ensure_vendor()
    except Exception as exc:  # read-only install, xstatic missing …
        return f"{type(exc).__name__}: {exc}"
    return None


def half(text: object, lang: str) -> str:
    """Texts stored as "中文 / English": the half in the interface language."""
    s = "" if text is None or (isinstance(text, float) and math.isnan(text)) else str(text)
    if " / " in s:
        zh, en = s.split(" / ", 1)
        return zh if lang == "zh" else en
    return s

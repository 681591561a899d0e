"""The one DuckDB connection helper and the DuckDB <-> GeoPandas boundary.

The spatial extension is loaded from the ``duckdb-extension-spatial`` PyPI package's folder,
never downloaded: ``INSTALL spatial`` needs the internet, which many government networks lack.
"""
from __future__ import annotations

import importlib.util
import logging
import re
from pathlib import Path

import duckdb
import geopandas as gpd
import pandas as pd
import shapely

log = logging.getLogger(__name__)

STORAGE_CRS = "EPSG:4326"


class SpatialExtensionMissing(RuntimeError):
    """The spatial extension file could not be found in the installed package."""


def spatial_extension_path() -> Path:
    """Return the path of the spatial extension shipped by ``duckdb-extension-spatial``."""
    spec = importlib.util.find_spec("duckdb_extension_spatial")
    roots: list[Path] = []
    if spec is not None:
        if spec.submodule_search_locations:
            roots += [Path(p) for p in spec.submodule_search_locations]
        elif spec.origin:
            roots.append(Path(spec.origin).parent)
    version = duckdb.__version__
    for root in roots:
        exact = root / "extensions" / f"v{version}" / "spatial.duckdb_extension"
        if exact.exists():
            return exact
        found = sorted(root.rglob("spatial.duckdb_extension"))
        if found:
            return found[0]
    raise SpatialExtensionMissing(
        "找不到 DuckDB 空间扩展。请运行 `pip install duckdb-extension-spatial==1.5.5`。 / "
        "The DuckDB spatial extension was not found; install it with "
        "`pip install duckdb-extension-spatial==1.5.5` (it is never downloaded at run time)."
    )


def quote_ident(name: str) -> str:
    """``name`` as a SQL identifier: wrapped in double quotes, inner ``"`` doubled.

    The one way a table or column name enters SQL text; values are always bound as parameters.

    >>> quote_ident('a"; DROP TABLE x; --')
    '"a""; DROP TABLE x; --"'
    """
    name = str(name)
    if "\x00" in name:
        raise ValueError("identifier contains a NUL character")
    return '"' + name.replace('"', '""') + '"'


def quote_literal(text: str | Path) -> str:
    """``text`` as a SQL string literal (inner ``'`` doubled), for the few statements that take no
    parameters (``LOAD``, ``ATTACH``); a :class:`~pathlib.Path` is written in POSIX form.

    >>> quote_literal("/tmp/it's here.duckdb")
    "'/tmp/it''s here.duckdb'"
    """
    text = text.as_posix() if isinstance(text, Path) else str(text)
    if "\x00" in text:
        raise ValueError("literal contains a NUL character")
    return "'" + text.replace("'", "''") + "'"


def attach(con: duckdb.DuckDBPyConnection, path: str | Path, alias: str, *, read_only: bool = True) -> None:
    """``ATTACH`` the database file ``path`` as ``alias`` (any path: quotes, spaces, CJK)."""
    mode = " (READ_ONLY)" if read_only else ""
    con.execute(f"ATTACH {quote_literal(Path(path))} AS {quote_ident(alias)}{mode}")


_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)\s*", re.I)


def memory_size(text: str) -> str:
    """A memory size as DuckDB writes it (``"4GB"``, ``"800 MiB"``); ``ValueError`` if it is not one.

    >>> memory_size(" 4 gb ")
    '4GB'
    """
    m = _SIZE.fullmatch(str(text))
    if not m:
        raise ValueError(f"not a memory size: {text!r} (write e.g. 4GB or 800MB)")
    unit = m.group(2)
    unit = unit[0].upper() + unit[1:-1].lower() + unit[-1].upper() if len(unit) == 3 else unit.upper()
    return f"{m.group(1)}{unit}"


def set_limits(con: duckdb.DuckDBPyConnection, *, memory_limit: str | None = None,
               temp_directory: str | Path | None = None) -> None:
    """``SET memory_limit`` / ``SET temp_directory`` on ``con``: the size is validated by
    :func:`memory_size` (SET takes no parameters), the folder is written as a quoted literal.
    ``None`` or ``""`` leaves DuckDB's default."""
    if memory_limit:
        con.execute(f"SET memory_limit = {quote_literal(memory_size(memory_limit))}")
    if temp_directory:  # DuckDB creates it when it first spills, and removes its files afterwards
        con.execute(f"SET temp_directory = {quote_literal(Path(temp_directory).resolve())}")


def apply_compute_settings(con: duckdb.DuckDBPyConnection, settings: dict, project_dir: str | Path) -> None:
    """Apply ``[compute] memory_limit`` and ``temp_directory`` (default ``<project>/.gridgov-tmp``;
    a relative path is relative to the project folder) to an open connection."""
    cfg = (settings or {}).get("compute") or {}
    tmp = cfg.get("temp_directory") or TEMP_DIR_NAME
    folder = Path(tmp) if Path(tmp).is_absolute() else Path(project_dir) / tmp
    set_limits(con, memory_limit=cfg.get("memory_limit") or None, temp_directory=folder)


TEMP_DIR_NAME = ".gridgov-tmp"


class unordered:
    """``with unordered(con): ...`` runs statements with ``preserve_insertion_order = false`` (less
    memory for big ``CREATE TABLE … AS``/aggregates whose row order does not matter) and restores
    the previous value afterwards. Tables whose row order others read stay ordered: do not write
    them inside this block."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con

    def __enter__(self) -> duckdb.DuckDBPyConnection:
        self.before = bool(self.con.execute("SELECT current_setting('preserve_insertion_order')").fetchone()[0])
        self.con.execute("SET preserve_insertion_order = false")
        return self.con

    def __exit__(self, *exc) -> None:
        self.con.execute(f"SET preserve_insertion_order = {'true' if self.before else 'false'}")


def connect(path: str | Path = ":memory:", *, read_only: bool = False, memory_limit: str | None = None,
            temp_directory: str | Path | None = None) -> duckdb.DuckDBPyConnection:
    """Open a DuckDB database with the spatial extension loaded from the local package.

    Parameters
    ----------
    path
        Database file, or ``":memory:"``.
    read_only
        Open the file read-only (the app does this).
    memory_limit, temp_directory
        ``[compute] memory_limit`` / ``temp_directory`` (see :func:`set_limits`); ``None`` keeps
        DuckDB's defaults. :func:`apply_compute_settings` applies them from the settings.
    """
    config = {"autoinstall_known_extensions": "false", "autoload_known_extensions": "false"}
    con = duckdb.connect(str(path), read_only=read_only, config=config)
    con.execute(f"LOAD {quote_literal(spatial_extension_path())}")
    set_limits(con, memory_limit=memory_limit, temp_directory=temp_directory)
    return con


def table_exists(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    """Whether a table or view called ``name`` exists in the main schema."""
    q = "SELECT count(*) FROM information_schema.tables WHERE table_name = ? AND table_schema = 'main'"
    return bool(con.execute(q, [name]).fetchone()[0])


def write_gdf(
    con: duckdb.DuckDBPyConnection, name: str, frame: pd.DataFrame, *, replace: bool = True
) -> int:
    """Store a (Geo)DataFrame as table ``name``; a ``geometry`` column becomes GEOMETRY (EPSG:4326).

    A GeoDataFrame in another CRS is reprojected to EPSG:4326 first. Returns the row count.
    """
    df = frame
    geom_col = None
    if isinstance(frame, gpd.GeoDataFrame) and frame.geometry.name in frame.columns:
        gdf = frame
        if gdf.crs is not None and gdf.crs.to_string() != STORAGE_CRS:
            gdf = gdf.to_crs(STORAGE_CRS)
        geom_col = gdf.geometry.name
        df = pd.DataFrame(gdf.drop(columns=[geom_col]))
        df["__wkb"] = shapely.to_wkb(gdf.geometry.values, hex=False)
    else:
        df = pd.DataFrame(frame)
    # The frame is registered under positional names, so no user column name is parsed as SQL;
    # each column is then aliased back to its own name through quote_ident.
    cols = [c for c in df.columns if c != "__wkb"]
    folded = [str(c).casefold() for c in cols]
    if len(set(folded)) != len(folded):
        dup = sorted({str(c) for c, f in zip(cols, folded) if folded.count(f) > 1})
        raise ValueError(f"columns differ only in case (SQL names are case-insensitive): {dup}")
    src = df.copy(deep=False)
    src.columns = [f"c{i}" if c != "__wkb" else "__wkb" for i, c in enumerate(df.columns)]
    pos = {c: f"c{i}" for i, c in enumerate(df.columns) if c != "__wkb"}
    con.register("__write_gdf_src", src)
    try:
        parts = [f"{quote_ident(pos[c])} AS {quote_ident(c)}" for c in cols]
        if geom_col is not None:
            parts.append('ST_GeomFromWKB("__wkb") AS "geometry"')
        verb = "CREATE OR REPLACE TABLE" if replace else "CREATE TABLE"
        con.execute(f"{verb} {quote_ident(name)} AS SELECT {', '.join(parts)} FROM __write_gdf_src")
    finally:
        con.unregister("__write_gdf_src")
    return len(df)


def _is_query(sql_or_table: str) -> bool:
    """A query is code written by this project (it starts with SELECT/WITH/FROM …); anything else is a
    table name and is quoted, whatever characters it holds."""
    text = re.sub(r"^(?:\s+|--[^\n]*(?:\n|$)|/\*.*?\*/)*", "", sql_or_table, flags=re.S)  # leading comments
    head = re.match(r"[A-Za-z]+(?![A-Za-z0-9_])|\(", text)
    return bool(head) and head.group(0).upper() in ("SELECT", "WITH", "FROM", "VALUES", "TABLE", "(",
                                                     "DESCRIBE", "SHOW", "SUMMARIZE", "PIVOT", "UNPIVOT")


def read_table(con: duckdb.DuckDBPyConnection, sql_or_table: str, params: list | None = None) -> pd.DataFrame:
    """Read a table (by name) or a query into a plain DataFrame; GEOMETRY columns come back as WKB bytes."""
    sql = sql_or_table if _is_query(sql_or_table) else f"SELECT * FROM {quote_ident(sql_or_table)}"
    return con.execute(sql, params or []).df()


def read_gdf(
    con: duckdb.DuckDBPyConnection,
    sql_or_table: str,
    *,
    params: list | None = None,
    geometry: str = "geometry",
    crs: str = STORAGE_CRS,
) -> gpd.GeoDataFrame:
    """Read a table or query with a GEOMETRY column into a GeoDataFrame (CRS set explicitly)."""
    sql = sql_or_table if _is_query(sql_or_table) else f"SELECT * FROM {quote_ident(sql_or_table)}"
    rel = con.sql(sql, params=params) if params else con.sql(sql)
    cols = rel.columns
    if geometry not in cols:
        raise KeyError(f"query has no column {geometry!r}; columns: {cols}")
    sel = ", ".join(
        f"ST_AsWKB({quote_ident(c)}) AS {quote_ident(c)}" if c == geometry else quote_ident(c) for c in cols
    )
    df = con.sql(f"SELECT {sel} FROM ({sql})", params=params).df() if params else con.sql(
        f"SELECT {sel} FROM ({sql})"
    ).df()
    wkb = df.pop(geometry)
    geoms = shapely.from_wkb([bytes(b) if b is not None else None for b in wkb])
    return gpd.GeoDataFrame(df, geometry=gpd.GeoSeries(geoms, index=df.index, crs=crs), crs=crs)

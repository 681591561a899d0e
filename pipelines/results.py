"""The one reader of gridgov's result tables, for the app's pages and for notebooks.

Every function takes an open connection (read-only is enough; :func:`open_project` gives one)
and returns plain DataFrames, GeoDataFrames (EPSG:4326) or dicts. No page writes SQL: what a
page shows is read here. Two rules hold throughout:

* values are bound as parameters (``?``), never pasted into the statement;
* identifiers are constants of this module, or names read from the database's own catalogue
  and quoted with :func:`quote_ident` — never text from an input file.

A table a project has not produced reads as ``None`` (or an empty frame with the documented
columns); optional contract columns a project did not supply read as NULL
(:func:`select_columns`), so callers never ask which columns exist.

Example::

    from pipelines import results
    with results.open_project("demo-city") as con:
        run = results.latest_run(con)          # run_id, started_at, settings, summary
        hot = results.hotspots(con, category="all", period="all")
"""
from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path

import duckdb
import geopandas as gpd
import pandas as pd

from pipelines.db import connect, read_gdf, read_table, table_exists

DB_NAME = "gridgov.duckdb"

#: The tables of the hotspot stage (``docs/hotspots.md``).
HOTSPOT_TABLES = ("hotspots", "incident_counts", "hotspot_units", "hotspot_density", "grid_risk",
                  "forecast", "forecast_backtest", "case_timeliness", "hotspot_fishnet",
                  "hotspot_areas", "forecast_recommendation")
#: The tables of the staffing stage (``docs/staffing.md``).
STAFFING_TABLES = ("street_allocation", "community_allocation", "allocation_equity",
                   "worker_performance", "staffing_explanation")
#: Columns of :func:`runs`.
RUN_COLUMNS = ["run_id", "started_at", "finished_at", "status"]


# --------------------------------------------------------------------------------------------
# connection, identifiers, catalogue


def db_path(project: str | Path) -> Path:
    """The database of a project folder (a path to a ``.duckdb`` file is taken as is)."""
    p = Path(project).expanduser()
    return p if p.suffix == ".duckdb" else p / DB_NAME


@contextlib.contextmanager
def open_project(project: str | Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection to a project's database, always closed again."""
    con = connect(db_path(project), read_only=True)
    try:
        yield con
    finally:
        con.close()


def quote_ident(name: str) -> str:
    """``name`` as a SQL identifier: in double quotes, inner quotes doubled."""
    return '"' + str(name).replace('"', '""') + '"'


def table_names(con) -> list[str]:
    """Tables and views of the main schema, sorted."""
    return [r[0] for r in con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' "
        "ORDER BY table_name").fetchall()]


def columns(con, table: str) -> set[str]:
    """The columns of ``table`` (empty when it does not exist)."""
    return {r[0] for r in con.execute(
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_schema = 'main' AND table_name = ?", [table]).fetchall()}


def select_columns(con, table: str, wanted: list[str], geometry: str | None = "geometry",
                   *, point: bool = False) -> str:
    """``SELECT`` of ``wanted`` from ``table``; columns it lacks come back as NULL.

    ``table`` and ``wanted`` are this module's constants; the statement is built from them and
    the catalogue only. With ``geometry``, rows without a geometry are left out; ``point`` reduces
    polygons to a point inside them.
    """
    have = columns(con, table)
    parts = [quote_ident(c) if c in have else f"NULL AS {quote_ident(c)}" for c in wanted]
    sql = f"SELECT {', '.join(parts)}"
    if geometry is not None:
        g = quote_ident(geometry)
        expr = f"ST_PointOnSurface({g})" if point else g
        sql += f", {expr} AS geometry FROM {quote_ident(table)} WHERE {g} IS NOT NULL"
    else:
        sql += f" FROM {quote_ident(table)}"
    return sql


def _json(value) -> dict:
    if isinstance(value, dict):
        return value
    try:
        out = json.loads(value) if value else {}
    except (TypeError, ValueError):
        return {}
    return out if isinstance(out, dict) else {}


# --------------------------------------------------------------------------------------------
# runs, counts, rejects


def latest_run(con, status: str | None = "success") -> dict:
    """The newest run (of ``status``; any status with ``None``) as a dict.

    Keys: ``run_id``, ``started_at``, ``finished_at``, ``status``, ``settings`` and ``summary``
    (both parsed from JSON, ``{}`` when absent). ``{}`` when there is no such run.
    """
    if not table_exists(con, "runs"):
        return {}
    cols = ["run_id", "started_at", "finished_at", "status", "settings", "summary"]
    sql = select_columns(con, "runs", cols, geometry=None)
    params: list = []
    if status is not None:
        sql += " WHERE status = ?"
        params.append(status)
    sql += " ORDER BY started_at DESC NULLS LAST LIMIT 1"
    row = con.execute(sql, params).fetchone()
    if row is None:
        return {}
    out = dict(zip(cols, row))
    out["settings"] = _json(out["settings"])
    out["summary"] = _json(out["summary"])
    return out


def stage_summary(con, stage: str) -> dict:
    """The summary of ``stage`` in the latest successful run (``{}`` if none)."""
    stages = latest_run(con).get("summary", {}).get("stages")
    return (stages or {}).get(stage) or {} if isinstance(stages, dict) else {}


def runs(con, limit: int = 20) -> pd.DataFrame:
    """The most recent runs, newest first: run_id, started_at, finished_at, status."""
    if not table_exists(con, "runs"):
        return pd.DataFrame(columns=RUN_COLUMNS)
    sql = select_columns(con, "runs", RUN_COLUMNS, geometry=None)
    return read_table(con, sql + " ORDER BY started_at DESC NULLS LAST LIMIT ?", [int(limit)])


def table_counts(con) -> dict[str, int | None]:
    """Row count of every table, plus ``households`` / ``residents`` sums of ``buildings``."""
    names = table_names(con)
    counts: dict[str, int | None] = {
        n: con.execute(f"SELECT count(*) FROM {quote_ident(n)}").fetchone()[0] for n in names}
    counts["households"] = counts["residents"] = None
    if "buildings" in names:
        sql = select_columns(con, "buildings", ["households", "residents"], geometry=None)
        hh, res = con.execute(f"SELECT sum(households), sum(residents) FROM ({sql})").fetchone()
        counts["households"] = None if hh is None else int(hh)
        counts["residents"] = None if res is None else int(res)
    return counts


def rejects_summary(con) -> pd.DataFrame:
    """Rejected rows counted by layer and reason: layer, reason, n."""
    if not table_exists(con, "rejects"):
        return pd.DataFrame(columns=["layer", "reason", "n"])
    return read_table(con, "SELECT layer, reason, count(*) AS n FROM rejects "
                           "GROUP BY layer, reason ORDER BY layer, n DESC, reason")


def names(con, table: str) -> dict[str, str]:
    """``code -> name`` of ``streets`` or ``communities`` (``{}`` without the table)."""
    key = {"streets": ("street_code", "street_name"),
           "communities": ("community_code", "community_name")}[table]
    if not table_exists(con, table):
        return {}
    sql = select_columns(con, table, list(key), geometry=None)
    return {k: v for k, v in con.execute(sql).fetchall() if k is not None}


# --------------------------------------------------------------------------------------------
# the map's layers, bounds and metric CRS


def map_layers(con) -> dict[str, gpd.GeoDataFrame]:
    """The layers the map draws, in EPSG:4326, with only the columns it needs.

    Communities carry building counts and household / resident sums from ``buildings``
    (joined on ``community_code``). Buildings and special units come as points (polygons are
    reduced to a point inside them).
    """
    layers: dict[str, gpd.GeoDataFrame] = {}
    has = {n: table_exists(con, n) for n in (
        "streets", "communities", "buildings", "special_units", "barriers")}
    if has["streets"]:
        layers["streets"] = read_gdf(con, select_columns(
            con, "streets", ["street_code", "street_name", "function_type"]))
    if has["communities"]:
        communities = select_columns(con, "communities", [
            "community_code", "community_name", "street_code", "area_km2"])
        if has["buildings"]:
            b = select_columns(con, "buildings", ["community_code", "households", "residents"],
                               geometry=None)
            sql = f"""
                WITH b AS (
                    SELECT community_code, count(*) AS buildings,
                           sum(households) AS households, sum(residents) AS residents
                    FROM ({b}) GROUP BY community_code
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
        layers["buildings"] = read_gdf(con, select_columns(
            con, "buildings", ["building_id", "households", "residents", "street_code"],
            point=True))
    if has["special_units"]:
        layers["special_units"] = read_gdf(con, select_columns(
            con, "special_units",
            ["unit_id", "unit_name", "unit_type", "households", "headcount", "street_code"],
            point=True))
    if has["barriers"]:
        layers["barriers"] = read_gdf(con, select_columns(con, "barriers", ["kind", "name"]))
    return layers


def outlines(con) -> dict[str, gpd.GeoDataFrame]:
    """Street and community outlines (code and geometry only), EPSG:4326."""
    out: dict[str, gpd.GeoDataFrame] = {}
    for table, code in (("streets", "street_code"), ("communities", "community_code")):
        if table_exists(con, table):
            out[table] = read_gdf(con, select_columns(con, table, [code]))
    return out


def bounds(con) -> tuple[float, float, float, float] | None:
    """(min lon, min lat, max lon, max lat) of the streets (else communities, buildings)."""
    for table in ("streets", "communities", "buildings"):
        if table_exists(con, table) and "geometry" in columns(con, table):
            row = con.execute(
                f"SELECT min(ST_XMin(geometry)), min(ST_YMin(geometry)), "
                f"max(ST_XMax(geometry)), max(ST_YMax(geometry)) FROM {quote_ident(table)} "
                "WHERE geometry IS NOT NULL").fetchone()
            if row and all(v is not None for v in row):
                return tuple(float(v) for v in row)
    return None


def metric_crs(con) -> str | None:
    """The projected CRS for metres: the run's ``metric_crs`` setting, else the one
    :func:`geo.chinacrs.metric_crs` picks at the centre of the data (None without data)."""
    setting = latest_run(con).get("settings", {}).get("metric_crs")
    if setting:
        return str(setting)
    box = bounds(con)
    if box is None:
        return None
    from geo.chinacrs import metric_crs as pick

    return pick((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)


# --------------------------------------------------------------------------------------------
# grid plans


def plans(con) -> pd.DataFrame:
    """Every grid plan version, newest first (``plans`` without ``settings``)."""
    cols = ["plan_id", "parent_plan_id", "created_at", "author", "note", "source", "is_current"]
    if not table_exists(con, "plans"):
        return pd.DataFrame(columns=cols)
    return read_table(con, select_columns(con, "plans", cols, geometry=None)
                      + " ORDER BY created_at DESC NULLS LAST, plan_id DESC")


def plan_grids(con, plan_id: str | None = None) -> gpd.GeoDataFrame:
    """The grids of one plan (the current plan's ``grids`` when ``plan_id`` is None)."""
    cols = ["grid_id", "grid_type", "community_code", "street_code", "households",
            "residents", "workload", "area_km2", "compactness", "status"]
    if plan_id is None:
        if not table_exists(con, "grids"):
            return gpd.GeoDataFrame(columns=cols + ["geometry"], geometry="geometry",
                                    crs="EPSG:4326")
        return read_gdf(con, select_columns(con, "grids", cols) + " ORDER BY grid_id")
    if not table_exists(con, "plan_grids"):
        return gpd.GeoDataFrame(columns=cols + ["geometry"], geometry="geometry",
                                crs="EPSG:4326")
    return read_gdf(con, select_columns(con, "plan_grids", cols)
                    + " AND plan_id = ? ORDER BY grid_id", params=[str(plan_id)])


def grid_community(con) -> dict[str, str]:
    """``grid_id -> community_code`` of the current plan (``{}`` without grids)."""
    if not table_exists(con, "grids"):
        return {}
    sql = select_columns(con, "grids", ["grid_id", "community_code"], geometry=None)
    return dict(con.execute(f"SELECT grid_id, any_value(community_code) FROM ({sql}) "
                            "WHERE grid_id IS NOT NULL GROUP BY grid_id").fetchall())


# --------------------------------------------------------------------------------------------
# hot spots, risk, forecast, case timeliness


def hotspots(con, category: str | None = None, period: str | None = None) -> pd.DataFrame:
    """Hot spot rows (grid_id, category, period, z_score, p_fdr, hotspot_class, trend_class,
    and — NULL where the stage did not write them — method, observed, expected, ratio,
    hot_categories, top_category), optionally of one category and period.

    ``hotspot_class`` is the leaders' verdict: with the excess test (default) "more incidents
    than the unit's households lead one to expect"; ``method`` names the test."""
    cols = ["grid_id", "category", "period", "z_score", "p_fdr", "hotspot_class", "trend_class",
            "method", "observed", "expected", "ratio", "hot_categories", "top_category"]
    if not table_exists(con, "hotspots"):
        return pd.DataFrame(columns=cols)
    sql = select_columns(con, "hotspots", cols, geometry=None)
    where, params = [], []
    for col, value in (("category", category), ("period", period)):
        if value is not None:
            where.append(f"{col} = ?")
            params.append(value)
    if where:
        sql = f"SELECT * FROM ({sql}) WHERE " + " AND ".join(where)
    return read_table(con, sql, params)


def hotspot_tables(con) -> dict:
    """Everything the hotspot pages show except geometries, read once per database file.

    Keys: ``has`` (table -> exists), ``summary`` (the stage's run summary), ``hotspots``,
    ``categories`` (``all`` first, then by frequency), ``periods`` (months), ``counts``
    (incident_counts), ``risk`` (grid_id, risk_score, components as JSON text), ``forecast``,
    ``backtest`` (its grid rows; equal-area cell rows, when the stage wrote them, in
    ``backtest_cells``), ``timeliness``, ``community_names``, ``street_names``, ``unit_community``
    (grid -> community code), ``staff_street`` (staff -> street code). Absent tables: no key.
    """
    out: dict = {}
    has = {n: table_exists(con, n) for n in HOTSPOT_TABLES + (
        "grids", "communities", "streets", "staff")}
    out["has"] = has
    out["summary"] = stage_summary(con, "hotspots")
    if has["hotspots"]:
        h = hotspots(con)
        for c in ("category", "period", "hotspot_class", "trend_class"):
            h[c] = h[c].astype("category")
        out["hotspots"] = h
        # 'any' (a unit hot in any category) first: the default view shows every hot unit
        out["categories"] = [r[0] for r in con.execute(
            "SELECT category FROM hotspots GROUP BY category "
            "ORDER BY category <> 'any', category <> 'all', count(*) DESC, category").fetchall()]
        out["periods"] = [r[0] for r in con.execute(
            "SELECT DISTINCT period FROM hotspots WHERE period <> 'all' "
            "ORDER BY period").fetchall()]
    if has["incident_counts"]:
        c = read_table(con, select_columns(con, "incident_counts", [
            "grid_id", "category", "period", "incidents", "per_km2"], geometry=None))
        for col in ("category", "period"):
            c[col] = c[col].astype("category")
        out["counts"] = c
    if has["grid_risk"]:
        out["risk"] = read_table(con, "SELECT grid_id, risk_score, "
                                      "CAST(components AS VARCHAR) AS components FROM grid_risk")
    for key, table in (("forecast", "forecast"), ("backtest", "forecast_backtest"),
                       ("timeliness", "case_timeliness"), ("areas", "hotspot_areas"),
                       ("recommendation", "forecast_recommendation")):
        if has[table]:
            out[key] = read_table(con, table)
    if "backtest" in out and "unit" in out["backtest"].columns:
        # grid rows are the page's backtest; equal-area cell rows (unit 'cell_<m>m') apart
        unit = out["backtest"]["unit"]
        grid = unit.isna() | (unit == "grid")
        out["backtest_cells"] = out["backtest"][~grid].reset_index(drop=True)
        out["backtest"] = out["backtest"][grid].reset_index(drop=True)
    out["community_names"] = names(con, "communities")
    out["street_names"] = names(con, "streets")
    out["unit_community"] = grid_community(con)
    out["staff_street"] = {}
    if has["staff"]:
        sql = select_columns(con, "staff", ["staff_id", "street_code"], geometry=None)
        out["staff_street"] = dict(con.execute(
            f"SELECT staff_id, any_value(street_code) FROM ({sql}) "
            "WHERE staff_id IS NOT NULL GROUP BY staff_id").fetchall())
    return out


def hotspot_units(con) -> gpd.GeoDataFrame:
    """The analysis units' outlines (grid_id, geometry)."""
    if not table_exists(con, "hotspot_units"):
        return gpd.GeoDataFrame(columns=["grid_id", "geometry"], geometry="geometry",
                                crs="EPSG:4326")
    return read_gdf(con, select_columns(con, "hotspot_units", ["grid_id"]))


def hotspot_fishnet(con, category: str = "all", significant_only: bool = True
                    ) -> gpd.GeoDataFrame:
    """Gi* on the equal-area fishnet ("where incidents concentrate"): cell_id, category, cell_m,
    incidents, z_score, p_fdr, hotspot_class, geometry — of one category, by default only the
    cells whose class is not 'none' (a city holds tens of thousands of cells)."""
    cols = ["cell_id", "category", "cell_m", "incidents", "z_score", "p_fdr", "hotspot_class"]
    if not table_exists(con, "hotspot_fishnet"):
        return gpd.GeoDataFrame(columns=cols + ["geometry"], geometry="geometry",
                                crs="EPSG:4326")
    sql = select_columns(con, "hotspot_fishnet", cols) + " AND category = ?"
    if significant_only:
        sql += " AND coalesce(hotspot_class, 'none') <> 'none'"
    return read_gdf(con, sql + " ORDER BY cell_id", params=[category])


def hotspot_density(con) -> gpd.GeoDataFrame:
    """The kernel density surface's cell centres with a positive density."""
    if not table_exists(con, "hotspot_density"):
        return gpd.GeoDataFrame(columns=["density_per_km2", "cell_m", "geometry"],
                                geometry="geometry", crs="EPSG:4326")
    return read_gdf(con, select_columns(con, "hotspot_density", ["density_per_km2", "cell_m"])
                    + " AND density_per_km2 > 0")


def expand_components(risk: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, float]]:
    """``grid_risk.components`` JSON -> ``<name>__raw`` / ``<name>__points`` columns, weights.

    Components are ordered as :data:`RISK_COMPONENTS`, unknown ones after.
    """
    names_: list[str] = []
    weights: dict[str, float] = {}
    parsed = []
    for text in risk["components"]:
        try:
            obj = json.loads(text) if isinstance(text, str) else (text or {})
        except ValueError:
            obj = {}
        parsed.append(obj if isinstance(obj, dict) else {})
        for k in parsed[-1]:
            if k not in names_:
                names_.append(k)
    order = RISK_COMPONENTS
    names_.sort(key=lambda n: order.index(n) if n in order else len(order))
    raw: dict[str, list] = {n: [] for n in names_}
    pts: dict[str, list] = {n: [] for n in names_}
    for obj in parsed:
        for n in names_:
            part = obj.get(n) or {}
            part = part if isinstance(part, dict) else {}
            raw[n].append(part.get("raw"))
            pts[n].append(part.get("contribution"))
            if n not in weights and part.get("weight") is not None:
                weights[n] = float(part["weight"])
    out = risk[["grid_id", "risk_score"]].copy()
    for n in names_:
        out[f"{n}__raw"] = pd.to_numeric(pd.Series(raw[n], index=risk.index), errors="coerce")
        out[f"{n}__points"] = pd.to_numeric(pd.Series(pts[n], index=risk.index),
                                            errors="coerce")
    return out, weights


#: Risk index components in display order.
RISK_COMPONENTS = ("incidents", "elderly_alone", "disabled", "low_income", "special_units")


# --------------------------------------------------------------------------------------------
# staffing


def staffing_tables(con) -> dict:
    """The staffing stage's tables (None when absent), community names, and the latest
    successful run's ``settings`` and ``summary``."""
    out: dict = {name: (read_table(con, name) if table_exists(con, name) else None)
                 for name in STAFFING_TABLES}
    out["community_names"] = names(con, "communities")
    run = latest_run(con)
    out["settings"] = run.get("settings", {})
    out["summary"] = run.get("summary", {})
    return out


def base_allocation(con, settings: dict | None = None):
    """The stored street allocation as a :class:`geo.staffing.Allocation` (what-if start)."""
    from pipelines.stage_staffing import load_allocation

    if settings is None:
        settings = latest_run(con).get("settings", {})
    return load_allocation(con, settings)


def whatif(base, streets: pd.DataFrame, **changes) -> dict:
    """A what-if on the stored allocation (:func:`geo.staffing.whatif`) against the run's.

    ``changes`` are ``whatif``'s keywords (budget, minimum, method, weights, function_type).
    Returns ``result`` (the ``WhatIf``), ``table`` (street_code, street_name, function_type,
    current_staff, recommended_staff, gap, hours_per_recommended_staff, ``before`` — the run's
    recommendation — and ``change``) and ``gini`` (staff per workload, recommended). Raises
    what ``whatif`` raises (``BudgetTooSmall``, ``ValueError``).
    """
    from geo import staffing as model

    result = model.whatif(base, **changes)
    new = result.allocation.table
    eq = model.equity_summary(new, level="street").set_index("metric")
    run_rec = streets.set_index("street_code")["recommended_staff"]
    table = new[["street_code", "street_name", "function_type", "current_staff",
                 "recommended_staff", "gap", "hours_per_recommended_staff"]].copy()
    table["before"] = table["street_code"].map(run_rec).astype("int64")
    table["change"] = table["recommended_staff"] - table["before"]
    return {"result": result, "table": table,
            "gini": float(eq.loc["gini_staff_per_workload", "recommended"])}


#: A spreadsheet reads a cell starting with one of these as a formula.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def text_cells(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy whose text cells that a spreadsheet would run as a formula (``=``, ``+``, ``-``,
    ``@``, tab, CR first) start with an apostrophe, so they open as text (CSV downloads)."""
    out = frame.copy()
    for c in out.columns:
        if pd.api.types.is_string_dtype(out[c]) or pd.api.types.is_object_dtype(out[c]):
            out[c] = out[c].map(lambda v: "'" + v if isinstance(v, str)
                                and v.startswith(FORMULA_START) else v)
    return out


def map_limits(project_dir: str | Path) -> dict[str, int]:
    """The ``[app] map_max_units`` / ``map_max_communities`` the project's ``gridgov.toml`` sets
    (only those set): above these counts the hot-spot and map pages show streets first (the
    defaults are in ``pipelines.config.DEFAULTS``). Read leniently like
    :func:`project_attribution` (the run validates the file; a page must not stop on it): a
    broken file or a value that is not a positive whole number is left out."""
    import tomllib

    try:
        app = tomllib.loads((Path(project_dir) / "gridgov.toml").read_text(encoding="utf-8")).get("app", {})
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return {}
    if not isinstance(app, dict):
        return {}
    return {k: v for k in ("map_max_units", "map_max_communities")
            if isinstance(v := app.get(k), int) and not isinstance(v, bool) and v > 0}


def project_attribution(project_dir: str | Path) -> str:
    """Who to credit on a map: ``"demo"``, ``"project"`` or a text from the settings.

    ``[app] attribution = "…"`` in the project's ``gridgov.toml`` wins. Otherwise the demo city
    (its ``gridgov.toml`` / ``README.txt`` say "synthetic demo data") gets the demo credits
    (Tianditu boundaries, NBS names, synthetic geometry), and any other project a neutral line:
    a planner's own data must not be labelled synthetic. The settings file is read leniently
    (a broken file gives the neutral line), because a map credit must never stop a page.
    """
    import tomllib

    folder = Path(project_dir)
    try:
        text = (folder / "gridgov.toml").read_text(encoding="utf-8")
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

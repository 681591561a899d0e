"""Grid plan versions: every generated or edited plan is a new row in ``plans``; nothing is overwritten.

History tables (kept across runs):

* ``plans`` — plan_id, parent_plan_id, created_at, author, note, settings (JSON), source, is_current
* ``plan_grids`` — every grid of every plan (the ``grids`` columns + plan_id)
* ``plan_members`` — building_id, grid_id, plan_id for every plan
* ``grid_metrics`` — one row per plan (contract columns + a few more)

Current-plan tables (contract): ``grids`` and ``grid_members`` hold the plan whose ``is_current``
is true.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone

import duckdb
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from pipelines.db import STORAGE_CRS, quote_ident, read_gdf, read_table, table_exists, write_gdf

GRID_COLUMNS = ["grid_id", "plan_id", "grid_type", "community_code", "street_code", "households", "residents",
                "workload", "area_km2", "compactness", "status", "n_cells", "unit_type", "unit_ids"]
METRIC_COLUMNS = ["plan_id", "n_grids", "n_basic", "n_dedicated", "households_min", "households_max",
                  "share_within_norm", "share_within_norm_feasible", "workload_cv", "mean_compactness",
                  "contiguous", "coverage_gap_km2", "overlap_km2", "outside_km2",
                  # geometry checks (geo.grids.plan_integrity): a plan with any of them is flagged
                  "n_barrier_crossed", "n_overlaps", "n_invalid", "flagged"]
_BOOL_METRICS = ("contiguous", "flagged")


def new_plan_id(con: duckdb.DuckDBPyConnection) -> str:
    """``P0001``, ``P0002`` … (one more than the highest number so far; ``P0000`` is today's map)."""
    if not table_exists(con, "plans"):
        return "P0001"
    ids = {r[0] for r in con.execute("SELECT plan_id FROM plans").fetchall()}
    nums = [int(i[1:]) for i in ids if isinstance(i, str) and len(i) > 1 and i[0] == "P" and i[1:].isdigit()]
    n = max(nums, default=0) + 1
    while f"P{n:04d}" in ids:
        n += 1
    return f"P{n:04d}"


def _ensure(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("""CREATE TABLE IF NOT EXISTS plans (plan_id VARCHAR PRIMARY KEY, parent_plan_id VARCHAR,
                   created_at TIMESTAMP, author VARCHAR, note VARCHAR, settings JSON, source VARCHAR,
                   is_current BOOLEAN)""")


def current_plan_id(con: duckdb.DuckDBPyConnection) -> str | None:
    """The plan marked current, or None."""
    if not table_exists(con, "plans"):
        return None
    row = con.execute("SELECT plan_id FROM plans WHERE is_current ORDER BY created_at DESC LIMIT 1").fetchone()
    return row[0] if row else None


def store_plan(
    con: duckdb.DuckDBPyConnection,
    grids: gpd.GeoDataFrame,
    members: pd.DataFrame,
    metrics: dict,
    *,
    parent_plan_id: str | None,
    author: str,
    note: str,
    settings: dict,
    source: str,
    make_current: bool = True,
    plan_id: str | None = None,
) -> str:
    """Append a plan (grids in any CRS, members ``building_id, grid_id``, metrics dict); return its id.

    ``plan_id`` names it (e.g. ``P0000`` for today's map as given); default the next free number.
    """
    _ensure(con)
    if plan_id is None:
        plan_id = new_plan_id(con)
    elif con.execute("SELECT count(*) FROM plans WHERE plan_id = ?", [plan_id]).fetchone()[0]:
        raise ValueError(f"plan {plan_id} exists already")
    g = grids.copy()
    g["plan_id"] = plan_id
    for c in GRID_COLUMNS:
        if c not in g:
            g[c] = None
    g["unit_ids"] = g["unit_ids"].map(lambda v: ",".join(map(str, v)) if isinstance(v, list | tuple | np.ndarray) else v)
    g = gpd.GeoDataFrame(g[GRID_COLUMNS], geometry=g.geometry, crs=grids.crs).to_crs(STORAGE_CRS)
    g, still_bad = _valid_polygons(g)
    for c in ("households", "residents", "n_cells"):
        g[c] = pd.to_numeric(g[c], errors="coerce").fillna(0).astype("int64")
    for c in ("workload", "area_km2", "compactness"):
        g[c] = pd.to_numeric(g[c], errors="coerce").astype(float)
    for c in ("grid_id", "plan_id", "grid_type", "community_code", "street_code", "status", "unit_type", "unit_ids"):
        g[c] = g[c].astype("string")
    m = pd.DataFrame({"building_id": members["building_id"].astype(str).to_numpy(),
                      "grid_id": members["grid_id"].astype(str).to_numpy(), "plan_id": plan_id})
    row = {c: metrics.get(c) for c in METRIC_COLUMNS}
    row["plan_id"] = plan_id
    if still_bad:  # what reprojection broke and could not be mended counts too
        row["n_invalid"] = max(int(row.get("n_invalid") or 0), still_bad)
        row["flagged"] = True
    mdf = pd.DataFrame([row])
    for c in _BOOL_METRICS:
        mdf[c] = mdf[c].fillna(False).astype(bool)
    for c in METRIC_COLUMNS[1:]:
        if c not in _BOOL_METRICS:
            mdf[c] = pd.to_numeric(mdf[c], errors="coerce").astype(float)
    _append(con, "plan_grids", g)
    _append(con, "plan_members", m)
    _append(con, "grid_metrics", mdf)
    if make_current:
        con.execute("UPDATE plans SET is_current = false")
    con.execute("INSERT INTO plans VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [plan_id, parent_plan_id, datetime.now(timezone.utc).replace(tzinfo=None), author, note,
                 json.dumps(settings, ensure_ascii=False, default=str), source, make_current])
    if make_current:
        publish_current(con)
    return plan_id


def _valid_polygons(g: gpd.GeoDataFrame) -> tuple[gpd.GeoDataFrame, int]:
    """Mend grid polygons that reprojection made invalid; return how many are still not one valid polygon.

    Rounding in the transform to EPSG:4326 can make a ring touch itself; ``make_valid`` with the
    "structure" method keeps holes as holes, and specks (< 1e-9 degrees², about 10 m²) are dropped.
    """
    geoms = np.asarray(g.geometry.values, dtype=object)
    present = ~shapely.is_missing(geoms) & ~shapely.is_empty(geoms)
    bad = present & (~shapely.is_valid(geoms) | (shapely.get_type_id(geoms) != 3))
    if not bad.any():
        return g, 0
    fixed = geoms.copy()
    for i in np.flatnonzero(bad):
        geom = fixed[i]
        if not geom.is_valid:
            geom = shapely.make_valid(geom, method="structure", keep_collapsed=False)
        parts = [p for p in shapely.get_parts(geom) if p.geom_type == "Polygon" and p.area > 0]
        big = [p for p in parts if p.area >= 1e-9] or parts
        if len(big) == 1:
            geom = big[0]
        elif big:
            geom = shapely.MultiPolygon(big)
        fixed[i] = geom
    g = g.set_geometry(gpd.GeoSeries(fixed, index=g.index, crs=g.crs))
    still = int((present & (~shapely.is_valid(fixed) | (shapely.get_type_id(fixed) != 3))).sum())
    return g, still


def _append(con: duckdb.DuckDBPyConnection, table: str, frame: pd.DataFrame) -> None:
    if not table_exists(con, table):
        write_gdf(con, table, frame)
        return
    write_gdf(con, "__plan_append", frame)
    cols = [r[0] for r in con.execute(f"DESCRIBE {quote_ident(table)}").fetchall()]
    new = [(r[0], r[1]) for r in con.execute('DESCRIBE "__plan_append"').fetchall() if r[0] not in cols]
    for name, dtype in new:  # a column added since the history table was made (e.g. a new metric)
        if dtype.replace(" ", "").isalnum() or dtype in ("TIMESTAMP WITH TIME ZONE",):
            con.execute(f"ALTER TABLE {quote_ident(table)} ADD COLUMN {quote_ident(name)} {dtype}")
            cols.append(name)
    have = {r[0] for r in con.execute('DESCRIBE "__plan_append"').fetchall()}
    sel = ", ".join(quote_ident(c) if c in have else f"NULL AS {quote_ident(c)}" for c in cols)
    con.execute(f'INSERT INTO {quote_ident(table)} SELECT {sel} FROM "__plan_append"')
    con.execute('DROP TABLE "__plan_append"')


def publish_current(con: duckdb.DuckDBPyConnection) -> None:
    """(Re)write ``grids`` and ``grid_members`` from the current plan."""
    pid = current_plan_id(con)
    if pid is None:
        return
    con.execute("CREATE OR REPLACE TABLE grids AS SELECT * FROM plan_grids WHERE plan_id = ?", [pid])
    con.execute("CREATE OR REPLACE TABLE grid_members AS SELECT building_id, grid_id, plan_id FROM plan_members "
                "WHERE plan_id = ?", [pid])


def set_current(con: duckdb.DuckDBPyConnection, plan_id: str) -> None:
    """Make a stored plan the current one."""
    if not con.execute("SELECT count(*) FROM plans WHERE plan_id = ?", [plan_id]).fetchone()[0]:
        raise KeyError(f"no plan {plan_id}")
    con.execute("UPDATE plans SET is_current = (plan_id = ?)", [plan_id])
    publish_current(con)


def load_plan(con: duckdb.DuckDBPyConnection, plan_id: str) -> tuple[gpd.GeoDataFrame, pd.DataFrame]:
    """Grids (EPSG:4326) and members of a stored plan."""
    grids = read_gdf(con, "SELECT * FROM plan_grids WHERE plan_id = ?", params=[plan_id])
    members = read_table(con, "SELECT building_id, grid_id FROM plan_members WHERE plan_id = ?", [plan_id])
    return grids, members

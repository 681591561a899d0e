"""Readers the map pages need beyond :mod:`pipelines.results` (issue #13.4, maps that stay
light): which street each analysis unit lies in, and the street outlines with their names.

Same rules as :mod:`pipelines.results`: an open (read-only) connection in, plain frames and
dicts out; identifiers are this module's constants (quoted), values are bound, never pasted.
"""
from __future__ import annotations

import geopandas as gpd

from pipelines.db import read_gdf, table_exists
from pipelines.results import columns, select_columns

STREET_COLUMNS = ["street_code", "street_name", "district_code", "district_name"]


def street_outlines(con) -> gpd.GeoDataFrame:
    """Streets (code, name, district code and name; NULL where the project has none) with
    their outlines, EPSG:4326, ordered by code."""
    if not table_exists(con, "streets"):
        return gpd.GeoDataFrame(columns=STREET_COLUMNS + ["geometry"], geometry="geometry",
                                crs="EPSG:4326")
    return read_gdf(con, select_columns(con, "streets", STREET_COLUMNS)
                    + " ORDER BY street_code")


def unit_streets(con) -> dict[str, str]:
    """Analysis unit (``hotspot_units.grid_id``) -> street code.

    A unit that is a grid of the current plan takes the grid's ``street_code``; any other unit
    (equal cells when the project has no grids, or a grid without a street code) the street
    whose outline holds a point inside the unit (the first street by code if outlines overlap).
    Units in no street are left out.
    """
    if not table_exists(con, "hotspot_units"):
        return {}
    out: dict[str, str] = {}
    known = "SELECT NULL AS grid_id WHERE false"
    if table_exists(con, "grids") and {"grid_id", "street_code"} <= columns(con, "grids"):
        known = "SELECT grid_id FROM grids WHERE street_code IS NOT NULL"
        out.update(con.execute(
            "SELECT u.grid_id, any_value(g.street_code) FROM hotspot_units u "
            "JOIN grids g ON g.grid_id = u.grid_id "
            "WHERE g.street_code IS NOT NULL GROUP BY u.grid_id").fetchall())
    if table_exists(con, "streets") and "geometry" in columns(con, "streets") \
            and "geometry" in columns(con, "hotspot_units"):
        rows = con.execute(
            "WITH p AS (SELECT grid_id, ST_PointOnSurface(geometry) AS pt FROM hotspot_units "
            f"WHERE geometry IS NOT NULL AND grid_id NOT IN ({known})) "
            "SELECT p.grid_id, min(s.street_code) FROM p JOIN streets s "
            "ON ST_Intersects(s.geometry, p.pt) WHERE s.street_code IS NOT NULL "
            "GROUP BY p.grid_id").fetchall()
        for unit, street in rows:
            out.setdefault(unit, street)
    return out

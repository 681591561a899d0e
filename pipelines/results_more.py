"""More readers of result tables, for the 红黑榜, fusion and plan-history pages.

Same rules as :mod:`pipelines.results` (the one reader): values are bound as parameters,
identifiers are this module's constants quoted through :func:`pipelines.results.select_columns`,
a table a project has not produced reads as ``None`` or an empty frame with the documented
columns. Kept apart so the pages could start while ``results.py`` is being edited; the
functions may move into ``results.py`` under the same names.
"""
from __future__ import annotations

import geopandas as gpd
import pandas as pd

from pipelines.db import read_gdf, read_table, table_exists
from pipelines.results import quote_ident, select_columns

#: Columns of ``case_rates`` the pages read (docs/cases.md).
CASE_RATE_COLUMNS = ["scope", "scope_id", "scope_name", "period", "cases", "response_rate",
                     "resolution_rate", "satisfaction_rate", "on_time_close_rate",
                     "returned_rate", "score", "small_n", "rank", "board"]
#: Columns of ``case_outcomes``.
OUTCOME_COLUMNS = ["incident_id", "grid_id", "street_code", "community_code", "period",
                   "responded", "resolved", "satisfied", "closed_on_time", "returned"]
#: Columns of ``incidents`` shown next to a case.
INCIDENT_COLUMNS = ["incident_id", "occurred_at", "category", "service_type", "department",
                    "service_company", "staff_id", "status"]
FUSION_SUMMARY = ["department", "n_grids", "n_split", "share_split", "mean_max_overlap_share",
                  "share_aligned", "uncovered_share"]
FUSION_OVERLAPS = ["department", "dept_grid_id", "basic_grid_id", "overlap_km2",
                   "share_of_dept_grid", "share_of_basic_grid"]
METRIC_COLUMNS = ["plan_id", "n_grids", "n_basic", "n_dedicated", "households_min",
                  "households_max", "share_within_norm", "workload_cv", "mean_compactness",
                  "contiguous", "coverage_gap_km2", "overlap_km2", "n_barrier_crossed",
                  "n_overlaps", "n_invalid", "flagged"]


def case_rates(con) -> pd.DataFrame | None:
    """The whole ``case_rates`` table (None when the cases stage has not run), ordered by
    scope, period, rank (unranked last) and id."""
    if not table_exists(con, "case_rates"):
        return None
    sql = select_columns(con, "case_rates", CASE_RATE_COLUMNS, geometry=None)
    return read_table(con, f"SELECT * FROM ({sql}) "
                           "ORDER BY scope, period, rank NULLS LAST, scope_id")


def case_outcomes(con, *, street: str | None = None, community: str | None = None,
                  grid: str | None = None, period: str | None = None) -> pd.DataFrame:
    """The cases of one street / community / grid (and month), with their incident's fields.

    ``case_outcomes`` left-joined with ``incidents`` on ``incident_id``; filters are bound
    values. Ordered by time of occurrence.
    """
    cols = OUTCOME_COLUMNS + [c for c in INCIDENT_COLUMNS if c != "incident_id"]
    if not table_exists(con, "case_outcomes"):
        return pd.DataFrame(columns=cols)
    out = select_columns(con, "case_outcomes", OUTCOME_COLUMNS, geometry=None)
    if table_exists(con, "incidents"):
        inc = select_columns(con, "incidents", INCIDENT_COLUMNS, geometry=None)
    else:
        inc = "SELECT " + ", ".join(f"NULL AS {quote_ident(c)}" for c in INCIDENT_COLUMNS)
    extra = ", ".join(f"i.{quote_ident(c)}" for c in INCIDENT_COLUMNS if c != "incident_id")
    sql = f"SELECT o.*, {extra} FROM ({out}) o LEFT JOIN ({inc}) i USING (incident_id)"
    where, params = [], []
    for col, value in (("street_code", street), ("community_code", community),
                       ("grid_id", grid), ("period", period)):
        if value is not None:
            where.append(f"o.{quote_ident(col)} = ?")
            params.append(str(value))
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY i.occurred_at NULLS LAST, o.incident_id"
    return read_table(con, sql, params)


def fusion_tables(con) -> dict[str, pd.DataFrame | None]:
    """``summary`` (grid_fusion) and ``overlaps`` (grid_fusion_overlaps), None when absent."""
    out: dict[str, pd.DataFrame | None] = {"summary": None, "overlaps": None}
    for key, table, cols in (("summary", "grid_fusion", FUSION_SUMMARY),
                             ("overlaps", "grid_fusion_overlaps", FUSION_OVERLAPS)):
        if table_exists(con, table):
            out[key] = read_table(con, select_columns(con, table, cols, geometry=None))
    return out


def department_grids(con) -> gpd.GeoDataFrame:
    """The departments' own grids (department, grid_id, geometry), EPSG:4326."""
    if not table_exists(con, "department_grids"):
        return gpd.GeoDataFrame(columns=["department", "grid_id", "geometry"],
                                geometry="geometry", crs="EPSG:4326")
    return read_gdf(con, select_columns(con, "department_grids", ["department", "grid_id"])
                    + " ORDER BY department, grid_id")


def grid_metrics(con) -> pd.DataFrame:
    """One row of figures per stored plan (``grid_metrics``)."""
    if not table_exists(con, "grid_metrics"):
        return pd.DataFrame(columns=METRIC_COLUMNS)
    return read_table(con, select_columns(con, "grid_metrics", METRIC_COLUMNS, geometry=None)
                      + " ORDER BY plan_id")


def plan_members(con, plan_id: str) -> pd.DataFrame:
    """``building_id, grid_id`` of one stored plan, with the building's households."""
    if not table_exists(con, "plan_members"):
        return pd.DataFrame(columns=["building_id", "grid_id", "households"])
    m = select_columns(con, "plan_members", ["building_id", "grid_id", "plan_id"],
                       geometry=None)
    if table_exists(con, "buildings"):
        b = select_columns(con, "buildings", ["building_id", "households"], geometry=None)
        sql = (f"SELECT m.building_id, m.grid_id, coalesce(b.households, 0) AS households "
               f"FROM ({m}) m LEFT JOIN ({b}) b USING (building_id) WHERE m.plan_id = ? "
               "ORDER BY m.building_id")
    else:
        sql = (f"SELECT building_id, grid_id, 0 AS households FROM ({m}) WHERE plan_id = ? "
               "ORDER BY building_id")
    return read_table(con, sql, [str(plan_id)])


def case_hierarchy(con) -> pd.DataFrame:
    """Distinct ``street_code, community_code, grid_id`` of the cases (the drill-down's tree),
    with the street and community names where the tables have them."""
    cols = ["street_code", "community_code", "grid_id", "street_name", "community_name"]
    if not table_exists(con, "case_outcomes"):
        return pd.DataFrame(columns=cols)
    o = select_columns(con, "case_outcomes", ["street_code", "community_code", "grid_id"],
                       geometry=None)
    sql = f"SELECT DISTINCT street_code, community_code, grid_id FROM ({o})"
    frame = read_table(con, sql + " ORDER BY street_code, community_code, grid_id")
    from pipelines.results import names

    frame["street_name"] = frame["street_code"].map(names(con, "streets"))
    frame["community_name"] = frame["community_code"].map(names(con, "communities"))
    return frame

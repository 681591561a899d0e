"""Stage ``cases``: the 接诉即办 rates and the 红黑榜 (Art. 16, 43, 44, 45).

Reads ``incidents`` (whichever life-cycle columns it has: ``accepted_at``, ``dispatched_at``,
``responded_at``, ``closed_at``, ``resolved``, ``satisfaction``, ``returned``, ``department``,
``service_company``), places each incident in a grid of the current plan when ``grids`` exists,
and writes

* ``case_rates`` (data contract) — scope × period: ``cases``, ``response_rate``,
  ``resolution_rate``, ``satisfaction_rate``, ``on_time_close_rate``, ``returned_rate``, the
  denominators, median hours per life-cycle stage, ``score``, ``small_n``, ``rank``, ``board``
  and ``scope_name`` (street or community name where known);
* ``case_outcomes`` — one row per incident: its grid and its five outcome flags, for the
  drill-down from street to community to grid to cases.

Bounded memory (issue #13.2): placing, judging and aggregating run inside DuckDB — the per-case
flags and hours are SQL (``pipelines.aggregates``; the text fields are parsed by
``geo.caserates`` on their distinct values), ``case_outcomes`` is written by DuckDB, and Python
reads scope × period aggregates only, which ``geo.caserates.finish_rates`` scores and ranks.

Rules and defaults: ``geo.caserates`` and ``docs/cases.md``. Settings: ``[cases]`` (``DEFAULTS``
below); the deadlines are those of ``[hotspots.timeliness]`` so that ``case_timeliness``,
``worker_performance`` and ``case_rates`` agree.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import duckdb
import pandas as pd

from geo import caserates as model
from pipelines import aggregates as agg
from pipelines import config, results
from pipelines.db import table_exists, write_gdf

log = logging.getLogger(__name__)

#: ``[cases]`` settings (documented in docs/cases.md).
DEFAULTS: dict[str, Any] = config.DEFAULTS["cases"]  # geo.caserates.DEFAULTS, assembled in pipelines/config.py

OUTPUT_TABLES = ("case_rates", "case_outcomes")

#: Incident columns the stage reads when present.
_WANTED = ("incident_id", "occurred_at", "accepted_at", "dispatched_at", "responded_at",
           "closed_at", "category", "service_type", "severity", "resolved", "satisfaction",
           "returned", "department", "service_company", "staff_id", "street_code",
           "community_code")


_q = results.quote_ident  # identifiers: constants of this module or the catalogue's names
_columns = results.columns


def _plan(con: duckdb.DuckDBPyConnection) -> str | None:
    """The plan whose grids the incidents are placed in: the current plan, else the newest."""
    if "plan_id" not in _columns(con, "grids"):
        return None
    if table_exists(con, "plans") and "is_current" in _columns(con, "plans"):
        row = con.execute(
            "SELECT plan_id FROM plans WHERE is_current AND plan_id IN (SELECT plan_id FROM grids) "
            "ORDER BY created_at DESC NULLS LAST LIMIT 1").fetchone()
        if row:
            return row[0]
    row = con.execute("SELECT max(plan_id) FROM grids").fetchone()
    return row[0] if row else None


_G = "__cases_grid"  # temp: rowid of an incident → grid of the plan (one row per placed incident)
_C = "__cases"  # temp: one row per incident with its flags and stage hours (stays in DuckDB)
_FLAGS = ("responded", "resolved", "satisfied", "closed_on_time", "returned")
_HOURS = ("hours_to_accept", "hours_accept_to_dispatch", "hours_dispatch_to_respond",
          "hours_respond_to_close")


def _place(con: duckdb.DuckDBPyConnection, cols: list[str]) -> str | None:
    """Temp table ``__cases_grid`` (rowid, grid_id): each incident in a grid of the current plan
    (the lowest grid id where grids overlap), built by DuckDB's spatial join; returns the plan."""
    con.execute(f"CREATE OR REPLACE TEMP TABLE {_G} (rid BIGINT, grid_id VARCHAR)")
    if not (table_exists(con, "grids") and "geometry" in cols):
        return None
    plan = _plan(con)
    where = "WHERE plan_id = $plan" if plan is not None else ""
    con.execute(f"""
        INSERT INTO {_G}
        WITH g AS (SELECT CAST(grid_id AS VARCHAR) AS grid_id, geometry FROM grids {where})
        SELECT i.rowid AS rid, min(g.grid_id) AS grid_id
        FROM incidents i JOIN g ON ST_Intersects(g.geometry, i.geometry)
        GROUP BY i.rowid""", {"plan": plan} if plan is not None else {})
    return plan


def _case_table(con: duckdb.DuckDBPyConnection, params: dict) -> tuple[str | None, list[str]]:
    """Temp table ``__cases``: one row per incident with the scope ids, ``period``, the five flags
    of ``geo.caserates.case_flags`` and the stage hours — computed in SQL (issue #13.2); the
    text fields (resolved, satisfaction, returned) are parsed by ``geo.caserates`` on their
    distinct values. Returns the plan and the scopes present."""
    types = agg.column_types(con, "incidents")
    cols = list(types)
    plan = _place(con, cols)
    kw = dict(params.get("timeliness") or {})
    stamps = {c: agg.ts_expr(types, c) for c in ("occurred_at", "accepted_at", "dispatched_at",
                                                   "responded_at", "closed_at")}
    parsed = {
        "resolved": agg.parsed_lookup(con, types, "resolved", model.parse_resolved),
        "satisfied": agg.parsed_lookup(con, types, "satisfaction",
                                       lambda v: model.parse_satisfaction(v, params=params)),
        "returned": agg.parsed_lookup(con, types, "returned", model.parse_returned),
    }
    src = {"resolved": "resolved", "satisfied": "satisfaction", "returned": "returned"}
    joins = [f"LEFT JOIN {_G} __g ON __g.rid = i.rowid"]
    select = ["__g.grid_id AS grid_id"]
    for flag, table in parsed.items():
        if table is None:
            select.append(f"NULL::DOUBLE AS {flag}")
            continue
        a = f"__p_{flag}"
        joins.append(f"LEFT JOIN {table} {a} ON {a}.k = CAST(i.{_q(src[flag])} AS VARCHAR)")
        select.append(f"{a}.flag AS {flag}")
    for name, (x, y) in zip(_HOURS, [("occurred_at", "accepted_at"),
                                     ("accepted_at", "dispatched_at"),
                                     ("dispatched_at", "responded_at"),
                                     ("responded_at", "closed_at")]):
        h = agg.hours_expr(stamps[y], stamps[x])
        select.append(f"CASE WHEN {h} >= 0 THEN {h} END AS {name}")
    select.append(f"strftime({stamps['occurred_at']}, '%Y-%m') AS period")
    scopes = [s for s, c in model.SCOPES.items() if c in cols or s == "grid"]
    for s in scopes:
        col = model.SCOPES[s]
        key = "nullif(trim(__g.grid_id), '')" if s == "grid" else agg.scope_key(types, col)
        select.append(f"{key} AS {_q('k_' + s)}")
    for c in ("incident_id", "street_code", "community_code"):
        select.append(f"i.{_q(c)} AS {_q('out_' + c)}" if c in cols else f"NULL::VARCHAR AS {_q('out_' + c)}")
    per_case = agg.outcomes_sql(con, kw, select=select, joins=" ".join(joins))
    # case_flags judges response only when the data has response or closure columns and a date
    has_times = ("responded_at" in cols or "closed_at" in cols)
    responded = "respond_on_time" if has_times else "NULL::DOUBLE"
    closed = "close_on_time" if "closed_at" in cols else "NULL::DOUBLE"
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE {_C} AS
        SELECT __rid, out_incident_id, grid_id, out_street_code, out_community_code, period,
               {responded} AS responded, resolved, satisfied, {closed} AS closed_on_time, returned,
               {", ".join(_HOURS)}, {", ".join(_q('k_' + s) for s in scopes)}
        FROM ({per_case})""")
    agg.drop_lookups(con)
    return plan, scopes


#: Incidents per slice of ``case_outcomes`` written at once (see :func:`_write_outcomes`).
OUTCOME_SLICE = 10_000_000


def _write_outcomes(con: duckdb.DuckDBPyConnection) -> int:
    """``case_outcomes`` written by DuckDB from ``__cases`` in the incidents' order, in slices of
    :data:`OUTCOME_SLICE` incidents (by rowid): each slice is sorted on its own, so a province's
    100M cases never go through one sort (one sort and a window over them filled the disk)."""
    cols = ("coalesce(CAST(out_incident_id AS VARCHAR), CAST(__rid AS VARCHAR)) AS incident_id, "
            "grid_id, out_street_code AS street_code, out_community_code AS community_code, "
            "period, responded, resolved, satisfied, closed_on_time, returned")
    con.execute(f"CREATE OR REPLACE TABLE case_outcomes AS SELECT {cols} FROM {_C} LIMIT 0")
    lo, hi = con.execute(f"SELECT min(__rid), max(__rid) FROM {_C}").fetchone()
    if lo is not None:
        for a in range(int(lo), int(hi) + 1, OUTCOME_SLICE):
            con.execute(f"INSERT INTO case_outcomes SELECT {cols} FROM {_C} "
                        "WHERE __rid >= $1 AND __rid < $2 ORDER BY __rid", [a, a + OUTCOME_SLICE])
    return int(con.execute("SELECT count(*) FROM case_outcomes").fetchone()[0])


def _aggregate(con: duckdb.DuckDBPyConnection, scopes: list[str]) -> pd.DataFrame:
    """Scope × period (``all`` and each month) aggregates of ``__cases`` computed by DuckDB:
    counts, the means and counts of the five flags, the median stage hours."""
    rates = ("response_rate", "resolution_rate", "satisfaction_rate", "on_time_close_rate",
             "returned_rate")
    dens = ("responded_n", "resolved_n", "rated_n", "close_judged_n", "returned_n")
    cols = ["count(*) AS cases"]
    cols += [f"avg({f}) AS {r}" for f, r in zip(_FLAGS, rates)]
    cols += [f"count({f}) AS {d}" for f, d in zip(_FLAGS, dens)]
    cols += [f"median({h}) AS median_{h}" for h in _HOURS]
    frames = []
    for s in scopes:
        k = _q("k_" + s)
        frames.append(con.execute(f"""
            SELECT '{s}' AS scope, {k} AS scope_id, coalesce(period, 'all') AS period,
                   {", ".join(cols)}
            FROM {_C} WHERE {k} IS NOT NULL AND period IS NOT NULL
            GROUP BY GROUPING SETS (({k}), ({k}, period))""").df())
    frames = [f for f in frames if len(f)]
    if not frames:
        return pd.DataFrame()
    out = pd.concat(frames, ignore_index=True)
    for c in out.columns:
        if c.startswith(("median_", "response", "resolution", "satisfaction", "on_time",
                         "returned_rate")):
            out[c] = out[c].astype(float)
    return out


def _names(con: duckdb.DuckDBPyConnection) -> dict[tuple[str, str], str]:
    out: dict[tuple[str, str], str] = {}
    for scope, table, key, name in (("street", "streets", "street_code", "street_name"),
                                    ("community", "communities", "community_code",
                                     "community_name")):
        if table_exists(con, table) and {key, name} <= set(_columns(con, table)):
            for k, v in con.execute(
                    f"SELECT CAST({_q(key)} AS VARCHAR), {_q(name)} FROM {_q(table)}").fetchall():
                out[(scope, str(k))] = v
    return out


def _timeliness(settings: dict) -> dict:
    """Keyword arguments of ``geo.timeliness.case_outcomes`` from ``[hotspots.timeliness]``."""
    t = ((settings.get("hotspots") or {}).get("timeliness")) or {}
    kw = {k: t[k] for k in ("deadlines", "category_deadlines") if t.get(k)}
    if t.get("emergency_severity") is not None:
        kw["emergency_severity"] = int(t["emergency_severity"])
    kw.update({k: t[k] for k in ("utility_keywords", "complex_keywords") if t.get(k) is not None})
    return kw


def settings_of(settings: dict) -> dict:
    """The ``geo.caserates`` parameters of a run's settings."""
    params = model._merge(DEFAULTS, settings.get("cases") or {})
    params["timeliness"] = _timeliness(settings)
    return params


def run(
    con: duckdb.DuckDBPyConnection,
    settings: dict,
    *,
    progress: Callable[[str], None] | None = None,
) -> dict:
    """Compute ``case_rates`` and ``case_outcomes`` from the ingested tables; return a summary."""
    say = progress or (lambda message: None)
    params = settings_of(settings)
    if not table_exists(con, "incidents"):
        cases = pd.DataFrame(columns=["incident_id", "occurred_at"])
        rates = model.case_rates(cases, params=params)
        outcomes = pd.DataFrame({c: [] for c in ("incident_id", "grid_id", "street_code",
                                                 "community_code", "period", *_FLAGS)})
        n_cases, plan, present, without_grid = 0, None, [], None
        n_outcomes = write_gdf(con, "case_outcomes", outcomes)
    else:
        say("cases: placing and judging incidents in DuckDB / 案件入网格并判定")
        cols = _columns(con, "incidents")
        present = [c for c in ("accepted_at", "dispatched_at", "responded_at", "closed_at",
                               "resolved", "satisfaction", "returned", "department",
                               "service_company") if c in cols]
        plan, scopes = _case_table(con, params)
        n_cases, without_grid = con.execute(
            f"SELECT count(*), count(*) FILTER (WHERE grid_id IS NULL) FROM {_C}").fetchone()
        say(f"cases: rates of {n_cases} cases / 计算案件三率")
        rates = model.finish_rates(_aggregate(con, scopes), params=params)
        n_outcomes = _write_outcomes(con)
        con.execute(f"DROP TABLE IF EXISTS {_C}")
        con.execute(f"DROP TABLE IF EXISTS {_G}")
    names = _names(con)
    rates["scope_name"] = [names.get((s, i), i) for s, i in zip(rates["scope"], rates["scope_id"])]
    rates["board"] = rates["board"].astype(object).where(rates["board"].notna(), None)
    rows = {
        "case_rates": write_gdf(con, "case_rates", rates),
        "case_outcomes": n_outcomes,
    }
    boards = rates[(rates["period"] == "all") & rates["board"].notna()]
    summary = {
        "cases": int(n_cases),
        "plan_id": plan,
        "life_cycle_columns": present,
        "cases_without_grid": None if without_grid is None else int(without_grid),
        "scopes": sorted(set(rates["scope"])),
        "periods": int(rates.loc[rates["period"] != "all", "period"].nunique()),
        "red_all": {s: g.loc[g["board"] == "red", "scope_id"].tolist()
                    for s, g in boards.groupby("scope")},
        "black_all": {s: g.loc[g["board"] == "black", "scope_id"].tolist()
                      for s, g in boards.groupby("scope")},
        "rows": rows,
    }
    log.info("cases: %s", {k: v for k, v in summary.items() if k != "rows"})
    return summary

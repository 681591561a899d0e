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

Rules and defaults: ``geo.caserates`` and ``docs/cases.md``. Settings: ``[cases]`` (``DEFAULTS``
below); the deadlines are those of ``[hotspots.timeliness]`` so that ``case_timeliness``,
``worker_performance`` and ``case_rates`` agree.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from geo import caserates as model
from pipelines import config, results
from pipelines.db import read_table, table_exists, write_gdf

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


def _incidents(con: duckdb.DuckDBPyConnection) -> tuple[pd.DataFrame, str | None]:
    """Incidents with the wanted columns that exist, plus ``grid_id`` of the current plan."""
    cols = _columns(con, "incidents")
    have = [c for c in _WANTED if c in cols]
    sel = ", ".join(f"i.{_q(c)}" for c in have)
    if not (table_exists(con, "grids") and "geometry" in cols):
        return read_table(con, f"SELECT {sel}, NULL::VARCHAR AS grid_id FROM incidents i"), None
    plan = _plan(con)
    where = "WHERE plan_id = $plan" if plan is not None else ""
    sql = f"""
        WITH g AS (SELECT CAST(grid_id AS VARCHAR) AS grid_id, geometry FROM grids {where}),
        i AS (SELECT row_number() OVER () AS __row, * FROM incidents),
        hit AS (
            SELECT i.__row, min(g.grid_id) AS grid_id
            FROM i JOIN g ON ST_Intersects(g.geometry, i.geometry)
            GROUP BY i.__row)
        SELECT {sel}, hit.grid_id FROM i LEFT JOIN hit USING (__row) ORDER BY i.__row"""
    params = {"plan": plan} if plan is not None else {}
    return con.execute(sql, params).df(), plan


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
        cases, plan = pd.DataFrame(columns=["incident_id", "occurred_at"]), None
    else:
        say("cases: reading incidents / 读取案件")
        cases, plan = _incidents(con)
    present = [c for c in ("accepted_at", "dispatched_at", "responded_at", "closed_at",
                           "resolved", "satisfaction", "returned", "department",
                           "service_company") if c in cases.columns]
    say(f"cases: rates of {len(cases)} cases / 计算案件三率")
    rates = model.case_rates(cases, params=params)
    names = _names(con)
    rates["scope_name"] = [names.get((s, i), i) for s, i in zip(rates["scope"], rates["scope_id"])]
    rates["board"] = rates["board"].astype(object).where(rates["board"].notna(), None)

    flags = model.case_flags(cases, params=params) if len(cases) else pd.DataFrame(
        columns=["period", "responded", "resolved", "satisfied", "closed_on_time", "returned"])
    outcomes = pd.DataFrame({
        "incident_id": cases["incident_id"].values if "incident_id" in cases.columns
        else np.arange(len(cases)).astype(str),
        "grid_id": cases["grid_id"].values if "grid_id" in cases.columns else None,
        "street_code": cases["street_code"].values if "street_code" in cases.columns else None,
        "community_code": (cases["community_code"].values
                           if "community_code" in cases.columns else None),
    })
    for c in ("period", "responded", "resolved", "satisfied", "closed_on_time", "returned"):
        outcomes[c] = flags[c].values if len(flags) else []
    rows = {
        "case_rates": write_gdf(con, "case_rates", rates),
        "case_outcomes": write_gdf(con, "case_outcomes", outcomes),
    }
    boards = rates[(rates["period"] == "all") & rates["board"].notna()]
    summary = {
        "cases": len(cases),
        "plan_id": plan,
        "life_cycle_columns": present,
        "cases_without_grid": int(cases["grid_id"].isna().sum()) if "grid_id" in cases else None,
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

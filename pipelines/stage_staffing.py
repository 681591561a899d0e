"""Stage ``staffing``: workload, grid staffing, street/community allocation, worker performance.

Reads ``grids`` + ``grid_members`` of the current plan when they exist (otherwise communities
are the unit), ``buildings``, ``incidents``, ``special_units``, ``staff``, ``streets``,
``communities``; writes

* ``staffing`` — one row per grid: workload and its ``wl_*`` components (hours/month),
  ``required_staff``, ``current_staff`` (FTE), ``gap`` = required − current;
* ``street_allocation`` (Art. 37) — one row per street: recommended headcount under the
  ``[allocation]`` budget, gap = recommended − current headcount, equity columns;
* ``community_allocation`` (Art. 42) — each street's recommendation split among its
  communities;
* ``worker_performance`` (Art. 28) — one row per grid worker;
* ``allocation_equity`` — Gini and ratios, today against the recommendation;
* ``staffing_explanation`` — one row per ``level`` (``street``, ``community``): budget, today's
  and required headcount in whole people, units and people short and over, and
  ``explanation_zh``/``explanation_en``, the sentence that says why units are short when the
  total is not (``geo.staffing.gap_explanation``).

* ``forecast_workload`` (issue #11.5) — when the hotspot stage wrote a ``forecast`` on these
  grids: next month's predicted incidents per grid as a what-if in hours
  (``geo.staffing.forecast_workload``): ``predicted_incidents``, ``predicted_hours``,
  ``current_hours`` (today's incident hours a month), ``delta_hours``, ``required_fte_delta``,
  and the grid's whole workload and required staff today and with the forecast.

``street_allocation`` also carries ``gap_note_zh``/``gap_note_en`` (one sentence per street),
``required_headcount`` (whole people: required FTE rounded up) and ``function_type_assumed``
(True where the street had no 功能定位 and ``[staffing.score] default_function_type``,
``residential`` by default, was used).

The model and its defaults: ``geo.staffing`` and ``docs/staffing.md``. Settings: the
``[staffing]`` section (``DEFAULTS`` below) and the contract's ``[allocation]`` section
(``budget``, ``min_per_street``, and ``min_per_community`` of ours).
"""
from __future__ import annotations

import logging
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from geo import staffing as model
from pipelines import aggregates, config, results
from pipelines.db import read_table, table_exists, write_gdf

log = logging.getLogger(__name__)

#: ``[staffing]`` settings: the model's defaults (``geo.staffing.DEFAULTS``) plus these keys.
DEFAULTS: dict[str, Any] = config.DEFAULTS["staffing"]  # geo.staffing.DEFAULTS + stage keys, pipelines/config.py

#: ``[allocation]`` settings (data contract) and their defaults here.
ALLOCATION_DEFAULTS: dict[str, Any] = config.DEFAULTS["allocation"]  # defined in pipelines/config.py

OUTPUT_TABLES = (
    "staffing", "street_allocation", "community_allocation", "worker_performance",
    "allocation_equity", "staffing_explanation",
)


_columns = results.columns  # the one column reader (empty for a missing table)
_q = results.quote_ident


def _col(cols: set[str], name: str, alias: str = "", default: str = "NULL") -> str:
    """``b.name`` if the table has the column, else ``default``; aliased as ``name``."""
    expr = f"{alias}{name}" if name in cols else default
    return f"{expr} AS {name}"


def _current_plan(con: duckdb.DuckDBPyConnection, wanted: str) -> str | None:
    if "plan_id" not in _columns(con, "grids"):
        return None
    if wanted:
        return str(wanted)
    if table_exists(con, "plans"):
        row = con.execute(
            "SELECT plan_id FROM plans WHERE plan_id IN (SELECT plan_id FROM grids) "
            "ORDER BY created_at DESC NULLS LAST, plan_id DESC LIMIT 1"
        ).fetchone()
        if row:
            return row[0]
    row = con.execute("SELECT max(plan_id) FROM grids").fetchone()
    return row[0] if row else None


def _units(con: duckdb.DuckDBPyConnection, cfg: dict) -> tuple[pd.DataFrame, str, str | None]:
    """One row per staffing unit with building totals; ``mode`` is ``grid`` or ``community``."""
    pph = float(cfg["workload"]["persons_per_household"])
    bcols = _columns(con, "buildings")
    sums = ", ".join(
        f"sum({'b.' + c if c in bcols else '0'})::DOUBLE AS {c}"
        for c in ("households", "renters", "elderly_alone", "disabled", "low_income")
    )
    residents = (
        f"sum(coalesce(b.residents, b.households * {pph}))::DOUBLE AS residents"
        if "residents" in bcols
        else f"sum(b.households * {pph})::DOUBLE AS residents"
    )
    ccols = _columns(con, "communities")
    kind = "c.kind" if "kind" in ccols else "'urban'"
    if table_exists(con, "grids") and table_exists(con, "grid_members"):
        plan = _current_plan(con, cfg.get("plan_id") or "")
        where_g = "WHERE g.plan_id = $plan" if plan is not None else ""
        where_m = "WHERE m.plan_id = $plan" if plan is not None else ""
        sql = f"""
            WITH b AS (
                SELECT m.grid_id, {sums}, {residents}, count(*) AS buildings
                FROM grid_members m JOIN buildings b USING (building_id) {where_m}
                GROUP BY m.grid_id)
            SELECT g.grid_id, {"g.plan_id" if plan is not None else "NULL::VARCHAR AS plan_id"},
                   coalesce(g.grid_type, 'basic') AS grid_type, g.community_code,
                   coalesce(g.street_code, c.street_code) AS street_code,
                   g.area_km2::DOUBLE AS area_km2, {kind} AS kind,
                   coalesce(b.households, 0) AS households, coalesce(b.residents, 0) AS residents,
                   coalesce(b.renters, 0) AS renters, coalesce(b.elderly_alone, 0) AS elderly_alone,
                   coalesce(b.disabled, 0) AS disabled, coalesce(b.low_income, 0) AS low_income,
                   coalesce(b.buildings, 0) AS buildings
            FROM grids g LEFT JOIN b USING (grid_id)
                 LEFT JOIN communities c USING (community_code)
            {where_g}
            ORDER BY g.grid_id"""
        params = {"plan": plan} if plan is not None else None
        return con.execute(sql, params).df(), "grid", plan
    sql = f"""
        WITH b AS (
            SELECT b.community_code, {sums}, {residents}, count(*) AS buildings
            FROM buildings b GROUP BY b.community_code)
        SELECT c.community_code AS grid_id, NULL::VARCHAR AS plan_id, 'community' AS grid_type,
               c.community_code, c.street_code, c.area_km2::DOUBLE AS area_km2, {kind} AS kind,
               coalesce(b.households, 0) AS households, coalesce(b.residents, 0) AS residents,
               coalesce(b.renters, 0) AS renters, coalesce(b.elderly_alone, 0) AS elderly_alone,
               coalesce(b.disabled, 0) AS disabled, coalesce(b.low_income, 0) AS low_income,
               coalesce(b.buildings, 0) AS buildings
        FROM communities c LEFT JOIN b USING (community_code)
        ORDER BY c.community_code"""
    return con.execute(sql).df(), "community", None


def _locate(mode: str, plan: str | None, source: str, point: str) -> tuple[str, dict]:
    """SQL joining ``source`` rows (alias ``s``) to their unit as ``grid_id``."""
    if mode == "community":
        return f"SELECT s.*, s.community_code AS grid_id FROM {source} s", {}
    where = "WHERE plan_id = $plan" if plan is not None else ""
    # one row per source row (``__row``: its rowid), in the lowest-coded grid it falls in; a
    # GROUP BY, which DuckDB spills under its memory limit (the window function this was ran
    # out of memory on 50M incidents of a province)
    sql = f"""
        SELECT s.* EXCLUDE (geometry), min(g.grid_id) AS grid_id
        FROM {source} s JOIN (SELECT grid_id, geometry FROM grids {where}) g
             ON ST_Intersects(g.geometry, {point})
        GROUP BY ALL"""
    return sql, ({"plan": plan} if plan is not None else {})


def _incidents(
    con: duckdb.DuckDBPyConnection, mode: str, plan: str | None, window: int
) -> tuple[pd.DataFrame, float, dict]:
    """Incidents of the last ``window`` months grouped by unit, category and severity."""
    empty = pd.DataFrame(columns=["grid_id", "category", "service_type", "severity", "n"])
    if not table_exists(con, "incidents"):
        return empty, 1.0, {"incidents_used": 0, "incidents_unassigned": 0}
    first, last = con.execute("SELECT min(occurred_at), max(occurred_at) FROM incidents").fetchone()
    if last is None:
        return empty, 1.0, {"incidents_used": 0, "incidents_unassigned": 0}
    start = max(pd.Timestamp(first), pd.Timestamp(last) - pd.DateOffset(months=int(window)))
    months = max(1.0, (pd.Timestamp(last) - start).days / 30.4375)
    cols = _columns(con, "incidents")
    sev = "coalesce(severity, 3)" if "severity" in cols else "3"
    src = (
        f"(SELECT rowid AS __row, category, {_col(cols, 'service_type')}, "
        f"{sev} AS severity, "
        f"{_col(cols, 'community_code')}, geometry FROM incidents WHERE occurred_at >= $start)"
    )
    located, params = _locate(mode, plan, src, "s.geometry")
    params = {**params, "start": start.to_pydatetime()}
    agg = con.execute(
        f"SELECT grid_id, category, service_type, severity, count(*) AS n FROM ({located}) "
        f"WHERE grid_id IS NOT NULL GROUP BY ALL ORDER BY ALL",  # sums in a fixed order
        params,
    ).df()
    total = con.execute(
        "SELECT count(*) FROM incidents WHERE occurred_at >= $start", {"start": params["start"]}
    ).fetchone()[0]
    used = int(agg["n"].sum()) if len(agg) else 0
    return agg, months, {"incidents_used": used, "incidents_unassigned": int(total) - used}


def _special_units(
    con: duckdb.DuckDBPyConnection, mode: str, plan: str | None
) -> tuple[pd.DataFrame, int]:
    if not table_exists(con, "special_units"):
        return pd.DataFrame(columns=["grid_id", "unit_type", "households"]), 0
    cols = _columns(con, "special_units")
    src = (
        f"(SELECT rowid AS __row, unit_id, unit_type, {_col(cols, 'households')}, "
        f"{_col(cols, 'community_code')}, geometry FROM special_units)"
    )
    located, params = _locate(mode, plan, src, "ST_PointOnSurface(s.geometry)")
    su = con.execute(
        f"SELECT grid_id, unit_id, unit_type, households FROM ({located}) "
        "WHERE grid_id IS NOT NULL ORDER BY ALL",  # the join's order varies: sums in a fixed one
        params,
    ).df()
    total = con.execute("SELECT count(*) FROM special_units").fetchone()[0]
    return su, int(total) - len(su)


#: Columns read with ``_read`` that are numbers; every other absent column is NULL text.
_NUMERIC = {"area_km2", "severity"}


def _read(con: duckdb.DuckDBPyConnection, table: str, wanted: list[str]) -> pd.DataFrame:
    """The ``wanted`` columns of ``table`` (absent ones as typed NULLs); empty frame without it.

    An absent text column comes back as NULL text, not as DuckDB's bare NULL (an integer
    column of ``<NA>``), so it stores as VARCHAR and pages can test it for missing values.
    """
    if not table_exists(con, table):
        return pd.DataFrame(columns=wanted)
    cols = _columns(con, table)
    sel = ", ".join(
        _col(cols, c, default="NULL::DOUBLE" if c in _NUMERIC else "NULL::VARCHAR")
        for c in wanted
    )
    return read_table(con, f'SELECT {sel} FROM "{table}"')


def _timeliness_kw(settings: dict) -> dict:
    """Deadline settings of case timeliness (``[hotspots.timeliness]``), so both tables agree."""
    t = ((settings.get("hotspots") or {}).get("timeliness")) or {}
    kw = {k: t[k] for k in ("deadlines", "category_deadlines") if t.get(k)}
    if t.get("emergency_severity") is not None:
        kw["emergency_severity"] = int(t["emergency_severity"])
    kw.update({k: t[k] for k in ("utility_keywords", "complex_keywords") if t.get(k) is not None})
    return kw


def _worker_figures(con: duckdb.DuckDBPyConnection, kw: dict) -> pd.DataFrame:
    """``geo.staffing.worker_case_figures`` computed inside DuckDB (issue #13.2): one row per
    worker is read, never one per incident.

    The per-case rules are ``geo.timeliness.case_outcomes`` as SQL
    (``pipelines.aggregates.outcomes_sql``, the rules the ``case_timeliness`` table uses), over
    the incidents with a ``staff_id`` and an ``occurred_at``, grouped by the raw ``staff_id``;
    open cases are judged at the latest time of all incidents, as the pandas function does.
    Medians are DuckDB's ``median`` (the mean of the two middle values, as pandas). A repeat
    complaint is an incident whose ``repeat_of`` is the ``incident_id`` of a case the worker
    handled (the first such case of an id, in table order); ids of different types are compared
    as text.
    """
    types = aggregates.column_types(con, "incidents")
    if not {"staff_id", "occurred_at"} <= set(types):
        return model.empty_worker_figures()
    sid, iid, rep = _q("staff_id"), _q("incident_id"), _q("repeat_of")
    judged = f"i.{sid} IS NOT NULL AND i.{_q('occurred_at')} IS NOT NULL"
    stamps = con.execute(
        "SELECT " + ", ".join(f"max({aggregates.ts_expr(types, c)})"
                              for c in ("occurred_at", "responded_at", "closed_at"))
        + " FROM incidents i").fetchone()
    stamps = [pd.Timestamp(t) for t in stamps if t is not None]
    per_case = aggregates.outcomes_sql(con, kw, select=[f"i.{sid} AS __staff"], where=judged,
                                as_of=max(stamps) if stamps else None)
    try:
        figures = con.execute(f"""
            SELECT __staff AS staff_id, count(*) AS cases, count(hours_to_close) AS closed,
                   count(*) FILTER (WHERE due) AS decided,
                   count(*) FILTER (WHERE on_time = 1) AS on_time,
                   median(hours_to_respond) AS median_hours_to_respond,
                   median(hours_to_close) AS median_hours_to_close
            FROM ({per_case}) GROUP BY __staff ORDER BY __staff""").df()
    finally:
        aggregates.drop_lookups(con)
    figures = figures.set_index("staff_id")
    figures["repeat_complaints"] = 0
    if len(figures) and {"incident_id", "repeat_of"} <= set(types):
        same = types["incident_id"] == types["repeat_of"]
        key = (lambda col: f"i.{col}") if same else (lambda col: f"CAST(i.{col} AS VARCHAR)")
        # the cases named by a repeat_of (few) first, then their first handler
        repeats = con.execute(f"""
            WITH named AS (
                SELECT {key(rep)} AS k, count(*) AS n FROM incidents i
                WHERE i.{rep} IS NOT NULL GROUP BY 1),
            handler AS (
                SELECT {key(iid)} AS k, arg_min(i.{sid}, i.rowid) AS staff_id
                FROM incidents i
                WHERE {judged} AND {key(iid)} IN (SELECT k FROM named) GROUP BY 1)
            SELECT h.staff_id, CAST(sum(named.n) AS BIGINT) AS n
            FROM named JOIN handler h USING (k) GROUP BY h.staff_id""").df()
        n = repeats.set_index("staff_id")["n"]
        figures["repeat_complaints"] = n.reindex(figures.index).fillna(0).astype(np.int64)
    for c in ("median_hours_to_respond", "median_hours_to_close"):
        figures[c] = figures[c].astype(float)
    return figures[list(model.WORKER_FIGURES)]


def _budget(alloc: dict, streets: pd.DataFrame) -> tuple[int, str]:
    """The district headcount to share, and where it came from.

    ``[allocation] budget`` when set (an infeasible one is refused later, by ``allocate``);
    otherwise today's headcount (a re-distribution), else the rounded-up required staff; a
    derived budget below ``min_per_street`` × streets is raised to that.
    """
    if alloc.get("budget"):
        return int(alloc["budget"]), "settings"
    floor = int(alloc["min_per_street"]) * len(streets)
    current = int(streets["current_staff"].sum())
    derived, source = (current, "current_staff") if current else (
        math.ceil(float(streets["required_staff"].sum()) - 1e-9), "required_staff")
    if derived < floor:
        log.info("derived budget %s (%s) is below the minimums; using %s", derived, source, floor)
        return floor, f"min_per_street (from {source} = {derived})"
    return derived, source


def _settings(settings: dict) -> tuple[dict, dict]:
    cfg = model.deep_merge(DEFAULTS, settings.get("staffing"))
    alloc = {**ALLOCATION_DEFAULTS, **(settings.get("allocation") or {})}
    return cfg, alloc


def run(
    con: duckdb.DuckDBPyConnection,
    settings: dict,
    *,
    progress: Callable[[str], None] | None = None,
) -> dict:
    """Compute staffing and allocation tables from the ingested tables; return a summary.

    Raises
    ------
    geo.apportion.BudgetTooSmall
        ``[allocation] budget`` is set but below ``min_per_street`` × number of streets.
    """
    say = progress or (lambda message: None)
    cfg, alloc = _settings(settings)
    method = cfg["method"]

    say("staffing: units and building totals / 网格与楼栋汇总")
    units, mode, plan = _units(con, cfg)
    inc, months, inc_stats = _incidents(con, mode, plan, int(cfg["incident_window_months"]))
    su, su_unplaced = _special_units(con, mode, plan)

    dup = units.loc[units["grid_id"].duplicated(), "grid_id"]
    if len(dup):
        raise ValueError(
            f"网格编码重复（方案 {plan}）：{dup.head(5).tolist()}；每个方案内网格编码必须唯一。 / "
            f"duplicate grid_id in plan {plan}: {dup.head(5).tolist()}; ids must be unique per plan."
        )
    say(f"staffing: workload of {len(units)} {mode}s / 计算工作量")
    units = units.join(
        model.unit_workload(units, incidents=inc, special_units=su, months=months, params=cfg)
    )
    staff = _read(con, "staff", ["staff_id", "street_code", "grid_id", "role", "community_code"])
    assignments = model.assign_staff(staff, units, params=cfg)
    grid = model.grid_staffing(units, assignments, params=cfg)

    streets = _read(con, "streets", ["street_code", "street_name", "function_type", "area_km2"])
    # 功能定位 is optional: a street without it counts as the stated default (residential,
    # multiplier 1.0) and carries function_type_assumed = True.
    streets = model.fill_function_type(streets, default=cfg["score"]["default_function_type"])
    communities = _read(
        con, "communities", ["community_code", "community_name", "street_code", "kind", "area_km2"]
    )

    # Street grid workers exclude the people dedicated grids take from their units.
    dedicated_ids = set(grid.loc[grid["staff_source"] == "unit", "grid_id"])
    unit_staff = set(assignments.loc[assignments["grid_id"].isin(dedicated_ids), "staff_id"])
    street_staff = staff[~staff["staff_id"].isin(unit_staff)].copy()
    grid_community = grid.set_index("grid_id")["community_code"]
    street_staff["community_code"] = street_staff["community_code"].where(
        street_staff["community_code"].notna(), street_staff["grid_id"].map(grid_community)
    )

    basic = grid[grid["staff_source"] == "street"]
    ded = grid[grid["staff_source"] == "unit"]

    def totals(key: str) -> pd.DataFrame:
        t = basic.groupby(key).agg(
            workload=("workload", "sum"), required_staff=("required_staff", "sum"),
            current_fte=("current_staff", "sum"),
        )
        t["residents"] = grid.groupby(key)["residents"].sum()
        t["households"] = grid.groupby(key)["households"].sum()
        t["dedicated_workload"] = ded.groupby(key)["workload"].sum()
        t["current_staff"] = street_staff.groupby(key).size()
        return t

    say("staffing: street allocation (Art. 37) / 街道编制分配")
    street_inputs = streets.merge(totals("street_code"), left_on="street_code",
                                  right_index=True, how="left")
    fill = ["workload", "required_staff", "current_fte", "residents", "households",
            "dedicated_workload", "current_staff"]
    street_inputs[fill] = street_inputs[fill].astype(float).fillna(0.0)
    street_inputs["current_staff"] = street_inputs["current_staff"].astype(np.int64)
    budget, budget_source = _budget(alloc, street_inputs)
    allocation = model.allocate(
        street_inputs, budget, id_col="street_code", minimum=int(alloc["min_per_street"]),
        method=method, score=cfg["score"],
    )
    street_table = allocation.table
    street_table["required_headcount"] = model.headcount(street_table["required_staff"])
    street_table = street_table.join(model.gap_notes(street_table))
    explanation = model.gap_explanation(
        street_table, budget=budget, required_fte=float(street_table["required_staff"].sum()),
        capacity_hours=model.monthly_capacity(cfg),
    )

    say("staffing: community allocation (Art. 42) / 社区人员分配")
    community_inputs = communities.merge(totals("community_code"), left_on="community_code",
                                         right_index=True, how="left")
    community_inputs[fill] = community_inputs[fill].astype(float).fillna(0.0)
    community_inputs["current_staff"] = community_inputs["current_staff"].astype(np.int64)
    community_inputs["function_type"] = community_inputs["street_code"].map(
        streets.set_index("street_code")["function_type"])
    community_inputs["required_headcount"] = model.headcount(community_inputs["required_staff"])
    community_table = model.allocate_nested(
        community_inputs, street_table.set_index("street_code")["recommended_staff"].to_dict(),
        minimum=int(alloc["min_per_community"]), method=method, score=cfg["score"],
    )
    community_table = community_table.join(model.gap_notes(community_table))
    community_explanation = model.gap_explanation(
        community_table, budget=int(community_table["recommended_staff"].sum()),
        required_fte=float(community_table["required_staff"].sum()),
        capacity_hours=model.monthly_capacity(cfg), name_col="community_name", level="community",
    )
    equity = pd.concat(
        [model.equity_summary(street_table, level="street"),
         model.equity_summary(community_table, level="community")],
        ignore_index=True,
    )

    say("staffing: worker performance (Art. 28) / 网格员绩效")
    carried = model.workload_carried(assignments, grid)
    perf = model.finish_performance(_worker_figures(con, _timeliness_kw(settings)), staff=staff,
                                    carried=carried, params=cfg)
    # the grid carrying the largest share of each worker's time (workers placed by community or
    # street have no grid_id of their own); ties: the lowest grid code
    if len(assignments):
        main = assignments.sort_values(["staff_id", "fte", "grid_id"],
                                       ascending=[True, False, True], kind="stable")
        main = main.drop_duplicates("staff_id").set_index("staff_id")["grid_id"]
        perf.insert(1, "main_grid_id", perf["staff_id"].map(main).astype(object))
    else:
        perf.insert(1, "main_grid_id", None)

    key = ["grid_id", "workload", "required_staff", "current_staff", "gap"]
    first = key + ["plan_id", "grid_type", "staff_source", "community_code", "street_code"]
    staffing_out = grid[first + [c for c in grid.columns if c not in first]]
    street_first = ["street_code", "street_name", "function_type", "area_km2", "residents",
                    "workload", "current_staff", "recommended_staff", "gap", "gap_note_zh",
                    "gap_note_en", "required_headcount", "function_type_assumed"]
    street_out = street_table[
        street_first + [c for c in street_table.columns if c not in street_first]]
    comm_first = ["community_code", "community_name", "street_code", "kind", "area_km2",
                  "residents", "workload", "current_staff", "recommended_staff", "gap",
                  "gap_note_zh", "gap_note_en", "required_headcount"]
    comm_out = community_table[
        comm_first + [c for c in community_table.columns if c not in comm_first]]

    say("staffing: next month's forecast as hours / 预测工作量")
    fw, fw_info = _forecast_workload(con, mode, inc, months, grid, cfg)
    if fw is None:
        con.execute("DROP TABLE IF EXISTS forecast_workload")
    rows = {
        "staffing": write_gdf(con, "staffing", staffing_out),
        "street_allocation": write_gdf(con, "street_allocation", street_out),
        "community_allocation": write_gdf(con, "community_allocation", comm_out),
        "worker_performance": write_gdf(con, "worker_performance", perf),
        "allocation_equity": write_gdf(con, "allocation_equity", equity),
        "staffing_explanation": write_gdf(con, "staffing_explanation", pd.DataFrame([{
            "level": "street", **explanation,
            "workload_hours": round(float(grid["workload"].sum())),
            "required_fte": float(basic["required_staff"].sum()),
            "budget_source": budget_source,
            "streets_function_type_assumed": int(streets["function_type_assumed"].sum()),
        }, {
            "level": "community", **community_explanation,
            "workload_hours": round(float(grid["workload"].sum())),
            "required_fte": float(community_table["required_staff"].sum()),
            "budget_source": budget_source,
            "streets_function_type_assumed": int(streets["function_type_assumed"].sum()),
        }])),
    }
    if fw is not None:
        rows["forecast_workload"] = write_gdf(con, "forecast_workload", fw)
    eq = equity.set_index(["level", "metric"])
    ext = model.extremes(street_table, id_col="street_code")
    summary = {
        "unit": mode,
        "plan_id": plan,
        "units": len(grid),
        "dedicated_grids": len(ded),
        "incident_months": round(months, 2),
        **inc_stats,
        "special_units_unassigned": su_unplaced,
        "staff": len(staff),
        "staff_unplaced": len(set(staff["staff_id"]) - set(assignments["staff_id"])),
        "workload_hours": float(grid["workload"].sum()),
        "required_staff": float(basic["required_staff"].sum()),
        "required_people": int(model.headcount([basic["required_staff"].sum()])[0]),
        "streets_short": explanation["units_under"],
        "people_short": explanation["people_short"],
        "gap_cause": explanation["cause"],
        "function_type_assumed": int(streets["function_type_assumed"].sum()),
        "current_staff": int(street_table["current_staff"].sum()),
        "budget": budget,
        "budget_source": budget_source,
        "method": allocation.params["method"],
        "min_per_street": int(alloc["min_per_street"]),
        "gini_current": _nan_none(eq.loc[("street", "gini_staff_per_workload"), "current"]),
        "gini_recommended": _nan_none(eq.loc[("street", "gini_staff_per_workload"), "recommended"]),
        "most_under": ext["under"],
        "most_over": ext["over"],
        "workers_small_n": int(perf["small_n"].sum()),
        "forecast_workload": fw_info,
        "rows": rows,
    }
    log.info("staffing: %s", {k: v for k, v in summary.items() if k != "rows"})
    return summary


#: Columns of ``forecast_workload``, in order.
FORECAST_WORKLOAD_COLUMNS = [
    "grid_id", "community_code", "street_code", "period", "method", "predicted_incidents",
    "current_incidents", "predicted_hours", "current_hours", "delta_hours", "required_fte_delta",
    "workload", "predicted_workload", "required_staff", "predicted_required_staff",
    "current_staff",
]


def _forecast_method(con: duckdb.DuckDBPyConnection, methods: set[str]) -> str | None:
    """The forecast to use: the one recommended for grids (``forecast_recommendation``, unit
    ``grid``) when it beats random, else the model's."""
    if table_exists(con, "forecast_recommendation"):
        cols = _columns(con, "forecast_recommendation")
        if {"unit", "method"} <= cols:
            row = con.execute("SELECT method FROM forecast_recommendation WHERE unit = 'grid' "
                              "AND method IS NOT NULL LIMIT 1").fetchone()
            if row is not None and row[0] in methods:
                return str(row[0])
    return "model" if "model" in methods else (min(methods) if methods else None)


def _forecast_workload(
    con: duckdb.DuckDBPyConnection, mode: str, inc: pd.DataFrame, months: float,
    grid: pd.DataFrame, cfg: dict,
) -> tuple[pd.DataFrame | None, dict]:
    """``forecast_workload`` rows (None without a forecast on these grids) and a summary.

    The forecast's count per grid is spread over the grid's own incident mix of the staffing
    window (``geo.staffing.split_forecast``) and turned into hours with the same minutes per
    category and severity as today's workload (``geo.staffing.forecast_workload``).
    """
    info: dict[str, Any] = {"written": False}
    if mode != "grid" or not table_exists(con, "forecast"):
        info["reason"] = "no grids" if mode != "grid" else "no forecast"
        return None, info
    if not {"grid_id", "period", "method", "predicted"} <= _columns(con, "forecast"):
        info["reason"] = "forecast without the contract columns"
        return None, info
    methods = {r[0] for r in con.execute(
        "SELECT DISTINCT method FROM forecast WHERE method IS NOT NULL").fetchall()}
    method = _forecast_method(con, methods)
    pred = con.execute(
        "SELECT CAST(grid_id AS VARCHAR) AS grid_id, CAST(period AS VARCHAR) AS period, "
        "sum(predicted) AS predicted FROM forecast WHERE method = ? GROUP BY ALL",
        [method]).df()
    pred = pred[pred["grid_id"].isin(set(grid["grid_id"].astype(str)))]
    if pred.empty:
        info["reason"] = "forecast units are not these grids"
        return None, info
    g = grid.assign(grid_id=grid["grid_id"].astype(str)).set_index("grid_id")
    history = inc.assign(grid_id=inc["grid_id"].astype(str)) if len(inc) else inc
    split = model.split_forecast(pred, history)
    fw = model.forecast_workload(split, current_hours=g["wl_incidents"], params=cfg)
    fw = fw.merge(pred[["grid_id", "period"]], on="grid_id", how="left")
    fw["method"] = method
    for c in ("community_code", "street_code", "workload", "required_staff", "current_staff"):
        fw[c] = fw["grid_id"].map(g[c]) if c in g.columns else None
    n_now = (inc.groupby(inc["grid_id"].astype(str))["n"].sum() / months) if len(inc) \
        else pd.Series(dtype=float)
    fw["current_incidents"] = fw["grid_id"].map(n_now).fillna(0.0).astype(float)
    fw["predicted_workload"] = fw["workload"].astype(float) + fw["delta_hours"]
    fw["predicted_required_staff"] = fw["predicted_workload"] / model.monthly_capacity(cfg)
    fw = fw[FORECAST_WORKLOAD_COLUMNS].sort_values("delta_hours", ascending=False,
                                                   kind="stable").reset_index(drop=True)
    info.update({
        "written": True, "method": method, "period": str(fw["period"].iloc[0]),
        "grids": len(fw), "predicted_incidents": float(fw["predicted_incidents"].sum()),
        "predicted_hours": float(fw["predicted_hours"].sum()),
        "current_hours": float(fw["current_hours"].sum()),
        "delta_hours": float(fw["delta_hours"].sum()),
        "required_fte_delta": float(fw["required_fte_delta"].sum()),
    })
    return fw, info


def load_allocation(con: duckdb.DuckDBPyConnection, settings: dict | None = None) -> model.Allocation:
    """The stored ``street_allocation`` as an :class:`geo.staffing.Allocation`, for what-ifs.

    Re-runs the allocation on the stored street inputs with the stored budget (the sum of
    ``recommended_staff``) and ``settings``; with the run's settings it reproduces the table.
    The app's what-if controls call ``geo.staffing.whatif`` on it.
    """
    cfg, alloc = _settings(settings or {})
    table = read_table(con, "street_allocation")
    inputs = table[["street_code", "street_name", "function_type", "area_km2", "residents",
                    "workload", "current_staff", "required_staff"]]
    return model.allocate(
        inputs, int(table["recommended_staff"].sum()), id_col="street_code",
        minimum=int(alloc["min_per_street"]), method=cfg["method"], score=cfg["score"],
    )


def _nan_none(x: float) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


# ---------------------------------------------------------------------------------------------
# Excel report (`gridgov export --report`)

#: Sheets of the report, in order: (sheet name, table, what it holds). Documented in
#: docs/staffing.md; a table the run did not produce gives a sheet with a one-line note.
REPORT_SHEETS: tuple[tuple[str, str | None, str], ...] = (
    ("说明", None, "说明：各工作表内容、方法与字段 / About: sheets, method and every column"),
    ("街道配置", "street_allocation", "街道编制分配（第三十七条）/ Street allocation (Art. 37)"),
    ("社区配置", "community_allocation", "社区人员分配（第四十二条）/ Community allocation (Art. 42)"),
    ("网格工作量", "staffing", "网格工作量与配备（第二十八条）/ Grid workload and staffing (Art. 28)"),
    ("网格员绩效", "worker_performance", "网格员绩效（第二十八条）/ Worker performance (Art. 28)"),
    ("公平性指标", "allocation_equity", "配置公平性：现状与建议 / Equity: today and recommended"),
)

#: Chinese header of every column the stage writes.
HEADERS_ZH: dict[str, str] = {
    "street_code": "街道代码", "street_name": "街道名称", "function_type": "功能定位",
    "community_code": "社区代码", "community_name": "社区名称", "kind": "类型",
    "grid_id": "网格编码", "plan_id": "方案编号", "grid_type": "网格类型",
    "staff_source": "人员来源", "area_km2": "面积(平方公里)", "households": "户数",
    "residents": "常住人口", "renters": "出租户数", "elderly_alone": "独居老人",
    "disabled": "残疾人", "low_income": "低保对象", "buildings": "楼栋数",
    "wl_households": "入户走访(小时/月)", "wl_residents": "人口信息维护(小时/月)",
    "wl_renters": "出租房屋管理(小时/月)", "wl_elderly_alone": "独居老人探访(小时/月)",
    "wl_disabled": "残疾人探访(小时/月)", "wl_low_income": "低保对象走访(小时/月)",
    "wl_incidents": "事件处置(小时/月)", "wl_special_units": "重点单位巡查(小时/月)",
    "wl_patrol": "日常巡查(小时/月)", "workload": "工作量(小时/月)",
    "dedicated_workload": "专属网格工作量(小时/月)",
    "required_staff": "需配人数(折合全职)", "current_staff": "现有人数",
    "current_fte": "现有人数(折合全职)", "recommended_staff": "建议人数",
    "gap": "缺口(正数为缺员)", "hours_per_current_staff": "现有人均工作量(小时/月)",
    "hours_per_recommended_staff": "建议人均工作量(小时/月)",
    "function_multiplier": "功能定位系数", "score_workload": "得分·工作量",
    "score_residents": "得分·人口", "score_area": "得分·面积", "score": "综合得分",
    "current_per_10k_residents": "现有每万人配备", "recommended_per_10k_residents": "建议每万人配备",
    "current_per_km2": "现有每平方公里配备", "recommended_per_km2": "建议每平方公里配备",
    "current_per_1k_hours": "现有每千小时工作量配备",
    "recommended_per_1k_hours": "建议每千小时工作量配备",
    "status": "状态", "gap_rank": "缺员排序(1为最缺)",
    "staff_id": "网格员编号", "main_grid_id": "主要负责网格", "role": "岗位", "cases": "案件数",
    "closed": "已办结",
    "decided": "可评价案件", "on_time": "按时办结", "on_time_rate": "按时办结率",
    "on_time_ci_low": "按时率95%区间下限", "on_time_ci_high": "按时率95%区间上限",
    "median_hours_to_respond": "响应时长中位数(小时)",
    "median_hours_to_close": "办结时长中位数(小时)", "repeat_complaints": "重复投诉",
    "repeat_rate": "重复投诉率", "workload_carried": "承担工作量(小时/月)",
    "small_n": "样本偏少", "note": "备注", "level": "层级", "metric": "指标",
    "current": "现状", "recommended": "建议方案",
    "gap_note_zh": "缺口说明", "gap_note_en": "缺口说明(英文)",
    "required_headcount": "需配人数(人)", "function_type_assumed": "功能定位为默认值",
}

_VALUES_ZH: dict[str, dict[str, str]] = {
    "function_type": {
        "core_commercial": "核心商业区", "old_town": "老城区", "residential": "居住区",
        "new_development": "新开发区", "industrial": "工业区", "urban_rural_fringe": "城乡结合部",
    },
    "status": {"under": "缺员", "over": "超员", "balanced": "持平"},
    "staff_source": {"street": "街道网格员", "unit": "单位自有人员"},
    "grid_type": {"basic": "基础网格", "dedicated": "专属网格", "community": "社区(无网格方案)"},
    "kind": {"urban": "城市社区", "rural": "村"},
    "role": {"full_time": "专职", "part_time": "兼职"},
    "level": {"street": "街道", "community": "社区"},
    "metric": {
        "gini_staff_per_workload": "人员/工作量基尼系数", "gini_staff_per_resident": "人员/人口基尼系数",
        "staff_per_10k_residents": "每万人配备", "staff_per_1k_hours": "每千小时工作量配备",
        "max_min_hours_per_staff": "人均工作量最高/最低之比", "units_under": "缺员单位数",
        "units_over": "超员单位数",
    },
}

#: Sort order of each sheet: (columns, ascending) — the rows a leader should see first (the
#: print area of the long sheets holds only the first :data:`PRINT_ROWS` rows).
_SORT: dict[str, tuple[list[str], list[bool]]] = {
    "street_allocation": (["gap_rank"], [True]),
    "community_allocation": (["gap_rank"], [True]),
    "staffing": (["gap", "grid_id"], [False, True]),  # largest shortfall first
    # workers with enough cases and the lowest on-time rate first, then the busiest
    "worker_performance": (["small_n", "on_time_rate", "cases", "staff_id"],
                           [True, True, False, True]),
}

#: Sheets whose print area is limited to their first rows (every row stays in the sheet).
PRINT_ROWS = {"网格工作量": 150, "网格员绩效": 150}


def _excel_column(col: pd.Series) -> list:
    """Cell values of one column: floats to 3 decimals, booleans 是/否, missing values empty."""
    if pd.api.types.is_bool_dtype(col):
        return ["是" if v else "否" for v in col]
    if pd.api.types.is_float_dtype(col):
        return [v if math.isfinite(v) else None for v in col.round(3).tolist()]
    if pd.api.types.is_datetime64_any_dtype(col):
        return [None if pd.isna(v) else v.to_pydatetime() for v in col]
    return [None if pd.isna(v) else v for v in col.astype(object).tolist()]


def export_report(con: duckdb.DuckDBPyConnection, path: str | Path) -> Path:
    """Write the staffing report as an Excel workbook with Chinese headers; return its path.

    One sheet per table, in the order of :data:`REPORT_SHEETS`; headers from
    :data:`HEADERS_ZH`; codes such as ``function_type`` shown in Chinese; the ``说明`` sheet
    lists every column's Chinese and English name. Used by ``gridgov export --report``.
    """
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font

    path = Path(path)
    wb = Workbook(write_only=True)
    bold = Font(bold=True)

    def header(ws: Any, labels: list[str]) -> None:
        cells = []
        for label in labels:
            cell = WriteOnlyCell(ws, value=label)
            cell.font = bold
            cells.append(cell)
        ws.append(cells)

    frames: dict[str, pd.DataFrame | None] = {}
    for _, table, _ in REPORT_SHEETS:
        if table:
            frames[table] = read_table(con, table) if table_exists(con, table) else None

    about = wb.create_sheet("说明")
    about.column_dimensions["A"].width = 28
    about.column_dimensions["B"].width = 60
    about.append([WriteOnlyCell(about, value="网格员配置与工作量报告 / Staffing report")])
    about.append(["工作表 sheet", "内容 contents"])
    for name, table, what in REPORT_SHEETS[1:]:
        note = "" if frames.get(table) is not None else "（本次未生成 / not produced in this run）"
        about.append([name, f"{what}{note}"])
    about.append([])
    about.append(["缺口 gap", "正数为缺员、负数为超员 / positive: short of staff; negative: over"])
    about.append(["分配方法 method", (
        "除数法（韦伯斯特/圣拉格），保证总数等于预算、每街道不低于最低人数、预算增加时任何街道人数不减 / "
        "divisor method (Webster/Sainte-Laguë): sums to the budget, honours minimums, never "
        "lowers a street when the budget rises")])
    about.append(["打印 printing", (
        f"打印只含缺口最大的 {PRINT_ROWS['网格工作量']} 个网格和按时率最低的 "
        f"{PRINT_ROWS['网格员绩效']} 名网格员；全部行见工作表（可筛选）。 / The print shows the first "
        f"{PRINT_ROWS['网格工作量']} rows of the grid and worker sheets (largest shortfall, lowest "
        "on-time rate first); every row is in the sheet, with a filter.")])
    if table_exists(con, "staffing_explanation"):  # why streets are short when the total is not
        ex = read_table(con, "SELECT level, explanation_zh, explanation_en FROM staffing_explanation")
        for row in ex.itertuples():
            label = {"street": "缺口说明·街道 gap, streets",
                     "community": "缺口说明·社区 gap, communities"}.get(row.level, str(row.level))
            about.append([label, f"{row.explanation_zh} / {row.explanation_en}"])
    about.append([])
    header(about, ["字段(中文)", "column (English)"])
    for eng, zh in HEADERS_ZH.items():
        about.append([zh, eng])

    for name, table, _ in REPORT_SHEETS[1:]:
        ws = wb.create_sheet(name)
        df = frames.get(table)
        if df is None:
            ws.append(["本次运行未生成此表 / this table was not produced in this run"])
            continue
        if table in _SORT and set(_SORT[table][0]) <= set(df.columns):
            by, asc = _SORT[table]
            df = df.sort_values(by, ascending=asc, na_position="last", kind="stable")
        # a column nobody filled (e.g. grid_id of workers placed by community) is left out
        df = df[[c for c in df.columns
                 if (df[c].notna().any() or c in _KEEP_EMPTY) and c not in _REPORT_DROP]]
        for col, mapping in _VALUES_ZH.items():
            if col in df.columns:
                df[col] = df[col].map(lambda v, m=mapping: m.get(v, v) if isinstance(v, str) else v)
        ws.freeze_panes = "B2"
        for i, col in enumerate(df.columns):
            letter = _column_letter(i)
            ws.column_dimensions[letter].width = max(10, min(28, len(HEADERS_ZH.get(col, col)) * 2))
        header(ws, [HEADERS_ZH.get(c, c) for c in df.columns])
        for row in zip(*(_excel_column(df[c]) for c in df.columns)):
            ws.append(row)
    path.parent.mkdir(parents=True, exist_ok=True)
    wb.save(path)
    from pipelines.export import make_printable_file

    # landscape, fit to width, header repeated, codes as text, no cell read as a formula
    make_printable_file(path, print_rows=PRINT_ROWS)
    return path


#: Columns kept in the report even when empty (they say something by being empty).
_KEEP_EMPTY = {"gap", "current_staff", "recommended_staff"}
#: Columns the Chinese report leaves out (the English gap note is in the database and the app).
_REPORT_DROP = {"gap_note_en"}


def _column_letter(i: int) -> str:
    from openpyxl.utils import get_column_letter

    return get_column_letter(i + 1)

"""Early-warning alerts (预警, issue #11.4) for the app: read them with their place, and set a
status from the app under the project's write lock; and next month's forecast workload per
grid (``forecast_workload``, issue #11.5) for the staffing page.

Reading follows :mod:`pipelines.results` (read-only connection, bound values, identifiers from
this module's constants through :func:`pipelines.results.select_columns`). Writing goes through
:func:`pipelines.alerts.set_alert_status` on a read-write connection opened only for the time of the
write, while holding :func:`pipelines.lock.project_lock` — as a planner save does — so a status
is never written into a database that a running ``gridgov run`` is about to replace.
"""
from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pandas as pd

from geo.alerts import STATUSES
from pipelines.alerts import set_alert_status
from pipelines.db import read_gdf, table_exists
from pipelines.errors import GridgovError
from pipelines.results import latest_run, names, select_columns

__all__ = ["ALERT_FIELDS", "FORECAST_WORKLOAD_FIELDS", "OPEN", "SAVE_LOCK_WAIT",
           "AlertStatusError", "alerts", "forecast_workload", "save_alert_status"]

#: Columns of ``alerts`` the app reads (``p_value`` is optional).
ALERT_FIELDS = ["alert_id", "detected_at", "window_start", "window_end", "grid_id", "category",
                "observed", "expected", "recurrence_days", "method", "status",
                "owner_staff_id", "p_value"]
#: Statuses of an alert that still needs attention.
OPEN = ("new", "acknowledged")
#: Seconds a status change waits for another writer (a planner save; a run takes longer).
SAVE_LOCK_WAIT = 5.0


class AlertStatusError(GridgovError):
    """A status could not be set: a run holds the project, or the alert or status is unknown."""


def _empty() -> gpd.GeoDataFrame:
    cols = ALERT_FIELDS + ["community_code", "street_code", "community_name", "street_name",
                           "note", "updated_at", "updated_by", "is_open"]
    return gpd.GeoDataFrame(columns=cols + ["geometry"], geometry="geometry", crs="EPSG:4326")


def alerts(con) -> gpd.GeoDataFrame:
    """Every stored alert with its place and latest status note, open ones first.

    Adds ``community_code``, ``street_code`` (from ``grids``), ``community_name``,
    ``street_name``, the latest ``note`` / ``updated_at`` / ``updated_by`` of ``alert_status``
    and ``is_open`` (status new or acknowledged). Order: open first, then the most unusual
    (largest ``recurrence_days``), then grid and alert id. Geometry: the grid, EPSG:4326.
    """
    if not table_exists(con, "alerts"):
        return _empty()
    sql = select_columns(con, "alerts", ALERT_FIELDS, geometry=None)
    frame = con.execute(sql).df()
    geo = read_gdf(con, select_columns(con, "alerts", ["alert_id"])) if len(frame) else None
    if frame.empty:
        return _empty()
    g = gpd.GeoDataFrame(frame, geometry=[None] * len(frame), crs="EPSG:4326")
    if geo is not None and len(geo):
        shapes = dict(zip(geo["alert_id"], geo.geometry))
        g = g.set_geometry(gpd.GeoSeries([shapes.get(a) for a in g["alert_id"]], crs=geo.crs
                                         or "EPSG:4326", index=g.index))
    place = pd.DataFrame(columns=["grid_id", "community_code", "street_code"])
    if table_exists(con, "grids"):
        place = con.execute(
            "SELECT grid_id, any_value(community_code) AS community_code, "
            "any_value(street_code) AS street_code FROM ("
            + select_columns(con, "grids", ["grid_id", "community_code", "street_code"],
                             geometry=None)
            + ") WHERE grid_id IS NOT NULL GROUP BY grid_id").df()
    g = g.merge(place, on="grid_id", how="left")
    comm, street = names(con, "communities"), names(con, "streets")
    g["community_name"] = g["community_code"].map(comm)
    g["street_name"] = g["street_code"].map(street)
    notes = pd.DataFrame(columns=["alert_id", "note", "updated_at", "updated_by"])
    if table_exists(con, "alert_status"):
        notes = con.execute(
            "SELECT alert_id, note, updated_at, updated_by FROM ("
            + select_columns(con, "alert_status", ["alert_id", "note", "updated_at", "updated_by"],
                             geometry=None)
            + ") QUALIFY row_number() OVER (PARTITION BY alert_id "
              "ORDER BY updated_at DESC NULLS LAST) = 1").df()
    g = g.merge(notes, on="alert_id", how="left")
    g["is_open"] = g["status"].isin(OPEN)
    g = g.sort_values(["is_open", "recurrence_days", "grid_id", "alert_id"],
                      ascending=[False, False, True, True], kind="stable").reset_index(drop=True)
    return gpd.GeoDataFrame(g, geometry="geometry", crs="EPSG:4326")


def save_alert_status(db_path: str | Path, alert_id: str, status: str, *, note: str = "",
                      by: str = "", con=None) -> None:
    """Set ``alert_id`` to ``status`` (kept across runs in ``alert_status``) from the app.

    Takes the project's write lock for the time of the write and opens a read-write connection
    only then; while a ``gridgov run`` holds the lock the change is refused with an
    :class:`AlertStatusError` in Chinese and English (nothing written). ``con``: an open
    read-write connection to use instead (the caller then holds the lock).
    """
    from pipelines.lock import ProjectLocked, project_lock
    from pipelines.services.planner import connect_rw

    if status not in STATUSES:
        raise AlertStatusError(f"预警状态须为 {' / '.join(STATUSES)}，收到 {status!r}。",
                               f"An alert status must be one of {', '.join(STATUSES)}; "
                               f"got {status!r}.")
    kw = {"note": str(note).strip() or None, "by": str(by).strip() or None}
    if con is not None:
        _set(con, alert_id, status, **kw)
        return
    try:
        with project_lock(Path(db_path).parent, wait=SAVE_LOCK_WAIT, purpose="save"):
            own = connect_rw(db_path)
            try:
                _set(own, alert_id, status, **kw)
                own.execute("CHECKPOINT")
            finally:
                own.close()
    except ProjectLocked as exc:
        h = exc.holder or {}
        who = (f"进程 {h.get('pid', '?')}，开始于 {h.get('since', '?')} UTC",
               f"process {h.get('pid', '?')}, since {h.get('since', '?')} UTC")
        raise AlertStatusError(
            f"项目正在被另一个写入进程（如 gridgov run）占用（{who[0]}）；预警状态未保存。"
            "请等运行结束后再保存。",
            f"The project is being written by another process such as `gridgov run` ({who[1]}); "
            "the alert status was NOT saved. Set it again when that has finished.") from exc


def _set(con, alert_id: str, status: str, *, note, by) -> None:
    try:
        set_alert_status(con, str(alert_id), status, note=note, by=by)
    except KeyError as exc:
        raise AlertStatusError(f"没有编号为 {alert_id} 的预警（数据可能已重新运行），请刷新页面。",
                               f"There is no alert {alert_id!r} (the data may have been re-run); "
                               "reload the page.") from exc


#: Columns of ``forecast_workload`` the app reads (as written by the staffing stage).
FORECAST_WORKLOAD_FIELDS = [
    "grid_id", "community_code", "street_code", "period", "method", "predicted_incidents",
    "current_incidents", "predicted_hours", "current_hours", "delta_hours", "required_fte_delta",
    "workload", "predicted_workload", "required_staff", "predicted_required_staff",
    "current_staff",
]


def forecast_workload(con) -> dict:
    """Next month's forecast as hours per grid: ``table`` (None without the table; largest
    rise first, with ``community_name`` and ``street_name``) and ``summary`` (the run's
    ``stages.staffing.forecast_workload`` totals, ``{}`` when absent)."""
    if not table_exists(con, "forecast_workload"):
        return {"table": None, "summary": {}}
    table = con.execute(
        select_columns(con, "forecast_workload", FORECAST_WORKLOAD_FIELDS, geometry=None)
        + " ORDER BY delta_hours DESC NULLS LAST, grid_id").df()
    table["community_name"] = table["community_code"].map(names(con, "communities"))
    table["street_name"] = table["street_code"].map(names(con, "streets"))
    run = latest_run(con)
    summary = ((run.get("summary") or {}).get("stages", {}).get("staffing", {})
               .get("forecast_workload", {})) if run else {}
    return {"table": table, "summary": summary if isinstance(summary, dict) else {}}

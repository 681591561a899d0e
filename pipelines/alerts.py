"""The early-warning tables in the project's DuckDB file: ``alerts`` and ``alert_status``.

The detector itself is pure and lives in :mod:`geo.alerts`; this module writes its signals
with their owners and carried statuses, lets a person set a status (kept across runs) and
prints the open alerts (``gridgov alerts DIR``).
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from geo.alerts import ALERT_COLUMNS, STATUSES, carry_status
from pipelines.db import connect, table_exists, write_gdf

__all__ = ["grid_owners", "open_alerts", "print_open_alerts", "set_alert_status", "write_alerts"]

_STATUS_DDL = (
    "CREATE TABLE IF NOT EXISTS alert_status (alert_id VARCHAR, grid_id VARCHAR, category VARCHAR, "
    "window_start DATE, window_end DATE, status VARCHAR, updated_at TIMESTAMP, updated_by VARCHAR, "
    "note VARCHAR)"
)


_ALERTS_DDL = (
    "CREATE OR REPLACE TABLE alerts (alert_id VARCHAR, detected_at DATE, window_start DATE, "
    "window_end DATE, grid_id VARCHAR, category VARCHAR, observed DOUBLE, expected DOUBLE, "
    "recurrence_days DOUBLE, method VARCHAR, status VARCHAR, owner_staff_id VARCHAR, "
    "p_value DOUBLE, geometry GEOMETRY)"
)


def _statuses(con) -> pd.DataFrame:
    con.execute(_STATUS_DDL)
    return con.execute(
        "SELECT alert_id, grid_id, category, window_start, window_end, status FROM ("
        "  SELECT *, row_number() OVER (PARTITION BY alert_id ORDER BY updated_at DESC NULLS LAST) rn"
        "  FROM alert_status) WHERE rn = 1"
    ).df()


def grid_owners(con) -> dict[str, str]:
    """The grid worker of each grid: ``staff.grid_id`` (full-time first, then by staff id);
    where that is empty, the plan's ``staff_assignments`` (kept or moved workers), then
    ``current_grids.staff_id`` (today's map)."""
    def cols(t: str) -> set[str]:
        return {r[0] for r in con.execute(f'DESCRIBE "{t}"').fetchall()} if table_exists(con, t) else set()

    owner: dict[str, str] = {}
    sources = []
    c = cols("staff")
    if {"grid_id", "staff_id"} <= c:
        order = "CASE WHEN role = 'full_time' THEN 0 ELSE 1 END" if "role" in c else "0"
        sources.append(f"SELECT grid_id, staff_id, {order} AS o FROM staff")
    c = cols("staff_assignments")
    if {"grid_id", "staff_id"} <= c:
        st = "WHERE status IN ('kept', 'moved')" if "status" in c else ""
        sources.append(f"SELECT grid_id, staff_id, 0 AS o FROM staff_assignments {st}")
    c = cols("current_grids")
    if {"grid_id", "staff_id"} <= c:
        sources.append("SELECT grid_id, staff_id, 0 AS o FROM current_grids")
    for q in sources:
        rows = con.execute(
            "SELECT CAST(grid_id AS VARCHAR), CAST(staff_id AS VARCHAR) FROM ("
            f" SELECT grid_id, staff_id, row_number() OVER (PARTITION BY grid_id ORDER BY o, staff_id)"
            f" rn FROM ({q}) t"
            " WHERE grid_id IS NOT NULL AND staff_id IS NOT NULL) WHERE rn = 1"
        ).fetchall()
        for g, sid in rows:
            owner.setdefault(g, sid)
    return owner


def write_alerts(con, alerts: pd.DataFrame, units4326=None) -> pd.DataFrame:
    """Write table ``alerts`` (contract columns + ``p_value``, geometry = the grid polygon).

    ``owner_staff_id`` comes from :func:`grid_owners` (``staff.grid_id`` first); ``status`` from
    :func:`carry_status`. Creates ``alert_status`` when missing.
    """
    df = alerts.copy()
    df["status"] = carry_status(df, _statuses(con))
    owner = grid_owners(con)
    df["owner_staff_id"] = [owner.get(g) for g in df["grid_id"]]
    for c in ("detected_at", "window_start", "window_end"):
        df[c] = pd.to_datetime(df[c]).dt.date
    df = df[ALERT_COLUMNS + ["p_value"]]
    import geopandas as gpd

    if df.empty:
        con.execute(_ALERTS_DDL)
        return df
    if units4326 is not None:
        geo = units4326.set_index("grid_id").geometry
        g = gpd.GeoDataFrame(df, geometry=[geo.get(x) for x in df["grid_id"]], crs="EPSG:4326")
    else:
        g = gpd.GeoDataFrame(df, geometry=gpd.GeoSeries([None] * len(df)), crs="EPSG:4326")
    write_gdf(con, "alerts", g)
    # a column of NULLs (no grid has a worker) would otherwise be stored as INTEGER
    con.execute("ALTER TABLE alerts ALTER COLUMN owner_staff_id SET DATA TYPE VARCHAR")
    return df


def set_alert_status(con, alert_id_: str, status: str, *, by: str | None = None,
                     note: str | None = None, when=None) -> None:
    """Set an alert's status (``acknowledged`` or ``closed``, or back to ``new``) and keep it.

    Writes a row to ``alert_status`` (kept across runs) and updates ``alerts``.
    """
    if status not in STATUSES:
        raise ValueError(f"预警状态须为 {'/'.join(STATUSES)} / status must be one of {STATUSES}, "
                         f"got {status!r}")
    con.execute(_STATUS_DDL)
    row = con.execute("SELECT grid_id, category, window_start, window_end FROM alerts WHERE alert_id = ?",
                      [alert_id_]).fetchone()
    if row is None:
        raise KeyError(f"没有编号为 {alert_id_} 的预警 / no alert {alert_id_!r}")
    when = pd.Timestamp.now(tz="Asia/Shanghai").tz_localize(None) if when is None else pd.Timestamp(when)
    con.execute("INSERT INTO alert_status VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [alert_id_, row[0], row[1], row[2], row[3], status, when.to_pydatetime(), by, note])
    con.execute("UPDATE alerts SET status = ? WHERE alert_id = ?", [status, alert_id_])


def open_alerts(con) -> pd.DataFrame:
    """Alerts with status ``new`` or ``acknowledged``, most unusual first."""
    if not table_exists(con, "alerts"):
        return pd.DataFrame(columns=ALERT_COLUMNS)
    return con.execute(
        "SELECT alert_id, detected_at, window_start, window_end, grid_id, category, observed, "
        "expected, recurrence_days, method, status, owner_staff_id FROM alerts "
        "WHERE status IN ('new', 'acknowledged') ORDER BY recurrence_days DESC, grid_id"
    ).df()


def print_open_alerts(project_dir) -> int:
    """Print the open alerts of a project (``gridgov alerts DIR``); return how many there are."""
    db = Path(project_dir) / "gridgov.duckdb"
    if not db.exists():
        print(f"没有数据库 {db}：请先运行 gridgov run / no database {db}: run `gridgov run` first")
        return 0
    con = connect(db, read_only=True)
    try:
        df = open_alerts(con)
    finally:
        con.close()
    print(f"未关闭的预警 / open alerts: {len(df)}")
    for r in df.itertuples():
        rec = "≥100年 / ≥100 y" if r.recurrence_days >= 36500 else f"{r.recurrence_days:,.0f} 天 / days"
        owner = "—" if pd.isna(r.owner_staff_id) or r.owner_staff_id == "" else r.owner_staff_id
        ws, we = (pd.Timestamp(v).date() for v in (r.window_start, r.window_end))
        print(f"{r.alert_id}  {r.status:<12} {r.grid_id}  {r.category}  {ws}–{we}  "
              f"实际/observed {r.observed:.0f} vs 期望/expected {r.expected:.2f}  "
              f"重现期/recurrence {rec}  网格员/owner {owner}")
    return len(df)

"""Early warning (geo.alerts): a planted burst is found at the right grid and window; a city
without change raises at most about one false alert a month; statuses survive re-runs."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from geo import alerts as al
from pipelines.db import connect


def simulate(n_grids=400, n_days=730, seed=0, per_day=150.0):
    """Daily incidents per grid: city level with weekday and yearly seasonality, grid shares ∝
    households × a lasting factor, over-dispersed by a weekly gamma factor per grid."""
    rng = np.random.default_rng(seed)
    hh = rng.uniform(50, 600, n_grids).round()
    share = hh * rng.gamma(20, 1 / 20, n_grids)
    share /= share.sum()
    days = pd.date_range("2024-01-01", periods=n_days, freq="D")
    week = 1 + 0.25 * np.cos(2 * np.pi * days.day_of_week.to_numpy() / 7)
    season = 1 + 0.3 * np.sin(2 * np.pi * days.day_of_year.to_numpy() / 365)
    lam = per_day * week * season
    wk = np.arange(n_days) // 7
    noise = rng.gamma(10, 0.1, (n_grids, wk.max() + 1))[:, wk]  # Var 0.1 per grid-week
    y = rng.poisson(share[:, None] * lam[None, :] * noise).astype(float)
    return y, days, np.array([f"G{i:03d}" for i in range(n_grids)], dtype=object), hh


def test_shares_and_ids_by_hand():
    assert al.baseline_shares([10, 0, 30], [100, 100, 0], prior_incidents=0).tolist() == [
        0.25, 0.0, 0.75]
    s = al.baseline_shares([0, 0], [100, 300], prior_incidents=1.0)
    assert s.tolist() == pytest.approx([(0.5 * 0.25 + 0.25) / 1, (0.5 * 0.75 + 0.25) / 1])
    a = al.alert_id("G1", "all", "2025-01-01", "2025-01-07")
    assert a == al.alert_id("G1", "all", pd.Timestamp("2025-01-01 00:00"), "2025-01-07")
    assert a != al.alert_id("G1", "all", "2025-01-02", "2025-01-07")


def test_planted_burst_raises_an_alert_at_the_right_grid_and_window():
    y, days, ids, hh = simulate(seed=1)
    g = 123
    burst = np.arange(len(days) - 8, len(days) - 3)  # 5 days ending 3 days before the data end
    rng = np.random.default_rng(5)
    y[g, burst] += rng.poisson(4.0, len(burst))
    det = al.detect(y, days, ids, households=hh)
    a = det.alerts
    assert len(a) >= 1
    top = a.iloc[0]
    assert top["grid_id"] == ids[g]
    assert top["window_start"] <= days[burst[-1]] and top["window_end"] >= days[burst[0]]
    assert days[burst[0]] <= top["detected_at"] <= days[burst[-1]]
    assert top["observed"] > 3 * top["expected"] and top["recurrence_days"] >= 365
    assert (a["grid_id"] == ids[g]).sum() == 1  # one alert per burst, not one per day
    assert len(a) <= 2


def test_no_change_gives_at_most_one_false_alert_a_month():
    y, days, ids, hh = simulate(n_days=365 + 360, seed=2)
    alerts = 0
    for month in range(12):  # a run at the end of every month, monitoring its last 30 days
        end = 365 + 30 * (month + 1)
        det = al.detect(y[:, :end], days[:end], ids, households=hh, monitor_days=30)
        alerts += len(det.alerts)
    assert alerts <= 12, alerts


def _units(ids):
    return gpd.GeoDataFrame({"grid_id": ids},
                            geometry=[shapely.box(i, 0, i + 1, 1) for i in range(len(ids))],
                            crs="EPSG:4326")


def test_status_is_kept_across_runs_and_open_alerts_print(tmp_path, capsys):
    y, days, ids, hh = simulate(n_grids=60, n_days=400, seed=3, per_day=40)
    y[7, -4:] += 6
    y[30, -3:] += 6  # a second burst, in a grid without a worker
    det = al.detect(y, days, ids, households=hh)
    assert ids[7] in set(det.alerts["grid_id"])
    db = tmp_path / "gridgov.duckdb"
    con = connect(db)
    con.execute("CREATE TABLE staff AS SELECT * FROM (VALUES ('w2', 'G007', 'part_time'), "
                "('w1', 'G007', 'full_time')) t(staff_id, grid_id, role)")
    con.execute("CREATE TABLE current_grids AS SELECT * FROM (VALUES ('G007', 'w5'), ('G001', 'w6')) "
                "t(grid_id, staff_id)")
    assert al.grid_owners(con) == {"G007": "w1", "G001": "w6"}  # staff.grid_id first
    out = al.write_alerts(con, det.alerts, _units(ids))
    row = out[out["grid_id"] == ids[7]].iloc[0]
    assert row["owner_staff_id"] == "w1" and row["status"] == "new"
    al.set_alert_status(con, row["alert_id"], "acknowledged", by="w1")
    with pytest.raises(ValueError):
        al.set_alert_status(con, row["alert_id"], "done")
    # next run: same alert → same id, status kept
    out2 = al.write_alerts(con, det.alerts, _units(ids))
    assert out2.set_index("alert_id").loc[row["alert_id"], "status"] == "acknowledged"
    # the burst went on one more day: its window moved, the status follows the overlap
    y2 = np.hstack([y, y[:, -1:] + np.eye(len(ids))[:, [7]] * 6])
    days2 = days.append(pd.DatetimeIndex([days[-1] + pd.Timedelta(days=1)]))
    det2 = al.detect(y2, days2, ids, households=hh)
    out3 = al.write_alerts(con, det2.alerts, _units(ids))
    r3 = out3[out3["grid_id"] == ids[7]].iloc[0]
    assert r3["status"] == "acknowledged"
    types = dict(con.execute("SELECT column_name, data_type FROM information_schema.columns "
                             "WHERE table_name = 'alerts'").fetchall())
    assert types["owner_staff_id"] == "VARCHAR" and types["window_start"] == "DATE"
    geom = con.execute("SELECT ST_AsText(geometry) FROM alerts WHERE grid_id = 'G007'").fetchone()[0]
    assert geom.startswith("POLYGON")
    al.set_alert_status(con, r3["alert_id"], "closed")
    con.close()
    n_open = al.print_open_alerts(tmp_path)
    text = capsys.readouterr().out
    assert "open alerts" in text and "G007" not in text.split("\n", 1)[1]
    assert n_open == text.count("\n") - 1 and n_open >= 1
    assert "G030" in text and "owner —" in text

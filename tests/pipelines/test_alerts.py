"""The early-warning tables (pipelines.alerts): owners, statuses kept across runs, open alerts."""
from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from geo import alerts as al
from pipelines import alerts as alerts_db
from pipelines.db import connect
from tests.geo.test_hotspots_alerts import simulate


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
    assert alerts_db.grid_owners(con) == {"G007": "w1", "G001": "w6"}  # staff.grid_id first
    out = alerts_db.write_alerts(con, det.alerts, _units(ids))
    row = out[out["grid_id"] == ids[7]].iloc[0]
    assert row["owner_staff_id"] == "w1" and row["status"] == "new"
    alerts_db.set_alert_status(con, row["alert_id"], "acknowledged", by="w1")
    with pytest.raises(ValueError):
        alerts_db.set_alert_status(con, row["alert_id"], "done")
    # next run: same alert → same id, status kept
    out2 = alerts_db.write_alerts(con, det.alerts, _units(ids))
    assert out2.set_index("alert_id").loc[row["alert_id"], "status"] == "acknowledged"
    # the burst went on one more day: its window moved, the status follows the overlap
    y2 = np.hstack([y, y[:, -1:] + np.eye(len(ids))[:, [7]] * 6])
    days2 = days.append(pd.DatetimeIndex([days[-1] + pd.Timedelta(days=1)]))
    det2 = al.detect(y2, days2, ids, households=hh)
    out3 = alerts_db.write_alerts(con, det2.alerts, _units(ids))
    r3 = out3[out3["grid_id"] == ids[7]].iloc[0]
    assert r3["status"] == "acknowledged"
    types = dict(con.execute("SELECT column_name, data_type FROM information_schema.columns "
                             "WHERE table_name = 'alerts'").fetchall())
    assert types["owner_staff_id"] == "VARCHAR" and types["window_start"] == "DATE"
    geom = con.execute("SELECT ST_AsText(geometry) FROM alerts WHERE grid_id = 'G007'").fetchone()[0]
    assert geom.startswith("POLYGON")
    alerts_db.set_alert_status(con, r3["alert_id"], "closed")
    con.close()
    n_open = alerts_db.print_open_alerts(tmp_path)
    text = capsys.readouterr().out
    assert "open alerts" in text and "G007" not in text.split("\n", 1)[1]
    assert n_open == text.count("\n") - 1 and n_open >= 1
    assert "G030" in text and "owner —" in text

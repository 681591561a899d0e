"""AppTest checks of the early-warning page (预警) on the small demo city with a planted burst.

The module fixture builds the small demo, adds 24 incidents at one place over the last 7 days
of the data (the demo alone raises no alert) and runs every stage: the burst raises alerts in
the grid holding that place (category ``all`` and the copied incident's category). Every
figure the page shows is compared with the stored tables; a status set on the page is read
back from the database, survives a new ``gridgov run`` and shows again after re-opening.
"""
from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
from shapely.geometry import box

from app_pages import _alerts as al
from app_pages.i18n import t
from pipelines import results_alerts
from pipelines.db import connect
from tests.app import apptest_kit as kit
from tests.app.apptest_kit import metrics

PAGE = "app_pages/alerts.py"
N_BURST = 24


def plant_burst(root: Path, n: int = N_BURST) -> pd.Series:
    """Append ``n`` copies of one incident, spread over the data's last 7 days; return it."""
    inc = pd.read_csv(root / "incidents.csv", dtype=str, keep_default_na=False)
    last = pd.Timestamp(inc["occurred_at"].max()).normalize()
    src = inc.iloc[100]
    rows = pd.DataFrame([src] * n)
    rows["incident_id"] = [f"B{k:07d}" for k in range(n)]
    days = pd.date_range(last - pd.Timedelta(days=6), last, freq="D")
    rows["occurred_at"] = [str(days[k % len(days)] + pd.Timedelta(hours=9, minutes=k))
                           for k in range(n)]
    for c in ("accepted_at", "dispatched_at", "responded_at", "closed_at"):
        rows[c] = ""
    rows["status"] = "open"
    pd.concat([inc, rows]).to_csv(root / "incidents.csv", index=False)
    return src


@pytest.fixture(scope="module")
def burst_project(tmp_path_factory) -> Path:
    from gridgov.demo_city import build_demo
    from pipelines.run import run_project

    root = tmp_path_factory.mktemp("alerts") / "demo-small"
    build_demo(root, size="small")
    plant_burst(root)
    run_project(root)
    return root


def stored(project: Path) -> pd.DataFrame:
    con = connect(project / "gridgov.duckdb", read_only=True)
    try:
        return results_alerts.alerts(con)
    finally:
        con.close()


def test_alerts_are_stored_with_place_and_owner(burst_project):
    a = stored(burst_project)
    assert len(a) >= 1 and a["is_open"].all() and (a["status"] == "new").all()
    top = a.iloc[0]
    assert top["observed"] >= 3 * top["expected"]
    assert top["recurrence_days"] >= 365
    # the place: the grid's community and street, by name
    assert isinstance(top["community_name"], str) and top["community_name"]
    assert isinstance(top["street_name"], str) and top["street_name"]
    con = connect(burst_project / "gridgov.duckdb", read_only=True)
    try:
        comm = con.execute("SELECT community_code FROM grids WHERE grid_id = ?",
                           [top["grid_id"]]).fetchone()[0]
        staff_ids = set(con.execute("SELECT staff_id FROM staff").df()["staff_id"])
    finally:
        con.close()
    assert top["community_code"] == comm
    assert top["owner_staff_id"] in staff_ids  # a worker's id, never a name


def test_page_lists_open_alerts_with_words_and_map(burst_project, monkeypatch):
    a = stored(burst_project)
    at = kit.open_page(burst_project, monkeypatch, PAGE)
    assert at.title[0].value == t("alerts.title", "zh")
    m = metrics(at)
    assert m[t("alerts.kpi.open", "zh")] == str(int(a["is_open"].sum()))
    assert m[t("alerts.kpi.new", "zh")] == str(int((a["status"] == "new").sum()))
    view = at.dataframe[0].value
    assert len(view) == int(a["is_open"].sum())
    col = lambda k: t(f"alerts.col.{k}", "zh")  # noqa: E731
    assert view[col("alert_id")].tolist() == a.loc[a["is_open"], "alert_id"].tolist()
    assert view[col("owner")].tolist() == a.loc[a["is_open"], "owner_staff_id"].tolist()
    assert view[col("community")].iloc[0] == a["community_name"].iloc[0]
    assert view[col("recurrence")].iloc[0] == al.recurrence_text(a["recurrence_days"].iloc[0], "zh")
    assert view[col("recurrence")].iloc[0].startswith("偶然出现")
    assert view[col("status")].iloc[0] == "新预警"
    top = a.iloc[0]
    assert view[col("obs_exp")].iloc[0] == (
        f"{top['observed']:,.0f} / {top['expected']:,.2f} (×{top['observed'] / top['expected']:,.1f})")
    # the map: one folium component holding every open alert's grid, recurrence in words
    comps = [c for c in at.get("component_instance")
             if c.proto.component_name.endswith("st_folium")]
    assert len(comps) == 1
    script = json.loads(comps[0].proto.json_args)["script"]
    for g in a.loc[a["is_open"], "grid_id"]:
        assert g in script
    assert "偶然出现" in script or json.dumps("偶然出现")[1:-1] in script
    # the map can be taken away: PNG and PDF buttons (drawn on click)
    labels = [b.label for b in at.get("download_button")]
    assert t("map.download_png", "zh") in labels and t("map.download_pdf", "zh") in labels
    # the form offers every alert
    assert at.selectbox(key="alerts_choice").options == [al.choice_label(r) for r in a.itertuples()]


def test_english(burst_project, monkeypatch):
    at = kit.open_page(burst_project, monkeypatch, PAGE, lang="en")
    assert at.title[0].value == t("alerts.title", "en")
    view = at.dataframe[0].value
    assert "Recurrence interval" in view.columns and "Grid worker (staff id)" in view.columns
    assert view["Recurrence interval"].iloc[0].startswith("by chance")


def test_set_status_persists_across_reads_and_runs(burst_project, monkeypatch):
    from pipelines.run import run_project

    before = stored(burst_project)
    target = before["alert_id"].iloc[0]
    at = kit.open_page(burst_project, monkeypatch, PAGE)
    at.selectbox(key="alerts_choice").set_value(target)
    at.radio(key="alerts_new_status").set_value("closed")
    at.text_input(key="alerts_note").set_value("已处理 <b>ok</b>")
    at.text_input(key="alerts_by").set_value("S00001")
    at.button[-1].click().run()
    assert not at.exception, at.exception
    assert [s.value for s in at.success] == [t("alerts.saved", "zh", alert_id=target,
                                               status="已关闭")]
    after = stored(burst_project).set_index("alert_id")
    assert after.loc[target, "status"] == "closed"
    assert after.loc[target, "note"] == "已处理 <b>ok</b>"
    assert after.loc[target, "updated_by"] == "S00001"
    m = metrics(at)
    assert m[t("alerts.kpi.closed", "zh")] == "1"
    assert target not in at.dataframe[0].value[t("alerts.col.alert_id", "zh")].tolist()

    # a new run of the pipeline keeps the status; a fresh page shows it
    run_project(burst_project)
    again = stored(burst_project).set_index("alert_id")
    assert again.loc[target, "status"] == "closed"
    at2 = kit.open_page(burst_project, monkeypatch, PAGE)
    assert metrics(at2)[t("alerts.kpi.closed", "zh")] == "1"
    at2.toggle(key="alerts_show_closed").set_value(True).run()
    view = at2.dataframe[0].value.set_index(t("alerts.col.alert_id", "zh"))
    assert view.loc[target, t("alerts.col.status", "zh")] == "已关闭"
    assert view.loc[target, t("alerts.col.note", "zh")] == "已处理 <b>ok</b>"
    # open alerts are still listed first
    assert list(view.index)[-1] == target


def test_refused_while_a_run_holds_the_lock(burst_project, monkeypatch):
    from pipelines.lock import project_lock

    monkeypatch.setattr(results_alerts, "SAVE_LOCK_WAIT", 0.0)
    before = stored(burst_project)
    target = before.loc[before["is_open"], "alert_id"].iloc[0]
    at = kit.open_page(burst_project, monkeypatch, PAGE)
    at.selectbox(key="alerts_choice").set_value(target)
    at.radio(key="alerts_new_status").set_value("acknowledged")
    with project_lock(burst_project, purpose="run"):
        at.button[-1].click().run()
    assert not at.exception, at.exception
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and "预警状态未保存" in errors[0] and "NOT saved" in errors[0]
    after = stored(burst_project).set_index("alert_id")
    assert after.loc[target, "status"] == before.set_index("alert_id").loc[target, "status"]


def test_unknown_status_and_alert_are_refused(burst_project):
    with pytest.raises(results_alerts.AlertStatusError):
        results_alerts.save_alert_status(burst_project / "gridgov.duckdb", "A000", "done")
    with pytest.raises(results_alerts.AlertStatusError, match="no alert"):
        results_alerts.save_alert_status(burst_project / "gridgov.duckdb", "A000", "closed")


def test_recurrence_in_words():
    assert al.recurrence_text(30, "zh") == "偶然出现约每 30 天一次"
    assert al.recurrence_text(30, "en") == "by chance about once every 30 days"
    assert al.recurrence_text(730, "en") == "by chance about once every 2.0 years"
    assert al.recurrence_text(1_000_000, "zh") == "偶然出现不到每 100 年一次"


def test_map_escapes_text():
    hostile = "<img src=x onerror=alert(1)>"
    shape = box(111.60, 40.80, 111.61, 40.81)
    frame = gpd.GeoDataFrame({
        "alert_id": ["A1"], "detected_at": [pd.Timestamp("2025-12-26")],
        "window_start": [pd.Timestamp("2025-12-25")], "window_end": [pd.Timestamp("2025-12-31")],
        "grid_id": ["G1"], "category": [hostile], "observed": [25.0], "expected": [1.4],
        "recurrence_days": [400.0], "status": ["new"], "owner_staff_id": ["S1"],
        "community_code": ["C1"], "street_code": ["S"], "community_name": [hostile],
        "street_name": ["街道"], "note": [None]}, geometry=[shape], crs="EPSG:4326")
    grids = gpd.GeoDataFrame({"grid_id": ["G1"]}, geometry=[shape], crs="EPSG:4326")
    fmap = al.alerts_map(frame, grids, bounds=shape.bounds, lang="zh", tiles=None,
                         attribution=hostile, communities=grids)
    html = fmap.get_root().render()
    assert hostile not in html
    assert "\\u0026lt;img src=x onerror=alert(1)\\u0026gt;" in html
    assert json.dumps("偶然出现约每 1.1 年一次")[1:-1] in html  # recurrence in words, in the tooltip


def test_without_alerts_the_page_says_so(project, small_demo, monkeypatch):
    # the tiny fixture project has no alerts table (an older run): say how to get one
    at = kit.open_page(project.dir, monkeypatch, PAGE)
    assert [i.value for i in at.info] == [t("alerts.no_table", "zh")]
    # the plain small demo raises no alert: say so, no table, no map, no form
    at = kit.open_page(small_demo, monkeypatch, PAGE)
    assert stored(small_demo).empty
    assert [i.value for i in at.info] == [t("alerts.none", "zh")]
    assert not at.dataframe and not at.get("component_instance")


def test_a_city_without_incidents_is_told_why_there_are_no_alerts(project, monkeypatch, tmp_path):
    # an own city may leave out the optional incidents layer: no "run again" advice then
    import shutil

    own = tmp_path / "own"
    shutil.copytree(project.dir, own)
    con = connect(own / "gridgov.duckdb")
    con.execute("DROP TABLE incidents")
    con.close()
    at = kit.open_page(own, monkeypatch, PAGE)
    assert not at.exception
    assert [i.value for i in at.info] == [t("alerts.no_incidents", "zh")]

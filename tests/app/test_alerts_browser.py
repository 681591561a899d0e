"""The early-warning page (预警) in a real headless Chromium, every request off 127.0.0.1
blocked.

One ``streamlit run app.py`` on the small demo city with a planted burst (see
``test_alerts_page.plant_burst``): ``/alerts`` shows the alerts table and draws the alerted grids
on the map (polygon and dot per alert, over the community outlines and the grids of the
alerted communities) with no page or console
error and no request off the machine; closing an alert through the form writes the status to
the database and the page then counts it as closed.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from app_pages.i18n import t
from tests.app import browser_kit as kit
from tests.app.browser_kit import browser_fixture, page_fixture  # noqa: F401  (fixtures)
from tests.app.test_alerts_page import plant_burst

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    from gridgov.demo_city import build_demo
    from pipelines.run import run_project

    kit.require_browser()
    root = tmp_path_factory.mktemp("alerts-browser") / "demo-small"
    build_demo(root, size="small")
    plant_burst(root)
    run_project(root)
    return root


@pytest.fixture(scope="module")
def server(project, tmp_path_factory):
    with kit.start_app(project, tmp_path_factory.mktemp("streamlit-alerts")) as url:
        yield url


def _alerts(project: Path) -> list[tuple]:
    with kit.project_db(project) as con:
        return con.execute("SELECT alert_id, status FROM alerts "
                           "ORDER BY recurrence_days DESC, grid_id, alert_id").fetchall()


def test_alerts_page_table_map_and_status(page, server, project):
    console_errors: list[str] = []
    page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
    missing: list[str] = []
    page.on("response", lambda r: missing.append(r.url) if r.status >= 400 else None)
    alerts = _alerts(project)
    assert alerts and all(s == "new" for _, s in alerts)
    with kit.project_db(project) as con:
        n_comms = con.execute("SELECT count(*) FROM communities").fetchone()[0]
        n_grids = con.execute(  # grids of the communities holding an alert
            "SELECT count(*) FROM grids WHERE community_code IN (SELECT g.community_code "
            "FROM alerts a JOIN grids g USING (grid_id))").fetchone()[0]
    assert n_grids > 1

    frame = kit.open_map(page, server + "/alerts", t("alerts.title", "zh"))
    page.locator("[data-testid='stDataFrame']").first.wait_for(timeout=kit.DRAW_TIMEOUT)
    # every alert: a polygon and a dot (interactive paths); community and grid outlines too
    n = kit.wait_for_paths(frame, 2 * len(alerts))
    assert n == 2 * len(alerts)
    assert frame.locator("path").count() == n + n_comms + n_grids
    kit.wait_metric(page, t("alerts.kpi.open", "zh"), len(alerts))
    kit.settle(page)
    kit.screenshot(page, "alerts.png", max_height=5000, relayout_ms=1500)

    # close the first alert (the form's default choice) with a note
    page.get_by_text(t("alerts.status.closed", "zh") + " / closed").click()
    page.get_by_label(t("alerts.note", "zh")).fill("已处理")
    page.get_by_role("button", name=t("alerts.save", "zh")).click()
    first = alerts[0][0]
    page.get_by_text(t("alerts.saved", "zh", alert_id=first, status="已关闭")).wait_for(
        timeout=kit.DRAW_TIMEOUT)
    kit.wait_metric(page, t("alerts.kpi.closed", "zh"), 1)
    assert dict(_alerts(project))[first] == "closed"

    assert page.external_requests == []
    assert page.page_errors == []
    # Streamlit's client first probes its health/host-config endpoints under the page's path
    # (/alerts/_stcore/...), gets 404 and falls back to the root: its own, harmless; the
    # console reports each as "Failed to load resource". Anything else is an error of ours.
    probes = [u for u in missing if u.split("/_stcore/")[-1] in ("health", "host-config")
              and "/alerts/_stcore/" in u]
    assert missing == probes, missing
    others = [m for m in console_errors if not m.startswith("Failed to load resource")]
    assert others == [] and len(console_errors) == len(probes), console_errors

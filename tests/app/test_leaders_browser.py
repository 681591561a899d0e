"""The leaders' page (人员配置) in a real headless Chromium, every request off 127.0.0.1 blocked.

Starts ``streamlit run app.py`` on a free port against the small demo city with the staffing
stage run, opens ``/leaders`` and checks that the gap map is drawn inside the streamlit-folium
iframe, the street table and the equity charts render, a what-if budget change updates the
total, and the Excel report downloads with its documented sheets — all without one external
request. ``GRIDGOV_SCREENSHOTS=1`` saves the page as ``docs/img/leaders.png``.

``GRIDGOV_BROWSER_PROJECT=DIR`` runs the same checks on another project whose staffing stage
has run (the full demo city, say); its picture is then ``docs/img/demo-leaders.png``.
"""
from __future__ import annotations

import io
from pathlib import Path

import pytest

from tests.app import browser_kit as kit
from tests.app.browser_kit import browser_fixture, page_fixture  # noqa: F401  (fixtures)
from tests.app.test_leaders import staffing_project  # noqa: F401  (fixture)

pytestmark = [pytest.mark.browser, pytest.mark.slow]


target = kit.target_fixture("staffing_project")


@pytest.fixture(scope="module")
def expected(target) -> dict:
    """Figures of the target project read straight from its database."""
    from pipelines.stage_staffing import REPORT_SHEETS

    with kit.project_db(target) as con:
        n, budget = con.execute(
            "SELECT count(*), sum(recommended_staff) FROM street_allocation").fetchone()
    return {"streets": int(n), "budget": int(budget), "sheets": [s[0] for s in REPORT_SHEETS]}


@pytest.fixture(scope="module")
def server(target, tmp_path_factory):
    """``streamlit run app.py`` on 127.0.0.1:<free port>; its process group is stopped after."""
    with kit.start_app(target, tmp_path_factory.mktemp("streamlit-leaders")) as url:
        yield url


def _metric(page, label: str):
    return page.locator("[data-testid='stMetric']", has_text=label).first.locator(
        "[data-testid='stMetricValue']")


def test_leaders_page_offline(page, server, expected):
    frame = kit.open_map(page, server + "/leaders", "网格员配置与编制分配")

    # the gap map: one filled polygon per street, with its diverging legend
    kit.wait_for_paths(frame, expected["streets"])
    legend = frame.locator(".gridgov-legend")
    assert legend.count() == 1
    assert "缺口" in legend.inner_text() and "缺员" in legend.inner_text()

    # the street table (a canvas grid: check its accessible row count) and the charts
    table = page.locator("[data-testid='stDataFrame']").first
    table.wait_for(timeout=kit.DRAW_TIMEOUT)
    rows = table.locator("[role='grid'], table").first.get_attribute("aria-rowcount")
    assert rows is not None and int(rows) == expected["streets"] + 1  # + header row
    page.locator("[data-testid='stVegaLiteChart']").first.wait_for(timeout=kit.DRAW_TIMEOUT)
    # whole people with their unit
    assert _metric(page, "编制预算").inner_text().replace(",", "") == f"{expected['budget']} 人"
    kit.settle(page)

    # a what-if: ten more people → the what-if total is the new budget
    new_budget = expected["budget"] + 10
    box = page.get_by_role("spinbutton", name="编制预算（人）")
    box.fill(str(new_budget))
    box.press("Enter")
    kit.wait_metric(page, "推演总人数", f"{new_budget} 人")
    page.get_by_text("变动的街道").first.wait_for(timeout=kit.DRAW_TIMEOUT)
    kit.settle(page)
    # with the what-if's "what moved" filled in
    kit.screenshot(page, "leaders.png", prefix=kit.demo_prefix(), max_height=6000,
                   relayout_ms=1500)  # the map iframe and charts re-layout

    # the Excel report, generated on click
    from openpyxl import load_workbook

    with page.expect_download(timeout=kit.DRAW_TIMEOUT) as info:
        page.get_by_role("button", name="下载 Excel 报告").click()
    download = info.value
    assert download.suggested_filename.endswith(".xlsx")
    book = load_workbook(io.BytesIO(Path(download.path()).read_bytes()), read_only=True)
    assert book.sheetnames == expected["sheets"]

    assert page.external_requests == [], "the leaders' page must not need the internet"
    assert page.page_errors == []

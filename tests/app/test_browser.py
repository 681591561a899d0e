"""The app in a real headless Chromium, with every request off 127.0.0.1 blocked.

Starts ``streamlit run app.py`` on a free port against the tiny project, opens the overview
and the map, checks that Leaflet drew the layers inside the streamlit-folium iframe without
any external request, and saves full-page screenshots (to ``docs/img/`` with GRIDGOV_SCREENSHOTS=1) (overview.png, map.png,
map_street.png).

``GRIDGOV_BROWSER_PROJECT=demo-city pytest -m browser tests/app`` runs the same checks on
another project (the demo city) and saves its pictures as ``docs/img/demo-*.png`` instead.
"""
from __future__ import annotations

import pytest

from tests.app import browser_kit as kit
from tests.app.browser_kit import browser_fixture, page_fixture  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def server(project, tmp_path_factory):
    """``streamlit run app.py`` on 127.0.0.1:<free port>; stopped (whole process group) after."""
    target = kit.other_project() or str(project.dir)
    with kit.start_app(target, tmp_path_factory.mktemp("streamlit")) as url:
        yield url


def _screenshot(page, name: str) -> None:
    kit.screenshot(page, name, prefix=kit.demo_prefix(), max_height=4000, relayout_ms=800)


def test_overview_in_browser(page, server, project):
    page.goto(server + "/")  # the default page lives at the root URL
    page.get_by_text("数据规模").wait_for(timeout=kit.DRAW_TIMEOUT)
    page.locator("[data-testid='stMetric']").first.wait_for(timeout=kit.DRAW_TIMEOUT)
    kit.settle(page)
    if not kit.other_project():
        streets = page.locator("[data-testid='stMetric']", has_text="街道").first
        assert streets.locator("[data-testid='stMetricValue']").inner_text() == "2"
    _screenshot(page, "overview.png")
    assert page.external_requests == []


def test_map_draws_offline(page, server, project):
    page.goto(server + "/map")
    frame = page.frame_locator(kit.IFRAME)
    frame.locator(".leaflet-container").wait_for(timeout=kit.DRAW_TIMEOUT)
    # 4 communities + 2 streets + 1 barrier + 3 special units in the tiny project
    n = kit.wait_for_paths(frame, 10)
    assert frame.locator(".gridgov-legend").count() == 1
    if not kit.other_project():
        assert "天地图" in frame.locator(".leaflet-control-attribution").inner_text()
    kit.settle(page)
    _screenshot(page, "map.png")

    # one street: its buildings are drawn as circle markers on top of the rest
    page.locator("[data-testid='stMain'] [data-testid='stSelectbox']").first.click()
    if kit.other_project():
        page.get_by_role("option").nth(1).click()  # the first street, whatever it is called
        expected = n + 1
    else:
        code, n_buildings = next(iter(project.buildings_per_street.items()))
        page.get_by_role("option", name=f"{project.street_names[code]} ({code})").click()
        expected = n + n_buildings
    page.get_by_text("已绘制").first.wait_for(timeout=kit.DRAW_TIMEOUT)
    frame = page.frame_locator(kit.IFRAME)
    kit.wait_for_paths(frame, expected)
    kit.settle(page)
    _screenshot(page, "map_street.png")

    assert page.external_requests == [], "the map must not need the internet"
    assert page.page_errors == []

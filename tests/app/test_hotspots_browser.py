"""The risk hotspot page (风险热点) in a real headless Chromium, every request off 127.0.0.1
blocked.

Starts ``streamlit run app.py`` on a free port against the small demo city with the grid and
hotspot stages run, opens ``/hotspots`` and checks that the unit map is drawn inside the
streamlit-folium iframe with its legend, the tables render, and that changing the category
and moving the time slider redraw the map with the stored figures — without one external
request. ``GRIDGOV_SCREENSHOTS=1`` saves the page as ``docs/img/hotspots.png``.

``GRIDGOV_BROWSER_PROJECT=DIR`` runs the same checks on another project whose hotspot stage
has run (the full demo city, say); its picture is then ``docs/img/demo-hotspots.png``.
"""
from __future__ import annotations

import time

import pytest

from tests.app import browser_kit as kit
from tests.app.browser_kit import browser_fixture, page_fixture  # noqa: F401  (fixtures)
from tests.app.test_hotspots_page import hotspot_project  # noqa: F401  (fixture)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CATEGORY_LABELS = {  # the page's fixed option labels of the demo's categories
    "dispute": "矛盾纠纷 Disputes", "safety_hazard": "安全隐患 Safety hazards",
    "sanitation": "环境卫生 Sanitation", "public_order": "社会治安 Public order",
    "complaint_12345": "12345 热线诉求 12345 hotline",
}


#: the hot classes' fills and their names in the tooltip
HOT_FILLS = {"#b2182b": "热点（99% 置信）", "#ef6548": "热点（95% 置信）", "#fdbb84": "热点（90% 置信）"}

target = kit.target_fixture("hotspot_project")


@pytest.fixture(scope="module")
def expected(target) -> dict:
    """Figures of the target project read straight from its database."""
    with kit.project_db(target) as con:
        units = con.execute("SELECT count(*) FROM hotspot_units").fetchone()[0]
        # the category with the most hot units over the whole period: its map differs from 'all'
        # (one with monthly rows: 'any', hot in any category, has the whole period only)
        category = con.execute(
            "SELECT category FROM hotspots WHERE period = 'all' AND category <> 'all' "
            "AND category IN (SELECT category FROM hotspots WHERE period <> 'all') "
            "GROUP BY category ORDER BY count(*) FILTER (WHERE hotspot_class LIKE 'hot%') DESC, "
            "category LIMIT 1").fetchone()[0]
        last = con.execute("SELECT max(period) FROM hotspots WHERE period <> 'all'").fetchone()[0]
        # the page opens on 'any' (a unit hot in any category) when the stage wrote it
        default = "any" if con.execute(
            "SELECT count(*) FROM hotspots WHERE category = 'any'").fetchone()[0] else "all"

        def incidents(cat: str, period: str) -> int:
            return int(con.execute(
                "SELECT coalesce(sum(incidents), 0) FROM incident_counts "
                "WHERE category = ? AND period = ?", [cat, period]).fetchone()[0])

        def hot(cat: str, period: str) -> int:
            return int(con.execute(
                "SELECT count(*) FROM hotspots WHERE category = ? AND period = ? "
                "AND hotspot_class LIKE 'hot%'", [cat, period]).fetchone()[0])

        return {
            "units": int(units), "category": category, "last": last,
            "label": CATEGORY_LABELS.get(category, category),
            "all": incidents("all", "all"), "cat_all": incidents(category, "all"),
            "cat_last": incidents(category, last), "hot_all": hot(default, "all"),
            "hot_cat": hot(category, "all"), "hot_cat_last": hot(category, last),
            "hot99_all": int(con.execute(
                "SELECT count(*) FROM hotspots WHERE category = ? AND period = 'all' "
                "AND hotspot_class = 'hot_99'", [default]).fetchone()[0]),
        }


@pytest.fixture(scope="module")
def server(target, tmp_path_factory):
    """``streamlit run app.py`` on 127.0.0.1:<free port>; its process group is stopped after."""
    with kit.start_app(target, tmp_path_factory.mktemp("streamlit-hotspots")) as url:
        yield url


def _wait_legend(page, text: str):
    """Wait until the map (re)drawn in the iframe has ``text`` in its legend; the frame."""
    from playwright.sync_api import Error as PlaywrightError

    deadline = time.monotonic() + kit.DRAW_TIMEOUT / 1000
    seen = ""
    while time.monotonic() < deadline:
        frame = page.frame_locator(kit.IFRAME)
        legend = frame.locator(".gridgov-legend")
        try:
            seen = legend.inner_text(timeout=2000) if legend.count() == 1 else ""
        except PlaywrightError:  # the iframe is being replaced by the redrawn map
            seen = ""
        if text in seen:
            return frame
        time.sleep(0.25)
    raise AssertionError(f"the map legend never showed {text!r} (last seen: {seen!r})")


def _fills(frame) -> list[str]:
    return frame.locator("path.leaflet-interactive").evaluate_all(
        "els => els.map(e => e.getAttribute('fill'))")


def test_hotspot_page_offline(page, server, expected):
    frame = kit.open_map(page, server + "/hotspots", "风险热点与风险预警")

    # the map: one filled polygon per analysis unit, with the class legend
    assert kit.wait_for_paths(frame, expected["units"]) == expected["units"]
    frame = _wait_legend(page, "冷热点类别")
    assert f"热点 99% ({expected['hot99_all']})" in frame.locator(".gridgov-legend").inner_text()
    kit.wait_metric(page, "事件数（所选）", expected["all"])
    kit.wait_metric(page, "热点单元", expected["hot_all"])
    before = _fills(frame)

    # the tables: class counts and hot units (risk, forecast, backtest and timeliness are on
    # their own pages, checked at the end)
    page.wait_for_function(
        "() => [...document.querySelectorAll('[data-testid=stDataFrame]')]"
        ".filter(e => e.offsetParent !== null).length >= 2", timeout=kit.DRAW_TIMEOUT)
    kit.settle(page)

    # another category: new counts, and the map is drawn again with other colours
    page.locator("[data-testid='stMain'] [data-testid='stSelectbox']").first.click()
    page.get_by_role("option", name=expected["label"]).click()
    kit.wait_metric(page, "事件数（所选）", expected["cat_all"])
    kit.wait_metric(page, "热点单元", expected["hot_cat"])
    frame = _wait_legend(page, expected["label"])
    kit.wait_for_paths(frame, expected["units"])
    after = _fills(frame)
    assert len(after) == len(before) == expected["units"]
    if expected["hot_cat"] != expected["hot_all"]:
        assert after != before
    assert "#b2182b" in after or "#ef6548" in after or "#fdbb84" in after  # reds drawn
    # the tooltip follows the restyle: a red unit says it is a hot spot of that category
    red = next(i for i, c in enumerate(after) if c in HOT_FILLS)
    # the option clicked may lie over the map: its unit's tooltip goes first
    page.mouse.move(5, 5)
    frame.locator(".leaflet-tooltip").first.wait_for(state="detached", timeout=kit.DRAW_TIMEOUT)
    frame.locator("path.leaflet-interactive").nth(red).hover()
    tip = frame.locator(".leaflet-tooltip").first
    tip.wait_for(timeout=kit.DRAW_TIMEOUT)
    assert HOT_FILLS[after[red]] in tip.inner_text()
    page.mouse.move(5, 5)
    kit.settle(page)
    kit.screenshot(page, "hotspots.png", prefix=kit.demo_prefix(), max_height=8000,
                   relayout_ms=1500)  # the map iframe and charts re-layout

    # the time slider: jump to the last month with the keyboard
    slider = page.get_by_role("slider").first  # the period slider comes first on the page
    slider.focus()
    slider.press("End")
    kit.wait_metric(page, "事件数（所选）", expected["cat_last"])
    kit.wait_metric(page, "热点单元", expected["hot_cat_last"])
    frame = _wait_legend(page, expected["last"])
    assert kit.wait_for_paths(frame, expected["units"]) == expected["units"]
    kit.settle(page)

    # the two other hotspot pages
    page.goto(server + "/risk")
    page.get_by_text("滚动回测：模型与朴素基线").first.wait_for(timeout=kit.DRAW_TIMEOUT)
    page.goto(server + "/timeliness")
    page.get_by_text("案件办理时效（第十六条）").first.wait_for(timeout=kit.DRAW_TIMEOUT)
    kit.settle(page)

    assert page.external_requests == [], "the hotspot pages must not need the internet"
    assert page.page_errors == []

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

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.app.conftest import APP, REPO
from tests.app.test_hotspots_page import hotspot_project  # noqa: F401  (fixture)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = os.environ.get("GRIDGOV_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]
IMG = REPO / "docs" / "img" if os.environ.get("GRIDGOV_SCREENSHOTS") else Path(
    os.environ.get("TMPDIR", "/tmp")) / "gridgov-screens"
IFRAME = "iframe[title='streamlit_folium.st_folium']"
START_TIMEOUT = 90  # s
DRAW_TIMEOUT = 60_000  # ms
CATEGORY_LABELS = {  # the page's fixed option labels of the demo's categories
    "dispute": "矛盾纠纷 Disputes", "safety_hazard": "安全隐患 Safety hazards",
    "sanitation": "环境卫生 Sanitation", "public_order": "社会治安 Public order",
    "complaint_12345": "12345 热线诉求 12345 hotline",
}


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(url: str, proc: subprocess.Popen, timeout: float) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with status {proc.returncode}")
        try:
            with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"streamlit did not answer at {url} within {timeout} s")


@pytest.fixture(scope="module")
def target(hotspot_project) -> Path:  # noqa: F811
    """The project the browser looks at: the small demo, or GRIDGOV_BROWSER_PROJECT."""
    other = os.environ.get("GRIDGOV_BROWSER_PROJECT")
    return Path(other).resolve() if other else hotspot_project


@pytest.fixture(scope="module")
def expected(target) -> dict:
    """Figures of the target project read straight from its database."""
    from pipelines.db import connect

    con = connect(target / "gridgov.duckdb", read_only=True)
    try:
        units = con.execute("SELECT count(*) FROM hotspot_units").fetchone()[0]
        # the category with the most hot units over the whole period: its map differs from 'all'
        category = con.execute(
            "SELECT category FROM hotspots WHERE period = 'all' AND category <> 'all' "
            "GROUP BY category ORDER BY count(*) FILTER (WHERE hotspot_class LIKE 'hot%') DESC, "
            "category LIMIT 1").fetchone()[0]
        last = con.execute("SELECT max(period) FROM hotspots WHERE period <> 'all'").fetchone()[0]

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
            "cat_last": incidents(category, last), "hot_all": hot("all", "all"),
            "hot_cat": hot(category, "all"), "hot_cat_last": hot(category, last),
            "hot99_all": int(con.execute(
                "SELECT count(*) FROM hotspots WHERE category = 'all' AND period = 'all' "
                "AND hotspot_class = 'hot_99'").fetchone()[0]),
        }
    finally:
        con.close()


@pytest.fixture(scope="module")
def server(target, tmp_path_factory):
    """``streamlit run app.py`` on 127.0.0.1:<free port>; its process group is stopped after."""
    if not Path(CHROMIUM).exists() and shutil.which(CHROMIUM) is None:
        if os.environ.get("CI"):
            pytest.fail(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    pytest.importorskip("playwright.sync_api")
    port = _free_port()
    log = tmp_path_factory.mktemp("streamlit-hotspots") / "server.log"
    env = dict(os.environ, GRIDGOV_PROJECT=str(target))
    env.pop("GRIDGOV_TILES", None)
    cmd = [sys.executable, "-m", "streamlit", "run", str(APP),
           "--server.port", str(port), "--server.address", "127.0.0.1",
           "--server.headless", "true", "--browser.gatherUsageStats", "false"]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, proc, START_TIMEOUT)
        yield url
    except Exception:
        print(log.read_text(errors="replace"))
        raise
    finally:
        if proc.poll() is None:  # stop exactly the server we started (its own process group)
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=15)
        assert proc.poll() is not None


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser, server):
    """A page that may only talk to the app: anything else is aborted and recorded."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, locale="zh-CN")
    page = context.new_page()
    page.external_requests = []  # type: ignore[attr-defined]

    def offline(route):
        url = route.request.url
        if url.startswith((server, "data:", "blob:", "about:")):
            route.continue_()
        else:
            page.external_requests.append(url)  # type: ignore[attr-defined]
            route.abort("internetdisconnected")

    context.route("**/*", offline)
    page.page_errors = []  # type: ignore[attr-defined]
    page.on("pageerror", lambda exc: page.page_errors.append(str(exc)))  # type: ignore[attr-defined]
    yield page
    context.close()


def _wait_for_paths(frame, minimum: int, timeout_ms: int = DRAW_TIMEOUT) -> int:
    deadline = time.monotonic() + timeout_ms / 1000
    n = 0
    while time.monotonic() < deadline:
        n = frame.locator("path.leaflet-interactive").count()
        if n >= minimum:
            return n
        time.sleep(0.25)
    raise AssertionError(f"only {n} drawn paths in the map, expected at least {minimum}")


def _settle(page) -> None:
    """Wait until Streamlit has finished the script run (no 'running' indicator)."""
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=DRAW_TIMEOUT)


def _wait_metric(page, label: str, value: int) -> None:
    page.wait_for_function(
        "([label, want]) => [...document.querySelectorAll('[data-testid=stMetric]')].some("
        "m => m.innerText.includes(label) && m.querySelector('[data-testid=stMetricValue]')"
        ".innerText.replace(/,/g, '') === want)",
        arg=[label, str(value)], timeout=DRAW_TIMEOUT)


def _wait_legend(page, text: str):
    """Wait until the map (re)drawn in the iframe has ``text`` in its legend; the frame."""
    from playwright.sync_api import Error as PlaywrightError

    deadline = time.monotonic() + DRAW_TIMEOUT / 1000
    seen = ""
    while time.monotonic() < deadline:
        frame = page.frame_locator(IFRAME)
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


def _screenshot(page, name: str) -> None:
    """Full-page screenshot: Streamlit scrolls inside its main pane, so grow the viewport."""
    page.mouse.move(0, 0)
    page.evaluate("() => document.activeElement && document.activeElement.blur()")
    height = page.evaluate(
        "() => Math.max(...[...document.querySelectorAll('[data-testid=stMain], "
        "[data-testid=stMainBlockContainer]')].map(e => e.scrollHeight), 600)")
    page.set_viewport_size({"width": 1400, "height": min(int(height) + 40, 8000)})
    page.wait_for_timeout(1500)  # the map iframe and charts re-layout
    IMG.mkdir(parents=True, exist_ok=True)
    prefix = "demo-" if os.environ.get("GRIDGOV_BROWSER_PROJECT") else ""
    page.screenshot(path=str(IMG / f"{prefix}{name}"), full_page=True)
    page.set_viewport_size({"width": 1400, "height": 1000})


def test_hotspot_page_offline(page, server, expected):
    page.goto(server + "/hotspots")
    page.get_by_text("风险热点与风险预警").first.wait_for(timeout=DRAW_TIMEOUT)

    # the map: one filled polygon per analysis unit, with the class legend
    frame = page.frame_locator(IFRAME)
    frame.locator(".leaflet-container").wait_for(timeout=DRAW_TIMEOUT)
    assert _wait_for_paths(frame, expected["units"]) == expected["units"]
    frame = _wait_legend(page, "冷热点类别")
    assert f"热点 99% ({expected['hot99_all']})" in frame.locator(".gridgov-legend").inner_text()
    _wait_metric(page, "事件数（所选）", expected["all"])
    _wait_metric(page, "热点单元", expected["hot_all"])
    before = _fills(frame)

    # the tables: class counts, hot units, risk, forecast, backtest, timeliness
    # (visible ones: the per-month backtest sits in a closed expander, other tabs are hidden)
    page.wait_for_function(
        "() => [...document.querySelectorAll('[data-testid=stDataFrame]')]"
        ".filter(e => e.offsetParent !== null).length >= 5", timeout=DRAW_TIMEOUT)
    page.get_by_text("滚动回测：模型与朴素基线").first.wait_for(timeout=DRAW_TIMEOUT)
    page.get_by_text("案件办理时效（第十六条）").first.wait_for(timeout=DRAW_TIMEOUT)
    _settle(page)

    # another category: new counts, and the map is drawn again with other colours
    page.locator("[data-testid='stMain'] [data-testid='stSelectbox']").first.click()
    page.get_by_role("option", name=expected["label"]).click()
    _wait_metric(page, "事件数（所选）", expected["cat_all"])
    _wait_metric(page, "热点单元", expected["hot_cat"])
    frame = _wait_legend(page, expected["label"])
    _wait_for_paths(frame, expected["units"])
    after = _fills(frame)
    assert len(after) == len(before) == expected["units"]
    if expected["hot_cat"] != expected["hot_all"]:
        assert after != before
    assert "#b2182b" in after or "#ef6548" in after or "#fdbb84" in after  # reds drawn
    _settle(page)
    _screenshot(page, "hotspots.png")

    # the time slider: jump to the last month with the keyboard
    slider = page.get_by_role("slider").first  # the period slider comes first on the page
    slider.focus()
    slider.press("End")
    _wait_metric(page, "事件数（所选）", expected["cat_last"])
    _wait_metric(page, "热点单元", expected["hot_cat_last"])
    frame = _wait_legend(page, expected["last"])
    assert _wait_for_paths(frame, expected["units"]) == expected["units"]
    _settle(page)

    assert page.external_requests == [], "the hotspot page must not need the internet"
    assert page.page_errors == []

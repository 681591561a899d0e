"""The app in a real headless Chromium, with every request off 127.0.0.1 blocked.

Starts ``streamlit run app.py`` on a free port against the tiny project, opens the overview
and the map, checks that Leaflet drew the layers inside the streamlit-folium iframe without
any external request, and saves full-page screenshots (to ``docs/img/`` with GRIDGOV_SCREENSHOTS=1) (overview.png, map.png,
map_street.png).

``GRIDGOV_BROWSER_PROJECT=demo-city pytest -m browser tests/app`` runs the same checks on
another project (the demo city) and saves its pictures as ``docs/img/demo-*.png`` instead.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.app.conftest import APP, REPO

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = os.environ.get("GRIDGOV_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]
# Pictures go to docs/img only when asked (GRIDGOV_SCREENSHOTS=1), so test runs leave the tree clean.
IMG = REPO / "docs" / "img" if os.environ.get("GRIDGOV_SCREENSHOTS") else Path(
    os.environ.get("TMPDIR", "/tmp")) / "gridgov-screens"
IFRAME = "iframe[title='streamlit_folium.st_folium']"
START_TIMEOUT = 90  # s, server start
DRAW_TIMEOUT = 60_000  # ms, page and map


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(url: str, proc: subprocess.Popen, timeout: float) -> None:
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
def server(project, tmp_path_factory):
    """``streamlit run app.py`` on 127.0.0.1:<free port>; stopped (whole process group) after."""
    if not Path(CHROMIUM).exists() and shutil.which(CHROMIUM) is None:
        if os.environ.get("CI"):
            pytest.fail(f"no Chromium at {CHROMIUM}: scripts/test.sh installs it (apt-get install chromium)")
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    pytest.importorskip("playwright.sync_api")
    target = os.environ.get("GRIDGOV_BROWSER_PROJECT") or str(project.dir)
    port = _free_port()
    log = tmp_path_factory.mktemp("streamlit") / "server.log"
    env = dict(os.environ, GRIDGOV_PROJECT=target)
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
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=15)


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


def _screenshot(page, name: str) -> None:
    """Full-page screenshot: Streamlit scrolls inside its main pane, so grow the viewport."""
    page.mouse.move(0, 0)  # no tooltip in the picture
    page.evaluate("() => document.activeElement && document.activeElement.blur()")
    height = page.evaluate(
        "() => Math.max(...[...document.querySelectorAll('[data-testid=stMain], "
        "[data-testid=stMainBlockContainer]')].map(e => e.scrollHeight), 600)")
    page.set_viewport_size({"width": 1400, "height": min(int(height) + 40, 4000)})
    page.wait_for_timeout(800)
    IMG.mkdir(parents=True, exist_ok=True)
    prefix = "demo-" if os.environ.get("GRIDGOV_BROWSER_PROJECT") else ""
    page.screenshot(path=str(IMG / f"{prefix}{name}"), full_page=True)
    page.set_viewport_size({"width": 1400, "height": 1000})


def test_overview_in_browser(page, server, project):
    page.goto(server + "/")  # the default page lives at the root URL
    page.get_by_text("数据规模").wait_for(timeout=DRAW_TIMEOUT)
    page.locator("[data-testid='stMetric']").first.wait_for(timeout=DRAW_TIMEOUT)
    _settle(page)
    if not os.environ.get("GRIDGOV_BROWSER_PROJECT"):
        streets = page.locator("[data-testid='stMetric']", has_text="街道").first
        assert streets.locator("[data-testid='stMetricValue']").inner_text() == "2"
    _screenshot(page, "overview.png")
    assert page.external_requests == []


def test_map_draws_offline(page, server, project):
    page.goto(server + "/map")
    frame = page.frame_locator(IFRAME)
    frame.locator(".leaflet-container").wait_for(timeout=DRAW_TIMEOUT)
    # 4 communities + 2 streets + 1 barrier + 3 special units in the tiny project
    n = _wait_for_paths(frame, 10)
    assert frame.locator(".gridgov-legend").count() == 1
    if not os.environ.get("GRIDGOV_BROWSER_PROJECT"):
        assert "天地图" in frame.locator(".leaflet-control-attribution").inner_text()
    _settle(page)
    _screenshot(page, "map.png")

    # one street: its buildings are drawn as circle markers on top of the rest
    page.locator("[data-testid='stMain'] [data-testid='stSelectbox']").first.click()
    if os.environ.get("GRIDGOV_BROWSER_PROJECT"):
        page.get_by_role("option").nth(1).click()  # the first street, whatever it is called
        expected = n + 1
    else:
        code, n_buildings = next(iter(project.buildings_per_street.items()))
        page.get_by_role("option", name=f"{project.street_names[code]} ({code})").click()
        expected = n + n_buildings
    page.get_by_text("已绘制").first.wait_for(timeout=DRAW_TIMEOUT)
    frame = page.frame_locator(IFRAME)
    _wait_for_paths(frame, expected)
    _settle(page)
    _screenshot(page, "map_street.png")

    assert page.external_requests == [], "the map must not need the internet"
    assert page.page_errors == []

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
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.app.conftest import APP, REPO
from tests.app.test_leaders import staffing_project  # noqa: F401  (fixture)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = os.environ.get("GRIDGOV_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]
IMG = REPO / "docs" / "img" if os.environ.get("GRIDGOV_SCREENSHOTS") else Path(
    os.environ.get("TMPDIR", "/tmp")) / "gridgov-screens"
IFRAME = "iframe[title='streamlit_folium.st_folium']"
START_TIMEOUT = 90  # s
DRAW_TIMEOUT = 60_000  # ms


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
def target(staffing_project) -> Path:  # noqa: F811
    """The project the browser looks at: the small demo, or GRIDGOV_BROWSER_PROJECT."""
    other = os.environ.get("GRIDGOV_BROWSER_PROJECT")
    return Path(other).resolve() if other else staffing_project


@pytest.fixture(scope="module")
def expected(target) -> dict:
    """Figures of the target project read straight from its database."""
    from pipelines.db import connect
    from pipelines.stage_staffing import REPORT_SHEETS

    con = connect(target / "gridgov.duckdb", read_only=True)
    try:
        n, budget = con.execute(
            "SELECT count(*), sum(recommended_staff) FROM street_allocation").fetchone()
    finally:
        con.close()
    return {"streets": int(n), "budget": int(budget), "sheets": [s[0] for s in REPORT_SHEETS]}


@pytest.fixture(scope="module")
def server(target, tmp_path_factory):
    """``streamlit run app.py`` on 127.0.0.1:<free port>; its process group is stopped after."""
    if not Path(CHROMIUM).exists() and shutil.which(CHROMIUM) is None:
        if os.environ.get("CI"):
            pytest.fail(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    pytest.importorskip("playwright.sync_api")
    port = _free_port()
    log = tmp_path_factory.mktemp("streamlit-leaders") / "server.log"
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
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, locale="zh-CN",
                                  accept_downloads=True)
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


def _metric(page, label: str):
    return page.locator("[data-testid='stMetric']", has_text=label).first.locator(
        "[data-testid='stMetricValue']")


def _screenshot(page, name: str) -> None:
    """Full-page screenshot: Streamlit scrolls inside its main pane, so grow the viewport."""
    page.mouse.move(0, 0)
    page.evaluate("() => document.activeElement && document.activeElement.blur()")
    height = page.evaluate(
        "() => Math.max(...[...document.querySelectorAll('[data-testid=stMain], "
        "[data-testid=stMainBlockContainer]')].map(e => e.scrollHeight), 600)")
    page.set_viewport_size({"width": 1400, "height": min(int(height) + 40, 6000)})
    page.wait_for_timeout(1500)  # the map iframe and charts re-layout
    IMG.mkdir(parents=True, exist_ok=True)
    prefix = "demo-" if os.environ.get("GRIDGOV_BROWSER_PROJECT") else ""
    page.screenshot(path=str(IMG / f"{prefix}{name}"), full_page=True)
    page.set_viewport_size({"width": 1400, "height": 1000})


def test_leaders_page_offline(page, server, expected):
    page.goto(server + "/leaders")
    page.get_by_text("网格员配置与编制分配").first.wait_for(timeout=DRAW_TIMEOUT)

    # the gap map: one filled polygon per street, with its diverging legend
    frame = page.frame_locator(IFRAME)
    frame.locator(".leaflet-container").wait_for(timeout=DRAW_TIMEOUT)
    _wait_for_paths(frame, expected["streets"])
    legend = frame.locator(".gridgov-legend")
    assert legend.count() == 1
    assert "缺口" in legend.inner_text() and "缺员" in legend.inner_text()

    # the street table (a canvas grid: check its accessible row count) and the charts
    table = page.locator("[data-testid='stDataFrame']").first
    table.wait_for(timeout=DRAW_TIMEOUT)
    rows = table.locator("[role='grid'], table").first.get_attribute("aria-rowcount")
    assert rows is not None and int(rows) == expected["streets"] + 1  # + header row
    page.locator("[data-testid='stVegaLiteChart']").first.wait_for(timeout=DRAW_TIMEOUT)
    assert _metric(page, "编制预算").inner_text().replace(",", "") == str(expected["budget"])
    _settle(page)

    # a what-if: ten more people → the what-if total is the new budget
    new_budget = expected["budget"] + 10
    box = page.get_by_role("spinbutton", name="编制预算（人）")
    box.fill(str(new_budget))
    box.press("Enter")
    page.wait_for_function(
        "([label, want]) => [...document.querySelectorAll('[data-testid=stMetric]')].some("
        "m => m.innerText.includes(label) && m.querySelector('[data-testid=stMetricValue]')"
        ".innerText.replace(/,/g, '') === want)",
        arg=["推演总人数", str(new_budget)], timeout=DRAW_TIMEOUT)
    page.get_by_text("变动的街道").first.wait_for(timeout=DRAW_TIMEOUT)
    _settle(page)
    _screenshot(page, "leaders.png")  # with the what-if's "what moved" filled in

    # the Excel report, generated on click
    from openpyxl import load_workbook

    with page.expect_download(timeout=DRAW_TIMEOUT) as info:
        page.get_by_role("button", name="下载 Excel 报告").click()
    download = info.value
    assert download.suggested_filename.endswith(".xlsx")
    book = load_workbook(io.BytesIO(Path(download.path()).read_bytes()), read_only=True)
    assert book.sheetnames == expected["sheets"]

    assert page.external_requests == [], "the leaders' page must not need the internet"
    assert page.page_errors == []

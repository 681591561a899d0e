"""The harness the browser tests share: the app server, headless Chromium, an offline page.

Plain functions and context managers, so that each ``test_*_browser.py`` keeps only thin
fixtures around them:

- :func:`start_app` runs ``streamlit run app.py`` on 127.0.0.1:<free port> against a project and
  stops exactly that server (its own process group) afterwards;
- :func:`launch_browser` starts headless Chromium (:data:`CHROMIUM`) through Playwright;
- :func:`new_blocked_page` opens a page that may only talk to the app: every other request is
  aborted and recorded in ``page.external_requests``, page errors in ``page.page_errors``;
- :func:`open_map`, :func:`wait_for_paths`, :func:`settle`, :func:`wait_metric` wait for the
  page, its map and the app;
- :func:`screenshot` saves a full-page picture, to ``docs/img/`` with ``GRIDGOV_SCREENSHOTS=1``
  and to a temporary folder otherwise (test runs leave the tree clean).

Two fixtures are built on them, for a module to import next to its own ``server`` fixture
(a ``with start_app(...) as url: yield url``)::

    from tests.app.browser_kit import browser_fixture, page_fixture  # noqa: F401  (fixtures)

``browser`` (module scope) and ``page`` (a fresh blocked page on ``server`` per test).

Without Chromium (or Playwright) the tests are skipped, and fail when ``CI`` is set.
``GRIDGOV_BROWSER_PROJECT`` points the tests at another project (:func:`other_project`); their
pictures are then named ``demo-*.png`` (:func:`demo_prefix`).
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
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.app.conftest import APP, REPO

CHROMIUM = os.environ.get("GRIDGOV_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]
IFRAME = "iframe[title='streamlit_folium.st_folium']"
START_TIMEOUT = 90  # s, server start
STOP_TIMEOUT = 15  # s, per signal when stopping the server
DRAW_TIMEOUT = 60_000  # ms, page and map
VIEWPORT = {"width": 1400, "height": 1000}
LOCALE = "zh-CN"


def other_project() -> str | None:
    """``GRIDGOV_BROWSER_PROJECT`` when set (the tests then look at that project), else None."""
    return os.environ.get("GRIDGOV_BROWSER_PROJECT") or None


def target_project(default: Path) -> Path:
    """The project the browser looks at: ``default``, or GRIDGOV_BROWSER_PROJECT resolved."""
    other = other_project()
    return Path(other).resolve() if other else default


def target_fixture(default: str):
    """A module fixture ``target``: the project of the fixture named ``default``, or
    GRIDGOV_BROWSER_PROJECT resolved (:func:`target_project`). In a test module::

        target = kit.target_fixture("staffing_project")
    """
    @pytest.fixture(scope="module", name="target")
    def target(request) -> Path:
        """The project the browser looks at: the small demo, or GRIDGOV_BROWSER_PROJECT."""
        return target_project(request.getfixturevalue(default))

    return target


@contextmanager
def project_db(project: Path) -> Iterator:
    """The project's database ``gridgov.duckdb``, opened read-only, closed on the way out."""
    from pipelines.db import connect

    con = connect(Path(project) / "gridgov.duckdb", read_only=True)
    try:
        yield con
    finally:
        con.close()


def demo_prefix() -> str:
    """The prefix of the pictures' names: ``demo-`` for another project, else nothing."""
    return "demo-" if other_project() else ""


def screenshot_dir() -> Path:
    """``docs/img`` only when asked (GRIDGOV_SCREENSHOTS=1), else a folder under TMPDIR."""
    if os.environ.get("GRIDGOV_SCREENSHOTS"):
        return REPO / "docs" / "img"
    return Path(os.environ.get("TMPDIR", "/tmp")) / "gridgov-screens"


def require_browser() -> None:
    """Skip (or, with CI set, fail) unless Chromium and Playwright are there."""
    if not Path(CHROMIUM).exists() and shutil.which(CHROMIUM) is None:
        if os.environ.get("CI"):
            pytest.fail(f"no Chromium at {CHROMIUM}: scripts/test.sh installs it "
                        "(apt-get install chromium)")
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    pytest.importorskip("playwright.sync_api")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, proc: subprocess.Popen, timeout: float = START_TIMEOUT) -> None:
    """Wait until the server at ``url`` answers its health check; raise if it exits or not."""
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


def _stop(proc: subprocess.Popen) -> None:
    """Stop exactly the server we started: its own process group, TERM then KILL."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=STOP_TIMEOUT)
    assert proc.poll() is not None


@contextmanager
def start_app(project_dir: str | Path, log_dir: Path,
              timeout: float = START_TIMEOUT) -> Iterator[str]:
    """``streamlit run app.py`` on 127.0.0.1:<free port> against ``project_dir``; its URL.

    The server's output goes to ``log_dir/server.log`` (printed if anything goes wrong while
    it runs); the server is stopped, its whole process group, on the way out. Skips (fails
    with CI) without a browser, before anything starts.
    """
    require_browser()
    port = free_port()
    log = Path(log_dir) / "server.log"
    env = dict(os.environ, GRIDGOV_PROJECT=str(project_dir))
    env.pop("GRIDGOV_TILES", None)  # the app's own offline tiles, whatever the shell says
    cmd = [sys.executable, "-m", "streamlit", "run", str(APP),
           "--server.port", str(port), "--server.address", "127.0.0.1",
           "--server.headless", "true", "--browser.gatherUsageStats", "false"]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc, timeout)
        yield url
    except Exception:
        print(log.read_text(errors="replace"))
        raise
    finally:
        _stop(proc)


@contextmanager
def launch_browser() -> Iterator:
    """Headless Chromium (:data:`CHROMIUM` with :data:`CHROMIUM_ARGS`), closed on the way out."""
    require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@contextmanager
def new_blocked_page(browser, app_url: str, **context_options) -> Iterator:
    """A page (in its own context) that may only talk to the app at ``app_url``.

    Any other request is aborted and its URL appended to ``page.external_requests``; page
    errors go to ``page.page_errors``. ``context_options`` are passed on to ``new_context``
    (``accept_downloads=True``, say). The context is closed on the way out.
    """
    options = {"viewport": dict(VIEWPORT), "locale": LOCALE, **context_options}
    context = browser.new_context(**options)
    try:
        page = context.new_page()
        page.external_requests = []  # type: ignore[attr-defined]

        def offline(route):
            url = route.request.url
            if url.startswith((app_url, "data:", "blob:", "about:")):
                route.continue_()
            else:
                page.external_requests.append(url)  # type: ignore[attr-defined]
                route.abort("internetdisconnected")

        context.route("**/*", offline)
        page.page_errors = []  # type: ignore[attr-defined]
        page.on("pageerror", lambda exc: page.page_errors.append(str(exc)))  # type: ignore[attr-defined]
        yield page
    finally:
        context.close()


def open_map(page, url: str, heading: str):
    """Go to ``url``, wait for the text ``heading`` and for the Leaflet map inside the
    streamlit-folium iframe (:data:`IFRAME`); that frame."""
    page.goto(url)
    page.get_by_text(heading).first.wait_for(timeout=DRAW_TIMEOUT)
    frame = page.frame_locator(IFRAME)
    frame.locator(".leaflet-container").wait_for(timeout=DRAW_TIMEOUT)
    return frame


def wait_for_paths(frame, minimum: int, timeout_ms: int = DRAW_TIMEOUT, *,
                   rerendering: bool = False) -> int:
    """Wait until the map in ``frame`` has drawn ``minimum`` paths or more; how many it has.

    With ``rerendering`` a failing count (the iframe is being replaced by a re-render, so a
    frame taken from it is detached) counts as no paths and the wait goes on.
    """
    deadline = time.monotonic() + timeout_ms / 1000
    n = 0
    while time.monotonic() < deadline:
        try:
            n = frame.locator("path.leaflet-interactive").count()
        except Exception:
            if not rerendering:
                raise
            n = 0
        if n >= minimum:
            return n
        time.sleep(0.25)
    raise AssertionError(f"only {n} drawn paths in the map, expected at least {minimum}")


def settle(page) -> None:
    """Wait until Streamlit has finished the script run (no 'running' indicator)."""
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=DRAW_TIMEOUT)


def wait_metric(page, label: str, value: int | str) -> None:
    """Wait until a metric whose text includes ``label`` shows ``value`` (thousands commas
    dropped)."""
    page.wait_for_function(
        "([label, want]) => [...document.querySelectorAll('[data-testid=stMetric]')].some("
        "m => m.innerText.includes(label) && m.querySelector('[data-testid=stMetricValue]')"
        ".innerText.replace(/,/g, '') === want)",
        arg=[label, str(value)], timeout=DRAW_TIMEOUT)


def screenshot(page, name: str, prefix: str = "", *, max_height: int = 4000,
               relayout_ms: int = 800) -> Path:
    """Full-page screenshot ``prefix + name`` in :func:`screenshot_dir`; its path.

    Streamlit scrolls inside its main pane, so the viewport grows to the content (up to
    ``max_height``) and waits ``relayout_ms`` for maps and charts to lay out again; it is put
    back to :data:`VIEWPORT` after.
    """
    page.mouse.move(0, 0)  # no tooltip in the picture
    page.evaluate("() => document.activeElement && document.activeElement.blur()")
    height = page.evaluate(
        "() => Math.max(...[...document.querySelectorAll('[data-testid=stMain], "
        "[data-testid=stMainBlockContainer]')].map(e => e.scrollHeight), 600)")
    page.set_viewport_size({"width": VIEWPORT["width"],
                            "height": min(int(height) + 40, max_height)})
    page.wait_for_timeout(relayout_ms)
    folder = screenshot_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{prefix}{name}"
    page.screenshot(path=str(path), full_page=True)
    page.set_viewport_size(dict(VIEWPORT))
    return path


@pytest.fixture(scope="module", name="browser")
def browser_fixture():
    """Headless Chromium for the whole module (:func:`launch_browser`)."""
    with launch_browser() as b:
        yield b


@pytest.fixture(name="page")
def page_fixture(browser, server):
    """A page that may only talk to the app the module's ``server`` fixture started: anything
    else is aborted and recorded (:func:`new_blocked_page`). Downloads are accepted (which is
    Playwright's default anyway)."""
    with new_blocked_page(browser, server, accept_downloads=True) as p:
        yield p

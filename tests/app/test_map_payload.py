"""How many bytes a map view costs (#13.4): the map page and the hot-spot page in headless
Chromium, counting what the browser receives over Streamlit's websocket and over HTTP for the
first view and for one change on the page (a street chosen, another category, the trend
colouring). Streamlit's own front end (``/static/``: about 4.5 MB of JavaScript and fonts on the
first visit, cached afterwards) is reported apart as ``shell``; the view is everything else.

Measured, not timed: the figures are bytes. On the small demo each view must stay under
:data:`VIEW_LIMIT`. ``GRIDGOV_BROWSER_PROJECT=DIR`` measures another project (the full demo,
say) and only reports its figures. Each test prints a table and writes it as JSON to
``<screenshot dir>/[demo-]map-payload-<page>.json``; ``geometry`` says whether the view's
websocket messages carried GeoJSON coordinates (a change that only restyles the map should not
have to). Websocket payloads are counted after inflating (Playwright sees messages, not wire
frames); ``deflate`` is what the same bytes take compressed as one stream, an estimate of the
wire size when the server compresses (``gridgov app`` turns websocket compression on, the plain
``streamlit run`` here does not).
"""
from __future__ import annotations

import json
import re
import zlib
from urllib.parse import urlsplit

import pytest

from tests.app import browser_kit as kit
from tests.app.browser_kit import browser_fixture  # noqa: F401  (fixture)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

VIEW_LIMIT = 1_000_000  # bytes per view on the small demo (issue #13.4: about 1 MB per view)
SETTLE_MS = 500  # after the script run ends, trailing websocket messages are let in
#: Streamlit's own front end (its JavaScript bundle, CSS and fonts, hashed names, cached by the
#: browser after the first visit): counted apart as ``shell``, not as the view's payload.
SHELL_PATHS = ("/static/",)
#: Geometry in a view's messages: GeoJSON, or polygons packed by
#: ``app_pages._mapbuild.pack_features`` (``{"q":100000,"t":[…``), inside the component's JSON
#: arguments (quotes escaped) or as plain JSON.
GEOJSON = re.compile(rb'\\*"coordinates\\*"')
PACKED = re.compile(rb'\\*"q\\*":\d+,\\*"t\\*":\[')

target = kit.target_fixture("small_demo")


@pytest.fixture(scope="module")
def server(target, tmp_path_factory):
    with kit.start_app(target, tmp_path_factory.mktemp("streamlit-payload")) as url:
        yield url


class Meter:
    """Bytes the page receives: websocket messages of Streamlit's stream and HTTP responses
    (bodies as sent, headers included), counted from the last :meth:`take`."""

    def __init__(self, page):
        self.frames: list[bytes] = []
        self.sent = 0
        self.requests: list = []
        page.on("websocket", self._socket)
        page.on("requestfinished", lambda r: self.requests.append(r))

    def _socket(self, ws) -> None:
        if "_stcore/stream" not in ws.url:
            return
        ws.on("framereceived", lambda p: self.frames.append(p if isinstance(p, bytes)
                                                            else p.encode("utf-8")))
        ws.on("framesent", lambda p: setattr(self, "sent", self.sent + len(p)))

    def take(self, name: str) -> dict:
        frames, requests = self.frames, self.requests
        self.frames, self.requests, sent, self.sent = [], [], self.sent, 0
        http = shell = http_files = 0
        for r in requests:
            sizes = r.sizes()
            body = max(sizes.get("responseBodySize", 0), 0)
            size = body + max(sizes.get("responseHeadersSize", 0), 0)
            if urlsplit(r.url).path.startswith(SHELL_PATHS):
                shell += size
            else:
                http += size
                http_files += body > 0
        blob = b"".join(frames)
        ws = len(blob)
        return {"view": name, "websocket": ws, "messages": len(frames),
                "deflate": len(zlib.compress(blob, 6)) if blob else 0,
                "http": http, "http_files": http_files, "total": ws + http, "shell": shell,
                "largest_message": max((len(f) for f in frames), default=0),
                "geometry": GEOJSON.search(blob) is not None or PACKED.search(blob) is not None,
                "sent": sent}


def _report(page_name: str, rows: list[dict]) -> None:
    print(f"\nmap payload, {page_name} ({'other project' if kit.other_project() else 'small demo'})")
    print(f"{'view':<28}{'websocket':>11}{'deflate':>10}{'http':>10}{'total':>11}{'geometry':>10}"
          f"{'shell':>11}")
    for r in rows:
        print(f"{r['view']:<28}{r['websocket']:>11,}{r['deflate']:>10,}{r['http']:>10,}"
              f"{r['total']:>11,}{str(r['geometry']):>10}{r['shell']:>11,}")
    folder = kit.screenshot_dir()
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / f"{kit.demo_prefix()}map-payload-{page_name}.json"
    out.write_text(json.dumps(rows, indent=1), encoding="utf-8")


def _check(rows: list[dict]) -> None:
    for r in rows:
        assert r["messages"] > 0 and r["websocket"] > 1_000, r  # the view was measured
    if kit.other_project():
        return  # figures only: the bound is the small demo's
    for r in rows:
        assert r["total"] < VIEW_LIMIT, f"{r['view']}: {r['total']:,} bytes > {VIEW_LIMIT:,}"


def _wait_view(page) -> None:
    kit.settle(page)
    page.wait_for_timeout(SETTLE_MS)
    kit.settle(page)


def _wait_legend(page, text: str) -> None:
    """Wait until the map in the iframe has ``text`` in its legend (it is redrawn)."""
    from playwright.sync_api import Error as PlaywrightError

    seen = ""
    for _ in range(kit.DRAW_TIMEOUT // 250):
        legend = page.frame_locator(kit.IFRAME).locator(".gridgov-legend")
        try:
            seen = legend.inner_text(timeout=2000) if legend.count() == 1 else ""
        except PlaywrightError:  # the iframe is being replaced
            seen = ""
        if text in seen:
            return
        page.wait_for_timeout(250)
    raise AssertionError(f"the map legend never showed {text!r} (last seen: {seen!r})")


def _street(target) -> tuple[str, str, int]:
    with kit.project_db(target) as con:
        code, name = con.execute(
            "SELECT street_code, street_name FROM streets ORDER BY street_code LIMIT 1").fetchone()
        n = con.execute("SELECT count(*) FROM communities").fetchone()[0]
    return code, name, int(n)


def _category(target) -> str:
    with kit.project_db(target) as con:
        return con.execute(
            "SELECT category FROM hotspots WHERE period = 'all' AND category NOT IN ('all', 'any') "
            "GROUP BY category ORDER BY count(*) FILTER (WHERE hotspot_class LIKE 'hot%') DESC, "
            "category LIMIT 1").fetchone()[0]


def test_map_page_payload(browser, server, target):  # noqa: F811
    code, name, n_communities = _street(target)
    with kit.new_blocked_page(browser, server) as page:
        meter = Meter(page)
        frame = kit.open_map(page, server + "/map", "地图")
        before = kit.wait_for_paths(frame, n_communities)
        _wait_view(page)
        rows = [meter.take("map: first view")]

        page.locator("[data-testid='stMain'] [data-testid='stSelectbox']").first.click()
        page.get_by_role("option", name=f"{name} ({code})").click()
        frame = page.frame_locator(kit.IFRAME)
        kit.wait_for_paths(frame, before + 1, rerendering=True)  # its buildings drawn
        _wait_view(page)
        rows.append(meter.take("map: one street chosen"))
        assert page.external_requests == []
    _report("map", rows)
    _check(rows)


def test_hotspot_page_payload(browser, server, target):  # noqa: F811
    from app_pages.i18n import STRINGS

    raw = _category(target)
    category = STRINGS.get(f"hs.cat.{raw}", (raw,))[0]  # the option's fixed bilingual label
    with kit.project_db(target) as con:
        units = int(con.execute("SELECT count(*) FROM hotspot_units").fetchone()[0])
    with kit.new_blocked_page(browser, server) as page:
        meter = Meter(page)
        frame = kit.open_map(page, server + "/hotspots", "风险热点与风险预警")
        kit.wait_for_paths(frame, units)
        _wait_view(page)
        rows = [meter.take("hotspots: first view")]

        page.locator("[data-testid='stMain'] [data-testid='stSelectbox']").first.click()
        page.get_by_role("option", name=category).click()
        _wait_legend(page, category)  # the map redrawn for that category
        kit.wait_for_paths(page.frame_locator(kit.IFRAME), units, rerendering=True)
        _wait_view(page)
        rows.append(meter.take("hotspots: another category"))

        page.get_by_text("按时空趋势着色").first.click()
        _wait_legend(page, "时空趋势类别")  # the map redrawn by trend class
        kit.wait_for_paths(page.frame_locator(kit.IFRAME), units, rerendering=True)
        _wait_view(page)
        rows.append(meter.take("hotspots: trend colouring"))
        assert page.external_requests == []
    _report("hotspots", rows)
    _check(rows)

"""How many bytes a map view costs (#13.4): the map page and the hot-spot page in headless
Chromium, counting what the browser receives over Streamlit's websocket and over HTTP for the
first view and for each change on the page (a street chosen; on the hot-spot page another
category, another month, the trend colouring, the density and fishnet layers). Streamlit's own front end (``/static/``: about 4.5 MB of JavaScript and fonts on the
first visit, cached afterwards) is reported apart as ``shell``; the view is everything else.

Measured, not timed: the figures are bytes. Each view must stay under :data:`VIEW_LIMIT`, and
on the hot-spot page a change that only restyles (category, month, colouring, density layer)
must send no geometry and not the map again (``map``: the view's messages carried the map's
script), and the map's iframe must stay the same one (streamlit-folium did not rebuild it). ``GRIDGOV_BROWSER_PROJECT=DIR`` measures another project (the full demo,
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
from pathlib import Path
from urllib.parse import urlsplit

import pandas as pd
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
#: The map itself (streamlit-folium's script of a folium map) in a view's messages.
MAP_SCRIPT = re.compile(rb"var map_div = L\.map\(")

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
                "map": MAP_SCRIPT.search(blob) is not None,
                "sent": sent}


def _report(page_name: str, rows: list[dict], project: str | None = None) -> None:
    project = project or ("other project" if kit.other_project() else "small demo")
    print(f"\nmap payload, {page_name} ({project})")
    print(f"{'view':<34}{'websocket':>11}{'deflate':>10}{'http':>10}{'total':>11}{'geometry':>10}"
          f"{'map':>6}{'shell':>11}")
    for r in rows:
        print(f"{r['view']:<34}{r['websocket']:>11,}{r['deflate']:>10,}{r['http']:>10,}"
              f"{r['total']:>11,}{str(r['geometry']):>10}{str(r['map']):>6}{r['shell']:>11,}")
    folder = kit.screenshot_dir()
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / f"{kit.demo_prefix()}map-payload-{page_name}.json"
    out.write_text(json.dumps(rows, indent=1), encoding="utf-8")


def _check(rows: list[dict]) -> None:
    for r in rows:
        assert r["messages"] > 0 and r["websocket"] > 1_000, r  # the view was measured
    for r in rows:
        assert r["total"] < VIEW_LIMIT, f"{r['view']}: {r['total']:,} bytes > {VIEW_LIMIT:,}"


def _check_restyles(rows: list[dict], restyles: list[str], new_layers: list[str]) -> None:
    """The first view sent the map; a restyle sent neither geometry nor the map, nor a file
    over HTTP (streamlit-folium's iframe and its scripts stay); a new layer sent its own cells
    but not the map."""
    first = rows[0]
    assert first["geometry"] and first["map"], first
    by_view = {r["view"]: r for r in rows}
    for name in restyles:
        r = by_view[name]
        assert not r["geometry"], f"{name}: geometry re-sent"
        assert not r["map"], f"{name}: the map re-sent"
        assert r["http_files"] == 0, f"{name}: {r['http_files']} files fetched (iframe rebuilt?)"
    for name in new_layers:
        r = by_view[name]
        assert not r["map"], f"{name}: the map re-sent"
        assert r["websocket"] < first["websocket"], r


def _wait_view(page) -> None:
    kit.settle(page)
    page.wait_for_timeout(SETTLE_MS)
    kit.settle(page)


def _wait_legend(page, text: str, absent: str | None = None) -> None:
    """Wait until the map in the iframe has ``text`` in its legend (and not ``absent``)."""
    from playwright.sync_api import Error as PlaywrightError

    seen = ""
    for _ in range(kit.DRAW_TIMEOUT // 250):
        legend = page.frame_locator(kit.IFRAME).locator(".gridgov-legend")
        try:
            seen = legend.inner_text(timeout=2000) if legend.count() == 1 else ""
        except PlaywrightError:  # the iframe is being replaced
            seen = ""
        if text in seen and (absent is None or absent not in seen):
            return
        page.wait_for_timeout(250)
    raise AssertionError(f"the map legend never showed {text!r} without {absent!r} "
                         f"(last seen: {seen!r})")


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
    from app_pages._mapbuild import MAP_MAX_COMMUNITIES

    code, name, n_communities = _street(target)
    with kit.project_db(target) as con:
        n_streets = int(con.execute("SELECT count(*) FROM streets").fetchone()[0])
    # a large project (level of detail) draws its streets first, not its communities
    first = n_streets if n_communities > MAP_MAX_COMMUNITIES else n_communities
    with kit.new_blocked_page(browser, server) as page:
        meter = Meter(page)
        frame = kit.open_map(page, server + "/map", "地图")
        before = kit.wait_for_paths(frame, first)
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


def _layers(target) -> tuple[bool, bool]:
    """Whether the project has a density surface and fishnet cells (else the toggles are off)."""
    with kit.project_db(target) as con:
        names = {r[0] for r in con.execute(
            "SELECT table_name FROM information_schema.tables").fetchall()}

        def rows(table: str) -> bool:
            return table in names and con.execute(
                f'SELECT count(*) FROM "{table}"').fetchone()[0] > 0

        return rows("hotspot_density"), rows("hotspot_fishnet")


def _map_frame(page):
    """The streamlit-folium iframe's Frame (to mark its window and find the mark again)."""
    return page.locator(kit.IFRAME).element_handle().content_frame()


def test_hotspot_page_payload(browser, server, target):  # noqa: F811
    from app_pages._hotspots import MAP_MAX_UNITS
    from app_pages.i18n import STRINGS

    with kit.project_db(target) as con:
        if int(con.execute("SELECT count(*) FROM hotspot_units").fetchone()[0]) > MAP_MAX_UNITS:
            pytest.skip("more units than one map carries: the level-of-detail test measures it")
    raw = _category(target)
    category = STRINGS.get(f"hs.cat.{raw}", (raw,))[0]  # the option's fixed bilingual label
    with kit.project_db(target) as con:
        units = int(con.execute("SELECT count(*) FROM hotspot_units").fetchone()[0])
        last = con.execute("SELECT max(period) FROM hotspots WHERE period <> 'all' "
                           "AND category = ?", [raw]).fetchone()[0]
    has_kde, has_net = _layers(target)
    restyles, new_layers = [], []
    with kit.new_blocked_page(browser, server) as page:
        meter = Meter(page)
        frame = kit.open_map(page, server + "/hotspots", "风险热点与风险预警")
        kit.wait_for_paths(frame, units)
        _wait_legend(page, "冷热点类别")  # the styles arrived (the legend is theirs)
        _wait_view(page)
        rows = [meter.take("hotspots: first view")]
        _map_frame(page).evaluate("() => { window.__payloadMark = 'same map'; }")

        def change(name: str, legend: str, absent: str | None = None, *,
                   restyle: bool = True) -> None:
            _wait_legend(page, legend, absent)
            kit.wait_for_paths(page.frame_locator(kit.IFRAME), units)
            _wait_view(page)
            rows.append(meter.take(name))
            (restyles if restyle else new_layers).append(name)

        page.locator("[data-testid='stMain'] [data-testid='stSelectbox']").first.click()
        page.get_by_role("option", name=category).click()
        change("hotspots: another category", category)

        slider = page.get_by_role("slider").first  # the month slider of that category
        slider.focus()
        slider.press("End")
        change("hotspots: last month", str(last))

        page.get_by_text("按时空趋势着色").first.click()
        change("hotspots: trend colouring on", "时空趋势类别")
        page.get_by_text("按时空趋势着色").first.click()
        change("hotspots: trend colouring off", "冷热点类别", "时空趋势类别")

        if has_kde:
            page.get_by_text("叠加核密度表面").first.click()
            change("hotspots: density layer on", "核密度")
            page.get_by_text("叠加核密度表面").first.click()
            change("hotspots: density layer off", "冷热点类别", "核密度")
        if has_net:
            page.get_by_text("叠加等面积格网").first.click()
            with kit.project_db(target) as con:
                cells = int(con.execute(
                    "SELECT count(*) FROM hotspot_fishnet WHERE category = ? "
                    "AND coalesce(hotspot_class, 'none') <> 'none'",
                    ["all" if raw == "any" else raw]).fetchone()[0])
            kit.wait_for_paths(page.frame_locator(kit.IFRAME), units + cells)  # its cells drawn
            change("hotspots: fishnet layer on", "冷热点类别", restyle=False)

        # the same iframe, never rebuilt: the window keeps what was set on it
        assert _map_frame(page).evaluate("() => window.__payloadMark") == "same map"
        assert page.external_requests == []
        assert page.page_errors == []
    _report("hotspots", rows)
    _check(rows)
    _check_restyles(rows, restyles, new_layers)


# --------------------------------------------------------------------------------------------
# level of detail: a project with more units than one map may carry (#13.4)


@pytest.fixture(scope="module")
def lod_target(tmp_path_factory) -> dict:
    """A project above ``MAP_MAX_UNITS``: GRIDGOV_BROWSER_PROJECT when it is one (a
    province, say), else 4,800 generated grids in 12 streets (:mod:`tests.app.lod_project`).
    Its units, streets with units (code order), their names and unit counts, read back."""
    from app_pages._hotspots import MAP_MAX_UNITS
    from pipelines.results_maps import street_outlines, unit_streets
    from tests.app.lod_project import build_lod_project

    project = kit.other_project()
    if project:
        with kit.project_db(project) as con:
            big = int(con.execute("SELECT count(*) FROM hotspot_units").fetchone()[0]) \
                > MAP_MAX_UNITS
        if not big:
            pytest.skip("GRIDGOV_BROWSER_PROJECT has no more units than one map carries")
        folder, label = kit.target_project(Path(project)), "other project"
    else:
        folder = build_lod_project(tmp_path_factory.mktemp("lod") / "lod-project").dir
        label = "generated"
    with kit.project_db(folder) as con:
        by_unit = unit_streets(con)
        outlines = street_outlines(con)
        units = int(con.execute("SELECT count(*) FROM hotspot_units").fetchone()[0])
    per_street = pd.Series(list(by_unit.values())).value_counts().to_dict()
    streets = [c for c in outlines["street_code"] if c in per_street]
    names = dict(zip(outlines["street_code"], outlines["street_name"]))
    return {"dir": folder, "units": units, "streets": streets, "all_streets": len(outlines),
            "names": names, "per_street": per_street,
            "label": f"{label}: {units:,} units, {len(outlines):,} streets"}


@pytest.fixture(scope="module")
def lod_server(lod_target, tmp_path_factory):
    with kit.start_app(lod_target["dir"], tmp_path_factory.mktemp("streamlit-lod")) as url:
        yield url


def test_hotspot_page_level_of_detail_payload(browser, lod_server, lod_target):  # noqa: F811
    """Above the limit the first view carries the streets (not every unit), a chosen street (the
    one with the most units) its own units; each view stays under 1 MB, and a change of
    category, month or colouring at either level sends no geometry and not the map again."""
    from app_pages._hotspots import MAP_MAX_UNITS
    from app_pages.i18n import STRINGS

    project = lod_target["dir"]
    assert lod_target["units"] > MAP_MAX_UNITS
    n_streets = lod_target["all_streets"]
    street = max(lod_target["streets"], key=lambda c: (lod_target["per_street"][c], c))
    option = f"{lod_target['names'].get(street) or street} ({street})"
    n_units = lod_target["per_street"][street]
    raw = _category(project)
    category = STRINGS.get(f"hs.cat.{raw}", (raw,))[0]
    with kit.project_db(project) as con:
        last = con.execute("SELECT max(period) FROM hotspots WHERE period <> 'all' "
                           "AND category = ?", [raw]).fetchone()[0]
    has_kde, has_net = _layers(project)
    every = STRINGS["hs.category_all"][0]
    restyles, new_layers, rows = [], [], []
    with kit.new_blocked_page(browser, lod_server) as page:
        meter = Meter(page)
        frame = kit.open_map(page, lod_server + "/hotspots", "风险热点与风险预警")
        kit.wait_for_paths(frame, n_streets)
        _wait_legend(page, "街道：热点单元占比")
        _wait_view(page)
        rows.append(meter.take("streets: first view"))
        _map_frame(page).evaluate("() => { window.__payloadMark = 'streets map'; }")

        def change(name: str, legend: str, absent: str | None = None, *,
                   restyle: bool = True) -> None:
            _wait_legend(page, legend, absent)
            _wait_view(page)
            rows.append(meter.take(name))
            (restyles if restyle else new_layers).append(name)

        def choose(nth: int, label: str, typed: str | None = None) -> None:
            page.locator("[data-testid='stMain'] [data-testid='stSelectbox']").nth(nth).click()
            if typed:  # a long list shows only the options in view: filter it first
                page.keyboard.type(typed)
            page.get_by_role("option", name=label).click()

        def month_end() -> None:
            slider = page.get_by_role("slider").first
            slider.focus()
            slider.press("End")

        choose(0, category)
        change("streets: another category", category)
        month_end()
        change("streets: last month", str(last))
        page.get_by_text("按时空趋势着色").first.click()
        change("streets: trend colouring on", "街道：呈热点趋势的单元占比")
        page.get_by_text("按时空趋势着色").first.click()
        change("streets: trend colouring off", "街道：热点单元占比", "呈热点趋势")
        if has_kde:
            page.get_by_text("叠加核密度表面").first.click()
            change("streets: density layer on", "核密度")
            page.get_by_text("叠加核密度表面").first.click()
            change("streets: density layer off", "街道：热点单元占比", "核密度")
        assert _map_frame(page).evaluate("() => window.__payloadMark") == "streets map"
        assert page.frame_locator(kit.IFRAME).locator("path.leaflet-interactive").count() \
            == n_streets

        choose(1, option, street)
        n = kit.wait_for_paths(page.frame_locator(kit.IFRAME), n_units, rerendering=True)
        assert n == n_units  # that street's units only
        _wait_legend(page, "冷热点类别")
        _wait_view(page)
        rows.append(meter.take("one street's units"))
        _map_frame(page).evaluate("() => { window.__payloadMark = 'street map'; }")

        page.get_by_text("按时空趋势着色").first.click()
        change("street: trend colouring on", "时空趋势类别")
        page.get_by_text("按时空趋势着色").first.click()
        change("street: trend colouring off", "冷热点类别", "时空趋势类别")
        choose(0, every)
        change("street: another category", every)
        if has_net:
            page.get_by_text("叠加等面积格网").first.click()
            change("street: fishnet layer on", "冷热点类别", restyle=False)
        assert _map_frame(page).evaluate("() => window.__payloadMark") == "street map"
        assert page.external_requests == []
        assert page.page_errors == []
    _report("hotspots-lod", rows, lod_target["label"])
    _check(rows)
    _check_restyles(rows, restyles, new_layers)
    street_view = next(r for r in rows if r["view"] == "one street's units")
    assert street_view["geometry"] and street_view["map"], street_view

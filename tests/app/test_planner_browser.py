"""The planner page (网格规划) in a real headless Chromium, every request off 127.0.0.1 blocked.

Starts ``streamlit run app.py`` on a free port against the small demo city with the grids
stage run, opens ``/planner``, picks a community, tightens the norm (the current plan's
grids above it are hatched), re-draws, waits for the proposal map, clicks a unit on it (it
becomes the selected unit), saves the proposal as a new plan and checks the ``plans`` table
— all without one external request. A second test turns on "map clicks add to the
selection", clicks two units, moves both to a neighbouring grid in one step and undoes it in
one step. ``GRIDGOV_SCREENSHOTS=1`` saves the page (after the
re-draw and the click) as ``docs/img/planner.png``.
"""
from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest

from tests.app import browser_kit as kit
from tests.app.browser_kit import (  # noqa: F401  (the browser and page fixtures)
    DRAW_TIMEOUT,
    IFRAME,
    browser_fixture,
    page_fixture,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

COMMUNITY = "赛马场社区居委会"  # 150102001002: about ten grids, some above 400 households
CODE = "150102001002"


#: A point just inside a basic grid next to a vertex it shares with another basic grid (so the
#: unit under it most likely touches that grid), in the map's container pixels.
CLICK_NEAR_SHARED_EDGE = """() => {
    const grids = [];
    for (const k in window.map._layers) {
        const l = window.map._layers[k];
        const p = l.feature && l.feature.properties;
        if (p && p.grid_id && l.options.interactive !== false && p.grid_id.slice(-3) < "900") {
            grids.push(l);
        }
    }
    const rings = (l) => {
        const g = l.feature.geometry;
        return g.type === "Polygon" ? [g.coordinates[0]] : g.coordinates.map(c => c[0]);
    };
    const owners = new Map();
    grids.forEach((l, i) => rings(l).forEach(r => r.forEach(([x, y]) => {
        const key = x + "," + y;
        if (!owners.has(key)) { owners.set(key, new Set()); }
        owners.get(key).add(i);
    })));
    for (let i = 0; i < grids.length; i++) {
        const c = window.map.latLngToContainerPoint(grids[i].getBounds().getCenter());
        for (const r of rings(grids[i])) {
            for (const [x, y] of r) {
                if (owners.get(x + "," + y).size < 2) { continue; }
                const v = window.map.latLngToContainerPoint([y, x]);
                const px = v.x + 0.12 * (c.x - v.x), py = v.y + 0.12 * (c.y - v.y);
                const hit = document.elementFromPoint(px, py);
                const at = window.map.containerPointToLatLng([px, py]);
                if (hit && hit.classList.contains("leaflet-interactive")
                        && grids[i].getBounds().contains(at)) {
                    return [px, py];
                }
            }
        }
    }
    const c = window.map.latLngToContainerPoint(grids[0].getBounds().getCenter());
    return [c.x, c.y];
}"""


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """The small demo city with the grids stage run (this module's own copy: it is written)."""
    from gridgov.demo_city import build_demo
    from pipelines.run import run_project

    root = tmp_path_factory.mktemp("planner-browser") / "demo-small"
    build_demo(root, size="small")
    run_project(root, stages=["grids"])
    return root


@pytest.fixture(scope="module")
def server(project, tmp_path_factory):
    """``streamlit run app.py`` on 127.0.0.1:<free port>; its process group is stopped after."""
    with kit.start_app(project, tmp_path_factory.mktemp("streamlit-planner")) as url:
        yield url


def _settle(page) -> None:
    """Wait until Streamlit has finished the script run: no 'running' indicator and no stale
    elements for a while (the indicator only shows up after a delay)."""
    page.wait_for_timeout(400)
    page.wait_for_function(
        """() => {
            const busy = document.querySelector('[data-testid="stStatusWidget"]')
                || document.querySelector('[data-stale="true"]');
            const now = performance.now();
            if (busy) { window.__gg_quiet = now; return false; }
            if (!window.__gg_quiet) { window.__gg_quiet = now; }
            return now - window.__gg_quiet > 700;
        }""", timeout=DRAW_TIMEOUT, polling=100)
    page.evaluate("() => { window.__gg_quiet = undefined; }")


def _map_frame(page, index: int):
    """The index-th streamlit-folium iframe (0: current plan, 1: proposal) and its frame."""
    handle = page.locator(IFRAME).nth(index)
    handle.wait_for(timeout=DRAW_TIMEOUT)
    return handle, handle.element_handle().content_frame()


def _only(locator, timeout_ms: int = DRAW_TIMEOUT):
    """The locator once it matches exactly one element (stale copies gone after a re-run)."""
    deadline = time.monotonic() + timeout_ms / 1000
    while locator.count() != 1 and time.monotonic() < deadline:
        time.sleep(0.2)
    return locator


def _metric(page, label: str) -> str:
    return page.locator("[data-testid='stMetric']", has_text=label).first.locator(
        "[data-testid='stMetricValue']").inner_text()


def _click_unit(page, tries: int = 3) -> None:
    """Click a unit of the proposal map (page coordinates taken just before the click) and
    wait for the page to report it selected; a click lost to a re-layout is repeated."""
    for attempt in range(tries):
        handle, proposal = _map_frame(page, 1)
        handle.scroll_into_view_if_needed()
        _settle(page)
        x, y = proposal.evaluate(CLICK_NEAR_SHARED_EDGE)
        box = handle.bounding_box()
        page.mouse.click(box["x"] + x, box["y"] + y)
        try:
            page.get_by_text("属于网格").first.wait_for(timeout=10_000)
            return
        except Exception:
            if attempt == tries - 1:
                raise
            print(f"map click {attempt + 1} not registered; clicking again")


def _plans(project: Path):
    from pipelines.db import read_table

    with kit.project_db(project) as con:
        return read_table(con, "SELECT plan_id, parent_plan_id, author, note, source, is_current "
                               "FROM plans ORDER BY plan_id")


def test_planner_redraw_click_and_save_offline(page, server, project):
    page.goto(server + "/planner")
    page.get_by_role("heading", name="网格规划").wait_for(timeout=DRAW_TIMEOUT)
    _, current = _map_frame(page, 0)
    current.locator(".leaflet-container").wait_for(timeout=DRAW_TIMEOUT)
    kit.wait_for_paths(current, 3, rerendering=True)  # the first community's grids
    _settle(page)

    # pick the community
    page.locator("[data-testid='stSelectbox']", has_text="社区").first.click()
    page.get_by_role("option", name=f"{COMMUNITY} ({CODE})").click()
    page.wait_for_function(
        "() => [...document.querySelectorAll('[data-testid=stMetric]')].some(m => "
        "m.innerText.includes('户数') && m.innerText.includes('3,965'))", timeout=DRAW_TIMEOUT)
    _settle(page)
    from pipelines import results

    with kit.project_db(project) as con:
        grids = results.plan_grids(con)
    n_basic = int(((grids["community_code"] == CODE) & (grids["grid_type"] == "basic")).sum())
    assert _metric(page, "现行基础网格") == str(n_basic)

    # a tighter norm: the current plan's grids above 400 households are hatched
    box = _only(page.get_by_label("每格最多户数"))
    box.fill("400")
    box.press("Enter")
    _settle(page)
    _, current = _map_frame(page, 0)
    deadline = time.monotonic() + DRAW_TIMEOUT / 1000
    while time.monotonic() < deadline and current.locator("path[fill^='url(#']").count() == 0:
        time.sleep(0.25)
        _, current = _map_frame(page, 0)
    assert current.locator("path[fill^='url(#']").count() >= 1

    # re-draw: the proposal map is drawn anew, the figures fill in
    _only(page.get_by_role("button", name="重新划分", exact=True)).click()
    page.get_by_text("已生成方案").first.wait_for(timeout=DRAW_TIMEOUT)
    _settle(page)
    _, proposal = _map_frame(page, 1)
    proposal.locator(".leaflet-container").wait_for(timeout=DRAW_TIMEOUT)
    n = kit.wait_for_paths(proposal, 10, rerendering=True)
    assert n >= 11  # ten basic grids or more, and the dedicated grid
    assert proposal.locator("path[fill^='url(#']").count() == 0  # nothing outside the norm
    assert _metric(page, "方案户数达标率") == "100%"
    assert int(_metric(page, "调整户数").replace(",", "")) > 0
    # the re-draw time is shown as a number of seconds (its speed is measured in bench/, not here)
    assert re.fullmatch(r"\d+(\.\d+)?", _metric(page, "划分用时").split()[0])

    # click a unit on the proposal map: it becomes the selected unit
    _click_unit(page)
    _settle(page)
    _, proposal = _map_frame(page, 1)
    kit.wait_for_paths(proposal, 10, rerendering=True)
    if os.environ.get("GRIDGOV_SCREENSHOTS"):
        page.wait_for_timeout(1500)
    kit.screenshot(page, "planner.png", max_height=6000, relayout_ms=2000)  # maps re-layout

    # reassign the selected unit: applied, or refused with the reason (never silently)
    move = page.get_by_role("button", name="调整", exact=True)
    if move.count():
        _settle(page)
        _only(move).click()
        try:
            page.wait_for_function(
                "() => [...document.querySelectorAll('[data-testid=stAlert]')].some(a => "
                "a.innerText.includes('已将单元') || a.innerText.includes('无法调整'))",
                timeout=DRAW_TIMEOUT)
        except Exception:
            alerts = page.locator("[data-testid=stAlert]").all_inner_texts()
            raise AssertionError(f"no outcome of the move; messages on the page: {alerts}")
        _settle(page)

    # save as a new plan
    page.get_by_label("编制人").fill("王工")
    page.get_by_label("说明").fill("按 300–400 户重新划分")
    page.get_by_label("说明").press("Enter")
    _settle(page)
    before = _plans(project)
    parent = before.loc[before["is_current"].astype(bool), "plan_id"].iloc[0]
    from pipelines.plans import new_plan_id

    with kit.project_db(project) as con:
        new_id = new_plan_id(con)
    _only(page.get_by_role("button", name="另存为新方案")).click()
    page.get_by_text(f"已保存新方案 {new_id}").first.wait_for(timeout=DRAW_TIMEOUT)
    _settle(page)
    assert _metric(page, "当前方案") == new_id

    rows = _plans(project)
    assert rows["plan_id"].tolist() == before["plan_id"].tolist() + [new_id]
    new = rows.set_index("plan_id").loc[new_id]
    assert new["parent_plan_id"] == parent and bool(new["is_current"])
    assert new["author"] == "王工" and new["source"] == "planner"

    assert page.external_requests == [], "the planner page must not need the internet"
    assert page.page_errors == []


FIRST = "150102001001"  # the community the page opens on

#: The proposal map's container pixel of a [lat, lon].
TO_PIXEL = """([lat, lon]) => {
    const p = window.map.latLngToContainerPoint([lat, lon]);
    return [p.x, p.y];
}"""


def _two_units(project: Path):
    """Two units of one basic grid that may move together to a neighbouring basic grid, the
    largest such pair (easy to click), and a point inside each (EPSG:4326: the demo has no
    basemap, the map is drawn in plain WGS 84)."""
    from pipelines.services import planner as pl

    ws = pl.open_workspace(project / "gridgov.duckdb", FIRST)
    lab, area = ws.current, ws.cells.set_index("cell_id").geometry.area
    best = None
    for c in ws.cells["cell_id"]:
        if lab[c] in ws.dedicated:
            continue
        for grid, across in pl.neighbour_grids(ws, lab, c):
            if across or grid in ws.dedicated:
                continue
            for d in ws.cells["cell_id"]:
                if d == c or lab[d] != lab[c]:
                    continue
                size = min(area[c], area[d])
                if (best is None or size > best[0]) and pl.move_cells(ws, lab, [c, d], grid).ok:
                    best = (size, [c, d], grid)
    assert best, "no two-unit move in the demo community"
    _, cells, grid = best
    w = ws.cells_wgs84.set_index("cell_id")
    points = [w.geometry[c].representative_point() for c in cells]
    return cells, [(p.y, p.x) for p in points], grid, lab[cells[0]]


def test_planner_multi_select_move_and_undo(page, server, project):
    """Map clicks add two units to the selection, one move puts both in another grid (the
    page's caption of the selection says so), one undo puts both back."""
    cells, points, grid, src = _two_units(project)
    page.goto(server + "/planner")
    page.get_by_role("heading", name="网格规划").wait_for(timeout=DRAW_TIMEOUT)
    _, proposal = _map_frame(page, 1)
    proposal.locator(".leaflet-container").wait_for(timeout=DRAW_TIMEOUT)
    kit.wait_for_paths(proposal, 3, rerendering=True)
    _settle(page)

    page.get_by_text("点击地图加入多选").click()
    _settle(page)
    for n, point in enumerate(points, 1):
        for attempt in range(3):
            handle, proposal = _map_frame(page, 1)
            handle.scroll_into_view_if_needed()
            _settle(page)
            x, y = proposal.evaluate(TO_PIXEL, list(point))
            box = handle.bounding_box()
            page.mouse.click(box["x"] + x, box["y"] + y)
            try:
                page.get_by_text(f"所选单元现属网格：{src} ×{n}").first.wait_for(timeout=10_000)
                break
            except Exception:
                if attempt == 2:
                    raise
                print(f"map click on unit {n} not registered; clicking again")
    _settle(page)
    chips = page.locator("[data-testid='stMultiSelect']").first.inner_text()
    assert all(c in chips for c in cells), chips

    # one move: both units are now in the target grid
    page.locator("[data-testid='stSelectbox']", has_text="整体调整到网格").first.click()
    page.get_by_role("option", name=grid, exact=True).click()
    _settle(page)
    _only(page.get_by_role("button", name="整体调整", exact=True)).click()
    page.get_by_text(f"已将 2 个单元调整到网格 {grid}").first.wait_for(timeout=DRAW_TIMEOUT)
    page.get_by_text(f"所选单元现属网格：{grid} ×2").first.wait_for(timeout=DRAW_TIMEOUT)
    _settle(page)
    assert _metric(page, "调整楼栋") not in ("—", "0")

    # one undo: both back in their grid, no proposal left
    _only(page.get_by_role("button", name="撤销", exact=True)).click()
    page.get_by_text(f"所选单元现属网格：{src} ×2").first.wait_for(timeout=DRAW_TIMEOUT)
    _settle(page)
    assert _metric(page, "方案户数达标率") == "—"

    assert page.external_requests == [], "the planner page must not need the internet"
    assert page.page_errors == []


def test_planner_zooms_to_the_next_problem_grid(page, server, project):
    """With a tighter norm, "zoom to the next problem grid" centres the proposal map on the
    first grid outside the norm (in code order) and zooms in."""
    from pipelines.services import planner as pl

    ws = pl.open_workspace(project / "gridgov.duckdb", FIRST)
    grids = pl.plan_grids(ws, None, pl.norms_with(ws, 0, 400))
    problems = pl.problem_grids(ws, None, grids)
    assert problems, "the demo community has no grid above 400 households"
    first = problems[0][0]
    x0, y0, x1, y1 = grids[grids["grid_id"] == first].to_crs("EPSG:4326").total_bounds

    page.goto(server + "/planner")
    page.get_by_role("heading", name="网格规划").wait_for(timeout=DRAW_TIMEOUT)
    _, proposal = _map_frame(page, 1)
    proposal.locator(".leaflet-container").wait_for(timeout=DRAW_TIMEOUT)
    kit.wait_for_paths(proposal, 3, rerendering=True)
    _settle(page)
    box = _only(page.get_by_label("每格最多户数"))
    box.fill("400")
    box.press("Enter")
    _settle(page)
    _, proposal = _map_frame(page, 1)
    kit.wait_for_paths(proposal, 3, rerendering=True)
    zoom0 = proposal.evaluate("() => window.map.getZoom()")

    _only(page.get_by_role("button", name="定位下一个问题网格", exact=True)).click()
    page.get_by_text(f"问题网格 {first}").first.wait_for(timeout=DRAW_TIMEOUT)
    _settle(page)
    inside = "([x0, y0, x1, y1]) => { const c = window.map.getCenter(); " \
             "return c.lng >= x0 && c.lng <= x1 && c.lat >= y0 && c.lat <= y1; }"
    deadline = time.monotonic() + DRAW_TIMEOUT / 1000
    ok = False
    while time.monotonic() < deadline and not ok:
        _, proposal = _map_frame(page, 1)
        try:
            ok = proposal.evaluate(inside, [x0, y0, x1, y1])
        except Exception:  # the iframe is being replaced
            ok = False
        time.sleep(0.25)
    assert ok, proposal.evaluate("() => [window.map.getCenter(), window.map.getZoom()]")
    assert proposal.evaluate("() => window.map.getZoom()") > zoom0  # zoomed in on one grid
    assert page.external_requests == [] and page.page_errors == []

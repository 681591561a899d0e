"""The 红黑榜, fusion and plan history pages in a real headless Chromium, every request off
127.0.0.1 blocked.

One ``streamlit run app.py`` on a copy of the small demo city with a second plan saved by the
planner (see ``test_history_page.make_history_project``):

* ``/cases`` shows a red and a black list, and the brief downloads as a PDF (``%PDF``);
* ``/fusion`` draws its map: the department's grids and the unified grids as paths in the
  streamlit-folium iframe;
* ``/history`` restores a plan: the form is filled and submitted, a new plan row appears in
  the database (parent = the restored plan) and on the page.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.app import browser_kit as kit
from tests.app.browser_kit import browser_fixture, page_fixture  # noqa: F401  (fixtures)
from tests.app.test_history_page import make_history_project

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def project(small_demo, tmp_path_factory) -> Path:
    return make_history_project(small_demo, tmp_path_factory.mktemp("pages2-browser"))


@pytest.fixture(scope="module")
def server(project, tmp_path_factory):
    with kit.start_app(project, tmp_path_factory.mktemp("streamlit-pages2")) as url:
        yield url


def _plans(project: Path) -> list[tuple]:
    with kit.project_db(project) as con:
        return con.execute("SELECT plan_id, parent_plan_id, source, author, is_current "
                           "FROM plans ORDER BY plan_id").fetchall()


def test_cases_lists_and_brief(page, server, project):
    page.goto(server + "/cases")
    page.get_by_text("接诉即办红黑榜").first.wait_for(timeout=kit.DRAW_TIMEOUT)
    for heading in ("红榜", "黑榜", "完整排名"):
        page.get_by_role("heading", name=heading).first.wait_for(timeout=kit.DRAW_TIMEOUT)
    tables = page.locator("[data-testid='stDataFrame']")
    tables.nth(2).wait_for(timeout=kit.DRAW_TIMEOUT)  # red, black, the full ranking
    with kit.project_db(project) as con:
        scope, period = "community", None
        period = con.execute(
            "SELECT max(period) FROM case_rates WHERE scope = ? AND period <> 'all' "
            "AND board = 'red'", [scope]).fetchone()[0]
        n_red = con.execute("SELECT count(*) FROM case_rates WHERE scope = ? AND period = ? "
                            "AND board = 'red'", [scope, period]).fetchone()[0]
    rows = tables.first.locator("[role='grid'], table").first.get_attribute("aria-rowcount")
    assert rows is not None and int(rows) == n_red + 1  # + header row
    kit.settle(page)
    kit.screenshot(page, "cases.png", max_height=6000, relayout_ms=1500)

    with page.expect_download(timeout=120_000) as info:
        page.get_by_role("button", name="下载简报 PDF").click()
    download = info.value
    assert download.suggested_filename.endswith(".pdf")
    data = Path(download.path()).read_bytes()
    assert data[:4] == b"%PDF" and len(data) > 10_000
    assert page.external_requests == []
    assert page.page_errors == []


def test_fusion_draws_its_map(page, server, project):
    with kit.project_db(project) as con:
        dept = con.execute("SELECT min(department) FROM grid_fusion").fetchone()[0]
        n_dept = con.execute("SELECT count(*) FROM department_grids WHERE department = ?",
                             [dept]).fetchone()[0]
        n_basic = con.execute("SELECT count(*) FROM grids WHERE grid_type = 'basic'"
                              ).fetchone()[0]
    frame = kit.open_map(page, server + "/fusion", "多网融合：部门网格与统一网格")
    n = kit.wait_for_paths(frame, n_dept + n_basic)
    assert n >= n_dept + n_basic
    legend = frame.locator(".gridgov-legend")
    assert legend.count() == 1 and "融合建议" in legend.inner_text()
    kit.settle(page)
    kit.screenshot(page, "fusion.png", max_height=6000, relayout_ms=1500)
    assert page.external_requests == []
    assert page.page_errors == []


def test_history_restores_a_plan(page, server, project):
    before = _plans(project)
    page.goto(server + "/history")
    page.get_by_text("网格方案历史").first.wait_for(timeout=kit.DRAW_TIMEOUT)
    page.locator("[data-testid='stDataFrame']").first.wait_for(timeout=kit.DRAW_TIMEOUT)
    kit.settle(page)
    page.get_by_label("操作人").fill("王工")
    page.get_by_label("说明").fill("浏览器测试恢复")
    page.get_by_role("button", name="恢复为当前方案").click()
    page.get_by_text("已恢复").first.wait_for(timeout=kit.DRAW_TIMEOUT)

    after = _plans(project)
    assert len(after) == len(before) + 1
    new = [r for r in after if r not in before and r[0] not in {b[0] for b in before}][0]
    plan_id, parent, source, author, current = new
    assert source == "restore" and author == "王工" and current
    assert parent in {b[0] for b in before}
    assert plan_id in page.get_by_text("已恢复").first.inner_text()
    # the new row is in the plan table (a canvas grid: its accessible row count)
    kit.settle(page)
    rows = page.locator("[data-testid='stDataFrame']").first.locator(
        "[role='grid'], table").first.get_attribute("aria-rowcount")
    assert rows is not None and int(rows) == len(after) + 1
    kit.screenshot(page, "history.png", max_height=6000, relayout_ms=1500)
    assert page.external_requests == []
    assert page.page_errors == []


# ---- hostile names ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def hostile(tmp_path_factory) -> tuple:
    from tests.app.hostile import build_hostile_project

    root = tmp_path_factory.mktemp("pages2-hostile") / "hostile-city"
    return root, build_hostile_project(root)


@pytest.fixture(scope="module")
def hostile_server(hostile, tmp_path_factory):
    with kit.start_app(hostile[0], tmp_path_factory.mktemp("streamlit-pages2-hostile")) as url:
        yield url


def test_hostile_names_stay_text(browser, hostile, hostile_server):
    """Script and Markdown payloads in street and community names: no dialog opens, nothing
    loads from elsewhere, and the drill-down's Markdown line shows the name as typed."""
    from tests.app.hostile import IMG

    root, planted = hostile
    with kit.project_db(root) as con:
        code = con.execute("SELECT community_code FROM communities WHERE community_name = ?",
                           [planted["communities"][0]]).fetchone()[0]
    with kit.new_blocked_page(browser, hostile_server) as page:
        dialogs: list[str] = []
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        for path, heading in (("/cases", "接诉即办红黑榜"),
                              ("/fusion", "多网融合：部门网格与统一网格"),
                              ("/history", "网格方案历史")):
            page.goto(hostile_server + path)
            page.get_by_text(heading).first.wait_for(timeout=kit.DRAW_TIMEOUT)
            kit.settle(page)
            page.wait_for_timeout(300)  # an onerror fires once the broken image is tried
        # the drill-down: pick the community whose name is an <img onerror> payload
        page.goto(hostile_server + "/cases")
        page.get_by_text("接诉即办红黑榜").first.wait_for(timeout=kit.DRAW_TIMEOUT)
        kit.settle(page)
        box = page.get_by_role("combobox", name="社区 / Community", exact=True)
        box.wait_for(timeout=kit.DRAW_TIMEOUT)  # the drill-down's (a street is chosen)
        box.click()
        page.keyboard.type(code)
        page.keyboard.press("Enter")
        page.get_by_text(f"{IMG}社区 的网格").first.wait_for(timeout=kit.DRAW_TIMEOUT)
        kit.settle(page)
        page.wait_for_timeout(300)
        assert dialogs == [], dialogs
        assert page.external_requests == []
        assert page.page_errors == []

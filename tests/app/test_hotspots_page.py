"""AppTest checks of the risk hotspot page (风险热点) on the small demo city.

The module fixture builds the small demo once and runs the ``grids`` and ``hotspots`` stages
(grids give ~95 analysis units with hot and cold spots in several categories; ``hotspots``
alone would fall back to 18 square cells). Every figure the page shows is compared with the
stored tables.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from app_pages.i18n import t
from pipelines.db import connect
from tests.app import apptest_kit as kit
from tests.app.apptest_kit import metrics

TIMEOUT = 120
PAGE = "app_pages/hotspots.py"
RISK_PAGE = "app_pages/hotspot_risk.py"
TIME_PAGE = "app_pages/case_timeliness.py"
CLASSES = ("hot_99", "hot_95", "hot_90", "none", "cold_90", "cold_95", "cold_99")
CLASS_COLORS = {  # as drawn by the page
    "hot_99": "#b2182b", "hot_95": "#ef6548", "hot_90": "#fdbb84", "none": "#e4e4e4",
    "cold_90": "#9ecae1", "cold_95": "#4292c6", "cold_99": "#08519c",
}


@pytest.fixture(scope="module")
def hotspot_project(tmp_path_factory) -> Path:
    """The small demo city with the grid engine and the hotspot stage run."""
    from gridgov.demo_city import build_demo
    from pipelines.run import run_project

    root = tmp_path_factory.mktemp("hotspots") / "demo-small"
    build_demo(root, size="small")
    summary = run_project(root, stages=["grids", "hotspots"])
    assert summary["stages"]["hotspots"]["unit_source"] == "grids"
    return root


def query(project: Path, sql: str, params: list | None = None):
    con = connect(project / "gridgov.duckdb", read_only=True)
    try:
        return con.execute(sql, params or []).df()
    finally:
        con.close()


def open_page(project: Path, monkeypatch, lang: str = "zh", page: str = PAGE) -> AppTest:
    return kit.open_page(project, monkeypatch, page, lang=lang, timeout=TIMEOUT)


def as_int(text: str) -> int:
    return int(text.replace(",", "").strip())


def frame_with(at: AppTest, *columns: str):
    for df in at.dataframe:
        if set(columns) <= set(df.value.columns):
            return df.value
    raise AssertionError(f"no table with columns {columns}: "
                         f"{[list(d.value.columns) for d in at.dataframe]}")


def map_args(at: AppTest) -> dict:
    comps = [c for c in at.get("component_instance")
             if c.proto.component_name.endswith("st_folium")]
    assert len(comps) == 1
    return json.loads(comps[0].proto.json_args)


def map_channel(at: AppTest, channel: str) -> dict:
    """What the page sent the hot-spot map on ``channel`` (``app_pages._mapview.send_layer``:
    the map itself stays the same on every rerun, its styles and legend travel apart)."""
    found = [json.loads(json.loads(c.proto.json)) for c in at.get("bidi_component")
             if c.proto.component_name == "gridgov_map_layer"]
    found = [p for p in found if p["map"] == "hotspots" and p["channel"] == channel]
    assert len(found) == 1, found
    return found[0]


def legend(at: AppTest) -> str:
    """The map legend's HTML (the map's ``view`` channel)."""
    return map_channel(at, "view")["legend"]


def fill_colors(at: AppTest, project: Path) -> dict[str, str]:
    """unit id → the fill colour the map's receiver gives it: the ``values`` channel holds one
    class and one trend class index per unit (in the map's order of the units), the ``view``
    channel says which of the two colours the map."""
    from app_pages._hotspots import CLASS_COLORS as PAGE_COLORS
    from app_pages._hotspots import (
        CLASS_ORDER,
        TREND_COLORS,
        TREND_ORDER,
        load_unit_shapes,
    )

    ids = load_unit_shapes(str(project / "gridgov.duckdb"), 0.0, "EPSG:4326")["ids"]
    values = map_channel(at, "values")
    if map_channel(at, "view")["mode"] == "trend":
        assert len(values["trend"]) == len(ids)
        return {g: TREND_COLORS[TREND_ORDER[i]] for g, i in zip(ids, values["trend"])}
    assert len(values["cls"]) == len(ids)
    return {g: PAGE_COLORS[CLASS_ORDER[i]] for g, i in zip(ids, values["cls"])}


def stored_classes(project: Path, category: str, period: str) -> dict[str, int]:
    df = query(project, "SELECT hotspot_class, count(*) AS n FROM hotspots "
                        "WHERE category = ? AND period = ? GROUP BY 1", [category, period])
    return dict(zip(df["hotspot_class"], df["n"].astype(int)))


def stored_incidents(project: Path, category: str, period: str) -> int:
    df = query(project, "SELECT coalesce(sum(incidents), 0) AS n FROM incident_counts "
                        "WHERE category = ? AND period = ?", [category, period])
    return int(df["n"].iloc[0])


def busiest_selection(project: Path) -> tuple[str, str]:
    """The (category, month) with the most hot units: a selection where classes matter."""
    df = query(project, "SELECT category, period, count(*) AS n FROM hotspots "
                        "WHERE hotspot_class LIKE 'hot%' AND period <> 'all' AND category <> 'all' "
                        "GROUP BY ALL ORDER BY n DESC, category, period LIMIT 1")
    return str(df["category"].iloc[0]), str(df["period"].iloc[0])


def check_classes(at: AppTest, project: Path, category: str, period: str) -> None:
    """Metrics, the class table, the legend and every unit's colour match ``hotspots``."""
    want = stored_classes(project, category, period)
    got = metrics(at)
    hot = sum(n for c, n in want.items() if c.startswith("hot"))
    cold = sum(n for c, n in want.items() if c.startswith("cold"))
    assert as_int(got["热点单元"]) == hot
    assert as_int(got["冷点单元"]) == cold
    assert as_int(got["分析单元"]) == sum(want.values())
    table = frame_with(at, "冷热点类别", "单元数")
    shown = dict(zip(table["冷热点类别"], table["单元数"]))
    for c in CLASSES:
        assert shown[t(f"hs.class.{c}", "zh")] == want.get(c, 0), c

    html = legend(at)
    for c in CLASSES:
        assert f"{t(f'hs.short.{c}', 'zh')} ({want.get(c, 0)})" in html
    colors = fill_colors(at, project)
    units = query(project, "SELECT grid_id, hotspot_class FROM hotspots "
                           "WHERE category = ? AND period = ?", [category, period])
    for gid, cls in zip(units["grid_id"], units["hotspot_class"]):
        assert colors[gid] == CLASS_COLORS[cls], (gid, cls)


def test_page_runs_with_every_section(hotspot_project, monkeypatch):
    at = open_page(hotspot_project, monkeypatch)
    assert at.title[0].value == "风险热点与风险预警"
    assert not at.error
    # 'any' (a grid hot in any category) is the default view when the stage wrote it
    has_any = not query(hotspot_project, "SELECT 1 FROM hotspots WHERE category = 'any' "
                                         "LIMIT 1").empty
    default = "any" if has_any else "all"
    assert at.selectbox(key="hs_category").value == default
    check_classes(at, hotspot_project, default, "all")
    # 'any' has no counts of its own: the selection's incidents are every incident
    assert as_int(metrics(at)["事件数（所选）"]) == stored_incidents(hotspot_project, "all", "all")
    # which question each method answers
    text = " ".join(m.value for m in at.markdown)
    assert "超出预期（按户数）" in text and "事件在哪里聚集" in text
    # the map is offline: only the app's own Leaflet/jQuery, no CDN
    args = map_args(at)
    links = args["js_links"] + args["css_links"]
    assert links and all(u.startswith("../../app/static/vendor/") for u in links), links
    assert "http://" not in args["script"] and "https://" not in args["script"]
    # the sections of the two other hotspot pages
    at = open_page(hotspot_project, monkeypatch, page=RISK_PAGE)
    assert at.title[0].value == "风险指数与事件预测" and not at.error
    for cols in (("排名", "单元编号", "风险指数（0–100）"), ("预测事件数",), ("方法", "PAI 10%")):
        frame_with(at, *cols)
    at = open_page(hotspot_project, monkeypatch, page=TIME_PAGE)
    assert at.title[0].value == "案件办理时效" and not at.error
    for cols in (("街道", "按时率（响应与办结均按时）"), ("网格员编号", "办结时长中位数（小时）"),
                 ("单元编号", "响应时长中位数（小时）", "重复投诉率")):
        frame_with(at, *cols)


def test_category_and_period_change_the_counts(hotspot_project, monkeypatch):
    at = open_page(hotspot_project, monkeypatch)
    total = stored_incidents(hotspot_project, "all", "all")
    assert as_int(metrics(at)["事件数（所选）"]) == total

    category, period = busiest_selection(hotspot_project)
    at.selectbox(key="hs_category").set_value(category).run()
    assert not at.exception
    in_cat = stored_incidents(hotspot_project, category, "all")
    assert 0 < in_cat < total
    assert as_int(metrics(at)["事件数（所选）"]) == in_cat
    check_classes(at, hotspot_project, category, "all")

    slider = at.select_slider(key="hs_period")
    assert slider.options[0] == "全部月份 all months"
    months = query(hotspot_project, "SELECT DISTINCT period FROM hotspots "
                                    "WHERE period <> 'all' ORDER BY 1")["period"].tolist()
    assert slider.options[1:] == months and len(months) == 24
    slider.set_value(period).run()
    assert not at.exception
    in_month = stored_incidents(hotspot_project, category, period)
    assert 0 < in_month < in_cat
    assert as_int(metrics(at)["事件数（所选）"]) == in_month
    check_classes(at, hotspot_project, category, period)
    assert period in legend(at)  # the legend says which month is drawn


def test_hot_unit_list_matches_the_table(hotspot_project, monkeypatch):
    category, period = busiest_selection(hotspot_project)
    at = open_page(hotspot_project, monkeypatch)
    at.selectbox(key="hs_category").set_value(category).run()
    at.select_slider(key="hs_period").set_value(period).run()
    hot = query(hotspot_project, "SELECT grid_id, z_score FROM hotspots WHERE category = ? AND "
                                 "period = ? AND hotspot_class LIKE 'hot%' "
                                 "ORDER BY z_score DESC, grid_id", [category, period])
    shown = frame_with(at, "单元编号", "z 值", "FDR 校正 p 值", "冷热点类别")
    assert list(shown["单元编号"]) == list(hot["grid_id"].head(20))
    assert set(shown["冷热点类别"]) <= {t(f"hs.class.{c}", "zh") for c in CLASSES[:3]}


def test_trend_colouring_and_density(hotspot_project, monkeypatch):
    at = open_page(hotspot_project, monkeypatch)
    # a category with monthly rows too ('any' — hot in any category — has only 'all' rows)
    trend = query(hotspot_project, "SELECT category, trend_class, count(*) AS n FROM hotspots "
                                   "WHERE period = 'all' AND trend_class <> 'none' AND category IN "
                                   "(SELECT category FROM hotspots WHERE period <> 'all') "
                                   "GROUP BY ALL ORDER BY n DESC, category LIMIT 1")
    category = str(trend["category"].iloc[0])
    at.selectbox(key="hs_category").set_value(category).run()
    at.toggle(key="hs_trend").set_value(True).run()
    assert not at.exception
    n_trend = query(hotspot_project, "SELECT count(*) AS n FROM hotspots WHERE category = ? "
                                     "AND period = 'all' AND trend_class <> 'none'",
                    [category])["n"].iloc[0]
    assert as_int(metrics(at)["有趋势的单元"]) == int(n_trend)
    html = legend(at)
    assert "时空趋势类别" in html
    assert t(f"hs.trend.{trend['trend_class'].iloc[0]}", "zh") in html
    counts = query(hotspot_project, "SELECT trend_class, count(*) AS n FROM hotspots "
                                    "WHERE category = ? AND period = 'all' GROUP BY 1", [category])
    table = frame_with(at, "时空趋势", "单元数")
    shown = dict(zip(table["时空趋势"], table["单元数"]))
    assert shown == {t(f"hs.trend.{c}", "zh"): int(n)
                     for c, n in zip(counts["trend_class"], counts["n"])}
    # every unit with a trend is coloured, the others are the light grey of "none"
    colors = fill_colors(at, hotspot_project)
    units = query(hotspot_project, "SELECT grid_id, trend_class FROM hotspots "
                                   "WHERE category = ? AND period = 'all'", [category])
    for gid, cls in zip(units["grid_id"], units["trend_class"]):
        assert (colors[gid] == CLASS_COLORS["none"]) == (cls == "none"), (gid, cls)
    # the month does not change the trend (a property of the whole series)
    at.select_slider(key="hs_period").set_value("2025-06").run()
    assert as_int(metrics(at)["有趋势的单元"]) == int(n_trend)

    at.toggle(key="hs_kde").set_value(True).run()
    assert not at.exception
    assert map_channel(at, "kde")["url"].startswith("data:image/png;base64,")  # nothing fetched
    assert "L.imageOverlay" in map_args(at)["script"]  # the map's receiver draws it
    assert "核密度（事件/平方公里）" in legend(at)


def test_risk_table_expands_the_components(hotspot_project, monkeypatch):
    at = open_page(hotspot_project, monkeypatch, page=RISK_PAGE)
    risk = query(hotspot_project, "SELECT grid_id, risk_score, CAST(components AS VARCHAR) AS c "
                                  "FROM grid_risk ORDER BY risk_score DESC, grid_id")
    shown = frame_with(at, "排名", "单元编号", "风险指数（0–100）")
    assert len(shown) == 15
    assert list(shown["单元编号"]) == list(risk["grid_id"].head(15))
    first = json.loads(risk["c"].iloc[0])
    for name, part in first.items():
        label = t(f"hs.comp.{name}", "zh")
        assert shown[f"{label}（分）"].iloc[0] == pytest.approx(part["contribution"])
        assert shown[f"{label}（数值）"].iloc[0] == pytest.approx(part["raw"])
    points = shown[[c for c in shown.columns if c.endswith("（分）")]].sum(axis=1)
    assert points.to_numpy() == pytest.approx(shown["风险指数（0–100）"].to_numpy(), abs=1e-2)
    at.slider(key="hs_risk_n").set_value(30).run()
    assert len(frame_with(at, "排名", "风险指数（0–100）")) == 30


def test_forecast_and_honest_backtest(hotspot_project, monkeypatch):
    at = open_page(hotspot_project, monkeypatch, page=RISK_PAGE)
    top = query(hotspot_project, "SELECT grid_id FROM forecast WHERE method = 'model' "
                                 "ORDER BY rank LIMIT 10")
    shown = frame_with(at, "排名", "预测事件数")
    assert list(shown["单元编号"]) == list(top["grid_id"])

    grid_rows = ""  # the page's backtest is the grid one (equal-cell rows are apart)
    if "unit" in set(query(hotspot_project, "SELECT * FROM forecast_backtest LIMIT 0").columns):
        grid_rows = " AND (unit = 'grid' OR unit IS NULL)"
    mean = query(hotspot_project, "SELECT method, pai FROM forecast_backtest "
                                  "WHERE target_period = 'mean' AND area_share = 0.1" + grid_rows)
    pai = dict(zip(mean["method"], mean["pai"]))
    best = max((m for m in pai if m != "model"), key=pai.get)
    table = frame_with(at, "方法", "PAI 5%", "PAI 10%", "PAI 20%", "命中率 10%")
    assert len(table) == len(pai) == 5
    by_method = dict(zip(table["方法"], table["PAI 10%"]))
    assert by_method["模型（梯度提升）"] == pytest.approx(pai["model"])
    winner = "model" if pai["model"] >= pai[best] else best
    starred = table.loc[table[" "] == "★", "方法"].tolist()
    assert starred == [t(f"hs.method.{winner}", "zh")]
    verdicts = [e.value for e in list(at.success) + list(at.warning) + list(at.info)]
    best_label = t(f"hs.method.{best}", "zh")
    tables = set(query(hotspot_project, "SELECT table_name FROM information_schema.tables")[
        "table_name"])
    if "forecast_recommendation" in tables:  # the stage's verdict is shown as written
        rec = query(hotspot_project, "SELECT unit, text_zh FROM forecast_recommendation")
        assert len(rec) >= 1
        for text in rec["text_zh"]:
            assert any(text in v for v in verdicts), (text, verdicts)
        assert not any("模型胜出" in v or "基线胜出" in v for v in verdicts)
    elif round(pai["model"], 3) == round(pai[best], 3):
        assert any("持平" in v and best_label in v for v in verdicts), verdicts
    elif pai["model"] > pai[best]:
        assert any("模型胜出" in v and best_label in v for v in verdicts), verdicts
    else:
        assert any("基线胜出" in v and best_label in v for v in verdicts), verdicts


def test_timeliness_tables(hotspot_project, monkeypatch):
    at = open_page(hotspot_project, monkeypatch, page=TIME_PAGE)
    tl = query(hotspot_project, "SELECT scope, count(*) AS n, sum(cases) AS cases "
                                "FROM case_timeliness GROUP BY scope")
    n = dict(zip(tl["scope"], tl["n"].astype(int)))
    streets = frame_with(at, "街道", "编号", "按时率（响应与办结均按时）")
    staff = frame_with(at, "网格员编号", "案件数")
    grids = frame_with(at, "单元编号", "应考核案件", "按时响应率")
    assert (len(streets), len(staff), len(grids)) == (n["street"], n["staff"], n["grid"])
    street_cases = int(tl.loc[tl["scope"] == "street", "cases"].iloc[0])
    assert as_int(metrics(at)["案件数"]) == street_cases
    assert streets["街道"].notna().all()  # street names, not only codes


def test_english_toggle_switches_labels(hotspot_project, monkeypatch):
    at = open_page(hotspot_project, monkeypatch, lang="en")
    assert at.title[0].value == "Risk hotspots and early warning"
    got = metrics(at)
    want = stored_classes(hotspot_project, at.selectbox(key="hs_category").value, "all")
    assert as_int(got["Hot spot units"]) == sum(v for k, v in want.items() if k.startswith("hot"))
    assert as_int(got["Cold spot units"]) == sum(
        v for k, v in want.items() if k.startswith("cold"))
    table = frame_with(at, "Hot/cold class", "Units", "Share")
    assert "Not significant" in set(table["Hot/cold class"])
    assert "Hot / cold classes (FDR)" in legend(at)
    assert any("more than its households lead one to expect" in m.value for m in at.markdown)
    frame_with(open_page(hotspot_project, monkeypatch, "en", RISK_PAGE),
               "Method", "PAI 10%", "Hit rate 10%")
    frame_with(open_page(hotspot_project, monkeypatch, "en", TIME_PAGE),
               "Worker", "Median hours to close")
    # a filter survives the switch back to Chinese
    category, _ = busiest_selection(hotspot_project)
    at.selectbox(key="hs_category").set_value(category).run()
    at.sidebar.radio(key="lang").set_value("zh").run()
    assert not at.exception
    assert at.title[0].value == "风险热点与风险预警"
    assert at.selectbox(key="hs_category").value == category
    assert as_int(metrics(at)["事件数（所选）"]) == stored_incidents(hotspot_project, category,
                                                                    "all")


def test_page_without_hotspot_tables_says_what_to_run(tmp_path, monkeypatch):
    from pipelines.run import run_project
    from tests.conftest import make_project

    root = make_project(tmp_path / "ingest-only")
    run_project(root, stages=[])
    at = open_page(root, monkeypatch)
    assert any("hotspots" in i.value and "gridgov run" in i.value for i in at.info)
    assert any("gridgov run" in c.value for c in at.code)
    at = open_page(root, monkeypatch, lang="en")
    assert any("gridgov run" in i.value and "no risk hotspot results" in i.value
               for i in at.info)
    for page in (RISK_PAGE, TIME_PAGE):
        at = open_page(root, monkeypatch, page=page)
        assert any("gridgov run" in c.value for c in at.code)


def test_short_series_without_trends(tmp_path, monkeypatch):
    """9 months (the shared tiny project): no emerging hot spots, and the page says why."""
    from pipelines.run import run_project
    from tests.conftest import make_project

    root = make_project(tmp_path / "nine-months")
    summary = run_project(root, stages=["hotspots"])["stages"]["hotspots"]
    assert summary["months"] == 9 and summary["unit_source"] == "square"
    at = open_page(root, monkeypatch)
    assert as_int(metrics(at)["分析单元"]) == summary["units"]
    assert metrics(at)["有趋势的单元"] == "—"
    assert any("少于 10 个月" in c.value for c in at.caption)  # the stage's warning
    at.toggle(key="hs_trend").set_value(True).run()
    at.toggle(key="hs_kde").set_value(True).run()
    assert not at.exception
    assert any("至少需要 10 个月" in i.value for i in at.info)


def test_category_with_whole_period_only(hotspot_project, monkeypatch):
    """A category the stage wrote for the whole period only ('any': hot in any category) has
    no month slider; its counts are those of the stored rows."""
    only_all = query(hotspot_project, "SELECT category FROM hotspots GROUP BY category "
                                      "HAVING bool_and(period = 'all')")["category"].tolist()
    if not only_all:
        pytest.skip("the hotspot stage wrote no whole-period-only category")
    category = only_all[0]
    at = open_page(hotspot_project, monkeypatch)
    at.selectbox(key="hs_category").set_value(category).run()
    assert not at.exception
    assert not [s for s in at.select_slider if s.key == "hs_period"]
    assert any("只有全时段结果" in c.value for c in at.caption)
    check_classes(at, hotspot_project, category, "all")


def test_fishnet_layer_and_area_verdicts(hotspot_project, monkeypatch):
    """Gi* on the fishnet is an optional layer (its significant cells, outlined); the
    community and street verdicts are a table matching hotspot_areas."""
    tables = set(query(hotspot_project, "SELECT table_name FROM information_schema.tables")[
        "table_name"])
    if not {"hotspot_fishnet", "hotspot_areas"} <= tables:
        pytest.skip("the hotspot stage wrote no fishnet / area verdicts")
    at = open_page(hotspot_project, monkeypatch)
    areas = query(hotspot_project, "SELECT scope, scope_id, observed, hotspot_class "
                                   "FROM hotspot_areas WHERE category = 'all' AND period = 'all'")
    shown = frame_with(at, "层级", "名称", "实际事件（该类别）", "按户数预期事件")
    assert len(shown) == len(areas)
    assert int(shown["实际事件（该类别）"].sum()) == int(areas["observed"].sum())
    n_hot = int(areas["hotspot_class"].str.startswith("hot").sum())
    assert (shown["冷热点类别"].str.startswith("热点")).sum() == n_hot
    assert map_channel(at, "fishnet")["packed"] is None  # off: no cells sent
    cells = query(hotspot_project, "SELECT category, count(*) AS n FROM hotspot_fishnet "
                                   "WHERE hotspot_class <> 'none' GROUP BY 1 ORDER BY n DESC")
    at.toggle(key="hs_fishnet").set_value(True).run()
    assert not at.exception
    assert any("个显著的 Gi* 格" in c.value for c in at.caption)
    if not cells.empty:  # a category with significant cells draws them as dashed outlines
        at.selectbox(key="hs_category").set_value(str(cells["category"].iloc[0])).run()
        assert not at.exception
        assert f"{int(cells['n'].iloc[0])} 个显著的 Gi* 格" in " ".join(
            c.value for c in at.caption)
        packed = map_channel(at, "fishnet")["packed"]  # the cells, packed, to the receiver
        assert len(packed["t"]) == int(cells["n"].iloc[0])
        assert "dashArray" in map_args(at)["script"]  # which draws them as dashed outlines


# --------------------------------------------------------------------------------------------
# level of detail (#13.4): above MAP_MAX_UNITS the map shows streets, then one street's units


@pytest.fixture(scope="module")
def lod_project(tmp_path_factory):
    from tests.app.lod_project import build_lod_project

    return build_lod_project(tmp_path_factory.mktemp("lod") / "lod-project")


def map_features(at: AppTest) -> int:
    """How many features the map's units layer holds (packed: one type code each)."""
    script = map_args(at)["script"]
    start = script.index('"t":[') + len('"t":[')
    return len(script[start:script.index("]", start)].split(","))


def test_street_level_then_the_units_of_a_chosen_street(lod_project, monkeypatch):
    from app_pages._hotspots import MAP_MAX_UNITS, SHARE_BREAKS, SHARE_COLORS

    assert lod_project.units > MAP_MAX_UNITS
    at = open_page(lod_project.dir, monkeypatch)
    assert not at.error
    # the first view: every street, coloured by its share of hot units ('any', whole period)
    assert at.selectbox(key="hs_street").value is None
    assert any("超过一次可显示的 3,500 个" in c.value for c in at.caption)
    streets = lod_project.streets
    assert map_features(at) == len(streets)
    values = map_channel(at, "values")
    assert len(values["cls"]) == len(streets)
    for code, cls in zip(streets, values["cls"]):
        share = lod_project.hot_per_street[code] / lod_project.units_per_street[code]
        want = 0 if share == 0 else next(i for i in range(1, len(SHARE_BREAKS))
                                         if share <= SHARE_BREAKS[i])
        assert cls == want, (code, share, cls)
    tip = dict(zip(values["tip"]["k"], values["tip"]["c"]))
    assert tip["hot_units"] == [lod_project.hot_per_street[c] for c in streets]
    assert tip["units"] == [lod_project.units_per_street[c] for c in streets]
    html = legend(at)
    assert "街道：热点单元占比" in html and SHARE_COLORS[-2] in html
    # a street name with HTML in it reaches the map escaped
    script = map_args(at)["script"]
    # (packed data is JSON safe in a <script>: '&' travels as \u0026)
    assert "\\u0026lt;b\\u0026gt;粗体\\u0026lt;/b\\u0026gt;街道" in script, script[-3000:]
    assert "<b>粗体" not in script and "\\u003cb\\u003e粗体" not in script
    # trend colouring: the streets' share of units with a hot trend
    at.toggle(key="hs_trend").set_value(True).run()
    assert not at.exception
    assert "街道：呈热点趋势的单元占比" in legend(at)
    assert map_features(at) == len(streets)

    # one street: its 400 grids, coloured by class as on a small project
    street = streets[-1]
    at.toggle(key="hs_trend").set_value(False).run()
    at.selectbox(key="hs_street").set_value(street).run()
    assert not at.exception
    n = lod_project.units_per_street[street]
    assert map_features(at) == n
    values = map_channel(at, "values")
    assert len(values["cls"]) == n
    assert values["cls"].count(0) == lod_project.hot_per_street[street]  # CLASS_ORDER[0]: hot_99
    assert "冷热点类别" in legend(at)
    assert any(f"{n:,} 个分析单元" in c.value for c in at.caption)

    # English: the same levels, English labels
    at.sidebar.radio(key="lang").set_value("en").run()
    assert not at.exception
    at.selectbox(key="hs_street").set_value(None).run()
    assert "Streets: share of hot units" in legend(at)
    assert any("more than the 3,500 one map can carry" in c.value for c in at.caption)


def test_map_page_shows_streets_first_above_the_community_limit(lod_project, monkeypatch):
    """The map page (地图) of a project with more communities than one map may carry (the
    limit lowered to 10 for the 48 communities here): streets first, filled by household
    density, without communities; a chosen street shows its own communities."""
    from app_pages import _mapbuild

    monkeypatch.setattr(_mapbuild, "MAP_MAX_COMMUNITIES", 10)
    at = open_page(lod_project.dir, monkeypatch, page="app_pages/map.py")
    assert not at.error
    assert any("超过一次可显示的 10 个" in c.value for c in at.caption)
    script = map_args(at)["script"]
    assert script.count('"t":[') == 1  # one packed layer: the streets
    assert "社区1-1" not in script and "测试1街道" in script
    street = lod_project.streets[0]
    at.selectbox(key="map_street").set_value(street).run()
    assert not at.exception
    script = map_args(at)["script"]
    assert script.count('"t":[') == 2  # that street's communities and every street's outline
    assert "社区1-1" in script and "社区2-1" not in script


def test_area_verdicts_follow_the_chosen_street_and_are_capped(lod_project, monkeypatch):
    """The community/street verdicts under the map: at most AREA_ROWS rows (hot first) for the
    whole project, the chosen street and its own communities once a street is chosen."""
    from app_pages import _hotspots

    monkeypatch.setattr(_hotspots, "AREA_ROWS", 10)
    at = open_page(lod_project.dir, monkeypatch)
    shown = frame_with(at, "层级", "名称", "冷热点类别")
    assert len(shown) == 10  # 12 streets + 48 communities, capped
    assert any("显示前 10 个（共 60 个" in c.value for c in at.caption)
    # hot first: the last street and its four communities
    assert (shown["冷热点类别"].iloc[:5].str.startswith("热点")).all()
    street = lod_project.streets[3]
    at.selectbox(key="hs_street").set_value(street).run()
    assert not at.exception
    shown = frame_with(at, "层级", "名称", "冷热点类别")
    assert sorted(shown["名称"]) == sorted(
        [lod_project.street_names[street]] + [f"社区4-{k}" for k in range(1, 5)])
    assert not any("显示前" in c.value for c in at.caption)


def test_map_limits_come_from_the_project_settings(lod_project, monkeypatch):
    """``[app] map_max_units`` / ``map_max_communities`` in gridgov.toml move the level of detail:
    raised above the project's units, the hot-spot map carries every unit at once; lowered to 10
    communities (48 here), the map page shows streets first."""
    toml = lod_project.dir / "gridgov.toml"
    before = toml.read_text(encoding="utf-8")
    try:
        toml.write_text(before + f"\n[app]\nmap_max_units = {lod_project.units + 1}\n"
                        "map_max_communities = 10\n", encoding="utf-8")
        at = open_page(lod_project.dir, monkeypatch)
        assert not at.exception
        assert map_features(at) == lod_project.units  # every unit, no street level
        assert not any("one map can carry" in c.value or "一次可显示" in c.value for c in at.caption)
        at = open_page(lod_project.dir, monkeypatch, page="app_pages/map.py")
        assert not at.error
        assert any("超过一次可显示的 10 个" in c.value for c in at.caption)
        assert "社区1-1" not in map_args(at)["script"]
    finally:
        toml.write_text(before, encoding="utf-8")


def test_map_limits_reader_is_lenient(tmp_path):
    from pipelines.results import map_limits

    assert map_limits(tmp_path) == {}  # no gridgov.toml
    (tmp_path / "gridgov.toml").write_text("[app]\nmap_max_units = 0\nmap_max_communities = true\n")
    assert map_limits(tmp_path) == {}  # not positive whole numbers
    (tmp_path / "gridgov.toml").write_text("[app]\nmap_max_units = 50\n")
    assert map_limits(tmp_path) == {"map_max_units": 50}
    (tmp_path / "gridgov.toml").write_text("[app\nbroken")
    assert map_limits(tmp_path) == {}

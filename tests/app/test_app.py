"""AppTest smoke tests: each page runs on the tiny project and shows the expected numbers."""
from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from app_pages._shared import BUILD_COMMAND, project_from_args
from tests.app.conftest import APP

TIMEOUT = 60


@pytest.fixture
def app(project, monkeypatch) -> AppTest:
    monkeypatch.setenv("GRIDGOV_PROJECT", str(project.dir))
    monkeypatch.delenv("GRIDGOV_TILES", raising=False)
    return AppTest.from_file(str(APP), default_timeout=TIMEOUT)


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def captions(at: AppTest) -> str:
    return "\n".join(c.value for c in at.caption)


def test_overview_counts_runs_rejects(app, project):
    at = app.run()
    assert not at.exception
    assert at.title[0].value == "概览"
    got = metrics(at)
    assert got["街道"] == "2"
    assert got["社区/村"] == "4"
    assert got["楼栋"] == "48"
    assert got["户数"] == f"{project.households:,}"
    assert got["人口"] == f"{project.residents:,}"
    assert got["事件"] == "6"
    assert got["专属网格单位"] == "3"
    assert got["网格员"] == "5"
    # latest run
    assert got["状态"] == "成功"
    assert got["耗时"] == "65.0 s"
    run_text = "\n".join(md.value for md in at.markdown)
    assert project.latest_run in run_text
    assert "开始时间: 2025-03-02 09:00:00" in run_text
    # rejects: 3 rows, by layer and by reason (the Chinese half of "中文 / English")
    assert got["被拒行数"] == "3"
    frames = [df.value for df in at.dataframe]
    by_reason = next(f for f in frames if "原因" in f.columns)
    assert dict(zip(by_reason["原因"], by_reason["行数"])) == {"户数为负数": 2, "时间无法解析": 1}
    by_layer = next(f for f in frames if list(f.columns) == ["图层", "行数"])
    assert dict(zip(by_layer["图层"], by_layer["行数"])) == {"楼栋": 2, "事件": 1}


def test_sidebar_shows_database_path_and_no_path_box(app, project):
    """The app opens only the project it was started on: the sidebar shows its database but
    offers no box to type another path (#9.4)."""
    at = app.run()
    assert any(str(project.db.resolve()) in c.value for c in at.sidebar.code)
    assert [w.key for w in at.sidebar.text_input] == ["tiles_url"]
    assert "project_dir" not in at.session_state


def test_english_toggle_switches_labels(app, project):
    at = app.run()
    at.sidebar.radio(key="lang").set_value("en").run()
    assert not at.exception
    assert at.title[0].value == "Overview"
    got = metrics(at)
    assert got["Streets"] == "2"
    assert got["Households"] == f"{project.households:,}"
    assert got["Status"] == "success"
    frames = [df.value for df in at.dataframe]
    by_reason = next(f for f in frames if "Reason" in f.columns)
    assert set(by_reason["Reason"]) == {"negative households", "unparseable time"}
    # and back
    at.sidebar.radio(key="lang").set_value("zh").run()
    assert at.title[0].value == "概览"


def test_map_page_runs_and_draws_one_street(app, project):
    at = app.run()
    at.switch_page("app_pages/map.py").run()
    assert not at.exception
    assert at.title[0].value == "地图"
    street = at.selectbox(key="map_street")
    assert street.options[0] == "全部街道 / all streets"
    assert len(street.options) == 1 + project.streets
    assert "未加载底图" in captions(at)  # offline by default
    assert "天地图" in captions(at) and "合成演示数据" in captions(at)  # demo attribution
    code, n = next(iter(project.buildings_per_street.items()))
    street.set_value(code).run()
    assert not at.exception
    assert f"已绘制 {n} 栋楼" in captions(at)


def test_map_page_in_english_with_gcj02_tiles(app, project):
    at = app.run()
    at.sidebar.radio(key="lang").set_value("en").run()
    at.sidebar.text_input(key="tiles_url").set_value(
        "https://webrd0{s}.is.autonavi.com/appmaptile?style=8&x={x}&y={y}&z={z}").run()
    at.switch_page("app_pages/map.py").run()
    assert not at.exception
    assert at.title[0].value == "Map"
    text = captions(at)
    assert "GCJ-02" in text
    assert "Tianditu" in text


def test_missing_database_explains_how_to_build_it(monkeypatch, tmp_path):
    monkeypatch.setenv("GRIDGOV_PROJECT", str(tmp_path / "nowhere"))
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT).run()
    assert not at.exception
    assert any(BUILD_COMMAND in c.value for c in at.code)
    heads = [h.value for h in at.subheader]
    assert "没有找到项目数据库" in heads and "No project database found" in heads


def test_project_location_precedence():
    env = {"GRIDGOV_PROJECT": "/from/env"}
    assert project_from_args(["--project", "/from/argv"], env) == "/from/argv"
    assert project_from_args(["--project=/x"], env) == "/x"
    assert project_from_args([], env) == "/from/env"
    assert project_from_args(["-q", "tests"], {}) == "demo-city"


@pytest.fixture(scope="module")
def ingested(tmp_path_factory):
    """The shared tiny input folder (tests/conftest.py) through the real ingest: the tables the
    app meets in practice, with optional columns that were not supplied left out."""
    from pipelines.run import run_project
    from tests.conftest import make_project

    root = make_project(tmp_path_factory.mktemp("ingested") / "tiny")
    run_project(root, stages=[])
    return root


def test_pages_on_real_ingest_output(ingested, monkeypatch):
    monkeypatch.setenv("GRIDGOV_PROJECT", str(ingested))
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT).run()
    assert not at.exception
    got = metrics(at)
    assert got["街道"] == "2" and got["楼栋"] == "40" and got["事件"] == "30"
    assert got["状态"] == "成功"
    at.switch_page("app_pages/map.py").run()
    assert not at.exception
    street = at.selectbox(key="map_street")
    street.set_value("150102001000").run()
    assert not at.exception
    assert "已绘制 20 栋楼" in captions(at)
    assert "本项目输入数据" in captions(at)  # not the demo city: nothing is called synthetic
    assert "合成" not in captions(at)


def test_attribution_choice(tmp_path):
    from app_pages._shared import project_attribution

    assert project_attribution(tmp_path) == "project"
    readme = "gridgov demo city -- SYNTHETIC DEMO DATA\n"
    (tmp_path / "README.txt").write_text(readme, encoding="utf-8")
    assert project_attribution(tmp_path) == "demo"
    toml = '[app]\nattribution = "数据: 某某街道办"\n'
    (tmp_path / "gridgov.toml").write_text(toml, encoding="utf-8")
    assert project_attribution(tmp_path) == "数据: 某某街道办"

"""The staffing page's section "next month's forecast as hours" (#11.5) on the small demo:
its totals and table match ``forecast_workload`` as the staffing stage wrote it."""
from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from app_pages.i18n import t
from pipelines.db import connect


def _section(project: str, lang: str) -> None:
    """The section alone, as the staffing page calls it (run by AppTest.from_function)."""
    from pathlib import Path

    from app_pages._forecast_workload import forecast_workload_section
    from app_pages._shared import db_mtime

    db = Path(project) / "gridgov.duckdb"
    forecast_workload_section(db, db_mtime(db), lang)


def run_section(project: Path, lang: str = "zh") -> AppTest:
    at = AppTest.from_function(_section, args=(str(project), lang), default_timeout=60).run()
    assert not at.exception, at.exception
    return at


def test_section_shows_the_forecast_in_hours(small_demo):
    con = connect(small_demo / "gridgov.duckdb", read_only=True)
    try:
        fw = con.execute("SELECT * FROM forecast_workload ORDER BY delta_hours DESC, grid_id").df()
    finally:
        con.close()
    assert len(fw) > 20
    at = run_section(small_demo)
    assert at.subheader[0].value == t("fw.title", "zh")
    m = {x.label: x.value for x in at.metric}
    assert m[t("fw.kpi.incidents", "zh")] == f"{fw['predicted_incidents'].sum():,.0f}"
    assert m[t("fw.kpi.hours", "zh")] == f"{fw['predicted_hours'].sum():,.1f}"
    delta = fw["predicted_hours"].sum() - fw["current_hours"].sum()
    assert m[t("fw.kpi.delta", "zh")] == f"{delta:+,.1f}"
    view = at.dataframe[0].value
    assert len(view) == 20  # the largest rises first
    col = lambda k: t(f"fw.col.{k}", "zh")  # noqa: E731
    assert view[col("grid_id")].tolist() == fw["grid_id"].head(20).tolist()
    assert view[col("delta_hours")].tolist() == fw["delta_hours"].head(20).round(1).tolist()
    at.toggle(key="fw_show_all").set_value(True).run()
    assert len(at.dataframe[0].value) == len(fw)


def test_section_in_english_and_absent_without_a_forecast(small_demo, project):
    at = run_section(small_demo, "en")
    assert at.subheader[0].value == "Next month's forecast workload"
    assert "Change in hours" in at.dataframe[0].value.columns
    empty = run_section(project.dir)  # the tiny fixture has no forecast: nothing drawn
    assert not empty.subheader and not empty.dataframe


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_every_string_of_the_section_is_translated(lang):
    from app_pages import strings_alerts

    for key, pair in strings_alerts.STRINGS.items():
        assert len(pair) == 2 and all(pair), key

"""The printed brief on the small demo: pages, text from the tables, embedded Chinese font."""
from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from pipelines import brief, stage_cases
from pipelines.config import load_settings
from pipelines.db import connect, read_table
from pipelines.run import available_stages, db_path

pytestmark = pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler-utils missing")


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    from gridgov.demo_city import build_demo
    from pipelines.run import run_project

    root = tmp_path_factory.mktemp("brief") / "demo-small"
    build_demo(root, size="small")
    run_project(root)
    if "cases" not in available_stages():  # until the run registers the stage
        con = connect(db_path(root))
        try:
            stage_cases.run(con, load_settings(root))
        finally:
            con.close()
    out = brief.write_brief(root, root / "out" / "brief.pdf")
    return root, out


def _text(pdf) -> str:
    return subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True,
                          check=True).stdout.decode("utf-8")


def test_one_a4_landscape_page_per_theme(demo):
    _, out = demo
    assert out.exists() and out.stat().st_size > 10_000
    info = subprocess.run(["pdfinfo", str(out)], capture_output=True, check=True).stdout.decode()
    assert int(re.search(r"Pages:\s+(\d+)", info).group(1)) == len(brief.THEMES) == 4
    w, h = map(float, re.search(r"Page size:\s+([\d.]+) x ([\d.]+)", info).groups())
    assert (round(w), round(h)) == (842, 595)  # A4 landscape in points


def test_every_page_has_data_date_plan_and_area(demo):
    root, out = demo
    con = connect(db_path(root), read_only=True)
    try:
        date = con.execute("SELECT strftime(max(occurred_at), '%Y-%m-%d') FROM incidents").fetchone()[0]
        plan = con.execute("SELECT plan_id FROM plans WHERE is_current").fetchone()[0]
        street = con.execute("SELECT street_name FROM streets").fetchone()[0]
    finally:
        con.close()
    pages = _text(out).split("\f")[:4]
    for (_, zh, _), page in zip(brief.THEMES, pages):
        assert zh in page
        assert f"Data date: {date}" in page and f"Plan: {plan}" in page and street in page


def test_text_carries_names_and_figures_of_the_tables(demo):
    root, out = demo
    text = _text(out)
    con = connect(db_path(root), read_only=True)
    try:
        month = con.execute("SELECT max(period) FROM case_rates WHERE scope = 'community' "
                            "AND period <> 'all'").fetchone()[0]
        boards = read_table(con, "SELECT scope_name, cases, resolution_rate, satisfaction_rate, board "
                                 "FROM case_rates WHERE scope = 'community' AND period = ? "
                                 "AND board IS NOT NULL", [month])
        risk = read_table(con, "SELECT grid_id, risk_score FROM grid_risk "
                               "ORDER BY risk_score DESC, grid_id LIMIT 1")
        ex = read_table(con, "staffing_explanation").iloc[0]
        comm = read_table(con, "SELECT community_name, recommended_staff, workload "
                               "FROM community_allocation")
        metrics = read_table(con, "SELECT n_grids FROM grid_metrics WHERE plan_id = "
                                  "(SELECT plan_id FROM plans WHERE is_current)")
        fusion = read_table(con, "SELECT department FROM grid_fusion")
    finally:
        con.close()
    flat = re.sub(r"\s+", " ", text)
    assert len(boards) == 6  # 10 communities: three red, three black
    assert f"统计月份 {month}" in flat
    for r in boards.itertuples():  # the table row: name, cases, response, resolution, satisfaction
        rows = re.findall(re.escape(r.scope_name) + r"\s+(\d+)\s+\S+\s+(\S+)\s+(\S+)", text)
        want = (str(r.cases), f"{r.resolution_rate * 100:.1f}%", f"{r.satisfaction_rate * 100:.1f}%")
        assert want in rows, (r.scope_name, rows)
    assert risk["grid_id"].iloc[0] in text and f"{risk['risk_score'].iloc[0]:.2f}" in text
    assert f"编制 {int(ex['budget'])} 人" in flat and f"现有 {int(ex['current_staff'])} 人" in flat
    top = comm.sort_values("recommended_staff").iloc[-1]
    assert top["community_name"] in text and f"{int(round(top['workload'])):,}" in text
    assert f"网格 {int(metrics['n_grids'].iloc[0])} 个" in flat
    for d in fusion["department"]:
        assert d in text


def test_chinese_font_is_embedded_and_output_is_reproducible(demo, tmp_path):
    root, out = demo
    fonts = subprocess.run(["pdffonts", str(out)], capture_output=True, check=True).stdout.decode()
    cjk = [ln for ln in fonts.splitlines() if "CJK" in ln or "Han" in ln or "Hei" in ln]
    assert cjk and all(" yes " in ln for ln in cjk)  # embedded
    family, _, preferred = brief.cjk_font()
    if preferred:
        assert "NotoSansCJKsc" in fonts
    again = brief.write_brief(root, tmp_path / "again.pdf")
    assert again.read_bytes() == out.read_bytes()  # no creation date: same tables, same file


def test_missing_database_is_a_bilingual_error(tmp_path):
    with pytest.raises(brief.BriefError, match="gridgov run"):
        brief.write_brief(tmp_path, tmp_path / "x.pdf")


def test_wrap_breaks_cjk_and_keeps_latin_words():
    lines = brief.wrap("全区编制 12 人，现有 10 人 and some English words here", 8)
    assert all(brief._width(ln) <= 8 + 1 for ln in lines)  # a closing mark may overhang
    assert "".join(lines).replace(" ", "") == "全区编制12人，现有10人andsomeEnglishwordshere"
    assert "English" in " ".join(lines).split()
    closing = brief.wrap("网格九十五个（全部类别、全期）", 14)
    assert not any(ln.startswith(("）", "、", "。")) for ln in closing)

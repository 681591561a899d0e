"""Maps to take away (#12.5) on the small demo: every kind as PNG and PDF, with title, data date,
legend, scale bar and attribution; names never break the layout."""
from __future__ import annotations

import re
import shutil
import struct
import subprocess

import pytest

from pipelines import mapexport
from pipelines.db import connect
from pipelines.run import db_path

needs_poppler = pytest.mark.skipif(shutil.which("pdftotext") is None,
                                   reason="poppler-utils missing")


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    from gridgov.demo_city import build_demo
    from pipelines.run import run_project

    root = tmp_path_factory.mktemp("mapexport") / "demo-small"
    build_demo(root, size="small")
    run_project(root)
    con = connect(db_path(root), read_only=True)
    try:
        facts = {
            "date": con.execute("SELECT strftime(max(occurred_at), '%Y-%m-%d') FROM incidents")
            .fetchone()[0],
            "plan": con.execute("SELECT plan_id FROM plans WHERE is_current").fetchone()[0],
            "street": con.execute("SELECT street_code, street_name FROM streets").fetchone(),
            "categories": [r[0] for r in con.execute(
                "SELECT DISTINCT category FROM hotspots ORDER BY 1").fetchall()],
        }
    finally:
        con.close()
    return root, facts


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def _pdf_text(path) -> str:
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True,
                          check=True).stdout.decode("utf-8")


@pytest.fixture(scope="module")
def maps(demo, tmp_path_factory):
    """Every kind in both formats, drawn once: ``{(kind, fmt): path}``."""
    root, _ = demo
    out = tmp_path_factory.mktemp("maps")
    return {(kind, fmt): mapexport.export_map(root, kind, out / f"{kind}.{fmt}", fmt=fmt)
            for kind in mapexport.KINDS for fmt in mapexport.FORMATS}


@pytest.mark.parametrize("kind", list(mapexport.KINDS))
def test_each_kind_writes_an_a4_png(maps, kind):
    path = maps[(kind, "png")]
    data = path.read_bytes()
    assert _png_size(data) == mapexport.PNG_SIZE == (1753, 1240)
    assert len(data) > 30_000  # a drawn map, not an empty page
    assert not list(path.parent.glob("*.tmp"))


@needs_poppler
@pytest.mark.parametrize("kind", list(mapexport.KINDS))
def test_each_kind_writes_an_a4_landscape_pdf_with_title_date_and_credit(demo, maps, kind):
    _, facts = demo
    out = maps[(kind, "pdf")]
    info = subprocess.run(["pdfinfo", str(out)], capture_output=True, check=True).stdout.decode()
    assert int(re.search(r"Pages:\s+(\d+)", info).group(1)) == 1
    w, h = map(float, re.search(r"Page size:\s+([\d.]+) x ([\d.]+)", info).groups())
    assert (round(w), round(h)) == (842, 595)  # A4 landscape in points
    text = _pdf_text(out)
    zh, en = mapexport.KINDS[kind]
    assert zh in text and en in text
    assert f"Data date: {facts['date']}" in text
    assert facts["plan"] in text
    assert "图例 Legend" in text
    assert re.search(r"\b\d+(\.\d+)? (m|km)\b", text), "no metric scale bar label"
    assert "N" in text.split()  # the north arrow's letter
    assert "天地图" in text  # the demo's sources (no [app] attribution set)
    fonts = subprocess.run(["pdffonts", str(out)], capture_output=True, check=True).stdout.decode()
    cjk = [ln for ln in fonts.splitlines() if "CJK" in ln or "Han" in ln or "Hei" in ln]
    assert cjk and all(" yes " in ln for ln in cjk), fonts  # embedded


@needs_poppler
def test_content_of_each_kind(demo, maps, tmp_path):
    root, facts = demo
    code, name = facts["street"]
    text = _pdf_text(maps[("overview", "pdf")])
    assert "户/km²" in text and "重点单位" in text
    text = _pdf_text(mapexport.export_map(root, "overview", tmp_path / "s.pdf", fmt="pdf",
                                          street_code=code))
    assert name in text and "楼栋 buildings" in text
    text = _pdf_text(mapexport.export_map(root, "grids", tmp_path / "g.pdf", fmt="pdf",
                                          plan_id=facts["plan"]))
    assert "households per grid" in text and "dedicated grids" in text
    text = " ".join(_pdf_text(maps[("hotspots", "pdf")]).split())
    default = "hot in any category" if "any" in facts["categories"] else "all categories"
    assert default in text  # the hot-spot page's default view
    cat = next(c for c in facts["categories"] if c not in ("all", "any"))
    text = _pdf_text(mapexport.export_map(root, "hotspots", tmp_path / "h.pdf", fmt="pdf",
                                          category=cat))
    assert cat in text and "hot spot" in text
    text = _pdf_text(maps[("staffing", "pdf")])
    assert "gap, people" in text and "whole people" in " ".join(text.split())
    # one street: the gap is drawn by community, gaps in whole people
    assert re.search(r"[+-]\d+\b", text)
    assert not re.search(r"[+-]\d+\.\d", text)
    assert "社区 communities" in text
    text = _pdf_text(mapexport.export_map(root, "staffing", tmp_path / "fs.pdf", fmt="pdf",
                                          level="street"))
    assert "街道 streets" in text


def test_bad_choices_say_what_to_pick(demo, tmp_path):
    root, facts = demo
    with pytest.raises(mapexport.MapExportError, match="overview"):
        mapexport.render_map(root, "weather")
    with pytest.raises(mapexport.MapExportError, match="png or pdf"):
        mapexport.render_map(root, "grids", fmt="svg")
    with pytest.raises(mapexport.MapExportError, match=facts["street"][0]):
        mapexport.render_map(root, "overview", street_code="999999999999")
    with pytest.raises(mapexport.MapExportError, match=facts["plan"]):
        mapexport.render_map(root, "grids", plan_id="P9999")
    with pytest.raises(mapexport.MapExportError, match="all"):
        mapexport.render_map(root, "hotspots", category="no such category")
    with pytest.raises(mapexport.MapExportError, match="street or community"):
        mapexport.render_map(root, "staffing", level="district")
    with pytest.raises(mapexport.MapExportError, match="gridgov run"):
        mapexport.render_map(tmp_path, "overview")


def test_fit_shortens_long_names_by_printed_width():
    assert mapexport.fit("短名", 10) == "短名"
    long = "内蒙古自治区呼和浩特市新城区海拉尔东路街道公主府社区居民委员会第一网格" * 3
    short = mapexport.fit(long, 12)
    assert short.endswith("…") and len(short) <= 12
    assert mapexport.fit("a\nb\tc", 10) == "a b c"
    assert mapexport.file_name("hotspots", "pdf", category="垃圾 / sanitation") == \
        "gridgov-hotspots-sanitation.pdf"


@needs_poppler
def test_attribution_from_settings_and_long_names_stay_in_the_legend(demo, tmp_path):
    root, _ = demo
    project = tmp_path / "copy"
    shutil.copytree(root, project, ignore=shutil.ignore_patterns("*.wal"))
    toml = project / "gridgov.toml"
    toml.write_text(toml.read_text(encoding="utf-8")
                    + '\n[app]\nattribution = "数据来源：某某街道办事处 2026"\n', encoding="utf-8")
    assert mapexport.attribution(project) == "数据来源：某某街道办事处 2026"
    con = connect(db_path(project))
    try:  # a very long street name and category
        con.execute("UPDATE streets SET street_name = ?", ["超长名称" * 30])
        con.execute("UPDATE hotspots SET category = ? WHERE category = 'sanitation'",
                    ["很长的类别名称" * 20])
    finally:
        con.close()
    out = mapexport.export_map(project, "overview", tmp_path / "long.pdf", fmt="pdf")
    text = _pdf_text(out)
    assert "某某街道办事处" in text and "天地图" not in text
    assert "超长名称" * 30 not in text.replace("\n", "")
    out = mapexport.export_map(project, "hotspots", tmp_path / "long-cat.png", fmt="png",
                               category="很长的类别名称" * 20)
    assert _png_size(out.read_bytes()) == mapexport.PNG_SIZE

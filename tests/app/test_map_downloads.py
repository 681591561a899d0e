"""Maps to take away (#12.5): every map page offers its map as PNG and PDF
(:func:`pipelines.mapexport.render_map`, drawn on click), with an ASCII file name."""
from __future__ import annotations

from app_pages._mapview import _map_file
from tests.app import apptest_kit as kit


def buttons(at) -> dict[str, object]:
    return {b.label: b for b in at.get("download_button")}


def test_map_page_offers_png_and_pdf(project, monkeypatch):
    at = kit.open_page(project.dir, monkeypatch, "app_pages/map.py")
    got = buttons(at)
    assert {"下载地图 PNG", "下载地图 PDF（A4）"} <= set(got), list(got)
    at = kit.open_page(project.dir, monkeypatch, "app_pages/map.py", lang="en")
    assert {"Download map (PNG)", "Download map (PDF, A4)"} <= set(buttons(at))


def test_the_files_behind_the_buttons(project):
    """What a click downloads: a PNG and a one-page-or-more PDF of the overview map."""
    png = _map_file(str(project.db), 0.0, "overview", "png", ())
    pdf = _map_file(str(project.db), 0.0, "overview", "pdf", ())
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    assert pdf[:5] == b"%PDF-" and b"/Type /Page" in pdf
    street = sorted(project.street_names)[0] if project.street_names else None
    if street:
        one = _map_file(str(project.db), 0.0, "overview", "png", (("street_code", street),))
        assert one[:8] == b"\x89PNG\r\n\x1a\n" and one != png


def test_staffing_and_hotspot_pages_offer_their_maps(small_demo, monkeypatch):
    for page, kind in (("app_pages/leaders.py", "staffing"), ("app_pages/hotspots.py", "hotspots")):
        at = kit.open_page(small_demo, monkeypatch, page, timeout=120)
        got = buttons(at)
        assert {"下载地图 PNG", "下载地图 PDF（A4）"} <= set(got), (page, list(got))

"""An own city with only what the data contract requires renders every page (issue #12).

Two projects are cut from the small demo, as a street office's own data would arrive:

* **bare**: only the three required layers (streets, communities, buildings) with only their
  required columns: no ``function_type``, no ``kind``, no residents, no incidents, units,
  barriers, staff, today's grids or department grids;
* **thin**: the same plus incidents with only their required columns (id, time, category,
  location): no severity, no life-cycle columns, no department or company.

``gridgov run`` must succeed on both, and in headless Chromium every page must open without a
Streamlit exception box or a traceback in the page.
"""
from __future__ import annotations

import subprocess
import sys

import geopandas as gpd
import pandas as pd
import pytest

from tests.app import browser_kit as kit
from tests.app.browser_kit import browser_fixture, page_fixture  # noqa: F401  (fixtures)
from tests.app.test_hostile_browser import PAGES

pytestmark = [pytest.mark.browser, pytest.mark.slow]

REQUIRED = {
    "streets": ["street_code", "street_name", "district_code", "district_name"],
    "communities": ["community_code", "community_name", "street_code"],
    "buildings": ["building_id", "households"],
}
OPTIONAL_LAYERS = ("incidents", "special_units", "barriers", "staff", "current_grids",
                   "department_grids")


def _cut(src, dst, *, keep_incidents: bool) -> None:
    dst.mkdir(parents=True)
    for layer, cols in REQUIRED.items():
        path = next(p for p in src.iterdir() if p.stem == layer)
        frame = gpd.read_parquet(path) if path.suffix == ".parquet" else gpd.read_file(path)
        frame[cols + ["geometry"]].to_file(dst / f"{layer}.geojson", driver="GeoJSON")
    if keep_incidents:
        inc = pd.read_csv(src / "incidents.csv", dtype=str)
        lonlat = [c for c in ("lon", "lat") if c in inc.columns]
        assert lonlat == ["lon", "lat"], inc.columns.tolist()
        inc[["incident_id", "occurred_at", "category", "lon", "lat"]].to_csv(
            dst / "incidents.csv", index=False)
    for layer in OPTIONAL_LAYERS:
        assert not any(p.stem == layer for p in dst.iterdir()) or layer == "incidents"


def _run(project) -> None:
    res = subprocess.run([sys.executable, "-m", "pipelines", "run", str(project)],
                         capture_output=True, text=True, timeout=900, check=False)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]
    assert "Traceback" not in res.stderr


@pytest.fixture(scope="module", params=["bare", "thin"])
def server(request, tmp_path_factory):
    from gridgov.demo_city import build_demo

    root = tmp_path_factory.mktemp(f"own-{request.param}")
    build_demo(root / "demo", size="small")
    project = root / request.param
    _cut(root / "demo", project, keep_incidents=request.param == "thin")
    _run(project)
    with kit.start_app(project, tmp_path_factory.mktemp("streamlit-own")) as url:
        yield url


def test_every_page_renders_without_a_traceback(page, server):
    failures = []
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    for path, _, _ in PAGES:
        page.goto(server + path)
        # the page's own title in the main area: its script has started (the sidebar's
        # navigation shows before it does)
        main = page.locator('[data-testid="stMain"]')
        main.locator('[data-testid="stHeading"]').first.wait_for(timeout=kit.DRAW_TIMEOUT)
        kit.settle(page)
        page.wait_for_timeout(1000)  # let a script run that has just started show itself
        kit.settle(page)
        boxes = page.locator('[data-testid="stException"]')
        text = main.inner_text()
        if boxes.count():
            failures.append(f"{path or '/'}: {boxes.first.inner_text()[:400]}")
        elif "Traceback" in text:
            failures.append(f"{path or '/'}: a traceback in the page")
    assert not failures, "\n".join(failures)
    assert not errors, errors

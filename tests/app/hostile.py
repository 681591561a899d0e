"""A project whose names are hostile: the small demo city with script and formula payloads
written into its input files (street — with a Markdown image too —, community, special unit and barrier names, a barrier
kind, an incident category; a unit type, which ingest rejects) and into the map's attribution, then run.

Used by the browser test that visits every page and hovers the maps
(``test_hostile_browser.py``): no payload may run as script, every one shows as text.
"""
from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pandas as pd

#: Payloads: each one opens a dialog if it ever runs as HTML/script.
IMG = "<img src=x onerror=alert(1)>"
SCRIPT = '"><script>alert(2)</script>'
FORMULA = '=HYPERLINK("http://example.invalid","x")'
SVG = "<svg onload=alert(4)>"
#: Markdown that would load an image from elsewhere (the app is offline and tells no one).
MD_IMAGE = "![m](http://example.invalid/m.png)"
ATTRIBUTION = "<img src=y onerror=alert(3)>"
PAYLOADS = (IMG, SCRIPT, FORMULA, SVG, MD_IMAGE)


def _geojson(path: Path, change) -> None:
    frame = gpd.read_file(path)
    change(frame)
    path.unlink()
    frame.to_file(path, driver="GeoJSON")


def build_hostile_project(root: Path) -> dict:
    """Write the small demo into ``root``, plant the payloads, run every stage; return what
    was planted where (``{"street": …, "communities": […], …}``)."""
    from gridgov.demo_city import build_demo
    from pipelines.run import run_project

    build_demo(root, size="small")
    planted: dict = {}

    def streets(f):
        f["street_name"] = IMG + MD_IMAGE + "街道"
        planted["street"] = f["street_name"].iloc[0]

    def communities(f):
        names = [IMG, SCRIPT, FORMULA, SVG]
        for i, name in enumerate(names):
            f.loc[i, "community_name"] = f"{name}社区"
        planted["communities"] = [f"{n}社区" for n in names]

    def units(f):
        f.loc[0, "unit_name"] = SCRIPT + "学校"
        f.loc[1, "unit_name"] = IMG
        f.loc[2, "unit_type"] = SVG  # not an allowed type: ingest rejects the row
        planted["unit_names"] = [SCRIPT + "学校", IMG]
        planted["rejected_unit_type"] = SVG

    def barriers(f):
        f.loc[0, "kind"] = IMG
        f.loc[1, "name"] = SCRIPT
        planted["barrier_kind"] = IMG
        planted["barrier_name"] = SCRIPT

    _geojson(root / "streets.geojson", streets)
    _geojson(root / "communities.geojson", communities)
    _geojson(root / "special_units.geojson", units)
    _geojson(root / "barriers.geojson", barriers)
    inc = pd.read_csv(root / "incidents.csv", dtype=str, keep_default_na=False)
    inc.loc[inc.index % 7 == 0, "category"] = SCRIPT
    inc.to_csv(root / "incidents.csv", index=False)
    planted["category"] = SCRIPT

    run_project(root)
    # read by the app itself (not by the run): the map's attribution line
    toml = root / "gridgov.toml"
    toml.write_text(toml.read_text(encoding="utf-8")
                    + f'\n[app]\nattribution = "{ATTRIBUTION}"\n', encoding="utf-8")
    planted["attribution"] = ATTRIBUTION
    return planted

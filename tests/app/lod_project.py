"""A generated project with more analysis units than one hot-spot map may carry
(:data:`app_pages._hotspots.MAP_MAX_UNITS`), for the level-of-detail tests (#13.4).

Twelve streets side by side (4 × 3, each 0.03° × 0.03°, about 2.5 km × 3.3 km) near Hohhot,
each of four communities and of 20 × 20 square grids (4,800 units in all), with the tables the
hot-spot page reads: ``streets``, ``communities``, ``grids``, ``hotspot_units``, ``hotspots``
(categories ``any``, ``all`` and ``dispute``; the whole period and three months) and
``incident_counts``. Hot units are put in by rule (every street but the first has some, the
last has the most), so every figure a test expects is computed here from the same rule.
A street name carries HTML (``<b>…</b>``) to check that it is escaped wherever it is shown.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import pandas as pd
from shapely.geometry import box

from pipelines.db import connect, write_gdf

X0, Y0 = 111.50, 40.70
STREET_D = 0.03
N_SIDE = 20  # grids per street side
COLS, ROWS = 4, 3
MONTHS = ("2025-01", "2025-02", "2025-03")
CATEGORIES = ("any", "all", "dispute")


@dataclass
class LodProject:
    dir: Path
    units: int
    streets: list[str]
    street_names: dict[str, str]
    units_per_street: dict[str, int]
    hot_per_street: dict[str, int] = field(default_factory=dict)  # category 'any', period 'all'


def _hot(street_no: int, i: int, j: int) -> bool:
    """Street ``street_no`` (0-based) has about ``street_no`` × 3 % of its grids hot."""
    return (i * N_SIDE + j) % 100 < 3 * street_no


def build_lod_project(folder: Path) -> LodProject:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "gridgov.toml").write_text("# gridgov level-of-detail test project\n",
                                         encoding="utf-8")
    streets, comms, grids, hot_rows, counts = [], [], [], [], []
    names: dict[str, str] = {}
    per_street: dict[str, int] = {}
    hot_per_street: dict[str, int] = {}
    d = STREET_D / N_SIDE
    for s in range(COLS * ROWS):
        cx, cy = s % COLS, s // COLS
        sx, sy = X0 + cx * STREET_D, Y0 + cy * STREET_D
        code = f"1501{s + 1:02d}001000"
        name = f"测试{s + 1}街道" if s != 1 else "<b>粗体</b>街道"
        names[code] = name
        streets.append({"street_code": code, "street_name": name, "district_code": "150102",
                        "district_name": "新城区", "geometry": box(sx, sy, sx + STREET_D,
                                                                  sy + STREET_D)})
        for k in range(4):
            ccode = f"{code[:9]}{k + 1:03d}"
            hx, hy = sx + (k % 2) * STREET_D / 2, sy + (k // 2) * STREET_D / 2
            comms.append({"community_code": ccode, "community_name": f"社区{s + 1}-{k + 1}",
                          "street_code": code, "area_km2": 2.0,
                          "geometry": box(hx, hy, hx + STREET_D / 2, hy + STREET_D / 2)})
        n_hot = 0
        for i in range(N_SIDE):
            for j in range(N_SIDE):
                gid = f"G{s + 1:02d}{i:02d}{j:02d}"
                k = (j >= N_SIDE // 2) + 2 * (i >= N_SIDE // 2)
                geom = box(sx + j * d, sy + i * d, sx + (j + 1) * d, sy + (i + 1) * d)
                grids.append({"grid_id": gid, "grid_type": "regular",
                              "community_code": f"{code[:9]}{k + 1:03d}", "street_code": code,
                              "households": 300, "geometry": geom})
                n_hot += _hot(s, i, j)
                for cat in CATEGORIES:
                    # disputes: only the even rows of the hot grids (the category matters)
                    hot = _hot(s, i, j) and (cat != "dispute" or i % 2 == 0)
                    for period in ("all",) + (MONTHS if cat != "any" else ()):
                        cls = "hot_99" if hot else ("cold_95" if (i + j) % 37 == 0 else "none")
                        z = 3.1 if hot else (-2.1 if cls.startswith("cold") else 0.2)
                        hot_rows.append({
                            "grid_id": gid, "category": cat, "period": period,
                            "z_score": z, "p_fdr": 0.001 if cls != "none" else 0.6,
                            "hotspot_class": cls,
                            "trend_class": ("persistent_hot" if hot else "none")
                            if period == "all" else None,
                            "method": "excess", "observed": 9 if hot else 1,
                            "expected": 2.5, "ratio": 3.6 if hot else 0.4,
                            "hot_categories": "dispute" if hot else None,
                            "top_category": "dispute" if hot else None})
                        if cat != "any":
                            counts.append({"grid_id": gid, "category": cat, "period": period,
                                           "incidents": 9 if hot else 1, "per_km2": 4.0})
        per_street[code] = N_SIDE * N_SIDE
        hot_per_street[code] = n_hot
    # community and street verdicts (category 'all', whole period): the last street hot
    hot_prefix = list(names)[-1][:9]  # the last street's code and its communities' codes
    scopes = [("street", c) for c in names] + [("community", c["community_code"]) for c in comms]
    areas = [{"scope": scope, "scope_id": code, "category": "all", "period": "all",
              "observed": 10, "expected": 5.0, "ratio": 2.0, "z_score": 1.0 + n / 10,
              "p_fdr": 0.01, "hotspot_class": "hot_95" if code.startswith(hot_prefix) else "none"}
             for n, (scope, code) in enumerate(scopes)]
    crs = "EPSG:4326"
    frames = {
        "streets": gpd.GeoDataFrame(streets, geometry="geometry", crs=crs),
        "communities": gpd.GeoDataFrame(comms, geometry="geometry", crs=crs),
        "grids": gpd.GeoDataFrame(grids, geometry="geometry", crs=crs),
        "hotspot_units": gpd.GeoDataFrame(
            [{"grid_id": g["grid_id"], "geometry": g["geometry"]} for g in grids],
            geometry="geometry", crs=crs),
        "hotspots": pd.DataFrame(hot_rows),
        "incident_counts": pd.DataFrame(counts),
        "hotspot_areas": pd.DataFrame(areas),
    }
    con = connect(folder / "gridgov.duckdb")
    try:
        for name, frame in frames.items():
            write_gdf(con, name, frame)
    finally:
        con.close()
    return LodProject(dir=folder, units=len(grids), streets=list(names),
                      street_names=names, units_per_street=per_street,
                      hot_per_street=hot_per_street)

"""A tiny hand-made project database for the app tests.

Two streets side by side near (111.67, 40.82), each split into two square communities of
0.01° × 0.01° (about 0.84 km × 1.11 km); 12 buildings per community on a grid (48 in all);
three special units, one barrier line, a few incidents and staff, two runs and three rejects.
Every number the tests expect is in :class:`Project`, computed here by hand.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
from shapely.geometry import LineString, Point, box

from pipelines.db import connect, write_gdf

REPO = Path(__file__).resolve().parents[2]
APP = REPO / "app.py"

X0, Y0, D = 111.66, 40.81, 0.01  # south-west corner, square size (degrees)


@dataclass
class Project:
    """Paths and the expected numbers of the fixture project."""

    dir: Path
    db: Path
    streets: int = 2
    communities: int = 4
    buildings: int = 48
    households: int = 0
    residents: int = 0
    incidents: int = 6
    special_units: int = 3
    staff: int = 5
    rejects: int = 3
    latest_run: str = "run-0002"
    buildings_per_street: dict[str, int] = field(default_factory=dict)
    street_names: dict[str, str] = field(default_factory=dict)


def _frames() -> dict[str, pd.DataFrame]:
    streets = gpd.GeoDataFrame(
        {
            "street_code": ["150102001000", "150102002000"],
            "street_name": ["海拉尔东路街道", "锡林路街道"],
            "district_code": ["150102", "150102"],
            "district_name": ["新城区", "新城区"],
            "function_type": ["old_town", "residential"],
            "area_km2": [1.87, 1.87],
        },
        geometry=[box(X0, Y0, X0 + D, Y0 + 2 * D), box(X0 + D, Y0, X0 + 2 * D, Y0 + 2 * D)],
        crs="EPSG:4326",
    )
    comm_rows, comm_geoms = [], []
    for s, street in enumerate(streets["street_code"]):
        for k in range(2):
            code = f"{street[:9]}{k + 1:03d}"
            comm_rows.append({
                "community_code": code,
                "community_name": ["光明路社区", "团结社区", "新华社区", "东风社区"][2 * s + k],
                "street_code": street,
                "kind": "urban",
                "area_km2": 0.935,
            })
            comm_geoms.append(box(X0 + s * D, Y0 + k * D, X0 + (s + 1) * D, Y0 + (k + 1) * D))
    communities = gpd.GeoDataFrame(comm_rows, geometry=comm_geoms, crs="EPSG:4326")

    b_rows, b_geoms = [], []
    for c, comm in communities.iterrows():
        minx, miny, _, _ = comm.geometry.bounds
        for i in range(12):
            n = len(b_rows)
            households = 20 + (n % 7) * 10  # 20 … 80
            b_rows.append({
                "building_id": f"B{n + 1:04d}",
                "households": households,
                "residents": 2 * households + 1,
                "elderly": n % 5, "elderly_alone": n % 2, "disabled": 0, "low_income": n % 3,
                "children": n % 4, "renters": n % 6,
                "community_code": comm["community_code"],
                "street_code": comm["street_code"],
            })
            b_geoms.append(
                Point(minx + D * (0.15 + 0.23 * (i % 4)), miny + D * (0.2 + 0.3 * (i // 4))))
    buildings = gpd.GeoDataFrame(b_rows, geometry=b_geoms, crs="EPSG:4326")

    units = gpd.GeoDataFrame(
        {
            "unit_id": ["U1", "U2", "U3"],
            "unit_name": ["新城区第一小学", "市第一医院", "东风市场"],
            "unit_type": ["school", "hospital", "market"],
            "households": [0, 0, 12],
            "headcount": [1200, 800, 150],
            "community_code": [communities["community_code"][i] for i in (0, 1, 3)],
            "street_code": [communities["street_code"][i] for i in (0, 1, 3)],
        },
        geometry=[Point(X0 + 0.005, Y0 + 0.003),
                  box(X0 + 0.002, Y0 + 0.012, X0 + 0.004, Y0 + 0.014),
                  Point(X0 + 0.015, Y0 + 0.017)],
        crs="EPSG:4326",
    )
    barriers = gpd.GeoDataFrame(
        {"kind": ["major_road"], "name": ["新华大街"]},
        geometry=[LineString([(X0 - 0.002, Y0 + D), (X0 + 2 * D + 0.002, Y0 + D)])],
        crs="EPSG:4326",
    )
    incidents = gpd.GeoDataFrame(
        {
            "incident_id": [f"E{i}" for i in range(6)],
            "occurred_at": pd.date_range("2025-01-01", periods=6, freq="7D"),
            "category": ["dispute", "safety_hazard", "sanitation", "public_order", "12345",
                         "dispute"],
            "severity": [3, 2, 4, 3, 1, 5],
            "community_code": [communities["community_code"][i % 4] for i in range(6)],
            "street_code": [communities["street_code"][i % 4] for i in range(6)],
        },
        geometry=[Point(X0 + 0.003 + 0.002 * i, Y0 + 0.004 + 0.002 * i) for i in range(6)],
        crs="EPSG:4326",
    )
    staff = pd.DataFrame({
        "staff_id": [f"S{i}" for i in range(5)],
        "street_code": [streets["street_code"][i % 2] for i in range(5)],
        "grid_id": [None] * 5,
        "role": ["full_time"] * 4 + ["part_time"],
        "community_code": [communities["community_code"][i % 4] for i in range(5)],
    })
    rejects = pd.DataFrame({
        "layer": ["buildings", "buildings", "incidents"],
        "source_file": ["buildings.csv", "buildings.csv", "incidents.csv"],
        "source_row": [7, 19, 3],
        "reason": ["户数为负数 / negative households", "户数为负数 / negative households",
                   "时间无法解析 / unparseable time"],
        "raw": [json.dumps({"building_id": "X7", "households": -3}),
                json.dumps({"building_id": "X19", "households": -1}),
                json.dumps({"incident_id": "E99", "occurred_at": "yesterday"})],
    })
    runs = pd.DataFrame({
        "run_id": ["run-0001", "run-0002"],
        "started_at": [datetime(2025, 3, 1, 9, 0, 0), datetime(2025, 3, 2, 9, 0, 0)],
        "finished_at": [datetime(2025, 3, 1, 9, 0, 40), datetime(2025, 3, 2, 9, 1, 5)],
        "status": ["success", "success"],
        "settings": ["{}", "{}"],
        "input_fingerprint": ["abc", "def"],
    })
    return {
        "streets": streets, "communities": communities, "buildings": buildings,
        "special_units": units, "barriers": barriers, "incidents": incidents, "staff": staff,
        "rejects": rejects, "runs": runs,
    }


def build_project(folder: Path) -> Project:
    """Write the fixture tables into ``folder/gridgov.duckdb`` and return what to expect."""
    folder.mkdir(parents=True, exist_ok=True)
    # marks the folder like `gridgov demo` does, so the map credits the demo sources
    (folder / "gridgov.toml").write_text(
        "# gridgov app test project -- synthetic demo data\n", encoding="utf-8")
    db = folder / "gridgov.duckdb"
    frames = _frames()
    con = connect(db)
    try:
        for name, frame in frames.items():
            write_gdf(con, name, frame)
    finally:
        con.close()
    b = frames["buildings"]
    return Project(
        dir=folder,
        db=db,
        households=int(b["households"].sum()),
        residents=int(b["residents"].sum()),
        buildings_per_street=b.groupby("street_code").size().to_dict(),
        street_names=dict(zip(frames["streets"]["street_code"], frames["streets"]["street_name"])),
    )


@pytest.fixture(scope="session")
def project(tmp_path_factory) -> Project:
    """The tiny project, built once per test session."""
    return build_project(tmp_path_factory.mktemp("gridgov_app") / "tiny-project")


@pytest.fixture(scope="session")
def small_demo(tmp_path_factory) -> Path:
    """The small demo city (``gridgov demo --small``) with every stage run."""
    from gridgov.demo_city import build_demo
    from pipelines.run import run_project

    root = tmp_path_factory.mktemp("small_demo") / "demo-small"
    build_demo(root, size="small")
    run_project(root)
    return root

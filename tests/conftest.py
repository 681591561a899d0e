"""Shared fixtures: a tiny hand-made project folder near Hohhot, checkable by hand."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

LON0, LAT0, D = 111.60, 40.80, 0.01  # two streets of 2 communities each, 0.01° squares


def square(x0: float, y0: float, w: float = D, h: float = D) -> list:
    return [[[x0, y0], [x0 + w, y0], [x0 + w, y0 + h], [x0, y0 + h], [x0, y0]]]


def feature(props: dict, gtype: str, coords) -> dict:
    return {"type": "Feature", "properties": props, "geometry": {"type": gtype, "coordinates": coords}}


def write_geojson(path: Path, features: list[dict]) -> None:
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}, ensure_ascii=False),
                    encoding="utf-8")


def make_project(root: Path) -> Path:
    """Two streets (A west, B east), each split in two communities; 40 buildings; 30 incidents."""
    root.mkdir(parents=True, exist_ok=True)
    streets = [
        feature({"street_code": "150102001000", "street_name": "甲街道", "district_code": "150102",
                 "district_name": "新城区", "function_type": "old_town"}, "Polygon", square(LON0, LAT0, D, 2 * D)),
        feature({"street_code": "150102002000", "street_name": "乙街道", "district_code": "150102",
                 "district_name": "新城区", "function_type": "residential"}, "Polygon", square(LON0 + D, LAT0, D, 2 * D)),
    ]
    write_geojson(root / "streets.geojson", streets)
    comms = []
    for s, sx in (("150102001", LON0), ("150102002", LON0 + D)):
        for k, sy in ((1, LAT0), (2, LAT0 + D)):
            comms.append(feature({"community_code": f"{s}00{k}", "community_name": f"社区{s[-1]}{k}",
                                  "street_code": f"{s}000"}, "Polygon", square(sx, sy)))
    write_geojson(root / "communities.geojson", comms)
    lines = ["building_id,households,residents,elderly_alone,lon,lat"]
    n = 0
    for cx in range(2):
        for cy in range(2):
            for j in range(10):
                n += 1
                lon = LON0 + cx * D + 0.001 + (j % 5) * 0.0018
                lat = LAT0 + cy * D + 0.002 + (j // 5) * 0.004
                lines.append(f"B{n:03d},{40 + j},{(40 + j) * 2},{j % 3},{lon:.6f},{lat:.6f}")
    (root / "buildings.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    inc = ["incident_id,occurred_at,category,severity,lon,lat,reporter_phone,reporter_name"]
    for k in range(30):
        lon = LON0 + 0.0005 + (k % 6) * 0.0033
        lat = LAT0 + 0.0005 + (k // 6) * 0.0039
        inc.append(f"E{k:03d},2024-0{1 + k % 9}-1{k % 10} 08:30:00,dispute,{1 + k % 5},{lon:.6f},{lat:.6f},"
                   f"1380000{k:04d},张{k}")
    (root / "incidents.csv").write_text("\n".join(inc) + "\n", encoding="utf-8")
    write_geojson(root / "special_units.geojson", [
        feature({"unit_id": "U1", "unit_name": "第一中学", "unit_type": "school", "headcount": 900}, "Polygon",
                square(LON0 + 0.002, LAT0 + 0.002, 0.002, 0.002)),
        feature({"unit_id": "U2", "unit_name": "人民医院", "unit_type": "hospital", "headcount": 1200}, "Point",
                [LON0 + 0.015, LAT0 + 0.015]),
    ])
    write_geojson(root / "barriers.geojson", [
        feature({"kind": "major_road", "name": "新华大街"}, "LineString",
                [[LON0 - 0.001, LAT0 + D], [LON0 + 2 * D + 0.001, LAT0 + D]]),
    ])
    (root / "staff.csv").write_text(
        "staff_id,street_code,community_code,role,staff_name,phone,id_card\n"
        "S1,150102001000,150102001001,full_time,王五,13912345678,110101199003071234\n"
        "S2,150102002000,,part_time,赵六,13912345679,11010119900307123X\n", encoding="utf-8")
    return root


@pytest.fixture
def tiny_project(tmp_path: Path) -> Path:
    return make_project(tmp_path / "tiny")


@pytest.fixture(scope="session")
def small_demo(tmp_path_factory) -> Path:
    """The small demo city (one real street), built and run once per test session."""
    from gridgov.demo_city import build_demo
    from pipelines.run import run_project

    root = tmp_path_factory.mktemp("demo") / "demo-small"
    build_demo(root, size="small")
    run_project(root)
    return root

"""Barriers that hold: a road, railway or river crossing a community cuts it, always.

Hand-checkable geometry in EPSG:4546 metres. ``shapely.intersection(line, polygon)`` computes
the points where a line leaves a polygon with rounding error, so a clipped barrier may end
~1e-10 m inside the community and never close its cut; the engine must cut anyway. Cells on
the two sides of a barrier are never neighbours, no basic grid is crossed by a barrier,
dedicated and basic grids never overlap, and every grid is one valid polygon.
"""
from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely

from geo import grids as G
from geo.tessellation import _pieces

CRS = "EPSG:4546"
X0, Y0 = 560_000.0, 4_518_000.0
CODE = "150102001001"
SIDE = 800.0


def square() -> shapely.Polygon:
    return shapely.box(X0, Y0, X0 + SIDE, Y0 + SIDE)


def community(geom=None) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({"community_code": [CODE], "street_code": [CODE[:9]],
                             "kind": ["urban"]}, geometry=[geom or square()], crs=CRS)


def road(line) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({"kind": ["road"], "name": ["新华大街"]}, geometry=[line], crs=CRS)


def lattice_buildings(step=40.0, households=6) -> gpd.GeoDataFrame:
    xs = X0 + step / 2 + step * np.arange(int(SIDE // step))
    gx, gy = np.meshgrid(xs, xs - X0 + Y0)
    xy = np.column_stack([gx.ravel(), gy.ravel()])
    return gpd.GeoDataFrame({
        "building_id": [f"b{i}" for i in range(len(xy))],
        "households": np.full(len(xy), households), "community_code": CODE},
        geometry=shapely.points(xy), crs=CRS)


#: A road through the square from its west edge to its east edge, at a slant.
DIAGONAL = shapely.LineString([(X0 - 100.0, Y0 + 123.456789), (X0 + SIDE + 100.0, Y0 + 611.111111)])

#: A community with slanted edges, and a road across it: where the road leaves the community is
#: not representable exactly, and the clipped road ends ~1e-11 m inside (checked below).
QUAD = shapely.Polygon([(X0, Y0), (X0 + 800.0, Y0 + 37.3), (X0 + 777.7, Y0 + 811.1),
                        (X0 - 21.9, Y0 + 790.3)])
ACROSS = shapely.LineString([(X0 - 100.0, Y0 + 200.1), (X0 + 900.0, Y0 + 500.3)])


def _crossing(p, q, a, b) -> np.ndarray:
    """Where line p-q meets line a-b (exact formula, by hand)."""
    p, q, a, b = (np.asarray(v, dtype=float) for v in (p, q, a, b))
    r, s = q - p, b - a
    d = a - p
    t = (d[0] * s[1] - d[1] * s[0]) / (r[0] * s[1] - r[1] * s[0])
    return p + t * r


def side_of(line: shapely.LineString, xy: np.ndarray) -> np.ndarray:
    (ax, ay), (bx, by) = line.coords[0], line.coords[-1]
    return np.sign((bx - ax) * (xy[:, 1] - ay) - (by - ay) * (xy[:, 0] - ax))


def draw(b, com, bar, units=None):
    cells = G.build_cells(b, com, bar, special_units=units)
    adj = G.cell_adjacency(cells)
    ded = G.dedicated_grids(cells, units, adjacency=adj) if units is not None else None
    plan, members = G.partition(cells, adj, com, dedicated=ded, seed=1)
    return cells, adj, plan, members


# --------------------------------------------------------------------------------------------


def test_the_clipped_line_misses_the_edge_and_still_cuts():
    poly = QUAD
    # the 1e-10 case: the clipped barrier's end points are not on the community's edge
    clipped = shapely.intersection(ACROSS, poly)
    ends = [shapely.Point(clipped.coords[0]), shapely.Point(clipped.coords[-1])]
    assert max(poly.boundary.distance(p) for p in ends) < 1e-9  # a hair ...
    assert not any(poly.boundary.intersects(p) for p in ends)  # ... but not on the edge
    # noding the clipped line as the engine did before gives no cut at all
    naive = shapely.polygonize(shapely.get_parts(shapely.union_all([poly.boundary, clipped])))
    assert len(shapely.get_parts(naive)) == 1
    # by hand: the road meets the west edge (0,0)-(-21.9,790.3) and the east edge
    # (800,37.3)-(777.7,811.1); the south piece is the polygon below the road
    west = _crossing(ACROSS.coords[0], ACROSS.coords[1], (X0, Y0), (X0 - 21.9, Y0 + 790.3))
    east = _crossing(ACROSS.coords[0], ACROSS.coords[1], (X0 + 800.0, Y0 + 37.3),
                     (X0 + 777.7, Y0 + 811.1))
    south_by_hand = shapely.Polygon([(X0, Y0), (X0 + 800.0, Y0 + 37.3), tuple(east), tuple(west)])
    for lines in ([clipped], [ACROSS]):  # whether the barrier comes clipped or whole
        arr = np.array(lines, dtype=object)
        pieces = _pieces(poly, arr, shapely.STRtree(arr))
        assert len(pieces) == 2
        assert sum(p.area for p in pieces) == pytest.approx(poly.area, rel=1e-9)
        south = min(pieces, key=lambda p: p.centroid.y)
        assert south.area == pytest.approx(south_by_hand.area, rel=1e-9)
        assert south.symmetric_difference(south_by_hand).area < 1e-3


def test_a_line_ending_a_little_short_of_the_edge_still_cuts():
    poly = square()
    short = shapely.LineString([(X0 + 0.2, Y0 + 300.0), (X0 + SIDE - 0.3, Y0 + 500.0)])
    arr = np.array([short], dtype=object)
    pieces = _pieces(poly, arr, shapely.STRtree(arr))
    assert len(pieces) == 2
    # by hand: each end joined to the nearest point of the edge, (0, 300) and (800, 500)
    south = shapely.Polygon([(X0, Y0), (X0 + SIDE, Y0), (X0 + SIDE, Y0 + 500.0),
                             (X0 + SIDE - 0.3, Y0 + 500.0), (X0 + 0.2, Y0 + 300.0),
                             (X0, Y0 + 300.0)])
    got = min(pieces, key=lambda p: p.centroid.y)
    assert got.area == pytest.approx(south.area, rel=1e-9)
    assert got.symmetric_difference(south).area < 1e-3


def test_a_road_stopping_inside_is_closed_straight_on_a_stub_is_not():
    poly = square()
    # 700 m of road into the square, stopping 100 m from the east edge: closed straight on
    mostly = shapely.LineString([(X0 - 20.0, Y0 + 400.0), (X0 + 700.0, Y0 + 400.0)])
    arr = np.array([mostly], dtype=object)
    pieces = _pieces(poly, arr, shapely.STRtree(arr))
    assert sorted(round(p.area) for p in pieces) == [320_000, 320_000]
    # 150 m into the square, stopping 650 m short of the edge: more than STUB_CLOSE_M (50 m)
    # inside, so any grid holding it would be crossed by it: closed straight on all the same
    far = shapely.LineString([(X0 - 20.0, Y0 + 400.0), (X0 + 150.0, Y0 + 300.0)])
    arr = np.array([far], dtype=object)
    pieces = _pieces(poly, arr, shapely.STRtree(arr))
    assert len(pieces) == 2
    assert sum(p.area for p in pieces) == pytest.approx(SIDE * SIDE, rel=1e-9)
    # the cut goes on along the road's own direction (slope -100/170): it meets the west edge
    # at y = 400 - 20·100/170 and the south edge at x = -20 + 400·170/100 = 660: the piece
    # cut off is that triangle
    south = min(pieces, key=lambda p: p.area)
    assert south.area == pytest.approx(0.5 * (400.0 - 20.0 * 100.0 / 170.0) * 660.0, rel=1e-9)
    # 40 m into the square: a stub (less than STUB_CLOSE_M; closing it would take 760 m of line
    # that is not there)
    stub = shapely.LineString([(X0 - 20.0, Y0 + 400.0), (X0 + 40.0, Y0 + 400.0)])
    arr = np.array([stub], dtype=object)
    assert len(_pieces(poly, arr, shapely.STRtree(arr))) == 1


def test_a_long_stub_is_closed_at_the_next_barrier_ahead():
    poly = square()
    # a north–south road across the square at x = 500, and a road from the west edge stopping
    # 100 m east of x = 200 (300 m short of the first): the cut ends on the first road
    ns = shapely.LineString([(X0 + 500.0, Y0 - 30.0), (X0 + 500.0, Y0 + SIDE + 30.0)])
    stub = shapely.LineString([(X0 - 20.0, Y0 + 400.0), (X0 + 200.0, Y0 + 400.0)])
    arr = np.array([ns, stub], dtype=object)
    pieces = _pieces(poly, arr, shapely.STRtree(arr))
    # west of the first road: 500 m × 800 m cut in two halves; east of it: 300 m × 800 m, whole
    assert sorted(round(p.area) for p in pieces) == [200_000, 200_000, 240_000]


def test_no_grid_holds_a_long_stub():
    # a road running 300 m into the square and stopping: no basic grid may hold > 50 m of it
    stub = shapely.LineString([(X0 - 20.0, Y0 + 410.0), (X0 + 300.0, Y0 + 430.0)])
    _, _, plan, _ = draw(lattice_buildings(), community(), road(stub))
    grids = plan.grids if hasattr(plan, "grids") else plan
    crossing = G.barrier_crossing(grids, road(stub))
    assert crossing.max() <= G.CROSSING_M, crossing


def test_a_side_road_ending_a_hair_off_the_main_road_still_cuts():
    # a T-junction: the side road's end point is computed on the main road (rounding puts it
    # ~1e-12 m off it), so noding both as given leaves the side road a dangle
    main = shapely.LineString([(X0 - 50.0, Y0 + 100.3), (X0 + SIDE + 50.0, Y0 + 700.7)])
    t = 0.4137
    foot = shapely.line_interpolate_point(main, t, normalized=True)
    side = shapely.LineString([(X0 + 33.3, Y0 + SIDE + 60.0), (foot.x, foot.y)])
    assert main.distance(shapely.Point(side.coords[-1])) < 1e-9
    arr = np.array([main, side], dtype=object)
    pieces = _pieces(QUAD, arr, shapely.STRtree(arr))
    assert len(pieces) == 3  # south of the main road; north of it, west and east of the side road
    assert sum(p.area for p in pieces) == pytest.approx(QUAD.area, rel=1e-9)
    # a road that comes 42 m into the community (less than STUB_CLOSE_M) and stops is a stub
    # and cuts nothing more
    stub = shapely.LineString([(X0 + 33.3, Y0 + SIDE + 60.0), (X0 + 40.0, Y0 + 750.0)])
    arr = np.array([main, stub], dtype=object)
    assert main.distance(shapely.Point(stub.coords[-1])) > 100
    assert len(_pieces(QUAD, arr, shapely.STRtree(arr))) == 2


def test_road_end_to_end_gives_two_sides_and_no_grid_crosses_it():
    b = lattice_buildings()  # 400 buildings x 6 = 2,400 households: several grids
    cells, adj, plan, members = draw(b, community(), road(DIAGONAL))
    # two pieces, every cell on one side of the road
    assert sorted(cells["piece"].unique()) == [0, 1]
    cxy = shapely.get_coordinates(shapely.point_on_surface(cells.geometry.values))
    side = side_of(DIAGONAL, cxy)
    for p in (0, 1):
        assert len(set(side[cells["piece"].to_numpy() == p])) == 1
    # cells on the two sides are never neighbours
    a = adj[CODE]
    piece = cells.set_index("cell_id")["piece"]
    for i in range(a.n):
        for j in a.neighbors(i):
            assert piece[a.cell_ids[i]] == piece[a.cell_ids[j]]
    assert len(a.barrier_pairs) > 0  # they are kept apart as barrier pairs
    # no basic grid has road inside it; no overlap; every grid one valid polygon
    cross = G.barrier_crossing(plan, road(DIAGONAL))
    assert cross.max() < 1.0
    integ = G.plan_integrity(plan, road(DIAGONAL))
    assert integ["n_barrier_crossed"] == integ["n_overlaps"] == integ["n_invalid"] == 0
    assert not integ["flagged"]
    lab = members.set_index("cell_id")["grid_id"]
    for g, grp in cells.groupby(lab.reindex(cells["cell_id"]).to_numpy()):
        assert grp["piece"].nunique() == 1, g


def test_school_crossed_by_a_road_and_basic_grids_never_overlap():
    b = lattice_buildings()
    mid = shapely.LineString([(X0 - 100.0, Y0 + 401.234567), (X0 + SIDE + 100.0, Y0 + 398.7654321)])
    school = shapely.box(X0 + 300.0, Y0 + 320.0, X0 + 460.0, Y0 + 480.0)  # 160 x 160 m
    units = gpd.GeoDataFrame({"unit_id": ["S1"], "unit_name": ["第一中学"],
                              "unit_type": ["school"], "headcount": [1200]},
                             geometry=[school], crs=CRS)
    cells, adj, plan, members = draw(b, community(), road(mid), units)
    ded = plan[plan["grid_type"] == "dedicated"]
    basic = plan[plan["grid_type"] == "basic"]
    assert len(ded) == 1  # one school, one dedicated grid, on both sides of the road
    assert ded.geometry.iloc[0].geom_type == "Polygon" and ded.geometry.iloc[0].is_valid
    assert ded.geometry.iloc[0].symmetric_difference(school).area < 1.0
    # the school's cells sit on both sides of the road, in different pieces
    assert cells.loc[cells["unit_id"] == "S1", "piece"].nunique() == 2
    # basic grids: not one m² inside the school, none crossed by the road
    inside = shapely.area(shapely.intersection(basic.geometry.values, school))
    assert inside.max() < 1.0
    integ = G.plan_integrity(plan, road(mid))
    assert integ["n_overlaps"] == 0 and integ["n_invalid"] == 0
    assert integ["n_barrier_crossed"] == 0
    # the grids tile the community
    u = shapely.union_all(plan.geometry.values, grid_size=1e-3)
    assert shapely.symmetric_difference(u, square()).area < 1.0
    assert plan.area.sum() == pytest.approx(square().area, rel=1e-6)


def test_integrity_counts_crossings_overlaps_and_invalid_polygons():
    a = shapely.box(0, 0, 100, 100)
    b = shapely.box(100, 0, 200, 100)
    c = shapely.box(150, 50, 250, 150)  # overlaps b by 50 x 50 = 2,500 m²
    bowtie = shapely.Polygon([(300, 0), (400, 100), (400, 0), (300, 100)])  # self-intersecting
    grids = gpd.GeoDataFrame({"grid_id": ["A", "B", "C", "D"],
                              "grid_type": ["basic", "basic", "dedicated", "basic"]},
                             geometry=[a, b, c, bowtie], crs=CRS)
    lines = gpd.GeoDataFrame(geometry=[shapely.LineString([(50, -10), (50, 110)]),  # 100 m in A
                                       shapely.LineString([(100, 0), (100, 100)])],  # A|B edge
                             crs=CRS)
    cross = G.barrier_crossing(grids, lines)
    assert cross[0] == pytest.approx(98.0)  # inside A shrunk by 1 m
    assert cross[1] == pytest.approx(0.0)  # a road along the edge does not cross B
    integ = G.plan_integrity(grids, lines)
    assert integ["crossed_grids"] == ["A"]
    assert integ["overlap_pairs"] == [("B", "C")]
    assert integ["invalid_grids"] == ["D"]
    assert integ["flagged"]
    m = G.plan_metrics(grids.iloc[:2].assign(households=[400, 400], workload=[1.0, 1.0],
                                              community_code=CODE, status="ok"),
                       barriers=lines)
    assert m["n_barrier_crossed"] == 1 and m["n_overlaps"] == 0 and m["n_invalid"] == 0
    assert m["flagged"]


def test_generated_city_with_a_river_and_a_railway_holds():
    city = G.synthetic_city(2500, seed=11, per_community=250)
    cells, adj, plan, members = draw(city["buildings"], city["communities"], city["barriers"],
                                     city["special_units"])
    integ = G.plan_integrity(plan, city["barriers"])
    assert integ["n_overlaps"] == 0 and integ["n_invalid"] == 0
    assert integ["n_barrier_crossed"] == 0, integ["crossed_grids"]
    # every community the river or the railway crosses edge to edge is cut
    lines = np.asarray(city["barriers"].geometry.values, dtype=object)
    for code, geom in zip(city["communities"]["community_code"], city["communities"].geometry):
        crossing = [ln for ln in lines if len(shapely.get_parts(
            shapely.difference(geom, shapely.buffer(ln, 0.01)))) > 1]
        if crossing:
            assert cells.loc[cells["community_code"] == code, "piece"].nunique() > 1, code

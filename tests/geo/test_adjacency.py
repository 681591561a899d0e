"""Cell adjacency: shared boundary lengths, corner contacts and T-junctions."""
import geopandas as gpd
import numpy as np
import shapely

from geo.tessellation import community_adjacency


def _cells(geoms):
    return gpd.GeoDataFrame({"cell_id": [f"c{i}" for i in range(len(geoms))], "community_code": "X",
                             "piece": 0}, geometry=geoms, crs=3857)


def _pairs(adj):
    i, j, s = adj.pairs()
    return {(int(a), int(b)): float(c) for a, b, c in zip(i, j, s)}


def test_lattice_links_rook_neighbours_not_corners():
    boxes = [shapely.box(x, y, x + 10, y + 10) for y in (0, 10, 20) for x in (0, 10, 20)]
    got = _pairs(community_adjacency(_cells(boxes)))
    want = {(a, b) for a in range(9) for b in range(a + 1, 9)
            if abs(a % 3 - b % 3) + abs(a // 3 - b // 3) == 1}
    assert set(got) == want  # 12 rook pairs, none of the 8 diagonal (corner) contacts
    assert np.allclose(list(got.values()), 10.0)


def test_t_junction_found_with_its_length():
    # cell 0's top edge is one segment; cells 1 and 2 sit on it with a vertex in the middle
    # (x = 7) that cell 0 lacks, so no edge matches vertex for vertex
    a = shapely.box(0, 0, 10, 5)
    b = shapely.box(0, 5, 7, 9)
    c = shapely.box(7, 5, 12, 9)
    got = _pairs(community_adjacency(_cells([a, b, c])))
    assert set(got) == {(0, 1), (0, 2), (1, 2)}
    assert abs(got[(0, 1)] - 7.0) < 0.01
    assert abs(got[(0, 2)] - 3.0) < 0.01
    assert abs(got[(1, 2)] - 4.0) < 0.01


def test_short_contact_below_tolerance_is_not_a_neighbour():
    a = shapely.box(0, 0, 10, 10)
    b = shapely.box(10, 9.97, 20, 20)  # shares 3 cm of a's right edge, no matching vertex
    assert _pairs(community_adjacency(_cells([a, b]), tolerance=0.05)) == {}
    b2 = shapely.box(10, 9.5, 20, 20)  # 50 cm
    got = _pairs(community_adjacency(_cells([a, b2]), tolerance=0.05))
    assert abs(got[(0, 1)] - 0.5) < 0.01

"""Cells are single polygons even where clipping leaves detached slivers."""
from __future__ import annotations

import pandas as pd
import shapely

from geo.tessellation import _mend_multipart


def _cells(geoms):
    n = len(geoms)
    return pd.DataFrame({
        "cell_id": [f"c{i}" for i in range(n)], "community_code": ["150102001001"] * n, "piece": [0] * n,
        "building_ids": [[f"b{i}"] for i in range(n)], "n_buildings": [1] * n, "households": [10 * (i + 1) for i in range(n)],
        "residents": [20.0] * n, "workload": [1.0] * n, "unit_id": [None] * n, "geometry": geoms,
    })


def test_sliver_joins_the_neighbour_it_shares_most_boundary_with():
    a = shapely.MultiPolygon([shapely.box(0, 0, 10, 10), shapely.box(20, 0, 21, 3)])
    b = shapely.box(10, 0, 20, 10)   # shares 3 m with the sliver
    c = shapely.box(21, 0, 30, 1)    # shares 1 m with the sliver
    cells = _cells([a, b, c])
    out = _mend_multipart(cells)
    assert (shapely.get_type_id(out.geometry.to_numpy()) == 3).all()
    assert len(out) == 3 and out.households.tolist() == [10, 20, 30]
    assert out.geometry.iloc[1].equals(shapely.union(b, shapely.box(20, 0, 21, 3)))
    assert sum(g.area for g in out.geometry) == a.area + b.area + c.area


def test_sliver_with_no_neighbour_becomes_an_empty_cell():
    a = shapely.MultiPolygon([shapely.box(0, 0, 10, 10), shapely.box(50, 50, 51, 51)])
    out = _mend_multipart(_cells([a, shapely.box(10, 0, 20, 10)]))
    assert len(out) == 3 and (shapely.get_type_id(out.geometry.to_numpy()) == 3).all()
    new = out[out.cell_id == "c0-s1"].iloc[0]
    assert new.households == 0 and new.building_ids == [] and new.geometry.area == 1.0
    assert out.households.sum() == 30


def test_a_cell_that_vanishes_on_snapping_gives_its_buildings_to_the_nearest_cell():
    # seen on a generated province: a Voronoi sliver between a barrier, a unit and the edge
    # became an empty polygon on the 1 mm snapping while holding buildings; the centroid of
    # the empty cell then stopped the run ("getY called on empty Point")
    import numpy as np
    import pandas as pd
    import shapely

    from geo.tessellation import _fold_empty_cells

    cells = pd.DataFrame({
        "piece": [0, 0, 0, 1],
        "geometry": [shapely.box(0, 0, 10, 10), shapely.Polygon(), shapely.box(20, 0, 30, 10),
                     shapely.Polygon()],
        "building_ids": [["a"], ["b", "c"], ["d"], []],
        "n_buildings": [1, 2, 1, 0], "households": [5, 7, 3, 0],
        "residents": [10.0, 14.0, 6.0, 0.0], "workload": [1.0, 2.0, 3.0, 0.0]})
    before = np.array([shapely.box(0, 0, 10, 10), shapely.box(18, 5, 18.0005, 5.0005),
                       shapely.box(20, 0, 30, 10), shapely.box(50, 50, 50.0001, 50.0001)],
                      dtype=object)
    out = _fold_empty_cells(cells, before)
    assert not shapely.is_empty(out["geometry"].to_numpy()).any()
    assert out["households"].sum() == 15 and out["n_buildings"].sum() == 4
    # the sliver lay at x = 18: its buildings join the cell at 20–30, not the one at 0–10
    right = out[out["geometry"].map(lambda g: g.bounds[0]) == 20].iloc[0]
    assert sorted(right["building_ids"]) == ["b", "c", "d"]
    assert right["households"] == 10 and right["residents"] == 20.0 and right["workload"] == 5.0

"""Re-drawing today's grids meets the norm wherever it can be met (issue #10 part 2).

Today's grids here are as far from the norm as the demo city's (42 % within it): each
community is cut into a number of grids that ignores households (k-means on building
positions with too few or too many clusters). The re-draw must move as few households as it
can, but first it must leave no grid ``out_of_norm`` (a grid outside the norm in a piece that
admits it). The move-sparing repair alone left such grids on the demo city (two neighbours of
289 and 258 households beside full grids); a fresh draw of the community is then taken.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.cluster.vq import kmeans2

from geo import grids as G
from geo import partition as PT


@pytest.fixture(scope="module")
def city():
    c = G.synthetic_city(3000, seed=21, per_community=330, barriers=True, special_units=False,
                         rural_share=0.0)
    cells = G.build_cells(c["buildings"], c["communities"], c["barriers"])
    adj = G.cell_adjacency(cells)
    return c, cells, adj


def _bad_current(cells, seed: int) -> pd.Series:
    """Today's grids: k-means of the cells' centroids per community, k off by a factor."""
    rng = np.random.default_rng(seed)
    out = []
    for code, grp in cells.groupby("community_code", sort=True):
        total = float(grp["households"].sum())
        k = max(1, int(round(total / 400 * rng.choice([0.55, 0.8, 1.3, 1.7]))))
        k = min(k, len(grp))
        xy = np.column_stack([grp.geometry.centroid.x, grp.geometry.centroid.y])
        _, lab = kmeans2(xy, k, seed=int(rng.integers(1 << 30)), minit="++")
        out.append(pd.Series([f"{code}{int(g) + 1:03d}" for g in lab], index=grp["cell_id"]))
    return pd.concat(out)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_redraw_leaves_no_grid_out_of_norm_where_the_norm_can_be_met(city, seed):
    c, cells, adj = city
    cur = _bad_current(cells, seed)
    g0, _ = G.grids_from_labels(cells, cur, communities=c["communities"], adjacency=adj)
    assert (g0["status"] == "out_of_norm").sum() > 10  # today's map is far from the norm
    labels, moves = PT.redraw(cells, adj, cur, communities=c["communities"], seed=seed)
    grids, _ = G.grids_from_labels(cells, labels, communities=c["communities"], adjacency=adj)
    out = grids[grids["status"] == "out_of_norm"]
    assert out.empty, out[["grid_id", "households"]].to_string()
    # and it moved only part of the city's households
    assert 0 < moves["households"].sum() < cells["households"].sum()


def test_demo_community_that_the_repair_left_out_of_the_norm():
    """Community 150103007005 of the demo city, its cells and today's grids as the run saw
    them (tests/geo/data; EPSG:4546, 1 mm precision). Today: 6 grids of 221–534 households.
    The move-sparing repair alone ended with 431, 427, 468, 289 and 258 households (two grids
    out of the norm); the re-draw must meet the norm in all of them."""
    import geopandas as gpd
    import shapely

    cells = gpd.read_parquet(Path(__file__).parent / "data" / "redraw_150103007005.parquet")
    cells["building_ids"] = [[] for _ in range(len(cells))]
    cur = pd.Series(cells["current"].to_numpy(), index=cells["cell_id"].to_numpy())
    code = "150103007005"
    comm = gpd.GeoDataFrame({"community_code": [code], "street_code": ["150103007000"],
                             "kind": ["urban"]},
                            geometry=[shapely.union_all(cells.geometry.values)], crs=cells.crs)
    adj = G.cell_adjacency(cells)
    g0, _ = G.grids_from_labels(cells, cur, communities=comm, adjacency=adj)
    assert sorted(g0["households"]) == [220, 221, 248, 299, 351, 534]
    labels, moves = PT.redraw(cells, adj, cur, communities=comm, seed=0)
    grids, _ = G.grids_from_labels(cells, labels, communities=comm, adjacency=adj)
    assert (grids["status"] == "ok").all(), grids[["households", "status"]].to_string()
    assert grids["households"].between(300, 500).all()
    assert grids["households"].sum() == cells["households"].sum() == 1873
    assert 0 < moves["households"].sum() < 1873

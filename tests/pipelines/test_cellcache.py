"""Cells and adjacency built per community on the workers and cached by fingerprint (issue #13.5).

* The per-community build (in this process, in 2 processes, read back from the cache) gives
  exactly what ``build_cells`` + ``cell_adjacency`` of the whole city give: every column, every
  row in the same order, every adjacency array.
* A changed building rebuilds only its community; a new barrier rebuilds every community; a
  damaged cache is rebuilt, never trusted.
* The grids stage run twice on the demo: the second run reads every community from the cache and
  draws the same plan; after one building changes, that one community is rebuilt and the plan
  is the one drawn without any cache.
"""
from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
import shapely

from geo import grids as G
from pipelines.cellcache import cells_and_adjacency

FIELDS = ("cell_ids", "indptr", "indices", "shared", "barrier_pairs", "barrier_shared")


def _assert_same(ref, got):
    (c0, a0), (c1, a1) = ref, got
    pd.testing.assert_frame_equal(pd.DataFrame(c0.drop(columns="geometry")),
                                  pd.DataFrame(c1.drop(columns="geometry")), check_exact=True)
    assert c0.crs == c1.crs
    assert shapely.to_wkb(c0.geometry.values).tolist() == shapely.to_wkb(c1.geometry.values).tolist()
    assert list(a0) == list(a1)
    for code in a0:
        for f in FIELDS:
            x, y = getattr(a0[code], f), getattr(a1[code], f)
            assert x.dtype == y.dtype and np.array_equal(x, y), (code, f)


def _whole(inp):
    cells = G.build_cells(inp["buildings"], inp["communities"], inp["barriers"],
                          special_units=inp["special_units"], max_cell_area=40_000)
    return cells, G.cell_adjacency(cells)


@pytest.fixture(scope="module")
def city():
    c = G.synthetic_city(1500, seed=4, per_community=300)
    return {k: c[k] for k in ("buildings", "communities", "barriers", "special_units")}


def test_per_community_build_and_cache_give_the_whole_city_build(city, tmp_path):
    ref = _whole(city)
    assert len(ref[0]) > 500 and len(ref[1]) > 3
    assert ref[0]["unit_id"].notna().any() and (ref[0]["piece"] > 0).any()  # units and barriers at work
    kw = {"max_cell_area": 40_000}
    c, a, info = cells_and_adjacency(city, n_jobs=1, **kw)
    _assert_same(ref, (c, a))
    assert info == {"communities": len(ref[1]), "from_cache": 0, "built": len(ref[1])}
    c, a, info = cells_and_adjacency(city, n_jobs=2, cache_dir=tmp_path, **kw)
    _assert_same(ref, (c, a))
    assert info["built"] == len(ref[1]) and (tmp_path / "cells.parquet").is_file()
    c, a, info = cells_and_adjacency(city, n_jobs=2, cache_dir=tmp_path, **kw)
    _assert_same(ref, (c, a))
    assert info["from_cache"] == len(ref[1]) and info["built"] == 0


def test_a_changed_building_rebuilds_only_its_community(city, tmp_path):
    kw = {"max_cell_area": 40_000}
    cells_and_adjacency(city, cache_dir=tmp_path, **kw)
    changed = dict(city)
    b = city["buildings"].copy()
    b.loc[b.index[7], "households"] = int(b["households"].iloc[7]) + 13
    changed["buildings"] = b
    c, a, info = cells_and_adjacency(changed, n_jobs=2, cache_dir=tmp_path, **kw)
    assert info["built"] == 1 and info["from_cache"] == info["communities"] - 1
    _assert_same(_whole(changed), (c, a))
    # and the next run reads the new one
    c, a, info = cells_and_adjacency(changed, cache_dir=tmp_path, **kw)
    assert info["built"] == 0
    _assert_same(_whole(changed), (c, a))


def test_a_new_barrier_or_another_setting_rebuilds_every_community(city, tmp_path):
    cells_and_adjacency(city, cache_dir=tmp_path, max_cell_area=40_000)
    n = len(city["communities"])
    _, _, info = cells_and_adjacency(city, cache_dir=tmp_path, max_cell_area=20_000)
    assert info["built"] == n
    more = dict(city)
    bar = city["barriers"]
    more["barriers"] = pd.concat([bar, bar.iloc[:1].assign(geometry=bar.geometry.iloc[:1].translate(3.0, 0.0))],
                                 ignore_index=True).set_crs(bar.crs, allow_override=True)
    _, _, info = cells_and_adjacency(more, cache_dir=tmp_path, max_cell_area=20_000)
    assert info["built"] == n


def test_a_damaged_cache_is_rebuilt(city, tmp_path, caplog):
    ref = cells_and_adjacency(city, cache_dir=tmp_path, max_cell_area=40_000)
    (tmp_path / "cells.parquet").write_bytes(b"not a parquet file")
    c, a, info = cells_and_adjacency(city, cache_dir=tmp_path, max_cell_area=40_000)
    assert info["built"] == info["communities"]
    _assert_same(ref[:2], (c, a))
    assert any("unreadable" in r.getMessage() for r in caplog.records)


def test_grids_stage_twice_on_the_demo_same_plan_and_one_changed_building(tmp_path):
    from gridgov.demo_city import build_demo
    from pipelines import stage_grids
    from pipelines.config import load_settings
    from pipelines.db import connect
    from pipelines.run import run_project
    from tests.pipelines import plankit

    base = tmp_path / "demo"
    build_demo(base, size="small")
    run_project(base, stages=[])  # ingest only
    plankit.add_settings(base, "[grids]\nstart_from_current_grids = false\nn_jobs = 2")

    def draw(project, *, change=False, cache=True):
        if not cache:
            plankit.add_settings(project, "")
            toml = project / "gridgov.toml"
            toml.write_text(toml.read_text(encoding="utf-8").replace("n_jobs = 2", "n_jobs = 2\ncell_cache = false"),
                            encoding="utf-8")
        con = connect(project / "gridgov.duckdb")
        try:
            if change:  # one building of one community: more households
                con.execute("UPDATE buildings SET households = households + 40 "
                            "WHERE building_id = (SELECT min(building_id) FROM buildings)")
            out = stage_grids.run(con, load_settings(project))
        finally:
            con.close()
        return out, plankit.members(project)

    first, second, third, fresh = (tmp_path / n for n in ("first", "second", "third", "fresh"))
    for p in (first, second, third, fresh):
        shutil.copytree(base, p)
    out1, m1 = draw(first)
    n = out1["cells_communities_built"]
    assert n > 5 and out1["cells_communities_from_cache"] == 0
    assert (first / ".gridgov_cache" / "cells" / "cells.parquet").is_file()
    shutil.copytree(first / ".gridgov_cache", second / ".gridgov_cache")
    out2, m2 = draw(second)
    assert out2["cells_communities_from_cache"] == n and out2["cells_communities_built"] == 0
    assert len(m1) > 1000 and m1.index.equals(m2.index) and (m1 == m2).all()

    shutil.copytree(first / ".gridgov_cache", third / ".gridgov_cache")
    out3, m3 = draw(third, change=True)
    assert out3["cells_communities_built"] == 1 and out3["cells_communities_from_cache"] == n - 1
    out4, m4 = draw(fresh, change=True, cache=False)
    assert out4["cells_communities_built"] == n and not (fresh / ".gridgov_cache").exists()
    assert m3.index.equals(m4.index) and (m3 == m4).all()

"""Today's grids as the start (issue #10 part 2): P0000 as given, keep what meets the rules.

A generated city is drawn by the engine; that plan, with two communities spoiled (two grids
merged into one far above the maximum), becomes the project's ``current_grids``. ``gridgov run``
must store it as plan P0000, keep every other community exactly (same buildings, same codes),
re-draw the two spoiled ones to the norm, and say who moved and which worker covers what.
"""
from __future__ import annotations

import geopandas as gpd
import pandas as pd
import pytest
import shapely

from geo import grids as G
from pipelines.db import connect, read_table

CRS = "EPSG:4546"


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    city = G.synthetic_city(2400, seed=8, per_community=300, barriers=False, special_units=False,
                            rural_share=0.0)
    cells = G.build_cells(city["buildings"], city["communities"])
    adj = G.cell_adjacency(cells)
    plan, _members = G.partition(cells, adj, city["communities"], seed=2)
    assert (plan["status"] == "ok").all()
    # spoil two communities: merge their first two touching grids into one
    cur = plan[["grid_id", "community_code", "geometry"]].copy()
    spoiled = []
    for code in sorted(cur["community_code"].unique()):
        grp = cur[cur["community_code"] == code].sort_values("grid_id")
        a = grp.iloc[0]
        nb = [r for r in grp.iloc[1:].itertuples() if r.geometry.intersection(a.geometry).length > 1]
        if not nb:
            continue
        b = nb[0]
        merged = shapely.union(a.geometry, b.geometry, grid_size=1e-3)
        cur = cur[cur["grid_id"] != b.grid_id]
        cur.loc[cur["grid_id"] == a.grid_id, "geometry"] = merged
        spoiled.append((code, a.grid_id, b.grid_id))
        if len(spoiled) == 2:
            break
    cur = gpd.GeoDataFrame(cur, geometry="geometry", crs=CRS)
    cur["grid_type"] = "basic"
    cur["staff_id"] = [f"S{i:03d}" for i in range(len(cur))]

    root = tmp_path_factory.mktemp("current") / "city"
    root.mkdir()
    to = "EPSG:4326"
    city["streets"].to_crs(to).to_file(root / "streets.geojson", driver="GeoJSON")
    city["communities"].to_crs(to).to_file(root / "communities.geojson", driver="GeoJSON")
    b = city["buildings"][["building_id", "households", "residents", "community_code", "geometry"]]
    b.to_crs(to).to_file(root / "buildings.geojson", driver="GeoJSON")
    cur.to_crs(to).to_file(root / "current_grids.geojson", driver="GeoJSON")
    street = city["communities"].set_index("community_code")["street_code"]
    pd.DataFrame({"staff_id": cur["staff_id"], "street_code": cur["community_code"].map(street),
                  "community_code": cur["community_code"]}).to_csv(root / "staff.csv", index=False)

    from pipelines import stage_grids
    from pipelines.config import load_settings
    from pipelines.run import run_project

    run_project(root, stages=[])  # ingest
    settings = load_settings(root)
    settings["grids"] = {**settings["grids"], "start_from_current_grids": True}
    con = connect(root / "gridgov.duckdb")
    try:
        summary = stage_grids.run(con, settings)
    finally:
        con.close()
    return root, city, cur, spoiled, summary


def _table(root, sql, params=None):
    con = connect(root / "gridgov.duckdb", read_only=True)
    try:
        return read_table(con, sql, params or [])
    finally:
        con.close()


def test_today_is_p0000_and_the_proposal_its_child(project):
    root, _city, cur, _spoiled, summary = project
    plans = _table(root, "SELECT plan_id, parent_plan_id, source, is_current FROM plans ORDER BY plan_id")
    assert plans["plan_id"].tolist() == ["P0000", "P0001"]
    p0, p1 = plans.iloc[0], plans.iloc[1]
    assert p0["source"] == "current_grids" and not p0["is_current"]
    assert p1["parent_plan_id"] == "P0000" and p1["is_current"]
    g0 = _table(root, "SELECT grid_id, households FROM plan_grids WHERE plan_id = 'P0000'")
    assert set(g0["grid_id"]) == set(cur["grid_id"])  # as given: every grid of today's map
    m = _table(root, "SELECT plan_id, share_within_norm FROM grid_metrics ORDER BY plan_id")
    assert m["share_within_norm"].iloc[0] < 1.0  # today's map breaks the norm ...
    assert m["share_within_norm"].iloc[1] == 1.0  # ... the proposal meets it everywhere
    assert summary["communities_redrawn"] == 2
    assert summary["communities_kept"] == len(_city["communities"]) - 2


def test_communities_that_met_the_rules_are_unchanged(project):
    root, city, _cur, spoiled, _summary = project
    bad = {code for code, _, _ in spoiled}
    m0 = _table(root, "SELECT building_id, grid_id FROM plan_members WHERE plan_id = 'P0000'")
    m1 = _table(root, "SELECT building_id, grid_id FROM plan_members WHERE plan_id = 'P0001'")
    comm = city["buildings"].set_index("building_id")["community_code"]
    a = m0.set_index("building_id")["grid_id"]
    b = m1.set_index("building_id")["grid_id"].reindex(a.index)
    kept = ~a.index.map(comm).isin(bad)
    assert kept.sum() > 1000
    assert (a[kept] == b[kept]).all()  # same buildings in the same grids, codes included
    # the re-drawn communities meet the norm and only their buildings moved
    grids = _table(root, "SELECT grid_id, community_code, households, status FROM grids")
    redrawn = grids[grids["community_code"].isin(bad)]
    assert redrawn["households"].between(300, 500).all() and (redrawn["status"] == "ok").all()
    moves = _table(root, "SELECT * FROM plan_moves")
    assert set(moves.columns) >= {"plan_id", "parent_plan_id", "building_id", "households",
                                  "from_grid_id", "to_grid_id"}
    assert set(moves["building_id"].map(comm)) <= bad and len(moves) > 0
    assert (moves["plan_id"] == "P0001").all() and (moves["parent_plan_id"] == "P0000").all()
    # at least the lower bound moved (households above the maximum in the merged grids)
    assert moves["households"].sum() >= _summary["households_moved_lower_bound"] > 0


def test_workers_follow_their_grids(project):
    root, _city, cur, _spoiled, _summary = project
    sa = _table(root, "SELECT * FROM staff_assignments")
    assert set(sa["status"]) <= {"kept", "moved", "unassigned"}
    grids = set(_table(root, "SELECT grid_id FROM grids WHERE grid_type = 'basic'")["grid_id"])
    assert grids <= set(sa["grid_id"].dropna())  # every grid: a worker, or a row saying none
    worker = sa.dropna(subset=["staff_id"]).set_index("staff_id")
    for sid, gid in zip(cur["staff_id"], cur["grid_id"]):
        if gid in grids:
            assert worker.loc[sid, "status"] == "kept" and worker.loc[sid, "grid_id"] == gid


def test_staff_assignments_by_hand():
    from pipelines.db import write_gdf
    from pipelines.stage_grids import staff_assignments

    con = connect(":memory:")
    try:
        write_gdf(con, "staff", pd.DataFrame({"staff_id": ["A", "B", "C", "D"],
                                              "street_code": "150102001",
                                              "grid_id": ["G1", "G2", None, None]}))
        write_gdf(con, "current_grids", pd.DataFrame({"grid_id": ["G1", "G2", "G3"],
                                                      "grid_type": "basic",
                                                      "staff_id": ["A", "B", "C"]}))
        # G1 stays; G2 is gone, most of its households went to G4; G3 vanished entirely
        # (its only building moved to G1); G5 is new and nobody's
        before = pd.DataFrame({"building_id": ["b1", "b2", "b3", "b4"],
                               "grid_id": ["G1", "G2", "G2", "G3"]})
        after = pd.DataFrame({"building_id": ["b1", "b2", "b3", "b4"],
                              "grid_id": ["G1", "G4", "G5", "G1"]})
        buildings = pd.DataFrame({"building_id": ["b1", "b2", "b3", "b4"],
                                  "households": [100, 300, 100, 50]})
        grids = pd.DataFrame({"grid_id": ["G1", "G4", "G5"], "grid_type": "basic"})
        sa = staff_assignments(con, before, after, grids, buildings, plan_id="P0001")
    finally:
        con.close()
    rows = {(r.staff_id if pd.notna(r.staff_id) else None): r for r in sa.itertuples()}
    assert (rows["A"].grid_id, rows["A"].status) == ("G1", "kept")
    assert (rows["B"].grid_id, rows["B"].previous_grid_id, rows["B"].status) == ("G4", "G2", "moved")
    # G3's building went to G1, which A keeps: C follows the households there too
    assert (rows["C"].grid_id, rows["C"].status) == ("G1", "moved")
    assert pd.isna(rows["D"].grid_id) and rows["D"].status == "unassigned"  # never had a grid
    assert rows[None].grid_id == "G5" and rows[None].status == "unassigned"  # a grid, no worker
    assert (sa["plan_id"] == "P0001").all()

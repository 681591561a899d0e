"""Grid engine: hard guarantees on hand-made cases (contiguity, tiling, norms, statuses).

All geometry is built in code in EPSG:4546 metres, small enough to check by hand.
"""
from __future__ import annotations

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import pytest
import shapely

from geo import grids as G

CRS = "EPSG:4546"
X0, Y0 = 560_000.0, 4_518_000.0
CODE = "150102001001"


def community(geom, code=CODE, kind="urban") -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({"community_code": [code], "street_code": [code[:9]],
                             "kind": [kind]}, geometry=[geom], crs=CRS)


def buildings(xy, households, code=CODE, start=0) -> gpd.GeoDataFrame:
    xy = np.asarray(xy, dtype=float)
    hh = np.broadcast_to(np.asarray(households), (len(xy),))
    return gpd.GeoDataFrame({
        "building_id": [f"b{start + i}" for i in range(len(xy))],
        "households": hh.astype(int), "community_code": code},
        geometry=shapely.points(xy), crs=CRS)


def lattice(nx_, ny_, step=100.0, x0=X0, y0=Y0):
    xs, ys = np.meshgrid(x0 + step / 2 + step * np.arange(nx_), y0 + step / 2 + step * np.arange(ny_))
    return np.column_stack([xs.ravel(), ys.ravel()])


def run(b, com, barriers=None, **kw):
    cells = G.build_cells(b, com, barriers)
    adj = G.cell_adjacency(cells)
    plan, members = G.partition(cells, adj, com, **kw)
    return cells, adj, plan, members


def assert_plan_valid(cells, adj, plan, members, com, *, barrier_hard=True):
    """The hard guarantees: tiling, one community per grid, one connected piece per grid."""
    # complete tiling of every community: gap and overlap < 0.01 % of its area
    for code, cgeom in zip(com["community_code"], com.geometry):
        g = plan[plan["community_code"] == code]
        u = shapely.union_all(g.geometry.values, grid_size=1e-3)
        gap = shapely.difference(cgeom, u, grid_size=1e-3).area
        outside = shapely.difference(u, cgeom, grid_size=1e-3).area
        overlap = g.area.sum() - u.area
        assert gap < 1e-4 * cgeom.area, (code, gap)
        assert outside < 1e-4 * cgeom.area, (code, outside)
        assert overlap < 1e-4 * cgeom.area, (code, overlap)
    # every cell in exactly one grid, every grid in one community
    assert members["cell_id"].is_unique and set(members["cell_id"]) == set(cells["cell_id"])
    assert (plan["n_communities"] == 1).all()
    # every grid one piece: as a polygon and in the contiguity graph
    assert (plan.geom_type == "Polygon").all(), plan.loc[plan.geom_type != "Polygon", "grid_id"]
    lab = members.set_index("cell_id")["grid_id"]
    piece = cells.set_index("cell_id")["piece"]
    for code, a in adj.items():
        graph = a.graph(with_barriers=not barrier_hard)
        for gid, grp in members[members["community_code"] == code].groupby("grid_id"):
            sub = graph.subgraph(grp["cell_id"])
            if plan.set_index("grid_id").loc[gid, "grid_type"] == "basic" and barrier_hard:
                # a basic grid only crosses a barrier to take in a piece too small for a grid
                if piece[grp["cell_id"]].nunique() > 1:
                    sub = a.graph(with_barriers=True).subgraph(grp["cell_id"])
            else:
                sub = a.graph(with_barriers=True).subgraph(grp["cell_id"])
            assert nx.is_connected(sub), gid
    assert G.plan_metrics(plan)["contiguous"]
    return lab


# --------------------------------------------------------------------------------------------
# cells and adjacency
# --------------------------------------------------------------------------------------------
def test_cells_tile_a_concave_community_with_fillers():
    # a U-shaped community: Voronoi cells cut by the notch leave fragments to re-attach
    u = shapely.box(X0, Y0, X0 + 600, Y0 + 600).difference(
        shapely.box(X0 + 200, Y0 + 150, X0 + 400, Y0 + 600))
    com = community(u)
    b = buildings([(X0 + 100, Y0 + 500), (X0 + 500, Y0 + 500), (X0 + 300, Y0 + 50),
                   (X0 + 150, Y0 + 300)], 10)
    cells = G.build_cells(b, com, max_cell_area=20_000)
    assert abs(cells.area.sum() - u.area) < 1e-4 * u.area
    assert shapely.union_all(cells.geometry.values, grid_size=1e-3).symmetric_difference(
        u).area < 1e-4 * u.area
    assert (cells.geom_type == "Polygon").all()
    assert cells["households"].sum() == 40
    assert sorted(cells["building_ids"].explode().dropna()) == sorted(b["building_id"])
    assert (cells["households"] == 0).sum() > 0  # filler cells on empty land


def test_stacked_buildings_share_a_cell_and_polygons_are_accepted():
    com = community(shapely.box(X0, Y0, X0 + 200, Y0 + 200))
    pts = buildings([(X0 + 50, Y0 + 50), (X0 + 50, Y0 + 50), (X0 + 150, Y0 + 150)], [5, 7, 9])
    pts["geometry"] = pts.geometry.buffer(10, cap_style="square")  # footprints
    cells = G.build_cells(pts, com)
    assert len(cells) == 2
    assert sorted(cells["households"]) == [9, 12]
    assert sorted(len(x) for x in cells["building_ids"]) == [1, 2]


def test_building_outside_its_community_is_snapped_inside():
    com = community(shapely.box(X0, Y0, X0 + 200, Y0 + 200))
    b = buildings([(X0 + 50, Y0 + 50), (X0 + 260, Y0 + 100)], 10)
    cells = G.build_cells(b, com)
    assert cells["households"].sum() == 20 and len(cells) == 2
    assert abs(cells.area.sum() - com.area.iloc[0]) < 1e-6 * com.area.iloc[0]


def test_adjacency_is_rook_and_barriers_cut_it():
    com = community(shapely.box(X0, Y0, X0 + 300, Y0 + 300))
    b = buildings(lattice(3, 3), 10)
    river = gpd.GeoDataFrame({"kind": ["river"]}, geometry=[
        shapely.LineString([(X0 - 10, Y0 + 200), (X0 + 310, Y0 + 200)])], crs=CRS)
    cells = G.build_cells(b, com, river)
    adj = G.cell_adjacency(cells)[CODE]
    # 3x3 rook lattice has 12 edges; the river removes the 3 vertical ones across y=200
    assert len(adj.pairs()[0]) == 9
    assert len(adj.barrier_pairs) == 3
    assert cells["piece"].nunique() == 2
    # corner-touching cells are not neighbours
    assert all(s > 1 for s in adj.pairs()[2])


# --------------------------------------------------------------------------------------------
# basic grids: hand-made cases
# --------------------------------------------------------------------------------------------
def test_six_by_six_lattice_meets_the_norm_with_compact_grids():
    com = community(shapely.box(X0, Y0, X0 + 600, Y0 + 600))
    b = buildings(lattice(6, 6), 50)  # 1 800 households -> 4 grids of 450
    cells, adj, plan, members = run(b, com)
    assert_plan_valid(cells, adj, plan, members, com)
    assert len(plan) == 4
    assert (plan["households"] == 450).all()
    assert (plan["status"] == "ok").all()
    assert plan["compactness"].mean() > 0.6  # 3x3 squares (pi/4) or 2x4.5 blocks
    m = G.plan_metrics(plan, communities=com)
    assert m["share_within_norm"] == 1.0 and m["workload_cv"] < 1e-9
    assert m["coverage_gap_km2"] < 1e-6


def test_community_in_two_parts_gets_grids_per_part():
    main = shapely.box(X0, Y0, X0 + 500, Y0 + 400)
    exclave = shapely.box(X0 + 800, Y0, X0 + 900, Y0 + 100)
    com = community(shapely.MultiPolygon([main, exclave]))
    b = pd.concat([buildings(lattice(5, 4), 40),  # 800 households in the main part
                   buildings([(X0 + 850, Y0 + 50)], 120, start=100)])  # 120 in the exclave
    cells, adj, plan, members = run(b, com)
    assert_plan_valid(cells, adj, plan, members, com)
    assert sorted(plan["households"]) == [120, 400, 400]
    st = plan.set_index("households")["status"]
    assert st[120] == "under_min_component"
    assert (plan.loc[plan["households"] == 400, "status"] == "ok").all()
    for geom in plan.geometry:  # no grid reaches over to the other part
        assert geom.within(main.buffer(1e-3)) or geom.within(exclave.buffer(1e-3))


def test_river_island_is_not_joined_across_the_barrier():
    com = community(shapely.box(X0, Y0, X0 + 600, Y0 + 600))
    b = buildings(lattice(6, 6), 30)  # 18 rows x 30 = 540 households per half
    river = gpd.GeoDataFrame({"kind": ["river"]}, geometry=[
        shapely.LineString([(X0 - 20, Y0 + 300), (X0 + 200, Y0 + 290), (X0 + 620, Y0 + 305)])],
        crs=CRS)
    cells, adj, plan, members = run(b, com, river)
    assert_plan_valid(cells, adj, plan, members, com)
    piece = cells.set_index("cell_id")["piece"]
    per_grid = members.assign(piece=members["cell_id"].map(piece)).groupby("grid_id")["piece"]
    assert (per_grid.nunique() == 1).all()  # no grid crosses the river
    # each bank has 540 households: 1 grid of 540 or 2 of 270 -> the norm cannot be met
    assert set(plan["status"]) == {"infeasible"}
    assert len(plan) == 2 or len(plan) == 4


def test_small_piece_cut_off_by_a_road_stays_on_its_side():
    # barriers hold (issue #10): the corner across the road is not joined to the rest; it is a
    # grid of its own, flagged, and no grid straddles the road
    com = community(shapely.box(X0, Y0, X0 + 600, Y0 + 600))
    b = buildings(lattice(6, 6), 25)  # 900 households, one building (25) in the cut corner
    road = gpd.GeoDataFrame({"kind": ["major_road"]}, geometry=[
        shapely.LineString([(X0 + 480, Y0 + 610), (X0 + 610, Y0 + 480)])], crs=CRS)
    cells, adj, plan, members = run(b, com, road)
    assert cells["piece"].nunique() == 2
    assert_plan_valid(cells, adj, plan, members, com)
    corner = plan[plan["households"] == 25]
    assert len(corner) == 1 and corner["status"].iloc[0] == "under_min_component"
    rest = plan[plan["households"] != 25]
    assert (rest["status"] == "ok").all() and rest["households"].sum() == 875
    assert G.plan_integrity(plan, road)["n_barrier_crossed"] == 0


def test_single_oversized_building_is_its_own_grid():
    com = community(shapely.box(X0, Y0, X0 + 600, Y0 + 600))
    xy = lattice(6, 6)
    hh = np.full(36, 25)
    hh[14] = 800  # a tower
    b = buildings(xy, hh)
    cells, adj, plan, members = run(b, com)
    assert_plan_valid(cells, adj, plan, members, com)
    tower = plan[plan["status"] == "over_max_single_unit"]
    assert len(tower) == 1 and tower["households"].iloc[0] == 800
    rest = plan[plan["status"] != "over_max_single_unit"]
    assert (rest["status"] == "ok").all() and rest["households"].sum() == 875
    assert plan["community_status"].eq("over_max_single_unit").all()


def test_empty_community_is_one_grid_flagged():
    com = pd.concat([community(shapely.box(X0, Y0, X0 + 300, Y0 + 300)),
                     community(shapely.box(X0 + 300, Y0, X0 + 600, Y0 + 300),
                               code="150102001002")])
    b = buildings(lattice(3, 3), 50)  # only in the first community
    cells, adj, plan, members = run(b, com)
    assert_plan_valid(cells, adj, plan, members, com)
    empty = plan[plan["community_code"] == "150102001002"]
    assert len(empty) == 1
    assert empty["households"].iloc[0] == 0
    assert empty["status"].iloc[0] == "under_min_community"


def test_community_of_180_households_is_one_grid_under_min():
    com = community(shapely.box(X0, Y0, X0 + 300, Y0 + 300))
    b = buildings(lattice(3, 3), 20)
    cells, adj, plan, members = run(b, com)
    assert_plan_valid(cells, adj, plan, members, com)
    assert len(plan) == 1 and plan["households"].iloc[0] == 180
    assert plan["status"].iloc[0] == "under_min_community"


def test_rural_village_is_one_grid_until_above_the_rural_max():
    small = community(shapely.box(X0, Y0, X0 + 600, Y0 + 600), kind="rural")
    b = buildings(lattice(6, 6), 3)  # 108 households: below the minimum, still one grid
    cells, adj, plan, members = run(b, small)
    assert len(plan) == 1 and plan["status"].iloc[0] == "ok"
    big = buildings(lattice(10, 10, step=60), 15)  # 1 500 households -> 3 grids of ~500
    cells, adj, plan, members = run(big, small)
    assert_plan_valid(cells, adj, plan, members, small)
    assert len(plan) == 3 and (plan["status"] == "ok").all()
    assert plan["households"].between(150, 600).all()


def test_norms_and_weights_are_settings():
    com = community(shapely.box(X0, Y0, X0 + 600, Y0 + 600))
    b = buildings(lattice(6, 6), 50)
    _, _, plan, _ = run(b, com, norms={"urban": {"households_min": 100,
                                                        "households_max": 200}})
    assert len(plan) == 12 and plan["households"].between(100, 200).all()
    per_comm = {"communities": {CODE: {"households_min": 800, "households_max": 1000}}}
    _, _, plan, _ = run(b, com, norms=per_comm)
    assert len(plan) == 2
    with pytest.raises(ValueError, match="unknown weight"):
        run(b, com, weights={"speed": 1})


def test_partition_is_reproducible_for_a_seed():
    city = G.synthetic_city(600, seed=3, special_units=False)
    cells = G.build_cells(city["buildings"], city["communities"], city["barriers"])
    adj = G.cell_adjacency(cells)
    _, ma = G.partition(cells, adj, city["communities"], seed=7)
    _, mb = G.partition(cells, adj, city["communities"], seed=7)
    assert ma["grid_id"].tolist() == mb["grid_id"].tolist()


def test_search_keeps_its_running_totals_exact():
    from geo.partition import _bisect, _Problem, _Search

    city = G.synthetic_city(400, seed=5, special_units=False, barriers=False, rural_share=0)
    cells = G.build_cells(city["buildings"], city["communities"])
    code = cells["community_code"].iloc[0]
    sub = cells[cells["community_code"] == code]
    adj = G.cell_adjacency(sub)[code]
    P = _Problem(sub, adj)
    rng = np.random.default_rng(0)
    parts = _bisect(P, list(range(P.n)), 4, rng)
    lab = [0] * P.n
    for g, part in enumerate(parts):
        for i in part:
            lab[i] = g
    s = _Search(P, list(range(P.n)), lab, 300, 500, G.DEFAULT_WEIGHTS, rng)
    s.run(None, rounds=3)  # no work limit: runs until converged
    fresh = _Search(P, list(range(P.n)), list(lab), 300, 500, G.DEFAULT_WEIGHTS, rng)
    assert s.objective() == pytest.approx(fresh.objective(), rel=1e-9, abs=1e-9)


# --------------------------------------------------------------------------------------------
# exact optimum for a small community (MILP, HiGHS)
# --------------------------------------------------------------------------------------------
def milp_min_max_deviation(h, edges, k, lo, hi, time_limit=60):
    """Exact contiguous k-partition minimising max |households - H/k| (flow formulation).

    Variables: x[i, r] cell i in the grid rooted at r; y[r] = x[r, r] r is a root; flows
    f[r, (u, v)] on both directions of every edge carry one unit to each member of r's grid
    from r, only through members (Shirabe 2005 style single-commodity flow per root).
    """
    from scipy.optimize import LinearConstraint, milp
    from scipy.sparse import lil_matrix

    n = len(h)
    H = float(sum(h))
    arcs = [(u, v) for u, v in edges] + [(v, u) for u, v in edges]
    na = len(arcs)
    nx_ = n * n
    nf = n * na
    N = nx_ + nf + 1  # + t
    X = lambda i, r: i * n + r
    F = lambda r, a: nx_ + r * na + a
    T = N - 1
    lb, ub = [], []
    A = lil_matrix((n + n * n + 1 + 4 * n + n * n + 2 * n * na, N))
    row = 0

    def add(coeffs, lo_, hi_):
        nonlocal row
        for j, c in coeffs:
            A[row, j] = A[row, j] + c
        lb.append(lo_)
        ub.append(hi_)
        row += 1

    for i in range(n):  # each cell in one grid
        add([(X(i, r), 1) for r in range(n)], 1, 1)
    for i in range(n):  # only in grids whose root is a root
        for r in range(n):
            if i != r:
                add([(X(i, r), 1), (X(r, r), -1)], -np.inf, 0)
    add([(X(r, r), 1) for r in range(n)], k, k)
    for r in range(n):  # norm and deviation
        hh = [(X(i, r), h[i]) for i in range(n)]
        add(hh + [(X(r, r), -lo)], 0, np.inf)
        add(hh + [(X(r, r), -hi)], -np.inf, 0)
        add(hh + [(X(r, r), -H / k), (T, -1)], -np.inf, 0)
        add([(j, -c) for j, c in hh] + [(X(r, r), H / k), (T, -1)], -np.inf, 0)
    for r in range(n):  # flow conservation: each non-root member consumes one unit
        for v in range(n):
            if v == r:
                continue
            co = [(F(r, a), 1) for a, (p, q) in enumerate(arcs) if q == v]
            co += [(F(r, a), -1) for a, (p, q) in enumerate(arcs) if p == v]
            add(co + [(X(v, r), -1)], 0, 0)
    for r in range(n):  # flow only between members of r's grid
        for a, (p, q) in enumerate(arcs):
            add([(F(r, a), 1), (X(p, r), -(n - 1))], -np.inf, 0)
            add([(F(r, a), 1), (X(q, r), -(n - 1))], -np.inf, 0)
    A = A[:row].tocsr()
    c = np.zeros(N)
    c[T] = 1
    integrality = np.zeros(N)
    integrality[:nx_] = 1
    bounds_lo = np.zeros(N)
    bounds_hi = np.concatenate([np.ones(nx_), np.full(nf, n - 1.0), [H]])
    # symmetry breaking: a grid's root is its lowest-numbered cell (x[i, r] = 0 for i < r),
    # so flow for root r only runs through cells numbered above r
    for r in range(n):
        for i in range(r):
            bounds_hi[X(i, r)] = 0
        for a, (p, q) in enumerate(arcs):
            if p < r or q < r:
                bounds_hi[F(r, a)] = 0
    from scipy.optimize import Bounds
    res = milp(c, constraints=LinearConstraint(A, lb, ub), integrality=integrality,
               bounds=Bounds(bounds_lo, bounds_hi), options={"time_limit": time_limit})
    assert res.status == 0, res.message
    x = res.x[:nx_].reshape(n, n).round().astype(int)
    return float(res.x[T]), x.argmax(axis=1)


@pytest.mark.parametrize("nx_, ny_, seed", [
    (4, 4, 11), (4, 4, 14),
    pytest.param(5, 4, 11, marks=pytest.mark.slow), pytest.param(5, 4, 12, marks=pytest.mark.slow),
])
def test_heuristic_is_close_to_the_milp_optimum(nx_, ny_, seed, record_property):
    rng = np.random.default_rng(seed)
    com = community(shapely.box(X0, Y0, X0 + 100 * nx_, Y0 + 100 * ny_))
    hh = rng.integers(40, 140, size=nx_ * ny_)
    b = buildings(lattice(nx_, ny_), hh)
    cells = G.build_cells(b, com)
    adj = G.cell_adjacency(cells)[CODE]
    i, j, _ = adj.pairs()
    h = cells.set_index("cell_id").loc[adj.cell_ids, "households"].to_numpy()
    H = h.sum()
    k, feasible = G.choose_k(H, 300, 500)
    assert feasible
    opt, roots = milp_min_max_deviation(h.tolist(), list(zip(i.tolist(), j.tolist())), k, 300,
                                        500, time_limit=120)
    # the MILP plan is contiguous too (sanity check of the formulation)
    g = adj.graph()
    for r in np.unique(roots):
        assert nx.is_connected(g.subgraph(adj.cell_ids[roots == r]))
    cells["workload"] = cells["households"].astype(float)  # balance households only
    plan = G.partition_community(cells, adj, weights={"compactness": 0.0}, seed=0)
    ours = max(abs(cells.groupby(plan.labels.to_numpy())["households"].sum() - H / k))
    gap = ours - opt
    record_property("milp_max_deviation", opt)
    record_property("heuristic_max_deviation", ours)
    print(f"\nMILP optimum max|h-H/k| = {opt:.2f}, heuristic = {ours:.2f}, gap = {gap:.2f} "
          f"households (H={H}, k={k})")
    assert plan.community_status == "ok"
    assert gap <= 0.05 * H / k  # within 5 % of a grid's mean households of the optimum


# --------------------------------------------------------------------------------------------
# dedicated grids
# --------------------------------------------------------------------------------------------
def test_dedicated_grids_follow_qualifying_units():
    com = community(shapely.box(X0, Y0, X0 + 800, Y0 + 800))
    b = buildings(lattice(8, 8), 25)
    units = gpd.GeoDataFrame({
        "unit_id": ["S1", "M1", "M2", "G1"],
        "unit_name": ["第一中学", "菜市场甲", "菜市场乙", "小办事处"],
        "unit_type": ["school", "market", "market", "government"],
        "headcount": [900, 120, 110, 20]},
        geometry=[shapely.box(X0 + 20, Y0 + 20, X0 + 230, Y0 + 230),      # big school
                  shapely.box(X0 + 500, Y0 + 500, X0 + 560, Y0 + 560),    # two small touching
                  shapely.box(X0 + 560, Y0 + 500, X0 + 620, Y0 + 560),    # markets
                  shapely.box(X0 + 700, Y0 + 20, X0 + 730, Y0 + 50)],     # too small
        crs=CRS)
    cells = G.build_cells(b, com, special_units=units)
    adj = G.cell_adjacency(cells)
    assign, ded = G.dedicated_grids(cells, units, adjacency=adj)
    assert len(ded) == 2
    types = sorted(ded["unit_type"])
    assert types == ["market", "school"]
    markets = ded[ded["unit_type"] == "market"].iloc[0]
    assert sorted(markets["unit_ids"]) == ["M1", "M2"] and markets["headcount"] == 230
    plan, members = G.partition(cells, adj, com, dedicated=(assign, ded))
    assert_plan_valid(cells, adj, plan, members, com)
    d = plan[plan["grid_type"] == "dedicated"]
    assert sorted(d["grid_id"].str[-3:]) == ["901", "902"]
    school = d[d["unit_type"] == "school"].geometry.iloc[0]
    assert school.symmetric_difference(units.geometry.iloc[0]).area < 1.0
    assert (plan.loc[plan["grid_type"] == "basic", "status"] == "ok").all()


def test_dedicated_rules_are_settings():
    com = community(shapely.box(X0, Y0, X0 + 400, Y0 + 400))
    b = buildings(lattice(4, 4), 25)
    units = gpd.GeoDataFrame({"unit_id": ["H"], "unit_type": ["hospital"], "headcount": [100]},
                             geometry=[shapely.Point(X0 + 10, Y0 + 10)], crs=CRS)
    cells = G.build_cells(b, com, special_units=units)
    assert len(G.dedicated_grids(cells, units)[1]) == 0
    got = G.dedicated_grids(cells, units, rules={"hospital": {"min_headcount": 50}})[1]
    assert len(got) == 1


# --------------------------------------------------------------------------------------------
# codes
# --------------------------------------------------------------------------------------------
def test_grid_codes_run_west_to_east_then_north_to_south():
    boxes = {  # name: (col, row from the top)
        "nw": (0, 0), "ne": (2, 0), "n": (1, 0), "sw": (0, 1), "se": (2, 1), "s": (1, 1)}
    geoms = [shapely.box(X0 + 100 * c, Y0 - 100 * r + (7 if c == 1 else 0),
                         X0 + 100 * c + 100, Y0 - 100 * r + 100) for c, r in boxes.values()]
    grids = gpd.GeoDataFrame({"name": list(boxes), "community_code": CODE,
                              "grid_type": "basic"}, geometry=geoms, crs=CRS)
    grids.loc[len(grids)] = ["d", CODE, "dedicated", shapely.box(X0, Y0 - 300, X0 + 50,
                                                                  Y0 - 250)]
    codes = G.grid_codes(grids).set_axis(grids["name"])
    assert codes["nw"] == "150102001001001"
    assert [codes[k][-3:] for k in ["nw", "n", "ne", "sw", "s", "se", "d"]] == \
        ["001", "002", "003", "004", "005", "006", "901"]


def test_grid_codes_from_street_code_and_kept_on_redraw():
    grids = gpd.GeoDataFrame({"community_code": ["C-1", "C-1", "C-2"], "grid_type": "basic",
                              "grid_id": ["150102005001007", None, None]},
                             geometry=[shapely.box(0, 0, 1, 1), shapely.box(2, 0, 3, 1),
                                       shapely.box(0, 5, 1, 6)], crs=CRS)
    comms = pd.DataFrame({"community_code": ["C-1", "C-2"], "street_code": "150102005"})
    codes = G.grid_codes(grids, communities=comms, keep_existing=True)
    assert codes.tolist() == ["150102005001007", "150102005001001", "150102005002001"]


# --------------------------------------------------------------------------------------------
# planner helpers
# --------------------------------------------------------------------------------------------
def test_can_move_refuses_moves_that_break_a_grid():
    com = community(shapely.box(X0, Y0, X0 + 300, Y0 + 100))
    b = buildings(lattice(3, 1), 150)
    river = gpd.GeoDataFrame({"kind": ["river"]}, geometry=[
        shapely.LineString([(X0 + 200, Y0 - 10), (X0 + 200, Y0 + 110)])], crs=CRS)
    cells = G.build_cells(b, com, river)
    adj = G.cell_adjacency(cells)
    ids = cells.sort_values("cell_id")["cell_id"].tolist()
    xs = cells.set_index("cell_id").centroid.x
    left, mid, right = sorted(ids, key=lambda c: xs[c])
    labels = pd.Series({left: "A", mid: "A", right: "B"})
    ok, why = G.can_move(left, "B", labels, adj)
    assert not ok and "does not touch" in why
    ok, why = G.can_move(mid, "B", labels, adj)
    assert not ok and "barrier" in why
    labels3 = pd.Series({left: "A", mid: "B", right: "B"})
    ok, why = G.can_move(left, "B", labels3, adj)
    assert not ok and "empty" in why
    ok, why = G.can_move(mid, "A", labels3, adj, locked={"A"})
    assert not ok and "locked" in why
    ok, why = G.can_move(mid, "C", labels, adj)
    assert not ok and "not in this community" in why


def test_can_move_refuses_splitting_the_source_grid():
    com = community(shapely.box(X0, Y0, X0 + 300, Y0 + 200))
    b = buildings(lattice(3, 2), 100)
    cells = G.build_cells(b, com)
    adj = G.cell_adjacency(cells)
    c = cells.set_index("cell_id").centroid
    pos = {(int((p.x - X0) // 100), int((p.y - Y0) // 100)): cid for cid, p in c.items()}
    # grid A: bottom row (0,0) (1,0) (2,0) ; grid B: top row
    labels = pd.Series({cid: ("A" if y == 0 else "B") for (x, y), cid in pos.items()})
    ok, why = G.can_move(pos[(1, 0)], "B", labels, adj)
    assert not ok and "split" in why
    assert G.can_move(pos[(0, 0)], "B", labels, adj) == (True, "ok")


def test_validity_checklist():
    com = community(shapely.box(X0, Y0, X0 + 600, Y0 + 600))
    b = buildings(lattice(6, 6), 50)
    cells, adj, plan, members = run(b, com)
    lab = members.set_index("cell_id")["grid_id"]
    chk = G.validity_checklist(cells, lab, adj, communities=com)
    assert chk["ok"].all(), chk
    # break a grid in two by hand
    g0 = plan["grid_id"].iloc[0]
    bad = lab.copy()
    cells_g0 = lab[lab == g0].index
    other = lab[lab != g0].index
    bad[other[: len(other) // 2]] = g0
    chk = G.validity_checklist(cells, bad, adj, communities=com).set_index("check")
    assert not chk.loc["within_norm", "ok"]
    bad2 = lab.drop(cells_g0[:1])
    chk = G.validity_checklist(cells, bad2, adj, communities=com).set_index("check")
    assert not chk.loc["complete", "ok"]


# --------------------------------------------------------------------------------------------
# diffs and fusion
# --------------------------------------------------------------------------------------------
def test_diff_plans_lists_moves():
    a = pd.DataFrame({"building_id": ["b1", "b2", "b3", "b4"], "grid_id": ["G1", "G1", "G2", "G2"]})
    b = pd.DataFrame({"building_id": ["b1", "b2", "b3", "b5"], "grid_id": ["G1", "G3", "G2", "G2"]})
    hh = pd.Series({"b1": 10, "b2": 20, "b3": 30, "b4": 40, "b5": 50})
    d = G.diff_plans(a, b, hh)
    assert d["grids_added"] == ["G3"] and d["grids_removed"] == []
    assert d["households_moved"] == 20
    mv = d["moves"].set_index("id")
    assert mv.loc["b2", "from_grid"] == "G1" and mv.loc["b2", "to_grid"] == "G3"
    assert mv.loc["b4", "to_grid"] is None and mv.loc["b5", "from_grid"] is None
    ch = d["grids_changed"].set_index("grid_id")
    assert ch.loc["G1", "households_before"] == 30 and ch.loc["G1", "households_after"] == 10


def test_fusion_report():
    basic = gpd.GeoDataFrame({"grid_id": ["A", "B"]}, geometry=[
        shapely.box(0, 0, 100, 100), shapely.box(100, 0, 200, 100)], crs=CRS)
    dept = gpd.GeoDataFrame({
        "department": ["城管", "城管", "应急"], "grid_id": ["c1", "c2", "e1"]},
        geometry=[shapely.box(0, 0, 100, 100), shapely.box(100, 0, 200, 100),
                  shapely.box(50, 0, 150, 100)], crs=CRS)
    rep = G.fusion_report(dept, basic)
    s = rep.summary.set_index("department")
    assert s.loc["城管", "share_split"] == 0 and s.loc["城管", "mean_max_overlap_share"] == 1
    assert s.loc["应急", "share_split"] == 1 and s.loc["应急", "mean_max_overlap_share"] == 0.5
    assert len(rep.overlaps) == 4
    e = rep.overlaps[rep.overlaps["dept_grid_id"] == "e1"]
    assert e["share_of_dept_grid"].sum() == pytest.approx(1.0)


# --------------------------------------------------------------------------------------------
# locks and re-draws on hand-made cases
# --------------------------------------------------------------------------------------------
def test_locked_grid_is_kept_exactly():
    com = community(shapely.box(X0, Y0, X0 + 600, Y0 + 600))
    b = buildings(lattice(6, 6), 50)
    cells = G.build_cells(b, com)
    adj = G.cell_adjacency(cells)[CODE]
    # an odd hand-drawn start: the west column (300 households) is locked
    c = cells.set_index("cell_id").centroid
    initial = pd.Series(np.where(c.x < X0 + 100, "W", "rest"), index=c.index)
    plan = G.partition_community(cells, adj, locked={"W"}, initial=initial)
    west = plan.labels[initial == "W"]
    assert west.nunique() == 1
    assert not plan.labels[initial != "W"].isin(west.unique()).any()
    assert plan.community_status == "ok"


def test_redraw_splits_a_grid_spread_over_two_communities():
    com = pd.concat([community(shapely.box(X0, Y0, X0 + 300, Y0 + 600)),
                     community(shapely.box(X0 + 300, Y0, X0 + 600, Y0 + 600),
                               code="150102001002")])
    xy = lattice(6, 6)
    b = buildings(xy, 25)
    b["community_code"] = np.where(xy[:, 0] < X0 + 300, CODE, "150102001002")
    cells = G.build_cells(b, com)
    adj = G.cell_adjacency(cells)
    c = cells.set_index("cell_id").centroid
    # a current grid drawn across the community line
    current = pd.Series(np.where(c.y < Y0 + 300, "150102001001001", "150102001001002"),
                        index=c.index)
    labels, moves = G.redraw(cells, adj, current, communities=com)
    per = cells.assign(g=labels.reindex(cells["cell_id"]).to_numpy()).groupby("g")[
        "community_code"].nunique()
    assert (per == 1).all()
    assert set(moves.loc[moves["to_grid"].str.startswith("150102001002"), "reason"]) == {
        "other_community"}
    assert labels.str.startswith("150102001002").sum() == 18
    # 450 households per community: the two half-grids of 225 are merged into one
    assert labels.nunique() == 2

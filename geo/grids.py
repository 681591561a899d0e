"""Grid engine: the public entry point (基础网格 + 专属网格, codes, metrics, diffs, fusion).

Typical use (all frames in a projected metric CRS, e.g. EPSG:4546)::

    from geo import grids as G
    cells = G.build_cells(buildings, communities, barriers, special_units=special_units)
    adj = G.cell_adjacency(cells)
    dedicated = G.dedicated_grids(cells, special_units, adjacency=adj)
    plan, members = G.partition(cells, adj, communities, dedicated=dedicated, n_jobs=2)
    G.plan_metrics(plan, communities=communities)

The pieces live in :mod:`geo.tessellation` (cells, adjacency), :mod:`geo.partition` (basic
grids, re-draw, status) and :mod:`geo.gridcodes` (codes); this module re-exports them and
adds dedicated grids, plan metrics, plan diffs, the planner's move checks, the department-
grid fusion report and a synthetic city for tests and benchmarks. Design and references:
``docs/grid-engine.md``.
"""
from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from typing import NamedTuple

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo.gridcodes import grid_codes, row_major_order
from geo.partition import (
    BARRIER_JOIN_M,
    DEFAULT_NORMS,
    DEFAULT_WEIGHTS,
    STATUSES,
    CommunityPlan,
    building_members,
    choose_k,
    grid_status,
    grids_from_labels,
    labels_from_plan,
    norm_for,
    partition,
    partition_community,
    redraw,
)
from geo.tessellation import (
    DEFAULT_WORKLOAD_WEIGHTS,
    Adjacency,
    build_cells,
    cell_adjacency,
    community_adjacency,
)

__all__ = [
    "CROSSING_M", "DEFAULT_DEDICATED_RULES", "DEFAULT_NORMS", "DEFAULT_WEIGHTS", "DEFAULT_WORKLOAD_WEIGHTS",
    "OVERLAP_M2", "STATUSES", "Adjacency", "CommunityPlan", "FusionReport", "barrier_crossing",
    "build_cells", "building_members",
    "can_move", "cell_adjacency", "choose_k", "community_adjacency", "dedicated_grids",
    "diff_plans", "fusion_report", "grid_codes", "grid_status", "grids_from_labels",
    "labels_from_plan", "norm_for", "partition", "partition_community", "plan_integrity",
    "plan_metrics", "review_current_plan",
    "redraw", "row_major_order", "synthetic_city", "validity_checklist", "within_norm",
]

log = logging.getLogger(__name__)

#: Minimum size that earns a special unit its own dedicated grid (专属网格): a unit qualifies
#: when its site area is at least ``min_area_m2`` OR its headcount (staff, students,
#: patients' beds…; the ``headcount`` column, else ``households``) is at least
#: ``min_headcount``. Small units of one type whose cells touch are clustered and qualify on
#: their summed size (``cluster``). Local figures are not fixed by any national text: these
#: are starting values for the settings (``[grids.dedicated.<unit_type>]``).
DEFAULT_DEDICATED_RULES: dict = {
    "school": {"min_area_m2": 10_000, "min_headcount": 500},
    "hospital": {"min_area_m2": 10_000, "min_headcount": 300},
    "government": {"min_area_m2": 5_000, "min_headcount": 200},
    "industrial_park": {"min_area_m2": 50_000, "min_headcount": 500},
    "market": {"min_area_m2": 5_000, "min_headcount": 200},
    "commercial_building": {"min_area_m2": 5_000, "min_headcount": 500},
    "enterprise": {"min_area_m2": 20_000, "min_headcount": 300},
    "other": {"min_area_m2": 20_000, "min_headcount": 500},
    "cluster": True,
}


def _rules(rules: dict | None) -> dict:
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in DEFAULT_DEDICATED_RULES.items()}
    for k, v in (rules or {}).items():
        if isinstance(v, dict):
            out.setdefault(k, dict(out["other"])).update(v)
        else:
            out[k] = v
    return out


# --------------------------------------------------------------------------------------------
# dedicated grids
# --------------------------------------------------------------------------------------------
def dedicated_grids(
    cells: gpd.GeoDataFrame,
    special_units: gpd.GeoDataFrame | None,
    *,
    rules: dict | None = None,
    adjacency: dict[str, Adjacency] | None = None,
) -> tuple[pd.Series, gpd.GeoDataFrame]:
    """Dedicated grids (专属网格) for the special units that qualify.

    A unit's cells are those carved for it by :func:`build_cells` (``unit_id``); if the
    cells were built without the units, the cells lying mostly (> 50 % of their area) inside
    the unit polygon, or the cell containing a point unit. Each qualifying unit, and each
    qualifying cluster of small touching units of one type, becomes one dedicated grid per
    connected part per community; those cells leave the basic pool. Empty land that the
    dedicated grid cuts off from every other cell of the community goes with it.

    Parameters
    ----------
    cells
        Cells from :func:`build_cells`.
    special_units
        ``unit_id``, ``unit_type`` and optional ``unit_name``, ``headcount``,
        ``households``; polygons or points.
    rules
        Per ``unit_type`` overrides of :data:`DEFAULT_DEDICATED_RULES`.
    adjacency
        :func:`cell_adjacency` of the cells (computed if None).

    Returns
    -------
    assignment : pandas.Series
        ``cell_id -> dedicated key`` for the cells of dedicated grids.
    dedicated : geopandas.GeoDataFrame
        Indexed by key: ``community_code``, ``unit_type``, ``unit_ids``, ``unit_names``,
        ``headcount``, ``households``, ``residents``, ``workload``, ``area_km2``, geometry.
    """
    empty = gpd.GeoDataFrame(
        {c: [] for c in ["community_code", "unit_type", "unit_ids", "unit_names", "headcount",
                         "households", "residents", "workload", "area_km2"]},
        geometry=gpd.GeoSeries([], crs=cells.crs))
    if special_units is None or not len(special_units):
        return pd.Series(dtype=object, name="dedicated"), empty
    R = _rules(rules)
    if adjacency is None:
        adjacency = cell_adjacency(cells)
    su = special_units.reset_index(drop=True)
    uid = su["unit_id"].to_numpy()
    utype = (su["unit_type"].astype(str).where(su["unit_type"].notna(), "other").to_numpy()
             if "unit_type" in su.columns else np.full(len(su), "other"))
    utype = np.array([t if t in R else "other" for t in utype], dtype=object)
    head = np.zeros(len(su))
    for col in ("headcount", "households"):
        if col in su.columns:
            v = pd.to_numeric(su[col], errors="coerce").to_numpy(float)
            head = np.where((head == 0) & ~np.isnan(v), v, head)
    ug = np.asarray(su.geometry.values, dtype=object)
    is_poly = np.isin(shapely.get_type_id(ug), [3, 6])
    uarea = np.where(is_poly, shapely.area(ug), 0.0)
    names = su["unit_name"].to_numpy() if "unit_name" in su.columns else uid

    # unit -> cell positions
    cg = np.asarray(cells.geometry.values, dtype=object)
    cid = cells["cell_id"].to_numpy()
    ccode = cells["community_code"].astype(str).to_numpy()
    unit_cells: dict[int, list[int]] = {u: [] for u in range(len(su))}
    carved = cells["unit_id"].notna().to_numpy() if "unit_id" in cells.columns else None
    by_uid = {v: u for u, v in enumerate(uid)}
    claimed = np.zeros(len(cells), dtype=bool)
    if carved is not None and carved.any():
        for pos in np.flatnonzero(carved):
            u = by_uid.get(cells["unit_id"].iloc[pos])
            if u is not None:
                unit_cells[u].append(int(pos))
                claimed[pos] = True
    missing = [u for u in range(len(su)) if not unit_cells[u]]
    if missing:
        tree = shapely.STRtree(cg)
        for u in sorted(missing, key=lambda u: -uarea[u]):
            g = ug[u]
            if g is None or g.is_empty:
                continue
            if is_poly[u]:
                hit = tree.query(g, predicate="intersects")
                if len(hit):
                    share = shapely.area(shapely.intersection(cg[hit], g)) / np.maximum(
                        shapely.area(cg[hit]), 1e-12)
                    got = [int(p) for p in hit[share > 0.5] if not claimed[p]]
                else:
                    got = []
            else:
                hit = tree.query(shapely.centroid(g), predicate="intersects")
                got = [int(p) for p in hit[:1] if not claimed[p]]
            unit_cells[u] = got
            claimed[got] = True

    def qualifies(area, hc, t):
        r = R.get(t, R["other"])
        return area >= r.get("min_area_m2", math.inf) or hc >= r.get("min_headcount", math.inf)

    # groups: qualifying units alone; small ones of one type clustered if their cells touch
    pos_unit = {}
    for u, ps in unit_cells.items():
        for p in ps:
            pos_unit[p] = u
    parent = list(range(len(su)))

    def find(a):
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    small = [u for u in range(len(su)) if unit_cells[u]
             and not qualifies(uarea[u], head[u], utype[u])]
    if R.get("cluster", True) and small:
        small_set = set(small)
        cell_pos = {c: i for i, c in enumerate(cid)}
        for u in small:
            for p in unit_cells[u]:
                adj = adjacency[ccode[p]]
                i = adj.position[cid[p]]
                for j in list(adj.neighbors(i)):
                    v = pos_unit.get(cell_pos.get(adj.cell_ids[j]))
                    if v is not None and v != u and v in small_set and utype[v] == utype[u]:
                        parent[find(v)] = find(u)
    groups: dict[int, list[int]] = {}
    for u in range(len(su)):
        if unit_cells[u]:
            groups.setdefault(find(u), []).append(u)

    assign: dict = {}
    rows = []
    counter: dict[str, int] = {}
    for members in groups.values():
        area = float(uarea[members].sum())
        hc = float(head[members].sum())
        t = utype[members[0]]
        if not qualifies(area, hc, t):
            continue
        ps = sorted({p for u in members for p in unit_cells[u]})
        by_comm: dict[str, list[int]] = {}
        for p in ps:
            by_comm.setdefault(ccode[p], []).append(p)
        for code, cps in by_comm.items():
            adj = adjacency[code]
            for part in _components_geo(adj, [cid[p] for p in cps]):
                n = counter.get(code, 0) + 1
                counter[code] = n
                key = f"{code}/d{n:02d}"
                for c in part:
                    assign[c] = key
                rows.append({"key": key, "community_code": code, "unit_type": t,
                             "unit_ids": [uid[u] for u in members],
                             "unit_names": [names[u] for u in members], "headcount": hc})
    if rows:
        _absorb_enclosed(cells, adjacency, assign)
    assignment = pd.Series(assign, name="dedicated", dtype=object)
    assignment.index.name = "cell_id"
    if not rows:
        return assignment, empty
    info = pd.DataFrame(rows).set_index("key")
    sub = cells[cells["cell_id"].isin(assignment.index)]
    k = sub["cell_id"].map(assignment)
    agg = sub.groupby(k.to_numpy()).agg(households=("households", "sum"),
                                        residents=("residents", "sum"),
                                        workload=("workload", "sum"))
    geom = {key: shapely.union_all(g.geometry.values, grid_size=1e-3)
            for key, g in sub.groupby(k.to_numpy())}
    info = info.join(agg)
    out = gpd.GeoDataFrame(info, geometry=[geom[key] for key in info.index], crs=cells.crs)
    out["area_km2"] = out.area / 1e6
    return assignment, out


def _components_geo(adj: Adjacency, ids: list) -> list[list]:
    """Connected parts of a set of cells, through contiguity and barrier links."""
    inside = {adj.position[c] for c in ids}
    extra: dict[int, list[int]] = {}
    for (a, b) in adj.barrier_pairs:
        if a in inside and b in inside:
            extra.setdefault(int(a), []).append(int(b))
            extra.setdefault(int(b), []).append(int(a))
    seen: set = set()
    parts = []
    for s in sorted(inside):
        if s in seen:
            continue
        comp, stack = [s], [s]
        seen.add(s)
        while stack:
            u = stack.pop()
            for v in list(adj.neighbors(u)) + extra.get(u, []):
                if v in inside and v not in seen:
                    seen.add(v)
                    comp.append(v)
                    stack.append(v)
        parts.append([adj.cell_ids[p] for p in comp])
    return parts


def _absorb_enclosed(cells, adjacency, assign: dict) -> None:
    """Empty pool land enclosed by one dedicated grid joins it (updates ``assign``)."""
    hh = dict(zip(cells["cell_id"], cells["households"]))
    for code, grp in cells.groupby(cells["community_code"].astype(str)):
        if not any(c in assign for c in grp["cell_id"]):
            continue
        adj = adjacency[code]
        pool = [c for c in grp["cell_id"] if c not in assign]
        if not pool:
            continue
        for part in _components_geo(adj, pool):
            if sum(hh[c] for c in part) > 0:
                continue
            pset = {adj.position[c] for c in part}
            around = set()
            for p in pset:
                for q in adj.neighbors(p):
                    if q not in pset:
                        around.add(assign.get(adj.cell_ids[q]))
            for (a, b) in adj.barrier_pairs:
                for x, y in ((a, b), (b, a)):
                    if x in pset and y not in pset:
                        around.add(assign.get(adj.cell_ids[y]))
            if len(around) == 1 and None not in around:
                key = around.pop()
                for c in part:
                    assign[c] = key


# --------------------------------------------------------------------------------------------
# planner helpers
# --------------------------------------------------------------------------------------------
def _find_adjacency(adjacency, cell_id) -> Adjacency | None:
    if isinstance(adjacency, Adjacency):
        return adjacency if cell_id in adjacency.position else None
    for adj in adjacency.values():
        if cell_id in adj.position:
            return adj
    return None


def _n_parts(adj: Adjacency, members: set, *, across_barriers: bool = True) -> int:
    """Number of connected parts of a set of positions: through contiguity, and also through
    barrier links unless ``across_barriers`` is false."""
    extra: dict[int, list[int]] = {}
    for (a, b) in (adj.barrier_pairs if across_barriers else ()):
        if a in members and b in members:
            extra.setdefault(int(a), []).append(int(b))
            extra.setdefault(int(b), []).append(int(a))
    seen: set = set()
    parts = 0
    for s in members:
        if s in seen:
            continue
        parts += 1
        stack = [s]
        seen.add(s)
        while stack:
            u = stack.pop()
            for v in list(adj.neighbors(u)) + extra.get(u, []):
                v = int(v)
                if v in members and v not in seen:
                    seen.add(v)
                    stack.append(v)
    return parts


def can_move(cell_id, to_grid, labels: pd.Series, adjacency, *,
             locked: Iterable = ()) -> tuple[bool, str]:
    """Whether the planner may move a cell to another grid, and why not.

    Refused when the cell or grid is unknown, either grid is locked, the target grid is in
    another community or does not touch the cell (across a barrier counts as not touching),
    the move would empty the source grid, or it would split the source grid.

    Parameters
    ----------
    cell_id
        The cell to move.
    to_grid
        Target grid id.
    labels
        ``cell_id -> grid_id`` of the plan being edited.
    adjacency
        The community's :class:`Adjacency` or the dict of all of them.
    locked
        Locked grid ids.

    Returns
    -------
    (bool, str)
        ``(True, "ok")`` or ``(False, reason)``; reasons are given in Chinese and English.
    """
    adj = _find_adjacency(adjacency, cell_id)
    if adj is None or cell_id not in labels.index:
        return False, f"未知单元 / unknown cell {cell_id!r}"
    src = labels[cell_id]
    if src == to_grid:
        return False, f"已在网格 {to_grid} 中 / the cell is already in grid {to_grid}"
    locked = set(locked)
    if src in locked:
        return False, f"网格 {src} 已锁定 / grid {src} is locked"
    if to_grid in locked:
        return False, f"网格 {to_grid} 已锁定 / grid {to_grid} is locked"
    lab = labels.reindex(adj.cell_ids).to_numpy()
    if not (lab == to_grid).any():
        return False, (f"网格 {to_grid} 不在本社区 / grid {to_grid} is not in this community")
    i = adj.position[cell_id]
    if not any(lab[j] == to_grid for j in adj.neighbors(i)):
        across = any((a == i and lab[b] == to_grid) or (b == i and lab[a] == to_grid)
                     for a, b in adj.barrier_pairs)
        if across:
            return False, (f"与网格 {to_grid} 之间隔着道路/铁路/河流 / grid {to_grid} lies "
                           "across a barrier (major road, railway or river)")
        return False, f"与网格 {to_grid} 不相邻 / the cell does not touch grid {to_grid}"
    members = set(np.flatnonzero(lab == src).tolist())
    if len(members) == 1:
        return False, f"网格 {src} 将被清空 / grid {src} would be left empty"
    parts = _n_parts(adj, members - {i})
    if parts > 1:
        return False, (f"网格 {src} 将被分成 {parts} 块 / grid {src} would split into "
                       f"{parts} pieces")
    return True, "ok"


def review_current_plan(cells: gpd.GeoDataFrame, labels: pd.Series, adjacency: dict,
                        grids: gpd.GeoDataFrame, *, communities: gpd.GeoDataFrame,
                        norms: dict | None = None, barriers=None,
                        grid_type: dict | None = None) -> pd.DataFrame:
    """Which communities' current grids already meet every rule, so that a re-draw keeps them.

    A community is kept when every cell of it has a current grid and each of its basic grids
    holds households within the norm, is one piece (one valid polygon as given, and its cells
    connected without crossing a barrier), lies inside the community (99 % of its area) and has
    at most :data:`CROSSING_M` metres of barrier inside it.

    Parameters
    ----------
    cells, adjacency
        Cells and their adjacency (:func:`build_cells`, :func:`cell_adjacency`).
    labels
        ``cell_id -> grid_id`` of the current plan (:func:`labels_from_plan`).
    grids
        The current grid polygons as given (``grid_id``, geometry), same CRS as the cells.
    communities, norms, barriers
        As in :func:`plan_metrics`.
    grid_type
        ``grid_id -> 'basic'|'dedicated'`` (default basic); dedicated grids are not judged.

    Returns
    -------
    pandas.DataFrame
        One row per community: ``community_code``, ``keep`` (bool), ``reason`` (the first
        rule broken, '' when kept), ``grids`` (its basic grid ids).
    """
    grid_type = grid_type or {}
    lab = labels.reindex(cells["cell_id"])
    comm = cells["community_code"].astype(str).to_numpy()
    hh = cells["households"].to_numpy(float)
    frame = pd.DataFrame({"cell_id": cells["cell_id"].to_numpy(), "c": comm, "h": hh,
                          "g": lab.to_numpy()})
    ctab = communities.set_index(communities["community_code"].astype(str))
    kinds = ctab["kind"] if "kind" in ctab.columns else pd.Series("urban", index=ctab.index)
    poly = dict(zip(grids["grid_id"], grids.geometry.values))
    cross = dict(zip(grids["grid_id"], barrier_crossing(grids, barriers)))
    comms_of = frame.dropna(subset=["g"]).groupby("g")["c"].agg(lambda v: set(v))
    rows = []
    for code, grp in frame.groupby("c", sort=True):
        basic = [g for g in pd.unique(grp["g"].dropna()) if grid_type.get(g, "basic") != "dedicated"]
        reason = ""
        if grp["g"].isna().any():
            reason = "incomplete"
        norm = norm_for(code, kinds.get(code, "urban"), norms)
        cgeom = ctab.geometry.get(code)
        adj = adjacency[code]
        for g in sorted(basic, key=str):
            if reason:
                break
            mem = grp[grp["g"] == g]
            h = float(mem["h"].sum())
            whole = len(basic) == 1
            if not (norm["households_min"] <= h <= norm["households_max"]
                    or (norm.get("allow_small_whole") and whole and h <= norm["households_max"])):
                reason = f"{g}: {h:.0f} households outside the norm"
            elif comms_of.get(g, {code}) != {code}:
                reason = f"{g}: in several communities"
            elif g not in poly or poly[g] is None or not poly[g].is_valid \
                    or poly[g].geom_type != "Polygon":
                reason = f"{g}: not one valid polygon"
            elif cgeom is not None and poly[g].area > 0 and \
                    poly[g].intersection(cgeom).area < 0.99 * poly[g].area:
                reason = f"{g}: outside its community"
            elif cross.get(g, 0.0) > CROSSING_M:
                reason = f"{g}: crossed by {cross[g]:.0f} m of barrier"
            else:
                pos = {adj.position[c] for c in mem["cell_id"]}
                if _n_parts(adj, pos, across_barriers=False) > 1:
                    reason = f"{g}: in several pieces"
        rows.append({"community_code": code, "keep": not reason, "reason": reason,
                     "grids": sorted(basic, key=str)})
    return pd.DataFrame(rows)


def validity_checklist(cells: gpd.GeoDataFrame, labels: pd.Series, adjacency, *,
                       communities=None, norms: dict | None = None,
                       grid_type: dict | None = None) -> pd.DataFrame:
    """The planner's checklist: complete, contiguous, inside one community, within norm.

    Returns
    -------
    pandas.DataFrame
        Columns ``check``, ``label_zh``, ``ok`` (bool), ``detail``.
    """
    lab = labels.reindex(cells["cell_id"])
    rows = []
    n_missing = int(lab.isna().sum())
    rows.append(("complete", "全覆盖", n_missing == 0,
                 "every cell is in a grid" if n_missing == 0 else
                 f"{n_missing} cell(s) are in no grid"))
    comm = cells["community_code"].astype(str).to_numpy()
    per_grid = pd.Series(comm).groupby(lab.to_numpy()).nunique()
    multi = per_grid[per_grid > 1].index.tolist()
    rows.append(("inside_one_community", "不跨社区", not multi,
                 "every grid lies in one community" if not multi else
                 f"grids crossing communities: {multi[:10]}"))
    split = []
    for code, grp in cells.assign(_g=lab.to_numpy()).groupby(comm):
        adj = adjacency[code] if not isinstance(adjacency, Adjacency) else adjacency
        for g, sub in grp.dropna(subset=["_g"]).groupby("_g"):
            if _n_parts(adj, {adj.position[c] for c in sub["cell_id"]}) > 1:
                split.append(g)
    rows.append(("contiguous", "连通", not split,
                 "every grid is one connected piece" if not split else
                 f"grids in several pieces: {split[:10]}"))
    if n_missing == 0:
        st = grid_status(cells, lab, adjacency if not isinstance(adjacency, Adjacency)
                         else {adjacency.community_code: adjacency}, communities, norms,
                         grid_type)
        bad = st[st != "ok"]
        detail = ("every basic grid is within the norm" if bad.empty else
                  "; ".join(f"{n} {s}" for s, n in bad.value_counts().items()))
        rows.append(("within_norm", "户数达标", bad.empty, detail))
    else:
        rows.append(("within_norm", "户数达标", False, "incomplete plan"))
    return pd.DataFrame(rows, columns=["check", "label_zh", "ok", "detail"])


# --------------------------------------------------------------------------------------------
# metrics and diffs
# --------------------------------------------------------------------------------------------
_INFEASIBLE = {"over_max_single_unit", "under_min_community", "under_min_component",
               "infeasible"}


def within_norm(grids: pd.DataFrame, norms: dict | None = None) -> pd.Series:
    """Whether each basic grid's households meet its community's norm (bool Series)."""
    out = []
    for code, kind, h, st in zip(grids["community_code"],
                                 grids.get("kind", pd.Series("urban", index=grids.index)),
                                 grids["households"],
                                 grids.get("status", pd.Series("", index=grids.index))):
        n = norm_for(code, kind, norms)
        ok = n["households_min"] <= h <= n["households_max"]
        if not ok and n.get("allow_small_whole") and h <= n["households_max"] and st == "ok":
            ok = True
        out.append(ok)
    return pd.Series(out, index=grids.index, dtype=bool)


#: A basic grid with more than this many metres of barrier (road, railway, river) running
#: through its inside is "crossed by a barrier" (issue #10: a grid straddling a railway); the
#: engine's own limit for joining a small piece across a barrier.
CROSSING_M = BARRIER_JOIN_M
#: Two grids overlap when their common area exceeds this (m²) and is wider than 2 cm somewhere;
#: below that it is the 1 mm coordinate snapping along a shared edge.
OVERLAP_M2 = 1.0


def barrier_crossing(grids: gpd.GeoDataFrame, barriers) -> np.ndarray:
    """Metres of barrier line inside each grid (lines along a grid's edge do not count).

    A line counts where it runs through the grid's inside, more than 1 m from its edge (the
    grid shrunk by 1 m), so a road that is the grid's boundary measures 0.
    """
    geoms = np.asarray(grids.geometry.values, dtype=object)
    out = np.zeros(len(geoms))
    if barriers is None or not len(barriers) or not len(geoms):
        return out
    if isinstance(barriers, gpd.GeoDataFrame | gpd.GeoSeries):
        if barriers.crs is not None and grids.crs is not None and barriers.crs != grids.crs:
            barriers = barriers.to_crs(grids.crs)
        lines = np.asarray(barriers.geometry.values, dtype=object)
    else:
        lines = np.asarray(barriers, dtype=object)
    lines = lines[~shapely.is_missing(lines) & ~shapely.is_empty(lines)]
    lines = shapely.get_parts(lines)
    lines = np.where(shapely.get_type_id(lines) == 3, shapely.boundary(lines), lines)
    lines = shapely.get_parts(lines)
    lines = lines[np.isin(shapely.get_type_id(lines), [1, 2])]
    if not len(lines):
        return out
    inner = shapely.buffer(geoms, -1.0, quad_segs=2)
    gi, li = shapely.STRtree(lines).query(inner, predicate="intersects")
    if len(gi):
        ln = shapely.length(shapely.intersection(lines[li], inner[gi]))
        np.add.at(out, gi, ln)
    return out


def plan_integrity(grids: gpd.GeoDataFrame, barriers=None, *, crossing_m: float = CROSSING_M,
                   overlap_m2: float = OVERLAP_M2) -> dict:
    """Geometry checks of a plan: barrier crossings, overlaps, invalid polygons.

    Returns
    -------
    dict
        ``n_barrier_crossed`` (basic grids with more than ``crossing_m`` metres of barrier
        inside, see :func:`barrier_crossing`), ``n_overlaps`` (pairs of grids sharing more
        than ``overlap_m2`` m²), ``n_invalid`` (grid polygons that are not one valid
        polygon), ``flagged`` (any of these), and the ids: ``crossed_grids``,
        ``overlap_pairs``, ``invalid_grids``.
    """
    geoms = np.asarray(grids.geometry.values, dtype=object)
    ids = (grids["grid_id"].to_numpy() if "grid_id" in grids.columns
           else np.asarray(grids.index))
    basic = (grids["grid_type"].to_numpy() == "basic" if "grid_type" in grids.columns
             else np.ones(len(grids), dtype=bool))
    cross = barrier_crossing(grids, barriers)
    crossed = [ids[i] for i in np.flatnonzero(basic & (cross > crossing_m))]
    bad = ~shapely.is_valid(geoms) | (shapely.get_type_id(geoms) != 3)
    invalid = [ids[i] for i in np.flatnonzero(bad)]
    pairs = []
    if len(geoms) > 1:
        fixed = np.array([g if ok else shapely.make_valid(g, method="structure",
                                                          keep_collapsed=False)
                          for g, ok in zip(geoms, shapely.is_valid(geoms))], dtype=object)
        a, b = shapely.STRtree(fixed).query(fixed, predicate="intersects")
        keep = a < b
        a, b = a[keep], b[keep]
        if len(a):
            inter = shapely.intersection(fixed[a], fixed[b])
            big = shapely.area(inter) > overlap_m2
            # wider than 2 cm somewhere: not the 1 mm snapping along a long shared edge
            big[big] = ~shapely.is_empty(shapely.buffer(inter[big], -0.01, quad_segs=2))
            pairs = [(ids[i], ids[j]) for i, j in zip(a[big], b[big])]
    return {"n_barrier_crossed": len(crossed), "n_overlaps": len(pairs),
            "n_invalid": len(invalid),
            "flagged": bool(crossed or pairs or invalid),
            "crossed_grids": crossed, "overlap_pairs": pairs, "invalid_grids": invalid}


def plan_metrics(grids: gpd.GeoDataFrame, norms: dict | None = None, *,
                 communities: gpd.GeoDataFrame | None = None, barriers=None) -> dict:
    """Figures of a plan (the ``grid_metrics`` table row, plus a few more).

    Returns
    -------
    dict
        ``n_grids``, ``n_basic``, ``n_dedicated``, ``households_min``/``households_max``
        (over basic grids), ``share_within_norm`` (basic grids), ``share_within_norm_feasible``
        (excluding grids whose status says the norm cannot be met), ``workload_cv`` (std/mean
        over basic grids), ``mean_compactness`` (Polsby–Popper, basic grids), ``contiguous``
        (every grid a single polygon), and with ``communities``: ``coverage_gap_km2`` (area of
        communities not covered), ``overlap_km2`` and ``outside_km2`` (grid area outside its
        community); always ``n_barrier_crossed``, ``n_overlaps``, ``n_invalid`` and
        ``flagged`` from :func:`plan_integrity` (crossings need ``barriers``: lines in the
        grids' CRS).
    """
    basic = grids[grids["grid_type"] == "basic"] if "grid_type" in grids else grids
    geoms = np.asarray(grids.geometry.values, dtype=object)
    wn = within_norm(basic, norms)
    feasible = ~basic["status"].isin(_INFEASIBLE) if "status" in basic else pd.Series(
        True, index=basic.index)
    wl = basic["workload"].to_numpy(float)
    area = shapely.area(np.asarray(basic.geometry.values, dtype=object))
    perim = shapely.length(np.asarray(basic.geometry.values, dtype=object))
    pp = np.where(perim > 0, 4 * np.pi * area / np.maximum(perim, 1e-12) ** 2, 0)
    out = {
        "n_grids": len(grids),
        "n_basic": len(basic),
        "n_dedicated": int(len(grids) - len(basic)),
        "households_min": int(basic["households"].min()) if len(basic) else 0,
        "households_max": int(basic["households"].max()) if len(basic) else 0,
        "share_within_norm": float(wn.mean()) if len(basic) else float("nan"),
        "share_within_norm_feasible": float(wn[feasible].mean()) if feasible.any()
        else float("nan"),
        "workload_cv": float(wl.std() / wl.mean()) if len(wl) and wl.mean() > 0 else 0.0,
        "mean_compactness": float(pp.mean()) if len(pp) else float("nan"),
        "contiguous": bool(np.all(shapely.get_type_id(geoms) == 3)),
    }
    if communities is not None:
        gap = overlap = outside = 0.0
        cgeom = dict(zip(communities["community_code"].astype(str), communities.geometry.values))
        for code, grp in grids.groupby(grids["community_code"].astype(str)):
            g = np.asarray(grp.geometry.values, dtype=object)
            u = shapely.union_all(g, grid_size=1e-3)
            overlap += max(float(shapely.area(g).sum()) - u.area, 0.0)
            c = cgeom.get(code)
            if c is not None:
                gap += shapely.difference(c, u, grid_size=1e-3).area
                outside += shapely.difference(u, c, grid_size=1e-3).area
        drawn = set(grids["community_code"].astype(str))  # once: per community it was O(C x G)
        for code, c in cgeom.items():
            if code not in drawn:
                gap += c.area
        out.update(coverage_gap_km2=gap / 1e6, overlap_km2=overlap / 1e6,
                   outside_km2=outside / 1e6)
    integ = plan_integrity(grids, barriers)
    out.update({k: integ[k] for k in ("n_barrier_crossed", "n_overlaps", "n_invalid",
                                      "flagged")})
    return out


def _as_series(members) -> pd.Series:
    if isinstance(members, pd.Series):
        return members
    for key in ("building_id", "cell_id"):
        if key in members.columns:
            return pd.Series(members["grid_id"].to_numpy(), index=members[key].to_numpy())
    raise ValueError("members must be a Series or have building_id/cell_id and grid_id")


def diff_plans(members_a, members_b, households: pd.Series | None = None) -> dict:
    """What changed between two plans.

    Parameters
    ----------
    members_a, members_b
        ``id -> grid_id`` (Series) or frames with ``building_id`` (or ``cell_id``) and
        ``grid_id`` — e.g. two plans' ``grid_members``.
    households
        ``id -> households`` (default 1 per id, i.e. counts of buildings).

    Returns
    -------
    dict
        ``grids_added``, ``grids_removed`` (lists), ``grids_changed`` (frame: grid_id,
        households_before, households_after, gained, lost), ``moves`` (frame: id,
        from_grid, to_grid, households; from/to None for ids only in one plan),
        ``households_moved`` (int, ids in both plans that changed grid), ``n_unchanged``.
    """
    a = _as_series(members_a)
    b = _as_series(members_b)
    ids = a.index.union(b.index)
    ga = a.reindex(ids)
    gb = b.reindex(ids)
    hh = (households.reindex(ids).fillna(0) if households is not None
          else pd.Series(1, index=ids))
    ga_set, gb_set = set(a.dropna().unique()), set(b.dropna().unique())
    changed_mask = ~((ga == gb) | (ga.isna() & gb.isna()))
    moves = pd.DataFrame({"id": ids[changed_mask.to_numpy()],
                          "from_grid": ga[changed_mask].to_numpy(),
                          "to_grid": gb[changed_mask].to_numpy(),
                          "households": hh[changed_mask].to_numpy()})
    moves = moves.astype({"from_grid": object, "to_grid": object})
    moves[["from_grid", "to_grid"]] = moves[["from_grid", "to_grid"]].where(
        moves[["from_grid", "to_grid"]].notna(), None)
    before = hh.groupby(ga).sum()
    after = hh.groupby(gb).sum()
    lost = moves.dropna(subset=["from_grid"]).groupby("from_grid")["households"].sum()
    gained = moves.dropna(subset=["to_grid"]).groupby("to_grid")["households"].sum()
    common = sorted((ga_set & gb_set) & (set(lost.index) | set(gained.index)), key=str)
    changed = pd.DataFrame({
        "grid_id": common,
        "households_before": [before.get(g, 0) for g in common],
        "households_after": [after.get(g, 0) for g in common],
        "gained": [gained.get(g, 0) for g in common],
        "lost": [lost.get(g, 0) for g in common]})
    both = ga.notna() & gb.notna()
    return {
        "grids_added": sorted(gb_set - ga_set, key=str),
        "grids_removed": sorted(ga_set - gb_set, key=str),
        "grids_changed": changed,
        "moves": moves,
        "households_moved": int(hh[both & changed_mask].sum()),
        "n_unchanged": int((~changed_mask).sum()),
    }


# --------------------------------------------------------------------------------------------
# multi-network fusion (多网融合)
# --------------------------------------------------------------------------------------------
class FusionReport(NamedTuple):
    """``summary``: one row per department; ``overlaps``: department grid × basic grid."""

    summary: pd.DataFrame
    overlaps: pd.DataFrame


def fusion_report(dept_grids: gpd.GeoDataFrame, basic_grids: gpd.GeoDataFrame, *,
                  min_share: float = 0.01, aligned_share: float = 0.9) -> FusionReport:
    """How well each department's grids fit the unified basic grids.

    Parameters
    ----------
    dept_grids
        ``department``, ``grid_id``, geometry (same CRS as ``basic_grids``).
    basic_grids
        The plan's grids (``grid_id``, geometry).
    min_share
        A department grid is *split* when more than one basic grid covers more than this
        share of its area.
    aligned_share
        A department grid is *aligned* when one basic grid covers at least this share.

    Returns
    -------
    FusionReport
        ``summary`` columns: department, n_grids, n_split, share_split,
        mean_max_overlap_share, share_aligned, uncovered_share. ``overlaps`` columns:
        department, dept_grid_id, basic_grid_id, overlap_km2, share_of_dept_grid,
        share_of_basic_grid.
    """
    if dept_grids.crs is not None and basic_grids.crs is not None and \
            dept_grids.crs != basic_grids.crs:
        dept_grids = dept_grids.to_crs(basic_grids.crs)
    dg = np.asarray(dept_grids.geometry.values, dtype=object)
    bg = np.asarray(basic_grids.geometry.values, dtype=object)
    di, bi = shapely.STRtree(bg).query(dg, predicate="intersects")
    inter = shapely.area(shapely.intersection(dg[di], bg[bi])) if len(di) else np.zeros(0)
    darea = shapely.area(dg)
    barea = shapely.area(bg)
    ov = pd.DataFrame({
        "department": dept_grids["department"].to_numpy()[di],
        "dept_grid_id": dept_grids["grid_id"].to_numpy()[di],
        "basic_grid_id": basic_grids["grid_id"].to_numpy()[bi],
        "overlap_km2": inter / 1e6,
        "share_of_dept_grid": inter / np.maximum(darea[di], 1e-12),
        "share_of_basic_grid": inter / np.maximum(barea[bi], 1e-12),
        "_d": di})
    ov = ov[ov["overlap_km2"] > 0]
    per = pd.DataFrame({"department": dept_grids["department"].to_numpy(),
                        "_d": np.arange(len(dg))})
    sig = ov[ov["share_of_dept_grid"] > min_share].groupby("_d").size()
    mx = ov.groupby("_d")["share_of_dept_grid"].max()
    cov = ov.groupby("_d")["share_of_dept_grid"].sum()
    per["split"] = per["_d"].map(sig).fillna(0) > 1
    per["max_share"] = per["_d"].map(mx).fillna(0.0)
    per["covered"] = per["_d"].map(cov).fillna(0.0).clip(upper=1.0)
    summary = per.groupby("department").agg(
        n_grids=("_d", "size"), n_split=("split", "sum"), share_split=("split", "mean"),
        mean_max_overlap_share=("max_share", "mean"),
        share_aligned=("max_share", lambda s: float((s >= aligned_share).mean())),
        uncovered_share=("covered", lambda s: float(1 - s.mean()))).reset_index()
    summary["n_split"] = summary["n_split"].astype(int)
    overlaps = ov.drop(columns="_d").sort_values(
        ["department", "dept_grid_id", "overlap_km2"], ascending=[True, True, False])
    return FusionReport(summary, overlaps.reset_index(drop=True))


# --------------------------------------------------------------------------------------------
# synthetic city (tests, benchmarks, notebook)
# --------------------------------------------------------------------------------------------
def synthetic_city(n_buildings: int = 2000, *, seed: int = 0, per_community: int = 250,
                   rural_share: float = 0.1, barriers: bool = True,
                   special_units: bool = True, polygons: bool = False,
                   crs: str = "EPSG:4546") -> dict[str, gpd.GeoDataFrame]:
    """A random city in EPSG:4546 around Hohhot, for tests and benchmarks.

    Communities are Voronoi polygons of a jittered lattice (urban in the middle, rural
    villages on the outer ring), grouped four by four into streets; buildings cluster in
    blocks, with lognormal households (median 12, a few towers of 60–200); a river and a
    railway cross the city; schools, hospitals, markets and small shops are special units.

    Returns
    -------
    dict
        ``streets``, ``communities``, ``buildings``, ``barriers``, ``special_units``.
    """
    rng = np.random.default_rng(seed)
    n_comm = max(1, round(n_buildings / per_community))
    side = math.ceil(math.sqrt(n_comm))
    cell = 800.0  # metres between community centres
    x0, y0 = 560_000.0, 4_518_000.0
    gx, gy = np.meshgrid(np.arange(side), np.arange(side))
    centres = np.column_stack([gx.ravel(), gy.ravel()])[:n_comm].astype(float)
    centres = x0 + (centres + 0.5) * cell + rng.normal(0, cell * 0.12, centres.shape)
    centres[:, 1] += y0 - x0
    extent = shapely.box(x0, y0, x0 + side * cell, y0 + math.ceil(n_comm / side) * cell)
    vor = shapely.get_parts(shapely.voronoi_polygons(shapely.multipoints(centres),
                                                     extend_to=extent, ordered=True))
    polys = shapely.intersection(vor, extent)
    cx, cy = extent.centroid.x, extent.centroid.y
    dist = np.hypot(centres[:, 0] - cx, centres[:, 1] - cy)
    rural = dist >= np.quantile(dist, 1 - rural_share) if rural_share > 0 and n_comm > 3 \
        else np.zeros(n_comm, dtype=bool)
    street_no = (np.arange(n_comm) // 4) + 1
    comm_no = (np.arange(n_comm) % 4) + 1
    codes = [f"150102{s:03d}{c:03d}" for s, c in zip(street_no, comm_no)]
    communities = gpd.GeoDataFrame({
        "community_code": codes,
        "community_name": [f"社区{i + 1}" for i in range(n_comm)],
        "street_code": [f"150102{s:03d}" for s in street_no],
        "kind": np.where(rural, "rural", "urban")}, geometry=polys, crs=crs)
    streets = communities.dissolve("street_code").reset_index()[["street_code", "geometry"]]
    streets["street_name"] = [f"街道{i + 1}" for i in range(len(streets))]
    streets["district_code"] = "150102"
    streets["district_name"] = "新城区"
    streets["function_type"] = "residential"

    # buildings: per community, a few blocks with rows of buildings
    counts = rng.multinomial(n_buildings, np.full(n_comm, 1 / n_comm))
    recs = []
    for c in range(n_comm):
        poly = polys[c]
        n = int(counts[c])
        if n == 0:
            continue
        minx, miny, maxx, maxy = poly.bounds
        n_blocks = max(1, n // 25)
        bc = []
        while len(bc) < n_blocks:
            p = rng.uniform([minx, miny], [maxx, maxy], size=(n_blocks * 3, 2))
            p = p[shapely.contains_xy(poly, p[:, 0], p[:, 1])]
            bc.extend(p.tolist())
        bc = np.asarray(bc[:n_blocks])
        got = []
        while len(got) < n:
            k = rng.integers(n_blocks, size=n)
            p = bc[k] + rng.normal(0, 60, size=(n, 2))
            p = p[shapely.contains_xy(poly, p[:, 0], p[:, 1])]
            got.extend(p.tolist())
        pts = np.asarray(got[:n])
        if rural[c]:
            hh = rng.integers(1, 4, size=n)
        else:
            hh = np.clip(np.round(rng.lognormal(np.log(12), 0.7, size=n)), 1, 60)
            tower = rng.random(n) < 0.03
            hh[tower] = rng.integers(60, 200, size=int(tower.sum()))
        for (x, y), h in zip(pts, hh):
            recs.append((codes[c], x, y, int(h)))
    bdf = pd.DataFrame(recs, columns=["community_code", "x", "y", "households"])
    bdf["building_id"] = [f"B{i:06d}" for i in range(len(bdf))]
    bdf["residents"] = np.round(bdf["households"] * rng.uniform(2.0, 3.0, len(bdf)))
    bdf["elderly"] = rng.binomial(bdf["residents"].astype(int), 0.15)
    bdf["elderly_alone"] = rng.binomial(bdf["households"], 0.05)
    bdf["disabled"] = rng.binomial(bdf["residents"].astype(int), 0.02)
    bdf["low_income"] = rng.binomial(bdf["households"], 0.04)
    geom = shapely.points(bdf["x"], bdf["y"])
    if polygons:
        geom = shapely.buffer(geom, 6.0, cap_style="square")
    buildings = gpd.GeoDataFrame(bdf.drop(columns=["x", "y"]), geometry=geom, crs=crs)

    bar = gpd.GeoDataFrame({"kind": [], "name": []}, geometry=gpd.GeoSeries([], crs=crs))
    if barriers and n_comm >= 4:
        ex0, ey0, ex1, ey1 = extent.bounds
        t = np.linspace(0, 1, 60)
        rx = ex0 - 50 + t * (ex1 - ex0 + 100)
        ry = ey0 + (ey1 - ey0) * (0.37 + 0.06 * np.sin(t * 9 + rng.uniform(0, 6)))
        river = shapely.linestrings(np.column_stack([rx, ry]))
        rail = shapely.LineString([(ex0 + (ex1 - ex0) * 0.62, ey0 - 50),
                                   (ex0 + (ex1 - ex0) * 0.7, ey1 + 50)])
        bar = gpd.GeoDataFrame({"kind": ["river", "railway"], "name": ["小黑河", "京包铁路"]},
                               geometry=[river, rail], crs=crs)

    units = gpd.GeoDataFrame({"unit_id": [], "unit_name": [], "unit_type": [],
                              "headcount": []}, geometry=gpd.GeoSeries([], crs=crs))
    if special_units:
        urecs = []
        types = [("school", 120, 900), ("hospital", 110, 600), ("market", 60, 150),
                 ("government", 50, 80), ("commercial_building", 40, 700)]
        n_units = max(1, n_comm // 2)
        for u in range(n_units):
            c = int(rng.integers(n_comm))
            t, size, hc = types[u % len(types)]
            inner = polys[c].buffer(-size)
            if inner.is_empty:
                continue
            minx, miny, maxx, maxy = inner.bounds
            for _ in range(20):
                p = rng.uniform([minx, miny], [maxx, maxy])
                if inner.contains(shapely.Point(p)):
                    break
            else:
                continue
            s = size * rng.uniform(0.6, 1.0)
            urecs.append((f"U{u:04d}", f"{t}-{u}", t, int(hc * rng.uniform(0.5, 1.5)),
                          shapely.box(p[0] - s / 2, p[1] - s / 2, p[0] + s / 2, p[1] + s / 2)))
            if t == "market" and rng.random() < 0.5:  # a small neighbour of the same type
                urecs.append((f"U{u:04d}b", f"{t}-{u}b", t, 120,
                              shapely.box(p[0] + s / 2, p[1] - s / 2, p[0] + s, p[1])))
        if urecs:
            units = gpd.GeoDataFrame(
                pd.DataFrame(urecs, columns=["unit_id", "unit_name", "unit_type", "headcount",
                                             "geometry"]), geometry="geometry", crs=crs)
    return {"streets": streets, "communities": communities, "buildings": buildings,
            "barriers": bar, "special_units": units}

"""Partition units ("cells") for the grid engine and their contiguity graph.

A *cell* is the atom the grid engine moves: one residential building (or a few buildings at
the same spot), with the piece of land closest to it. Cells are a Voronoi tessellation of the
building points, computed separately inside every *piece* of a community (the community cut
by barrier lines: major roads, railways, rivers), so that

* the cells of a community tile it completely (no gap, no overlap, up to 1 mm snapping);
* no cell crosses a barrier, and cells on opposite sides of a barrier are *not* neighbours
  (they are kept as ``barrier_pairs`` so the engine can still measure perimeters and, as a
  last resort, join a piece that is too small to form a grid on its own);
* land without buildings (parks, water, sliver pieces) becomes empty cells with 0 households.

Special-unit polygons (schools, hospitals, ...) can be carved out as cells of their own, so
that dedicated grids follow the unit's fence line exactly.

Everything here is pure: GeoDataFrames in a projected metric CRS in, GeoDataFrames out.
"""
from __future__ import annotations

import logging
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import shapely
import shapely.ops
from scipy.spatial import cKDTree

log = logging.getLogger(__name__)

#: Default workload weights per building attribute (per household / per person counted).
#: ``workload = sum(weight * column)`` over the columns present; missing values count as 0.
#: A ``workload`` column on the buildings, if present, is used as is instead.
DEFAULT_WORKLOAD_WEIGHTS: dict[str, float] = {
    "households": 1.0,
    "elderly_alone": 1.0,
    "disabled": 0.5,
    "low_income": 0.5,
    "elderly": 0.2,
    "renters": 0.2,
    "children": 0.1,
}

#: Persons per household used where ``residents`` is missing (Hohhot 2020 census: 2.3 persons
#: per family household, ``data/hohhot/hohhot_census2020_districts.csv``).
DEFAULT_HOUSEHOLD_SIZE = 2.3

#: Coordinates of the cells are snapped to this grid (metres) so neighbours share exact edges.
PRECISION = 0.001

CELL_COLUMNS = [
    "cell_id", "community_code", "piece", "building_ids", "n_buildings",
    "households", "residents", "workload", "unit_id", "geometry",
]


# --------------------------------------------------------------------------------------------
# validation helpers
# --------------------------------------------------------------------------------------------
def _check_frame(gdf: gpd.GeoDataFrame, name: str, required: Iterable[str]) -> None:
    problems = []
    if not isinstance(gdf, gpd.GeoDataFrame):
        raise TypeError(f"`{name}` must be a GeoDataFrame, got {type(gdf).__name__}")
    missing = [c for c in required if c not in gdf.columns]
    if missing:
        problems.append(f"`{name}` lacks column(s) {missing}")
    if gdf.crs is not None and gdf.crs.is_geographic:
        problems.append(
            f"`{name}` has a geographic CRS ({gdf.crs.to_string()}); project it to a metric CRS "
            "first, e.g. `gdf.to_crs(geo.chinacrs.metric_crs(lon))` (EPSG:4546 for Hohhot)"
        )
    if problems:
        raise ValueError("; ".join(problems))


def _polygonal(geom) -> shapely.Geometry:
    """Valid polygonal part of a geometry (drops points/lines a make_valid may produce)."""
    if geom is None or geom.is_empty:
        return shapely.Polygon()
    if not geom.is_valid:
        # "structure": shells unioned, holes subtracted. The default "linework" method can turn
        # a hole whose ring touches the shell after snapping into a polygon of its own: a land
        # cell then covered the special unit carved out of it (a basic grid overlapping a
        # dedicated one, issue #10).
        geom = shapely.make_valid(geom, method="structure", keep_collapsed=False)
    parts = [p for p in shapely.get_parts(geom) if p.geom_type in ("Polygon", "MultiPolygon")]
    if not parts:
        # a GeometryCollection nested one level deeper
        parts = [
            q for p in shapely.get_parts(geom) for q in shapely.get_parts(p)
            if q.geom_type == "Polygon"
        ]
    if not parts:
        return shapely.Polygon()
    return shapely.union_all(parts) if len(parts) > 1 else parts[0]


def _poly_parts(geom) -> list:
    return [p for p in shapely.get_parts(geom) if p.geom_type == "Polygon" and p.area > 0]


def _generator_points(geoms: np.ndarray) -> np.ndarray:
    """(n, 2) array of one point per building: the point itself, or an interior centroid."""
    out = np.full((len(geoms), 2), np.nan)
    if len(geoms) == 0:
        return out
    gtype = shapely.get_type_id(geoms)
    is_point = gtype == 0
    if is_point.any():
        out[is_point] = shapely.get_coordinates(geoms[is_point])
    other = ~is_point & ~shapely.is_missing(geoms) & ~shapely.is_empty(geoms)
    if other.any():
        g = geoms[other]
        cen = shapely.centroid(g)
        inside = shapely.contains(g, cen) | (shapely.get_type_id(g) <= 2)  # lines: centroid
        pts = np.where(inside, cen, shapely.point_on_surface(g))
        out[other] = shapely.get_coordinates(pts)
    return out


# --------------------------------------------------------------------------------------------
# pieces: a community cut by barriers
# --------------------------------------------------------------------------------------------
#: How far (m) barrier lines are kept beyond a community's edge before noding, so that a line
#: crossing the edge crosses it properly instead of ending a hair (≈1e-10 m) short of it.
BARRIER_REACH = 1.0
#: A barrier end this close (m) to the community's edge counts as reaching it (drawn data rarely
#: meets a boundary exactly); the line is extended across the edge.
BARRIER_SNAP = 0.5
#: A barrier that runs more than this (m) into a community and stops there is closed straight
#: on to the edge or the next barrier, however far that is: otherwise every grid holding it
#: holds more than this much barrier (the plan check's limit, ``geo.grids.CROSSING_M``).
STUB_CLOSE_M = 50.0


def _barrier_lines_for(part, barrier_lines: np.ndarray, hit: np.ndarray) -> list:
    """Barrier lines near ``part``, clipped to a zone reaching ``BARRIER_REACH`` beyond it.

    Lines are *not* clipped to the part itself: the intersection point of a line with the
    edge is computed with rounding error and may fall just inside, leaving the cut open. A line
    that ends inside the part within ``BARRIER_SNAP`` of the edge, or of another barrier (a
    T-junction whose end point misses the other line by a hair), is extended across it.
    """
    zone = shapely.buffer(part, BARRIER_REACH, quad_segs=2)
    clipped = [ln for ln in shapely.get_parts(shapely.intersection(barrier_lines[hit], zone))
               if not ln.is_empty and ln.geom_type == "LineString" and ln.length > 0]
    targets = [part.boundary, *clipped]  # what an end may snap to
    out = []
    for k_line, line in enumerate(clipped):
        xy = np.asarray(line.coords)
        ends = []
        for k, (tip, prev) in enumerate(((xy[0], xy[1]), (xy[-1], xy[-2]))):
            pt = shapely.Point(tip)
            if not part.contains(pt):
                continue  # outside the part: the line crosses the edge already
            best, best_d = None, BARRIER_SNAP
            for t_idx, target in enumerate(targets):
                if t_idx == k_line + 1:
                    continue  # not to itself
                d = target.distance(pt)
                if d <= best_d and not (t_idx > 0 and d == 0.0 and _ends_on(target, pt)):
                    best, best_d = target, d
            if best is None:
                ext = _dangle_extension(part, line, targets, k_line, tip, prev)
                if ext is not None:
                    ends.append((k, ext))
                continue  # else a stub: it does not cut
            q = np.asarray(shapely.get_coordinates(shapely.ops.nearest_points(best, pt)[0]))[0]
            u = q - tip
            n = float(np.hypot(*u))
            if n < 1e-6:  # on it up to rounding: go on in the line's own direction
                u = tip - prev
                n = float(np.hypot(*u)) or 1.0
            u = u / n
            ends.append((k, [tuple(q), tuple(q + u * BARRIER_REACH)]))
        if ends:
            pts = [tuple(c) for c in xy]
            for k, extra in ends:
                pts = (extra[::-1] + pts) if k == 0 else (pts + extra)
            line = shapely.LineString(pts)
        out.append(line)
    return out


def _dangle_extension(part, line, targets: list, k_line: int, tip, prev):
    """Points extending a barrier that ends inside ``part`` straight on to the edge or the next
    barrier, if that extension is shorter than the barrier's own run inside the part.

    A major road or river that runs most of the way across a community and stops is drawn as
    a grid boundary all the way across (the usual practice of closing a grid along the road's
    line). One that runs more than :data:`STUB_CLOSE_M` into the community is closed straight
    on whatever the distance (else any grid holding it would be crossed by it); a short stub
    that cannot be closed within its own length is not extended and does not cut. None if not.
    """
    u = np.asarray(tip, dtype=float) - np.asarray(prev, dtype=float)
    n = float(np.hypot(*u))
    if n == 0:
        return None
    u = u / n
    inside = shapely.intersection(line, part).length
    if inside <= BARRIER_SNAP:
        return None
    if inside > STUB_CLOSE_M:
        x0, y0, x1, y1 = part.bounds
        reach = float(np.hypot(x1 - x0, y1 - y0)) + BARRIER_REACH  # through the whole part
    else:
        reach = inside
    ray = shapely.LineString([tuple(tip), tuple(np.asarray(tip) + u * reach)])
    best = None
    for t_idx, target in enumerate(targets):
        if t_idx == k_line + 1:
            continue
        hit = shapely.intersection(ray, target)
        for q in shapely.get_parts(hit):
            for c in shapely.get_coordinates(q):
                d = float(np.hypot(*(c - np.asarray(tip))))
                if d > 1e-9 and (best is None or d < best[0]):
                    best = (d, c)
    if best is None:
        # nothing straight ahead within the barrier's own length: the shortest way on (never
        # back: at most 90° off the barrier's direction) to the edge or another barrier, if it
        # is not longer than that either
        for t_idx, target in enumerate(targets):
            if t_idx == k_line + 1:
                continue
            c = shapely.get_coordinates(shapely.ops.nearest_points(target, shapely.Point(tip))[0])[0]
            v = c - np.asarray(tip)
            d = float(np.hypot(*v))
            if (1e-9 < d <= inside and float(v @ u) >= 0.0
                    and (best is None or d < best[0])):
                best = (d, c)
        if best is None:
            return None  # a stub: it does not cut
        u = (best[1] - np.asarray(tip)) / best[0]
    q = best[1]
    return [tuple(q), tuple(q + u * BARRIER_REACH)]


def _ends_on(line, pt) -> bool:
    """Whether ``pt`` is an end point of ``line`` (two lines that simply join there)."""
    c = shapely.get_coordinates(line)
    return bool(np.all(c[0] == shapely.get_coordinates(pt)[0])
                or np.all(c[-1] == shapely.get_coordinates(pt)[0]))


def _pieces(community_geom, barrier_lines: np.ndarray, barrier_tree) -> list:
    """Faces of the community cut by the barrier lines (polygons tiling the community).

    The lines are noded together with the community's boundary (``unary_union``) and the
    result polygonized; the faces inside the community are its pieces. Lines run a little
    beyond the boundary (:func:`_barrier_lines_for`), so every line that crosses the community
    from edge to edge closes its cut, whatever the rounding of its end points. A line that
    ends inside (a dangle) does not cut.
    """
    parts = _poly_parts(community_geom)
    if barrier_tree is None or len(barrier_lines) == 0:
        return parts
    # sorted: an STRtree returns hits in its own order, which depends on every line in the tree
    hit = np.sort(barrier_tree.query(community_geom, predicate="dwithin", distance=BARRIER_REACH))
    if len(hit) == 0:
        return parts
    pieces = []
    for part in parts:
        lines = _barrier_lines_for(part, barrier_lines, hit)
        if not lines:
            pieces.append(part)
            continue
        noded = shapely.union_all([part.boundary, *lines])
        faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(noded)))
        faces = [f for f in faces if f.area > 0]
        keep = [f for f in faces if part.contains(f.point_on_surface())]
        total = sum(f.area for f in keep)
        if not keep or abs(total - part.area) > 1e-6 * part.area + 1e-6:
            # noding trouble (rare, e.g. self-overlapping lines): fall back to cutting with a
            # hair-thin buffer and give the hair back to the neighbouring faces
            cut = part.difference(shapely.buffer(shapely.union_all(lines), 1e-4))
            keep = _poly_parts(cut) or [part]
            keep = _regrow(keep, part)
        pieces.extend(_merge_slivers([p for f in keep for p in _poly_parts(_polygonal(f))]))
    return [p for f in pieces for p in _poly_parts(f)]


#: A piece narrower than this (m) everywhere is a sliver between a barrier drawn along the
#: community's edge and the edge itself, not land across a barrier: it joins its neighbour.
SLIVER_WIDTH = 2.0


def _merge_slivers(faces: list) -> list:
    """Join every sliver face to the face it shares the longest boundary with."""
    if len(faces) < 2:
        return faces
    thin = [shapely.is_empty(shapely.buffer(f, -SLIVER_WIDTH / 2, quad_segs=2)) for f in faces]
    if not any(thin) or all(thin):
        return faces
    faces = list(faces)
    for k in sorted((k for k, t in enumerate(thin) if t), key=lambda k: faces[k].area):
        best, best_len = -1, 0.0
        for j, f in enumerate(faces):
            if j == k or thin[j] or f is None:
                continue
            ln = shapely.length(shapely.intersection(faces[k].boundary,
                                                     shapely.buffer(f, 2 * PRECISION)))
            if ln > best_len:
                best, best_len = j, ln
        if best < 0:
            continue  # touches no real piece: stays as it is
        u = _polygonal(shapely.union(faces[best], faces[k], grid_size=PRECISION))
        if u.geom_type == "Polygon":
            faces[best], faces[k] = u, None
    return [f for f in faces if f is not None]


def _regrow(faces: list, whole) -> list:
    """Give the thin slack ``whole - union(faces)`` back to the faces it touches."""
    slack = whole.difference(shapely.union_all(faces))
    if slack.is_empty:
        return faces
    faces = list(faces)
    for s in _poly_parts(slack):
        d = [f.distance(s) for f in faces]
        k = int(np.argmin(d))
        faces[k] = _polygonal(faces[k].union(s))
    return [p for f in faces for p in _poly_parts(f)]


# --------------------------------------------------------------------------------------------
# build_cells
# --------------------------------------------------------------------------------------------
def building_workload(buildings: pd.DataFrame, weights: dict[str, float] | None = None) -> np.ndarray:
    """Workload of each building: ``buildings['workload']`` if present, else a weighted sum.

    Parameters
    ----------
    buildings
        Frame with at least ``households``.
    weights
        Weight per column, default :data:`DEFAULT_WORKLOAD_WEIGHTS`.
    """
    if "workload" in buildings.columns and buildings["workload"].notna().any():
        return pd.to_numeric(buildings["workload"], errors="coerce").fillna(0.0).to_numpy(float)
    weights = DEFAULT_WORKLOAD_WEIGHTS if weights is None else weights
    total = np.zeros(len(buildings))
    for col, wt in weights.items():
        if col in buildings.columns:
            total += wt * pd.to_numeric(buildings[col], errors="coerce").fillna(0.0).to_numpy(float)
    return total


def build_cells(
    buildings: gpd.GeoDataFrame,
    communities: gpd.GeoDataFrame,
    barriers: gpd.GeoDataFrame | None = None,
    *,
    special_units: gpd.GeoDataFrame | None = None,
    max_cell_area: float | None = None,
    workload_weights: dict[str, float] | None = None,
    household_size: float = DEFAULT_HOUSEHOLD_SIZE,
    min_unit_share: float = 0.01,
) -> gpd.GeoDataFrame:
    """Tessellate every community into cells, one per building (or stack of buildings).

    Parameters
    ----------
    buildings
        Residential buildings (points or polygons) with ``building_id``, ``households`` and
        ``community_code``; optional ``residents``, ``workload`` and the vulnerable-group
        counts used by :func:`building_workload`.
    communities
        Community polygons with ``community_code``.
    barriers
        Lines (major roads, railways, rivers). Each community is cut along them first; a line
        that does not cross a community from edge to edge (a dangle) does not cut it.
    special_units
        Optional units that may earn a dedicated grid. Polygons are carved out as cells of
        their own (buildings inside them belong to that cell); points become cells of their
        own. The ``unit_id`` column of the result names the unit.
    max_cell_area
        If given (m²), land far from any building is filled with extra empty cells on a
        lattice of spacing ``sqrt(max_cell_area)``, so that big empty areas can be shared
        between grids (better shapes). Without it, empty land goes to the nearest building.
    workload_weights
        See :func:`building_workload`.
    household_size
        Persons per household used where ``residents`` is missing.
    min_unit_share
        A special-unit polygon is carved in a community only where at least this share of
        the unit (and 10 m²) lies in it; thinner slivers stay ordinary land.

    Returns
    -------
    geopandas.GeoDataFrame
        One row per cell: ``cell_id``, ``community_code``, ``piece`` (barrier-bounded piece
        number inside the community), ``building_ids`` (list), ``n_buildings``,
        ``households``, ``residents``, ``workload``, ``unit_id`` (or None), ``geometry``.
        Buildings whose community is unknown are dropped with a warning.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> com = gpd.GeoDataFrame({"community_code": ["150102001001"]},
    ...                        geometry=[shapely.box(0, 0, 100, 100)], crs=4546)
    >>> b = gpd.GeoDataFrame({"building_id": [1, 2], "households": [10, 20],
    ...                       "community_code": ["150102001001"] * 2},
    ...                      geometry=shapely.points([(25, 50), (75, 50)]), crs=4546)
    >>> cells = build_cells(b, com)
    >>> cells[["households", "n_buildings"]].values.tolist()
    [[10, 1], [20, 1]]
    >>> round(cells.area.sum())
    10000
    """
    _check_frame(buildings, "buildings", ["building_id", "households", "community_code"])
    _check_frame(communities, "communities", ["community_code"])
    crs = communities.crs or buildings.crs

    b = pd.DataFrame({
        "building_id": buildings["building_id"].to_numpy(),
        "community_code": buildings["community_code"].astype("string").to_numpy(),
        "households": pd.to_numeric(buildings["households"], errors="coerce").fillna(0)
        .clip(lower=0).round().astype(np.int64).to_numpy(),
    })
    if "residents" in buildings.columns:
        res = pd.to_numeric(buildings["residents"], errors="coerce").to_numpy(float)
    else:
        res = np.full(len(b), np.nan)
    b["residents"] = np.where(np.isnan(res), b["households"] * household_size, res)
    b["workload"] = building_workload(buildings, workload_weights)
    xy = _generator_points(np.asarray(buildings.geometry.values, dtype=object))
    b["x"], b["y"] = xy[:, 0], xy[:, 1]
    if communities["community_code"].duplicated().any():  # one row per code
        communities = communities.dissolve(by="community_code", as_index=False)
    com_codes = communities["community_code"].astype("string").to_numpy()
    unknown = ~b["community_code"].isin(set(com_codes)) | np.isnan(xy).any(axis=1)
    if unknown.any():
        warnings.warn(
            f"{int(unknown.sum())} building(s) have no known community_code or no geometry "
            "and are left out of the cells", stacklevel=2)
        b = b[~unknown]
    b_by_com = {k: g for k, g in b.groupby("community_code", sort=False)}

    barrier_lines = np.array([], dtype=object)
    barrier_tree = None
    if barriers is not None and len(barriers):
        _check_frame(barriers, "barriers", [])
        geoms = np.asarray(barriers.geometry.values, dtype=object)
        geoms = geoms[~shapely.is_missing(geoms) & ~shapely.is_empty(geoms)]
        lines = shapely.get_parts(geoms)
        # polygons given as barriers (a river as an area): use their outline
        lines = np.where(shapely.get_type_id(lines) == 3, shapely.boundary(lines), lines)
        barrier_lines = shapely.get_parts(lines)
        barrier_lines = barrier_lines[shapely.get_type_id(barrier_lines) == 1]
        barrier_tree = shapely.STRtree(barrier_lines) if len(barrier_lines) else None

    units_poly = units_pt = None
    if special_units is not None and len(special_units):
        _check_frame(special_units, "special_units", ["unit_id"])
        ug = np.asarray(special_units.geometry.values, dtype=object)
        uid = special_units["unit_id"].to_numpy()
        ok = ~shapely.is_missing(ug) & ~shapely.is_empty(ug)
        poly = ok & np.isin(shapely.get_type_id(ug), [3, 6])
        pt = ok & np.isin(shapely.get_type_id(ug), [0, 4])
        if poly.any():
            pg = np.array([_polygonal(g) for g in ug[poly]], dtype=object)
            order = np.argsort(-shapely.area(pg), kind="stable")  # big units first
            units_poly = (uid[poly][order], pg[order], shapely.STRtree(pg[order]))
        if pt.any():
            pp = shapely.centroid(ug[pt])
            units_pt = (uid[pt], shapely.get_coordinates(pp), shapely.STRtree(pp))

    frames = []
    for code, cgeom in zip(com_codes, communities.geometry.values):
        cgeom = _polygonal(cgeom)
        if cgeom.is_empty:
            warnings.warn(f"community {code} has an empty or invalid geometry; skipped",
                          stacklevel=2)
            continue
        frames.append(_community_cells(
            code, cgeom, b_by_com.get(code), barrier_lines, barrier_tree,
            units_poly, units_pt, max_cell_area, min_unit_share))
    if frames:
        cells = pd.concat(frames, ignore_index=True)
    else:
        cells = pd.DataFrame({c: [] for c in CELL_COLUMNS})
    cells = _mend_multipart(cells[CELL_COLUMNS].reset_index(drop=True))
    cells = gpd.GeoDataFrame(cells[CELL_COLUMNS], geometry="geometry", crs=crs)
    log.info("built %d cells for %d communities", len(cells), len(frames))
    return cells


def _mend_multipart(cells: pd.DataFrame, *, min_shared: float = 0.05) -> pd.DataFrame:
    """Make every cell one polygon, so that every grid dissolved from cells is one polygon.

    Clipping a Voronoi cell to a concave community piece can leave detached slivers. The
    part holding most of the cell's area keeps the cell; each other part joins the cell of
    the same community that shares the longest boundary with it (when the union stays one
    polygon), or else becomes an empty cell of its own (households 0), which the partition
    then attaches like any empty land.
    """
    geoms = np.array(cells["geometry"].to_numpy(), dtype=object, copy=True)
    multi = np.flatnonzero(shapely.get_type_id(geoms) == 6)
    if len(multi) == 0:
        return cells
    tree = shapely.STRtree(geoms)
    comm = cells["community_code"].astype(str).to_numpy()
    extra = []
    for i in multi:
        parts = sorted(shapely.get_parts(geoms[i]), key=lambda g: -g.area)
        geoms[i] = parts[0]
        for k, part in enumerate(parts[1:], start=1):
            best, best_len = None, min_shared
            for j in np.sort(tree.query(part, predicate="intersects")):
                if j == i or comm[j] != comm[i]:
                    continue
                shared = shapely.length(shapely.intersection(part.boundary, geoms[j].boundary))
                if shared > best_len:
                    best, best_len = j, shared
            merged = shapely.union(geoms[best], part) if best is not None else None
            if merged is not None and merged.geom_type == "Polygon":
                geoms[best] = merged
                continue
            row = cells.iloc[i].to_dict()
            row.update(cell_id=f"{row['cell_id']}-s{k}", building_ids=[], n_buildings=0, households=0,
                       residents=0.0, workload=0.0, unit_id=None, geometry=part)
            extra.append(row)
    out = cells.copy()
    out["geometry"] = geoms
    if extra:
        out = pd.concat([out, pd.DataFrame(extra)], ignore_index=True)
    return out


def _community_cells(code, cgeom, bld, barrier_lines, barrier_tree, units_poly, units_pt,
                     max_cell_area, min_unit_share) -> pd.DataFrame:
    pieces = _pieces(cgeom, barrier_lines, barrier_tree)
    # sub-faces: the land of each piece left after carving special-unit polygons
    geoms, piece_of, unit_of, kind = [], [], [], []  # kind: 'unit' | 'land'
    for p_idx, piece in enumerate(pieces):
        rest = piece
        if units_poly is not None:
            uids, ugeoms, utree = units_poly
            # in index order = biggest unit first (the tree's own order depends on every unit)
            for k in np.sort(utree.query(piece, predicate="intersects")):
                inter = _polygonal(shapely.intersection(ugeoms[k], rest))
                if inter.is_empty:
                    continue
                share = inter.area / max(ugeoms[k].area, 1e-9)
                if share < min_unit_share or inter.area < 10.0:
                    continue
                for part in _poly_parts(inter):
                    geoms.append(part)
                    piece_of.append(p_idx)
                    unit_of.append(uids[k])
                    kind.append("unit")
                rest = _polygonal(rest.difference(inter))
        for part in _poly_parts(rest):
            geoms.append(part)
            piece_of.append(p_idx)
            unit_of.append(None)
            kind.append("land")
    subfaces = np.array(geoms, dtype=object)
    tree = shapely.STRtree(subfaces)

    # buildings -> sub-face (containing, else nearest; generator moved inside if needed)
    if bld is not None and len(bld):
        B = {"id": bld["building_id"].to_numpy(), "hh": bld["households"].to_numpy(),
             "res": bld["residents"].to_numpy(float), "wl": bld["workload"].to_numpy(float),
             "x": bld["x"].to_numpy(float).copy(), "y": bld["y"].to_numpy(float).copy()}
        pts = shapely.points(B["x"], B["y"])
        sf = np.full(len(pts), -1)
        pi, ti = tree.query(pts, predicate="intersects")
        sf[pi[::-1]] = ti[::-1]  # first match wins
        out = sf < 0
        if out.any():
            near = tree.query_nearest(pts[out], return_distance=False)
            first = np.unique(near[0], return_index=True)[1]
            sf[np.flatnonzero(out)[near[0][first]]] = near[1][first]
            moved = shapely.shortest_line(pts[out], subfaces[sf[out]])
            end_ = shapely.get_coordinates(shapely.get_point(moved, 1))
            B["x"][out], B["y"][out] = end_[:, 0], end_[:, 1]
        order = np.argsort(sf, kind="stable")
        bounds = np.searchsorted(sf[order], np.arange(len(subfaces) + 1))
        by_sf = {k: order[bounds[k]:bounds[k + 1]] for k in range(len(subfaces))
                 if bounds[k + 1] > bounds[k]}
    else:
        B, by_sf = None, {}

    rows = []  # dicts of cell attributes
    orphans = []  # (sub-face index, geometry)
    for s_idx, sgeom in enumerate(subfaces):
        sb = by_sf.get(s_idx)
        base = {"piece": piece_of[s_idx], "unit_id": unit_of[s_idx]}
        if kind[s_idx] == "unit":
            rows.append(_cell_row(base, sgeom, sb, s_idx, B))
            continue
        # generators: stacks of buildings at the same spot (1 cm), unit points, fillers
        gxy_list: list[np.ndarray] = []
        members: list[np.ndarray | None] = []
        gen_unit: list = []
        if sb is not None and len(sb):
            key = np.round(np.column_stack([B["x"][sb], B["y"][sb]]) / 0.01).astype(np.int64)
            _, first, inv = np.unique(key, axis=0, return_index=True, return_inverse=True)
            inv = inv.ravel()
            grp_order = np.argsort(inv, kind="stable")
            cuts = np.searchsorted(inv[grp_order], np.arange(len(first) + 1))
            for g in range(len(first)):
                mem = sb[grp_order[cuts[g]:cuts[g + 1]]]
                members.append(mem)
                gen_unit.append(None)
            gxy_list.append(np.column_stack([B["x"][sb[first]], B["y"][sb[first]]]))
        if units_pt is not None:
            uids, uxy, utree = units_pt
            hit = np.sort(utree.query(sgeom, predicate="intersects"))
            if len(hit):
                gxy_list.append(uxy[hit])
                members.extend([None] * len(hit))
                gen_unit.extend(uids[hit].tolist())
        gxy = np.vstack(gxy_list) if gxy_list else np.zeros((0, 2))
        if max_cell_area:
            fill = _fillers(sgeom, gxy, max_cell_area)
            if len(fill):
                gxy = np.vstack([gxy, fill])
                members.extend([None] * len(fill))
                gen_unit.extend([None] * len(fill))
        if len(gxy) > 1:
            # stacked unit points / buildings: one generator
            _, first, inv = np.unique(np.round(gxy / 0.01).astype(np.int64), axis=0,
                                      return_index=True, return_inverse=True)
            inv = inv.ravel()
            if len(first) < len(gxy):
                mm, mu = [], []
                for g in range(len(first)):
                    idx = np.flatnonzero(inv == g)
                    parts = [members[i] for i in idx if members[i] is not None]
                    mm.append(np.concatenate(parts) if parts else None)
                    mu.append(next((gen_unit[i] for i in idx if gen_unit[i] is not None), None))
                gxy, members, gen_unit = gxy[first], mm, mu
        if len(gxy) <= 1:
            base_u = dict(base, unit_id=gen_unit[0] if len(gxy) else None)
            rows.append(_cell_row(base_u, sgeom, members[0] if len(gxy) else None, s_idx, B))
            continue
        vor = shapely.get_parts(shapely.voronoi_polygons(
            shapely.multipoints(gxy), extend_to=sgeom, ordered=True))
        clipped = shapely.intersection(vor, sgeom)
        simple = shapely.get_type_id(clipped) == 3
        gpts = shapely.points(gxy)
        for g in range(len(gxy)):
            if simple[g]:
                rows.append(_cell_row(dict(base, unit_id=gen_unit[g]), clipped[g], members[g],
                                      s_idx, B))
                continue
            parts = _poly_parts(clipped[g])
            if not parts:
                parts = [shapely.buffer(gpts[g], 1e-3)]  # degenerate: keep the stack alive
            if len(parts) > 1:
                d = np.array([p.distance(gpts[g]) for p in parts])
                a = np.array([p.area for p in parts])
                keep = int(np.lexsort((-a, d))[0])
                for j, p in enumerate(parts):
                    if j != keep:
                        orphans.append((s_idx, p))
                parts = [parts[keep]]
            rows.append(_cell_row(dict(base, unit_id=gen_unit[g]), parts[0], members[g], s_idx,
                                  B))

    cells = pd.DataFrame(rows)
    if orphans:
        cells = _absorb_orphans(cells, orphans)
    geom = shapely.set_precision(cells["geometry"].to_numpy(), PRECISION, mode="pointwise")
    bad = ~shapely.is_valid(geom)
    if bad.any():
        geom[bad] = [_polygonal(g) for g in shapely.set_precision(geom[bad], PRECISION)]
    before = cells["geometry"].to_numpy()
    cells["geometry"] = geom
    if shapely.is_empty(geom).any():
        cells = _fold_empty_cells(cells, before)
    # deterministic order: piece, then north->south, west->east
    c = shapely.centroid(cells["geometry"].to_numpy())
    cells = cells.assign(_y=-np.round(shapely.get_y(c), 1), _x=np.round(shapely.get_x(c), 1))
    cells = cells.sort_values(["piece", "_y", "_x"], kind="stable").reset_index(drop=True)
    cells["cell_id"] = [f"{code}-{i:05d}" for i in range(len(cells))]
    cells["community_code"] = code
    return cells.drop(columns=["_x", "_y", "_sf"])


def _fold_empty_cells(cells: pd.DataFrame, before: np.ndarray) -> pd.DataFrame:
    """Cells whose polygon vanished on the 1 mm snapping (a sliver of a Voronoi region between
    a barrier, a unit and the edge) give their buildings to the nearest cell of the same piece
    (nearest to the cell as it was before snapping): no household is lost and no cell is an
    empty polygon. Empty cells without buildings are dropped."""
    geom = cells["geometry"].to_numpy()
    empty = shapely.is_empty(geom)
    keep = ~empty
    if not keep.any():
        # nothing left to give the buildings to: a 1 m square at each lost cell keeps them
        fixed = [shapely.box(*shapely.buffer(b, 0.5).bounds) if not shapely.is_empty(b)
                 else b for b in before]
        return cells.assign(geometry=fixed)[~shapely.is_empty(np.asarray(fixed, dtype=object))]
    cells = cells.copy()
    ids = cells["building_ids"].tolist()
    sums = {c: cells[c].to_numpy().copy() for c in ("n_buildings", "households", "residents",
                                                     "workload")}
    piece = cells["piece"].to_numpy() if "piece" in cells.columns else np.zeros(len(cells))
    kept_idx = np.flatnonzero(keep)
    for i in np.flatnonzero(empty):
        if not ids[i] and sums["households"][i] == 0:
            continue
        ref = before[i] if not shapely.is_empty(before[i]) else None
        same = kept_idx[piece[kept_idx] == piece[i]]
        pool = same if len(same) else kept_idx
        if ref is None:
            j = int(pool[0])
        else:
            d = shapely.distance(geom[pool], ref)
            j = int(pool[np.lexsort((pool, d))[0]])  # nearest; ties: the first cell
        ids[j] = list(ids[j]) + list(ids[i])
        for c, v in sums.items():
            v[j] += v[i]
    cells["building_ids"] = ids
    for c, v in sums.items():
        cells[c] = v
    return cells[keep]


def _cell_row(base: dict, geom, idx: np.ndarray | None, s_idx: int, B: dict | None) -> dict:
    if idx is None or len(idx) == 0:
        ids, hh, res, wl = [], 0, 0.0, 0.0
    else:
        ids = B["id"][idx].tolist()
        hh = int(B["hh"][idx].sum())
        res = float(B["res"][idx].sum())
        wl = float(B["wl"][idx].sum())
    return dict(base, geometry=geom, building_ids=ids, n_buildings=len(ids), households=hh,
                residents=res, workload=wl, _sf=s_idx)


def _fillers(sgeom, gxy: np.ndarray, max_cell_area: float) -> np.ndarray:
    step = float(np.sqrt(max_cell_area))
    if sgeom.area <= max_cell_area:
        return np.zeros((0, 2))
    x0, y0, x1, y1 = sgeom.bounds
    xs = np.arange(x0 + step / 2, x1, step)
    ys = np.arange(y0 + step / 2, y1, step)
    if len(xs) * len(ys) > 200_000:
        raise ValueError(f"max_cell_area={max_cell_area} is too small for a piece of "
                         f"{sgeom.area:.0f} m²; use a larger value")
    gx, gy = np.meshgrid(xs, ys)
    cand = np.column_stack([gx.ravel(), gy.ravel()])
    cand = cand[shapely.contains_xy(sgeom, cand[:, 0], cand[:, 1])]
    if len(cand) and len(gxy):
        d, _ = cKDTree(gxy).query(cand)
        cand = cand[d > 0.75 * step]
    return cand


def _absorb_orphans(cells: pd.DataFrame, orphans: list) -> pd.DataFrame:
    """Give Voronoi fragments cut off by a concave boundary to the cell they share most with."""
    geoms = list(cells["geometry"])
    sf = cells["_sf"].to_numpy()
    extra = []
    for s_idx, frag in orphans:
        cand = np.flatnonzero(sf == s_idx)
        best, best_len = -1, 0.0
        for k in cand:
            if not geoms[k].intersects(frag):
                continue
            ln = shapely.length(shapely.intersection(
                geoms[k].boundary, shapely.buffer(frag, 2 * PRECISION)))
            if ln > best_len:
                best, best_len = k, ln
        if best >= 0 and best_len > 0.01:
            u = _polygonal(shapely.union(geoms[best], frag))
            if u.geom_type == "Polygon":
                geoms[best] = u
                continue
        row = {c: cells[c].iloc[0] for c in cells.columns}
        row.update(geometry=frag, building_ids=[], n_buildings=0, households=0,
                   residents=0.0, workload=0.0, unit_id=None, _sf=s_idx,
                   piece=cells["piece"].to_numpy()[cand[0]] if len(cand) else 0)
        extra.append(row)
    cells = cells.assign(geometry=geoms)
    if extra:
        cells = pd.concat([cells, pd.DataFrame(extra)], ignore_index=True)
    return cells


# --------------------------------------------------------------------------------------------
# adjacency
# --------------------------------------------------------------------------------------------
@dataclass
class Adjacency:
    """Contiguity of the cells of one community (built once, reused by every step).

    Positions ``0..n-1`` follow ``cell_ids``. ``indptr``/``indices``/``shared`` hold the
    neighbours (CSR) that may be in the same grid: cells sharing a boundary longer than the
    tolerance inside one barrier-bounded piece. ``barrier_pairs``/``barrier_shared`` hold the
    pairs that touch across a barrier (not neighbours; used for perimeters and as a last
    resort to join a piece too small for a grid of its own).
    """

    community_code: str
    cell_ids: np.ndarray
    indptr: np.ndarray
    indices: np.ndarray
    shared: np.ndarray
    barrier_pairs: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), dtype=np.int64))
    barrier_shared: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def __post_init__(self) -> None:
        self.position = {c: i for i, c in enumerate(self.cell_ids)}

    @property
    def n(self) -> int:
        return len(self.cell_ids)

    def neighbors(self, i: int) -> np.ndarray:
        """Positions of the neighbours of position ``i``."""
        return self.indices[self.indptr[i]:self.indptr[i + 1]]

    def neighbor_ids(self, cell_id) -> list:
        """Cell ids of the neighbours of ``cell_id``."""
        return list(self.cell_ids[self.neighbors(self.position[cell_id])])

    def pairs(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Neighbour pairs ``(i, j, shared_length)`` with ``i < j``."""
        row = np.repeat(np.arange(self.n), np.diff(self.indptr))
        keep = row < self.indices
        return row[keep], self.indices[keep], self.shared[keep]

    def graph(self, *, with_barriers: bool = False) -> nx.Graph:
        """The contiguity graph on cell ids (edge attribute ``length``, and ``barrier``)."""
        g = nx.Graph()
        g.add_nodes_from(self.cell_ids)
        i, j, s = self.pairs()
        g.add_edges_from((self.cell_ids[a], self.cell_ids[b], {"length": float(c)})
                         for a, b, c in zip(i, j, s))
        if with_barriers:
            g.add_edges_from(
                (self.cell_ids[a], self.cell_ids[b], {"length": float(c), "barrier": True})
                for (a, b), c in zip(self.barrier_pairs, self.barrier_shared))
        return g


def _csr(n: int, i: np.ndarray, j: np.ndarray, s: np.ndarray):
    src = np.concatenate([i, j])
    dst = np.concatenate([j, i])
    val = np.concatenate([s, s])
    order = np.lexsort((dst, src))
    src, dst, val = src[order], dst[order], val[order]
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.add.at(indptr, src + 1, 1)
    return np.cumsum(indptr), dst.astype(np.int64), val.astype(float)


def _shared_lengths(geoms: np.ndarray, tolerance: float):
    """All pairs of cells sharing boundary, with the shared length (metres)."""
    n = len(geoms)
    if n < 2:
        z = np.zeros(0, dtype=np.int64)
        return z, z, np.zeros(0)
    # 1) exact edge matching on the 1 mm snapped coordinates (covers Voronoi neighbours)
    rings, ridx = shapely.get_rings(geoms, return_index=True)
    coords, cidx = shapely.get_coordinates(rings, return_index=True)
    q = np.round(coords / PRECISION).astype(np.int64)
    same = cidx[1:] == cidx[:-1]
    a, b = q[:-1][same], q[1:][same]
    owner = ridx[cidx[:-1][same]]
    seglen = np.hypot(*(coords[1:][same] - coords[:-1][same]).T)
    swap = (a[:, 0] > b[:, 0]) | ((a[:, 0] == b[:, 0]) & (a[:, 1] > b[:, 1]))
    lo = np.where(swap[:, None], b, a)
    hi = np.where(swap[:, None], a, b)
    key = np.column_stack([lo, hi])
    order = np.lexsort(key.T[::-1])
    key, owner, seglen = key[order], owner[order], seglen[order]
    dup = np.all(key[1:] == key[:-1], axis=1) & (owner[1:] != owner[:-1])
    pi, pj = owner[:-1][dup], owner[1:][dup]
    pl = seglen[:-1][dup]
    lo_, hi_ = np.minimum(pi, pj), np.maximum(pi, pj)
    code = lo_ * n + hi_
    ucode, inv = np.unique(code, return_inverse=True)
    tot = np.zeros(len(ucode))
    np.add.at(tot, inv.ravel(), pl)
    found = set(ucode.tolist())
    # 2) geometric fallback for touching pairs whose edges do not match vertex for vertex
    tree = shapely.STRtree(geoms)
    qi, qj = tree.query(geoms, predicate="dwithin", distance=2 * PRECISION)
    keep = qi < qj
    qi, qj = qi[keep], qj[keep]
    miss = np.array([c not in found for c in (qi * n + qj).tolist()], dtype=bool)
    fi, fj = qi[miss], qj[miss]
    if len(fi):
        # most of these pairs meet at a corner only (a lattice of filler cells touches its
        # diagonal neighbours at one point): measure only pairs whose boundaries come together
        # along more than the tolerance, judged from the vertices near the other cell
        maybe = _touch_spread(geoms, coords, ridx[cidx], fi, fj) > tolerance
        fi, fj = fi[maybe], fj[maybe]
    if len(fi):
        fl = shapely.length(shapely.intersection(
            shapely.boundary(geoms[fi]), shapely.buffer(geoms[fj], 2 * PRECISION, quad_segs=2)))
        # the buffer adds up to 2*eps at each end of the shared stretch
        fl = np.maximum(fl - 4 * PRECISION, 0.0)
    else:
        fl = np.zeros(0)
    i = np.concatenate([ucode // n, fi]).astype(np.int64)
    j = np.concatenate([ucode % n, fj]).astype(np.int64)
    s = np.concatenate([tot, fl])
    ok = s > tolerance
    return i[ok], j[ok], s[ok]


def _touch_spread(geoms: np.ndarray, coords: np.ndarray, owner: np.ndarray, fi: np.ndarray,
                  fj: np.ndarray) -> np.ndarray:
    """Per pair (fi, fj), the extent (bounding-box diagonal, m) of the vertices of either cell
    that lie within 2 * PRECISION of the other cell. A shared stretch of boundary ends at a
    vertex of one cell or the other, so a pair sharing more than ``t`` metres has an extent of
    more than ``t``; a pair meeting at one corner has an extent of about zero."""
    start = np.searchsorted(owner, np.arange(len(geoms) + 1))  # coords are grouped by cell
    pts = shapely.points(coords)
    lo = np.full((len(fi), 2), np.inf)
    hi = np.full((len(fi), 2), -np.inf)
    for a, b in ((fi, fj), (fj, fi)):
        cnt = start[a + 1] - start[a]
        pair = np.repeat(np.arange(len(a)), cnt)
        first = np.repeat(start[a] - np.concatenate([[0], np.cumsum(cnt)[:-1]]), cnt)
        v = first + np.arange(len(pair))
        near = shapely.dwithin(pts[v], geoms[b[pair]], 2 * PRECISION)
        pair, v = pair[near], v[near]
        np.minimum.at(lo, pair, coords[v])
        np.maximum.at(hi, pair, coords[v])
    ext = np.hypot(*(hi - lo).T)
    return np.where(np.isfinite(ext), ext, 0.0)


def community_adjacency(cells: gpd.GeoDataFrame, *, tolerance: float = 0.05) -> Adjacency:
    """Adjacency of the cells of a single community (see :func:`cell_adjacency`)."""
    codes = cells["community_code"].unique()
    if len(codes) > 1:
        raise ValueError(f"community_adjacency expects one community, got {len(codes)}")
    geoms = np.asarray(cells.geometry.values, dtype=object)
    i, j, s = _shared_lengths(geoms, tolerance)
    piece = cells["piece"].to_numpy() if "piece" in cells.columns else np.zeros(len(cells))
    same = piece[i] == piece[j]
    if (~same).any():
        # across a barrier the two sides' vertices rarely match one for one, and exact edge
        # matching may catch only part of the shared stretch: measure it geometrically (these
        # lengths decide whether a small piece may join its neighbour, §3 of the docs)
        bi, bj = i[~same], j[~same]
        fl = shapely.length(shapely.intersection(
            shapely.boundary(geoms[bi]), shapely.buffer(geoms[bj], 2 * PRECISION, quad_segs=2)))
        s = s.copy()
        s[~same] = np.maximum(np.maximum(fl - 4 * PRECISION, 0.0), s[~same])
    indptr, indices, shared = _csr(len(cells), i[same], j[same], s[same])
    return Adjacency(
        community_code=str(codes[0]) if len(codes) else "",
        cell_ids=cells["cell_id"].to_numpy(),
        indptr=indptr, indices=indices, shared=shared,
        barrier_pairs=np.column_stack([i[~same], j[~same]]).astype(np.int64),
        barrier_shared=s[~same],
    )


def cell_adjacency(cells: gpd.GeoDataFrame, *, tolerance: float = 0.05) -> dict[str, Adjacency]:
    """Rook contiguity of the cells, one :class:`Adjacency` per community.

    Two cells are neighbours when they share more than ``tolerance`` metres of boundary and
    lie in the same barrier-bounded piece. Cells of different communities are never linked.

    Parameters
    ----------
    cells
        Output of :func:`build_cells` (needs ``cell_id``, ``community_code``, ``piece``).
    tolerance
        Minimum shared boundary (m); cells meeting at a corner are not neighbours.

    Returns
    -------
    dict
        ``community_code -> Adjacency``.
    """
    out = {}
    for code, grp in cells.groupby("community_code", sort=False):
        out[str(code)] = community_adjacency(grp, tolerance=tolerance)
    return out

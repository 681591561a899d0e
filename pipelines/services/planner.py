"""The planner's library (网格规划): edit one community's grids and save the result as a new plan.

Everything the planner page (``app_pages/planner.py``) does, without Streamlit, so that the
same steps run from a notebook or a script::

    from pipelines.db import connect
    from pipelines.services import planner as pl

    con = connect("demo/gridgov.duckdb", read_only=True)
    ws = pl.load_workspace(con, "150102001009")     # cells, adjacency, current labels
    con.close()
    edit = pl.new_edit(ws)                           # plain data: labels, locks, undo stack
    pl.edit_redraw(ws, edit, households_min=300, households_max=450)
    pl.edit_move(ws, edit, cell_id, to_grid)         # refused (with a reason) if it splits a grid
    pl.edit_undo(ws, edit)
    pl.checklist(ws, pl.working_labels(ws, edit))    # complete / contiguous / one community / norm
    pl.realignment_report(ws, pl.working_labels(ws, edit), "realignment.xlsx")
    pl.save_plan("demo/gridgov.duckdb", ws, pl.working_labels(ws, edit), author="王工", note="…")

The atoms are the ``grid_cells`` written by ``gridgov run`` (stage ``grids``); the current plan
is the one marked ``is_current`` in ``plans``. A cell's current grid is read from that plan's
members (:func:`geo.partition.labels_from_plan`), so a plan saved here, or made current with
:func:`pipelines.plans.set_current`, is what the next edit starts from.

Labels are ``cell_id -> grid_id`` Series. Dedicated grids (专属网格) are always locked: a
re-draw or a move never touches them. A saved plan holds the whole city: the current plan's
grids of every other community, unchanged, and the edited community's new grids; its parent is
the plan that was current when the community was loaded.
"""
from __future__ import annotations

import copy
import io
import json
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo.grids import can_move, diff_plans, plan_metrics, validity_checklist
from geo.partition import (
    DEFAULT_MAX_SECONDS,
    DEFAULT_SEARCH_BUDGET,
    DEFAULT_WEIGHTS,
    building_members,
    grids_from_labels,
    labels_from_plan,
    norm_for,
    partition_community,
    redraw,
)
from geo.tessellation import Adjacency, community_adjacency
from pipelines import results
from pipelines.db import STORAGE_CRS, connect, read_gdf, read_table, table_exists, write_gdf
from pipelines.errors import GridgovError
from pipelines.plans import current_plan_id, load_plan, store_plan

#: Re-draw modes: ``fresh`` draws the community anew (locked grids kept), ``minimal`` repairs
#: the working plan moving as few households as it can (:func:`geo.partition.redraw`).
MODES = ("fresh", "minimal")
#: Work budget of one re-draw in cell visits (see :data:`geo.partition.DEFAULT_SEARCH_BUDGET`),
#: shared by its starts: about a second of search on one core for a large community, and the
#: same proposal on any machine and under any load.
SEARCH_BUDGET = 3 * DEFAULT_SEARCH_BUDGET
#: Weights the page lets a planner change (the norm penalty stays dominant).
EDITABLE_WEIGHTS = ("balance", "compactness")

#: Rows of the comparison table: key, 中文, English.
METRIC_ROWS = (
    ("n_basic", "基础网格数", "Basic grids"),
    ("n_dedicated", "专属网格数", "Dedicated grids"),
    ("households_min", "最少户数", "Fewest households"),
    ("households_max", "最多户数", "Most households"),
    ("share_within_norm", "户数达标网格占比", "Share of grids within the norm"),
    ("workload_cv", "工作量变异系数", "Workload CV"),
    ("mean_compactness", "平均紧凑度", "Mean compactness (Polsby–Popper)"),
    ("contiguous", "全部连通", "All grids contiguous"),
    ("buildings_moved", "调整楼栋数", "Buildings moved"),
    ("households_moved", "调整户数", "Households moved"),
)

CHECKS = {
    "complete": ("全覆盖", "Complete"),
    "contiguous": ("连通", "Contiguous"),
    "inside_one_community": ("不跨社区", "Inside one community"),
    "within_norm": ("户数达标", "Within the norm"),
}

STATUS_LABELS = {
    "ok": ("达标", "within the norm"),
    "out_of_norm": ("户数超出规范", "outside the norm"),
    "infeasible": ("规范无法满足", "norm cannot be met"),
    "under_min_component": ("孤立片区户数不足", "isolated piece below the minimum"),
    "under_min_community": ("社区户数不足一个网格", "community below the minimum"),
    "over_max_single_unit": ("单栋楼超过上限", "one building above the maximum"),
}


class PlannerError(GridgovError, ValueError):
    """A refusal the planner should read: ``zh`` and ``en`` hold the two languages."""


class PlanChanged(PlannerError):
    """The current plan is no longer the one the edit started from."""


# --------------------------------------------------------------------------------------------
# loading
# --------------------------------------------------------------------------------------------
@dataclass
class Workspace:
    """One community of the current plan, ready to edit (all geometry in ``crs``, metres)."""

    community_code: str
    community_name: str
    street_code: str | None
    kind: str
    crs: str
    cells: gpd.GeoDataFrame
    adjacency: Adjacency
    current: pd.Series
    grid_type: dict
    unit_info: dict
    plan_id: str
    norms: dict
    weights: dict
    communities: gpd.GeoDataFrame
    buildings: pd.DataFrame
    _wgs84: gpd.GeoDataFrame | None = field(default=None, repr=False)

    @property
    def dedicated(self) -> set:
        """Dedicated grid ids of this community (always locked)."""
        return {g for g, t in self.grid_type.items() if t == "dedicated"}

    def norm(self, norms: dict | None = None) -> dict:
        """The households norm that applies here (project norms, or ``norms``)."""
        return norm_for(self.community_code, self.kind, self.norms if norms is None else norms)

    @property
    def cells_wgs84(self) -> gpd.GeoDataFrame:
        """The cells in EPSG:4326 (for maps and clicks)."""
        if self._wgs84 is None:
            self._wgs84 = self.cells.to_crs(STORAGE_CRS)
        return self._wgs84


def _json(value) -> dict:
    if isinstance(value, dict):
        return value
    try:
        return json.loads(value) if value else {}
    except (TypeError, ValueError):
        return {}


def _settings(con, plan_id: str | None) -> tuple[dict, dict, str | None]:
    """(norms, weights, metric_crs): the current plan's settings over the latest run's."""
    from pipelines.results import latest_run  # the one "latest run" reader

    run: dict = latest_run(con).get("settings") or {}
    plan: dict = {}
    if plan_id is not None:
        row = con.execute("SELECT settings FROM plans WHERE plan_id = ?", [plan_id]).fetchone()
        plan = _json(row[0]) if row else {}
    norms = copy.deepcopy(plan.get("norms") or run.get("norms") or {})
    weights = dict((plan.get("grids") or run.get("grids") or {}).get("weights") or {})
    return norms, weights, run.get("metric_crs")


def list_communities(con) -> pd.DataFrame:
    """Streets and communities that have cells: the page's two selectors.

    Columns: street_code, street_name, community_code, community_name, kind, households,
    n_cells, n_grids (basic grids of the current plan).
    """
    if not table_exists(con, "grid_cells"):
        return pd.DataFrame(columns=["street_code", "street_name", "community_code",
                                     "community_name", "kind", "households", "n_cells",
                                     "n_grids"])
    has_grids = table_exists(con, "grids")
    grids = ("SELECT community_code, count(*) AS n_grids FROM grids WHERE grid_type = 'basic' "
             "GROUP BY 1") if has_grids else \
        "SELECT NULL::VARCHAR AS community_code, 0 AS n_grids WHERE false"
    sql = f"""
        WITH c AS (SELECT community_code, sum(households) AS households, count(*) AS n_cells
                   FROM grid_cells GROUP BY 1),
             g AS ({grids})
        SELECT m.street_code, s.street_name, m.community_code, m.community_name, m.kind,
               c.households, c.n_cells, coalesce(g.n_grids, 0) AS n_grids
        FROM communities m JOIN c USING (community_code)
        LEFT JOIN streets s USING (street_code)
        LEFT JOIN g USING (community_code)
        ORDER BY m.street_code, m.community_code"""
    out = read_table(con, sql)
    out["street_name"] = out["street_name"].fillna(out["street_code"])
    out["community_name"] = out["community_name"].fillna(out["community_code"])
    return out


def load_workspace(con, community_code: str, *, metric_crs: str | None = None) -> Workspace:
    """Cells, contiguity and current grids of one community from the project database.

    Parameters
    ----------
    con
        A connection (read-only is enough) to a database where ``gridgov run`` has run the
        ``grids`` stage.
    community_code
        The community to edit.
    metric_crs
        Projected CRS for areas and shapes (default: the run's ``metric_crs`` setting, else
        chosen from the community's longitude, EPSG:4546 in Hohhot).

    Raises
    ------
    PlannerError
        No grid plan in the database, or no cells for that community.
    """
    code = str(community_code)
    if not table_exists(con, "grid_cells") or not table_exists(con, "plans"):
        raise PlannerError("数据库中还没有网格方案，请先运行 gridgov run。",
                           "The database has no grid plan yet; run `gridgov run` first.")
    plan_id = current_plan_id(con)
    if plan_id is None:
        raise PlannerError("没有当前网格方案。", "There is no current grid plan.")
    norms, weights, run_crs = _settings(con, plan_id)
    comm = read_gdf(con, "SELECT community_code, community_name, street_code, kind, geometry "
                         "FROM communities WHERE community_code = ?", params=[code])
    if comm.empty:
        raise PlannerError(f"没有社区 {code}。", f"There is no community {code}.")
    from geo.chinacrs import metric_crs_for

    crs = metric_crs or run_crs or metric_crs_for(comm)
    comm = comm.to_crs(crs)
    cells = read_gdf(con, "SELECT * FROM grid_cells WHERE community_code = ? ORDER BY cell_id",
                     params=[code])
    if cells.empty:
        raise PlannerError(f"社区 {code} 没有网格单元。", f"Community {code} has no cells.")
    cells = cells.to_crs(crs)
    cells["building_ids"] = cells["building_ids"].map(
        lambda s: [b for b in str(s).split(",") if b] if isinstance(s, str) and s else [])
    for col in ("households", "residents", "workload"):
        cells[col] = pd.to_numeric(cells[col], errors="coerce").fillna(0)
    cells["households"] = cells["households"].astype("int64")
    adjacency = community_adjacency(cells.drop(columns=["grid_id"], errors="ignore"))

    grids, members = load_plan(con, plan_id)
    grids = grids[grids["community_code"].astype(str) == code]
    members = members[members["grid_id"].isin(grids["grid_id"])]
    building_grid = pd.Series(members["grid_id"].to_numpy(),
                              index=members["building_id"].astype(str).to_numpy())
    current = labels_from_plan(cells, building_grid=building_grid,
                               grids=grids.to_crs(crs)[["grid_id", "geometry"]])
    current.name = "grid_id"
    grid_type = dict(zip(grids["grid_id"], grids["grid_type"].fillna("basic")))
    unit_info = {g: {"unit_type": ut, "unit_ids": ui} for g, ut, ui, t in zip(
        grids["grid_id"], grids["unit_type"], grids["unit_ids"], grids["grid_type"])
        if t == "dedicated"}

    ids = sorted({b for lst in cells["building_ids"] for b in lst})
    wanted = results.select_columns(con, "buildings", ["building_id", "households", "residents"],
                                    geometry=None)  # residents is optional: NULL when absent
    buildings = read_table(con, f"SELECT * FROM ({wanted}) WHERE building_id IN "
                                "(SELECT unnest(?::VARCHAR[]))", [ids])
    buildings["building_id"] = buildings["building_id"].astype(str)
    row = comm.iloc[0]
    kind = row["kind"] if row["kind"] in ("urban", "rural") else "urban"
    return Workspace(
        community_code=code, community_name=str(row["community_name"] or code),
        street_code=None if pd.isna(row["street_code"]) else str(row["street_code"]),
        kind=kind, crs=str(crs), cells=cells.drop(columns=["grid_id"], errors="ignore"),
        adjacency=adjacency, current=current, grid_type=grid_type, unit_info=unit_info,
        plan_id=plan_id, norms=norms, weights=weights, communities=comm, buildings=buildings)


def open_workspace(db_path: str | Path, community_code: str, **kw) -> Workspace:
    """:func:`load_workspace` on a read-only connection that is closed straight away."""
    con = connect(db_path, read_only=True)
    try:
        return load_workspace(con, community_code, **kw)
    finally:
        con.close()


# --------------------------------------------------------------------------------------------
# norms, weights, grids of a labelling
# --------------------------------------------------------------------------------------------
def norms_with(ws: Workspace, households_min: int | None = None,
               households_max: int | None = None) -> dict:
    """The project's norms with this community's norm set to ``[min, max]`` households."""
    norms = copy.deepcopy(ws.norms)
    if households_min is None and households_max is None:
        return norms
    base = ws.norm()
    lo = int(base["households_min"] if households_min is None else households_min)
    hi = int(base["households_max"] if households_max is None else households_max)
    if lo > hi:
        raise PlannerError(f"户数下限 {lo} 大于上限 {hi}。",
                           f"The minimum {lo} is above the maximum {hi}.")
    norms.setdefault("communities", {})[ws.community_code] = {
        "households_min": lo, "households_max": hi}
    return norms


def weights_with(ws: Workspace, weights: dict | None = None) -> dict:
    """The objective weights: engine defaults < project settings < ``weights``."""
    out = dict(DEFAULT_WEIGHTS)
    out.update({k: float(v) for k, v in (ws.weights or {}).items() if k in out})
    out.update({k: float(v) for k, v in (weights or {}).items() if k in out})
    return out


def _stage_seed(seed: int, code: str) -> int:
    """The community's random seed in :func:`geo.partition.partition` (same derivation)."""
    try:
        from geo.partition import _seed_for
    except ImportError:  # pragma: no cover - the engine renamed it
        return int(seed)
    return int(_seed_for(seed, code))


def _as_labels(ws: Workspace, labels) -> pd.Series:
    if labels is None:
        return ws.current.copy()
    if isinstance(labels, dict):
        labels = pd.Series(labels, dtype=object)
    out = labels.reindex(ws.cells["cell_id"].to_numpy())
    out.index.name = "cell_id"
    out.name = "grid_id"
    return out


def _gtype(ws: Workspace, labels: pd.Series) -> dict:
    return {g: ws.grid_type.get(g, "basic") for g in pd.unique(labels.dropna())}


def plan_grids(ws: Workspace, labels=None, norms: dict | None = None) -> gpd.GeoDataFrame:
    """The grids of a labelling of this community (metric CRS), with status against ``norms``.

    Columns as :func:`geo.partition.grids_from_labels` plus ``within_norm`` (bool, always true
    for dedicated grids); dedicated grids keep their ``unit_type`` / ``unit_ids``.
    """
    lab = _as_labels(ws, labels)
    norms = ws.norms if norms is None else norms
    cells = ws.cells
    if lab.isna().any():  # an incomplete labelling: draw what is labelled
        cells = cells[lab.notna().to_numpy()]
        lab = lab.dropna()
    grids, _ = grids_from_labels(cells, lab, communities=ws.communities,
                                 adjacency={ws.community_code: ws.adjacency}, norms=norms,
                                 grid_type=_gtype(ws, lab), codes=None)
    for g, info in ws.unit_info.items():
        hit = grids["grid_id"] == g
        if hit.any():
            grids.loc[hit, "unit_type"] = info["unit_type"]
            grids.loc[hit, "unit_ids"] = info["unit_ids"]
    norm = norm_for(ws.community_code, ws.kind, norms)
    grids["within_norm"] = (grids["grid_type"] == "dedicated") | (grids["status"] == "ok")
    grids.attrs["norm"] = (norm["households_min"], norm["households_max"])
    return grids


def _finalize_codes(ws: Workspace, labels: pd.Series) -> pd.Series:
    """Give grids without a well-formed code the next free standard codes."""
    _, members = grids_from_labels(ws.cells, labels, communities=ws.communities,
                                   adjacency={ws.community_code: ws.adjacency},
                                   grid_type=_gtype(ws, labels), status={}, codes="keep")
    out = pd.Series(members["grid_id"].to_numpy(), index=members["cell_id"].to_numpy(),
                    name="grid_id")
    out.index.name = "cell_id"
    return out.reindex(ws.cells["cell_id"].to_numpy())


# --------------------------------------------------------------------------------------------
# re-draw
# --------------------------------------------------------------------------------------------
@dataclass
class Redraw:
    """Result of :func:`redraw_community`: new labels, seconds taken, the mode used."""

    labels: pd.Series
    seconds: float
    mode: str
    locked: list = field(default_factory=list)


def redraw_community(ws: Workspace, labels=None, *, households_min: int | None = None,
                     households_max: int | None = None, weights: dict | None = None,
                     locked: Iterable = (), mode: str = "fresh", seed: int = 0,
                     budget: int = SEARCH_BUDGET, starts: int = 6,
                     max_seconds: float | None = DEFAULT_MAX_SECONDS) -> Redraw:
    """Draw a proposal for the community.

    Parameters
    ----------
    labels
        The plan to start from (default: the current plan).
    households_min, households_max
        The norm for this community (default: the project's).
    weights
        Objective weights (``balance``, ``compactness``, ``norm``, ``move``).
    locked
        Grid ids kept exactly as they are in ``labels``; dedicated grids always are.
    mode
        ``'fresh'``: a new partition (:func:`geo.partition.partition_community`) of the cells
        outside the locked grids; ``'minimal'``: fix norm violations of ``labels`` moving as
        few households as possible (:func:`geo.partition.redraw`).
    seed, budget, starts
        A fresh re-draw tries up to ``starts`` random starts (the first with the seed that
        ``gridgov run`` used for this community) within a work budget of ``budget`` cell
        visits and keeps the one with the best objective; the proposal depends only on the
        inputs and the seed, never on the machine's load.
    max_seconds
        Wall-clock safety net of each start (logged when it fires; should never).

    Grids of the new plan that mostly cover a grid of ``labels`` keep its code; the others get
    the next free codes of the community.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    t0 = time.perf_counter()
    base = _as_labels(ws, labels)
    norms = norms_with(ws, households_min, households_max)
    norm = ws.norm(norms)
    W = weights_with(ws, weights)
    present = set(base.dropna().unique())
    locked_all = (set(locked) | ws.dedicated) & present
    if mode == "minimal":
        # as few households moved as possible: the norm and the move cost only (redraw's own
        # defaults: balance 0, compactness 0, move 1), else a plan already within the norm is
        # reshuffled for balance
        minimal_w = {"norm": W["norm"], **({"move": W["move"]} if W.get("move", 0) > 0 else {})}
        new, _moves = redraw(ws.cells, {ws.community_code: ws.adjacency}, base,
                             locked_grids=locked_all, communities=ws.communities, norms=norms,
                             weights=minimal_w, seed=seed, budget=budget, max_seconds=max_seconds)
        new = _finalize_codes(ws, new.reindex(ws.cells["cell_id"].to_numpy()))
        return Redraw(new, time.perf_counter() - t0, mode, sorted(locked_all))

    dedicated_cells = base.isin(ws.dedicated).to_numpy()
    pool = ws.cells[~dedicated_cells]
    locked_basic = sorted(locked_all - ws.dedicated)
    # several starts (the first with the seed `gridgov run` used, so unchanged settings can
    # give back the current plan), the best objective wins, within the work budget
    best = None
    first = _stage_seed(seed, ws.community_code)
    left = int(budget)
    for k in range(max(1, int(starts))):
        if k and left < 0.15 * budget:
            break
        plan = partition_community(
            pool, ws.adjacency, households_min=norm["households_min"],
            households_max=norm["households_max"], kind=ws.kind, prefer=norm.get("prefer"),
            allow_small_whole=norm.get("allow_small_whole"),
            weights={k_: v for k_, v in W.items() if k_ != "move"},
            locked=locked_basic or None,
            initial=base[~dedicated_cells] if locked_basic else None,
            seed=first if k == 0 else first + 7919 * k, budget=max(left, 1),
            max_seconds=max_seconds)
        left -= int(plan.info.get("work", 0))
        if best is None or plan.objective < best.objective - 1e-12:
            best = plan
    plan = best
    new_int = plan.labels.reindex(pool["cell_id"].to_numpy())
    # keep the codes of the grids that the new ones mostly cover (one-to-one, largest first)
    old = base.reindex(new_int.index)
    weight = pool.set_index("cell_id")["households"].reindex(new_int.index).to_numpy() + 1.0
    tab = (pd.DataFrame({"n": new_int.to_numpy(), "o": old.to_numpy(), "w": weight})
           .dropna(subset=["o"]).groupby(["n", "o"])["w"].sum().sort_values(ascending=False))
    name: dict = {}
    taken: set = set()
    # locked grids first: they must keep their own code
    for g in locked_basic:
        ns = pd.unique(new_int[(old == g).to_numpy()])
        if len(ns) == 1:
            name[ns[0]] = g
            taken.add(g)
    for n, o in tab.index:
        if n in name or o in taken or o in ws.dedicated:
            continue
        name[n] = o
        taken.add(o)
    out = base.copy().astype(object)
    out.loc[new_int.index] = [name.get(n, f"new-{n}") for n in new_int.to_numpy()]
    out = _finalize_codes(ws, out)
    return Redraw(out, time.perf_counter() - t0, mode, sorted(locked_all))


# --------------------------------------------------------------------------------------------
# moves
# --------------------------------------------------------------------------------------------
@dataclass
class MoveResult:
    """Whether a move was applied; the reason in both languages when it was refused."""

    ok: bool
    reason_zh: str
    reason_en: str
    labels: pd.Series | None = None

    def reason(self, lang: str = "zh") -> str:
        return self.reason_zh if lang == "zh" else self.reason_en


def _split_reason(text: str) -> tuple[str, str]:
    if " / " in text:
        zh, en = text.split(" / ", 1)
        return zh, en
    return text, text


def move_cell(ws: Workspace, labels, cell_id, to_grid, *, locked: Iterable = ()) -> MoveResult:
    """Move one cell to a neighbouring grid, or refuse with the reason (:func:`geo.grids.can_move`).

    Refused when either grid is locked (dedicated grids always are), the target does not
    touch the cell (or only across a barrier), the source grid would be emptied, or it would
    fall apart into several pieces. ``labels`` is not modified; the result holds a new Series.
    """
    lab = _as_labels(ws, labels)
    ok, reason = can_move(cell_id, to_grid, lab, ws.adjacency,
                          locked=set(locked) | ws.dedicated)
    if not ok:
        zh, en = _split_reason(reason)
        return MoveResult(False, zh, en, None)
    new = lab.copy()
    new[cell_id] = to_grid
    return MoveResult(True, "已调整", "moved", new)


def move_cells(ws: Workspace, labels, cell_ids: Iterable, to_grid, *,
               locked: Iterable = ()) -> MoveResult:
    """Move several cells to one grid in one step, or refuse them all with the reason.

    The cells are moved one at a time with the single-cell checks (:func:`move_cell`), in the
    order that keeps every step valid: each pass moves the cells that touch the target grid
    now, so a block of cells can grow into the grid from its border. Cells already in
    ``to_grid`` are skipped. If some cell can never be moved, nothing is moved and the reason of
    that cell is given. ``labels`` is not modified.
    """
    lab = _as_labels(ws, labels).copy()
    todo = [c for c in dict.fromkeys(cell_ids) if lab.get(c) != to_grid]
    if not todo:
        return MoveResult(False, "所选单元已在该网格中", "the selected cells are already in that grid",
                          None)
    locked = set(locked) | ws.dedicated
    last = ("", "")
    while todo:
        left = []
        for c in todo:
            ok, reason = can_move(c, to_grid, lab, ws.adjacency, locked=locked)
            if ok:
                lab[c] = to_grid
            else:
                left.append(c)
                last = (c, reason)
        if len(left) == len(todo):
            zh, en = _split_reason(last[1])
            return MoveResult(False, f"单元 {last[0]}：{zh}", f"cell {last[0]}: {en}", None)
        todo = left
    return MoveResult(True, "已调整", "moved", lab)


def neighbour_grids(ws: Workspace, labels, cell_id) -> list[tuple[str, bool]]:
    """Grids touching a cell other than its own: ``(grid_id, across_barrier)``, contiguous first."""
    lab = _as_labels(ws, labels)
    adj = ws.adjacency
    if cell_id not in adj.position:
        return []
    i = adj.position[cell_id]
    own = lab.get(cell_id)
    ids = adj.cell_ids
    near = {lab.get(ids[j]) for j in adj.neighbors(i)}
    across = set()
    for a, b in adj.barrier_pairs:
        if a == i:
            across.add(lab.get(ids[b]))
        elif b == i:
            across.add(lab.get(ids[a]))
    out = [(g, False) for g in sorted(x for x in near if isinstance(x, str) and x != own)]
    out += [(g, True) for g in sorted(x for x in across - near
                                      if isinstance(x, str) and x != own)]
    return out


def problem_grids(ws: Workspace, labels=None, grids: gpd.GeoDataFrame | None = None
                  ) -> list[tuple[str, list[str]]]:
    """The basic grids with a problem, in code order: ``(grid_id, reasons)``.

    Reasons: ``'out_of_norm'`` (status not ok), ``'barrier'`` (two of its cells lie on the two
    sides of a road, railway or river), ``'pieces'`` (not one piece).
    """
    lab = _as_labels(ws, labels)
    grids = plan_grids(ws, lab) if grids is None else grids
    out: dict = {}
    for g, gt, st_, geom in zip(grids["grid_id"], grids["grid_type"], grids["status"],
                               grids.geometry):
        if gt == "dedicated":
            continue
        why = []
        if st_ != "ok":
            why.append("out_of_norm")
        if geom is not None and geom.geom_type != "Polygon":
            why.append("pieces")
        out[str(g)] = why
    ids = ws.adjacency.cell_ids
    for a, b in ws.adjacency.barrier_pairs:
        ga, gb = lab.get(ids[a]), lab.get(ids[b])
        if isinstance(ga, str) and ga == gb and ga in out and "barrier" not in out[ga]:
            out[ga].append("barrier")
    return [(g, why) for g, why in sorted(out.items()) if why]


def cell_at(ws: Workspace, lon: float, lat: float):
    """The cell containing a point given in EPSG:4326 (a map click), or None."""
    w = ws.cells_wgs84
    geoms = np.asarray(w.geometry.values, dtype=object)
    hit = np.flatnonzero(shapely.contains_xy(geoms, float(lon), float(lat)))
    if len(hit):
        return w["cell_id"].iloc[int(hit[0])]
    # on an edge or just outside: the nearest cell within ~5 m
    d = shapely.distance(geoms, shapely.Point(float(lon), float(lat)))
    j = int(np.argmin(d))
    return w["cell_id"].iloc[j] if d[j] < 5e-5 else None


# --------------------------------------------------------------------------------------------
# the edit: plain data (fits in st.session_state, JSON-serialisable)
# --------------------------------------------------------------------------------------------
def new_edit(ws: Workspace) -> dict:
    """A fresh edit of the community: no proposal yet, nothing locked, empty undo stack.

    Keys: ``community_code``, ``plan_id`` (the plan it starts from), ``labels`` (the working
    proposal as ``{cell_id: grid_id}``, or None while it equals the current plan), ``locked``
    (grid ids), ``undo`` (list of dicts, newest last), ``last`` (what the last re-draw did).
    """
    return {"community_code": ws.community_code, "plan_id": ws.plan_id, "labels": None,
            "locked": [], "undo": [], "last": None}


def working_labels(ws: Workspace, edit: dict) -> pd.Series:
    """The labels being edited: the proposal, or the current plan while there is none."""
    return _as_labels(ws, edit.get("labels"))


def has_proposal(edit: dict) -> bool:
    return edit.get("labels") is not None


def _plain(labels: pd.Series) -> dict:
    return {str(k): (None if pd.isna(v) else str(v)) for k, v in labels.items()}


def edit_redraw(ws: Workspace, edit: dict, **kw) -> Redraw:
    """Re-draw the working plan (:func:`redraw_community`, keeping the edit's locked grids)."""
    res = redraw_community(ws, working_labels(ws, edit), locked=edit["locked"], **kw)
    edit["undo"].append({"op": "redraw", "labels": edit["labels"]})
    edit["labels"] = _plain(res.labels)
    edit["last"] = {"mode": res.mode, "seconds": round(res.seconds, 3),
                    **{k: v for k, v in kw.items() if k in ("households_min", "households_max")}}
    # a locked grid that no longer exists (a minimal re-draw cannot remove it; kept for safety)
    edit["locked"] = [g for g in edit["locked"] if g in set(res.labels.dropna())]
    return res


def edit_move(ws: Workspace, edit: dict, cell_id, to_grid) -> MoveResult:
    """Apply a move to the working plan, or leave it unchanged and say why not."""
    lab = working_labels(ws, edit)
    res = move_cell(ws, lab, cell_id, to_grid, locked=edit["locked"])
    if res.ok:
        edit["undo"].append({"op": "move", "cell_id": str(cell_id), "from": lab[cell_id],
                             "to": str(to_grid), "had_proposal": has_proposal(edit)})
        edit["labels"] = _plain(res.labels)
    return res


def edit_move_many(ws: Workspace, edit: dict, cell_ids: Iterable, to_grid) -> MoveResult:
    """Move several cells to one grid (:func:`move_cells`) as one undoable step."""
    lab = working_labels(ws, edit)
    res = move_cells(ws, lab, cell_ids, to_grid, locked=edit["locked"])
    if res.ok:
        edit["undo"].append({"op": "move_many", "labels": edit["labels"]})
        edit["labels"] = _plain(res.labels)
    return res


def edit_lock_all(ws: Workspace, edit: dict, locked: bool = True) -> None:
    """Lock every basic grid of the working plan (or unlock all) as one undoable step."""
    grids = sorted(g for g in set(working_labels(ws, edit).dropna()) if g not in ws.dedicated)
    new = grids if locked else []
    if sorted(edit["locked"]) == new:
        return
    edit["undo"].append({"op": "lock_all", "locked": list(edit["locked"])})
    edit["locked"] = new


def edit_lock(edit: dict, grid_id: str, locked: bool = True) -> None:
    """Lock (or unlock) a grid of the working plan: re-draws and moves leave it alone."""
    was = grid_id in edit["locked"]
    if was == locked:
        return
    edit["undo"].append({"op": "lock", "grid_id": grid_id, "was": was})
    if locked:
        edit["locked"] = sorted(set(edit["locked"]) | {grid_id})
    else:
        edit["locked"] = [g for g in edit["locked"] if g != grid_id]


def edit_undo(ws: Workspace, edit: dict) -> dict | None:
    """Undo the last step (re-draw, move(s), lock(s)); returns that step, or None if none is left."""
    if not edit["undo"]:
        return None
    step = edit["undo"].pop()
    if step["op"] in ("redraw", "move_many"):
        edit["labels"] = step["labels"]
    elif step["op"] == "lock_all":
        edit["locked"] = list(step["locked"])
    elif step["op"] == "move":
        if not step.get("had_proposal", True):
            edit["labels"] = None
        else:
            lab = dict(edit["labels"])
            lab[step["cell_id"]] = step["from"]
            edit["labels"] = lab
    elif step["op"] == "lock":
        if step["was"]:
            edit["locked"] = sorted(set(edit["locked"]) | {step["grid_id"]})
        else:
            edit["locked"] = [g for g in edit["locked"] if g != step["grid_id"]]
    return step


def edit_reset(ws: Workspace, edit: dict) -> None:
    """Drop the proposal and the locks (undoable as one step)."""
    edit["undo"].append({"op": "redraw", "labels": edit["labels"]})
    edit["labels"] = None


# --------------------------------------------------------------------------------------------
# checks, comparison, diff
# --------------------------------------------------------------------------------------------
def checklist(ws: Workspace, labels=None, norms: dict | None = None) -> pd.DataFrame:
    """The validity checklist (:func:`geo.grids.validity_checklist`) with texts in both languages.

    Columns: ``check``, ``label_zh``, ``label_en``, ``ok``, ``detail_zh``, ``detail_en``.
    """
    lab = _as_labels(ws, labels)
    norms = ws.norms if norms is None else norms
    base = validity_checklist(ws.cells, lab, {ws.community_code: ws.adjacency},
                              communities=ws.communities, norms=norms, grid_type=_gtype(ws, lab))
    norm = ws.norm(norms)
    status = None
    if not lab.isna().any():
        status = plan_grids(ws, lab, norms).set_index("grid_id")["status"]
    rows = []
    for r in base.itertuples(index=False):
        zh, en = CHECKS.get(r.check, (r.label_zh, r.check))
        dzh = den = str(r.detail)
        if r.check == "complete":
            n = int(lab.isna().sum())
            dzh = "每个单元都属于一个网格" if r.ok else f"{n} 个单元不属于任何网格"
            den = "every cell is in a grid" if r.ok else f"{n} cell(s) are in no grid"
        elif r.check == "contiguous":
            dzh = "每个网格都是连通的一块" if r.ok else "以下网格不连通：" + str(r.detail).split(
                ": ", 1)[-1]
        elif r.check == "inside_one_community":
            dzh = "每个网格都在本社区内" if r.ok else "跨社区的网格：" + str(r.detail).split(
                ": ", 1)[-1]
        elif r.check == "within_norm":
            lo, hi = norm["households_min"], norm["households_max"]
            if status is None:
                dzh, den = "方案不完整", "incomplete plan"
            elif r.ok:
                dzh = f"所有基础网格户数在 {lo}–{hi} 之间"
                den = f"every basic grid has {lo}–{hi} households"
            else:
                bad = status[status != "ok"].value_counts()
                dzh = "；".join(f"{n} 个{STATUS_LABELS.get(s, (s, s))[0]}" for s, n in bad.items())
                den = "; ".join(f"{n} {STATUS_LABELS.get(s, (s, s))[1]}" for s, n in bad.items())
        rows.append({"check": r.check, "label_zh": zh, "label_en": en, "ok": bool(r.ok),
                     "detail_zh": dzh, "detail_en": den})
    return pd.DataFrame(rows)


def building_grid(ws: Workspace, labels=None) -> pd.Series:
    """``building_id -> grid_id`` of a labelling (the plan's ``grid_members``)."""
    lab = _as_labels(ws, labels).dropna()
    members = pd.DataFrame({"cell_id": lab.index.to_numpy(), "grid_id": lab.to_numpy()})
    bm = building_members(ws.cells, members)
    return pd.Series(bm["grid_id"].to_numpy(), index=bm["building_id"].astype(str).to_numpy(),
                     name="grid_id")


def diff(ws: Workspace, proposed, current=None) -> dict:
    """:func:`geo.grids.diff_plans` of two labellings, by building, weighted by households."""
    hh = ws.buildings.set_index("building_id")["households"].astype(float)
    return diff_plans(building_grid(ws, current), building_grid(ws, proposed), households=hh)


def metrics(ws: Workspace, labels=None, norms: dict | None = None,
            grids: gpd.GeoDataFrame | None = None) -> dict:
    """:func:`geo.grids.plan_metrics` of this community's grids under a labelling."""
    norms = ws.norms if norms is None else norms
    grids = plan_grids(ws, labels, norms) if grids is None else grids
    return plan_metrics(grids, norms, communities=ws.communities)


def compare(ws: Workspace, proposed=None, norms: dict | None = None, *,
            current_grids: gpd.GeoDataFrame | None = None,
            proposed_grids: gpd.GeoDataFrame | None = None) -> pd.DataFrame:
    """Current against proposed: one row per figure of :data:`METRIC_ROWS`.

    Columns ``metric``, ``label_zh``, ``label_en``, ``current``, ``proposed``; the proposal
    column is empty (NaN) when there is no proposal.
    """
    norms = ws.norms if norms is None else norms
    cur = metrics(ws, None, norms, current_grids)
    cur.update(buildings_moved=0, households_moved=0)
    prop: dict = {}
    if proposed is not None:
        prop = metrics(ws, proposed, norms, proposed_grids)
        d = diff(ws, proposed)
        prop.update(buildings_moved=int(d["moves"]["from_grid"].notna().sum()),
                    households_moved=int(d["households_moved"]))
    rows = [{"metric": k, "label_zh": zh, "label_en": en, "current": cur.get(k),
             "proposed": prop.get(k, np.nan)} for k, zh, en in METRIC_ROWS]
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------------
# exports
# --------------------------------------------------------------------------------------------
def grids_geojson(ws: Workspace, labels=None, norms: dict | None = None) -> str:
    """The grids of a labelling as GeoJSON (EPSG:4326) text."""
    g = plan_grids(ws, labels, norms).to_crs(STORAGE_CRS)
    g["unit_ids"] = g["unit_ids"].map(
        lambda v: ",".join(map(str, v)) if isinstance(v, list | tuple | np.ndarray) else v)
    cols = ["grid_id", "grid_type", "community_code", "street_code", "households", "residents",
            "workload", "area_km2", "compactness", "status", "within_norm", "unit_type",
            "unit_ids", "geometry"]
    return g[cols].to_json(drop_id=True, ensure_ascii=False)


REPORT_SHEETS = ("概要 Summary", "楼栋调整 Buildings moved", "网格对比 Grids", "指标 Metrics")


def _headers(pairs: dict) -> dict:
    return {k: f"{zh} {en}" for k, (zh, en) in pairs.items()}


def realignment_report(ws: Workspace, proposed, dest=None, *, norms: dict | None = None,
                       proposed_plan_id: str | None = None, author: str | None = None,
                       note: str | None = None):
    """The realignment report (调整报告): which buildings move between which grids, as Excel.

    Sheets (:data:`REPORT_SHEETS`): a summary; one row per building that changes grid
    (households, residents, from, to); one row per grid touched, with households, residents,
    workload and status before and after; the plan figures before and after.

    Parameters
    ----------
    dest
        A path or a binary file object; None returns the workbook as bytes.
    """
    norms = ws.norms if norms is None else norms
    cur_g = plan_grids(ws, None, norms)
    new_g = plan_grids(ws, proposed, norms)
    d = diff(ws, proposed)
    b = ws.buildings.set_index("building_id")
    cell_of = {bid: c for c, lst in zip(ws.cells["cell_id"], ws.cells["building_ids"])
               for bid in lst}
    mv = d["moves"]
    moves = pd.DataFrame({
        "building_id": mv["id"].astype(str).to_numpy(),
        "households": mv["id"].map(b["households"]).fillna(0).astype("int64").to_numpy(),
        "residents": pd.to_numeric(mv["id"].map(b["residents"]), errors="coerce").to_numpy(),
        "cell_id": mv["id"].map(cell_of).to_numpy(),
        "from_grid": mv["from_grid"].to_numpy(), "to_grid": mv["to_grid"].to_numpy()})
    moves = moves.sort_values(["from_grid", "to_grid", "building_id"]).reset_index(drop=True)

    cols = ["grid_type", "households", "residents", "workload", "status", "area_km2",
            "compactness"]
    before = cur_g.set_index("grid_id")[cols]
    after = new_g.set_index("grid_id")[cols]
    touched = sorted(set(moves["from_grid"].dropna()) | set(moves["to_grid"].dropna())
                     | set(d["grids_added"]) | set(d["grids_removed"]), key=str)
    gained = moves.groupby("to_grid")["households"].sum()
    lost = moves.groupby("from_grid")["households"].sum()
    rows = []
    for g in touched:
        bf = before.loc[g] if g in before.index else None
        af = after.loc[g] if g in after.index else None
        rows.append({
            "grid_id": g,
            "change": ("added" if bf is None else "removed" if af is None else "changed"),
            "grid_type": (af if af is not None else bf)["grid_type"],
            "households_before": None if bf is None else int(bf["households"]),
            "households_after": None if af is None else int(af["households"]),
            "households_gained": int(gained.get(g, 0)),
            "households_lost": int(lost.get(g, 0)),
            "residents_before": None if bf is None else float(bf["residents"]),
            "residents_after": None if af is None else float(af["residents"]),
            "workload_before": None if bf is None else round(float(bf["workload"]), 1),
            "workload_after": None if af is None else round(float(af["workload"]), 1),
            "status_before": None if bf is None else bf["status"],
            "status_after": None if af is None else af["status"],
            "compactness_before": None if bf is None else round(float(bf["compactness"]), 3),
            "compactness_after": None if af is None else round(float(af["compactness"]), 3),
        })
    grids_tab = pd.DataFrame(rows, columns=[
        "grid_id", "change", "grid_type", "households_before", "households_after",
        "households_gained", "households_lost", "residents_before", "residents_after",
        "workload_before", "workload_after", "status_before", "status_after",
        "compactness_before", "compactness_after"])
    cmp_tab = compare(ws, proposed, norms, current_grids=cur_g, proposed_grids=new_g)
    norm = ws.norm(norms)
    summary = pd.DataFrame([
        ("社区 Community", f"{ws.community_name} ({ws.community_code})"),
        ("街道代码 Street code", ws.street_code or ""),
        ("现行方案 Current plan", ws.plan_id),
        ("新方案 Proposed plan", proposed_plan_id or "未保存 not saved"),
        ("户数规范 Households norm", f"{norm['households_min']}–{norm['households_max']}"),
        ("调整楼栋 Buildings moved", len(moves)),
        ("调整户数 Households moved", int(moves["households"].sum())),
        ("调整人口 Residents moved", float(np.nansum(moves["residents"].to_numpy(float)))),
        ("新增网格 Grids added", ", ".join(map(str, d["grids_added"])) or "—"),
        ("撤销网格 Grids removed", ", ".join(map(str, d["grids_removed"])) or "—"),
        ("变动网格 Grids changed", len(d["grids_changed"])),
        ("编制人 Author", author or ""),
        ("说明 Note", note or ""),
        ("生成时间 Generated", datetime.now().strftime("%Y-%m-%d %H:%M")),
    ], columns=["项目 Item", "内容 Value"])
    moves_out = moves.rename(columns=_headers({
        "building_id": ("楼栋编号", "Building ID"), "households": ("户数", "Households"),
        "residents": ("人口", "Residents"), "cell_id": ("单元编号", "Cell ID"),
        "from_grid": ("原网格", "From grid"), "to_grid": ("新网格", "To grid")}))
    grids_out = grids_tab.rename(columns=_headers({
        "grid_id": ("网格编码", "Grid code"), "change": ("变化", "Change"),
        "grid_type": ("网格类型", "Grid type"),
        "households_before": ("调整前户数", "Households before"),
        "households_after": ("调整后户数", "Households after"),
        "households_gained": ("迁入户数", "Households in"),
        "households_lost": ("迁出户数", "Households out"),
        "residents_before": ("调整前人口", "Residents before"),
        "residents_after": ("调整后人口", "Residents after"),
        "workload_before": ("调整前工作量", "Workload before"),
        "workload_after": ("调整后工作量", "Workload after"),
        "status_before": ("调整前状态", "Status before"),
        "status_after": ("调整后状态", "Status after"),
        "compactness_before": ("调整前紧凑度", "Compactness before"),
        "compactness_after": ("调整后紧凑度", "Compactness after")}))
    cmp_out = pd.DataFrame({
        "指标 Figure": [f"{zh} {en}" for zh, en in zip(cmp_tab["label_zh"], cmp_tab["label_en"])],
        "现行 Current": [_cell(v) for v in cmp_tab["current"]],
        "方案 Proposed": [_cell(v) for v in cmp_tab["proposed"]]})

    buf = io.BytesIO()
    from pipelines.export import make_printable

    with pd.ExcelWriter(buf, engine="openpyxl") as xw:
        for sheet, frame in zip(REPORT_SHEETS, (summary, moves_out, grids_out, cmp_out)):
            frame.to_excel(xw, sheet_name=sheet, index=False)
        # text never becomes a formula; landscape, fit to width, header on every page, codes as text
        make_printable(xw.book, title="网格调整报告 / Realignment report")
    data = buf.getvalue()
    if dest is None:
        return data
    if hasattr(dest, "write"):
        dest.write(data)
        return dest
    Path(dest).write_bytes(data)
    return Path(dest)


def _cell(v):
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return None
    if isinstance(v, (bool, np.bool_)):
        return "是 yes" if v else "否 no"
    if isinstance(v, (float, np.floating)):
        return round(float(v), 4)
    return v


# --------------------------------------------------------------------------------------------
# saving
# --------------------------------------------------------------------------------------------
@dataclass
class Saved:
    """A stored plan: its id, its parent and the whole city's figures."""

    plan_id: str
    parent_plan_id: str
    metrics: dict


def connect_rw(db_path: str | Path, *, retries: int = 40, wait: float = 0.25):
    """A read-write connection, retried while another connection in this process holds the file.

    DuckDB refuses a read-write connection to a file that this process has open read-only (the
    app's loaders open and close theirs within milliseconds), so a few retries suffice.
    """
    import duckdb

    last: Exception | None = None
    for _ in range(max(1, retries)):
        try:
            return connect(db_path)
        except (duckdb.ConnectionException, duckdb.IOException) as exc:
            last = exc
            time.sleep(wait)
    raise PlannerError(f"数据库正被占用，无法保存：{last}",
                       f"The database is busy and could not be written: {last}")


#: Seconds a save waits for another writer of the project (another save; a run takes longer).
SAVE_LOCK_WAIT = 5.0


def save_plan(db_path: str | Path, ws: Workspace, labels, **kw) -> Saved:
    """Store the edited community as a new plan of the whole city and make it current.

    Takes the project's write lock (:mod:`pipelines.lock`) for the time of the write: while a
    ``gridgov run`` holds it (the run will replace the database file), the save is refused with a
    :class:`PlannerError` that says so, instead of being written into a file about to be replaced
    (and lost); the page keeps the edit, so the planner saves again when the run has finished.
    Arguments: see :func:`_save_plan_locked`.
    """
    from pipelines.lock import ProjectLocked, project_lock

    try:
        with project_lock(Path(db_path).parent, wait=SAVE_LOCK_WAIT, purpose="save"):
            return _save_plan_locked(db_path, ws, labels, **kw)
    except ProjectLocked as exc:
        raise PlannerError(exc.zh, exc.en) from exc


def _save_plan_locked(db_path: str | Path, ws: Workspace, labels, *, author: str, note: str = "",
                      households_min: int | None = None, households_max: int | None = None,
                      weights: dict | None = None, con=None) -> Saved:
    """Store the edited community as a new plan of the whole city and make it current.

    The new plan holds the current plan's grids and members of every other community as
    they are, and this community's grids from ``labels``; its parent is the plan the
    workspace was loaded from, which must still be current (else :class:`PlanChanged`).
    Nothing is overwritten: the old plan's rows stay in ``plans``, ``plan_grids``,
    ``plan_members`` and ``grid_metrics``; ``grids`` and ``grid_members`` show the new plan,
    and ``grid_cells.grid_id`` of this community follows it.

    Refused (:class:`PlannerError`) when the labelling is incomplete, a grid is in several
    pieces or crosses the community boundary; grids outside the norm are allowed (their
    status says so).

    Parameters
    ----------
    db_path
        The project database (opened read-write only for the time of the write).
    author, note
        Stored with the plan.
    households_min, households_max, weights
        The norm and weights the proposal was drawn with (stored in the plan's settings).
    con
        An already open read-write connection to use instead of ``db_path``.
    """
    lab = _as_labels(ws, labels)
    if not str(author or "").strip():
        raise PlannerError("请填写编制人。", "Please give the author's name.")
    checks = checklist(ws, lab).set_index("check")["ok"]
    for key in ("complete", "contiguous", "inside_one_community"):
        if not checks.get(key, True):
            zh, en = CHECKS[key]
            raise PlannerError(f"方案未通过检查：{zh}。", f"The plan fails the check: {en}.")
    norms = norms_with(ws, households_min, households_max)
    new_grids = plan_grids(ws, lab, norms)
    new_members = building_grid(ws, lab)
    own = con is None
    con = connect_rw(db_path) if own else con
    try:
        parent = current_plan_id(con)
        if parent != ws.plan_id:
            raise PlanChanged(
                f"当前方案已变为 {parent}（编辑开始时为 {ws.plan_id}），请重新载入社区后再保存。",
                f"The current plan is now {parent} (it was {ws.plan_id} when this edit began); "
                "reload the community and save again.")
        old_grids, old_members = load_plan(con, parent)
        code = ws.community_code
        keep = old_grids[old_grids["community_code"].astype(str) != code]
        gone = set(old_grids.loc[old_grids["community_code"].astype(str) == code, "grid_id"])
        members = pd.concat([
            old_members[~old_members["grid_id"].isin(gone)
                        & ~old_members["building_id"].astype(str).isin(new_members.index)],
            pd.DataFrame({"building_id": new_members.index, "grid_id": new_members.to_numpy()}),
        ], ignore_index=True)
        ng = new_grids.to_crs(STORAGE_CRS).drop(columns=["within_norm"], errors="ignore")
        all_grids = gpd.GeoDataFrame(pd.concat([keep.drop(columns=["plan_id"], errors="ignore"),
                                                ng], ignore_index=True),
                                     geometry="geometry", crs=STORAGE_CRS)
        communities = read_gdf(con, "SELECT community_code, street_code, kind, geometry "
                                    "FROM communities").to_crs(ws.crs)
        kinds = dict(zip(communities["community_code"].astype(str), communities["kind"]))
        metric_grids = all_grids.to_crs(ws.crs)
        metric_grids["kind"] = metric_grids["community_code"].astype(str).map(kinds).fillna(
            "urban")
        barriers = (read_gdf(con, "SELECT geometry FROM barriers").to_crs(ws.crs)
                    if table_exists(con, "barriers") else None)
        city_metrics = plan_metrics(metric_grids, norms, communities=communities, barriers=barriers)
        settings = {
            "norms": norms,
            "grids": {"weights": weights_with(ws, weights)},
            "planner": {"community_code": code, "parent_plan_id": parent,
                        "households_min": ws.norm(norms)["households_min"],
                        "households_max": ws.norm(norms)["households_max"]},
        }
        plan_id = store_plan(con, all_grids, members, city_metrics, parent_plan_id=parent,
                             author=str(author).strip(), note=str(note or "").strip(),
                             settings=settings, source="planner")
        if table_exists(con, "grid_cells"):
            write_gdf(con, "__planner_cells", pd.DataFrame(
                {"cell_id": lab.index.astype(str), "grid_id": lab.astype(str).to_numpy()}))
            con.execute('UPDATE grid_cells SET grid_id = p.grid_id FROM "__planner_cells" p '
                        "WHERE grid_cells.cell_id = p.cell_id")
            con.execute('DROP TABLE "__planner_cells"')
        con.execute("CHECKPOINT")
    finally:
        if own:
            con.close()
    return Saved(plan_id=plan_id, parent_plan_id=parent, metrics=city_metrics)
